//! The connection pool over real sockets: every test asserts exact counts from
//! both the pool's metrics and the server's own accept/close counters.

use std::sync::Barrier;
use std::time::{Duration, Instant};

use crate::support::{
    BIG_BODY, TestCa, WAIT, big_body_server, late_body, ok_server, recorded, server, test_pool,
    wait_until,
};
use etlpool::mock::server::{Answer, Response};
use etlpool::{CloseReason, Error, Pool, TransportKind};

#[test]
fn sequential_gets_reuse_one_connection() {
    let srv = ok_server();
    let pool = test_pool().build().unwrap();
    for _ in 0..10 {
        let reply = pool.fetch(&format!("{}/ping", srv.url())).unwrap();
        assert_eq!((reply.status(), reply.body()), (200, &b"ok"[..]));
    }
    let m = pool.metrics().total;
    assert_eq!(m.connections_created, 1);
    assert_eq!(m.connections_reused, 9);
    assert_eq!(m.requests_sent, 10);
    assert_eq!(m.responses["2xx"], 10);
    assert_eq!(m.leases_granted, 10);
    assert_eq!(srv.stats().snapshot().accepted, 1);
    assert_eq!(srv.stats().snapshot().requests, 10);
}

#[test]
fn connection_close_responses_make_a_connection_each() {
    let srv =
        server(|_, _| Answer::Response(Response::bytes(200, "text/plain", b"x".to_vec()).close()));
    let pool = test_pool().build().unwrap();
    for _ in 0..5 {
        assert_eq!(pool.fetch(&srv.url()).unwrap().status(), 200);
    }
    let m = pool.metrics().total;
    assert_eq!((m.connections_created, m.connections_reused), (5, 0));
    assert_eq!(m.closed(CloseReason::Server), 5);
    assert_eq!(m.open_connections, 0);
    assert_eq!(srv.stats().snapshot().accepted, 5);
}

#[test]
fn concurrent_threads_never_exceed_the_per_host_cap() {
    let srv = ok_server();
    let pool = test_pool().max_connections_per_host(8).build().unwrap();
    let url = srv.url();
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                for _ in 0..50 {
                    assert_eq!(pool.fetch(&url).unwrap().status(), 200);
                }
            });
        }
    });
    let m = pool.metrics().total;
    let accepted = srv.stats().snapshot().accepted;
    assert!(accepted <= 8, "server accepted {accepted} connections");
    assert_eq!(m.connections_created, accepted);
    assert_eq!(m.requests_sent, 400);
    assert_eq!(m.connections_created + m.connections_reused, 400);
    assert_eq!(srv.stats().snapshot().requests, 400);
}

#[test]
fn lease_waits_then_times_out_with_the_host_state() {
    let srv = ok_server();
    let pool = test_pool()
        .max_connections_per_host(2)
        .acquire_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let a = pool.lease(&srv.url()).unwrap();
    let b = pool.lease(&srv.url()).unwrap();
    let start = Instant::now();
    let err = pool.lease(&srv.url()).unwrap_err();
    assert!(start.elapsed() >= Duration::from_millis(200));
    let Error::PoolTimeout(t) = &err else {
        panic!("expected PoolTimeout, got {err:?}");
    };
    assert_eq!(t.origin, srv.url());
    assert_eq!(
        (t.in_use, t.idle, t.waiting, t.total, t.max),
        (2, 0, 0, 2, 2)
    );
    let text = err.to_string();
    assert!(
        text.contains(&srv.url()) && text.contains("in use 2"),
        "{text}"
    );
    assert!(err.is_timeout());

    drop(a);
    let c = pool.lease(&srv.url()).unwrap();
    let m = pool.metrics().total;
    assert_eq!((m.leases_granted, m.leases_timed_out, m.in_use), (3, 1, 2));
    drop((b, c));
}

#[test]
fn a_waiting_lease_gets_the_returned_agent() {
    let srv = ok_server();
    let pool = test_pool().max_connections_per_host(1).build().unwrap();
    let held = pool.lease(&srv.url()).unwrap();
    let started = Barrier::new(2);
    std::thread::scope(|s| {
        let waiter = s.spawn(|| {
            started.wait();
            pool.lease(&srv.url()).map(|_| ())
        });
        started.wait();
        // Returning the lease wakes the waiter whenever it started waiting.
        drop(held);
        waiter.join().unwrap().unwrap();
    });
    assert_eq!(pool.metrics().total.leases_granted, 2);
}

