//! Contract tests of the qTest side: one hand-written fixture per response
//! shape the client reads (a minimal and a maximal one, with the optional and
//! null fields), each decoded by the client's models; and every qTest mock
//! endpoint the tool uses checked against the spec's schema for the fields the
//! tool reads, so the mock and the spec can't drift apart again.
//!
//! The schema table below states facts of `qtest-manager-v3.yaml` (field
//! names, JSON types, what its definitions mark required), not its text.

use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::support::Migration;
use crate::support::mock::{Resp, call};
use etlpool::mock::DataSizes;
use etlpool::qtest::{
    ErrorBody, ExecutionStatus, Field, Module, OAuthToken, Paged, TestCase, TestCycle, TestLog,
    TestRun, UserProfile,
};

// ---- the spec's shapes, for the fields the tool reads ----

/// A JSON type of the spec.
#[derive(Clone, Copy, Debug)]
enum Ty {
    Int,
    Str,
    Bool,
    /// A `date-time` string.
    Date,
    Obj(Shape),
    Arr(Shape),
}

/// The spec's definitions the tool reads (a subset of each one's fields).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Shape {
    /// `OAuthResponse`.
    Token,
    /// `FieldResource`.
    Field,
    /// `AllowedValueResource`.
    AllowedValue,
    /// `StatusResource`.
    Status,
    /// `ModuleResource`.
    Module,
    /// `Link`.
    Link,
    /// `PropertyResource`.
    Property,
    /// `TestStepResource`.
    Step,
    /// `TestCaseWithCustomFieldResource`.
    Case,
    /// `TestCycleResource`.
    Cycle,
    /// `TestSuiteWithCustomFieldResource` (only what names it).
    Suite,
    /// `TestRunWithCustomFieldResource`.
    Run,
    /// A run's `test_case`: only its id is read.
    CaseRef,
    /// `TestLogResource`.
    Log,
    /// `TestStepLogResource`.
    StepLog,
    /// `TestRunListResource`.
    RunPage,
    /// `TestLogListResource`.
    LogPage,
    /// `PagedResource` of test cases.
    CasePage,
    /// `UserProfile`.
    Profile,
    /// `TestCasePermission`.
    CasePermissions,
    /// `Message`, or an OAuth error.
    Error,
}

/// (name, type, required by the spec).
type Fields = &'static [(&'static str, Ty, bool)];

