//! Streamed downloads follow redirects (301/302/303/307/308 with a
//! `Location`), as reqwest and curl do, safely: each hop through the pool for
//! its own origin, credentials only while the chain stays on the request's
//! origin, never from https to http, at most `max_redirects` hops; JSON calls
//! and uploads follow none. End to end: the Zephyr mock's downloads sent to a
//! pre-signed URL on a second origin.

use std::io::Read;
use std::sync::Arc;

use crate::attachments::{actual, expected, files_to_migrate, options};
use crate::support::{Migration, Scratch, Scripted, TestCa, scripted, test_pool};
use etlpool::http::{ApiClient, ApiRequest, Auth};
use etlpool::migrate::AttachmentOptions;
use etlpool::mock::server::{Answer, HttpServer, Request, Response, ServerOptions};
use etlpool::{Error, Pool, RedirectRefusal};

const TOKEN: &str = "tok-redirect-Qx81";
/// The secret of the pre-signed URLs of these tests: alphanumeric, so it
/// survives any encoding of it.
const SIGNATURE: &str = "sigQx81f00dfeed";
const FILE: &[u8] = b"the bytes of the file";

fn pool() -> Pool {
    test_pool().build().expect("pool")
}

fn client(pool: &Pool, base: &str) -> ApiClient {
    ApiClient::new(pool, base, Auth::Bearer(TOKEN.into())).expect("client")
}

pub(crate) fn redirect(status: u16, location: &str) -> Answer {
    Answer::Response(Response::new(status).header("Location", location))
}

pub(crate) fn file() -> Answer {
    Answer::Response(Response::bytes(
        200,
        "application/octet-stream",
        FILE.to_vec(),
    ))
}

/// A storage host answering every request with the file.
fn storage() -> Scripted {
    scripted(|_, _| file())
}

/// A pre-signed URL of `host` (its query is a credential).
fn presigned(host: &Scripted, path: &str) -> String {
    format!(
        "{}{path}?X-Amz-Credential=AKIAQX81%2Fus-east-1&X-Amz-Expires=300&X-Amz-Signature={SIGNATURE}",
        host.url()
    )
}

fn download(c: &ApiClient, path: &str) -> etlpool::Result<Vec<u8>> {
    let mut body = c.open_stream(&ApiRequest::get(path).header("Accept", "*/*"), None)?;
    let mut out = Vec::new();
    body.read_to_end(&mut out).expect("read the body");
    Ok(out)
}

fn authorization(s: &Scripted) -> Vec<Option<String>> {
    let seen = s.seen.lock();
    seen.iter()
        .map(|r| {
            r.headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
                .map(|(_, v)| v.clone())
        })
        .collect()
}

fn targets(s: &Scripted) -> Vec<String> {
    s.seen.lock().iter().map(|r| r.target.clone()).collect()
}

#[test]
fn relative_and_absolute_locations_lead_to_the_file_with_the_presigned_query_intact() {
    let host = storage();
    let link = presigned(&host, "/bucket/f1");
    let api = scripted(move |_, req: &Request| match req.path.as_str() {
        // Relative to the request's directory, then absolute on another origin.
        "/v2/attachments/1" => redirect(302, "../blobs/1"),
        "/v2/blobs/1" => redirect(307, &link),
        _ => Answer::Response(Response::new(404)),
    });
    let pool = pool();
    let c = client(&pool, &format!("{}/v2", api.url()));
    assert_eq!(download(&c, "/attachments/1").expect("download"), FILE);
    assert_eq!(targets(&api), ["/v2/attachments/1", "/v2/blobs/1"]);
    assert_eq!(
        targets(&host),
        [format!(
            "/bucket/f1?X-Amz-Credential=AKIAQX81%2Fus-east-1&X-Amz-Expires=300&X-Amz-Signature={SIGNATURE}"
        )]
    );
    // Each hop through its own origin's share of the pool.
    let origins: Vec<String> = pool
        .metrics()
        .origins
        .iter()
        .filter(|(_, o)| o.requests_sent > 0)
        .map(|(origin, _)| origin.clone())
        .collect();
    assert_eq!(origins.len(), 2, "{origins:?}");
}

