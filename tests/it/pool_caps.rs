//! Caps and lending: capacity freed anywhere wakes a waiter of the total cap,
//! timeouts describe real sockets, an expired socket never carries a request,
//! and a lease prefers an agent whose socket is free.

use std::time::{Duration, Instant};

use crate::support::{
    BIG_BODY, WAIT, big_body_server, late_body, ok_server, recorded, test_pool, wait_until,
};
use etlpool::{CloseReason, Error};

#[test]
fn a_total_cap_waiter_gets_the_agent_that_came_back_idle() {
    let srv = ok_server();
    let url = srv.url();
    let pool = test_pool()
        .max_connections_total(Some(1))
        .max_connections_per_host(2)
        .acquire_timeout(WAIT)
        .build()
        .unwrap();
    let held = pool.lease(&url).unwrap();
    assert_eq!(held.fetch(&url).unwrap().status(), 200);
    std::thread::scope(|s| {
        let waiter = s.spawn(|| {
            let start = Instant::now();
            let lease = pool.lease(&url)?;
            let status = lease.fetch(&url)?.status();
            Ok::<_, Error>((status, start.elapsed()))
        });
        assert!(
            wait_until(|| pool.metrics().total.waiting == 1, WAIT),
            "the second lease never counted as waiting"
        );
        drop(held);
        let (status, waited) = waiter.join().unwrap().unwrap();
        assert_eq!(status, 200);
        assert!(waited < WAIT / 2, "the waiter slept through free capacity");
    });
    let m = pool.metrics().total;
    assert_eq!((m.connections_created, m.connections_reused), (1, 1));
    assert_eq!(srv.stats().snapshot().accepted, 1);
}

#[test]
fn a_total_cap_waiter_evicts_an_idle_agent_of_another_origin_when_it_returns() {
    let a = ok_server();
    let b = ok_server();
    let pool = test_pool()
        .max_connections_total(Some(1))
        .acquire_timeout(WAIT)
        .build()
        .unwrap();
    let held = pool.lease(&b.url()).unwrap();
    assert_eq!(held.fetch(&b.url()).unwrap().status(), 200);
    std::thread::scope(|s| {
        let waiter = s.spawn(|| pool.fetch(&a.url()).map(|r| r.status()));
        assert!(wait_until(|| pool.metrics().total.waiting == 1, WAIT));
        drop(held);
        assert_eq!(waiter.join().unwrap().unwrap(), 200);
    });
    let snap = pool.metrics();
    assert_eq!(snap.origin(&b.url()).closed(CloseReason::Evicted), 1);
    assert!(b.stats().wait_until(|s| s.client_closed == 1, WAIT));
    assert_eq!(snap.total.open_connections, 1);
}

#[test]
fn many_fetches_across_two_origins_under_a_total_cap_all_succeed() {
    let a = ok_server();
    let b = ok_server();
    let pool = test_pool()
        .max_connections_total(Some(2))
        .max_connections_per_host(2)
        .acquire_timeout(Duration::from_secs(3))
        .build()
        .unwrap();
    let urls = [a.url(), b.url()];
    std::thread::scope(|s| {
        for t in 0..6 {
            let (pool, urls) = (&pool, &urls);
            s.spawn(move || {
                for i in 0..30 {
                    let url = &urls[(t + i) % 2];
                    pool.fetch(url).unwrap_or_else(|e| panic!("fetch {i}: {e}"));
                }
            });
        }
    });
    let m = pool.metrics().total;
    assert_eq!(m.requests_sent, 180);
    assert_eq!(m.leases_timed_out, 0);
    assert!(m.open_connections <= 2);
}

#[test]
fn a_total_cap_timeout_counts_real_sockets() {
    let srv = ok_server();
    let pool = test_pool()
        .max_connections_total(Some(1))
        .max_connections_per_host(2)
        .acquire_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let held = pool.lease(&srv.url()).unwrap();
    let err = pool.lease(&srv.url()).unwrap_err();
    let Error::PoolTimeout(t) = &err else {
        panic!("expected PoolTimeout, got {err:?}");
    };
    assert!(t.total_cap_reached, "{err}");
    assert_eq!(
        (t.total, t.in_use, t.idle, t.waiting),
        (1, 1, 0, 0),
        "{err}"
    );
    let m = pool.metrics().total;
    assert_eq!((m.leases_timed_out, m.waiting, m.in_use), (1, 0, 1));
    drop(held);
    // Nothing leaked: the slot the timed-out lease never got is usable.
    assert_eq!(pool.fetch(&srv.url()).unwrap().status(), 200);
}

