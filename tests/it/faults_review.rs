//! Adversarial review of issue 12 part B: outages, waiting and exit codes
//! under schedules the first tests did not try.

use std::process::Command;
use std::time::{Duration, Instant};

use etlpool::migrate::{MigrateOptions, RunHooks, migrate_with};
use etlpool::mock::FailPoint;

use crate::cli::{migrate, run, wait_for_journal};
use crate::faults_outage::{mocks_with_state, patient_migration_with, wait_bounded};
use crate::faults_util::{case_copies, case_folders};
use crate::ops_util::spawn;
use crate::support::{Migration, Scratch, check};

/// A probe the call's own deadline cuts short (qTest back, but slower than
/// `total_timeout` for a moment) leaves the breaker half-open with no probe
/// out; the outage's prober must still probe again once qTest answers in
/// time, not wait out the whole `--max-outage` and stop the run.
#[test]
fn a_probe_cut_short_by_its_deadline_does_not_stall_the_outage_until_max_outage() {
    let (mut m, _) = patient_migration_with(131, 4, |pool| {
        pool.request_timeout(Duration::from_millis(800))
            .total_timeout(Some(Duration::from_millis(800)))
    });
    m.max_outage = Duration::from_secs(20);
    let opts = m.options();
    let qtest = &m.mocks.faults().qtest;
    let summary = std::thread::scope(|scope| {
        let running = scope.spawn(|| m.run_with(&opts));
        crate::faults_outage::wait_for_writes(&m.mocks, 30);
        // Down: the breaker opens (2 failures in a row) and probes fail.
        qtest.set_fail_rate(1.0, FailPoint::Before);
        std::thread::sleep(Duration::from_secs(2));
        // Back, but slow: the next probe is cut short by its deadline.
        qtest.set_latency(Duration::from_millis(2500), Duration::ZERO);
        qtest.set_fail_rate(0.0, FailPoint::Before);
        std::thread::sleep(Duration::from_secs(3));
        qtest.set_latency(Duration::ZERO, Duration::ZERO);
        running.join().unwrap()
    });
    assert!(summary.is_complete(), "{summary}\n{}", m.failures());
    check::assert_migrated(&m.mocks);
}

/// Ctrl-C while every worker waits out a qTest outage (the default
/// `--max-outage` of 10 min) stops the run at once: exit 130, no record
/// failed for it, and a re-run once qTest is back finishes.
#[test]
fn sigint_during_an_outage_wait_exits_130_promptly_and_a_rerun_finishes() {
    let dir = Scratch::new("review-outage-int");
    let mocks = mocks_with_state(132, &dir.0);
    let mut cmd = migrate(&mocks, &dir.0);
    let (mut child, mut lines) = spawn(&mut cmd);
    assert!(wait_for_journal(&mut child, &dir.0, 20), "{}", lines.rest());
    mocks.stop_qtest();
    assert!(lines.until("is down").is_some(), "{:?}", lines.seen);
    let signalled = Instant::now();
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let code = wait_bounded(&mut child);
    let took = signalled.elapsed();
    let err = lines.rest();
    assert_eq!(code, Some(130), "{err}");
    assert!(
        took < Duration::from_secs(10),
        "exited {took:?} after Ctrl-C"
    );
    assert!(!err.contains(",failed,"), "{err}");
    mocks.restart_qtest().unwrap();
    let (code, out) = run(&mut migrate(&mocks, &dir.0));
    assert_eq!(code, 0, "{out}");
    check::assert_migrated(&mocks);
}

/// `--max-outage 0` is refused before any work (a run that gives up at the
/// first blip is not what anyone means by it), with a message naming it.
#[test]
fn max_outage_0_is_refused_before_any_work() {
    let dir = Scratch::new("review-outage-0");
    let mocks = crate::cli::mocks(133);
    let mut cmd = migrate(&mocks, &dir.0);
    cmd.args(["--max-outage", "0s"]);
    let (code, out) = run(&mut cmd);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("--max-outage"), "{out}");
    assert!(mocks.journal().is_empty(), "nothing written");
}

/// Seed 321 of the end-to-end faults (20 % 503s and the rest): a read of the
/// set-up (the user's profile, the lookup lists) met five 503s in a row, more
/// than the client's own retries, and the run exited 3 before any work. The
/// set-up's reads get a record's patience too.
#[test]
fn every_fault_at_once_seed_321_finishes_in_one_run() {
    crate::faults_e2e::one_run(321);
}

