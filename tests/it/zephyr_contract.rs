//! Contract tests of the Zephyr side: the fields the tool reads, as the
//! published spec (`specs/zephyr-scale-cloud-v2-schemas.ts`) declares them,
//! written down once as a table; hand-written fixtures of every response
//! shape the client reads (a minimal and a maximal one each) must decode and
//! satisfy it, and so must every Zephyr mock endpoint over real sockets, so
//! the mock and the spec can't drift apart again.

use std::collections::BTreeSet;
use std::path::PathBuf;

use crate::support::mock::{Mocks, call};
use etlpool::mock::MockOptions;
use etlpool::mock::zephyr::data::Script;
use etlpool::zephyr::{
    CursorPage, ErrorBody, ExecutionStep, Folder, Page, Priority, Project, Status, TestCase,
    TestCycle, TestExecution, TestScript, TestStep,
};
use serde_json::Value;

/// A JSON type as the spec declares it.
#[derive(Clone, Copy)]
enum Ty {
    Int,
    Str,
    Bool,
    /// One of these strings.
    Enum(&'static [&'static str]),
    /// A JSON object of anything (`record(string, unknown)`).
    Map,
    Obj(&'static [F]),
    Arr(&'static Ty),
}

/// A field: required or optional (`.optional()`), nullable or not
/// (`.nullable()`, `.nullish()`, `union(.., null)`).
#[derive(Clone, Copy)]
struct F {
    name: &'static str,
    ty: Ty,
    required: bool,
    nullable: bool,
}

const fn req(name: &'static str, ty: Ty) -> F {
    F {
        name,
        ty,
        required: true,
        nullable: false,
    }
}

const fn opt(name: &'static str, ty: Ty) -> F {
    F {
        name,
        ty,
        required: false,
        nullable: false,
    }
}

/// Optional and nullable (`.nullish()`, `union([.., null]).optional()`).
const fn nullish(name: &'static str, ty: Ty) -> F {
    F {
        name,
        ty,
        required: false,
        nullable: true,
    }
}

/// Required, but may be `null` (`.nullable()`).
const fn nullable(name: &'static str, ty: Ty) -> F {
    F {
        name,
        ty,
        required: true,
        nullable: true,
    }
}

use Ty::{Bool, Int, Map, Str};

/// `{"id","self"?}`.
const REF: Ty = Ty::Obj(&[req("id", Int), opt("self", Str)]);
/// `{"id"?,"self"?}`: an execution's `testCase` and `testCycle`.
const LINK: Ty = Ty::Obj(&[opt("id", Int), opt("self", Str)]);
/// A Jira user: the account id is required but may be `null`.
const OWNER: Ty = Ty::Obj(&[nullable("accountId", Str), opt("self", Str)]);

const PROJECT: Ty = Ty::Obj(&[
    req("id", Int),
    req("jiraProjectId", Int),
    req("key", Str),
    req("enabled", Bool),
]);

/// The spec types `parentId` as a required integer; root folders carry
/// `null` (the contract, and the spec's own create body: "must be null for
/// root folders"), so the table allows it.
const FOLDER: Ty = Ty::Obj(&[
    req("id", Int),
    nullable("parentId", Int),
    req("name", Str),
    req("index", Int),
    req("folderType", Str),
    opt("project", REF),
]);

const STATUS: Ty = Ty::Obj(&[
    req("id", Int),
    req("project", REF),
    req("name", Str),
    nullish("description", Str),
    req("index", Int),
    opt("color", Str),
    opt("archived", Bool),
    opt("default", Bool),
]);

/// A priority is a status without `archived` (optional in both), as the
/// client reads them with one model.
const PRIORITY: Ty = STATUS;

const TEST_CASE: Ty = Ty::Obj(&[
    req("id", Int),
    req("key", Str),
    req("name", Str),
    req("project", REF),
    opt("createdOn", Str),
    nullish("objective", Str),
    nullish("precondition", Str),
    nullish("estimatedTime", Int),
    opt("labels", Ty::Arr(&Str)),
    nullish("component", REF),
    req("priority", REF),
    req("status", REF),
    nullish("folder", REF),
    nullish("owner", OWNER),
    opt("testScript", Ty::Obj(&[opt("self", Str)])),
    opt("customFields", Map),
]);

const STEP_PARAMETER: Ty = Ty::Obj(&[
    opt("name", Str),
    opt("type", Ty::Enum(&["MANUAL_INPUT", "DEFAULT_VALUE"])),
    opt("value", Str),
]);

const TEST_STEP: Ty = Ty::Obj(&[
    nullish("id", Int),
    nullish(
        "inline",
        Ty::Obj(&[
            nullish("description", Str),
            nullish("testData", Str),
            nullish("expectedResult", Str),
            opt("customFields", Map),
        ]),
    ),
    nullish(
        "testCase",
        Ty::Obj(&[
            opt("self", Str),
            req("testCaseKey", Str),
            nullish("parameters", Ty::Arr(&STEP_PARAMETER)),
        ]),
    ),
]);

const TEST_SCRIPT: Ty = Ty::Obj(&[
    req("type", Ty::Enum(&["plain", "bdd"])),
    req("text", Str),
    opt("id", Int),
]);

const TEST_CYCLE: Ty = Ty::Obj(&[
    req("id", Int),
    req("key", Str),
    req("name", Str),
    req("project", REF),
    nullish("jiraProjectVersion", REF),
    req("status", REF),
    nullish("folder", REF),
    nullish("description", Str),
    nullish("plannedStartDate", Str),
    nullish("plannedEndDate", Str),
    nullish("owner", OWNER),
    opt("customFields", Map),
]);

const TEST_EXECUTION: Ty = Ty::Obj(&[
    req("id", Int),
    opt("key", Str),
    req("project", REF),
    req("testCase", LINK),
    nullish("environment", REF),
    nullish("jiraProjectVersion", REF),
    req("testExecutionStatus", REF),
    opt("actualEndDate", Str),
    nullish("estimatedTime", Int),
    nullish("executionTime", Int),
    nullish("executedById", Str),
    nullish("assignedToId", Str),
    nullish("comment", Str),
    opt("automated", Bool),
    nullish("testCycle", LINK),
    opt("customFields", Map),
]);

const EXECUTION_STEP: Ty = Ty::Obj(&[
    nullish("id", Int),
    opt(
        "inline",
        Ty::Obj(&[
            nullish("description", Str),
            nullish("testData", Str),
            nullish("expectedResult", Str),
            nullish("actualResult", Str),
            nullish("testDataRowNumber", Int),
            opt("status", REF),
        ]),
    ),
]);

/// An offset page of `item`: `{"next"?,"startAt","maxResults","total"?,"isLast"?,"values"?}`.
const fn offset_page(item: &'static Ty) -> [F; 6] {
    [
        nullish("next", Str),
        req("startAt", Int),
        req("maxResults", Int),
        opt("total", Int),
        opt("isLast", Bool),
        opt("values", Ty::Arr(item)),
    ]
}

/// A NextGen page of `item`: `{"next"?,"nextStartAtId","limit","values"?}`.
const fn cursor_page(item: &'static Ty) -> [F; 4] {
    [
        nullish("next", Str),
        nullable("nextStartAtId", Int),
        req("limit", Int),
        opt("values", Ty::Arr(item)),
    ]
}

const ANY_ITEM: Ty = Ty::Obj(&[]);
const FOLDERS: [F; 6] = offset_page(&FOLDER);
const STATUSES: [F; 6] = offset_page(&STATUS);
const PRIORITIES: [F; 6] = offset_page(&PRIORITY);
const OFFSET_PAGE: [F; 6] = offset_page(&ANY_ITEM);
const TEST_STEPS: [F; 6] = offset_page(&TEST_STEP);
const EXECUTION_STEPS: [F; 6] = offset_page(&EXECUTION_STEP);
const TEST_CASES: [F; 4] = cursor_page(&TEST_CASE);
const TEST_CYCLES: [F; 4] = cursor_page(&TEST_CYCLE);
const TEST_EXECUTIONS: [F; 4] = cursor_page(&TEST_EXECUTION);
/// The body of a 4xx other than 401: `{"errorCode","message"}`.
const API_ERROR: Ty = Ty::Obj(&[req("errorCode", Int), req("message", Str)]);
/// `{"errorCode","message"}`, or a 401's `{"error"}`.
const ERROR: Ty = Ty::Obj(&[
    opt("errorCode", Int),
    opt("message", Str),
    opt("error", Str),
]);

/// Decodes a fixture with the client's model of its shape.
type Decode = fn(&str) -> Result<(), String>;

/// Every response shape the client reads: fixture name, schema, and the
/// client's decoding of it.
fn shapes() -> Vec<(&'static str, Ty, Decode)> {
    fn de<T: serde::de::DeserializeOwned>(text: &str) -> Result<(), String> {
        serde_json::from_str::<T>(text)
            .map(drop)
            .map_err(|e| e.to_string())
    }
    vec![
        ("project", PROJECT, de::<Project>),
        ("folders", Ty::Obj(&FOLDERS), de::<Page<Folder>>),
        ("statuses", Ty::Obj(&STATUSES), de::<Page<Status>>),
        ("priorities", Ty::Obj(&PRIORITIES), de::<Page<Priority>>),
        ("offset_page", Ty::Obj(&OFFSET_PAGE), de::<Page<Value>>),
        (
            "test_cases_nextgen",
            Ty::Obj(&TEST_CASES),
            de::<CursorPage<TestCase>>,
        ),
        ("test_steps", Ty::Obj(&TEST_STEPS), de::<Page<TestStep>>),
        ("test_script", TEST_SCRIPT, de::<TestScript>),
        (
            "test_cycles_nextgen",
            Ty::Obj(&TEST_CYCLES),
            de::<CursorPage<TestCycle>>,
        ),
        (
            "test_executions_nextgen",
            Ty::Obj(&TEST_EXECUTIONS),
            de::<CursorPage<TestExecution>>,
        ),
        (
            "execution_steps",
            Ty::Obj(&EXECUTION_STEPS),
            de::<Page<ExecutionStep>>,
        ),
        ("error", ERROR, de::<ErrorBody>),
    ]
}

/// What in `value` breaks `ty`, as `path: problem` lines.
fn violations(value: &Value, ty: Ty) -> Vec<String> {
    let mut out = Vec::new();
    check(value, ty, "$", &mut out);
    out
}

fn check(value: &Value, ty: Ty, at: &str, out: &mut Vec<String>) {
    let ok = match ty {
        Ty::Int => value.is_i64() || value.is_u64(),
        Ty::Str => value.is_string(),
        Ty::Bool => value.is_boolean(),
        Ty::Enum(allowed) => value.as_str().is_some_and(|s| allowed.contains(&s)),
        Ty::Map => value.is_object(),
        Ty::Arr(item) => match value.as_array() {
            Some(items) => {
                for (i, v) in items.iter().enumerate() {
                    check(v, *item, &format!("{at}[{i}]"), out);
                }
                true
            }
            None => false,
        },
        Ty::Obj(fields) => match value.as_object() {
            Some(object) => {
                for f in fields {
                    let here = format!("{at}.{}", f.name);
                    match object.get(f.name) {
                        None if f.required => out.push(format!("{here}: missing")),
                        None => {}
                        Some(Value::Null) if !f.nullable => out.push(format!("{here}: null")),
                        Some(Value::Null) => {}
                        Some(v) => check(v, f.ty, &here, out),
                    }
                }
                true
            }
            None => false,
        },
    };
    if !ok {
        out.push(format!("{at}: wrong type, got {value}"));
    }
}

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/it/fixtures/zephyr")
}

