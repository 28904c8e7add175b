//! Serde models of qTest Manager v3 resources: what we read, and, as separate
//! `New*` structs, what we send when creating.
//!
//! Bodies are snake_case. Reads ignore unknown fields, accept `null` for
//! collections and numbers where strings are documented (ids and values differ
//! per instance, and the contract guesses several of them). Create bodies omit
//! what is unset, so qTest applies its own defaults.

use serde::{Deserialize, Serialize};

use crate::de::{lenient_string, null_default, required_lenient_string};

pub use super::envelope::{
    ErrorBody, OAuthToken, Paged, SearchRequest, SearchResponse, is_last_bare_page,
};

/// A hypermedia link: `{"rel","href"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Link {
    /// Relation, e.g. `self`.
    #[serde(default)]
    pub rel: String,
    /// The URL.
    #[serde(default)]
    pub href: String,
}

/// A reference by id, as in `"test_case":{"id":55001}` or a status in a body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdRef {
    /// The id.
    pub id: u64,
}

/// A module (folder of test cases), with its sub-tree in `children` when
/// read with `expand=descendants`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Module {
    /// qTest id.
    pub id: u64,
    /// Display id, e.g. `MD-8`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<String>,
    /// Name.
    pub name: String,
    /// Position among siblings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<i64>,
    /// Parent module id; `None` (or 0 on some versions) at the root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<u64>,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Whether the module is shared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared: Option<bool>,
    /// Sub-modules.
    #[serde(default, deserialize_with = "null_default")]
    pub children: Vec<Module>,
    /// Links.
    #[serde(default, deserialize_with = "null_default")]
    pub links: Vec<Link>,
}

/// Body of `POST /modules?parentId=…`.
///
/// qTest 6+ reads the parent from the `parentId` query; older versions read
/// `parent_id` from the body, so the client sends both.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewModule {
    /// Name.
    pub name: String,
    /// Description (empty when there is none, as qTest's own UI sends).
    #[serde(default)]
    pub description: String,
    /// Parent module; `None` creates a root module.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<u64>,
}

/// A property value as read: `{field_id, field_name, field_value, field_value_name}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Property {
    /// Field id.
    pub field_id: u64,
    /// Field label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field_name: Option<String>,
    /// Value: an allowed-value id or the text itself, as a string.
    #[serde(
        default,
        deserialize_with = "lenient_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub field_value: Option<String>,
    /// Label of the allowed value, for choice fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field_value_name: Option<String>,
}

/// A property value to write: `{"field_id","field_value"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PropertyValue {
    /// Field id.
    pub field_id: u64,
    /// The allowed-value id (as a string) or the text.
    pub field_value: String,
}

/// A test step as read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TestStep {
    /// qTest id (test logs refer to steps by it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    /// The instruction.
    #[serde(default, deserialize_with = "null_default")]
    pub description: String,
    /// The expected outcome.
    #[serde(default, deserialize_with = "null_default")]
    pub expected: String,
    /// Position, from 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<u32>,
    /// The called case, for a step that calls another test case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub called_test_case_id: Option<u64>,
    /// The called case's name, for a calling step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub called_test_case_name: Option<String>,
    /// The calling step, for a step listed as part of a called case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_test_step_id: Option<u64>,
}

impl TestStep {
    /// A step with only an id and a position, e.g. one remembered from a create.
    pub fn new(id: u64, order: u32, called_test_case_id: Option<u64>) -> TestStep {
        TestStep {
            id: Some(id),
            description: String::new(),
            expected: String::new(),
            order: Some(order),
            called_test_case_id,
            called_test_case_name: None,
            parent_test_step_id: None,
        }
    }
}

/// A test step to create: `{description, expected, order}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewTestStep {
    /// The instruction.
    pub description: String,
    /// The expected outcome.
    pub expected: String,
    /// Position, from 1.
    pub order: u32,
    /// The called case, for a call-to-test step whose target is migrated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub called_test_case_id: Option<u64>,
}

