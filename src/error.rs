//! The crate's error type.
//!
//! One enum for everything etlpool can fail at, so a caller matches on one type
//! and a binary maps it to one exit code. Each variant says what went wrong and
//! where (origin, method, path, attempt), keeps its cause reachable through
//! [`std::error::Error::source`], and never carries a secret: URLs are passed
//! through [`crate::redact::url`] before they are stored.

use std::fmt;
use std::io;
use std::time::Duration;

/// A boxed error from a lower layer, kept as the `source()` of an [`Error`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Shorthand for `Result<T, etlpool::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in etlpool.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value is invalid; `key` names it as the user wrote it
    /// (a builder setter, an `ETLPOOL_*` variable or a config-file key).
    Config {
        /// The setting, e.g. `ETLPOOL_IDLE_TIMEOUT` or `max_connections_per_host`.
        key: String,
        /// What is wrong with it.
        message: String,
    },
    /// A URL can't be used as a base URL.
    InvalidUrl {
        /// The URL, redacted.
        url: String,
        /// Why it was rejected.
        reason: String,
    },
    /// No connection became free within the acquire timeout.
    PoolTimeout(Box<PoolTimeout>),
    /// The pool was shut down; no new leases are granted.
    PoolShutdown {
        /// The origin the lease was asked for.
        origin: String,
    },
    /// [`crate::Pool::init_global`] was called after the global pool was created with a
    /// different configuration.
    GlobalPoolConflict,
    /// TLS material could not be loaded or used (CA file, client certificate or key).
    Tls {
        /// What was being loaded, e.g. `client key /etc/etl/key.pem`.
        context: String,
        /// The underlying error, if any.
        source: Option<BoxError>,
    },
    /// Local I/O failed (reading a file, binding a socket).
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        source: io::Error,
    },
    /// A request failed before a complete response was received.
    Request(Box<RequestError>),
    /// A response body was larger than the configured limit.
    BodyTooLarge {
        /// Where the request went.
        at: RequestContext,
        /// The limit in bytes.
        limit: u64,
        /// The request was not idempotent and the server answered it: it
        /// may have acted, but what it made can't be read, so it must be
        /// looked up.
        outcome_unknown: bool,
    },
    /// The server answered with an error status (after any retries).
    Status(Box<StatusError>),
    /// A response body was not the JSON expected.
    Decode(Box<DecodeError>),
    /// The origin's circuit breaker is open: calls fail fast, without touching the
    /// server, until it lets a probe through.
    CircuitOpen {
        /// The origin.
        origin: String,
        /// Time until the breaker half-opens.
        retry_in: Duration,
    },
    /// The call's `total_timeout` ran out while it waited (for a lease, its
    /// socket, a login, a rate-limit pause).
    TotalTimeout {
        /// Where the request was going.
        at: RequestContext,
        /// Time spent on the call.
        elapsed: Duration,
        /// The wait that ran out, if the deadline came during one.
        waiting_for: Option<CallWait>,
    },
    /// The origin's monthly request budget is nearly spent: an answer said
    /// fewer requests are left this month (qTest's
    /// `x-ratelimit-remaining-month`) than the floor set to keep
    /// ([`RateLimit::month_floor`](crate::policy::RateLimit::month_floor)), so
    /// nothing more is sent to the origin until the process restarts. The
    /// request was not sent. A job should stop cleanly and run again when the
    /// budget is renewed (the `etlpool` command exits 3).
    BudgetExhausted {
        /// The origin.
        origin: String,
        /// Requests the server said were left in the month.
        remaining: u64,
        /// The floor they fell under.
        floor: u64,
    },
    /// A wait was cut short by cancellation (SIGINT or SIGTERM).
    Cancelled,
    /// A client with failover origins found none that could serve the call:
    /// each was unreachable, had its circuit breaker open, or failed in a way
    /// that let the call move on. Names every origin; the helpers
    /// ([`Error::is_transient`], [`Error::status`], ...) answer for the last
    /// origin's error, which is also the [`source`](std::error::Error::source).
    AllOriginsFailed(Box<FailoverError>),
    /// A download's redirect was not followed: too many hops (a loop ends
    /// there too), a downgrade from https to http, or a `Location` that
    /// can't be used. Names every hop, redacted.
    Redirect(Box<RedirectError>),
}

