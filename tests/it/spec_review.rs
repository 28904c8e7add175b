//! An adversarial review of issue 13 (the tool against the real services):
//! the spec's facts the clients and the mocks had both missed, and how the
//! migration copes with what the spec allows. Over real sockets, against the
//! mocks or small servers of the test's own.

use std::sync::Arc;

use crate::support::flatten::{assert_results_on_their_steps, flattening_zephyr, migrate_through};
use crate::support::mock::{Mocks, call, small};
use crate::support::{Migration, check, scripted};
use etlpool::http::{ApiClient, Auth};
use etlpool::migrate::{MappingConfig, MigrateOptions, ZephyrScript, read_script};
use etlpool::mock::server::{Answer, Response};
use etlpool::mock::zephyr::data::{Dataset, Script, Step};
use etlpool::mock::{DataSizes, MockOptions, MockServers};
use serde_json::json;

// ---- The spec's FieldResource example: `Name`, a required system field ----

#[test]
fn a_required_system_field_the_body_sets_is_no_property_to_fill() {
    // The spec's example of a field is `Name`, system, required: the mock lists
    // Id, Name, Description and Precondition as system fields, Name required.
    let m = Mocks::start(small(1301));
    let fields = m.q("GET", "/settings/test-cases/fields", None).json();
    let name = fields
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["label"] == "Name")
        .expect("a Name field");
    assert_eq!(
        (&name["system_field"], &name["required"]),
        (&true.into(), &true.into())
    );
    // A create sets it through `name`, not a property.
    let body = serde_json::json!({"name": "n", "properties": m.required()});
    assert_eq!(m.q("POST", "/test-cases", Some(&body)).status, 200);
    let mut o = MockOptions::seeded(1302);
    o.sizes = small(1302).sizes;
    let run = Migration::with_options(o);
    let summary = run.run();
    assert!(summary.is_complete(), "{summary}\n{}", run.failures());
    check::assert_migrated(&run.mocks);
}

// ---- Logging an unapproved version needs the Approve permission ----

#[test]
fn a_user_who_may_not_approve_is_stopped_before_any_work_even_with_approval_off() {
    // Contract section 0: executing (logging) an unapproved case version needs
    // the Approve permission. With approval switched off every case stays at
    // 0.1, so every log would be refused: say so before any work.
    let mut o = MockOptions::seeded(1303);
    o.sizes = small(1303).sizes;
    o.qtest_can_approve = false;
    let m = Migration::with_options(o);
    let mut options = m.options();
    options.mapping = MappingConfig {
        approve_approved: false,
        approve_executed: false,
        ..MappingConfig::default()
    };
    let result = etlpool::migrate::migrate(&m.pool, &options, &etlpool::CancelToken::new());
    let message = match result {
        Ok(summary) => panic!("the run started: {summary}\n{}", m.failures()),
        Err(e) => e.to_string(),
    };
    assert!(
        message.contains("Approve") && message.contains("log"),
        "{message}"
    );
    assert!(
        m.mocks.qtest_state().journal.is_empty(),
        "nothing was written"
    );
}

// ---- Step results of a case that calls one that isn't migrated ----

/// A case that calls `callee` with an inline step after the call, and has
/// executions; `callee` has several steps. `None` when the source has none.
fn caller_of_a_long_callee(src: &Dataset) -> Option<String> {
    let steps = |key: &str| match src.case(key).map(|c| &c.script) {
        Some(Script::Steps(steps)) => steps.len(),
        _ => 0,
    };
    src.cases.iter().find_map(|a| {
        let Script::Steps(script) = &a.script else {
            return None;
        };
        let executed = src.executions.iter().any(|e| e.test_case_key == a.key);
        script.iter().enumerate().find_map(|(i, step)| match step {
            Step::Call { test_case_key, .. }
                if executed
                    && steps(test_case_key) > 1
                    && script[i + 1..]
                        .iter()
                        .any(|s| matches!(s, Step::Inline { .. })) =>
            {
                Some(test_case_key.clone())
            }
            _ => None,
        })
    })
}

#[test]
fn results_of_a_called_case_that_is_not_migrated_land_on_no_other_step() {
    // The called case can't be read (so isn't migrated): its results have no
    // qTest step, and the caller's own steps after the call must still get
    // theirs, not the called case's.
    let (mocks, callee) = (1310..1400)
        .find_map(|seed| {
            let mut o = MockOptions::seeded(seed);
            o.sizes = DataSizes {
                cases: 30,
                steps_per_case: 4,
                executions: 80,
                ..DataSizes::default()
            };
            let mocks = MockServers::start(o).unwrap();
            let callee = caller_of_a_long_callee(mocks.source())?;
            Some((Arc::new(mocks), callee))
        })
        .expect("a seed with a call to a case of several steps");
    let front = flattening_zephyr(mocks.clone(), Some(callee.clone()));
    let summary = migrate_through(&mocks, &front);
    assert!(summary.aborted.is_none(), "{summary}");
    let state = mocks.qtest_state();
    let key_field = mocks.qtest_config().case_field("Zephyr Key").unwrap().id;
    assert!(
        !state
            .test_cases
            .iter()
            .any(|c| c.property(key_field) == Some(callee.as_str())),
        "{callee} was migrated"
    );
    assert_results_on_their_steps(&mocks);
}