/// A test case as read (create responses, `GET /test-cases`, search items).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TestCase {
    /// qTest id.
    pub id: u64,
    /// Display id, e.g. `TC-12`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<String>,
    /// Name.
    pub name: String,
    /// Module id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<u64>,
    /// Id of this version; runs and logs must name it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_case_version_id: Option<u64>,
    /// Version label such as `0.1` (a number on some instances).
    #[serde(
        default,
        deserialize_with = "lenient_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub version: Option<String>,
    /// Description (HTML).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Precondition (HTML).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precondition: Option<String>,
    /// Creation time, as qTest formats it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_date: Option<String>,
    /// Link to the case in the web UI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web_url: Option<String>,
    /// Field values.
    #[serde(default, deserialize_with = "null_default")]
    pub properties: Vec<Property>,
    /// Steps: in a create's answer, and in reads that ask for them (`expand=teststep` for one
    /// case, `expandSteps=true` for a module's list, `appendTestSteps=true` for a search).
    #[serde(default, deserialize_with = "null_default")]
    pub test_steps: Vec<TestStep>,
    /// Links.
    #[serde(default, deserialize_with = "null_default")]
    pub links: Vec<Link>,
}

impl TestCase {
    /// Whether the current version is an approved one: qTest numbers approved versions
    /// `1.0`, `2.0`, ... and the edits after them `1.1`, `1.2`, ... (a new case is `0.1`).
    pub fn is_approved(&self) -> bool {
        self.version.as_deref().is_some_and(|v| {
            v.trim().split_once('.').map_or_else(
                || v.trim().parse::<u64>().is_ok_and(|major| major > 0),
                |(major, minor)| {
                    major.parse::<u64>().is_ok_and(|m| m > 0) && minor.bytes().all(|b| b == b'0')
                },
            )
        })
    }

    /// The case's own steps in their `order`: not those listed with it as steps of a case it
    /// calls (they carry the calling step as `parent_test_step_id`), which the spec's
    /// `TestStepResource` allows for.
    pub fn own_steps(&self) -> Vec<&TestStep> {
        own_steps(&self.test_steps)
    }

    /// The value of the property whose field id is `field_id`.
    pub fn property_value(&self, field_id: u64) -> Option<&str> {
        self.properties
            .iter()
            .find(|p| p.field_id == field_id)
            .and_then(|p| p.field_value.as_deref())
    }
}

/// The steps of a case that are its own, in their `order`: see [`TestCase::own_steps`].
pub fn own_steps(steps: &[TestStep]) -> Vec<&TestStep> {
    let mut own: Vec<&TestStep> = steps
        .iter()
        .filter(|s| s.parent_test_step_id.is_none())
        .collect();
    own.sort_by_key(|s| s.order);
    own
}

/// Body of `POST /test-cases`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewTestCase {
    /// Name.
    pub name: String,
    /// Description (HTML).
    pub description: String,
    /// Precondition (HTML).
    #[serde(default)]
    pub precondition: String,
    /// Module id; without it the case lands in "Created via API".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<u64>,
    /// Field values.
    #[serde(default)]
    pub properties: Vec<PropertyValue>,
    /// Steps.
    #[serde(default)]
    pub test_steps: Vec<NewTestStep>,
}

/// An allowed value of a choice field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AllowedValue {
    /// The value written into a property (a number on the wire; kept as text
    /// because properties carry it as a string).
    #[serde(deserialize_with = "required_lenient_string")]
    pub value: String,
    /// Display label, what mappings match on.
    pub label: String,
    /// Display position.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<i64>,
    /// Whether it can be chosen; absent means active.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_active: Option<bool>,
    /// Whether it is the field's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_default: Option<bool>,
}

/// A field setting (`/settings/test-cases/fields`): the FieldResource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Field {
    /// Field id, what properties name.
    pub id: u64,
    /// Display label, what mappings match on.
    pub label: String,
    /// Name before any renaming.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_name: Option<String>,
    /// Whether it is a system field.
    #[serde(default)]
    pub system_field: bool,
    /// Whether a value is required.
    #[serde(default)]
    pub required: bool,
    /// Whether several values may be chosen.
    #[serde(default)]
    pub multiple: bool,
    /// Data type code: 1 text box, 2 text area, 3 combo box, 4 date, 5 user list, 6 rich
    /// text, 7 number, 8 check box, 9 date-time, 12 URL, 17 multi-select (see
    /// [`Field::is_multi_value`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_type: Option<i64>,
    /// The type as a name, sent by some endpoints beside `data_type`; no values are documented,
    /// so it only ever shows up in messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribute_type: Option<String>,
    /// The default value, as text (an allowed value's id, or its label, for choice fields).
    #[serde(
        default,
        deserialize_with = "lenient_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub default_value: Option<String>,
    /// Whether the field is active; absent means active.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_active: Option<bool>,
    /// Allowed values of a choice field; empty for free-form fields.
    #[serde(default, deserialize_with = "null_default")]
    pub allowed_values: Vec<AllowedValue>,
}

