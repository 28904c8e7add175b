//! What has been created on the qTest mock, and the journal of the writes that created it.

use serde::{Deserialize, Serialize};

/// A module (folder of test cases).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Module {
    /// Id.
    pub id: u64,
    /// `MD-<n>`.
    pub pid: String,
    /// Name; siblings may share one.
    pub name: String,
    /// Description.
    pub description: String,
    /// Parent module; `None` at the root.
    pub parent_id: Option<u64>,
    /// Position among its siblings, from 1.
    pub order: u32,
}

/// One version of a test case.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Version {
    /// `test_case_version_id`.
    pub id: u64,
    /// `0.1`, `1.0`, ...
    pub version: String,
    /// Approved versions have whole numbers.
    pub approved: bool,
}

/// A property of a test case: a field and its raw value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Property {
    /// Field id.
    pub field_id: u64,
    /// The value as written (an allowed value's id for choice fields).
    pub field_value: String,
}

/// A test step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestStep {
    /// Id.
    pub id: u64,
    /// What to do.
    pub description: String,
    /// What should happen.
    pub expected: String,
    /// Position, from 1.
    pub order: u32,
    /// A called test case, when the step is a call.
    pub called_test_case_id: Option<u64>,
}

/// A test case.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestCase {
    /// Id.
    pub id: u64,
    /// `TC-<n>`.
    pub pid: String,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Precondition.
    pub precondition: String,
    /// Module id.
    pub parent_id: u64,
    /// Versions, oldest first; the last is current.
    pub versions: Vec<Version>,
    /// Properties, one per field that has a value.
    pub properties: Vec<Property>,
    /// Steps of the current version.
    pub test_steps: Vec<TestStep>,
    /// Creation date-time.
    pub created_date: String,
}

impl TestCase {
    /// The current version.
    pub fn current(&self) -> &Version {
        // A case is created with one version and versions are never removed.
        &self.versions[self.versions.len() - 1]
    }

    /// The raw value of field `field_id`.
    pub fn property(&self, field_id: u64) -> Option<&str> {
        self.properties
            .iter()
            .find(|p| p.field_id == field_id)
            .map(|p| p.field_value.as_str())
    }
}

/// A test cycle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cycle {
    /// Id.
    pub id: u64,
    /// `CL-<n>`.
    pub pid: String,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Parent id; 0 at the root.
    pub parent_id: u64,
    /// `root` or `test-cycle`.
    pub parent_type: String,
    /// Position among its siblings, from 1.
    #[serde(default)]
    pub order: u32,
    /// Creation date-time.
    #[serde(default)]
    pub created_date: String,
}

/// A test run: one test case in one cycle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Run {
    /// Id.
    pub id: u64,
    /// `TR-<n>`.
    pub pid: String,
    /// Name.
    pub name: String,
    /// Parent cycle id.
    pub parent_id: u64,
    /// `test-cycle`.
    pub parent_type: String,
    /// The test case.
    pub test_case_id: u64,
    /// The test case version.
    pub test_case_version_id: u64,
    /// Status of the latest created log; `None` before the first.
    pub status_id: Option<u64>,
}

/// The result of one step in a test log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepLog {
    /// Its own id (`test_step_log_id`), what its attachments hang on; 0 in
    /// a state persisted before step logs had ids.
    #[serde(default)]
    pub id: u64,
    /// The step.
    pub test_step_id: u64,
    /// Its status.
    pub status_id: u64,
    /// What happened.
    pub actual_result: String,
    /// Position, from 1.
    pub order: u32,
    /// The called case the step belongs to, for a step called from another case.
    #[serde(default)]
    pub called_test_case_id: Option<u64>,
    /// The calling step, for a step called from another case.
    #[serde(default)]
    pub parent_test_step_id: Option<u64>,
}

