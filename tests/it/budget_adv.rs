//! Adversarial review of the shared rate budget (feature `redis`): keys
//! left in Redis by hand or by another build, and a Redis that stalls.

use std::time::{Duration, Instant};

use etlpool::fleet::redis::Redis;
use etlpool::fleet::redis::budget::{BudgetOptions, RedisBreaker, RedisLimiter, SharedBudget};
use etlpool::policy::{Breaker, BreakerPolicy, CircuitBreaker, Limiter, RateLimit};

use crate::support::fleet::RedisServer;

fn budget(redis: &RedisServer) -> SharedBudget {
    let target = Redis::open(&redis.url(), None, "etlpool").unwrap();
    SharedBudget::start(&target, BudgetOptions::default()).unwrap()
}

const ORIGIN: &str = "http://127.0.0.1:1";

/// The limiter of [`ORIGIN`] at `per_second`, `max_pause` as given.
fn limiter(budget: &SharedBudget, per_second: f64, max_pause: Duration) -> RedisLimiter {
    RedisLimiter::new(
        budget,
        ORIGIN,
        RateLimit {
            per_second: Some(per_second),
            max_pause,
            ..RateLimit::default()
        },
    )
}

#[test]
fn a_shared_pause_longer_than_max_pause_holds_this_process_no_longer_than_max_pause() {
    let redis = RedisServer::start();
    let budget = budget(&redis);
    let limiter = limiter(&budget, 100.0, Duration::from_millis(300));
    // Another build, or a hand, left a pause of an hour.
    let _: () = redis::cmd("SET")
        .arg(format!("etlpool:budget:{ORIGIN}:pause"))
        .arg("someone")
        .arg("PX")
        .arg(3_600_000)
        .query(&mut redis.conn())
        .unwrap();
    let start = Instant::now();
    let taken = limiter.acquire(Some(start + Duration::from_secs(5)), None);
    let waited = taken.expect("a turn within max_pause, not after an hour");
    assert!(waited <= Duration::from_millis(400), "{waited:?}");
    assert!(
        limiter.pause_remaining() <= Duration::from_millis(300),
        "{:?}",
        limiter.pause_remaining()
    );
}

#[test]
fn a_shared_open_key_without_an_expiry_does_not_hold_the_breaker_open() {
    let redis = RedisServer::start();
    let budget = budget(&redis);
    let breaker = RedisBreaker::new(
        &budget,
        ORIGIN,
        std::sync::Arc::new(CircuitBreaker::new(BreakerPolicy::after_failures(2))),
    );
    let _: () = redis::cmd("SET")
        .arg(format!("etlpool:budget:{ORIGIN}:open"))
        .arg("by hand")
        .query(&mut redis.conn())
        .unwrap();
    assert!(breaker.allow().is_ok(), "a key without expiry is ignored");
}

#[test]
fn a_paused_redis_delays_a_turn_by_no_more_than_the_timeout() {
    let redis = RedisServer::start();
    let budget = budget(&redis);
    let limiter = limiter(&budget, 100.0, RateLimit::default().max_pause);
    limiter.acquire(None, None).unwrap();
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(3000)
        .arg("ALL")
        .query(&mut redis.conn())
        .unwrap();
    let start = Instant::now();
    limiter.acquire(None, None).unwrap();
    let took = start.elapsed();
    // 250 ms timeout, generous slack for a loaded machine.
    assert!(took < Duration::from_millis(1500), "{took:?}");
    assert!(!budget.reachable());
}

#[test]
fn a_tiny_budget_share_alone_refuses_turns_instead_of_panicking() {
    let mut redis = RedisServer::start();
    let target = Redis::open(&redis.url(), None, "etlpool").unwrap();
    redis.kill();
    // `--budget-share 1e-300` parses as a share in (0, 1].
    let budget = SharedBudget::start(
        &target,
        BudgetOptions {
            share: Some(1e-300),
            ..BudgetOptions::default()
        },
    )
    .unwrap();
    assert!(!budget.reachable());
    let limiter = limiter(&budget, 50.0, RateLimit::default().max_pause);
    // The one turn of the burst, then the next is (practically) never.
    let within = || Some(Instant::now() + Duration::from_secs(1));
    limiter.acquire(within(), None).unwrap();
    let denied = limiter.acquire(within(), None);
    assert!(denied.is_err(), "{denied:?}");
}

#[test]
fn while_a_probe_is_out_other_callers_wait_for_it_as_with_the_built_in_breaker() {
    use crate::support::{WAIT, json, scripted, wait_until};
    use etlpool::Error;
    use etlpool::policy::PolicySettings;

    let redis = RedisServer::start();
    // Two failures, then a slow success (the probe), then successes.
    let server = scripted(|n, _| {
        if n == 2 {
            std::thread::sleep(Duration::from_millis(400));
        }
        let status = if n < 2 { 503 } else { 200 };
        json(status, serde_json::json!({}))
    });
    let settings = PolicySettings {
        breaker: BreakerPolicy {
            cooldown: Duration::from_millis(100),
            ..BreakerPolicy::after_failures(2)
        },
        ..PolicySettings::default()
    };
    let client = crate::budget_breaker::process(&redis, &server.url(), settings);
    for _ in 0..2 {
        assert!(client.get_json::<serde_json::Value>("/x", &[]).is_err());
    }
    let prober = client.clone();
    let probe = std::thread::spawn(move || {
        let last = std::cell::RefCell::new(None);
        wait_until(
            || {
                let r = prober.get_json::<serde_json::Value>("/probe", &[]);
                let sent = !matches!(r, Err(Error::CircuitOpen { .. }));
                *last.borrow_mut() = Some(r);
                sent
            },
            WAIT,
        );
        last.into_inner()
    });
    assert!(wait_until(|| server.count() == 3, WAIT), "the probe came");
    let waited = client.get_json::<serde_json::Value>("/y", &[]);
    assert!(waited.is_ok(), "waited for the probe: {waited:?}");
    let probed = probe.join().unwrap();
    assert!(matches!(probed, Some(Ok(_))), "{probed:?}");
}

#[test]
fn budget_shares_outside_zero_to_one_or_not_numbers_exit_2_naming_the_flag() {
    let dir = crate::support::Scratch::new("share");
    for share in ["0", "1.5", "abc", "1/0", "0/0", "-25%", "inf", "NaN", ""] {
        let flag = format!("--budget-share={share}");
        let out = crate::support::fleet::etlpool(
            &dir.0,
            &[
                "load",
                "http://127.0.0.1:9/x",
                "--redis",
                "redis://127.0.0.1:9",
                &flag,
            ],
        )
        .output()
        .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{share:?}: {stderr}");
        assert!(stderr.contains("--budget-share"), "{share:?}: {stderr}");
    }
}
