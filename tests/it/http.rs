//! The resilience layer over real sockets, against scripted servers that record
//! every request they read.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use crate::support::{json, scripted, test_pool};
use etlpool::http::{ApiClient, ApiRequest, Auth, AuthProvider, RetryPolicy};
use etlpool::metrics::{BreakerTransition, FailureKind, RetryReason};
use etlpool::mock::server::{Answer, Response};
use etlpool::policy::{BreakerPolicy, BudgetPolicy, RateLimit};
use etlpool::{Error, Pool, TransportKind};
use serde_json::{Value, json as j};

fn status(code: u16) -> Answer {
    json(code, j!({"message": format!("status {code}")}))
}

fn with_header(code: u16, name: &str, value: &str) -> Answer {
    Answer::Response(Response::json(code, &j!({"message": "later"})).header(name, value))
}

/// Fast backoff so tests don't wait on it; budget generous unless a test says otherwise.
pub(crate) fn policy() -> RetryPolicy {
    RetryPolicy {
        backoff: etlpool::backoff::Backoff {
            base: Duration::from_millis(5),
            cap: Duration::from_millis(20),
        },
        ..RetryPolicy::default()
    }
}

pub(crate) fn generous_budget() -> BudgetPolicy {
    BudgetPolicy {
        floor_per_sec: 100.0,
        ..BudgetPolicy::default()
    }
}

fn client(pool: &Pool, url: &str) -> ApiClient {
    ApiClient::builder(pool, url)
        .auth(Auth::Bearer("s3cret-token".into()))
        .retry(policy())
        .retry_budget(generous_budget())
        .build()
        .unwrap()
}

fn retried(pool: &Pool, reason: RetryReason) -> u64 {
    pool.metrics().total.retried(reason)
}

#[test]
fn a_get_answered_503_twice_then_200_succeeds_after_two_retries() {
    let srv = scripted(|n, _| {
        if n < 2 {
            status(503)
        } else {
            json(200, j!({"ok": true}))
        }
    });
    let pool = test_pool().build().unwrap();
    let v: Value = client(&pool, &srv.url())
        .get_json("/things", &[("a", "1")])
        .unwrap();
    assert_eq!(v, j!({"ok": true}));
    assert_eq!(srv.count(), 3);
    assert_eq!(retried(&pool, RetryReason::ServerError), 2);
    let seen = srv.seen.lock();
    assert!(seen.iter().all(|s| {
        s.headers
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("authorization") && v == "Bearer s3cret-token")
    }));
}

#[test]
fn a_post_answered_503_is_not_retried_and_its_outcome_is_unknown() {
    let srv = scripted(|_, _| status(503));
    let pool = test_pool().build().unwrap();
    let err = client(&pool, &srv.url())
        .post_json::<_, Value>("/test-cases", &[], &j!({"name": "x"}))
        .unwrap_err();
    assert_eq!(srv.count(), 1);
    assert_eq!(err.status(), Some(503));
    assert!(err.is_outcome_unknown(), "{err}");
    assert!(err.to_string().contains("outcome unknown"), "{err}");
    assert_eq!(pool.metrics().total.retries.values().sum::<u64>(), 0);
}

#[test]
fn a_post_answered_429_is_retried_after_retry_after() {
    let srv = scripted(|n, _| {
        if n == 0 {
            with_header(429, "Retry-After", "1")
        } else {
            json(200, j!({"id": 7}))
        }
    });
    let pool = test_pool().build().unwrap();
    let start = Instant::now();
    let v: Value = client(&pool, &srv.url())
        .post_json("/test-cases", &[], &j!({}))
        .unwrap();
    assert_eq!(v["id"], 7);
    assert_eq!(srv.count(), 2);
    let gap = {
        let seen = srv.seen.lock();
        seen[1].at - seen[0].at
    };
    assert!(gap >= Duration::from_millis(950), "retried after {gap:?}");
    assert!(start.elapsed() < Duration::from_secs(10));
    let m = pool.metrics().total;
    assert_eq!(m.retried(RetryReason::TooManyRequests), 1);
    assert_eq!(m.rate_limit_waits, 1);
}