/// A test log (one execution of a run).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Log {
    /// Id.
    pub id: u64,
    /// The run.
    pub run_id: u64,
    /// Execution status id.
    pub status_id: u64,
    /// Start date-time, as sent.
    pub exe_start_date: String,
    /// End date-time, as sent.
    pub exe_end_date: String,
    /// Note.
    pub note: String,
    /// The test case version it records.
    pub test_case_version_id: u64,
    /// Step results.
    pub test_step_logs: Vec<StepLog>,
    /// Position among its run's logs, from 1.
    pub result_number: u32,
}

/// One applied write, as journaled and persisted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JournalEntry {
    /// Position in the journal, from 1.
    pub seq: u64,
    /// When it was applied (epoch seconds).
    pub at: i64,
    /// HTTP method.
    pub method: String,
    /// Path and query under the site root, e.g. `/api/v3/projects/1/modules?parentId=2`.
    pub target: String,
    /// The request body (`null` when none).
    pub body: serde_json::Value,
    /// Status answered.
    pub status: u16,
    /// `module`, `test-case`, `test-cycle`, `test-run`, `test-log`, `approve`,
    /// `delete` or `attachment`.
    pub kind: String,
    /// Id of the entity written.
    pub id: u64,
}

/// The whole created state, as `GET /__state` returns it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct QtestState {
    /// Modules by id.
    pub modules: Vec<Module>,
    /// Test cases by id (deleted ones are gone).
    pub test_cases: Vec<TestCase>,
    /// Test cycles by id.
    pub test_cycles: Vec<Cycle>,
    /// Test runs by id.
    pub test_runs: Vec<Run>,
    /// Test logs by id.
    pub test_logs: Vec<Log>,
    /// Uploaded attachments, in upload order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<super::attachments::StoredFile>,
    /// Every applied write, in order.
    pub journal: Vec<JournalEntry>,
    /// The last id given out; ids of all kinds share it, so they are unique across kinds.
    pub last_id: u64,
    /// The last `pid` number given out per prefix (`MD`, `TC`, ...).
    pub last_pid: std::collections::BTreeMap<String, u64>,
}

/// Entities kept sorted by id.
pub(crate) trait HasId {
    fn id(&self) -> u64;
}

macro_rules! has_id {
    ($($t:ty),*) => { $(impl HasId for $t { fn id(&self) -> u64 { self.id } })* };
}
has_id!(Module, TestCase, Cycle, Run, Log);

/// Binary search in a list sorted by id.
pub(crate) fn by_id<T: HasId>(items: &[T], id: u64) -> Option<&T> {
    items
        .binary_search_by_key(&id, HasId::id)
        .ok()
        .map(|i| &items[i])
}

pub(crate) fn by_id_mut<T: HasId>(items: &mut [T], id: u64) -> Option<&mut T> {
    items
        .binary_search_by_key(&id, HasId::id)
        .ok()
        .map(move |i| &mut items[i])
}

impl QtestState {
    /// A new id and a new `pid` with this prefix.
    pub(crate) fn next_ids(&mut self, prefix: &str) -> (u64, String) {
        self.last_id += 1;
        let n = self.last_pid.entry(prefix.to_string()).or_default();
        *n += 1;
        (self.last_id, format!("{prefix}-{n}"))
    }

    /// The module with this id.
    pub fn module(&self, id: u64) -> Option<&Module> {
        by_id(&self.modules, id)
    }

    /// The test case with this id.
    pub fn test_case(&self, id: u64) -> Option<&TestCase> {
        by_id(&self.test_cases, id)
    }

    /// The test cycle with this id.
    pub fn test_cycle(&self, id: u64) -> Option<&Cycle> {
        by_id(&self.test_cycles, id)
    }

    /// The test run with this id.
    pub fn test_run(&self, id: u64) -> Option<&Run> {
        by_id(&self.test_runs, id)
    }

    /// The logs of one run, in creation order.
    pub fn logs_of(&self, run_id: u64) -> impl Iterator<Item = &Log> {
        self.test_logs.iter().filter(move |l| l.run_id == run_id)
    }
}