#[test]
fn credentials_go_to_same_origin_hops_only_and_never_again_once_the_chain_left() {
    let host_url = Arc::new(parking_lot::Mutex::new(String::new()));
    let back = host_url.clone();
    // B sends the client back to A: A must not get the token a second time.
    let b = scripted(move |_, _| redirect(302, &back.lock()));
    let b_url = b.url();
    let api = scripted(move |_, req: &Request| match req.path.as_str() {
        "/v2/attachments/1" => redirect(301, "/v2/attachments/1/content"),
        "/v2/attachments/1/content" => redirect(302, &format!("{b_url}/elsewhere")),
        "/v2/final" => file(),
        _ => Answer::Response(Response::new(404)),
    });
    *host_url.lock() = format!("{}/v2/final", api.url());
    let pool = pool();
    let c = client(&pool, &format!("{}/v2", api.url()));
    let request = ApiRequest::get("/attachments/1")
        .header("Accept", "*/*")
        .header("X-Api-Key", "keyQx81");
    let mut body = c.open_stream(&request, None).expect("download");
    let mut out = Vec::new();
    body.read_to_end(&mut out).unwrap();
    assert_eq!(out, FILE);
    let bearer = Some(format!("Bearer {TOKEN}"));
    assert_eq!(
        authorization(&api),
        [bearer.clone(), bearer, None],
        "{:?}",
        targets(&api)
    );
    assert_eq!(authorization(&b), [None]);
    // A header that may carry a credential stays behind too; a harmless one goes on.
    let b_seen = b.seen.lock();
    let names: Vec<String> = b_seen[0]
        .headers
        .iter()
        .map(|(k, _)| k.to_ascii_lowercase())
        .collect();
    assert!(!names.contains(&"x-api-key".to_string()), "{names:?}");
    assert!(names.contains(&"accept".to_string()), "{names:?}");
}

/// A server whose `/r/N` redirects to `/r/N+1` up to `/r/last`, which is the file.
fn chain(last: usize) -> Scripted {
    scripted(move |_, req: &Request| {
        let n: usize = req.path.trim_start_matches("/r/").parse().unwrap_or(0);
        match n < last {
            true => redirect(302, &format!("/r/{}", n + 1)),
            false => file(),
        }
    })
}

#[test]
fn five_redirects_are_followed_and_a_sixth_is_a_typed_error_naming_the_hops() {
    let pool = pool();
    let five = chain(5);
    assert_eq!(
        download(&client(&pool, &five.url()), "/r/0").expect("5 hops"),
        FILE
    );
    assert_eq!(five.count(), 6);

    let six = chain(6);
    let err = download(&client(&pool, &six.url()), "/r/0").expect_err("6 hops");
    let Error::Redirect(r) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(r.refused, RedirectRefusal::TooMany { max: 5 });
    let want: Vec<String> = (0..=6).map(|n| format!("{}/r/{n}", six.url())).collect();
    assert_eq!(r.hops, want);
    assert_eq!(six.count(), 6, "the sixth redirect is not followed");
    let text = err.to_string();
    assert!(
        text.contains("more than 5 redirects") && text.contains("/r/6"),
        "{text}"
    );
    assert!(!err.is_transient());

    // The limit is the client's.
    let one = chain(2);
    let c = ApiClient::builder(&pool, &one.url())
        .max_redirects(1)
        .build()
        .unwrap();
    let err = download(&c, "/r/0").expect_err("2 hops");
    assert!(
        matches!(&err, Error::Redirect(r) if r.refused == RedirectRefusal::TooMany { max: 1 }),
        "{err:?}"
    );
}

#[test]
fn a_redirect_loop_ends_at_the_hop_limit() {
    let looping = scripted(|_, req: &Request| match req.path.as_str() {
        "/a" => redirect(302, "/b"),
        _ => redirect(307, "/a"),
    });
    let err = download(&client(&pool(), &looping.url()), "/a").expect_err("a loop");
    assert!(
        matches!(&err, Error::Redirect(r) if r.refused == RedirectRefusal::TooMany { max: 5 }),
        "{err:?}"
    );
    assert_eq!(looping.count(), 6);
}

