//! What the current request did on the wire, kept per thread.
//!
//! ureq runs a request on the calling thread, transport calls included, so the
//! thread identifies the request: a clone of the agent used in another thread
//! is another request and writes its own record. (Kept on the shared wire, a
//! clone's request overwrote the holder's, and a connect failure read as "sent,
//! reused, response started".) A record names the agent's wire, so a record
//! of one lease never answers for another.

use std::cell::Cell;

use crate::error::Exchange;

const SENT: u8 = 1;
const REUSED: u8 = 2;
const RESPONSE: u8 = 4;

#[derive(Clone, Copy)]
struct Record {
    /// The wire (its address) the record is about; 0 for none.
    wire: usize,
    bits: u8,
    /// A pool helper ([`super::Lease::send`]) runs this request: it reads
    /// every response to the end, so a socket it drops mid-exchange was
    /// dropped on an error (a protocol error, a body over the limit).
    helper: bool,
}

thread_local! {
    static CURRENT: Cell<Record> = const {
        Cell::new(Record { wire: 0, bits: 0, helper: false })
    };
}

/// Starts a fresh record for a request about to go out on `wire`.
pub(crate) fn reset(wire: usize, helper: bool) {
    CURRENT.set(Record {
        wire,
        bits: 0,
        helper,
    });
}

/// The helper that ran the request is done (its record stays readable).
pub(crate) fn helper_done(wire: usize) {
    let mut r = CURRENT.get();
    if r.wire == wire {
        r.helper = false;
        CURRENT.set(r);
    }
}

/// A request starts on `wire`: its first byte is about to be written.
pub(crate) fn sent(wire: usize, reused: bool) {
    let r = CURRENT.get();
    let helper = r.wire == wire && r.helper;
    CURRENT.set(Record {
        wire,
        bits: SENT | if reused { REUSED } else { 0 },
        helper,
    });
}

/// The first response byte of the current request on `wire` arrived.
pub(crate) fn response_started(wire: usize) {
    let mut r = CURRENT.get();
    if r.wire == wire {
        r.bits |= RESPONSE;
        CURRENT.set(r);
    }
}

/// This thread's last request on `wire`; all false if it made none.
pub(crate) fn of(wire: usize) -> Exchange {
    let r = CURRENT.get();
    let bits = if r.wire == wire { r.bits } else { 0 };
    Exchange {
        sent: bits & SENT != 0,
        reused: bits & REUSED != 0,
        response_started: bits & RESPONSE != 0,
    }
}

/// Whether a pool helper is running a request on `wire` in this thread.
pub(crate) fn in_helper(wire: usize) -> bool {
    let r = CURRENT.get();
    r.wire == wire && r.helper
}

/// Clears the helper flag when the helper's scope ends, panics included.
pub(crate) struct HelperScope(pub(crate) usize);

impl Drop for HelperScope {
    fn drop(&mut self) {
        helper_done(self.0);
    }
}
