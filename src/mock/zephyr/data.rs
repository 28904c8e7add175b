//! The Zephyr source dataset: typed, serializable, generated from a seed.

use serde::{Deserialize, Serialize};

/// Everything the Zephyr mock serves, as `GET /__source` returns it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Dataset {
    /// The one project.
    pub project: Project,
    /// Statuses of every `statusType`.
    pub statuses: Vec<Status>,
    /// Priorities.
    pub priorities: Vec<Priority>,
    /// Folders of every `folderType`, parents before children.
    pub folders: Vec<Folder>,
    /// Test cases in key order.
    pub cases: Vec<TestCase>,
    /// Test cycles in key order.
    pub cycles: Vec<TestCycle>,
    /// Test executions in key order (not in `actualEndDate` order).
    pub executions: Vec<Execution>,
    /// Files attached to cases, cycles and executions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<super::attachments::MockFile>,
    /// Jira issue links and web links of cases, cycles and executions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<super::attachments::MockLink>,
    /// Test plans.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub test_plans: Vec<super::attachments::MockPlan>,
}

/// A Zephyr project (it has no name).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Project {
    /// Zephyr id.
    pub id: u64,
    /// Jira's id of the project.
    pub jira_project_id: u64,
    /// Project key, e.g. `PROJ`.
    pub key: String,
}

/// A status of one `statusType`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// Zephyr id.
    pub id: u64,
    /// `TEST_CASE`, `TEST_CYCLE` or `TEST_EXECUTION`.
    pub status_type: String,
    /// Display name, e.g. `Pass`.
    pub name: String,
    /// Position in lists.
    pub index: u32,
    /// `#RRGGBB`.
    pub color: String,
    /// Whether it is the default of its type.
    pub default: bool,
}

/// A priority.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Priority {
    /// Zephyr id.
    pub id: u64,
    /// Display name, e.g. `Normal`.
    pub name: String,
    /// Position in lists.
    pub index: u32,
    /// `#RRGGBB`.
    pub color: String,
    /// Whether it is the default.
    pub default: bool,
}

/// A folder; sibling names may repeat.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Folder {
    /// Zephyr id.
    pub id: u64,
    /// Parent folder; `None` for a root folder.
    pub parent_id: Option<u64>,
    /// Display name.
    pub name: String,
    /// Position among its siblings, from 0.
    pub index: u32,
    /// `TEST_CASE` or `TEST_CYCLE`.
    pub folder_type: String,
}

/// A test case.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TestCase {
    /// Zephyr id.
    pub id: u64,
    /// Key, e.g. `PROJ-T1`.
    pub key: String,
    /// Name; not unique.
    pub name: String,
    /// Objective (may contain `<br>`).
    pub objective: Option<String>,
    /// Precondition.
    pub precondition: Option<String>,
    /// Estimated time in milliseconds.
    pub estimated_time: Option<u64>,
    /// Labels.
    pub labels: Vec<String>,
    /// Priority id.
    pub priority_id: u64,
    /// Status id (a `TEST_CASE` status).
    pub status_id: u64,
    /// Folder id; `None` when the case is in no folder.
    pub folder_id: Option<u64>,
    /// Owner's Atlassian account id.
    pub owner: Option<String>,
    /// Custom fields by name.
    pub custom_fields: serde_json::Map<String, serde_json::Value>,
    /// Creation date-time.
    pub created_on: String,
    /// Last change (what NextGen's `updatedAfter` filters on); `None`:
    /// unchanged since `created_on`. Not served: the spec's test case has
    /// no such field, only the filter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_on: Option<String>,
    /// Steps, or a plain or BDD script.
    pub script: Script,
    /// How the record departs from the plain shape when served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quirk: Option<Quirk>,
}

