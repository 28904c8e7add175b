//! A lock-free latency histogram.
//!
//! Many worker threads record into the same origin's histogram, so recording is
//! one relaxed atomic add into a log-linear bucket (16 sub-buckets per power of
//! two: under 7% error), with no lock. Crates like hdrhistogram need `&mut` to
//! record, which would put a mutex on every request.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use serde::Serialize;

const SUB_BITS: u32 = 4;
const SUB: usize = 1 << SUB_BITS;
/// Values up to 2^40 µs (about 12 days) get their own bucket; larger ones land in the last.
const MAX_MSB: u32 = 40;
const BUCKETS: usize = SUB + (MAX_MSB - SUB_BITS + 1) as usize * SUB;

/// Records durations in microseconds.
pub(crate) struct Histogram {
    buckets: Box<[AtomicU64]>,
    sum_us: AtomicU64,
    max_us: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            sum_us: AtomicU64::new(0),
            max_us: AtomicU64::new(0),
        }
    }
}

fn index(v: u64) -> usize {
    if v < SUB as u64 {
        return v as usize;
    }
    let msb = (63 - v.leading_zeros()).min(MAX_MSB);
    let shift = msb - SUB_BITS;
    let sub = ((v >> shift) as usize) & (SUB - 1);
    let i = SUB + (msb - SUB_BITS) as usize * SUB + sub;
    i.min(BUCKETS - 1)
}

/// The largest value that falls into bucket `i`.
fn upper_bound(i: usize) -> u64 {
    if i < SUB {
        return i as u64;
    }
    let msb = ((i - SUB) / SUB) as u32 + SUB_BITS;
    let sub = ((i - SUB) % SUB) as u64;
    let shift = msb - SUB_BITS;
    ((SUB as u64 + sub) << shift) + (1u64 << shift) - 1
}

impl Histogram {
    pub(crate) fn record(&self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.buckets[index(us)].fetch_add(1, Relaxed);
        self.sum_us.fetch_add(us, Relaxed);
        self.max_us.fetch_max(us, Relaxed);
    }

    /// Adds this histogram's counts into `data`.
    pub(crate) fn add_to(&self, data: &mut HistogramData) {
        if data.buckets.len() != BUCKETS {
            data.buckets = vec![0; BUCKETS];
        }
        for (acc, b) in data.buckets.iter_mut().zip(self.buckets.iter()) {
            *acc += b.load(Relaxed);
        }
        data.sum_us += self.sum_us.load(Relaxed);
        data.max_us = data.max_us.max(self.max_us.load(Relaxed));
    }
}

/// Raw counts, merged across origins before percentiles are taken.
#[derive(Default, Clone)]
pub(crate) struct HistogramData {
    buckets: Vec<u64>,
    sum_us: u64,
    max_us: u64,
}

impl HistogramData {
    pub(crate) fn merge(&mut self, other: &HistogramData) {
        if self.buckets.len() != other.buckets.len() {
            self.buckets
                .resize(other.buckets.len().max(self.buckets.len()), 0);
        }
        for (a, b) in self.buckets.iter_mut().zip(&other.buckets) {
            *a += b;
        }
        self.sum_us += other.sum_us;
        self.max_us = self.max_us.max(other.max_us);
    }

    pub(crate) fn summary(&self) -> HistogramSnapshot {
        let count: u64 = self.buckets.iter().sum();
        let quantile = |q: f64| -> u64 {
            if count == 0 {
                return 0;
            }
            // The rank of the q-th value, 1-based, rounded up as nearest-rank does.
            let rank = ((q * count as f64).ceil() as u64).clamp(1, count);
            let mut seen = 0;
            for (i, n) in self.buckets.iter().enumerate() {
                seen += n;
                if seen >= rank {
                    return upper_bound(i).min(self.max_us);
                }
            }
            self.max_us
        };
        HistogramSnapshot {
            count,
            mean_us: self.sum_us.checked_div(count).unwrap_or(0),
            p50_us: quantile(0.50),
            p95_us: quantile(0.95),
            p99_us: quantile(0.99),
            max_us: self.max_us,
        }
    }
}

/// Percentiles of a histogram, in microseconds. Each percentile is the upper edge
/// of its bucket (at most 7% above the true value), never above the maximum.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_tight() {
        let mut prev = None;
        for v in (0..100_000u64).chain([1 << 30, (1 << 40) - 1]) {
            let i = index(v);
            assert!(upper_bound(i) >= v, "value {v} above its bucket {i}");
            if let Some((pv, pi)) = prev {
                assert!(i >= pi, "index not monotonic at {pv}->{v}");
            }
            if v >= 16 {
                let width = upper_bound(i) - v;
                assert!(width as f64 <= v as f64 * 0.07, "bucket too wide at {v}");
            }
            prev = Some((v, i));
        }
        assert_eq!(index(u64::MAX), BUCKETS - 1);
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
        assert_eq!(s.count, 100);
        assert_eq!(s.max_us, 100_000);
        assert_eq!(s.mean_us, 50_500);
        for (got, want) in [(s.p50_us, 50_000), (s.p95_us, 95_000), (s.p99_us, 99_000)] {
            assert!(
                got >= want && got as f64 <= want as f64 * 1.07,
                "{got} vs {want}"
            );
        }
    }

    #[test]
    fn empty_summary_is_zero() {
        assert_eq!(
            HistogramData::default().summary(),
            HistogramSnapshot::default()
        );
    }
}
