//! The Zephyr mock over real sockets: paging, shapes, filters, errors, auth, determinism.

use std::collections::HashSet;

use crate::support::mock::{Mocks, agent, call, small};
use etlpool::mock::MockOptions;
use etlpool::mock::zephyr::data::Script;
use serde_json::Value;

/// Follows `next` links from `first`; returns every value and the page sizes seen.
fn walk(m: &Mocks, first: &str) -> (Vec<Value>, Vec<usize>) {
    let (mut values, mut sizes) = (Vec::new(), Vec::new());
    let mut url = format!("{}{first}", m.m.zephyr_url());
    loop {
        let page = call(&m.agent, "GET", &url, Some(m.m.zephyr_token()), None).json();
        let vals = page["values"].as_array().unwrap().clone();
        sizes.push(vals.len());
        assert_eq!(page["total"], page["total"].as_u64().unwrap());
        values.extend(vals);
        match page["next"].as_str() {
            Some(next) => {
                assert_eq!(page["isLast"], false);
                url = next.to_string();
            }
            None => {
                assert_eq!(page["isLast"], true);
                return (values, sizes);
            }
        }
    }
}

#[test]
fn an_empty_project_is_one_empty_last_page() {
    let mut o = MockOptions::seeded(1);
    o.sizes = etlpool::mock::DataSizes {
        folders: 0,
        cycle_folders: 0,
        cases: 0,
        cycles: 0,
        executions: 0,
        ..o.sizes
    };
    let m = Mocks::start(o);
    for path in ["/testcases", "/testcycles", "/testexecutions", "/folders"] {
        let page = m.z(&format!("{path}?projectKey=PROJ")).json();
        assert_eq!(
            (page["total"].as_u64(), page["isLast"].as_bool()),
            (Some(0), Some(true)),
            "{path}"
        );
        assert!(page["values"].as_array().unwrap().is_empty() && page.get("next").is_none());
    }
}

#[test]
fn exactly_one_full_page_and_a_short_last_page() {
    let m = Mocks::start(small(2));
    let full = m.z("/testcases?maxResults=12").json();
    assert_eq!(
        (
            full["values"].as_array().unwrap().len(),
            full["isLast"].as_bool()
        ),
        (12, Some(true))
    );
    assert!(full.get("next").is_none());
    let (values, sizes) = walk(&m, "/testcases?projectKey=PROJ&maxResults=5");
    assert_eq!(sizes, vec![5, 5, 2]);
    let keys: Vec<&str> = values.iter().map(|v| v["key"].as_str().unwrap()).collect();
    assert_eq!(
        keys,
        (1..=12).map(|n| format!("PROJ-T{n}")).collect::<Vec<_>>()
    );
    let beyond = m.z("/testcases?startAt=40&maxResults=5").json();
    assert!(beyond["values"].as_array().unwrap().is_empty() && beyond["isLast"] == true);
    assert_eq!(
        m.z("/testcases").json()["maxResults"],
        10,
        "default maxResults"
    );
}

#[test]
fn the_server_lowers_max_results_and_next_keeps_the_filters() {
    let mut o = small(3);
    o.zephyr_max_results = 4;
    let m = Mocks::start(o);
    let page = m.z("/testcases?projectKey=PROJ&maxResults=50").json();
    assert_eq!(
        (
            page["maxResults"].as_u64(),
            page["values"].as_array().unwrap().len()
        ),
        (Some(4), 4)
    );
    let next = page["next"].as_str().unwrap();
    assert!(
        next.contains("projectKey=PROJ")
            && next.contains("startAt=4")
            && next.contains("maxResults=4"),
        "{next}"
    );
    let (values, _) = walk(&m, "/testcases?maxResults=1000");
    assert_eq!(values.len(), 12);
    for bad in ["maxResults=0", "maxResults=x", "startAt=-1"] {
        let r = m.z(&format!("/testcases?{bad}"));
        assert_eq!(r.status, 400, "{bad}");
        assert_eq!(r.json()["errorCode"], 400);
    }
}

#[test]
fn test_steps_are_capped_at_100_per_page_and_include_call_to_test_items() {
    let mut o = small(4);
    o.sizes.steps_per_case = 130;
    o.sizes.cases = 30;
    let m = Mocks::start(o);
    let case =
        m.m.source()
            .cases
            .iter()
            .find(|c| matches!(c.script, Script::Steps(_)))
            .unwrap()
            .clone();
    let page = m
        .z(&format!("/testcases/{}/teststeps?maxResults=500", case.key))
        .json();
    assert_eq!(
        (page["maxResults"].as_u64(), page["total"].as_u64()),
        (Some(100), Some(130))
    );
    let (steps, sizes) = walk(
        &m,
        &format!("/testcases/{}/teststeps?maxResults=500", case.key),
    );
    assert_eq!(sizes, vec![100, 30]);
    for s in &steps {
        assert!(
            s.get("inline").is_some() != s.get("testCase").is_some(),
            "exactly one of inline/testCase: {s}"
        );
    }
    assert!(
        steps
            .iter()
            .any(|s| s["testCase"]["testCaseKey"].is_string()),
        "a call-to-test step among 130"
    );
    assert!(m.z(&format!("/testcases/{}/testscript", case.key)).status == 404);
}

