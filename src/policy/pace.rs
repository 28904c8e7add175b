//! The pace an origin's server asks for, learned from its answers: the rate
//! that spends its announced budget evenly until the reset, the pauses its
//! 429s call for, and what is left of its monthly budget.
//!
//! * **Announced budgets** (`X-RateLimit-Remaining` with `-Reset`, qTest's
//!   `x-ratelimit-remaining-minute`): the next requests are spaced so that
//!   what is left lasts until the reset, at [`TARGET`] of it, so requests in
//!   flight (counted by the server, not yet reported) don't overrun it. Each
//!   answer corrects the pace, so other clients of the same account are
//!   accounted for too. The client's own requests still in flight are
//!   taken off the count (the server may not have counted them yet: at the
//!   end of a window they would overrun it), and a count with nothing left
//!   after them pauses until the reset.
//! * **429 without a usable `Retry-After`** (missing, or 0): a pause of a
//!   floor that starts at 1 s and doubles with each 429 that comes after the
//!   last pause ended; each stretch of successes as long as the floor takes
//!   one doubling back.
//! * **429 from a server that announces no budget**: the pace is cut to half
//!   the rate of the last second (at least [`MIN_RATE`]) and then recovers,
//!   doubling every [`RECOVERY`], until it no longer binds.

use std::time::{Duration, Instant};

use super::feedback::{RateFeedback, to_next_minute};
use super::window::SlidingCounts;

/// Share of an announced budget the pace aims to use.
const TARGET: f64 = 0.97;
/// The first pause of a 429 without a usable `Retry-After`.
const FIRST_FLOOR: Duration = Duration::from_secs(1);
/// The slowest pace learned from 429s, in requests per second.
const MIN_RATE: f64 = 1.0;
/// A pace learned from 429s doubles this often while no 429 comes.
const RECOVERY: Duration = Duration::from_secs(10);
/// Doublings after which a pace learned from 429s no longer binds.
const RECOVERED: u32 = 6;

/// What one origin's answers taught. Not locked: the limiter's lock guards it.
pub(crate) struct Pace {
    /// Spacing that spends the announced window's budget by its reset, and
    /// that reset: a window that has reset no longer spaces anything.
    window: Option<(Duration, Instant)>,
    /// The same for qTest's minute count.
    minute: Option<(Duration, Instant)>,
    /// 429s that came after a pause had ended, less those decayed since.
    strikes: u32,
    /// When `strikes` last changed.
    strike_at: Instant,
    /// A rate cut by 429s (requests per second) and when it was cut.
    throttle: Option<(f64, Instant)>,
    /// Turns granted recently (first count), for the rate a 429 cuts.
    meter: SlidingCounts,
    /// The month's remaining count, once it fell under the floor.
    exhausted: Option<u64>,
    /// Turns granted whose answer has not come yet: requests the server may
    /// not have counted when it announced what is left.
    in_flight: u64,
}

/// What an answer asks of the limiter.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Advice {
    /// Hold the origin this long from now.
    pub(crate) pause: Option<Duration>,
}

impl Pace {
    pub(crate) fn new() -> Self {
        Pace {
            window: None,
            minute: None,
            strikes: 0,
            strike_at: Instant::now(),
            throttle: None,
            meter: SlidingCounts::new(Duration::from_secs(1)),
            exhausted: None,
            in_flight: 0,
        }
    }

    /// The spacing the server's answers call for now, if any.
    pub(crate) fn interval(&self, now: Instant) -> Option<Duration> {
        let throttled = self.throttle.and_then(|(rate, since)| {
            let doublings =
                now.saturating_duration_since(since).as_secs_f64() / RECOVERY.as_secs_f64();
            (doublings < f64::from(RECOVERED))
                .then(|| Duration::from_secs_f64(1.0 / (rate * doublings.exp2())))
        });
        let current = |learned: Option<(Duration, Instant)>| {
            learned.and_then(|(spacing, until)| (now < until).then_some(spacing))
        };
        [current(self.window), current(self.minute), throttled]
            .into_iter()
            .flatten()
            .max()
    }

    /// Counts a turn granted at `now`.
    pub(crate) fn granted(&mut self, now: Instant) {
        self.meter.add(now, 1, 0);
        self.in_flight += 1;
    }

    /// A granted turn's request ended, answered or not.
    pub(crate) fn answered(&mut self) {
        self.in_flight = self.in_flight.saturating_sub(1);
    }

    /// What an announced count leaves for new requests: the requests still
    /// in flight may not be in it yet.
    fn usable(&self, left: u64) -> u64 {
        left.saturating_sub(self.in_flight)
    }

    /// The month's remaining count if it is under the floor.
    pub(crate) fn exhausted(&self) -> Option<u64> {
        self.exhausted
    }

