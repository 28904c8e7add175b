//! TCP for pooled agents: ureq's own TCP transport offers no way to set socket
//! options, and a pooled socket wants TCP keepalive, so that a connection a NAT
//! or firewall silently dropped is found dead instead of hanging a request. So
//! the pool connects itself and runs the socket with [`TcpTransport`], which
//! does what ureq's does (timeouts per read and write, reads retried on
//! `EINTR`, a non-blocking probe before reuse). The options are read back from
//! the kernel right after they are set, and reported as [`SocketInfo`].

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use serde::Serialize;
use socket2::SockRef;
use ureq::unversioned::transport::time::{Duration as UreqDuration, Instant as UreqInstant};
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, LazyBuffers, NextTimeout, ShutdownHandle, Transport,
};

/// TCP keepalive as the kernel reports it for a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct TcpKeepalive {
    /// Idle time before the first probe (`TCP_KEEPIDLE`).
    pub idle: Duration,
    /// Time between probes (`TCP_KEEPINTVL`), where the platform has it.
    pub interval: Option<Duration>,
    /// Unanswered probes before the connection is dropped (`TCP_KEEPCNT`),
    /// where the platform has it.
    pub count: Option<u32>,
}

/// A pooled connection's socket, as the kernel reported it when it was opened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct SocketInfo {
    /// The local end.
    pub local_addr: SocketAddr,
    /// The remote end (the proxy, when one is configured).
    pub peer_addr: SocketAddr,
    /// `None` when keepalive is off.
    pub keepalive: Option<TcpKeepalive>,
}

/// The keepalive a pool asks for, from its configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct KeepaliveSettings {
    pub(crate) idle: Duration,
    pub(crate) interval: Duration,
    pub(crate) count: u32,
}

/// Shortest per-address budget, as ureq gives each resolved address.
const MIN_PER_ADDRESS: Duration = Duration::from_millis(10);

/// Connects to the first of `details.addrs` that answers within the connect
/// budget, then sets no-delay (as configured) and `keepalive`.
pub(crate) fn connect(
    details: &ConnectionDetails,
    keepalive: Option<KeepaliveSettings>,
) -> Result<(TcpTransport, SocketInfo), ureq::Error> {
    let config = details.config;
    let deadline = match (details.now, details.timeout.after) {
        (UreqInstant::Exact(now), UreqDuration::Exact(after)) => now.checked_add(after),
        _ => None,
    };
    let reason = details.timeout.reason;
    let addrs: &[SocketAddr] = &details.addrs;
    let mut last_err = None;
    for (i, addr) in addrs.iter().enumerate() {
        let per_addr = match deadline {
            Some(d) => {
                let left = d.saturating_duration_since(std::time::Instant::now());
                if left.is_zero() {
                    return Err(ureq::Error::Timeout(reason));
                }
                // An equal share of what is left for each address still to try.
                let share = left / (addrs.len() - i) as u32;
                Some(share.max(MIN_PER_ADDRESS).min(left))
            }
            None => None,
        };
        let attempt = match per_addr {
            Some(t) => TcpStream::connect_timeout(addr, t),
            None => TcpStream::connect(addr),
        };
        match attempt {
            Ok(stream) => {
                if config.no_delay() {
                    stream.set_nodelay(true)?;
                }
                let info = configure(&stream, keepalive)?;
                let buffers =
                    LazyBuffers::new(config.input_buffer_size(), config.output_buffer_size());
                let transport = TcpTransport::new(stream, buffers);
                // As ureq's own connector does, so `Agent::shutdown` interrupts it.
                (details.register_shutdown)(transport.shutdown_handle())?;
                return Ok((transport, info));
            }
            Err(e)
                if e.kind() == io::ErrorKind::TimedOut || e.kind() == io::ErrorKind::WouldBlock =>
            {
                last_err = Some(ureq::Error::Timeout(reason));
            }
            Err(e) => last_err = Some(ureq::Error::Io(e)),
        }
    }
    Err(last_err.unwrap_or_else(|| {
        ureq::Error::Io(io::Error::new(
            io::ErrorKind::ConnectionRefused,
            "no address to connect to",
        ))
    }))
}

/// Sets keepalive and reads the socket's options back from the kernel.
fn configure(stream: &TcpStream, keepalive: Option<KeepaliveSettings>) -> io::Result<SocketInfo> {
    let sock = SockRef::from(stream);
    if let Some(k) = keepalive {
        sock.set_tcp_keepalive(&params(k))?;
    }
    Ok(SocketInfo {
        local_addr: stream.local_addr()?,
        peer_addr: stream.peer_addr()?,
        keepalive: if sock.keepalive()? {
            Some(read_back(&sock, keepalive)?)
        } else {
            None
        },
    })
}