#[test]
fn entity_shapes_have_null_references_scripts_and_versioned_case_links() {
    let m = Mocks::start(MockOptions::seeded(5));
    let src = m.m.source();
    let rootless = src
        .cases
        .iter()
        .find(|c| c.folder_id.is_none())
        .expect("some case has no folder");
    let v = m.z(&format!("/testcases/{}", rootless.key)).json();
    assert!(
        v["folder"].is_null()
            && v["priority"]["self"]
                .as_str()
                .unwrap()
                .contains("/priorities/")
    );
    let plain = src
        .cases
        .iter()
        .find(|c| !matches!(c.script, Script::Steps(_)))
        .unwrap();
    let v = m.z(&format!("/testcases/{}", plain.key)).json();
    assert!(
        v["testScript"]["self"]
            .as_str()
            .unwrap()
            .ends_with("/testscript")
    );
    let script = m.z(&format!("/testcases/{}/testscript", plain.key)).json();
    assert!(
        ["plain", "bdd"].contains(&script["type"].as_str().unwrap()) && script["text"].is_string()
    );
    let e = &m.z("/testexecutions?maxResults=1").json()["values"][0];
    let case_self = e["testCase"]["self"].as_str().unwrap();
    assert!(
        case_self.contains("/testcases/PROJ-T") && case_self.ends_with("/versions/1"),
        "{case_self}"
    );
    assert!(e["testCycle"]["id"].is_u64() && e["testExecutionStatus"]["id"].is_u64());
    let roots = m.z("/folders?folderType=TEST_CASE&maxResults=100").json();
    assert!(
        roots["values"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["parentId"].is_null())
    );
    assert_eq!(m.z("/projects").json()["values"][0]["key"], "PROJ");
    let statuses = m.z("/statuses?statusType=TEST_EXECUTION").json();
    let expected = ["Not Executed", "In Progress", "Pass", "Fail", "Blocked"];
    assert_eq!(
        crate::support::mock::names(&statuses["values"]),
        expected.map(String::from).into()
    );
}

#[test]
fn execution_filters() {
    let m = Mocks::start(MockOptions::seeded(6));
    let src = m.m.source();
    let cycle = &src.cycles[0];
    let all = walk(
        &m,
        &format!("/testexecutions?testCycle={}&maxResults=50", cycle.key),
    )
    .0;
    let expected = src
        .executions
        .iter()
        .filter(|e| e.cycle_id == cycle.id)
        .count();
    assert_eq!(all.len(), expected);
    let last = walk(
        &m,
        &format!(
            "/testexecutions?testCycle={}&onlyLastExecutions=true",
            cycle.key
        ),
    )
    .0;
    let pairs: HashSet<&str> = all
        .iter()
        .map(|e| e["testCase"]["self"].as_str().unwrap())
        .collect();
    assert_eq!(last.len(), pairs.len());
    let after = "2024-07-01T00:00:00Z";
    let later = walk(
        &m,
        &format!("/testexecutions?actualEndDateAfter={after}&maxResults=100"),
    )
    .0;
    assert!(
        later
            .iter()
            .all(|e| e["actualEndDate"].as_str().is_some_and(|d| d >= after))
    );
    assert!(!later.is_empty());
    assert_eq!(
        m.z("/testexecutions?actualEndDateAfter=yesterday").status,
        400
    );
}

#[test]
fn errors_follow_the_contract() {
    let m = Mocks::start(small(7));
    let r = m.z("/testcases/PROJ-T999");
    assert_eq!((r.status, r.json()["errorCode"].as_u64()), (404, Some(404)));
    assert!(r.json()["message"].as_str().unwrap().contains("PROJ-T999"));
    assert_eq!(m.z("/testcases?projectKey=OTHER").status, 400);
    assert_eq!(m.z("/testexecution").status, 403);
    let r = call(
        &m.agent,
        "GET",
        &m.m.zephyr_url().replace("/v2", "/v1/projects"),
        Some(m.m.zephyr_token()),
        None,
    );
    assert_eq!(r.status, 404);
}

#[test]
fn missing_or_wrong_tokens_get_401() {
    let m = Mocks::start(small(8));
    let url = format!("{}/projects", m.m.zephyr_url());
    for token in [None, Some("wrong"), Some(m.m.qtest_token())] {
        let r = call(&m.agent, "GET", &url, token, None);
        assert_eq!(r.status, 401, "{token:?}");
        assert!(r.json()["message"].is_string());
    }
}

#[test]
fn the_same_seed_gives_the_same_data_and_another_seed_other_ids() {
    let (a, b, c) = (
        Mocks::start(small(9)),
        Mocks::start(small(9)),
        Mocks::start(small(10)),
    );
    let source = |m: &Mocks| {
        call(
            &agent(),
            "GET",
            &m.m.zephyr_url().replace("/v2", "/__source"),
            None,
            None,
        )
        .json()
    };
    assert_eq!(source(&a), source(&b));
    assert_eq!(a.m.zephyr_token(), b.m.zephyr_token());
    assert_eq!(a.m.qtest_config(), b.m.qtest_config());
    assert_ne!(a.m.source().statuses, c.m.source().statuses);
    let ids = |m: &Mocks| {
        m.m.qtest_config()
            .statuses
            .iter()
            .map(|s| s.id)
            .collect::<Vec<_>>()
    };
    assert_ne!(ids(&a), ids(&c));
    assert_ne!(
        a.m.qtest_config().case_fields[0].id,
        c.m.qtest_config().case_fields[0].id
    );
    assert_ne!(a.m.qtest_token(), c.m.qtest_token());
}
