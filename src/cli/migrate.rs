//! `etlpool migrate` (and the run under `etlpool demo`): a migration with
//! its lock, signals, progress, metrics, summary file and exit code.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use clap::Args;

use super::budget::Budget;
use super::config::{ConnectionArgs, Settings, process_env};
use super::job::{Job, JobSummary, Previous};
use super::monitor::{Monitor, OpsArgs, Watch};
use super::output::OutputPath;
use super::process_metrics::ProcessMetrics;
use super::redis_args::RedisArgs;
use super::{CliError, ExitCode, GlobalArgs};
use crate::cancel::CancelToken;
use crate::fleet::Shard;
use crate::metrics::Snapshot;
use crate::migrate::{
    DEFAULT_MAX_OUTAGE, JournalStore, LockWait, MigrateOptions, Phases, RunHooks, RunProgress,
    RunSummary, SyncOptions, migrate_with,
};
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
    /// The CSV report (one row per record). Each run writes its own, named
    /// after this one and the run's start time: `PROJ.report.csv` becomes
    /// `PROJ.report.20250101T021500Z.csv`. Defaults to `<project>.report.csv`,
    /// or `<project>.plan.csv` with --dry-run.
    #[arg(long, value_name = "PATH.csv")]
    pub report: Option<PathBuf>,
    /// Write the summary as JSON (exit code, status, error, times, counts,
    /// metrics) on every exit, atomically; `-` is stdout.
    #[arg(long, value_name = "PATH")]
    pub summary_json: Option<PathBuf>,
    /// Extract and transform only: write the plan, write nothing to qTest,
    /// create no journal.
    #[arg(long)]
    pub dry_run: bool,
    /// On a project migrated before, update cases changed in Zephyr even
    /// where people changed them on qTest since (otherwise reported as
    /// conflicts and left alone).
    #[arg(long, conflicts_with = "projects", help_heading = "Sync")]
    pub overwrite: bool,
    /// Check that every journaled record (modules, cycles, cases, runs,
    /// logs, files) still exists on qTest and make again what is missing,
    /// with what was under it, correcting the journal. Reads every case and
    /// execution; with --dry-run, only plans. A repair stopped halfway is
    /// finished by the next run.
    #[arg(long, conflicts_with = "projects", help_heading = "Sync")]
    pub repair: bool,
    /// Read every execution instead of those created or changed since the
    /// journal's mark (when the last complete run listed them).
    #[arg(long, conflicts_with = "projects", help_heading = "Sync")]
    pub full: bool,
    /// How far before the journal's mark executions are read again, for a
    /// clock skew with Zephyr. Defaults to 1h.
    #[arg(
        long,
        value_name = "DURATION",
        conflicts_with = "projects",
        help_heading = "Sync"
    )]
    pub overlap: Option<humantime::Duration>,
    /// Migrate only these kinds: modules,cases,cycles,runs,logs.
    #[arg(long, value_name = "KINDS")]
    pub only: Option<Phases>,
    /// When another run holds the journal's lock, wait for it: up to
    /// DURATION (`--wait=10m`), or as long as it takes (`--wait`). Without
    /// it, such a run exits 5 at once.
    #[arg(
        long,
        value_name = "DURATION",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "forever"
    )]
    pub wait: Option<String>,
    /// How long work waits for a service whose circuit breaker is open
    /// (paused, behind one probe) before the run stops with exit 3, e.g.
    /// 10m or 90s. Defaults to 10m, or `[run] max_outage` of the config file.
    #[arg(long, value_name = "DURATION", env = "ETLPOOL_MAX_OUTAGE")]
    pub max_outage: Option<String>,
    /// Migrate the projects of this CSV list instead of one: columns
    /// zephyr_project,qtest_project_id and optionally config,journal,report
    /// (see the README). Without --redis they run here one after another;
    /// with --redis they are queued for `etlpool worker`s.
    #[arg(
        long,
        value_name = "PATH.csv",
        conflicts_with_all = ["journal", "report", "summary_json"],
        help_heading = "Many projects"
    )]
    pub projects: Option<PathBuf>,
    /// Run only the projects of the list whose index (0-based, in list
    /// order) is I modulo N: for a Kubernetes Indexed Job,
    /// `--shard $(JOB_COMPLETION_INDEX)/N`. Not with --redis.
    #[arg(
        long,
        value_name = "I/N",
        requires = "projects",
        env = "ETLPOOL_SHARD",
        help_heading = "Many projects"
    )]
    pub shard: Option<Shard>,
    /// This process's name in `/metrics` (the `worker` label) with
    /// --projects. Defaults to HOST-PID.
    #[arg(
        long,
        value_name = "NAME",
        env = "ETLPOOL_WORKER_NAME",
        help_heading = "Many projects"
    )]
    pub worker_name: Option<String>,
    /// Redis, for journals and locks any machine can take over.
    #[command(flatten)]
    pub redis: RedisArgs,
    /// Metrics, health and progress.
    #[command(flatten)]
    pub ops: OpsArgs,
}

