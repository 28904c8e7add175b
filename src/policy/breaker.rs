//! The circuit breaker of one origin.
//!
//! After `failure_threshold` consecutive failed attempts (transport errors and
//! 5xx; a 4xx means the server is up and never counts) the built-in breaker
//! opens and calls fail fast, without touching the server, for `cooldown`. Then
//! it half-opens and lets exactly one probe through: success closes it, failure
//! opens it again.

use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::error::Result;
use crate::metrics::BreakerTransition;

/// Settings of the built-in [`CircuitBreaker`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerPolicy {
    /// Consecutive failed attempts that open the breaker; 0 disables it.
    /// Defaults to 5.
    pub failure_threshold: u32,
    /// How long it stays open before a probe. Defaults to 30 s.
    pub cooldown: Duration,
}

impl Default for BreakerPolicy {
    fn default() -> Self {
        BreakerPolicy {
            failure_threshold: 5,
            cooldown: Duration::from_secs(30),
        }
    }
}

impl BreakerPolicy {
    /// A breaker that never opens.
    pub fn disabled() -> Self {
        BreakerPolicy {
            failure_threshold: 0,
            ..BreakerPolicy::default()
        }
    }

    pub(crate) fn validate(&self) -> Result<()> {
        Ok(())
    }
}

/// How an attempt went, as far as the server's health goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The server answered in a way that shows it works (2xx to 4xx).
    Success,
    /// A transport error or a 5xx on a first attempt.
    Failure,
    /// The attempt said nothing about the server (cancelled, no connection
    /// free, a stale keep-alive connection resent for free).
    Neutral,
}

/// Permission for one attempt, from [`Breaker::allow`]; give it back to
/// [`Breaker::record`] with the attempt's [`Outcome`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admission {
    probe: bool,
    half_opened: bool,
}

impl Admission {
    /// An ordinary attempt while the breaker is closed.
    pub fn closed() -> Admission {
        Admission {
            probe: false,
            half_opened: false,
        }
    }

    /// The one probe of a half-open breaker; `half_opened` says whether this
    /// `allow` moved the breaker from open to half-open (for the metrics).
    pub fn probe(half_opened: bool) -> Admission {
        Admission {
            probe: true,
            half_opened,
        }
    }

    /// Whether this is a half-open breaker's probe.
    pub fn is_probe(&self) -> bool {
        self.probe
    }

    /// Whether granting it moved the breaker from open to half-open.
    pub fn half_opened(&self) -> bool {
        self.half_opened
    }
}

/// The breaker refused an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerOpen {
    /// When the next probe may go (zero while another probe is out).
    pub retry_in: Duration,
}

/// Where a breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BreakerState {
    /// Calls go through.
    Closed,
    /// Calls fail fast; a probe may go after `retry_in`.
    Open {
        /// Time to the next probe.
        retry_in: Duration,
    },
    /// One probe decides.
    HalfOpen,
}

/// Decides whether attempts to one origin may go out.
///
/// Implement it to share a breaker between processes; the built-in one is
/// [`CircuitBreaker`]. Every attempt asks [`allow`](Breaker::allow) and then
/// reports exactly once through [`record`](Breaker::record), whatever happens
/// (the client reports [`Outcome::Neutral`] if the attempt unwinds).
pub trait Breaker: Send + Sync + 'static {
    /// Asks to send an attempt.
    fn allow(&self) -> std::result::Result<Admission, BreakerOpen>;
    /// Reports how an admitted attempt went; returns the state change it caused,
    /// if any, so the caller can count and log it once.
    fn record(&self, admission: Admission, outcome: Outcome) -> Option<BreakerTransition>;
    /// The state now.
    fn state(&self) -> BreakerState;
}

/// The in-memory breaker of one origin.
pub struct CircuitBreaker {
    policy: BreakerPolicy,
    /// Guards the state machine.
    state: Mutex<State>,
}

#[derive(Debug, Clone, Copy)]
enum State {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { probing: bool },
}

impl CircuitBreaker {
    /// A closed breaker with `policy`.
    pub fn new(policy: BreakerPolicy) -> Self {
        CircuitBreaker {
            policy,
            state: Mutex::new(State::Closed { failures: 0 }),
        }
    }

    fn reopen_at(&self) -> Instant {
        Instant::now()
            .checked_add(self.policy.cooldown)
            .unwrap_or_else(Instant::now)
    }
}