#[test]
fn a_panicking_holder_does_not_leak_its_slot() {
    let srv = ok_server();
    let pool = test_pool()
        .max_connections_per_host(2)
        .acquire_timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let kept = pool.lease(&srv.url()).unwrap();
    let url = srv.url();
    let panicked = std::thread::scope(|s| {
        s.spawn(|| {
            let _lease = pool.lease(&url).unwrap();
            panic!("job failed while holding a lease");
        })
        .join()
    });
    assert!(panicked.is_err());
    let again = pool
        .lease(&srv.url())
        .expect("the panicked thread's slot came back");
    assert_eq!(pool.metrics().total.in_use, 2);
    drop((kept, again));
}

#[test]
fn a_404_read_to_the_end_keeps_the_connection() {
    let srv = server(|req, _| {
        if req.path == "/missing" {
            Answer::Response(Response::json(
                404,
                &serde_json::json!({"message": "not found"}),
            ))
        } else {
            Answer::Response(Response::bytes(200, "text/plain", b"ok".to_vec()))
        }
    });
    let pool = test_pool().build().unwrap();
    let reply = pool.fetch(&format!("{}/missing", srv.url())).unwrap();
    assert_eq!(reply.status(), 404);
    assert!(reply.text().contains("not found"));
    assert_eq!(pool.fetch(&srv.url()).unwrap().status(), 200);
    let m = pool.metrics().total;
    assert_eq!((m.connections_created, m.connections_reused), (1, 1));
    assert_eq!(m.responses["4xx"], 1);
    assert_eq!(m.failures.values().sum::<u64>(), 0);
    assert_eq!(srv.stats().snapshot().accepted, 1);
}

#[test]
fn a_connection_the_server_closed_while_idle_is_replaced() {
    let srv = ok_server();
    let pool = test_pool().build().unwrap();
    assert_eq!(pool.fetch(&srv.url()).unwrap().status(), 200);
    srv.set_idle_close(Some(Duration::from_millis(50)));
    assert!(srv.stats().wait_until(|s| s.idle_closed == 1, WAIT));
    assert_eq!(pool.fetch(&srv.url()).unwrap().status(), 200);
    let m = pool.metrics().total;
    assert_eq!((m.connections_created, m.connections_reused), (2, 0));
    assert_eq!(m.closed(CloseReason::Server), 1);
    assert_eq!(m.failures.values().sum::<u64>(), 0);
    assert_eq!(srv.stats().snapshot().accepted, 2);
}

#[test]
fn the_cleaner_closes_idle_connections() {
    let srv = ok_server();
    let pool = Pool::builder()
        .idle_timeout(Duration::from_millis(200))
        .reap_interval(Duration::from_millis(50))
        .build()
        .unwrap();
    assert_eq!(pool.fetch(&srv.url()).unwrap().status(), 200);
    assert!(
        srv.stats().wait_until(|s| s.client_closed == 1, WAIT),
        "server never saw EOF"
    );
    // The server can see the close before the cleaner has counted it.
    assert!(
        wait_until(|| pool.metrics().total.closed_total() == 1, WAIT),
        "the close was never counted"
    );
    let snap = pool.metrics();
    let m = &snap.total;
    assert_eq!(m.closed(CloseReason::Idle), 1);
    assert_eq!(m.closed_total(), 1);
    assert_eq!((m.idle, m.open_connections), (0, 0));
    assert!(snap.last_cleanup_unix_ms.is_some());
}

#[test]
fn a_connection_past_its_lifetime_is_closed_on_return() {
    let srv = ok_server();
    let lifetime = Duration::from_millis(150);
    let pool = test_pool().max_lifetime(Some(lifetime)).build().unwrap();
    let lease = pool.lease(&srv.url()).unwrap();
    assert_eq!(lease.fetch(&srv.url()).unwrap().status(), 200);
    // Only a lower bound matters: the connection must be older than its lifetime.
    std::thread::sleep(lifetime + Duration::from_millis(50));
    drop(lease);
    assert!(srv.stats().wait_until(|s| s.client_closed == 1, WAIT));
    assert_eq!(pool.fetch(&srv.url()).unwrap().status(), 200);
    let m = pool.metrics().total;
    assert_eq!(m.closed(CloseReason::Lifetime), 1);
    assert_eq!((m.connections_created, m.connections_reused), (2, 0));
}

