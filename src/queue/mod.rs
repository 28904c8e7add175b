//! A bounded worker pool on crossbeam-channel, for running many HTTP calls
//! at once through the connection pool.
//!
//! - **Back-pressure**: jobs wait in a bounded channel;
//!   [`submit`](WorkQueue::submit) blocks while it is full, so a producer
//!   streaming pages can never hold more than `capacity` jobs in memory.
//!   [`try_submit`](WorkQueue::try_submit) never blocks and hands the job
//!   back instead.
//! - **Results** arrive on a channel as jobs finish, in no particular order,
//!   one per accepted job, tagged with the [`JobId`] that `submit` returned.
//! - **Failures**: a handler's error is reported, never retried unless
//!   [`Builder::retry_if`] says so (off by default; its docs say why). A
//!   panicking job is caught and reported with its message; the worker goes
//!   on.
//! - **Shutdown**: [`close`](WorkQueue::close) stops intake, runs what is
//!   queued, joins the workers and returns [`QueueStats`].
//!   [`cancel`](WorkQueue::cancel) (or a [`CancelToken`] given to the
//!   builder, which [`signals::install`](crate::signals::install) triggers on
//!   SIGINT and SIGTERM) stops intake at once: jobs being run finish, jobs
//!   still queued come back as [`JobError::NotRun`] with the job inside.
//!   Dropping the queue without closing it cancels it and joins the workers.
//! - **No polling**: workers block in a `select!` on the job channel and the
//!   cancel channels, and backoff waits are interrupted by a cancel.
//!
//! ```
//! use std::convert::Infallible;
//! use etlpool::queue::WorkQueue;
//!
//! let (queue, results) = WorkQueue::builder()
//!     .workers(4)
//!     .capacity(16)
//!     .build(|n: u64| Ok::<_, Infallible>(n * n))?;
//! for n in 1..=100 {
//!     queue.submit(n).expect("the queue is open");
//! }
//! let stats = queue.close();
//! assert_eq!((stats.submitted, stats.succeeded), (100, 100));
//! let sum: u64 = results.iter().filter_map(|r| r.outcome.ok()).sum();
//! assert_eq!(sum, 338_350);
//! # Ok::<(), etlpool::queue::BuildError>(())
//! ```

mod builder;

mod job;
mod retry;
mod stats;
mod worker;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::{self, JoinHandle};

use crossbeam_channel::{Receiver, SendError, Sender, TrySendError, select_biased};
use parking_lot::Mutex;

use crate::cancel::CancelToken;
pub use builder::{BuildError, Builder};
pub use job::{JobError, JobId, JobResult, SubmitError, TrySubmitError};
pub use stats::QueueStats;

use job::Envelope;
use stats::WorkerStats;
use worker::{Handler, Shared, Worker};

/// The receiving end of a queue's results channel, returned by
/// [`Builder::build`]: one [`JobResult`] per accepted job, in the order they
/// finish. Cloneable, to share among consumers.
pub type Results<J, O, E> = Receiver<JobResult<J, O, E>>;

/// A fixed set of worker threads running one handler over submitted jobs.
///
/// Made by [`WorkQueue::builder`]; see the [module docs](self) for the
/// behaviour and an example. `J` is the job type. The queue is `Send` and
/// `Sync`: several threads can submit through `&WorkQueue`, or through
/// [`Submitter`] handles that outlive borrows.
///
/// A handler must not call the blocking [`submit`](Self::submit) on its own
/// queue: with every worker blocked on a full queue, nothing would drain it.
/// Use [`try_submit`](Self::try_submit) there.
pub struct WorkQueue<J> {
    submitter: Submitter<J>,
    workers: Vec<JoinHandle<WorkerStats>>,
}

impl<J> WorkQueue<J> {
    /// Starts configuring a queue.
    pub fn builder<O, E>() -> Builder<J, O, E> {
        Builder::default()
    }

    /// Queues a job, blocking while the queue is full; returns its id.
    ///
    /// Hands the job back if the queue is cancelled (also while this call is
    /// blocked) or closed.
    pub fn submit(&self, job: J) -> Result<JobId, SubmitError<J>> {
        self.submitter.submit(job)
    }

    /// Queues a job if there is room right now; never blocks.
    pub fn try_submit(&self, job: J) -> Result<JobId, TrySubmitError<J>> {
        self.submitter.try_submit(job)
    }

