//! Streamed transfers (`send_stream`, `open_stream`) go through the same
//! policies as any call of their client: the limiter hears their answers, the
//! breaker judges them, and their errors mask what was sent.

use std::time::{Duration, Instant};

use crate::support::{json, scripted, test_pool};
use etlpool::http::{ApiClient, ApiRequest, Auth};
use etlpool::mock::server::{Answer, Response};
use etlpool::policy::BreakerPolicy;
use etlpool::{Error, Pool};
use serde_json::json as j;

const TOKEN: &str = "s3cret-stream-token";

fn client(pool: &Pool, url: &str, breaker: BreakerPolicy) -> ApiClient {
    ApiClient::builder(pool, url)
        .auth(Auth::Bearer(TOKEN.into()))
        .breaker(breaker)
        .build()
        .unwrap()
}

fn upload(c: &ApiClient) -> etlpool::Result<etlpool::pool::Reply> {
    let mut body: &[u8] = b"file bytes";
    c.send_stream(&ApiRequest::post("/blob"), &mut body, Some(10))
}

#[test]
fn a_429_to_a_streamed_upload_pauses_the_origin_for_the_next_call() {
    let srv = scripted(|n, _| match n {
        0 => Answer::Response(
            Response::json(429, &j!({"message": "slow down"})).header("Retry-After", "1"),
        ),
        _ => json(200, j!({"ok": true})),
    });
    let pool = test_pool().build().unwrap();
    let c = client(&pool, &srv.url(), BreakerPolicy::default());
    let err = upload(&c).unwrap_err();
    assert_eq!(err.status(), Some(429));
    assert!(!err.is_outcome_unknown(), "a 429 was not acted on: {err}");
    assert_eq!(srv.count(), 1, "an upload is never sent twice");
    let start = Instant::now();
    let _: serde_json::Value = c.get_json("/next", &[]).unwrap();
    assert!(
        start.elapsed() >= Duration::from_millis(900),
        "the next call went out {:?} after the 429",
        start.elapsed()
    );
}

#[test]
fn a_5xx_to_a_streamed_upload_is_unknown_unretried_masked_and_opens_the_breaker() {
    // The server quotes the token it got back in its error body, bare.
    let srv = scripted(|_, req| {
        let auth = req
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
            .map(|(_, v)| v.trim_start_matches("Bearer ").to_string())
            .unwrap_or_default();
        json(503, j!({"message": format!("rejected {auth}")}))
    });
    let pool = test_pool().build().unwrap();
    let c = client(&pool, &srv.url(), BreakerPolicy::after_failures(1));
    let err = upload(&c).unwrap_err();
    assert_eq!(err.status(), Some(503));
    assert!(err.is_outcome_unknown(), "{err}");
    assert_eq!(srv.count(), 1, "an upload is never sent twice");
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains(TOKEN), "{shown}");
    // The breaker heard the failure: the next call fails fast.
    let next = c.open_stream(&ApiRequest::get("/file"), None).unwrap_err();
    assert!(matches!(next, Error::CircuitOpen { .. }), "{next}");
    assert_eq!(srv.count(), 1);
}
