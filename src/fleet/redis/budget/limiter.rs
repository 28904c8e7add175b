//! An origin's rate limiter kept in Redis, for every process at once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::super::lock::millis;
use super::SharedBudget;
use crate::cancel::CancelToken;
use crate::policy::{Denied, Limiter, RateFeedback, RateLimit, TokenBucket, sleep};

/// Takes the next slot of the origin's schedule: GCRA over the "theoretical
/// arrival time" in `KEYS[1]` (µs on Redis's clock, so the processes' clocks
/// don't matter), after the pause in `KEYS[2]` if one is set. `ARGV`: the
/// interval (µs, 0: no rate), the burst's tolerance (µs), the longest wait
/// the caller takes (µs, -1: any), the longest pause this process keeps (ms:
/// a pause key left with a longer expiry, by hand or by a build with another
/// `max_pause`, holds it no longer than its own). Returns {taken (1/0), wait µs, pause ms,
/// members}: the members registered in `KEYS[3]` are counted on every turn,
/// so a process knows its share the moment Redis goes away.
const ACQUIRE: &str = r"
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local max_wait = tonumber(ARGV[3])
local pause = redis.call('PTTL', KEYS[2])
if pause < 0 then pause = 0 end
pause = math.min(pause, tonumber(ARGV[4]))
local members = redis.call('ZCOUNT', KEYS[3], math.floor(now / 1000), '+inf')
local at = now + pause * 1000
if interval <= 0 then
  if max_wait >= 0 and at - now > max_wait then return {0, at - now, pause, members} end
  return {1, at - now, pause, members}
end
local tat = tonumber(redis.call('GET', KEYS[1])) or now
-- A schedule this far ahead comes from Redis's clock stepping back, not
-- from callers queueing: start again from now.
if tat > now + math.max(60000000, interval * 1000) then tat = now end
local base = math.max(tat, at)
local slot = math.max(at, base - tolerance)
if max_wait >= 0 and slot - now > max_wait then return {0, slot - now, pause, members} end
local next_tat = base + interval
redis.call('SET', KEYS[1], string.format('%.0f', next_tat), 'PX',
  math.floor((next_tat - now) / 1000) + 1000)
return {1, slot - now, pause, members}
";

/// Sets the pause in `KEYS[1]` to `ARGV[1]` ms unless a longer one is set.
const PAUSE: &str = r"
local ms = tonumber(ARGV[1])
if redis.call('PTTL', KEYS[1]) < ms then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ms)
  return 1
end
return 0
";

/// Makes the local limiter of a process that goes on alone, from its share
/// of the rate.
pub type FallbackFactory = dyn Fn(RateLimit) -> Arc<dyn Limiter> + Send + Sync;

/// An origin's [`Limiter`] in Redis: every process using the same Redis,
/// prefix and origin takes its turns from one schedule, and a pause one of
/// them learns (a 429, a spent budget) holds them all back.
///
/// It wraps a local limiter for when Redis can't be reached: a
/// [`TokenBucket`] (or one from [`RedisLimiter::with_fallback`]) at this
/// process's share of the rate, made when Redis is lost, and told of every
/// pause this process knows of.
pub struct RedisLimiter {
    budget: SharedBudget,
    limit: RateLimit,
    /// The script's interval and tolerance, µs.
    interval_us: u64,
    tolerance_us: u64,
    tat_key: String,
    pause_key: String,
    members_key: String,
    acquire: redis::Script,
    pause: redis::Script,
    make_fallback: Box<FallbackFactory>,
    /// Guards the local limiter in use, and the loss of Redis it was made for.
    fallback: Mutex<Option<(u64, Arc<dyn Limiter>)>>,
    /// The longest pause this process knows of, shared or its own: a
    /// fallback made later still keeps it.
    paused_until: Mutex<Option<Instant>>,
    /// A local limiter without a rate that hears every answer, so that what
    /// the built-in one learns (the growing floor of a 429 without
    /// `Retry-After`, a spent announced budget, the month's floor) is
    /// learned here the same way and then shared, not re-implemented.
    learner: TokenBucket,
}