#[cfg(any(
    target_os = "linux",
    target_os = "android",
    target_os = "macos",
    target_os = "freebsd"
))]
fn params(k: KeepaliveSettings) -> socket2::TcpKeepalive {
    socket2::TcpKeepalive::new()
        .with_time(k.idle)
        .with_interval(k.interval)
        .with_retries(k.count)
}

#[cfg(any(
    target_os = "linux",
    target_os = "android",
    target_os = "macos",
    target_os = "freebsd"
))]
fn read_back(sock: &SockRef<'_>, _: Option<KeepaliveSettings>) -> io::Result<TcpKeepalive> {
    Ok(TcpKeepalive {
        idle: sock.tcp_keepalive_time()?,
        interval: Some(sock.tcp_keepalive_interval()?),
        count: Some(sock.tcp_keepalive_retries()?),
    })
}

// Elsewhere only the idle time can be set, and not read back: it is reported
// as asked.
#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_os = "macos",
    target_os = "freebsd"
)))]
fn params(k: KeepaliveSettings) -> socket2::TcpKeepalive {
    socket2::TcpKeepalive::new().with_time(k.idle)
}

#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_os = "macos",
    target_os = "freebsd"
)))]
fn read_back(_: &SockRef<'_>, asked: Option<KeepaliveSettings>) -> io::Result<TcpKeepalive> {
    Ok(TcpKeepalive {
        idle: asked.map_or(Duration::ZERO, |k| k.idle),
        interval: None,
        count: None,
    })
}

/// A connected TCP socket as a ureq transport.
pub(crate) struct TcpTransport {
    /// Shared only with the agent's shutdown handle, which holds a `Weak`.
    stream: Arc<TcpStream>,
    buffers: LazyBuffers,
    /// The socket's current timeouts, so they are set only when they change.
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
}

impl TcpTransport {
    fn new(stream: TcpStream, buffers: LazyBuffers) -> Self {
        TcpTransport {
            stream: Arc::new(stream),
            buffers,
            read_timeout: None,
            write_timeout: None,
        }
    }
}

impl TcpTransport {
    fn shutdown_handle(&self) -> Weak<dyn ShutdownHandle> {
        // ureq implements the handle for TcpStream: a shutdown of both ways.
        let weak: Weak<TcpStream> = Arc::downgrade(&self.stream);
        weak
    }
}

/// A socket error as ureq reports it: a timeout names the phase that ran out.
fn io_error(e: io::Error, reason: ureq::Timeout) -> ureq::Error {
    match e.kind() {
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => ureq::Error::Timeout(reason),
        _ => ureq::Error::Io(e),
    }
}

impl Transport for TcpTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        let timeout = timeout.for_write();
        if timeout.after.is_zero() {
            return Err(ureq::Error::Timeout(timeout.reason));
        }
        let want = timeout.not_zero().map(|d| *d);
        if want != self.write_timeout {
            self.stream.set_write_timeout(want)?;
            self.write_timeout = want;
        }
        let output = &self.buffers.output()[..amount];
        (&*self.stream)
            .write_all(output)
            .map_err(|e| io_error(e, timeout.reason))
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        let timeout = timeout.for_read();
        if timeout.after.is_zero() {
            return Err(ureq::Error::Timeout(timeout.reason));
        }
        let want = timeout.not_zero().map(|d| *d);
        if want != self.read_timeout {
            self.stream.set_read_timeout(want)?;
            self.read_timeout = want;
        }
        let started = Instant::now();
        let input = self.buffers.input_append_buf();
        let amount = loop {
            match (&*self.stream).read(input) {
                // Linux doesn't restart a socket read that has a timeout.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                    let Some(limit) = want else {
                        return Err(ureq::Error::Io(e));
                    };
                    let left = limit.saturating_sub(started.elapsed());
                    if left.is_zero() {
                        return Err(ureq::Error::Timeout(timeout.reason));
                    }
                    self.stream.set_read_timeout(Some(left))?;
                    self.read_timeout = Some(left);
                }
                Err(e) => return Err(io_error(e, timeout.reason)),
                Ok(n) => break n,
            }
        };
        self.buffers.input_appended(amount);
        Ok(amount > 0)
    }

    /// A non-blocking read: nothing to read means open; bytes (a body not read
    /// to the end, or garbage) or EOF mean not reusable.
    fn is_open(&mut self) -> bool {
        let probe = || -> io::Result<bool> {
            self.stream.set_nonblocking(true)?;
            let open = matches!(
                (&*self.stream).read(&mut [0u8]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock
            );
            self.stream.set_nonblocking(false)?;
            Ok(open)
        };
        probe().unwrap_or(false)
    }
}

impl std::fmt::Debug for TcpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpTransport")
            .field("peer", &self.stream.peer_addr().ok())
            .finish_non_exhaustive()
    }
}
