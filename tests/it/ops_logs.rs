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
