//! Serde models of the Zephyr Scale Cloud v2 entities a migration reads.
//!
//! Each field follows the published spec (`specs/zephyr-scale-cloud-v2-schemas.ts`):
//! unknown fields are ignored (real services add fields), what the spec marks
//! `.optional()` may be missing and what it marks `.nullable()` may be `null`
//! (and `null` collections read as empty). Fields the spec requires are
//! required here too, so a record that lacks one fails to parse with a serde
//! error naming the field instead of producing a half-empty record; listings
//! decode records one by one ([`Record`](super::Record)), so such a record fails
//! alone. Dates stay strings: one malformed date must fail its own record in
//! the transform, not the whole page it came in.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use super::page::{CursorPage, Page, PageRequest, next_cursor};
use crate::de::null_default;

/// Custom field values keyed by field **name**, as Zephyr sends them. Sorted so
/// anything rendered from them (a description block) is deterministic.
pub type CustomFields = BTreeMap<String, serde_json::Value>;

/// A reference to another entity: `{"id","self"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Ref {
    /// The referenced entity's id.
    pub id: u64,
    /// Its URL; the spec declares it but never requires it.
    #[serde(rename = "self", default, skip_serializing_if = "Option::is_none")]
    pub self_url: Option<String>,
}

/// A link without an id, such as `testScript`: `{"self"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SelfLink {
    /// The URL.
    #[serde(rename = "self", default, skip_serializing_if = "Option::is_none")]
    pub self_url: Option<String>,
}

/// A reference whose `id` the spec makes optional, such as an execution's
/// `testCase`: `{"id"?,"self"?}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LinkRef {
    /// The referenced entity's id, when sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    /// Its URL, when sent.
    #[serde(rename = "self", default, skip_serializing_if = "Option::is_none")]
    pub self_url: Option<String>,
}

/// A Jira user: `{"accountId","self"}`.
///
/// The spec lets `accountId` be `null`; a case's or cycle's `owner` with a
/// `null` account id reads as no owner (see [`TestCase::owner`]), so a
/// `UserRef` always has one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct UserRef {
    /// Atlassian account id.
    pub account_id: String,
    /// The user's URL in Jira.
    #[serde(rename = "self", default, skip_serializing_if = "Option::is_none")]
    pub self_url: Option<String>,
}

/// Reads an `owner`: `null`, missing, or with a `null` account id is no owner
/// (there is nothing of it to migrate).
fn owner<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<UserRef>, D::Error> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct RawOwner {
        #[serde(deserialize_with = "Option::deserialize")]
        account_id: Option<String>,
        #[serde(rename = "self", default)]
        self_url: Option<String>,
    }
    let raw = Option::<RawOwner>::deserialize(deserializer)?;
    Ok(raw.and_then(|o| {
        o.account_id.map(|account_id| UserRef {
            account_id,
            self_url: o.self_url,
        })
    }))
}

/// Reads an execution's `testCycle`: `null` or missing is no cycle; the spec
/// makes its `id` optional, so without one the id is taken from its link
/// (`…/testcycles/{id}`). One that names no cycle at all is an error, so the
/// execution fails alone rather than landing in the default cycle.
fn cycle_ref<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Ref>, D::Error> {
    use serde::de::Error;
    let Some(link) = Option::<LinkRef>::deserialize(deserializer)? else {
        return Ok(None);
    };
    let from_link = || {
        let url = strip_query(link.self_url.as_deref()?).trim_end_matches('/');
        let (path, id) = url.rsplit_once('/')?;
        path.to_ascii_lowercase()
            .ends_with("/testcycles")
            .then(|| id.parse().ok())
            .flatten()
    };
    match link.id.or_else(from_link) {
        Some(id) => Ok(Some(Ref {
            id,
            self_url: link.self_url,
        })),
        None => Err(D::Error::custom(
            "`testCycle` has neither an `id` nor a `…/testcycles/{id}` link",
        )),
    }
}

/// A Zephyr project (`/projects`). It has no name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Project {
    /// Zephyr id.
    pub id: u64,
    /// Id of the Jira project.
    pub jira_project_id: u64,
    /// Project key, e.g. `PROJ`.
    pub key: String,
    /// Whether Zephyr is enabled for the project.
    pub enabled: bool,
}

