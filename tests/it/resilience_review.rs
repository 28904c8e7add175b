//! Issue 12 part A, reviewed as a production user: the shapes and paths the
//! first tests left out (a provider's token echoed through the layers, a
//! JSON echo that escapes `/`, a reset header in milliseconds, a budget that
//! announces an absurd reset).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use etlpool::http::{ApiClient, Auth, AuthProvider, RetryPolicy};
use etlpool::mock::server::{Answer, Response};
use etlpool::policy::RateLimit;
use serde_json::{Value, json as j};

use crate::support::{json, scripted, test_pool};

const MARK: &str = "Qv9wR";
/// A token as a login hands it out (base64-ish: `/` and `+` in it).
const LOGIN_TOKEN: &str = "tokQv9wR/a1+b2c3";

/// A login that hands out one token.
struct Login;

impl AuthProvider for Login {
    fn authorization(&self) -> etlpool::Result<String> {
        Ok(format!("Bearer {LOGIN_TOKEN}"))
    }
    fn rejected(&self, _: &str) -> bool {
        false
    }
}

fn assert_clean(what: &str, e: &etlpool::Error) {
    for text in [e.to_string(), format!("{e:?}"), etlpool::error_chain(e)] {
        assert!(!text.contains(MARK), "{what}: a secret leaked: {text}");
    }
}

/// A 400 that quotes the request's token in its message, the way the server
/// got it (after `Bearer `, so only a known value can mask it).
fn quoting_the_token(req: &etlpool::mock::server::Request) -> Answer {
    let auth = req.header("authorization").unwrap_or("");
    let token = auth.trim_start_matches("Bearer ");
    json(
        400,
        j!({"message": format!("token {token} has no access here")}),
    )
}

#[test]
fn a_login_token_echoed_through_the_layers_is_masked() {
    let srv = scripted(|_, req| quoting_the_token(req));
    let spare = scripted(|_, req| quoting_the_token(req));
    let pool = test_pool().build().unwrap();
    let layered = [
        (
            "coalescing",
            ApiClient::builder(&pool, &srv.url()).coalesce_gets(true),
        ),
        (
            "failover",
            ApiClient::builder(&pool, &srv.url()).failover(&spare.url()),
        ),
    ];
    for (what, builder) in layered {
        let api = builder
            .auth(Auth::Provider(Arc::new(Login)))
            .retry(RetryPolicy::none())
            .build()
            .unwrap();
        let err = api.get_json::<Value>("/projects", &[]).unwrap_err();
        assert!(matches!(err, etlpool::Error::Status(_)), "{what}: {err:?}");
        assert_clean(what, &err);
    }
    // Both origins down with a 503 that quotes the token: the passed-over
    // origin's error is in `AllOriginsFailed`'s list.
    let unavailable = |_: usize, req: &etlpool::mock::server::Request| {
        let mut answer = quoting_the_token(req);
        if let Answer::Response(r) = &mut answer {
            r.status = 503;
        }
        answer
    };
    let (down, down_too) = (scripted(unavailable), scripted(unavailable));
    let api = ApiClient::builder(&pool, &down.url())
        .failover(&down_too.url())
        .auth(Auth::Provider(Arc::new(Login)))
        .retry(RetryPolicy::none())
        .build()
        .unwrap();
    let err = api.get_json::<Value>("/projects", &[]).unwrap_err();
    assert!(down.count() > 0 && down_too.count() > 0, "{err:?}");
    assert_clean("all origins down", &err);
    // The same call without layers has always masked it.
    let api = ApiClient::builder(&pool, &srv.url())
        .auth(Auth::Provider(Arc::new(Login)))
        .retry(RetryPolicy::none())
        .build()
        .unwrap();
    assert_clean(
        "bare",
        &api.get_json::<Value>("/projects", &[]).unwrap_err(),
    );
}

