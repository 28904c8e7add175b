//! Adversarial sync tests: what a nightly sync must not lose or write twice.

use crate::support::Migration;
use etlpool::migrate::{RunHooks, RunSummary, SyncOptions};
use etlpool::mock::DataSizes;

fn sizes() -> DataSizes {
    DataSizes {
        folders: 2,
        folder_depth: 1,
        cycle_folders: 1,
        cases: 8,
        steps_per_case: 2,
        cycles: 2,
        executions: 20,
    }
}

fn sync(m: &Migration) -> RunSummary {
    let cancel = etlpool::CancelToken::new();
    let hooks = RunHooks::default().sync(SyncOptions::default());
    etlpool::migrate::migrate_with(&m.pool, &m.options(), &cancel, &hooks).expect("run")
}

/// An execution imported after the last sync with an `actualEndDate` days
/// in the past (results of an offline or CI run uploaded late; Zephyr takes
/// the date from the request) is still migrated by the next sync.
#[test]
fn an_execution_written_late_with_an_old_end_date_is_migrated() {
    let m = Migration::new(141, sizes());
    let first = m.run();
    assert!(first.is_complete(), "{first}\n{}", m.failures());

    let (id, ended) = m.mocks.mutate_zephyr(|d| {
        let oldest = d
            .executions
            .iter()
            .filter_map(|e| e.actual_end_date.clone())
            .min()
            .expect("executions with an end date");
        let id = d.add_executions(1)[0];
        let exec = d.executions.iter_mut().find(|e| e.id == id).unwrap();
        exec.actual_end_date = Some(oldest.clone());
        (id, oldest)
    });

    let summary = sync(&m);
    assert!(summary.is_complete(), "{summary}\n{}", m.failures());
    assert_eq!(
        summary.records["log"].created, 1,
        "execution {id} (ended {ended}, written after the last sync) is migrated: {summary}"
    );
    let report = m.verify();
    assert!(report.is_clean(), "{report}");
}

/// qTest crashes right after applying the `PUT` of a changed case, before
/// answering: the next run finds qTest already holding what it would send,
/// which is no conflict (nobody edited the case on qTest).
#[test]
fn a_case_update_applied_before_a_crash_is_no_conflict_next_time() {
    let dir = crate::support::Scratch::new("sync-crash");
    let mut options = etlpool::mock::MockOptions::seeded(142);
    options.sizes = sizes();
    options.state_file = Some(dir.0.join("qtest-state.jsonl"));
    let mut m = Migration::with_options(options);
    let first = m.run();
    assert!(first.is_complete(), "{first}\n{}", m.failures());

    let changed = m.mocks.mutate_zephyr(|d| d.change_cases(1));
    m.mocks.faults().qtest.set_crash_after_writes(Some(1));
    let crashed = sync(&m);
    assert!(
        !crashed.is_complete(),
        "the crash went unnoticed: {crashed}"
    );
    assert!(m.mocks.faults().qtest.crashed());
    m.mocks.faults().qtest.clear();
    m.mocks.restart_qtest().unwrap();
    m.new_process();

    let summary = sync(&m);
    assert_eq!(
        summary.records["case"].conflict, 0,
        "{changed:?}: {summary}"
    );
    assert!(summary.is_complete(), "{summary}\n{}", m.failures());
    let report = m.verify();
    assert!(report.is_clean(), "{report}");
}
