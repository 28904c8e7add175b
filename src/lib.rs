//! etlpool: a blocking HTTP connection pool, per-origin resilience policies and
//! a work queue for long ETL jobs against rate-limited SaaS APIs, and the job
//! they were built for: migrating a Zephyr Scale project to qTest.
//!
//! ```
//! # use std::io::{BufRead, BufReader, Write};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # // A keep-alive server on 127.0.0.1 answering every request with "ok".
//! # let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
//! # let url = format!("http://{}", listener.local_addr()?);
//! # std::thread::spawn(move || {
//! #     for stream in listener.incoming().flatten() {
//! #         let mut reader = BufReader::new(stream);
//! #         let mut line = String::new();
//! #         while reader.read_line(&mut line).map_or(false, |n| n > 0) {
//! #             if line == "\r\n" {
//! #                 let _ = reader.get_mut().write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
//! #             }
//! #             line.clear();
//! #         }
//! #     }
//! # });
//! let pool = etlpool::Pool::builder().max_connections_per_host(4).build()?;
//! for _ in 0..3 {
//!     assert_eq!(pool.fetch(&url)?.status(), 200);
//! }
//! let m = pool.metrics().origin(&url);
//! assert_eq!((m.connections_created, m.connections_reused), (1, 2));
//! # Ok(()) }
//! ```
//!
//! # Layers
//!
//! Bottom up; each uses only the ones above it in this table, never one below.
//!
//! | Layer | Modules | Feature |
//! |---|---|---|
//! | base | [`Error`] and [`error_chain`], [`CancelToken`], [`metrics`], [`redact`], [`backoff`] | core |
//! | policies | [`policy`]: rate [`Limiter`](policy::Limiter), circuit [`Breaker`](policy::Breaker), [`RetryBudget`](policy::RetryBudget) per origin | core |
//! | connections | [`pool`]: [`Pool`], [`Lease`], TLS, resolver, cleaner; the origin registry holds each origin's sockets and policies | core |
//! | calls | [`http`]: [`ApiClient`](http::ApiClient), retries, timeouts, credentials, failover between origins, coalescing of GETs | core |
//! | work | [`queue`]: [`WorkQueue`](queue::WorkQueue); [`signals`] wires SIGINT/SIGTERM to a [`CancelToken`] | core |
//! | watch | [`alerts`]: thresholds over a metrics [`Snapshot`], [`AlertMonitor`](alerts::AlertMonitor) | core |
//! | APIs | `zephyr`, `qtest`: typed clients and models | `migrate` |
//! | job | `migrate`: mapping, transform, journal, report, the run and `verify` | `migrate` |
//! | fleet | `fleet`: project lists and shards; with `redis`, the project queue, journals and locks in Redis, and each origin's rate budget and breaker shared through it (`fleet::redis::budget`) | `migrate`, `redis` |
//! | mocks | `mock`: the embedded mock servers and their HTTP/1.1 core | `mock` |
//! | app | `cli`, `load`: the `etlpool` command line | `cli` |
//!
//! The core builds with `default-features = false`. The default feature `cli`
//! turns on `migrate` and `mock` too; `redis` (not a default) adds the Redis
//! client for `etlpool worker`, `status`, `journal` and `--redis`.
//!
//! **One origin, one set of policies.** The rate limiter, circuit breaker and
//! retry budget of an origin (scheme, host, port) live in the pool's registry
//! next to its sockets, so every [`ApiClient`](http::ApiClient) of that origin,
//! a login's included, shares them: a 429 seen by one pauses all, an open
//! breaker stops all. Give an origin your own with [`Pool::set_policies`].
//!
//! # Logging
//!
//! The `log` crate: ERROR for what stops a run; WARN for slow requests, opened
//! circuit breakers, failed records, spent retry budgets and an insecure TLS
//! setting; INFO for phases, logins and pauses a server asked for (and, under
//! the target `etlpool::progress`, progress lines); DEBUG for every request
//! (method, path, status, latency, attempt, also as key-value fields) and
//! every retry with its reason. No level ever shows a token.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod alerts;
pub mod backoff;
mod cancel;
mod error;
mod histogram;
pub mod http;
pub mod metrics;
pub mod policy;
pub mod pool;
pub mod queue;
pub mod redact;
pub mod signals;

#[cfg(feature = "migrate")]
mod de;
#[cfg(feature = "migrate")]
pub mod fleet;
#[cfg(feature = "migrate")]
pub mod migrate;
#[cfg(feature = "migrate")]
pub mod qtest;
#[cfg(feature = "migrate")]
pub mod zephyr;

#[cfg(feature = "mock")]
pub mod mock;

#[cfg(feature = "cli")]
pub mod cli;
#[cfg(feature = "cli")]
pub mod load;

pub use cancel::CancelToken;
pub use error::{
    BoxError, CallWait, DecodeError, Error, Exchange, FailoverError, PoolTimeout, RedirectError,
    RedirectRefusal, RequestContext, RequestError, Result, StatusError, TransportKind, error_chain,
};
pub use metrics::{
    BreakerTransition, CloseReason, Event, EventHandler, FailureKind, OriginSnapshot, RetryReason,
    Snapshot,
};
pub use policy::{OriginPolicies, PolicySettings};
pub use pool::{Lease, Origin, OriginPool, Pool, PoolBuilder, PoolConfig, Reply, TlsOptions};