#[test]
fn a_json_echo_that_escapes_slashes_or_non_ascii_is_masked() {
    // PHP's json_encode writes `/` as `\/`; Python's json.dumps (and Go's
    // encoding/json for `<`, `>`, `&`) write characters as `\uXXXX`.
    let srv = scripted(|n, req| {
        let auth = req.header("authorization").unwrap_or("");
        let token = auth.trim_start_matches("Bearer ");
        let key = req.query_param("apiKey").unwrap_or("");
        let escaped = |s: &str| -> String {
            s.chars()
                .map(|c| match c {
                    '/' if n % 2 == 0 => "\\/".to_string(),
                    c if !c.is_ascii() || matches!(c, '<' | '>' | '&') => {
                        format!("\\u{:04x}", c as u32)
                    }
                    c => c.to_string(),
                })
                .collect()
        };
        let body = format!(
            r#"{{"message":"token {} and key {} refused"}}"#,
            escaped(token),
            escaped(key)
        );
        Answer::Response(Response::bytes(400, "application/json", body.into_bytes()))
    });
    let pool = test_pool().build().unwrap();
    let api = ApiClient::builder(&pool, &srv.url())
        .auth(Auth::Bearer(LOGIN_TOKEN.into()))
        .retry(RetryPolicy::none())
        .build()
        .unwrap();
    for _ in 0..2 {
        let err = api
            .get_json::<Value>("/x", &[("apiKey", "kéyQv9wR<&>/9")])
            .unwrap_err();
        assert_clean("escaped echo", &err);
    }
}

fn unix_now() -> Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap()
}

