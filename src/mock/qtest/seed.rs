//! What the qTest project holds before any migration: another team's release, test cycles
//! nested three deep. Clients must read nested cycles (under the hyphenated `test-cycles`) and
//! leave cycles that no Zephyr key marks alone.

use super::state::{Cycle, QtestState};

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
        let (parent_id, parent_type) = match parent {
            Some(i) => (ids[*i], "test-cycle"),
            None => (0, "root"),
        };
        let order = st
            .test_cycles
            .iter()
            .filter(|c| c.parent_id == parent_id && c.parent_type == parent_type)
            .count() as u32
            + 1;
        let (id, pid) = st.next_ids("CL");
        st.test_cycles.push(Cycle {
            id,
            pid,
            name: name.to_string(),
            description: "Planned by the release team".to_string(),
            parent_id,
            parent_type: parent_type.to_string(),
            order,
            created_date: "2023-10-02T08:00:00Z".to_string(),
        });
        ids.push(id);
    }
}