// ---- A case listed without `testScript` (optional in the spec) ----

#[test]
fn a_case_listed_without_its_script_link_keeps_its_steps() {
    let server = scripted(|_, req| match req.path.as_str() {
        "/testcases/PROJ-T1/teststeps" => crate::support::json(
            200,
            json!({"startAt": 0, "maxResults": 100, "isLast": true,
                   "values": [{"inline": {"description": "Login"}, "testCase": null}]}),
        ),
        _ => crate::support::json(404, json!({"errorCode": 404, "message": "no"})),
    });
    let zephyr = crate::clients::zephyr_on(&server, 100);
    let case: etlpool::zephyr::TestCase = serde_json::from_value(json!({
        "id": 1, "key": "PROJ-T1", "name": "n", "project": {"id": 1},
        "priority": {"id": 1}, "status": {"id": 1}}))
    .unwrap();
    match read_script(&zephyr, &case).unwrap() {
        ZephyrScript::Steps(steps) => assert_eq!(steps.len(), 1),
        other => panic!("the steps were dropped: {other:?}"),
    }
}

// ---- A test run's create body: `properties` is required ----

#[test]
fn a_test_run_is_created_with_the_properties_the_spec_requires() {
    // TestRunWithCustomFieldResource requires `properties` (and `test_case`).
    let m = Mocks::start(small(1320));
    let module = m.module("M", None);
    let case = m.case("c", module, "PROJ-T1");
    let cycle = m.q(
        "POST",
        "/test-cycles?parentId=0&parentType=root",
        Some(&json!({"name": "c"})),
    );
    let runs = format!(
        "/test-runs?parentId={}&parentType=test-cycle",
        cycle.json()["id"]
    );
    let without = json!({"name": "r", "test_case": {"id": case["id"]}});
    let r = m.q("POST", &runs, Some(&without));
    assert_eq!(
        (r.status, r.json()["message"].as_str()),
        (400, Some("properties is required"))
    );
    // The client's body carries them (the migration's runs all go through it).
    let (_, qtest) = crate::support::migration::clients(&m.m);
    let body = etlpool::qtest::NewTestRun {
        name: "r".into(),
        test_case: etlpool::qtest::IdRef {
            id: case["id"].as_u64().unwrap(),
        },
        test_case_version_id: case["test_case_version_id"].as_u64().unwrap(),
        properties: Vec::new(),
    };
    let cycle_id = cycle.json()["id"].as_u64().unwrap();
    assert!(qtest.create_run(cycle_id, &body).is_ok());
}

// ---- Listings that loop ----

fn execution(id: u64) -> serde_json::Value {
    json!({"id": id, "project": {"id": 1}, "testExecutionStatus": {"id": 5},
           "testCase": {"self": format!("https://z/v2/testcases/PROJ-T{id}/versions/1")}})
}

#[test]
fn a_cursor_that_moves_on_while_the_items_repeat_ends_the_listing() {
    // The server ignores `startAtId`: the same ten items, a cursor that moves
    // on, and (so that this test ends either way) `null` after 50 pages.
    let server = scripted(|n, req| {
        let start: u64 = req
            .query_param("startAtId")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let next = (n < 50).then_some(start + 10);
        let values: Vec<serde_json::Value> = (1..=10).map(execution).collect();
        crate::support::json(
            200,
            json!({"nextStartAtId": next, "limit": 10, "values": values}),
        )
    });
    let mut read = 0;
    crate::clients::zephyr_on(&server, 10)
        .executions(None, |page| {
            read += page.len();
            Ok(())
        })
        .unwrap();
    assert_eq!((read, server.count()), (10, 3));
    // A server whose cursor means "from" an id, one item a page: each page
    // repeats the one before once, and the listing still reads every item.
    let from = scripted(|_, req| {
        let start: u64 = req
            .query_param("startAtId")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let id = start.max(1);
        let next = (id < 5).then_some(id);
        crate::support::json(
            200,
            json!({"nextStartAtId": next, "limit": 1, "values": [execution(id)]}),
        )
    });
    let mut ids = Vec::new();
    crate::clients::zephyr_on(&from, 1)
        .executions(None, |page| {
            ids.extend(page.into_iter().map(|e| e.unwrap().id));
            Ok(())
        })
        .unwrap();
    assert_eq!(ids, [1, 2, 3, 4, 5]);
}

