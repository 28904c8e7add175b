//! Two counts over a sliding window, for the retry budget, the breaker's
//! failure rate and the limiter's meter.

use std::time::{Duration, Instant};

/// Slots the window is cut into: it slides a tenth at a time.
const SLOTS: usize = 10;

/// Two counts per slot in a ring of fixed slots, so a check costs the same at
/// 10 or 10,000 events per second. Not locked: its owner's lock guards it.
pub(crate) struct SlidingCounts {
    start: Instant,
    slot: Duration,
    /// Per slot: (slot number, first count, second count).
    ring: [(u64, u64, u64); SLOTS],
}

impl SlidingCounts {
    /// Empty counts over `window` (at least 10 ms: one millisecond per slot).
    pub(crate) fn new(window: Duration) -> Self {
        SlidingCounts {
            start: Instant::now(),
            slot: (window / SLOTS as u32).max(Duration::from_millis(1)),
            ring: [(0, 0, 0); SLOTS],
        }
    }

    fn slot_of(&self, now: Instant) -> u64 {
        (now.saturating_duration_since(self.start).as_nanos() / self.slot.as_nanos()) as u64
    }

    /// Adds `a` and `b` to the slot of `now`.
    pub(crate) fn add(&mut self, now: Instant, a: u64, b: u64) {
        let n = self.slot_of(now);
        let entry = &mut self.ring[(n % SLOTS as u64) as usize];
        if entry.0 != n {
            *entry = (n, 0, 0);
        }
        entry.1 += a;
        entry.2 += b;
    }

    /// Both counts over the window that ends at `now`.
    pub(crate) fn totals(&self, now: Instant) -> (u64, u64) {
        let n = self.slot_of(now);
        self.ring
            .iter()
            .filter(|(slot, _, _)| slot + SLOTS as u64 > n && *slot <= n)
            .fold((0, 0), |(a, b), (_, x, y)| (a + x, b + y))
    }

    /// Forgets everything counted.
    pub(crate) fn clear(&mut self) {
        self.ring.iter_mut().for_each(|e| (e.1, e.2) = (0, 0));
    }

    /// The window's length.
    pub(crate) fn span(&self) -> Duration {
        self.slot * SLOTS as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_slide_out_of_the_window() {
        let mut w = SlidingCounts::new(Duration::from_secs(1));
        let t = w.start;
        w.add(t, 1, 0);
        w.add(t + Duration::from_millis(550), 2, 1);
        assert_eq!(w.totals(t + Duration::from_millis(600)), (3, 1));
        assert_eq!(w.totals(t + Duration::from_millis(1050)), (2, 1));
        assert_eq!(w.totals(t + Duration::from_millis(1700)), (0, 0));
        w.clear();
        assert_eq!(w.totals(Instant::now()), (0, 0));
    }
}
