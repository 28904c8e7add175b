//! The `etlpool` command line: options, logging, and exit codes.
//!
//! `main` only parses [`Cli`] and calls [`run`], so tests can drive every
//! command in-process.

mod budget;
pub mod config;
mod config_cmd;
mod demo;
mod error;
mod explain;
mod job;
mod journal_cmd;
mod load;
mod logging;
mod migrate;
mod mock;
mod monitor;
mod output;
mod process_metrics;
mod projects;
mod redis_args;
mod serve;
mod status;
mod verify;
mod worker;

pub use config_cmd::ConfigArgs;
pub use demo::{DemoArgs, mock_endpoints};
pub use error::CliError;
pub use job::JobSummary;
pub use journal_cmd::{JournalAction, JournalArgs};
pub use logging::{LogFormat, SECURITY_TARGET};
pub use migrate::{MigrateArgs, summary_exit_code};
pub use mock::{FaultTarget, MockArgs, describe as describe_mocks};
pub use monitor::OpsArgs;
pub use redis_args::RedisArgs;
pub use status::StatusArgs;
pub use verify::VerifyArgs;
pub use worker::WorkerArgs;

use clap::{Args, Parser, Subcommand};

/// Exit codes a scheduler can act on (the table in `--help` and the README).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum ExitCode {
    /// Done.
    Ok = 0,
    /// `verify` found differences.
    Differences = 1,
    /// Bad usage or configuration.
    Usage = 2,
    /// Some records failed, a breaker stayed open, or the run stopped early
    /// (e.g. the journal could not be written); a re-run retries them.
    Partial = 3,
    /// Fatal before any work: authentication rejected, unknown project,
    /// unreachable, a damaged journal.
    Fatal = 4,
    /// Another run holds the journal's lock.
    Locked = 5,
    /// `status`: projects are still waiting or running.
    Pending = 6,
    /// Interrupted by SIGINT or SIGTERM.
    Interrupted = crate::signals::EXIT_INTERRUPTED,
}

impl ExitCode {
    /// The process exit code.
    pub fn code(self) -> i32 {
        self as i32
    }

    /// A one-word status for the summary file and `/metrics`.
    pub fn status(self) -> &'static str {
        match self {
            ExitCode::Ok => "ok",
            ExitCode::Differences => "differences",
            ExitCode::Usage => "usage",
            ExitCode::Partial => "partial",
            ExitCode::Fatal => "fatal",
            ExitCode::Locked => "locked",
            ExitCode::Pending => "pending",
            ExitCode::Interrupted => "interrupted",
        }
    }
}

/// The exit codes as `--help` shows them.
const EXIT_CODES: &str = "\
Exit codes:
  0    done (verify: no differences)
  1    verify found differences
  2    bad usage or configuration (unknown flag or key, missing token, bad URL)
  3    some records failed or wait for others, a circuit breaker stayed open,
       an outage outlasted --max-outage, or the run stopped early (e.g. the
       journal could not be written, qTest's monthly request budget under
       --qtest-month-floor); a re-run retries them
  4    fatal before any work: authentication rejected, unknown project,
       service unreachable, a damaged journal
  5    another run holds the journal's lock (see --wait)
  6    status: projects are still waiting or running
  130  interrupted (SIGINT or SIGTERM) after journaling in-flight records
A list (--projects) exits with its worst project's code: 130, 2, 4, 3, 5, 0.";

/// The environment variables as `--help` shows them.
const ENVIRONMENT: &str = "\
Environment (a flag wins over its variable, a variable over the config file):
  ZEPHYR_URL, ZEPHYR_PROJECT, ZEPHYR_TOKEN      Zephyr Scale base URL (.../v2), project key, API token
  QTEST_URL, QTEST_PROJECT_ID                   qTest base URL (.../api/v3), project id
  QTEST_TOKEN                                   qTest bearer token, or instead:
  QTEST_USERNAME, QTEST_PASSWORD                a qTest login (renewed before it expires)
  ETLPOOL_CONFIG                                the config file (--config)
  ETLPOOL_WORKERS                               concurrent jobs (--workers)
  ETLPOOL_STATUS_INTERVAL                       progress lines and alert checks (--status-interval)
  ETLPOOL_MAX_OUTAGE                            how long to wait out an outage (--max-outage)
  ETLPOOL_CA_FILE, ETLPOOL_CLIENT_CERT, ETLPOOL_CLIENT_KEY   TLS material (--ca-file, ...)
  ETLPOOL_<POOL SETTING>                        any [pool] setting, e.g. ETLPOOL_IDLE_TIMEOUT=20s
  ETLPOOL_REDIS_URL, ETLPOOL_REDIS_PASSWORD     Redis for journals, locks and the project queue (--redis)
  ETLPOOL_REDIS_PREFIX, ETLPOOL_LEASE           its key prefix (--redis-prefix), a worker's lease (--lease)
  ETLPOOL_BUDGET_SHARE                          a process's share of each rate without Redis (--budget-share)
  ETLPOOL_WORKER_NAME, ETLPOOL_SHARD            --worker-name, --shard I/N
  RUST_LOG                                      log filter, e.g. etlpool=debug (overrides -v/-q)
