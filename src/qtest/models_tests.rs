use super::*;
use serde_json::{Value, json};

fn value(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

#[test]
fn fields_from_the_contract() {
    let text = r#"[{"id":8001,"label":"Priority","original_name":"Priority","system_field":true,"required":false,"multiple":false,"data_type":3,
  "allowed_values":[{"value":712,"label":"High","order":1,"is_active":true},{"value":713,"label":"Medium","is_default":true},{"value":714,"label":"Low"}]},
 {"id":8002,"label":"Status","original_name":"Status","system_field":true,"allowed_values":[{"value":201,"label":"New","is_default":true}]},
 {"id":8010,"label":"Zephyr Key","system_field":false,"data_type":1,"allowed_values":[]}]"#;
    let fields: Vec<Field> = serde_json::from_str(text).unwrap();
    assert_eq!(fields.len(), 3);
    assert_eq!(fields[0].allowed_values[0].value, "712");
    assert_eq!(fields[0].allowed_values[1].is_default, Some(true));
    assert_eq!(fields[0].data_type, Some(3));
    assert_eq!(fields[1].data_type, None);
    assert!(!fields[2].system_field && fields[2].allowed_values.is_empty());
    let string_value: AllowedValue =
        serde_json::from_value(json!({"value":"712","label":"High"})).unwrap();
    assert_eq!(string_value.value, "712");
    assert!(serde_json::from_value::<AllowedValue>(json!({"value":null,"label":"x"})).is_err());
}

#[test]
fn execution_statuses_from_the_contract() {
    let text = r##"[{"id":601,"name":"Passed","color":"#6cc644","active":true},{"id":602,"name":"Failed"},{"id":603,"name":"Incomplete"},{"id":604,"name":"Blocked"},{"id":605,"name":"Unexecuted","is_default":true}]"##;
    let statuses: Vec<ExecutionStatus> = serde_json::from_str(text).unwrap();
    assert_eq!(statuses[0].color.as_deref(), Some("#6cc644"));
    assert_eq!(statuses[4].is_default, Some(true));
    assert_eq!(serde_json::to_value(&statuses).unwrap(), value(text));
}

#[test]
fn module_create_body_and_response() {
    let body = NewModule {
        name: "Login".into(),
        description: String::new(),
        parent_id: None,
    };
    assert_eq!(
        serde_json::to_value(&body).unwrap(),
        value(r#"{"name":"Login","description":""}"#)
    );
    let text = r#"{"id":2107619,"pid":"MD-8","name":"Login","order":1,"parent_id":2107600,"description":"","shared":false,"children":[],"links":[{"rel":"self","href":"…/modules/2107619"}]}"#;
    let module: Module = serde_json::from_str(text).unwrap();
    assert_eq!(module.parent_id, Some(2_107_600));
    assert_eq!(module.links[0].rel, "self");
    assert_eq!(serde_json::to_value(&module).unwrap(), value(text));
    let tree: Module = serde_json::from_value(json!({"id":1,"name":"a","children":[
        {"id":2,"name":"b","children":null}]}))
    .unwrap();
    assert_eq!(tree.children[0].id, 2);
}

#[test]
fn test_case_create_body_matches_the_contract() {
    let body = NewTestCase {
        name: "Check pump".into(),
        description: "Ensure pump works".into(),
        precondition: "Pump available".into(),
        parent_id: Some(2_107_619),
        properties: vec![
            PropertyValue {
                field_id: 8001,
                field_value: "712".into(),
            },
            PropertyValue {
                field_id: 8010,
                field_value: "PROJ-T1".into(),
            },
        ],
        test_steps: vec![NewTestStep {
            description: "Login<br>Test data: user=a".into(),
            expected: "Dashboard shown".into(),
            order: 1,
            called_test_case_id: None,
        }],
    };
    let want = r#"{"name":"Check pump","description":"Ensure pump works","precondition":"Pump available","parent_id":2107619,
 "properties":[{"field_id":8001,"field_value":"712"},{"field_id":8010,"field_value":"PROJ-T1"}],
 "test_steps":[{"description":"Login<br>Test data: user=a","expected":"Dashboard shown","order":1}]}"#;
    assert_eq!(serde_json::to_value(&body).unwrap(), value(want));
}