#[test]
fn https_resumes_sessions_across_agents() {
    let ca = TestCa::new();
    let srv = ca.ok_server();
    let pool = Pool::builder()
        .ca_pem(Some(ca.ca_pem.clone()))
        .idle_timeout(Duration::from_millis(200))
        .reap_interval(Duration::from_millis(50))
        .build()
        .unwrap();
    for _ in 0..5 {
        assert_eq!(pool.fetch(&srv.url()).unwrap().status(), 200);
    }
    let m = pool.metrics().total;
    assert_eq!(
        (
            m.connections_created,
            m.tls_handshakes_full,
            m.tls_handshakes_resumed
        ),
        (1, 1, 0)
    );
    assert_eq!(srv.stats().snapshot().tls_full, 1);

    // The cleaner closes the idle connection and drops its agent; the next lease
    // makes a new agent, which resumes the session through the shared config.
    assert!(srv.stats().wait_until(|s| s.client_closed == 1, WAIT));
    assert!(wait_until(
        || pool.metrics().total.closed(CloseReason::Idle) == 1,
        WAIT
    ));
    assert_eq!(pool.fetch(&srv.url()).unwrap().status(), 200);
    let m = pool.metrics().total;
    assert_eq!(m.closed(CloseReason::Idle), 1);
    assert_eq!((m.tls_handshakes_full, m.tls_handshakes_resumed), (1, 1));
    let s = srv.stats().snapshot();
    assert_eq!((s.tls_full, s.tls_resumed), (1, 1));
}

#[test]
fn a_certificate_from_another_ca_is_rejected() {
    let trusted = TestCa::new();
    let other = TestCa::new();
    let srv = other.ok_server();
    let pool = test_pool()
        .ca_pem(Some(trusted.ca_pem.clone()))
        .build()
        .unwrap();
    let err = pool.fetch(&srv.url()).unwrap_err();
    let Error::Request(r) = &err else {
        panic!("expected a request error, got {err:?}");
    };
    assert_eq!(r.kind, TransportKind::Tls);
    assert!(!r.exchange.sent, "nothing may be sent before the handshake");
    let text = err.to_string();
    assert!(
        text.contains("certificate") && text.contains("localhost"),
        "{text}"
    );
    let m = pool.metrics().total;
    assert_eq!(
        (
            m.connections_created,
            m.failed(etlpool::metrics::FailureKind::Tls)
        ),
        (0, 1)
    );
}

#[test]
fn bad_client_keys_and_ca_files_are_errors_not_panics() {
    let scratch = crate::support::Scratch::new("tls");
    let ca = TestCa::new();
    let cert = scratch.file("cert.pem", ca.ca_pem.as_bytes());
    let garbage = scratch.file(
        "key.pem",
        b"-----BEGIN PRIVATE KEY-----\nnot base64!\n-----END PRIVATE KEY-----\n",
    );
    let missing = scratch.0.join("missing.pem");
    let tls = |cert: &std::path::Path, key: &std::path::Path| etlpool::TlsOptions {
        client_cert: Some(cert.to_path_buf()),
        client_key: Some(key.to_path_buf()),
        ..Default::default()
    };
    for (key, expect) in [(&garbage, "client key"), (&missing, "client key")] {
        let err = Pool::builder().tls(tls(&cert, key)).build().unwrap_err();
        assert!(matches!(err, Error::Tls { .. }), "{err:?}");
        assert!(err.to_string().contains(expect), "{err}");
    }
    // A key that parses but doesn't match the certificate.
    let other_key = scratch.file(
        "other.pem",
        rcgen::KeyPair::generate()
            .unwrap()
            .serialize_pem()
            .as_bytes(),
    );
    let err = Pool::builder()
        .tls(tls(&cert, &other_key))
        .build()
        .unwrap_err();
    assert!(
        err.to_string().contains("don't form a usable pair"),
        "{err}"
    );

    let unreadable = etlpool::TlsOptions {
        ca_file: Some(missing.clone()),
        ..Default::default()
    };
    let err = Pool::builder().tls(unreadable).build().unwrap_err();
    assert!(err.to_string().contains("CA file"), "{err}");
    let empty = etlpool::TlsOptions {
        ca_file: Some(scratch.file("empty.pem", b"")),
        ..Default::default()
    };
    let err = Pool::builder().tls(empty).build().unwrap_err();
    assert!(err.to_string().contains("no PEM certificates"), "{err}");
}