impl Shape {
    fn fields(self) -> Fields {
        use Ty::*;
        match self {
            Shape::Token => &[
                ("access_token", Str, false),
                ("token_type", Str, false),
                ("expires_in", Int, false),
                ("scope", Str, false),
                ("refresh_token", Str, false),
            ],
            Shape::Field => &[
                ("id", Int, false),
                ("label", Str, true),
                ("required", Bool, false),
                ("multiple", Bool, false),
                ("data_type", Int, false),
                ("default_value", Str, false),
                ("system_field", Bool, false),
                ("original_name", Str, false),
                ("is_active", Bool, false),
                ("attribute_type", Str, false),
                ("allowed_values", Arr(Shape::AllowedValue), false),
            ],
            Shape::AllowedValue => &[
                ("value", Int, false),
                ("label", Str, false),
                ("order", Int, false),
                ("is_default", Bool, false),
                ("is_active", Bool, false),
            ],
            Shape::Status => &[
                ("id", Int, false),
                ("name", Str, false),
                ("is_default", Bool, false),
                ("color", Str, false),
                ("active", Bool, false),
            ],
            Shape::Module => &[
                ("id", Int, false),
                ("name", Str, false),
                ("order", Int, false),
                ("pid", Str, false),
                ("parent_id", Int, false),
                ("description", Str, false),
                ("shared", Bool, false),
                ("children", Arr(Shape::Module), false),
                ("links", Arr(Shape::Link), false),
            ],
            Shape::Link => &[("rel", Str, false), ("href", Str, false)],
            Shape::Property => &[
                ("field_id", Int, true),
                ("field_name", Str, false),
                ("field_value", Str, false),
                ("field_value_name", Str, false),
            ],
            Shape::Step => &[
                ("id", Int, false),
                ("description", Str, true),
                ("expected", Str, true),
                ("order", Int, false),
                ("called_test_case_id", Int, false),
                ("called_test_case_name", Str, false),
                ("parent_test_step_id", Int, false),
            ],
            Shape::Case => &[
                ("id", Int, false),
                ("name", Str, false),
                ("pid", Str, false),
                ("parent_id", Int, false),
                ("test_case_version_id", Int, false),
                ("version", Str, false),
                ("description", Str, false),
                ("precondition", Str, false),
                ("created_date", Date, false),
                ("web_url", Str, false),
                ("properties", Arr(Shape::Property), true),
                ("test_steps", Arr(Shape::Step), false),
                ("links", Arr(Shape::Link), false),
            ],
            Shape::Cycle => &[
                ("id", Int, false),
                ("name", Str, false),
                ("pid", Str, false),
                ("order", Int, false),
                ("description", Str, false),
                ("target_release_id", Int, false),
                ("web_url", Str, false),
                ("created_date", Date, false),
                ("test-cycles", Arr(Shape::Cycle), false),
                ("test-suites", Arr(Shape::Suite), false),
                ("links", Arr(Shape::Link), false),
            ],
            Shape::Suite => &[
                ("id", Int, false),
                ("pid", Str, false),
                ("name", Str, false),
            ],
            Shape::Run => &[
                ("id", Int, false),
                ("name", Str, false),
                ("pid", Str, false),
                ("parentId", Int, false),
                ("parentType", Str, false),
                ("test_case", Obj(Shape::CaseRef), true),
                ("test_case_version_id", Int, false),
                ("properties", Arr(Shape::Property), true),
                ("links", Arr(Shape::Link), false),
            ],
            Shape::CaseRef => &[("id", Int, false)],
            Shape::Log => &[
                ("id", Int, false),
                ("status", Obj(Shape::Status), true),
                ("exe_start_date", Date, true),
                ("exe_end_date", Date, true),
                ("note", Str, false),
                ("test_case_version_id", Int, false),
                ("result_number", Int, false),
                ("test_step_logs", Arr(Shape::StepLog), false),
                ("links", Arr(Shape::Link), false),
            ],
            Shape::StepLog => &[
                ("test_step_id", Int, false),
                ("status", Obj(Shape::Status), false),
                ("actual_result", Str, false),
                ("order", Int, false),
                ("called_test_case_id", Int, false),
                ("parent_test_step_id", Int, false),
            ],
            Shape::RunPage | Shape::LogPage | Shape::CasePage => &[
                ("links", Arr(Shape::Link), false),
                ("page", Int, false),
                ("page_size", Int, false),
                ("total", Int, false),
            ],
            Shape::Profile => &[
                ("user_id", Int, false),
                ("project_id", Int, false),
                ("test_case", Obj(Shape::CasePermissions), false),
            ],
            Shape::CasePermissions => &[
                ("create", Bool, false),
                ("edit", Bool, false),
                ("view", Bool, false),
                ("approve", Bool, false),
            ],
            Shape::Error => &[
                ("message", Str, false),
                ("error", Str, false),
                ("error_description", Str, false),
            ],
        }
    }

    /// The item shape of a page.
    fn items(self) -> Option<Shape> {
        match self {
            Shape::RunPage => Some(Shape::Run),
            Shape::LogPage => Some(Shape::Log),
            Shape::CasePage => Some(Shape::Case),
            _ => None,
        }
    }
}

/// What in `value` breaks `shape`: a required field missing or null, or a
/// field of another type. Null stands for an absent optional field.
fn violations(value: &Value, shape: Shape, at: &str) -> Vec<String> {
    let Some(object) = value.as_object() else {
        return vec![format!("{at}: not an object: {value}")];
    };
    let mut out = Vec::new();
    let items = shape.items().map(|s| ("items", Ty::Arr(s), false));
    for &(name, ty, required) in shape.fields().iter().chain(items.iter()) {
        let here = format!("{at}.{name}");
        match object.get(name) {
            None | Some(Value::Null) if required => out.push(format!("{here}: required")),
            None | Some(Value::Null) => {}
            Some(v) => out.extend(type_violations(v, ty, &here)),
        }
    }
    out
}

fn type_violations(v: &Value, ty: Ty, at: &str) -> Vec<String> {
    let wrong = |what: &str| vec![format!("{at}: expected {what}, got {v}")];
    match ty {
        Ty::Int if v.is_i64() || v.is_u64() => Vec::new(),
        Ty::Int => wrong("an integer"),
        Ty::Str if v.is_string() => Vec::new(),
        Ty::Str => wrong("a string"),
        Ty::Bool if v.is_boolean() => Vec::new(),
        Ty::Bool => wrong("a boolean"),
        Ty::Date if v.as_str().is_some_and(is_date_time) => Vec::new(),
        Ty::Date => wrong("a date-time"),
        Ty::Obj(shape) => violations(v, shape, at),
        Ty::Arr(shape) => match v.as_array() {
            Some(items) => items
                .iter()
                .enumerate()
                .flat_map(|(i, item)| violations(item, shape, &format!("{at}[{i}]")))
                .collect(),
            None => wrong("an array"),
        },
    }
}

