//! The `etlpool` command line: options, logging, and exit codes.
//!
//! `main` only parses [`Cli`] and calls [`run`], so tests can drive every
//! command in-process.

pub mod config;
mod demo;
mod error;
mod load;
mod migrate;
mod mock;
mod verify;

pub use demo::{DemoArgs, mock_endpoints};
pub use error::CliError;
pub use migrate::{MigrateArgs, summary_exit_code};
pub use mock::{FaultTarget, MockArgs, describe as describe_mocks};
pub use verify::VerifyArgs;

use clap::{Parser, Subcommand};

use crate::error::error_chain;

/// Exit codes a scheduler can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum ExitCode {
    /// Done.
    Ok = 0,
    /// `verify` found differences.
    Differences = 1,
    /// Bad usage or configuration.
    Usage = 2,
    /// Some records failed, or a breaker stayed open; a re-run retries them.
    Partial = 3,
    /// Fatal before any work: authentication rejected, unknown project, unreachable.
    Fatal = 4,
    /// Another run holds the journal's lock.
    Locked = 5,
    /// Interrupted by SIGINT or SIGTERM.
    Interrupted = crate::signals::EXIT_INTERRUPTED,
}

impl ExitCode {
    /// The process exit code.
    pub fn code(self) -> i32 {
        self as i32
    }
}

/// etlpool: pooled, resilient HTTP for long ETL jobs; migrates Zephyr Scale to qTest.
#[derive(Debug, Parser)]
#[command(name = "etlpool", version, about, propagate_version = true)]
pub struct Cli {
    /// More log output (-v info, -vv debug, -vvv trace). RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Migrate a seeded project between the embedded mocks, with faults, and
    /// print the summary and metrics.
    Demo(DemoArgs),
    /// Migrate a Zephyr Scale project to qTest (resumable; see the README).
    Migrate(Box<MigrateArgs>),
    /// Compare a Zephyr Scale project with its migration on qTest, through
    /// their APIs; exits 1 when they differ.
    Verify(Box<VerifyArgs>),
    /// Generate HTTP load through the pool and print throughput, latency and metrics.
    Load(load::LoadArgs),
    /// Run the embedded Zephyr Scale and qTest mock servers until Ctrl-C.
    Mock(Box<MockArgs>),
}

/// Runs a parsed command line and returns the exit code.
pub fn run(cli: Cli) -> ExitCode {
    init_logging(cli.verbose, cli.quiet);
    let result = match &cli.command {
        Command::Demo(args) => demo::run(args, cli.quiet),
        Command::Migrate(args) => migrate::run(args, cli.quiet),
        Command::Verify(args) => verify::run(args),
        Command::Load(args) => load::run(args),
        Command::Mock(args) => mock::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            log::error!("{}", error_chain(&e));
            e.exit_code()
        }
    }
}

fn init_logging(verbose: u8, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        (false, _) => "trace",
    };
    let env = env_logger::Env::default().default_filter_or(format!("etlpool={level},warn"));
    // A second init (tests calling run twice) is harmless.
    let _ = env_logger::Builder::from_env(env)
        .format_timestamp_millis()
        .try_init();
}
