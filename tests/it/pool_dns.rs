//! The pool's resolver over the system's real resolver: concurrent first
//! requests for one host make one lookup. (Helper bounds, cache bounds and
//! negative caching need a resolver that hangs or fails on cue; the unit tests
//! in `src/pool/resolver.rs` drive those with a gated lookup.)

use std::sync::Barrier;

use crate::support::{ok_server, test_pool};

#[test]
fn concurrent_first_requests_for_a_host_make_one_lookup() {
    let srv = ok_server();
    let url = format!("http://localhost:{}", srv.addr().port());
    for round in 0..20 {
        let pool = test_pool().max_connections_per_host(8).build().unwrap();
        let start = Barrier::new(8);
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    start.wait();
                    assert_eq!(pool.fetch(&url).unwrap().status(), 200);
                });
            }
        });
        let m = pool.metrics().total;
        assert_eq!(
            (m.dns_lookups, m.dns_cache_hits),
            (1, 7),
            "round {round}: one lookup, seven answers from it"
        );
    }
}

#[test]
fn a_name_that_does_not_resolve_is_a_dns_failure() {
    // `.invalid` never resolves (RFC 6761). The failure must be classed and
    // counted as DNS, not as a connect failure.
    let pool = test_pool().build().unwrap();
    let err = pool.fetch("http://nonexistent.invalid/").unwrap_err();
    let etlpool::Error::Request(r) = &err else {
        panic!("expected a request error, got {err:?}");
    };
    assert_eq!(r.kind, etlpool::TransportKind::Dns, "{err}");
    assert!(!r.exchange.sent);
    let m = pool.metrics().total;
    assert_eq!(
        (
            m.failed(etlpool::FailureKind::Dns),
            m.failed(etlpool::FailureKind::Connect)
        ),
        (1, 0)
    );
    assert_eq!(m.connections_created, 0);
}
