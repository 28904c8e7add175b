//! The qTest mock over real sockets: creates, validation, lookups, paging, search, auth,
//! journal, and many concurrent clients.

use std::collections::HashSet;
use std::time::Duration;

use crate::support::mock::{Mocks, call, small};
use etlpool::mock::MockOptions;
use serde_json::{Value, json};

#[test]
fn creates_answer_with_the_contract_status_and_shape() {
    let m = Mocks::start(small(1));
    let root = m.module("Login", None);
    let child = m.q(
        "POST",
        &format!("/modules?parentId={root}"),
        Some(&json!({"name": "Forms", "description": ""})),
    );
    assert_eq!(
        (child.status, child.json()["parent_id"].as_u64()),
        (201, Some(root))
    );
    assert!(child.json()["pid"].as_str().unwrap().starts_with("MD-"));
    let case = m.case("Check pump", root, "PROJ-T1");
    assert_eq!(
        (case["version"].as_str(), case["parent_id"].as_u64()),
        (Some("0.1"), Some(root))
    );
    assert!(
        case["test_case_version_id"].is_u64() && case["pid"].as_str().unwrap().starts_with("TC-")
    );
    let key = case["properties"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["field_name"] == "Zephyr Key")
        .unwrap()
        .clone();
    assert_eq!(
        (
            key["field_value"].as_str(),
            key["field_value_name"].as_str()
        ),
        (Some("PROJ-T1"), Some("PROJ-T1"))
    );
    let priority = case["properties"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["field_name"] == "Priority")
        .unwrap()
        .clone();
    assert_eq!(
        priority["field_value_name"], "Medium",
        "the default allowed value is filled in"
    );
    let cycle = m.q(
        "POST",
        "/test-cycles?parentId=0&parentType=root",
        Some(&json!({"name": "Sprint 1", "description": "x"})),
    );
    assert_eq!(cycle.status, 201);
    let cycle_id = cycle.json()["id"].as_u64().unwrap();
    let run_body = json!({"name": "Check pump", "properties": [], "test_case": {"id": case["id"]}, "test_case_version_id": case["test_case_version_id"]});
    let run = m.q(
        "POST",
        &format!("/test-runs?parentId={cycle_id}&parentType=test-cycle"),
        Some(&run_body),
    );
    assert_eq!(run.status, 201, "{}", run.text);
    let run = run.json();
    assert_eq!(run["properties"][0]["field_value_name"], "Unexecuted");
    let failed = m.m.qtest_config().status_named("Failed").unwrap().id;
    let step = case["test_steps"][0]["id"].clone();
    let log = json!({"status": {"id": failed}, "exe_start_date": "2018-05-20T13:13:13Z", "exe_end_date": "2018-05-20T13:15:13Z",
        "note": "Login failed", "test_case_version_id": case["test_case_version_id"],
        "test_step_logs": [{"test_step_id": step, "status": {"id": failed}, "actual_result": "Error page", "order": 1}]});
    let created = m.q(
        "POST",
        &format!("/test-runs/{}/test-logs", run["id"]),
        Some(&log),
    );
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.json()["status"]["name"], "Failed");
    let run_now = m
        .q("GET", &format!("/test-runs/{}", run["id"]), None)
        .json();
    assert_eq!(
        run_now["properties"][0]["field_value_name"], "Failed",
        "a run takes the latest log's status"
    );
}

