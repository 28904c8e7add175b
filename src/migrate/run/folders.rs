//! Folder trees: `TEST_CASE` folders become modules, `TEST_CYCLE` folders
//! become test cycles. Created one at a time, parents first and siblings in
//! `index` order, so qTest keeps Zephyr's order and a re-run can match
//! repeated sibling names by position.

use std::collections::HashMap;
use std::sync::OnceLock;

use super::shared::{Fresh, PlanInfo, Shared};
use crate::error::{Error, Result};
use crate::migrate::error::{MigrateError, TransformError};
use crate::migrate::parallel::try_map;
use crate::migrate::record::{RecordKind, Target};
use crate::migrate::transform::{self, DEFAULT_KEY, cycle_folder_plan, folder_order, module_plan};
use crate::qtest::{CycleParent, Module, NewModule, NewTestCycle, TestCycle};
use crate::zephyr::{Folder, FolderType};

/// A qTest tree's nodes by (parent, name), in qTest's order.
type Siblings = HashMap<(Option<u64>, String), Vec<u64>>;

/// One of the two kinds of tree.
trait Tree {
    type Body: serde::Serialize;
    const KIND: RecordKind;
    /// Parent id (`None`: root), name and body for a folder.
    fn plan(
        &self,
        s: &Shared,
        folder: &Folder,
    ) -> std::result::Result<(Option<u64>, Self::Body), TransformError>;
    /// Every node already on qTest.
    fn snapshot(&self, s: &Shared) -> Result<Siblings>;
    /// The nodes under `parent` named `name`, now.
    fn children(&self, s: &Shared, parent: Option<u64>, name: &str) -> Result<Vec<u64>>;
    fn create(&self, s: &Shared, parent: Option<u64>, body: &Self::Body) -> Result<u64>;
    fn name(body: &Self::Body) -> &str;
}

struct Modules;
struct CycleFolders;

impl Tree for Modules {
    type Body = NewModule;
    const KIND: RecordKind = RecordKind::Module;

    fn plan(
        &self,
        s: &Shared,
        f: &Folder,
    ) -> std::result::Result<(Option<u64>, NewModule), TransformError> {
        let plan = module_plan(f, &s.context())?;
        Ok((plan.parent_id, plan.body))
    }

    fn snapshot(&self, s: &Shared) -> Result<Siblings> {
        let mut out = Siblings::new();
        walk_modules(&s.qtest.modules(None, true)?, None, &mut out);
        Ok(out)
    }

    fn children(&self, s: &Shared, parent: Option<u64>, name: &str) -> Result<Vec<u64>> {
        let mut nodes = s.qtest.modules(parent, false)?;
        nodes.sort_by_key(|m| (m.order, m.id));
        Ok(nodes
            .into_iter()
            .filter(|m| m.name == name)
            .map(|m| m.id)
            .collect())
    }

    fn create(&self, s: &Shared, parent: Option<u64>, body: &NewModule) -> Result<u64> {
        s.qtest.create_module(parent, body).map(|m| m.id)
    }

    fn name(body: &NewModule) -> &str {
        &body.name
    }
}

fn walk_modules(nodes: &[Module], parent: Option<u64>, out: &mut Siblings) {
    let mut sorted: Vec<&Module> = nodes.iter().collect();
    sorted.sort_by_key(|m| (m.order, m.id));
    for m in sorted {
        out.entry((parent, m.name.clone())).or_default().push(m.id);
        walk_modules(&m.children, Some(m.id), out);
    }
}

impl Tree for CycleFolders {
    type Body = NewTestCycle;
    const KIND: RecordKind = RecordKind::CycleFolder;

    fn plan(
        &self,
        s: &Shared,
        f: &Folder,
    ) -> std::result::Result<(Option<u64>, NewTestCycle), TransformError> {
        let plan = cycle_folder_plan(f, &s.context())?;
        let parent = match plan.parent {
            CycleParent::TestCycle(id) => Some(id),
            _ => None,
        };
        Ok((parent, plan.body))
    }

    fn snapshot(&self, s: &Shared) -> Result<Siblings> {
        let mut out = Siblings::new();
        walk_cycles(
            &s.qtest.cycles(CycleParent::Root, true)?,
            None,
            &mut |parent, c| {
                if transform::cycle_key(c.description.as_deref().unwrap_or("")).is_none() {
                    out.entry((parent, c.name.clone())).or_default().push(c.id);
                }
            },
        );
        Ok(out)
    }

