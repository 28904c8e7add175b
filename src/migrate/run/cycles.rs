//! Test cycles, recognised on qTest by the Zephyr key the transform writes into
//! their description (names repeat; keys don't), one queue job per cycle.

use std::collections::HashMap;
use std::sync::OnceLock;

use super::folders::walk_cycles;
use super::shared::{Fresh, PlanInfo, Shared};
use crate::error::Result;
use crate::migrate::record::{RecordKind, Target};
use crate::migrate::transform::{cycle_key, cycle_plan};
use crate::qtest::{CycleParent, TestCycle as QtestCycle};
use crate::zephyr::TestCycle as ZephyrCycle;

type KeyIndex = HashMap<String, u64>;

fn index(cycles: &[QtestCycle]) -> KeyIndex {
    let mut out = KeyIndex::new();
    walk_cycles(cycles, None, &mut |_, c| {
        if let Some(key) = cycle_key(c.description.as_deref().unwrap_or("")) {
            // Ids ascend in creation order: the first one wins.
            out.entry(key.to_string()).or_insert(c.id);
        }
    });
    out
}

/// The cycles already on qTest, by the Zephyr key in their description, read
/// once for all cycle jobs.
#[derive(Default)]
pub(crate) struct CycleIndex {
    snapshot: OnceLock<std::result::Result<KeyIndex, String>>,
}

/// Migrates one test cycle. Cycles are matched by key, not by name or
/// position, so they can be created in parallel.
pub(crate) fn migrate_cycle(s: &Shared, known: &CycleIndex, cycle: ZephyrCycle) {
    let key = cycle.id.to_string();
    if s.already(RecordKind::Cycle, &key) {
        return super::attachments::of_cycle(s, &cycle.key);
    }
    let plan = match cycle_plan(&cycle, &s.context()) {
        Ok(plan) => plan,
        Err(e) => return s.transform_failed(&e),
    };
    let live = |parent: CycleParent| -> Result<Option<Target>> {
        let found = index(&s.qtest.cycles(parent, false)?);
        Ok(found.get(&cycle.key).map(|&id| Target::id(id)))
    };
    let find = |fresh: Fresh| match fresh {
        Fresh::Live => live(plan.parent),
        Fresh::Snapshot => {
            let snap = known.snapshot.get_or_init(|| {
                s.qtest
                    .cycles(CycleParent::Root, true)
                    .map(|all| index(&all))
                    .map_err(|e| e.to_string())
            });
            match snap {
                Ok(map) => Ok(map.get(&cycle.key).map(|&id| Target::id(id))),
                Err(_) => live(plan.parent),
            }
        }
    };
    let create = || {
        s.qtest
            .create_cycle(plan.parent, &plan.body)
            .map(|c| Target::id(c.id))
    };
    let info = PlanInfo {
        parent: format!("{:?}", plan.parent),
        name: &plan.body.name,
        body: &plan.body,
    };
    if s.ensure(RecordKind::Cycle, &key, info, &find, &create)
        .is_some()
    {
        let texts = [cycle.description.as_deref()];
        super::attachments::inline_images(s, &format!("cycle/{}", cycle.key), &texts);
        super::attachments::of_cycle(s, &cycle.key);
    }
}