#[test]
fn a_post_with_an_idempotency_key_is_retried_on_503() {
    let srv = scripted(|n, _| {
        if n == 0 {
            status(503)
        } else {
            json(200, j!({"id": 1}))
        }
    });
    let pool = test_pool().build().unwrap();
    let req = ApiRequest::post("/things")
        .idempotency_key("thing-1")
        .json(&j!({}))
        .unwrap();
    let v: Value = client(&pool, &srv.url()).json(&req).unwrap();
    assert_eq!(v["id"], 1);
    assert_eq!(srv.count(), 2);
    let seen = srv.seen.lock();
    assert!(seen.iter().all(|s| {
        s.headers
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("idempotency-key") && v == "thing-1")
    }));
}

/// Reads the second request on each connection, then closes the socket
/// without an answer: the stale keep-alive race.
fn stale_server() -> etlpool::mock::server::HttpServer {
    crate::support::server(|_, ctx| {
        if ctx.request_index == 1 {
            Answer::CloseWithoutResponse
        } else {
            json(200, j!({"ok": true}))
        }
    })
}

#[test]
fn a_get_on_a_connection_closed_by_the_server_is_resent_transparently() {
    let srv = stale_server();
    let pool = test_pool().build().unwrap();
    let c = client(&pool, &srv.url());
    let _: Value = c.get_json("/a", &[]).unwrap();
    let v: Value = c.get_json("/b", &[]).unwrap();
    assert_eq!(v, j!({"ok": true}));
    let m = pool.metrics().total;
    assert_eq!(m.retried(RetryReason::StaleConnection), 1);
    assert_eq!(m.connections_created, 2);
    assert_eq!(srv.stats().snapshot().requests, 3);
}

#[test]
fn a_post_on_a_connection_closed_by_the_server_fails_with_outcome_unknown() {
    let srv = stale_server();
    let pool = test_pool().build().unwrap();
    let c = client(&pool, &srv.url());
    let _: Value = c.get_json("/warm", &[]).unwrap();
    let err = c
        .post_json::<_, Value>("/create", &[], &j!({"name": "x"}))
        .unwrap_err();
    assert!(err.is_outcome_unknown(), "{err}");
    assert!(err.to_string().contains("outcome unknown"), "{err}");
    let x = err.exchange().unwrap();
    assert!(x.is_stale_connection(), "{x:?}");
    // The POST reached the server once and was never resent.
    assert_eq!(srv.stats().snapshot().requests, 2);
    assert_eq!(pool.metrics().total.retries.values().sum::<u64>(), 0);
}

#[test]
fn a_response_cut_off_halfway_is_not_taken_for_a_stale_connection() {
    let srv = crate::support::server(|_, ctx| {
        if ctx.request_index == 1 {
            Answer::Partial {
                response: Response::json(200, &j!({"data": "x".repeat(500)})),
                bytes: 80,
            }
        } else {
            json(200, j!({"ok": true}))
        }
    });
    let pool = test_pool().build().unwrap();
    let c = ApiClient::builder(&pool, &srv.url())
        .retry(RetryPolicy::none())
        .build()
        .unwrap();
    let _: Value = c.get_json("/warm", &[]).unwrap();
    let err = c.get_json::<Value>("/cut", &[]).unwrap_err();
    let x = err.exchange().unwrap();
    assert!(
        x.reused && x.response_started && !x.is_stale_connection(),
        "{x:?}"
    );
    assert_eq!(srv.stats().snapshot().requests, 2);
    assert_eq!(retried(&pool, RetryReason::StaleConnection), 0);
    // A POST cut off the same way has an unknown outcome.
    let _: Value = c.get_json("/warm", &[]).unwrap();
    let err = c.post_json::<_, Value>("/cut", &[], &j!({})).unwrap_err();
    assert!(err.is_outcome_unknown(), "{err}");
}

