//! An origin's circuit breaker whose opening every process sees.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::super::lock::millis;
use super::SharedBudget;
use crate::cancel::CancelToken;
use crate::metrics::BreakerTransition;
use crate::policy::{Admission, Breaker, BreakerOpen, BreakerState, Outcome};

/// A [`Breaker`] around a local one (the built-in
/// [`CircuitBreaker`](crate::policy::CircuitBreaker) from
/// [`SharedBudget::policies`]): the local one counts this process's
/// failures, and when it opens, a key with its cooldown as the expiry tells
/// every process to fail fast until then. A probe that closes a breaker
/// anywhere deletes the key. Without Redis it is the local breaker alone.
pub struct RedisBreaker {
    budget: SharedBudget,
    inner: Arc<dyn Breaker>,
    open_key: String,
    /// Guards when another process's opening ends, as last read (for
    /// [`Breaker::state`], which doesn't ask Redis), and whether it was
    /// logged.
    shared_open: Mutex<Option<Instant>>,
}

impl RedisBreaker {
    /// The breaker of `origin`, around `inner`.
    pub fn new(budget: &SharedBudget, origin: &str, inner: Arc<dyn Breaker>) -> RedisBreaker {
        RedisBreaker {
            budget: budget.clone(),
            inner,
            open_key: budget.key(origin, "open"),
            shared_open: Mutex::new(None),
        }
    }

    /// How long the shared opening lasts: `None` if none is set, or Redis
    /// can't be reached.
    fn shared_retry_in(&self) -> Option<Duration> {
        let ms: i64 = self
            .budget
            .call("reading the shared circuit breaker on", |c| {
                redis::cmd("PTTL").arg(&self.open_key).query(c)
            })?;
        let mut seen = self.shared_open.lock();
        if ms <= 0 {
            *seen = None;
            return None;
        }
        let retry_in = Duration::from_millis(ms.unsigned_abs());
        if seen.is_none() {
            log::warn!(
                "{}: another process opened the circuit breaker; failing fast for {retry_in:?}",
                self.open_key
            );
        }
        *seen = Instant::now().checked_add(retry_in);
        Some(retry_in)
    }

    /// An admission of the local breaker stands unless another process's
    /// opening is shared.
    fn unless_shared_open(
        &self,
        admission: Admission,
    ) -> std::result::Result<Admission, BreakerOpen> {
        match self.shared_retry_in() {
            Some(retry_in) => {
                // Not sent: give the local breaker its admission back.
                self.inner.record(admission, Outcome::Neutral);
                Err(BreakerOpen { retry_in })
            }
            None => Ok(admission),
        }
    }
}

impl Breaker for RedisBreaker {
    fn allow(&self) -> std::result::Result<Admission, BreakerOpen> {
        self.unless_shared_open(self.inner.allow()?)
    }

    /// Waits as the local breaker does while another caller's probe is out
    /// (the default would fail at once), then asks Redis.
    fn allow_until(
        &self,
        deadline: Option<Instant>,
        cancel: Option<&CancelToken>,
    ) -> std::result::Result<Admission, BreakerOpen> {
        self.unless_shared_open(self.inner.allow_until(deadline, cancel)?)
    }

    fn record(&self, admission: Admission, outcome: Outcome) -> Option<BreakerTransition> {
        let transition = self.inner.record(admission, outcome);
        match transition {
            Some(BreakerTransition::Opened) => {
                if let BreakerState::Open { retry_in } = self.inner.state() {
                    let holder = format!("pid {}", std::process::id());
                    self.budget
                        .call("opening the shared circuit breaker on", |c| {
                            redis::cmd("SET")
                                .arg(&self.open_key)
                                .arg(holder)
                                .arg("PX")
                                .arg(millis(retry_in))
                                .exec(c)
                        });
                }
            }
            Some(BreakerTransition::Closed) => {
                *self.shared_open.lock() = None;
                self.budget
                    .call("closing the shared circuit breaker on", |c| {
                        redis::cmd("DEL").arg(&self.open_key).exec(c)
                    });
            }
            _ => {}
        }
        transition
    }

    fn state(&self) -> BreakerState {
        let local = self.inner.state();
        let shared = *self.shared_open.lock();
        match (local, shared) {
            (BreakerState::Closed, Some(until)) if until > Instant::now() => BreakerState::Open {
                retry_in: until - Instant::now(),
            },
            _ => local,
        }
    }
}