    fn children(&self, s: &Shared, parent: Option<u64>, name: &str) -> Result<Vec<u64>> {
        let under = parent.map_or(CycleParent::Root, CycleParent::TestCycle);
        let mut nodes = s.qtest.cycles(under, false)?;
        nodes.sort_by_key(|c| c.id);
        Ok(nodes
            .into_iter()
            .filter(|c| {
                c.name == name
                    && transform::cycle_key(c.description.as_deref().unwrap_or("")).is_none()
            })
            .map(|c| c.id)
            .collect())
    }

    fn create(&self, s: &Shared, parent: Option<u64>, body: &NewTestCycle) -> Result<u64> {
        let under = parent.map_or(CycleParent::Root, CycleParent::TestCycle);
        s.qtest.create_cycle(under, body).map(|c| c.id)
    }

    fn name(body: &NewTestCycle) -> &str {
        &body.name
    }
}

/// Visits every cycle of a tree with its parent cycle (`None`: root).
pub(crate) fn walk_cycles(
    nodes: &[TestCycle],
    parent: Option<u64>,
    visit: &mut dyn FnMut(Option<u64>, &TestCycle),
) {
    let mut sorted: Vec<&TestCycle> = nodes.iter().collect();
    sorted.sort_by_key(|c| c.id);
    for c in sorted {
        visit(parent, c);
        walk_cycles(&c.test_cycles, Some(c.id), visit);
    }
}

/// Migrates the `TEST_CASE` folders to modules.
pub(crate) fn modules(s: &Shared, workers: usize) -> std::result::Result<(), MigrateError> {
    migrate_tree(s, &Modules, FolderType::TestCase, "modules", workers)
}

/// Migrates the `TEST_CYCLE` folders to test cycles.
pub(crate) fn cycle_folders(s: &Shared, workers: usize) -> std::result::Result<(), MigrateError> {
    migrate_tree(
        s,
        &CycleFolders,
        FolderType::TestCycle,
        "cycle folders",
        workers,
    )
}

fn migrate_tree<T: Tree + Sync>(
    s: &Shared,
    tree: &T,
    kind: FolderType,
    phase: &str,
    workers: usize,
) -> std::result::Result<(), MigrateError> {
    let (folders, unreadable) = crate::zephyr::split(s.patiently(|| s.zephyr.folders(kind))?);
    let (ordered, errors) = folder_order(&folders, T::KIND);
    s.progress.phase(
        phase,
        Some((ordered.len() + errors.len() + unreadable.len()) as u64),
    );
    for bad in &unreadable {
        s.unreadable(T::KIND, bad);
    }
    for e in &errors {
        s.transform_failed(e);
    }
    let known = Known::of(s, T::KIND);
    // Level by level, parents before children; within a level the siblings of
    // one parent are created in order by one thread (qTest keeps creation
    // order), different parents in parallel.
    for level in levels(&ordered) {
        try_map(&level, workers, |siblings| {
            create_siblings(s, tree, siblings, &known)
        })?;
    }
    Ok(())
}

/// The folders grouped by depth, and within a depth by parent, keeping the
/// given (parents first, index) order inside each group.
fn levels<'a>(ordered: &[&'a Folder]) -> Vec<Vec<Vec<&'a Folder>>> {
    let by_id: HashMap<u64, &Folder> = ordered.iter().map(|f| (f.id, *f)).collect();
    let depth = |f: &Folder| {
        let mut d = 0;
        let mut at = f.parent_id;
        while let Some(p) = at.and_then(|id| by_id.get(&id)) {
            d += 1;
            at = p.parent_id;
        }
        d
    };
    let mut levels: Vec<Vec<Vec<&Folder>>> = Vec::new();
    let mut slots: HashMap<(usize, Option<u64>), (usize, usize)> = HashMap::new();
    for folder in ordered {
        let d = depth(folder);
        if levels.len() <= d {
            levels.resize_with(d + 1, Vec::new);
        }
        let (lvl, group) = *slots.entry((d, folder.parent_id)).or_insert_with(|| {
            levels[d].push(Vec::new());
            (d, levels[d].len() - 1)
        });
        levels[lvl][group].push(folder);
    }
    levels
}

fn create_siblings<T: Tree>(
    s: &Shared,
    tree: &T,
    siblings: &[&Folder],
    known: &Known,
) -> std::result::Result<(), MigrateError> {
    let mut ranks: HashMap<(Option<u64>, String), usize> = HashMap::new();
    for folder in siblings {
        if s.cancel.is_cancelled() {
            return Err(Error::Cancelled.into());
        }
        let (parent, body) = match tree.plan(s, folder) {
            Ok(p) => p,
            Err(e) => {
                s.transform_failed(&e);
                continue;
            }
        };
        let name = T::name(&body).to_string();
        let key = folder.id.to_string();
        let rank = ranks.entry((parent, name.clone())).or_default();
        let slot = Slot {
            parent,
            name: &name,
            position: *rank,
        };
        if !known.keys.contains(&key) {
            *rank += 1;
        }
        ensure_node(s, tree, (T::KIND, &key), slot, &body, known);
    }
    Ok(())
}

