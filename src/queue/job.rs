//! What goes into the queue and what comes out of it.

use std::error::Error;
use std::fmt;
use std::time::Duration;

/// The id the queue gives a job when it accepts it.
///
/// Unique within one queue; ids are not necessarily contiguous (a submit that
/// is refused may use one up) nor in the order results arrive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JobId(pub(crate) u64);

impl JobId {
    /// The id as a number.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// A job with its id, as it travels through the channel.
pub(crate) struct Envelope<J> {
    pub(crate) id: JobId,
    pub(crate) job: J,
}

/// The result of one job, sent on the results channel when it finishes.
#[derive(Debug)]
#[non_exhaustive]
pub struct JobResult<J, O, E> {
    /// The id [`submit`](super::WorkQueue::submit) returned for the job.
    pub id: JobId,
    /// What the handler returned, or why there is no value.
    pub outcome: Result<O, JobError<J, E>>,
    /// How many times the handler was called: 1 without retries, 0 if the
    /// job was not run.
    pub attempts: u32,
    /// Time from the first attempt's start to the last one's end, backoff
    /// waits included; zero if the job was not run.
    pub duration: Duration,
}

/// Why a job has no value.
#[derive(Debug)]
pub enum JobError<J, E> {
    /// The handler returned this error (on the last attempt, if retried).
    Failed(E),
    /// The handler panicked; this is the panic message.
    Panicked(String),
    /// The queue was cancelled before the job started; here is the job back,
    /// untouched, so it can be recorded or submitted again.
    NotRun(J),
}

impl<J, E> JobError<J, E> {
    /// The handler's error, if that is what this is.
    pub fn handler_error(&self) -> Option<&E> {
        match self {
            Self::Failed(e) => Some(e),
            _ => None,
        }
    }

    /// Whether the job was never started because of a cancel.
    pub fn is_not_run(&self) -> bool {
        matches!(self, Self::NotRun(_))
    }

    /// The job, if it was not run.
    pub fn into_job(self) -> Option<J> {
        match self {
            Self::NotRun(job) => Some(job),
            _ => None,
        }
    }
}

impl<J, E> fmt::Display for JobError<J, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The handler's error is the `source()`, not part of this message,
        // so a report walking the chain does not print it twice.
        match self {
            Self::Failed(_) => f.write_str("job failed"),
            Self::Panicked(message) => write!(f, "job panicked: {message}"),
            Self::NotRun(_) => f.write_str("job not run: queue cancelled"),
        }
    }
}

impl<J: fmt::Debug, E: Error + 'static> Error for JobError<J, E> {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            Self::Failed(e) => Some(e),
            _ => None,
        }
    }
}

/// A blocking [`submit`](super::WorkQueue::submit) was refused; the job is
/// handed back, as crossbeam's `SendError` does.
#[derive(PartialEq, Eq, Clone, Copy)]
pub enum SubmitError<J> {
    /// The queue was closed: no more intake.
    Closed(J),
    /// The queue was cancelled: no more intake.
    Cancelled(J),
}

/// A [`try_submit`](super::WorkQueue::try_submit) was refused; the job is
/// handed back, as crossbeam's `TrySendError` does.
#[derive(PartialEq, Eq, Clone, Copy)]
pub enum TrySubmitError<J> {
    /// The queue is full; a blocking submit would have waited.
    Full(J),
    /// The queue was closed: no more intake.
    Closed(J),
    /// The queue was cancelled: no more intake.
    Cancelled(J),
}

impl<J> SubmitError<J> {
    /// The job that was not accepted.
    pub fn into_inner(self) -> J {
        match self {
            Self::Closed(job) | Self::Cancelled(job) => job,
        }
    }

    /// Whether the refusal is due to a cancel (as opposed to a close).
    pub fn is_cancelled(&self) -> bool {
        matches!(self, Self::Cancelled(_))
    }
}

impl<J> TrySubmitError<J> {
    /// The job that was not accepted.
    pub fn into_inner(self) -> J {
        match self {
            Self::Full(job) | Self::Closed(job) | Self::Cancelled(job) => job,
        }
    }

    /// Whether the queue was only full (trying again later may succeed).
    pub fn is_full(&self) -> bool {
        matches!(self, Self::Full(_))
    }

    /// Whether the refusal is due to a cancel.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, Self::Cancelled(_))
    }
}

impl<J> From<SubmitError<J>> for TrySubmitError<J> {
    fn from(e: SubmitError<J>) -> Self {
        match e {
            SubmitError::Closed(job) => Self::Closed(job),
            SubmitError::Cancelled(job) => Self::Cancelled(job),
        }
    }
}

impl<J> SubmitError<J> {
    /// The same refusal without the job, to share the messages.
    fn without_job(&self) -> TrySubmitError<()> {
        match self {
            Self::Closed(_) => TrySubmitError::Closed(()),
            Self::Cancelled(_) => TrySubmitError::Cancelled(()),
        }
    }
}

// Debug does not require `J: Debug` (jobs may hold anything), as in crossbeam.
impl<J> fmt::Debug for TrySubmitError<J> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full(_) => f.write_str("Full(..)"),
            Self::Closed(_) => f.write_str("Closed(..)"),
            Self::Cancelled(_) => f.write_str("Cancelled(..)"),
        }
    }
}

impl<J> fmt::Display for TrySubmitError<J> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Full(_) => "submitting to a full queue",
            Self::Closed(_) => "submitting to a closed queue",
            Self::Cancelled(_) => "submitting to a cancelled queue",
        })
    }
}

impl<J> fmt::Debug for SubmitError<J> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.without_job(), f)
    }
}

impl<J> fmt::Display for SubmitError<J> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.without_job(), f)
    }
}

impl<J> Error for SubmitError<J> {}
impl<J> Error for TrySubmitError<J> {}
