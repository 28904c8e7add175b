//! Embedded mock servers of the Zephyr Scale Cloud v2 and qTest Manager v3 APIs.

pub mod server;

pub use server::{
    ConnContext, Handler, HttpServer, Reply, Request, Response, ServerOptions, ServerStats,
    StatsSnapshot,
};
