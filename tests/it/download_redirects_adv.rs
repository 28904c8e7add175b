//! Adversarial review of streamed downloads that follow redirects: odd
//! `Location`s, bodies of redirects that never end, the call's deadline over
//! a whole chain, credentials leaving the origin, the pool's global cap, TLS
//! on a hop. Over real sockets: the project's scripted servers and a raw one
//! for answers no well-behaved server writes.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::download_redirects::{file, redirect};
use crate::support::{TestCa, scripted, test_pool};
use etlpool::http::{ApiClient, ApiRequest, Auth};
use etlpool::mock::server::{Answer, HttpServer, Request, Response, ServerOptions};
use etlpool::{Error, RedirectRefusal};
use parking_lot::Mutex;

const TOKEN: &str = "tok-adv-Zr71";
const FILE: &[u8] = b"the bytes of the file";

fn client(pool: &etlpool::Pool, base: &str) -> ApiClient {
    ApiClient::new(pool, base, Auth::Bearer(TOKEN.into())).expect("client")
}

fn download(c: &ApiClient, request: &ApiRequest) -> etlpool::Result<Vec<u8>> {
    let mut body = c.open_stream(request, None)?;
    let mut out = Vec::new();
    body.read_to_end(&mut out).expect("read the body");
    Ok(out)
}

fn assert_bad_location(err: &Error) {
    assert!(
        matches!(err, Error::Redirect(r) if matches!(r.refused, RedirectRefusal::BadLocation(_))),
        "{err:?}"
    );
}

fn get(path: &str) -> ApiRequest {
    ApiRequest::get(path).header("Accept", "*/*")
}

/// A raw HTTP/1.1 server: each connection's first request head is recorded
/// and answered with the bytes `answer` gives for its target; the socket is
/// then kept open (never closed by this side) when `hold` is true, so a body
/// shorter than announced never ends.
struct Raw {
    url: String,
    heads: Arc<Mutex<Vec<String>>>,
}

fn raw(answer: impl Fn(&str) -> (Vec<u8>, bool) + Send + Sync + 'static) -> Raw {
    raw_at("127.0.0.1:0", answer)
}

/// [`raw`] listening on `addr` (`[::1]:0` for an IPv6 literal host).
fn raw_at(addr: &str, answer: impl Fn(&str) -> (Vec<u8>, bool) + Send + Sync + 'static) -> Raw {
    let listener = TcpListener::bind(addr).unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let heads: Arc<Mutex<Vec<String>>> = Arc::default();
    let log = heads.clone();
    let held: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
    let answer = Arc::new(answer);
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                match conn.read(&mut byte) {
                    Ok(1) => head.push(byte[0]),
                    _ => break,
                }
            }
            let head = String::from_utf8_lossy(&head).to_string();
            let target = head.split(' ').nth(1).unwrap_or("").to_string();
            log.lock().push(head);
            let (bytes, hold) = answer(&target);
            let _ = conn.write_all(&bytes);
            if hold {
                held.lock().push(conn);
            }
        }
    });
    Raw { url, heads }
}

fn closing_answer(head: &str) -> (Vec<u8>, bool) {
    (
        format!("{head}Connection: close\r\n\r\n").into_bytes(),
        false,
    )
}

fn raw_file() -> (Vec<u8>, bool) {
    let mut out = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        FILE.len()
    )
    .into_bytes();
    out.extend_from_slice(FILE);
    (out, false)
}

#[test]
fn a_redirect_whose_body_never_ends_is_followed_without_waiting_for_it() {
    // Announces a megabyte, sends a line and stalls with the socket open.
    let server = raw(|target| match target {
        "/d" => (
            b"HTTP/1.1 302 Found\r\nLocation: /f\r\nContent-Length: 1000000\r\n\r\n<a href=/f>"
                .to_vec(),
            true,
        ),
        _ => raw_file(),
    });
    let pool = test_pool().build().unwrap();
    let c = ApiClient::builder(&pool, &server.url)
        .request_timeout(Duration::from_secs(30))
        .total_timeout(Some(Duration::from_secs(60)))
        .build()
        .unwrap();
    let start = Instant::now();
    assert_eq!(download(&c, &get("/d")).expect("the file"), FILE);
    // Waiting for the redirect's body would take the 30 s transfer limit.
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(server.heads.lock().len(), 2);
}

