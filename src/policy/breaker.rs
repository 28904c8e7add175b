//! The circuit breaker of one origin.
//!
//! The built-in breaker opens on a failure *rate*: when, over the last
//! `window`, at least `minimum_calls` calls were judged and at least
//! `failure_rate` of them (and at least `failure_threshold`) failed, or when
//! the last `consecutive_failures` judged calls all failed (an outage after a
//! busy healthy spell must not wait for the spell's successes to slide out
//! of the window). A blip (a few 503s, one dropped connection) never opens
//! it; an outage does. Only
//! real failures of the service count: the client reports 5xx answers and
//! transport errors of a call's first attempt as failures, and never a 4xx
//! (the server is up), a retry (one bad call would count several times), or a
//! stale keep-alive connection (the server closed an idle socket; the client
//! resends on a fresh one under the same admission, without asking again).
//!
//! Open, it fails calls fast, without touching the server, for `cooldown`;
//! then it half-opens and lets exactly one probe through. Other callers wait
//! for the probe's outcome ([`Breaker::allow_until`]) instead of each taking
//! a turn: success closes the breaker and lets them all go, failure opens it
//! again and they fail fast with the time to the next probe.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;

use super::window::SlidingCounts;
use crate::cancel::CancelToken;
use crate::error::{Error, Result};
use crate::metrics::BreakerTransition;

/// Settings of the built-in [`CircuitBreaker`]. Build with
/// `BreakerPolicy { cooldown: ..., ..BreakerPolicy::default() }`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerPolicy {
    /// The fewest failed calls in the window that may open the breaker; 0
    /// disables the breaker. Defaults to 10.
    pub failure_threshold: u32,
    /// Share of the window's judged calls that must have failed to open it,
    /// in `0.0..=1.0`. Defaults to 0.5.
    pub failure_rate: f64,
    /// Calls the window must hold before its rate is judged. Defaults to 20.
    pub minimum_calls: u32,
    /// The sliding window calls are counted over. Defaults to 10 s.
    pub window: Duration,
    /// Judged calls failing in a row that open the breaker whatever the
    /// window's rate; 0 leaves only the rate. Defaults to 20 (on a healthy
    /// service failing 5 % of calls, 20 in a row is a one-in-10^26 event).
    pub consecutive_failures: u32,
    /// How long it stays open before a probe. Defaults to 30 s.
    pub cooldown: Duration,
}

impl Default for BreakerPolicy {
    fn default() -> Self {
        BreakerPolicy {
            failure_threshold: 10,
            failure_rate: 0.5,
            minimum_calls: 20,
            window: Duration::from_secs(10),
            consecutive_failures: 20,
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

    /// A breaker that opens once `failures` calls in a row (within the
    /// window) have failed: the rate at 100 % over that many calls. For tests
    /// and for services where any run of failures means an outage.
    pub fn after_failures(failures: u32) -> Self {
        BreakerPolicy {
            failure_threshold: failures,
            failure_rate: 1.0,
            minimum_calls: failures,
            consecutive_failures: failures,
            ..BreakerPolicy::default()
        }
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if !(0.0..=1.0).contains(&self.failure_rate) {
            return Err(Error::config(
                "breaker.failure_rate",
                "must be between 0 and 1",
            ));
        }
        if self.window.is_zero() {
            return Err(Error::config("breaker.window", "must be greater than zero"));
        }
        Ok(())
    }
}

/// How an attempt went, as far as the server's health goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The server answered in a way that shows it works (2xx to 4xx).
    Success,
    /// A transport error or a 5xx on a call's first attempt.
    Failure,
    /// The attempt said nothing about the server (cancelled, no connection
    /// free, a retry, a stale keep-alive connection, an attempt timed out on
    /// its call's own deadline).
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
    /// When the next probe may go. Zero when a probe is out right now (its
    /// outcome decides; [`Breaker::allow_until`] waits for it) or the
    /// cooldown is over and the next caller will be the probe.
    pub retry_in: Duration,
}

/// Where a breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BreakerState {
    /// Calls go through.
    Closed,
    /// Calls fail fast; the next caller after `retry_in` becomes the probe.
    /// Wait that long (zero: try now) and call again.
    Open {
        /// Time to the next probe: what is left of the cooldown.
        retry_in: Duration,
    },
    /// One probe is out (or due); callers wait for its outcome.
    HalfOpen,
}

