//! `--summary-json` as a scheduler reads it: written on every exit (a failed
//! start, SIGTERM), atomically, `-` for stdout, its path checked first.

use std::time::Duration;

use crate::cli::{assert_summary_shape, migrate, mocks, run, wait_for_journal};
use crate::ops_util::signal;
use crate::support::Scratch;

fn read(path: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn a_fatal_start_replaces_last_nights_success() {
    let mocks = mocks(61);
    let dir = Scratch::new("ops-summary-fatal");
    let summary = dir.0.join("last.json");
    let (code, out) = run(migrate(&mocks, &dir.0).arg("--summary-json").arg(&summary));
    assert_eq!(code, 0, "{out}");
    let ok = read(&summary);
    assert_eq!(
        (ok["exit_code"].as_i64(), ok["status"].as_str()),
        (Some(0), Some("ok"))
    );
    let success = ok["last_success_at"].clone();
    assert!(success.is_string(), "{ok:#}");

    let (code, out) = run(migrate(&mocks, &dir.0)
        .env("QTEST_TOKEN", "expired")
        .arg("--summary-json")
        .arg(&summary));
    assert_eq!(code, 4, "{out}");
    let failed = read(&summary);
    assert_summary_shape(&failed);
    assert_eq!(failed["exit_code"], 4);
    assert_eq!(failed["status"], "fatal");
    assert!(
        failed["error"].as_str().unwrap().contains("401"),
        "{failed:#}"
    );
    assert_eq!(
        failed["last_success_at"], success,
        "the last success is kept"
    );
    assert_eq!(failed["version"], env!("CARGO_PKG_VERSION"));
    assert!(failed["started_at"].is_string() && failed["finished_at"].is_string());
    let left: Vec<_> = std::fs::read_dir(&dir.0)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(left.is_empty(), "temporary files left: {left:?}");
}

#[test]
fn sigterm_writes_the_summary_with_exit_130() {
    let mocks = mocks(62);
    for f in [&mocks.faults().zephyr, &mocks.faults().qtest] {
        f.set_latency(Duration::from_millis(8), Duration::ZERO);
    }
    let dir = Scratch::new("ops-summary-term");
    let summary = dir.0.join("s.json");
    let mut child = migrate(&mocks, &dir.0)
        .arg("--summary-json")
        .arg(&summary)
        .spawn()
        .unwrap();
    assert!(wait_for_journal(&mut child, &dir.0, 10));
    signal(child.id(), "-TERM");
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    let s = read(&summary);
    assert_eq!(
        (s["exit_code"].as_i64(), s["status"].as_str()),
        (Some(130), Some("interrupted"))
    );
    assert_eq!(s["interrupted"], true);
}

#[test]
fn stdout_takes_the_summary_and_a_bad_path_fails_before_any_work() {
    let mocks = mocks(63);
    let dir = Scratch::new("ops-summary-paths");
    let (code, out) = run(migrate(&mocks, &dir.0)
        .arg("--summary-json")
        .arg(dir.0.join("no/such/dir/s.json")));
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("no/such/dir/s.json"), "{out}");
    let (code, out) = run(migrate(&mocks, &dir.0).args(["--metrics", "/proc/nope.prom"]));
    assert_eq!(code, 2, "{out}");
    assert!(
        mocks.qtest_state().journal.is_empty(),
        "work was done before the check"
    );
    assert!(!dir.0.join("journal.csv").exists());

    let out = migrate(&mocks, &dir.0)
        .args(["--summary-json", "-"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is the JSON");
    assert_eq!(s["exit_code"], 0);
    assert!(!dir.0.join("-").exists(), "a file named `-`");
}

#[test]
fn every_usage_error_replaces_last_nights_success() {
    let mocks = mocks(64);
    let dir = Scratch::new("ops-summary-usage");
    let summary = dir.0.join("last.json");
    let (code, out) = run(migrate(&mocks, &dir.0).arg("--summary-json").arg(&summary));
    assert_eq!(code, 0, "{out}");
    for bad in [
        vec!["--wait=soon".to_string()],
        vec!["--metrics".into(), "/proc/nope.prom".into()],
        vec!["--status-interval".into(), "0s".into()],
        vec!["--workers".into(), "0".into()],
    ] {
        let (code, out) = run(migrate(&mocks, &dir.0)
            .args(&bad)
            .arg("--summary-json")
            .arg(&summary));
        assert_eq!(code, 2, "{bad:?}: {out}");
        let s = read(&summary);
        assert_eq!(
            (s["exit_code"].as_i64(), s["status"].as_str()),
            (Some(2), Some("usage")),
            "{bad:?} left the summary of the run before: {s:#}"
        );
        assert!(s["last_success_at"].is_string(), "{bad:?}: {s:#}");
    }
}
