//! Counters and duration statistics, kept per worker and merged at close.

use std::fmt;
use std::time::Duration;

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
        self.durations.merge(&other.durations);
    }

    pub(crate) fn into_stats(self, submitted: u64) -> QueueStats {
        QueueStats {
            submitted,
            succeeded: self.succeeded,
            failed: self.failed,
            retried: self.retried,
            panicked: self.panicked,
            not_run: self.not_run,
            mean: self.durations.mean(),
            p95: self.durations.quantile(0.95),
        }
    }
}

/// Bits of a value kept below its leading one: 16 buckets per power of two,
/// so a bucket is at most 1/16 of its values wide.
const SUB_BITS: u32 = 4;
const SUB: u64 = 1 << SUB_BITS;
/// Values below `2 * SUB` nanoseconds get a bucket each; above, each power
/// of two up to 2^64 gets `SUB` buckets.
const BUCKETS: usize = ((64 - SUB_BITS) as usize) * SUB as usize + SUB as usize;

/// A log-linear histogram of nanoseconds with a fixed ~8 KiB footprint.
pub(crate) struct Histogram {
    counts: Box<[u64]>,
    count: u64,
    sum_nanos: u128,
    max_nanos: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            counts: vec![0; BUCKETS].into_boxed_slice(),
            count: 0,
            sum_nanos: 0,
            max_nanos: 0,
        }
    }
}

impl Histogram {
    pub(crate) fn record(&mut self, d: Duration) {
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.counts[bucket(nanos)] += 1;
        self.count += 1;
        self.sum_nanos += u128::from(nanos);
        self.max_nanos = self.max_nanos.max(nanos);
    }

    fn merge(&mut self, other: &Histogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(other.counts.iter()) {
            *mine += theirs;
        }
        self.count += other.count;
        self.sum_nanos += other.sum_nanos;
        self.max_nanos = self.max_nanos.max(other.max_nanos);
    }

    fn mean(&self) -> Duration {
        match self.sum_nanos.checked_div(u128::from(self.count)) {
            Some(mean) => Duration::from_nanos(u64::try_from(mean).unwrap_or(u64::MAX)),
            None => Duration::ZERO,
        }
    }

    /// The smallest bucket bound with at least `q` of the values at or below
    /// it, never above the largest value seen.
    fn quantile(&self, q: f64) -> Duration {
        if self.count == 0 {
            return Duration::ZERO;
        }
        // `as` saturates; q is in [0, 1] so the rank is in [1, count].
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0;
        for (index, &n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Duration::from_nanos(upper_bound(index).min(self.max_nanos));
            }
        }
        Duration::from_nanos(self.max_nanos)
    }
}

fn bucket(nanos: u64) -> usize {
    let bits = u64::BITS - nanos.leading_zeros();
    if bits <= SUB_BITS + 1 {
        return nanos as usize;
    }
    let shift = bits - SUB_BITS - 1;
    // The top SUB_BITS + 1 bits, leading one included: in [SUB, 2 * SUB).
    let top = nanos >> shift;
    (shift as usize) * SUB as usize + top as usize
}

/// The largest value that falls in bucket `index`.
fn upper_bound(index: usize) -> u64 {
    let index = index as u64;
    if index < 2 * SUB {
        return index;
    }
    let shift = index / SUB - 1;
    let top = index % SUB + SUB;
    // In u128: the last bucket's bound is 2^64 - 1, whose `+ 1` overflows u64.
    let bound = ((u128::from(top) + 1) << shift) - 1;
    u64::try_from(bound).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_bounds_contain_their_values() {
        let mut last = 0;
        for nanos in (0..5000).chain([u64::MAX / 3, u64::MAX - 1, u64::MAX]) {
            let index = bucket(nanos);
            assert!(index < BUCKETS);
            assert!(index >= last && index <= last + 1 || nanos > 5000);
            assert!(upper_bound(index) >= nanos);
            if index > 0 {
                assert!(upper_bound(index - 1) < nanos);
            }
            last = index;
        }
        assert_eq!(bucket(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn quantiles_are_within_a_sixteenth() {
        let mut h = Histogram::default();
        for ms in 1..=100 {
            h.record(Duration::from_millis(ms));
        }
        let p95 = h.quantile(0.95);
        assert!(p95 >= Duration::from_millis(95), "{p95:?}");
        assert!(p95 <= Duration::from_millis(95) * 17 / 16, "{p95:?}");
        assert_eq!(h.quantile(1.0), Duration::from_millis(100));
        assert_eq!(h.mean(), Duration::from_micros(50_500));
        assert_eq!(Histogram::default().quantile(0.95), Duration::ZERO);
    }
}