/// Decides whether attempts to one origin may go out.
///
/// Implement it to share a breaker between processes; the built-in one is
/// [`CircuitBreaker`]. Every attempt asks [`allow_until`](Breaker::allow_until)
/// (or [`allow`](Breaker::allow)) and then reports exactly once through
/// [`record`](Breaker::record), whatever happens (the client reports
/// [`Outcome::Neutral`] if the attempt unwinds, for retries, and for a stale
/// keep-alive connection, whose free resend reuses the same admission).
pub trait Breaker: Send + Sync + 'static {
    /// Asks to send an attempt; never blocks.
    fn allow(&self) -> std::result::Result<Admission, BreakerOpen>;
    /// Asks to send an attempt, waiting (until `deadline`, or until
    /// cancelled) while another caller's probe is out rather than failing at
    /// once. The default doesn't wait: it is [`allow`](Breaker::allow).
    fn allow_until(
        &self,
        deadline: Option<Instant>,
        cancel: Option<&CancelToken>,
    ) -> std::result::Result<Admission, BreakerOpen> {
        let _ = (deadline, cancel);
        self.allow()
    }
    /// Reports how an admitted attempt went; returns the state change it caused,
    /// if any, so the caller can count and log it once.
    fn record(&self, admission: Admission, outcome: Outcome) -> Option<BreakerTransition>;
    /// The state now.
    fn state(&self) -> BreakerState;
}

/// The in-memory breaker of one origin.
pub struct CircuitBreaker {
    policy: BreakerPolicy,
    /// Guards the state machine and the window's counts.
    state: Mutex<Inner>,
}

struct Inner {
    state: State,
    /// Judged calls and failures (first attempts and probes only).
    window: SlidingCounts,
    /// Judged calls that failed since the last one that succeeded.
    streak: u32,
}

enum State {
    Closed,
    Open {
        until: Instant,
    },
    /// `probe` is `Some` while the probe is out: dropping its sender (when
    /// the probe's outcome is recorded) wakes every caller waiting on it.
    HalfOpen {
        probe: Option<(Sender<Infallible>, Receiver<Infallible>)>,
    },
}

impl CircuitBreaker {
    /// A closed breaker with `policy`.
    pub fn new(policy: BreakerPolicy) -> Self {
        CircuitBreaker {
            policy,
            state: Mutex::new(Inner {
                state: State::Closed,
                window: SlidingCounts::new(policy.window),
                streak: 0,
            }),
        }
    }

    fn disabled(&self) -> bool {
        self.policy.failure_threshold == 0
    }

    fn reopen_at(&self) -> Instant {
        Instant::now()
            .checked_add(self.policy.cooldown)
            .unwrap_or_else(Instant::now)
    }

    /// Whether the run of failures or the window's counts call for opening.
    fn tripped(&self, inner: &Inner, now: Instant) -> bool {
        let p = &self.policy;
        if p.consecutive_failures > 0 && inner.streak >= p.consecutive_failures {
            return true;
        }
        let (calls, failures) = inner.window.totals(now);
        calls >= u64::from(p.minimum_calls.max(1))
            && failures >= u64::from(p.failure_threshold)
            && failures as f64 >= p.failure_rate * calls as f64
    }

    /// One decision: an admission, a refusal, or a probe to wait for.
    fn try_allow(&self) -> Decision {
        let mut st = self.state.lock();
        match &mut st.state {
            State::Closed => Decision::Admit(Admission::closed()),
            State::Open { until } => {
                let now = Instant::now();
                if now < *until {
                    return Decision::Refuse(BreakerOpen {
                        retry_in: *until - now,
                    });
                }
                st.state = State::HalfOpen {
                    probe: Some(crossbeam_channel::bounded(0)),
                };
                Decision::Admit(Admission::probe(true))
            }
            State::HalfOpen {
                probe: Some((_, done)),
            } => Decision::Wait(done.clone()),
            State::HalfOpen { probe } => {
                *probe = Some(crossbeam_channel::bounded(0));
                Decision::Admit(Admission::probe(false))
            }
        }
    }
}

enum Decision {
    Admit(Admission),
    Refuse(BreakerOpen),
    /// A probe is out: this disconnects when its outcome is recorded.
    Wait(Receiver<Infallible>),
}

impl Breaker for CircuitBreaker {
    fn allow(&self) -> std::result::Result<Admission, BreakerOpen> {
        if self.disabled() {
            return Ok(Admission::closed());
        }
        match self.try_allow() {
            Decision::Admit(a) => Ok(a),
            Decision::Refuse(open) => Err(open),
            Decision::Wait(_) => Err(BreakerOpen {
                retry_in: Duration::ZERO,
            }),
        }
    }