/// What a tree phase knows of its nodes: qTest's tree, read once, and what
/// the journal held when the phase started. Journaled siblings are left out
/// of both sides of a match by position (their nodes are claimed), so a
/// node made again by a repair, which qTest puts last, is not taken for a
/// same-named sibling's; the journal as it was at the start keeps both
/// sides counting the same siblings while the phase journals more.
struct Known {
    snapshot: OnceLock<std::result::Result<Siblings, String>>,
    /// Keys journaled at the start.
    keys: std::collections::HashSet<String>,
    /// Their qTest ids.
    ids: std::collections::HashSet<u64>,
}

impl Known {
    fn of(s: &Shared, kind: RecordKind) -> Known {
        let journaled = s.journal.entries_of(kind);
        Known {
            snapshot: OnceLock::new(),
            ids: journaled.iter().map(|(_, t)| t.id).collect(),
            keys: journaled.into_iter().map(|(key, _)| key).collect(),
        }
    }
}

/// Where a node sits: its parent, its name, and how many siblings of that
/// name come before it (of those not journaled when the phase started).
struct Slot<'a> {
    parent: Option<u64>,
    name: &'a str,
    position: usize,
}

/// Finds the node at `slot`, or creates it, as record `kind`/`key`.
fn ensure_node<T: Tree>(
    s: &Shared,
    tree: &T,
    (kind, key): (RecordKind, &str),
    slot: Slot<'_>,
    body: &T::Body,
    known: &Known,
) -> Option<Target> {
    let Slot {
        parent,
        name,
        position,
    } = slot;
    let find = |fresh: Fresh| -> Result<Option<Target>> {
        let ids = match fresh {
            Fresh::Live => tree.children(s, parent, name)?,
            Fresh::Snapshot => {
                let snap = known
                    .snapshot
                    .get_or_init(|| tree.snapshot(s).map_err(|e| e.to_string()));
                match snap {
                    Ok(map) => map
                        .get(&(parent, name.to_string()))
                        .cloned()
                        .unwrap_or_default(),
                    // The tree couldn't be read: ask about this parent directly.
                    Err(_) => tree.children(s, parent, name)?,
                }
            }
        };
        let mut free = ids.into_iter().filter(|id| !known.ids.contains(id));
        Ok(free.nth(position).map(Target::id))
    };
    let create = || tree.create(s, parent, body).map(Target::id);
    let info = PlanInfo {
        parent: parent.map_or("root".to_string(), |p| p.to_string()),
        name,
        body,
    };
    s.ensure(kind, key, info, &find, &create)
}

/// The module for cases in no folder (`mapping.default_module`, at the root),
/// made the first time a case needs it.
pub(crate) fn default_module(s: &Shared) -> Option<Target> {
    *s.defaults.module.get_or_init(|| make_default_module(s))
}

fn make_default_module(s: &Shared) -> Option<Target> {
    let body = NewModule {
        name: s.catalog.mapping().default_module.clone(),
        description: String::new(),
        parent_id: None,
    };
    make_default(s, &Modules, RecordKind::Module, &body)
}

/// The cycle for executions in no cycle (`mapping.default_cycle`, at the root).
pub(crate) fn default_cycle(s: &Shared) -> Option<Target> {
    *s.defaults.cycle.get_or_init(|| make_default_cycle(s))
}

fn make_default_cycle(s: &Shared) -> Option<Target> {
    let body = NewTestCycle {
        name: s.catalog.mapping().default_cycle.clone(),
        description: String::new(),
    };
    // A plain cycle on qTest, recorded as a Cycle so run plans find it.
    make_default(s, &CycleFolders, RecordKind::Cycle, &body)
}

/// Finds or creates a default container: the first node of its name at the root.
fn make_default<T: Tree>(s: &Shared, tree: &T, kind: RecordKind, body: &T::Body) -> Option<Target> {
    let slot = Slot {
        parent: None,
        name: T::name(body),
        position: 0,
    };
    let known = Known {
        snapshot: OnceLock::new(),
        keys: Default::default(),
        ids: Default::default(),
    };
    ensure_node(s, tree, (kind, DEFAULT_KEY), slot, body, &known)
}
