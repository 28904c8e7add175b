//! Issue 12, items 7 and 8: a GET whose 2xx body is cut off or not the
//! expected JSON is retried like a transport error; a write's 2xx answer that
//! can't be read, decoded or is too large is "outcome unknown", and says so;
//! a failed login is never "outcome unknown" for the call that needed it.

use std::sync::Arc;
use std::time::Duration;

use etlpool::Error;
use etlpool::http::{ApiClient, Auth, RetryPolicy};
use etlpool::mock::server::{Answer, Response};
use serde_json::{Value, json as j};

use crate::support::{json, scripted, test_pool};

/// Retries whose own backoff is negligible.
pub(crate) fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        backoff: etlpool::backoff::Backoff {
            base: Duration::from_millis(1),
            cap: Duration::from_millis(2),
        },
        ..RetryPolicy::default()
    }
}

fn garbled() -> Answer {
    Answer::Response(Response::bytes(
        200,
        "application/json",
        b"{\"values\": [1, 2\x00}{".to_vec(),
    ))
}

fn cut_short() -> Answer {
    Answer::Partial {
        response: Response::json(200, &j!({"values": "y".repeat(300)})),
        bytes: 120,
    }
}

#[test]
fn a_get_with_a_garbled_or_cut_off_2xx_body_is_retried() {
    // Also through the layers around a call (here coalescing).
    for layered in [false, true] {
        let srv = scripted(|n, _| match n {
            0 => garbled(),
            1 => cut_short(),
            2 => Answer::Response(Response::bytes(200, "text/html", b"<html>".to_vec())),
            _ => json(200, j!({"values": [1, 2]})),
        });
        let pool = test_pool().build().unwrap();
        let api = ApiClient::builder(&pool, &srv.url())
            .retry(fast_retries())
            .coalesce_gets(layered)
            .build()
            .unwrap();
        let got: Value = api
            .get_json("/x", &[])
            .unwrap_or_else(|e| panic!("not retried (layered: {layered}): {e}"));
        assert_eq!(got, j!({"values": [1, 2]}));
        assert_eq!(srv.count(), 4);
    }
}

fn outcome_unknown_of(answer: fn() -> Answer, max_body: u64) -> Error {
    let srv = scripted(move |_, _| answer());
    let pool = test_pool().max_body_bytes(max_body).build().unwrap();
    let api = ApiClient::builder(&pool, &srv.url())
        .retry(fast_retries())
        .build()
        .unwrap();
    let err = api
        .post_json::<_, Value>("/things", &[], &j!({"name": "x"}))
        .unwrap_err();
    assert_eq!(srv.count(), 1, "a write is never sent twice: {err}");
    err
}

#[test]
fn a_writes_2xx_that_cant_be_read_is_outcome_unknown_and_says_so() {
    let big = || Answer::Response(Response::json(201, &j!({"id": 1, "pad": "z".repeat(4096)})));
    for (what, answer) in [
        ("garbled", garbled as fn() -> Answer),
        ("cut off", cut_short),
        ("too large", big),
    ] {
        let err = outcome_unknown_of(answer, 1024);
        assert!(err.is_outcome_unknown(), "{what}: {err:?}");
        assert!(
            err.to_string().contains("outcome unknown"),
            "{what}: the message doesn't say so: {err}"
        );
    }
}

#[test]
fn a_failed_login_is_not_an_unknown_outcome_of_the_get_that_needed_it() {
    // The login (a POST) gets a 500: its own outcome is unknown, but the GET
    // it was for was never sent.
    let srv = scripted(|_, req| {
        if req.path.ends_with("/oauth/token") {
            json(500, j!({"message": "login service down"}))
        } else {
            json(200, j!({}))
        }
    });
    let err = get_after_login(&srv.url(), "pass");
    assert!(!err.is_outcome_unknown(), "{err:?}");
    assert!(!err.to_string().contains("outcome unknown"), "{err}");
    assert!(
        srv.seen
            .lock()
            .iter()
            .all(|s| s.path.ends_with("/oauth/token"))
    );
}

/// The error of a GET under `<url>/api/v3` whose credentials come from a
/// qTest password login there (with `password`), without retries.
pub(crate) fn get_after_login(url: &str, password: &str) -> Error {
    let pool = test_pool().build().unwrap();
    let api_url = format!("{url}/api/v3");
    let login = etlpool::qtest::QtestLogin::new(&pool, &api_url, "user", password)
        .unwrap()
        .with_site("acme");
    let api = ApiClient::builder(&pool, &api_url)
        .auth(Auth::Provider(Arc::new(login)))
        .retry(RetryPolicy::none())
        .build()
        .unwrap();
    api.get_json::<Value>("/projects", &[]).unwrap_err()
}
