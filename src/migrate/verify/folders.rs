//! Pass 1: Zephyr's folder trees against qTest's module tree and its tree of
//! parent cycles, matched by name under the matched parent.

use std::collections::HashMap;

use super::cycles::{self, CycleIndex};
use super::text::{norm, quote};
use super::{DiffKind, Difference, MISSING, Verifier};
use crate::migrate::error::MigrateError;
use crate::migrate::mapping::same_name;
use crate::migrate::record::{RecordKind, Target};
use crate::migrate::transform::{DEFAULT_KEY, cycle_folder_plan, folder_order, module_plan};
use crate::qtest::Module;
use crate::zephyr::{Folder, FolderType};

/// A qTest container (module or test cycle) and its sub-containers, in
/// sibling order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Node {
    pub(super) id: u64,
    pub(super) name: String,
    pub(super) children: Vec<Node>,
}

impl Node {
    /// Module trees read with `expand=descendants`, siblings by `order`, then id.
    fn modules(mut modules: Vec<Module>) -> Vec<Node> {
        modules.sort_by_key(|m| (m.order, m.id));
        modules
            .into_iter()
            .map(|m| Node {
                id: m.id,
                name: m.name,
                children: Node::modules(m.children),
            })
            .collect()
    }
}

/// The outcome of matching one folder tree.
#[derive(Debug, Default)]
pub(super) struct FolderMatch<'f> {
    /// Folders found, with their qTest id.
    pub(super) found: Vec<(&'f Folder, u64)>,
    /// Folders whose parent was found but not them.
    pub(super) missing: Vec<&'f Folder>,
    /// Folders whose parent is missing, so they can't be looked for.
    pub(super) orphaned: Vec<&'f Folder>,
}

/// Matches folders (parents first, siblings in `index` order, as
/// [`folder_order`] gives them) to the nodes under `roots`: by name under the
/// matched parent, the n-th Zephyr sibling of a name to the n-th qTest sibling
/// of that name, as a migration's lookup does.
pub(super) fn match_folders<'f>(ordered: &[&'f Folder], roots: &[Node]) -> FolderMatch<'f> {
    let mut nodes: HashMap<u64, &Node> = HashMap::new();
    let mut stack: Vec<&Node> = roots.iter().collect();
    while let Some(node) = stack.pop() {
        nodes.insert(node.id, node);
        stack.extend(&node.children);
    }
    let mut matched = FolderMatch::default();
    let mut targets: HashMap<u64, u64> = HashMap::new();
    let mut nth: HashMap<(Option<u64>, String), usize> = HashMap::new();
    for &folder in ordered {
        let siblings = match folder.parent_id {
            None => roots,
            Some(parent) => match targets.get(&parent).and_then(|id| nodes.get(id)) {
                Some(node) => node.children.as_slice(),
                None => {
                    matched.orphaned.push(folder);
                    continue;
                }
            },
        };
        let name = norm(&folder.name);
        let n = nth.entry((folder.parent_id, name.clone())).or_insert(0);
        let hit = siblings.iter().filter(|s| norm(&s.name) == name).nth(*n);
        *n += 1;
        match hit {
            Some(node) => {
                targets.insert(folder.id, node.id);
                matched.found.push((folder, node.id));
            }
            None => matched.missing.push(folder),
        }
    }
    matched
}

