//! Issue 12, item 1: a create whose outcome is unknown is resolved in the same
//! run, by look-up-then-create rounds with backoff, as many as the retry
//! policy allows, and the look-up reads the parent's listing, not a search
//! index that may lag behind writes.

use std::collections::HashMap;
use std::time::Duration;

use etlpool::mock::qtest::SearchLag;
use serde_json::json;

use crate::faults_util::{no_approvals, options, row, rows, sizes};
use crate::support::Migration;
use crate::support::mock::{Mocks, small};

/// A lag no test outlives: the search never sees what the test writes.
fn lagging() -> SearchLag {
    SearchLag {
        writes: 0,
        time: Duration::from_secs(3600),
    }
}

#[test]
fn the_mock_search_can_lag_behind_writes_while_listings_do_not() {
    let m = Mocks::start(small(120));
    m.m.set_search_lag(lagging());
    let module = m.module("Lagging", None);
    let case = m.case("Check pump", module, "PROJ-T999");
    let query = json!({"object_type": "test-cases", "fields": ["*"],
        "query": "'Zephyr Key' = 'PROJ-T999'"});
    let found = m.q("POST", "/search?page=1&pageSize=100", Some(&query));
    assert_eq!(found.json()["total"], 0, "{}", found.text);
    let listed = m.q("GET", &format!("/test-cases?parentId={module}"), None);
    assert_eq!(listed.json()[0]["id"], case["id"], "{}", listed.text);
    m.m.set_search_lag(SearchLag {
        writes: 1,
        time: Duration::ZERO,
    });
    m.case("Check valve", module, "PROJ-T998");
    let query = json!({"object_type": "test-cases", "fields": ["*"], "query": "Name ~ 'Check'"});
    let found = m.q("POST", "/search?page=1&pageSize=100", Some(&query));
    assert_eq!(found.json()["total"], 1, "the lag counts later writes");
    m.m.set_search_lag(SearchLag::none());
    let found = m.q("POST", "/search?page=1&pageSize=100", Some(&query));
    assert_eq!(found.json()["total"], 2);
}

#[test]
fn a_create_refused_several_times_lands_after_lookup_and_create_rounds() {
    let m = Migration::new(121, sizes());
    // The first module's create fails three times, unapplied, with a 503:
    // each time its outcome is unknown to the client (a 5xx to a POST).
    m.mocks.refuse_next_qtest_writes(3);
    let opts = etlpool::migrate::MigrateOptions {
        workers: 1,
        ..options(&m, "modules", no_approvals())
    };
    let summary = m.run_with(&opts);
    assert!(summary.is_complete(), "{summary}\n{}", m.failures());
    let folders = m
        .mocks
        .source()
        .folders
        .iter()
        .filter(|f| f.folder_type == "TEST_CASE")
        .count();
    assert_eq!(m.mocks.qtest_state().modules.len(), folders, "no duplicate");
    assert_eq!(summary.records["module"].created as usize, folders);
}

#[test]
fn a_lost_answer_is_looked_up_in_the_parents_listing_not_a_lagging_search() {
    let m = Migration::new(122, sizes());
    m.mocks.set_search_lag(lagging());
    // Every write is applied and then its answer lost: every create's
    // outcome is unknown, and only a look-up can tell it happened.
    m.mocks.faults().qtest.set_reset_after_write_rate(1.0);
    let summary = m.run_with(&options(&m, "modules,cases", no_approvals()));
    assert!(summary.is_complete(), "{summary}\n{}", m.failures());
    let key_field = m.mocks.qtest_config().case_field("Zephyr Key").unwrap().id;
    let mut copies: HashMap<String, usize> = HashMap::new();
    for case in &m.mocks.qtest_state().test_cases {
        *copies
            .entry(case.property(key_field).unwrap_or_default().to_string())
            .or_default() += 1;
    }
    let source = m.mocks.source();
    for case in &source.cases {
        assert_eq!(copies.get(&case.key), Some(&1), "copies of {}", case.key);
    }
    let rows = rows(&m);
    for case in &source.cases {
        assert_eq!(row(&rows, "case", &case.key).action, "found");
    }
}
