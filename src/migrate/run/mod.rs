//! The migration run: lookups, then folders to modules, cases with steps,
//! cycle folders and cycles, then runs and logs, through the work queue and
//! the pool, resumable from the journal.
//!
//! Every record goes through one path ([`Shared::ensure`]): the journal first;
//! then a lookup on qTest (by the `Zephyr Key` field, by name and position under
//! the parent, by the key in a cycle's description, by case in a cycle's runs,
//! by end time and status in a run's logs); a create only if both come up
//! empty. A create whose outcome is unknown is looked up again, in its
//! parent's listing, before it is created again, for as many rounds as the
//! retry policy allows. So a crash or a fault at any point neither duplicates
//! nor loses a record.
//!
//! A record whose parent is not migrated waits for the next run (a `waiting`
//! row), and so do a run's logs after one that is missing. While a service's
//! circuit breaker is open, the work that needs it waits for up to the
//! outage budget ([`RunHooks::max_outage`]) instead of failing.

mod attachments;
mod case_cache;
mod case_info;
mod cases;
mod cycles;
mod executions;
mod folders;
mod outage;
mod patience;
mod progress;
mod repair;
pub(crate) mod setup;
mod shared;
mod spool;
mod step_files;
mod stop;
mod summary;
mod sync;

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use parking_lot::RwLock;

pub use attachments::{AttachmentOptions, DEFAULT_MAX_ATTACHMENT_BYTES};
pub use outage::DEFAULT_MAX_OUTAGE;
pub use progress::{PROGRESS_TARGET, ProgressSnapshot, RunProgress, whole_secs};
pub use setup::{Endpoints, QtestAuth, connect};
pub use summary::RunSummary;
pub use sync::SyncOptions;

use self::case_cache::CaseCache;
use self::cases::CaseIndex;
use self::cycles::CycleIndex;
use self::outage::Outages;
use self::patience::Patience;
use self::shared::{Output, Shared, Tally};
use crate::cancel::CancelToken;
use crate::error::Error;
use crate::migrate::error::MigrateError;
use crate::migrate::journal::{FileJournal, JournalStore};
use crate::migrate::lock::LockWait;
use crate::migrate::mapping::MappingConfig;
use crate::migrate::record::RecordKind;
use crate::migrate::report::{Plan, Report};
use crate::pool::Pool;
use crate::queue::{JobError, WorkQueue};
use crate::zephyr::Record;

/// Which kinds of record a run migrates (`--only`). Defaults to all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Phases {
    /// `TEST_CASE` folders to modules.
    pub modules: bool,
    /// Test cases.
    pub cases: bool,
    /// `TEST_CYCLE` folders and test cycles.
    pub cycles: bool,
    /// Test runs.
    pub runs: bool,
    /// Test logs.
    pub logs: bool,
}

impl Default for Phases {
    fn default() -> Self {
        Phases {
            modules: true,
            cases: true,
            cycles: true,
            runs: true,
            logs: true,
        }
    }
}

impl std::str::FromStr for Phases {
    type Err = String;

    /// Parses `modules,cases,cycles,runs,logs` (any subset).
    fn from_str(s: &str) -> Result<Self, String> {
        let mut p = Phases {
            modules: false,
            cases: false,
            cycles: false,
            runs: false,
            logs: false,
        };
        for part in s.split(',').map(str::trim).filter(|x| !x.is_empty()) {
            match part {
                "modules" => p.modules = true,
                "cases" => p.cases = true,
                "cycles" => p.cycles = true,
                "runs" => p.runs = true,
                "logs" => p.logs = true,
                other => {
                    return Err(format!(
                        "unknown kind `{other}` (use modules, cases, cycles, runs, logs)"
                    ));
                }
            }
        }
        if p == Phases::none() {
            return Err("name at least one of modules, cases, cycles, runs, logs".into());
        }
        Ok(p)
    }
}

impl Phases {
    fn none() -> Self {
        Phases {
            modules: false,
            cases: false,
            cycles: false,
            runs: false,
            logs: false,
        }
    }
}

