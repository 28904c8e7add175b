//! What mature pools also have: pre-warming and a floor of idle connections,
//! an on-demand health check and a per-origin health view, and TCP keepalive
//! on pooled sockets, read back from the kernel.

use std::time::Duration;

use crate::support::{WAIT, ok_server, scripted, server, test_pool, wait_until};
use etlpool::http::{ApiClient, Auth};
use etlpool::mock::server::{Answer, Response};
use etlpool::{CloseReason, Error, Pool};

#[test]
fn warm_opens_connections_ahead_of_a_burst_with_one_cheap_request_each() {
    let srv = scripted(|_, _| Answer::Response(Response::new(204)));
    let pool = test_pool()
        .max_connections_per_host(4)
        .warm_path("/ping".to_string())
        .build()
        .unwrap();
    assert_eq!(pool.warm(&srv.url(), 3).unwrap(), 3);
    // Already warm: nothing more to open.
    assert_eq!(pool.warm(&srv.url(), 3).unwrap(), 0);
    // Never beyond the per-host cap.
    assert_eq!(pool.warm(&srv.url(), 10).unwrap(), 1);
    let seen = srv.seen.lock().clone();
    assert_eq!(seen.len(), 4);
    assert!(
        seen.iter().all(|r| r.method == "HEAD" && r.path == "/ping"),
        "{seen:?}"
    );
    let m = pool.metrics().origin(&srv.url());
    assert_eq!(
        (m.warm_requests, m.requests_sent, m.connections_created),
        (4, 4, 4)
    );
    assert_eq!((m.idle, m.open_connections), (4, 4));
    // The burst finds them open: no connect.
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| assert_eq!(pool.fetch(&srv.url()).unwrap().status(), 204));
        }
    });
    assert_eq!(pool.metrics().origin(&srv.url()).connections_created, 4);
    assert_eq!(srv.server.stats().snapshot().accepted, 4);
}

#[test]
fn warm_fails_with_the_reason_when_the_origin_is_down() {
    let srv = ok_server();
    let url = srv.url();
    drop(srv);
    let pool = test_pool().build().unwrap();
    let err = pool.warm(&url, 2).unwrap_err();
    assert!(matches!(err, Error::Request(_)), "{err:?}");
    assert_eq!(pool.metrics().total.open_connections, 0);
    let health = pool.health();
    let last = health.origins[&url]
        .last_error
        .clone()
        .expect("the failure is remembered");
    assert_eq!(last.kind, "connect");
}

#[test]
fn min_idle_keeps_warm_connections_through_the_cleaner() {
    let srv = ok_server();
    let pool = Pool::builder()
        .min_idle(2)
        .idle_timeout(Duration::from_millis(100))
        .reap_interval(Duration::from_millis(20))
        .lifetime_jitter(0.0)
        .build()
        .unwrap();
    // The origin is used once; the cleaner tops it up to two idle connections.
    assert_eq!(pool.fetch(&srv.url()).unwrap().status(), 200);
    assert!(srv.stats().wait_until(|s| s.accepted == 2, WAIT));
    assert!(wait_until(|| pool.metrics().total.idle == 2, WAIT));
    // Idle far longer than idle_timeout, they stay: the floor holds.
    let passes = pool.health().origins[&srv.url()]
        .last_cleanup_unix_ms
        .unwrap();
    assert!(wait_until(
        || pool.health().origins[&srv.url()]
            .last_cleanup_unix_ms
            .unwrap()
            > passes + 300,
        WAIT
    ));
    let m = pool.metrics().total;
    assert_eq!((m.connections_created, m.closed(CloseReason::Idle)), (2, 0));
    assert_eq!(m.warm_requests, 1);
    assert_eq!(srv.stats().snapshot().open(), 2);
}

#[test]
fn min_idle_replaces_a_connection_past_its_lifetime() {
    let srv = ok_server();
    let pool = Pool::builder()
        .min_idle(1)
        .max_lifetime(Some(Duration::from_millis(150)))
        .reap_interval(Duration::from_millis(20))
        .lifetime_jitter(0.0)
        .build()
        .unwrap();
    assert_eq!(pool.fetch(&srv.url()).unwrap().status(), 200);
    // The expired one closed, and a warm request opened its successor.
    let replaced = || {
        let m = pool.metrics().total;
        m.closed(CloseReason::Lifetime) >= 1 && m.warm_requests >= 1 && m.open_connections == 1
    };
    assert!(wait_until(replaced, WAIT), "{:?}", pool.metrics().total);
}

#[test]
fn check_reports_status_and_latency_on_a_pooled_connection() {
    let srv = server(|req, _| {
        if req.path == "/health" {
            Answer::Response(Response::json(200, &serde_json::json!({"status": "up"})))
        } else {
            Answer::Response(Response::new(404))
        }
    });
    let pool = test_pool().build().unwrap();
    let first = pool.check(&srv.url(), "/health").unwrap();
    assert_eq!((first.status, first.reused), (200, false));
    assert!(first.latency > Duration::ZERO && first.latency < WAIT);
    assert_eq!(first.origin, srv.url());
    let second = pool
        .check(&format!("{}/ignored/path", srv.url()), "health")
        .unwrap();
    assert_eq!((second.status, second.reused), (200, true));
    assert_eq!(pool.check(&srv.url(), "/missing").unwrap().status, 404);
    assert_eq!(srv.stats().snapshot().accepted, 1);
}

