//! The migration end to end against the mocks, over real sockets.

use std::time::Duration;

use crate::support::{Migration, check};
use etlpool::mock::{DataSizes, FailPoint};

fn small() -> DataSizes {
    DataSizes {
        folders: 6,
        folder_depth: 3,
        cycle_folders: 2,
        cases: 40,
        steps_per_case: 3,
        cycles: 4,
        executions: 90,
    }
}

#[test]
fn a_full_migration_creates_every_record_once_and_a_second_run_writes_nothing() {
    let m = Migration::new(11, small());
    let summary = m.run();
    assert!(summary.is_complete(), "{summary}");
    let created = |kind: &str| summary.records[kind].created;
    assert_eq!(created("case"), 40);
    // The 4 cycles and the default cycle of the mock's ad-hoc executions.
    assert_eq!(created("cycle"), 5);
    check::assert_migrated(&m.mocks);
    let writes = m.mocks.qtest_state().journal.len();
    // A plain second run reads only what is new since the first (nothing);
    // `--full` reads everything again and finds it all journaled.
    let again = m.run();
    assert!(again.is_complete(), "{again}");
    assert_eq!(m.mocks.qtest_state().journal.len(), writes, "a sync wrote");
    let full = etlpool::migrate::RunHooks::default()
        .sync(etlpool::migrate::SyncOptions::default().full(true));
    let again =
        etlpool::migrate::migrate_with(&m.pool, &m.options(), &etlpool::CancelToken::new(), &full)
            .expect("migration runs");
    assert!(again.is_complete(), "{again}");
    assert_eq!(
        m.mocks.qtest_state().journal.len(),
        writes,
        "the second run wrote"
    );
    for (kind, n) in [
        ("case", 40),
        ("cycle", 5),
        ("cycle-folder", 2),
        ("run", 74),
        ("log", 90),
    ] {
        assert_eq!(
            again.records[kind].skipped, n,
            "{kind}s skipped by the second run"
        );
    }
    assert_eq!(
        again
            .records
            .values()
            .map(|c| c.created + c.found)
            .sum::<u64>(),
        0
    );
}

/// Runs until a run completes (each re-run retries what failed), at most `max` times.
fn run_to_completion(m: &Migration, max: usize) -> usize {
    for attempt in 1..=max {
        let summary = m.run();
        if summary.is_complete() {
            return attempt;
        }
        eprintln!("run {attempt} incomplete:\n{summary}");
    }
    panic!("no complete run in {max} attempts");
}

#[test]
fn faults_everywhere_still_give_the_same_final_state() {
    let m = Migration::new(13, small());
    let (z, q) = (&m.mocks.faults().zephyr, &m.mocks.faults().qtest);
    z.set_fail_rate(0.05, FailPoint::Before);
    z.set_close_rate(0.05);
    z.set_reset_rate(0.03);
    q.set_fail_rate(0.05, FailPoint::After);
    q.set_reset_after_write_rate(0.03);
    q.set_close_rate(0.05);
    q.set_rate_limit(Some(400));
    for f in [z, q] {
        f.set_idle_close(Some(Duration::from_millis(20)));
    }
    run_to_completion(&m, 3);
    let metrics = m.pool.metrics().total;
    assert!(
        metrics.retries.values().sum::<u64>() > 0,
        "faults were injected but nothing was retried"
    );
    check::assert_migrated(&m.mocks);
}

#[test]
fn a_crash_of_qtest_after_k_writes_and_a_rerun_lose_and_duplicate_nothing() {
    for k in [1u64, 9, 60, 140] {
        let dir = crate::support::Scratch::new("crash");
        let mut options = etlpool::mock::MockOptions::seeded(20 + k);
        options.sizes = small();
        options.state_file = Some(dir.0.join("qtest-state.jsonl"));
        let mut m = Migration::with_options(options);
        m.mocks.faults().qtest.set_crash_after_writes(Some(k));
        let first = m.run();
        assert!(!first.is_complete(), "k={k}: the crash went unnoticed");
        assert!(m.mocks.faults().qtest.crashed());
        m.mocks.faults().qtest.clear();
        m.mocks.restart_qtest().unwrap();
        m.new_process();
        run_to_completion(&m, 2);
        check::assert_migrated(&m.mocks);
    }
}

