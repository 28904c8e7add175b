//! Adversarial review of coalescing (issue 11): GETs that differ in anything
//! the server sees (an `Authorization` header, one query value, the path's
//! case) never share; identical ones share one request and every caller gets
//! the whole body; other methods never share; a follower never outlives its
//! own deadline and never hangs on a leader that failed or unwound; the
//! counters count each event once; credentials stay masked for followers.

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use crate::coalesce::{N, OnTheLeadersCall, coalesced, gated, on_threads};
use crate::failover::refused;
use crate::support::{Scripted, WAIT, json, scripted, test_pool, wait_until};
use crossbeam_channel::{Sender, bounded};
use etlpool::Pool;
use etlpool::http::{ApiClient, ApiRequest, Auth, AuthProvider, RetryPolicy};
use etlpool::mock::server::{Answer, Request, Response};
use serde_json::{Value, json as j};

/// A server whose first request waits until the returned sender fires (or
/// [`WAIT`] passes); every request is answered by `answer`.
fn held(
    answer: impl Fn(usize, &Request) -> Answer + Send + Sync + 'static,
) -> (Scripted, Sender<()>) {
    let (release, released) = bounded::<()>(1);
    let server = scripted(move |n, req| {
        if n == 0 {
            let _ = released.recv_timeout(WAIT);
        }
        answer(n, req)
    });
    (server, release)
}

/// Runs `call` on `n` threads at once; once `n - 1` of them wait on the
/// first one's request (counted at `origin`), lets it answer (`release`).
fn crowd<T: Send>(
    n: usize,
    pool: &Pool,
    origin: &str,
    release: &Sender<()>,
    call: impl Fn() -> T + Sync,
) -> Vec<T> {
    let start = Barrier::new(n);
    thread::scope(|s| {
        let calls: Vec<_> = (0..n)
            .map(|_| {
                s.spawn(|| {
                    start.wait();
                    call()
                })
            })
            .collect();
        assert!(
            wait_until(|| coalesced(pool, origin) == (n - 1) as u64, WAIT),
            "{} of {} joined",
            coalesced(pool, origin),
            n - 1
        );
        release.send(()).unwrap();
        calls.into_iter().map(|c| c.join().unwrap()).collect()
    })
}

/// A coalescing client of `url` without retries.
fn coalescing(pool: &Pool, url: &str) -> ApiClient {
    ApiClient::builder(pool, url)
        .retry(RetryPolicy::none())
        .coalesce_gets(true)
        .build()
        .unwrap()
}

/// Sends each of `requests` on its own thread, all at once, and returns the
/// answers' bodies as JSON.
fn at_once(client: &ApiClient, requests: &[ApiRequest]) -> Vec<Value> {
    let names: Vec<String> = (0..requests.len()).map(|i| i.to_string()).collect();
    on_threads(&names, |i| {
        let request = &requests[i.parse::<usize>().expect("named by index")];
        client.json::<Value>(request).unwrap()
    })
}

#[test]
fn gets_differing_only_in_an_authorization_header_are_not_shared() {
    let srv = gated(2);
    let pool = test_pool().build().unwrap();
    let client = coalescing(&pool, &srv.url());
    let answers = at_once(
        &client,
        &[
            ApiRequest::get("/items").header("Authorization", "Bearer alice"),
            ApiRequest::get("/items").header("Authorization", "Bearer bob"),
        ],
    );
    assert_eq!(srv.count(), 2, "two credentials shared one request");
    assert_eq!(answers[0]["auth"], "Bearer alice");
    assert_eq!(answers[1]["auth"], "Bearer bob");
    assert_eq!(coalesced(&pool, &srv.url()), 0);
}