/// Details of an [`Error::Redirect`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedirectError {
    /// The request that was redirected (the first one).
    pub at: RequestContext,
    /// Why the last redirect was not followed.
    pub refused: RedirectRefusal,
    /// Every URL of the chain in order, redacted (query values masked: a
    /// pre-signed URL's are credentials): the request's own, each one a
    /// redirect led to, and last the one refused (when it could be read).
    pub hops: Vec<String>,
}

/// Why a redirect was not followed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RedirectRefusal {
    /// It would have been one more than the client's `max_redirects`.
    TooMany {
        /// The client's `max_redirects`.
        max: u32,
    },
    /// From an `https` URL to an `http` one: what the secure request asked
    /// for must not travel in clear.
    Downgrade,
    /// The `Location` can't be used: not an `http`/`https` URL, user-info
    /// in it, not a valid URL.
    BadLocation(String),
}

/// Details of an [`Error::AllOriginsFailed`].
#[derive(Debug)]
#[non_exhaustive]
pub struct FailoverError {
    /// Each origin in the order tried, primary first, with why it could not
    /// serve the call (the last one's reason is `last`'s message).
    pub origins: Vec<(String, String)>,
    /// The last origin's error.
    pub last: Error,
}

/// A wait inside a call that the call's `total_timeout` bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CallWait {
    /// For a lease of a pooled connection.
    Lease,
    /// For the leased agent's socket, held by another request (a body read
    /// after its lease was returned, or a clone of the agent): the socket claim.
    SocketClaim,
    /// For credentials: a login, or another caller's login in progress.
    Login,
    /// In the origin's rate-limit pause.
    RateLimit,
    /// For the outcome of the half-open circuit breaker's probe.
    BreakerProbe,
    /// For an identical GET in flight that this call joined (coalescing).
    SharedRequest,
}

impl fmt::Display for CallWait {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CallWait::Lease => "a lease",
            CallWait::SocketClaim => "its busy socket (socket claim)",
            CallWait::Login => "the login",
            CallWait::RateLimit => "the rate-limit pause",
            CallWait::BreakerProbe => "the circuit breaker's probe",
            CallWait::SharedRequest => "the identical request in flight (coalesced)",
        })
    }
}

/// Details of an [`Error::Status`].
#[derive(Debug)]
#[non_exhaustive]
pub struct StatusError {
    /// Where the request went.
    pub at: RequestContext,
    /// The status code.
    pub status: u16,
    /// A short, secret-free excerpt of the body.
    pub body: String,
    /// The request was not idempotent and the server answered 5xx: it may have
    /// acted on it before failing, so the outcome must be checked, not assumed.
    pub outcome_unknown: bool,
}

/// Details of an [`Error::Decode`].
#[derive(Debug)]
#[non_exhaustive]
pub struct DecodeError {
    /// Where the request went.
    pub at: RequestContext,
    /// The status of the response.
    pub status: u16,
    /// The response's content type, if any.
    pub content_type: Option<String>,
    /// A short, secret-free excerpt of the body.
    pub body: String,
    /// The JSON error; `None` when the content type alone ruled the body out.
    pub source: Option<serde_json::Error>,
    /// The request was not idempotent and the server said 2xx: it acted, but
    /// what it made (its id) can't be read, so it must be looked up. The
    /// message says so too.
    pub outcome_unknown: bool,
}

/// Where a request was going when it failed. Paths are redacted (no query values).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RequestContext {
    /// `scheme://host[:port]`.
    pub origin: String,
    /// The HTTP method.
    pub method: String,
    /// Path and redacted query.
    pub path: String,
    /// 1-based attempt number.
    pub attempt: u32,
}

impl fmt::Display for RequestContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}{}", self.method, self.origin, self.path)?;
        if self.attempt > 1 {
            write!(f, " (attempt {})", self.attempt)?;
        }
        Ok(())
    }
}

