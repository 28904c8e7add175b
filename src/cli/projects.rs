//! `etlpool migrate --projects projects.csv`: a list of projects, run here
//! one after another (all of them, or a `--shard I/N`), or with `--redis`
//! queued for `etlpool worker`s; and the run of one project of a list,
//! which a worker makes too.
//!
//! Exit code of a list: the worst of its projects', worst first: 130
//! (interrupted: the list stops there), 2, 4, 3, 5, 0. Enqueueing exits 0
//! once every project is queued (or already there).

use std::path::PathBuf;
use std::sync::Arc;

use super::config::{ConnectionArgs, Settings};
use super::migrate::{MigrateArgs, Runner, prepare_with};
use super::monitor::OpsArgs;
use super::process_metrics::ProcessMetrics;
use super::{CliError, ExitCode, GlobalArgs, LogFormat};
use crate::cancel::CancelToken;
use crate::fleet::{Project, ProjectList};
use crate::migrate::{JournalStore, LockWait, Phases};

/// How bad an exit code is for a list; the list exits with its worst.
fn severity(code: ExitCode) -> u8 {
    match code {
        ExitCode::Ok => 0,
        ExitCode::Locked => 1,
        ExitCode::Partial | ExitCode::Differences | ExitCode::Pending => 2,
        ExitCode::Fatal => 3,
        ExitCode::Usage => 4,
        ExitCode::Interrupted => 5,
    }
}

/// The worse of two exit codes.
pub(super) fn worst(a: ExitCode, b: ExitCode) -> ExitCode {
    if severity(b) > severity(a) { b } else { a }
}

/// This process's name in a fleet: `--worker-name`, else `HOST-PID`.
pub(super) fn worker_name(given: Option<&str>) -> String {
    match given {
        Some(name) => name.to_string(),
        None => {
            let me = crate::migrate::LockHolder::me();
            format!(
                "{}-{}",
                me.host.as_deref().unwrap_or("host"),
                me.pid.unwrap_or(0)
            )
        }
    }
}

/// How each project of a list (or of a worker) is run.
pub(super) struct ProjectRun<'a> {
    /// The command's own settings; each project overrides its key, id and
    /// (if it names one) config file.
    pub(super) connection: &'a ConnectionArgs,
    /// Monitoring of each run: progress lines, alerts, `--metrics`; the
    /// process's `--metrics-addr` is served by `current` instead.
    pub(super) ops: OpsArgs,
    pub(super) quiet: bool,
    pub(super) log_format: LogFormat,
    pub(super) dry_run: bool,
    pub(super) only: Option<Phases>,
    pub(super) lock_wait: LockWait,
    /// `--max-outage`, if given (else the project's config or the default).
    pub(super) max_outage: Option<std::time::Duration>,
    pub(super) worker: String,
    pub(super) current: Option<Arc<ProcessMetrics>>,
    /// The services' rates shared with other processes (`worker --redis`).
    pub(super) budget: super::budget::Budget,
}

/// A project's journal: the file (the list's column or the default), or a
/// store made for the file's path (its name replaces it in the summary).
pub(super) type StoreFor<'s> = &'s dyn Fn(&std::path::Path) -> (Arc<dyn JournalStore>, PathBuf);

impl<'a> ProjectRun<'a> {
    /// The runs of one process (`migrate --projects`, `worker`): its own
    /// `--metrics-addr` is served by `current`, so each run gets none, and
    /// every run's settings start from a full, waited-for-nothing run.
    pub(super) fn for_process(
        connection: &'a ConnectionArgs,
        ops: &OpsArgs,
        global: &GlobalArgs,
        worker: String,
        current: Arc<ProcessMetrics>,
    ) -> Self {
        ProjectRun {
            connection,
            ops: OpsArgs {
                metrics_addr: None,
                ..ops.clone()
            },
            quiet: global.quiet,
            log_format: global.log_format,
            dry_run: false,
            only: None,
            lock_wait: LockWait::No,
            max_outage: None,
            worker,
            current: Some(current),
            budget: super::budget::Budget::none(),
        }
    }
}

impl ProjectRun<'_> {
    /// Runs `project` to its exit code, and what stopped it if something
    /// did (already printed).
    pub(super) fn run(
        &self,
        project: &Project,
        store: Option<StoreFor<'_>>,
    ) -> (ExitCode, Option<String>) {
        let mut connection = self.connection.clone();
        connection.zephyr_project = Some(project.zephyr_project.clone());
        connection.qtest_project = Some(project.qtest_project_id);
        if project.config.is_some() {
            connection.config.clone_from(&project.config);
        }
        let mut journal_store = None;
        let prepared = prepare_with(
            &connection,
            project.journal.clone(),
            project.report.clone(),
            self.dry_run,
            self.only,
        )
        .and_then(|(settings, options)| {
            shared_files(project, &settings, store.is_some())?;
            Ok((settings, options))
        })
        .map(|(settings, mut options)| {
            if let Some(store_for) = store {
                let (store, name) = store_for(&options.journal);
                journal_store = Some(store);
                options.journal = name;
            }
            (settings, options)
        });
        say(
            self.quiet,
            &format!(
                "project {} -> qTest project {}",
                project.zephyr_project, project.qtest_project_id
            ),
        );
        let runner = Runner {
            command: "migrate",
            project: project.zephyr_project.clone(),
            summary: None,
            ops: &self.ops,
            quiet: self.quiet,
            lock_wait: self.lock_wait,
            max_outage: self.max_outage,
            report_per_run: true,
            journal_store,
            worker: Some(self.worker.clone()),
            current: self.current.clone(),
            budget: self.budget.clone(),
            sync: Default::default(),
        };
        match runner.run(prepared) {
            Ok(code) => (code, None),
            Err(e) => {
                super::logging::fatal(self.log_format, "migrate", &e);
                (e.exit_code(), Some(super::explain::chain(&e)))
            }
        }
    }
}

