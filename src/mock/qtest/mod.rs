//! The qTest Manager v3 mock: configuration, created state, journal and routes.

pub(crate) mod api;
mod body;
pub mod config;
mod design;
mod execution;
pub(crate) mod persist;
mod render;
mod search;
pub mod state;
pub(crate) mod write;