impl Breaker for CircuitBreaker {
    fn allow(&self) -> std::result::Result<Admission, BreakerOpen> {
        if self.policy.failure_threshold == 0 {
            return Ok(Admission::closed());
        }
        let mut st = self.state.lock();
        match *st {
            State::Closed { .. } => Ok(Admission::closed()),
            State::Open { until } => {
                let now = Instant::now();
                if now < until {
                    return Err(BreakerOpen {
                        retry_in: until - now,
                    });
                }
                *st = State::HalfOpen { probing: true };
                Ok(Admission::probe(true))
            }
            State::HalfOpen { probing: false } => {
                *st = State::HalfOpen { probing: true };
                Ok(Admission::probe(false))
            }
            State::HalfOpen { probing: true } => Err(BreakerOpen {
                retry_in: Duration::ZERO,
            }),
        }
    }

    fn record(&self, admission: Admission, outcome: Outcome) -> Option<BreakerTransition> {
        if self.policy.failure_threshold == 0 {
            return None;
        }
        let mut st = self.state.lock();
        match (outcome, *st) {
            // Neutral: give the probe slot back.
            (Outcome::Neutral, State::HalfOpen { .. }) if admission.probe => {
                *st = State::HalfOpen { probing: false };
                None
            }
            (Outcome::Neutral, _) => None,
            (Outcome::Success, State::HalfOpen { .. }) => {
                *st = State::Closed { failures: 0 };
                Some(BreakerTransition::Closed)
            }
            (Outcome::Success, State::Closed { .. }) => {
                *st = State::Closed { failures: 0 };
                None
            }
            (Outcome::Success, State::Open { .. }) => None,
            (Outcome::Failure, State::HalfOpen { .. }) => {
                *st = State::Open {
                    until: self.reopen_at(),
                };
                Some(BreakerTransition::Opened)
            }
            (Outcome::Failure, State::Closed { failures }) => {
                let failures = failures + 1;
                if failures >= self.policy.failure_threshold {
                    *st = State::Open {
                        until: self.reopen_at(),
                    };
                    Some(BreakerTransition::Opened)
                } else {
                    *st = State::Closed { failures };
                    None
                }
            }
            (Outcome::Failure, State::Open { .. }) => None,
        }
    }

    fn state(&self) -> BreakerState {
        match *self.state.lock() {
            State::Closed { .. } => BreakerState::Closed,
            State::Open { until } => BreakerState::Open {
                retry_in: until.saturating_duration_since(Instant::now()),
            },
            State::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(threshold: u32, cooldown: Duration) -> CircuitBreaker {
        CircuitBreaker::new(BreakerPolicy {
            failure_threshold: threshold,
            cooldown,
        })
    }

    fn attempt(b: &CircuitBreaker, outcome: Outcome) -> Option<BreakerTransition> {
        let admission = b.allow().expect("admitted");
        b.record(admission, outcome)
    }

    #[test]
    fn opens_after_consecutive_failures_only() {
        let b = breaker(3, Duration::from_secs(60));
        attempt(&b, Outcome::Failure);
        attempt(&b, Outcome::Failure);
        attempt(&b, Outcome::Success);
        attempt(&b, Outcome::Failure);
        attempt(&b, Outcome::Failure);
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(
            attempt(&b, Outcome::Failure),
            Some(BreakerTransition::Opened)
        );
        assert!(matches!(b.state(), BreakerState::Open { .. }));
        assert!(b.allow().is_err());
    }

    #[test]
    fn half_open_lets_one_probe_and_a_neutral_probe_gives_it_back() {
        let b = breaker(1, Duration::ZERO);
        attempt(&b, Outcome::Failure);
        let probe = b.allow().unwrap();
        assert!(probe.is_probe() && probe.half_opened());
        assert!(b.allow().is_err(), "only one probe at a time");
        assert_eq!(b.record(probe, Outcome::Neutral), None);
        let probe = b.allow().unwrap();
        assert!(probe.is_probe() && !probe.half_opened());
        assert_eq!(
            b.record(probe, Outcome::Failure),
            Some(BreakerTransition::Opened)
        );
        let probe = b.allow().unwrap();
        assert_eq!(
            b.record(probe, Outcome::Success),
            Some(BreakerTransition::Closed)
        );
        assert_eq!(b.state(), BreakerState::Closed);
        attempt(&b, Outcome::Success);
    }

    #[test]
    fn zero_threshold_disables_it() {
        let b = breaker(0, Duration::from_secs(60));
        for _ in 0..100 {
            attempt(&b, Outcome::Failure);
        }
        assert_eq!(b.state(), BreakerState::Closed);
    }
}