/// The system fields a `POST /test-cases` sets through its own keys (`id` is qTest's; `name`,
/// `description`, `precondition`), by their original names.
const BODY_FIELDS: &[&str] = &["Id", "Name", "Description", "Precondition"];

impl Field {
    /// Whether this is a system field whose value a create sends as a key of its own (`name`,
    /// `description`, `precondition`) or qTest makes (`Id`), not as a property: the spec's
    /// example lists `Name` as a required system field, which no property fills.
    /// Matched by `original_name` (a site may relabel a system field), else by label.
    pub fn is_body_field(&self) -> bool {
        let name = self.original_name.as_deref().unwrap_or(&self.label);
        self.system_field
            && BODY_FIELDS
                .iter()
                .any(|body| body.eq_ignore_ascii_case(name.trim()))
    }

    /// Check boxes (8) and multi-selects (17) hold several allowed values whatever `multiple`
    /// says; other fields when `multiple` is set.
    pub fn is_multi_value(&self) -> bool {
        self.multiple || matches!(self.data_type, Some(8 | 17))
    }

    /// The field's type, for messages: its code and, when sent, its `attribute_type`.
    pub fn type_name(&self) -> String {
        let name = match self.data_type {
            Some(1) => "text box",
            Some(2) => "text area",
            Some(3) => "combo box",
            Some(4) => "date",
            Some(5) => "user list",
            Some(6) => "rich text",
            Some(7) => "number",
            Some(8) => "check box",
            Some(9) => "date-time",
            Some(12) => "URL",
            Some(17) => "multi-select",
            Some(_) => "data type",
            None => "untyped",
        };
        let code = self.data_type.map(|c| format!(" {c}")).unwrap_or_default();
        match &self.attribute_type {
            Some(attribute) => format!("{name}{code} ({attribute})"),
            None => format!("{name}{code}"),
        }
    }
}

/// An execution status (`/test-runs/execution-statuses`): the StatusResource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ExecutionStatus {
    /// Status id, what test logs name.
    pub id: u64,
    /// Name, e.g. `Passed`; what mappings match on.
    pub name: String,
    /// Display colour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
    /// Whether it is active; absent means active.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
    /// Whether it is the default (usually `Unexecuted`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_default: Option<bool>,
}

/// A status as embedded in a test log: `{"id","name"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusRef {
    /// Status id.
    pub id: u64,
    /// Status name, in responses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// A test cycle as read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TestCycle {
    /// qTest id.
    pub id: u64,
    /// Display id, e.g. `CL-416`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<String>,
    /// Name.
    pub name: String,
    /// Description (HTML).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Release it targets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_release_id: Option<u64>,
    /// Link to the cycle in the web UI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web_url: Option<String>,
    /// Child cycles (with `expand=descendants`), under the hyphenated key `test-cycles` the
    /// spec names (`test_cycles` is read too).
    #[serde(
        rename = "test-cycles",
        alias = "test_cycles",
        default,
        deserialize_with = "null_default"
    )]
    pub test_cycles: Vec<TestCycle>,
    /// Child test suites (with `expand=descendants`), under `test-suites`.
    #[serde(
        rename = "test-suites",
        alias = "test_suites",
        default,
        deserialize_with = "null_default"
    )]
    pub test_suites: Vec<TestSuite>,
    /// Links.
    #[serde(default, deserialize_with = "null_default")]
    pub links: Vec<Link>,
}

/// A test suite inside a test cycle: only what identifies it (runs can live in suites; the
/// migration creates none).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TestSuite {
    /// qTest id.
    pub id: u64,
    /// Display id, e.g. `TS-3`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<String>,
    /// Name.
    #[serde(default)]
    pub name: String,
}

/// Body of `POST /test-cycles?parentId=…&parentType=…`. There are no date fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewTestCycle {
    /// Name.
    pub name: String,
    /// Description (HTML).
    #[serde(default)]
    pub description: String,
}

/// What a test cycle or test run is created under (`parentType` and `parentId`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CycleParent {
    /// The project root (`parentType=root&parentId=0`).
    Root,
    /// A release.
    Release(u64),
    /// Another test cycle.
    TestCycle(u64),
}