fn fixture(name: &str) -> String {
    let path = fixtures().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn every_fixture_decodes_and_satisfies_the_spec() {
    let mut expected = BTreeSet::new();
    for (shape, schema, decode) in shapes() {
        for size in ["min", "max"] {
            let name = format!("{shape}.{size}.json");
            let text = fixture(&name);
            decode(&text).unwrap_or_else(|e| panic!("{name} doesn't decode: {e}"));
            let value: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(violations(&value, schema), Vec::<String>::new(), "{name}");
            expected.insert(name);
        }
    }
    let present: BTreeSet<String> = std::fs::read_dir(fixtures())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        present, expected,
        "a fixture without a shape, or a shape without fixtures"
    );
}

#[test]
fn the_fixtures_odd_fields_read_as_the_tool_needs_them() {
    let cases: CursorPage<TestCase> =
        serde_json::from_str(&fixture("test_cases_nextgen.max.json")).unwrap();
    assert_eq!(cases.next_start_at_id, Some(3));
    let owners: Vec<Option<&str>> = cases
        .values
        .iter()
        .map(|c| c.owner.as_ref().map(|o| o.account_id.as_str()))
        .collect();
    assert_eq!(owners, [Some("5b10a2844c20165700ede21g"), None]);
    let min: CursorPage<TestCase> =
        serde_json::from_str(&fixture("test_cases_nextgen.min.json")).unwrap();
    assert_eq!(
        (min.next_start_at_id, min.values[0].owner.as_ref()),
        (None, None)
    );
    let execs: CursorPage<TestExecution> =
        serde_json::from_str(&fixture("test_executions_nextgen.max.json")).unwrap();
    let cycles: Vec<Option<u64>> = execs
        .values
        .iter()
        .map(|e| e.test_cycle.as_ref().map(|c| c.id))
        .collect();
    assert_eq!(
        cycles,
        [Some(10010), Some(10011), None],
        "an id from the link"
    );
    assert_eq!(execs.values[1].test_case.id, None);
    assert_eq!(execs.values[1].case_version().unwrap().key, "PROJ-T2");
    let min: CursorPage<TestExecution> =
        serde_json::from_str(&fixture("test_executions_nextgen.min.json")).unwrap();
    assert_eq!(min.values[0].test_cycle, None);
    let folders: Page<Folder> = serde_json::from_str(&fixture("folders.max.json")).unwrap();
    assert_eq!(folders.values[1].parent_id, Some(100_006));
    let steps: Page<TestStep> = serde_json::from_str(&fixture("test_steps.min.json")).unwrap();
    assert!(matches!(&steps.values[1], TestStep::Call(c) if c.parameters.is_empty()));
    let page: Page<Value> = serde_json::from_str(&fixture("offset_page.max.json")).unwrap();
    assert_eq!((page.total, page.is_last), (Some(1200), Some(false)));
    for name in ["error.min.json", "error.max.json"] {
        let e: ErrorBody = serde_json::from_str(&fixture(name)).unwrap();
        assert!(e.message.is_some() || e.error.is_some(), "{name}");
    }
}