Tokens and passwords come only from the environment or the config file, never from flags.";

/// Global options, shown once under their own heading.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// More log output: -v phases and logins, -vv every request and retry,
    /// -vvv everything. RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Print nothing on success: errors, and security warnings, only.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Log lines as text, or as one JSON object per line (time, level,
    /// target, message, fields) for log shippers.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
}

/// etlpool: pooled, resilient HTTP for long ETL jobs; migrates Zephyr Scale to qTest.
#[derive(Debug, Parser)]
#[command(name = "etlpool", version, about, propagate_version = true, after_help = EXIT_CODES)]
pub struct Cli {
    /// Logging and output.
    #[command(flatten)]
    pub global: GlobalArgs,
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
    #[command(after_help = format!("{ENVIRONMENT}\n\n{EXIT_CODES}"))]
    Migrate(Box<MigrateArgs>),
    /// Compare a Zephyr Scale project with its migration on qTest, through
    /// their APIs; exits 1 when they differ.
    #[command(after_help = format!("{ENVIRONMENT}\n\n{EXIT_CODES}"))]
    Verify(Box<VerifyArgs>),
    /// Generate HTTP load through the pool and print throughput, latency and metrics.
    Load(Box<load::LoadArgs>),
    /// Run the embedded Zephyr Scale and qTest mock servers until Ctrl-C.
    Mock(Box<MockArgs>),
    /// Print a commented default config file, or check one.
    Config(ConfigArgs),
    /// Take projects queued in Redis (`migrate --projects --redis`) and
    /// migrate them, one at a time, until stopped (or, with --drain, until
    /// none is left). Needs the `redis` feature.
    #[command(after_help = format!("{ENVIRONMENT}\n\n{EXIT_CODES}"))]
    Worker(Box<WorkerArgs>),
    /// Show the projects queued in Redis: waiting, running (where, since
    /// when), done, failed. Exits 0 when all are done, 3 when some failed
    /// and none is left to run, 6 while some wait or run.
    Status(StatusArgs),
    /// Move a project's journal between a file and Redis.
    Journal(JournalArgs),
}

impl Command {
    fn name(&self) -> &'static str {
        match self {
            Command::Demo(_) => "demo",
            Command::Migrate(_) => "migrate",
            Command::Verify(_) => "verify",
            Command::Load(_) => "load",
            Command::Mock(_) => "mock",
            Command::Config(_) => "config",
            Command::Worker(_) => "worker",
            Command::Status(_) => "status",
            Command::Journal(_) => "journal",
        }
    }
}

/// Parses the process's command line. Help and version print and exit 0 as
/// usual; a usage error exits 2, printed as clap prints it, or as one JSON
/// line when the command line asks for `--log-format json` (a log shipper
/// must get JSON even from a typo in a unit file).
pub fn parse() -> Cli {
    match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() && logging::json_asked(std::env::args_os()) => {
            logging::usage_error(&e);
            std::process::exit(e.exit_code());
        }
        Err(e) => e.exit(),
    }
}

/// Runs a parsed command line and returns the exit code. A failure is
/// printed to stderr as `error: …` with its causes (and a hint where one
/// helps), or as a JSON log line with `--log-format json`.
pub fn run(cli: Cli) -> ExitCode {
    logging::init(&cli.global);
    let g = &cli.global;
    let result = match &cli.command {
        Command::Demo(args) => demo::run(args, g),
        Command::Migrate(args) => migrate::run(args, g),
        Command::Verify(args) => verify::run(args, g),
        Command::Load(args) => load::run(args, g),
        Command::Mock(args) => mock::run(args),
        Command::Config(args) => config_cmd::run(args),
        Command::Worker(args) => worker::run(args, g),
        Command::Status(args) => status::run(args),
        Command::Journal(args) => journal_cmd::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            logging::fatal(g.log_format, cli.command.name(), &e);
            e.exit_code()
        }
    }
}
