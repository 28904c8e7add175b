//! A circuit breaker per origin.
//!
//! After `failure_threshold` consecutive failed attempts (transport errors and
//! 5xx; a 4xx means the server is up and never counts) the breaker opens and calls
//! fail fast, without touching the server, for `cooldown`. Then it half-opens and
//! lets exactly one probe through: success closes it, failure opens it again.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::error::{Error, Result};
use crate::pool::{BreakerTransition, OriginMetrics};

/// Breaker settings.
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

/// Decides whether calls may go out. Behind a trait so a breaker shared between
/// processes can replace the in-memory one.
pub trait Breaker: Send + Sync + 'static {
    /// Asks to send an attempt; an error means the call must fail fast.
    fn allow(&self) -> Result<Permit>;
    /// Whether the breaker is open (or half-open) right now.
    fn is_open(&self) -> bool;
}

/// Permission for one attempt; report how it went, or drop it if the attempt
/// said nothing about the server's health (e.g. no connection was free).
#[must_use = "report success or failure, or drop it if the attempt was neutral"]
pub struct Permit {
    report: Option<Box<dyn FnOnce(Option<bool>) + Send>>,
}

impl Permit {
    /// A permit that reports nowhere (breaker disabled).
    pub fn unchecked() -> Permit {
        Permit { report: None }
    }

    fn new(report: impl FnOnce(Option<bool>) + Send + 'static) -> Permit {
        Permit {
            report: Some(Box::new(report)),
        }
    }

    /// The attempt got an answer that shows the server works (2xx-4xx).
    pub fn success(mut self) {
        if let Some(r) = self.report.take() {
            r(Some(true));
        }
    }

    /// The attempt failed at the transport or with a 5xx.
    pub fn failure(mut self) {
        if let Some(r) = self.report.take() {
            r(Some(false));
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some(r) = self.report.take() {
            r(None);
        }
    }
}

/// The in-memory breaker of one origin. Clones share one state.
#[derive(Clone)]
pub struct CircuitBreaker {
    inner: Arc<Inner>,
}

struct Inner {
    policy: BreakerPolicy,
    metrics: Arc<OriginMetrics>,
    /// Guards the state machine only.
    state: Mutex<State>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { probing: bool },
}

impl CircuitBreaker {
    pub(crate) fn new(policy: BreakerPolicy, metrics: Arc<OriginMetrics>) -> Self {
        CircuitBreaker {
            inner: Arc::new(Inner {
                policy,
                metrics,
                state: Mutex::new(State::Closed { failures: 0 }),
            }),
        }
    }
}

impl Inner {
    fn report(&self, outcome: Option<bool>, probe: bool) {
        let mut st = self.state.lock();
        let transition = match (outcome, *st) {
            // Neutral: give the probe slot back.
            (None, State::HalfOpen { .. }) if probe => {
                *st = State::HalfOpen { probing: false };
                None
            }
            (None, _) => None,
            (Some(true), State::HalfOpen { .. }) => {
                *st = State::Closed { failures: 0 };
                Some(BreakerTransition::Closed)
            }
            (Some(true), _) => {
                if let State::Closed { .. } = *st {
                    *st = State::Closed { failures: 0 };
                }
                None
            }
            (Some(false), State::HalfOpen { .. }) => {
                *st = State::Open {
                    until: self.reopen_at(),
                };
                Some(BreakerTransition::Opened)
            }
            (Some(false), State::Closed { failures }) => {
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
            (Some(false), State::Open { .. }) => None,
        };
        drop(st);
        if let Some(t) = transition {
            if t == BreakerTransition::Opened {
                log::warn!(
                    "circuit breaker for {} opened after {} consecutive failures; \
                     failing fast for {:?}",
                    self.metrics.origin,
                    self.policy.failure_threshold,
                    self.policy.cooldown
                );
            } else {
                log::info!("circuit breaker for {} closed", self.metrics.origin);
            }
            self.metrics.breaker(t);
        }
    }

    fn reopen_at(&self) -> Instant {
        Instant::now()
            .checked_add(self.policy.cooldown)
            .unwrap_or_else(Instant::now)
    }
}

impl Breaker for CircuitBreaker {
    fn allow(&self) -> Result<Permit> {
        let this = &self.inner;
        if this.policy.failure_threshold == 0 {
            return Ok(Permit::unchecked());
        }
        let mut st = this.state.lock();
        let probe = match *st {
            State::Closed { .. } => false,
            State::Open { until } => {
                let now = Instant::now();
                if now < until {
                    return Err(Error::CircuitOpen {
                        origin: this.metrics.origin.clone(),
                        retry_in: until - now,
                    });
                }
                *st = State::HalfOpen { probing: true };
                this.metrics.breaker(BreakerTransition::HalfOpened);
                true
            }
            State::HalfOpen { probing: false } => {
                *st = State::HalfOpen { probing: true };
                true
            }
            State::HalfOpen { probing: true } => {
                return Err(Error::CircuitOpen {
                    origin: this.metrics.origin.clone(),
                    retry_in: Duration::ZERO,
                });
            }
        };
        drop(st);
        let me = this.clone();
        Ok(Permit::new(move |outcome| me.report(outcome, probe)))
    }

    fn is_open(&self) -> bool {
        !matches!(*self.inner.state.lock(), State::Closed { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(threshold: u32, cooldown: Duration) -> CircuitBreaker {
        let metrics = Arc::new(OriginMetrics::new("http://t".into(), None));
        CircuitBreaker::new(
            BreakerPolicy {
                failure_threshold: threshold,
                cooldown,
            },
            metrics,
        )
    }

    #[test]
    fn opens_after_consecutive_failures_only() {
        let b = breaker(3, Duration::from_secs(60));
        b.allow().unwrap().failure();
        b.allow().unwrap().failure();
        b.allow().unwrap().success();
        b.allow().unwrap().failure();
        b.allow().unwrap().failure();
        assert!(!b.is_open());
        b.allow().unwrap().failure();
        assert!(b.is_open());
        assert!(matches!(b.allow(), Err(Error::CircuitOpen { .. })));
    }

    #[test]
    fn half_open_lets_one_probe_and_a_neutral_probe_gives_it_back() {
        let b = breaker(1, Duration::ZERO);
        b.allow().unwrap().failure();
        let probe = b.allow().unwrap();
        assert!(b.allow().is_err(), "only one probe at a time");
        drop(probe);
        let probe = b.allow().unwrap();
        probe.failure();
        let probe = b.allow().unwrap();
        probe.success();
        assert!(!b.is_open());
        b.allow().unwrap().success();
    }

    #[test]
    fn zero_threshold_disables_it() {
        let b = breaker(0, Duration::from_secs(60));
        for _ in 0..100 {
            b.allow().unwrap().failure();
        }
        assert!(!b.is_open());
    }
}
