//! The HTTP server core over real sockets: keep-alive, faults, idle close, TLS, shutdown.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use etlpool::mock::server::{
    Answer, ConnContext, HttpServer, Request, Response, ServerOptions, StatsSnapshot,
};

const WAIT: Duration = Duration::from_secs(5);

/// Echoes what it saw: method, path, body length, connection id and request index.
fn echo(req: Request, ctx: &ConnContext) -> Answer {
    let body = serde_json::json!({
        "method": req.method, "path": req.path, "len": req.body.len(),
        "body": String::from_utf8_lossy(&req.body), "conn": ctx.conn_id,
        "index": ctx.request_index, "resumed": ctx.tls_resumed,
        "q": req.query_param("q"),
    });
    Answer::Response(Response::json(200, &body))
}

/// Misbehaves as the path says.
fn faulty(req: Request, ctx: &ConnContext) -> Answer {
    let ok = Response::bytes(200, "text/plain", b"0123456789".to_vec());
    match req.path.as_str() {
        "/close" => Answer::CloseWithoutResponse,
        "/reset" => Answer::Reset,
        "/partial" => Answer::Partial {
            response: ok,
            bytes: 20,
        },
        "/hang" => Answer::Hang,
        "/last" => Answer::Response(ok.close()),
        "/panic" => panic!("test handler panics on purpose"),
        _ => echo(req, ctx),
    }
}

fn start(opts: ServerOptions) -> HttpServer {
    HttpServer::start(opts, Arc::new(faulty)).unwrap()
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .build()
        .into()
}

fn get_json(agent: &ureq::Agent, url: &str) -> serde_json::Value {
    let mut resp = agent.get(url).call().unwrap();
    assert_eq!(resp.status(), 200);
    serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap()
}

fn raw(server: &HttpServer) -> TcpStream {
    let s = TcpStream::connect(server.addr()).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s
}

/// Sends `request` and reads until EOF or error; returns the bytes and whether it ended in an error.
fn exchange(server: &HttpServer, request: &[u8]) -> (Vec<u8>, Option<std::io::ErrorKind>) {
    let mut s = raw(server);
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (out, None),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => return (out, Some(e.kind())),
        }
    }
}

fn wait_for(server: &HttpServer, pred: impl Fn(&StatsSnapshot) -> bool) -> StatsSnapshot {
    let ok = server.stats().wait_until(&pred, WAIT);
    let snap = server.stats().snapshot();
    assert!(ok, "condition not reached: {snap:?}");
    snap
}

#[test]
fn keep_alive_reuses_one_connection() {
    let server = start(ServerOptions::default());
    let agent = agent();
    for i in 0..3 {
        let v = get_json(&agent, &format!("{}/x?q=a+b%21", server.url()));
        assert_eq!(v["index"], i);
        assert_eq!(v["conn"], 1);
        assert_eq!(v["q"], "a b!");
    }
    let snap = server.stats().snapshot();
    assert_eq!((snap.accepted, snap.requests), (1, 3));
}