#[test]
fn gets_differing_in_one_query_value_or_the_paths_case_are_not_shared() {
    let pool = test_pool().build().unwrap();
    let pairs = [
        [
            ApiRequest::get("/items").queries(&[("project", "P"), ("page", "1")]),
            ApiRequest::get("/items").queries(&[("project", "P"), ("page", "2")]),
        ],
        [ApiRequest::get("/Items"), ApiRequest::get("/items")],
        // The same value, once in the path and once as a query pair, differs
        // in encoding only when the path's isn't encoded: `a b` vs `a%20b`.
        [
            ApiRequest::get("/items?q=a+b"),
            ApiRequest::get("/items").query("q", "a b"),
        ],
    ];
    for requests in pairs {
        let srv = gated(2);
        let client = coalescing(&pool, &srv.url());
        let answers = at_once(&client, &requests);
        assert_eq!(srv.count(), 2, "shared: {requests:?}");
        assert_ne!(answers[0]["query"], answers[1]["query"]);
        assert_eq!(coalesced(&pool, &srv.url()), 0);
    }
}

#[test]
fn identical_gets_share_one_request_and_each_caller_gets_the_whole_body() {
    let body: Vec<u8> = (0..256 * 1024).map(|i| (i % 251) as u8).collect();
    let served = body.clone();
    let (srv, release) = held(move |_, _| {
        Answer::Response(Response::bytes(
            200,
            "application/octet-stream",
            served.clone(),
        ))
    });
    let pool = test_pool().build().unwrap();
    let client = coalescing(&pool, &srv.url());
    let request = ApiRequest::get("/blob").query("v", "1");
    let replies = crowd(N, &pool, &srv.url(), &release, || {
        client.send(&request).unwrap()
    });
    assert_eq!(srv.count(), 1, "the server saw more than one request");
    for reply in &replies {
        assert_eq!(reply.status(), 200);
        assert_eq!(reply.body().len(), body.len());
        assert!(reply.body() == &body[..], "a caller got another body");
        assert_eq!(
            reply.header("content-type"),
            Some("application/octet-stream")
        );
    }
    let m = pool.metrics().origin(&srv.url());
    assert_eq!((m.coalesced_requests, m.requests_sent), ((N - 1) as u64, 1));
}

#[test]
fn puts_deletes_and_gets_with_a_body_never_share() {
    const K: usize = 4;
    let pool = test_pool().build().unwrap();
    let kinds = [
        ApiRequest::put("/items/1").json(&j!({"n": 1})).unwrap(),
        ApiRequest::delete("/items/1"),
        ApiRequest::get("/search").json(&j!({"q": "x"})).unwrap(),
        ApiRequest::post("/search")
            .json(&j!({"q": "x"}))
            .unwrap()
            .idempotent(),
    ];
    for request in kinds {
        let srv = gated(K);
        let client = coalescing(&pool, &srv.url());
        at_once(&client, &vec![request.clone(); K]);
        assert_eq!(srv.count(), K, "{} shared", request.method());
        assert_eq!(coalesced(&pool, &srv.url()), 0);
    }
}

#[test]
fn a_follower_of_a_leader_whose_server_never_answers_fails_by_its_deadline() {
    let (arrived, leader_sent) = bounded::<()>(1);
    let srv = scripted(move |n, _| match n {
        0 => {
            let _ = arrived.send(());
            Answer::Hang
        }
        _ => json(200, j!({"n": n})),
    });
    let pool = test_pool().build().unwrap();
    let total = Duration::from_millis(400);
    let client = ApiClient::builder(&pool, &srv.url())
        .retry(RetryPolicy::none())
        .total_timeout(Some(total))
        .coalesce_gets(true)
        .build()
        .unwrap();
    thread::scope(|s| {
        let leader = s.spawn(|| client.get_json::<Value>("/items", &[]));
        leader_sent
            .recv_timeout(WAIT)
            .expect("the leader's request");
        let start = Instant::now();
        let follower = client.get_json::<Value>("/items", &[]).unwrap_err();
        let took = start.elapsed();
        assert!(follower.is_timeout(), "{follower:?}");
        assert!(took < total + Duration::from_secs(2), "{took:?}");
        let leader = leader.join().unwrap().unwrap_err();
        assert!(leader.is_timeout(), "{leader:?}");
    });
    assert_eq!(srv.count(), 1, "the follower sent its own request");
    assert_eq!(coalesced(&pool, &srv.url()), 1);
    // The flight is over: the next call sends its own.
    let next: Value = client.get_json("/items", &[]).unwrap();
    assert_eq!(next, j!({"n": 1}));
}