#[test]
fn a_socket_past_its_lifetime_is_never_lent_again() {
    let srv = ok_server();
    let lifetime = Duration::from_millis(150);
    // The cleaner stays out of the way: only lending may catch the expiry.
    let pool = test_pool().max_lifetime(Some(lifetime)).build().unwrap();
    assert_eq!(pool.fetch(&srv.url()).unwrap().status(), 200);
    // Only a lower bound matters: the idle connection must outlive its lifetime.
    std::thread::sleep(lifetime + Duration::from_millis(50));
    assert_eq!(pool.fetch(&srv.url()).unwrap().status(), 200);
    let m = pool.metrics().total;
    assert_eq!((m.connections_created, m.connections_reused), (2, 0));
    assert_eq!(m.closed(CloseReason::Lifetime), 1);
    assert!(srv.stats().wait_until(|s| s.client_closed == 1, WAIT));
    assert_eq!(srv.stats().snapshot().accepted, 2);
}

#[test]
fn a_lease_prefers_an_agent_whose_socket_is_free() {
    let srv = big_body_server();
    let (pool, events) = recorded(test_pool().max_connections_per_host(2));
    // The agent goes back while its socket still carries the unread body.
    let mut late = late_body(&pool, &srv.url());
    let start = Instant::now();
    assert_eq!(pool.fetch(&srv.url()).unwrap().status(), 200);
    assert!(start.elapsed() < WAIT / 2);
    assert!(
        !events.names().iter().any(|e| e == "socket_busy"),
        "the lease waited for a busy socket while a slot was free: {:?}",
        events.names()
    );
    assert_eq!(late.body_mut().read_to_vec().unwrap().len(), BIG_BODY);
    assert_eq!(srv.stats().snapshot().accepted, 2);
}

#[test]
fn with_no_free_slot_a_busy_agent_is_lent_and_its_request_waits_for_the_socket() {
    let srv = big_body_server();
    let (pool, events) = recorded(test_pool().max_connections_per_host(1));
    let mut late = late_body(&pool, &srv.url());
    std::thread::scope(|s| {
        let second = s.spawn(|| pool.fetch(&srv.url()).map(|r| r.status()));
        assert!(events.wait_for("socket_busy", WAIT));
        assert_eq!(late.body_mut().read_to_vec().unwrap().len(), BIG_BODY);
        assert_eq!(second.join().unwrap().unwrap(), 200);
    });
    assert_eq!(srv.stats().snapshot().accepted, 1);
}

#[test]
fn a_lease_skips_an_idle_agent_whose_socket_a_clone_took_after_it_came_back() {
    // The agent comes back idle with its socket free; then a clone kept by the
    // old holder starts a slow request on it. The next lease must not get that
    // agent while a slot is free: its request would wait for the socket (and
    // here time out) instead of opening the connection the cap allows.
    let (arrived, slow_arrived) = crossbeam_channel::bounded::<()>(1);
    let (release, gate) = crossbeam_channel::bounded::<()>(1);
    let srv = crate::support::server(move |req, _| {
        if req.path == "/slow" {
            let _ = arrived.send(());
            let _ = gate.recv_timeout(WAIT);
        }
        etlpool::mock::server::Answer::Response(etlpool::mock::server::Response::bytes(
            200,
            "text/plain",
            b"ok".to_vec(),
        ))
    });
    let url = srv.url();
    let (pool, events) = recorded(
        test_pool()
            .max_connections_per_host(2)
            .acquire_timeout(Duration::from_secs(2)),
    );
    let lease = pool.lease(&url).unwrap();
    assert_eq!(lease.fetch(&url).unwrap().status(), 200);
    let clone: ureq::Agent = (*lease).clone();
    drop(lease);
    std::thread::scope(|s| {
        let slow = s.spawn(|| {
            let mut r = clone.get(format!("{url}/slow")).call()?;
            r.body_mut().read_to_string()
        });
        slow_arrived.recv_timeout(WAIT).unwrap();
        let result = pool.fetch(&url).map(|r| r.status());
        release.send(()).unwrap();
        assert_eq!(slow.join().unwrap().unwrap(), "ok");
        assert_eq!(result.unwrap(), 200);
    });
    assert!(
        !events.names().iter().any(|e| e == "socket_busy"),
        "the lease waited for a socket a clone held while a slot was free: {:?}",
        events.names()
    );
    assert_eq!(srv.stats().snapshot().accepted, 2);
}