#[test]
fn a_redirect_from_https_to_http_is_refused_before_anything_is_sent() {
    let ca = TestCa::new();
    let plain = storage();
    let target = presigned(&plain, "/f");
    let tls = HttpServer::start(
        ServerOptions {
            tls: Some(ca.server.clone()),
            ..ServerOptions::default()
        },
        Arc::new(move |_: Request, _: &etlpool::mock::server::ConnContext| redirect(302, &target)),
    )
    .unwrap();
    let pool = test_pool().ca_pem(Some(ca.ca_pem.clone())).build().unwrap();
    let err = download(&client(&pool, &tls.url()), "/file").expect_err("a downgrade");
    let Error::Redirect(r) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(r.refused, RedirectRefusal::Downgrade);
    assert_eq!(plain.count(), 0, "nothing goes out in clear");
    assert!(!format!("{err} {err:?}").contains(SIGNATURE), "{err}");
}

#[test]
fn json_calls_and_uploads_keep_redirects_off() {
    let target = storage();
    let to = format!("{}/elsewhere", target.url());
    let api = scripted(move |_, _| redirect(307, &to));
    let c = client(&pool(), &api.url());
    let err = c
        .get_json::<serde_json::Value>("/x", &[])
        .expect_err("a 307");
    assert_eq!(err.status(), Some(307), "{err}");
    let mut body: &[u8] = b"upload";
    let err = c
        .send_stream(&ApiRequest::post("/blob"), &mut body, Some(6))
        .expect_err("a 307");
    assert_eq!(err.status(), Some(307), "{err}");
    assert_eq!(target.count(), 0, "nothing was sent on");
    // And a client that follows none hands a download's 3xx back as it is.
    let c = ApiClient::builder(&pool(), &api.url())
        .max_redirects(0)
        .build()
        .unwrap();
    assert_eq!(download(&c, "/d").expect_err("a 307").status(), Some(307));
    assert_eq!(target.count(), 0);
}

#[test]
fn the_presigned_query_is_in_no_error_when_the_storage_host_refuses_and_quotes_it() {
    // As S3's SignatureDoesNotMatch does: the body quotes what was sent.
    let host = scripted(|_, req: &Request| {
        let body = format!(
            "<Error><Code>AccessDenied</Code><Message>Request has expired</Message>\
             <SignatureProvided>{}</SignatureProvided><Resource>{}</Resource></Error>",
            req.query_param("X-Amz-Signature").unwrap_or(""),
            req.target
        );
        Answer::Response(Response::bytes(403, "application/xml", body.into_bytes()))
    });
    let link = presigned(&host, "/f");
    let api = scripted(move |_, _| redirect(302, &link));
    let err = download(&client(&pool(), &api.url()), "/d").expect_err("a 403");
    assert_eq!(err.status(), Some(403), "{err}");
    assert_eq!(host.count(), 1);
    let text = format!("{err} | {err:?} | {}", etlpool::error_chain(&err));
    assert!(!text.contains(SIGNATURE), "{text}");
    assert!(text.contains("X-Amz-Signature=***"), "{text}");
}

// ---- End to end: the Zephyr mock's option ----

fn redirecting(seed: u64) -> Migration {
    let mut o = options(seed);
    o.attachments_redirect = true;
    Migration::with_options(o)
}

#[test]
fn the_mock_option_redirects_downloads_and_a_migration_carries_every_file_byte_for_byte() {
    let m = redirecting(41);
    let summary = crate::attachments::run(&m, AttachmentOptions::default());
    assert!(summary.is_complete(), "{summary}\n{}", m.failures());
    let files = files_to_migrate(&m);
    assert_eq!(actual(&m), expected(&m));
    assert_eq!(summary.records["attachment"].created, files as u64);
    let (served, with_authorization) = m.mocks.file_host_requests();
    assert!(served >= files as u64, "{served} < {files}");
    assert_eq!(
        with_authorization, 0,
        "the Zephyr token went to the storage host"
    );
    // Every download went through Zephyr first (one request per file at least).
    let downloads: u64 = m
        .mocks
        .zephyr_requests()
        .iter()
        .filter(|(route, _)| route.ends_with("attachments/{}"))
        .map(|(_, n)| n)
        .sum();
    assert!(downloads >= files as u64, "{downloads}");
}

#[test]
fn the_mock_serves_its_files_itself_by_default() {
    let m = Migration::with_options(options(42));
    assert_eq!(m.mocks.file_host_url(), None);
    let id = m.mocks.source().attachments[0].id;
    assert_eq!(m.mocks.file_link(id), None);
}