/// The mock's answer to `path`, with its status.
fn get(m: &Mocks, path: &str) -> (u16, Value) {
    let url = format!("{}{path}", m.m.zephyr_url());
    let r = call(&m.agent, "GET", &url, Some(m.m.zephyr_token()), None);
    (r.status, r.json())
}

/// Every Zephyr mock endpoint the client reads, with the schema of its answer.
fn endpoints(m: &Mocks) -> Vec<(String, Ty)> {
    let src = m.m.source();
    let fixed: [(&str, Ty); 9] = [
        ("/projects/PROJ", PROJECT),
        ("/testcases?maxResults=1", Ty::Obj(&OFFSET_PAGE)),
        ("/testexecutions?maxResults=1", Ty::Obj(&OFFSET_PAGE)),
        ("/priorities?maxResults=1000", Ty::Obj(&PRIORITIES)),
        ("/testcases/nextgen?limit=1000", Ty::Obj(&TEST_CASES)),
        ("/testcases/nextgen?limit=7", Ty::Obj(&TEST_CASES)),
        ("/testcycles/nextgen?limit=1000", Ty::Obj(&TEST_CYCLES)),
        (
            "/testexecutions/nextgen?limit=1000",
            Ty::Obj(&TEST_EXECUTIONS),
        ),
        ("/testexecutions/nextgen?limit=5", Ty::Obj(&TEST_EXECUTIONS)),
    ];
    let mut out: Vec<(String, Ty)> = fixed
        .into_iter()
        .map(|(path, ty)| {
            let glue = if path.contains('?') { '&' } else { '?' };
            (format!("{path}{glue}projectKey=PROJ"), ty)
        })
        .collect();
    for t in ["TEST_CASE", "TEST_CYCLE"] {
        out.push((
            format!("/folders?projectKey=PROJ&folderType={t}&maxResults=1000"),
            Ty::Obj(&FOLDERS),
        ));
    }
    for t in ["TEST_CASE", "TEST_CYCLE", "TEST_EXECUTION"] {
        out.push((
            format!("/statuses?projectKey=PROJ&statusType={t}&maxResults=1000"),
            Ty::Obj(&STATUSES),
        ));
    }
    for case in &src.cases {
        let path = match case.script {
            Script::Steps(_) => (
                format!("/testcases/{}/teststeps?maxResults=100", case.key),
                Ty::Obj(&TEST_STEPS),
            ),
            _ => (format!("/testcases/{}/testscript", case.key), TEST_SCRIPT),
        };
        out.push(path);
    }
    for e in src
        .executions
        .iter()
        .filter(|e| !e.step_results.is_empty())
        .take(10)
    {
        out.push((
            format!("/testexecutions/{}/teststeps?maxResults=100", e.id),
            Ty::Obj(&EXECUTION_STEPS),
        ));
    }
    out
}