#[test]
fn retry_after_as_an_http_date_is_honoured() {
    let srv = scripted(|n, _| {
        if n == 0 {
            let when = SystemTime::now() + Duration::from_secs(2);
            with_header(503, "Retry-After", &httpdate::fmt_http_date(when))
        } else {
            json(200, j!({}))
        }
    });
    let pool = test_pool().build().unwrap();
    let _: Value = client(&pool, &srv.url()).get_json("/x", &[]).unwrap();
    let gap = {
        let seen = srv.seen.lock();
        seen[1].at - seen[0].at
    };
    // HTTP dates have whole seconds: at least one full second must pass.
    assert!(gap >= Duration::from_millis(950), "retried after {gap:?}");
}

#[test]
fn an_absurd_retry_after_is_capped() {
    let srv = scripted(|n, _| {
        if n == 0 {
            with_header(503, "Retry-After", "86400")
        } else {
            json(200, j!({}))
        }
    });
    let pool = test_pool().build().unwrap();
    let c = ApiClient::builder(&pool, &srv.url())
        .retry(RetryPolicy {
            retry_after_cap: Duration::from_millis(300),
            ..policy()
        })
        .retry_budget(generous_budget())
        .build()
        .unwrap();
    let start = Instant::now();
    let _: Value = c.get_json("/x", &[]).unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(srv.count(), 2);
}

#[test]
fn a_spent_retry_budget_surfaces_the_error() {
    let srv = scripted(|_, _| status(503));
    let pool = test_pool().build().unwrap();
    let c = ApiClient::builder(&pool, &srv.url())
        .retry(policy())
        .retry_budget(BudgetPolicy {
            ratio: 0.0,
            floor_per_sec: 0.1,
            window: Duration::from_secs(10),
        })
        .breaker(BreakerPolicy {
            failure_threshold: 0,
            ..BreakerPolicy::default()
        })
        .build()
        .unwrap();
    // The floor allows one retry in the window; then errors surface at once.
    assert_eq!(
        c.get_json::<Value>("/x", &[]).unwrap_err().status(),
        Some(503)
    );
    assert_eq!(srv.count(), 2);
    assert_eq!(
        c.get_json::<Value>("/x", &[]).unwrap_err().status(),
        Some(503)
    );
    assert_eq!(srv.count(), 3);
}

#[test]
fn the_rate_limit_spaces_requests_from_all_threads() {
    let srv = scripted(|_, _| json(200, j!({})));
    let pool = test_pool().build().unwrap();
    let c = ApiClient::builder(&pool, &srv.url())
        .rate_limit(RateLimit {
            per_second: Some(10.0),
            burst: 1,
            ..RateLimit::default()
        })
        .build()
        .unwrap();
    let left = AtomicUsize::new(30);
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                while left
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok()
                {
                    let _: Value = c.get_json("/x", &[]).unwrap();
                }
            });
        }
    });
    // 30 requests at 10/s with a burst of 1: the last starts 2.9 s after the first.
    assert!(
        start.elapsed() >= Duration::from_millis(2850),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(srv.count(), 30);
}

#[test]
fn a_429_to_one_thread_pauses_them_all() {
    let srv = scripted(|n, _| {
        if n == 8 {
            with_header(429, "Retry-After", "1")
        } else {
            json(200, j!({}))
        }
    });
    let pool = test_pool().build().unwrap();
    let c = client(&pool, &srv.url());
    let threads = 4;
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                for _ in 0..10 {
                    let _: Value = c.get_json("/x", &[]).unwrap();
                }
            });
        }
    });
    let seen = srv.seen.lock();
    let t429 = seen[8].at;
    // Requests already past the limiter before the 429 reached its client may
    // still arrive in the first moments; 300 ms leaves room for a slow CI box. After it, no
    // thread may start a request until the pause ends (without the pause, four
    // threads would send hundreds in that time).
    let during = seen
        .iter()
        .filter(|s| {
            s.at > t429 + Duration::from_millis(300) && s.at < t429 + Duration::from_millis(900)
        })
        .count();
    assert_eq!(during, 0, "requests started during the pause");
    assert!(seen.last().unwrap().at >= t429 + Duration::from_millis(950));
    assert_eq!(seen.len(), 41);
}

