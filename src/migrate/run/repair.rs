//! Repair (`--repair`): every journaled record is checked on qTest, and
//! what is missing is forgotten (durably, see [`Journal::forget`]) so this
//! run makes it again, with its children:
//!
//! - modules, parent cycles and cycles, from one listing of each tree;
//! - cases and runs, one read each; a run of a case or cycle found missing
//!   is missing too (qTest deletes a deleted case's runs, and a cycle's
//!   runs with it);
//! - logs, from one listing per run that still exists: a log not listed
//!   under any is missing, so a missing run's logs are made again under
//!   the new run, and a log deleted alone is made again after its run's
//!   existing logs;
//! - attachments, from one listing per qTest object that has journaled
//!   files: a file whose object is missing, or not listed on it, is
//!   uploaded again (its owner's marker is forgotten too, so the owner's
//!   files are listed again). Not with files off (`--no-attachments`, and
//!   steps' files with `--no-step-attachments`): those stay journaled for
//!   a repair that migrates them.
//!
//! qTest deletes a module with its sub-modules and cases, and a cycle with
//! its sub-cycles and runs (`force=true`), so what was under a deleted
//! record is found missing by its own check; what still exists keeps its
//! id (a case moved out of a deleted module is left where it is).
//!
//! All checks are reads, done before anything is forgotten, so a dry run
//! (`--repair --dry-run`) forgets in memory only and plans what it would
//! make. A real repair first journals a mark ([`REPAIR_MARK`]) that stays
//! until a run completes with nothing failed or waiting: a repair stopped
//! halfway (a crash, a signal, a failure) is taken up again by the next run,
//! even without `--repair`, and its forgotten records are made then, once.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::Ordering;

use super::shared::Shared;
use super::sync::now_secs;
use crate::error::Result;
use crate::migrate::MigrateError;
use crate::migrate::attached::{Attached, Object};
use crate::migrate::record::RecordKind;
use crate::migrate::report::Action;
use crate::qtest::{CycleParent, Module, TestCycle};

#[cfg(doc)]
use crate::migrate::Journal;

/// The journal's mark of a repair under way (target id: when it started).
pub(crate) const REPAIR_MARK: &str = "repair";

/// Whether this run repairs: `--repair`, or a repair an earlier run left
/// unfinished.
pub(crate) fn start(s: &Shared) -> bool {
    let pending = s.journal.mark(REPAIR_MARK).is_some();
    if pending && !s.sync.options.repair {
        log::warn!("an earlier repair did not finish: repairing again");
    }
    let on = pending || s.sync.options.repair;
    s.sync.repairing.store(on, Ordering::Relaxed);
    on
}

/// A record found missing on qTest: kind, key, its old qTest id.
type Gone = (RecordKind, String, u64);

/// Checks every journaled record and forgets what is missing; returns how
/// many were missing.
pub(crate) fn repair(s: &Shared) -> std::result::Result<usize, MigrateError> {
    let gone = missing(s)?;
    if gone.is_empty() {
        log::info!("repair: every journaled record exists on qTest");
        return Ok(0);
    }
    let dry = s.dry_run();
    if !dry {
        s.journal.set_mark(REPAIR_MARK, now_secs().max(1))?;
    }
    let mut by_kind: BTreeMap<RecordKind, usize> = BTreeMap::new();
    for (kind, key, id) in &gone {
        let will = if dry { "would make" } else { "making" };
        log::warn!("{kind} {key} (qTest {id}) is missing on qTest: {will} it again");
        s.journal.forget(*kind, key)?;
        if *kind == RecordKind::Case {
            s.journal.forget(RecordKind::Digest, key)?;
        }
        *by_kind.entry(*kind).or_default() += 1;
    }
    let counts: Vec<String> = by_kind.iter().map(|(k, n)| format!("{n} {k}")).collect();
    log::info!("repair: missing on qTest: {}", counts.join(", "));
    Ok(gone.len())
}

/// Ends a repair once a run completed with nothing failed or waiting: its
/// mark is forgotten. Otherwise the next run repairs again.
pub(crate) fn finish(s: &Shared, complete: bool) {
    let open = RecordKind::ALL.iter().any(|&k| {
        [Action::Failed, Action::Waiting]
            .iter()
            .any(|&a| s.tally.get(k, a) > 0)
    });
    if !s.sync.repairing.load(Ordering::Relaxed)
        || !complete
        || open
        || s.dry_run()
        || s.cancel.is_cancelled()
        || s.journal.mark(REPAIR_MARK).is_none()
    {
        return;
    }
    if let Err(e) = s.journal.forget(RecordKind::Mark, REPAIR_MARK) {
        log::error!("{}", crate::error::error_chain(&e));
    }
}

