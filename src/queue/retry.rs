//! Job-level retries: which errors, how many times, how long to wait.

/// Retries enabled by [`Builder::retry_if`](super::Builder::retry_if).
pub(crate) struct Retry<J, E> {
    /// Extra attempts after the first.
    pub(crate) max_retries: u32,
    pub(crate) classify: Box<dyn Fn(&E) -> bool + Send + Sync>,
    /// `J::clone`, captured where `J: Clone` is known so that queues without
    /// retries need no `Clone` jobs: each attempt but the last gets a copy.
    pub(crate) clone_job: fn(&J) -> J,
}

pub(crate) use crate::backoff::Backoff;
