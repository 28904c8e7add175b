//! etlpool: a blocking HTTP connection pool, a resilience layer and a work queue
//! for long ETL jobs against rate-limited SaaS APIs, and the job they were built
//! for: migrating a Zephyr Scale project to qTest.
//!
//! ```
//! use std::sync::Arc;
//! use etlpool::mock::server::{ConnContext, HttpServer, Reply, Request, Response, ServerOptions};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = HttpServer::start(ServerOptions::default(), Arc::new(|_: Request, _: &ConnContext| {
//!     Reply::Response(Response::bytes(200, "text/plain", b"ok".to_vec()))
//! }))?;
//! let pool = etlpool::Pool::builder().max_connections_per_host(4).build()?;
//! for _ in 0..3 {
//!     assert_eq!(pool.fetch(&server.url())?.status(), 200);
//! }
//! let m = pool.metrics().origin(&server.url());
//! assert_eq!((m.connections_created, m.connections_reused), (1, 2));
//! # Ok(()) }
//! ```
//!
//! Where things live, bottom up (nothing below reaches up):
//!
//! - [`pool`]: the connection pool ([`Pool`], [`Lease`], [`PoolConfig`],
//!   [`Snapshot`] metrics), its TLS connector, resolver and cleaner thread.
//! - [`http`]: [`http::ApiClient`] and its policies: retries, `Retry-After`,
//!   retry budget, rate limiter, circuit breaker, timeouts.
//! - [`queue`]: [`queue::WorkQueue`] on crossbeam-channel; [`signals`] wires
//!   SIGINT/SIGTERM to its cancel token.
//! - [`zephyr`], [`qtest`]: typed clients and models of both APIs.
//! - [`migrate`]: mapping, transform, journal, report, the run and `verify`.
//! - [`mock`]: the embedded mock servers and their HTTP/1.1 core.
//! - [`cli`], [`load`]: the `etlpool` command line and its load generator.
//! - [`Error`]: one error type for all of it; [`redact`] keeps secrets out of
//!   messages.
//!
//! Logging (the `log` crate): ERROR for what stops a run; WARN for slow
//! requests, opened circuit breakers, failed records, spent retry budgets and an
//! insecure TLS setting; INFO for phases, logins and pauses a server asked for;
//! DEBUG for stale-connection resends and connection details. No level ever
//! shows a token.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod backoff;
pub mod cli;
mod error;
mod histogram;
pub mod http;
pub mod load;
pub mod migrate;
pub mod mock;
pub mod pool;
pub mod qtest;
pub mod queue;
pub mod redact;
pub mod signals;
pub mod zephyr;

pub use error::{
    BoxError, DecodeError, Error, Exchange, PoolTimeout, RequestContext, RequestError, Result,
    StatusError, TransportKind,
};
pub use pool::{
    CloseReason, Event, EventHandler, Lease, Origin, OriginPool, OriginSnapshot, Pool, PoolBuilder,
    PoolConfig, Reply, Snapshot, TlsOptions,
};
