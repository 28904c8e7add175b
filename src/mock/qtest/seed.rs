//! What the qTest project holds before any migration: another team's release, test cycles
//! nested three deep. Clients must read nested cycles (under the hyphenated `test-cycles`) and
//! leave cycles that no Zephyr key marks alone.

use super::execution::add_cycle;
use super::state::QtestState;

/// (name, index of the parent in this list).
const TREE: &[(&str, Option<usize>)] = &[
    ("Release 2023.4", None),
    ("Regression", Some(0)),
    ("Week 1", Some(1)),
    ("Smoke", Some(2)),
    ("Week 2", Some(1)),
];

/// Adds the pre-existing cycles; deterministic, so a journal replays onto the same ids.
pub(crate) fn preexisting(st: &mut QtestState) {
    let mut ids: Vec<u64> = Vec::with_capacity(TREE.len());
    for (name, parent) in TREE {
        let parent = match parent {
            Some(i) => (ids[*i], "test-cycle"),
            None => (0, "root"),
        };
        let description = "Planned by the release team".to_string();
        let at = "2023-10-02T08:00:00Z".to_string();
        ids.push(add_cycle(st, name.to_string(), description, parent, at));
    }
}