pub(super) fn run(args: &MigrateArgs, global: &GlobalArgs) -> Result<ExitCode, CliError> {
    if args.projects.is_some() {
        if args.shard.is_some() && args.redis.given() {
            return Err(CliError::Usage(
                "--shard splits a list among processes without Redis; with --redis the \
                 workers share the queue instead"
                    .into(),
            ));
        }
        return super::projects::run(args, global);
    }
    let summary = args.summary_json.as_deref().map(OutputPath::new);
    if let Some(out) = &summary {
        out.check("--summary-json")?;
    }
    // From here on every error is one the summary file reports.
    let (lock_wait, bad_wait) = match lock_wait(args.wait.as_deref()) {
        Ok(wait) => (wait, None),
        Err(e) => (LockWait::No, Some(e)),
    };
    let (max_outage, bad_outage) = match max_outage(args.max_outage.as_deref()) {
        Ok(budget) => (budget, None),
        Err(e) => (None, Some(e)),
    };
    let prepared = match args.ops.metrics_output().err().or(bad_wait).or(bad_outage) {
        Some(e) => Err(e),
        None => prepare(args),
    };
    let (prepared, journal_store) = match prepared {
        Ok((settings, options)) => match redis_journal(&args.redis, options) {
            Ok((options, store)) => (Ok((settings, options)), store),
            Err(e) => (Err(e), None),
        },
        Err(e) => (Err(e), None),
    };
    let project = match &prepared {
        Ok((settings, _)) => settings.endpoints.zephyr_project.clone(),
        Err(_) => args.connection.zephyr_project.clone().unwrap_or_default(),
    };
    let runner = Runner {
        command: "migrate",
        project,
        summary,
        ops: &args.ops,
        quiet: global.quiet,
        lock_wait,
        max_outage,
        report_per_run: true,
        journal_store,
        worker: None,
        current: None,
        budget: Budget::join(&args.redis)?,
        sync: sync_options(args),
    };
    runner.run(prepared)
}

/// The sync flags.
fn sync_options(args: &MigrateArgs) -> SyncOptions {
    let mut sync = SyncOptions::default()
        .overwrite(args.overwrite)
        .repair(args.repair)
        .full(args.full);
    if let Some(overlap) = args.overlap {
        sync = sync.overlap(overlap.into());
    }
    sync
}

/// With a Redis, the journal of the one project is kept there: the options
/// name it (for the summary), the file's path names the scratch files.
#[cfg(feature = "redis")]
fn redis_journal(
    redis: &RedisArgs,
    mut options: MigrateOptions,
) -> Result<(MigrateOptions, Option<Arc<dyn JournalStore>>), CliError> {
    let Some(target) = redis.open(None)? else {
        return Ok((options, None));
    };
    let store = crate::fleet::redis::RedisJournal::new(
        &target,
        &options.endpoints.zephyr_project,
        options.journal.clone(),
        redis.lease()?,
    );
    options.journal = PathBuf::from(store.name());
    Ok((options, Some(Arc::new(store))))
}

#[cfg(not(feature = "redis"))]
fn redis_journal(
    redis: &RedisArgs,
    options: MigrateOptions,
) -> Result<(MigrateOptions, Option<Arc<dyn JournalStore>>), CliError> {
    redis.refuse(None)?;
    Ok((options, None))
}

/// `--max-outage`, if given.
pub(super) fn max_outage(budget: Option<&str>) -> Result<Option<Duration>, CliError> {
    Ok(match budget {
        Some(v) => Some(super::config::positive_duration("--max-outage", v)?),
        None => None,
    })
}

pub(super) fn lock_wait(wait: Option<&str>) -> Result<LockWait, CliError> {
    Ok(match wait {
        None => LockWait::No,
        Some("forever") => LockWait::Forever,
        Some(d) => LockWait::For(super::config::positive_duration("--wait", d)?),
    })
}

/// Settings and run options from the command line, the environment and the
/// config file.
fn prepare(args: &MigrateArgs) -> Result<(Settings, MigrateOptions), CliError> {
    prepare_with(
        &args.connection,
        args.journal.clone(),
        args.report.clone(),
        args.dry_run,
        args.only,
    )
}

