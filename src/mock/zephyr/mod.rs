//! The Zephyr Scale Cloud v2 mock: read-only, seeded data.

pub(crate) mod api;
pub mod attachments;
pub mod data;
pub(crate) mod files;
pub(crate) mod generate;
mod mutate;
mod render;