#[test]
fn a_dry_run_writes_nothing_and_plans_every_record() {
    let m = Migration::new(14, small());
    let options = etlpool::migrate::MigrateOptions {
        dry_run: true,
        report: m.dir.0.join("plan.csv"),
        ..m.options()
    };
    let summary = m.run_with(&options);
    assert!(summary.is_complete(), "{summary}");
    assert!(
        m.mocks.qtest_state().journal.is_empty(),
        "a dry run wrote to qTest"
    );
    assert_eq!(summary.records["case"].planned, 40);
    assert_eq!(
        summary.records["cycle"].planned, 5,
        "with the default cycle"
    );
    let plan = std::fs::read_to_string(m.dir.0.join("plan.csv")).unwrap();
    assert!(plan.starts_with("kind,source_key,action,parent,name,body,error"));
    assert_eq!(plan.lines().filter(|l| l.starts_with("case,")).count(), 40);
    // Nothing was journaled either: a real run afterwards does everything.
    let real = m.run();
    assert_eq!(real.records["case"].created, 40);
}

#[test]
fn a_record_that_cannot_be_mapped_is_reported_and_the_run_goes_on() {
    let m = Migration::new(15, small());
    // qTest has a High of its own, which wins over the table unless told otherwise.
    let mut mapping = etlpool::migrate::MappingConfig {
        same_label_first: false,
        ..Default::default()
    };
    mapping.priority.insert("High".into(), "Critical".into());
    let options = etlpool::migrate::MigrateOptions {
        mapping,
        ..m.options()
    };
    let summary = m.run_with(&options);
    assert!(!summary.is_complete());
    let high = m.mocks.source().cases.iter().filter(|c| {
        m.mocks
            .source()
            .priorities
            .iter()
            .any(|p| p.id == c.priority_id && p.name == "High")
    });
    let high: Vec<&str> = high.map(|c| c.key.as_str()).collect();
    assert!(!high.is_empty(), "the seed has High-priority cases");
    assert_eq!(summary.records["case"].failed as usize, high.len());
    assert_eq!(summary.records["case"].created as usize, 40 - high.len());
    let report = std::fs::read_to_string(m.dir.0.join("report.csv")).unwrap();
    for key in high {
        let row = report
            .lines()
            .find(|l| l.starts_with(&format!("case,{key},")))
            .expect("a row per failed case");
        assert!(row.contains("failed") && row.contains("Critical"), "{row}");
    }
}

#[test]
fn a_password_login_is_renewed_before_it_expires() {
    let mut options = etlpool::mock::MockOptions::seeded(16);
    options.sizes = small();
    options.oauth_expiry = Duration::from_secs(1);
    let m = Migration::with_options(options);
    m.mocks
        .faults()
        .qtest
        .set_latency(Duration::from_millis(25), Duration::ZERO);
    let (user, password) = m.mocks.qtest_login();
    let mut endpoints = m.endpoints();
    endpoints.qtest_auth = etlpool::migrate::QtestAuth::Login {
        username: user.into(),
        password: password.into(),
        site: Some(m.mocks.qtest_site().into()),
    };
    let summary = m.run_with(&etlpool::migrate::MigrateOptions {
        endpoints,
        ..m.options()
    });
    assert!(summary.is_complete(), "{summary}\n{}", m.failures());
    // Tokens of 1 s are renewed at half their life; the run outlives several.
    assert!(
        m.mocks.qtest_tokens_issued() >= 2,
        "the token was never renewed"
    );
    let qtest = summary
        .metrics
        .origin(m.mocks.qtest_url().trim_end_matches("/api/v3"));
    assert_eq!(
        qtest.responses.get("4xx").copied().unwrap_or(0),
        0,
        "an expired token was used"
    );
    check::assert_migrated(&m.mocks);
}

#[test]
fn a_login_never_waits_for_a_connection_its_own_request_holds() {
    // With one connection per host, a request that leased it before logging in
    // would wait for itself until the acquire timeout.
    let mocks = etlpool::mock::MockServers::start(etlpool::mock::MockOptions::seeded(17)).unwrap();
    let pool = crate::support::test_pool()
        .max_connections_per_host(1)
        .acquire_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let (user, password) = mocks.qtest_login();
    let login = etlpool::qtest::QtestLogin::new(&pool, &mocks.qtest_url(), user, password)
        .unwrap()
        .with_site(mocks.qtest_site());
    let api = etlpool::http::ApiClient::new(
        &pool,
        &mocks.qtest_url(),
        etlpool::http::Auth::Provider(std::sync::Arc::new(login)),
    )
    .unwrap();
    let qtest = etlpool::qtest::QtestClient::new(api, mocks.qtest_project_id());
    assert!(qtest.project_exists().unwrap());
    assert_eq!(mocks.qtest_tokens_issued(), 1);
}