#[test]
fn a_reset_given_as_a_unix_time_in_milliseconds_is_read_as_one() {
    // 50 requests left until a reset 20 s from now, written in milliseconds
    // (as several APIs do): the next request is due in about 0.4 s, not in
    // the 15 minutes a reading as seconds would give.
    let srv = scripted(|_, _| {
        let reset_ms = (unix_now() + Duration::from_secs(20)).as_millis();
        Answer::Response(
            Response::json(200, &j!({}))
                .header("X-RateLimit-Remaining", "50")
                .header("X-RateLimit-Reset", reset_ms.to_string()),
        )
    });
    let pool = test_pool().build().unwrap();
    let api = ApiClient::builder(&pool, &srv.url())
        .rate_limit(RateLimit::default())
        .total_timeout(Some(Duration::from_secs(10)))
        .build()
        .unwrap();
    let start = Instant::now();
    for i in 0..3 {
        api.get_json::<Value>("/x", &[])
            .unwrap_or_else(|e| panic!("request {i}: {e}"));
    }
    assert!(
        start.elapsed() < Duration::from_secs(8),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn a_learned_spacing_is_capped_like_a_pause() {
    // One request left in a day-long window: the server's headers can hold
    // the origin no longer than `max_pause`, spaced or paused.
    let srv = scripted(|_, _| {
        Answer::Response(
            Response::json(200, &j!({}))
                .header("X-RateLimit-Remaining", "1")
                .header("X-RateLimit-Reset", "86400"),
        )
    });
    let pool = test_pool().build().unwrap();
    let api = ApiClient::builder(&pool, &srv.url())
        .rate_limit(RateLimit {
            max_pause: Duration::from_millis(300),
            ..RateLimit::default()
        })
        .total_timeout(Some(Duration::from_secs(10)))
        .build()
        .unwrap();
    for i in 0..3 {
        api.get_json::<Value>("/x", &[])
            .unwrap_or_else(|e| panic!("request {i}: {e}"));
    }
}

#[test]
fn an_attempt_cut_short_by_the_calls_own_deadline_is_not_the_servers_failure() {
    // A healthy server that takes 300 ms; 2 requests a second. The second
    // of two calls waits 500 ms for its turn and has 100 ms of its 600 ms
    // left: its attempt times out on the caller's deadline, which says
    // nothing about the server, and must not open a breaker that opens on
    // one failure in two calls.
    let srv = crate::support::server(|_, _| {
        std::thread::sleep(Duration::from_millis(300));
        json(200, j!({}))
    });
    let pool = test_pool().build().unwrap();
    let api = ApiClient::builder(&pool, &srv.url())
        .rate_limit(RateLimit {
            per_second: Some(2.0),
            ..RateLimit::default()
        })
        // Opens on one failure in two calls.
        .breaker(etlpool::policy::BreakerPolicy {
            failure_rate: 0.5,
            ..etlpool::policy::BreakerPolicy::after_failures(1)
        })
        .retry(RetryPolicy::none())
        .total_timeout(Some(Duration::from_millis(600)))
        .build()
        .unwrap();
    let results: Vec<_> = std::thread::scope(|s| {
        let calls: Vec<_> = (0..2)
            .map(|_| s.spawn(|| api.get_json::<Value>("/x", &[])))
            .collect();
        calls.into_iter().map(|c| c.join().unwrap()).collect()
    });
    assert!(
        results.iter().any(|r| r.is_err()),
        "one call had to run out of time: {results:?}"
    );
    assert!(!api.breaker_open(), "{results:?}");
}

#[test]
fn a_timeout_on_a_reused_connection_is_no_stale_connection() {
    // The second GET goes out on the first one's keep-alive connection, and
    // the server holds it past the request timeout: the connection was alive
    // (it was a timeout, not a close), so there is no free resend of a
    // request the server may be working on, and the message says timeout.
    let (release, held) = crossbeam_channel::bounded::<()>(0);
    let srv = scripted(move |n, _| {
        if n == 1 {
            let _ = held.recv_timeout(Duration::from_secs(5));
        }
        json(200, j!({}))
    });
    let pool = test_pool().build().unwrap();
    let api = ApiClient::builder(&pool, &srv.url())
        .retry(RetryPolicy::none())
        .request_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    api.get_json::<Value>("/x", &[]).unwrap();
    let err = api.get_json::<Value>("/x", &[]).unwrap_err();
    drop(release);
    let text = err.to_string();
    assert!(text.contains("timeout"), "{text}");
    assert!(!text.contains("closed before any response"), "{text}");
    assert_eq!(
        srv.count(),
        2,
        "resent as if the connection were stale: {text}"
    );
}

#[test]
fn a_learned_spacing_ends_with_the_window_it_was_learned_for() {
    // The first answer says 1 request is left until a reset 1 s away (a
    // spacing of about 1 s); no later answer announces anything. Once that
    // window has reset its spacing is history: 6 more requests must not
    // take 6 s.
    let srv = scripted(|n, _| {
        let r = Response::json(200, &j!({}));
        Answer::Response(match n {
            0 => r
                .header("X-RateLimit-Remaining", "1")
                .header("X-RateLimit-Reset", "1"),
            _ => r,
        })
    });
    let pool = test_pool().build().unwrap();
    let api = ApiClient::builder(&pool, &srv.url())
        .rate_limit(RateLimit::default())
        .build()
        .unwrap();
    api.get_json::<Value>("/x", &[]).unwrap();
    let start = Instant::now();
    for _ in 0..6 {
        api.get_json::<Value>("/x", &[]).unwrap();
    }
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "still spaced after the reset: {:?}",
        start.elapsed()
    );
}

#[test]
fn a_429_with_retry_after_cuts_the_pace_of_a_server_that_announces_none() {
    // A server with no rate headers takes 10 quick requests and answers the
    // 11th 429 with `Retry-After: 1`. After the pause the origin's pace is
    // cut to about half the rate it had (as it is for a 429 without
    // `Retry-After`), not resumed at full speed into the next 429.
    let srv = scripted(|n, _| match n {
        10 => Answer::Response(Response::json(429, &j!({})).header("Retry-After", "1")),
        _ => json(200, j!({})),
    });
    let pool = test_pool().build().unwrap();
    let api = ApiClient::builder(&pool, &srv.url())
        .rate_limit(RateLimit::default())
        .total_timeout(Some(Duration::from_secs(30)))
        .build()
        .unwrap();
    for _ in 0..18 {
        api.get_json::<Value>("/x", &[]).unwrap();
    }
    let seen = srv.seen.lock();
    assert_eq!(seen.len(), 19);
    // The 8 requests after the retry: at 10+ requests/s cut in half, at
    // least 7 gaps of 0.2 s; at full speed, a few ms.
    let after = seen[18].at - seen[11].at;
    assert!(
        after >= Duration::from_millis(700),
        "not paced after the 429: {after:?}"
    );
}

#[test]
fn a_pause_holds_callers_already_waiting_for_a_connection() {
    // One connection to the origin and four callers: three of them are past
    // the limiter, waiting for that connection, when its request is answered
    // 429 with `Retry-After: 1`. The connection the 429 frees must not carry
    // their requests out during the pause.
    let (go, started) = crossbeam_channel::bounded::<()>(0);
    let srv = scripted(move |n, _| {
        if n == 0 {
            // Hold the first request until every caller has started (and
            // the others wait for its connection).
            let _ = started.recv_timeout(Duration::from_secs(5));
            std::thread::sleep(Duration::from_millis(300));
            return Answer::Response(Response::json(429, &j!({})).header("Retry-After", "1"));
        }
        json(200, j!({}))
    });
    let pool = test_pool().max_connections_per_host(1).build().unwrap();
    let api = ApiClient::builder(&pool, &srv.url())
        .rate_limit(RateLimit::default())
        .total_timeout(Some(Duration::from_secs(20)))
        .build()
        .unwrap();
    std::thread::scope(|s| {
        let calls: Vec<_> = (0..4)
            .map(|_| s.spawn(|| api.get_json::<Value>("/x", &[])))
            .collect();
        assert!(crate::support::wait_until(
            || srv.count() == 1,
            Duration::from_secs(5)
        ));
        go.send(()).unwrap();
        for c in calls {
            c.join().unwrap().unwrap();
        }
    });
    let seen = srv.seen.lock();
    let gap = seen[1].at - seen[0].at;
    // The 429 left ~300 ms after the first request came: its pause ends
    // about 1.3 s after it.
    assert!(
        gap >= Duration::from_millis(1_100),
        "sent during the pause: {gap:?}"
    );
}

/// A server on a raw socket that answers every request with `head` and
/// `body` written as they are, then closes; counts the requests.
fn raw_server(answer: &'static [u8]) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = count.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            // The request's head (the tests send no body).
            let mut buf = Vec::new();
            let mut byte = [0u8; 1];
            while !buf.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                buf.push(byte[0]);
            }
            seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let _ = stream.write_all(answer);
        }
    });
    (url, count)
}

#[test]
fn a_chunked_body_cut_off_is_retried_for_a_get_and_unknown_for_a_post() {
    // A 200 in chunked encoding whose last chunk never comes: the
    // connection closes after the first one.
    const CUT: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
        Transfer-Encoding: chunked\r\n\r\n5\r\n{\"a\":\r\n";
    let (url, count) = raw_server(CUT);
    let pool = test_pool().build().unwrap();
    let api = ApiClient::builder(&pool, &url)
        .retry(crate::resilience_bodies::fast_retries())
        .build()
        .unwrap();
    let err = api.get_json::<Value>("/x", &[]).unwrap_err();
    let sent = count.load(std::sync::atomic::Ordering::SeqCst);
    assert!(sent > 1, "a cut-off GET was not retried ({sent}): {err}");
    assert!(!err.is_outcome_unknown(), "{err}");
    let before = sent;
    let err = api
        .post_json::<_, Value>("/x", &[], &j!({"name": "x"}))
        .unwrap_err();
    assert_eq!(
        count.load(std::sync::atomic::Ordering::SeqCst),
        before + 1,
        "{err}"
    );
    assert!(err.is_outcome_unknown(), "{err:?}");
    assert!(err.to_string().contains("outcome unknown"), "{err}");
}
