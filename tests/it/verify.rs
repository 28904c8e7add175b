//! `verify` against the mocks over real sockets: a faithful migration (made by
//! the plain loop of `support_migration`) verifies clean, and each planted
//! difference is reported with its kind and key, and nothing else.

use std::collections::HashSet;

use crate::support::migration::{Migrated, Tamper};
use etlpool::http::{ApiClient, Auth};
use etlpool::migrate::{
    Counts, DiffKind, Difference, MappingConfig, RecordKind, VerifyOptions, run_key,
};
use etlpool::mock::{DataSizes, FailPoint, MockOptions, MockServers};
use etlpool::policy::BreakerPolicy;
use etlpool::qtest::{NewTestCase, PropertyValue, QtestClient};
use etlpool::zephyr::ZephyrClient;

/// A small project: a few of everything, some cases in no folder.
fn small() -> MockOptions {
    MockOptions {
        sizes: DataSizes {
            folders: 5,
            folder_depth: 2,
            cycle_folders: 2,
            cases: 12,
            steps_per_case: 3,
            cycles: 3,
            executions: 30,
        },
        ..MockOptions::seeded(7)
    }
}

/// (record, kind, key) of every difference, in order.
fn kinds(differences: &[Difference]) -> Vec<(RecordKind, DiffKind, String)> {
    differences
        .iter()
        .map(|d| (d.record, d.kind, d.key.clone()))
        .collect()
}

/// What a faithful migration of the mocks' source must be checked against.
fn expected_counts(m: &Migrated) -> Counts {
    let src = m.mocks.source();
    let not_executed: HashSet<u64> = src
        .statuses_of("TEST_EXECUTION")
        .filter(|s| s.name == "Not Executed")
        .map(|s| s.id)
        .collect();
    let folders = |t: &str| src.folders.iter().filter(|f| f.folder_type == t).count() as u64;
    let pairs: HashSet<(Option<u64>, &str)> = src
        .executions
        .iter()
        .map(|e| (e.cycle_id, e.test_case_key.as_str()))
        .collect();
    let mut counts = Counts::default();
    counts.modules = folders("TEST_CASE");
    counts.cycle_folders = folders("TEST_CYCLE");
    counts.cases = src.cases.len() as u64;
    counts.cycles = src.cycles.len() as u64;
    counts.runs = pairs.len() as u64;
    counts.logs = src
        .executions
        .iter()
        .filter(|e| !not_executed.contains(&e.status_id))
        .count() as u64;
    counts
}

/// A case key with this many (cycle, case) pairs in the source, and those pairs.
fn case_with_runs(m: &Migrated) -> (String, Vec<String>) {
    let src = m.mocks.source();
    let mut keys: Vec<&str> = src
        .executions
        .iter()
        .map(|e| e.test_case_key.as_str())
        .collect();
    keys.sort_unstable();
    let key = keys[0].to_owned();
    let mut runs: Vec<String> = m
        .targets
        .keys()
        .filter(|(kind, k)| *kind == RecordKind::Run && k.ends_with(&format!("/{key}")))
        .map(|(_, k)| k.clone())
        .collect();
    runs.sort();
    (key, runs)
}

/// Asserts that the seed gives the shapes verify must handle: cases in no
/// folder, call steps, plain and BDD scripts, Not Executed executions and
/// repeated sibling folder names.
fn assert_varied(m: &Migrated) {
    use etlpool::mock::zephyr::data::{Script, Step};
    let src = m.mocks.source();
    let calls = |c: &&etlpool::mock::zephyr::data::TestCase| match &c.script {
        Script::Steps(steps) => steps.iter().any(|s| matches!(s, Step::Call { .. })),
        _ => false,
    };
    assert!(src.cases.iter().any(|c| c.folder_id.is_none()));
    assert!(src.cases.iter().any(|c| calls(&c)));
    assert!(
        src.cases
            .iter()
            .any(|c| matches!(c.script, Script::Plain(_)))
    );
    assert!(src.cases.iter().any(|c| matches!(c.script, Script::Bdd(_))));
    assert!(src.executions.iter().any(|e| e.actual_end_date.is_none()));
    let names: HashSet<(Option<u64>, &str)> = src
        .folders
        .iter()
        .map(|f| (f.parent_id, f.name.as_str()))
        .collect();
    assert!(names.len() < src.folders.len(), "no repeated sibling names");
}

#[test]
fn a_faithful_migration_verifies_clean() {
    let m = Migrated::new(small(), &Tamper::default());
    assert_varied(&m);
    let report = m.verify();
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.checked, expected_counts(&m));
    assert_eq!(report.not_checked, Counts::default());
    assert!(report.checked.cases > 0 && report.checked.logs > 0 && report.checked.modules > 0);
    assert!(report.to_string().ends_with("verdict: clean"), "{report}");
    // One worker gives the same answer.
    let one = VerifyOptions {
        workers: 1,
        ..VerifyOptions::default()
    };
    let mapping = etlpool::migrate::MappingConfig::default();
    let again = etlpool::migrate::verify(&m.zephyr, &m.qtest, &mapping, &one).unwrap();
    assert_eq!(again, report);
}

