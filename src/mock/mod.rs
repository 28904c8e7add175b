//! Embedded mock servers of the Zephyr Scale Cloud v2 and qTest Manager v3 APIs.

mod auth;
pub mod cli;
pub mod faults;
mod gate;
pub mod options;
mod paging;
pub mod qtest;
mod ratelimit;
pub mod server;
mod servers;
mod time;
pub mod zephyr;

pub use faults::{FailPoint, FaultConfig, Faults};
pub use options::{DataSizes, MockOptions};
pub use server::{
    ConnContext, Handler, HttpServer, Reply, Request, Response, ServerOptions, ServerStats,
    StatsSnapshot,
};
pub use servers::{MockFaults, MockServers};