/// Everything a run needs besides the pool.
#[derive(Debug, Clone)]
pub struct MigrateOptions {
    /// The two services.
    pub endpoints: Endpoints,
    /// Name maps and field labels.
    pub mapping: MappingConfig,
    /// Concurrent jobs (size the pool's per-host cap to this).
    pub workers: usize,
    /// The journal; a re-run with the same journal resumes.
    pub journal: PathBuf,
    /// The CSV report, or the plan in a dry run.
    pub report: PathBuf,
    /// Extract and transform only; write the plan, write nothing to qTest.
    pub dry_run: bool,
    /// Which kinds to migrate.
    pub only: Phases,
    /// Zephyr page size asked for.
    pub page_size: u64,
    /// Log a progress line at INFO (target [`PROGRESS_TARGET`]) every 30 s.
    /// To draw your own, pass a [`RunProgress`] in [`RunHooks`] and read it.
    pub progress: bool,
}

/// What a caller can attach to a run besides its options: a progress to
/// watch, how long to wait for the journal's lock, and how long to wait out
/// an outage. Defaults to a private progress, no waiting for the lock, and
/// [`DEFAULT_MAX_OUTAGE`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RunHooks {
    /// Counted by the run; read it from another thread.
    pub progress: RunProgress,
    /// How long to wait when another run holds the journal's lock.
    pub lock_wait: LockWait,
    /// Name the report (or plan) after [`MigrateOptions::report`] and this
    /// start time ([`per_run_path`](crate::migrate::report::per_run_path)),
    /// taking the name when the file is created, so that runs started in
    /// the same second (one queued behind the other) never share a file.
    /// The summary says which name it got. Defaults to `None`: the report
    /// is `MigrateOptions::report` itself.
    pub report_per_run: Option<std::time::SystemTime>,
    /// The outage budget: how long work waits for a service whose circuit
    /// breaker is open (behind one probe) before the run stops, with exit 3
    /// and a message naming the service (`--max-outage`). Defaults to
    /// [`DEFAULT_MAX_OUTAGE`] (10 minutes).
    pub max_outage: std::time::Duration,
    /// Where the journal lives and how it is locked. Defaults to `None`: a
    /// [`FileJournal`] at [`MigrateOptions::journal`].
    pub journal_store: Option<Arc<dyn JournalStore>>,
    /// Whether and up to what size attachments are migrated. Defaults to
    /// [`AttachmentOptions::default`].
    pub attachments: AttachmentOptions,
    /// How a project migrated before is synced (overwrite, repair, the
    /// executions' overlap window). Defaults to [`SyncOptions::default`].
    pub sync: SyncOptions,
}

impl Default for RunHooks {
    fn default() -> Self {
        RunHooks {
            progress: RunProgress::default(),
            lock_wait: LockWait::default(),
            report_per_run: None,
            max_outage: DEFAULT_MAX_OUTAGE,
            journal_store: None,
            attachments: AttachmentOptions::default(),
            sync: SyncOptions::default(),
        }
    }
}

impl RunHooks {
    /// Watch the run through `progress`.
    pub fn progress(mut self, progress: RunProgress) -> Self {
        self.progress = progress;
        self
    }

    /// Wait for the journal's lock as `wait` says. Defaults to [`LockWait::No`].
    pub fn lock_wait(mut self, wait: LockWait) -> Self {
        self.lock_wait = wait;
        self
    }

    /// A report of its own for a run started at `at` (see
    /// [`RunHooks::report_per_run`]).
    pub fn report_per_run(mut self, at: std::time::SystemTime) -> Self {
        self.report_per_run = Some(at);
        self
    }

    /// Migrate attachments as `options` say (see [`RunHooks::attachments`]).
    pub fn attachments(mut self, options: AttachmentOptions) -> Self {
        self.attachments = options;
        self
    }

    /// Wait out an outage for up to `budget` (see [`RunHooks::max_outage`]).
    pub fn max_outage(mut self, budget: std::time::Duration) -> Self {
        self.max_outage = budget;
        self
    }

    /// Sync a project migrated before as `sync` says.
    pub fn sync(mut self, sync: SyncOptions) -> Self {
        self.sync = sync;
        self
    }