impl RedisLimiter {
    /// The limiter of `origin`, keeping all processes together to `limit`.
    pub fn new(budget: &SharedBudget, origin: &str, limit: RateLimit) -> RedisLimiter {
        let interval = limit
            .per_second
            .filter(|r| *r > 0.0 && r.is_finite())
            .map(|r| Duration::from_secs_f64(1.0 / r));
        let interval_us = interval.map_or(0, |i| micros(i).max(1));
        RedisLimiter {
            budget: budget.clone(),
            limit,
            interval_us,
            tolerance_us: interval_us.saturating_mul(u64::from(limit.burst.max(1) - 1)),
            tat_key: budget.key(origin, "tat"),
            pause_key: budget.key(origin, "pause"),
            members_key: budget.shared.members_key(),
            acquire: redis::Script::new(ACQUIRE),
            pause: redis::Script::new(PAUSE),
            make_fallback: Box::new(|limit| Arc::new(TokenBucket::new(limit))),
            fallback: Mutex::new(None),
            paused_until: Mutex::new(None),
            learner: TokenBucket::new(RateLimit {
                per_second: None,
                burst: 1,
                ..limit
            }),
        }
    }

    /// Makes the local limiter of a process going on alone with `factory`,
    /// given this process's share of the rate, instead of a [`TokenBucket`].
    pub fn with_fallback(
        mut self,
        factory: impl Fn(RateLimit) -> Arc<dyn Limiter> + Send + Sync + 'static,
    ) -> RedisLimiter {
        self.make_fallback = Box::new(factory);
        self
    }

    /// This process's share of the rate: the rate and the burst times the
    /// share (a burst of at least 1).
    pub fn share_of_limit(&self) -> RateLimit {
        let share = self.budget.share();
        RateLimit {
            // A share so small that the interval wouldn't fit a `Duration`
            // (the local limiter would panic) is one turn in ~30 years.
            per_second: self.limit.per_second.map(|r| (r * share).max(MIN_RATE)),
            burst: ((f64::from(self.limit.burst) * share).ceil() as u32).max(1),
            ..self.limit
        }
    }

    /// The local limiter for the current loss of Redis, made if needed.
    fn fallback(&self) -> Arc<dyn Limiter> {
        let loss = self.budget.losses();
        let mut current = self.fallback.lock();
        if let Some((made_for, limiter)) = current.as_ref()
            && *made_for == loss
        {
            return limiter.clone();
        }
        let limit = self.share_of_limit();
        log::debug!(
            "{}: a local limiter at {:?} req/s (burst {}) while Redis is away",
            self.tat_key,
            limit.per_second,
            limit.burst
        );
        let limiter = (self.make_fallback)(limit);
        if let Some(until) = *self.paused_until.lock() {
            limiter.pause_until(until);
        }
        *current = Some((loss, limiter.clone()));
        limiter
    }

    /// The local limiter if one was made.
    fn fallback_if_made(&self) -> Option<Arc<dyn Limiter>> {
        self.fallback.lock().as_ref().map(|(_, l)| l.clone())
    }

    /// Remembers a pause until `until` (the longest wins).
    fn remember_pause(&self, until: Instant) {
        let mut paused = self.paused_until.lock();
        if paused.is_none_or(|p| until > p) {
            *paused = Some(until);
        }
    }

    /// Takes a turn from Redis: `None` if Redis can't be reached.
    fn shared_turn(
        &self,
        start: Instant,
        deadline: Option<Instant>,
    ) -> Option<std::result::Result<Duration, Duration>> {
        let max_wait = deadline.map_or(-1, |d| {
            i64::try_from(micros(d.saturating_duration_since(start))).unwrap_or(i64::MAX)
        });
        let (taken, wait_us, pause_ms, members): (i64, i64, i64, u32) =
            self.budget
                .call("taking a turn of the shared rate budget on", |c| {
                    self.acquire
                        .key(&self.tat_key)
                        .key(&self.pause_key)
                        .key(&self.members_key)
                        .arg(self.interval_us)
                        .arg(self.tolerance_us)
                        .arg(max_wait)
                        .arg(millis(self.limit.max_pause))
                        .invoke(c)
                })?;
        self.budget.shared.counted(members);
        if pause_ms > 0
            && let Some(until) = start.checked_add(Duration::from_millis(pause_ms.unsigned_abs()))
        {
            self.remember_pause(until);
        }
        let wait = Duration::from_micros(wait_us.max(0).unsigned_abs());
        Some(if taken == 1 { Ok(wait) } else { Err(wait) })
    }
}

impl Limiter for RedisLimiter {
    fn acquire(
        &self,
        deadline: Option<Instant>,
        cancel: Option<&CancelToken>,
    ) -> std::result::Result<Duration, Denied> {
        let start = Instant::now();
        // The month's floor is this process's own finding (Redis doesn't
        // share it): a turn it refuses is refused here. Asked with a deadline
        // of now, the learner never sleeps.
        if let Err(exhausted @ Denied::Exhausted { .. }) = self.learner.acquire(Some(start), cancel)
        {
            return Err(exhausted);
        }
        match self.shared_turn(start, deadline) {
            Some(Ok(wait)) => {
                if !wait.is_zero() {
                    sleep(wait, cancel).map_err(|_| Denied::Cancelled)?;
                }
                Ok(wait)
            }
            Some(Err(wait)) => Err(Denied::PastDeadline { wait }),
            None => self.fallback().acquire(deadline, cancel),
        }
    }