impl Verifier<'_> {
    /// Matches both folder trees and finds the default module and cycle;
    /// returns the migrated cycles met on the way, for [`Verifier::cycles`].
    pub(super) fn folders(&mut self) -> Result<CycleIndex, MigrateError> {
        let roots = Node::modules(self.qtest.modules(None, true)?);
        let default_module = self.catalog.mapping().default_module.clone();
        self.find_default(RecordKind::Module, &roots, &default_module);
        self.match_tree(FolderType::TestCase, RecordKind::Module, &roots)?;
        let (roots, index) = cycles::load(self.qtest, self.zephyr.project_key())?;
        let default_cycle = self.catalog.mapping().default_cycle.clone();
        self.find_default(RecordKind::Cycle, &roots, &default_cycle);
        self.match_tree(FolderType::TestCycle, RecordKind::CycleFolder, &roots)?;
        Ok(index)
    }

    fn find_default(&mut self, kind: RecordKind, roots: &[Node], name: &str) {
        if let Some(node) = roots.iter().find(|n| same_name(&n.name, name)) {
            self.found.insert(kind, DEFAULT_KEY, Target::id(node.id));
        }
    }

    fn match_tree(
        &mut self,
        folder_type: FolderType,
        kind: RecordKind,
        roots: &[Node],
    ) -> Result<(), MigrateError> {
        let (folders, unreadable) = crate::zephyr::split(self.zephyr.folders(folder_type)?);
        for record in &unreadable {
            self.unreadable(kind, record);
        }
        let (ordered, mut refused) = folder_order(&folders, kind);
        // The transform refuses what a migration could not create (a blank name).
        let mut accepted = Vec::with_capacity(ordered.len());
        let ctx = self.context();
        for folder in ordered {
            let planned = match kind {
                RecordKind::Module => module_plan(folder, &ctx).map(drop),
                _ => cycle_folder_plan(folder, &ctx).map(drop),
            };
            match planned {
                Ok(()) => accepted.push(folder),
                Err(e) => refused.push(e),
            }
        }
        let matched = match_folders(&accepted, roots);
        self.check(
            kind,
            (refused.len() + matched.found.len() + matched.missing.len()) as u64,
        );
        self.skip(kind, matched.orphaned.len() as u64);
        for error in &refused {
            self.unmappable(error);
        }
        for (folder, id) in &matched.found {
            self.found
                .insert(kind, folder.id.to_string(), Target::id(*id));
        }
        for folder in matched.missing {
            let under = match folder.parent_id {
                None => "the root".to_owned(),
                Some(parent) => format!("folder {parent}"),
            };
            self.differ(Difference::new(
                kind,
                DiffKind::Missing,
                folder.id.to_string(),
                format!("{} under {under}", quote(&folder.name)),
                "not found",
            ));
        }
        Ok(())
    }

    /// Reports a missing default module or cycle once, when something needs it.
    pub(super) fn missing_default(&mut self, kind: RecordKind) {
        if self.found.get(kind, DEFAULT_KEY).is_some() {
            return;
        }
        let mapping = self.catalog.mapping();
        let (what, name) = match kind {
            RecordKind::Module => ("module", &mapping.default_module),
            _ => ("cycle", &mapping.default_cycle),
        };
        let expected = format!("root {what} {}", quote(name));
        self.differ(Difference::new(
            kind,
            DiffKind::Missing,
            DEFAULT_KEY,
            expected,
            "not found",
        ));
        self.found.insert(kind, DEFAULT_KEY, Target::id(MISSING));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(id: u64, parent_id: Option<u64>, name: &str, index: i64) -> Folder {
        Folder {
            id,
            parent_id,
            name: name.into(),
            index,
            folder_type: FolderType::TestCase,
            project: None,
        }
    }

    fn node(id: u64, name: &str, children: Vec<Node>) -> Node {
        Node {
            id,
            name: name.into(),
            children,
        }
    }

    #[test]
    fn repeated_names_match_in_order_and_children_follow_their_parent() {
        let folders = [
            folder(1, None, "Login", 0),
            folder(2, None, "Login", 1),
            folder(3, Some(2), "Deep", 0),
            folder(4, Some(1), "Gone", 0),
            folder(5, Some(4), "Below gone", 0),
        ];
        let (ordered, errors) = folder_order(&folders, RecordKind::Module);
        assert!(errors.is_empty());
        let roots = [
            node(10, "Login", vec![]),
            node(20, "Login ", vec![node(30, "Deep", vec![])]),
            node(40, "Other", vec![]),
        ];
        let m = match_folders(&ordered, &roots);
        let found: Vec<(u64, u64)> = m.found.iter().map(|(f, id)| (f.id, *id)).collect();
        assert_eq!(found, [(1, 10), (2, 20), (3, 30)]);
        assert_eq!(m.missing.iter().map(|f| f.id).collect::<Vec<_>>(), [4]);
        assert_eq!(m.orphaned.iter().map(|f| f.id).collect::<Vec<_>>(), [5]);
    }

    #[test]
    fn modules_are_ordered_by_their_order_field() {
        let module = |id: u64, order: i64, children: Vec<Module>| Module {
            id,
            pid: None,
            name: "M".into(),
            order: Some(order),
            parent_id: None,
            description: None,
            shared: None,
            children,
            links: Vec::new(),
        };
        let trees = Node::modules(vec![
            module(5, 2, vec![]),
            module(1, 1, vec![module(3, 2, vec![]), module(2, 1, vec![])]),
        ]);
        assert_eq!(trees.iter().map(|n| n.id).collect::<Vec<_>>(), [1, 5]);
        let ids: Vec<u64> = trees[0].children.iter().map(|n| n.id).collect();
        assert_eq!(ids, [2, 3]);
    }
}
