//! The rate limiter of one origin: a token bucket, paced to what the server
//! announces, plus the pauses it asks for.
//!
//! The bucket is kept as a "theoretical arrival time" (GCRA): each call reserves
//! the next free slot under a short lock and then sleeps outside it until its
//! slot comes, so waiting callers are spaced evenly instead of waking together.
//! The spacing is the slower of the configured rate and the one learned from
//! the server's answers (see [`pace`](super::pace)). A 429 or an exhausted
//! announced budget pauses the whole origin, every worker, queued ones
//! included: a caller that wakes for a slot inside a pause set while it slept
//! takes a new slot after it, and after a pause requests resume spaced at that
//! rate, not all at once.

use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::feedback::RateFeedback;
use super::pace::Pace;
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
    /// The longest pause a server's headers can impose, and the widest
    /// spacing between requests they can ask for. Defaults to 60 s.
    pub max_pause: Duration,
    /// Stop before the month's budget is gone: once an answer says fewer
    /// requests than this are left in the month (qTest's
    /// `x-ratelimit-remaining-month`), every further call of the origin fails
    /// with [`Error::BudgetExhausted`] before it is sent, leaving the rest to
    /// the account's other users. 0 stops only when nothing is left.
    /// Defaults to 1,000.
    pub month_floor: u64,
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit {
            per_second: None,
            burst: 1,
            max_pause: Duration::from_secs(60),
            month_floor: 1_000,
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
        if self
            .per_second
            .is_some_and(|r| r < 1.0 / MAX_INTERVAL.as_secs_f64())
        {
            return Err(Error::config(
                "rate_limit.per_second",
                "must be at least one request a day (0.0000116 per second)",
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
    /// Holds every caller back until `until`, those already waiting for a
    /// turn included.
    fn pause_until(&self, until: Instant);
    /// Learns from an answer, as the client parsed it: its rate-limit
    /// headers, and whether it was a 429 and what its `Retry-After` said. The
    /// client calls it for every answer and, for a 429, retries as soon as
    /// the limiter gives a turn: a limiter must hold the origin on
    /// `throttled` (the built-in pauses for the `Retry-After`, or a growing
    /// floor when there is none). The client also calls
    /// [`pause_until`](Limiter::pause_until) for a 429's `Retry-After`.
    fn observe(&self, feedback: &RateFeedback);
    /// How long the origin is held from now. The default says nothing (zero).
    fn pause_remaining(&self) -> Duration {
        Duration::ZERO
    }
    /// An attempt that got a turn ended without an answer (a transport
    /// error, no connection free): [`observe`](Limiter::observe) will not
    /// hear of it. The built-in limiter counts its requests in flight, which
    /// the server's announced counts don't include yet. The default does
    /// nothing.
    fn unanswered(&self) {}
}

/// Why [`Limiter::acquire`] gave no turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Denied {
    /// The turn would come after the deadline, `wait` from now.
    PastDeadline {
        /// How long the caller would have had to wait.
        wait: Duration,
    },
    /// The wait was cancelled.
    Cancelled,
    /// The origin's monthly budget fell under [`RateLimit::month_floor`]:
    /// nothing more is sent to it.
    Exhausted {
        /// Requests the server said were left in the month.
        remaining: u64,
        /// The floor they fell under.
        floor: u64,
    },
}

/// The widest spacing a configured rate gives: one request a day. A slower
/// rate would overflow the schedule's clock arithmetic.
pub const MAX_INTERVAL: Duration = Duration::from_secs(24 * 60 * 60);

/// The in-memory limiter of one origin.
pub struct TokenBucket {
    config: RateLimit,
    /// Time between requests at the configured rate.
    interval: Option<Duration>,
    /// Guards the schedule and what the server's answers taught.
    state: Mutex<Schedule>,
}

struct Schedule {
    /// The theoretical arrival time of the next request.
    tat: Instant,
    paused_until: Instant,
    pace: Pace,
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
                .map(|r| {
                    Duration::try_from_secs_f64(1.0 / r)
                        .map_or(MAX_INTERVAL, |i| i.min(MAX_INTERVAL))
                }),
            state: Mutex::new(Schedule {
                tat: now,
                paused_until: now,
                pace: Pace::new(),
            }),
        }
    }

    /// Reserves the next slot and returns when it starts (a slot that starts
    /// now is granted and counted); a slot after `deadline` is not taken.
    fn reserve(
        &self,
        now: Instant,
        deadline: Option<Instant>,
    ) -> std::result::Result<Instant, Denied> {
        let mut st = self.state.lock();
        if let Some(remaining) = st.pace.exhausted() {
            return Err(Denied::Exhausted {
                remaining,
                floor: self.config.month_floor,
            });
        }
        let mut at = now.max(st.paused_until);
        let mut next_tat = st.tat;
        // A spacing the server's headers call for holds the origin no longer
        // than a pause they ask for could.
        let learned = st.pace.interval(now).map(|i| i.min(self.config.max_pause));
        if let Some(interval) = self.interval.max(learned) {
            let tolerance = interval
                .checked_mul(self.config.burst.max(1) - 1)
                .unwrap_or(Duration::MAX);
            let base = st.tat.max(at);
            // A slot may start up to `tolerance` before the theoretical time: the burst.
            // Before the clock's first instant (a wide burst soon after boot)
            // is earlier than `at` too.
            at = at.max(base.checked_sub(tolerance).unwrap_or(at));
            next_tat = base.checked_add(interval).unwrap_or(base);
        }
        if deadline.is_some_and(|d| at > d) {
            return Err(Denied::PastDeadline {
                wait: at.saturating_duration_since(now),
            });
        }
        st.tat = next_tat;
        if at <= now {
            st.pace.granted(now);
        }
        Ok(at)
    }

    /// After sleeping for a slot: the turn, unless a pause set meanwhile
    /// holds the origin (then the caller takes a new slot).
    fn take_slot(&self, now: Instant) -> bool {
        let mut st = self.state.lock();
        if st.paused_until > now {
            return false;
        }
        st.pace.granted(now);
        true
    }

    fn pause_for(&self, st: &mut Schedule, now: Instant, pause: Duration) {
        if let Some(until) = now.checked_add(pause.min(self.config.max_pause))
            && until > st.paused_until
        {
            st.paused_until = until;
        }
    }
}