    /// Keep the journal in `store` (see [`RunHooks::journal_store`]).
    pub fn journal_store(mut self, store: Arc<dyn JournalStore>) -> Self {
        self.journal_store = Some(store);
        self
    }
}

/// How often `progress: true` logs a line.
const PROGRESS_LOG_INTERVAL: std::time::Duration = std::time::Duration::from_secs(30);

/// Runs a migration. Fails before any work (bad project, authentication,
/// unreachable service, journal locked); after that, failures become report
/// rows and the summary says whether everything was done.
pub fn migrate(
    pool: &Pool,
    opts: &MigrateOptions,
    cancel: &CancelToken,
) -> Result<RunSummary, MigrateError> {
    migrate_with(pool, opts, cancel, &RunHooks::default())
}

/// [`migrate`] with [`RunHooks`]. Nothing is created before the services
/// answered: the journal's lock is taken first (and removed again on a failed
/// start), the journal and the report only once both projects were found. A
/// dry run takes no lock and creates no journal. A journal that can't be
/// written stops the run (see [`Journal::failure`](crate::migrate::Journal::failure)).
pub fn migrate_with(
    pool: &Pool,
    opts: &MigrateOptions,
    cancel: &CancelToken,
    hooks: &RunHooks,
) -> Result<RunSummary, MigrateError> {
    let start = Instant::now();
    let store = hooks
        .journal_store
        .clone()
        .unwrap_or_else(|| Arc::new(FileJournal::new(&opts.journal)));
    let lock = match opts.dry_run {
        true => None,
        false => Some(store.lock(hooks.lock_wait, Some(cancel))?),
    };
    // The run's own stop: follows `cancel`, and a failed journal pulls it too.
    let stop = stop::Linked::follow(cancel);
    let (zephyr, qtest) = setup::connect(pool, &opts.endpoints, stop.token(), opts.page_size)?;
    let outages = Outages::new(hooks.max_outage, stop.token().clone(), &zephyr, &qtest);
    let retry = qtest.api().retry_policy().clone();
    let patience = Patience {
        outages: &outages,
        retry: &retry,
        cancel: stop.token(),
    };
    // An outage that outlasted the budget here stops the run with its own
    // line, not as the bare `Cancelled` that a signal gives.
    let stopped = |e: MigrateError| match outages.stopped() {
        Some(why) => MigrateError::Stopped {
            message: why.to_string(),
        },
        None => e,
    };
    let catalog =
        setup::catalog(&zephyr, &qtest, opts.mapping.clone(), &patience).map_err(stopped)?;
    setup::check_approval(&qtest, &opts.mapping, opts.only.logs, &patience).map_err(stopped)?;
    let journal = match lock {
        Some(lock) => store.open(lock)?,
        None => store.read_only()?,
    };
    journal.stop_on_failure(stop.token().clone());
    let out = match (opts.dry_run, hooks.report_per_run) {
        (true, None) => Output::Plan(Plan::create(&opts.report)?),
        (true, Some(at)) => Output::Plan(Plan::create_per_run(&opts.report, at)?),
        (false, None) => Output::Report(Report::create(&opts.report)?),
        (false, Some(at)) => Output::Report(Report::create_per_run(&opts.report, at)?),
    };
    let progress = hooks.progress.clone();
    progress.start(!opts.only.logs);
    let shared = Arc::new(Shared {
        zephyr,
        qtest,
        catalog,
        journal,
        out,
        planned: RwLock::default(),
        tally: Tally::default(),
        cancel: stop.token().clone(),
        progress: progress.clone(),
        output_errors: AtomicU64::new(0),
        defaults: Default::default(),
        cases: CaseCache::new(&opts.endpoints.zephyr_project),
        approving: Default::default(),
        attachment_options: hooks.attachments,
        outages,
        retry,
        sync: sync::SyncState::new(hooks.sync),
    });
    let jobs = JobTally::default();
    let lines = opts
        .progress
        .then(|| stop::every(PROGRESS_LOG_INTERVAL, move || progress.snapshot().log()));
    let outcome = phases(&shared, opts, &jobs);
    drop(lines);
    finish(shared, opts, start, outcome, &jobs, pool)
}

