//! Every fault switch, observably doing what it says. Rates are 0 or 1 and requests
//! sequential, so the outcomes do not depend on thread timing.

use std::time::{Duration, Instant};

use crate::support::mock::{Mocks, small, try_call};
use etlpool::mock::{FailPoint, FaultConfig, MockOptions, MockServers};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(5);

fn module_body(name: &str) -> serde_json::Value {
    json!({ "name": name })
}

#[test]
fn rates_of_zero_never_fire_and_latency_is_added() {
    let mut o = small(1);
    o.zephyr_faults = FaultConfig {
        latency: Duration::from_millis(150),
        ..FaultConfig::default()
    };
    let m = Mocks::start(o);
    let started = Instant::now();
    assert_eq!(m.z("/projects").status, 200);
    assert!(started.elapsed() >= Duration::from_millis(150));
    m.m.faults().zephyr.clear();
    for _ in 0..50 {
        let r = m.z("/projects");
        assert_eq!(r.status, 200);
        r.json();
    }
    let stats = m.m.zephyr_stats().snapshot();
    assert_eq!(
        (stats.accepted, stats.resets, stats.server_closed),
        (1, 0, 0)
    );
}

#[test]
fn a_5xx_before_the_write_leaves_no_trace() {
    let m = Mocks::start(small(2));
    m.m.faults().qtest.set_fail_rate(1.0, FailPoint::Before);
    let r = m.q("POST", "/modules", Some(&module_body("a")));
    assert_eq!(
        (r.status, r.json()["message"].as_str()),
        (503, Some("Service Unavailable"))
    );
    assert_eq!(m.q("GET", "/modules", None).status, 503);
    m.m.faults().zephyr.set_fail_rate(1.0, FailPoint::Before);
    assert_eq!(m.z("/projects").json()["errorCode"], 503);
    assert!(m.m.journal().is_empty());
}