    /// A cloneable handle that submits to this queue from other threads.
    pub fn submitter(&self) -> Submitter<J> {
        self.submitter.clone()
    }

    /// Stops intake at once: jobs being run finish (a retry backoff is cut
    /// short and reports the last error), jobs still queued come back as
    /// [`JobError::NotRun`], and blocked submits return
    /// [`SubmitError::Cancelled`]. Call [`close`](Self::close) afterwards to
    /// join the workers and get the stats.
    pub fn cancel(&self) {
        self.submitter.intake.stop.cancel();
    }

    /// Whether the queue, or the token given to the builder, was cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.submitter.intake.is_cancelled()
    }

    /// Number of worker threads.
    pub fn workers(&self) -> usize {
        self.workers.len()
    }

    /// Stops intake, lets the workers finish every queued job (or hand it
    /// back, if cancelled), joins them and returns what they did.
    ///
    /// A submit blocked on another thread when this is called may still get
    /// its job in; it is then run and counted like the others.
    pub fn close(mut self) -> QueueStats {
        self.shut_down()
    }

    fn shut_down(&mut self) -> QueueStats {
        let intake = &self.submitter.intake;
        // Dropping the last long-lived sender disconnects the job channel
        // once the queue is empty, which is what ends each worker's loop.
        drop(intake.sender.lock().take());
        let mut total = WorkerStats::default();
        for handle in self.workers.drain(..) {
            match handle.join() {
                Ok(stats) => total.merge(&stats),
                Err(_) => log::error!("a queue worker thread panicked outside a job"),
            }
        }
        total.into_stats(intake.submitted.load(Ordering::SeqCst))
    }

    #[allow(clippy::type_complexity, reason = "what `Builder::build` returns")]
    pub(crate) fn spawn<O, E>(
        builder: Builder<J, O, E>,
        handler: Handler<J, O, E>,
    ) -> Result<(Self, Results<J, O, E>), BuildError>
    where
        J: Send + 'static,
        O: Send + 'static,
        E: Send + 'static,
    {
        let (job_tx, job_rx) = crossbeam_channel::bounded(builder.capacity);
        let (result_tx, result_rx) = crossbeam_channel::unbounded();
        let stop = CancelToken::new();
        let external = builder.cancel.unwrap_or_default();
        let shared = Arc::new(Shared {
            handler,
            retry: builder.retry,
            backoff: builder.backoff,
            stop: stop.clone(),
            external: external.clone(),
        });
        let intake = Arc::new(Intake {
            sender: Mutex::new(Some(job_tx)),
            next_id: AtomicU64::new(0),
            submitted: AtomicU64::new(0),
            stop,
            external,
        });
        let mut queue = WorkQueue {
            submitter: Submitter { intake },
            workers: Vec::with_capacity(builder.workers),
        };
        for i in 0..builder.workers {
            let worker = Worker {
                shared: Arc::clone(&shared),
                results: result_tx.clone(),
                stats: WorkerStats::default(),
            };
            let jobs = job_rx.clone();
            let spawned = thread::Builder::new()
                .name(format!("{}-{i}", builder.thread_name))
                .spawn(move || worker.run(jobs));
            // On error, dropping `queue` stops and joins the workers started.
            queue.workers.push(spawned.map_err(BuildError::Spawn)?);
        }
        Ok((queue, result_rx))
    }
}

/// Without [`close`](WorkQueue::close), dropping the queue cancels it: jobs
/// being run finish, queued ones come back as not run, and the workers are
/// joined. Cancelling rather than draining keeps an early return or a panic
/// in the producer from running (and writing) everything still queued.
impl<J> Drop for WorkQueue<J> {
    fn drop(&mut self) {
        if !self.workers.is_empty() {
            self.cancel();
            self.shut_down();
        }
    }
}

impl<J> fmt::Debug for WorkQueue<J> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkQueue")
            .field("workers", &self.workers.len())
            .field("intake", &self.submitter.intake)
            .finish()
    }
}

