//! `etlpool migrate` and `etlpool demo`.

use std::path::{Path, PathBuf};

use clap::Args;

use super::config::{ConnectionArgs, Settings, process_env};
use super::{CliError, ExitCode};
use crate::cancel::CancelToken;
use crate::migrate::{MigrateOptions, Phases, RunSummary, migrate};
use crate::pool::Pool;

/// Options of `etlpool migrate`.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// Where the services are.
    #[command(flatten)]
    pub connection: ConnectionArgs,
    /// The journal; a re-run with the same journal resumes. Defaults to
    /// `<zephyr project>.journal.csv` in the current directory.
    #[arg(long, value_name = "PATH")]
    pub journal: Option<PathBuf>,
    /// The CSV report (one row per record). Defaults to `<project>.report.csv`,
    /// or `<project>.plan.csv` with --dry-run.
    #[arg(long, value_name = "PATH.csv")]
    pub report: Option<PathBuf>,
    /// Also write the summary as JSON.
    #[arg(long, value_name = "PATH")]
    pub summary_json: Option<PathBuf>,
    /// Also write the pool's metrics in the Prometheus text format at the end.
    #[arg(long, value_name = "PATH")]
    pub metrics: Option<PathBuf>,
    /// Extract and transform only: write the plan, write nothing to qTest.
    #[arg(long)]
    pub dry_run: bool,
    /// Migrate only these kinds: modules,cases,cycles,runs,logs.
    #[arg(long, value_name = "KINDS")]
    pub only: Option<Phases>,
}

pub(super) fn run(args: &MigrateArgs, quiet: bool) -> Result<ExitCode, CliError> {
    let settings = args.connection.resolve(&process_env)?;
    let project = settings.endpoints.zephyr_project.clone();
    let journal = args
        .journal
        .clone()
        .or(settings.journal.clone())
        .unwrap_or_else(|| PathBuf::from(format!("{}.journal.csv", file_stem(&project))));
    let suffix = if args.dry_run { "plan" } else { "report" };
    let report = args
        .report
        .clone()
        .or(settings.report.clone())
        .unwrap_or_else(|| PathBuf::from(format!("{}.{suffix}.csv", file_stem(&project))));
    let options = MigrateOptions {
        endpoints: settings.endpoints.clone(),
        mapping: settings.mapping.clone(),
        workers: settings.workers,
        journal,
        report,
        dry_run: args.dry_run,
        only: args.only.unwrap_or_default(),
        page_size: settings.page_size,
        progress: !quiet,
    };
    let outputs = Outputs {
        summary_json: args.summary_json.as_deref(),
        metrics: args.metrics.as_deref(),
    };
    run_migration(&settings, &options, outputs)
}

/// Where the extra outputs go.
pub(super) struct Outputs<'a> {
    pub(super) summary_json: Option<&'a Path>,
    pub(super) metrics: Option<&'a Path>,
}

/// Runs a migration with signals wired to cancellation, prints the summary and
/// maps the outcome to an exit code.
pub(super) fn run_migration(
    settings: &Settings,
    options: &MigrateOptions,
    outputs: Outputs<'_>,
) -> Result<ExitCode, CliError> {
    let pool = Pool::new(settings.pool.clone())?;
    let cancel = CancelToken::new();
    let signals = crate::signals::install(cancel.clone())
        .map_err(|e| CliError::io("installing the SIGINT/SIGTERM handlers", e))?;
    let summary = match migrate(&pool, options, &cancel) {
        Ok(summary) => summary,
        Err(e) if signals.received() => {
            log::error!("{}", crate::error::error_chain(&e));
            return Ok(ExitCode::Interrupted);
        }
        Err(e) => return Err(e.into()),
    };
    println!("{summary}");
    write_outputs(&summary, &pool, &outputs)?;
    Ok(summary_exit_code(&summary, signals.received()))
}

fn write_outputs(summary: &RunSummary, pool: &Pool, outputs: &Outputs<'_>) -> Result<(), CliError> {
    if let Some(path) = outputs.summary_json {
        let json = serde_json::to_string_pretty(summary)
            .map_err(|e| CliError::io("encoding the summary", e.into()))?;
        std::fs::write(path, json)
            .map_err(|e| CliError::io(format!("writing {}", path.display()), e))?;
    }
    if let Some(path) = outputs.metrics {
        std::fs::write(path, pool.metrics().to_prometheus())
            .map_err(|e| CliError::io(format!("writing {}", path.display()), e))?;
    }
    Ok(())
}

/// 0 when everything asked for was done; 130 when interrupted; 3 otherwise
/// (failed records, an open breaker, a run stopped early): a re-run retries.
pub fn summary_exit_code(summary: &RunSummary, signalled: bool) -> ExitCode {
    if summary.interrupted || signalled {
        ExitCode::Interrupted
    } else if summary.is_complete() {
        ExitCode::Ok
    } else {
        ExitCode::Partial
    }
}

/// A project key as a file name (keys are letters and digits, but be safe).
fn file_stem(project: &str) -> String {
    project
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}