/// Every journaled record missing on qTest, parents first.
fn missing(s: &Shared) -> Result<Vec<Gone>> {
    let mut gone = Missing::default();
    let modules = module_ids(&s.qtest.modules(None, true)?);
    gone.check(s, RecordKind::Module, |id| Ok(modules.contains(&id)))?;
    let cycles = cycle_ids(&s.qtest.cycles(CycleParent::Root, true)?);
    for kind in [RecordKind::CycleFolder, RecordKind::Cycle] {
        gone.check(s, kind, |id| Ok(cycles.contains(&id)))?;
    }
    gone.check(s, RecordKind::Case, |id| {
        Ok(s.qtest.test_case(id)?.is_some())
    })?;
    let mut runs = Vec::new();
    for (key, target) in s.journal.entries_of(RecordKind::Run) {
        let (cycle, case) = key.split_once('/').unwrap_or(("", &key));
        let parent_gone = gone.has(RecordKind::Cycle, cycle) || gone.has(RecordKind::Case, case);
        if parent_gone || s.qtest.test_run(target.id)?.is_none() {
            gone.add(RecordKind::Run, key, target.id);
        } else {
            runs.push(target.id);
        }
    }
    let mut logs = HashSet::new();
    for run in runs {
        logs.extend(s.qtest.logs(run)?.iter().map(|l| l.id));
    }
    gone.check(s, RecordKind::Log, |id| Ok(logs.contains(&id)))?;
    if s.attachment_options.enabled {
        attachments(s, &mut gone)?;
    } else {
        log::info!("repair: files not checked (attachments are off)");
    }
    Ok(gone.list)
}

/// Files not on their qTest object any more, or whose object is missing.
fn attachments(s: &Shared, gone: &mut Missing) -> Result<()> {
    // By the object's `Debug` form: `AttachmentTarget` is not `Hash`.
    let mut listed: HashMap<String, HashSet<u64>> = HashMap::new();
    let mut markers = HashSet::new();
    let mut entries = s.journal.entries_of(RecordKind::Attachment);
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    for (key, target) in entries {
        let Some(file) = Attached::parse(&key) else {
            continue;
        };
        // Files this run doesn't migrate stay journaled: forgotten now,
        // nothing would make them again, and no later repair could see
        // them missing.
        if matches!(file.kind, "step" | "steplog") && !s.attachment_options.migrates_steps() {
            continue;
        }
        // An owner no longer journaled was forgotten by a repair that
        // stopped before its files' tombstones: it is made again, so its
        // files must be too.
        let owner_gone = file.owner_record().is_some_and(|(kind, owner)| {
            gone.has(kind, owner) || s.journal.get(kind, owner).is_none()
        });
        let missing = match (owner_gone, file.file, file.object(&s.journal)) {
            (true, ..) => true,
            // The marker stays unless one of its files is missing (below).
            (false, None, _) => false,
            (false, Some(_), Object::On(object)) => {
                let ids = match listed.entry(format!("{object:?}")) {
                    std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                    std::collections::hash_map::Entry::Vacant(e) => {
                        let files = s.qtest.attachments(object)?;
                        e.insert(files.iter().map(|f| f.id).collect())
                    }
                };
                !ids.contains(&target.id)
            }
            // Not checked: an object that can't be told (a step's). An
            // owner not journaled is `owner_gone` above.
            (false, Some(_), Object::OwnerNotJournaled | Object::Unknown) => false,
        };
        if missing {
            if file.file.is_some() {
                markers.insert(file.marker());
            }
            gone.add(RecordKind::Attachment, key, target.id);
        }
    }
    for marker in markers {
        if let Some(target) = s.journal.get(RecordKind::Attachment, &marker)
            && !gone.has(RecordKind::Attachment, &marker)
        {
            gone.add(RecordKind::Attachment, marker, target.id);
        }
    }
    Ok(())
}

/// What was found missing so far, and a set to ask it quickly.
#[derive(Default)]
struct Missing {
    list: Vec<Gone>,
    keys: HashSet<(RecordKind, String)>,
}

impl Missing {
    fn add(&mut self, kind: RecordKind, key: String, id: u64) {
        if self.keys.insert((kind, key.clone())) {
            self.list.push((kind, key, id));
        }
    }

    fn has(&self, kind: RecordKind, key: &str) -> bool {
        self.keys.contains(&(kind, key.to_owned()))
    }

    /// Every journaled record of `kind` that `exists` denies, by its qTest id.
    fn check(
        &mut self,
        s: &Shared,
        kind: RecordKind,
        exists: impl Fn(u64) -> Result<bool>,
    ) -> Result<()> {
        for (key, target) in s.journal.entries_of(kind) {
            if !exists(target.id)? {
                self.add(kind, key, target.id);
            }
        }
        Ok(())
    }
}

fn module_ids(tree: &[Module]) -> HashSet<u64> {
    tree_ids(tree, |m| (m.id, m.children.as_slice()))
}

fn cycle_ids(tree: &[TestCycle]) -> HashSet<u64> {
    tree_ids(tree, |c| (c.id, c.test_cycles.as_slice()))
}

/// The ids of every node of a tree; `node` gives a node's id and children.
fn tree_ids<T>(roots: &[T], node: impl Fn(&T) -> (u64, &[T])) -> HashSet<u64> {
    let mut out = HashSet::new();
    let mut stack: Vec<&T> = roots.iter().collect();
    while let Some(n) = stack.pop() {
        let (id, children) = node(n);
        out.insert(id);
        stack.extend(children);
    }
    out
}
