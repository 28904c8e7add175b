//! The retry budget of one origin: retries as a share of recent requests.

use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::window::SlidingCounts;
use crate::error::{Error, Result};

/// Settings of the built-in [`WindowBudget`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BudgetPolicy {
    /// Retries may add at most this share of the origin's requests in the
    /// window. Defaults to 0.2 (20 %).
    pub ratio: f64,
    /// The sliding window. Defaults to 10 s.
    pub window: Duration,
    /// Retries per second always allowed, so a cold start can retry. Defaults to 3.
    pub floor_per_sec: f64,
}

impl Default for BudgetPolicy {
    fn default() -> Self {
        BudgetPolicy {
            ratio: 0.2,
            window: Duration::from_secs(10),
            floor_per_sec: 3.0,
        }
    }
}

impl BudgetPolicy {
    pub(crate) fn validate(&self) -> Result<()> {
        if !(0.0..=10.0).contains(&self.ratio) {
            return Err(Error::config(
                "retry_budget.ratio",
                "must be between 0 and 10",
            ));
        }
        if self.window.is_zero() {
            return Err(Error::config(
                "retry_budget.window",
                "must be greater than zero",
            ));
        }
        if !(self.floor_per_sec >= 0.0 && self.floor_per_sec.is_finite()) {
            return Err(Error::config(
                "retry_budget.floor_per_sec",
                "must be a number, not negative",
            ));
        }
        Ok(())
    }
}

/// Caps the retries of one origin so a struggling service is not buried under
/// them. Implement it to share a budget between processes; the built-in one is
/// [`WindowBudget`].
pub trait RetryBudget: Send + Sync + 'static {
    /// Counts a first attempt.
    fn record_request(&self, now: Instant);
    /// Takes one retry from the budget; `false` means none is left.
    fn try_retry(&self, now: Instant) -> bool;
}

/// The in-memory retry budget: a retry is allowed while retries in the sliding
/// window stay under `ratio` x requests, or under the floor.
pub struct WindowBudget {
    ratio: f64,
    floor: f64,
    /// Guards the counts: (requests, retries) over the window.
    counts: Mutex<SlidingCounts>,
}

impl WindowBudget {
    /// An empty budget with `policy`.
    pub fn new(policy: BudgetPolicy) -> Self {
        WindowBudget {
            ratio: policy.ratio,
            floor: policy.floor_per_sec * policy.window.as_secs_f64(),
            counts: Mutex::new(SlidingCounts::new(policy.window)),
        }
    }
}

impl RetryBudget for WindowBudget {
    fn record_request(&self, now: Instant) {
        self.counts.lock().add(now, 1, 0);
    }

    fn try_retry(&self, now: Instant) -> bool {
        let mut counts = self.counts.lock();
        let (requests, retries) = counts.totals(now);
        if (retries as f64) < self.floor.max(self.ratio * requests as f64) {
            counts.add(now, 0, 1);
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_allows_the_floor_then_the_ratio() {
        let budget = WindowBudget::new(BudgetPolicy {
            ratio: 0.5,
            window: Duration::from_secs(10),
            floor_per_sec: 0.2,
        });
        let t = Instant::now();
        // Floor: 0.2/s over 10 s = 2 retries with no requests at all.
        assert!(budget.try_retry(t));
        assert!(budget.try_retry(t));
        assert!(!budget.try_retry(t));
        for _ in 0..10 {
            budget.record_request(t);
        }
        // 50 % of 10 requests = 5 retries in the window, 2 already spent.
        let granted = (0..10).filter(|_| budget.try_retry(t)).count();
        assert_eq!(granted, 3);
        // Once the window has passed, the floor is back.
        assert!(budget.try_retry(t + Duration::from_secs(11)));
    }

    #[test]
    fn validation_names_the_key() {
        let bad = BudgetPolicy {
            window: Duration::ZERO,
            ..BudgetPolicy::default()
        };
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("retry_budget.window")
        );
    }
}