#[test]
fn shutdown_closes_idle_now_and_lent_on_return() {
    let srv = ok_server();
    let pool = test_pool().build().unwrap();
    let lent = pool.lease(&srv.url()).unwrap();
    assert_eq!(lent.fetch(&srv.url()).unwrap().status(), 200);
    {
        let idle = pool.lease(&srv.url()).unwrap();
        assert_eq!(idle.fetch(&srv.url()).unwrap().status(), 200);
    }
    pool.shutdown();
    assert!(srv.stats().wait_until(|s| s.client_closed == 1, WAIT));
    assert!(matches!(
        pool.lease(&srv.url()),
        Err(Error::PoolShutdown { .. })
    ));
    pool.shutdown();
    drop(lent);
    assert!(srv.stats().wait_until(|s| s.client_closed == 2, WAIT));
    let m = pool.metrics().total;
    assert_eq!(m.closed(CloseReason::Shutdown), 2);
    assert_eq!(m.open_connections, 0);
    assert!(pool.is_shut_down());
}

#[test]
fn origins_are_pooled_separately_and_paths_share() {
    let a = ok_server();
    let b = ok_server();
    let pool = test_pool().build().unwrap();
    for path in ["/v2/projects", "/v2/folders", "/other"] {
        assert_eq!(
            pool.fetch(&format!("{}{path}", a.url())).unwrap().status(),
            200
        );
    }
    assert_eq!(pool.fetch(&b.url()).unwrap().status(), 200);
    let snap = pool.metrics();
    assert_eq!(snap.origins.len(), 2);
    let ma = snap.origin(&a.url());
    let mb = snap.origin(&b.url());
    assert_eq!((ma.connections_created, ma.connections_reused), (1, 2));
    assert_eq!((mb.connections_created, mb.connections_reused), (1, 0));
    assert_eq!(snap.total.requests_sent, 4);
    assert_eq!(a.stats().snapshot().accepted, 1);
}

#[test]
fn exchange_flags_tell_a_stale_connection_from_a_cut_response() {
    let srv = server(|req, ctx| match (req.path.as_str(), ctx.request_index) {
        ("/stale", 1) => Answer::CloseWithoutResponse,
        ("/cut", 1) => Answer::Partial {
            response: Response::bytes(200, "text/plain", vec![b'x'; 1000]),
            bytes: 60,
        },
        _ => Answer::Response(Response::bytes(200, "text/plain", b"ok".to_vec())),
    });
    let pool = test_pool().max_connections_per_host(1).build().unwrap();
    for (path, stale) in [("/stale", true), ("/cut", false)] {
        let lease = pool.lease(&srv.url()).unwrap();
        let url = format!("{}{path}", srv.url());
        assert_eq!(lease.fetch(&url).unwrap().status(), 200);
        assert!(!lease.last_exchange().reused);
        let err = lease.fetch(&url).unwrap_err();
        let x = lease.last_exchange();
        assert_eq!(err.exchange(), Some(x));
        assert!(x.sent && x.reused, "{path}: {x:?}");
        assert_eq!(x.is_stale_connection(), stale, "{path}: {x:?}");
        assert_eq!(x.response_started, !stale, "{path}: {x:?}");
    }
}

#[test]
fn a_body_read_after_the_lease_returned_cannot_open_a_second_socket() {
    let srv = big_body_server();
    let (pool, events) = recorded(test_pool().max_connections_per_host(1));
    let mut response = late_body(&pool, &srv.url());
    std::thread::scope(|s| {
        let second = s.spawn(|| {
            let lease = pool.lease(&srv.url()).unwrap();
            // Same agent, whose socket is still held by the unread body: this
            // waits for it and takes it over instead of opening a second socket.
            lease
                .fetch(&srv.url())
                .map(|r| r.status())
                .map_err(|e| e.to_string())
        });
        assert!(
            events.wait_for("socket_busy", WAIT),
            "the second request never waited"
        );
        let body = response.body_mut().read_to_vec().unwrap();
        assert_eq!(body.len(), BIG_BODY);
        assert_eq!(second.join().unwrap(), Ok(200));
    });
    assert_eq!(events.names(), ["connected", "socket_busy", "reused"]);
    assert_eq!(srv.stats().snapshot().accepted, 1);
}