#[test]
fn a_5xx_after_the_write_hides_an_applied_create() {
    let m = Mocks::start(small(3));
    m.m.faults()
        .qtest
        .set(FaultConfig {
            fail_rate: 1.0,
            fail_status: 502,
            fail_point: FailPoint::After,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(m.q("POST", "/modules", Some(&module_body("a"))).status, 502);
    assert_eq!(m.m.qtest_state().modules.len(), 1, "the create was applied");
    m.m.faults().qtest.clear();
    assert_eq!(
        m.q("GET", "/modules?search=a", None)
            .json()
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn above_the_rate_limit_requests_get_429_with_retry_after() {
    let m = Mocks::start(small(4));
    m.m.faults().qtest.set_rate_limit(Some(3));
    m.m.faults().zephyr.set_rate_limit(Some(3));
    let answers: Vec<_> = (0..10).map(|_| m.q("GET", "/modules", None)).collect();
    let limited: Vec<_> = answers.iter().filter(|r| r.status == 429).collect();
    assert!(
        limited.len() >= 4,
        "at most two one-second windows of 3 fit in 10 quick requests"
    );
    assert!(
        answers
            .iter()
            .all(|r| r.header("X-RateLimit-Remaining").is_some()
                && r.header("X-RateLimit-Reset").is_some())
    );
    for r in limited {
        assert_eq!(
            (r.header("Retry-After"), r.json()["message"].as_str()),
            (Some("1"), Some("Too many requests"))
        );
    }
    let z = m.z("/projects");
    assert!(
        z.header("X-Rate-Limit-Remaining").is_some() && z.header("X-Rate-Limit-Reset").is_some()
    );
    m.m.faults().qtest.set_rate_limit(None);
    let r = m.q("GET", "/modules", None);
    assert_eq!(r.status, 200);
    assert!(r.header("X-RateLimit-Remaining").is_none());
}

#[test]
fn idle_keep_alive_connections_are_closed() {
    let m = Mocks::start(small(5));
    m.m.faults()
        .zephyr
        .set_idle_close(Some(Duration::from_millis(100)));
    assert_eq!(m.z("/projects").status, 200);
    assert!(m.m.zephyr_stats().wait_until(|s| s.idle_closed == 1, WAIT));
    assert_eq!(m.z("/projects").status, 200, "the client reconnects");
    assert_eq!(m.m.zephyr_stats().snapshot().accepted, 2);
}

#[test]
fn connection_close_on_every_response() {
    let m = Mocks::start(small(6));
    m.m.faults().zephyr.set_close_rate(1.0);
    for _ in 0..3 {
        let r = m.z("/projects");
        assert_eq!((r.status, r.header("connection")), (200, Some("close")));
    }
    assert!(
        m.m.zephyr_stats()
            .wait_until(|s| s.accepted == 3 && s.server_closed == 3, WAIT)
    );
}

#[test]
fn resets_mid_response_and_malformed_bodies() {
    let m = Mocks::start(small(7));
    m.m.faults().zephyr.set_reset_rate(1.0);
    let url = format!("{}/testcases", m.m.zephyr_url());
    assert!(try_call(&m.agent, "GET", &url, Some(m.m.zephyr_token()), None).is_err());
    assert!(m.m.zephyr_stats().wait_until(|s| s.resets == 1, WAIT));
    m.m.faults().zephyr.set_reset_rate(0.0);
    m.m.faults().zephyr.set_malformed_rate(1.0);
    let r = m.z("/testcases");
    assert_eq!(r.status, 200);
    assert!(
        serde_json::from_str::<serde_json::Value>(&r.text).is_err(),
        "{}",
        r.text
    );
}

#[test]
fn a_reset_after_an_applied_write() {
    let m = Mocks::start(small(8));
    m.m.faults().qtest.set_reset_after_write_rate(1.0);
    let url = m.qurl("/modules");
    assert!(
        try_call(
            &m.agent,
            "POST",
            &url,
            Some(m.m.qtest_token()),
            Some(&module_body("a"))
        )
        .is_err()
    );
    assert_eq!(m.m.qtest_state().modules.len(), 1);
    assert_eq!(
        m.q("GET", "/modules", None).status,
        200,
        "reads are answered"
    );
}

fn temp_file(name: &str) -> std::path::PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    std::env::temp_dir().join(format!(
        "etlpool-{name}-{}-{nanos}.jsonl",
        std::process::id()
    ))
}

#[test]
fn a_crash_after_k_writes_survives_a_restart_with_a_state_file() {
    let path = temp_file("crash");
    let mut o = small(9);
    o.state_file = Some(path.clone());
    o.port_qtest = 0;
    let m = Mocks::start(o.clone());
    m.m.faults().qtest.set_crash_after_writes(Some(3));
    assert_eq!(m.q("POST", "/modules", Some(&module_body("a"))).status, 201);
    assert_eq!(m.q("POST", "/modules", Some(&module_body("b"))).status, 201);
    let url = m.qurl("/modules");
    let token = Some(m.m.qtest_token());
    assert!(
        try_call(&m.agent, "POST", &url, token, Some(&module_body("c"))).is_err(),
        "the third write crashes"
    );
    let started = Instant::now();
    while try_call(&crate::support::mock::agent(), "GET", &url, token, None).is_ok() {
        assert!(
            started.elapsed() < WAIT,
            "the server kept answering after the crash"
        );
    }
    assert!(m.m.faults().qtest.crashed());
    m.m.restart_qtest().unwrap();
    let names: Vec<String> = m
        .q("GET", "/modules", None)
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        names,
        ["a", "b", "c"],
        "the crashing write was applied and persisted"
    );
    assert_eq!(
        m.q("POST", "/modules", Some(&module_body("d"))).status,
        201,
        "the crash switch is disarmed"
    );
    drop(m);
    // A new process with the same seed and file continues with the same ids.
    let again = MockServers::start(o).unwrap();
    assert_eq!(again.qtest_state().modules.len(), 4);
    assert_eq!(again.journal().last().unwrap().seq, 4);
    let _ = std::fs::remove_file(path);
}

#[test]
fn a_torn_last_journal_line_is_dropped() {
    let path = temp_file("torn");
    let mut o = MockOptions::seeded(10);
    o.state_file = Some(path.clone());
    let m = Mocks::start(o.clone());
    m.module("kept", None);
    drop(m);
    std::fs::write(
        &path,
        std::fs::read_to_string(&path).unwrap() + "{\"seq\":2,\"at\":",
    )
    .unwrap();
    let again = Mocks::start(o.clone());
    assert_eq!(again.m.qtest_state().modules.len(), 1);
    again.module("next", None);
    assert_eq!(again.m.journal().len(), 2);
    drop(again);
    let third = Mocks::start(o);
    assert_eq!(
        third.m.qtest_state().modules.len(),
        2,
        "the torn line was cut off the file"
    );
    let _ = std::fs::remove_file(path);
}
