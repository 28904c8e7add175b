//! Test cycles, recognised on qTest by the Zephyr key the transform writes into
//! their description (names repeat; keys don't).

use std::collections::HashMap;
use std::sync::OnceLock;

use super::folders::walk_cycles;
use super::shared::{Fresh, PlanInfo, Shared};
use crate::error::{Error, Result};
use crate::migrate::error::MigrateError;
use crate::migrate::record::{RecordKind, Target};
use crate::migrate::transform::{cycle_key, cycle_plan};
use crate::qtest::{CycleParent, TestCycle as QtestCycle};

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

/// Migrates every test cycle, one at a time (there are few, and their parents
/// are already there).
pub(crate) fn cycles(s: &Shared) -> std::result::Result<(), MigrateError> {
    s.progress
        .phase("cycles", s.zephyr.count("/testcycles", &[])?);
    let snapshot: OnceLock<std::result::Result<KeyIndex, String>> = OnceLock::new();
    s.zephyr.test_cycles(|page| {
        for cycle in page {
            if s.cancel.is_cancelled() {
                return Err(Error::Cancelled);
            }
            let key = cycle.id.to_string();
            if s.already(RecordKind::Cycle, &key) {
                continue;
            }
            let plan = match cycle_plan(&cycle, &s.context()) {
                Ok(plan) => plan,
                Err(e) => {
                    s.transform_failed(&e);
                    continue;
                }
            };
            let live = |parent: CycleParent| -> Result<Option<Target>> {
                let found = index(&s.qtest.cycles(parent, false)?);
                Ok(found.get(&cycle.key).map(|&id| Target::id(id)))
            };
            let find = |fresh: Fresh| match fresh {
                Fresh::Live => live(plan.parent),
                Fresh::Snapshot => {
                    let snap = snapshot.get_or_init(|| {
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
            s.ensure(RecordKind::Cycle, &key, info, &find, &create);
        }
        Ok(())
    })?;
    Ok(())
}
