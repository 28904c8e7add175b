//! The pool's health: one cheap request on demand ([`crate::Pool::check`]) and a
//! per-origin view of connections, breaker and errors ([`crate::Pool::health`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};
use ureq::http::Request;

use super::host::HostPool;
use crate::error::{Error, Result};
use crate::metrics::{LastError, unix_ms};
use crate::policy::BreakerState;

/// The answer to [`crate::Pool::check`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Probe {
    /// The origin checked.
    pub origin: String,
    /// The status it answered.
    pub status: u16,
    /// From sending the request to the last body byte.
    pub latency: Duration,
    /// It went out on a connection that had carried an earlier request.
    pub reused: bool,
}

/// The pool's health at one moment, from [`crate::Pool::health`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Health {
    /// When the view was taken, in milliseconds since the Unix epoch.
    pub taken_at_unix_ms: u64,
    /// Per origin, keyed by `scheme://host[:port]`.
    pub origins: BTreeMap<String, OriginHealth>,
}

/// One origin's health.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct OriginHealth {
    /// Leases held now.
    pub in_use: u64,
    /// Idle agents now.
    pub idle: u64,
    /// Callers waiting for a lease now.
    pub waiting: u64,
    /// Sockets open now, lent or idle.
    pub open_connections: u64,
    /// The circuit breaker's state: `closed`, `open` or `half_open`; `None`
    /// while no client of the origin has given it policies.
    pub breaker: Option<String>,
    /// For an open breaker, the time to its next probe, in milliseconds.
    pub breaker_retry_in_ms: Option<u64>,
    /// The last failure seen for the origin.
    pub last_error: Option<LastError>,
    /// When the cleaner last went over the origin, in milliseconds since the
    /// Unix epoch.
    pub last_cleanup_unix_ms: Option<u64>,
}

pub(crate) fn check(host: &Arc<HostPool>, path: &str) -> Result<Probe> {
    let path = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    let url = format!("{}{path}", host.origin);
    let request = Request::get(url.as_str())
        .body(())
        .map_err(|e| Error::InvalidUrl {
            url: crate::redact::url(&url),
            reason: e.to_string(),
        })?;
    let lease = host.lease()?;
    let start = Instant::now();
    let reply = lease.send(request)?;
    Ok(Probe {
        origin: host.origin.to_string(),
        status: reply.status(),
        latency: start.elapsed(),
        reused: lease.last_exchange().reused,
    })
}

pub(crate) fn view(hosts: &[Arc<HostPool>]) -> Health {
    let origins = hosts
        .iter()
        .map(|h| (h.origin.to_string(), origin_health(h)))
        .collect();
    Health {
        taken_at_unix_ms: unix_ms(SystemTime::now()),
        origins,
    }
}

fn origin_health(host: &HostPool) -> OriginHealth {
    let gauges = host.gauges();
    let breaker = host.policies_if_made().map(|p| p.breaker().state());
    let (breaker, retry_in) = match breaker {
        None => (None, None),
        Some(BreakerState::Closed) => (Some("closed"), None),
        Some(BreakerState::HalfOpen) => (Some("half_open"), None),
        Some(BreakerState::Open { retry_in }) => (
            Some("open"),
            Some(u64::try_from(retry_in.as_millis()).unwrap_or(u64::MAX)),
        ),
    };
    OriginHealth {
        in_use: gauges.in_use as u64,
        idle: gauges.idle as u64,
        waiting: gauges.waiting as u64,
        open_connections: host.metrics.open_now() as u64,
        breaker: breaker.map(str::to_string),
        breaker_retry_in_ms: retry_in,
        last_error: host.metrics.last_error(),
        last_cleanup_unix_ms: host.last_cleanup().map(unix_ms),
    }
}
