//! Projects, journals, locks and the shared rate budget in Redis (feature
//! `redis`).
//!
//! One Redis serves a fleet of `etlpool` processes on any machines. Its keys,
//! all under a prefix (`etlpool` by default, `--redis-prefix`):
//!
//! | Key | Type | Holds |
//! |---|---|---|
//! | `PREFIX:projects` | stream, consumer group `workers` | one entry per queued project ([`queue`]) |
//! | `PREFIX:status` | hash | project key -> `waiting`, `running`, `done`, `failed` |
//! | `PREFIX:info` | hash | project key -> JSON: the project, worker, times, attempts, last error |
//! | `PREFIX:journal:KEY` | hash | the project's journal: `kind,source_key` -> `target_id,version_id` ([`journal`]) |
//! | `PREFIX:lock:KEY` | string with an expiry | the project's lock: who holds it ([`lock`]) |
//! | `PREFIX:budget:…` | sorted set, strings with expiries | the shared rate budget: members, each origin's schedule, pause and open breaker ([`budget`]) |
//!
//! The client is redis-rs's synchronous one: every call is a short request
//! on loopback or a LAN, made from the thread that needs it.

pub mod budget;
pub mod journal;
pub mod lock;
pub mod queue;

use std::time::Duration;

use crate::error::Error;

pub use journal::{RedisJournal, export as export_journal, import as import_journal};
pub use lock::RedisLock;
pub use queue::{
    Enqueued, Finish, Heartbeat, ProjectInfo, ProjectQueue, ProjectState, Projects, QueuedProject,
    Settled, Taken, Unreadable,
};

/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long one reply may take (a blocking stream read asks for less).
pub(crate) const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// A Redis server and the prefix of etlpool's keys there; cheap to clone.
#[derive(Clone)]
pub struct Redis {
    client: redis::Client,
    /// The URL without its password, for messages.
    shown: String,
    prefix: String,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis")
            .field("url", &self.shown)
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl Redis {
    /// A Redis at `url` (`redis://[user[:password]@]host[:port][/db]`),
    /// `password` (if given) replacing the URL's, keys under `prefix`.
    /// Nothing is connected yet.
    pub fn open(url: &str, password: Option<&str>, prefix: &str) -> Result<Redis, Error> {
        let shown = crate::redact::url(url);
        let bad = |message: String| Error::config("redis", message);
        if prefix.is_empty() || prefix.contains(char::is_whitespace) {
            return Err(bad(format!(
                "the key prefix {prefix:?} must be a word without spaces"
            )));
        }
        let mut info: redis::ConnectionInfo = url
            .parse()
            .map_err(|e: redis::RedisError| bad(format!("{shown} is not a Redis URL: {e}")))?;
        if let Some(password) = password {
            info.redis.password = Some(password.to_string());
        }
        if matches!(info.addr, redis::ConnectionAddr::TcpTls { .. }) {
            return Err(bad(format!(
                "{shown}: this etlpool speaks plain redis:// only (reach a TLS Redis \
                 through a local TLS tunnel)"
            )));
        }
        let client = redis::Client::open(info).map_err(|e| bad(format!("{shown}: {e}")))?;
        Ok(Redis {
            client,
            shown,
            prefix: prefix.to_string(),
        })
    }

    /// A new connection, with a connect timeout and reply timeouts.
    pub fn connect(&self) -> Result<redis::Connection, Error> {
        self.connect_within(CONNECT_TIMEOUT, REPLY_TIMEOUT)
    }

    /// A new connection that may take `connect` to open and `reply` for
    /// each answer (the shared rate budget's are short: a dead Redis must
    /// not hold requests up).
    pub(crate) fn connect_within(
        &self,
        connect: Duration,
        reply: Duration,
    ) -> Result<redis::Connection, Error> {
        let conn = self
            .client
            .get_connection_with_timeout(connect)
            .map_err(|e| self.error("connecting to", e))?;
        conn.set_read_timeout(Some(reply))
            .and_then(|()| conn.set_write_timeout(Some(reply)))
            .map_err(|e| self.error("connecting to", e))?;
        Ok(conn)
    }

    /// The URL without its password.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// `PREFIX:part:part...`.
    pub(crate) fn key(&self, parts: &[&str]) -> String {
        let mut key = self.prefix.clone();
        for part in parts {
            key.push(':');
            key.push_str(part);
        }
        key
    }

    /// An error of a call to this Redis: what was being done, where, and
    /// redis-rs's error as the cause. A failed start on it exits 4.
    pub(crate) fn error(&self, what: &str, e: redis::RedisError) -> Error {
        Error::io(
            format!("{what} Redis at {}", self.shown),
            std::io::Error::other(e),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_and_shown_without_their_password() {
        let redis = Redis::open("redis://user:secret@127.0.0.1:6390/2", None, "etl").unwrap();
        assert_eq!(redis.shown(), "redis://127.0.0.1:6390/2");
        assert!(!format!("{redis:?}").contains("secret"));
        assert_eq!(redis.key(&["lock", "P"]), "etl:lock:P");
        for (url, prefix) in [
            ("http://127.0.0.1", "etlpool"),
            ("redis://127.0.0.1", "two words"),
            ("rediss://127.0.0.1", "etlpool"),
        ] {
            let err = Redis::open(url, None, prefix).unwrap_err().to_string();
            assert!(err.contains("redis"), "{err}");
        }
    }
}
