//! Adversarial review of streamed downloads that follow redirects: odd
//! `Location`s, bodies of redirects that never end, the call's deadline over
//! a whole chain, credentials leaving the origin, the pool's global cap, TLS
//! on a hop. Over real sockets: the project's scripted servers and a raw one
//! for answers no well-behaved server writes.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::{TestCa, scripted, test_pool};
use etlpool::http::{ApiClient, ApiRequest, Auth};
use etlpool::mock::server::{Answer, HttpServer, Request, Response, ServerOptions};
use etlpool::{Error, RedirectRefusal};
use parking_lot::Mutex;

const TOKEN: &str = "tok-adv-Zr71";
const FILE: &[u8] = b"the bytes of the file";

fn redirect(status: u16, location: &str) -> Answer {
    Answer::Response(Response::new(status).header("Location", location))
}

fn file() -> Answer {
    Answer::Response(Response::bytes(
        200,
        "application/octet-stream",
        FILE.to_vec(),
    ))
}

fn client(pool: &etlpool::Pool, base: &str) -> ApiClient {
    ApiClient::new(pool, base, Auth::Bearer(TOKEN.into())).expect("client")
}

fn download(c: &ApiClient, request: &ApiRequest) -> etlpool::Result<Vec<u8>> {
    let mut body = c.open_stream(request, None)?;
    let mut out = Vec::new();
    body.read_to_end(&mut out).expect("read the body");
    Ok(out)
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
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
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

fn closing(head: &str) -> (Vec<u8>, bool) {
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
    assert!(
        matches!(&err, Error::Redirect(r) if matches!(r.refused, RedirectRefusal::BadLocation(_))),
        "{err:?}"
    );
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