#[test]
fn a_deleted_case_is_missing_and_its_runs_are_not_checked() {
    let m = Migrated::new(small(), &Tamper::default());
    let (key, runs) = case_with_runs(&m);
    m.mocks.delete_case(m.id(RecordKind::Case, &key)).unwrap();
    let report = m.verify();
    assert_eq!(
        kinds(&report.differences),
        [(RecordKind::Case, DiffKind::Missing, key.clone())]
    );
    assert_eq!(report.differences[0].actual, "not found");
    assert_eq!(report.not_checked.runs, runs.len() as u64);
    assert_eq!(
        report.checked.runs + report.not_checked.runs,
        expected_counts(&m).runs
    );
    assert!(
        report
            .to_string()
            .contains(&format!("  case {key}: missing: expected \""))
    );
}

#[test]
fn a_duplicated_case_is_reported_once_with_both_ids() {
    let m = Migrated::new(small(), &Tamper::default());
    let key = &m.mocks.source().cases[3].key;
    let id = m.id(RecordKind::Case, key);
    let copy = m.mocks.duplicate_case(id).unwrap();
    let report = m.verify();
    assert_eq!(
        kinds(&report.differences),
        [(RecordKind::Case, DiffKind::Duplicate, key.clone())]
    );
    assert_eq!(
        report.differences[0].actual,
        format!("2 on qTest (ids {id}, {copy})")
    );
    assert_eq!(report.checked, expected_counts(&m));
}

#[test]
fn a_log_with_the_wrong_status_is_reported_on_its_execution() {
    // The same seed gives the same data and ids: read them before migrating.
    let twin = MockServers::start(small()).unwrap();
    let pass = twin
        .source()
        .statuses_of("TEST_EXECUTION")
        .find(|s| s.name == "Pass")
        .unwrap()
        .id;
    let exec = twin
        .source()
        .executions
        .iter()
        .find(|e| e.status_id == pass)
        .unwrap()
        .id;
    let failed = twin.qtest_config().status_named("Failed").unwrap().id;
    let m = Migrated::new(
        small(),
        &Tamper {
            log_status: Some((exec, failed)),
            ..Tamper::default()
        },
    );
    let report = m.verify();
    assert_eq!(
        kinds(&report.differences),
        [(RecordKind::Log, DiffKind::Mismatch, exec.to_string())]
    );
    let d = &report.differences[0];
    assert_eq!(d.field.as_deref(), Some("status"));
    assert!(d.expected.starts_with("Passed at 2024-"), "{d}");
    assert!(d.actual.starts_with("Failed at 2024-"), "{d}");
    assert_eq!(report.checked, expected_counts(&m));
}

#[test]
fn a_missing_run_is_reported_and_its_logs_not_checked() {
    let twin = MockServers::start(small()).unwrap();
    let first = &twin.source().executions[0];
    let skipped = run_key(first.cycle_id, &first.test_case_key);
    let m = Migrated::new(
        small(),
        &Tamper {
            skip_run: Some(skipped.clone()),
            ..Tamper::default()
        },
    );
    let report = m.verify();
    assert_eq!(
        kinds(&report.differences),
        [(RecordKind::Run, DiffKind::Missing, skipped)]
    );
    let counts = expected_counts(&m);
    assert_eq!(report.checked.runs, counts.runs);
    let src = twin.source();
    let not_executed = src
        .statuses_of("TEST_EXECUTION")
        .find(|s| s.name == "Not Executed")
        .unwrap()
        .id;
    let its_logs = src
        .executions
        .iter()
        .filter(|e| (e.cycle_id, &e.test_case_key) == (first.cycle_id, &first.test_case_key))
        .filter(|e| e.status_id != not_executed)
        .count() as u64;
    assert_eq!(report.not_checked.logs, its_logs);
    assert_eq!(report.checked.logs, counts.logs - its_logs);
}

#[test]
fn a_changed_case_is_read_again_to_name_the_field() {
    let key = "PROJ-T2".to_owned();
    let edit: fn(&mut NewTestCase) = |body| body.precondition = "Something else".into();
    let m = Migrated::new(
        small(),
        &Tamper {
            case: Some((key.clone(), edit)),
            ..Tamper::default()
        },
    );
    let report = m.verify();
    assert_eq!(
        kinds(&report.differences),
        [(RecordKind::Case, DiffKind::Mismatch, key)]
    );
    let d = &report.differences[0];
    assert_eq!(d.field.as_deref(), Some("precondition"));
    assert_eq!(d.actual, "\"Something else\"");
}

