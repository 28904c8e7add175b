//! Logs an operator can use: `-q` silent on success (security warnings
//! excepted), `-vv` every request and retry, JSON lines, no wire dumps.

use crate::cli::{migrate, mocks, run};
use crate::support::Scratch;
use etlpool::mock::FailPoint;

#[test]
fn quiet_prints_nothing_on_success_but_security_warnings() {
    let mocks = mocks(81);
    let dir = Scratch::new("ops-quiet");
    let out = migrate(&mocks, &dir.0).arg("-q").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "", "stdout");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "", "stderr");

    let config = dir.file(
        "etlpool.toml",
        format!("[qtest]\ntoken = \"{}\"\n", mocks.qtest_token()).as_bytes(),
    );
    std::fs::set_permissions(&config, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let out = migrate(&mocks, &dir.0)
        .env_remove("QTEST_TOKEN")
        .args(["-q", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("readable by every user"), "{err}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "");
}

#[test]
fn very_verbose_logs_each_request_and_retry_and_never_the_wire() {
    let mocks = mocks(82);
    mocks.faults().zephyr.set_fail_rate(0.05, FailPoint::Before);
    let dir = Scratch::new("ops-vv");
    let (code, out) = run(migrate(&mocks, &dir.0).arg("-vvv"));
    assert_eq!(code, 0, "{out}");
    let zephyr = mocks.zephyr_url();
    let request = out
        .lines()
        .find(|l| l.contains(&format!("GET {zephyr}/testcases")) && l.contains("-> 200"))
        .unwrap_or_else(|| panic!("no request line: {out}"));
    for field in ["latency_ms=", "attempt=", "status=200"] {
        assert!(request.contains(field), "{request}");
    }
    assert!(
        out.lines()
            .any(|l| l.contains("retrying GET") && l.contains("server_error")),
        "no retry line: {out}"
    );
    let wire = out
        .lines()
        .find(|l| l.contains("TRACE") && l.contains(" ureq"));
    assert_eq!(wire, None, "a wire dump");
    assert!(
        !out.contains(mocks.zephyr_token()) && !out.contains(mocks.qtest_token()),
        "a token in the log"
    );
}

#[test]
fn json_log_lines_parse() {
    let mocks = mocks(83);
    let dir = Scratch::new("ops-json");
    let out = migrate(&mocks, &dir.0)
        .args(["--log-format", "json", "-vv"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    let mut requests = 0;
    for line in err.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        for key in ["time", "level", "target", "message", "fields"] {
            assert!(!v[key].is_null(), "{key} missing: {line}");
        }
        if v["fields"]["status"].is_u64() && v["fields"]["method"].is_string() {
            requests += 1;
        }
    }
    assert!(requests > 10, "{requests} request lines in {err}");

    let out = migrate(&mocks, &dir.0)
        .args(["--log-format", "json"])
        .env("QTEST_TOKEN", "nope")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    let last = String::from_utf8_lossy(&out.stderr);
    let v: serde_json::Value = serde_json::from_str(last.lines().last().unwrap()).unwrap();
    assert_eq!(
        (v["level"].as_str(), v["fields"]["exit_code"].as_i64()),
        (Some("ERROR"), Some(4))
    );
}

#[test]
fn without_a_terminal_progress_is_a_line_per_interval_with_right_totals() {
    let mocks = mocks(84);
    for f in [&mocks.faults().zephyr, &mocks.faults().qtest] {
        f.set_latency(
            std::time::Duration::from_millis(20),
            std::time::Duration::ZERO,
        );
    }
    let dir = Scratch::new("ops-progress");
    let (code, out) = run(migrate(&mocks, &dir.0).args(["--status-interval", "300ms"]));
    assert_eq!(code, 0, "{out}");
    let lines: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("INFO  etlpool::progress]"))
        .collect();
    assert!(lines.len() >= 2, "{out}");
    for line in &lines {
        // `cases: 12/30 (40%), 35/s, ETA 5s`: whole rates, never past the total.
        let counts = line
            .split("]: ")
            .nth(1)
            .or_else(|| line.split("] ").nth(1))
            .unwrap();
        // Before the first phase (a slow start on a loaded machine) there
        // are no counts to check yet.
        if counts == "starting" {
            continue;
        }
        if let Some((done, rest)) = counts.split_once(": ").and_then(|(_, c)| c.split_once('/')) {
            let total: u64 = rest.split(' ').next().unwrap().parse().unwrap_or(u64::MAX);
            let done: u64 = done.parse().unwrap();
            assert!(done <= total, "{line}");
        }
        let rate = line
            .split(", ")
            .find(|p| p.ends_with("/s"))
            .unwrap_or_else(|| panic!("{line}"));
        assert!(rate.trim_end_matches("/s").parse::<u64>().is_ok(), "{line}");
    }
    assert!(lines.iter().any(|l| l.contains("ETA")), "{lines:#?}");
}

/// Every line of `text` is one JSON object; returns them.
fn json_lines(text: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(text)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line:?}")))
        .collect()
}

#[test]
fn with_json_logs_every_line_of_the_output_is_json_the_summary_included() {
    let mocks = mocks(85);
    let dir = Scratch::new("ops-json-summary");
    let out = migrate(&mocks, &dir.0)
        .args(["--log-format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let mut lines = json_lines(&out.stdout);
    lines.extend(json_lines(&out.stderr));
    let summary = lines
        .iter()
        .find(|v| v["target"] == "etlpool::summary")
        .unwrap_or_else(|| panic!("no summary line: {lines:#?}"));
    assert_eq!(summary["fields"]["exit_code"], 0, "{summary:#}");
    assert!(
        summary["fields"]["records"]["case"].is_object(),
        "{summary:#}"
    );

    // `--summary-json -`: the document is one line of stdout.
    let out = migrate(&mocks, &dir.0)
        .args(["--log-format", "json", "--summary-json", "-"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stdout = json_lines(&out.stdout);
    assert_eq!(stdout.len(), 1, "{stdout:#?}");
    assert_eq!(stdout[0]["exit_code"], 0);
    json_lines(&out.stderr);
}

#[test]
fn with_json_logs_a_bad_command_line_is_a_json_line_too() {
    for args in [
        &["--log-format", "json", "migrate", "--bogus"][..],
        &["--log-format=json", "migrate", "--only", "nothing"],
        &["migrate", "--workers", "many", "--log-format", "json"],
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_etlpool"))
            .args(args)
            .env_clear()
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let lines = json_lines(&out.stderr);
        assert_eq!(lines.len(), 1, "{args:?}: {lines:#?}");
        assert_eq!(lines[0]["level"], "ERROR", "{args:?}");
        assert_eq!(lines[0]["fields"]["exit_code"], 2, "{args:?}");
        assert!(
            lines[0]["message"].as_str().unwrap().contains("--"),
            "{args:?}"
        );
    }
    // Help and version stay text, on stdout, exit 0.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_etlpool"))
        .args(["--log-format", "json", "--version"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("etlpool "));
}

#[test]
fn a_status_interval_longer_than_time_itself_just_means_no_progress_lines() {
    let mocks = mocks(86);
    let dir = Scratch::new("ops-huge-interval");
    let out = migrate(&mocks, &dir.0)
        .args(["-q", "--status-interval", "500000000000y"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "", "stderr");
}
