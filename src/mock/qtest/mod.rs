//! The qTest Manager v3 mock: configuration, created state, journal and routes.

pub(crate) mod api;
mod body;
pub mod config;
mod design;
mod execution;
pub(crate) mod login;
pub(crate) mod persist;
pub mod quota;
mod render;
mod search;
pub(crate) mod seed;
pub mod state;
pub(crate) mod write;
