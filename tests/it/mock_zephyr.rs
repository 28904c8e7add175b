//! The Zephyr mock over real sockets: paging, shapes, filters, errors, auth, determinism.

use std::collections::HashSet;

use crate::support::mock::{Mocks, agent, call, small};
use etlpool::mock::MockOptions;
use etlpool::mock::zephyr::data::Script;
use serde_json::Value;

/// Reads pages from `first` (a path with its query) while `next` gives the URL
/// of the page after; returns every value and the page sizes seen.
fn pages(
    m: &Mocks,
    first: &str,
    next: impl Fn(&Value) -> Option<String>,
) -> (Vec<Value>, Vec<usize>) {
    let (mut values, mut sizes) = (Vec::new(), Vec::new());
    let mut url = Some(format!("{}{first}", m.m.zephyr_url()));
    while let Some(here) = url {
        let page = call(&m.agent, "GET", &here, Some(m.m.zephyr_token()), None).json();
        let vals = page["values"].as_array().unwrap().clone();
        sizes.push(vals.len());
        values.extend(vals);
        url = next(&page);
    }
    (values, sizes)
}

/// Follows `next` links from `first`; returns every value and the page sizes seen.
fn walk(m: &Mocks, first: &str) -> (Vec<Value>, Vec<usize>) {
    pages(m, first, |page| {
        assert_eq!(page["total"], page["total"].as_u64().unwrap());
        let next = page["next"].as_str().map(str::to_string);
        assert_eq!(page["isLast"], next.is_none(), "{page}");
        next
    })
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
    let wrong = m.z(&format!("/testcases/{}/testscript", case.key));
    assert_eq!(
        (wrong.status, wrong.json()["errorCode"].as_u64()),
        (422, Some(422))
    );
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
        .filter(|e| e.cycle_id == Some(cycle.id))
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

// ---- The spec's paging, scripts and odd records (issue 13) ----

/// Follows `nextStartAtId` from `first` (a NextGen path with its query);
/// returns every value and the page sizes seen.
fn walk_cursor(m: &Mocks, first: &str) -> (Vec<Value>, Vec<usize>) {
    pages(m, first, |page| {
        let Some(next) = page["nextStartAtId"].as_u64() else {
            assert!(
                page["nextStartAtId"].is_null() && page["next"].is_null(),
                "{page}"
            );
            return None;
        };
        let link = page["next"].as_str().expect("a next link with a cursor");
        assert!(link.contains(&format!("startAtId={next}")), "{link}");
        Some(link.to_string())
    })
}

fn ids(values: &[Value]) -> Vec<u64> {
    values.iter().map(|v| v["id"].as_u64().unwrap()).collect()
}

#[test]
fn every_list_the_tool_reads_holds_10_items_a_page_unless_asked() {
    let mut o = MockOptions::seeded(21);
    o.sizes.cycles = 15;
    o.sizes.steps_per_case = 25;
    let m = Mocks::start(o);
    let src = m.m.source();
    let steps_case = src
        .cases
        .iter()
        .find(|c| matches!(c.script, Script::Steps(_)))
        .unwrap();
    let exec = src
        .executions
        .iter()
        .find(|e| e.step_results.len() > 10)
        .unwrap();
    let offset = [
        "/testcases".to_string(),
        "/testcycles".into(),
        "/testexecutions".into(),
        "/folders".into(),
        "/statuses".into(),
        format!("/testcases/{}/teststeps", steps_case.key),
        format!("/testexecutions/{}/teststeps", exec.id),
    ];
    for path in &offset {
        let page = m.z(path).json();
        assert_eq!(
            (
                page["values"].as_array().unwrap().len(),
                &page["maxResults"],
                &page["isLast"]
            ),
            (10, &Value::from(10), &Value::from(false)),
            "{path}"
        );
    }
    for path in [
        "/testcases/nextgen",
        "/testcycles/nextgen",
        "/testexecutions/nextgen",
    ] {
        let page = m.z(path).json();
        assert_eq!(
            (page["values"].as_array().unwrap().len(), &page["limit"]),
            (10, &Value::from(10)),
            "{path}"
        );
        assert!(page["nextStartAtId"].is_u64(), "{path}: {page}");
    }
}

#[test]
fn offset_paging_ends_at_start_at_1000000_and_nextgen_limits_are_1_to_1000() {
    let mut o = small(22);
    o.zephyr_max_results = 7;
    let m = Mocks::start(o);
    let r = m.z("/testexecutions?startAt=1000001");
    assert_eq!((r.status, r.json()["errorCode"].as_u64()), (400, Some(400)));
    assert_eq!(m.z("/testexecutions?startAt=1000000").status, 200);
    for bad in ["limit=0", "limit=1001", "limit=x", "startAtId=-1"] {
        let r = m.z(&format!("/testexecutions/nextgen?{bad}"));
        assert_eq!(r.status, 400, "{bad}");
    }
    let lowered = m.z("/testexecutions/nextgen?limit=1000").json();
    assert_eq!(
        (
            &lowered["limit"],
            lowered["values"].as_array().unwrap().len()
        ),
        (&Value::from(7), 7)
    );
}

#[test]
fn nextgen_listings_page_by_cursor_through_every_record_once() {
    let mut o = MockOptions::seeded(23);
    o.zephyr_max_results = 7;
    let m = Mocks::start(o);
    let src = m.m.source();
    let (execs, sizes) = walk_cursor(&m, "/testexecutions/nextgen?projectKey=PROJ&limit=50");
    let want: Vec<u64> = src.executions.iter().map(|e| e.id).collect();
    assert_eq!(ids(&execs), want, "every execution once, in id order");
    assert!(
        sizes[..sizes.len() - 1].iter().all(|&n| n == 7),
        "{sizes:?}"
    );
    let (cases, _) = walk_cursor(&m, "/testcases/nextgen?limit=10");
    assert_eq!(
        ids(&cases),
        src.cases.iter().map(|c| c.id).collect::<Vec<_>>()
    );
    let (cycles, _) = walk_cursor(&m, "/testcycles/nextgen");
    assert_eq!(
        ids(&cycles),
        src.cycles.iter().map(|c| c.id).collect::<Vec<_>>()
    );
    // A cursor inside the list starts there.
    let from = src.executions[20].id;
    let page = m
        .z(&format!("/testexecutions/nextgen?startAtId={from}&limit=3"))
        .json();
    assert_eq!(ids(page["values"].as_array().unwrap())[0], from);
    // The filters of /testexecutions.
    let cycle = &src.cycles[1];
    let (of_cycle, _) = walk_cursor(
        &m,
        &format!("/testexecutions/nextgen?testCycle={}", cycle.key),
    );
    let want: Vec<u64> = src
        .executions
        .iter()
        .filter(|e| e.cycle_id == Some(cycle.id))
        .map(|e| e.id)
        .collect();
    assert_eq!(ids(&of_cycle), want);
    let (last, _) = walk_cursor(&m, "/testexecutions/nextgen?onlyLastExecutions=true");
    let ad_hoc: Vec<u64> = src
        .executions
        .iter()
        .filter(|e| e.cycle_id.is_none())
        .map(|e| e.id)
        .collect();
    assert!(!ad_hoc.is_empty());
    assert!(
        ad_hoc.iter().all(|id| ids(&last).contains(id)),
        "ad-hoc executions count as last"
    );
    assert!(last.len() < src.executions.len());
    assert_eq!(
        m.z("/testexecutions/nextgen?testCycle=PROJ-R999").status,
        404
    );
    // One execution by id or by key.
    let e = &src.executions[41];
    for id_or_key in [e.id.to_string(), e.key.clone()] {
        let one = m.z(&format!("/testexecutions/{id_or_key}")).json();
        assert_eq!(one["id"], e.id, "{id_or_key}");
    }
    for unknown in ["1", "PROJ-E0", "PROJ-E9999", "OTHER-E42"] {
        let status = m.z(&format!("/testexecutions/{unknown}")).status;
        assert_eq!(status, 404, "{unknown}");
    }
}

#[test]
fn scripts_answer_422_from_the_other_endpoint_and_every_link_names_testscript() {
    let m = Mocks::start(small(24));
    let (mut steps, mut texts) = (0, 0);
    for case in &m.m.source().cases {
        let served = m.z(&format!("/testcases/{}", case.key)).json();
        let link = served["testScript"]["self"].as_str().unwrap();
        assert_eq!(
            link,
            format!("{}/testcases/{}/testscript", m.m.zephyr_url(), case.key)
        );
        let (right, wrong) = match case.script {
            Script::Steps(_) => ("teststeps", "testscript"),
            Script::Plain(_) | Script::Bdd(_) => ("testscript", "teststeps"),
        };
        assert_eq!(m.z(&format!("/testcases/{}/{right}", case.key)).status, 200);
        let r = m.z(&format!("/testcases/{}/{wrong}", case.key));
        assert_eq!(
            (r.status, r.json()["errorCode"].as_u64()),
            (422, Some(422)),
            "{}",
            case.key
        );
        assert!(
            r.json()["message"].as_str().unwrap().contains(right),
            "{}",
            r.text
        );
        match case.script {
            Script::Steps(_) => steps += 1,
            _ => texts += 1,
        }
    }
    assert!(steps > 0 && texts > 0);
}

/// The served JSON of every case, cycle and execution.
fn served(m: &Mocks) -> (Vec<Value>, Vec<Value>, Vec<Value>) {
    (
        walk_cursor(m, "/testcases/nextgen?limit=1000").0,
        walk_cursor(m, "/testcycles/nextgen?limit=1000").0,
        walk_cursor(m, "/testexecutions/nextgen?limit=1000").0,
    )
}

#[test]
fn a_few_records_use_the_shapes_the_spec_allows_chosen_by_the_seed_and_switchable() {
    let m = Mocks::start(MockOptions::seeded(25));
    let (cases, cycles, execs) = served(&m);
    let null_owner = |v: &&Value| v["owner"].is_object() && v["owner"]["accountId"].is_null();
    assert_eq!(cases.iter().filter(null_owner).count(), 2);
    assert_eq!(cycles.iter().filter(null_owner).count(), 1);
    let no_case_id = execs
        .iter()
        .filter(|e| e["testCase"].get("id").is_none() && e["testCase"]["self"].is_string())
        .count();
    assert_eq!(no_case_id, 2);
    let null_cycle = execs
        .iter()
        .filter(|e| e["testCycle"].is_null() && e.get("testCycle").is_some());
    let no_cycle_key = execs.iter().filter(|e| e.get("testCycle").is_none());
    assert_eq!((null_cycle.count(), no_cycle_key.count()), (1, 1));
    // The source says what is served: ad-hoc executions have no cycle.
    let src = m.m.source();
    assert_eq!(
        src.executions
            .iter()
            .filter(|e| e.cycle_id.is_none())
            .count(),
        2
    );
    // The same seed serves the same (links aside); switched off, none.
    let text = |m: &Mocks, v: &(Vec<Value>, Vec<Value>, Vec<Value>)| {
        serde_json::to_string(v)
            .unwrap()
            .replace(&m.m.zephyr_url(), "")
    };
    let twin = Mocks::start(MockOptions::seeded(25));
    let same = text(&twin, &served(&twin)) == text(&m, &(cases, cycles, execs));
    assert!(same, "the same seed served other records");
    let mut plain = MockOptions::seeded(25);
    plain.odd_records = false;
    let p = Mocks::start(plain);
    let (cases, cycles, execs) = served(&p);
    assert!(!cases.iter().chain(&cycles).any(|v| null_owner(&v)));
    assert!(
        execs
            .iter()
            .all(|e| e["testCase"]["id"].is_u64() && e["testCycle"]["id"].is_u64())
    );
}

#[test]
fn records_that_break_the_spec_are_served_only_when_asked() {
    let mut o = MockOptions::seeded(26);
    o.unreadable_records = 2;
    let m = Mocks::start(o);
    let (cases, cycles, execs) = served(&m);
    assert_eq!(cases.iter().filter(|c| c["name"].is_null()).count(), 2);
    assert_eq!(
        cycles.iter().filter(|c| c.get("status").is_none()).count(),
        2
    );
    let broken: Vec<&Value> = execs
        .iter()
        .filter(|e| e.get("testExecutionStatus").is_none())
        .collect();
    assert_eq!(broken.len(), 2);
    assert!(
        broken
            .iter()
            .all(|e| e.get("id").is_none() && e.get("key").is_none())
    );
    // Nothing breaks the spec by default.
    let (cases, cycles, execs) = served(&Mocks::start(MockOptions::seeded(26)));
    assert!(cases.iter().all(|c| c["name"].is_string()));
    assert!(cycles.iter().all(|c| c["status"].is_object()));
    assert!(
        execs
            .iter()
            .all(|e| e["testExecutionStatus"].is_object() && e["id"].is_u64())
    );
}
