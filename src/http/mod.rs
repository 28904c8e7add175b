//! Resilience on top of a [`Lease`](crate::Lease): [`ApiClient`], the one way
//! the Zephyr and qTest clients talk HTTP, with timeouts, retries that never
//! repeat a write blindly, `Retry-After` and backoff with jitter, and the
//! origin's [policies](crate::policy) (retry budget, rate limiter, circuit
//! breaker), which every client of one origin shares.
//!
//! | Setting | Default |
//! |---|---|
//! | `connect_timeout` (pool) | 10 s |
//! | `request_timeout`, one attempt | 60 s |
//! | `total_timeout`, a call with its retries and waits | 5 min |
//! | retries | 4, exponential backoff with full jitter from 200 ms to 10 s |
//! | `Retry-After` cap | 60 s |
//! | retry budget | 20 % of the origin's requests over 10 s, at least 3 retries/s |
//! | circuit breaker | opens after 5 consecutive failures, probes after 30 s |
//! | rate limit | none on the client; the server's 429 and `X-RateLimit-Remaining: 0` pause the origin |
//! | slow-request warning | 5 s |

mod call;
mod client;
mod request;
mod retry;

pub use client::{ApiClient, ApiClientBuilder};
pub use request::{ApiRequest, Auth, AuthProvider};
pub use retry::{RetryPolicy, parse_retry_after};
