//! The connector that ureq calls on a pool miss, and the transport it returns.
//!
//! This is where the pool learns what really happens on the wire. ureq calls a
//! connector only when it needs a new connection, and every byte of every request
//! passes through the transport, so counting here (not at checkout) gives true
//! numbers: connects, requests on reused sockets, TLS handshakes full or resumed,
//! status classes, time to the response head, and closes by reason.
//!
//! Each pooled agent owns at most one socket, and the socket lives in the agent's
//! [`AgentWire`] whenever it is idle; what ureq keeps in its own idle pool is a
//! [`Handle`] that takes the socket back when ureq reuses it. So a request whose
//! agent's socket is busy elsewhere (a body read after its lease was returned, or
//! a clone of the agent in another thread) doesn't open a second socket beyond
//! the per-host cap: the connector waits for the socket to come back and takes it
//! over, and every hand-over happens under one lock, with no window for a race.
//!
//! The connector is also where the origin rule holds: an agent's socket is only
//! ever used for the origin it was lent for, through the pool's proxy (if any)
//! and no other, and after the pool shut down an agent opens nothing new.

use std::cell::Cell;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use rustls::ClientConfig;
use ureq::unversioned::transport::time::Duration as UreqDuration;
use ureq::unversioned::transport::{
    Buffers, ConnectProxyConnector, ConnectionDetails, Connector, LazyBuffers, NextTimeout,
    Transport,
};

use super::origin::Origin;
use super::socket::Socket;
use super::tcp::{self, KeepaliveSettings, SocketInfo};
use super::tls;
use super::wire::{AgentWire, Claim, Refused};

/// A request through a lease for one origin named another.
#[derive(Debug)]
pub struct CrossOriginError {
    /// The origin the lease is for.
    pub lease: String,
    /// The origin the request named.
    pub request: String,
}

impl fmt::Display for CrossOriginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a lease for {} can't send to {}: a lease talks only to its own origin; \
             lease one for {} (or use Pool::fetch / Pool::send, which lease per URL)",
            self.lease, self.request, self.request
        )
    }
}

impl std::error::Error for CrossOriginError {}

/// A connect waited for the agent's busy socket and gave up (socket claim).
#[derive(Debug)]
pub(crate) struct SocketClaimTimeout {
    pub(crate) waited: Duration,
    /// Which limit ended the wait: `acquire_timeout`, or ureq's name of the
    /// request's own deadline (`connect`, `global`, ...).
    pub(crate) limit: String,
}

impl fmt::Display for SocketClaimTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "waited {:?} ({}) for this agent's connection: a response body read after \
             its lease was returned, or a clone of the agent, still holds it",
            self.waited, self.limit
        )
    }
}

impl std::error::Error for SocketClaimTimeout {}

/// A request whose own settings name another proxy than the pool's (or none
/// where the pool has one).
#[derive(Debug)]
pub(crate) struct ProxyOverride {
    /// The pool's proxy, `host:port`, if it has one.
    pub(crate) pool: Option<String>,
}

impl fmt::Display for ProxyOverride {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pool = self.pool.as_deref().unwrap_or("none");
        write!(
            f,
            "a request can't change the pool's proxy ({pool}): every pooled connection \
             goes the way the pool's `proxy` setting says"
        )
    }
}

impl std::error::Error for ProxyOverride {}

fn proxy_name(proxy: &ureq::Proxy) -> String {
    format!("{}:{}", proxy.host(), proxy.port())
}

thread_local! {
    /// The wire (its id) whose connect is opening the socket to the pool's
    /// proxy on this thread right now; 0 for none.
    static PROXY_HOP: Cell<usize> = const { Cell::new(0) };
}

/// Marks this thread's connect to the proxy for `wire` until dropped.
struct ProxyHop(usize);

impl ProxyHop {
    fn enter(wire: usize) -> ProxyHop {
        ProxyHop(PROXY_HOP.replace(wire))
    }
}

impl Drop for ProxyHop {
    fn drop(&mut self) {
        PROXY_HOP.set(self.0);
    }
}

