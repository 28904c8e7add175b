//! The connector that ureq calls on a pool miss, and the transport it returns.
//!
//! This is where the pool learns what really happens on the wire. ureq calls a
//! connector only when it needs a new socket, and every byte of every request
//! passes through the transport, so counting here (not at checkout) gives true
//! numbers: connects, requests on reused sockets, TLS handshakes full or resumed,
//! status classes, time to the response head, and closes by reason.
//!
//! Each pooled agent owns at most one socket. The connector enforces it: if the
//! agent's socket is still busy (a body read after its lease was returned, or a
//! clone of the agent used elsewhere), a second connect waits for it instead of
//! opening a socket beyond the per-host cap.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use rustls::ClientConfig;
use ureq::unversioned::transport::{
    Buffers, ConnectProxyConnector, ConnectionDetails, Connector, NextTimeout,
    TcpConnector, Transport,
};

use super::host::HostPool;
use super::metrics::{CloseReason, OriginMetrics};
use super::tls;
use crate::error::Exchange;

const SENT: u8 = 1;
const REUSED: u8 = 2;
const RESPONSE: u8 = 4;

/// What a pooled agent, its connector and its socket share.
pub(crate) struct AgentWire {
    pub(crate) metrics: Arc<OriginMetrics>,
    host: Weak<HostPool>,
    /// The last request's [`Exchange`] as bits, written by the transport.
    exchange: AtomicU8,
    /// Mirrors `WireState::retired` for the lock-free check in `is_open`.
    retired: AtomicBool,
    /// Set while a connect waits for this agent's socket, so the socket is closed
    /// rather than parked in ureq's idle pool where the waiter can't reach it.
    want_fresh: AtomicBool,
    /// When the current socket's lifetime ends, in ns since `epoch`; 0 = never.
    socket_expires: AtomicU64,
    epoch: Instant,
    lifetime: Option<(Duration, f64)>,
    /// Guards socket ownership and retirement; never held across I/O.
    state: Mutex<WireState>,
    socket_freed: Condvar,
}

#[derive(Default)]
struct WireState {
    /// A socket made by this agent's connector is open.
    live: bool,
    /// Connects waiting for `live` to clear.
    waiters: usize,
    /// The pool let go of this agent; its connector refuses new sockets.
    retired: bool,
    /// Why the pool retired it, applied to the socket when it closes.
    close_reason: Option<CloseReason>,
    /// The agent still holds a slot of its host's cap.
    slot_held: bool,
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
            want_fresh: AtomicBool::new(false),
            socket_expires: AtomicU64::new(0),
            epoch,
            lifetime,
            state: Mutex::new(WireState {
                slot_held: true,
                ..WireState::default()
            }),
            socket_freed: Condvar::new(),
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

    /// Lets go of the agent: no new sockets, and the open one (if any) is closed
    /// for `reason` when the agent is dropped or its body finishes. Returns true
    /// if the host slot is free now; otherwise the socket's close frees it.
    pub(crate) fn retire(&self, reason: CloseReason) -> bool {
        let mut st = self.state.lock();
        if st.retired {
            return false;
        }
        st.retired = true;
        self.retired.store(true, Relaxed);
        st.close_reason = Some(reason);
        self.socket_freed.notify_all();
        if st.live {
            false
        } else {
            st.slot_held = false;
            true
        }
    }

    /// Claims the agent's one socket, waiting up to `wait` for the current one
    /// to be released.
    fn claim_socket(&self, wait: Duration) -> Result<(), ureq::Error> {
        let mut st = self.state.lock();
        if st.live && !st.retired {
            let deadline = Instant::now().checked_add(wait);
            st.waiters += 1;
            self.want_fresh.store(true, Relaxed);
            while st.live && !st.retired {
                match deadline {
                    Some(d) => {
                        if self.socket_freed.wait_until(&mut st, d).timed_out() {
                            break;
                        }
                    }
                    None => self.socket_freed.wait(&mut st),
                }
            }
            st.waiters -= 1;
            if st.waiters == 0 {
                self.want_fresh.store(false, Relaxed);
            }
            if st.live && !st.retired {
                return Err(busy_error(wait));
            }
        }
        if st.retired {
            return Err(retired_error());
        }
        st.live = true;
        drop(st);
        if let Some((lifetime, jitter)) = self.lifetime {
            // Negative jitter only: a connection never lives past max_lifetime.
            let cut = lifetime.mul_f64(jitter * fastrand::f64());
            let expires = nanos_since(self.epoch, Instant::now()) + (lifetime - cut).as_nanos() as u64;
            self.socket_expires.store(expires.max(1), Relaxed);
        }
        Ok(())
    }