/// What a folder holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FolderType {
    /// Test cases.
    TestCase,
    /// Test plans (not migrated).
    TestPlan,
    /// Test cycles.
    TestCycle,
}

/// A folder (`/folders`). `parentId` is required but `null` for a root folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Folder {
    /// Zephyr id.
    pub id: u64,
    /// Parent folder id; `None` for a root folder. Required: a folder that
    /// omits it is an error rather than silently moved to the root.
    #[serde(deserialize_with = "Option::deserialize")]
    pub parent_id: Option<u64>,
    /// Folder name.
    pub name: String,
    /// Position among its siblings.
    pub index: i64,
    /// What the folder holds.
    pub folder_type: FolderType,
    /// The project.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<Ref>,
}

/// A test case (`/testcases`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct TestCase {
    /// Zephyr id.
    pub id: u64,
    /// Key, e.g. `PROJ-T1`.
    pub key: String,
    /// Name.
    pub name: String,
    /// The project.
    pub project: Ref,
    /// Creation time, `yyyy-MM-dd'T'HH:mm:ss'Z'`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_on: Option<String>,
    /// Objective (HTML).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub objective: Option<String>,
    /// Precondition (HTML).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precondition: Option<String>,
    /// Estimated duration in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_time: Option<u64>,
    /// Labels.
    #[serde(default, deserialize_with = "null_default")]
    pub labels: Vec<String>,
    /// Jira component.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<Ref>,
    /// Priority; its name comes from `/priorities`.
    pub priority: Ref,
    /// Status; its name comes from `/statuses?statusType=TEST_CASE`.
    pub status: Ref,
    /// Folder, `None` when the case is in no folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub folder: Option<Ref>,
    /// Owner; `None` also when the owner's account id is `null`.
    #[serde(
        default,
        deserialize_with = "owner",
        skip_serializing_if = "Option::is_none"
    )]
    pub owner: Option<UserRef>,
    /// Where the script lives (see [`TestCase::script_location`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_script: Option<SelfLink>,
    /// Custom field values by name.
    #[serde(default, deserialize_with = "null_default")]
    pub custom_fields: CustomFields,
    /// Jira issue links and web links.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub links: Option<super::Links>,
}

/// Which endpoint holds a case's script, judged from `testScript.self`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScriptLocation {
    /// `/testcases/{key}/teststeps`: a step-by-step script.
    Steps,
    /// `/testcases/{key}/testscript`: a plain or BDD script.
    Script,
    /// A link with another suffix: try `/teststeps`, then `/testscript`.
    Unknown,
    /// No `testScript` link (the spec makes it optional): [`read_script`](crate::migrate::read_script) asks both endpoints.
    None,
}

impl TestCase {
    /// Where to read this case's script from.
    pub fn script_location(&self) -> ScriptLocation {
        let Some(url) = self
            .test_script
            .as_ref()
            .and_then(|l| l.self_url.as_deref())
        else {
            return if self.test_script.is_some() {
                ScriptLocation::Unknown
            } else {
                ScriptLocation::None
            };
        };
        let path = strip_query(url).trim_end_matches('/').to_ascii_lowercase();
        if path.ends_with("/teststeps") {
            ScriptLocation::Steps
        } else if path.ends_with("/testscript") {
            ScriptLocation::Script
        } else {
            ScriptLocation::Unknown
        }
    }
}

fn strip_query(url: &str) -> &str {
    url.split(['?', '#']).next().unwrap_or(url)
}

/// One step of a step-by-step script: either inline or a call to another test.
///
/// The API sends an object with exactly one of `inline` or `testCase`; one with
/// neither or both fails to parse instead of being dropped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawTestStep", into = "RawTestStep")]
pub enum TestStep {
    /// A step written out in this case.
    Inline(InlineStep),
    /// A call to another test case.
    Call(CallToTest),
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawTestStep {
    /// The step's id (optional and nullable in the spec): what its
    /// attachments are listed under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    inline: Option<InlineStep>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    test_case: Option<CallToTest>,
}

impl TryFrom<RawTestStep> for TestStep {
    type Error = String;