/// A way a served record departs from the plain shape: either something the
/// spec allows that a naive client rejects, or (only when asked for) a
/// break of the spec, so clients can be tested against both.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Quirk {
    /// `owner` is served as `{"accountId": null, ...}` (the spec allows a null
    /// account id); the record's own `owner` is `None`, as nothing of it can
    /// be migrated.
    OwnerWithoutAccount,
    /// An execution's `testCase` is served without its optional `id`.
    NoCaseId,
    /// An execution outside any cycle is served without the `testCycle` key
    /// (otherwise it is `null`).
    NoCycleKey,
    /// A required field is left out or `null`, so the record breaks the spec:
    /// a case's `name` is `null`, a cycle lacks `status`, an execution lacks
    /// `testExecutionStatus`, `id` and `key`.
    Unreadable,
}

/// How a test case is written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "content", rename_all = "camelCase")]
pub enum Script {
    /// Step by step (`/teststeps`).
    Steps(Vec<Step>),
    /// Plain text (`/testscript`, type `plain`).
    Plain(String),
    /// Gherkin (`/testscript`, type `bdd`).
    Bdd(String),
}

/// One item of a step script.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Step {
    /// A written step.
    Inline {
        /// What to do.
        description: String,
        /// Data to use.
        test_data: Option<String>,
        /// What should happen.
        expected_result: Option<String>,
    },
    /// A call to another test case.
    Call {
        /// The called case's key.
        test_case_key: String,
        /// Parameters as (name, value).
        parameters: Vec<(String, String)>,
    },
}

/// A test cycle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TestCycle {
    /// Zephyr id.
    pub id: u64,
    /// Key, e.g. `PROJ-R1`.
    pub key: String,
    /// Name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Status id (a `TEST_CYCLE` status).
    pub status_id: u64,
    /// Folder id (a `TEST_CYCLE` folder).
    pub folder_id: Option<u64>,
    /// Planned start date-time.
    pub planned_start_date: Option<String>,
    /// Planned end date-time.
    pub planned_end_date: Option<String>,
    /// Owner's account id.
    pub owner: Option<String>,
    /// Jira version id.
    pub jira_project_version: Option<u64>,
    /// How the record departs from the plain shape when served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quirk: Option<Quirk>,
}

/// A test execution of one case in one cycle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Execution {
    /// Zephyr id.
    pub id: u64,
    /// Key, e.g. `PROJ-E1`.
    pub key: String,
    /// The executed case's key.
    pub test_case_key: String,
    /// The executed case's id.
    pub test_case_id: u64,
    /// The cycle's id; `None` for an ad-hoc execution outside any cycle.
    pub cycle_id: Option<u64>,
    /// Status id (a `TEST_EXECUTION` status).
    pub status_id: u64,
    /// When it ended; `None` when not executed.
    pub actual_end_date: Option<String>,
    /// Duration in milliseconds.
    pub execution_time: Option<u64>,
    /// Executor's account id.
    pub executed_by_id: Option<String>,
    /// Comment.
    pub comment: Option<String>,
    /// Environment id.
    pub environment_id: Option<u64>,
    /// One result per step of a step-by-step case.
    pub step_results: Vec<StepResult>,
    /// Last change (what NextGen's `updatedAfter` filters on); `None`:
    /// when it ended, as generated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_on: Option<String>,
    /// How the record departs from the plain shape when served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quirk: Option<Quirk>,
}

/// The result of one step in an execution.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepResult {
    /// The step's description.
    pub description: String,
    /// Its test data.
    pub test_data: Option<String>,
    /// Its expected result.
    pub expected_result: Option<String>,
    /// What happened.
    pub actual_result: Option<String>,
    /// Status id (a `TEST_EXECUTION` status).
    pub status_id: u64,
}

impl Dataset {
    /// The case with this key.
    pub fn case(&self, key: &str) -> Option<&TestCase> {
        let n: usize = key
            .strip_prefix(&self.project.key)?
            .strip_prefix("-T")?
            .parse()
            .ok()?;
        self.cases.get(n.checked_sub(1)?).filter(|c| c.key == key)
    }

    /// Statuses of one type.
    pub fn statuses_of(&self, status_type: &str) -> impl Iterator<Item = &Status> {
        self.statuses
            .iter()
            .filter(move |s| s.status_type == status_type)
    }

    /// The status with this id.
    pub fn status(&self, id: u64) -> Option<&Status> {
        self.statuses.iter().find(|s| s.id == id)
    }
}