#[test]
fn an_expired_link_fails_its_file_and_its_signature_is_in_no_report_journal_or_log() {
    let mocks = {
        let mut o = options(43);
        o.attachments_redirect = true;
        etlpool::mock::MockServers::start(o).unwrap()
    };
    let file = &mocks.source().attachments[0];
    let link = mocks.file_link(file.id).expect("a link");
    let signature = link.rsplit_once("X-Amz-Signature=").unwrap().1.to_string();
    let credential = "AKIAMOCK";
    assert!(link.contains(credential), "{link}");
    // More than a run's rounds: some file fails for good.
    mocks.expire_next_file_links(1000);
    let dir = Scratch::new("redirect-secrets");
    let mut cmd = crate::cli::migrate(&mocks, &dir.0);
    cmd.env("RUST_LOG", "trace").env("ETLPOOL_MAX_OUTAGE", "2s");
    let (code, out) = crate::cli::run(&mut cmd);
    assert_ne!(code, 0, "{out}");
    assert!(mocks.file_host_requests().0 > 0, "{out}");
    assert!(out.contains(" DEBUG "), "{out}");
    // The hop is logged, its query masked.
    let hop = out.lines().find(|l| l.contains("following it to"));
    assert!(
        hop.is_some_and(|l| l.contains("X-Amz-Signature=***")),
        "{hop:?}"
    );
    let report = crate::cli::reports(&dir.0).pop().expect("a report");
    let report = std::fs::read_to_string(report).unwrap();
    assert!(report.contains("status 403"), "{report}");
    assert!(report.contains("X-Amz-Signature=***"), "{report}");
    for line in out.lines() {
        assert!(!line.contains(&signature), "{line}");
        assert!(!line.contains(credential), "{line}");
    }
    for entry in std::fs::read_dir(&dir.0).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(!text.contains(&signature), "{}: {text}", path.display());
        assert!(!text.contains(credential), "{}: {text}", path.display());
    }
}

#[test]
fn see_other_and_permanent_redirects_are_followed_and_an_unusable_location_is_refused() {
    let api = scripted(|_, req: &Request| match req.path.as_str() {
        "/a" => redirect(308, "/b?part=1"),
        "/b" => redirect(303, "c"),
        "/c" => file(),
        "/ftp" => redirect(302, "ftp://user:pw@files.example/f"),
        _ => Answer::Response(Response::new(404)),
    });
    let c = client(&pool(), &api.url());
    assert_eq!(download(&c, "/a").expect("308 then 303"), FILE);
    assert_eq!(targets(&api), ["/a", "/b?part=1", "/c"]);
    let err = download(&c, "/ftp").expect_err("not http");
    let Error::Redirect(r) = &err else {
        panic!("{err:?}")
    };
    assert!(
        matches!(r.refused, RedirectRefusal::BadLocation(_)),
        "{err}"
    );
    assert!(!err.to_string().contains("pw@"), "{err}");
}

#[test]
fn a_hop_answers_to_its_own_origins_policies_not_the_first_ones() {
    for status in [429, 503] {
        a_hop_throttled_with(status);
    }
}

/// The storage host says it is throttled (`status` with `Retry-After`): its
/// origin pauses, the API's doesn't.
fn a_hop_throttled_with(status: u16) {
    let host =
        scripted(move |_, _| Answer::Response(Response::new(status).header("Retry-After", "30")));
    let link = presigned(&host, "/f");
    let api = scripted(move |_, _| redirect(302, &link));
    let pool = pool();
    let err = download(&client(&pool, &api.url()), "/d").expect_err("throttled");
    assert_eq!(err.status(), Some(status), "{err}");
    assert!(err.is_transient(), "{err}");
    let paused = |url: &str| {
        !pool
            .policies(url)
            .unwrap()
            .limiter()
            .pause_remaining()
            .is_zero()
    };
    // Only a 429 pauses an origin (as for any call); a 503 is that hop's answer.
    assert_eq!(
        paused(&host.url()),
        status == 429,
        "the storage origin's limiter after a {status}"
    );
    assert!(
        !paused(&api.url()),
        "the API's origin was paused for the storage host's {status}"
    );
    let metrics = pool.metrics();
    let sent = |url: &str| {
        metrics
            .origins
            .get(&etlpool::Origin::parse(url).unwrap().to_string())
            .map_or(0, |o| o.requests_sent)
    };
    assert_eq!((sent(&api.url()), sent(&host.url())), (1, 1));
}
