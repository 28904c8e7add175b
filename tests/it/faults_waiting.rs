//! Issue 12, items 2 and 3: a record whose parent is not migrated waits for
//! it (one `waiting` row naming the parent, not a copy of the parent's
//! error), and a run's logs are never created after an earlier log of that
//! run that is missing: they wait for the next run, which creates them in
//! order.

use std::collections::BTreeMap;

use etlpool::migrate::{MappingConfig, run_key};
use etlpool::mock::zephyr::data::{Dataset, Execution};

use crate::faults_util::{Row, options, row, rows, sizes};
use crate::support::{Migration, check};

/// Every (cycle, case) pair's executions in log order: end date, then id,
/// executions without an end date (not executed) last.
fn runs(src: &Dataset) -> BTreeMap<String, Vec<&Execution>> {
    let mut runs: BTreeMap<String, Vec<&Execution>> = BTreeMap::new();
    for e in &src.executions {
        runs.entry(run_key(e.cycle_id, &e.test_case_key))
            .or_default()
            .push(e);
    }
    for execs in runs.values_mut() {
        execs.sort_by_key(|e| (e.actual_end_date.is_none(), e.actual_end_date.clone(), e.id));
    }
    runs
}

#[test]
fn records_under_a_failed_case_wait_for_it_instead_of_failing_with_it() {
    let m = Migration::new(123, sizes());
    // qTest has no priority "Critical": every High case fails to map.
    let mut mapping = MappingConfig {
        same_label_first: false,
        ..MappingConfig::default()
    };
    mapping.priority.insert("High".into(), "Critical".into());
    let first = m.run_with(&options(&m, "modules,cases,cycles,runs,logs", mapping));
    assert!(!first.is_complete(), "{first}");
    let src = m.mocks.source();
    let high: Vec<&str> = src
        .cases
        .iter()
        .filter(|c| {
            src.priorities
                .iter()
                .any(|p| p.id == c.priority_id && p.name == "High")
        })
        .map(|c| c.key.as_str())
        .collect();
    assert!(!high.is_empty(), "the seed has High cases");
    let rows = rows(&m);
    let failed: Vec<&Row> = rows.iter().filter(|r| r.action == "failed").collect();
    assert!(
        failed.iter().all(|r| r.kind == "case"),
        "only the cases fail: {failed:#?}"
    );
    assert_eq!(failed.len(), high.len(), "{failed:#?}");
    let mut waited = 0;
    for (key, execs) in runs(src) {
        if !high.contains(&execs[0].test_case_key.as_str()) {
            continue;
        }
        let run = row(&rows, "run", &key);
        let case = &execs[0].test_case_key;
        assert_eq!(
            (run.action.as_str(), run.error.as_str()),
            ("waiting", format!("waiting for case {case}").as_str()),
            "{run:?}"
        );
        for e in execs {
            let log = row(&rows, "log", &e.id.to_string());
            assert_eq!(log.action, "waiting", "{log:?}");
            assert_eq!(log.error, format!("waiting for run {key}"), "{log:?}");
            waited += 1;
        }
    }
    assert!(waited > 0, "the High cases have executions");
    // The next run, with a mapping that works, does what waited.
    let second = m.run();
    assert!(second.is_complete(), "{second}\n{}", m.failures());
    check::assert_migrated(&m.mocks);
}

#[test]
fn a_log_that_fails_holds_back_the_later_logs_of_its_run_until_the_next_run() {
    let m = Migration::new(124, sizes());
    // qTest has no execution status "Nope": every log with a Blocked status,
    // its own or a step's, fails.
    let mut mapping = MappingConfig {
        same_label_first: false,
        ..MappingConfig::default()
    };
    mapping
        .execution_status
        .insert("Blocked".into(), "Nope".into());
    let first = m.run_with(&options(&m, "modules,cases,cycles,runs,logs", mapping));
    assert!(!first.is_complete(), "{first}");
    let src = m.mocks.source();
    let rows = rows(&m);
    let state = m.mocks.qtest_state();
    let mut held = 0;
    for (key, execs) in &runs(src) {
        // The first log that failed: a Blocked execution, or one with a
        // Blocked step result (step logs take the mapped statuses too).
        let Some(blocked) = execs
            .iter()
            .position(|e| row(&rows, "log", &e.id.to_string()).action == "failed")
        else {
            continue;
        };
        let blocker = execs[blocked].id;
        let failed = row(&rows, "log", &blocker.to_string());
        assert!(failed.error.contains("`Nope`"), "{failed:?}");
        for earlier in &execs[..blocked] {
            let log = row(&rows, "log", &earlier.id.to_string());
            assert!(
                ["created", "skipped"].contains(&log.action.as_str()),
                "{log:?}"
            );
        }
        for later in &execs[blocked + 1..] {
            let log = row(&rows, "log", &later.id.to_string());
            assert_eq!(log.action, "waiting", "{log:?}");
            assert!(
                log.error.contains(&format!("log {blocker}")),
                "names the log it waits for: {log:?}"
            );
            held += 1;
        }
        // Nothing of that run on qTest ends after the failed log.
        let end = execs[blocked].actual_end_date.clone().unwrap_or_default();
        let run = row(&rows, "run", key);
        let run_id: u64 = run.target.parse().unwrap_or_else(|_| panic!("{run:?}"));
        for log in state.test_logs.iter().filter(|l| l.run_id == run_id) {
            assert!(log.exe_end_date <= end, "{log:?} after {end}");
        }
    }
    assert!(held > 0, "the seed has a failing log with later ones");
    assert!(
        state.test_logs.len() < src.executions.len(),
        "the held logs were not created"
    );
    let second = m.run();
    assert!(second.is_complete(), "{second}\n{}", m.failures());
    // Every run's logs in end-date order, the Blocked ones included.
    check::assert_migrated(&m.mocks);
}
