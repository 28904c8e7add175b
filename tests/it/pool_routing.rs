//! The origin rule: a lease talks only to the origin it was lent for. A request
//! for another origin, through the `Deref` to `ureq::Agent` or through
//! `lease.fetch`/`lease.send`, is refused with an error naming both origins;
//! nothing reaches the other server and the lease's socket stays clean.

use crate::support::{TestCa, server};
use etlpool::mock::server::{Answer, HttpServer, Response};
use etlpool::{Error, Pool};

/// A keep-alive server answering every request with `body`.
fn answering(body: &'static str) -> HttpServer {
    server(move |_, _| Answer::Response(Response::bytes(200, "text/plain", body.into())))
}

fn origin_of(url: &str) -> String {
    etlpool::Origin::parse(url).unwrap().to_string()
}

/// Both origins named, as the refusal must.
fn assert_names_both(text: &str, a: &str, b: &str) {
    assert!(
        text.contains(&origin_of(a)) && text.contains(&origin_of(b)),
        "the error must name both origins: {text}"
    );
}

/// Runs the three ways of sending to `b` through a lease for `a`, checks each
/// is refused, then checks that `a`'s pooled socket still answers for `a`.
fn refuses_other_origin(pool: &Pool, a: &HttpServer, b: &HttpServer, a_body: &str) {
    let (a_url, b_url) = (a.url(), b.url());
    let lease = pool.lease(&a_url).unwrap();
    assert_eq!(lease.fetch(&a_url).unwrap().text(), a_body);

    // Through the Deref to ureq::Agent.
    let err = lease.get(format!("{b_url}/x")).call().unwrap_err();
    assert_names_both(&err.to_string(), &a_url, &b_url);

    // Through the lease's own helpers.
    let err = lease.fetch(&format!("{b_url}/y")).unwrap_err();
    assert!(matches!(err, Error::InvalidUrl { .. }), "{err:?}");
    assert_names_both(&err.to_string(), &a_url, &b_url);
    let request = ureq::http::Request::post(format!("{b_url}/z"))
        .body(b"payload".to_vec())
        .unwrap();
    let err = lease.send(request).unwrap_err();
    assert_names_both(&err.to_string(), &a_url, &b_url);
    assert!(!lease.last_exchange().sent, "nothing may be sent");

    // The lease still works for its own origin, on the same socket.
    assert_eq!(lease.fetch(&a_url).unwrap().text(), a_body);
    drop(lease);
    assert_eq!(pool.fetch(&a_url).unwrap().text(), a_body);

    assert_eq!(b.stats().snapshot().accepted, 0, "b's server was contacted");
    assert_eq!(b.stats().snapshot().requests, 0);
    let sa = a.stats().snapshot();
    assert_eq!((sa.accepted, sa.requests), (1, 3));
    let snap = pool.metrics();
    assert_eq!(snap.origin(&origin_of(&b_url)).requests_sent, 0);
    let m = snap.origin(&origin_of(&a_url));
    assert_eq!((m.connections_created, m.requests_sent), (1, 3));
}

#[test]
fn a_lease_refuses_a_request_for_another_origin() {
    let a = answering("from a");
    let b = answering("from b");
    let pool = crate::support::test_pool().build().unwrap();
    refuses_other_origin(&pool, &a, &b, "from a");
}

#[test]
fn over_https_the_other_origin_is_refused_before_any_handshake() {
    // b's certificate comes from a CA the pool does not trust: a request that
    // reached b would have to fail its handshake. It must not even get there,
    // and above all must not travel over a's verified connection.
    let trusted = TestCa::new();
    let untrusted = TestCa::new();
    let a = trusted.ok_server();
    let b = untrusted.ok_server();
    let pool = crate::support::test_pool()
        .ca_pem(Some(trusted.ca_pem.clone()))
        .build()
        .unwrap();
    refuses_other_origin(&pool, &a, &b, "ok");
    assert_eq!(b.stats().snapshot().tls_full, 0);
}

#[test]
fn the_same_origin_spelled_differently_is_the_same_origin() {
    let a = answering("from a");
    let pool = crate::support::test_pool().build().unwrap();
    let url = a.url();
    let spelled = url.replacen("http://", "HTTP://", 1);
    let with_path = format!("{url}/v2/../other?q=1");
    let lease = pool.lease(&url).unwrap();
    for u in [&url, &spelled, &with_path] {
        assert_eq!(lease.fetch(u).unwrap().text(), "from a");
    }
    assert_eq!(a.stats().snapshot().accepted, 1);
}

#[test]
fn a_request_can_not_change_the_pools_proxy() {
    // Per-request settings reach the pool's connector: a request that drops
    // the pool's proxy must not get a socket of its own beside the pool's
    // (uncounted, beyond the per-host cap), and a request naming a proxy the
    // pool doesn't use must not silently go direct on the pooled socket.
    let srv = answering("from a");
    let proxy = crate::support::ConnectProxy::start();
    let pool = crate::support::test_pool()
        .max_connections_per_host(1)
        .proxy(Some(format!("http://{}", proxy.addr)))
        .build()
        .unwrap();
    let url = srv.url();
    let lease = pool.lease(&url).unwrap();
    assert_eq!(lease.fetch(&url).unwrap().text(), "from a");
    let direct = lease.get(&url).config().proxy(None).build().call();
    let err = direct.expect_err("a request without the pool's proxy must be refused");
    assert!(err.to_string().contains("proxy"), "{err}");
    assert_eq!(lease.fetch(&url).unwrap().text(), "from a");
    drop(lease);
    let s = srv.stats().snapshot();
    assert_eq!(
        (s.accepted, s.requests),
        (1, 2),
        "the server saw a socket the pool doesn't know of"
    );
    assert_eq!(proxy.tunnels.load(std::sync::atomic::Ordering::SeqCst), 1);
    let m = pool.metrics().total;
    assert_eq!((m.connections_created, m.requests_sent), (1, 2));

    // Without a proxy in the pool, a request can't bring its own.
    let other = crate::support::ConnectProxy::start();
    let plain = crate::support::test_pool().build().unwrap();
    let lease = plain.lease(&url).unwrap();
    assert_eq!(lease.fetch(&url).unwrap().text(), "from a");
    let via = ureq::Proxy::new(&format!("http://{}", other.addr)).unwrap();
    let err = lease
        .get(&url)
        .config()
        .proxy(Some(via))
        .build()
        .call()
        .expect_err("a request's own proxy must be refused, not ignored");
    assert!(err.to_string().contains("proxy"), "{err}");
    assert_eq!(other.tunnels.load(std::sync::atomic::Ordering::SeqCst), 0);
    assert_eq!(srv.stats().snapshot().requests, 3);
}