    fn allow_until(
        &self,
        deadline: Option<Instant>,
        cancel: Option<&CancelToken>,
    ) -> std::result::Result<Admission, BreakerOpen> {
        if self.disabled() {
            return Ok(Admission::closed());
        }
        let never = crossbeam_channel::never();
        let cancelled = cancel.map_or(&never, |c| c.receiver());
        loop {
            let done = match self.try_allow() {
                Decision::Admit(a) => return Ok(a),
                Decision::Refuse(open) => return Err(open),
                Decision::Wait(done) => done,
            };
            let timeout = deadline.map_or_else(crossbeam_channel::never, crossbeam_channel::at);
            crossbeam_channel::select! {
                recv(done) -> _ => continue,
                recv(cancelled) -> _ => {}
                recv(timeout) -> _ => {}
            }
            return Err(BreakerOpen {
                retry_in: Duration::ZERO,
            });
        }
    }

    fn record(&self, admission: Admission, outcome: Outcome) -> Option<BreakerTransition> {
        if self.disabled() {
            return None;
        }
        let now = Instant::now();
        let mut st = self.state.lock();
        if admission.probe {
            if !matches!(st.state, State::HalfOpen { .. }) {
                return None;
            }
            // Replacing the state drops the probe's sender: its waiters wake.
            return match outcome {
                Outcome::Neutral => {
                    st.state = State::HalfOpen { probe: None };
                    None
                }
                Outcome::Success => {
                    st.state = State::Closed;
                    st.window.clear();
                    st.streak = 0;
                    Some(BreakerTransition::Closed)
                }
                Outcome::Failure => {
                    st.state = State::Open {
                        until: self.reopen_at(),
                    };
                    Some(BreakerTransition::Opened)
                }
            };
        }
        // An ordinary admission: it counts only while the breaker is closed
        // (one admitted before the breaker opened says nothing about a probe).
        if !matches!(st.state, State::Closed) {
            return None;
        }
        match outcome {
            Outcome::Neutral => return None,
            Outcome::Success => {
                st.window.add(now, 1, 0);
                st.streak = 0;
            }
            Outcome::Failure => {
                st.window.add(now, 1, 1);
                st.streak = st.streak.saturating_add(1);
            }
        }
        if outcome == Outcome::Failure && self.tripped(&st, now) {
            st.window.clear();
            st.streak = 0;
            st.state = State::Open {
                until: self.reopen_at(),
            };
            return Some(BreakerTransition::Opened);
        }
        None
    }

