//! Issue 12, items 5 and 6: pauses that hold every request of the origin and
//! end gently; a 429 without a usable `Retry-After` waits a growing floor;
//! 429s retried for as long as the call's deadline allows; the server's
//! announced budget paced to, and a month's budget kept.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use etlpool::http::{ApiClient, Auth, RetryPolicy};
use etlpool::mock::server::{Answer, Response};
use etlpool::mock::{FaultConfig, MockOptions, MockServers};
use etlpool::policy::RateLimit;
use serde_json::{Value, json as j};

use crate::support::{json, scripted, test_pool};

fn too_many(retry_after: Option<&str>) -> Answer {
    let r = Response::json(429, &j!({"message": "slow down"}));
    Answer::Response(match retry_after {
        Some(v) => r.header("Retry-After", v),
        None => r,
    })
}

use crate::resilience_bodies::fast_retries as patient;

#[test]
fn a_pause_holds_queued_requests_and_they_resume_spread_over_the_rate() {
    // 10 requests/s; the 4th request is answered 429 with a 1 s pause while
    // the other workers wait in the limiter for their slots.
    let srv = scripted(|n, _| {
        if n == 3 {
            too_many(Some("1"))
        } else {
            json(200, j!({}))
        }
    });
    let pool = test_pool().max_connections_per_host(6).build().unwrap();
    let api = ApiClient::builder(&pool, &srv.url())
        .retry(patient())
        .rate_limit(RateLimit {
            per_second: Some(10.0),
            ..RateLimit::default()
        })
        .build()
        .unwrap();
    std::thread::scope(|s| {
        for _ in 0..6 {
            s.spawn(|| {
                for _ in 0..2 {
                    api.get_json::<Value>("/x", &[]).unwrap();
                }
            });
        }
    });
    let seen = srv.seen.lock();
    let paused_at = seen[3].at;
    let mut after: Vec<Duration> = seen[4..].iter().map(|s| s.at - paused_at).collect();
    after.sort();
    // The next slot (100 ms on) may have gone before the 429 was read on a
    // loaded machine; none after it may.
    let inside: Vec<_> = after
        .iter()
        .filter(|d| **d > Duration::from_millis(150) && **d < Duration::from_millis(950))
        .collect();
    assert!(inside.is_empty(), "sent during the pause: {inside:?}");
    let resumed: Vec<_> = after
        .iter()
        .filter(|d| **d >= Duration::from_millis(950))
        .collect();
    assert!(resumed.len() >= 5, "{after:?}");
    let spread = *resumed[4] - *resumed[0];
    assert!(
        spread >= Duration::from_millis(250),
        "5 requests resumed within {spread:?}: {after:?}"
    );
}

#[test]
fn a_429_with_retry_after_0_waits_a_floor_that_grows() {
    let srv = scripted(|n, _| match n {
        0 | 1 => too_many(Some("0")),
        _ => json(200, j!({})),
    });
    let pool = test_pool().build().unwrap();
    let api = ApiClient::builder(&pool, &srv.url())
        .retry(patient())
        .build()
        .unwrap();
    api.get_json::<Value>("/x", &[]).unwrap();
    let seen = srv.seen.lock();
    let (first, second) = (seen[1].at - seen[0].at, seen[2].at - seen[1].at);
    assert!(first >= Duration::from_millis(950), "{first:?}");
    assert!(second >= Duration::from_millis(1900), "{second:?}");
}

#[test]
fn a_429_is_retried_past_max_retries_while_the_deadline_allows() {
    let srv = scripted(|n, _| match n {
        0..=2 => too_many(Some("1")),
        _ => json(200, j!({})),
    });
    let pool = test_pool().build().unwrap();
    let api = ApiClient::builder(&pool, &srv.url())
        .retry(RetryPolicy {
            max_retries: 1,
            ..patient()
        })
        .total_timeout(Some(Duration::from_secs(30)))
        .build()
        .unwrap();
    let got = api.get_json::<Value>("/x", &[]).map_err(|e| e.to_string());
    assert!(got.is_ok(), "{got:?}");
    assert_eq!(srv.count(), 4);
    // A deadline shorter than the pauses ends the call with the last 429.
    let srv = scripted(|_, _| too_many(Some("1")));
    let api = ApiClient::builder(&pool, &srv.url())
        .retry(patient())
        .total_timeout(Some(Duration::from_millis(1500)))
        .build()
        .unwrap();
    let started = Instant::now();
    let err = api.get_json::<Value>("/x", &[]).unwrap_err();
    assert_eq!(err.status(), Some(429), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

/// Runs `workers` threads of GETs against `base` for `secs` whole wall-clock
/// seconds after a second of warm-up; returns the 2xx and 429 answers of the
/// measured span.
fn hammer(base: &str, token: &str, path: &str, workers: usize, secs: u64) -> (u64, u64) {
    let pool = test_pool()
        .max_connections_per_host(workers)
        .build()
        .unwrap();
    let api = ApiClient::new(&pool, base, Auth::Bearer(token.into())).unwrap();
    let origin = api.origin().to_string();
    let answers = || {
        let m = pool.metrics().origin(&origin);
        let class = |c: &str| m.responses.get(c).copied().unwrap_or(0);
        (class("2xx"), class("4xx"))
    };
    let stop = AtomicBool::new(false);
    let mut counted = (0, 0);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    let _ = api.get_json::<Value>(path, &[]);
                }
            });
        }
        std::thread::sleep(Duration::from_secs(1));
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        let to_next = Duration::from_secs(1) - Duration::from_nanos(u64::from(now.subsec_nanos()));
        std::thread::sleep(to_next + Duration::from_millis(25));
        let before = answers();
        std::thread::sleep(Duration::from_secs(secs));
        let after = answers();
        counted = (after.0 - before.0, after.1 - before.1);
        stop.store(true, Ordering::Relaxed);
    });
    counted
}

