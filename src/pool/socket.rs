//! One pooled connection and what happens on it: requests and their reuse,
//! response heads (status class, latency, `Connection: close`), and why it
//! closed.

use std::sync::{Arc, Weak};
use std::time::Instant;

use ureq::unversioned::transport::{Buffers, LazyBuffers, NextTimeout, Transport};

use super::exchange;
use super::tcp::SocketInfo;
use super::wire::AgentWire;
use crate::metrics::{CloseReason, OriginMetrics};

/// Header slots for the usual response head; a head with more is parsed again
/// with [`MAX_HEADERS`].
const FEW_HEADERS: usize = 24;
/// ureq-proto's own limit (`MAX_RESPONSE_HEADERS`): every head ureq accepts fits.
const MAX_HEADERS: usize = 128;

/// One TCP (or TLS) connection and what has happened on it.
pub(crate) struct Socket {
    pub(crate) inner: Box<dyn Transport>,
    /// Weak: a parked socket lives inside its wire.
    wire: Weak<AgentWire>,
    wire_id: usize,
    metrics: Arc<OriginMetrics>,
    info: Option<SocketInfo>,
    requests: u64,
    /// A request was written whose final response head has not been seen: a
    /// write now belongs to it (an `Expect: 100-continue` body), not to a new one.
    in_request: bool,
    request_started: Option<Instant>,
    response_marked: bool,
    broken: bool,
    server_closed: bool,
    forced_reason: Option<CloseReason>,
}

impl Socket {
    pub(crate) fn new(
        inner: Box<dyn Transport>,
        wire: &Arc<AgentWire>,
        info: Option<SocketInfo>,
    ) -> Self {
        Socket {
            inner,
            wire: Arc::downgrade(wire),
            wire_id: wire.id(),
            metrics: wire.metrics.clone(),
            info,
            requests: 0,
            in_request: false,
            request_started: None,
            response_marked: false,
            broken: false,
            server_closed: false,
            forced_reason: None,
        }
    }

    pub(crate) fn info(&self) -> Option<&SocketInfo> {
        self.info.as_ref()
    }

    /// Closes with `reason` whatever else happened.
    pub(crate) fn force_reason(&mut self, reason: CloseReason) {
        self.forced_reason = Some(reason);
    }

    /// Whether this idle socket may carry another request: within its lifetime
    /// and still open. If not, it is marked with why, for its close.
    pub(crate) fn usable(&mut self, wire: &AgentWire) -> bool {
        if wire.socket_expired_now() {
            self.forced_reason = Some(CloseReason::Lifetime);
            return false;
        }
        if !self.inner.is_open() {
            self.server_closed = true;
            return false;
        }
        true
    }

    pub(crate) fn transmit(
        &mut self,
        amount: usize,
        timeout: NextTimeout,
    ) -> Result<(), ureq::Error> {
        if !self.in_request {
            self.in_request = true;
            self.requests += 1;
            let reused = self.requests > 1;
            self.request_started = Some(Instant::now());
            self.response_marked = false;
            self.metrics.request_sent(reused);
            exchange::sent(self.wire_id, reused);
        }
        self.inner
            .transmit_output(amount, timeout)
            .inspect_err(|_| self.broken = true)
    }

    pub(crate) fn receive(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        match self.inner.await_input(timeout) {
            Ok(true) => {
                if !self.response_marked {
                    self.response_marked = true;
                    exchange::response_started(self.wire_id);
                }
                if self.in_request {
                    self.inspect_head();
                }
                Ok(true)
            }
            Ok(false) => {
                self.server_closed = true;
                Ok(false)
            }
            // ureq waits for a `100 Continue` with a timeout and sends the body
            // when it runs out: that is not a failure of the connection.
            Err(ureq::Error::Timeout(ureq::Timeout::Await100)) => {
                Err(ureq::Error::Timeout(ureq::Timeout::Await100))
            }
            Err(e) => {
                self.broken = true;
                Err(e)
            }
        }
    }

