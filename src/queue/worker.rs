//! The worker loop: take a job, run it with retries, report, repeat.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, select_biased};

use super::retry::{Backoff, Retry};
use super::stats::WorkerStats;
use super::{CancelToken, Envelope, JobError, JobResult};

/// The handler as the workers share it.
pub(crate) type Handler<J, O, E> = Box<dyn Fn(J) -> Result<O, E> + Send + Sync>;

/// What all workers of one queue share, read-only.
pub(crate) struct Shared<J, O, E> {
    pub(crate) handler: Handler<J, O, E>,
    pub(crate) retry: Option<Retry<J, E>>,
    pub(crate) backoff: Backoff,
    /// Cancelled by `WorkQueue::cancel` and by dropping the queue.
    pub(crate) stop: CancelToken,
    /// The builder's token, or a fresh one nobody cancels.
    pub(crate) external: CancelToken,
}

impl<J, O, E> Shared<J, O, E> {
    fn is_cancelled(&self) -> bool {
        self.stop.is_cancelled() || self.external.is_cancelled()
    }

    /// Waits `delay` unless cancelled first; returns whether the wait ran
    /// its course.
    fn sleep_unless_cancelled(&self, delay: Duration) -> bool {
        select_biased! {
            recv(self.stop.receiver()) -> _ => false,
            recv(self.external.receiver()) -> _ => false,
            default(delay) => true,
        }
    }
}

/// One worker thread's state.
pub(crate) struct Worker<J, O, E> {
    pub(crate) shared: Arc<Shared<J, O, E>>,
    pub(crate) results: Sender<JobResult<J, O, E>>,
    pub(crate) stats: WorkerStats,
}

impl<J, O, E> Worker<J, O, E> {
    /// Runs jobs until the intake closes and the channel is empty. After a
    /// cancel it hands back, unrun, every job it takes, including any that a
    /// submit racing the cancel slips in, until the intake closes: so no
    /// accepted job is ever lost.
    pub(crate) fn run(mut self, jobs: Receiver<Envelope<J>>) -> WorkerStats {
        let shared = Arc::clone(&self.shared);
        loop {
            // Biased so that once cancelled, no new job is taken even when
            // the job channel is ready too.
            select_biased! {
                recv(shared.stop.receiver()) -> _ => break,
                recv(shared.external.receiver()) -> _ => break,
                recv(jobs) -> envelope => match envelope {
                    Ok(envelope) => self.process(envelope),
                    Err(_) => return self.stats,
                },
            }
        }
        for envelope in jobs.iter() {
            self.hand_back(envelope);
        }
        self.stats
    }

    fn process(&mut self, envelope: Envelope<J>) {
        if self.shared.is_cancelled() {
            return self.hand_back(envelope);
        }
        let start = Instant::now();
        let mut attempts = 0;
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            self.attempt_all(envelope.job, &mut attempts)
        }))
        // The handler's own panics are caught per attempt; this catches one
        // from the job's `Clone` or the retry classifier, so that user code
        // can never take a worker down.
        .unwrap_or_else(|payload| Err(JobError::Panicked(panic_message(payload))));
        let duration = start.elapsed();

        let stats = &mut self.stats;
        stats.durations.record(duration);
        stats.retried += u64::from(attempts.saturating_sub(1));
        match &outcome {
            Ok(_) => stats.succeeded += 1,
            Err(JobError::Failed(_)) => stats.failed += 1,
            Err(JobError::Panicked(_)) => stats.panicked += 1,
            Err(JobError::NotRun(_)) => stats.not_run += 1,
        }
        self.report(JobResult {
            id: envelope.id,
            outcome,
            attempts,
            duration,
        });
    }

    /// Runs the job once, or more while the handler fails with errors the
    /// retry classifier accepts, counting attempts in `attempts`.
    fn attempt_all(&self, job: J, attempts: &mut u32) -> Result<O, JobError<J, E>> {
        loop {
            *attempts += 1;
            let retry = self.shared.retry.as_ref();
            let Some(retry) = retry.filter(|r| *attempts <= r.max_retries) else {
                return self.attempt(job);
            };
            match self.attempt((retry.clone_job)(&job)) {
                Err(JobError::Failed(e)) if (retry.classify)(&e) => {
                    let delay = self.shared.backoff.delay(*attempts);
                    if !self.shared.sleep_unless_cancelled(delay) {
                        return Err(JobError::Failed(e));
                    }
                    log::debug!("retrying a job after attempt {attempts} failed");
                }
                outcome => return outcome,
            }
        }
    }

    fn attempt(&self, job: J) -> Result<O, JobError<J, E>> {
        // AssertUnwindSafe: the job is moved into the call and gone after a
        // panic; the handler is shared, and whatever state it guards is the
        // caller's to keep consistent, as with `std::thread::spawn`.
        match catch_unwind(AssertUnwindSafe(|| (self.shared.handler)(job))) {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(JobError::Failed(e)),
            Err(payload) => Err(JobError::Panicked(panic_message(payload))),
        }
    }

    fn hand_back(&mut self, envelope: Envelope<J>) {
        self.stats.not_run += 1;
        self.report(JobResult {
            id: envelope.id,
            outcome: Err(JobError::NotRun(envelope.job)),
            attempts: 0,
            duration: Duration::ZERO,
        });
    }

    fn report(&self, result: JobResult<J, O, E>) {
        // Fails only when the caller dropped the receiver: results are then
        // not wanted, and the stats still count them.
        let _ = self.results.send(result);
    }
}

fn panic_message(payload: Box<dyn Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(message) => *message,
        Err(payload) => match payload.downcast_ref::<&str>() {
            Some(message) => (*message).to_owned(),
            None => "panic with a non-string payload".to_owned(),
        },
    }
}
