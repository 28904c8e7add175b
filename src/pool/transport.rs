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

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use rustls::ClientConfig;
use ureq::unversioned::transport::{
    Buffers, ConnectProxyConnector, ConnectionDetails, Connector, LazyBuffers, NextTimeout,
    TcpConnector, Transport,
};

use super::host::HostPool;
use super::tls;
use crate::error::Exchange;
use crate::metrics::{CloseReason, OriginMetrics};

const SENT: u8 = 1;
const REUSED: u8 = 2;
const RESPONSE: u8 = 4;

/// What a pooled agent, its connector and its handles share.
pub(crate) struct AgentWire {
    pub(crate) metrics: Arc<OriginMetrics>,
    host: Weak<HostPool>,
    /// The last request's [`Exchange`] as bits, written by the socket.
    exchange: AtomicU8,
    /// Mirrors `WireState::retired` for the lock-free check when parking.
    retired: AtomicBool,
    /// When the current socket's lifetime ends, in ns since `epoch`; 0 = never.
    socket_expires: AtomicU64,
    epoch: Instant,
    lifetime: Option<(Duration, f64)>,
    /// Guards the socket's ownership: whether one exists, the idle one itself,
    /// retirement and the host slot. Never held across I/O or a socket's close.
    state: Mutex<WireState>,
    /// Signalled when the socket is parked or closed.
    changed: Condvar,
}

struct WireState {
    /// The agent has a socket, idle (in `parked`) or in use by some handle.
    live: bool,
    /// The socket while no request uses it.
    parked: Option<Socket>,
    /// The pool let go of this agent; no socket may be opened or reused.
    retired: bool,
    /// Why the pool retired it, applied to the socket when it closes.
    close_reason: Option<CloseReason>,
    /// The agent still holds one of its host's slots.
    slot_held: bool,
}

enum Claim {
    /// The idle socket, taken over.
    Parked(Socket),
    /// No socket exists; the caller may open one.
    Fresh,
}

impl AgentWire {
    pub(crate) fn new(
        metrics: Arc<OriginMetrics>,
        host: Weak<HostPool>,
        epoch: Instant,
        lifetime: Option<(Duration, f64)>,
    ) -> Self {
        AgentWire {
            metrics,
            host,
            exchange: AtomicU8::new(0),
            retired: AtomicBool::new(false),
            socket_expires: AtomicU64::new(0),
            epoch,
            lifetime,
            state: Mutex::new(WireState {
                live: false,
                parked: None,
                retired: false,
                close_reason: None,
                slot_held: true,
            }),
            changed: Condvar::new(),
        }
    }

    pub(crate) fn exchange(&self) -> Exchange {
        let bits = self.exchange.load(Relaxed);
        Exchange {
            sent: bits & SENT != 0,
            reused: bits & REUSED != 0,
            response_started: bits & RESPONSE != 0,
        }
    }

    pub(crate) fn reset_exchange(&self) {
        self.exchange.store(0, Relaxed);
    }

    /// True if the agent's socket has outlived its lifetime at `now`.
    pub(crate) fn socket_expired(&self, now: Instant) -> bool {
        let expires = self.socket_expires.load(Relaxed);
        expires != 0 && nanos_since(self.epoch, now) >= expires
    }

    /// Lets go of the agent: the idle socket closes now, one in use when its
    /// request ends, and nothing new opens. Returns true if the host slot is free
    /// now; otherwise the socket's close frees it.
    pub(crate) fn retire(&self, reason: CloseReason) -> bool {
        let (parked, free_now) = {
            let mut st = self.state.lock();
            if st.retired {
                return false;
            }
            st.retired = true;
            self.retired.store(true, Relaxed);
            st.close_reason = Some(reason);
            if st.live {
                (st.parked.take(), false)
            } else {
                st.slot_held = false;
                (None, true)
            }
        };
        self.changed.notify_all();
        // Closing the socket calls back into `socket_gone`, which frees the slot.
        drop(parked);
        free_now
    }

    /// Gets the agent's socket for a connect: the idle one, or leave to open a
    /// new one, waiting up to `wait` while a request elsewhere uses it.
    fn claim(&self, wait: Duration) -> Result<Claim, ureq::Error> {
        let mut st = self.state.lock();
        let mut deadline = None;
        loop {
            if st.retired {
                return Err(retired_error());
            }
            if let Some(socket) = st.parked.take() {
                return Ok(Claim::Parked(socket));
            }
            if !st.live {
                st.live = true;
                return Ok(Claim::Fresh);
            }
            let d = match deadline {
                Some(d) => d,
                None => {
                    self.metrics.socket_busy();
                    let d = Instant::now().checked_add(wait);
                    deadline = Some(d);
                    d
                }
            };
            let timed_out = match d {
                Some(d) => self.changed.wait_until(&mut st, d).timed_out(),
                None => {
                    self.changed.wait(&mut st);
                    false
                }
            };
            if timed_out && st.live && st.parked.is_none() && !st.retired {
                return Err(busy_error(wait));
            }
        }
    }