    /// Learns from one answer. `paused` says whether the origin was still
    /// held when it came (a 429 then answers a request sent before the pause
    /// and is no new strike).
    pub(crate) fn observe(
        &mut self,
        f: &RateFeedback,
        now: Instant,
        paused: bool,
        month_floor: u64,
    ) -> Advice {
        self.answered();
        let mut pause = None;
        let mut hold = |d: Duration| pause = pause.max(Some(d));
        match (f.remaining.map(|l| self.usable(l)), f.reset_in) {
            (Some(0), reset) => hold(reset.unwrap_or(FIRST_FLOOR)),
            (Some(left), Some(reset)) => self.window = until(now, spacing(left, reset), reset),
            _ => {}
        }
        match f.remaining_minute.map(|l| self.usable(l)) {
            Some(0) => hold(to_next_minute()),
            Some(left) => {
                let reset = to_next_minute();
                self.minute = until(now, spacing(left, reset), reset);
            }
            None => {}
        }
        if let Some(month) = f.remaining_month.filter(|m| *m < month_floor.max(1)) {
            self.exhausted = Some(month);
        }
        if f.throttled {
            if !paused {
                self.strikes = self.strikes.saturating_add(1);
                self.strike_at = now;
                if self.window.is_none() && self.minute.is_none() {
                    self.cut_rate(now);
                }
            }
            match f.retry_after.filter(|d| !d.is_zero()) {
                Some(d) => hold(d),
                None => hold(self.floor()),
            }
        } else if self.strikes > 0 && now.saturating_duration_since(self.strike_at) >= self.floor()
        {
            self.strikes -= 1;
            self.strike_at = now;
        }
        Advice { pause }
    }

    /// The pause of a 429 without a usable `Retry-After`.
    fn floor(&self) -> Duration {
        let doublings = self.strikes.saturating_sub(1).min(16);
        FIRST_FLOOR * (1u32 << doublings)
    }

    /// Halves the rate of the last second (or the rate already cut to, if
    /// lower).
    fn cut_rate(&mut self, now: Instant) {
        let seen = self.meter.totals(now).0 as f64 / self.meter.span().as_secs_f64();
        let current = self
            .interval(now)
            .map_or(f64::INFINITY, |i| 1.0 / i.as_secs_f64());
        let rate = (seen.min(current) / 2.0).max(MIN_RATE);
        self.throttle = Some((rate, now));
    }
}

/// `spacing`, in force from `now` until a reset `reset` away.
fn until(now: Instant, spacing: Duration, reset: Duration) -> Option<(Duration, Instant)> {
    now.checked_add(reset).map(|at| (spacing, at))
}

/// The spacing that spends `left` requests over `until_reset` at [`TARGET`].
fn spacing(left: u64, until_reset: Duration) -> Duration {
    until_reset.div_f64(left as f64 * TARGET)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttled(retry_after: Option<u64>) -> RateFeedback {
        RateFeedback::default().throttled(retry_after.map(Duration::from_secs))
    }

    #[test]
    fn an_announced_budget_is_spread_until_the_reset() {
        let mut p = Pace::new();
        let now = Instant::now();
        let f = RateFeedback::new(Some(97), Some(Duration::from_secs(1)));
        assert_eq!(p.observe(&f, now, false, 0), Advice::default());
        let i = p.interval(now).unwrap();
        assert!((i.as_secs_f64() - 0.0106).abs() < 0.0002, "{i:?}");
        let spent = RateFeedback::new(Some(0), Some(Duration::from_millis(300)));
        assert_eq!(
            p.observe(&spent, now, false, 0).pause,
            Some(Duration::from_millis(300))
        );
    }

    #[test]
    fn the_floor_grows_with_repeated_429s_and_decays_after_successes() {
        let mut p = Pace::new();
        let t = Instant::now();
        let pause = |p: &mut Pace, at, paused| p.observe(&throttled(Some(0)), at, paused, 0).pause;
        assert_eq!(pause(&mut p, t, false), Some(Duration::from_secs(1)));
        // A 429 answering a request sent before the pause: no new strike.
        assert_eq!(pause(&mut p, t, true), Some(Duration::from_secs(1)));
        assert_eq!(pause(&mut p, t, false), Some(Duration::from_secs(2)));
        assert_eq!(pause(&mut p, t, false), Some(Duration::from_secs(4)));
        // A Retry-After is honoured as it is.
        assert_eq!(
            p.observe(&throttled(Some(3)), t, true, 0).pause,
            Some(Duration::from_secs(3))
        );
        // Successes take a doubling back per floor's length.
        let ok = RateFeedback::default();
        p.observe(&ok, t + Duration::from_secs(1), false, 0);
        assert_eq!(p.floor(), Duration::from_secs(4));
        p.observe(&ok, t + Duration::from_secs(4), false, 0);
        assert_eq!(p.floor(), Duration::from_secs(2));
        p.observe(&ok, t + Duration::from_secs(6), false, 0);
        p.observe(&ok, t + Duration::from_secs(7), false, 0);
        assert_eq!(p.floor(), Duration::from_secs(1));
        assert_eq!(p.strikes, 0);
    }

    #[test]
    fn a_429_without_a_budget_halves_the_rate_which_then_recovers() {
        let mut p = Pace::new();
        let t = Instant::now();
        for _ in 0..40 {
            p.granted(t);
        }
        p.observe(&throttled(None), t, false, 0);
        let i = p.interval(t).unwrap();
        assert!((i.as_secs_f64() - 0.05).abs() < 0.001, "{i:?}");
        let later = p.interval(t + RECOVERY).unwrap();
        assert!((later.as_secs_f64() - 0.025).abs() < 0.001, "{later:?}");
        assert_eq!(p.interval(t + RECOVERY * RECOVERED), None);
    }

    #[test]
    fn the_month_under_the_floor_is_kept() {
        let mut p = Pace::new();
        let f = RateFeedback::default().quota(Some(100), Some(999));
        p.observe(&f, Instant::now(), false, 1000);
        assert_eq!(p.exhausted(), Some(999));
        assert!(p.interval(Instant::now()).is_some(), "the minute paces too");
    }
}
