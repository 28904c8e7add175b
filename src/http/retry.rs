//! When a request may be sent again, and after how long.
//!
//! The rule is that a retry must never duplicate a write:
//!
//! * a connect failure (nothing was sent) is retried for any method;
//! * idempotent methods (GET, HEAD, PUT, DELETE, OPTIONS) are retried on
//!   transport errors and on 429, 502, 503 and 504;
//! * POST and PATCH only on a connect failure, on 429 (the server refused it
//!   unprocessed), or when they carry an `Idempotency-Key`;
//! * a reused keep-alive connection that died before any response byte is
//!   retried once on a fresh connection, idempotent methods only, outside the
//!   budget (RFC 9110 9.2.2: a POST is not resent automatically).
//!
//! `Retry-After` (seconds or an HTTP date) replaces the backoff, capped; a
//! per-origin budget caps retries as a share of recent requests.

use std::time::{Duration, SystemTime};

use crate::backoff::Backoff;
use crate::error::{Error, TransportKind};
use crate::metrics::RetryReason;

/// How a call is retried. Every field has a default (see `Default`).
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt. Defaults to 4. A 429 is retried
    /// beyond this, for as long as the call's `total_timeout` allows (it
    /// waits in the origin's pause); 0 turns every retry off, 429s included.
    pub max_retries: u32,
    /// Exponential backoff with full jitter: the first wait is at most `base`,
    /// doubling to at most `cap`. Defaults to 200 ms and 10 s.
    pub backoff: Backoff,
    /// The longest `Retry-After` honoured; longer ones are cut to this. Defaults
    /// to 60 s.
    pub retry_after_cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 4,
            backoff: Backoff {
                base: Duration::from_millis(200),
                cap: Duration::from_secs(10),
            },
            retry_after_cap: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub fn none() -> Self {
        RetryPolicy {
            max_retries: 0,
            ..RetryPolicy::default()
        }
    }

    pub(crate) fn validate(&self) -> crate::Result<()> {
        if self.backoff.base > self.backoff.cap {
            return Err(Error::config("retry.backoff", "base must not exceed cap"));
        }
        Ok(())
    }
}

/// What a request is allowed, by method and headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Safety {
    /// Sending it twice has the effect of sending it once.
    pub(crate) idempotent: bool,
}

impl Safety {
    pub(crate) fn of(method: &str, has_idempotency_key: bool) -> Safety {
        let idempotent = matches!(
            method,
            "GET" | "HEAD" | "PUT" | "DELETE" | "OPTIONS" | "TRACE"
        );
        Safety {
            idempotent: idempotent || has_idempotency_key,
        }
    }
}

/// Why a failed attempt may be retried, and whether it spends budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Retry {
    pub(crate) reason: RetryReason,
    /// Stale-connection retries are free: the request never reached the server.
    pub(crate) uses_budget: bool,
}

/// Decides whether a transport failure may be retried. `stale_used` says whether
/// the one free stale-connection retry was already taken.
pub(crate) fn after_error(safety: Safety, error: &Error, stale_used: bool) -> Option<Retry> {
    let Error::Request(r) = error else {
        return None;
    };
    if r.is_stale_connection() && safety.idempotent && !stale_used {
        return Some(Retry {
            reason: RetryReason::StaleConnection,
            uses_budget: false,
        });
    }
    let budgeted = |reason| {
        Some(Retry {
            reason,
            uses_budget: true,
        })
    };
    match r.kind {
        TransportKind::Tls => None,
        TransportKind::Connect | TransportKind::Dns if !r.exchange.sent => {
            budgeted(RetryReason::Connect)
        }
        // A connect timeout also means nothing was sent.
        TransportKind::Timeout if !r.exchange.sent => budgeted(RetryReason::Connect),
        _ if safety.idempotent => budgeted(RetryReason::Transport),
        _ => None,
    }
}

/// Decides whether a status may be retried.
pub(crate) fn after_status(safety: Safety, status: u16) -> Option<Retry> {
    let reason = match status {
        429 => RetryReason::TooManyRequests,
        502..=504 if safety.idempotent => RetryReason::ServerError,
        _ => return None,
    };
    Some(Retry {
        reason,
        // A 429 waits in the origin's pause, which holds every request of
        // the origin: it adds no load a budget must guard against.
        uses_budget: reason != RetryReason::TooManyRequests,
    })
}

/// Parses `Retry-After`: delay-seconds or an HTTP date, relative to `now`.
/// A date in the past means "now"; garbage means "no advice".
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_rules_follow_the_method() {
        let get = Safety::of("GET", false);
        let post = Safety::of("POST", false);
        let keyed = Safety::of("POST", true);
        assert!(after_status(get, 503).is_some());
        assert!(after_status(get, 500).is_none(), "500 is a bug, not a blip");
        assert!(after_status(post, 503).is_none());
        assert!(after_status(post, 429).is_some());
        assert!(after_status(keyed, 502).is_some());
        assert!(after_status(get, 404).is_none());
    }

    #[test]
    fn retry_after_takes_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after(" 7 ", now), Some(Duration::from_secs(7)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(
            parse_retry_after(&later, now),
            Some(Duration::from_secs(30))
        );
        let past = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(parse_retry_after(&past, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-1", now), None);
    }

    #[test]
    fn policy_validation_names_the_key() {
        let bad = RetryPolicy {
            backoff: Backoff {
                base: Duration::from_secs(2),
                cap: Duration::from_secs(1),
            },
            ..RetryPolicy::default()
        };
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("retry.backoff")
        );
    }
}