    /// A fresh socket is open: start its lifetime.
    fn opened(&self) {
        if let Some((lifetime, jitter)) = self.lifetime {
            // Negative jitter only: a connection never lives past max_lifetime.
            let cut = lifetime.mul_f64(jitter * fastrand::f64());
            let end = nanos_since(self.epoch, Instant::now()) + (lifetime - cut).as_nanos() as u64;
            self.socket_expires.store(end.max(1), Relaxed);
        }
    }

    fn park(&self, socket: Socket) {
        self.state.lock().parked = Some(socket);
        self.changed.notify_all();
    }

    fn unpark(&self) -> Option<Socket> {
        self.state.lock().parked.take()
    }

    /// The agent's socket closed (or never opened).
    fn socket_gone(&self) {
        let free_slot = {
            let mut st = self.state.lock();
            st.live = false;
            self.socket_expires.store(0, Relaxed);
            let free = st.retired && st.slot_held;
            if free {
                st.slot_held = false;
            }
            free
        };
        self.changed.notify_all();
        if free_slot {
            self.release_slot();
        }
    }

    fn release_slot(&self) {
        if let Some(host) = self.host.upgrade() {
            host.slot_released();
        }
    }

    fn retire_reason(&self) -> Option<CloseReason> {
        self.state.lock().close_reason
    }
}

impl Drop for AgentWire {
    fn drop(&mut self) {
        let st = self.state.get_mut();
        if let Some(mut socket) = st.parked.take() {
            socket.forced_reason = Some(st.close_reason.unwrap_or(CloseReason::Abandoned));
            drop(socket);
        }
        let free_slot = std::mem::take(&mut st.slot_held);
        if free_slot {
            self.release_slot();
        }
    }
}

fn nanos_since(epoch: Instant, now: Instant) -> u64 {
    now.saturating_duration_since(epoch).as_nanos() as u64
}

fn busy_error(waited: Duration) -> ureq::Error {
    ureq::Error::Io(std::io::Error::new(
        std::io::ErrorKind::WouldBlock,
        format!(
            "this agent's connection stayed busy for {waited:?}: a response body read after \
             its lease was returned, or a clone of the agent, still holds it"
        ),
    ))
}

fn retired_error() -> ureq::Error {
    ureq::Error::Io(std::io::Error::new(
        std::io::ErrorKind::NotConnected,
        "this agent was returned to the pool and closed; lease a new one",
    ))
}

/// The connector of one pooled agent.
pub(crate) struct PooledConnector {
    pub(crate) wire: Arc<AgentWire>,
    pub(crate) tls: Arc<ClientConfig>,
    /// How long a connect waits for the agent's busy socket.
    pub(crate) wait: Duration,
    /// The pool has a CONNECT proxy configured.
    pub(crate) proxied: bool,
}

impl std::fmt::Debug for PooledConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
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
        // the proxy removed from the config, for the socket to the proxy itself.
        // That socket becomes the tunnel of the outer call, which counts it.
        if self.proxied && details.config.proxy().is_none() {
            return Ok(Some(tcp(details)?));
        }
        loop {
            match self.wire.claim(self.wait)? {
                Claim::Parked(mut socket) => {
                    if socket.inner.is_open() {
                        return Ok(Some(Box::new(Handle::new(socket, self.wire.clone()))));
                    }
                    // The server closed it while idle; closing frees the claim.
                    socket.server_closed = true;
                }
                Claim::Fresh => return self.open(details).map(Some),
            }
        }
    }
}

impl PooledConnector {
    fn open(&self, details: &ConnectionDetails) -> Result<Box<dyn Transport>, ureq::Error> {
        match connect_socket(details, &self.tls) {
            Ok((inner, resumed)) => {
                self.wire.opened();
                self.wire.metrics.connected(resumed);
                let socket = Socket::new(inner, &self.wire);
                Ok(Box::new(Handle::new(socket, self.wire.clone())))
            }
            Err(e) => {
                self.wire.socket_gone();
                Err(e)
            }
        }
    }
}

/// TCP (possibly through a CONNECT proxy), then TLS for https.
fn connect_socket(
    details: &ConnectionDetails,
    tls_config: &Arc<ClientConfig>,
) -> Result<(Box<dyn Transport>, Option<bool>), ureq::Error> {
    let proxied = ConnectProxyConnector::default().connect(details, None::<()>)?;
    let socket: Box<dyn Transport> = match proxied {
        Some(t) => Box::new(t),
        None => tcp(details)?,
    };
    if details.needs_tls() {
        let (t, resumed) = tls::handshake(tls_config, socket, details)?;
        Ok((Box::new(t), Some(resumed)))
    } else {
        Ok((socket, None))
    }
}