#[test]
fn a_qtest_envelope_without_its_optional_page_number_is_read_once_to_its_end() {
    // PagedResource requires none of its fields: without `page` the next page
    // is still the one after the page asked for (read as page 1, page 2 was
    // asked for again and again). 250 runs; the test's server stops after 50.
    let server = scripted(|n, req| {
        let page: u64 = req
            .query_param("page")
            .and_then(|v| v.parse().ok())
            .unwrap_or(1);
        let items: Vec<serde_json::Value> = match n < 50 {
            true => ((page - 1) * 100 + 1..=(page * 100).min(250))
                .map(|id| json!({"id": id, "name": "r"}))
                .collect(),
            false => Vec::new(),
        };
        crate::support::json(200, json!({"total": 250, "items": items}))
    });
    let pool = crate::support::test_pool().build().unwrap();
    let api = ApiClient::new(&pool, &server.url(), Auth::None).unwrap();
    let runs = etlpool::qtest::QtestClient::new(api, 1).runs(7).unwrap();
    assert_eq!((runs.len(), server.count()), (250, 3));
    assert!(
        runs.iter().zip(1..).all(|(r, id)| r.id == id),
        "each run once, in order"
    );
}

// ---- A case read with `expand=teststep` listing its called steps too ----

/// A qTest front: passes every request to the mock, but answers
/// `GET /test-cases/{id}?expand=teststep` with each calling step followed by
/// the called case's steps, carrying `parent_test_step_id` (the spec's
/// TestStepResource has the field; a reading where they are listed there).
fn qtest_listing_called_steps(mocks: Arc<MockServers>) -> crate::support::Scripted {
    let agent = crate::support::mock::agent();
    scripted(move |_, req| {
        let url = format!("{}{}", mocks.qtest_site_url(), req.target);
        let token = req
            .header("authorization")
            .and_then(|v| v.strip_prefix("Bearer "));
        let body: Option<serde_json::Value> = serde_json::from_slice(&req.body).ok();
        let r = call(&agent, &req.method, &url, token, body.as_ref());
        let one_case = req.method == "GET"
            && req.query_param("expand") == Some("teststep")
            && req.path.rsplit('/').nth(1) == Some("test-cases");
        let mut text = r.text;
        if one_case && r.status == 200 {
            let mut case: serde_json::Value = serde_json::from_str(&text).unwrap();
            let mut steps = Vec::new();
            for step in case["test_steps"].as_array().cloned().unwrap_or_default() {
                let called = step["called_test_case_id"].as_u64();
                steps.push(step.clone());
                if let Some(called) = called {
                    let path = req.path.rsplit_once('/').unwrap().0;
                    let callee =
                        format!("{}{path}/{called}?expand=teststep", mocks.qtest_site_url());
                    let callee = call(&agent, "GET", &callee, token, None).json();
                    for mut inner in callee["test_steps"].as_array().cloned().unwrap_or_default() {
                        inner["parent_test_step_id"] = step["id"].clone();
                        steps.push(inner);
                    }
                }
            }
            for (order, step) in steps.iter_mut().enumerate() {
                step["order"] = json!(order + 1);
            }
            case["test_steps"] = json!(steps);
            text = case.to_string();
        }
        Answer::Response(Response::bytes(
            r.status,
            "application/json",
            text.into_bytes(),
        ))
    })
}

#[test]
fn called_steps_listed_with_a_case_are_not_taken_for_its_own() {
    // Cases made by a first run; their runs and logs by a second, which reads
    // each case back (GET /test-cases/{id}?expand=teststep) through the front.
    let mocks = Arc::new(
        MockServers::start(MockOptions {
            sizes: DataSizes {
                cases: 30,
                steps_per_case: 4,
                executions: 80,
                ..DataSizes::default()
            },
            ..MockOptions::seeded(1330)
        })
        .unwrap(),
    );
    assert!(crate::support::flatten::has_calls(mocks.source()));
    let zephyr = flattening_zephyr(mocks.clone(), None);
    let qtest = qtest_listing_called_steps(mocks.clone());
    let dir = crate::support::Scratch::new("called-steps");
    let mut options = crate::support::flatten::options_through(&mocks, &zephyr, &dir);
    options.endpoints.qtest_url = format!("{}/api/v3", qtest.url());
    let run = |only: &str| {
        let options = MigrateOptions {
            only: only.parse().unwrap(),
            ..options.clone()
        };
        let pool = crate::support::test_pool()
            .max_connections_per_host(4)
            .build()
            .unwrap();
        let summary =
            etlpool::migrate::migrate(&pool, &options, &etlpool::CancelToken::new()).unwrap();
        assert!(summary.is_complete(), "{summary}");
    };
    run("modules,cases");
    run("cycles,runs,logs");
    assert!(
        assert_results_on_their_steps(&mocks) > 0,
        "no called step was logged"
    );
}