    fn try_from(raw: RawTestStep) -> Result<Self, Self::Error> {
        match (raw.inline, raw.test_case) {
            (Some(inline), None) => Ok(TestStep::Inline(InlineStep {
                id: raw.id,
                ..inline
            })),
            (None, Some(call)) => Ok(TestStep::Call(call)),
            (Some(_), Some(_)) => Err("test step has both `inline` and `testCase`".into()),
            (None, None) => Err("test step has neither `inline` nor `testCase`".into()),
        }
    }
}

impl From<TestStep> for RawTestStep {
    fn from(step: TestStep) -> Self {
        match step {
            TestStep::Inline(inline) => RawTestStep {
                id: inline.id,
                inline: Some(inline),
                test_case: None,
            },
            TestStep::Call(call) => RawTestStep {
                id: None,
                inline: None,
                test_case: Some(call),
            },
        }
    }
}

/// An inline step. Every field is optional in the spec.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct InlineStep {
    /// The step's id, from the item around `inline` (where the API puts it):
    /// what the step's attachments are listed under. Not part of `inline`'s
    /// own JSON.
    #[serde(skip)]
    pub id: Option<u64>,
    /// The instruction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Test data for the instruction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_data: Option<String>,
    /// The expected outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_result: Option<String>,
    /// Custom field values of the step.
    #[serde(default, deserialize_with = "null_default")]
    pub custom_fields: CustomFields,
}

/// A call-to-test step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct CallToTest {
    /// Key of the called case.
    pub test_case_key: String,
    /// Its URL.
    #[serde(rename = "self", default, skip_serializing_if = "Option::is_none")]
    pub self_url: Option<String>,
    /// Parameters passed to the called case.
    #[serde(default, deserialize_with = "null_default")]
    pub parameters: Vec<StepParameter>,
}

/// A parameter of a call-to-test step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StepParameter {
    /// Parameter name.
    #[serde(default)]
    pub name: String,
    /// `MANUAL_INPUT` or `DEFAULT_VALUE`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Its value (a string in the spec; any JSON is accepted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<serde_json::Value>,
}

/// Kind of a non-step script.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScriptType {
    /// Free text.
    #[serde(alias = "PLAIN", alias = "Plain")]
    Plain,
    /// Gherkin.
    #[serde(alias = "BDD", alias = "Bdd")]
    Bdd,
}

/// A plain or BDD script (`/testcases/{key}/testscript`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TestScript {
    /// Zephyr id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    /// `plain` or `bdd`; anything else fails to parse.
    #[serde(rename = "type")]
    pub kind: ScriptType,
    /// The script text.
    #[serde(default, deserialize_with = "null_default")]
    pub text: String,
}

/// A test cycle (`/testcycles`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct TestCycle {
    /// Zephyr id (executions refer to cycles by id only).
    pub id: u64,
    /// Key, e.g. `PROJ-R40`.
    pub key: String,
    /// Name.
    pub name: String,
    /// The project.
    pub project: Ref,
    /// Status; its name comes from `/statuses?statusType=TEST_CYCLE`.
    pub status: Ref,
    /// Folder (of type `TEST_CYCLE`), `None` at the root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub folder: Option<Ref>,
    /// Description (HTML).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Planned start, `yyyy-MM-dd'T'HH:mm:ss'Z'`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planned_start_date: Option<String>,
    /// Planned end, `yyyy-MM-dd'T'HH:mm:ss'Z'`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planned_end_date: Option<String>,
    /// Jira version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jira_project_version: Option<Ref>,
    /// Owner; `None` also when the owner's account id is `null`.
    #[serde(
        default,
        deserialize_with = "owner",
        skip_serializing_if = "Option::is_none"
    )]
    pub owner: Option<UserRef>,
    /// Custom field values by name.
    #[serde(default, deserialize_with = "null_default")]
    pub custom_fields: CustomFields,
    /// Jira issue links and web links.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub links: Option<super::Links>,
}

