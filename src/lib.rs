//! etlpool: a blocking HTTP connection pool, a resilience layer and a work queue
//! for long ETL jobs against rate-limited SaaS APIs.
//!
//! (Crate documentation is completed as the modules land.)
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod mock;
pub mod queue;
pub mod signals;
