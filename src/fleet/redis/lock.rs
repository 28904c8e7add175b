//! A project's lock in Redis: a key `PREFIX:lock:KEY` set with `SET NX PX`,
//! holding who took it (pid, host, start, and a random token), kept fresh
//! by a thread while it is held and deleted (only if still ours) when it is
//! dropped.
//!
//! With a project queue the claim of the stream entry is what gives a
//! worker its project; the key is the guard against two workers on one
//! project (a worker that stalled past its lease while another reclaimed
//! the entry), and the fence of the journal: a journal write checks, in the
//! same script, that the key is still this holder's ([`super::journal`]).
//! A holder that dies leaves a key that expires one lease after its last
//! refresh.

use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{RecvTimeoutError, Sender};

use super::Redis;
use crate::cancel::CancelToken;
use crate::migrate::{LockHolder, LockWait, MigrateError};

/// How often a waiting taker tries again.
const POLL: Duration = Duration::from_millis(200);

/// Deletes the key only if it still holds our token.
const RELEASE: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
     return redis.call('DEL', KEYS[1]) else return 0 end";

/// Extends the key's expiry only if it still holds our token.
const REFRESH: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
     return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end";

/// A held lock; dropping it stops the refresher and deletes the key.
pub struct RedisLock {
    redis: Redis,
    key: String,
    /// The key's value: who holds it, and a random token.
    token: String,
    stop: Option<Sender<()>>,
    refresher: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for RedisLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLock").field("key", &self.key).finish()
    }
}

impl RedisLock {
    /// Takes the lock `key` for `lease` (refreshed every third of it while
    /// held), waiting as `wait` says; `cancel` ends a wait early.
    /// [`MigrateError::Locked`] names the holder when another has it.
    pub fn acquire(
        redis: &Redis,
        key: String,
        lease: Duration,
        wait: LockWait,
        cancel: Option<&CancelToken>,
    ) -> Result<RedisLock, MigrateError> {
        let mut conn = redis.connect()?;
        let token = format!(
            "{} token={:016x}",
            LockHolder::me().encode().trim_end(),
            fastrand::u64(..)
        );
        let start = Instant::now();
        let deadline = match wait {
            LockWait::No => Some(start),
            LockWait::For(d) => start.checked_add(d),
            LockWait::Forever => None,
        };
        let ms = millis(lease);
        loop {
            let set: Option<String> = redis::cmd("SET")
                .arg(&key)
                .arg(&token)
                .arg("NX")
                .arg("PX")
                .arg(ms)
                .query(&mut conn)
                .map_err(|e| redis.error("locking a project on", e))?;
            if set.is_some() {
                return Ok(RedisLock::hold(redis.clone(), key, token, lease));
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                let held: Option<String> = redis::cmd("GET")
                    .arg(&key)
                    .query(&mut conn)
                    .map_err(|e| redis.error("reading a lock on", e))?;
                return Err(MigrateError::Locked {
                    path: format!("{} {key}", redis.shown()).into(),
                    holder: LockHolder::decode(held.as_deref().unwrap_or("")),
                    waited: (wait != LockWait::No).then(|| now.duration_since(start)),
                });
            }
            let pause = deadline.map_or(POLL, |d| POLL.min(d.saturating_duration_since(now)));
            match cancel {
                Some(token) if token.wait_timeout(pause) => {
                    return Err(crate::Error::Cancelled.into());
                }
                Some(_) => {}
                None => std::thread::sleep(pause),
            }
        }
    }

    fn hold(redis: Redis, key: String, token: String, lease: Duration) -> RedisLock {
        let (stop, stopped) = crossbeam_channel::bounded::<()>(0);
        let (r, k, t) = (redis.clone(), key.clone(), token.clone());
        let refresher = std::thread::Builder::new()
            .name("etlpool-lock".into())
            .spawn(move || refresh_until_stopped(&r, &k, &t, lease, &stopped));
        let refresher = match refresher {
            Ok(handle) => Some(handle),
            Err(e) => {
                // The key still expires after the lease; the journal's
                // fenced writes then stop the run.
                log::error!("cannot start the refresher of lock {key}: {e}");
                None
            }
        };
        RedisLock {
            redis,
            key,
            token,
            stop: Some(stop),
            refresher,
        }
    }

    /// The key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The key's value while we hold it (what a fenced write compares).
    pub(crate) fn token(&self) -> &str {
        &self.token
    }
}

fn refresh_until_stopped(
    redis: &Redis,
    key: &str,
    token: &str,
    lease: Duration,
    stopped: &crossbeam_channel::Receiver<()>,
) {
    let script = redis::Script::new(REFRESH);
    let mut conn = None;
    let mut lost_logged = false;
    while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(lease / 3) {
        let result = match conn.take().map_or_else(|| redis.connect(), Ok) {
            Ok(mut c) => {
                let r: redis::RedisResult<i64> =
                    script.key(key).arg(token).arg(millis(lease)).invoke(&mut c);
                conn = Some(c);
                r.map_err(|e| redis.error("refreshing a lock on", e))
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(1) => lost_logged = false,
            Ok(_) if !lost_logged => {
                lost_logged = true;
                log::error!(
                    "lock {key} is no longer ours (it expired, and another worker may hold \
                     it): this run's journal takes no more records"
                );
            }
            Ok(_) => {}
            Err(e) => {
                conn = None;
                log::warn!("{}", crate::error::error_chain(&e));
            }
        }
    }
}

impl Drop for RedisLock {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(handle) = self.refresher.take() {
            let _ = handle.join();
        }
        let released = self.redis.connect().and_then(|mut conn| {
            redis::Script::new(RELEASE)
                .key(&self.key)
                .arg(&self.token)
                .invoke::<i64>(&mut conn)
                .map_err(|e| self.redis.error("releasing a lock on", e))
        });
        // The key expires by itself after the lease.
        if let Err(e) = released {
            log::warn!("{}", crate::error::error_chain(&e));
        }
    }
}

/// A duration in whole milliseconds, at least 1.
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}