#[test]
fn a_chain_of_slow_hops_ends_at_the_calls_total_timeout_not_one_per_hop() {
    // Every hop takes 400 ms; a 1 s total allows no more than three of them.
    let api = scripted(|_, req: &Request| {
        std::thread::sleep(Duration::from_millis(400));
        let n: usize = req.path.trim_start_matches("/r/").parse().unwrap_or(0);
        match n < 4 {
            true => redirect(302, &format!("/r/{}", n + 1)),
            false => file(),
        }
    });
    let pool = test_pool().build().unwrap();
    let c = ApiClient::builder(&pool, &api.url())
        .total_timeout(Some(Duration::from_secs(1)))
        .build()
        .unwrap();
    let err = download(&c, &get("/r/0")).expect_err("past the call's total");
    assert!(matches!(err, Error::TotalTimeout { .. }), "{err:?}");
    assert!(api.count() <= 3, "{} hops sent", api.count());
}

#[test]
fn an_unusable_protocol_relative_location_keeps_its_user_info_out_of_the_error() {
    let api = scripted(|_, _| redirect(302, "//user:pwZr71@bad host/x"));
    let err = download(
        &client(&test_pool().build().unwrap(), &api.url()),
        &get("/d"),
    )
    .expect_err("not a URL");
    assert_bad_location(&err);
    let text = format!("{err} {err:?}");
    assert!(!text.contains("pwZr71"), "{text}");
}

#[test]
fn a_location_that_is_not_ascii_is_followed_percent_encoded_as_curl_does() {
    let server = raw(|target| match target {
        "/d" => {
            let mut head = b"HTTP/1.1 302 Found\r\nLocation: /f\xff\xfe x\r\n".to_vec();
            head.extend_from_slice(b"Content-Length: 0\r\nConnection: close\r\n\r\n");
            (head, false)
        }
        _ => raw_file(),
    });
    let c = client(&test_pool().build().unwrap(), &server.url);
    assert_eq!(download(&c, &get("/d")).expect("the file"), FILE);
    let heads = server.heads.lock();
    assert!(
        heads[1].starts_with("GET /f%FF%FE%20x HTTP/1.1"),
        "{}",
        heads[1]
    );
}

/// The value of header `name` in each request `s` got.
fn header_of(s: &crate::support::Scripted, name: &str) -> Vec<Option<String>> {
    s.seen
        .lock()
        .iter()
        .map(|r| {
            r.headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        })
        .collect()
}

#[test]
fn a_location_with_user_info_is_refused_before_it_is_sent_and_hidden() {
    let target = scripted(|_, _| file());
    let link = target.url().replace("http://", "http://user:passZr71@");
    let api = scripted(move |_, _| redirect(302, &link));
    let err = download(
        &client(&test_pool().build().unwrap(), &api.url()),
        &get("/d"),
    )
    .expect_err("user-info");
    assert_bad_location(&err);
    assert_eq!(target.count(), 0);
    assert!(!format!("{err} {err:?}").contains("passZr71"), "{err}");
}

#[test]
fn scheme_case_is_no_other_origin_and_a_protocol_relative_location_is_one() {
    let other = scripted(|_, _| file());
    let other_authority = other.url().replace("http://", "");
    let api_url = Arc::new(Mutex::new(String::new()));
    let own = api_url.clone();
    let api = scripted(move |_, req: &Request| match req.path.as_str() {
        "/a" => redirect(302, &own.lock().replace("http://", "HTTP://")),
        "/upper" => redirect(302, &format!("//{other_authority}/f")),
        _ => Answer::Response(Response::new(404)),
    });
    *api_url.lock() = format!("{}/upper", api.url());
    let c = client(&test_pool().build().unwrap(), &api.url());
    assert_eq!(download(&c, &get("/a")).expect("the file"), FILE);
    let bearer = Some(format!("Bearer {TOKEN}"));
    assert_eq!(header_of(&api, "authorization"), [bearer.clone(), bearer]);
    assert_eq!(header_of(&other, "authorization"), [None]);
}