/// A connect through a held lease after the pool shut down.
#[derive(Debug)]
pub(crate) struct PoolClosed;

impl fmt::Display for PoolClosed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "the pool is shut down: a lease held across the shutdown opens no new connection",
        )
    }
}

impl std::error::Error for PoolClosed {}

pub(crate) fn cross_origin(origin: &Origin, uri: &ureq::http::Uri) -> ureq::Error {
    ureq::Error::Other(Box::new(CrossOriginError {
        lease: origin.to_string(),
        request: Origin::describe(uri),
    }))
}

/// The connector of one pooled agent.
pub(crate) struct PooledConnector {
    pub(crate) wire: Arc<AgentWire>,
    pub(crate) origin: Origin,
    pub(crate) tls: Arc<ClientConfig>,
    /// How long a connect waits for the agent's busy socket (`acquire_timeout`),
    /// within the request's own connect budget and deadline.
    pub(crate) wait: Duration,
    /// The pool's CONNECT proxy, if it has one.
    pub(crate) proxy: Option<ureq::Proxy>,
    /// The pool's shutdown flag: once set, no new socket is opened.
    pub(crate) closed: Arc<AtomicBool>,
    pub(crate) keepalive: Option<KeepaliveSettings>,
}

impl fmt::Debug for PooledConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PooledConnector")
            .field("origin", &self.wire.metrics.origin)
            .finish_non_exhaustive()
    }
}

impl Connector<()> for PooledConnector {
    type Out = Box<dyn Transport>;

    fn connect(
        &self,
        details: &ConnectionDetails,
        _: Option<()>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        // ureq's CONNECT-proxy connector runs this agent's connector again, with
        // the proxy removed from the config, for the socket to the proxy itself,
        // from inside this connector's own `open`. That socket becomes the
        // tunnel of the outer call, which counts it.
        if PROXY_HOP.get() == self.wire.id() {
            let (socket, _) = tcp::connect(details, self.keepalive)?;
            return Ok(Some(Box::new(socket)));
        }
        self.wire.watch_shutdown(details)?;
        // A request's own settings reach here too. Without the pool's proxy it
        // would get (or reuse) a socket the pool doesn't count; with another, go
        // direct on the pooled socket.
        if details.config.proxy() != self.proxy.as_ref() {
            return Err(ureq::Error::Other(Box::new(ProxyOverride {
                pool: self.proxy.as_ref().map(proxy_name),
            })));
        }
        // ureq keys its idle connections by the URL as written, so a request for
        // another origin comes here; the agent's socket is not for it.
        if !self.origin.matches(details.uri) {
            return Err(cross_origin(&self.origin, details.uri));
        }
        let (wait, limit) = claim_budget(self.wait, details);
        loop {
            match self.wire.claim(wait, &self.closed) {
                Ok(Claim::Parked(mut socket)) => {
                    if socket.usable(&self.wire) {
                        return Ok(Some(Box::new(Handle::new(socket, self.wire.clone()))));
                    }
                    // Closing it (expired, or closed by the server while idle)
                    // frees the claim for a fresh socket.
                }
                Ok(Claim::Fresh) => return self.open(details).map(Some),
                Err(refused) => return Err(refused_error(refused, limit)),
            }
        }
    }
}

/// The wait for a busy socket: `acquire_timeout`, cut to what the request's
/// connect budget and deadline leave; and the name of the limit that applies.
fn claim_budget(acquire: Duration, details: &ConnectionDetails) -> (Duration, String) {
    match details.timeout.after {
        UreqDuration::Exact(left) if left < acquire => (
            left,
            format!("the request's {} timeout", details.timeout.reason),
        ),
        _ => (acquire, "acquire_timeout".to_string()),
    }
}

fn refused_error(refused: Refused, limit: String) -> ureq::Error {
    match refused {
        Refused::Retired => ureq::Error::Io(std::io::Error::new(
            std::io::ErrorKind::NotConnected,
            "this agent was returned to the pool and closed; lease a new one",
        )),
        Refused::ShutDown => ureq::Error::Other(Box::new(PoolClosed)),
        Refused::Busy(waited) => ureq::Error::Other(Box::new(SocketClaimTimeout { waited, limit })),
    }
}

