//! `etlpool worker --redis URL`: takes projects from the queue that
//! `migrate --projects --redis` filled, one at a time, and migrates each
//! with its journal and lock in Redis.
//!
//! For each project: take an entry (first one whose worker stopped
//! heartbeating for a lease, else a new one), take the project's lock
//! (waiting up to a lease for a stalled holder's to expire; if it is still
//! held, the entry is left to that holder), mark it running, heartbeat while
//! it runs, then acknowledge it as done or failed, or queue it again for
//! another attempt (`--max-attempts`). A SIGTERM lets the running project
//! journal what is in flight, queues it again at once (the attempt given
//! back) and exits 130: a rolling update hands projects over without
//! waiting for a lease.
//!
//! Exit code: 130 when stopped by a signal; otherwise (`--drain`) the worst
//! of the projects this worker finished (done or failed for good), 0 when
//! it finished none.

use clap::Args;

use super::config::ConnectionArgs;
use super::monitor::OpsArgs;
use super::redis_args::RedisArgs;
use super::{CliError, ExitCode, GlobalArgs};

/// Options of `etlpool worker`.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// Settings every project shares (tokens, URLs, workers, config file);
    /// each project brings its key and id, and may name its own config.
    #[command(flatten)]
    pub connection: ConnectionArgs,
    /// Where the queue is.
    #[command(flatten)]
    pub redis: RedisArgs,
    /// Exit once no project is waiting or running anywhere (instead of
    /// waiting for more): for a run that ends, e.g. several workers on one
    /// machine or a Kubernetes Job.
    #[arg(long)]
    pub drain: bool,
    /// Attempts per project before it is marked failed (a failed run is
    /// queued again until then). Defaults to 3.
    #[arg(
        long,
        value_name = "N",
        env = "ETLPOOL_MAX_ATTEMPTS",
        default_value_t = 3
    )]
    pub max_attempts: u32,
    /// This worker's name in the queue, in `status` and in `/metrics` (the
    /// `worker` label). Defaults to HOST-PID.
    #[arg(long, value_name = "NAME", env = "ETLPOOL_WORKER_NAME")]
    pub worker_name: Option<String>,
    /// Metrics, health and progress; /metrics shows the project running now.
    #[command(flatten)]
    pub ops: OpsArgs,
}

#[cfg(feature = "redis")]
pub(super) fn run(args: &WorkerArgs, global: &GlobalArgs) -> Result<ExitCode, CliError> {
    fleet::Worker::start(args, global)?.run()
}

#[cfg(not(feature = "redis"))]
pub(super) fn run(args: &WorkerArgs, _: &GlobalArgs) -> Result<ExitCode, CliError> {
    args.redis.refuse(Some("worker"))?;
    Err(super::redis_args::without_redis())
}

#[cfg(feature = "redis")]
mod fleet {
    use std::path::Path;
    use std::sync::Arc;
    use std::time::Duration;

    use super::super::process_metrics::ProcessMetrics;
    use super::super::projects::{ProjectRun, worker_name, worst};
    use super::super::serve::Server;
    use super::*;
    use crate::cancel::CancelToken;
    use crate::fleet::redis::{
        Finish, Heartbeat, ProjectInfo, ProjectQueue, Redis, RedisJournal, RedisLock, Settled,
        Taken,
    };
    use crate::migrate::{JournalStore, LockWait, MigrateError};
    use crate::signals::SignalGuard;

    /// Longest wait for a new entry before looking for stranded ones again.
    const BLOCK: Duration = Duration::from_secs(2);

    /// Longest pause after Redis failed, before trying again.
    const MAX_BACKOFF: Duration = Duration::from_secs(30);