impl CycleParent {
    /// The query parameters `parentId` and `parentType`.
    pub fn query(&self) -> [(&'static str, String); 2] {
        let (id, kind) = match *self {
            CycleParent::Root => (0, "root"),
            CycleParent::Release(id) => (id, "release"),
            CycleParent::TestCycle(id) => (id, "test-cycle"),
        };
        [
            ("parentId", id.to_string()),
            ("parentType", kind.to_owned()),
        ]
    }
}

/// A test run as read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TestRun {
    /// qTest id.
    pub id: u64,
    /// Display id, e.g. `TR-5001`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<String>,
    /// Name.
    pub name: String,
    /// Parent (cycle) id; the spec spells it `parentId` here (`parent_id` is read too).
    #[serde(
        rename = "parentId",
        alias = "parent_id",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub parent_id: Option<u64>,
    /// Parent type, e.g. `test-cycle`; `parentType` in the spec.
    #[serde(
        rename = "parentType",
        alias = "parent_type",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub parent_type: Option<String>,
    /// The case it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_case: Option<IdRef>,
    /// The case version it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_case_version_id: Option<u64>,
    /// Field values (including its status).
    #[serde(default, deserialize_with = "null_default")]
    pub properties: Vec<Property>,
    /// Links.
    #[serde(default, deserialize_with = "null_default")]
    pub links: Vec<Link>,
}

/// Body of `POST /test-runs?parentId=…&parentType=test-cycle`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewTestRun {
    /// Name (the case's name).
    pub name: String,
    /// The case it runs.
    pub test_case: IdRef,
    /// The case version; always sent, since qTest otherwise picks the latest
    /// *approved* version.
    pub test_case_version_id: u64,
    /// Field values; always sent, empty unless set: the spec's
    /// `TestRunWithCustomFieldResource` requires `properties`.
    #[serde(default)]
    pub properties: Vec<PropertyValue>,
}

/// A test step log as read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TestStepLog {
    /// Its own id (`test_step_log_id` in the spec's `TestStepLogResource`):
    /// what its attachments hang on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_step_log_id: Option<u64>,
    /// The step it logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_step_id: Option<u64>,
    /// Its status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<StatusRef>,
    /// The actual result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actual_result: Option<String>,
    /// Position, from 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<u32>,
    /// The called case the step belongs to, for a step called from another case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub called_test_case_id: Option<u64>,
    /// The calling step, for a step called from another case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_test_step_id: Option<u64>,
}

/// A test step log to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewTestStepLog {
    /// The qTest step it logs: a step of the run's case, or of a case it calls.
    pub test_step_id: u64,
    /// Its status.
    pub status: IdRef,
    /// The actual result.
    #[serde(default)]
    pub actual_result: String,
    /// Position, from 1.
    pub order: u32,
    /// For a step of a called case: that case. qTest requires it, with
    /// `parent_test_step_id`, for every called step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub called_test_case_id: Option<u64>,
    /// For a step of a called case: the step that calls it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_test_step_id: Option<u64>,
}

/// A test log as read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TestLog {
    /// qTest id.
    pub id: u64,
    /// Its status.
    pub status: StatusRef,
    /// Start of the execution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exe_start_date: Option<String>,
    /// End of the execution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exe_end_date: Option<String>,
    /// Note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The case version it logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_case_version_id: Option<u64>,
    /// Sequence number within its run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_number: Option<u64>,
    /// Step logs.
    #[serde(default, deserialize_with = "null_default")]
    pub test_step_logs: Vec<TestStepLog>,
    /// Links.
    #[serde(default, deserialize_with = "null_default")]
    pub links: Vec<Link>,
}

/// Body of `POST /test-runs/{id}/test-logs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewTestLog {
    /// Its status.
    pub status: IdRef,
    /// Start, `yyyy-MM-ddTHH:mm:ssZ`.
    pub exe_start_date: String,
    /// End, `yyyy-MM-ddTHH:mm:ssZ`.
    pub exe_end_date: String,
    /// Note (the Zephyr comment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The case version it logs; always sent (see [`NewTestRun`]).
    pub test_case_version_id: u64,
    /// Step logs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub test_step_logs: Vec<NewTestStepLog>,
}

/// The API user's permissions in a project (`GET /projects/{p}/user-profiles/current`): only
/// what the migration checks before it starts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct UserProfile {
    /// The user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<u64>,
    /// The project.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<u64>,
    /// Test-case permissions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_case: Option<CasePermissions>,
}

/// The test-case permissions of a [`UserProfile`]; absent ones are unknown.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CasePermissions {
    /// May create test cases.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create: Option<bool>,
    /// May edit test cases.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edit: Option<bool>,
    /// May view test cases.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub view: Option<bool>,
    /// May approve test cases.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approve: Option<bool>,
}

#[cfg(test)]
#[path = "models_tests.rs"]
mod tests;