/// Details of a [`Error::PoolTimeout`]: the state of the host pool when the wait gave up.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolTimeout {
    /// The origin whose connections were all busy.
    pub origin: String,
    /// How long the caller waited.
    pub waited: Duration,
    /// Connection slots of this origin (in use + idle + closing).
    pub total: usize,
    /// Leases currently held.
    pub in_use: usize,
    /// Idle agents.
    pub idle: usize,
    /// Other callers waiting, not counting this one.
    pub waiting: usize,
    /// The per-host cap.
    pub max: usize,
    /// The pool-wide `max_connections_total` was the limit, not the per-host cap.
    pub total_cap_reached: bool,
}

/// How a request failed at the transport, as far as a retry decision is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TransportKind {
    /// The host name did not resolve.
    Dns,
    /// The TCP connection could not be made; nothing was sent.
    Connect,
    /// The TLS handshake failed (bad certificate, protocol mismatch); nothing was sent.
    Tls,
    /// A timeout fired; [`RequestError::timeout_phase`] says which.
    Timeout,
    /// The connection broke while sending or receiving.
    Io,
    /// The server sent something that is not valid HTTP.
    Protocol,
    /// Anything else.
    Other,
}

/// What a connection had done when a request failed, recorded by the pool's transport.
///
/// ureq's error alone can't tell "the reused connection died before any response
/// byte" (safe to resend an idempotent request) from "the response was cut off
/// halfway" (the server acted on it); these flags can.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct Exchange {
    /// Request bytes were handed to a connection.
    pub sent: bool,
    /// That connection had carried an earlier request.
    pub reused: bool,
    /// At least one byte of a response arrived.
    pub response_started: bool,
}

impl Exchange {
    /// True when the request went out on a reused connection that died before any
    /// response byte: the classic stale keep-alive race, where the server most
    /// likely closed the socket without reading the request.
    pub fn is_stale_connection(&self) -> bool {
        self.sent && self.reused && !self.response_started
    }
}

/// Details of an [`Error::Request`].
#[derive(Debug)]
#[non_exhaustive]
pub struct RequestError {
    /// Where the request went.
    pub at: RequestContext,
    /// The class of failure.
    pub kind: TransportKind,
    /// For [`TransportKind::Timeout`], the phase that timed out (ureq's name for it,
    /// e.g. `connect`, `recv_response`, `global`).
    pub timeout_phase: Option<String>,
    /// What the connection had done.
    pub exchange: Exchange,
    /// The request was not idempotent and was (at least partly) sent: the server
    /// may have acted on it, so it is not resent blindly.
    pub outcome_unknown: bool,
    /// The error from ureq.
    pub source: ureq::Error,
}

impl RequestError {
    /// Whether a reused keep-alive connection was found closed: sent on it,
    /// and neither an answer nor a timeout came back (a timeout means the
    /// connection was alive and the server silent, perhaps at work on it).
    pub fn is_stale_connection(&self) -> bool {
        self.exchange.is_stale_connection() && self.kind != TransportKind::Timeout
    }
}

impl Error {
    pub(crate) fn config(key: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Config {
            key: key.into(),
            message: message.into(),
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn tls(context: impl Into<String>, source: Option<BoxError>) -> Self {
        Error::Tls {
            context: context.into(),
            source,
        }
    }

    /// True for every kind of timeout: acquiring a lease, connecting, or waiting
    /// for the server.
    pub fn is_timeout(&self) -> bool {
        match self {
            Error::PoolTimeout(_) => true,
            Error::Request(r) => r.kind == TransportKind::Timeout,
            Error::TotalTimeout { .. } => true,
            Error::AllOriginsFailed(f) => f.last.is_timeout(),
            _ => false,
        }
    }

    /// The HTTP status, for [`Error::Status`] and [`Error::Decode`].
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Status(s) => Some(s.status),
            Error::Decode(d) => Some(d.status),
            Error::AllOriginsFailed(f) => f.last.status(),
            _ => None,
        }
    }

    /// True when a write may or may not have taken effect: a non-idempotent
    /// request that failed after it was sent, or was answered 5xx. Resolve it by
    /// looking the record up; never by sending it again blindly.
    pub fn is_outcome_unknown(&self) -> bool {
        match self {
            Error::Request(r) => r.outcome_unknown,
            Error::Status(s) => s.outcome_unknown,
            Error::Decode(d) => d.outcome_unknown,
            Error::BodyTooLarge {
                outcome_unknown, ..
            } => *outcome_unknown,
            Error::AllOriginsFailed(f) => f.last.is_outcome_unknown(),
            _ => false,
        }
    }

