//! The optional pool-wide connection cap (`max_connections_total`), and the one
//! place every lease of a capped pool waits.
//!
//! Under a total cap, capacity a waiter can use frees up in many ways: a permit
//! released when any socket closes, an agent of any origin going idle (it can
//! be evicted), an agent of the waiter's own origin coming back (it can be
//! lent). Every such event bumps a generation and wakes all waiters, who look
//! again; a waiter reads the generation before it looks, so an event between
//! its look and its sleep is never missed. (Woken only by permit releases,
//! waiters slept through idle agents for their whole acquire timeout.)

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

use super::host::HostPool;

/// Counts permits across all origins. Each host slot holds one permit from
/// creation until its socket is closed.
pub(crate) struct TotalLimit {
    max: usize,
    /// Guards the permits handed out and the generation of capacity events.
    state: Mutex<TotalState>,
    changed: Condvar,
    /// Leases waiting in any host of the pool; events skip the wake-up when 0.
    waiters: AtomicUsize,
}

#[derive(Default)]
struct TotalState {
    used: usize,
    generation: u64,
}

impl TotalLimit {
    pub(crate) fn new(max: usize) -> Self {
        TotalLimit {
            max,
            state: Mutex::new(TotalState::default()),
            changed: Condvar::new(),
            waiters: AtomicUsize::new(0),
        }
    }

    /// Takes a permit if one is free.
    pub(crate) fn try_acquire(&self) -> bool {
        let mut st = self.state.lock();
        if st.used < self.max {
            st.used += 1;
            true
        } else {
            false
        }
    }

    /// A socket closed (or a slot was never used): its permit is free.
    pub(crate) fn release(&self) {
        let mut st = self.state.lock();
        st.used = st.used.saturating_sub(1);
        st.generation += 1;
        drop(st);
        self.changed.notify_all();
    }

    /// Capacity may have freed up (an agent went idle, the pool shut down):
    /// waiters look again.
    pub(crate) fn wake(&self) {
        if self.waiters.load(SeqCst) > 0 {
            self.state.lock().generation += 1;
            self.changed.notify_all();
        }
    }

    /// A lease starts waiting; [`TotalLimit::leave`] when it stops.
    pub(crate) fn enter(&self) {
        self.waiters.fetch_add(1, SeqCst);
    }

    pub(crate) fn leave(&self) {
        self.waiters.fetch_sub(1, SeqCst);
    }

    /// The generation of capacity events; read before looking for capacity.
    pub(crate) fn generation(&self) -> u64 {
        self.state.lock().generation
    }

    /// Sleeps until an event after `seen`, or `deadline`.
    pub(crate) fn wait_for_change(&self, seen: u64, deadline: Option<Instant>) {
        let mut st = self.state.lock();
        while st.generation == seen {
            match deadline {
                Some(d) => {
                    if self.changed.wait_until(&mut st, d).timed_out() {
                        return;
                    }
                }
                None => self.changed.wait(&mut st),
            }
        }
    }
}

/// Closes the idle agent that has been idle longest, of any origin but the
/// requester's (whose idle agents it lends instead); returns whether one closed.
pub(crate) fn evict_lru_idle(requester: &Arc<HostPool>) -> bool {
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