#[test]
fn every_zephyr_mock_endpoint_satisfies_the_spec() {
    // The default dataset, odd records (null account ids, links without
    // ids, ad-hoc executions) included.
    let m = Mocks::start(MockOptions::seeded(31));
    for (path, schema) in endpoints(&m) {
        let (status, body) = get(&m, &path);
        assert_eq!(status, 200, "{path}: {body}");
        assert_eq!(violations(&body, schema), Vec::<String>::new(), "{path}");
    }
    let steps =
        m.m.source()
            .cases
            .iter()
            .find(|c| matches!(c.script, Script::Steps(_)))
            .unwrap();
    for path in [
        "/testcases/PROJ-T9999".to_string(),
        format!("/testcases/{}/testscript", steps.key),
        "/testcases?startAt=1000001".into(),
        "/testexecutions/nextgen?limit=1001".into(),
    ] {
        let (status, body) = get(&m, &path);
        assert!(status >= 400, "{path}");
        let errs = violations(&body, API_ERROR);
        assert_eq!(errs, Vec::<String>::new(), "{path}");
    }
}

#[test]
fn the_schema_check_catches_records_that_break_the_spec() {
    let mut o = MockOptions::seeded(32);
    o.unreadable_records = 1;
    let m = Mocks::start(o);
    let mut found = Vec::new();
    for (path, schema) in endpoints(&m) {
        found.extend(
            violations(&get(&m, &path).1, schema)
                .into_iter()
                .map(|v| format!("{path} {v}")),
        );
    }
    let fields: BTreeSet<&str> = found.iter().filter_map(|v| v.rsplit('.').next()).collect();
    assert!(fields.contains("name: null"), "{found:?}");
    assert!(fields.contains("status: missing"), "{found:?}");
    assert!(fields.contains("testExecutionStatus: missing"), "{found:?}");
}
