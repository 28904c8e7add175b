//! TLS sessions resume at any width: after every connection to a host closed,
//! as many reconnects at once as the per-host cap allows resume their session.

use std::sync::Barrier;
use std::time::Duration;

use crate::support::{TestCa, WAIT};
use etlpool::Pool;

/// Opens `per_host` connections at once, lets the cleaner close them all, then
/// reconnects `per_host` at once; returns (reconnects, resumed by the client's
/// count, resumed by the server's count).
fn reconnect_burst(per_host: usize) -> (u64, u64, u64) {
    let ca = TestCa::new();
    let srv = ca.ok_server();
    let url = srv.url();
    let pool = Pool::builder()
        .max_connections_per_host(per_host)
        .ca_pem(Some(ca.ca_pem.clone()))
        .idle_timeout(Duration::from_millis(200))
        .reap_interval(Duration::from_millis(50))
        .lifetime_jitter(0.0)
        .build()
        .unwrap();
    let burst = || {
        let all_hold = Barrier::new(per_host);
        std::thread::scope(|s| {
            for _ in 0..per_host {
                s.spawn(|| {
                    let lease = pool.lease(&url).unwrap();
                    assert_eq!(lease.fetch(&url).unwrap().status(), 200);
                    // Every thread holds its connection at once: per_host sockets.
                    all_hold.wait();
                });
            }
        });
    };
    let n = per_host as u64;
    burst();
    assert!(srv.stats().wait_until(|s| s.client_closed == n, WAIT));
    let before = (pool.metrics().total, srv.stats().snapshot());
    burst();
    let after = (pool.metrics().total, srv.stats().snapshot());
    assert_eq!(after.1.accepted, 2 * n);
    (
        after.0.connections_created - before.0.connections_created,
        after.0.tls_handshakes_resumed - before.0.tls_handshakes_resumed,
        after.1.tls_resumed - before.1.tls_resumed,
    )
}

fn assert_resumed_at(per_host: usize) {
    let (opened, resumed, server_saw) = reconnect_burst(per_host);
    assert_eq!(opened, per_host as u64);
    assert_eq!(resumed, server_saw, "client and server disagree");
    // At least 95 %.
    assert!(
        resumed * 100 >= opened * 95,
        "{resumed} of {opened} reconnects resumed at {per_host} per host"
    );
}

#[test]
fn sixteen_reconnects_at_once_resume_their_sessions() {
    assert_resumed_at(16);
}

#[test]
fn thirty_two_reconnects_at_once_resume_their_sessions() {
    assert_resumed_at(32);
}

#[test]
fn sessions_of_one_port_are_not_offered_to_another() {
    // Two servers on the same host name: a ticket from one means nothing to
    // the other, so it must not be spent there (a wasted full handshake).
    let ca = TestCa::new();
    let a = ca.ok_server();
    let b = ca.ok_server();
    let pool = crate::support::test_pool()
        .ca_pem(Some(ca.ca_pem.clone()))
        .build()
        .unwrap();
    assert_eq!(pool.fetch(&a.url()).unwrap().status(), 200);
    assert_eq!(pool.fetch(&b.url()).unwrap().status(), 200);
    pool.lease(&a.url()).unwrap().discard();
    assert_eq!(pool.fetch(&a.url()).unwrap().status(), 200);
    let (sa, sb) = (a.stats().snapshot(), b.stats().snapshot());
    assert_eq!((sa.tls_full, sa.tls_resumed), (1, 1));
    assert_eq!((sb.tls_full, sb.tls_resumed), (1, 0));
}
