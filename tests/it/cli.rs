//! The `etlpool` binary as a scheduler runs it: environment, exit codes,
//! SIGKILL and SIGINT in the middle of a migration, and resuming.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::{Scratch, check};
use etlpool::mock::{DataSizes, MockOptions, MockServers};

pub(crate) fn sizes() -> DataSizes {
    DataSizes {
        folders: 5,
        folder_depth: 2,
        cycle_folders: 2,
        cases: 30,
        steps_per_case: 3,
        cycles: 3,
        executions: 70,
    }
}

pub(crate) fn mocks(seed: u64) -> MockServers {
    let mut options = MockOptions::seeded(seed);
    options.sizes = sizes();
    MockServers::start(options).unwrap()
}

/// `etlpool migrate` against `mocks`, with a clean environment: only what a
/// scheduler would set, plus a proxy that must be ignored.
pub(crate) fn migrate(mocks: &MockServers, dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_etlpool"));
    cmd.env_clear()
        .env("ZEPHYR_URL", mocks.zephyr_url())
        .env("ZEPHYR_TOKEN", mocks.zephyr_token())
        .env("ZEPHYR_PROJECT", mocks.project_key())
        .env("QTEST_URL", format!("{}/", mocks.qtest_url()))
        .env("QTEST_TOKEN", mocks.qtest_token())
        .env("QTEST_PROJECT_ID", mocks.qtest_project_id().to_string())
        .env("HTTP_PROXY", "http://127.0.0.1:9")
        .env("HTTPS_PROXY", "http://127.0.0.1:9")
        .env("ETLPOOL_WORKERS", "4")
        .args(["migrate", "--journal"])
        .arg(dir.join("journal.csv"))
        .arg("--report")
        .arg(dir.join("report.csv"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

pub(crate) fn run(cmd: &mut Command) -> (i32, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().expect("run etlpool");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&stdout),
        String::from_utf8_lossy(&stderr)
    );
    (status.code().unwrap_or(-1), text)
}

pub(crate) fn journal_lines(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("journal.csv"))
        .map(|t| t.lines().count().saturating_sub(1))
        .unwrap_or(0)
}

/// Waits until the journal has `n` records; false if the child ended first.
pub(crate) fn wait_for_journal(child: &mut Child, dir: &Path, n: usize) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if journal_lines(dir) >= n {
            return true;
        }
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    false
}

/// The per-run reports in `dir` (`report.<start time>.csv`), oldest first.
pub(crate) fn reports(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut found: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            name.starts_with("report.") && name.ends_with(".csv")
        })
        .collect();
    // Runs in one second are named `-2`, `-3`: order by time written.
    found.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
    found
}

#[test]
fn a_migration_writes_its_summary_metrics_and_report_and_exits_0() {
    let mocks = mocks(31);
    let dir = Scratch::new("cli-ok");
    let mut cmd = migrate(&mocks, &dir.0);
    cmd.arg("--summary-json").arg(dir.0.join("summary.json"));
    cmd.arg("--metrics").arg(dir.0.join("metrics.prom"));
    let (code, out) = run(&mut cmd);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("migration complete"), "{out}");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.0.join("summary.json")).unwrap())
            .unwrap();
    assert_summary_shape(&summary);
    assert_eq!(summary["records"]["case"]["created"], 30);
    assert_eq!(summary["failed"], 0);
    let created = summary["metrics"]["total"]["connections_created"]
        .as_u64()
        .unwrap();
    assert!(
        created <= 8,
        "{created}: {:#}",
        summary["metrics"]["origins"]
    );
    let metrics = std::fs::read_to_string(dir.0.join("metrics.prom")).unwrap();
    assert!(
        metrics.contains("etlpool_connections_created_total{origin="),
        "{metrics}"
    );
    let report = std::fs::read_to_string(reports(&dir.0).pop().expect("a report")).unwrap();
    assert!(
        report.starts_with("kind,source_key,target_id,action,error"),
        "{report}"
    );
    check::assert_migrated(&mocks);
    assert!(
        !out.contains(mocks.qtest_token()) && !out.contains(mocks.zephyr_token()),
        "a token was printed"
    );
}

#[test]
fn configuration_and_authentication_failures_have_their_exit_codes() {
    let mocks = mocks(32);
    let dir = Scratch::new("cli-codes");
    type Tweak = fn(&mut Command);
    let cases: [(&str, Tweak, i32, &str); 7] = [
        (
            "missing token",
            |c| {
                c.env_remove("ZEPHYR_TOKEN");
            },
            2,
            "ZEPHYR_TOKEN",
        ),
        (
            "wrong token",
            |c| {
                c.env("QTEST_TOKEN", "not-the-token");
            },
            4,
            "401",
        ),
        (
            "unknown project",
            |c| {
                c.env("ZEPHYR_PROJECT", "NOPE");
            },
            4,
            "no project \"NOPE\"",
        ),
        (
            "unreachable",
            |c| {
                c.env("ZEPHYR_URL", "http://127.0.0.1:9/v2");
            },
            4,
            "connect",
        ),
        (
            "bad url",
            |c| {
                c.env("QTEST_URL", "ftp://example/api/v3");
            },
            2,
            "unsupported scheme",
        ),
        (
            "bad pool setting",
            |c| {
                c.env("ETLPOOL_IDLE_TIMEOUT", "soon");
            },
            2,
            "ETLPOOL_IDLE_TIMEOUT",
        ),
        (
            "bad --only",
            |c| {
                c.args(["--only", "folders"]);
            },
            2,
            "unknown kind",
        ),
    ];
    for (name, tweak, want, says) in cases {
        let mut cmd = migrate(&mocks, &dir.0);
        tweak(&mut cmd);
        let (code, out) = run(&mut cmd);
        assert_eq!(code, want, "{name}: {out}");
        assert!(out.contains(says), "{name}: expected {says:?} in {out}");
    }
    assert!(
        mocks.qtest_state().journal.is_empty(),
        "a failed start wrote to qTest"
    );
}

