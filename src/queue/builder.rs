//! Configuration of a [`WorkQueue`]: every default lives in `Default`.

use std::error::Error;
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::time::Duration;

use super::retry::{Backoff, Retry};
use super::{CancelToken, Results, WorkQueue};

/// Builds a [`WorkQueue`]; made by [`WorkQueue::builder`].
///
/// The type parameters are the job, the handler's value and the handler's
/// error; they are usually inferred from the handler given to
/// [`build`](Self::build).
#[must_use = "a builder does nothing until `build` is called"]
pub struct Builder<J, O, E> {
    pub(crate) workers: usize,
    pub(crate) capacity: usize,
    pub(crate) thread_name: String,
    pub(crate) cancel: Option<CancelToken>,
    pub(crate) retry: Option<Retry<J, E>>,
    pub(crate) backoff: Backoff,
    _handler: PhantomData<fn(J) -> Result<O, E>>,
}

impl<J, O, E> Default for Builder<J, O, E> {
    fn default() -> Self {
        Self {
            // The pool's default `max_connections_per_host`: one connection
            // per worker, none waiting for a lease.
            workers: 8,
            capacity: 64,
            thread_name: "etlpool-worker".to_owned(),
            cancel: None,
            retry: None,
            backoff: Backoff {
                base: Duration::from_millis(100),
                cap: Duration::from_secs(10),
            },
            _handler: PhantomData,
        }
    }
}

impl<J, O, E> Builder<J, O, E> {
    /// Number of worker threads, each running one job at a time.
    ///
    /// Defaults to 8, the pool's default connections per host, so that each
    /// worker can hold a connection without waiting for a lease. Must be at
    /// least 1.
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = workers;
        self
    }

    /// Number of jobs that can wait in the queue before
    /// [`submit`](WorkQueue::submit) blocks.
    ///
    /// Defaults to 64. With 0, a submit waits until a worker takes the job
    /// itself (a rendezvous). Jobs being run are not counted.
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity;
        self
    }

    /// Prefix of the worker threads' names; worker `i` is `"{name}-{i}"`.
    ///
    /// Defaults to `"etlpool-worker"`. Must not contain a NUL byte.
    pub fn thread_name(mut self, name: impl Into<String>) -> Self {
        self.thread_name = name.into();
        self
    }

    /// A token that cancels the queue as [`WorkQueue::cancel`] does, e.g. one
    /// that [`signals::install`](crate::signals::install) triggers on SIGINT.
    ///
    /// The queue only watches this token; it never cancels it (not even when
    /// dropped), so one token can be shared by several queues. Defaults to
    /// none: only [`WorkQueue::cancel`] and dropping the queue cancel it.
    pub fn cancel_token(mut self, token: CancelToken) -> Self {
        self.cancel = Some(token);
        self
    }

    /// Waits between retries: exponential from `base`, capped at `cap`,
    /// with full jitter (each wait is drawn uniformly between zero and its
    /// ceiling). Only used with [`retry_if`](Self::retry_if).
    ///
    /// Defaults to 100 ms and 10 s. `base` must not exceed `cap`. A cancel
    /// interrupts a wait at once.
    pub fn backoff(mut self, base: Duration, cap: Duration) -> Self {
        self.backoff = Backoff { base, cap };
        self
    }

    /// Checks the settings, starts the workers and returns the queue with
    /// the receiving end of its results channel.
    ///
    /// Every accepted job produces exactly one [`JobResult`](super::JobResult)
    /// on the channel.
    /// The channel is unbounded, so one thread can submit everything and
    /// read the results afterwards without deadlock; drop the receiver if
    /// the results are not wanted (they are then discarded, and still
    /// counted in the stats). The channel disconnects once the queue is
    /// closed or dropped and every result has been sent.
    #[allow(
        clippy::type_complexity,
        reason = "a (sender side, receiver) pair as crossbeam's `bounded()` returns; an alias would hide it"
    )]
    pub fn build<F>(self, handler: F) -> Result<(WorkQueue<J>, Results<J, O, E>), BuildError>
    where
        F: Fn(J) -> Result<O, E> + Send + Sync + 'static,
        J: Send + 'static,
        O: Send + 'static,
        E: Send + 'static,
    {
        self.validate()?;
        WorkQueue::spawn(self, Box::new(handler))
    }

    fn validate(&self) -> Result<(), BuildError> {
        if self.workers == 0 {
            return Err(BuildError::ZeroWorkers);
        }
        if self.thread_name.contains('\0') {
            return Err(BuildError::ThreadName);
        }
        let Backoff { base, cap } = self.backoff;
        if base > cap {
            return Err(BuildError::BackoffBaseAboveCap { base, cap });
        }
        Ok(())
    }
}

