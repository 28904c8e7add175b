//! Connection and request counters of an [`HttpServer`](super::HttpServer).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

/// Live counters of one server, shared with its connection threads.
///
/// Every accepted connection ends in exactly one of `client_closed`, `server_closed`,
/// `idle_closed` or `resets`, so `accepted` minus their sum is the number still open.
#[derive(Debug, Default)]
pub struct ServerStats {
    accepted: AtomicU64,
    requests: AtomicU64,
    client_closed: AtomicU64,
    server_closed: AtomicU64,
    idle_closed: AtomicU64,
    resets: AtomicU64,
    tls_full: AtomicU64,
    tls_resumed: AtomicU64,
    // Guards nothing but the wake-ups of `wait_until`: a counter changes before this lock is
    // taken to notify, so a waiter holding it either sees the change or is woken by it.
    changed: Mutex<()>,
    cond: Condvar,
}

/// A copy of the counters at one instant.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StatsSnapshot {
    /// TCP connections accepted.
    pub accepted: u64,
    /// Requests read completely (including ones answered with a fault).
    pub requests: u64,
    /// Connections that the client ended: EOF read, or a read or write error from the peer.
    pub client_closed: u64,
    /// Connections the server closed gracefully: `Connection: close`, HTTP/1.0, a 400,
    /// [`Answer::CloseWithoutResponse`](super::Answer::CloseWithoutResponse) or shutdown.
    pub server_closed: u64,
    /// Keep-alive connections the server closed because they were idle too long.
    pub idle_closed: u64,
    /// Connections the server reset ([`Answer::Reset`](super::Answer::Reset),
    /// [`Answer::Partial`](super::Answer::Partial)).
    pub resets: u64,
    /// TLS connections that completed a full handshake.
    pub tls_full: u64,
    /// TLS connections that resumed an earlier session.
    pub tls_resumed: u64,
}

impl StatsSnapshot {
    /// Connections accepted and not yet closed.
    pub fn open(&self) -> u64 {
        let closed = self.client_closed + self.server_closed + self.idle_closed + self.resets;
        self.accepted.saturating_sub(closed)
    }
}

/// Which counter a connection thread bumps.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Event {
    Accepted,
    Request,
    ClientClosed,
    ServerClosed,
    IdleClosed,
    Reset,
    TlsFull,
    TlsResumed,
}

impl ServerStats {
    /// Reads every counter.
    pub fn snapshot(&self) -> StatsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::SeqCst);
        StatsSnapshot {
            accepted: get(&self.accepted),
            requests: get(&self.requests),
            client_closed: get(&self.client_closed),
            server_closed: get(&self.server_closed),
            idle_closed: get(&self.idle_closed),
            resets: get(&self.resets),
            tls_full: get(&self.tls_full),
            tls_resumed: get(&self.tls_resumed),
        }
    }

    /// Blocks until `pred` holds for a snapshot or `timeout` passes; returns whether it held.
    ///
    /// Woken on every counter change, so it never polls.
    pub fn wait_until(&self, pred: impl Fn(&StatsSnapshot) -> bool, timeout: Duration) -> bool {
        let deadline = Instant::now().checked_add(timeout);
        let mut guard = self.changed.lock();
        loop {
            if pred(&self.snapshot()) {
                return true;
            }
            match deadline {
                Some(d) if self.cond.wait_until(&mut guard, d).timed_out() => {
                    return pred(&self.snapshot());
                }
                Some(_) => {}
                None => self.cond.wait(&mut guard),
            }
        }
    }

    pub(crate) fn record(&self, event: Event) {
        let counter = match event {
            Event::Accepted => &self.accepted,
            Event::Request => &self.requests,
            Event::ClientClosed => &self.client_closed,
            Event::ServerClosed => &self.server_closed,
            Event::IdleClosed => &self.idle_closed,
            Event::Reset => &self.resets,
            Event::TlsFull => &self.tls_full,
            Event::TlsResumed => &self.tls_resumed,
        };
        counter.fetch_add(1, Ordering::SeqCst);
        let _guard = self.changed.lock();
        self.cond.notify_all();
    }
}