#[test]
fn a_cloned_agent_shares_the_socket_and_dies_with_its_lease() {
    let srv = ok_server();
    let pool = test_pool().max_connections_per_host(1).build().unwrap();
    let lease = pool.lease(&srv.url()).unwrap();
    let clone: ureq::Agent = (*lease).clone();
    assert_eq!(
        clone
            .get(srv.url())
            .call()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap(),
        "ok"
    );
    assert_eq!(lease.fetch(&srv.url()).unwrap().status(), 200);
    assert_eq!(pool.metrics().total.connections_created, 1);
    lease.discard();
    let err = clone.get(srv.url()).call().unwrap_err();
    assert!(err.to_string().contains("returned to the pool"), "{err}");
    assert_eq!(srv.stats().snapshot().accepted, 1);
    assert_eq!(pool.metrics().total.closed(CloseReason::Discarded), 1);
}

#[test]
fn events_arrive_in_order() {
    let srv = ok_server();
    let (pool, events) = recorded(test_pool());
    pool.fetch(&srv.url()).unwrap();
    pool.fetch(&srv.url()).unwrap();
    pool.lease(&srv.url()).unwrap().discard();
    assert_eq!(events.names(), ["connected", "reused", "closed:discarded"]);
}

#[test]
fn the_total_cap_evicts_the_coldest_idle_connection_of_another_origin() {
    let a = ok_server();
    let b = ok_server();
    let pool = test_pool().max_connections_total(Some(1)).build().unwrap();
    pool.fetch(&a.url()).unwrap();
    pool.fetch(&b.url()).unwrap();
    assert!(a.stats().wait_until(|s| s.client_closed == 1, WAIT));
    let snap = pool.metrics();
    assert_eq!(snap.origin(&a.url()).closed(CloseReason::Evicted), 1);
    assert_eq!(snap.total.open_connections, 1);
}

#[test]
fn bad_input_is_a_typed_error() {
    let pool = test_pool().build().unwrap();
    for (url, reason) in [
        ("not a url", "scheme://host"),
        ("ftp://example.com/x", "unsupported scheme"),
        ("https://exa mple.com", "invalid characters"),
        ("http://h:70000/", "port"),
    ] {
        match pool.lease(url) {
            Err(Error::InvalidUrl { reason: r, .. }) => assert!(r.contains(reason), "{url}: {r}"),
            other => panic!("{url}: expected InvalidUrl, got {other:?}"),
        }
    }
    let err = Pool::builder()
        .max_connections_per_host(0)
        .build()
        .unwrap_err();
    assert!(
        matches!(&err, Error::Config { key, .. } if key == "max_connections_per_host"),
        "{err:?}"
    );
    let mut config = etlpool::PoolConfig::default();
    let err = config
        .apply_env([("ETLPOOL_ACQUIRE_TIMEOUT", "a while")])
        .unwrap_err();
    assert!(err.to_string().contains("ETLPOOL_ACQUIRE_TIMEOUT"), "{err}");
}

#[test]
fn init_global_refuses_a_different_configuration() {
    let config = etlpool::PoolConfig {
        max_connections_per_host: 3,
        ..Default::default()
    };
    let pool = Pool::init_global(config.clone()).unwrap();
    assert_eq!(pool.config().max_connections_per_host, 3);
    assert_eq!(
        Pool::init_global(config)
            .unwrap()
            .config()
            .max_connections_per_host,
        3
    );
    let other = etlpool::PoolConfig::default();
    assert!(matches!(
        Pool::init_global(other),
        Err(Error::GlobalPoolConflict)
    ));
    assert_eq!(Pool::global().unwrap().config().max_connections_per_host, 3);
}

#[test]
fn a_dns_name_is_resolved_once_and_cached() {
    let srv = ok_server();
    let url = format!("http://localhost:{}", srv.addr().port());
    let pool = test_pool().build().unwrap();
    for _ in 0..3 {
        assert_eq!(pool.fetch(&url).unwrap().status(), 200);
    }
    let m = pool.metrics().total;
    assert_eq!((m.dns_lookups, m.dns_cache_hits), (1, 2));
}