#[test]
fn check_reports_the_error_of_an_unreachable_origin() {
    let srv = ok_server();
    let url = srv.url();
    drop(srv);
    let pool = test_pool().build().unwrap();
    let err = pool.check(&url, "/health").unwrap_err();
    assert!(err.to_string().contains(&url), "{err}");
}

#[test]
fn the_health_view_lists_each_origin() {
    let a = ok_server();
    let b = server(|_, _| Answer::Response(Response::new(503)));
    let pool = test_pool().max_connections_per_host(2).build().unwrap();
    let api = ApiClient::builder(&pool, &b.url())
        .auth(Auth::None)
        .retry(etlpool::http::RetryPolicy {
            max_retries: 0,
            ..Default::default()
        })
        .breaker(etlpool::policy::BreakerPolicy::after_failures(2))
        .build()
        .unwrap();
    for _ in 0..3 {
        let _ = api.get_json::<serde_json::Value>("/x", &[]);
    }
    let held = pool.lease(&a.url()).unwrap();
    assert_eq!(held.fetch(&a.url()).unwrap().status(), 200);
    let health = pool.health();
    let ha = &health.origins[&a.url()];
    assert_eq!(
        (ha.in_use, ha.idle, ha.waiting, ha.open_connections),
        (1, 0, 0, 1)
    );
    assert_eq!(ha.breaker, None, "no client gave a policies yet");
    assert!(ha.last_error.is_none());
    let hb = &health.origins[&b.url()];
    assert_eq!(hb.breaker.as_deref(), Some("open"));
    assert!(hb.breaker_retry_in_ms.is_some());
    assert!(hb.last_error.is_some());
    assert!(health.taken_at_unix_ms > 0);
    // A serde struct: JSON for a health endpoint.
    let json = serde_json::to_value(&health).unwrap();
    assert_eq!(json["origins"][a.url()]["in_use"], 1);
    drop(held);
}

#[test]
fn pooled_sockets_have_tcp_keepalive_as_configured() {
    let srv = ok_server();
    let pool = test_pool()
        .tcp_keepalive_idle(Duration::from_secs(45))
        .tcp_keepalive_interval(Duration::from_secs(7))
        .tcp_keepalive_count(4)
        .build()
        .unwrap();
    let lease = pool.lease(&srv.url()).unwrap();
    assert!(lease.connection_info().is_none(), "no connection yet");
    assert_eq!(lease.fetch(&srv.url()).unwrap().status(), 200);
    let info = lease.connection_info().expect("an idle connection");
    assert_eq!(info.peer_addr, srv.addr());
    let k = info.keepalive.expect("keepalive is on by default");
    assert_eq!(k.idle, Duration::from_secs(45));
    if cfg!(target_os = "linux") {
        assert_eq!(
            (k.interval, k.count),
            (Some(Duration::from_secs(7)), Some(4))
        );
    }

    let defaults = test_pool().build().unwrap();
    let lease = defaults.lease(&srv.url()).unwrap();
    lease.fetch(&srv.url()).unwrap();
    let k = lease.connection_info().unwrap().keepalive.unwrap();
    assert_eq!(k.idle, etlpool::PoolConfig::default().tcp_keepalive_idle);

    let off = test_pool().tcp_keepalive(false).build().unwrap();
    let lease = off.lease(&srv.url()).unwrap();
    lease.fetch(&srv.url()).unwrap();
    assert_eq!(lease.connection_info().unwrap().keepalive, None);
}

#[test]
fn warm_counts_only_connections_that_stay_open() {
    // A server that closes every connection after its answer (a HEAD answered
    // with a body is the same: the connection can't be reused). Warming can't
    // help; it must say so, not report connections it lost, and not churn
    // through the whole per-host cap trying.
    let closing = scripted(|_, _| Answer::Response(Response::new(405).close()));
    let pool = test_pool().max_connections_per_host(4).build().unwrap();
    let opened = pool.warm(&closing.url(), 3).unwrap();
    let m = pool.metrics().origin(&closing.url());
    assert_eq!(opened as u64, m.open_connections, "{m:?}");
    assert!(
        closing.server.stats().snapshot().accepted <= 1,
        "{} connections opened to warm up a server that closes each one",
        closing.server.stats().snapshot().accepted
    );
    // The same server keeping its connections: exactly what was asked.
    let srv = scripted(|_, _| Answer::Response(Response::new(405)));
    assert_eq!(pool.warm(&srv.url(), 3).unwrap(), 3);
    assert_eq!(pool.metrics().origin(&srv.url()).open_connections, 3);
}