    fn release_socket(&self) {
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
        self.socket_freed.notify_all();
        if free_slot {
            if let Some(host) = self.host.upgrade() {
                host.slot_released();
            }
        }
    }

    fn take_close_reason(&self) -> Option<CloseReason> {
        self.state.lock().close_reason.take()
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
        self.wire.claim_socket(self.wait)?;
        match self.open(details) {
            Ok((transport, resumed)) => {
                self.wire.metrics.connected(resumed);
                Ok(Some(Box::new(CountingTransport::new(transport, self.wire.clone()))))
            }
            Err(e) => {
                // Never counted as connected, so don't count a close either.
                self.wire.release_socket();
                Err(e)
            }
        }
    }
}

impl PooledConnector {
    fn open(
        &self,
        details: &ConnectionDetails,
    ) -> Result<(Box<dyn Transport>, Option<bool>), ureq::Error> {
        let proxied = ConnectProxyConnector::default().connect(details, None::<()>)?;
        let socket: Box<dyn Transport> = match proxied {
            Some(t) => Box::new(t),
            None => tcp(details)?,
        };
        if details.needs_tls() {
            let (t, resumed) = tls::handshake(&self.tls, socket, details)?;
            Ok((Box::new(t), Some(resumed)))
        } else {
            Ok((socket, None))
        }
    }
}

fn tcp(details: &ConnectionDetails) -> Result<Box<dyn Transport>, ureq::Error> {
    TcpConnector::default()
        .connect(details, None::<()>)?
        .map(|t| Box::new(t) as Box<dyn Transport>)
        .ok_or(ureq::Error::ConnectionFailed)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Idle,
    Sending,
    Receiving,
}

/// Wraps the socket (TCP or TLS) and records what happens on it.
struct CountingTransport {
    inner: Box<dyn Transport>,
    wire: Arc<AgentWire>,
    phase: Phase,
    requests: u64,
    request_started: Option<Instant>,
    response_marked: bool,
    head_seen: bool,
    broken: bool,
    server_closed: bool,
    evicted: bool,
}

impl CountingTransport {
    fn new(inner: Box<dyn Transport>, wire: Arc<AgentWire>) -> Self {
        CountingTransport {
            inner,
            wire,
            phase: Phase::Idle,
            requests: 0,
            request_started: None,
            response_marked: false,
            head_seen: false,
            broken: false,
            server_closed: false,
            evicted: false,
        }
    }

    /// A write after a read (or the first write) starts a new request.
    fn begin_request(&mut self) {
        self.phase = Phase::Sending;
        self.requests += 1;
        let reused = self.requests > 1;
        self.request_started = Some(Instant::now());
        self.response_marked = false;
        self.head_seen = false;
        self.wire.metrics.request_sent(reused);
        let bits = SENT | if reused { REUSED } else { 0 };
        self.wire.exchange.store(bits, Relaxed);
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
                let latency = self.request_started.map(|t| t.elapsed()).unwrap_or_default();
                self.wire.metrics.response(status, latency);
            }
            Ok(httparse::Status::Partial) => {}
            // ureq reports the protocol error; stop looking.
            Err(_) => self.head_seen = true,
        }
    }

    fn close_reason(&self) -> CloseReason {
        if let Some(reason) = self.wire.take_close_reason() {
            reason
        } else if self.evicted {
            CloseReason::Evicted
        } else if self.broken {
            CloseReason::Broken
        } else if self.server_closed {
            CloseReason::Server
        } else {
            CloseReason::Abandoned
        }
    }
}

impl Transport for CountingTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        self.inner.buffers()
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        if self.phase != Phase::Sending {
            self.begin_request();
        }
        self.inner
            .transmit_output(amount, timeout)
            .inspect_err(|_| self.broken = true)
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        self.phase = Phase::Receiving;
        match self.inner.await_input(timeout) {
            Ok(true) => {
                if !self.response_marked {
                    self.response_marked = true;
                    self.wire.exchange.fetch_or(RESPONSE, Relaxed);
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

    fn is_open(&mut self) -> bool {
        // ureq asks before parking the socket and before reusing it.
        if self.wire.retired.load(Relaxed) {
            return false;
        }
        if self.wire.want_fresh.load(Relaxed) {
            self.evicted = true;
            return false;
        }
        let open = self.inner.is_open();
        if !open {
            self.server_closed = true;
        }
        open
    }

    fn is_tls(&self) -> bool {
        self.inner.is_tls()
    }
}

impl Drop for CountingTransport {
    fn drop(&mut self) {
        self.wire.metrics.closed(self.close_reason());
        self.wire.release_socket();
    }
}

impl std::fmt::Debug for CountingTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CountingTransport")
            .field("origin", &self.wire.metrics.origin)
            .field("requests", &self.requests)
            .finish_non_exhaustive()
    }
}