#[test]
fn bodies_are_validated() {
    let m = Mocks::start(small(2));
    let root = m.module("Root", None);
    let status = m.m.qtest_config().statuses[0].id;
    let bad: Vec<(&str, String, Value, u16)> = vec![
        (
            "POST",
            "/modules".into(),
            json!({"description": "no name"}),
            400,
        ),
        (
            "POST",
            "/modules?parentId=1".into(),
            json!({"name": "x"}),
            404,
        ),
        ("POST", "/test-cases".into(), json!({"name": ""}), 400),
        (
            "POST",
            "/test-cases".into(),
            json!({"name": "x", "parent_id": 1}),
            400,
        ),
        (
            "POST",
            "/test-cases".into(),
            json!({"name": "x", "properties": [{"field_id": 1, "field_value": "a"}]}),
            400,
        ),
        (
            "POST",
            "/test-cases".into(),
            json!({"name": "x", "properties": [{"field_id": m.field("Priority"), "field_value": "1"}]}),
            400,
        ),
        (
            "POST",
            "/test-cases".into(),
            json!({"name": "x", "properties": [{"field_id": m.field("Legacy Id"), "field_value": "1"}]}),
            400,
        ),
        ("POST", "/test-cases".into(), json!([1, 2]), 400),
        (
            "POST",
            "/test-cycles?parentId=5&parentType=test-cycle".into(),
            json!({"name": "x"}),
            404,
        ),
        (
            "POST",
            "/test-cycles?parentType=galaxy".into(),
            json!({"name": "x"}),
            400,
        ),
        (
            "POST",
            "/test-runs?parentId=1&parentType=test-cycle".into(),
            json!({"name": "x", "test_case": {"id": 1}}),
            404,
        ),
        (
            "POST",
            "/test-runs/1/test-logs".into(),
            json!({"status": {"id": status}}),
            404,
        ),
        ("PUT", "/test-cases/1/approve".into(), Value::Null, 404),
        ("DELETE", "/test-cases/1".into(), Value::Null, 404),
    ];
    for (method, path, body, status) in bad {
        let r = m.q(method, &path, Some(&body));
        assert_eq!(r.status, status, "{method} {path} {body}: {}", r.text);
        assert!(r.json()["message"].is_string());
    }
    let r = m.q("POST", "/test-cases", None);
    assert_eq!(r.status, 400);
    let case = m.case("x", root, "PROJ-T1");
    let cycle = m
        .q("POST", "/test-cycles", Some(&json!({"name": "c"})))
        .json()["id"]
        .as_u64()
        .unwrap();
    let run_url = format!("/test-runs?parentId={cycle}&parentType=test-cycle");
    let run = m
        .q(
            "POST",
            &run_url,
            Some(&json!({"name": "r", "properties": [], "test_case": {"id": case["id"]}})),
        )
        .json();
    let log = |body: Value| {
        m.q(
            "POST",
            &format!("/test-runs/{}/test-logs", run["id"]),
            Some(&body),
        )
        .status
    };
    let dates =
        json!({"exe_start_date": "2024-01-01T00:00:00Z", "exe_end_date": "2024-01-01T00:01:00Z"});
    let with = |extra: Value| {
        let mut b = dates.clone();
        b.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        b
    };
    assert_eq!(
        log(with(json!({"status": {"id": 1}}))),
        400,
        "unknown status id"
    );
    assert_eq!(
        log(json!({"status": {"id": status}, "exe_start_date": "2024-01-01T00:00:00Z"})),
        400,
        "missing end date"
    );
    assert_eq!(
        log(with(json!({"status": {"id": status}}))),
        400,
        "no approved version and no version id"
    );
    assert_eq!(
        log(with(
            json!({"status": {"id": status}, "test_case_version_id": case["test_case_version_id"]})
        )),
        201
    );
    assert_eq!(m.m.journal().len(), 5, "refused writes are not journaled");
}

#[test]
fn approve_bumps_the_version_and_logs_default_to_it() {
    let m = Mocks::start(small(3));
    let root = m.module("Root", None);
    let case = m.case("x", root, "PROJ-T1");
    let approved = m.q("PUT", &format!("/test-cases/{}/approve", case["id"]), None);
    assert_eq!(approved.status, 200);
    let approved = approved.json();
    assert_eq!(approved["version"], "1.0");
    assert_ne!(
        approved["test_case_version_id"],
        case["test_case_version_id"]
    );
    let again = m
        .q("PUT", &format!("/test-cases/{}/approve", case["id"]), None)
        .json();
    assert_eq!(again["version"], "2.0");
}

