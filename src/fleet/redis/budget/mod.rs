//! One rate budget per service for many processes on any machines, kept in
//! Redis (feature `redis`).
//!
//! [`SharedBudget`] is a process's link to that Redis: one connection with
//! short timeouts, the process's registration as a member (a heartbeat every
//! second, so the others can count it), and whether Redis can be reached. It
//! makes each origin's policies ([`SharedBudget::policies`]):
//!
//! - a [`RedisLimiter`]: the origin's schedule is one GCRA "theoretical
//!   arrival time" in Redis, advanced by an atomic Lua script, so all the
//!   processes together stay under one rate; a 429's pause, or an exhausted
//!   `X-RateLimit-Remaining`, is a key with an expiry that holds every
//!   process back until it ends;
//! - a [`RedisBreaker`]: a breaker that opens in one process sets a key with
//!   the breaker's cooldown as its expiry, and every process fails fast
//!   until it expires (or a probe somewhere closes it).
//!
//! Keys, under the fleet's prefix (`--redis-prefix`):
//!
//! | Key | Type | Holds |
//! |---|---|---|
//! | `PREFIX:budget:members` | sorted set | member id -> when its registration expires (ms) |
//! | `PREFIX:budget:ORIGIN:tat` | string with an expiry | the origin's next free slot (µs, Redis's clock) |
//! | `PREFIX:budget:ORIGIN:pause` | string with an expiry | a pause every process keeps (429, budget spent) |
//! | `PREFIX:budget:ORIGIN:open` | string with an expiry | an open breaker, for its cooldown |
//!
//! When Redis can't be reached, each process goes on alone: its limiters
//! fall back to local ones at its share of each rate ([`BudgetOptions::share`],
//! else 1/N of the members last counted), one WARN says so, and the heartbeat
//! keeps trying; when it answers again the process rejoins (one INFO).
//! Every call to Redis has a short timeout ([`BudgetOptions::timeout`]), and
//! once Redis is known to be down no request waits for it.

mod breaker;
mod limiter;

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use crossbeam_channel::{RecvTimeoutError, Sender};
use parking_lot::Mutex;

use super::Redis;
use crate::error::{Error, Result};
use crate::policy::{CircuitBreaker, OriginPolicies, PolicySettings};

pub use breaker::RedisBreaker;
pub use limiter::RedisLimiter;

/// Registers a member until `ARGV[2]` ms from now, drops the expired ones,
/// and counts them.
const MEMBERS: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return redis.call('ZCARD', KEYS[1])
";

/// How a process takes part in a shared budget.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BudgetOptions {
    /// The share of each rate this process keeps to while Redis can't be
    /// reached, in (0, 1]; `None`: 1/N of the members last counted (the
    /// whole rate if Redis was never reached). Defaults to `None`.
    pub share: Option<f64>,
    /// How long connecting to Redis, and each answer, may take before the
    /// process goes on alone. Defaults to 250 ms.
    pub timeout: Duration,
    /// How often the process renews its membership (and, while alone, tries
    /// Redis again); a member that misses three is no longer counted.
    /// Defaults to 1 s.
    pub heartbeat: Duration,
}

impl Default for BudgetOptions {
    fn default() -> Self {
        BudgetOptions {
            share: None,
            timeout: Duration::from_millis(250),
            heartbeat: Duration::from_secs(1),
        }
    }
}

impl BudgetOptions {
    /// Checks the settings; the error names the key.
    pub fn validate(&self) -> Result<()> {
        if self.share.is_some_and(|s| !(s > 0.0 && s <= 1.0)) {
            return Err(Error::config(
                "budget_share",
                "must be more than 0 and at most 1 (e.g. 0.25, 1/4 or 25%)",
            ));
        }
        if self.timeout.is_zero() || self.heartbeat.is_zero() {
            return Err(Error::config(
                "budget",
                "the Redis timeout and the heartbeat must be longer than zero",
            ));
        }
        Ok(())
    }
}

