//! Job-level retries: which errors, how many times, how long to wait.

use std::time::Duration;

/// Retries enabled by [`Builder::retry_if`](super::Builder::retry_if).
pub(crate) struct Retry<J, E> {
    /// Extra attempts after the first.
    pub(crate) max_retries: u32,
    pub(crate) classify: Box<dyn Fn(&E) -> bool + Send + Sync>,
    /// `J::clone`, captured where `J: Clone` is known so that queues without
    /// retries need no `Clone` jobs: each attempt but the last gets a copy.
    pub(crate) clone_job: fn(&J) -> J,
}

/// Exponential backoff with full jitter: the wait before retry `n` is drawn
/// uniformly from `[0, min(cap, base * 2^(n-1))]`, so workers that failed
/// together do not retry together.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Backoff {
    pub(crate) base: Duration,
    pub(crate) cap: Duration,
}

impl Backoff {
    /// The wait before retry number `retry` (1 for the first retry).
    pub(crate) fn delay(&self, retry: u32) -> Duration {
        let ceiling = 1u32
            .checked_shl(retry.saturating_sub(1))
            .and_then(|factor| self.base.checked_mul(factor))
            .map_or(self.cap, |d| d.min(self.cap));
        let ceiling = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(fastrand::u64(0..=ceiling))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_to_the_cap_and_never_exceed_the_ceiling() {
        let backoff = Backoff {
            base: Duration::from_millis(100),
            cap: Duration::from_secs(1),
        };
        for retry in 0..200 {
            let ceiling = match retry {
                0 | 1 => Duration::from_millis(100),
                2 => Duration::from_millis(200),
                3 => Duration::from_millis(400),
                4 => Duration::from_millis(800),
                _ => Duration::from_secs(1),
            };
            assert!(backoff.delay(retry) <= ceiling, "retry {retry}");
        }
        let zero = Backoff {
            base: Duration::ZERO,
            cap: Duration::ZERO,
        };
        assert_eq!(zero.delay(7), Duration::ZERO);
    }
}
