//! Incremental sync and repair, end to end over real sockets: a migrated
//! project changes in Zephyr (and on qTest), the next run writes exactly
//! what changed.

use std::collections::BTreeMap;

use crate::support::Migration;
use etlpool::migrate::{RunHooks, RunSummary, SyncOptions};
use etlpool::mock::DataSizes;
use etlpool::mock::qtest::state::JournalEntry;

fn sizes() -> DataSizes {
    DataSizes {
        folders: 4,
        folder_depth: 2,
        cycle_folders: 1,
        cases: 20,
        steps_per_case: 3,
        cycles: 3,
        executions: 60,
    }
}

fn sync(m: &Migration, options: SyncOptions) -> RunSummary {
    let cancel = etlpool::CancelToken::new();
    let hooks = RunHooks::default().sync(options);
    etlpool::migrate::migrate_with(&m.pool, &m.options(), &cancel, &hooks).expect("run")
}

/// qTest writes since `from`, by method and what was written.
fn writes_since(m: &Migration, from: usize) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for e in &m.mocks.journal()[from..] {
        *out.entry(what(e)).or_default() += 1;
    }
    out
}

fn what(e: &JournalEntry) -> String {
    format!("{} {}", e.method, e.kind)
}

/// The qTest id of the case migrated from Zephyr `key`.
fn case_id(m: &Migration, key: &str) -> u64 {
    let field = m.mocks.qtest_config().case_field("Zephyr Key").unwrap().id;
    let state = m.mocks.qtest_state();
    let case = state
        .test_cases
        .iter()
        .find(|c| c.property(field) == Some(key));
    case.unwrap_or_else(|| panic!("{key} is on qTest")).id
}

fn migrated() -> Migration {
    let m = Migration::new(14, sizes());
    let first = m.run();
    assert!(first.is_complete(), "{first}\n{}", m.failures());
    m
}

/// Every run's logs were created in `exe_end_date` order.
fn assert_logs_in_order(m: &Migration) {
    let state = m.mocks.qtest_state();
    for run in &state.test_runs {
        let ends: Vec<&str> = state
            .logs_of(run.id)
            .map(|l| l.exe_end_date.as_str())
            .collect();
        let mut sorted = ends.clone();
        sorted.sort();
        assert_eq!(ends, sorted, "logs of run {}", run.id);
    }
}

#[test]
fn a_sync_writes_exactly_the_new_and_changed_records() {
    let m = migrated();
    let before = m.mocks.journal().len();
    let (execs, new, changed) = m
        .mocks
        .mutate_zephyr(|d| (d.add_executions(10), d.add_cases(3), d.change_cases(2)));
    assert_eq!((execs.len(), new.len(), changed.len()), (10, 3, 2));

    let summary = sync(&m, SyncOptions::default());
    assert!(summary.is_complete(), "{summary}\n{}", m.failures());
    let writes = writes_since(&m, before);
    let approvals = writes.get("PUT approve").copied().unwrap_or(0);
    let expected: BTreeMap<String, usize> = [
        ("POST test-case".to_string(), 3),
        ("PUT test-case".to_string(), 2),
        ("POST test-log".to_string(), 10),
    ]
    .into_iter()
    .chain((approvals > 0).then(|| ("PUT approve".to_string(), approvals)))
    .collect();
    assert_eq!(writes, expected, "{summary}");
    assert!(approvals <= 5, "only new and updated cases are approved");
    assert_eq!(summary.records["case"].created, 3, "{summary}");
    assert_eq!(summary.records["case"].updated, 2, "{summary}");
    assert_eq!(summary.records["case"].conflict, 0, "{summary}");
    assert_eq!(summary.records["log"].created, 10, "{summary}");
    for key in &changed {
        let id = case_id(&m, key);
        let case = m.mocks.qtest_state().test_case(id).cloned().unwrap();
        assert!(case.name.ends_with("(changed)"), "{key}: {}", case.name);
        assert!(case.test_steps[0].description.contains("changed in Zephyr"));
    }
    assert_logs_in_order(&m);
    let report = m.verify();
    assert!(report.is_clean(), "{report}");

    // Nothing new: nothing written, and no execution page read again beyond the mark.
    let before = m.mocks.journal().len();
    let again = sync(&m, SyncOptions::default());
    assert!(again.is_complete(), "{again}");
    assert_eq!(writes_since(&m, before), BTreeMap::new(), "{again}");
}

#[test]
fn a_case_edited_on_qtest_is_a_conflict_left_alone_until_overwrite() {
    let m = migrated();
    let changed = m.mocks.mutate_zephyr(|d| d.change_cases(1));
    let id = case_id(&m, &changed[0]);
    m.mocks
        .edit_case(id, serde_json::json!({"name": "Renamed by a person"}))
        .unwrap();
    let before = m.mocks.journal().len();

    let summary = sync(&m, SyncOptions::default());
    assert_eq!(summary.records["case"].conflict, 1, "{summary}");
    assert_eq!(summary.records["case"].updated, 0, "{summary}");
    assert_eq!(writes_since(&m, before), BTreeMap::new(), "left alone");
    let report = std::fs::read_to_string(m.dir.0.join("report.csv")).unwrap();
    assert!(
        report
            .lines()
            .any(|l| l.contains(&changed[0]) && l.contains(",conflict,")),
        "{report}"
    );
    let case = m.mocks.qtest_state().test_case(id).cloned().unwrap();
    assert_eq!(case.name, "Renamed by a person");

    let summary = sync(&m, SyncOptions::default().overwrite(true));
    assert_eq!(summary.records["case"].updated, 1, "{summary}");
    let case = m.mocks.qtest_state().test_case(id).cloned().unwrap();
    assert!(case.name.ends_with("(changed)"), "{}", case.name);
    let report = m.verify();
    assert!(report.is_clean(), "{report}");
}

