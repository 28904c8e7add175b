//! Exponential backoff with full jitter, shared by the HTTP retry policy and the
//! work queue's job retries.

use std::time::Duration;

/// Exponential backoff with full jitter: the wait before retry `n` is drawn
/// uniformly from `[0, min(cap, base * 2^(n-1))]`, so workers that failed
/// together do not retry together.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// The ceiling of the first wait.
    pub base: Duration,
    /// The largest wait.
    pub cap: Duration,
}

impl Backoff {
    /// The wait before retry number `retry` (1 for the first retry).
    pub fn delay(&self, retry: u32) -> Duration {
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