#[test]
fn a_leader_that_unwinds_leaves_no_follower_waiting_even_without_a_deadline() {
    let srv = scripted(|_, _| json(200, j!({"ok": true})));
    let pool = test_pool().build().unwrap();
    let (watched, url) = (pool.clone(), srv.url());
    let auth = OnTheLeadersCall(Box::new(move || {
        wait_until(|| coalesced(&watched, &url) == (N - 1) as u64, WAIT);
        panic!("the credentials provider broke");
    }));
    let client = ApiClient::builder(&pool, &srv.url())
        .auth(Auth::Provider(Arc::new(auth)))
        .total_timeout(None)
        .coalesce_gets(true)
        .build()
        .unwrap();
    let (done, outcomes) = bounded(N);
    thread::scope(|s| {
        for _ in 0..N {
            let (client, done) = (&client, done.clone());
            s.spawn(move || {
                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    client.get_json::<Value>("/items", &[])
                }));
                let _ = done.send(outcome.map_err(drop));
            });
        }
        let mut followers = 0;
        for _ in 0..N {
            let outcome = outcomes
                .recv_timeout(WAIT)
                .expect("a call still waits for the leader that unwound");
            if let Ok(result) = outcome {
                let e = result.unwrap_err();
                assert!(e.to_string().contains("panicked"), "{e}");
                assert!(!e.is_outcome_unknown());
                followers += 1;
            }
        }
        assert_eq!(followers, N - 1);
    });
    assert_eq!(srv.count(), 0);
}

#[test]
fn followers_of_a_leader_that_fails_over_count_once_each_and_the_failover_once() {
    let (primary, _) = refused();
    let (backup, release) = held(|n, _| json(200, j!({"from": "backup", "n": n})));
    let pool = test_pool().build().unwrap();
    let client = ApiClient::builder(&pool, &primary)
        .failover(&backup.url())
        .retry(RetryPolicy::none())
        .coalesce_gets(true)
        .build()
        .unwrap();
    let answers = crowd(N, &pool, &primary, &release, || {
        client.get_json::<Value>("/items", &[]).unwrap()
    });
    assert_eq!(answers, vec![j!({"from": "backup", "n": 0}); N]);
    assert_eq!(backup.count(), 1);
    let m = pool.metrics();
    let (p, b) = (m.origin(&primary), m.origin(&backup.url()));
    assert_eq!(
        p.coalesced_requests,
        (N - 1) as u64,
        "counted at the primary"
    );
    assert_eq!(b.coalesced_requests, 0);
    assert_eq!((p.failed_over, b.failover_served), (1, 1));
    assert_eq!(b.requests_sent, 1);
}