/// A process's part in the shared budgets of one Redis; cheap to clone.
/// Dropping the last clone stops the heartbeat and deregisters the process.
#[derive(Clone)]
pub struct SharedBudget {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for SharedBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedBudget")
            .field("redis", &self.shared.redis)
            .field("member", &self.shared.member)
            .field("reachable", &self.reachable())
            .field("members", &self.members())
            .finish()
    }
}

/// What the budget's handles, the limiters, breakers and heartbeat share.
struct Shared {
    redis: Redis,
    options: BudgetOptions,
    /// This process's id among the members.
    member: String,
    /// The connection of requests; guards its use, one call at a time.
    conn: Mutex<Option<redis::Connection>>,
    /// Whether Redis answered last time it was asked.
    reachable: AtomicBool,
    /// Counts the times Redis was lost, so a limiter knows its fallback
    /// is from an earlier loss (and the share may have changed).
    losses: AtomicU64,
    /// The members counted last; 0 before the first count.
    members: AtomicU32,
    /// Dropped with the last handle: that stops the heartbeat.
    _stop: Sender<()>,
}

impl SharedBudget {
    /// Joins the budgets kept in `redis`: registers this process (one call,
    /// within the timeout) and starts its heartbeat. An unreachable Redis is
    /// no error: the process starts alone and joins when Redis answers.
    pub fn start(redis: &Redis, options: BudgetOptions) -> Result<SharedBudget> {
        options.validate()?;
        let (stop, stopped) = crossbeam_channel::bounded::<()>(0);
        let shared = Arc::new(Shared {
            redis: redis.clone(),
            options,
            member: format!(
                "{}-{}-{:08x}",
                crate::migrate::LockHolder::me().host.unwrap_or_default(),
                std::process::id(),
                fastrand::u32(..)
            ),
            conn: Mutex::new(None),
            reachable: AtomicBool::new(true),
            losses: AtomicU64::new(0),
            members: AtomicU32::new(0),
            _stop: stop,
        });
        let mut beat = Heartbeat {
            shared: Arc::downgrade(&shared),
            redis: redis.clone(),
            member: shared.member.clone(),
            options,
            conn: None,
        };
        beat.beat(&shared);
        std::thread::Builder::new()
            .name("etlpool-budget".into())
            .spawn(move || beat.run(&stopped))
            .map_err(|e| Error::io("starting the shared budget's heartbeat thread", e))?;
        Ok(SharedBudget { shared })
    }

    /// The policies of `origin` (e.g. `https://api.example.com`): a
    /// [`RedisLimiter`] keeping to `settings.rate_limit` together with every
    /// other process, a [`RedisBreaker`] around the built-in breaker, and
    /// the built-in retry budget (retries stay each process's own). Give
    /// them to [`Pool::set_policies`](crate::Pool::set_policies).
    pub fn policies(&self, origin: &str, settings: PolicySettings) -> OriginPolicies {
        let limiter = RedisLimiter::new(self, origin, settings.rate_limit);
        let breaker = RedisBreaker::new(
            self,
            origin,
            Arc::new(CircuitBreaker::new(settings.breaker)),
        );
        OriginPolicies::builder()
            .rate_limit(settings.rate_limit)
            .breaker_policy(settings.breaker)
            .budget_policy(settings.budget)
            .limiter_keeping_settings(Arc::new(limiter))
            .breaker_keeping_settings(Arc::new(breaker))
            .build()
    }

    /// Whether Redis answered last time it was asked.
    pub fn reachable(&self) -> bool {
        self.shared.reachable.load(Ordering::Relaxed)
    }

    /// The members counted last (this process included); 0 before Redis
    /// was first reached.
    pub fn members(&self) -> u32 {
        self.shared.members.load(Ordering::Relaxed)
    }

    /// The share of each rate this process keeps to while alone: the one
    /// configured, else 1/N of the members last counted, else all of it.
    pub fn share(&self) -> f64 {
        self.shared.share()
    }

    /// `PREFIX:budget:origin:part`.
    fn key(&self, origin: &str, part: &str) -> String {
        self.shared.redis.key(&["budget", origin, part])
    }

    /// How many times Redis was lost so far.
    fn losses(&self) -> u64 {
        self.shared.losses.load(Ordering::Relaxed)
    }

