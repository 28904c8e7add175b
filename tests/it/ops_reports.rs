//! Reports kept per run; nothing created by a dry run or a failed start.

use crate::cli::{migrate, mocks, reports, run};
use crate::support::Scratch;

#[test]
fn an_earlier_runs_report_is_still_there_after_a_rerun() {
    let mocks = mocks(91);
    let dir = Scratch::new("ops-reports");
    let (code, out) = run(&mut migrate(&mocks, &dir.0));
    assert_eq!(code, 0, "{out}");
    let (code, out) = run(&mut migrate(&mocks, &dir.0));
    assert_eq!(code, 0, "{out}");
    let found = reports(&dir.0);
    assert_eq!(found.len(), 2, "{found:?}");
    let first = std::fs::read_to_string(&found[0]).unwrap();
    let second = std::fs::read_to_string(&found[1]).unwrap();
    assert!(first.contains(",created,"), "{first}");
    assert!(!second.contains(",created,"), "{second}");
    assert!(
        out.contains(&found[1].display().to_string()),
        "the summary names it: {out}"
    );
}

#[test]
fn a_dry_run_or_a_failed_start_creates_nothing() {
    let mocks = mocks(92);
    let dir = Scratch::new("ops-nothing");
    let listing = |dir: &std::path::Path| {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let (code, out) = run(migrate(&mocks, &dir.0)
        .env("ZEPHYR_PROJECT", "NOPE")
        .arg("--dry-run"));
    assert_eq!(code, 4, "{out}");
    let (code, out) = run(migrate(&mocks, &dir.0).env("QTEST_TOKEN", "wrong"));
    assert_eq!(code, 4, "{out}");
    assert_eq!(
        listing(&dir.0),
        Vec::<String>::new(),
        "a failed start left files"
    );

    let (code, out) = run(migrate(&mocks, &dir.0).arg("--dry-run"));
    assert_eq!(code, 0, "{out}");
    let names = listing(&dir.0);
    assert!(!names.iter().any(|n| n.starts_with("journal")), "{names:?}");
    assert_eq!(names.len(), 1, "only the plan: {names:?}");
    assert!(mocks.qtest_state().journal.is_empty());
}

#[test]
fn a_run_queued_behind_another_keeps_the_others_report() {
    let mocks = mocks(93);
    let dir = Scratch::new("ops-reports-wait");
    // Both runs start while this lock is held, so the second waits for the
    // first (--wait); start them just after a second begins, so that both
    // start in the same second, as the report names go.
    let held = etlpool::migrate::Journal::open(dir.0.join("journal.csv")).unwrap();
    let into_second = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    std::thread::sleep(std::time::Duration::from_nanos(u64::from(
        1_000_000_000 - into_second,
    )));
    let runs: Vec<_> = (0..2)
        .map(|_| {
            let (child, lines) =
                crate::ops_util::spawn(migrate(&mocks, &dir.0).args(["-v", "--wait"]));
            (child, lines)
        })
        .collect();
    let mut runs: Vec<_> = runs
        .into_iter()
        .map(|(child, mut lines)| {
            assert!(
                lines.until("waiting (--wait)").is_some(),
                "{}",
                lines.rest()
            );
            (child, lines)
        })
        .collect();
    drop(held);
    for (child, lines) in &mut runs {
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(0), "{}", lines.rest());
    }
    let found = reports(&dir.0);
    assert_eq!(
        found.len(),
        2,
        "one run's report replaced the other's: {found:?}"
    );
    let created = found
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .filter(|text| text.contains(",created,"))
        .count();
    assert_eq!(created, 1, "{found:?}");
}

#[test]
fn a_report_path_that_cannot_be_written_fails_before_any_work() {
    let mocks = mocks(94);
    let dir = Scratch::new("ops-report-path");
    for dry in [false, true] {
        let mut cmd = crate::ops_util::with_arg(
            &migrate(&mocks, &dir.0),
            "--report",
            &dir.0.join("no/such/dir/report.csv"),
        );
        if dry {
            cmd.arg("--dry-run");
        }
        let (code, out) = run(&mut cmd);
        assert_eq!(code, 2, "{out}");
        assert!(
            out.contains("--report") && out.contains("no/such/dir"),
            "{out}"
        );
        let left: Vec<_> = std::fs::read_dir(&dir.0).unwrap().flatten().collect();
        assert!(left.is_empty(), "a failed start left {left:?}");
    }
    let served = mocks.zephyr_stats().snapshot().requests + mocks.qtest_stats().snapshot().requests;
    assert_eq!(
        served, 0,
        "the services were asked before the path was checked"
    );
}