#[test]
fn a_bad_config_file_is_exit_2_and_a_held_journal_is_exit_5() {
    let mocks = mocks(33);
    let dir = Scratch::new("cli-config");
    let config = dir.file(
        "etlpool.toml",
        b"[run]\nworkers = 2\n[qtest]\nprojectid = 1\n",
    );
    let (code, out) = run(migrate(&mocks, &dir.0).arg("--config").arg(&config));
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("unknown field") && out.contains("projectid"),
        "{out}"
    );

    let held = etlpool::migrate::Journal::open(dir.0.join("journal.csv")).unwrap();
    let (code, out) = run(&mut migrate(&mocks, &dir.0));
    assert_eq!(code, 5, "{out}");
    assert!(out.contains("in use by another run"), "{out}");
    drop(held);
}

#[test]
fn a_migration_killed_at_any_point_resumes_without_duplicates() {
    for (seed, kill_after) in [(41, 1), (42, 25), (43, 90)] {
        let mocks = mocks(seed);
        for f in [&mocks.faults().zephyr, &mocks.faults().qtest] {
            f.set_latency(Duration::from_millis(8), Duration::from_millis(4));
        }
        let dir = Scratch::new("cli-kill");
        let mut child = migrate(&mocks, &dir.0).spawn().unwrap();
        assert!(
            wait_for_journal(&mut child, &dir.0, kill_after),
            "finished before {kill_after} records"
        );
        child.kill().unwrap(); // SIGKILL: no chance to clean up
        child.wait().unwrap();
        for f in [&mocks.faults().zephyr, &mocks.faults().qtest] {
            f.clear();
        }
        let (code, out) = run(&mut migrate(&mocks, &dir.0));
        assert_eq!(code, 0, "resume after a kill at {kill_after}: {out}");
        check::assert_migrated(&mocks);
    }
}

#[test]
fn sigint_checkpoints_and_exits_130_then_a_rerun_completes() {
    let mocks = mocks(44);
    for f in [&mocks.faults().zephyr, &mocks.faults().qtest] {
        f.set_latency(Duration::from_millis(8), Duration::ZERO);
    }
    let dir = Scratch::new("cli-int");
    let mut child = migrate(&mocks, &dir.0).spawn().unwrap();
    assert!(wait_for_journal(&mut child, &dir.0, 20));
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{text}");
    assert!(text.contains("interrupted"), "{text}");
    for f in [&mocks.faults().zephyr, &mocks.faults().qtest] {
        f.clear();
    }
    let (code, out) = run(&mut migrate(&mocks, &dir.0));
    assert_eq!(code, 0, "{out}");
    check::assert_migrated(&mocks);
}

#[test]
fn load_prints_json_with_the_pools_metrics() {
    let out = Command::new(env!("CARGO_BIN_EXE_etlpool"))
        .args(["load", "--threads", "2", "--requests", "200", "--json"])
        .env_clear()
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["requests"], 200);
    assert_eq!(report["errors"], 0);
    let created = report["metrics"]["total"]["connections_created"]
        .as_u64()
        .unwrap();
    assert!((1..=2).contains(&created), "{created}");
}

/// The keys and value types of a JSON document, with the origin names of the
/// metrics replaced, so the summary's format is pinned but not its numbers.
fn shape(v: &serde_json::Value, parent: &str) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let key = if parent == "origins" {
                        "<origin>".to_string()
                    } else {
                        k.clone()
                    };
                    // Present or null depending on the run, not on the format.
                    let optional = [
                        "aborted",
                        "last_cleanup_unix_ms",
                        "error",
                        "last_success_at",
                    ]
                    .contains(&k.as_str());
                    (
                        key,
                        if optional {
                            Value::from("optional")
                        } else {
                            shape(v, k)
                        },
                    )
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(
            items
                .first()
                .map(|i| shape(i, parent))
                .into_iter()
                .collect(),
        ),
        Value::String(_) => Value::from("string"),
        Value::Number(_) => Value::from("number"),
        Value::Bool(_) => Value::from("bool"),
        Value::Null => Value::from("null"),
    }
}

/// `--summary-json` is an interface for schedulers: its shape is committed in
/// tests/it/snapshots/summary-shape.json. Set ETLPOOL_UPDATE_SNAPSHOTS=1 to
/// rewrite it after a deliberate change.
pub(crate) fn assert_summary_shape(summary: &serde_json::Value) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/snapshots/summary-shape.json");
    let got = serde_json::to_string_pretty(&shape(summary, "")).unwrap() + "\n";
    if std::env::var_os("ETLPOOL_UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, &got).unwrap();
    }
    let want = std::fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(
        got,
        want,
        "the summary JSON changed shape; see {}",
        path.display()
    );
}

#[test]
fn mock_options_the_mocks_cant_serve_are_usage_errors() {
    let (code, out) =
        run(Command::new(env!("CARGO_BIN_EXE_etlpool")).args(["mock", "--fail-rate", "2"]));
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("fail"), "{out}");
}