fn tcp(details: &ConnectionDetails) -> Result<Box<dyn Transport>, ureq::Error> {
    TcpConnector::default()
        .connect(details, None::<()>)?
        .map(|t| Box::new(t) as Box<dyn Transport>)
        .ok_or(ureq::Error::ConnectionFailed)
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

    /// The socket (which ureq only uses after `is_open` gave it back) and the wire.
    fn parts(&mut self) -> Result<(&mut Socket, &AgentWire), ureq::Error> {
        let socket = self.socket.as_mut().ok_or_else(|| {
            ureq::Error::Io(std::io::Error::new(
                std::io::ErrorKind::NotConnected,
                "pooled connection handle used while its socket is parked",
            ))
        })?;
        Ok((socket, &self.wire))
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
        let (socket, wire) = self.parts()?;
        socket.transmit(amount, timeout, wire)
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        let (socket, wire) = self.parts()?;
        socket.receive(timeout, wire)
    }

    /// ureq asks twice per cycle: before parking a finished connection (this
    /// handle holds the socket), and before reusing a parked one (it doesn't).
    fn is_open(&mut self) -> bool {
        if self.socket.is_some() {
            if self.wire.retired.load(Relaxed) {
                // Dropping the handle closes the socket with the retire reason.
                return false;
            }
            if let Some(socket) = self.socket.take() {
                self.wire.park(socket);
            }
            return true;
        }
        match self.wire.unpark() {
            Some(mut socket) => {
                if socket.inner.is_open() {
                    self.socket = Some(socket);
                    true
                } else {
                    socket.server_closed = true;
                    false
                }
            }
            // Another handle of this agent took the socket over.
            None => false,
        }
    }

    fn is_tls(&self) -> bool {
        self.tls
    }
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle")
            .field("origin", &self.wire.metrics.origin)
            .field("holds_socket", &self.socket.is_some())
            .finish_non_exhaustive()
    }
}

/// One TCP (or TLS) connection and what has happened on it.
struct Socket {
    inner: Box<dyn Transport>,
    /// Weak: a parked socket lives inside its wire.
    wire: Weak<AgentWire>,
    metrics: Arc<OriginMetrics>,
    requests: u64,
    sending: bool,
    request_started: Option<Instant>,
    response_marked: bool,
    head_seen: bool,
    broken: bool,
    server_closed: bool,
    forced_reason: Option<CloseReason>,
}

impl Socket {
    fn new(inner: Box<dyn Transport>, wire: &Arc<AgentWire>) -> Self {
        Socket {
            inner,
            wire: Arc::downgrade(wire),
            metrics: wire.metrics.clone(),
            requests: 0,
            sending: false,
            request_started: None,
            response_marked: false,
            head_seen: false,
            broken: false,
            server_closed: false,
            forced_reason: None,
        }
    }

    fn transmit(
        &mut self,
        amount: usize,
        timeout: NextTimeout,
        wire: &AgentWire,
    ) -> Result<(), ureq::Error> {
        if !self.sending {
            // A write after a read (or the first write) starts a new request.
            self.sending = true;
            self.requests += 1;
            let reused = self.requests > 1;
            self.request_started = Some(Instant::now());
            self.response_marked = false;
            self.head_seen = false;
            self.metrics.request_sent(reused);
            wire.exchange
                .store(SENT | if reused { REUSED } else { 0 }, Relaxed);
        }
        self.inner
            .transmit_output(amount, timeout)
            .inspect_err(|_| self.broken = true)
    }

    fn receive(&mut self, timeout: NextTimeout, wire: &AgentWire) -> Result<bool, ureq::Error> {
        self.sending = false;
        match self.inner.await_input(timeout) {
            Ok(true) => {
                if !self.response_marked {
                    self.response_marked = true;
                    wire.exchange.fetch_or(RESPONSE, Relaxed);
                }
                if !self.head_seen {
                    self.inspect_head();
                }
                Ok(true)
            }
            Ok(false) => {
                self.server_closed = true;
                Ok(false)
            }
            Err(e) => {
                self.broken = true;
                Err(e)
            }
        }
    }

    /// Reads the status and `Connection` header once the head is buffered. ureq
    /// consumes the head only after parsing it whole, so it sits at the start of
    /// the input buffer until then.
    fn inspect_head(&mut self) {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut head = httparse::Response::new(&mut headers);
        match head.parse(self.inner.buffers().input()) {
            Ok(httparse::Status::Complete(_)) => {
                let status = head.code.unwrap_or(0);
                if (100..200).contains(&status) {
                    // An interim response; the final head follows.
                    return;
                }
                self.head_seen = true;
                let asks_close = head.headers.iter().any(|h| {
                    h.name.eq_ignore_ascii_case("connection")
                        && String::from_utf8_lossy(h.value)
                            .split(',')
                            .any(|t| t.trim().eq_ignore_ascii_case("close"))
                });
                self.server_closed |= asks_close || head.version == Some(0);
                let latency = self
                    .request_started
                    .map(|t| t.elapsed())
                    .unwrap_or_default();
                self.metrics.response(status, latency);
            }
            Ok(httparse::Status::Partial) => {}
            // ureq reports the protocol error; stop looking.
            Err(_) => self.head_seen = true,
        }
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        let wire = self.wire.upgrade();
        let reason = self
            .forced_reason
            .or_else(|| wire.as_ref().and_then(|w| w.retire_reason()))
            .unwrap_or(if self.broken {
                CloseReason::Broken
            } else if self.server_closed {
                CloseReason::Server
            } else {
                CloseReason::Abandoned
            });
        self.metrics.closed(reason);
        if let Some(wire) = wire {
            wire.socket_gone();
        }
    }
}
