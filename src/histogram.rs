//! A lock-free log-linear histogram of durations, shared by the pool's latency
//! metrics and the work queue's job statistics.
//!
//! Many threads record into one histogram, so recording is a relaxed atomic add
//! into a bucket (16 sub-buckets per power of two: at most 1/16 wide), with no
//! lock; crates like hdrhistogram need `&mut` to record, which would put a mutex
//! on every request. Nanoseconds, the whole `u64` range, about 8 KiB.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Bits kept below a value's leading one: 16 buckets per power of two.
const SUB_BITS: u32 = 4;
const SUB: u64 = 1 << SUB_BITS;
/// Values below `2 * SUB` get a bucket each; above, each power of two up to
/// 2^64 gets `SUB` buckets.
const BUCKETS: usize = ((64 - SUB_BITS) as usize) * SUB as usize + SUB as usize;

/// Records durations from many threads at once.
pub(crate) struct Histogram {
    buckets: Box<[AtomicU64]>,
    sum_nanos: AtomicU64,
    max_nanos: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            sum_nanos: AtomicU64::new(0),
            max_nanos: AtomicU64::new(0),
        }
    }
}

impl Histogram {
    pub(crate) fn record(&self, d: Duration) {
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.buckets[bucket(nanos)].fetch_add(1, Relaxed);
        self.sum_nanos.fetch_add(nanos, Relaxed);
        self.max_nanos.fetch_max(nanos, Relaxed);
    }

    /// Adds this histogram's counts into `data`.
    pub(crate) fn add_to(&self, data: &mut HistogramData) {
        data.grow();
        for (acc, b) in data.buckets.iter_mut().zip(self.buckets.iter()) {
            *acc += b.load(Relaxed);
        }
        data.sum_nanos += u128::from(self.sum_nanos.load(Relaxed));
        data.max_nanos = data.max_nanos.max(self.max_nanos.load(Relaxed));
    }

    /// Adds `other`'s counts into this histogram.
    pub(crate) fn absorb(&self, other: &Histogram) {
        for (mine, theirs) in self.buckets.iter().zip(other.buckets.iter()) {
            mine.fetch_add(theirs.load(Relaxed), Relaxed);
        }
        self.sum_nanos
            .fetch_add(other.sum_nanos.load(Relaxed), Relaxed);
        self.max_nanos
            .fetch_max(other.max_nanos.load(Relaxed), Relaxed);
    }
}

/// Plain counts, for merging histograms and reading percentiles.
#[derive(Default, Clone)]
pub(crate) struct HistogramData {
    buckets: Vec<u64>,
    sum_nanos: u128,
    max_nanos: u64,
}

impl HistogramData {
    fn grow(&mut self) {
        if self.buckets.len() != BUCKETS {
            self.buckets = vec![0; BUCKETS];
        }
    }

    pub(crate) fn merge(&mut self, other: &HistogramData) {
        self.grow();
        for (a, b) in self.buckets.iter_mut().zip(&other.buckets) {
            *a += b;
        }
        self.sum_nanos += other.sum_nanos;
        self.max_nanos = self.max_nanos.max(other.max_nanos);
    }

    fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    pub(crate) fn mean(&self) -> Duration {
        match self.sum_nanos.checked_div(u128::from(self.count())) {
            Some(mean) => Duration::from_nanos(u64::try_from(mean).unwrap_or(u64::MAX)),
            None => Duration::ZERO,
        }
    }

    /// The smallest bucket bound with at least `q` of the values at or below
    /// it (nearest rank), never above the largest value seen.
    pub(crate) fn quantile(&self, q: f64) -> Duration {
        let count = self.count();
        if count == 0 {
            return Duration::ZERO;
        }
        // `as` saturates; q is in [0, 1] so the rank is in [1, count].
        let rank = ((q * count as f64).ceil() as u64).clamp(1, count);
        let mut seen = 0;
        for (index, &n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Duration::from_nanos(upper_bound(index).min(self.max_nanos));
            }
        }
        Duration::from_nanos(self.max_nanos)
    }

    pub(crate) fn summary(&self) -> HistogramSnapshot {
        let us = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        HistogramSnapshot {
            count: self.count(),
            mean_us: us(self.mean()),
            p50_us: us(self.quantile(0.50)),
            p95_us: us(self.quantile(0.95)),
            p99_us: us(self.quantile(0.99)),
            max_us: self.max_nanos / 1000,
        }
    }
}

/// Percentiles of a histogram, in microseconds. Each percentile is the upper
/// edge of its bucket (at most 1/16 above the true value), never above the
/// maximum.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct HistogramSnapshot {
    /// Values recorded.
    pub count: u64,
    /// Arithmetic mean.
    pub mean_us: u64,
    /// Median.
    pub p50_us: u64,
    /// 95th percentile.
    pub p95_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// Largest value.
    pub max_us: u64,
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
            if nanos >= 2 * SUB {
                assert!(
                    upper_bound(index) - nanos <= nanos / SUB,
                    "bucket too wide at {nanos}"
                );
            }
            last = index;
        }
        assert_eq!(bucket(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn percentiles_of_known_values() {
        let h = Histogram::default();
        for ms in 1..=100u64 {
            h.record(Duration::from_millis(ms));
        }
        let mut data = HistogramData::default();
        h.add_to(&mut data);
        let s = data.summary();
        assert_eq!((s.count, s.max_us, s.mean_us), (100, 100_000, 50_500));
        assert_eq!(data.quantile(1.0), Duration::from_millis(100));
        for (got, want) in [(s.p50_us, 50_000), (s.p95_us, 95_000), (s.p99_us, 99_000)] {
            assert!(
                got >= want && got as f64 <= want as f64 * 1.07,
                "{got} vs {want}"
            );
        }
    }

    #[test]
    fn absorbing_and_merging_add_up() {
        let (a, b) = (Histogram::default(), Histogram::default());
        a.record(Duration::from_micros(10));
        b.record(Duration::from_micros(30));
        a.absorb(&b);
        let mut data = HistogramData::default();
        a.add_to(&mut data);
        let mut twice = data.clone();
        twice.merge(&data);
        assert_eq!((data.summary().count, twice.summary().count), (2, 4));
        assert_eq!(data.mean(), Duration::from_micros(20));
        assert_eq!(
            HistogramData::default().summary(),
            HistogramSnapshot::default()
        );
    }
}
