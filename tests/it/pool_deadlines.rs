//! A call's `total_timeout` bounds every wait inside it: for a lease, for a
//! busy socket, for credentials, for a rate-limit pause; and the error says
//! which wait ran out.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::{BIG_BODY, big_body_server, json, late_body, ok_server, server, test_pool};
use etlpool::http::{ApiClient, Auth};
use etlpool::mock::server::{Answer, Response};
use etlpool::qtest::QtestLogin;
use etlpool::{CallWait, Error};
use serde_json::json as j;

const TOTAL: Duration = Duration::from_millis(300);
/// Far below the waits the deadline must cut short (3 s), far above `TOTAL`.
const BOUND: Duration = Duration::from_millis(1500);

fn client(pool: &etlpool::Pool, url: &str, auth: Auth) -> ApiClient {
    ApiClient::builder(pool, url)
        .auth(auth)
        .total_timeout(Some(TOTAL))
        .request_timeout(TOTAL)
        .build()
        .unwrap()
}

/// A pool with one connection per host, whose lease waits (3 s) are far
/// longer than the calls' total.
fn one_connection_pool() -> etlpool::Pool {
    test_pool()
        .max_connections_per_host(1)
        .acquire_timeout(Duration::from_secs(3))
        .build()
        .unwrap()
}

/// Runs `call`, checks it failed with a total timeout naming `wait` within
/// [`BOUND`], and returns the message.
fn times_out_on<T: std::fmt::Debug>(wait: CallWait, call: impl FnOnce() -> etlpool::Result<T>) {
    let start = Instant::now();
    let result = call();
    let took = start.elapsed();
    let err = result.expect_err("the call must run out of time");
    assert!(
        took < BOUND,
        "took {took:?} for a total of {TOTAL:?}: {err}"
    );
    match &err {
        Error::TotalTimeout { waiting_for, .. } => assert_eq!(*waiting_for, Some(wait), "{err}"),
        other => panic!("expected a total timeout waiting for {wait:?}, got {other:?}"),
    }
    let text = err.to_string();
    assert!(text.contains(&wait.to_string()), "{text}");
    assert!(err.is_timeout());
}

#[test]
fn the_deadline_bounds_the_wait_for_a_lease() {
    let srv = ok_server();
    let pool = one_connection_pool();
    let api = client(&pool, &srv.url(), Auth::None);
    let held = pool.lease(&srv.url()).unwrap();
    times_out_on(CallWait::Lease, || {
        api.get_json::<serde_json::Value>("/x", &[])
    });
    assert!(CallWait::Lease.to_string().contains("lease"));
    drop(held);
    assert_eq!(pool.metrics().total.in_use, 0);
}

#[test]
fn the_deadline_bounds_the_wait_for_a_busy_socket() {
    let srv = big_body_server();
    let pool = one_connection_pool();
    let api = client(&pool, &srv.url(), Auth::None);
    // The only agent goes back while a body read later still holds its socket.
    let mut late = late_body(&pool, &srv.url());
    times_out_on(CallWait::SocketClaim, || {
        api.send(&etlpool::http::ApiRequest::get("/x"))
    });
    assert!(CallWait::SocketClaim.to_string().contains("socket claim"));
    assert_eq!(late.body_mut().read_to_vec().unwrap().len(), BIG_BODY);
    assert_eq!(srv.stats().snapshot().accepted, 1);
}

#[test]
fn the_deadline_bounds_the_wait_for_a_slow_login() {
    let (release, gate) = crossbeam_channel::bounded::<()>(0);
    let srv = server(move |req, _| {
        if req.path == "/oauth/token" {
            // A login that takes far longer than any caller's total.
            let _ = gate.recv_timeout(Duration::from_secs(3));
            return json(200, j!({"access_token": "t1", "token_type": "bearer"}));
        }
        json(200, j!({"ok": true}))
    });
    let pool = test_pool().build().unwrap();
    let api_url = format!("{}/api/v3", srv.url());
    let login = Arc::new(
        QtestLogin::new(&pool, &api_url, "user", "pass")
            .unwrap()
            .with_site("acme"),
    );
    let api = client(&pool, &api_url, Auth::Provider(login));
    // One caller logs in, the other waits for that login's lock: both must
    // give up at their own deadline.
    std::thread::scope(|s| {
        let callers: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    times_out_on(CallWait::Login, || {
                        api.get_json::<serde_json::Value>("/projects", &[])
                    })
                })
            })
            .collect();
        for c in callers {
            c.join().unwrap();
        }
    });
    assert!(CallWait::Login.to_string().contains("login"));
    drop(release);
}

#[test]
fn the_deadline_bounds_a_rate_limit_pause() {
    let srv = server(|req, _| {
        if req.path == "/limited" {
            Answer::Response(
                Response::json(429, &j!({"message": "slow down"})).header("Retry-After", "5"),
            )
        } else {
            json(200, j!({"ok": true}))
        }
    });
    let pool = test_pool().build().unwrap();
    let api = client(&pool, &srv.url(), Auth::None);
    // The 429 pauses the origin for 5 s: longer than this call has, so it
    // ends with the answer it got rather than wait.
    let start = Instant::now();
    let err = api
        .get_json::<serde_json::Value>("/limited", &[])
        .unwrap_err();
    assert_eq!(err.status(), Some(429), "{err}");
    assert!(start.elapsed() < BOUND);
    // The next call of the origin would wait in the pause past its deadline.
    times_out_on(CallWait::RateLimit, || {
        api.get_json::<serde_json::Value>("/other", &[])
    });
    assert!(CallWait::RateLimit.to_string().contains("rate-limit pause"));
    assert_eq!(srv.stats().snapshot().requests, 1);
}
