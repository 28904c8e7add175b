//! Asserting on real connection counts, as a test would: the pool's metrics come
//! from the transport, so "one connection, nine reuses" is a fact about the
//! sockets, not about checkouts.
//!
//! Run with `cargo run --example assert_metrics`.

use std::sync::Arc;

use etlpool::mock::server::{Answer, ConnContext, HttpServer, Request, Response, ServerOptions};
use etlpool::{CloseReason, Pool};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A keep-alive server on 127.0.0.1:0 that counts accepted connections.
    let server = HttpServer::start(
        ServerOptions::default(),
        Arc::new(|_: Request, _: &ConnContext| {
            Answer::Response(Response::bytes(200, "text/plain", b"ok".to_vec()))
        }),
    )?;
    let pool = Pool::builder().build()?;
    for _ in 0..10 {
        let reply = pool.fetch(&format!("{}/ping", server.url()))?;
        assert_eq!(reply.status(), 200);
    }

    let m = pool.metrics().origin(&server.url());
    assert_eq!(m.connections_created, 1);
    assert_eq!(m.connections_reused, 9);
    assert_eq!(m.closed(CloseReason::Idle), 0);
    assert_eq!(server.stats().snapshot().accepted, 1, "the server agrees");

    // Shutting down closes the idle connection, and says why.
    pool.shutdown();
    assert_eq!(
        pool.metrics()
            .origin(&server.url())
            .closed(CloseReason::Shutdown),
        1
    );
    println!("{}", pool.metrics().to_prometheus());
    Ok(())
}