#[test]
fn a_configured_connect_proxy_carries_pooled_connections() {
    let srv = ok_server();
    let proxy = crate::support::ConnectProxy::start();
    let pool = test_pool()
        .proxy(Some(format!("http://{}", proxy.addr)))
        .build()
        .unwrap();
    for _ in 0..5 {
        assert_eq!(pool.fetch(&srv.url()).unwrap().status(), 200);
    }
    let m = pool.metrics().total;
    assert_eq!((m.connections_created, m.connections_reused), (1, 4));
    assert_eq!(proxy.tunnels.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(srv.stats().snapshot().accepted, 1);
    assert_eq!(srv.stats().snapshot().requests, 5);
}

#[test]
fn turning_verification_off_is_explicit_and_works() {
    let untrusted = TestCa::new();
    let srv = untrusted.ok_server();
    let tls = etlpool::TlsOptions {
        danger_accept_invalid_certs: true,
        ..Default::default()
    };
    let pool = test_pool().tls(tls).build().unwrap();
    assert_eq!(pool.fetch(&srv.url()).unwrap().status(), 200);
    // The default pool refuses the same server.
    let strict = test_pool().build().unwrap();
    assert!(
        matches!(strict.fetch(&srv.url()), Err(Error::Request(r)) if r.kind == TransportKind::Tls)
    );
}

#[test]
fn a_client_certificate_opens_a_server_that_requires_one() {
    let ca = TestCa::new();
    let srv = TestCa::serve(ca.mtls_server());
    let scratch = crate::support::Scratch::new("mtls");
    let (cert, key) = ca.client_pem();
    let tls = etlpool::TlsOptions {
        ca_pem: Some(ca.ca_pem.clone()),
        client_cert: Some(scratch.file("client.pem", cert.as_bytes())),
        client_key: Some(scratch.file("client.key", key.as_bytes())),
        ..Default::default()
    };
    let pool = test_pool().tls(tls).build().unwrap();
    assert_eq!(pool.fetch(&srv.url()).unwrap().status(), 200);
    let without = test_pool().ca_pem(Some(ca.ca_pem.clone())).build().unwrap();
    let err = without.fetch(&srv.url()).unwrap_err();
    assert!(err.exchange().is_some_and(|x| !x.response_started), "{err}");
}

/// An event handler with a bug: it panics on the first close it sees.
struct PanicsOnFirstClose(std::sync::atomic::AtomicBool);

impl etlpool::EventHandler for PanicsOnFirstClose {
    fn on_event(&self, event: &etlpool::Event) {
        if matches!(event, etlpool::Event::Closed { .. })
            && self.0.swap(false, std::sync::atomic::Ordering::SeqCst)
        {
            panic!("a metrics exporter's bug");
        }
    }
}

#[test]
fn a_panicking_event_handler_leaks_no_slot() {
    // The handler runs inside the pool (here where a socket closes): its
    // panic must not leave the pool thinking the closed socket still exists.
    let srv =
        server(|_, _| Answer::Response(Response::bytes(200, "text/plain", b"ok".to_vec()).close()));
    let pool = test_pool()
        .max_connections_per_host(1)
        .acquire_timeout(Duration::from_millis(500))
        .event_handler(std::sync::Arc::new(PanicsOnFirstClose(true.into())))
        .build()
        .unwrap();
    let first = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        pool.fetch(&srv.url()).map(|r| r.status())
    }));
    assert!(
        matches!(first, Ok(Ok(200))),
        "{:?}",
        first.map(|r| r.map_err(|e| e.to_string()))
    );
    assert_eq!(pool.fetch(&srv.url()).unwrap().status(), 200);
    let m = pool.metrics().total;
    assert_eq!((m.connections_created, m.open_connections), (2, 0));
    assert_eq!(srv.stats().snapshot().accepted, 2);
}

#[test]
fn an_agent_shut_down_through_a_clone_is_not_lent_again() {
    // ureq's Agent::shutdown (on a clone, as its docs show for stopping a
    // worker) closes the agent for good; the pool must not keep lending it.
    let srv = ok_server();
    let pool = test_pool().max_connections_per_host(1).build().unwrap();
    let lease = pool.lease(&srv.url()).unwrap();
    assert_eq!(lease.fetch(&srv.url()).unwrap().status(), 200);
    (*lease).clone().shutdown();
    drop(lease);
    for _ in 0..2 {
        assert_eq!(pool.fetch(&srv.url()).unwrap().status(), 200);
    }
    let m = pool.metrics().total;
    assert_eq!((m.connections_created, m.open_connections), (2, 1));
    assert_eq!(m.closed(CloseReason::Discarded), 1);
}