#[test]
fn close_without_response_sends_fin() {
    let server = start(ServerOptions::default());
    let (bytes, err) = exchange(&server, b"GET /close HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(bytes.is_empty() && err.is_none(), "{bytes:?} {err:?}");
    wait_for(&server, |s| s.server_closed == 1 && s.requests == 1);
}

#[test]
fn reset_sends_rst() {
    let server = start(ServerOptions::default());
    let (bytes, err) = exchange(&server, b"GET /reset HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(bytes.is_empty());
    assert_eq!(err, Some(std::io::ErrorKind::ConnectionReset));
    wait_for(&server, |s| s.resets == 1);
}

#[test]
fn partial_sends_a_prefix_then_resets() {
    let server = start(ServerOptions::default());
    let (bytes, err) = exchange(&server, b"GET /partial HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(bytes.len() <= 20, "{} bytes", bytes.len());
    assert!(bytes.starts_with(b"HTTP/1.1 200"));
    assert_eq!(err, Some(std::io::ErrorKind::ConnectionReset));
    wait_for(&server, |s| s.resets == 1);
}

#[test]
fn response_close_and_http10_close_the_connection() {
    let server = start(ServerOptions::default());
    let (bytes, err) = exchange(&server, b"GET /last HTTP/1.1\r\nHost: x\r\n\r\n");
    let text = String::from_utf8(bytes).unwrap();
    assert!(
        text.contains("Connection: close\r\n") && text.ends_with("0123456789"),
        "{text}"
    );
    assert!(err.is_none());
    let (bytes, _) = exchange(&server, b"GET /a HTTP/1.0\r\n\r\n");
    assert!(
        String::from_utf8(bytes)
            .unwrap()
            .contains("Connection: close\r\n")
    );
    let (bytes, _) = exchange(&server, b"GET /a HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert!(
        String::from_utf8(bytes)
            .unwrap()
            .contains("Connection: close\r\n")
    );
    wait_for(&server, |s| s.server_closed == 3);
}

#[test]
fn http10_keep_alive_is_honoured_and_head_has_no_body() {
    let server = start(ServerOptions::default());
    let mut s = raw(&server);
    s.write_all(b"HEAD /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /b HTTP/1.0\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (first, second) = text.split_once("\r\n\r\n").unwrap();
    assert!(first.contains("Connection: keep-alive") && first.contains("Content-Length: "));
    assert!(
        second.starts_with("HTTP/1.1 200"),
        "HEAD sent a body: {second}"
    );
    assert!(second.contains("Connection: close") && second.contains("\"path\":\"/b\""));
}

#[test]
fn idle_connections_are_closed_and_the_switch_works_at_run_time() {
    let server = start(ServerOptions {
        idle_close: Some(Duration::from_millis(100)),
        ..Default::default()
    });
    let started = Instant::now();
    let (bytes, err) = exchange(&server, b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(bytes.starts_with(b"HTTP/1.1 200") && err.is_none());
    assert!(started.elapsed() >= Duration::from_millis(100));
    wait_for(&server, |s| s.idle_closed == 1);

    server.set_idle_close(None);
    let mut s = raw(&server);
    s.set_read_timeout(Some(Duration::from_millis(400)))
        .unwrap();
    let mut buf = [0u8; 16];
    let err = s.read(&mut buf).unwrap_err();
    assert!(matches!(
        err.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    ));
    // A connection already waiting sees the new limit too.
    server.set_idle_close(Some(Duration::from_millis(50)));
    s.set_read_timeout(Some(WAIT)).unwrap();
    assert_eq!(s.read(&mut buf).unwrap(), 0);
    wait_for(&server, |s| s.idle_closed == 2);
}

#[test]
fn client_eof_is_counted() {
    let server = start(ServerOptions::default());
    get_json(&agent(), &format!("{}/a", server.url()));
    // The agent was dropped with its pooled connection: the server reads EOF.
    wait_for(&server, |s| s.client_closed == 1 && s.open() == 0);
}

#[test]
fn chunked_and_content_length_bodies() {
    let server = start(ServerOptions::default());
    let chunked = b"POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
        5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n";
    let (bytes, _) = exchange(&server, chunked);
    assert!(
        String::from_utf8(bytes)
            .unwrap()
            .contains("\"body\":\"hello world\"")
    );
    let agent = agent();
    let mut resp = agent
        .post(format!("{}/p", server.url()))
        .send("abc")
        .unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(
        (v["len"].as_u64(), v["method"].as_str()),
        (Some(3), Some("POST"))
    );
}

#[test]
fn garbage_gets_400_and_close() {
    let server = start(ServerOptions::default());
    for garbage in [
        &b"GARBAGE\0\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
    ] {
        let (bytes, err) = exchange(&server, garbage);
        let text = String::from_utf8(bytes).unwrap();
        assert!(
            text.starts_with("HTTP/1.1 400") && text.contains("\"message\""),
            "{text}"
        );
        assert!(err.is_none());
    }
    wait_for(&server, |s| s.server_closed == 2 && s.requests == 0);
}

#[test]
fn oversized_body_gets_413() {
    let server = start(ServerOptions {
        max_body_bytes: 4,
        ..Default::default()
    });
    let (bytes, _) = exchange(
        &server,
        b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
    );
    assert!(bytes.starts_with(b"HTTP/1.1 413"));
}

#[test]
fn an_oversized_body_is_read_to_its_end_so_the_client_gets_the_413() {
    let server = start(ServerOptions {
        max_body_bytes: 1024,
        ..Default::default()
    });
    let mut s = raw(&server);
    let body = vec![b'x'; 16 * 1024 * 1024];
    let head = format!("POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n", body.len());
    // Like ureq without `Expect`: the whole body first, then the answer.
    let sent = s
        .write_all(head.as_bytes())
        .and_then(|()| s.write_all(&body));
    assert!(sent.is_ok(), "the server stopped reading: {sent:?}");
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    assert!(answer.starts_with(b"HTTP/1.1 413"), "{answer:?}");
}

#[test]
fn an_oversized_body_announced_with_expect_100_continue_is_refused_before_it_is_sent() {
    let server = start(ServerOptions {
        max_body_bytes: 4,
        ..Default::default()
    });
    let (bytes, _) = exchange(
        &server,
        b"POST / HTTP/1.1\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
    );
    assert!(
        bytes.starts_with(b"HTTP/1.1 413"),
        "{}",
        String::from_utf8_lossy(&bytes)
    );
}

#[test]
fn a_panicking_handler_gets_500_and_the_server_lives_on() {
    let server = start(ServerOptions::default());
    let (bytes, _) = exchange(&server, b"GET /panic HTTP/1.1\r\n\r\n");
    assert!(bytes.starts_with(b"HTTP/1.1 500"));
    get_json(&agent(), &format!("{}/a", server.url()));
}

#[test]
fn shutdown_closes_hanging_connections_and_joins() {
    let server = start(ServerOptions::default());
    let mut s = raw(&server);
    s.write_all(b"GET /hang HTTP/1.1\r\n\r\n").unwrap();
    wait_for(&server, |s| s.requests == 1);
    let started = Instant::now();
    server.shutdown();
    server.shutdown();
    assert!(started.elapsed() < WAIT);
    let mut buf = [0u8; 16];
    assert!(matches!(s.read(&mut buf), Ok(0) | Err(_)));
    assert_eq!(server.stats().snapshot().open(), 0);
    assert!(TcpStream::connect(server.addr()).is_err());
}

mod tls {
    use super::*;
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};

    fn configs() -> (Arc<rustls::ServerConfig>, Arc<rustls::ClientConfig>) {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.signing_key.serialize_der()));
        let server = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(vec![cert.cert.der().clone()], key)
            .unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert.cert.der().clone()).unwrap();
        let client = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        (Arc::new(server), Arc::new(client))
    }

    fn tls_get(server: &HttpServer, client: &Arc<rustls::ClientConfig>) -> serde_json::Value {
        let name = ServerName::try_from("localhost").unwrap();
        let conn = rustls::ClientConnection::new(Arc::clone(client), name).unwrap();
        let mut tls = rustls::StreamOwned::new(conn, raw(server));
        tls.write_all(b"GET /t HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut text = String::new();
        // The server closes after close_notify, so this reads to a clean end.
        tls.read_to_string(&mut text).unwrap();
        let body = text.split_once("\r\n\r\n").unwrap().1;
        serde_json::from_str(body).unwrap()
    }

    #[test]
    fn full_handshake_then_resumed_with_a_shared_client_config() {
        let (server_cfg, client_cfg) = configs();
        let server = start(ServerOptions {
            tls: Some(server_cfg),
            ..Default::default()
        });
        assert!(server.url().starts_with("https://localhost:"));
        assert_eq!(tls_get(&server, &client_cfg)["resumed"], false);
        assert_eq!(tls_get(&server, &client_cfg)["resumed"], true);
        let snap = wait_for(&server, |s| s.server_closed == 2);
        assert_eq!((snap.tls_full, snap.tls_resumed), (1, 1));
    }
}
