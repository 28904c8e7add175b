//! Pass 3: test cycles, found by the Zephyr key `cycle_plan` writes into
//! their description.

use std::collections::HashMap;

use super::folders::Node;
use super::text::{excerpts, norm, quote};
use super::{DiffKind, Difference, MISSING, Verifier, duplicate};
use crate::migrate::error::MigrateError;
use crate::migrate::record::{RecordKind, Target};
use crate::migrate::transform::cycle_plan;
use crate::qtest::{CycleParent, QtestClient, TestCycle};

/// What precedes the key in a migrated cycle's description: `cycle_plan`
/// opens its "Zephyr fields:" block with the key (pinned by a test).
const KEY_LINE: &str = "Zephyr fields:<br>Key: ";

/// The Zephyr cycle key in a (normalised) description, if it has one.
pub(super) fn cycle_key(description: &str) -> Option<&str> {
    let at = description.find(KEY_LINE)? + KEY_LINE.len();
    let key = description[at..].split("<br>").next()?.trim();
    (!key.is_empty()).then_some(key)
}

/// A migrated cycle as found on qTest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct FoundCycle {
    id: u64,
    parent: CycleParent,
    name: String,
    description: String,
}

/// The migrated cycles on qTest, by Zephyr cycle key.
#[derive(Debug, Default)]
pub(super) struct CycleIndex(HashMap<String, Vec<FoundCycle>>);

/// Reads qTest's cycle tree once: cycles whose description carries a key of
/// project `project` go into the index; the others are the parent cycles a
/// migration makes of `TEST_CYCLE` folders (and the default cycle), returned
/// as a tree for matching by name.
pub(super) fn load(qtest: &QtestClient, project: &str) -> crate::Result<(Vec<Node>, CycleIndex)> {
    let roots = qtest.cycles(CycleParent::Root, true)?;
    let mut index = CycleIndex::default();
    let prefix = format!("{project}-");
    let nodes = split(roots, CycleParent::Root, &prefix, &mut index);
    Ok((nodes, index))
}

fn split(
    mut cycles: Vec<TestCycle>,
    parent: CycleParent,
    prefix: &str,
    index: &mut CycleIndex,
) -> Vec<Node> {
    cycles.sort_by_key(|c| c.id);
    let mut nodes = Vec::new();
    for cycle in cycles {
        let description = norm(cycle.description.as_deref().unwrap_or(""));
        match cycle_key(&description).filter(|k| k.starts_with(prefix)) {
            Some(key) => index.0.entry(key.to_owned()).or_default().push(FoundCycle {
                id: cycle.id,
                parent,
                name: norm(&cycle.name),
                description: description.clone(),
            }),
            None => nodes.push(Node {
                id: cycle.id,
                name: cycle.name,
                children: split(
                    cycle.test_cycles,
                    CycleParent::TestCycle(cycle.id),
                    prefix,
                    index,
                ),
            }),
        }
    }
    nodes
}

fn show(parent: CycleParent) -> String {
    match parent {
        CycleParent::Root => "root".to_owned(),
        CycleParent::Release(id) => format!("release {id}"),
        CycleParent::TestCycle(id) => format!("cycle {id}"),
    }
}