/// A cloneable handle that submits jobs to a [`WorkQueue`], e.g. from a
/// producer thread that must not borrow the queue.
///
/// Submits through a handle are refused once the queue is closed
/// ([`SubmitError::Closed`]) or cancelled or dropped
/// ([`SubmitError::Cancelled`]).
///
/// ```
/// use std::convert::Infallible;
/// use etlpool::queue::WorkQueue;
///
/// let (queue, results) = WorkQueue::builder().build(|s: String| Ok::<_, Infallible>(s.len()))?;
/// let submitter = queue.submitter();
/// let producer = std::thread::spawn(move || {
///     for word in ["pool", "queue"] {
///         submitter.submit(word.to_owned()).expect("the queue is open");
///     }
/// });
/// producer.join().unwrap();
/// assert_eq!(queue.close().succeeded, 2);
/// assert_eq!(results.iter().map(|r| r.outcome.unwrap()).sum::<usize>(), 9);
/// # Ok::<(), etlpool::queue::BuildError>(())
/// ```
pub struct Submitter<J> {
    intake: Arc<Intake<J>>,
}

impl<J> Clone for Submitter<J> {
    fn clone(&self) -> Self {
        Self {
            intake: Arc::clone(&self.intake),
        }
    }
}

impl<J> fmt::Debug for Submitter<J> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Submitter")
            .field("intake", &self.intake)
            .finish()
    }
}

impl<J> Submitter<J> {
    /// As [`WorkQueue::submit`].
    pub fn submit(&self, job: J) -> Result<JobId, SubmitError<J>> {
        let intake = &*self.intake;
        let (sender, envelope) = intake.admit(job)?;
        let id = envelope.id;
        // Biased so that a cancelled queue refuses the job even when there
        // is room for it.
        select_biased! {
            recv(intake.stop.receiver()) -> _ => Err(SubmitError::Cancelled(envelope.job)),
            recv(intake.external.receiver()) -> _ => Err(SubmitError::Cancelled(envelope.job)),
            send(sender, envelope) -> sent => match sent {
                Ok(()) => Ok(intake.accepted(id)),
                // Only if every worker is gone, which a panic outside a job
                // would take.
                Err(SendError(envelope)) => Err(SubmitError::Closed(envelope.job)),
            },
        }
    }

    /// As [`WorkQueue::try_submit`].
    pub fn try_submit(&self, job: J) -> Result<JobId, TrySubmitError<J>> {
        let intake = &*self.intake;
        let (sender, envelope) = intake.admit(job)?;
        let id = envelope.id;
        // A cancel landing between `admit` and this send is fine: the
        // workers hand back whatever reaches them after a cancel.
        match sender.try_send(envelope) {
            Ok(()) => Ok(intake.accepted(id)),
            Err(TrySendError::Full(envelope)) => Err(TrySubmitError::Full(envelope.job)),
            Err(TrySendError::Disconnected(envelope)) => Err(TrySubmitError::Closed(envelope.job)),
        }
    }
}

/// The submitting side of a queue, shared by the queue and its submitters.
struct Intake<J> {
    /// The only long-lived sender; `None` once the queue is closed. Submits
    /// send on a clone, without the lock, so that a submit blocked on a full
    /// queue does not block `close`.
    sender: Mutex<Option<Sender<Envelope<J>>>>,
    next_id: AtomicU64,
    submitted: AtomicU64,
    stop: CancelToken,
    external: CancelToken,
}

/// A job let in by [`Intake::admit`], with the sender to send it on.
type Admitted<J> = (Sender<Envelope<J>>, Envelope<J>);

impl<J> Intake<J> {
    /// Refuses the job if the queue is cancelled or closed; otherwise gives
    /// it an id and a sender to send it on.
    fn admit(&self, job: J) -> Result<Admitted<J>, SubmitError<J>> {
        if self.is_cancelled() {
            return Err(SubmitError::Cancelled(job));
        }
        let Some(sender) = self.sender.lock().clone() else {
            return Err(SubmitError::Closed(job));
        };
        let id = JobId(self.next_id.fetch_add(1, Ordering::Relaxed));
        Ok((sender, Envelope { id, job }))
    }

    fn accepted(&self, id: JobId) -> JobId {
        self.submitted.fetch_add(1, Ordering::SeqCst);
        id
    }

    fn is_cancelled(&self) -> bool {
        self.stop.is_cancelled() || self.external.is_cancelled()
    }
}

impl<J> fmt::Debug for Intake<J> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Intake")
            .field("open", &self.sender.lock().is_some())
            .field("submitted", &self.submitted.load(Ordering::Relaxed))
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}
