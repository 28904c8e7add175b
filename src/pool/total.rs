//! The optional pool-wide connection cap (`max_connections_total`).

use std::sync::Arc;
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

use super::host::HostPool;
use crate::error::Result;

/// Counts slots across all origins. Each host slot holds one permit from
/// creation until its socket is closed.
pub(crate) struct TotalLimit {
    max: usize,
    /// Permits handed out.
    used: Mutex<usize>,
    freed: Condvar,
}

impl TotalLimit {
    pub(crate) fn new(max: usize) -> Self {
        TotalLimit {
            max,
            used: Mutex::new(0),
            freed: Condvar::new(),
        }
    }

    /// Takes a permit for `requester`. When the cap is reached, closes the least
    /// recently used idle agent of another origin; if there is none, waits for a
    /// permit until `deadline`.
    pub(crate) fn acquire(
        &self,
        requester: &Arc<HostPool>,
        deadline: Option<Instant>,
    ) -> Result<()> {
        let start = Instant::now();
        loop {
            {
                let mut used = self.used.lock();
                if *used < self.max {
                    *used += 1;
                    return Ok(());
                }
            }
            // Outside our lock: eviction closes a socket, which releases a permit.
            if evict_lru_idle(requester) {
                continue;
            }
            let mut used = self.used.lock();
            if *used < self.max {
                continue;
            }
            let timed_out = match deadline {
                Some(d) => self.freed.wait_until(&mut used, d).timed_out(),
                None => {
                    self.freed.wait(&mut used);
                    false
                }
            };
            if timed_out && *used >= self.max {
                drop(used);
                requester.metrics.lease_timed_out();
                return Err(requester.timeout_error(start.elapsed(), true));
            }
        }
    }

    pub(crate) fn release(&self) {
        let mut used = self.used.lock();
        *used = used.saturating_sub(1);
        drop(used);
        self.freed.notify_one();
    }
}

/// Closes the idle agent that has been idle longest, of any origin but the
/// requester's (which has none idle, or it would have used it).
fn evict_lru_idle(requester: &Arc<HostPool>) -> bool {
    let Some(pool) = requester.pool() else {
        return false;
    };
    let victim = pool
        .hosts()
        .into_iter()
        .filter(|h| !Arc::ptr_eq(h, requester))
        .filter_map(|h| h.coldest_idle().map(|since| (since, h)))
        .min_by_key(|(since, _)| *since);
    victim.is_some_and(|(since, host)| host.evict_coldest(since))
}
