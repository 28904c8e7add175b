//! The migration and `verify` reading Zephyr as the spec describes it, over
//! real sockets against the mock: executions in one NextGen pass, and a record
//! that can't be read failing alone while its phase goes on.

use std::collections::HashSet;

use crate::support::{Migration, check};
use etlpool::migrate::{DiffKind, RecordKind};
use etlpool::mock::zephyr::data::{Dataset, Quirk};
use etlpool::mock::{DataSizes, MockOptions};

fn sizes() -> DataSizes {
    DataSizes {
        cases: 30,
        steps_per_case: 3,
        cycles: 4,
        executions: 90,
        ..DataSizes::default()
    }
}

/// Mocks serving one unreadable case, cycle and execution.
fn with_unreadable_records(seed: u64) -> Migration {
    let mut options = MockOptions::seeded(seed);
    options.sizes = sizes();
    options.unreadable_records = 1;
    Migration::with_options(options)
}

#[test]
fn the_migration_reads_executions_in_one_nextgen_pass() {
    let m = Migration::new(41, sizes());
    let summary = m.run();
    assert!(summary.is_complete(), "{summary}\n{}", m.failures());
    check::assert_migrated(&m.mocks);
    let routes = m.mocks.zephyr_requests();
    let count = |route: &str| routes.get(route).copied().unwrap_or(0);
    // 90 executions in pages of 25 (the options' page size): 4 pages, once.
    assert_eq!(count("testexecutions/nextgen"), 4, "{routes:?}");
    // The offset listing only sizes the progress bar (maxResults=1).
    assert_eq!(count("testexecutions"), 1, "{routes:?}");
    assert_eq!(count("testcases/nextgen"), 2, "{routes:?}");
    assert_eq!(count("testcycles/nextgen"), 1, "{routes:?}");
}

/// The source's records served broken, as the report names them: cases by
/// key, cycles by id, executions (which lack id and key) by position.
fn unreadable(src: &Dataset) -> Vec<(RecordKind, String)> {
    let broken = Some(Quirk::Unreadable);
    let mut out: Vec<(RecordKind, String)> = Vec::new();
    out.extend(
        src.cases
            .iter()
            .filter(|c| c.quirk == broken)
            .map(|c| (RecordKind::Case, c.key.clone())),
    );
    out.extend(
        src.cycles
            .iter()
            .filter(|c| c.quirk == broken)
            .map(|c| (RecordKind::Cycle, c.id.to_string())),
    );
    let positions = src
        .executions
        .iter()
        .enumerate()
        .filter(|(_, e)| e.quirk == broken);
    out.extend(positions.map(|(i, _)| (RecordKind::Log, format!("#{i}"))));
    out
}

#[test]
fn an_unreadable_record_fails_alone_with_its_key_and_the_run_goes_on() {
    let m = with_unreadable_records(42);
    let summary = m.run();
    assert!(
        summary.aborted.is_none() && !summary.is_complete(),
        "{summary}"
    );
    let src = m.mocks.source();
    let broken = unreadable(src);
    assert_eq!(broken.len(), 3);
    let report = std::fs::read_to_string(m.dir.0.join("report.csv")).unwrap();
    for (kind, key) in &broken {
        let row = report
            .lines()
            .find(|l| l.starts_with(&format!("{kind},{key},,failed,")))
            .unwrap_or_else(|| panic!("no failed row for {kind} {key}:\n{}", m.failures()));
        assert!(
            row.contains("unreadable record") && row.contains("record: {"),
            "{row}"
        );
        assert!(!row.contains(m.mocks.zephyr_token()), "{row}");
    }
    // Everything else went through: every other case and cycle, and the
    // runs and logs whose case and cycle are readable.
    let created = |kind: &str| summary.records[kind].created;
    assert_eq!(created("case"), src.cases.len() as u64 - 1);
    let cycles = src.cycles.len() as u64 - 1;
    let ad_hoc = u64::from(src.executions.iter().any(|e| e.cycle_id.is_none()));
    assert_eq!(created("cycle"), cycles + ad_hoc);
    let (case, cycle) = (&broken[0].1, broken[1].1.parse::<u64>().unwrap());
    let under_broken = |e: &&etlpool::mock::zephyr::data::Execution| {
        &e.test_case_key == case
            || e.cycle_id == Some(cycle)
            || e.quirk.is_some_and(|q| q == Quirk::Unreadable)
    };
    let pairs: HashSet<(Option<u64>, &str)> = src
        .executions
        .iter()
        .filter(|e| !under_broken(e))
        .map(|e| (e.cycle_id, e.test_case_key.as_str()))
        .collect();
    assert_eq!(created("run"), pairs.len() as u64, "{}", m.failures());
    // A second run retries what failed and duplicates nothing.
    let writes = m.mocks.journal().len();
    let again = m.run();
    assert_eq!(again.failed, summary.failed);
    assert_eq!(m.mocks.journal().len(), writes, "the second run wrote");
}

#[test]
fn verify_reports_an_unreadable_record_as_unmappable_and_checks_the_rest() {
    let m = with_unreadable_records(43);
    m.run();
    let report = m.verify();
    let unmappable: HashSet<(RecordKind, String)> = report
        .differences
        .iter()
        .filter(|d| d.kind == DiffKind::Unmappable && d.actual.contains("unreadable record"))
        .map(|d| (d.record, d.key.clone()))
        .collect();
    let want: HashSet<(RecordKind, String)> = unreadable(m.mocks.source()).into_iter().collect();
    assert_eq!(unmappable, want, "{report}");
    // The rest differs only by what hangs under the unreadable case and cycle.
    assert!(
        report
            .differences
            .iter()
            .all(|d| d.kind == DiffKind::Unmappable),
        "{report}"
    );
    assert_eq!(report.checked.cases, m.mocks.source().cases.len() as u64);
}
