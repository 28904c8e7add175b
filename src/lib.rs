//! etlpool: a blocking HTTP connection pool, a resilience layer and a work queue
//! for long ETL jobs against rate-limited SaaS APIs.
//!
//! (Crate documentation is completed as the modules land.)
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod backoff;
pub mod cli;
mod error;
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
