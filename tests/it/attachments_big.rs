//! A 200 MB attachment goes through `etlpool migrate` (a child process, so
//! its peak memory is its own) in flat memory. Skipped unless
//! `ETLPOOL_BIG_ATTACHMENT=1`: it moves 400 MB over loopback.

use std::process::Command;

use crate::support::Scratch;
use etlpool::mock::qtest::attachments::sha256_of;
use etlpool::mock::zephyr::attachments::{MockAttachments, file_bytes};
use etlpool::mock::{DataSizes, MockOptions, MockServers};

const BIG: u64 = 200 * 1024 * 1024;

/// The peak resident set (`VmHWM`) of process `pid`, in KiB.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn a_200_mb_attachment_streams_through_in_flat_memory() {
    if std::env::var("ETLPOOL_BIG_ATTACHMENT").as_deref() != Ok("1") {
        eprintln!("skipped: set ETLPOOL_BIG_ATTACHMENT=1 to move a 200 MB file");
        return;
    }
    let mut options = MockOptions::seeded(31);
    options.sizes = DataSizes {
        folders: 1,
        folder_depth: 1,
        cycle_folders: 1,
        cases: 2,
        steps_per_case: 1,
        cycles: 1,
        executions: 2,
    };
    options.attachments = MockAttachments {
        sample: false,
        big_bytes: BIG,
    };
    let mocks = MockServers::start(options).unwrap();
    let dir = Scratch::new("big-attachment");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_etlpool"));
    cmd.env_clear()
        .env("ZEPHYR_URL", mocks.zephyr_url())
        .env("ZEPHYR_TOKEN", mocks.zephyr_token())
        .env("ZEPHYR_PROJECT", mocks.project_key())
        .env("QTEST_URL", mocks.qtest_url())
        .env("QTEST_TOKEN", mocks.qtest_token())
        .env("QTEST_PROJECT_ID", mocks.qtest_project_id().to_string())
        .args(["--quiet", "migrate", "--max-attachment-bytes"])
        .arg((BIG + 1).to_string())
        .arg("--journal")
        .arg(dir.0.join("journal.csv"))
        .arg("--report")
        .arg(dir.0.join("report.csv"));
    let mut child = cmd.spawn().expect("run etlpool");
    let pid = child.id();
    // VmHWM only grows; the last reading before exit is the run's peak (the
    // transfer, which dominates, lasts many readings).
    let mut peak = 0;
    let status = loop {
        if let Some(kib) = peak_rss_kib(pid) {
            peak = peak.max(kib);
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(status.success(), "etlpool migrate: {status}");
    let state = mocks.qtest_state();
    let stored = state
        .attachments
        .iter()
        .find(|f| f.name == "big.bin")
        .expect("uploaded");
    assert_eq!(stored.size, BIG);
    let source = mocks
        .source()
        .attachments
        .iter()
        .find(|f| f.name == "big.bin")
        .unwrap();
    let want = sha256_of(file_bytes(source.id, source.size)).unwrap();
    assert_eq!(stored.sha256, want);
    eprintln!("peak RSS of etlpool migrate: {} MiB", peak / 1024);
    // Whole in memory it would be over 200 MiB.
    assert!(peak < 64 * 1024, "peak RSS {} MiB", peak / 1024);
}
