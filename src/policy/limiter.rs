//! The rate limiter of one origin: a token bucket, plus pauses the server asks for.
//!
//! The bucket is kept as a "theoretical arrival time" (GCRA): each call reserves
//! the next free slot under a short lock and then sleeps outside it until its
//! slot comes, so waiting callers are spaced evenly instead of waking together.
//! A 429 or an exhausted `X-Rate-Limit-Remaining` / `X-RateLimit-Remaining`
//! pauses the whole origin, every worker, until the server's reset time.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;

use crate::cancel::CancelToken;
use crate::error::{Error, Result};

/// Settings of the built-in [`TokenBucket`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Requests per second; `None` for no client-side limit (the server's
    /// pauses still apply). Defaults to none.
    pub per_second: Option<f64>,
    /// Requests that may go at once after a quiet spell. Defaults to 1.
    pub burst: u32,
    /// The longest pause a server's headers can impose. Defaults to 60 s.
    pub max_pause: Duration,
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit {
            per_second: None,
            burst: 1,
            max_pause: Duration::from_secs(60),
        }
    }
}

impl RateLimit {
    pub(crate) fn validate(&self) -> Result<()> {
        if self.per_second.is_some_and(|r| !(r > 0.0 && r.is_finite())) {
            return Err(Error::config(
                "rate_limit.per_second",
                "must be a positive number",
            ));
        }
        if self.burst == 0 {
            return Err(Error::config("rate_limit.burst", "must be at least 1"));
        }
        Ok(())
    }
}

/// Spaces calls to one origin. Implement it to share one budget between
/// processes; the built-in one is [`TokenBucket`].
pub trait Limiter: Send + Sync + 'static {
    /// Waits for the caller's turn and returns the time waited. Fails, without
    /// taking a turn, if the turn comes after `deadline`, or if the wait is
    /// cancelled.
    fn acquire(
        &self,
        deadline: Option<Instant>,
        cancel: Option<&CancelToken>,
    ) -> std::result::Result<Duration, Denied>;
    /// Holds every caller back until `until`.
    fn pause_until(&self, until: Instant);
    /// Learns from the rate-limit headers of an answer (the client parses
    /// them); a remaining count of zero pauses until the reset.
    fn observe(&self, feedback: &RateFeedback);
}

/// What an answer's rate-limit headers said, parsed by the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct RateFeedback {
    /// Requests the server still takes in its current window
    /// (`X-RateLimit-Remaining`, `X-Rate-Limit-Remaining`).
    pub remaining: Option<u64>,
    /// When that window resets (`X-RateLimit-Reset`, as a delay or a Unix time).
    pub reset_in: Option<Duration>,
}

impl RateFeedback {
    /// Feedback of `remaining` requests until a reset `reset_in` from now.
    pub fn new(remaining: Option<u64>, reset_in: Option<Duration>) -> Self {
        RateFeedback {
            remaining,
            reset_in,
        }
    }

    /// Reads the headers of an answer through `header` (a case-insensitive
    /// lookup); `None` if it carries none of them.
    pub fn from_headers<'a>(header: impl Fn(&str) -> Option<&'a str>) -> Option<Self> {
        let remaining = header("x-ratelimit-remaining")
            .or_else(|| header("x-rate-limit-remaining"))
            .and_then(|v| v.trim().parse::<u64>().ok());
        let reset_in = header("x-ratelimit-reset")
            .or_else(|| header("x-rate-limit-reset"))
            .and_then(reset_delay);
        (remaining.is_some() || reset_in.is_some()).then_some(RateFeedback {
            remaining,
            reset_in,
        })
    }
}

/// Why [`Limiter::acquire`] gave no turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// The turn would come after the deadline, `wait` from now.
    PastDeadline {
        /// How long the caller would have had to wait.
        wait: Duration,
    },
    /// The wait was cancelled.
    Cancelled,
}

/// The in-memory limiter of one origin.
pub struct TokenBucket {
    config: RateLimit,
    /// Time between requests at the configured rate.
    interval: Option<Duration>,
    /// Guards the schedule: (theoretical arrival time, paused until).
    state: Mutex<(Instant, Instant)>,
}

impl TokenBucket {
    /// A limiter with `config`; a rate that is not a positive number counts as
    /// no client-side rate (see [`RateLimit`]'s validation for the checked way).
    pub fn new(config: RateLimit) -> Self {
        let now = Instant::now();
        TokenBucket {
            config,
            interval: config
                .per_second
                .filter(|r| *r > 0.0 && r.is_finite())
                .map(|r| Duration::from_secs_f64(1.0 / r)),
            state: Mutex::new((now, now)),
        }
    }