impl<J: Clone, O, E> Builder<J, O, E> {
    /// Retries a job up to `max_retries` more times when its handler returns
    /// an error for which `classify` returns `true`, waiting a
    /// [`backoff`](Self::backoff) before each retry. Each attempt but the
    /// last runs on a clone of the job. Panics are never retried.
    ///
    /// Defaults to no retries, on purpose: the HTTP layer below already
    /// retries what is safe to repeat (connect failures; idempotent requests
    /// on transport errors, 429 and 502-504; a POST only on a connect
    /// failure or a 429), so a job-level retry multiplies attempts, and a job that creates a record must never be run again
    /// after a failure whose outcome is unknown (a timeout or reset after the
    /// request was sent): the record may exist already. Such failures are
    /// resolved by looking the record up, not by resending. Classify as
    /// retryable only errors that prove nothing was written.
    ///
    /// ```
    /// use std::time::Duration;
    /// use etlpool::queue::WorkQueue;
    ///
    /// #[derive(Debug)]
    /// enum Failure { Busy, Invalid }
    ///
    /// let (queue, results) = WorkQueue::builder()
    ///     .workers(2)
    ///     .retry_if(3, |e: &Failure| matches!(e, Failure::Busy))
    ///     .backoff(Duration::from_millis(1), Duration::from_millis(10))
    ///     .build(|n: u32| match n {
    ///         0 => Err(Failure::Busy),
    ///         1 => Err(Failure::Invalid),
    ///         _ => Ok(n),
    ///     })?;
    /// queue.submit(0).unwrap();
    /// queue.submit(1).unwrap();
    /// let stats = queue.close();
    /// assert_eq!(stats.retried, 3);
    /// let mut attempts: Vec<u32> = results.iter().map(|r| r.attempts).collect();
    /// attempts.sort();
    /// assert_eq!(attempts, [1, 4]);
    /// # Ok::<(), etlpool::queue::BuildError>(())
    /// ```
    pub fn retry_if<C>(mut self, max_retries: u32, classify: C) -> Self
    where
        C: Fn(&E) -> bool + Send + Sync + 'static,
    {
        self.retry = Some(Retry {
            max_retries,
            classify: Box::new(classify),
            clone_job: J::clone,
        });
        self
    }
}

impl<J, O, E> fmt::Debug for Builder<J, O, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("workers", &self.workers)
            .field("capacity", &self.capacity)
            .field("thread_name", &self.thread_name)
            .field("cancel", &self.cancel)
            .field("max_retries", &self.retry.as_ref().map(|r| r.max_retries))
            .field("backoff", &self.backoff)
            .finish()
    }
}

/// A [`WorkQueue`] could not be built.
#[derive(Debug)]
#[non_exhaustive]
pub enum BuildError {
    /// `workers` was 0.
    ZeroWorkers,
    /// `thread_name` contained a NUL byte.
    ThreadName,
    /// The backoff's `base` was above its `cap`.
    BackoffBaseAboveCap {
        /// The base given.
        base: Duration,
        /// The cap given.
        cap: Duration,
    },
    /// The operating system refused to start a worker thread.
    Spawn(io::Error),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ZeroWorkers => f.write_str("invalid queue setting `workers`: must be at least 1"),
            Self::ThreadName => {
                f.write_str("invalid queue setting `thread_name`: contains a NUL byte")
            }
            Self::BackoffBaseAboveCap { base, cap } => write!(
                f,
                "invalid queue setting `backoff`: base {base:?} is above cap {cap:?}"
            ),
            Self::Spawn(_) => f.write_str("cannot start a queue worker thread"),
        }
    }
}

impl Error for BuildError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            Self::Spawn(e) => Some(e),
            _ => None,
        }
    }
}