/// [`prepare`] from its parts (a project of a list has its own).
pub(super) fn prepare_with(
    connection: &ConnectionArgs,
    journal: Option<PathBuf>,
    report: Option<PathBuf>,
    dry_run: bool,
    only: Option<Phases>,
) -> Result<(Settings, MigrateOptions), CliError> {
    let settings = connection.resolve(&process_env)?;
    let project = settings.endpoints.zephyr_project.clone();
    let journal = journal
        .or(settings.journal.clone())
        .unwrap_or_else(|| PathBuf::from(format!("{}.journal.csv", file_stem(&project))));
    let suffix = if dry_run { "plan" } else { "report" };
    let report = report
        .or(settings.report.clone())
        .unwrap_or_else(|| PathBuf::from(format!("{}.{suffix}.csv", file_stem(&project))));
    // The run writes it once both services answered: a typo in its path
    // must fail before that, like one in --summary-json's.
    OutputPath::new(&report).check("--report")?;
    let options = MigrateOptions {
        endpoints: settings.endpoints.clone(),
        mapping: settings.mapping.clone(),
        workers: settings.workers,
        journal,
        report,
        dry_run,
        only: only.unwrap_or_default(),
        page_size: settings.page_size,
        progress: false,
    };
    Ok((settings, options))
}

/// One migration, from prepared settings to an exit code, whose summary and
/// metrics files are written whatever happens.
pub(super) struct Runner<'a> {
    pub(super) command: &'static str,
    pub(super) project: String,
    pub(super) summary: Option<OutputPath>,
    pub(super) ops: &'a OpsArgs,
    pub(super) quiet: bool,
    pub(super) lock_wait: LockWait,
    /// `--max-outage`, which wins over the config file's `[run] max_outage`.
    pub(super) max_outage: Option<Duration>,
    /// Name the report after the run's start (`migrate`), or use it as given (`demo`).
    pub(super) report_per_run: bool,
    /// Where the journal lives; `None`: the file at the options' journal.
    pub(super) journal_store: Option<Arc<dyn JournalStore>>,
    /// The `worker` label of a process that runs project after project.
    pub(super) worker: Option<String>,
    /// The process's `/metrics`, shown this run while it lasts.
    pub(super) current: Option<Arc<ProcessMetrics>>,
    /// The services' rates shared with other processes (`--redis`).
    pub(super) budget: Budget,
    /// `--overwrite`, `--repair`, `--full`, `--overlap`.
    pub(super) sync: SyncOptions,
}

/// How a run ended, before the files are written.
struct Ended {
    code: ExitCode,
    error: Option<CliError>,
    run: Option<RunSummary>,
    pool: Option<Pool>,
    monitor: Option<Monitor>,
}

impl Ended {
    fn failed(error: CliError) -> Ended {
        Ended {
            code: error.exit_code(),
            error: Some(error),
            run: None,
            pool: None,
            monitor: None,
        }
    }
}

