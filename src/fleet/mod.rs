//! Many projects over many processes and machines.
//!
//! - [`projects`]: the list of projects (`--projects projects.csv`) and its
//!   shards (`--shard I/N`, for Kubernetes Indexed Jobs), no Redis needed.
//! - `redis` (feature `redis`): the projects in a Redis Stream that any
//!   number of workers claim, heartbeat and acknowledge, reclaimed after a
//!   lease when a worker dies; each project's journal in a Redis hash and
//!   its lock in a Redis key with an expiry, so a project resumed on another
//!   machine finds what was done.

pub mod projects;
#[cfg(feature = "redis")]
pub mod redis;

pub use projects::{Project, ProjectList, Shard};
