//! What one origin's warm-ups share: the requests in flight, so a shutdown can
//! cut them short, and whether the cleaner's top-up to `min_idle` runs.
//!
//! A warm-up waits for a server's answer. Run on the cleaner thread, a server
//! that never answered held the cleaner (so every origin's idle and lifetime
//! closes) and a shutdown (which joins the cleaner) for the whole request
//! timeout. So the cleaner only starts a top-up, on a thread of its own, one
//! at a time per origin; and a shutdown interrupts every warm-up in flight
//! through ureq's `Agent::shutdown`, as HikariCP aborts its pending adds.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed, Ordering::SeqCst};

use parking_lot::Mutex;

/// One origin's warm-ups.
#[derive(Default)]
pub(crate) struct WarmUps {
    /// The agents (with their wire's id) whose warm-up request is in flight.
    in_flight: Mutex<Vec<(usize, ureq::Agent)>>,
    /// The cleaner's top-up thread for this origin runs.
    topping_up: AtomicBool,
}

/// Keeps a warm-up interruptible until dropped.
pub(crate) struct InFlight<'a> {
    warm_ups: &'a WarmUps,
    wire: usize,
}

impl WarmUps {
    /// Registers `agent`'s warm-up request so [`WarmUps::interrupt_all`] can
    /// cut it short; `None` if the pool is `closed` already. Checked under the
    /// same lock the shutdown takes, so no warm-up escapes it.
    pub(crate) fn start<'a>(
        &'a self,
        wire: usize,
        agent: &ureq::Agent,
        closed: &AtomicBool,
    ) -> Option<InFlight<'a>> {
        let mut in_flight = self.in_flight.lock();
        if closed.load(Relaxed) {
            return None;
        }
        in_flight.push((wire, agent.clone()));
        Some(InFlight {
            warm_ups: self,
            wire,
        })
    }

    /// Ends every warm-up in flight now: its socket is shut down, its request
    /// fails, and its agent is closed when it comes back. For the shutdown,
    /// after the pool's `closed` flag is set.
    pub(crate) fn interrupt_all(&self) {
        let agents = std::mem::take(&mut *self.in_flight.lock());
        for (_, agent) in agents {
            agent.shutdown();
        }
    }

    /// Claims the right to run a top-up; false if one runs already.
    pub(crate) fn begin_top_up(&self) -> bool {
        !self.topping_up.swap(true, SeqCst)
    }

    /// The top-up claimed with [`WarmUps::begin_top_up`] is over.
    pub(crate) fn end_top_up(&self) {
        self.topping_up.store(false, SeqCst);
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.warm_ups
            .in_flight
            .lock()
            .retain(|(wire, _)| *wire != self.wire);
    }
}