impl Verifier<'_> {
    /// Compares every Zephyr cycle with the cycle found for its key; cycles
    /// left in the index are extras.
    pub(super) fn cycles(&mut self, index: &mut CycleIndex) -> Result<(), MigrateError> {
        let zephyr = self.zephyr;
        zephyr.test_cycles(|page| {
            for record in &page {
                match record {
                    Ok(cycle) => self.check_cycle(cycle, index),
                    Err(bad) => self.unreadable(RecordKind::Cycle, bad),
                }
            }
            Ok(())
        })?;
        let mut extras: Vec<(String, Vec<FoundCycle>)> = index.0.drain().collect();
        extras.sort_by(|a, b| a.0.cmp(&b.0));
        for (key, found) in extras {
            for cycle in found {
                let actual = format!("cycle {} {}", cycle.id, quote(&cycle.name));
                self.differ(Difference::new(
                    RecordKind::Cycle,
                    DiffKind::Extra,
                    key.clone(),
                    "no such Zephyr cycle",
                    actual,
                ));
            }
        }
        Ok(())
    }

    fn check_cycle(&mut self, cycle: &crate::zephyr::TestCycle, index: &mut CycleIndex) {
        if !self.zephyr_cycles.insert(cycle.id) {
            return;
        }
        self.check(RecordKind::Cycle, 1);
        let key = cycle.id.to_string();
        let found = index.0.remove(&cycle.key);
        let plan = match cycle_plan(cycle, &self.context()) {
            Ok(plan) => plan,
            Err(e) => return self.unmappable(&e),
        };
        let Some(found) = found else {
            let expected = format!(
                "{} {} under {}",
                cycle.key,
                quote(&plan.body.name),
                show(plan.parent)
            );
            return self.differ(Difference::new(
                RecordKind::Cycle,
                DiffKind::Missing,
                key,
                expected,
                "not found",
            ));
        };
        if found.len() > 1 {
            self.differ(duplicate(
                RecordKind::Cycle,
                &key,
                found.iter().map(|c| c.id),
            ));
        }
        let actual = &found[0];
        self.found
            .insert(RecordKind::Cycle, key.clone(), Target::id(actual.id));
        let mismatch = |field: &str, e: &str, a: &str| {
            let (e, a) = excerpts(e, a);
            Difference::mismatch(RecordKind::Cycle, key.clone(), field, e, a)
        };
        let mut differences = Vec::new();
        let name = norm(&plan.body.name);
        if name != actual.name {
            differences.push(mismatch("name", &name, &actual.name));
        }
        let description = norm(&plan.body.description);
        if description != actual.description {
            differences.push(mismatch("description", &description, &actual.description));
        }
        if plan.parent != CycleParent::TestCycle(MISSING) && plan.parent != actual.parent {
            let (e, a) = (show(plan.parent), show(actual.parent));
            differences.push(Difference::mismatch(
                RecordKind::Cycle,
                key.clone(),
                "parent",
                e,
                a,
            ));
        }
        for d in differences {
            self.differ(d);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrate::MappingConfig;
    use crate::migrate::transform::{Catalog, Context, Lookups};

    #[test]
    fn the_key_is_read_back_from_what_cycle_plan_writes() {
        let cycle: crate::zephyr::TestCycle = serde_json::from_value(serde_json::json!({
            "id": 10010, "key": "PROJ-R40", "name": "Sprint 1", "project": {"id": 1},
            "status": {"id": 5}, "description": "Regression<br>Key: not this one",
        }))
        .unwrap();
        let lookups = Lookups {
            qtest_case_fields: serde_json::from_value(serde_json::json!([
                {"id": 1, "label": "Zephyr Key", "data_type": 1}
            ]))
            .unwrap(),
            ..Lookups::default()
        };
        let catalog = Catalog::new(MappingConfig::default(), &lookups).unwrap();
        let found = super::super::Found::default();
        let ctx = Context {
            catalog: &catalog,
            lookup: &found,
        };
        let plan = cycle_plan(&cycle, &ctx).unwrap();
        assert_eq!(cycle_key(&norm(&plan.body.description)), Some("PROJ-R40"));
        assert_eq!(cycle_key("Zephyr fields:<br>Key: PROJ-R7"), Some("PROJ-R7"));
        assert_eq!(cycle_key("Key: PROJ-R7"), None);
        assert_eq!(cycle_key("Zephyr fields:<br>Key: <br>x"), None);
    }

    #[test]
    fn split_separates_migrated_cycles_from_parents() {
        let tree: Vec<TestCycle> = serde_json::from_value(serde_json::json!([
            {"id": 2, "name": "Folder", "description": "", "test_cycles": [
                {"id": 4, "name": "Sprint", "description": "Zephyr fields:<br>Key: PROJ-R1<br>Status: Done"},
                {"id": 3, "name": "Other", "description": "Zephyr fields:<br>Key: OTHER-R1"}
            ]},
            {"id": 1, "name": "Sprint", "description": "x<br><br>Zephyr fields:<br>Key: PROJ-R2"}
        ]))
        .unwrap();
        let mut index = CycleIndex::default();
        let nodes = split(tree, CycleParent::Root, "PROJ-", &mut index);
        assert_eq!(nodes.len(), 1);
        assert_eq!(nodes[0].id, 2);
        assert_eq!(
            nodes[0].children.iter().map(|n| n.id).collect::<Vec<_>>(),
            [3]
        );
        assert_eq!(index.0["PROJ-R1"][0].parent, CycleParent::TestCycle(2));
        assert_eq!(index.0["PROJ-R2"][0].parent, CycleParent::Root);
        assert_eq!(index.0.len(), 2);
    }
}