impl PooledConnector {
    fn open(&self, details: &ConnectionDetails) -> Result<Box<dyn Transport>, ureq::Error> {
        let connected = {
            let _hop = ProxyHop::enter(self.wire.id());
            connect_socket(details, &self.tls, self.keepalive)
        };
        match connected {
            Ok((inner, resumed, info)) => {
                self.wire.opened();
                self.wire.metrics.connected(resumed);
                let socket = Socket::new(inner, &self.wire, info);
                Ok(Box::new(Handle::new(socket, self.wire.clone())))
            }
            Err(e) => {
                self.wire.socket_gone();
                Err(e)
            }
        }
    }
}

/// A new connection: the transport, whether its TLS session was resumed (for
/// https), and what the kernel said of its socket (unless proxied).
type Connected = (Box<dyn Transport>, Option<bool>, Option<SocketInfo>);

/// TCP (possibly through a CONNECT proxy), then TLS for https.
fn connect_socket(
    details: &ConnectionDetails,
    tls_config: &Arc<ClientConfig>,
    keepalive: Option<KeepaliveSettings>,
) -> Result<Connected, ureq::Error> {
    let proxied = ConnectProxyConnector::default().connect(details, None::<()>)?;
    let (socket, info): (Box<dyn Transport>, Option<SocketInfo>) = match proxied {
        Some(t) => (Box::new(t), None),
        None => {
            let (t, info) = tcp::connect(details, keepalive)?;
            (Box::new(t), Some(info))
        }
    };
    if details.needs_tls() {
        let (t, resumed) = tls::handshake(tls_config, socket, details)?;
        Ok((Box::new(t), Some(resumed), info))
    } else {
        Ok((socket, None, info))
    }
}

/// What ureq holds: the agent's socket while a request uses it, an empty shell
/// while the socket is parked in the wire.
pub(crate) struct Handle {
    socket: Option<Socket>,
    wire: Arc<AgentWire>,
    /// Buffers to hand out while empty (ureq checks them before reusing).
    empty: LazyBuffers,
    tls: bool,
}

impl Handle {
    fn new(socket: Socket, wire: Arc<AgentWire>) -> Self {
        let tls = socket.inner.is_tls();
        Handle {
            socket: Some(socket),
            wire,
            // LazyBuffers allocates on first use, which an empty handle never sees.
            empty: LazyBuffers::new(1, 1),
            tls,
        }
    }

    /// The socket, which ureq only uses after `is_open` gave it back.
    fn socket(&mut self) -> Result<&mut Socket, ureq::Error> {
        self.socket.as_mut().ok_or_else(|| {
            ureq::Error::Io(std::io::Error::new(
                std::io::ErrorKind::NotConnected,
                "pooled connection handle used while its socket is parked",
            ))
        })
    }
}

impl Transport for Handle {
    fn buffers(&mut self) -> &mut dyn Buffers {
        match &mut self.socket {
            Some(s) => s.inner.buffers(),
            None => &mut self.empty,
        }
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        self.socket()?.transmit(amount, timeout)
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        self.socket()?.receive(timeout)
    }

    /// ureq asks twice per cycle: before parking a finished connection (this
    /// handle holds the socket), and before reusing a parked one (it doesn't).
    fn is_open(&mut self) -> bool {
        if self.socket.is_some() {
            if self.wire.is_retired() {
                // Dropping the handle closes the socket with the retire reason.
                return false;
            }
            if let Some(socket) = self.socket.take() {
                self.wire.park(socket);
            }
            return true;
        }
        // None: another handle of this agent took the socket over.
        let Some(mut socket) = self.wire.unpark() else {
            return false;
        };
        // Expired or closed, it is dropped here and closes with the reason.
        let usable = socket.usable(&self.wire);
        if usable {
            self.socket = Some(socket);
        }
        usable
    }

    fn is_tls(&self) -> bool {
        self.tls
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            .field("origin", &self.wire.metrics.origin)
            .field("holds_socket", &self.socket.is_some())
            .finish_non_exhaustive()
    }
}