/// A run stopped (Ctrl-C, an outage past its budget) while a case's create
/// was in doubt (applied, its answer lost) leaves that case on qTest but not
/// in the journal. The re-run must not miss it because qTest's search index
/// lags behind writes, and create it twice.
#[test]
fn a_case_in_doubt_when_the_run_stopped_is_not_created_again_by_the_rerun() {
    let m = Migration::new(134, crate::faults_util::sizes());
    m.mocks.set_search_lag(crate::faults_outcomes::lagging());
    let opts = MigrateOptions {
        workers: 1,
        ..crate::faults_util::options(&m, "modules,cases", crate::faults_util::no_approvals())
    };
    let modules = case_folders(&m);
    let cancel = etlpool::CancelToken::new();
    let hooks = RunHooks::default().max_outage(m.max_outage);
    let first = std::thread::scope(|scope| {
        let running = scope.spawn(|| migrate_with(&m.pool, &opts, &cancel, &hooks));
        crate::faults_outage::wait_for_writes(&m.mocks, modules + 1);
        // Every write from now on is applied and its answer lost; the run is
        // stopped while the first case's create is being resolved.
        m.mocks.faults().qtest.set_reset_after_write_rate(1.0);
        let journal = |m: &Migration| {
            m.mocks
                .journal()
                .iter()
                .filter(|e| e.kind == "test-case")
                .count()
        };
        let seen = journal(&m);
        let deadline = Instant::now() + Duration::from_secs(60);
        while journal(&m) == seen {
            assert!(Instant::now() < deadline, "no case written in 60 s");
            std::thread::sleep(Duration::from_millis(1));
        }
        cancel.cancel();
        running.join().unwrap().expect("the first run")
    });
    assert!(!first.is_complete(), "{first}");
    m.mocks.faults().qtest.clear();
    let second = m.run_with(&opts);
    assert!(second.is_complete(), "{second}\n{}", m.failures());
    let copies = case_copies(&m);
    let twice: Vec<_> = copies.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "created twice: {twice:?}");
}

/// Zephyr goes down while the set-up reads its lookup lists (after the
/// projects were found) and stays down longer than `--max-outage`: the run
/// stops with the line naming the outage, an error that exits 3 (a re-run
/// helps), not a bare "cancelled" that reads as Ctrl-C (exit 130).
#[test]
fn an_outage_during_set_up_longer_than_max_outage_names_it_and_is_not_an_interrupt() {
    let (m, _) = patient_migration_with(135, 4, |pool| pool);
    let zephyr = &m.mocks.faults().zephyr;
    // The project's check takes 1 s; Zephyr is down from the calls after it.
    zephyr.set_latency(Duration::from_secs(1), Duration::ZERO);
    let opts = m.options();
    let cancel = etlpool::CancelToken::new();
    let hooks = RunHooks::default().max_outage(Duration::from_secs(2));
    let run = std::thread::scope(|scope| {
        let running = scope.spawn(|| migrate_with(&m.pool, &opts, &cancel, &hooks));
        std::thread::sleep(Duration::from_millis(500));
        zephyr.set_latency(Duration::ZERO, Duration::ZERO);
        zephyr.set_fail_rate(1.0, FailPoint::Before);
        running.join().unwrap()
    });
    let e = run.expect_err("the run stops at its set-up");
    let text = e.to_string();
    assert!(
        text.contains("Zephyr Scale") && text.contains("--max-outage"),
        "{text}"
    );
    assert!(
        !matches!(
            e,
            etlpool::migrate::MigrateError::Http(etlpool::Error::Cancelled)
        ),
        "{e:?}"
    );
    assert!(m.mocks.journal().is_empty(), "nothing written");
}

/// Zephyr down in the middle of the cases (each case's script is read from
/// it) for longer than `--max-outage`: the run stops naming Zephyr, no record
/// fails for it, and a re-run finishes with nothing done twice.
#[test]
fn a_zephyr_outage_past_max_outage_stops_the_run_naming_zephyr_and_a_rerun_finishes() {
    let (mut m, _) = patient_migration_with(136, 4, |pool| pool);
    m.max_outage = Duration::from_secs(2);
    let zephyr = &m.mocks.faults().zephyr;
    zephyr.set_latency(Duration::from_millis(5), Duration::ZERO);
    let opts = m.options();
    let first = std::thread::scope(|scope| {
        let running = scope.spawn(|| m.run_with(&opts));
        crate::faults_outage::wait_for_writes(&m.mocks, case_folders(&m) + 3);
        zephyr.set_fail_rate(1.0, FailPoint::Before);
        running.join().unwrap()
    });
    let why = first.aborted.clone().unwrap_or_default();
    assert!(
        why.contains("Zephyr Scale") && why.contains("--max-outage"),
        "{first}"
    );
    assert_eq!(m.failures(), "", "no record failed for the outage");
    zephyr.clear();
    m.new_process();
    let second = m.run();
    assert!(second.is_complete(), "{second}\n{}", m.failures());
    check::assert_migrated(&m.mocks);
}
