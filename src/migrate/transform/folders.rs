//! Folder trees: the order to create them in, and each folder's body.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};

use super::cycle::CyclePlan;
use super::{Context, fail};
use crate::migrate::error::{Reason, TransformError};
use crate::migrate::record::RecordKind;
use crate::qtest::{CycleParent, NewModule, NewTestCycle};
use crate::zephyr::Folder;

/// Orders a folder tree for creation: parents before children, siblings by
/// `index` (then id, so equal indexes keep a stable order), each subtree
/// complete before the next sibling's, so qTest's own sibling order matches
/// Zephyr's when they are created one by one.
///
/// Folders that can't be placed come back as errors, one each, while the rest
/// are still ordered: two different folders with one id (the first is kept),
/// a parent missing from the list, a
/// loop of parents, and every descendant of those. `kind` names the records in
/// the errors ([`RecordKind::Module`] or [`RecordKind::CycleFolder`]).
pub fn folder_order(folders: &[Folder], kind: RecordKind) -> (Vec<&Folder>, Vec<TransformError>) {
    let mut errors = Vec::new();
    let mut by_id: HashMap<u64, &Folder> = HashMap::with_capacity(folders.len());
    for folder in folders {
        // The same folder twice (pages that shifted while read) is harmless;
        // two different folders with one id can't both be right.
        match by_id.entry(folder.id) {
            Entry::Vacant(slot) => {
                slot.insert(folder);
            }
            Entry::Occupied(first) if *first.get() != folder => {
                errors.push(TransformError::new(
                    kind,
                    folder.id.to_string(),
                    Reason::DuplicateFolder,
                ));
            }
            Entry::Occupied(_) => {}
        }
    }
    let mut children: HashMap<Option<u64>, Vec<&Folder>> = HashMap::new();
    for folder in by_id.values() {
        children.entry(folder.parent_id).or_default().push(folder);
    }
    for list in children.values_mut() {
        list.sort_by_key(|f| (f.index, f.id));
    }
    let ordered = preorder(&children);
    let placed: HashSet<u64> = ordered.iter().map(|f| f.id).collect();
    let mut unplaced: Vec<&Folder> = by_id
        .values()
        .copied()
        .filter(|f| !placed.contains(&f.id))
        .collect();
    unplaced.sort_by_key(|f| f.id);
    for folder in unplaced {
        let reason = why_unplaced(folder, &by_id);
        errors.push(TransformError::new(kind, folder.id.to_string(), reason));
    }
    (ordered, errors)
}

/// Depth-first from the roots with an explicit stack, so a deep tree can't
/// overflow the thread's stack.
fn preorder<'a>(children: &HashMap<Option<u64>, Vec<&'a Folder>>) -> Vec<&'a Folder> {
    let mut ordered = Vec::new();
    let mut stack: Vec<&Folder> = Vec::new();
    let push_children = |stack: &mut Vec<&'a Folder>, parent: Option<u64>| {
        if let Some(list) = children.get(&parent) {
            stack.extend(list.iter().rev());
        }
    };
    push_children(&mut stack, None);
    while let Some(folder) = stack.pop() {
        ordered.push(folder);
        push_children(&mut stack, Some(folder.id));
    }
    ordered
}

/// Walks up from a folder no root reaches: it ends at a missing parent or
/// comes back to a folder already seen.
fn why_unplaced(folder: &Folder, by_id: &HashMap<u64, &Folder>) -> Reason {
    let mut path = vec![folder.id];
    let mut current = folder;
    while let Some(parent_id) = current.parent_id {
        let Some(parent) = by_id.get(&parent_id) else {
            return if current.id == folder.id {
                Reason::OrphanFolder { parent_id }
            } else {
                Reason::AncestorFailed {
                    ancestor_id: current.id,
                }
            };
        };
        if let Some(start) = path.iter().position(|&id| id == parent_id) {
            return if start == 0 {
                path.push(parent_id);
                Reason::FolderCycle { path }
            } else {
                Reason::AncestorFailed {
                    ancestor_id: parent_id,
                }
            };
        }
        path.push(parent_id);
        current = parent;
    }
    // Unreachable for a folder the preorder missed; said plainly if it happens.
    Reason::AncestorFailed {
        ancestor_id: current.id,
    }
}

/// What to create for a `TEST_CASE` folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModulePlan {
    /// The parent module (`?parentId=`); `None` for a root module.
    pub parent_id: Option<u64>,
    /// The `POST /modules` body.
    pub body: NewModule,
}

/// Maps a `TEST_CASE` folder to a module under its parent's module.
pub fn module_plan(folder: &Folder, ctx: &Context<'_>) -> Result<ModulePlan, TransformError> {
    let key = folder.id.to_string();
    let parent_id =
        parent(folder, RecordKind::Module, ctx).map_err(fail(RecordKind::Module, &key))?;
    Ok(ModulePlan {
        parent_id,
        body: NewModule {
            name: folder.name.clone(),
            description: String::new(),
            parent_id,
        },
    })
}

/// Maps a `TEST_CYCLE` folder to a test cycle under its parent's cycle.
pub fn cycle_folder_plan(folder: &Folder, ctx: &Context<'_>) -> Result<CyclePlan, TransformError> {
    let key = folder.id.to_string();
    let parent = parent(folder, RecordKind::CycleFolder, ctx)
        .map_err(fail(RecordKind::CycleFolder, &key))?;
    Ok(CyclePlan {
        parent: parent.map_or(CycleParent::Root, CycleParent::TestCycle),
        body: NewTestCycle {
            name: folder.name.clone(),
            description: String::new(),
        },
    })
}

fn parent(folder: &Folder, kind: RecordKind, ctx: &Context<'_>) -> Result<Option<u64>, Reason> {
    if folder.name.trim().is_empty() {
        return Err(Reason::Missing { field: "name" });
    }
    folder
        .parent_id
        .map(|id| ctx.required(kind, &id.to_string()).map(|t| t.id))
        .transpose()
}

#[cfg(test)]
#[path = "folders_tests.rs"]
mod tests;