#[test]
fn the_breaker_opens_fails_fast_and_closes_after_a_good_probe() {
    let healthy = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let h = healthy.clone();
    let srv = scripted(move |_, _| {
        if h.load(Ordering::SeqCst) {
            json(200, j!({}))
        } else {
            status(500)
        }
    });
    let pool = test_pool().build().unwrap();
    let cooldown = Duration::from_millis(300);
    let c = ApiClient::builder(&pool, &srv.url())
        .breaker(BreakerPolicy {
            cooldown,
            ..BreakerPolicy::after_failures(5)
        })
        .build()
        .unwrap();
    for _ in 0..5 {
        assert_eq!(
            c.get_json::<Value>("/x", &[]).unwrap_err().status(),
            Some(500)
        );
    }
    let err = c.get_json::<Value>("/x", &[]).unwrap_err();
    assert!(matches!(err, Error::CircuitOpen { .. }), "{err:?}");
    assert!(err.to_string().contains("next probe in"), "{err}");
    assert_eq!(srv.count(), 5, "an open breaker must not touch the server");
    assert!(c.breaker_open());
    std::thread::sleep(cooldown);
    healthy.store(true, Ordering::SeqCst);
    let _: Value = c.get_json("/x", &[]).unwrap();
    assert!(!c.breaker_open());
    let m = pool.metrics().total;
    let t = |x: BreakerTransition| m.breaker_transitions[&x.to_string()];
    assert_eq!(
        (
            t(BreakerTransition::Opened),
            t(BreakerTransition::HalfOpened),
            t(BreakerTransition::Closed)
        ),
        (1, 1, 1)
    );
    assert_eq!(m.failed(FailureKind::BreakerOpen), 1);
    assert_eq!(srv.count(), 6);
}

#[test]
fn a_server_that_never_answers_ends_in_a_timeout() {
    let srv = scripted(|_, _| Answer::Hang);
    let pool = test_pool().build().unwrap();
    let c = ApiClient::builder(&pool, &srv.url())
        .request_timeout(Duration::from_millis(400))
        .total_timeout(Some(Duration::from_secs(1)))
        .retry(policy())
        .retry_budget(generous_budget())
        .build()
        .unwrap();
    let start = Instant::now();
    let err = c.get_json::<Value>("/x", &[]).unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    let Error::Request(r) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(r.kind, TransportKind::Timeout);
}

#[test]
fn bad_bodies_are_typed_errors() {
    let srv = scripted(|_, req| match req.path.as_str() {
        "/html" => Answer::Response(Response::bytes(
            200,
            "text/html",
            b"<html>hi</html>".to_vec(),
        )),
        "/broken" => Answer::Response(Response::bytes(
            200,
            "application/json",
            b"{\"nope\": ".to_vec(),
        )),
        _ => Answer::Response(Response::bytes(200, "application/json", vec![b' '; 4096])),
    });
    let pool = test_pool().max_body_bytes(1024).build().unwrap();
    // A GET's bad 2xx body is retried like a transport error; this test is
    // about the error after the retries.
    let c = ApiClient::builder(&pool, &srv.url())
        .retry(RetryPolicy::none())
        .build()
        .unwrap();
    let err = c.get_json::<Value>("/html", &[]).unwrap_err();
    assert!(matches!(err, Error::Decode(_)), "{err:?}");
    assert!(err.to_string().contains("text/html"), "{err}");
    let err = c.get_json::<Value>("/broken", &[]).unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, Error::Decode(_))
            && text.contains("invalid JSON")
            && text.contains("/broken"),
        "{text}"
    );
    let err = c.get_json::<Value>("/huge", &[]).unwrap_err();
    assert!(
        matches!(err, Error::BodyTooLarge { limit: 1024, .. }),
        "{err:?}"
    );
    let m = pool.metrics().total;
    assert_eq!(
        (
            m.failed(FailureKind::Decode),
            m.failed(FailureKind::BodyTooLarge)
        ),
        (2, 1)
    );
}

#[test]
fn a_truncated_body_is_a_transport_error() {
    let srv = scripted(|_, _| Answer::Partial {
        response: Response::json(200, &j!({"data": "y".repeat(300)})),
        bytes: 120,
    });
    let pool = test_pool().build().unwrap();
    let c = ApiClient::builder(&pool, &srv.url())
        .retry(RetryPolicy::none())
        .build()
        .unwrap();
    let err = c.get_json::<Value>("/x", &[]).unwrap_err();
    assert!(
        matches!(&err, Error::Request(r) if r.exchange.response_started),
        "{err:?}"
    );
    assert_eq!(srv.count(), 1);
}

