//! Issue 12, item 4 (the migration's part): an open circuit breaker pauses
//! its origin's workers until a probe succeeds, one probe at a time, for up
//! to `--max-outage`; after that the run stops cleanly with exit 3 and one
//! line naming the service, and a re-run finishes.

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use etlpool::migrate::{MappingConfig, MigrateOptions, RunHooks, RunProgress, migrate_with};
use etlpool::mock::{MockOptions, MockServers};
use etlpool::policy::{BreakerPolicy, PolicySettings};

use crate::cli::{migrate, run, sizes, wait_for_journal};
use crate::faults_util;
use crate::ops_util::spawn;
use crate::support::{Migration, Scratch, check, test_pool};

/// How long the CLI test keeps qTest down: shorter than the breaker's
/// default cooldown (30 s), so the first probe after it finds qTest back.
const OUTAGE: Duration = Duration::from_secs(20);

/// Waits until the mock's qTest has applied `n` writes.
fn wait_for_writes(mocks: &MockServers, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while mocks.journal().len() < n {
        assert!(Instant::now() < deadline, "fewer than {n} writes in 60 s");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A migration whose breakers open after 2 failures in a row (the outage
/// is short, and the client's own retries spend most of it in backoff: the
/// default 20 first attempts may not come in it), probe 250 ms after they
/// open, and whose runs wait out a minute of outage, with `per_host`
/// connections per origin.
fn patient_migration(seed: u64, per_host: usize) -> (Migration, BreakerPolicy) {
    let mut m = Migration::new(seed, faults_util::sizes());
    let breaker = BreakerPolicy {
        consecutive_failures: 2,
        cooldown: Duration::from_millis(250),
        ..BreakerPolicy::default()
    };
    m.pool = test_pool()
        .max_connections_per_host(per_host)
        .default_policies(PolicySettings {
            breaker,
            ..PolicySettings::default()
        })
        .build()
        .unwrap();
    m.max_outage = Duration::from_secs(60);
    (m, breaker)
}

#[test]
fn workers_wait_out_an_open_breaker_behind_one_probe_and_finish_the_run() {
    let (m, breaker) = patient_migration(125, 8);
    let opts = MigrateOptions {
        workers: 8,
        ..m.options()
    };
    let outage = Duration::from_secs(3);
    let summary = std::thread::scope(|scope| {
        let running = scope.spawn(|| m.run_with(&opts));
        wait_for_writes(&m.mocks, 40);
        m.mocks.stop_qtest();
        std::thread::sleep(outage);
        m.mocks.restart_qtest().unwrap();
        running.join().unwrap()
    });
    assert!(summary.is_complete(), "{summary}\n{}", m.failures());
    check::assert_migrated(&m.mocks);
    let qtest = summary
        .metrics
        .origin(m.mocks.qtest_url().trim_end_matches("/api/v3"));
    let opened = qtest
        .breaker_transitions
        .get("opened")
        .copied()
        .unwrap_or(0);
    assert!(opened >= 1, "the breaker never opened: {qtest:?}");
    // Each worker meets the open breaker about once, then waits; only one
    // probe goes out per cooldown. Workers that each retried the breaker
    // would count hundreds of fast failures in 3 s.
    let fast_failures = qtest.failures.get("breaker_open").copied().unwrap_or(0);
    let probes = (outage.as_millis() / breaker.cooldown.as_millis()) as u64 + 1;
    assert!(
        fast_failures <= 8 * 3 + 2 * probes,
        "{fast_failures} calls refused by the open breaker: {qtest:?}"
    );
}

#[test]
fn a_zephyr_listing_cut_short_by_an_outage_is_read_again_and_nothing_is_done_twice() {
    let (m, _) = patient_migration(130, 4);
    let first = m.run_with(&faults_util::options(
        &m,
        "modules,cases,cycles",
        MappingConfig::default(),
    ));
    assert!(first.is_complete(), "{first}\n{}", m.failures());
    // 18 pages of executions at 60 ms each: the listing lasts over a second,
    // and Zephyr goes down within milliseconds of its start, for longer than
    // the client's own retries last.
    let zephyr = &m.mocks.faults().zephyr;
    zephyr.set_latency(Duration::from_millis(60), Duration::ZERO);
    let opts = MigrateOptions {
        page_size: 5,
        ..m.options()
    };
    let progress = RunProgress::new();
    let hooks = RunHooks::default()
        .progress(progress.clone())
        .max_outage(m.max_outage);
    let cancel = etlpool::CancelToken::new();
    let summary = std::thread::scope(|scope| {
        let running = scope.spawn(|| migrate_with(&m.pool, &opts, &cancel, &hooks));
        let deadline = Instant::now() + Duration::from_secs(60);
        while progress.snapshot().phase.as_deref() != Some("executions") {
            assert!(Instant::now() < deadline, "no executions phase in 60 s");
            std::thread::sleep(Duration::from_millis(1));
        }
        // Longer than the client's own retries (4, backoff up to 3 s).
        zephyr.set_fail_rate(1.0, etlpool::mock::FailPoint::Before);
        std::thread::sleep(Duration::from_secs(4));
        zephyr.set_fail_rate(0.0, etlpool::mock::FailPoint::Before);
        running.join().unwrap().expect("the run")
    });
    assert!(summary.is_complete(), "{summary}\n{}", m.failures());
    let origin = m.mocks.zephyr_url();
    let origin = etlpool::Origin::parse(&origin).unwrap().to_string();
    // The outage cut the listing short (a lone listing caller rarely opens
    // the breaker: its own retries and rounds ride the outage out).
    let zephyr_503s = summary.metrics.origin(&origin).responses["5xx"];
    assert!(zephyr_503s >= 2, "the outage never hit the listing");
    // Every execution once: one log each, in order (no log made twice).
    check::assert_migrated(&m.mocks);
}

/// Mocks whose qTest state survives a stop in a file under `dir`, answering
/// in 4 ms so a run lasts long enough to be caught in the middle.
fn mocks_with_state(seed: u64, dir: &Path) -> MockServers {
    let mut options = MockOptions::seeded(seed);
    options.sizes = sizes();
    options.state_file = Some(dir.join("qtest-state.jsonl"));
    let mocks = MockServers::start(options).unwrap();
    mocks
        .faults()
        .qtest
        .set_latency(Duration::from_millis(4), Duration::ZERO);
    mocks
}

/// Waits for a child for up to two minutes, then kills it.
fn wait_bounded(child: &mut Child) -> Option<i32> {
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    panic!("etlpool did not finish in two minutes");
}

#[test]
fn the_cli_waits_out_a_20_s_qtest_outage_and_finishes() {
    let dir = Scratch::new("outage-wait");
    let mocks = mocks_with_state(126, &dir.0);
    let mut cmd = migrate(&mocks, &dir.0);
    let (mut child, mut lines) = spawn(&mut cmd);
    assert!(wait_for_journal(&mut child, &dir.0, 20), "{}", lines.rest());
    mocks.stop_qtest();
    let stopped = Instant::now();
    let down = lines.until("is down");
    assert!(
        down.is_some(),
        "the outage went unnoticed: {:?}",
        lines.seen
    );
    std::thread::sleep(OUTAGE.saturating_sub(stopped.elapsed()));
    mocks.restart_qtest().unwrap();
    let code = wait_bounded(&mut child);
    let err = lines.rest();
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(err.matches("is down").count(), 1, "{err}");
    assert_eq!(err.matches("is back").count(), 1, "{err}");
    // One WARN per state change (the retry budget, the breaker, the outage,
    // the error-rate alert), none per record.
    let warnings: Vec<&str> = err.lines().filter(|l| l.contains(" WARN ")).collect();
    assert!(warnings.len() <= 6, "{warnings:#?}");
    assert!(
        !warnings.iter().any(|w| w.contains("PROJ-")),
        "{warnings:#?}"
    );
    check::assert_migrated(&mocks);
}

#[test]
fn an_outage_longer_than_max_outage_stops_the_run_with_exit_3_and_a_rerun_finishes() {
    let dir = Scratch::new("outage-stop");
    let mocks = mocks_with_state(127, &dir.0);
    let mut cmd = migrate(&mocks, &dir.0);
    cmd.args(["--max-outage", "2s"]);
    let (mut child, mut lines) = spawn(&mut cmd);
    assert!(wait_for_journal(&mut child, &dir.0, 20), "{}", lines.rest());
    mocks.stop_qtest();
    let stopped = Instant::now();
    let code = wait_bounded(&mut child);
    let took = stopped.elapsed();
    let err = lines.rest();
    assert_eq!(code, Some(3), "{err}");
    assert!(took < Duration::from_secs(30), "stopped after {took:?}");
    let said: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("qTest") && l.contains("down for") && l.contains("--max-outage"))
        .collect();
    assert!(!said.is_empty(), "no line names the outage: {err}");
    mocks.restart_qtest().unwrap();
    let (code, out) = run(&mut migrate(&mocks, &dir.0));
    assert_eq!(code, 0, "{out}");
    check::assert_migrated(&mocks);
}