    /// True for failures that may pass if tried later: transport errors other
    /// than TLS, 429 and 5xx answers, timeouts and an open circuit. Decode errors,
    /// 4xx answers and configuration errors are not.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Request(r) => r.kind != TransportKind::Tls,
            Error::Status(s) => s.status == 429 || s.status >= 500,
            Error::PoolTimeout(_) | Error::CircuitOpen { .. } | Error::TotalTimeout { .. } => true,
            Error::AllOriginsFailed(f) => f.last.is_transient(),
            _ => false,
        }
    }

    /// This error, for a call that sent nothing because another call it
    /// needed (a login) failed: whatever that call's outcome, this one's is
    /// known.
    pub(crate) fn not_sent(mut self) -> Error {
        match &mut self {
            Error::Request(r) => r.outcome_unknown = false,
            Error::Status(s) => s.outcome_unknown = false,
            Error::Decode(d) => d.outcome_unknown = false,
            Error::BodyTooLarge {
                outcome_unknown, ..
            } => *outcome_unknown = false,
            Error::AllOriginsFailed(f) => {
                let last = std::mem::replace(&mut f.last, Error::Cancelled);
                f.last = last.not_sent();
            }
            _ => {}
        }
        self
    }

    /// The transport record of the failed request, for [`Error::Request`].
    pub fn exchange(&self) -> Option<Exchange> {
        match self {
            Error::Request(r) => Some(r.exchange),
            Error::AllOriginsFailed(f) => f.last.exchange(),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config { key, message } => write!(f, "invalid configuration {key}: {message}"),
            Error::InvalidUrl { url, reason } => write!(f, "invalid url {url:?}: {reason}"),
            Error::PoolTimeout(t) => {
                write!(
                    f,
                    "timed out after {:?} waiting for a connection to {} \
                     (total {}, in use {}, idle {}, waiting {}, max {})",
                    t.waited, t.origin, t.total, t.in_use, t.idle, t.waiting, t.max
                )?;
                if t.total_cap_reached {
                    f.write_str("; the pool-wide max_connections_total is reached")?;
                }
                Ok(())
            }
            Error::PoolShutdown { origin } => {
                write!(f, "connection pool is shut down (lease for {origin})")
            }
            Error::GlobalPoolConflict => f.write_str(
                "the global pool already exists with a different configuration; \
                 call Pool::init_global before first use",
            ),
            Error::Tls { context, .. } => write!(f, "tls: {context}"),
            Error::Io { context, .. } => write!(f, "{context}"),
            Error::Request(r) => {
                write!(f, "{}: {}", r.at, kind_text(r.kind))?;
                if let Some(phase) = &r.timeout_phase {
                    write!(f, " ({phase})")?;
                }
                if r.is_stale_connection() {
                    f.write_str(", reused connection closed before any response")?;
                } else if r.exchange.response_started {
                    f.write_str(", response cut off")?;
                }
                if r.outcome_unknown {
                    f.write_str(", outcome unknown (the server may have acted on it)")?;
                }
                write!(f, ": {}", r.source)
            }
            Error::BodyTooLarge {
                at,
                limit,
                outcome_unknown,
            } => {
                write!(f, "{at}: response body larger than {limit} bytes")?;
                if *outcome_unknown {
                    f.write_str(UNREADABLE_ANSWER)?;
                }
                Ok(())
            }
            Error::Status(s) => {
                write!(f, "{}: status {}", s.at, s.status)?;
                if s.outcome_unknown {
                    f.write_str(", outcome unknown (the server may have acted on it)")?;
                }
                if !s.body.is_empty() {
                    write!(f, ": {}", s.body)?;
                }
                Ok(())
            }
            Error::Decode(d) => {
                write!(f, "{}: status {}", d.at, d.status)?;
                if d.outcome_unknown {
                    f.write_str(UNREADABLE_ANSWER)?;
                }
                f.write_str(": ")?;
                match (&d.source, &d.content_type) {
                    (None, Some(ct)) => write!(f, "expected JSON, got content type {ct:?}")?,
                    (None, None) => f.write_str("expected JSON")?,
                    (Some(e), _) => write!(f, "invalid JSON ({e})")?,
                }
                write!(f, "; body starts {:?}", d.body)
            }
            Error::CircuitOpen { origin, retry_in } => write!(
                f,
                "circuit breaker for {origin} is open after repeated failures; \
                 next probe in {retry_in:?}"
            ),
            Error::TotalTimeout {
                at,
                elapsed,
                waiting_for,
            } => {
                write!(f, "{at}: total_timeout reached after {elapsed:?}")?;
                match waiting_for {
                    Some(wait) => write!(f, " waiting for {wait}"),
                    None => Ok(()),
                }
            }
            Error::BudgetExhausted {
                origin,
                remaining,
                floor,
            } => write!(
                f,
                "monthly request budget of {origin} nearly spent: {remaining} requests \
                 left this month, under the floor of {floor} kept for other users; \
                 stopped before it is gone (run again when it renews, or lower month_floor)"
            ),
            Error::Cancelled => f.write_str("cancelled"),
            Error::AllOriginsFailed(e) => {
                write!(f, "all {} origins failed", e.origins.len())?;
                for (i, (origin, reason)) in e.origins.iter().enumerate() {
                    let sep = if i == 0 { ": " } else { "; " };
                    write!(f, "{sep}{origin}: {reason}")?;
                }
                Ok(())
            }
            Error::Redirect(r) => {
                write!(f, "{}: ", r.at)?;
                match &r.refused {
                    RedirectRefusal::TooMany { max } => {
                        write!(f, "more than {max} redirects (max_redirects)")?
                    }
                    RedirectRefusal::Downgrade => {
                        f.write_str("redirect from https to http refused")?
                    }
                    RedirectRefusal::BadLocation(why) => {
                        write!(f, "redirect to an unusable Location ({why})")?
                    }
                }
                write!(f, ": {}", r.hops.join(" -> "))
            }
        }
    }
}

