//! The breaker of the shared budget (feature `redis`): one process's open
//! breaker holds back the others — in-process pools with budgets of their
//! own (their own Redis connections and memberships), and an `etlpool
//! migrate --redis`; and a Redis that stops answering.

use std::time::{Duration, Instant};

use etlpool::fleet::redis::Redis;
use etlpool::fleet::redis::budget::{BudgetOptions, RedisLimiter, SharedBudget};
use etlpool::http::{ApiClient, RetryPolicy};
use etlpool::policy::{BreakerPolicy, Limiter, PolicySettings, RateLimit};
use etlpool::{Error, Origin};

use crate::cli::{migrate, mocks, run};
use crate::support::fleet::RedisServer;
use crate::support::{Scratch, WAIT, json, scripted, test_pool, wait_until};

/// A "process": a pool whose origin `url` has the shared policies of a
/// budget of its own, and a client without retries (which keeps both
/// alive).
pub(crate) fn process(redis: &RedisServer, url: &str, settings: PolicySettings) -> ApiClient {
    let target = Redis::open(&redis.url(), None, "etlpool").unwrap();
    let budget = SharedBudget::start(&target, BudgetOptions::default()).unwrap();
    let pool = test_pool().build().unwrap();
    let origin = Origin::parse(url).unwrap().to_string();
    pool.set_policies(url, budget.policies(&origin, settings))
        .unwrap();
    ApiClient::builder(&pool, url)
        .retry(RetryPolicy::none())
        .build()
        .unwrap()
}

/// Two "processes" whose breakers open after two failures for `cooldown`;
/// the first has just failed twice.
fn two_processes(redis: &RedisServer, url: &str, cooldown: Duration) -> (ApiClient, ApiClient) {
    let settings = PolicySettings {
        breaker: BreakerPolicy {
            cooldown,
            ..BreakerPolicy::after_failures(2)
        },
        ..PolicySettings::default()
    };
    let a = process(redis, url, settings);
    let b = process(redis, url, settings);
    for _ in 0..2 {
        assert!(a.get_json::<serde_json::Value>("/x", &[]).is_err());
    }
    (a, b)
}

#[test]
fn a_breaker_opened_in_one_process_stops_the_others_until_its_cooldown_ends() {
    let redis = RedisServer::start();
    let server = scripted(|_, _| json(503, serde_json::json!({ "message": "down" })));
    let (a, b) = two_processes(&redis, &server.url(), Duration::from_secs(30));
    assert!(a.breaker_open(), "A's breaker opened after two 503s");
    assert_eq!(server.count(), 2);
    // B never failed, but fails fast: nothing reaches the server.
    let err = b.get_json::<serde_json::Value>("/x", &[]).unwrap_err();
    match err {
        Error::CircuitOpen { retry_in, .. } => {
            assert!(retry_in > Duration::from_secs(25), "{retry_in:?}");
        }
        other => panic!("expected CircuitOpen, got {other}"),
    }
    assert_eq!(server.count(), 2, "B sent nothing");
    assert!(b.breaker_open(), "B's state shows the shared opening");
}

#[test]
fn a_probe_that_closes_the_breaker_in_one_process_lets_the_others_through() {
    let redis = RedisServer::start();
    // Two failures, then the server is well again.
    let server = scripted(|n, _| {
        let status = if n < 2 { 503 } else { 200 };
        json(status, serde_json::json!({}))
    });
    let (a, b) = two_processes(&redis, &server.url(), Duration::from_millis(300));
    assert!(
        b.get_json::<serde_json::Value>("/x", &[]).is_err(),
        "B is held back"
    );
    // After the cooldown A's probe succeeds and closes it for everyone.
    std::thread::sleep(Duration::from_millis(400));
    a.get_json::<serde_json::Value>("/x", &[])
        .expect("A's probe");
    b.get_json::<serde_json::Value>("/x", &[])
        .expect("B goes through");
}

#[test]
fn a_migrate_with_redis_keeps_to_a_breaker_another_process_opened() {
    let redis = RedisServer::start();
    let mocks = mocks(16);
    let dir = Scratch::new("budget-migrate");
    // Another process opened the breaker of Zephyr's origin a moment ago.
    let origin = Origin::parse(&mocks.zephyr_url()).unwrap().to_string();
    redis::cmd("SET")
        .arg(format!("etlpool:budget:{origin}:open"))
        .arg("pid 1")
        .arg("PX")
        .arg(60_000)
        .exec(&mut redis.conn())
        .unwrap();
    let (code, out) = run(migrate(&mocks, &dir.0).args(["--redis", &redis.url()]));
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("circuit breaker"), "{out}");
    assert!(
        mocks.zephyr_requests().is_empty(),
        "Zephyr was asked: {:?}",
        mocks.zephyr_requests()
    );
}

#[test]
fn a_redis_that_stops_answering_holds_a_turn_up_for_its_timeout_only() {
    let redis = RedisServer::start();
    let target = Redis::open(&redis.url(), None, "etlpool").unwrap();
    let options = BudgetOptions {
        share: Some(0.5),
        ..BudgetOptions::default()
    };
    let budget = SharedBudget::start(&target, options).unwrap();
    let limit = RateLimit {
        per_second: Some(100.0),
        ..RateLimit::default()
    };
    let limiter = RedisLimiter::new(&budget, "http://h", limit);
    limiter.acquire(None, None).unwrap();
    assert!(budget.reachable());
    // Redis stops answering anyone for 3 s (a stalled or partitioned server:
    // connections stay open, no reply comes).
    redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(3000)
        .arg("ALL")
        .exec(&mut redis.conn())
        .unwrap();
    let start = Instant::now();
    limiter.acquire(None, None).unwrap();
    let waited = start.elapsed();
    assert!(
        waited < Duration::from_secs(1),
        "a turn waited {waited:?} for a Redis that doesn't answer (its timeout is 250 ms)"
    );
    assert!(!budget.reachable());
    // The next turns don't ask it: half of 100/s alone.
    let start = Instant::now();
    for _ in 0..5 {
        limiter.acquire(None, None).unwrap();
    }
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    // It answers again: the heartbeat rejoins.
    assert!(wait_until(|| budget.reachable(), WAIT), "rejoined");
}

#[test]
fn a_429_without_retry_after_in_one_process_holds_the_others_for_its_floor() {
    let redis = RedisServer::start();
    // The first answer is a 429 saying nothing of when to come back (qTest's
    // spent quota answers so); the rest are fine.
    let server = scripted(|n, _| {
        let status = if n == 0 { 429 } else { 200 };
        json(status, serde_json::json!({}))
    });
    let a = process(&redis, &server.url(), PolicySettings::default());
    let b = process(&redis, &server.url(), PolicySettings::default());
    assert!(a.get_json::<serde_json::Value>("/x", &[]).is_err());
    b.get_json::<serde_json::Value>("/x", &[])
        .expect("B goes through after the pause");
    let seen = server.seen.lock();
    assert_eq!(seen.len(), 2);
    // A 429 without Retry-After waits a floor of at least 1 s: B too.
    let gap = seen[1].at - seen[0].at;
    assert!(gap >= Duration::from_millis(900), "B waited only {gap:?}");
}
