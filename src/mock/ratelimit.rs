//! A fixed one-second window of requests, aligned to wall-clock seconds so the reset header
//! (epoch seconds) is exact.

use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;

/// Counts requests per wall-clock second.
#[derive(Default)]
pub(crate) struct RateWindow {
    // Guards (second, requests in it).
    window: Mutex<(u64, u32)>,
}

/// The verdict on one request.
pub(crate) struct RateVerdict {
    pub allowed: bool,
    pub remaining: u32,
    /// Epoch second at which the window resets.
    pub reset: u64,
}

impl RateWindow {
    /// Counts a request against `limit` per second.
    pub(crate) fn check(&self, limit: u32) -> RateVerdict {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut w = self.window.lock();
        if w.0 != now {
            *w = (now, 0);
        }
        let allowed = w.1 < limit;
        if allowed {
            w.1 += 1;
        }
        RateVerdict {
            allowed,
            // The limit may have been lowered below this window's count at run time.
            remaining: limit.saturating_sub(w.1),
            reset: now + 1,
        }
    }
}
