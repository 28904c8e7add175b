//! The RAII lease of a pooled agent, and the helpers that read a whole response.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use ureq::AsSendBody;
use ureq::http::{HeaderMap, Method, Request, Uri};

use super::exchange::{self, HelperScope};
use super::host::{HostPool, PooledAgent};
use super::origin::Origin;
use super::resolver::LookupFailed;
use super::tcp::SocketInfo;
use super::tls::TlsHandshakeError;
use super::transport::{CrossOriginError, PoolClosed, ProxyOverride, SocketClaimTimeout};
use crate::error::{Error, Exchange, RequestContext, RequestError, Result, TransportKind};
use crate::metrics::FailureKind;
use crate::redact;

/// A pooled ureq agent lent to one thread. Derefs to [`ureq::Agent`]; dropping the
/// lease returns the agent (and its one keep-alive connection) to the pool,
/// [`Lease::discard`] closes it instead.
///
/// A response body must be read to the end for its connection to be reused;
/// [`Lease::send`] and [`Lease::fetch`] do that for you. If you use the agent
/// directly, read the body before dropping the lease: a body read afterwards
/// still works, but the agent's next request waits for it rather than open a
/// second socket beyond the per-host cap.
///
/// **A lease talks only to its own origin** (scheme, host and port). A request
/// for another origin, through [`Lease::send`], [`Lease::fetch`] or the agent
/// itself (`lease.get(other_url)`), is refused before anything is resolved,
/// connected or sent: the helpers fail with [`Error::InvalidUrl`], the agent
/// with a [`ureq::Error::Other`] holding a [`CrossOriginError`]; both name the
/// two origins. (Serving it through the other origin's pool would make one
/// lease hold two origins' slots, which can deadlock under a total cap; so the
/// pool refuses, as urllib3's `HTTPConnectionPool` does with `HostChangedError`.
/// [`crate::Pool::fetch`] and [`crate::Pool::send`] lease per URL.) Nor can a
/// request change the pool's proxy: a request-level `proxy` setting other
/// than the pool's is refused.
///
/// **Across [`crate::Pool::shutdown`]** a lease already held may finish its
/// work on the connection it has, but opens no new one; its agent is closed
/// when it comes back.
///
/// ```no_run
/// # fn main() -> etlpool::Result<()> {
/// let pool = etlpool::Pool::builder().build()?;
/// let lease = pool.lease("https://api.example.com/v2")?;
/// let reply = lease.fetch("https://api.example.com/v2/projects")?;
/// assert!(reply.status() < 500);
/// # Ok(()) }
/// ```
pub struct Lease {
    /// `Some` until dropped.
    agent: Option<PooledAgent>,
    host: Arc<HostPool>,
    discard: bool,
}

impl Lease {
    pub(crate) fn new(agent: PooledAgent, host: Arc<HostPool>) -> Lease {
        Lease {
            agent: Some(agent),
            host,
            discard: false,
        }
    }

    pub(crate) fn pooled(&self) -> &PooledAgent {
        // Only Drop takes the agent out.
        self.agent
            .as_ref()
            .expect("lease holds its agent until dropped")
    }

    /// The origin this agent connects to.
    pub fn origin(&self) -> &Origin {
        &self.host.origin
    }

    /// Closes the agent and its connection instead of returning them, e.g. after a
    /// response that leaves the connection in doubt.
    pub fn discard(mut self) {
        self.discard = true;
    }

    /// What the last request this thread made through this lease's agent did
    /// on the wire: whether it was sent, on a reused connection, and whether
    /// any response byte arrived. Kept per request (per thread), so a clone of
    /// the agent used in another thread never changes it. [`Lease::send`]
    /// resets it; call [`Lease::reset_exchange`] before using the agent directly.
    pub fn last_exchange(&self) -> Exchange {
        exchange::of(self.pooled().wire.id())
    }

    /// Clears [`Lease::last_exchange`] before a request made through the agent.
    pub fn reset_exchange(&self) {
        exchange::reset(self.pooled().wire.id(), false);
    }

    /// The agent's idle connection as the kernel reported it when it opened
    /// (addresses, TCP keepalive); `None` if the agent has no idle connection
    /// (none yet, or a request holds it) or it goes through a proxy.
    pub fn connection_info(&self) -> Option<SocketInfo> {
        self.pooled().wire.parked_info()
    }

    /// Sends `request` and reads the whole body (up to `max_body_bytes`), so the
    /// connection goes back to the pool. Non-2xx statuses are returned, not errors.
    /// A request for another origin is refused (see [`Lease`]).
    pub fn send<B: AsSendBody>(&self, request: Request<B>) -> Result<Reply> {
        let method = request.method().clone();
        let uri = request.uri().clone();
        let wire = self.pooled().wire.id();
        exchange::reset(wire, true);
        let _helper = HelperScope(wire);
        let limit = self.host.max_body_bytes();
        let result = self.pooled().agent.run(request).and_then(|response| {
            let (parts, body) = response.into_parts();
            let body = body.into_with_config().limit(limit).read_to_vec()?;
            Ok(Reply {
                status: parts.status.as_u16(),
                headers: parts.headers,
                body,
            })
        });
        result.map_err(|e| {
            let err = request_error(
                e,
                context(&self.host.origin, &method, &uri),
                self.last_exchange(),
                limit,
            );
            self.host.metrics.failure_with(failure_kind(&err), &err);
            err
        })
    }

    /// `GET url` through [`Lease::send`]. (Named so it doesn't hide
    /// [`ureq::Agent::get`], which the lease derefs to.)
    pub fn fetch(&self, url: &str) -> Result<Reply> {
        let request = Request::get(url).body(()).map_err(|e| Error::InvalidUrl {
            url: redact::url(url),
            reason: e.to_string(),
        })?;
        self.send(request)
    }
}