    /// Reserves the next slot and returns when it starts; a slot after
    /// `deadline` is not taken.
    fn reserve(
        &self,
        now: Instant,
        deadline: Option<Instant>,
    ) -> std::result::Result<Instant, Instant> {
        let mut st = self.state.lock();
        let (tat, paused_until) = &mut *st;
        let mut at = now.max(*paused_until);
        let mut next_tat = *tat;
        if let Some(interval) = self.interval {
            let tolerance = interval * (self.config.burst - 1);
            let base = (*tat).max(at);
            // A slot may start up to `tolerance` before the theoretical time: the burst.
            at = at.max(base.checked_sub(tolerance).unwrap_or(base));
            next_tat = base + interval;
        }
        if deadline.is_some_and(|d| at > d) {
            return Err(at);
        }
        *tat = next_tat;
        Ok(at)
    }
}

impl Limiter for TokenBucket {
    fn acquire(
        &self,
        deadline: Option<Instant>,
        cancel: Option<&CancelToken>,
    ) -> std::result::Result<Duration, Denied> {
        let start = Instant::now();
        let at = self
            .reserve(start, deadline)
            .map_err(|at| Denied::PastDeadline {
                wait: at.saturating_duration_since(start),
            })?;
        if at <= start {
            return Ok(Duration::ZERO);
        }
        let wait = at - start;
        sleep(wait, cancel).map_err(|_| Denied::Cancelled)?;
        Ok(wait)
    }

    fn pause_until(&self, until: Instant) {
        let cap = Instant::now().checked_add(self.config.max_pause);
        let until = cap.map_or(until, |c| until.min(c));
        let mut st = self.state.lock();
        if until > st.1 {
            st.1 = until;
        }
    }

    fn observe(&self, feedback: &RateFeedback) {
        if feedback.remaining != Some(0) {
            return;
        }
        let wait = feedback.reset_in.unwrap_or(Duration::from_secs(1));
        if let Some(until) = Instant::now().checked_add(wait) {
            self.pause_until(until);
        }
    }
}

/// A reset header is either epoch seconds (Zephyr) or seconds to wait; a value
/// larger than a day is taken as a timestamp.
fn reset_delay(value: &str) -> Option<Duration> {
    let n = value
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|n| n.is_finite() && *n >= 0.0)?;
    if n > 86_400.0 {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .ok()?
            .as_secs_f64();
        Some(Duration::from_secs_f64((n - now).max(0.0)))
    } else {
        Some(Duration::from_secs_f64(n))
    }
}

/// Sleeps for `d`, or until cancelled.
pub(crate) fn sleep(d: Duration, cancel: Option<&CancelToken>) -> Result<()> {
    match cancel {
        Some(token) => {
            if token.wait_timeout(d) {
                Err(Error::Cancelled)
            } else {
                Ok(())
            }
        }
        None => {
            std::thread::sleep(d);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(per_second: Option<f64>, burst: u32) -> TokenBucket {
        TokenBucket::new(RateLimit {
            per_second,
            burst,
            ..RateLimit::default()
        })
    }

    #[test]
    fn reservations_are_spaced_by_the_interval_after_the_burst() {
        let b = bucket(Some(10.0), 3);
        let t0 = Instant::now();
        let slots: Vec<Duration> = (0..6).map(|_| b.reserve(t0, None).unwrap() - t0).collect();
        let ms: Vec<u128> = slots.iter().map(|d| d.as_millis()).collect();
        assert_eq!(ms, [0, 0, 0, 100, 200, 300]);
    }

    #[test]
    fn no_rate_means_no_wait_but_pauses_apply() {
        let b = bucket(None, 1);
        let t0 = Instant::now();
        assert_eq!(b.reserve(t0, None).unwrap(), t0);
        b.pause_until(t0 + Duration::from_millis(500));
        assert_eq!(
            b.reserve(t0, None).unwrap(),
            t0 + Duration::from_millis(500)
        );
    }

    #[test]
    fn remaining_zero_pauses_until_reset() {
        let b = bucket(None, 1);
        b.observe(&RateFeedback::new(Some(5), Some(Duration::from_secs(30))));
        let t0 = Instant::now();
        assert!(b.reserve(t0, None).unwrap() <= t0 + Duration::from_millis(5));
        b.observe(&RateFeedback::new(Some(0), Some(Duration::from_secs(2))));
        let at = b.reserve(Instant::now(), None).unwrap();
        assert!(at > Instant::now() + Duration::from_millis(1500));
    }

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
    }

    #[test]
    fn a_slot_past_the_deadline_is_not_taken() {
        let b = bucket(Some(1.0), 1);
        let t0 = Instant::now();
        assert_eq!(b.reserve(t0, None), Ok(t0));
        assert!(
            b.reserve(t0, Some(t0 + Duration::from_millis(500)))
                .is_err()
        );
        // The refused slot is still free.
        assert_eq!(b.reserve(t0, None), Ok(t0 + Duration::from_secs(1)));
    }

    #[test]
    fn pauses_are_capped() {
        let b = bucket(None, 1);
        b.pause_until(Instant::now() + Duration::from_secs(3600));
        assert!(
            b.reserve(Instant::now(), None).unwrap() <= Instant::now() + Duration::from_secs(61)
        );
    }
}
