use super::*;
use crate::zephyr::examples::{CASE, CYCLE, EXECUTION, STEPS_PAGE};
use serde_json::json;

fn page<T>(start_at: u64, max_results: u64, is_last: Option<bool>, values: Vec<T>) -> Page<T> {
    Page {
        next: None,
        start_at,
        max_results,
        total: None,
        is_last,
        values,
    }
}

#[test]
fn projects_page_from_the_contract() {
    let text = r#"{"startAt":0,"maxResults":10,"total":1,"isLast":true,"values":[{"id":10005,"jiraProjectId":10000,"key":"PROJ","enabled":true}]}"#;
    let page: Page<Project> = serde_json::from_str(text).unwrap();
    assert_eq!(page.total, Some(1));
    assert_eq!(page.is_last, Some(true));
    assert_eq!(
        page.values,
        vec![Project {
            id: 10005,
            jira_project_id: 10000,
            key: "PROJ".into(),
            enabled: true
        }]
    );
    assert!(!page.has_more());
    let back: serde_json::Value = serde_json::to_value(&page).unwrap();
    assert_eq!(
        back,
        serde_json::from_str::<serde_json::Value>(text).unwrap()
    );
}

#[test]
fn page_needs_only_start_at_and_max_results() {
    let page: Page<Project> = serde_json::from_str(r#"{"startAt":0,"maxResults":10}"#).unwrap();
    assert!(page.values.is_empty());
    assert_eq!(page.next_request(), None);
    let null_values: Page<Project> =
        serde_json::from_str(r#"{"startAt":0,"maxResults":10,"values":null}"#).unwrap();
    assert!(null_values.values.is_empty());
    let err = serde_json::from_str::<Page<Project>>(r#"{"startAt":0,"values":[]}"#).unwrap_err();
    assert!(err.to_string().contains("maxResults"), "{err}");
}

#[test]
fn paging_continues_on_a_full_page_from_the_returned_size() {
    // Asked for 1000, the server lowered it to 100.
    let p = page(200, 100, None, vec![0; 100]);
    assert!(p.has_more());
    assert_eq!(
        p.next_request(),
        Some(PageRequest {
            start_at: 300,
            max_results: 100
        })
    );
    let explicit = page(0, 2, Some(false), vec![1, 2]);
    assert_eq!(explicit.next_request().map(|r| r.start_at), Some(2));
}

#[test]
fn paging_stops_on_is_last_short_or_empty_pages() {
    assert_eq!(page(0, 2, Some(true), vec![1, 2]).next_request(), None);
    assert_eq!(page(0, 10, None, vec![1, 2, 3]).next_request(), None);
    assert_eq!(page::<u8>(10, 10, Some(false), vec![]).next_request(), None);
}

#[test]
fn paging_skips_past_extra_items_and_never_overflows() {
    let generous = page(0, 2, None, vec![1, 2, 3]);
    assert_eq!(generous.next_request().map(|r| r.start_at), Some(3));
    let zero = page(0, 0, None, vec![1]);
    assert_eq!(
        zero.next_request(),
        Some(PageRequest {
            start_at: 1,
            max_results: 1
        })
    );
    assert_eq!(page(u64::MAX - 1, 2, None, vec![1, 2]).next_request(), None);
}

#[test]
fn page_request_query_and_minimum_size() {
    let first = PageRequest::first(0);
    assert_eq!(first.max_results, 1);
    assert_eq!(
        PageRequest::first(50).query(),
        [
            ("startAt", "0".to_string()),
            ("maxResults", "50".to_string())
        ]
    );
}

#[test]
fn folder_from_the_contract_and_its_required_parent_id() {
    let text = r#"{"id":100006,"parentId":null,"name":"Login","index":0,"folderType":"TEST_CASE","project":{"id":10005,"self":"…/projects/10005"}}"#;
    let folder: Folder = serde_json::from_str(text).unwrap();
    assert_eq!(folder.parent_id, None);
    assert_eq!(folder.folder_type, FolderType::TestCase);
    assert_eq!(folder.project.as_ref().map(|p| p.id), Some(10005));
    let back = serde_json::to_value(&folder).unwrap();
    assert_eq!(
        back,
        serde_json::from_str::<serde_json::Value>(text).unwrap()
    );

    let missing = r#"{"id":1,"name":"x","index":0,"folderType":"TEST_CASE"}"#;
    let err = serde_json::from_str::<Folder>(missing).unwrap_err();
    assert!(err.to_string().contains("parentId"), "{err}");
    let cycle: Folder = serde_json::from_str(
        r#"{"id":2,"parentId":1,"name":"y","index":3,"folderType":"TEST_CYCLE","extra":1}"#,
    )
    .unwrap();
    assert_eq!(
        (cycle.parent_id, cycle.folder_type),
        (Some(1), FolderType::TestCycle)
    );
}

#[test]
fn test_case_from_the_contract() {
    let case: TestCase = serde_json::from_str(CASE).unwrap();
    assert_eq!(case.key, "PROJ-T1");
    assert_eq!(case.objective.as_deref(), Some("Ensure pump works"));
    assert_eq!(case.estimated_time, Some(138_000));
    assert_eq!(case.labels, ["Regression"]);
    assert_eq!(case.priority.id, 10002);
    assert_eq!(case.status.id, 10000);
    assert_eq!(case.folder.as_ref().map(|f| f.id), Some(100_006));
    assert_eq!(
        case.owner.as_ref().map(|o| o.account_id.as_str()),
        Some("5b10a2844c20165700ede21g")
    );
    assert_eq!(case.custom_fields["Build Number"], json!(20));
    assert_eq!(case.custom_fields["Category"], json!(["Perf"]));
    assert_eq!(case.script_location(), ScriptLocation::Steps);
    let again: TestCase = serde_json::from_value(serde_json::to_value(&case).unwrap()).unwrap();
    assert_eq!(again, case);
}

#[test]
fn test_case_tolerates_nulls_and_requires_its_required_fields() {
    let minimal = json!({"id":2,"key":"PROJ-T2","name":"n","project":{"id":1},
        "priority":{"id":3},"status":{"id":4},"folder":null,"owner":null,"labels":null,
        "customFields":null,"component":null,"testScript":null,"somethingNew":{"a":1}});
    let case: TestCase = serde_json::from_value(minimal.clone()).unwrap();
    assert_eq!(case.folder, None);
    assert!(case.labels.is_empty() && case.custom_fields.is_empty());
    assert_eq!(case.script_location(), ScriptLocation::None);
    for field in ["id", "key", "name", "project", "priority", "status"] {
        let mut broken = minimal.clone();
        broken.as_object_mut().unwrap().remove(field);
        let err = serde_json::from_value::<TestCase>(broken).unwrap_err();
        assert!(err.to_string().contains(field), "{field}: {err}");
    }
}

#[test]
fn script_location_follows_the_link_suffix() {
    let mut case: TestCase = serde_json::from_str(CASE).unwrap();
    let mut with = |url: Option<&str>| {
        case.test_script = Some(SelfLink {
            self_url: url.map(String::from),
        });
        case.script_location()
    };
    assert_eq!(
        with(Some("https://x/v2/testCases/PROJ-T1/testscript")),
        ScriptLocation::Script
    );
    assert_eq!(
        with(Some("https://x/v2/testcases/PROJ-T1/teststeps/?a=1")),
        ScriptLocation::Steps
    );
    assert_eq!(
        with(Some("https://x/v2/testcases/PROJ-T1/other")),
        ScriptLocation::Unknown
    );
    assert_eq!(with(None), ScriptLocation::Unknown);
}

#[test]
fn test_steps_page_from_the_contract() {
    let text = STEPS_PAGE;
    let page: Page<TestStep> = serde_json::from_str(text).unwrap();
    let TestStep::Inline(inline) = &page.values[0] else {
        panic!("first step is inline")
    };
    assert_eq!(inline.test_data.as_deref(), Some("user=a"));
    assert_eq!(inline.expected_result.as_deref(), Some("Dashboard shown"));
    let TestStep::Call(call) = &page.values[1] else {
        panic!("second step is a call")
    };
    assert_eq!(call.test_case_key, "PROJ-T123");
    assert_eq!(call.parameters[0].value, Some(json!("admin")));
    let back = serde_json::to_value(&page).unwrap();
    assert_eq!(
        back,
        serde_json::from_str::<serde_json::Value>(text).unwrap()
    );
}

#[test]
fn a_step_with_neither_or_both_shapes_is_an_error() {
    let neither = serde_json::from_str::<TestStep>(r#"{"other":{}}"#).unwrap_err();
    assert!(neither.to_string().contains("neither"), "{neither}");
    let both = serde_json::from_str::<TestStep>(
        r#"{"inline":{"description":"a"},"testCase":{"testCaseKey":"P-T1"}}"#,
    )
    .unwrap_err();
    assert!(both.to_string().contains("both"), "{both}");
    let null_other: TestStep =
        serde_json::from_str(r#"{"inline":{"description":"a"},"testCase":null}"#).unwrap();
    assert!(matches!(null_other, TestStep::Inline(_)));
    // A whole page fails rather than silently losing the odd step.
    let page = r#"{"startAt":0,"maxResults":100,"values":[{"inline":{}},{}]}"#;
    assert!(serde_json::from_str::<Page<TestStep>>(page).is_err());
}

#[test]
fn test_scripts_plain_bdd_and_unknown() {
    let plain: TestScript =
        serde_json::from_str(r#"{"id":7,"type":"plain","text":"Attempt to login"}"#).unwrap();
    assert_eq!(plain.kind, ScriptType::Plain);
    assert_eq!(plain.text, "Attempt to login");
    assert_eq!(
        serde_json::to_value(&plain).unwrap(),
        json!({"id":7,"type":"plain","text":"Attempt to login"})
    );
    let bdd: TestScript = serde_json::from_str(r#"{"type":"BDD","text":"Given x"}"#).unwrap();
    assert_eq!(bdd.kind, ScriptType::Bdd);
    let err = serde_json::from_str::<TestScript>(r#"{"type":"steps","text":""}"#).unwrap_err();
    assert!(err.to_string().contains("steps"), "{err}");
}

#[test]
fn test_cycle_from_the_contract() {
    let text = CYCLE;
    let cycle: TestCycle = serde_json::from_str(text).unwrap();
    assert_eq!(cycle.key, "PROJ-R40");
    assert_eq!(cycle.status.id, 10020);
    assert_eq!(cycle.folder.as_ref().map(|f| f.id), Some(100_010));
    assert_eq!(
        cycle.planned_end_date.as_deref(),
        Some("2018-05-20T13:15:13Z")
    );
    let back = serde_json::to_value(&cycle).unwrap();
    let mut want: serde_json::Value = serde_json::from_str(text).unwrap();
    want["customFields"] = json!({});
    assert_eq!(back, want);
}

#[test]
fn test_execution_from_the_contract() {
    let exec: TestExecution = serde_json::from_str(EXECUTION).unwrap();
    assert_eq!(exec.test_execution_status.id, 10030);
    assert_eq!(exec.execution_time, Some(120_000));
    assert_eq!(exec.comment.as_deref(), Some("Login failed"));
    assert_eq!(exec.test_cycle.as_ref().map(|c| c.id), Some(10010));
    assert_eq!(
        exec.case_version(),
        Some(CaseVersion {
            key: "PROJ-T1".into(),
            version: Some(1)
        })
    );
    let back = serde_json::to_value(&exec).unwrap();
    assert_eq!(
        back,
        serde_json::from_str::<serde_json::Value>(EXECUTION).unwrap()
    );
    for field in ["id", "project", "testCase", "testExecutionStatus"] {
        let mut broken: serde_json::Value = serde_json::from_str(EXECUTION).unwrap();
        broken.as_object_mut().unwrap().remove(field);
        let err = serde_json::from_value::<TestExecution>(broken).unwrap_err();
        assert!(err.to_string().contains(field), "{field}: {err}");
    }
}

#[test]
fn case_version_links() {
    let parse = parse_case_version_link;
    let v = |key: &str, version| {
        Some(CaseVersion {
            key: key.into(),
            version,
        })
    };
    assert_eq!(
        parse("https://api.zephyrscale.smartbear.com/v2/testcases/PROJ-T1/versions/12"),
        v("PROJ-T1", Some(12))
    );
    assert_eq!(
        parse("…/testCases/A-B-T9/Versions/3/"),
        v("A-B-T9", Some(3))
    );
    assert_eq!(parse("…/testcases/PROJ-T1?x=1"), v("PROJ-T1", None));
    assert_eq!(parse("…/testcases/PROJ-T1/versions/x"), None);
    assert_eq!(parse("…/testcases/PROJ-T1/versions"), None);
    assert_eq!(parse("…/testcases/PROJ-T1/versions/1/steps"), None);
    assert_eq!(parse("…/testcases/PROJ-1/versions/1"), None);
    assert_eq!(parse("…/testcycles/10010"), None);
    assert!(is_case_key("PROJ-T123") && !is_case_key("-T1") && !is_case_key("PROJ-T"));
}

#[test]
fn execution_step_results() {
    let text = r#"{"startAt":0,"maxResults":100,"values":[{"inline":{"description":"Login","testData":"u","expectedResult":"ok","actualResult":"Error page","testDataRowNumber":1,"status":{"id":10030,"self":"…"},"reflectRef":"x"}},{}]}"#;
    let page: Page<ExecutionStep> = serde_json::from_str(text).unwrap();
    let first = page.values[0].inline.as_ref().unwrap();
    assert_eq!(first.actual_result.as_deref(), Some("Error page"));
    assert_eq!(first.status.as_ref().map(|s| s.id), Some(10030));
    assert_eq!(first.test_data_row_number, Some(1));
    assert_eq!(page.values[1], ExecutionStep::default());
}

#[test]
fn status_priority_and_error_bodies() {
    let text = r##"{"id":10030,"project":{"id":10005,"self":"…"},"name":"Fail","index":3,"color":"#FF0000","archived":false,"default":false}"##;
    let status: Status = serde_json::from_str(text).unwrap();
    assert_eq!((status.id, status.name.as_str()), (10030, "Fail"));
    assert_eq!(status.archived, Some(false));
    assert_eq!(
        serde_json::to_value(&status).unwrap(),
        serde_json::from_str::<serde_json::Value>(text).unwrap()
    );
    let priority: Priority = serde_json::from_str(
        r##"{"id":10002,"project":{"id":10005,"self":"…"},"name":"Normal","index":1,"color":"#000","default":true}"##,
    )
    .unwrap();
    assert_eq!(priority.name, "Normal");
    assert!(serde_json::from_str::<Status>(r#"{"id":1}"#).is_err());

    let err: ErrorBody =
        serde_json::from_str(r#"{"errorCode":400,"message":"projectKey must not be null"}"#)
            .unwrap();
    assert_eq!(err.error_code, Some(400));
    let gateway: ErrorBody = serde_json::from_str(r#"{"message":"Unauthorized"}"#).unwrap();
    assert_eq!(gateway.message.as_deref(), Some("Unauthorized"));
}

#[test]
fn step_ids_are_read_where_the_spec_puts_them_and_may_be_null() {
    let text = r#"{"startAt":0,"maxResults":100,"values":[
        {"id":41,"inline":{"description":"Login"}},
        {"id":null,"inline":{"description":"Logout"}},
        {"id":43,"testCase":{"testCaseKey":"PROJ-T9"}}]}"#;
    let page: Page<TestStep> = serde_json::from_str(text).unwrap();
    let ids: Vec<Option<u64>> = page
        .values
        .iter()
        .map(|s| match s {
            TestStep::Inline(i) => i.id,
            TestStep::Call(_) => None,
        })
        .collect();
    assert_eq!(ids, vec![Some(41), None, None]);
    // Written back at the item, not inside `inline`.
    let back = serde_json::to_value(&page.values[0]).unwrap();
    assert_eq!(back["id"], 41);
    assert!(back["inline"].get("id").is_none(), "{back}");

    let results: Page<ExecutionStep> = serde_json::from_str(
        r#"{"startAt":0,"maxResults":100,"values":[{"id":7,"inline":{}},{"id":null}]}"#,
    )
    .unwrap();
    let ids: Vec<Option<u64>> = results.values.iter().map(|r| r.id).collect();
    assert_eq!(ids, vec![Some(7), None]);
}