#[test]
fn test_case_response_from_the_contract() {
    let text = r#"{"id":55001,"pid":"TC-12","name":"Check pump","parent_id":2107619,"test_case_version_id":88001,"version":"0.1",
 "created_date":"2024-05-01T10:00:00+00:00","web_url":"https://acme.qtestnet.com/p/12345/portal/project#tab=testdesign&object=1&id=55001",
 "properties":[{"field_id":8001,"field_name":"Priority","field_value":"712","field_value_name":"High"}],"test_steps":[{"id":990,"description":"…","expected":"…","order":1}],"links":[{"rel":"self","href":"…"}]}"#;
    let case: TestCase = serde_json::from_str(text).unwrap();
    assert_eq!(case.test_case_version_id, Some(88001));
    assert_eq!(case.version.as_deref(), Some("0.1"));
    assert_eq!(case.property_value(8001), Some("712"));
    assert_eq!(case.property_value(9999), None);
    assert_eq!(case.test_steps[0].id, Some(990));
    assert_eq!(serde_json::to_value(&case).unwrap(), value(text));
    let numeric: TestCase = serde_json::from_value(json!({"id":1,"name":"n","version":1,
        "properties":[{"field_id":1,"field_value":5}],"test_steps":null}))
    .unwrap();
    assert_eq!(numeric.version.as_deref(), Some("1"));
    assert_eq!(numeric.property_value(1), Some("5"));
    assert!(serde_json::from_value::<TestCase>(json!({"name":"n"})).is_err());
}

#[test]
fn test_cycle_body_response_and_parent_query() {
    let body = NewTestCycle {
        name: "Sprint 1".into(),
        description: "Regression".into(),
    };
    assert_eq!(
        serde_json::to_value(&body).unwrap(),
        json!({"name":"Sprint 1","description":"Regression"})
    );
    let text = r#"{"id":67890,"pid":"CL-416","name":"Sprint 1","description":"d","target_release_id":null,"web_url":"…",
        "test-cycles":[{"id":67891,"name":"Week 1","test-cycles":[{"id":67892,"name":"Smoke"}]}],
        "test-suites":[{"id":5,"pid":"TS-1","name":"Suite"}],"links":[]}"#;
    let cycle: TestCycle = serde_json::from_str(text).unwrap();
    assert_eq!((cycle.id, cycle.target_release_id), (67890, None));
    assert_eq!(cycle.test_cycles[0].test_cycles[0].id, 67892);
    assert_eq!(cycle.test_suites[0].name, "Suite");
    // The spec's keys are hyphenated; underscores are read too.
    let old: TestCycle =
        serde_json::from_value(json!({"id":1,"name":"a","test_cycles":[{"id":2,"name":"b"}]}))
            .unwrap();
    assert_eq!(old.test_cycles[0].id, 2);
    let written = serde_json::to_value(&cycle).unwrap();
    assert!(written.get("test-cycles").is_some() && written.get("test_cycles").is_none());
    assert_eq!(
        CycleParent::Root.query(),
        [("parentId", "0".into()), ("parentType", "root".into())]
    );
    assert_eq!(
        CycleParent::TestCycle(67890).query(),
        [
            ("parentId", "67890".into()),
            ("parentType", "test-cycle".into())
        ]
    );
    assert_eq!(CycleParent::Release(3).query()[1].1, "release");
}

#[test]
fn test_run_body_and_response_from_the_contract() {
    let body = NewTestRun {
        name: "Check pump".into(),
        test_case: IdRef { id: 55001 },
        test_case_version_id: 88001,
        properties: Vec::new(),
    };
    assert_eq!(
        serde_json::to_value(&body).unwrap(),
        value(
            r#"{"name":"Check pump","test_case":{"id":55001},"test_case_version_id":88001,"properties":[]}"#
        )
    );
    let text = r#"{"id":990001,"pid":"TR-5001","name":"Check pump","parent_id":67890,"parent_type":"test-cycle","test_case":{"id":55001},"test_case_version_id":88001,"properties":[{"field_name":"Status","field_value":"605","field_value_name":"Unexecuted","field_id":9}],"links":[]}"#;
    let run: TestRun = serde_json::from_str(text).unwrap();
    assert_eq!(run.test_case, Some(IdRef { id: 55001 }));
    assert_eq!(run.parent_id, Some(67890));
    // The spec spells a run's parent in camelCase.
    let spec: TestRun =
        serde_json::from_value(json!({"id":1,"name":"r","parentId":7,"parentType":"test-cycle"}))
            .unwrap();
    assert_eq!(
        (spec.parent_id, spec.parent_type.as_deref()),
        (Some(7), Some("test-cycle"))
    );
    assert_eq!(
        run.properties[0].field_value_name.as_deref(),
        Some("Unexecuted")
    );
}