    /// Runs `f` on the request connection (connecting first if needed); an
    /// error marks Redis lost. `None` while Redis is lost, without waiting.
    fn call<T>(
        &self,
        what: &str,
        f: impl FnOnce(&mut redis::Connection) -> redis::RedisResult<T>,
    ) -> Option<T> {
        if !self.reachable() {
            return None;
        }
        let s = &self.shared;
        let mut conn = s.conn.lock();
        // Another caller may have lost Redis while this one waited.
        if !self.reachable() {
            return None;
        }
        let result = match conn.take() {
            Some(c) => Ok(c),
            None => s.redis.connect_within(s.options.timeout, s.options.timeout),
        }
        .and_then(|mut c| match f(&mut c) {
            Ok(v) => {
                *conn = Some(c);
                Ok(v)
            }
            Err(e) => Err(s.redis.error(what, e)),
        });
        drop(conn);
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                s.lost(&e);
                None
            }
        }
    }
}

impl Shared {
    /// `PREFIX:budget:members`.
    fn members_key(&self) -> String {
        members_key(&self.redis)
    }

    /// Records a count of the members (at least this process).
    fn counted(&self, members: u32) {
        self.members.store(members.max(1), Ordering::Relaxed);
    }

    /// See [`SharedBudget::share`].
    fn share(&self) -> f64 {
        self.options.share.unwrap_or_else(|| {
            let n = self.members.load(Ordering::Relaxed).max(1);
            1.0 / f64::from(n)
        })
    }

    /// Redis failed: the first failure since it last answered says so once.
    fn lost(&self, e: &Error) {
        if self.reachable.swap(false, Ordering::Relaxed) {
            self.losses.fetch_add(1, Ordering::Relaxed);
            log::warn!(
                "shared rate budget: {}; going on alone at this process's share ({:.3}) of \
                 each rate until Redis answers again",
                crate::error::error_chain(e),
                self.share()
            );
        }
    }

    /// Redis answered: rejoin if it was lost.
    fn answered(&self) {
        if !self.reachable.swap(true, Ordering::Relaxed) {
            log::info!(
                "shared rate budget: Redis at {} answers again; rejoined the shared budget",
                self.redis.shown()
            );
        }
    }
}

/// The heartbeat thread's state: its own connection, so a slow request
/// never delays a heartbeat and the other way round.
struct Heartbeat {
    shared: Weak<Shared>,
    redis: Redis,
    member: String,
    options: BudgetOptions,
    conn: Option<redis::Connection>,
}

impl Heartbeat {
    fn run(mut self, stopped: &crossbeam_channel::Receiver<()>) {
        while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(self.options.heartbeat) {
            let Some(shared) = self.shared.upgrade() else {
                break;
            };
            self.beat(&shared);
        }
        // Deregister, so the others' share grows at once; a process that
        // dies without this is dropped after three heartbeats.
        if let Some(conn) = self.conn.as_mut() {
            let _ = redis::cmd("ZREM")
                .arg(members_key(&self.redis))
                .arg(&self.member)
                .exec(conn);
        }
    }

    /// Renews the membership and counts the members.
    fn beat(&mut self, shared: &Shared) {
        let ttl = super::lock::millis(self.options.heartbeat * 3);
        let counted = match self.conn.take() {
            Some(c) => Ok(c),
            None => self
                .redis
                .connect_within(self.options.timeout, self.options.timeout),
        }
        .and_then(|mut c| {
            let n = redis::Script::new(MEMBERS)
                .key(members_key(&self.redis))
                .arg(&self.member)
                .arg(ttl)
                .invoke::<u32>(&mut c)
                .map_err(|e| self.redis.error("registering with the shared budget on", e))?;
            self.conn = Some(c);
            Ok(n)
        });
        match counted {
            Ok(n) => {
                shared.counted(n);
                shared.answered();
            }
            Err(e) => shared.lost(&e),
        }
    }
}

/// `PREFIX:budget:members`: the processes of the budget.
fn members_key(redis: &Redis) -> String {
    redis.key(&["budget", "members"])
}