#[test]
fn a_case_with_a_key_zephyr_lacks_is_extra() {
    let m = Migrated::new(small(), &Tamper::default());
    let field = m.catalog.key_field_id();
    let module = m.id(RecordKind::Module, etlpool::migrate::transform::DEFAULT_KEY);
    let stray = NewTestCase {
        name: "Stray".into(),
        description: String::new(),
        precondition: String::new(),
        parent_id: Some(module),
        properties: vec![PropertyValue {
            field_id: field,
            field_value: "PROJ-T999".into(),
        }]
        .into_iter()
        .chain(crate::support::migration::required_properties(&m.qtest))
        .collect(),
        test_steps: Vec::new(),
    };
    let id = m.qtest.create_case(&stray).unwrap().id;
    let report = m.verify();
    assert_eq!(
        kinds(&report.differences),
        [(RecordKind::Case, DiffKind::Extra, "PROJ-T999".into())]
    );
    assert_eq!(report.differences[0].actual, format!("case {id}"));
}

#[test]
fn a_renamed_cycle_is_a_mismatch_and_a_missing_one_hides_its_runs() {
    let twin = MockServers::start(small()).unwrap();
    let src = twin.source();
    let (renamed, skipped) = (src.cycles[0].id, src.cycles[1].id);
    let tamper = Tamper {
        rename_cycle: Some((renamed, "Renamed".into())),
        skip_cycle: Some(skipped),
        ..Tamper::default()
    };
    let m = Migrated::new(small(), &tamper);
    let report = m.verify();
    assert_eq!(
        kinds(&report.differences),
        [
            (RecordKind::Cycle, DiffKind::Mismatch, renamed.to_string()),
            (RecordKind::Cycle, DiffKind::Missing, skipped.to_string()),
        ]
    );
    assert_eq!(report.differences[0].field.as_deref(), Some("name"));
    assert_eq!(report.differences[0].actual, "\"Renamed\"");
    let under: HashSet<&str> = src
        .executions
        .iter()
        .filter(|e| e.cycle_id == Some(skipped))
        .map(|e| e.test_case_key.as_str())
        .collect();
    assert!(!under.is_empty());
    assert_eq!(report.not_checked.runs, under.len() as u64);
    let counts = expected_counts(&m);
    assert_eq!(report.checked.runs + report.not_checked.runs, counts.runs);
    assert_eq!(report.checked.logs + report.not_checked.logs, counts.logs);
}

#[test]
fn verify_reads_through_transient_failures() {
    let m = Migrated::new(small(), &Tamper::default());
    for faults in [&m.mocks.faults().zephyr, &m.mocks.faults().qtest] {
        faults.set_fail_rate(0.25, FailPoint::Before);
    }
    // The breaker is off: at this rate a run of failures would open it, which
    // is the resilience layer's business, not verify's.
    let pool = etlpool::Pool::builder().build().unwrap();
    let api = |url: String, token: &str| {
        ApiClient::builder(&pool, &url)
            .auth(Auth::Bearer(token.into()))
            .breaker(BreakerPolicy {
                failure_threshold: 0,
                ..BreakerPolicy::default()
            })
            .build()
            .unwrap()
    };
    let zephyr = ZephyrClient::new(api(m.mocks.zephyr_url(), m.mocks.zephyr_token()), "PROJ");
    let qtest = QtestClient::new(
        api(m.mocks.qtest_url(), m.mocks.qtest_token()),
        m.mocks.qtest_project_id(),
    );
    let options = VerifyOptions::default();
    let report =
        etlpool::migrate::verify(&zephyr, &qtest, &MappingConfig::default(), &options).unwrap();
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.checked, expected_counts(&m));
    let metrics = pool.metrics();
    let retried: u64 = metrics.total.retries.values().sum();
    assert!(
        retried > 0,
        "no failure was injected: {:?}",
        metrics.total.responses
    );
}

#[test]
fn an_unknown_project_on_either_side_is_an_error_naming_it() {
    let m = MockServers::start(small()).unwrap();
    let (zephyr, qtest) = crate::support::migration::clients(&m);
    let (mapping, options) = (MappingConfig::default(), VerifyOptions::default());
    let other_zephyr = ZephyrClient::new(zephyr.api().clone(), "NOPE");
    let error = etlpool::migrate::verify(&other_zephyr, &qtest, &mapping, &options).unwrap_err();
    assert_eq!(
        error.to_string(),
        "Zephyr Scale has no project \"NOPE\", or the token can't see it"
    );
    let other_qtest = QtestClient::new(qtest.api().clone(), 1);
    let error = etlpool::migrate::verify(&zephyr, &other_qtest, &mapping, &options).unwrap_err();
    assert_eq!(
        error.to_string(),
        "qTest has no project \"1\", or the token can't see it"
    );
}
