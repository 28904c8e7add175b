//! Issue 12, item 9: the values a call knows it sent (its token, the login
//! form's password, query values, a bare query part) never come back in an
//! error, whatever shape the server echoes them in, nor in the CLI's log
//! lines at any level (`RUST_LOG=trace` included) or its report.

use etlpool::http::{ApiClient, Auth, RetryPolicy};
use etlpool::mock::server::{Answer, Request, Response};
use serde_json::{Value, json as j};

use crate::support::{Scratch, scripted, test_pool};

/// In every secret: alphanumeric, so it survives any encoding of them.
const MARK: &str = "Zq7xK";
const TOKEN: &str = "tokZq7xK-1a2b3c";
const KEY: &str = "keyZq7xK-4d5e6f";
const BARE: &str = "bareZq7xK9";
const PASSWORD: &str = "pwZq7xK/s3cret";

fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The request's secrets as a server echoes them, in shape `shape`.
fn echo(shape: usize, req: &Request) -> Answer {
    let auth = req.header("authorization").unwrap_or("").to_string();
    let key = req.query_param("apiKey").unwrap_or("").to_string();
    let body = String::from_utf8_lossy(&req.body).into_owned();
    let bad = |v: Value| Answer::Response(Response::json(400, &v));
    match shape {
        0 => bad(j!({"message": format!("invalid apiKey {key} for {auth}")})),
        1 => bad(j!({"errorCode": 400, "apiKey": key})),
        2 => Answer::Response(Response::bytes(
            400,
            "application/x-www-form-urlencoded",
            format!("apiKey={}&auth={}&{}", percent(&key), percent(&auth), body).into_bytes(),
        )),
        3 => bad(j!({"message": format!("unknown parameter in {}", req.target)})),
        4 => bad(j!({"headers": {"Authorization": auth}, "query": req.query})),
        5 => Answer::Response(Response::bytes(
            400,
            "text/plain",
            format!("rejected: key={} token {auth}", percent(&key)).into_bytes(),
        )),
        6 => bad(j!({"message": format!("bad form: {body}"), "echo": percent(&body)})),
        // A 200 whose field holds the key where a number belongs: serde's
        // message quotes the value.
        _ => Answer::Response(Response::json(200, &j!({"count": key}))),
    }
}

const SHAPES: usize = 8;

fn assert_clean(what: &str, e: &etlpool::Error) {
    for text in [e.to_string(), format!("{e:?}"), etlpool::error_chain(e)] {
        assert!(!text.contains(MARK), "{what}: a secret leaked: {text}");
    }
}

#[derive(serde::Deserialize, Debug)]
#[allow(dead_code)]
struct Counted {
    count: u32,
}

#[test]
fn no_echo_shape_leaks_a_known_value_into_an_error() {
    let srv = scripted(|n, req| echo(n % SHAPES, req));
    let pool = test_pool().build().unwrap();
    let api = ApiClient::builder(&pool, &srv.url())
        .auth(Auth::Bearer(TOKEN.into()))
        .retry(RetryPolicy::none())
        .build()
        .unwrap();
    for shape in 0..SHAPES {
        let path = format!("/shape/{shape}?{BARE}");
        let err = api
            .get_json::<Counted>(&path, &[("apiKey", KEY), ("startAt", "0")])
            .unwrap_err();
        assert_clean(&format!("shape {shape}"), &err);
    }
    assert_eq!(srv.count(), SHAPES);
}

#[test]
fn the_login_forms_password_never_shows_in_an_error() {
    for shape in [0, 2, 6] {
        let srv = scripted(move |_, req| echo(shape, req));
        let err = crate::resilience_bodies::get_after_login(&srv.url(), PASSWORD);
        assert_clean(&format!("login shape {shape}"), &err);
    }
}

#[test]
fn the_cli_at_trace_shows_no_secret_in_any_line_or_file() {
    // Zephyr's token and qTest's login both go to servers echoing every
    // shape; the run stops at its start-up checks, saying why.
    for (service, shape) in [("zephyr", 0), ("zephyr", 4), ("qtest", 6), ("qtest", 2)] {
        let echoing = scripted(move |_, req| echo(shape, req));
        let mocks = crate::cli::mocks(120);
        let dir = Scratch::new("secrets");
        let mut cmd = crate::cli::migrate(&mocks, &dir.0);
        cmd.env("RUST_LOG", "trace");
        if service == "zephyr" {
            cmd.env("ZEPHYR_URL", format!("{}/v2", echoing.url()))
                .env("ZEPHYR_TOKEN", TOKEN);
        } else {
            cmd.env_remove("QTEST_TOKEN")
                .env("QTEST_URL", format!("{}/api/v3", echoing.url()))
                .env("QTEST_USERNAME", "user")
                .env("QTEST_PASSWORD", PASSWORD)
                .env("QTEST_SITE", "acme");
        }
        let (code, out) = crate::cli::run(&mut cmd);
        assert_ne!(code, 0, "{out}");
        assert!(
            echoing.count() > 0,
            "{service}: nothing reached the echo: {out}"
        );
        // The most verbose lines are on (ureq's wire dump is never shown).
        assert!(out.contains(" DEBUG "), "{out}");
        for line in out.lines() {
            assert!(!line.contains(MARK), "{service} shape {shape}: {line}");
        }
        for file in std::fs::read_dir(&dir.0).unwrap() {
            let path = file.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(!text.contains(MARK), "{}: {text}", path.display());
        }
    }
}