/// A provider whose token is in every request and never in a message.
struct Token(&'static str);

impl AuthProvider for Token {
    fn authorization(&self) -> etlpool::Result<String> {
        Ok(format!("Bearer {}", self.0))
    }

    fn rejected(&self, _: &str) -> bool {
        false
    }
}

/// Answers 400 with the request's bearer token echoed in its message.
fn echo_auth(_: usize, req: &Request) -> Answer {
    let auth = req.header("authorization").unwrap_or("none");
    let token = auth.trim_start_matches("Bearer ");
    json(400, j!({"message": format!("no such user: {token}")}))
}

#[test]
fn a_token_echoed_by_the_backup_is_masked_for_every_follower() {
    const SECRET: &str = "pr0vider-s3cret-token";
    let (primary, _) = refused();
    let (backup, release) = held(echo_auth);
    let pool = test_pool().build().unwrap();
    let client = ApiClient::builder(&pool, &primary)
        .failover(&backup.url())
        .auth(Auth::Provider(Arc::new(Token(SECRET))))
        .retry(RetryPolicy::none())
        .coalesce_gets(true)
        .build()
        .unwrap();
    let errors = crowd(N, &pool, &primary, &release, || {
        client.get_json::<Value>("/items", &[]).unwrap_err()
    });
    // The backup got the credentials the client was configured with.
    let sent = backup.seen.lock()[0].headers.clone();
    let configured = format!("Bearer {SECRET}");
    assert!(
        sent.iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("authorization") && *v == configured),
        "{sent:?}"
    );
    for e in &errors {
        assert_eq!(e.status(), Some(400), "{e}");
        let shown = format!("{e} | {e:?} | {}", etlpool::error_chain(e));
        assert!(!shown.contains(SECRET), "{shown}");
        assert!(shown.contains("***"), "{shown}");
    }
}

#[test]
fn many_callers_tokens_echoed_by_the_backup_are_masked_for_each() {
    const CALLERS: usize = 6;
    let (primary, _) = refused();
    let backup = {
        let gate = Arc::new(crate::coalesce::Gate::default());
        scripted(move |n, req| {
            if req.path == "/items" {
                gate.arrive(CALLERS);
            }
            echo_auth(n, req)
        })
    };
    let pool = test_pool().build().unwrap();
    let client = ApiClient::builder(&pool, &primary)
        .failover(&backup.url())
        .auth(Auth::Provider(Arc::new(crate::coalesce::ByThread)))
        .retry(RetryPolicy::none())
        .coalesce_gets(true)
        .build()
        .unwrap();
    // The primary is found down first, so every caller is on the backup.
    let _ = client.get_json::<Value>("/warm", &[]);
    let names: Vec<String> = (0..CALLERS).map(|i| format!("tenant{i}-s3cret")).collect();
    let shown = on_threads(&names, |_| {
        let e = client.get_json::<Value>("/items", &[]).unwrap_err();
        format!("{e} | {e:?}")
    });
    assert_eq!(backup.count(), 1 + CALLERS);
    for (token, text) in names.iter().zip(shown) {
        assert!(!text.contains(token.as_str()), "{token} leaked: {text}");
    }
}

#[test]
fn under_contention_every_caller_gets_its_own_answer_and_each_call_counts_once() {
    const THREADS: usize = 12;
    const CALLS: usize = 25;
    let srv = scripted(|_, req| {
        // Widens the overlap of calls in flight; asserts nothing on time.
        thread::sleep(Duration::from_micros(fastrand::u64(0..1500)));
        json(
            200,
            j!({"query": req.target, "auth": req.header("authorization")}),
        )
    });
    let pool = test_pool()
        .max_connections_per_host(THREADS)
        .build()
        .unwrap();
    let client = ApiClient::builder(&pool, &srv.url())
        .auth(Auth::Provider(Arc::new(crate::coalesce::ByThread)))
        .retry(RetryPolicy::none())
        .coalesce_gets(true)
        .build()
        .unwrap();
    // Three callers share each credential.
    let names: Vec<String> = (0..THREADS).map(|t| format!("tenant{}", t % 4)).collect();
    on_threads(&names, |name| {
        for _ in 0..CALLS {
            let page = fastrand::u8(0..3).to_string();
            let v: Value = client.get_json("/items", &[("page", &page)]).unwrap();
            assert_eq!(v["auth"], format!("Bearer {name}"));
            assert_eq!(v["query"], format!("/items?page={page}"));
        }
    });
    let m = pool.metrics().origin(&srv.url());
    assert_eq!(
        m.requests_sent + m.coalesced_requests,
        (THREADS * CALLS) as u64,
        "each call either sent its request or waited for one"
    );
    assert_eq!(m.requests_sent, srv.count() as u64);
    assert!(
        m.coalesced_requests > 0,
        "nothing was shared: the test proved nothing"
    );
}
