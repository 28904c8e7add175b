//! What a migrated record is called: its kind, its source key, its target.
//!
//! The journal, the report and the transform's errors all name records the
//! same way, so a report row can be matched to its journal line. Source keys
//! are stable Zephyr identifiers: the case key for cases (it is also the
//! `Zephyr Key` field), ids for everything referenced by id only.

use std::fmt;
use std::str::FromStr;

/// The kind of a migrated record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RecordKind {
    /// A `TEST_CASE` folder, migrated to a qTest module. Key: folder id.
    Module,
    /// A `TEST_CYCLE` folder, migrated to a qTest test cycle. Key: folder id.
    CycleFolder,
    /// A test case. Key: case key (`PROJ-T1`); target: case id and version id.
    Case,
    /// A test cycle. Key: cycle id, since executions name cycles by id only.
    Cycle,
    /// A test run, one per (cycle, case) pair. Key: see [`run_key`].
    Run,
    /// A test log, one per execution. Key: execution id.
    Log,
    /// A file attached to a case, step, cycle or execution, uploaded to the
    /// matching qTest object. Key: see [`attachment_key`]; target: the qTest
    /// attachment id.
    Attachment,
    /// Not a record but what a sync compares against: the fingerprint of
    /// what was last sent for a case (see `migrate::sync`). Key: case key;
    /// target id: the fingerprint. Never counted or reported.
    Digest,
    /// Not a record: a high-water mark of a listing, so the next run reads
    /// only what is newer. Key: the listing (`executions`); target id: unix
    /// seconds. Never counted or reported.
    Mark,
}

impl RecordKind {
    /// Every kind, in migration order.
    pub const ALL: [RecordKind; 7] = [
        RecordKind::Module,
        RecordKind::CycleFolder,
        RecordKind::Case,
        RecordKind::Cycle,
        RecordKind::Run,
        RecordKind::Log,
        RecordKind::Attachment,
    ];

    /// The sync state a journal keeps besides records (see
    /// [`RecordKind::Digest`], [`RecordKind::Mark`]).
    pub const SYNC_STATE: [RecordKind; 2] = [RecordKind::Digest, RecordKind::Mark];

    /// Whether this kind is a migrated record (one of [`RecordKind::ALL`])
    /// rather than sync state.
    pub fn is_record(self) -> bool {
        !RecordKind::SYNC_STATE.contains(&self)
    }

    /// The name written to the journal and the report.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Module => "module",
            RecordKind::CycleFolder => "cycle-folder",
            RecordKind::Case => "case",
            RecordKind::Cycle => "cycle",
            RecordKind::Run => "run",
            RecordKind::Log => "log",
            RecordKind::Attachment => "attachment",
            RecordKind::Digest => "digest",
            RecordKind::Mark => "mark",
        }
    }
}

impl fmt::Display for RecordKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RecordKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RecordKind::ALL
            .into_iter()
            .chain(RecordKind::SYNC_STATE)
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown record kind `{s}`"))
    }
}

/// What a record became on qTest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Target {
    /// qTest id.
    pub id: u64,
    /// For cases, the `test_case_version_id` runs and logs must name.
    pub version_id: Option<u64>,
}

impl Target {
    /// A target without a version.
    pub fn id(id: u64) -> Self {
        Self {
            id,
            version_id: None,
        }
    }
}

/// Finds what a record became, e.g. in the journal. The transform asks it for
/// parents (modules, cycles) and for called or executed cases.
pub trait Lookup {
    /// The target of `kind`/`key`, if it was migrated.
    fn target(&self, kind: RecordKind, key: &str) -> Option<Target>;
}

impl<S: std::hash::BuildHasher> Lookup
    for std::collections::HashMap<(RecordKind, String), Target, S>
{
    fn target(&self, kind: RecordKind, key: &str) -> Option<Target> {
        self.get(&(kind, key.to_owned())).copied()
    }
}

/// Journal key of a test run: the Zephyr cycle id (`-` for executions outside
/// any cycle) and the case key, e.g. `10010/PROJ-T1`.
pub fn run_key(cycle_id: Option<u64>, case_key: &str) -> String {
    match cycle_id {
        Some(id) => format!("{id}/{case_key}"),
        None => format!("-/{case_key}"),
    }
}

/// Journal key of an attachment: its owner's kind and key (`case/PROJ-T1`,
/// `step/PROJ-T1/v88001/1000002` for a step of the case's qTest version
/// 88001, `log/10100` for an execution, `steplog/10100/10100001` for one of
/// its step results) and
/// the Zephyr attachment id, e.g. `case/PROJ-T1/7001`. With `None` for the
/// id, the key that marks all of the owner's files as done.
pub fn attachment_key(owner: &str, attachment_id: Option<u64>) -> String {
    match attachment_id {
        Some(id) => format!("{owner}/{id}"),
        None => format!("{owner}/all"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn kinds_round_trip_through_their_names() {
        for kind in RecordKind::ALL.into_iter().chain(RecordKind::SYNC_STATE) {
            assert_eq!(kind.as_str().parse::<RecordKind>(), Ok(kind));
            assert_eq!(kind.to_string(), kind.as_str());
        }
        assert!("folder".parse::<RecordKind>().is_err());
    }

    #[test]
    fn run_keys_and_map_lookup() {
        assert_eq!(run_key(Some(10010), "PROJ-T1"), "10010/PROJ-T1");
        assert_eq!(run_key(None, "PROJ-T1"), "-/PROJ-T1");
        let mut map = HashMap::new();
        map.insert((RecordKind::Case, "PROJ-T1".to_owned()), Target::id(5));
        assert_eq!(map.target(RecordKind::Case, "PROJ-T1"), Some(Target::id(5)));
        assert_eq!(map.target(RecordKind::Module, "PROJ-T1"), None);
    }
}