#[test]
fn a_3xx_without_a_usable_location_and_a_304_or_300_are_status_errors() {
    let api = scripted(|_, req: &Request| match req.path.as_str() {
        "/none" => Answer::Response(Response::new(302)),
        "/empty" => redirect(301, "  "),
        "/304" => redirect(304, "/f"),
        _ => redirect(300, "/f"),
    });
    let c = client(&test_pool().build().unwrap(), &api.url());
    for (path, status) in [
        ("/none", 302),
        ("/empty", 301),
        ("/304", 304),
        ("/300", 300),
    ] {
        let err = download(&c, &get(path)).expect_err(path);
        assert_eq!(err.status(), Some(status), "{path}: {err:?}");
    }
    assert_eq!(api.count(), 4, "nothing followed");
}

#[test]
fn two_different_locations_are_refused_as_ambiguous() {
    let target = scripted(|_, _| file());
    let link = format!("{}/f", target.url());
    let server = raw(move |_| {
        closing_answer(&format!(
            "HTTP/1.1 302 Found\r\nLocation: /here\r\nLocation: {link}\r\nContent-Length: 0\r\n"
        ))
    });
    let err = download(
        &client(&test_pool().build().unwrap(), &server.url),
        &get("/d"),
    )
    .expect_err("ambiguous");
    assert_bad_location(&err);
    assert_eq!((server.heads.lock().len(), target.count()), (1, 0));
}

#[test]
fn no_credential_header_leaves_the_origin_only_harmless_ones_do() {
    let storage = scripted(|_, _| file());
    let link = format!("{}/f?X-Amz-Signature=s", storage.url());
    let api = scripted(move |_, _| redirect(307, &link));
    let request = get("/d")
        .header("Cookie", "session=ckZr71")
        .header("Proxy-Authorization", "Basic pxZr71")
        .header("X-Api-Key", "keyZr71")
        .header("X-Custom-Token", "ctZr71")
        .header("User-Agent", "adv/1");
    let c = client(&test_pool().build().unwrap(), &api.url());
    assert_eq!(download(&c, &request).expect("the file"), FILE);
    for name in [
        "cookie",
        "proxy-authorization",
        "x-api-key",
        "x-custom-token",
        "authorization",
    ] {
        assert_eq!(header_of(&storage, name), [None], "{name}");
        assert!(header_of(&api, name)[0].is_some(), "{name} at home");
    }
    assert_eq!(
        header_of(&storage, "user-agent"),
        [Some("adv/1".to_string())]
    );
    assert_eq!(header_of(&storage, "accept"), [Some("*/*".to_string())]);
}

#[test]
fn a_hop_to_another_origin_under_a_global_cap_of_one_connection_does_not_deadlock() {
    let storage = scripted(|_, _| file());
    let link = format!("{}/f", storage.url());
    // One redirect with a body (its connection is closed), one without.
    let api = scripted(move |_, req: &Request| match req.path.as_str() {
        "/body" => Answer::Response(
            Response::bytes(302, "text/html", b"<a>moved</a>".to_vec()).header("Location", &link),
        ),
        _ => redirect(302, &link),
    });
    let pool = test_pool().max_connections_total(Some(1)).build().unwrap();
    let c = client(&pool, &api.url());
    for path in ["/body", "/empty", "/body"] {
        assert_eq!(download(&c, &get(path)).expect(path), FILE);
    }
    assert_eq!(storage.count(), 3);
    // Each hop counted once, by its own origin.
    let metrics = pool.metrics();
    let sent = |url: &str| {
        let origin = etlpool::Origin::parse(url).unwrap().to_string();
        metrics.origins.get(&origin).map_or(0, |o| o.requests_sent)
    };
    assert_eq!((sent(&api.url()), sent(&storage.url())), (3, 3));
}

#[test]
fn a_hop_to_an_https_host_whose_certificate_is_not_trusted_is_a_tls_error() {
    let (trusted, stranger) = (TestCa::new(), TestCa::new());
    let tls = |config: Arc<rustls::ServerConfig>, answer: fn(&str) -> Answer| {
        HttpServer::start(
            ServerOptions {
                tls: Some(config),
                ..ServerOptions::default()
            },
            Arc::new(move |req: Request, _: &etlpool::mock::server::ConnContext| answer(&req.path)),
        )
        .unwrap()
    };
    let bad = tls(stranger.server.clone(), |_| file());
    let link = format!("{}/f", bad.url());
    let api = HttpServer::start(
        ServerOptions {
            tls: Some(trusted.server.clone()),
            ..ServerOptions::default()
        },
        Arc::new(move |_: Request, _: &etlpool::mock::server::ConnContext| redirect(302, &link)),
    )
    .unwrap();
    let pool = test_pool()
        .ca_pem(Some(trusted.ca_pem.clone()))
        .build()
        .unwrap();
    let err = download(&client(&pool, &api.url()), &get("/d")).expect_err("an untrusted hop");
    assert!(
        matches!(&err, Error::Request(r) if r.kind == etlpool::TransportKind::Tls),
        "{err:?}"
    );
}

