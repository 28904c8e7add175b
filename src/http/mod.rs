//! Resilience on top of a [`Lease`](crate::Lease): timeouts, retries that never
//! repeat a write blindly, `Retry-After`, backoff with jitter and a retry budget,
//! a rate limiter and a circuit breaker per origin, and [`ApiClient`], the one way
//! the Zephyr and qTest clients talk HTTP.
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

mod breaker;
mod client;
mod limiter;
mod request;
mod retry;

pub use breaker::{Breaker, BreakerPolicy, CircuitBreaker, Permit};
pub use client::{ApiClient, ApiClientBuilder};
pub use limiter::{Denied, Limiter, RateLimit, TokenBucket};
pub use request::{ApiRequest, Auth, AuthProvider};
pub use retry::{RetryPolicy, parse_retry_after};
