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

#[test]
fn a_request_waiting_for_its_busy_socket_opens_nothing_after_shutdown() {
    // A held lease's request waits for the socket a clone of its agent holds;
    // the pool shuts down; then the clone's socket closes. The waiting request
    // must not open a new connection: the pool is shut down.
    let (arrived, slow_arrived) = crossbeam_channel::bounded::<()>(1);
    let (release, gate) = crossbeam_channel::bounded::<()>(1);
    let srv = crate::support::server(move |req, _| {
        let ok = etlpool::mock::server::Response::bytes(200, "text/plain", b"ok".to_vec());
        if req.path == "/slow" {
            let _ = arrived.send(());
            let _ = gate.recv_timeout(WAIT);
            // The server closes the connection after this answer.
            return etlpool::mock::server::Answer::Response(ok.close());
        }
        etlpool::mock::server::Answer::Response(ok)
    });
    let url = srv.url();
    let (pool, events) = crate::support::recorded(test_pool().max_connections_per_host(1));
    let lease = pool.lease(&url).unwrap();
    let clone: ureq::Agent = (*lease).clone();
    std::thread::scope(|s| {
        let slow = s.spawn(|| {
            let mut r = clone.get(format!("{url}/slow")).call()?;
            r.body_mut().read_to_string()
        });
        slow_arrived.recv_timeout(WAIT).unwrap();
        let holder = s.spawn(|| lease.fetch(&url).map(|r| r.status()));
        assert!(events.wait_for("socket_busy", WAIT));
        pool.shutdown();
        release.send(()).unwrap();
        assert_eq!(slow.join().unwrap().unwrap(), "ok");
        let err = holder
            .join()
            .unwrap()
            .expect_err("a request after shutdown opened a new connection");
        assert!(matches!(err, Error::PoolShutdown { .. }), "{err:?}");
    });
    drop(lease);
    assert_eq!(srv.stats().snapshot().accepted, 1);
    assert!(srv.stats().wait_until(|s| s.open() == 0, WAIT));
}

/// A server that accepts connections and never answers; sends a message per
/// accepted connection.
fn silent_server() -> (String, crossbeam_channel::Receiver<std::net::TcpStream>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = crossbeam_channel::unbounded();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            if tx.send(stream).is_err() {
                return;
            }
        }
    });
    (url, rx)
}

#[test]
fn shutdown_does_not_wait_out_a_warm_up_of_a_server_that_never_answers() {
    // min_idle has the cleaner warm the origin up; the server accepts and
    // never answers. Shutdown (and so dropping the pool) must not wait for
    // that request's timeout (60 s by default).
    let (url, accepted) = silent_server();
    let pool = etlpool::Pool::builder()
        .min_idle(1)
        .reap_interval(std::time::Duration::from_millis(20))
        .build()
        .unwrap();
    drop(pool.lease(&url).unwrap());
    let warm_socket = accepted.recv_timeout(WAIT).unwrap();
    let start = std::time::Instant::now();
    pool.shutdown();
    assert!(
        start.elapsed() < WAIT / 2,
        "shutdown waited {:?} for a warm-up request",
        start.elapsed()
    );
    // The warm-up's connection is closed: the server reads its end.
    warm_socket.set_read_timeout(Some(WAIT)).unwrap();
    let mut rest = Vec::new();
    let read = std::io::Read::read_to_end(&mut &warm_socket, &mut rest);
    assert!(read.is_ok(), "the warm-up's socket stayed open: {read:?}");
    assert!(wait_until(
        || pool.metrics().total.open_connections == 0,
        WAIT
    ));
}

#[test]
fn the_cleaner_keeps_its_pace_while_an_origin_never_answers_its_warm_up() {
    // One origin's warm-up hangs; another origin's idle connection must still
    // be closed on time, not after the hanging request's timeout.
    let (silent, _accepted) = silent_server();
    let srv = ok_server();
    let pool = etlpool::Pool::builder()
        .min_idle(1)
        .idle_timeout(std::time::Duration::from_millis(100))
        .reap_interval(std::time::Duration::from_millis(20))
        .build()
        .unwrap();
    drop(pool.lease(&silent).unwrap());
    // The other origin's floor is met by its own fetch; a second connection
    // (beyond min_idle) must idle out.
    let a = pool.lease(&srv.url()).unwrap();
    let b = pool.lease(&srv.url()).unwrap();
    assert_eq!(a.fetch(&srv.url()).unwrap().status(), 200);
    assert_eq!(b.fetch(&srv.url()).unwrap().status(), 200);
    drop((a, b));
    assert!(
        wait_until(
            || pool.metrics().origin(&srv.url()).closed(CloseReason::Idle) >= 1,
            WAIT
        ),
        "the cleaner stalled behind a warm-up: {:?}",
        pool.metrics().origin(&srv.url())
    );
    pool.shutdown();
}