#[test]
fn a_host_header_set_for_the_api_does_not_follow_to_another_origin() {
    let storage = scripted(|_, _| file());
    let link = format!("{}/f", storage.url());
    let api = scripted(move |_, _| redirect(302, &link));
    let c = client(&test_pool().build().unwrap(), &api.url());
    let request = get("/d").header("Host", "api.example");
    assert_eq!(download(&c, &request).expect("the file"), FILE);
    let authority = storage.url().replace("http://", "");
    assert_eq!(header_of(&storage, "host"), [Some(authority)]);
}

#[test]
fn ipv6_literal_hosts_resolve_relative_locations_and_count_as_their_own_origin() {
    let v6 = raw_at("[::1]:0", |target| match target {
        "/d" => closing_answer("HTTP/1.1 302 Found\r\nLocation: f?x=1\r\nContent-Length: 0\r\n"),
        _ => raw_file(),
    });
    assert!(v6.url.starts_with("http://[::1]:"), "{}", v6.url);
    let link = format!("{}/d", v6.url);
    let api = scripted(move |_, _| redirect(302, &link));
    let c = client(&test_pool().build().unwrap(), &api.url());
    assert_eq!(download(&c, &get("/d")).expect("the file"), FILE);
    let heads = v6.heads.lock();
    assert!(heads[1].starts_with("GET /f?x=1 HTTP/1.1"), "{}", heads[1]);
    for head in heads.iter() {
        assert!(
            !head.to_ascii_lowercase().contains("authorization"),
            "{head}"
        );
    }
    // Started on the IPv6 host, its own hops keep the credentials.
    drop(heads);
    let c = client(&test_pool().build().unwrap(), &v6.url);
    assert_eq!(download(&c, &get("/d")).expect("the file"), FILE);
    let heads = v6.heads.lock();
    assert!(heads[3].contains(TOKEN), "{}", heads[3]);
}

#[test]
fn a_same_origin_chain_with_redirect_bodies_fits_in_one_connection_per_host() {
    let api = scripted(|_, req: &Request| {
        let n: usize = req.path.trim_start_matches("/r/").parse().unwrap_or(0);
        match n < 5 {
            true => Answer::Response(
                Response::bytes(301, "text/html", vec![b'x'; 64 * 1024])
                    .header("Location", format!("/r/{}", n + 1)),
            ),
            false => file(),
        }
    });
    let pool = test_pool()
        .max_connections_per_host(1)
        .max_connections_total(Some(1))
        .build()
        .unwrap();
    assert_eq!(
        download(&client(&pool, &api.url()), &get("/r/0")).expect("5 hops"),
        FILE
    );
    assert_eq!(api.count(), 6);
}

#[test]
fn a_location_with_a_bare_cr_is_a_protocol_error_and_a_bare_lf_ends_its_line() {
    let answer = |location: &'static str| {
        let head = format!("HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\n");
        raw(move |target| match target {
            "/d" => closing_answer(&head),
            _ => raw_file(),
        })
    };
    let cr = answer("/a\rX-Evil: 1");
    let err = download(&client(&test_pool().build().unwrap(), &cr.url), &get("/d"))
        .expect_err("a bare CR");
    assert!(
        matches!(&err, Error::Request(r) if r.kind == etlpool::TransportKind::Protocol),
        "{err:?}"
    );
    assert_eq!(cr.heads.lock().len(), 1);
    // A bare LF ends a header line (RFC 9112, 2.2): `/a`, then another header.
    let lf = answer("/a\nX-Evil: 1");
    let c = client(&test_pool().build().unwrap(), &lf.url);
    assert_eq!(download(&c, &get("/d")).expect("the file"), FILE);
    let heads = lf.heads.lock();
    assert!(heads[1].starts_with("GET /a HTTP/1.1"), "{heads:?}");
    assert!(heads.iter().all(|h| !h.contains("X-Evil")), "{heads:?}");
}
