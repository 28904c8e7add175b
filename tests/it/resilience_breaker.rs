//! Issue 12, item 4: a breaker that opens for outages, not blips. Only real
//! failures of the service count (5xx and transport errors of a call's first
//! attempt), never a stale keep-alive connection resent for free, a retry or
//! a 4xx; it opens on a failure rate over a window with a minimum of calls.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};

use etlpool::http::{ApiClient, RetryPolicy};
use etlpool::mock::server::Answer;
use serde_json::{Value, json as j};

use crate::support::{json, scripted, server, test_pool};

fn opened(pool: &etlpool::Pool) -> u64 {
    pool.metrics()
        .total
        .breaker_transitions
        .get("opened")
        .copied()
        .unwrap_or(0)
}

#[test]
fn one_drop_of_every_idle_socket_on_a_healthy_server_opens_nothing() {
    const N: usize = 8;
    // N connections are opened at once (each /warm answer waits for all N
    // requests); then the server drops every one of them, as a server
    // closing idle sockets does: the next request on each finds it closed.
    let warm = Arc::new(Barrier::new(N));
    let dropped = Arc::new(AtomicBool::new(false));
    let drop_now = dropped.clone();
    let srv = server(move |req, ctx| {
        if req.path == "/warm" {
            warm.wait();
        } else if dropped.load(Ordering::SeqCst) && ctx.request_index > 0 {
            return Answer::CloseWithoutResponse;
        } else if ctx.request_index == 0 {
            // The resends on fresh connections answer after some latency,
            // so every drop is seen before any resend's answer.
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        json(200, j!({}))
    });
    let pool = test_pool().max_connections_per_host(N).build().unwrap();
    let api = ApiClient::new(&pool, &srv.url(), etlpool::http::Auth::None).unwrap();
    let together = |path: &'static str| {
        let start = Barrier::new(N);
        std::thread::scope(|s| {
            let calls: Vec<_> = (0..N)
                .map(|_| {
                    s.spawn(|| {
                        start.wait();
                        api.get_json::<Value>(path, &[]).map_err(|e| e.to_string())
                    })
                })
                .collect();
            calls
                .into_iter()
                .map(|c| c.join().unwrap())
                .collect::<Vec<_>>()
        })
    };
    assert!(together("/warm").iter().all(Result::is_ok));
    drop_now.store(true, Ordering::SeqCst);
    let results = together("/x");
    let failed: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(
        failed.is_empty(),
        "{} of {N} failed: {failed:?}",
        failed.len()
    );
    assert!(!api.breaker_open());
    assert_eq!(opened(&pool), 0);
}

#[test]
fn retries_of_one_failing_call_count_once() {
    // One GET answered 503 on its first attempt and its 4 retries: one bad
    // call, not five.
    let srv = scripted(|_, _| json(503, j!({"message": "down"})));
    let pool = test_pool().build().unwrap();
    let api = ApiClient::builder(&pool, &srv.url())
        .retry(crate::resilience_bodies::fast_retries())
        .retry_budget(etlpool::policy::BudgetPolicy {
            floor_per_sec: 100.0,
            ..Default::default()
        })
        .build()
        .unwrap();
    assert_eq!(
        api.get_json::<Value>("/x", &[]).unwrap_err().status(),
        Some(503)
    );
    assert_eq!(srv.count(), 5);
    assert!(!api.breaker_open());
    assert_eq!(opened(&pool), 0);
}

#[test]
fn runs_of_failures_under_the_rate_never_open_it_and_4xx_never_count() {
    // 45 % of calls fail, in runs of 5 (the old breaker opened on 5 in a
    // row), and 4xx answers come in between: the default breaker stays
    // closed.
    let srv = scripted(|n, _| match n % 13 {
        0..=4 => json(503, j!({"message": "blip"})),
        5 | 6 => json(404, j!({"message": "no such thing"})),
        _ => json(200, j!({})),
    });
    let pool = test_pool().build().unwrap();
    let api = ApiClient::builder(&pool, &srv.url())
        .retry(RetryPolicy::none())
        .build()
        .unwrap();
    for _ in 0..130 {
        let r = api.get_json::<Value>("/x", &[]);
        assert!(
            !matches!(r, Err(etlpool::Error::CircuitOpen { .. })),
            "opened after {} calls",
            srv.count()
        );
    }
    assert_eq!(opened(&pool), 0);
}

#[test]
fn an_outage_opens_it_once_with_one_warning() {
    // Every call fails: the breaker opens once the window holds its minimum
    // of calls (20 by default), and then fails fast without a request.
    let srv = scripted(|_, _| json(503, j!({"message": "down"})));
    let pool = test_pool().build().unwrap();
    let api = ApiClient::builder(&pool, &srv.url())
        .retry(RetryPolicy::none())
        .build()
        .unwrap();
    let mut open_errors = 0;
    for _ in 0..40 {
        if let Err(etlpool::Error::CircuitOpen { .. }) = api.get_json::<Value>("/x", &[]) {
            open_errors += 1;
        }
    }
    assert_eq!(srv.count(), 20, "calls sent before it opened");
    assert_eq!(open_errors, 20);
    assert_eq!(opened(&pool), 1, "one state change, one warning");
}
