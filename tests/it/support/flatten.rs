//! A Zephyr front over the mock that answers an execution's step results as
//! Zephyr Scale does, flattened (a call replaced by the called case's steps),
//! and a check that each result logged on qTest sits on the step it belongs to.

use std::collections::HashMap;
use std::sync::Arc;

use etlpool::migrate::{MappingConfig, MigrateOptions, Phases, RunSummary};
use etlpool::mock::MockServers;
use etlpool::mock::server::{Answer, Response};
use etlpool::mock::zephyr::data::{Dataset, Script, Step};
use serde_json::{Value, json};

use super::mock::call;
use super::{Scratch, Scripted, scripted, test_pool};

/// Whether some case of the source calls another.
pub fn has_calls(src: &Dataset) -> bool {
    src.cases.iter().any(|c| {
        matches!(&c.script, Script::Steps(s) if s.iter().any(|s| matches!(s, Step::Call { .. })))
    })
}

/// Zephyr's execution results flattened: whose step (case key, position) each one is.
pub fn owners(src: &Dataset, key: &str, depth: usize) -> Vec<(String, usize)> {
    let Some(case) = src.case(key).filter(|_| depth < 8) else {
        return Vec::new();
    };
    match &case.script {
        Script::Steps(steps) => steps
            .iter()
            .enumerate()
            .flat_map(|(i, s)| match s {
                Step::Inline { .. } => vec![(key.to_string(), i)],
                Step::Call { test_case_key, .. } => owners(src, test_case_key, depth + 1),
            })
            .collect(),
        Script::Plain(text) if !text.trim().is_empty() => vec![(key.to_string(), 0)],
        _ => Vec::new(),
    }
}

/// A Zephyr front: passes every request to the mock, but answers an
/// execution's steps flattened, each result's actual result naming its
/// position; the case keyed `unreadable` is listed without its (required)
/// name, so it fails to be read and is not migrated.
pub fn flattening_zephyr(mocks: Arc<MockServers>, unreadable: Option<String>) -> Scripted {
    let agent = super::mock::agent();
    scripted(move |_, req| {
        let src = mocks.source();
        let steps_of = req
            .path
            .strip_prefix("/v2/testexecutions/")
            .and_then(|rest| rest.strip_suffix("/teststeps"))
            .and_then(|id| id.parse::<u64>().ok())
            .and_then(|id| src.executions.iter().find(|e| e.id == id));
        if let Some(exec) = steps_of {
            let status = exec
                .step_results
                .first()
                .map_or(exec.status_id, |r| r.status_id);
            let values: Vec<Value> = (0..owners(src, &exec.test_case_key, 0).len())
                .map(|i| json!({"inline": {"description": "step", "actualResult": format!("flat {i}"), "status": {"id": status}}}))
                .collect();
            let n = values.len();
            return super::json(
                200,
                json!({"startAt": 0, "maxResults": n.max(1), "total": n, "isLast": true, "values": values}),
            );
        }
        let url = format!(
            "{}{}",
            mocks.zephyr_url().trim_end_matches("/v2"),
            req.target
        );
        let token = req
            .header("authorization")
            .and_then(|v| v.strip_prefix("Bearer "));
        let r = call(&agent, &req.method, &url, token, None);
        let mut body = r.text.into_bytes();
        if let Some(key) = unreadable
            .as_deref()
            .filter(|_| req.path == "/v2/testcases/nextgen")
        {
            let mut page: Value = serde_json::from_slice(&body).expect("a page");
            for case in page["values"].as_array_mut().into_iter().flatten() {
                if case["key"] == key {
                    case["name"] = Value::Null;
                }
            }
            body = page.to_string().into_bytes();
        }
        Answer::Response(Response::bytes(r.status, "application/json", body))
    })
}

/// Migrates the mocks' project reading Zephyr through `front`.
pub fn migrate_through(mocks: &MockServers, front: &Scripted) -> RunSummary {
    let dir = Scratch::new("flattened");
    let options = options_through(mocks, front, &dir);
    let pool = test_pool().max_connections_per_host(4).build().unwrap();
    etlpool::migrate::migrate(&pool, &options, &etlpool::CancelToken::new()).unwrap()
}

/// The options of a migration of the mocks' project reading Zephyr through
/// `front`, its journal and report in `dir`.
pub fn options_through(mocks: &MockServers, front: &Scripted, dir: &Scratch) -> MigrateOptions {
    let mut endpoints = etlpool::cli::mock_endpoints(mocks);
    endpoints.zephyr_url = format!("{}/v2", front.url());
    MigrateOptions {
        endpoints,
        mapping: MappingConfig::default(),
        workers: 4,
        journal: dir.0.join("journal.csv"),
        report: dir.0.join("report.csv"),
        dry_run: false,
        only: Phases::default(),
        page_size: 25,
        progress: false,
    }
}

/// Checks that every step log on qTest sits on the qTest step of the Zephyr
/// step its (flattened) result belongs to, a called step naming its case and
/// its calling step. Returns how many called steps were logged.
pub fn assert_results_on_their_steps(mocks: &MockServers) -> usize {
    let state = mocks.qtest_state();
    let key_field = mocks.qtest_config().case_field("Zephyr Key").unwrap().id;
    let key_of = |id: u64| {
        state
            .test_case(id)
            .and_then(|c| c.property(key_field))
            .unwrap_or_default()
            .to_string()
    };
    // qTest step id -> (its case's key, its position).
    let steps: HashMap<u64, (String, usize)> = state
        .test_cases
        .iter()
        .flat_map(|c| {
            c.test_steps
                .iter()
                .map(move |s| (s.id, (c.id, s.order as usize - 1)))
        })
        .map(|(step, (case, pos))| (step, (key_of(case), pos)))
        .collect();
    let mut called = 0;
    for log in &state.test_logs {
        let execution: u64 = log
            .note
            .split("PROJ-E")
            .nth(1)
            .and_then(|r| r.split("<br>").next())
            .and_then(|n| n.parse().ok())
            .expect("the note names the execution");
        let exec = &mocks.source().executions[execution as usize - 1];
        let expected = owners(mocks.source(), &exec.test_case_key, 0);
        for s in &log.test_step_logs {
            let index: usize = s
                .actual_result
                .strip_prefix("flat ")
                .unwrap()
                .parse()
                .unwrap();
            assert_eq!(
                Some(&steps[&s.test_step_id]),
                expected.get(index),
                "log {} result {index}",
                log.id
            );
            if let Some(case) = s.called_test_case_id {
                called += 1;
                assert_eq!(key_of(case), steps[&s.test_step_id].0);
                let parent = s
                    .parent_test_step_id
                    .expect("a called step names its calling step");
                let calling = state
                    .test_cases
                    .iter()
                    .flat_map(|c| &c.test_steps)
                    .find(|t| t.id == parent)
                    .unwrap();
                assert_eq!(calling.called_test_case_id, Some(case));
            }
        }
    }
    called
}