impl Limiter for TokenBucket {
    fn acquire(
        &self,
        deadline: Option<Instant>,
        cancel: Option<&CancelToken>,
    ) -> std::result::Result<Duration, Denied> {
        let start = Instant::now();
        let mut now = start;
        loop {
            let at = self.reserve(now, deadline)?;
            if at <= now {
                return Ok(now - start);
            }
            sleep(at - now, cancel).map_err(|_| Denied::Cancelled)?;
            now = Instant::now();
            if self.take_slot(now) {
                return Ok(now - start);
            }
        }
    }

    fn pause_until(&self, until: Instant) {
        let now = Instant::now();
        let mut st = self.state.lock();
        self.pause_for(&mut st, now, until.saturating_duration_since(now));
    }

    fn observe(&self, feedback: &RateFeedback) {
        let now = Instant::now();
        let mut st = self.state.lock();
        let paused = st.paused_until > now;
        let advice = st
            .pace
            .observe(feedback, now, paused, self.config.month_floor);
        if let Some(pause) = advice.pause {
            self.pause_for(&mut st, now, pause);
        }
    }

    fn pause_remaining(&self) -> Duration {
        let paused_until = self.state.lock().paused_until;
        paused_until.saturating_duration_since(Instant::now())
    }

    fn unanswered(&self) {
        self.state.lock().pace.answered();
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
    fn a_vanishing_rate_is_refused_by_validation_and_never_panics_a_bucket() {
        let tiny = RateLimit {
            per_second: Some(1e-300),
            burst: u32::MAX,
            ..RateLimit::default()
        };
        let err = tiny.validate().unwrap_err().to_string();
        assert!(err.contains("rate_limit.per_second"), "{err}");
        // Built without validation (the fields are public), the bucket spaces
        // requests by its longest interval instead of overflowing.
        let b = TokenBucket::new(tiny);
        let t0 = Instant::now();
        assert_eq!(b.reserve(t0, None).unwrap(), t0);
        let second = b.reserve(t0, None).unwrap();
        assert!(second <= t0 + MAX_INTERVAL, "{:?}", second - t0);
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

    #[test]
    fn a_pause_holds_callers_already_waiting_for_a_slot() {
        let b = bucket(Some(20.0), 1);
        let t0 = Instant::now();
        // Three slots taken: now, +50 ms, +100 ms; then a pause of 300 ms.
        for _ in 0..3 {
            b.reserve(t0, None).unwrap();
        }
        b.pause_until(t0 + Duration::from_millis(300));
        // The caller of the +50 ms slot wakes inside the pause: no turn.
        assert!(!b.take_slot(t0 + Duration::from_millis(50)));
        // Its new slot is after the pause, and the next ones spaced from it.
        let again = b.reserve(t0 + Duration::from_millis(50), None).unwrap();
        let next = b.reserve(t0 + Duration::from_millis(50), None).unwrap();
        assert_eq!(again - t0, Duration::from_millis(300));
        assert_eq!(next - again, Duration::from_millis(50));
    }

    #[test]
    fn an_announced_budget_spaces_requests_without_a_configured_rate() {
        let b = bucket(None, 1);
        b.observe(&RateFeedback::new(Some(97), Some(Duration::from_secs(1))));
        let t0 = Instant::now();
        let first = b.reserve(t0, None).unwrap();
        let second = b.reserve(t0, None).unwrap();
        let gap = second - first;
        assert!(gap >= Duration::from_millis(10), "{gap:?}");
    }

    #[test]
    fn a_429_without_retry_after_pauses_a_floor() {
        let b = bucket(None, 1);
        b.observe(&RateFeedback::default().throttled(Some(Duration::ZERO)));
        let left = b.pause_remaining();
        assert!(left > Duration::from_millis(900), "{left:?}");
    }

    #[test]
    fn a_month_under_the_floor_refuses_every_turn() {
        let b = TokenBucket::new(RateLimit {
            month_floor: 500,
            ..RateLimit::default()
        });
        b.observe(&RateFeedback::default().quota(None, Some(501)));
        assert!(b.acquire(None, None).is_ok());
        b.observe(&RateFeedback::default().quota(None, Some(499)));
        assert_eq!(
            b.acquire(None, None),
            Err(Denied::Exhausted {
                remaining: 499,
                floor: 500
            })
        );
    }
}
