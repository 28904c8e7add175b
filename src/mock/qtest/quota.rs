//! qTest SaaS's request quota: every answer carries `x-ratelimit-remaining-minute` and
//! `x-ratelimit-remaining-month`, and a request over a ceiling is answered 429 without
//! `Retry-After` (qTest publishes neither its ceilings nor a `Retry-After`).

use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

/// Header of the requests left in the current minute.
pub const REMAINING_MINUTE: &str = "x-ratelimit-remaining-minute";
/// Header of the requests left in the month (here: since the mock started).
pub const REMAINING_MONTH: &str = "x-ratelimit-remaining-month";

/// The ceilings of the qTest mock's quota.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct QtestQuota {
    /// Requests per wall-clock minute. Defaults to 1,000,000 (so a client pacing on the
    /// header is not slowed down by default).
    pub per_minute: u64,
    /// Requests per month; the mock's month is its lifetime. Defaults to 1,000,000,000.
    pub per_month: u64,
    /// Share of requests answered 429 anyway (`0.0..=1.0`), as when other clients of the same
    /// account used up the minute. Defaults to 0.
    pub throttle_rate: f64,
}

impl Default for QtestQuota {
    fn default() -> Self {
        QtestQuota {
            per_minute: 1_000_000,
            per_month: 1_000_000_000,
            throttle_rate: 0.0,
        }
    }
}

impl QtestQuota {
    /// Checks the ceilings and the rate; the error names the field.
    pub fn validate(&self) -> Result<(), String> {
        if self.per_minute == 0 || self.per_month == 0 {
            return Err("qtest_quota: per_minute and per_month must be at least 1".into());
        }
        if !(0.0..=1.0).contains(&self.throttle_rate) {
            return Err(format!(
                "qtest_quota.throttle_rate must be within 0..=1, got {}",
                self.throttle_rate
            ));
        }
        Ok(())
    }
}

/// The verdict on one request.
pub(crate) struct QuotaVerdict {
    pub allowed: bool,
    pub remaining_minute: u64,
    pub remaining_month: u64,
}

/// Counts requests against a [`QtestQuota`].
pub(crate) struct Quota {
    limits: QtestQuota,
    // Guards (minute, requests in it, requests since start, the throttle's dice).
    counts: Mutex<(u64, u64, u64, fastrand::Rng)>,
}

impl Quota {
    pub(crate) fn new(limits: QtestQuota, seed: u64) -> Self {
        Quota {
            limits,
            counts: Mutex::new((0, 0, 0, fastrand::Rng::with_seed(seed))),
        }
    }

    /// Counts one request if it fits.
    pub(crate) fn take(&self) -> QuotaVerdict {
        let minute = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() / 60);
        let mut guard = self.counts.lock();
        let (at, in_minute, in_month, rng) = &mut *guard;
        if *at != minute {
            (*at, *in_minute) = (minute, 0);
        }
        let rate = self.limits.throttle_rate;
        let throttled = rate >= 1.0 || (rate > 0.0 && rng.f64() < rate);
        let fits = *in_minute < self.limits.per_minute && *in_month < self.limits.per_month;
        let allowed = fits && !throttled;
        if allowed {
            *in_minute += 1;
            *in_month += 1;
        }
        QuotaVerdict {
            allowed,
            remaining_minute: match throttled {
                true => 0,
                false => self.limits.per_minute.saturating_sub(*in_minute),
            },
            remaining_month: self.limits.per_month.saturating_sub(*in_month),
        }
    }
}