#[test]
fn tokens_never_reach_errors() {
    let srv = scripted(|_, req| {
        let auth = req.header("authorization").unwrap_or_default().to_string();
        json(
            403,
            j!({"message": format!("rejected {auth}"), "access_token": "s3cret-token"}),
        )
    });
    let pool = test_pool().build().unwrap();
    let c = client(&pool, &format!("{}?api_key=s3cret-token", srv.url()));
    let err = c
        .get_json::<Value>("/x", &[("token", "s3cret-token")])
        .unwrap_err();
    let text = format!("{err} {err:?} {c:?}");
    assert!(!text.contains("s3cret-token"), "{text}");
    assert_eq!(err.status(), Some(403));
}

#[test]
fn secrets_anywhere_in_an_error_body_are_masked() {
    // A word "token" earlier in the body, a form echoing the login, a
    // non-string value before the secret one.
    let bodies = [
        r#"{"error":"no token","code":5,"refresh_token":"s3cret-token"}"#,
        r#"{"token":null,"access_token":"s3cret-token"}"#,
        "grant_type=password&username=u&password=s3cret-token",
    ];
    let srv = scripted(move |n, _| {
        etlpool::mock::server::Answer::Response(etlpool::mock::server::Response::bytes(
            400,
            "text/plain",
            bodies[n % bodies.len()].as_bytes().to_vec(),
        ))
    });
    let pool = test_pool().build().unwrap();
    let c = client(&pool, &srv.url());
    for body in bodies {
        let err = c.get_json::<Value>("/x", &[]).unwrap_err();
        let text = format!("{err} {err:?}");
        assert!(!text.contains("s3cret-token"), "{body}: {text}");
        assert_eq!(err.status(), Some(400));
    }
}

struct Renewing {
    version: AtomicUsize,
}

impl AuthProvider for Renewing {
    fn authorization(&self) -> etlpool::Result<String> {
        Ok(format!("Bearer v{}", self.version.load(Ordering::SeqCst)))
    }

    fn rejected(&self, rejected: &str) -> bool {
        let current = self.authorization().unwrap();
        if current == rejected {
            self.version.fetch_add(1, Ordering::SeqCst);
        }
        true
    }
}

#[test]
fn a_401_renews_credentials_once_and_resends() {
    let srv = scripted(|_, req| match req.header("authorization") {
        Some("Bearer v2") => json(200, j!({"id": 5})),
        _ => json(401, j!({"message": "Unauthorized"})),
    });
    let pool = test_pool().build().unwrap();
    let provider = Arc::new(Renewing {
        version: AtomicUsize::new(1),
    });
    let c = ApiClient::new(&pool, &srv.url(), Auth::Provider(provider.clone())).unwrap();
    let v: Value = c.post_json("/create", &[], &j!({})).unwrap();
    assert_eq!(v["id"], 5);
    assert_eq!(srv.count(), 2);
    // A credential that stays rejected is a 401 error, not a loop.
    provider.version.store(7, Ordering::SeqCst);
    assert_eq!(
        c.get_json::<Value>("/x", &[]).unwrap_err().status(),
        Some(401)
    );
}

#[test]
fn urls_outside_the_clients_origin_are_refused() {
    let srv = scripted(|_, _| json(200, j!({})));
    let pool = test_pool().build().unwrap();
    let c = client(&pool, &format!("{}/api/v3/", srv.url()));
    assert_eq!(c.base_url(), format!("{}/api/v3", srv.url()));
    let err = c
        .get_json::<Value>("https://elsewhere.example/x", &[])
        .unwrap_err();
    assert!(matches!(err, Error::InvalidUrl { .. }), "{err:?}");
    assert_eq!(srv.count(), 0);
    let _: Value = c
        .get_json(&format!("{}/api/v3/next?startAt=10", srv.url()), &[])
        .unwrap();
    assert_eq!(srv.seen.lock()[0].path, "/api/v3/next");
}