    pub(super) struct Worker<'a> {
        args: &'a WorkerArgs,
        redis: Redis,
        queue: ProjectQueue,
        lease: Duration,
        name: String,
        runs: ProjectRun<'a>,
        metrics: Arc<ProcessMetrics>,
        _server: Option<Server>,
        cancel: CancelToken,
        signals: SignalGuard,
        /// An attempt whose end Redis didn't take (it was unreachable):
        /// ended again before the next project, so an attempt that went
        /// well isn't run again after a lease, and one Redis forgot is told.
        unsettled: Option<Unsettled>,
    }

    /// The end of an attempt, as [`Worker::finish`] takes it.
    struct Unsettled {
        taken: Taken,
        started: ProjectInfo,
        how: Finish,
        outcome: &'static str,
        finished: Option<ExitCode>,
    }

    impl<'a> Worker<'a> {
        /// Checks the options, connects (exit 4 when Redis can't be
        /// reached), serves `/metrics`, installs the signal handlers.
        pub(super) fn start(args: &'a WorkerArgs, global: &GlobalArgs) -> Result<Self, CliError> {
            let redis = args
                .redis
                .open(Some("etlpool worker"))?
                .ok_or_else(|| CliError::Usage("etlpool worker needs --redis".into()))?;
            let lease = args.redis.lease()?;
            if args.max_attempts == 0 {
                return Err(CliError::Usage("--max-attempts: at least 1".into()));
            }
            args.ops.metrics_output()?;
            let name = worker_name(args.worker_name.as_deref());
            let metrics = ProcessMetrics::new("worker", &name);
            let budget = super::super::budget::Budget::join(&args.redis)?;
            metrics.show_budget(&budget);
            let server = match args.ops.metrics_addr {
                Some(addr) => Some(metrics.serve(addr)?),
                None => None,
            };
            let queue = ProjectQueue::connect(&redis)?;
            let cancel = CancelToken::new();
            let signals = crate::signals::install(cancel.clone())
                .map_err(|e| CliError::io("installing the SIGINT/SIGTERM handlers", e))?;
            // `lock_wait` stays `No`: the worker takes the lock before the run.
            let runs = ProjectRun {
                budget: budget.clone(),
                ..ProjectRun::for_process(
                    &args.connection,
                    &args.ops,
                    global,
                    name.clone(),
                    metrics.clone(),
                )
            };
            Ok(Worker {
                args,
                redis,
                queue,
                lease,
                name,
                runs,
                metrics,
                _server: server,
                cancel,
                signals,
                unsettled: None,
            })
        }

        pub(super) fn run(mut self) -> Result<ExitCode, CliError> {
            log::info!(
                "worker {} taking projects from {} (lease {})",
                self.name,
                self.redis.shown(),
                humantime::format_duration(self.lease)
            );
            let mut code = ExitCode::Ok;
            let mut backoff = Duration::from_secs(1);
            loop {
                if self.stopped() {
                    return Ok(ExitCode::Interrupted);
                }
                match self.next() {
                    Ok(Some(finished)) => {
                        backoff = Duration::from_secs(1);
                        if finished == ExitCode::Interrupted {
                            return Ok(ExitCode::Interrupted);
                        }
                        code = worst(code, finished);
                    }
                    Ok(None) => {
                        backoff = Duration::from_secs(1);
                        if self.args.drain && self.queue.is_drained()? {
                            return Ok(code);
                        }
                    }
                    Err(e) => {
                        log::error!(
                            "{}; trying again in {}",
                            super::super::explain::chain(&e),
                            humantime::format_duration(backoff)
                        );
                        if self.cancel.wait_timeout(backoff) {
                            return Ok(ExitCode::Interrupted);
                        }
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                        if let Ok(queue) = ProjectQueue::connect(&self.redis) {
                            self.queue = queue;
                        }
                    }
                }
            }
        }

        fn stopped(&self) -> bool {
            self.cancel.is_cancelled() || self.signals.received()
        }

        /// Takes and runs one project; `Some(code)` for a project finished
        /// for good (done or failed) or interrupted, `None` when there was
        /// nothing to do (or the project was left or queued again).
        fn next(&mut self) -> Result<Option<ExitCode>, CliError> {
            if let Some(u) = self.unsettled.take() {
                return self.finish(&u.taken, &u.started, u.how, (u.outcome, u.finished));
            }
            let Some(taken) = self.queue.take(&self.name, self.lease, BLOCK)? else {
                return Ok(None);
            };
            let key = taken.project.zephyr_project.clone();
            let store = RedisJournal::new(&self.redis, &key, Default::default(), self.lease);
            // A stalled holder's lock expires within a lease of its last refresh.
            let wait = LockWait::For(self.lease + self.lease / 2);
            let lock = match store.take_lock(wait, Some(&self.cancel)) {
                Ok(lock) => lock,
                Err(e @ MigrateError::Locked { .. }) => {
                    log::warn!("project {key}: {e}; leaving it to that worker");
                    return Ok(None);
                }
                // Stopped while waiting: the entry is reclaimed after a lease.
                Err(_) if self.stopped() => return Ok(Some(ExitCode::Interrupted)),
                Err(e) => return Err(e.into()),
            };
            if taken.reclaimed {
                log::warn!(
                    "project {key}: its worker stopped heartbeating for {}; taking it over",
                    humantime::format_duration(self.lease)
                );
            }
            let info = self.queue.start(&taken, &self.name, self.lease)?;
            if info.attempts > self.args.max_attempts {
                // Only runs whose worker died leave attempts uncounted.
                let why = format!(
                    "{} attempts started and none finished (its workers died?)",
                    info.attempts - 1
                );
                log::error!("project {key}: {why}; marking it failed");
                let how = Finish::Failed(ExitCode::Partial.code(), Some(why));
                return self.finish(&taken, &info, how, ("failed", Some(ExitCode::Partial)));
            }
            let (code, error) = self.migrate(&taken, lock);
            self.settle(&taken, &info, code, error)
        }

        /// Runs the project under `lock`, heartbeating.
        fn migrate(&self, taken: &Taken, lock: RedisLock) -> (ExitCode, Option<String>) {
            let _heartbeat = Heartbeat::start(&self.redis, taken, &self.name, self.lease);
            let key = &taken.project.zephyr_project;
            let lock = parking_lot::Mutex::new(Some(lock));
            let store_for = |scratch: &Path| {
                let mut store = RedisJournal::new(&self.redis, key, scratch.to_owned(), self.lease);
                // The run asks once; a second store would take the lock itself.
                if let Some(lock) = lock.lock().take() {
                    store = store.with_lock(lock);
                }
                let name = store.name().into();
                (Arc::new(store) as Arc<dyn JournalStore>, name)
            };
            self.runs.run(&taken.project, Some(&store_for))
        }

        /// Acknowledges the attempt as its exit code says.
        fn settle(
            &mut self,
            taken: &Taken,
            started: &ProjectInfo,
            code: ExitCode,
            error: Option<String>,
        ) -> Result<Option<ExitCode>, CliError> {
            let key = &taken.project.zephyr_project;
            let attempts = started.attempts;
            let (how, outcome, finished) = match code {
                ExitCode::Ok => (Finish::Done, "done", Some(code)),
                ExitCode::Interrupted => (Finish::Release, "released", Some(code)),
                _ if attempts < self.args.max_attempts => {
                    log::warn!(
                        "project {key}: attempt {attempts} of {} exited {}; queued again",
                        self.args.max_attempts,
                        code.code()
                    );
                    (Finish::Retry(code.code(), error), "retried", None)
                }
                _ => (Finish::Failed(code.code(), error), "failed", Some(code)),
            };
            self.finish(taken, started, how, (outcome, finished))
        }

        /// Ends the attempt `started` as `how`, counted as `outcome` and
        /// returning `finished`; an attempt another worker took over (this
        /// one stalled past its lease) changes nothing and counts as
        /// `superseded`; a project Redis forgot is `lost` and exits 4. An
        /// end Redis didn't take is kept and ended again first thing.
        fn finish(
            &mut self,
            taken: &Taken,
            started: &ProjectInfo,
            how: Finish,
            (outcome, finished): (&'static str, Option<ExitCode>),
        ) -> Result<Option<ExitCode>, CliError> {
            let key = &taken.project.zephyr_project;
            let settled = match self.queue.finish(taken, started, how.clone()) {
                Ok(settled) => settled,
                Err(e) => {
                    self.unsettled = Some(Unsettled {
                        taken: taken.clone(),
                        started: started.clone(),
                        how,
                        outcome,
                        finished,
                    });
                    return Err(e.into());
                }
            };
            match settled {
                Settled::Recorded => {
                    self.metrics.finished(outcome);
                    Ok(finished)
                }
                Settled::Superseded => {
                    log::warn!(
                        "project {key}: attempt {} is no longer this worker's (its lease ran \
                         out and another worker took the project over); its state is left to \
                         that worker",
                        started.attempts
                    );
                    self.metrics.finished("superseded");
                    Ok(finished.filter(|c| *c == ExitCode::Interrupted))
                }
                Settled::Lost => {
                    log::error!(
                        "project {key}: {} no longer knows it (it restarted without \
                         persistence, or the keys were deleted), nor what else was queued: \
                         queue the list again (`etlpool migrate --projects LIST --redis URL`)",
                        self.redis.shown()
                    );
                    self.metrics.finished("lost");
                    Ok(Some(ExitCode::Fatal))
                }
            }
        }
    }
}
