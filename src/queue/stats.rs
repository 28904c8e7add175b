//! Counters and duration statistics, kept per worker and merged at close.

use std::fmt;
use std::time::Duration;

use crate::histogram::{Histogram, HistogramData};

/// What a queue did, returned by [`close`](super::WorkQueue::close).
///
/// Every accepted job ends in exactly one of `succeeded`, `failed`,
/// `panicked` and `not_run`, so after a close they add up to `submitted`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueueStats {
    /// Jobs accepted by `submit` or `try_submit`.
    pub submitted: u64,
    /// Jobs whose handler returned `Ok`.
    pub succeeded: u64,
    /// Jobs whose handler returned `Err` on their last attempt.
    pub failed: u64,
    /// Extra attempts made by retries, over all jobs (not the number of jobs
    /// retried).
    pub retried: u64,
    /// Jobs whose handler panicked.
    pub panicked: u64,
    /// Jobs handed back unrun because the queue was cancelled.
    pub not_run: u64,
    /// Mean duration of the jobs that ran (see [`JobResult::duration`](super::JobResult::duration)).
    pub mean: Duration,
    /// 95th percentile of the same durations, rounded up by at most 1/16
    /// (the histogram's resolution, which keeps memory fixed however many
    /// jobs run).
    pub p95: Duration,
}

impl QueueStats {
    /// Jobs that got a result: `succeeded + failed + panicked + not_run`.
    pub fn finished(&self) -> u64 {
        self.succeeded + self.failed + self.panicked + self.not_run
    }
}

impl fmt::Display for QueueStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} submitted, {} succeeded, {} failed, {} panicked, {} not run, {} retries; \
             mean {:?}, p95 {:?}",
            self.submitted,
            self.succeeded,
            self.failed,
            self.panicked,
            self.not_run,
            self.retried,
            self.mean,
            self.p95
        )
    }
}

/// One worker's tally; merged into [`QueueStats`] when the workers are joined.
#[derive(Default)]
pub(crate) struct WorkerStats {
    pub(crate) succeeded: u64,
    pub(crate) failed: u64,
    pub(crate) retried: u64,
    pub(crate) panicked: u64,
    pub(crate) not_run: u64,
    pub(crate) durations: Histogram,
}

impl WorkerStats {
    pub(crate) fn merge(&mut self, other: &WorkerStats) {
        self.succeeded += other.succeeded;
        self.failed += other.failed;
        self.retried += other.retried;
        self.panicked += other.panicked;
        self.not_run += other.not_run;
        self.durations.absorb(&other.durations);
    }

    pub(crate) fn into_stats(self, submitted: u64) -> QueueStats {
        let mut durations = HistogramData::default();
        self.durations.add_to(&mut durations);
        QueueStats {
            submitted,
            succeeded: self.succeeded,
            failed: self.failed,
            retried: self.retried,
            panicked: self.panicked,
            not_run: self.not_run,
            mean: durations.mean(),
            p95: durations.quantile(0.95),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_tallies_merge_into_the_stats() {
        let mut a = WorkerStats::default();
        let mut b = WorkerStats::default();
        for ms in 1..=50 {
            a.succeeded += 1;
            a.durations.record(Duration::from_millis(ms));
        }
        for ms in 51..=100 {
            b.failed += 1;
            b.durations.record(Duration::from_millis(ms));
        }
        a.merge(&b);
        let stats = a.into_stats(100);
        assert_eq!(
            (stats.submitted, stats.succeeded, stats.failed),
            (100, 50, 50)
        );
        assert_eq!(stats.mean, Duration::from_micros(50_500));
        assert!(
            stats.p95 >= Duration::from_millis(95)
                && stats.p95 <= Duration::from_millis(95) * 17 / 16
        );
    }
}
