//! Shutdown: after `shutdown()` returns no socket stays idle, whatever lease
//! returns concurrently; a lease held across it may finish on its socket but
//! opens nothing new.

use std::sync::Barrier;

use crate::support::{WAIT, ok_server, test_pool, wait_until};
use etlpool::{CloseReason, Error};

#[test]
fn leases_returned_while_shutting_down_never_stay_idle() {
    const LEASES: usize = 8;
    let srv = ok_server();
    let url = srv.url();
    for round in 0..100 {
        let pool = test_pool()
            .max_connections_per_host(LEASES)
            .build()
            .unwrap();
        let leases: Vec<_> = (0..LEASES)
            .map(|_| {
                let lease = pool.lease(&url).unwrap();
                assert_eq!(lease.fetch(&url).unwrap().status(), 200);
                lease
            })
            .collect();
        // Returns contend for the host's lock while shutdown closes what is idle.
        let start = Barrier::new(LEASES + 1);
        std::thread::scope(|s| {
            for lease in leases {
                let start = &start;
                s.spawn(move || {
                    start.wait();
                    drop(lease);
                });
            }
            start.wait();
            pool.shutdown();
        });
        // Whichever came first, every socket is closed once all are done.
        let m = pool.metrics().total;
        assert_eq!(
            (m.idle, m.open_connections, m.closed(CloseReason::Shutdown)),
            (0, 0, LEASES as u64),
            "round {round}: a socket stayed open after shutdown"
        );
    }
    assert!(srv.stats().wait_until(|s| s.open() == 0, WAIT));
}

#[test]
fn a_lease_held_across_shutdown_finishes_on_its_socket_but_opens_nothing_new() {
    let srv = ok_server();
    let url = srv.url();
    let pool = test_pool().max_connections_per_host(2).build().unwrap();
    let connected = pool.lease(&url).unwrap();
    assert_eq!(connected.fetch(&url).unwrap().status(), 200);
    let unconnected = pool.lease(&url).unwrap();
    pool.shutdown();

    // The held socket may carry the holder's remaining work.
    assert_eq!(connected.fetch(&url).unwrap().status(), 200);
    // A lease without a socket gets no new one.
    let err = unconnected.fetch(&url).unwrap_err();
    assert!(err.to_string().contains("shut down"), "{err}");
    assert!(!err.exchange().is_some_and(|x| x.sent), "{err}");
    connected.discard();
    assert!(matches!(pool.lease(&url), Err(Error::PoolShutdown { .. })));
    drop(unconnected);

    assert!(srv.stats().wait_until(|s| s.open() == 0, WAIT));
    let s = srv.stats().snapshot();
    assert_eq!((s.accepted, s.requests), (1, 2));
    assert!(wait_until(
        || pool.metrics().total.open_connections == 0,
        WAIT
    ));
    let m = pool.metrics().total;
    assert_eq!(m.connections_created, 1);
    assert_eq!(m.closed(CloseReason::Discarded), 1);
}
