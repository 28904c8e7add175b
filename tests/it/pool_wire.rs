//! What the transport records, exactly: exchange flags per request (not per
//! socket), one count per request, every response ureq accepts classed, and
//! close reasons that say what happened.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::time::Duration;

use crate::support::{WAIT, big_body_server, ok_server, recorded, server, test_pool};
use etlpool::mock::server::{Answer, Response};
use etlpool::{CloseReason, Error, TransportKind};

#[test]
fn a_clones_request_does_not_overwrite_the_holders_exchange() {
    let (arrived, slow_arrived) = crossbeam_channel::bounded::<()>(1);
    let (release, gate) = crossbeam_channel::bounded::<()>(1);
    let srv = server(move |req, _| {
        if req.path == "/slow" {
            let _ = arrived.send(());
            let _ = gate.recv_timeout(WAIT);
        }
        Answer::Response(Response::bytes(200, "text/plain", b"ok".to_vec()))
    });
    let url = srv.url();
    let (pool, events) = recorded(
        test_pool()
            .max_connections_per_host(1)
            .acquire_timeout(Duration::from_millis(300)),
    );
    let lease = pool.lease(&url).unwrap();
    assert_eq!(lease.fetch(&url).unwrap().status(), 200);
    let clone: ureq::Agent = (*lease).clone();
    let (holder_done, wait_holder) = crossbeam_channel::bounded::<()>(1);
    std::thread::scope(|s| {
        let other = s.spawn(|| {
            // Answered while the holder waits for the socket; the body stays
            // unread, so the socket stays busy past the holder's wait.
            let mut response = clone.get(format!("{url}/slow")).call().unwrap();
            let _ = wait_holder.recv_timeout(WAIT);
            response.body_mut().read_to_string().unwrap()
        });
        slow_arrived.recv_timeout(WAIT).unwrap();
        s.spawn(|| {
            assert!(events.wait_for("socket_busy", WAIT));
            release.send(()).unwrap();
        });
        // The holder's request never gets the socket: nothing was sent.
        let result = lease.fetch(&url);
        let x = lease.last_exchange();
        holder_done.send(()).unwrap();
        assert_eq!(other.join().unwrap(), "ok");
        let err = result.unwrap_err();
        assert!(!x.sent && !x.reused && !x.response_started, "{x:?}");
        assert_eq!(err.exchange(), Some(x), "{err}");
        assert!(!err.is_outcome_unknown());
    });
    assert_eq!(srv.stats().snapshot().accepted, 1);
}

#[test]
fn expect_100_continue_is_one_request() {
    let srv = ok_server();
    let pool = test_pool().build().unwrap();
    let lease = pool.lease(&srv.url()).unwrap();
    for _ in 0..2 {
        let request = ureq::http::Request::post(srv.url())
            .header("Expect", "100-continue")
            .body(vec![b'x'; 1000])
            .unwrap();
        assert_eq!(lease.send(request).unwrap().status(), 200);
    }
    let m = pool.metrics().total;
    assert_eq!(
        (m.requests_sent, m.connections_created, m.connections_reused),
        (2, 1, 1)
    );
    assert_eq!(m.responses["2xx"], 2);
    assert_eq!(m.responses["1xx"], 0, "interim answers are not responses");
    assert_eq!(m.request_latency.count, 2);
    assert_eq!(srv.stats().snapshot().requests, 2);
}

#[test]
fn a_response_with_many_headers_is_classed_and_its_close_is_the_servers() {
    let srv = server(|_, _| {
        let mut r = Response::bytes(200, "text/plain", b"ok".to_vec());
        for i in 0..100 {
            r = r.header(format!("X-Extra-{i}"), "v");
        }
        Answer::Response(r.close())
    });
    let pool = test_pool().build().unwrap();
    assert_eq!(pool.fetch(&srv.url()).unwrap().status(), 200);
    let m = pool.metrics().total;
    assert_eq!(m.responses["2xx"], 1);
    assert_eq!(
        m.closed(CloseReason::Server),
        1,
        "{:?}",
        m.connections_closed
    );
    assert_eq!(m.closed_total(), 1);
}

#[test]
fn a_body_over_the_limit_closes_its_connection_as_broken() {
    let srv = server(|_, _| Answer::Response(Response::bytes(200, "text/plain", vec![b'z'; 100])));
    let pool = test_pool().max_body_bytes(10).build().unwrap();
    let err = pool.fetch(&srv.url()).unwrap_err();
    assert!(matches!(err, Error::BodyTooLarge { .. }), "{err:?}");
    let m = pool.metrics().total;
    assert_eq!(
        m.closed(CloseReason::Broken),
        1,
        "{:?}",
        m.connections_closed
    );
    assert_eq!(m.closed_total(), 1);
}

/// A server on 127.0.0.1 that answers every request head with `reply`, raw.
fn raw_server(reply: &'static [u8]) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream);
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                    if line == "\r\n" && reader.get_mut().write_all(reply).is_err() {
                        return;
                    }
                    line.clear();
                }
            });
        }
    });
    url
}

#[test]
fn a_protocol_error_closes_its_connection_as_broken() {
    let url = raw_server(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nZZ-not-hex\r\n");
    let pool = test_pool().build().unwrap();
    let err = pool.fetch(&url).unwrap_err();
    let Error::Request(r) = &err else {
        panic!("expected a request error, got {err:?}");
    };
    assert_eq!(r.kind, TransportKind::Protocol, "{err}");
    let m = pool.metrics().total;
    assert_eq!(
        m.closed(CloseReason::Broken),
        1,
        "{:?}",
        m.connections_closed
    );
    assert_eq!(m.responses["2xx"], 1);
}

#[test]
fn a_body_left_unread_is_still_abandoned() {
    let srv = big_body_server();
    let pool = test_pool().build().unwrap();
    let lease = pool.lease(&srv.url()).unwrap();
    let response = lease.get(srv.url()).call().unwrap();
    drop(response);
    drop(lease);
    let m = pool.metrics().total;
    assert_eq!(
        m.closed(CloseReason::Abandoned),
        1,
        "{:?}",
        m.connections_closed
    );
}