#[test]
fn lookups_by_parent_name_and_expand() {
    let m = Mocks::start(small(4));
    let a = m.module("Login", None);
    let b = m.module("Login", Some(a));
    let _c = m.module("Logout", Some(a));
    let roots = m.q("GET", "/modules", None).json();
    assert_eq!(roots.as_array().unwrap().len(), 1);
    let children = m
        .q("GET", &format!("/modules?parentId={a}&search=Login"), None)
        .json();
    assert_eq!(
        children
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["id"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        vec![b]
    );
    let tree = m.q("GET", "/modules?expand=descendants", None).json();
    assert_eq!(tree[0]["children"].as_array().unwrap().len(), 2);
    assert_eq!(m.q("GET", "/modules?parentId=7", None).status, 404);
    let parent = m
        .q("POST", "/test-cycles", Some(&json!({"name": "Release 1"})))
        .json()["id"]
        .as_u64()
        .unwrap();
    let child = m.q(
        "POST",
        &format!("/test-cycles?parentId={parent}&parentType=test-cycle"),
        Some(&json!({"name": "Sprint"})),
    );
    assert_eq!(child.status, 201);
    let under = m
        .q(
            "GET",
            &format!("/test-cycles?parentId={parent}&parentType=test-cycle"),
            None,
        )
        .json();
    assert_eq!(under[0]["name"], "Sprint");
    let roots = m
        .q("GET", "/test-cycles?parentId=0&parentType=root", None)
        .json();
    // Beside the seeded release, the one created here.
    assert_eq!(
        crate::support::mock::names(&roots),
        ["Release 2023.4", "Release 1"].map(String::from).into()
    );
    let fields = m.q("GET", "/settings/test-cases/fields", None).json();
    assert!(
        fields
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["label"] == "Zephyr Key")
    );
    assert!(
        !fields
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["label"] == "Legacy Id")
    );
    let all = m
        .q(
            "GET",
            "/settings/test-cases/fields?includeInactive=true",
            None,
        )
        .json();
    assert_eq!(
        all.as_array().unwrap().len(),
        fields.as_array().unwrap().len() + 1
    );
    let statuses = m.q("GET", "/test-runs/execution-statuses", None).json();
    let expected = ["Passed", "Failed", "Incomplete", "Blocked", "Unexecuted"];
    assert_eq!(
        crate::support::mock::names(&statuses),
        expected.map(String::from).into()
    );
}

#[test]
fn test_cases_page_as_a_bare_array_and_runs_and_logs_in_an_envelope() {
    let m = Mocks::start(small(5));
    let root = m.module("Root", None);
    let ids: Vec<u64> = (0..45)
        .map(|i| {
            m.case(&format!("c{i}"), root, &format!("PROJ-T{i}"))["id"]
                .as_u64()
                .unwrap()
        })
        .collect();
    let page = |p: usize, s: usize| {
        m.q(
            "GET",
            &format!("/test-cases?parentId={root}&page={p}&size={s}"),
            None,
        )
        .json()
    };
    let sizes: Vec<usize> = (1..=4)
        .map(|p| page(p, 20).as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, vec![20, 20, 5, 0]);
    assert_eq!(
        m.q("GET", "/test-cases", None)
            .json()
            .as_array()
            .unwrap()
            .len(),
        20,
        "default size 20"
    );
    let first = page(1, 1);
    assert_eq!(first[0]["id"].as_u64(), Some(ids[0]));
    // The spec's defaults: properties unless expandProps=false, no steps unless expandSteps=true.
    assert!(first[0].get("test_steps").is_none() && first[0]["properties"].is_array());
    let bare = m
        .q("GET", "/test-cases?page=1&size=1&expandProps=false", None)
        .json();
    assert!(bare[0].get("properties").is_none());
    let expanded = m
        .q(
            "GET",
            "/test-cases?page=1&size=1&expandSteps=true&expandProps=true",
            None,
        )
        .json();
    assert!(expanded[0]["test_steps"].is_array() && expanded[0]["properties"].is_array());
    assert_eq!(m.q("GET", "/test-cases?size=1000", None).status, 400);
    let cycle = m
        .q("POST", "/test-cycles", Some(&json!({"name": "c"})))
        .json()["id"]
        .as_u64()
        .unwrap();
    for id in &ids[..7] {
        let r = m.q(
            "POST",
            &format!("/test-runs?parentId={cycle}&parentType=test-cycle"),
            Some(&json!({"name": "r", "properties": [], "test_case": {"id": id}})),
        );
        assert_eq!(r.status, 201);
    }
    let env = m
        .q(
            "GET",
            &format!("/test-runs?parentId={cycle}&parentType=test-cycle&page=2&pageSize=3"),
            None,
        )
        .json();
    assert_eq!(
        (
            env["page"].as_u64(),
            env["page_size"].as_u64(),
            env["total"].as_u64()
        ),
        (Some(2), Some(3), Some(7))
    );
    assert_eq!(env["items"].as_array().unwrap().len(), 3);
    let capped = m.q("GET", "/test-runs?pageSize=5000", None).json();
    assert_eq!(capped["page_size"], 999);
}