    fn state(&self) -> BreakerState {
        match &self.state.lock().state {
            State::Closed => BreakerState::Closed,
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

    fn breaker(policy: BreakerPolicy) -> CircuitBreaker {
        CircuitBreaker::new(policy)
    }

    fn attempt(b: &CircuitBreaker, outcome: Outcome) -> Option<BreakerTransition> {
        let admission = b.allow().expect("admitted");
        b.record(admission, outcome)
    }

    #[test]
    fn opens_on_the_rate_over_the_minimum_calls_only() {
        let b = breaker(BreakerPolicy {
            cooldown: Duration::from_secs(60),
            ..BreakerPolicy::default()
        });
        // 19 calls, all failed: not enough calls to judge.
        for _ in 0..19 {
            assert_eq!(attempt(&b, Outcome::Failure), None);
        }
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(
            attempt(&b, Outcome::Failure),
            Some(BreakerTransition::Opened)
        );
        assert!(matches!(b.state(), BreakerState::Open { .. }));
        assert!(b.allow().is_err());
    }

    #[test]
    fn a_failure_rate_under_the_threshold_never_opens() {
        let b = breaker(BreakerPolicy::default());
        // 40 % failures, far more than the minimum of calls.
        for i in 0..200 {
            let outcome = if i % 5 < 2 {
                Outcome::Failure
            } else {
                Outcome::Success
            };
            assert_eq!(attempt(&b, outcome), None, "call {i}");
        }
        assert_eq!(b.state(), BreakerState::Closed);
        // Neutral outcomes are not calls.
        for _ in 0..100 {
            attempt(&b, Outcome::Neutral);
        }
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[test]
    fn an_outage_after_a_busy_healthy_spell_opens_it_on_the_run_of_failures() {
        let b = breaker(BreakerPolicy::default());
        // A thousand successes in the window: a rate of 50 % is far off.
        for _ in 0..1000 {
            attempt(&b, Outcome::Success);
        }
        for i in 1..20 {
            assert_eq!(attempt(&b, Outcome::Failure), None, "failure {i}");
        }
        assert_eq!(
            attempt(&b, Outcome::Failure),
            Some(BreakerTransition::Opened)
        );
        // A success breaks a run: 19 failures, a success, 19 more stay closed.
        let b = breaker(BreakerPolicy::default());
        for _ in 0..1000 {
            attempt(&b, Outcome::Success);
        }
        for outcome in [Outcome::Failure; 19]
            .into_iter()
            .chain([Outcome::Success])
            .chain([Outcome::Failure; 19])
        {
            assert_eq!(attempt(&b, outcome), None);
        }
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[test]
    fn half_open_lets_one_probe_and_a_neutral_probe_gives_it_back() {
        let b = breaker(BreakerPolicy {
            cooldown: Duration::ZERO,
            ..BreakerPolicy::after_failures(1)
        });
        attempt(&b, Outcome::Failure);
        let probe = b.allow().unwrap();
        assert!(probe.is_probe() && probe.half_opened());
        assert_eq!(
            b.allow(),
            Err(BreakerOpen {
                retry_in: Duration::ZERO
            }),
            "only one probe at a time"
        );
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
    fn a_call_admitted_before_the_breaker_opened_decides_nothing_after() {
        let b = breaker(BreakerPolicy {
            cooldown: Duration::ZERO,
            ..BreakerPolicy::after_failures(1)
        });
        let early = b.allow().unwrap();
        attempt(&b, Outcome::Failure);
        let probe = b.allow().unwrap();
        assert_eq!(b.record(early, Outcome::Success), None);
        assert_eq!(b.state(), BreakerState::HalfOpen);
        assert_eq!(
            b.record(probe, Outcome::Success),
            Some(BreakerTransition::Closed)
        );
    }

    #[test]
    fn callers_wait_for_the_probe_instead_of_failing_or_probing() {
        let b = breaker(BreakerPolicy {
            cooldown: Duration::ZERO,
            ..BreakerPolicy::after_failures(1)
        });
        attempt(&b, Outcome::Failure);
        let probe = b.allow().unwrap();
        let far = Instant::now() + Duration::from_secs(30);
        std::thread::scope(|s| {
            let waiters: Vec<_> = (0..4)
                .map(|_| s.spawn(|| b.allow_until(Some(far), None)))
                .collect();
            // The waiters block until the probe's outcome is in; then each
            // is an ordinary admission of a closed breaker.
            assert_eq!(
                b.record(probe, Outcome::Success),
                Some(BreakerTransition::Closed)
            );
            for w in waiters {
                assert_eq!(w.join().unwrap(), Ok(Admission::closed()));
            }
        });
        // A failed probe sends its waiters away with the time to the next one
        // (or, for a waiter so late that the cooldown is over, makes it the
        // next probe).
        let cooldown = Duration::from_millis(100);
        let b = breaker(BreakerPolicy {
            cooldown,
            ..BreakerPolicy::after_failures(1)
        });
        attempt(&b, Outcome::Failure);
        std::thread::sleep(cooldown);
        let probe = b.allow().unwrap();
        std::thread::scope(|s| {
            let waiter = s.spawn(|| b.allow_until(None, None));
            b.record(probe, Outcome::Failure);
            match waiter.join().unwrap() {
                Err(refused) => assert!(refused.retry_in <= cooldown, "{refused:?}"),
                Ok(admission) => assert!(admission.is_probe()),
            }
        });
        // A cancelled wait ends at once.
        let b = breaker(BreakerPolicy {
            cooldown: Duration::ZERO,
            ..BreakerPolicy::after_failures(1)
        });
        attempt(&b, Outcome::Failure);
        let _probe = b.allow().unwrap();
        let cancel = CancelToken::new();
        cancel.cancel();
        assert!(b.allow_until(None, Some(&cancel)).is_err());
    }

    #[test]
    fn zero_threshold_disables_it() {
        let b = breaker(BreakerPolicy::disabled());
        for _ in 0..100 {
            attempt(&b, Outcome::Failure);
        }
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[test]
    fn validation_names_the_key() {
        let bad = BreakerPolicy {
            failure_rate: 1.5,
            ..BreakerPolicy::default()
        };
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("breaker.failure_rate")
        );
    }
}