#[test]
fn malformed_json_from_qtest_is_ridden_out_in_the_same_run_and_loses_nothing() {
    // Issue 12: a read whose body is corrupt gets another round, a write
    // whose answer is corrupt is looked up before it is made again.
    let m = Migration::new(18, small());
    m.mocks.faults().qtest.set_malformed_rate(0.2);
    let first = m.run();
    assert!(first.is_complete(), "{first}\n{}", m.failures());
    let qtest = first
        .metrics
        .origin(m.mocks.qtest_url().trim_end_matches("/api/v3"));
    let corrupt = qtest.failures.get("decode").copied().unwrap_or(0);
    assert!(corrupt > 0, "no malformed body was served: {qtest:?}");
    check::assert_migrated(&m.mocks);
}

#[test]
fn verify_passes_a_real_migration_and_catches_a_deleted_and_a_duplicated_case() {
    use etlpool::migrate::{DiffKind, RecordKind};
    let m = Migration::new(19, small());
    assert!(m.run().is_complete());
    let clean = m.verify();
    assert!(clean.is_clean(), "{clean}");

    let state = m.mocks.qtest_state();
    let key_field = m.mocks.qtest_config().case_field("Zephyr Key").unwrap().id;
    let key_of = |id: u64| {
        let case = state.test_cases.iter().find(|c| c.id == id).unwrap();
        case.property(key_field).unwrap().to_string()
    };
    let (gone, twice) = (state.test_cases[0].id, state.test_cases[1].id);
    // Duplicated first: qTest refuses a case whose step calls a case that
    // no longer exists, and which cases come first depends on the workers.
    m.mocks.duplicate_case(twice).unwrap();
    m.mocks.delete_case(gone).unwrap();
    let report = m.verify();
    assert!(!report.is_clean());
    let keys = |kind| {
        report
            .find(RecordKind::Case, kind)
            .iter()
            .map(|d| d.key.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(keys(DiffKind::Missing), [key_of(gone)], "{report}");
    assert_eq!(keys(DiffKind::Duplicate), [key_of(twice)], "{report}");
}

#[test]
fn approved_cases_are_approved_even_when_found_rather_than_created() {
    let m = Migration::new(21, small());
    let only = |kinds: &str| kinds.parse::<etlpool::migrate::Phases>().unwrap();
    // A first run creates the cases without approving them, then its journal is lost.
    let first = m.run_with(&etlpool::migrate::MigrateOptions {
        only: only("modules,cases"),
        ..m.options()
    });
    assert!(first.is_complete(), "{first}");
    std::fs::remove_file(m.dir.0.join("journal.csv")).unwrap();
    let mapping = etlpool::migrate::MappingConfig {
        approve_approved: true,
        ..Default::default()
    };
    let second = m.run_with(&etlpool::migrate::MigrateOptions {
        mapping,
        only: only("modules,cases"),
        ..m.options()
    });
    assert!(second.is_complete(), "{second}");
    assert_eq!(second.records["case"].found, 40);
    let source = m.mocks.source();
    let approved_status: Vec<u64> = source
        .statuses
        .iter()
        .filter(|s| s.status_type == "TEST_CASE" && s.name == "Approved")
        .map(|s| s.id)
        .collect();
    let key_field = m.mocks.qtest_config().case_field("Zephyr Key").unwrap().id;
    let state = m.mocks.qtest_state();
    let mut approved = 0;
    for case in &state.test_cases {
        let key = case.property(key_field).unwrap();
        let zephyr = source.case(key).unwrap();
        let want = approved_status.contains(&zephyr.status_id);
        assert_eq!(case.current().approved, want, "{key}");
        approved += usize::from(want);
    }
    assert!(approved > 0, "the seed has Approved cases");
    assert_eq!(state.test_cases.len(), 40, "no duplicates");
}