#[test]
fn a_rate_limited_server_is_paced_to_near_its_limit_without_429s() {
    const LIMIT: u32 = 50;
    const SECS: u64 = 4;
    let mut options = MockOptions::seeded(3);
    options.zephyr_faults = FaultConfig {
        latency: Duration::from_millis(20),
        rate_limit: Some(LIMIT),
        ..FaultConfig::default()
    };
    let mocks = MockServers::start(options).unwrap();
    let (ok, throttled) = hammer(
        &mocks.zephyr_url(),
        mocks.zephyr_token(),
        "/projects",
        8,
        SECS,
    );
    let share = ok as f64 / (SECS as f64 * f64::from(LIMIT));
    let rate = throttled as f64 / (ok + throttled).max(1) as f64;
    // The bar is 95 % and 1 %; a shared test machine gets slack on
    // the throughput only.
    assert!(share >= 0.85, "{:.1} % of the limit", share * 100.0);
    assert!(
        rate < 0.01,
        "{:.2} % answered 429 ({throttled})",
        rate * 100.0
    );
}

#[test]
fn qtests_minute_count_is_paced_to() {
    // A minute of 300 requests, of which a client sending 8 at a time would
    // spend the lot in a second and then sit out 429s.
    let mut options = MockOptions::seeded(4);
    options.qtest_quota.per_minute = 300;
    let mocks = MockServers::start(options).unwrap();
    let path = format!("/projects/{}", mocks.qtest_project_id());
    let (_, throttled) = hammer(&mocks.qtest_url(), mocks.qtest_token(), &path, 8, 2);
    assert_eq!(throttled, 0, "429s answered while pacing to the minute");
}

#[test]
fn a_month_under_the_floor_stops_the_origin_before_sending() {
    let mut options = MockOptions::seeded(5);
    options.qtest_quota.per_month = 1_000;
    let mocks = MockServers::start(options).unwrap();
    let pool = test_pool().build().unwrap();
    let api = ApiClient::builder(&pool, &mocks.qtest_url())
        .auth(Auth::Bearer(mocks.qtest_token().into()))
        .rate_limit(RateLimit {
            month_floor: 995,
            ..RateLimit::default()
        })
        .build()
        .unwrap();
    let path = format!("/projects/{}", mocks.qtest_project_id());
    let mut sent = 0;
    let err = loop {
        match api.get_json::<Value>(&path, &[]) {
            Ok(_) => sent += 1,
            Err(e) => break e,
        }
        assert!(sent < 100, "never stopped");
    };
    assert!(
        matches!(
            err,
            etlpool::Error::BudgetExhausted {
                remaining: 994,
                floor: 995,
                ..
            }
        ),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains("monthly request budget"), "{text}");
    // The answer that said so was the last one sent.
    assert_eq!(sent, 6);
}

#[test]
fn the_cli_stops_with_exit_3_when_the_month_falls_under_its_floor() {
    // Each answer counts the month down from 1,000: under a floor of 1,000
    // from the first one, under 900 after a hundred requests (mid-run).
    for (floor, when) in [("1000", "at the start"), ("900", "mid-run")] {
        let mut options = MockOptions::seeded(121);
        options.sizes = crate::cli::sizes();
        options.qtest_quota.per_month = 1_000;
        let mocks = MockServers::start(options).unwrap();
        let dir = crate::support::Scratch::new("month-floor");
        let mut cmd = crate::cli::migrate(&mocks, &dir.0);
        cmd.env("QTEST_MONTH_FLOOR", floor);
        let (code, out) = crate::cli::run(&mut cmd);
        assert_eq!(code, 3, "{when}: {out}");
        assert!(
            out.contains("monthly request budget"),
            "{when}: the message doesn't say why: {out}"
        );
    }
}
