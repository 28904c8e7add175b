//! `etlpool verify`.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;

use super::config::{ConnectionArgs, Settings, process_env};
use super::job::{Job, Previous};
use super::monitor::{Monitor, OpsArgs, Watch};
use super::output::OutputPath;
use super::{CliError, ExitCode, GlobalArgs};
use crate::cancel::CancelToken;
use crate::migrate::{MigrateError, VerifyOptions, VerifyReport, connect, verify};
use crate::pool::Pool;

/// Options of `etlpool verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Where the services are.
    #[command(flatten)]
    pub connection: ConnectionArgs,
    /// Differences to list (all are counted).
    #[arg(long, default_value_t = 20)]
    pub show: usize,
    /// The migration's journal, read only, to check that every migrated
    /// attachment is on its qTest object. Defaults to `[run] journal`, else
    /// `<zephyr project>.journal.csv` when it exists; without one,
    /// attachments are not compared.
    #[arg(long, value_name = "PATH")]
    pub journal: Option<PathBuf>,
    /// Also write the whole report as JSON, atomically; `-` is stdout (the
    /// text summary then goes to stderr). Checked before any work.
    #[arg(long, value_name = "PATH")]
    pub report_json: Option<PathBuf>,
    /// Metrics, health and progress.
    #[command(flatten)]
    pub ops: OpsArgs,
}

pub(super) fn run(args: &VerifyArgs, global: &GlobalArgs) -> Result<ExitCode, CliError> {
    args.ops.metrics_output()?;
    if let Some(path) = &args.report_json {
        OutputPath::new(path).check("--report-json")?;
    }
    let settings = args.connection.resolve(&process_env)?;
    let pool = Pool::new(settings.pool.clone())?;
    let metrics_file = args.ops.metrics.as_deref();
    let job = Arc::new(Job::new(
        "verify",
        &settings.endpoints.zephyr_project,
        None,
        Previous::read(None, metrics_file),
    ));
    let monitor = Monitor::start(
        &args.ops,
        Watch {
            pool: pool.clone(),
            job,
            progress: None,
            interval: args.ops.interval(settings.status_interval)?,
            thresholds: settings.alerts,
            show_progress: !global.quiet,
        },
    )?;
    let journal = journal_of(args.journal.clone(), &settings);
    let checked = check_on(&pool, &settings, journal).map_err(|e| {
        let e = CliError::from(e);
        let hint = super::explain::auth_hint(&e, &settings.endpoints);
        e.with_hint(hint)
    });
    let code = match &checked {
        Ok(report) if report.is_clean() => ExitCode::Ok,
        Ok(_) => ExitCode::Differences,
        Err(e) => e.exit_code(),
    };
    let finished = monitor.finish(code);
    let report = match checked {
        Ok(report) => report,
        Err(e) => {
            let _logged = super::output::settle(code, [finished]);
            return Err(e);
        }
    };
    let report_json = args.report_json.as_deref().map(OutputPath::new);
    if !(global.quiet && code == ExitCode::Ok) {
        // stdout may carry the JSON report.
        if report_json == Some(OutputPath::Stdout) {
            eprintln!("{}", report.summary(args.show));
        } else {
            println!("{}", report.summary(args.show));
        }
        if let Some(hint) = repair_hint(&report) {
            eprintln!("{hint}");
        }
    }
    let written = match &report_json {
        Some(out) => serde_json::to_vec_pretty(&report)
            .map_err(|e| CliError::io("encoding the report", e.into()))
            .and_then(|mut json| {
                json.push(b'\n');
                out.write(&json)
            }),
        None => Ok(()),
    };
    super::output::settle(code, [finished, written])
}

/// Reads both sides and compares them.
pub(super) fn check(settings: &Settings) -> Result<VerifyReport, MigrateError> {
    let pool = Pool::new(settings.pool.clone())?;
    check_on(&pool, settings, journal_of(None, settings))
}

/// `--journal`, `[run] journal`, or the default journal when it exists; a
/// journal named explicitly must exist (reading it says so if not).
fn journal_of(given: Option<PathBuf>, settings: &Settings) -> Option<PathBuf> {
    given.or(settings.journal.clone()).or_else(|| {
        let project = super::migrate::file_stem(&settings.endpoints.zephyr_project);
        let default = PathBuf::from(format!("{project}.journal.csv"));
        default.is_file().then_some(default)
    })
}

fn check_on(
    pool: &Pool,
    settings: &Settings,
    journal: Option<PathBuf>,
) -> Result<VerifyReport, MigrateError> {
    let (zephyr, qtest) = connect(
        pool,
        &settings.endpoints,
        &CancelToken::new(),
        settings.page_size,
    )?;
    if let Some(path) = journal.as_ref().filter(|p| !p.is_file()) {
        return Err(MigrateError::config(
            "verify",
            format!("there is no journal {}", path.display()),
        ));
    }
    let options = VerifyOptions {
        workers: settings.workers,
        journal,
        ..VerifyOptions::default()
    };
    verify(&zephyr, &qtest, &settings.mapping, &options)
}

/// Suggests `migrate --repair` when migrated records (attachments included)
/// are missing on qTest: what a repair makes again.
fn repair_hint(report: &crate::migrate::VerifyReport) -> Option<String> {
    use crate::migrate::{DiffKind, RecordKind};
    let missing = RecordKind::ALL
        .into_iter()
        .map(|kind| report.find(kind, DiffKind::Missing).len())
        .sum::<usize>();
    (missing > 0).then(|| {
        format!(
            "hint: {missing} migrated records are missing on qTest; \
             `etlpool migrate --repair` makes them again (with what was under them: \
             a case's runs and files, a run's logs)"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_files_get_the_repair_hint_and_other_differences_none() {
        let report = |record: &str, kind: &str| -> VerifyReport {
            let json = serde_json::json!({"record": record, "kind": kind, "key": "case/PROJ-T1/7",
                                          "expected": "a.png", "actual": "not listed"});
            let mut report = VerifyReport::default();
            report
                .differences
                .push(serde_json::from_value(json).expect("a difference"));
            report
        };
        let hint = repair_hint(&report("attachment", "missing")).expect("a hint");
        assert!(hint.contains("1 migrated records are missing"), "{hint}");
        assert!(hint.contains("etlpool migrate --repair"), "{hint}");
        assert_eq!(repair_hint(&report("attachment", "mismatch")), None);
    }
}
