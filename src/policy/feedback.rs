//! What an answer told about the origin's rate budget, as the client parsed it
//! for the [`Limiter`](super::Limiter).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Header of the requests left in the current window (the common form).
const REMAINING: [&str; 2] = ["x-ratelimit-remaining", "x-rate-limit-remaining"];
/// Header of when that window resets: seconds to wait, or a Unix time.
const RESET: [&str; 2] = ["x-ratelimit-reset", "x-rate-limit-reset"];
/// qTest's requests left in the current minute.
const REMAINING_MINUTE: &str = "x-ratelimit-remaining-minute";
/// qTest's requests left in the month.
const REMAINING_MONTH: &str = "x-ratelimit-remaining-month";

/// What an answer said about the origin's rate budget, parsed by the client
/// and given to [`Limiter::observe`](super::Limiter::observe) for every
/// answer (rate-limit headers or not: a success is news too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct RateFeedback {
    /// Requests the server still takes in its current window
    /// (`X-RateLimit-Remaining`, `X-Rate-Limit-Remaining`).
    pub remaining: Option<u64>,
    /// When that window resets (`X-RateLimit-Reset`, `X-Rate-Limit-Reset`,
    /// as a delay or a Unix time).
    pub reset_in: Option<Duration>,
    /// Requests left in the current minute (qTest's
    /// `x-ratelimit-remaining-minute`); the minute is taken to end at the
    /// next wall-clock minute, as qTest publishes nothing else.
    pub remaining_minute: Option<u64>,
    /// Requests left in the month (qTest's `x-ratelimit-remaining-month`).
    pub remaining_month: Option<u64>,
    /// The answer was 429 Too Many Requests: hold the origin.
    pub throttled: bool,
    /// The answer's `Retry-After`, parsed and capped by the client.
    pub retry_after: Option<Duration>,
}

impl RateFeedback {
    /// Feedback of `remaining` requests until a reset `reset_in` from now.
    pub fn new(remaining: Option<u64>, reset_in: Option<Duration>) -> Self {
        RateFeedback {
            remaining,
            reset_in,
            ..RateFeedback::default()
        }
    }

    /// The same feedback for a 429 answer that said `Retry-After: retry_after`
    /// (`None` when it said nothing, or nothing usable).
    pub fn throttled(mut self, retry_after: Option<Duration>) -> Self {
        self.throttled = true;
        self.retry_after = retry_after;
        self
    }

    /// Sets qTest's minute and month counts.
    pub fn quota(mut self, remaining_minute: Option<u64>, remaining_month: Option<u64>) -> Self {
        self.remaining_minute = remaining_minute;
        self.remaining_month = remaining_month;
        self
    }

    /// Reads the rate-limit headers of an answer through `header` (a
    /// case-insensitive lookup); `None` if it carries none of them.
    pub fn from_headers<'a>(header: impl Fn(&str) -> Option<&'a str>) -> Option<Self> {
        let first = |names: &[&str]| names.iter().find_map(|n| header(n));
        let count = |v: &str| v.trim().parse::<u64>().ok();
        let feedback = RateFeedback {
            remaining: first(&REMAINING).and_then(count),
            reset_in: first(&RESET).and_then(reset_delay),
            remaining_minute: header(REMAINING_MINUTE).and_then(count),
            remaining_month: header(REMAINING_MONTH).and_then(count),
            ..RateFeedback::default()
        };
        (feedback != RateFeedback::default()).then_some(feedback)
    }
}

/// A reset header is either epoch seconds (Zephyr) or seconds to wait; a value
/// larger than a day is taken as a timestamp, and one past [`EPOCH_MS`] as a
/// timestamp in milliseconds (as some APIs write it).
fn reset_delay(value: &str) -> Option<Duration> {
    let n = value
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|n| n.is_finite() && *n >= 0.0)?;
    let n = if n > EPOCH_MS { n / 1000.0 } else { n };
    if n > 86_400.0 {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .ok()?
            .as_secs_f64();
        Some(Duration::from_secs_f64((n - now).clamp(0.0, 86_400.0)))
    } else {
        Some(Duration::from_secs_f64(n))
    }
}

/// A reset past this is a Unix time in milliseconds: in seconds it would be
/// after the year 5000.
const EPOCH_MS: f64 = 1e11;

/// Time to the next wall-clock minute: when a qTest minute count resets.
pub(crate) fn to_next_minute() -> Duration {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let into = Duration::from_nanos((now.as_nanos() % 60_000_000_000) as u64);
    Duration::from_secs(60) - into
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_takes_epoch_seconds_or_a_delay() {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let d = reset_delay(&(now + 5).to_string()).unwrap();
        assert!(
            d <= Duration::from_secs(5) && d >= Duration::from_secs(3),
            "{d:?}"
        );
        assert_eq!(reset_delay("2"), Some(Duration::from_secs(2)));
        assert_eq!(reset_delay("x"), None);
        let d = reset_delay(&((now + 5) * 1000).to_string()).unwrap();
        assert!(
            d <= Duration::from_secs(5) && d >= Duration::from_secs(3),
            "{d:?}"
        );
    }

    #[test]
    fn headers_of_both_conventions_and_qtests_quota_are_read() {
        let headers = [
            ("x-rate-limit-remaining", "7"),
            ("x-rate-limit-reset", "3"),
            ("x-ratelimit-remaining-minute", "120"),
            ("x-ratelimit-remaining-month", "9000"),
        ];
        let get = |name: &str| headers.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
        let f = RateFeedback::from_headers(get).unwrap();
        assert_eq!(
            f,
            RateFeedback::new(Some(7), Some(Duration::from_secs(3))).quota(Some(120), Some(9000))
        );
        assert_eq!(RateFeedback::from_headers(|_| None), None);
        assert!(to_next_minute() <= Duration::from_secs(60));
    }
}