/// A test execution (`/testexecutions`). There is no start date.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct TestExecution {
    /// Zephyr id.
    pub id: u64,
    /// Key, e.g. `PROJ-E10`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The project.
    pub project: Ref,
    /// A link to the executed case *version*; see [`TestExecution::case_version`].
    /// Required, but its `id` is optional: the key comes from its link.
    pub test_case: LinkRef,
    /// Environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<Ref>,
    /// Jira version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jira_project_version: Option<Ref>,
    /// Status; its name comes from `/statuses?statusType=TEST_EXECUTION`.
    pub test_execution_status: Ref,
    /// End of the execution, `yyyy-MM-dd'T'HH:mm:ss'Z'`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actual_end_date: Option<String>,
    /// Estimated duration in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_time: Option<u64>,
    /// Actual duration in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_time: Option<u64>,
    /// Who executed it (Atlassian account id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executed_by_id: Option<String>,
    /// Who it is assigned to (Atlassian account id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assigned_to_id: Option<String>,
    /// Comment (HTML).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Whether it was automated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub automated: Option<bool>,
    /// The cycle, by id only; `None` for an ad-hoc execution outside any
    /// cycle (`testCycle` `null` or missing). An id missing from it is read
    /// from its link.
    #[serde(
        default,
        deserialize_with = "cycle_ref",
        skip_serializing_if = "Option::is_none"
    )]
    pub test_cycle: Option<Ref>,
    /// Custom field values by name.
    #[serde(default, deserialize_with = "null_default")]
    pub custom_fields: CustomFields,
    /// Jira issue links and web links.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub links: Option<super::Links>,
}

/// A case key and version parsed from a version link.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct CaseVersion {
    /// Case key, e.g. `PROJ-T1`.
    pub key: String,
    /// Version number; `None` when the link names no version.
    pub version: Option<u32>,
}

impl TestExecution {
    /// The executed case key and version, parsed from `testCase.self`
    /// (`…/testcases/PROJ-T1/versions/1`); `None` when the link is missing or
    /// does not have that shape.
    pub fn case_version(&self) -> Option<CaseVersion> {
        parse_case_version_link(self.test_case.self_url.as_deref()?)
    }
}

/// Parses `…/testcases/{key}[/versions/{n}]` (the segment name in any case).
/// The key must look like a case key (`.+-T[0-9]+`).
pub fn parse_case_version_link(url: &str) -> Option<CaseVersion> {
    let path = strip_query(url).trim_end_matches('/');
    let mut segments = path.split('/');
    segments.find(|s| s.eq_ignore_ascii_case("testcases"))?;
    let key = segments.next()?;
    if !is_case_key(key) {
        return None;
    }
    let version = match (segments.next(), segments.next(), segments.next()) {
        (None, _, _) => None,
        (Some(v), Some(n), None) if v.eq_ignore_ascii_case("versions") => Some(n.parse().ok()?),
        _ => return None,
    };
    Some(CaseVersion {
        key: key.to_owned(),
        version,
    })
}

/// Whether `key` matches the API's case key pattern `.+-T[0-9]+`.
pub fn is_case_key(key: &str) -> bool {
    match key.rsplit_once("-T") {
        Some((project, number)) => {
            !project.is_empty() && !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit())
        }
        None => false,
    }
}

/// One step result of an execution (`/testexecutions/{id}/teststeps`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ExecutionStep {
    /// The step result's id (nullable in the spec): what its attachments
    /// are listed under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    /// The step and its result; the spec marks nothing required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inline: Option<ExecutionStepInline>,
}

/// The content of an execution step result.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ExecutionStepInline {
    /// The instruction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The test data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_data: Option<String>,
    /// The expected outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_result: Option<String>,
    /// What actually happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actual_result: Option<String>,
    /// Row of the test data table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_data_row_number: Option<i64>,
    /// The step's status (an execution status).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Ref>,
}

/// A status (`/statuses`), of a case, cycle, plan or execution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Status {
    /// Zephyr id.
    pub id: u64,
    /// Name, e.g. `Pass`.
    pub name: String,
    /// The project.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<Ref>,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Display position.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<i64>,
    /// Display colour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
    /// Whether it is archived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archived: Option<bool>,
    /// Whether it is the default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<bool>,
}

/// A priority (`/priorities`): the same shape as a [`Status`], whose
/// `archived` priorities never have.
pub type Priority = Status;

/// An error body. Zephyr sends `{"errorCode","message"}`; most 401s are
/// `{"error"}` (spec), and the API gateway in front of it may send only
/// `{"message"}`, so all are optional. Errors are classified by status code.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ErrorBody {
    /// The numeric code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<i64>,
    /// The message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The message of a 401 about the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[cfg(test)]
#[path = "models_tests.rs"]
mod tests;