#[test]
fn search_by_zephyr_key_name_and_id() {
    let m = Mocks::start(small(6));
    let root = m.module("Root", None);
    let one = m.case("Check pump", root, "PROJ-T1");
    m.case("Check pump twice", root, "PROJ-T10");
    m.case("Other", root, "PROJ-T2");
    let search = |q: &str| {
        let r = m.q(
            "POST",
            "/search?page=1&pageSize=100",
            Some(&json!({"object_type": "test-cases", "fields": ["*"], "query": q})),
        );
        assert_eq!(r.status, 200, "{q}: {}", r.text);
        r.json()["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["name"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(search("'Zephyr Key' = 'PROJ-T1'"), vec!["Check pump"]);
    assert_eq!(search("Name = 'check pump'"), vec!["Check pump"]);
    assert_eq!(search("Name ~ 'pump'").len(), 2);
    assert_eq!(
        search("Name ~ pump AND 'Zephyr Key' = 'PROJ-T10'"),
        vec!["Check pump twice"]
    );
    assert_eq!(search(&format!("Id = {}", one["id"])), vec!["Check pump"]);
    assert_eq!(search("Priority = Medium").len(), 3);
    assert!(search("'Zephyr Key' = 'PROJ-T99'").is_empty());
    for (body, why) in [
        (
            json!({"object_type": "test-cases", "query": "Colour = red"}),
            "unknown field",
        ),
        (
            json!({"object_type": "test-cases", "query": "Name = a OR Name = b"}),
            "OR",
        ),
        (
            json!({"object_type": "modules", "query": "Name = a"}),
            "not searchable",
        ),
        (json!({"query": "Name = a"}), "no object_type"),
    ] {
        assert_eq!(m.q("POST", "/search", Some(&body)).status, 400, "{why}");
    }
}

#[test]
fn tokens_are_checked_and_oauth_tokens_expire() {
    let mut o = small(7);
    o.oauth_expiry = Duration::from_millis(300);
    let m = Mocks::start(o);
    let url = m.qurl("/modules");
    assert_eq!(call(&m.agent, "GET", &url, None, None).status, 401);
    let r = call(&m.agent, "GET", &url, Some(m.m.zephyr_token()), None);
    assert_eq!(
        (r.status, r.json()["message"].as_str()),
        (401, Some("Unauthorized"))
    );
    assert_eq!(
        call(
            &m.agent,
            "GET",
            &format!("{}/projects/1/modules", m.m.qtest_url()),
            Some(m.m.qtest_token()),
            None
        )
        .status,
        404
    );
    let login = |form: &str| {
        let r = m.oauth(form, Some("Basic ZXRscG9vbDo=")); // "etlpool:"
        (r.status, r.json())
    };
    assert_eq!(
        login("grant_type=password&username=etlpool&password=nope").0,
        401
    );
    let (status, token) = login("grant_type=password&username=etlpool&password=etlpool");
    assert_eq!(
        (
            status,
            token["token_type"].as_str(),
            token["expires_in"].as_u64()
        ),
        (200, Some("bearer"), Some(0))
    );
    let access = token["access_token"].as_str().unwrap();
    assert_eq!(call(&m.agent, "GET", &url, Some(access), None).status, 200);
    let started = std::time::Instant::now();
    while call(&m.agent, "GET", &url, Some(access), None).status == 200 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the token never expired"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn state_journal_and_test_helpers() {
    let m = Mocks::start(small(8));
    let root = m.module("Root", None);
    let case = m.case("x", root, "PROJ-T1");
    let id = case["id"].as_u64().unwrap();
    let copy = m.m.duplicate_case(id).unwrap();
    assert_ne!(copy, id);
    let state = call(
        &m.agent,
        "GET",
        &m.qurl("").replace(
            &format!("/api/v3/projects/{}", m.m.qtest_project_id()),
            "/__state",
        ),
        None,
        None,
    )
    .json();
    let cases = state["state"]["test_cases"].as_array().unwrap();
    assert_eq!(cases.len(), 2);
    assert_eq!(cases[0]["properties"], cases[1]["properties"]);
    m.m.delete_case(copy).unwrap();
    assert_eq!(m.q("GET", &format!("/test-cases/{copy}"), None).status, 404);
    let kinds: Vec<String> = m.m.journal().iter().map(|e| e.kind.clone()).collect();
    assert_eq!(kinds, vec!["module", "test-case", "test-case", "delete"]);
    assert!(m.m.delete_case(copy).is_err());
    let r = m.q("DELETE", &format!("/test-cases/{id}"), None);
    assert_eq!(r.status, 200);
}

#[test]
fn many_concurrent_clients_lose_no_write_and_get_unique_ids() {
    let m = Mocks::start(MockOptions {
        sizes: small(9).sizes,
        ..MockOptions::seeded(9)
    });
    let root = m.module("Root", None);
    let required = m.required();
    let (threads, per) = (16, 25);
    let ids: Vec<u64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (m, required) = (&m, &required);
                s.spawn(move || {
                    let agent = crate::support::mock::agent();
                    (0..per)
                        .map(|i| {
                            let body = json!({"name": format!("t{t}-{i}"), "parent_id": root,
                                "properties": required});
                            let r = call(
                                &agent,
                                "POST",
                                &m.qurl("/test-cases"),
                                Some(m.m.qtest_token()),
                                Some(&body),
                            );
                            assert_eq!(r.status, 200, "{}", r.text);
                            r.json()["id"].as_u64().unwrap()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let unique: HashSet<u64> = ids.iter().copied().collect();
    assert_eq!(unique.len(), threads * per);
    let state = m.m.qtest_state();
    assert_eq!(state.test_cases.len(), threads * per);
    let seqs: Vec<u64> = state.journal.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=(threads * per + 1) as u64).collect::<Vec<_>>());
    let pids: HashSet<&str> = state.test_cases.iter().map(|c| c.pid.as_str()).collect();
    assert_eq!(pids.len(), threads * per);
}

#[test]
fn a_case_is_read_by_its_id_or_by_its_pid_in_any_case() {
    let m = Mocks::start(small(1));
    let root = m.module("Login", None);
    let case = m.case("Check pump", root, "PROJ-T1");
    let (id, pid) = (case["id"].as_u64().unwrap(), case["pid"].as_str().unwrap());
    for path in [id.to_string(), pid.to_string(), pid.to_lowercase()] {
        let got = m.q("GET", &format!("/test-cases/{path}"), None);
        assert_eq!(
            (got.status, got.json()["id"].as_u64()),
            (200, Some(id)),
            "{path}"
        );
    }
    for absent in [
        format!("{}", id + 1000),
        "TC-999999".to_owned(),
        "x".to_owned(),
    ] {
        assert_eq!(
            m.q("GET", &format!("/test-cases/{absent}"), None).status,
            404,
            "{absent}"
        );
    }
}