#[test]
fn repair_restores_a_deleted_case_with_its_runs_and_logs() {
    let m = migrated();
    let data = m.mocks.zephyr_data();
    let called: Vec<&str> = data
        .cases
        .iter()
        .filter_map(|c| match &c.script {
            etlpool::mock::zephyr::data::Script::Steps(steps) => Some(steps),
            _ => None,
        })
        .flatten()
        .filter_map(|s| match s {
            etlpool::mock::zephyr::data::Step::Call { test_case_key, .. } => {
                Some(test_case_key.as_str())
            }
            _ => None,
        })
        .collect();
    // A case with runs that no other case calls (a call would keep its old id).
    let state = m.mocks.qtest_state();
    let key = data
        .cases
        .iter()
        .map(|c| c.key.clone())
        .filter(|k| !called.contains(&k.as_str()))
        .find(|k| {
            let id = case_id(&m, k);
            state.test_runs.iter().any(|r| r.test_case_id == id)
        })
        .expect("a case with runs");
    let runs = m.mocks.delete_case_with_runs(case_id(&m, &key)).unwrap();
    assert!(!runs.is_empty());
    let broken = m.verify();
    assert!(!broken.is_clean());

    // A plain run checks on qTest only the cases changed in Zephyr.
    let plain = sync(&m, SyncOptions::default());
    let report = std::fs::read_to_string(m.dir.0.join("report.csv")).unwrap();
    assert_eq!(plain.records["case"].updated, 0, "{plain}\n{report}");

    let before = m.mocks.journal().len();
    let repaired = sync(&m, SyncOptions::default().repair(true));
    assert!(repaired.is_complete(), "{repaired}\n{}", m.failures());
    let writes = writes_since(&m, before);
    assert_eq!(writes.get("POST test-case"), Some(&1), "{writes:?}");
    assert_eq!(writes.get("POST test-run"), Some(&runs.len()), "{writes:?}");
    assert!(
        writes.get("POST test-log").is_some_and(|&n| n > 0),
        "{writes:?}"
    );
    let report = m.verify();
    assert!(report.is_clean(), "{report}");
    assert_logs_in_order(&m);

    // The corrected journal holds: a plain run afterwards writes nothing.
    let before = m.mocks.journal().len();
    let after = sync(&m, SyncOptions::default());
    assert!(after.is_complete(), "{after}");
    assert_eq!(writes_since(&m, before), BTreeMap::new());
}

#[test]
fn a_sync_with_nothing_new_reads_executions_only_from_the_mark() {
    let m = migrated();
    let pages = |m: &Migration| {
        m.mocks
            .zephyr_requests()
            .get("testexecutions/nextgen")
            .copied()
            .unwrap_or(0)
    };
    let (before, requests) = (pages(&m), m.mocks.zephyr_stats().snapshot().requests);
    let full = sync(&m, SyncOptions::default().full(true));
    let full_pages = pages(&m) - before;
    let full_requests = m.mocks.zephyr_stats().snapshot().requests - requests;
    let scripts = |m: &Migration| {
        let routes = m.mocks.zephyr_requests();
        let n = |r: &str| routes.get(r).copied().unwrap_or(0);
        n("testcases/{}/teststeps") + n("testcases/{}/testscript")
    };
    let (before, requests, read) = (
        pages(&m),
        m.mocks.zephyr_stats().snapshot().requests,
        scripts(&m),
    );
    let synced = sync(&m, SyncOptions::default());
    assert_eq!(scripts(&m) - read, 0, "no case changed: no script read");
    let sync_pages = pages(&m) - before;
    let sync_requests = m.mocks.zephyr_stats().snapshot().requests - requests;
    eprintln!(
        "no-change run: every execution {full_pages} pages, {full_requests} Zephyr requests; \
         from the mark {sync_pages} pages, {sync_requests} requests"
    );
    assert!(full.is_complete() && synced.is_complete(), "{synced}");
    // 60 executions at 25 a page: 3 pages; since the mark, one (short) page.
    assert_eq!(full_pages, 3);
    assert_eq!(sync_pages, 1);
    assert!(sync_requests < full_requests);
}

#[test]
fn a_case_whose_steps_alone_changed_is_updated() {
    let m = migrated();
    let key = m.mocks.zephyr_data().cases[0].key.clone();
    assert!(
        m.mocks.mutate_zephyr(|d| d.change_steps(&key)),
        "{key} has steps"
    );
    let before = m.mocks.journal().len();
    let summary = sync(&m, SyncOptions::default());
    assert_eq!(summary.records["case"].updated, 1, "{summary}");
    assert_eq!(writes_since(&m, before).get("PUT test-case"), Some(&1));
    let id = case_id(&m, &key);
    let case = m.mocks.qtest_state().test_case(id).cloned().unwrap();
    assert_eq!(case.test_steps[0].expected, "changed in Zephyr");
    let report = m.verify();
    assert!(report.is_clean(), "{report}");
}