#[test]
fn test_log_body_and_response_from_the_contract() {
    let want = r#"{"status":{"id":602},"exe_start_date":"2018-05-20T13:13:13Z","exe_end_date":"2018-05-20T13:15:13Z","note":"Login failed",
 "test_case_version_id":88001,"test_step_logs":[{"test_step_id":990,"status":{"id":602},"actual_result":"Error page","order":1}]}"#;
    let body = NewTestLog {
        status: IdRef { id: 602 },
        exe_start_date: "2018-05-20T13:13:13Z".into(),
        exe_end_date: "2018-05-20T13:15:13Z".into(),
        note: Some("Login failed".into()),
        test_case_version_id: 88001,
        test_step_logs: vec![NewTestStepLog {
            test_step_id: 990,
            status: IdRef { id: 602 },
            actual_result: "Error page".into(),
            order: 1,
            called_test_case_id: None,
            parent_test_step_id: None,
        }],
    };
    assert_eq!(serde_json::to_value(&body).unwrap(), value(want));
    let mut response = value(want);
    response["id"] = json!(770001);
    response["status"] = json!({"id":602,"name":"Failed"});
    response["result_number"] = json!(1);
    response["links"] = json!([]);
    let log: TestLog = serde_json::from_value(response).unwrap();
    assert_eq!(log.status.name.as_deref(), Some("Failed"));
    assert_eq!(log.test_step_logs[0].test_step_id, Some(990));
}

#[test]
fn paged_envelope_and_next_page() {
    let text = r#"{"links":[],"page":1,"page_size":100,"total":1,"items":[{"id":1,"name":"n"}]}"#;
    let page: SearchResponse<TestCase> = serde_json::from_str(text).unwrap();
    assert_eq!(page.items[0].id, 1);
    assert_eq!(page.next_page(), None);
    let full = |page, total| Paged {
        links: vec![],
        page,
        page_size: 2,
        total,
        items: vec![1, 2],
    };
    assert_eq!(full(1, None).next_page(), Some(2));
    assert_eq!(full(1, Some(5)).next_page(), Some(2));
    assert_eq!(full(2, Some(4)).next_page(), None);
    let empty: Paged<u8> = serde_json::from_str(r#"{"items":null}"#).unwrap();
    assert_eq!((empty.page, empty.next_page()), (1, None));
    assert!(is_last_bare_page(19, 20) && !is_last_bare_page(20, 20));
    assert!(is_last_bare_page(0, 0));
}

#[test]
fn search_request_quotes_and_refuses_quotes() {
    let request = SearchRequest::field_equals("test-cases", "Zephyr Key", "PROJ-T1").unwrap();
    assert_eq!(
        serde_json::to_value(&request).unwrap(),
        value(r#"{"object_type":"test-cases","fields":["*"],"query":"'Zephyr Key' = 'PROJ-T1'"}"#)
    );
    assert_eq!(
        SearchRequest::field_equals("test-cases", "Key", "it's"),
        None
    );
}

#[test]
fn oauth_token_is_not_printed() {
    let token: OAuthToken = serde_json::from_str(
        r#"{"access_token":"s3cr3t","token_type":"bearer","expires_in":3599,"scope":"read"}"#,
    )
    .unwrap();
    assert_eq!(token.expires_in, Some(3599));
    let debug = format!("{token:?}");
    assert!(
        !debug.contains("s3cr3t") && debug.contains("***"),
        "{debug}"
    );
}

#[test]
fn error_bodies() {
    let plain: ErrorBody = serde_json::from_str(r#"{"message":"Unauthorized"}"#).unwrap();
    assert_eq!(plain.text(), Some("Unauthorized"));
    let oauth: ErrorBody = serde_json::from_str(r#"{"error":"invalid_token"}"#).unwrap();
    assert_eq!(oauth.text(), Some("invalid_token"));
    assert_eq!(ErrorBody::default().text(), None);
}