    fn pause_until(&self, until: Instant) {
        let now = Instant::now();
        let until = now
            .checked_add(self.limit.max_pause)
            .map_or(until, |cap| until.min(cap));
        if until <= now {
            return;
        }
        self.remember_pause(until);
        self.learner.pause_until(until);
        if let Some(local) = self.fallback_if_made() {
            local.pause_until(until);
        }
        let ms = millis(until - now);
        let holder = format!("pid {}", std::process::id());
        self.budget.call("pausing the shared rate budget on", |c| {
            self.pause
                .key(&self.pause_key)
                .arg(ms)
                .arg(&holder)
                .invoke::<i64>(c)
        });
    }

    fn observe(&self, feedback: &RateFeedback) {
        if let Some(local) = self.fallback_if_made() {
            local.observe(feedback);
        }
        // Whatever pause the answer calls for (a 429, with or without
        // `Retry-After`; a spent budget) holds every process, as it does the
        // built-in limiter's workers. Only a longer one than known is sent.
        self.learner.observe(feedback);
        let now = Instant::now();
        let held = self.learner.pause_remaining();
        if !held.is_zero()
            && let Some(until) = now.checked_add(held)
            && self.paused_until.lock().is_none_or(|known| until > known)
        {
            self.pause_until(until);
        }
    }

    fn pause_remaining(&self) -> Duration {
        let now = Instant::now();
        let shared = self
            .paused_until
            .lock()
            .map_or(Duration::ZERO, |until| until.saturating_duration_since(now));
        shared.max(self.learner.pause_remaining())
    }

    fn unanswered(&self) {
        self.learner.unanswered();
        if let Some(local) = self.fallback_if_made() {
            local.unanswered();
        }
    }
}

/// The least rate of a process alone: one turn in about 30 years.
const MIN_RATE: f64 = 1e-9;

/// A duration in whole microseconds.
fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::super::BudgetOptions;
    use super::*;
    use crate::fleet::redis::Redis;

    /// A budget whose Redis never answers (nothing listens on port 9 of
    /// loopback), with a fixed share.
    fn alone(share: Option<f64>) -> SharedBudget {
        let redis = Redis::open("redis://127.0.0.1:9", None, "etlpool").unwrap();
        SharedBudget::start(
            &redis,
            BudgetOptions {
                share,
                ..BudgetOptions::default()
            },
        )
        .unwrap()
    }

    #[test]
    fn a_process_alone_keeps_to_its_share_of_the_rate_and_the_burst() {
        let budget = alone(Some(0.25));
        assert!(!budget.reachable());
        let limit = RateLimit {
            per_second: Some(40.0),
            burst: 6,
            ..RateLimit::default()
        };
        let limiter = RedisLimiter::new(&budget, "http://h", limit);
        let share = limiter.share_of_limit();
        assert_eq!(share.per_second, Some(10.0));
        assert_eq!(share.burst, 2);
        // Never reached: the whole rate, as nothing says how many share it.
        let limiter = RedisLimiter::new(&alone(None), "http://h", limit);
        assert_eq!(limiter.share_of_limit().per_second, Some(40.0));
    }

    #[test]
    fn without_redis_the_fallback_spaces_turns_and_keeps_known_pauses() {
        let budget = alone(Some(0.5));
        let limiter = RedisLimiter::new(
            &budget,
            "http://h",
            RateLimit {
                per_second: Some(20.0),
                ..RateLimit::default()
            },
        );
        limiter.pause_until(Instant::now() + Duration::from_millis(200));
        let waited = limiter.acquire(None, None).unwrap();
        assert!(waited >= Duration::from_millis(150), "{waited:?}");
        // 10/s alone: the next turn is 100 ms after this one.
        let waited = limiter.acquire(None, None).unwrap();
        assert!(waited >= Duration::from_millis(80), "{waited:?}");
        let denied = limiter.acquire(Some(Instant::now()), None);
        assert!(
            matches!(denied, Err(Denied::PastDeadline { .. })),
            "{denied:?}"
        );
    }

    #[test]
    fn shares_outside_zero_to_one_are_refused() {
        for share in [0.0, -1.0, 1.5, f64::NAN] {
            let options = BudgetOptions {
                share: Some(share),
                ..BudgetOptions::default()
            };
            assert!(options.validate().is_err(), "{share}");
        }
    }
}