impl Deref for Lease {
    type Target = ureq::Agent;

    fn deref(&self) -> &ureq::Agent {
        &self.pooled().agent
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(agent) = self.agent.take() {
            self.host.give_back(agent, self.discard);
        }
    }
}

impl fmt::Debug for Lease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lease")
            .field("origin", &self.host.origin.to_string())
            .finish_non_exhaustive()
    }
}

/// A whole response: status, headers and the body read to the end.
#[derive(Clone)]
pub struct Reply {
    status: u16,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    /// Builds a reply (for tests and adapters).
    pub fn new(status: u16, headers: HeaderMap, body: Vec<u8>) -> Reply {
        Reply {
            status,
            headers,
            body,
        }
    }

    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// All headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// A header as text, if present and valid UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body bytes.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The body, taken.
    pub fn into_body(self) -> Vec<u8> {
        self.body
    }

    /// The body as text, invalid UTF-8 replaced.
    pub fn text(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }
}

impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<(String, String)> = self
            .headers
            .iter()
            .map(|(k, v)| {
                let v = v.to_str().unwrap_or("<binary>");
                (
                    k.to_string(),
                    redact::header_value(k.as_str(), v).to_string(),
                )
            })
            .collect();
        f.debug_struct("Reply")
            .field("status", &self.status)
            .field("headers", &headers)
            .field("body", &redact::body_excerpt(&self.body, 200))
            .finish()
    }
}

pub(crate) fn context(origin: &Origin, method: &Method, uri: &Uri) -> RequestContext {
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    RequestContext {
        origin: origin.to_string(),
        method: method.to_string(),
        path: redact::url(path),
        attempt: 1,
    }
}

/// Turns a ureq error into the crate's, classified for retry decisions.
pub(crate) fn request_error(
    e: ureq::Error,
    at: RequestContext,
    exchange: Exchange,
    limit: u64,
) -> Error {
    match e {
        // Whether the request acted is the caller's to say (it knows the method).
        ureq::Error::BodyExceedsLimit(_) => {
            return Error::BodyTooLarge {
                at,
                limit,
                outcome_unknown: false,
            };
        }
        ureq::Error::Other(ref b) if b.is::<CrossOriginError>() => {
            return Error::InvalidUrl {
                url: format!("{}{}", other_origin(b), at.path),
                reason: b.to_string(),
            };
        }
        ureq::Error::Other(ref b) if b.is::<PoolClosed>() => {
            return Error::PoolShutdown { origin: at.origin };
        }
        ureq::Error::Other(ref b) if b.is::<ProxyOverride>() => {
            return Error::config("proxy", b.to_string());
        }
        _ => {}
    }
    let (kind, timeout_phase) = classify(&e, exchange);
    Error::Request(Box::new(RequestError {
        at,
        kind,
        timeout_phase,
        exchange,
        outcome_unknown: false,
        source: e,
    }))
}

/// The origin a refused cross-origin request named.
fn other_origin(e: &crate::error::BoxError) -> String {
    e.downcast_ref::<CrossOriginError>()
        .map(|c| c.request.clone())
        .unwrap_or_default()
}

/// Whether `e` is a request that waited for its agent's busy socket and gave up.
pub(crate) fn is_socket_claim_timeout(e: &Error) -> bool {
    matches!(e, Error::Request(r) if matches!(&r.source, ureq::Error::Other(b) if b.is::<SocketClaimTimeout>()))
}

fn classify(e: &ureq::Error, exchange: Exchange) -> (TransportKind, Option<String>) {
    use std::io::ErrorKind as K;
    let kind = match e {
        ureq::Error::Timeout(t) => return (TransportKind::Timeout, Some(t.to_string())),
        ureq::Error::Other(b) if b.is::<SocketClaimTimeout>() => {
            return (TransportKind::Timeout, Some("socket claim".into()));
        }
        ureq::Error::HostNotFound => TransportKind::Dns,
        ureq::Error::Other(b) if b.is::<LookupFailed>() => TransportKind::Dns,
        ureq::Error::Other(b) if b.is::<TlsHandshakeError>() => TransportKind::Tls,
        ureq::Error::Io(io) if io.kind() == K::TimedOut => {
            return (TransportKind::Timeout, Some("io".into()));
        }
        // Nothing reached the server: a connect (or TLS I/O) failure.
        ureq::Error::Io(_) | ureq::Error::ConnectionFailed | ureq::Error::ConnectProxyFailed(_)
            if !exchange.sent =>
        {
            TransportKind::Connect
        }
        ureq::Error::Io(_) => TransportKind::Io,
        ureq::Error::Protocol(_)
        | ureq::Error::LargeResponseHeader(..)
        | ureq::Error::BodyStalled => TransportKind::Protocol,
        _ => TransportKind::Other,
    };
    (kind, None)
}

pub(crate) fn failure_kind(e: &Error) -> FailureKind {
    match e {
        Error::Request(r) => match r.kind {
            TransportKind::Dns => FailureKind::Dns,
            TransportKind::Connect => FailureKind::Connect,
            TransportKind::Tls => FailureKind::Tls,
            TransportKind::Timeout => FailureKind::Timeout,
            TransportKind::Io => FailureKind::Io,
            TransportKind::Protocol => FailureKind::Protocol,
            TransportKind::Other => FailureKind::Other,
        },
        Error::BodyTooLarge { .. } => FailureKind::BodyTooLarge,
        Error::PoolTimeout(_) => FailureKind::PoolTimeout,
        _ => FailureKind::Other,
    }
}