/// Not-run and panicked jobs of every phase.
#[derive(Default)]
struct JobTally {
    not_run: AtomicU64,
    panicked: AtomicU64,
}

fn phases(s: &Arc<Shared>, opts: &MigrateOptions, jobs: &JobTally) -> Result<(), MigrateError> {
    let only = opts.only;
    if repair::start(s) {
        repair::repair(s)?;
    }
    if only.modules {
        folders::modules(s, opts.workers)?;
    }
    if only.cases {
        let index = Arc::new(CaseIndex::default());
        let since = sync::since(s, sync::CASES_MARK);
        let started = sync::now_secs();
        listed(
            s,
            opts.workers,
            jobs,
            // The offset list's total counts every case: no size when filtered.
            (
                RecordKind::Case,
                "cases",
                since.is_none().then_some("/testcases"),
            ),
            move |sh, case| cases::migrate_case(sh, &index, case),
            |visit| s.zephyr.test_cases_updated_after(since.as_deref(), visit),
        )?;
        let complete =
            jobs.not_run.load(Ordering::Relaxed) == 0 && jobs.panicked.load(Ordering::Relaxed) == 0;
        // A failed file of a case is listed again with its case.
        let kinds = [RecordKind::Case, RecordKind::Attachment];
        sync::advance(s, sync::CASES_MARK, started, &kinds, complete);
    }
    if only.cycles || only.logs {
        // Environment names and test plans, for cycles' descriptions and logs' notes.
        s.catalog.context_or_init(|| setup::zephyr_context(s));
    }
    if only.cycles {
        folders::cycle_folders(s, opts.workers)?;
        let index = Arc::new(CycleIndex::default());
        listed(
            s,
            opts.workers,
            jobs,
            (RecordKind::Cycle, "cycles", Some("/testcycles")),
            move |sh, cycle| cycles::migrate_cycle(sh, &index, cycle),
            |visit| s.zephyr.test_cycles(visit),
        )?;
    }
    if only.runs || only.logs {
        parallel(
            s,
            opts.workers,
            jobs,
            move |sh, job| executions::migrate_run(sh, only, job),
            |submit| executions::produce(s, submit),
        )?;
        let complete = jobs.not_run.load(Ordering::Relaxed) == 0
            && jobs.panicked.load(Ordering::Relaxed) == 0
            && only.runs
            && only.logs;
        sync::advance_executions(s, complete);
    }
    let everything = only == Phases::default();
    let complete = everything
        && jobs.not_run.load(Ordering::Relaxed) == 0
        && jobs.panicked.load(Ordering::Relaxed) == 0;
    repair::finish(s, complete);
    Ok(())
}

/// A phase with one job per item of a Zephyr list: `list` visits its pages.
type PageVisitor<'a, J> = &'a mut dyn FnMut(Vec<Record<J>>) -> crate::Result<()>;

/// One job per readable item of a Zephyr list; an item that can't be read is
/// reported as a failed record of `kind` and the list goes on. `what` is the
/// kind, the phase's name and the offset list whose `total` sizes the phase.
fn listed<J: Send + 'static>(
    s: &Arc<Shared>,
    workers: usize,
    jobs: &JobTally,
    (kind, phase, path): (RecordKind, &str, Option<&str>),
    handle: impl Fn(&Shared, J) + Send + Sync + 'static,
    list: impl Fn(PageVisitor<'_, J>) -> crate::Result<()>,
) -> Result<(), MigrateError> {
    let total = match path {
        Some(path) => s.patiently(|| s.zephyr.count(path, &[]))?,
        None => None,
    };
    s.progress.phase(phase, total);
    parallel(s, workers, jobs, handle, |submit| {
        s.resumably(&list, |record| match record {
            Ok(item) => submit(item),
            Err(bad) => {
                s.unreadable(kind, &bad);
                Ok(())
            }
        })?;
        Ok(())
    })
}