/// `yyyy-MM-ddTHH:mm:ss` with a zone, as the spec's `date-time` format.
fn is_date_time(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 20
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && (s.ends_with('Z') || s[19..].contains(['+', '-']))
}

fn assert_fits(value: &Value, shape: Shape, what: &str) {
    let found = match value.as_array() {
        Some(items) => items
            .iter()
            .enumerate()
            .flat_map(|(i, item)| violations(item, shape, &format!("{what}[{i}]")))
            .collect(),
        None => violations(value, shape, what),
    };
    assert!(found.is_empty(), "{what} breaks the spec: {found:#?}");
}

// ---- fixtures ----

macro_rules! fixture {
    ($name:literal) => {
        (
            $name,
            include_str!(concat!("fixtures/qtest/", $name, ".min.json")),
            include_str!(concat!("fixtures/qtest/", $name, ".max.json")),
        )
    };
}

/// Every fixture: name, minimal, maximal, shape (arrays: of their items).
fn fixtures() -> [(&'static str, &'static str, &'static str, Shape); 13] {
    let with = |(name, min, max), shape| (name, min, max, shape);
    [
        with(fixture!("oauth-token"), Shape::Token),
        with(fixture!("fields"), Shape::Field),
        with(fixture!("execution-statuses"), Shape::Status),
        with(fixture!("module"), Shape::Module),
        with(fixture!("test-case"), Shape::Case),
        with(fixture!("test-cycle"), Shape::Cycle),
        with(fixture!("test-run"), Shape::Run),
        with(fixture!("test-runs-page"), Shape::RunPage),
        with(fixture!("test-log"), Shape::Log),
        with(fixture!("test-logs-page"), Shape::LogPage),
        with(fixture!("search-page"), Shape::CasePage),
        with(fixture!("user-profile"), Shape::Profile),
        with(fixture!("error"), Shape::Error),
    ]
}

fn decode<T: DeserializeOwned>(name: &str, which: &str, text: &str) -> T {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{name}.{which}.json doesn't decode: {e}"))
}

/// Both fixtures of one shape, decoded.
fn both<T: DeserializeOwned>(name: &str) -> (T, T) {
    let (_, min, max, _) = fixtures().into_iter().find(|f| f.0 == name).unwrap();
    (decode(name, "min", min), decode(name, "max", max))
}

#[test]
fn every_fixture_follows_the_spec_schema() {
    for (name, min, max, shape) in fixtures() {
        for (which, text) in [("min", min), ("max", max)] {
            let value: Value = serde_json::from_str(text).unwrap();
            assert_fits(&value, shape, &format!("{name}.{which}"));
        }
    }
}

#[test]
fn every_fixture_decodes_into_the_client_models() {
    let (min, max): (OAuthToken, OAuthToken) = both("oauth-token");
    assert_eq!((min.expires_in, max.expires_in), (None, Some(300)));
    assert!(
        !format!("{max:?}").contains("44c1-refresh"),
        "the refresh token is not printed"
    );

    let (min, max): (Vec<Field>, Vec<Field>) = both("fields");
    assert_eq!((min[0].label.as_str(), min[0].data_type), ("Summary", None));
    assert_eq!(max[0].default_value.as_deref(), Some("713"));
    assert_eq!(max[0].allowed_values[0].value, "712");
    assert!(max[1].is_multi_value() && max[1].required);
    assert_eq!(max[2].is_active, Some(false));
    assert!(max[2].allowed_values.is_empty());

    let (min, max): (Vec<ExecutionStatus>, Vec<ExecutionStatus>) = both("execution-statuses");
    assert_eq!((min[0].id, max[1].is_default), (601, Some(true)));

    let (min, max): (Module, Module) = both("module");
    assert!(min.children.is_empty() && max.parent_id.is_none());
    assert_eq!(max.children[0].parent_id, Some(2_107_619));

    let (min, max): (TestCase, TestCase) = both("test-case");
    assert!(min.test_steps.is_empty() && min.version.is_none() && !min.is_approved());
    assert!(max.is_approved());
    assert_eq!(max.property_value(8020), Some("[31,32]"));
    assert_eq!(max.test_steps[1].called_test_case_id, Some(55_007));
    assert_eq!(max.test_steps[0].called_test_case_id, None);

    let (min, max): (TestCycle, TestCycle) = both("test-cycle");
    assert!(min.test_cycles.is_empty());
    assert_eq!(max.test_cycles[0].test_cycles[0].name, "Smoke");
    assert_eq!(max.test_suites[0].pid.as_deref(), Some("TS-3"));

    let (min, max): (TestRun, TestRun) = both("test-run");
    assert_eq!(min.test_case.unwrap().id, 55_001);
    assert_eq!(
        (max.parent_id, max.parent_type.as_deref()),
        (Some(67_890), Some("test-cycle"))
    );

    let (min, max): (Paged<TestRun>, Paged<TestRun>) = both("test-runs-page");
    assert_eq!((min.page, min.next_page()), (1, None));
    assert_eq!(max.next_page(), Some(2));

    let (min, max): (TestLog, TestLog) = both("test-log");
    assert!(min.test_step_logs.is_empty() && min.note.is_none());
    let called = &max.test_step_logs[1];
    assert_eq!(
        (called.called_test_case_id, called.parent_test_step_id),
        (Some(55_007), Some(991))
    );
    assert_eq!(max.status.name.as_deref(), Some("Failed"));

    let (min, max): (Paged<TestLog>, Paged<TestLog>) = both("test-logs-page");
    assert!(min.items.is_empty());
    assert_eq!(
        (max.items[0].result_number, max.next_page()),
        (Some(101), None)
    );

    let (min, max): (Paged<TestCase>, Paged<TestCase>) = both("search-page");
    assert_eq!(min.next_page(), None);
    assert_eq!(max.items[0].property_value(8010), Some("PROJ-T1"));

    let (min, max): (UserProfile, UserProfile) = both("user-profile");
    assert_eq!(min.test_case, None);
    assert_eq!(max.test_case.unwrap().approve, Some(false));

    let (min, max): (ErrorBody, ErrorBody) = both("error");
    assert_eq!(
        (min.text(), max.text()),
        (None, Some("Test Case 55001 not found"))
    );
}

// ---- the mock against the spec ----

#[test]
fn every_qtest_mock_endpoint_the_tool_reads_follows_the_spec_schema() {
    let m = Migration::new(
        121,
        DataSizes {
            folders: 4,
            folder_depth: 2,
            cycle_folders: 3,
            cases: 16,
            steps_per_case: 3,
            cycles: 4,
            executions: 40,
        },
    );
    let summary = m.run();
    assert!(summary.is_complete(), "{summary}");
    let agent = crate::support::mock::agent();
    let mocks = &m.mocks;
    let base = format!(
        "{}/projects/{}",
        mocks.qtest_url(),
        mocks.qtest_project_id()
    );
    let token = Some(mocks.qtest_token());
    let get = |tail: &str| call(&agent, "GET", &format!("{base}{tail}"), token, None);
    let send = |method: &str, tail: &str, body: Value| {
        call(&agent, method, &format!("{base}{tail}"), token, Some(&body))
    };
    let ok = |r: Resp, status: u16, shape: Shape, what: &str| -> Value {
        assert_eq!(r.status, status, "{what}: {}", r.text);
        let v = r.json();
        assert_fits(&v, shape, what);
        v
    };
    let state = mocks.qtest_state();
    let case = state
        .test_cases
        .iter()
        .find(|c| !c.test_steps.is_empty())
        .unwrap();
    let run = state.test_runs[0].clone();
    let with_logs = state.test_logs[0].run_id;

    ok(
        get("/settings/test-cases/fields"),
        200,
        Shape::Field,
        "case fields",
    );
    ok(
        get("/settings/test-runs/fields"),
        200,
        Shape::Field,
        "run fields",
    );
    ok(
        get("/test-runs/execution-statuses"),
        200,
        Shape::Status,
        "execution statuses",
    );
    let modules = ok(
        get("/modules?expand=descendants"),
        200,
        Shape::Module,
        "modules",
    );
    assert!(
        modules
            .as_array()
            .unwrap()
            .iter()
            .any(|m| !m["children"].as_array().unwrap().is_empty())
    );
    let list = ok(
        get(&format!(
            "/test-cases?parentId={}&expandProps=true&expandSteps=true",
            case.parent_id
        )),
        200,
        Shape::Case,
        "a module's cases",
    );
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|c| c["test_steps"].as_array().is_some_and(|s| !s.is_empty()))
    );
    let one = ok(
        get(&format!("/test-cases/{}?expand=teststep", case.id)),
        200,
        Shape::Case,
        "one case",
    );
    assert!(!one["test_steps"].as_array().unwrap().is_empty());
    let tree = ok(
        get("/test-cycles?parentId=0&parentType=root&expand=descendants"),
        200,
        Shape::Cycle,
        "the cycle tree",
    );
    assert!(
        tree.as_array()
            .unwrap()
            .iter()
            .any(|c| !c["test-cycles"].as_array().unwrap().is_empty())
    );
    ok(
        get(&format!(
            "/test-runs?parentId={}&parentType=test-cycle&page=1&pageSize=100",
            run.parent_id
        )),
        200,
        Shape::RunPage,
        "a cycle's runs",
    );
    let logs = ok(
        get(&format!(
            "/test-runs/{with_logs}/test-logs?page=1&pageSize=100"
        )),
        200,
        Shape::LogPage,
        "a run's logs",
    );
    assert!(!logs["items"].as_array().unwrap().is_empty());
    let search =
        json!({"object_type": "test-cases", "fields": ["*"], "query": "'Zephyr Key' ~ 'PROJ-T'"});
    ok(
        send(
            "POST",
            "/search?page=1&pageSize=100&appendTestSteps=true",
            search,
        ),
        200,
        Shape::CasePage,
        "search",
    );
    let profile = ok(
        get("/user-profiles/current"),
        200,
        Shape::Profile,
        "user profile",
    );
    assert_eq!(profile["test_case"]["approve"], true);

    // Creates answer with the shape read back.
    let module = ok(
        send("POST", "/modules", json!({"name": "Contract"})),
        201,
        Shape::Module,
        "module create",
    );
    let properties = crate::support::migration::required_properties(
        &crate::support::migration::clients(mocks).1,
    );
    let created = ok(
        send(
            "POST",
            "/test-cases",
            json!({"name": "c", "parent_id": module["id"], "properties": properties,
            "test_steps": [{"description": "d", "expected": "e", "order": 1}]}),
        ),
        200,
        Shape::Case,
        "case create",
    );
    ok(
        send(
            "PUT",
            &format!("/test-cases/{}/approve", created["id"]),
            Value::Null,
        ),
        200,
        Shape::Case,
        "approve",
    );
    let cycle = ok(
        send(
            "POST",
            "/test-cycles?parentId=0&parentType=root",
            json!({"name": "c"}),
        ),
        201,
        Shape::Cycle,
        "cycle create",
    );
    let run = ok(
        send(
            "POST",
            &format!("/test-runs?parentId={}&parentType=test-cycle", cycle["id"]),
            json!({"name": "r", "properties": [], "test_case": {"id": created["id"]}}),
        ),
        201,
        Shape::Run,
        "run create",
    );
    let passed = mocks.qtest_config().status_named("Passed").unwrap().id;
    ok(
        send(
            "POST",
            &format!("/test-runs/{}/test-logs", run["id"]),
            json!({"status": {"id": passed}, "exe_start_date": "2024-01-01T00:00:00Z", "exe_end_date": "2024-01-01T00:01:00Z"}),
        ),
        201,
        Shape::Log,
        "log create",
    );
    // Errors.
    ok(get("/test-cases/1"), 404, Shape::Error, "an unknown case");
    let login = agent
        .run(
            ureq::http::Request::builder()
                .method("POST")
                .uri(format!("{}/oauth/token", mocks.qtest_site_url()))
                .header("Authorization", "Basic ZXRscG9vbDo=")
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body("grant_type=password&username=etlpool&password=etlpool".to_string())
                .unwrap(),
        )
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    assert_fits(
        &serde_json::from_str(&login).unwrap(),
        Shape::Token,
        "login",
    );
}

#[test]
fn the_schema_check_catches_a_drifted_mock() {
    // A cycle tree under the old underscore key, an id as a string, a missing required field.
    let drifted = json!({"id": "7", "name": "c", "test-cycles": [{"id": 8, "test-suites": {}}]});
    let found = violations(&drifted, Shape::Cycle, "cycle");
    assert_eq!(found.len(), 2, "{found:#?}");
    assert!(violations(&json!({"id": 1}), Shape::Case, "case")[0].contains("properties: required"));
    assert!(!is_date_time("2024-01-01") && is_date_time("2024-01-01T00:00:00.000+00:00"));
    assert_eq!(
        type_violations(&json!([{"rel": 1}]), Ty::Arr(Shape::Link), "x").len(),
        1
    );
}