    /// Reads the final response head once it is buffered: its status, and
    /// whether the server closes after it. ureq consumes a head only after
    /// parsing it whole, so it sits at the start of the input buffer until
    /// then, possibly after interim `1xx` heads.
    fn inspect_head(&mut self) {
        let mut offset = 0;
        loop {
            let input = &self.inner.buffers().input()[offset..];
            let parsed = match parse_head::<FEW_HEADERS>(input) {
                Err(httparse::Error::TooManyHeaders) => parse_head::<MAX_HEADERS>(input),
                other => other,
            };
            match parsed {
                Ok(Some(head)) if head.interim => offset += head.len,
                Ok(Some(head)) => {
                    self.in_request = false;
                    self.server_closed |= head.closes;
                    let latency = self
                        .request_started
                        .map(|t| t.elapsed())
                        .unwrap_or_default();
                    self.metrics.response(head.status, latency);
                    return;
                }
                // Not all there yet.
                Ok(None) => return,
                // ureq reports the protocol error; the connection is done for.
                Err(_) => {
                    self.in_request = false;
                    self.broken = true;
                    return;
                }
            }
        }
    }
}

/// What [`Socket::inspect_head`] needs of a response head.
struct Head {
    status: u16,
    /// A `1xx` head, followed by the final one.
    interim: bool,
    /// `Connection: close`, or HTTP/1.0.
    closes: bool,
    len: usize,
}

fn parse_head<const N: usize>(input: &[u8]) -> Result<Option<Head>, httparse::Error> {
    let mut headers = [httparse::EMPTY_HEADER; N];
    let mut head = httparse::Response::new(&mut headers);
    let len = match head.parse(input)? {
        httparse::Status::Complete(len) => len,
        httparse::Status::Partial => return Ok(None),
    };
    let status = head.code.unwrap_or(0);
    let asks_close = head.headers.iter().any(|h| {
        h.name.eq_ignore_ascii_case("connection")
            && String::from_utf8_lossy(h.value)
                .split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("close"))
    });
    Ok(Some(Head {
        status,
        // 101 Switching Protocols is final; ureq doesn't speak it, so it fails.
        interim: (100..200).contains(&status) && status != 101,
        closes: asks_close || head.version == Some(0),
        len,
    }))
}

/// What a socket holds once its connection is closed (never used: the
/// socket is being dropped).
struct Closed(LazyBuffers);

impl Transport for Closed {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.0
    }
    fn transmit_output(&mut self, _: usize, _: NextTimeout) -> Result<(), ureq::Error> {
        Err(ureq::Error::ConnectionFailed)
    }
    fn await_input(&mut self, _: NextTimeout) -> Result<bool, ureq::Error> {
        Err(ureq::Error::ConnectionFailed)
    }
    fn is_open(&mut self) -> bool {
        false
    }
}

impl std::fmt::Debug for Closed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Closed")
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        // Close the connection first: only then is its slot free, so the
        // kernel never holds more sockets than the caps allow.
        drop(std::mem::replace(
            &mut self.inner,
            Box::new(Closed(LazyBuffers::new(1, 1))),
        ));
        let wire = self.wire.upgrade();
        let reason = self
            .forced_reason
            .or_else(|| wire.as_ref().and_then(|w| w.retire_reason()))
            .unwrap_or(if self.broken {
                CloseReason::Broken
            } else if self.server_closed {
                CloseReason::Server
            } else if exchange::in_helper(self.wire_id) {
                // The pool's helpers read every body to the end; one that drops
                // a connection mid-exchange does so on an error (a protocol
                // error, a body over the limit).
                CloseReason::Broken
            } else {
                CloseReason::Abandoned
            });
        self.metrics.closed(reason);
        if let Some(wire) = wire {
            wire.socket_gone();
        }
    }
}
