//! A search index that lags behind writes.
//!
//! qTest's `POST /search` may not see a record for a while after it was
//! created (api-contract.md section 0, unverified on the real service), while
//! the listings (`GET modules`, `test-cases?parentId=`, `test-runs`,
//! `test-logs`) read committed state at once. A client that looks a record up
//! through the search after a create whose outcome it could not read may then
//! miss it and create it twice. Switched on with
//! [`MockServers::set_search_lag`](crate::mock::MockServers::set_search_lag).

use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

/// How far the search index trails the writes. A created record shows in
/// search results only once both conditions hold: `writes` more writes were
/// applied after it, and `time` has passed since it was. Defaults to no lag.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SearchLag {
    /// Writes applied after a record before the search sees it.
    pub writes: u64,
    /// Time after a record's write before the search sees it.
    pub time: Duration,
}

impl SearchLag {
    /// No lag at all: the search sees every write at once.
    pub fn none() -> Self {
        SearchLag::default()
    }

    fn is_none(&self) -> bool {
        self.writes == 0 && self.time.is_zero()
    }
}

/// The records the index has not caught up with yet, oldest first.
#[derive(Debug, Default)]
pub(crate) struct Lagging {
    lag: SearchLag,
    /// (record id, journal sequence number of its write, when it was applied).
    recent: VecDeque<(u64, u64, Instant)>,
}

impl Lagging {
    pub(crate) fn set(&mut self, lag: SearchLag) {
        self.lag = lag;
        if lag.is_none() {
            self.recent.clear();
        }
    }

    /// A record created by the write numbered `seq`.
    pub(crate) fn created(&mut self, id: u64, seq: u64) {
        if !self.lag.is_none() {
            self.recent.push_back((id, seq, Instant::now()));
        }
    }

    /// The records the search must not show yet, `last_seq` being the number
    /// of the latest write.
    pub(crate) fn hidden(&mut self, last_seq: u64) -> HashSet<u64> {
        let SearchLag { writes, time } = self.lag;
        while let Some(&(_, seq, at)) = self.recent.front() {
            let caught_up = last_seq.saturating_sub(seq) >= writes && at.elapsed() >= time;
            if !caught_up {
                break;
            }
            self.recent.pop_front();
        }
        self.recent.iter().map(|&(id, ..)| id).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_shows_after_n_later_writes() {
        let mut lagging = Lagging::default();
        lagging.created(1, 1);
        assert!(lagging.hidden(1).is_empty(), "no lag set: nothing hidden");
        lagging.set(SearchLag {
            writes: 2,
            time: Duration::ZERO,
        });
        lagging.created(10, 2);
        lagging.created(11, 3);
        assert_eq!(lagging.hidden(3), HashSet::from([10, 11]));
        assert_eq!(lagging.hidden(4), HashSet::from([11]));
        assert!(lagging.hidden(5).is_empty());
        lagging.set(SearchLag {
            writes: 0,
            time: Duration::from_secs(3600),
        });
        lagging.created(12, 6);
        assert_eq!(lagging.hidden(100), HashSet::from([12]));
        lagging.set(SearchLag::none());
        assert!(lagging.hidden(100).is_empty());
    }
}