/// Runs `handle` over the jobs `produce` submits, on `workers` threads; waits
/// for all of them. Submitting blocks while the queue is full.
fn parallel<J: Send + 'static>(
    s: &Arc<Shared>,
    workers: usize,
    jobs: &JobTally,
    handle: impl Fn(&Shared, J) + Send + Sync + 'static,
    produce: impl FnOnce(&mut dyn FnMut(J) -> crate::Result<()>) -> Result<(), MigrateError>,
) -> Result<(), MigrateError> {
    let shared = s.clone();
    let (queue, results) = WorkQueue::builder()
        .workers(workers)
        .capacity(workers * 2)
        .cancel_token(s.cancel.clone())
        .build(move |job: J| {
            handle(&shared, job);
            Ok::<(), Infallible>(())
        })
        .map_err(|e| MigrateError::config("workers", e.to_string()))?;
    std::thread::scope(|scope| {
        scope.spawn(|| {
            for result in results.iter() {
                match result.outcome {
                    Err(JobError::NotRun(_)) => {
                        jobs.not_run.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(JobError::Panicked(message)) => {
                        jobs.panicked.fetch_add(1, Ordering::Relaxed);
                        log::error!("a migration job panicked: {message}");
                    }
                    _ => {}
                }
            }
        });
        let produced =
            produce(&mut |job| queue.submit(job).map(drop).map_err(|_| Error::Cancelled));
        queue.close();
        produced
    })
}

fn finish(
    shared: Arc<Shared>,
    opts: &MigrateOptions,
    start: Instant,
    outcome: Result<(), MigrateError>,
    jobs: &JobTally,
    pool: &Pool,
) -> Result<RunSummary, MigrateError> {
    shared.progress.finish();
    let journal_failed = shared
        .journal
        .failure()
        .map(|why| format!("{why}; free space (or fix the file system) and run again to resume"));
    // The run's own reasons to stop come before a signal's.
    let stopped = journal_failed.or_else(|| shared.outages.stopped().map(str::to_owned));
    let interrupted = stopped.is_none()
        && (shared.cancel.is_cancelled()
            || matches!(outcome, Err(MigrateError::Http(Error::Cancelled))));
    let mut aborted = match &outcome {
        _ if stopped.is_some() => stopped,
        Err(MigrateError::Http(Error::Cancelled)) | Ok(()) => None,
        Err(e) => Some(crate::error::error_chain(e)),
    };
    if let Some(why) = &aborted {
        log::error!("migration stopped early: {why}");
    }
    let breaker_open = shared.zephyr.api().breaker_open() || shared.qtest.api().breaker_open();
    let (records, failed) = RunSummary::counts(&shared.tally);
    let output_errors = shared.output_errors.load(Ordering::Relaxed);
    let Ok(shared) = Arc::try_unwrap(shared) else {
        return Err(MigrateError::io(
            "closing the journal",
            std::io::Error::other("a worker still holds the run's state"),
        ));
    };
    let report = shared.out.path().to_owned();
    // After the work, a file that can't be closed stops nothing more: the
    // run is reported as stopped early (exit 3), and the next one resumes.
    let mut after_work = |closed: Result<(), MigrateError>| {
        if let Err(e) = closed {
            let why = crate::error::error_chain(&e);
            log::error!("{why}");
            aborted.get_or_insert(why);
        }
    };
    let failed_already = shared.journal.failure().is_some();
    let closed = shared.journal.close();
    if !failed_already {
        after_work(closed);
    }
    after_work(match shared.out {
        Output::Report(r) => r.finish().map(drop),
        Output::Plan(p) => p.finish().map(drop),
    });
    Ok(RunSummary {
        dry_run: opts.dry_run,
        interrupted,
        aborted,
        breaker_open,
        elapsed_secs: start.elapsed().as_secs_f64(),
        waiting: records.values().map(|c| c.waiting).sum(),
        records,
        failed: failed + output_errors,
        not_run: jobs.not_run.load(Ordering::Relaxed),
        panicked: jobs.panicked.load(Ordering::Relaxed),
        journal: opts.journal.clone(),
        report,
        metrics: pool.metrics(),
    })
}