/// Refuses `[run] journal` and `report` of the command's config file for a
/// project of a list without a config of its own: like `--journal` and
/// `--report`, they would be every such project's files (with a Redis
/// journal, `journal` only names scratch files, each project's in turn).
fn shared_files(project: &Project, settings: &Settings, redis: bool) -> Result<(), CliError> {
    if project.config.is_some() {
        return Ok(());
    }
    let shared = [
        (
            "journal",
            project.journal.is_none() && !redis && settings.journal.is_some(),
        ),
        (
            "report",
            project.report.is_none() && settings.report.is_some(),
        ),
    ];
    match shared.iter().find(|(_, shared)| *shared) {
        Some((what, _)) => Err(CliError::Usage(format!(
            "project {}: `[run] {what}` in the config file would be the {what} of every \
             project of the list; give each project its own in the list's `{what}` column \
             (or a config file of its own)",
            project.zephyr_project
        ))),
        None => Ok(()),
    }
}

/// `migrate --projects`.
pub(super) fn run(args: &MigrateArgs, global: &GlobalArgs) -> Result<ExitCode, CliError> {
    let path = args.projects.as_deref().unwrap_or(std::path::Path::new(""));
    let list = ProjectList::read(path)?;
    let lock_wait = super::migrate::lock_wait(args.wait.as_deref())?;
    let max_outage = super::migrate::max_outage(args.max_outage.as_deref())?;
    args.ops.metrics_output()?;
    if args.redis.given() {
        return enqueue(args, &list);
    }
    let mine = list.shard(args.shard);
    let worker = worker_name(args.worker_name.as_deref());
    let current = ProcessMetrics::new("migrate", &worker);
    let _server = match args.ops.metrics_addr {
        Some(addr) => Some(current.serve(addr)?),
        None => None,
    };
    let cancel = CancelToken::new();
    // Between two projects, a signal stops the list instead of the process.
    let signals = crate::signals::install(cancel.clone())
        .map_err(|e| CliError::io("installing the SIGINT/SIGTERM handlers", e))?;
    let runs = ProjectRun {
        dry_run: args.dry_run,
        only: args.only,
        lock_wait,
        max_outage,
        ..ProjectRun::for_process(&args.connection, &args.ops, global, worker, current.clone())
    };
    let mut code = ExitCode::Ok;
    let mut results = Vec::new();
    for project in &mine {
        if cancel.is_cancelled() || signals.received() {
            code = ExitCode::Interrupted;
            break;
        }
        let (this, _) = runs.run(project, None);
        current.finished(if this == ExitCode::Ok {
            "done"
        } else {
            "failed"
        });
        results.push((project.zephyr_project.as_str(), this));
        code = worst(code, this);
        if this == ExitCode::Interrupted {
            break;
        }
    }
    let shown: Vec<String> = results
        .iter()
        .map(|(key, c)| format!("{key} {}", c.code()))
        .collect();
    say(
        global.quiet && code == ExitCode::Ok,
        &format!(
            "projects: {} of {} run{} (exit codes: {}); exit {}",
            results.len(),
            mine.len(),
            args.shard
                .map(|s| format!(
                    " in shard {}/{} of {}",
                    s.index,
                    s.count,
                    list.projects.len()
                ))
                .unwrap_or_default(),
            if shown.is_empty() {
                "none".to_string()
            } else {
                shown.join(", ")
            },
            code.code()
        ),
    );
    Ok(code)
}

/// A line about the list: on stderr, or a log line among JSON logs; nothing
/// when `quiet`.
pub(super) fn say(quiet: bool, text: &str) {
    if quiet {
    } else if super::logging::json() {
        log::info!(target: "etlpool::projects", "{text}");
    } else {
        eprintln!("{text}");
    }
}

/// `migrate --projects --redis`: queues the list and reports what it did.
#[cfg(feature = "redis")]
fn enqueue(args: &MigrateArgs, list: &ProjectList) -> Result<ExitCode, CliError> {
    let Some(redis) = args.redis.open(None)? else {
        return Err(CliError::Usage(
            "--projects with Redis needs its URL".into(),
        ));
    };
    if list.projects.iter().any(|p| p.journal.is_some()) {
        log::warn!(
            "the list's journal column is not used with Redis: each project's journal is \
             kept in Redis"
        );
    }
    let mut queue = crate::fleet::redis::ProjectQueue::connect(&redis)?;
    let done = queue.enqueue(&list.projects)?;
    let kept: Vec<String> = done
        .kept
        .iter()
        .map(|(key, state)| format!("{key} ({})", state.as_str()))
        .collect();
    println!(
        "queued {} project{} on {}{}",
        done.queued.len(),
        if done.queued.len() == 1 { "" } else { "s" },
        redis.shown(),
        if kept.is_empty() {
            String::new()
        } else {
            format!("; left as they are: {}", kept.join(", "))
        }
    );
    Ok(ExitCode::Ok)
}

#[cfg(not(feature = "redis"))]
fn enqueue(_: &MigrateArgs, _: &ProjectList) -> Result<ExitCode, CliError> {
    Err(super::redis_args::without_redis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_exits_with_its_worst_project() {
        let all = [
            ExitCode::Ok,
            ExitCode::Locked,
            ExitCode::Partial,
            ExitCode::Fatal,
            ExitCode::Usage,
            ExitCode::Interrupted,
        ];
        for (i, a) in all.iter().enumerate() {
            for (j, b) in all.iter().enumerate() {
                assert_eq!(worst(*a, *b), all[i.max(j)], "{a:?} {b:?}");
            }
        }
    }
}