impl Runner<'_> {
    pub(super) fn run(
        self,
        prepared: Result<(Settings, MigrateOptions), CliError>,
    ) -> Result<ExitCode, CliError> {
        let metrics_file = self.ops.metrics.as_deref();
        let previous = Previous::read(
            self.summary.as_ref().and_then(OutputPath::file),
            metrics_file,
        );
        let progress = RunProgress::new();
        let job = Arc::new(
            Job::new(
                self.command,
                &self.project,
                Some(progress.clone()),
                previous,
            )
            .with_worker(self.worker.clone()),
        );
        let (paths, ended) = match prepared {
            Ok((settings, options)) => {
                let paths = (
                    options.journal.clone(),
                    options.report.clone(),
                    options.dry_run,
                );
                (paths, self.migrate(&settings, &options, &job, progress))
            }
            Err(e) => ((PathBuf::new(), PathBuf::new(), false), Ended::failed(e)),
        };
        self.write_files(&job, paths, ended)
    }

    fn migrate(
        &self,
        settings: &Settings,
        options: &MigrateOptions,
        job: &Arc<Job>,
        progress: RunProgress,
    ) -> Ended {
        let pool = match Pool::new(settings.pool.clone()) {
            Ok(pool) => pool,
            Err(e) => return Ended::failed(e.into()),
        };
        let ep = &settings.endpoints;
        let services = [
            (ep.zephyr_url.as_str(), ep.zephyr_rate),
            (ep.qtest_url.as_str(), ep.qtest_rate),
        ];
        if let Err(e) = self.budget.install(&pool, &services) {
            return Ended::failed(e);
        }
        if let Some(current) = &self.current {
            current.show(&pool, job);
        }
        let watch = |interval| Watch {
            pool: pool.clone(),
            job: job.clone(),
            progress: Some(progress.clone()),
            interval,
            thresholds: settings.alerts,
            show_progress: !self.quiet,
        };
        let monitor = self
            .ops
            .interval(settings.status_interval)
            .and_then(|interval| Monitor::start(self.ops, watch(interval)));
        let monitor = match monitor {
            Ok(m) => m,
            Err(e) => return Ended::failed(e),
        };
        let cancel = CancelToken::new();
        let signals = match crate::signals::install(cancel.clone()) {
            Ok(s) => s,
            Err(e) => {
                return Ended::failed(CliError::io("installing the SIGINT/SIGTERM handlers", e));
            }
        };
        let mut hooks = RunHooks::default()
            .progress(progress)
            .lock_wait(self.lock_wait)
            .attachments(settings.attachments)
            .max_outage(
                self.max_outage
                    .or(settings.max_outage)
                    .unwrap_or(DEFAULT_MAX_OUTAGE),
            )
            .sync(self.sync);
        if self.report_per_run {
            hooks = hooks.report_per_run(SystemTime::now());
        }
        if let Some(store) = &self.journal_store {
            hooks = hooks.journal_store(store.clone());
        }
        let outcome = migrate_with(&pool, options, &cancel, &hooks);
        let mut ended = match outcome {
            Ok(summary) => Ended {
                code: summary_exit_code(&summary, signals.received()),
                error: None,
                run: Some(summary),
                pool: None,
                monitor: None,
            },
            Err(e) => {
                let e = CliError::from(e);
                let hint = super::explain::auth_hint(&e, &settings.endpoints);
                let mut ended = Ended::failed(e.with_hint(hint));
                if signals.received() {
                    ended.code = ExitCode::Interrupted;
                }
                ended
            }
        };
        ended.pool = Some(pool);
        ended.monitor = Some(monitor);
        ended
    }

    /// The metrics file, the summary file, the summary on the terminal; then
    /// the exit code (or the error, which `run` prints).
    fn write_files(
        &self,
        job: &Job,
        (journal, report, dry_run): (PathBuf, PathBuf, bool),
        ended: Ended,
    ) -> Result<ExitCode, CliError> {
        let Ended {
            code,
            error,
            run,
            pool,
            monitor,
        } = ended;
        let metrics = pool.as_ref().map_or_else(Snapshot::default, Pool::metrics);
        let written = match monitor {
            Some(m) => m.finish(code),
            None => {
                job.end(code);
                match self.ops.metrics.as_deref().map(OutputPath::new) {
                    Some(out) => out.write(job.prometheus(&metrics).as_bytes()),
                    None => Ok(()),
                }
            }
        };
        let printed = run.clone();
        let run = run.unwrap_or_else(|| RunSummary::not_started(dry_run, journal, report, metrics));
        let doc: JobSummary = job.summary(code, error.as_ref().map(super::explain::chain), run);
        let summary_written = match &self.summary {
            Some(out) => {
                // Pretty in a file; one line on stdout among JSON log lines.
                if *out == OutputPath::Stdout && super::logging::json() {
                    serde_json::to_vec(&doc)
                } else {
                    serde_json::to_vec_pretty(&doc)
                }
                .map_err(|e| CliError::io("encoding the summary", e.into()))
                .and_then(|mut json| {
                    json.push(b'\n');
                    out.write(&json)
                })
            }
            None => Ok(()),
        };
        let worked = printed.is_some();
        if let Some(run) = printed {
            self.print(&run, code);
        }
        // Logged, or the error of a run that went well: exit 3 once the work
        // was done (a re-run finds it journaled and writes the files again).
        let outputs =
            super::output::settle(code, [written, summary_written]).map_err(|e| match worked {
                true => CliError::AfterWork(Box::new(e)),
                false => e,
            });
        if let Some(e) = error {
            if code == ExitCode::Interrupted {
                log::warn!("{}", super::explain::chain(&e));
                return Ok(code);
            }
            return Err(e);
        }
        outputs
    }

    /// The human summary: on stdout, or stderr when stdout carries the JSON;
    /// not at all with `-q` after a success.
    fn print(&self, run: &RunSummary, code: ExitCode) {
        if self.quiet && code == ExitCode::Ok {
            return;
        }
        if super::logging::json() {
            super::logging::summary(run, code);
        } else if self.summary == Some(OutputPath::Stdout) {
            eprintln!("{run}");
        } else {
            println!("{run}");
        }
    }
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
pub(super) fn file_stem(project: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_takes_a_duration_or_nothing() {
        assert_eq!(lock_wait(None).unwrap(), LockWait::No);
        assert_eq!(lock_wait(Some("forever")).unwrap(), LockWait::Forever);
        assert_eq!(
            lock_wait(Some("90s")).unwrap(),
            LockWait::For(std::time::Duration::from_secs(90))
        );
        assert_eq!(
            lock_wait(Some("soon")).unwrap_err().exit_code(),
            ExitCode::Usage
        );
    }
}