/// What a write's 2xx answer that can't be read means.
const UNREADABLE_ANSWER: &str = ", outcome unknown (the server took the request but its answer can't be read; look the record up)";

fn kind_text(kind: TransportKind) -> &'static str {
    match kind {
        TransportKind::Dns => "host not found",
        TransportKind::Connect => "connect failed",
        TransportKind::Tls => "tls handshake failed",
        TransportKind::Timeout => "timed out",
        TransportKind::Io => "connection failed",
        TransportKind::Protocol => "invalid http",
        TransportKind::Other => "request failed",
    }
}

/// An error and its causes on one line, each cause once (a cause whose text the
/// line already holds is skipped).
///
/// ```
/// let io = std::io::Error::other("disk full");
/// let e = etlpool::Error::Io { context: "writing the journal".into(), source: io };
/// assert_eq!(etlpool::error_chain(&e), "writing the journal: disk full");
/// ```
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Tls {
                source: Some(s), ..
            } => Some(s.as_ref()),
            Error::Io { source, .. } => Some(source),
            Error::Request(r) => Some(&r.source),
            Error::Decode(d) => d.source.as_ref().map(|e| e as _),
            Error::AllOriginsFailed(f) => Some(&f.last),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_types_are_send_sync() {
        fn ensure<T: Send + Sync + 'static>() {}
        ensure::<Error>();
        ensure::<PoolTimeout>();
        ensure::<Exchange>();
    }

    #[test]
    fn pool_timeout_message_names_the_state() {
        let e = Error::PoolTimeout(Box::new(PoolTimeout {
            origin: "http://127.0.0.1:9".into(),
            waited: Duration::from_millis(200),
            total: 2,
            in_use: 2,
            idle: 0,
            waiting: 1,
            max: 2,
            total_cap_reached: false,
        }));
        let text = e.to_string();
        for part in ["http://127.0.0.1:9", "in use 2", "idle 0", "waiting 1"] {
            assert!(text.contains(part), "{text}");
        }
        assert!(e.is_timeout());
    }
}
