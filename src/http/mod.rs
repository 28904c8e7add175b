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
//! | circuit breaker | opens when >= 50 % of >= 20 calls (first attempts) in 10 s failed, probes after 30 s |
//! | rate limit | none on the client; paced to the server's announced budget (`X-RateLimit-*`, qTest's `x-ratelimit-remaining-minute`); a 429 pauses the origin for its `Retry-After` or a floor of 1 s that doubles |
//! | 429 retries | for as long as `total_timeout` allows |
//! | monthly budget | stop the origin under 1,000 requests left (`x-ratelimit-remaining-month`) |
//! | slow-request warning | 5 s |
//! | failover origins | none; an unreachable origin is probed again after 30 s |
//! | coalescing of identical GETs | off |
//! | redirects followed by a streamed download | 5 ([`ApiClientBuilder::max_redirects`]); JSON calls and uploads follow none |
//!
//! # Failover
//!
//! One service behind several base URLs: [`ApiClientBuilder::failover`] adds
//! one after the primary (the URL the client was built for), in order of
//! preference. Each origin keeps its own pool share, policies and metrics;
//! a call goes to the first origin that can take it:
//!
//! * an origin is passed over while its circuit breaker is open, and for
//!   [`failover_recheck`](ApiClientBuilder::failover_recheck) (30 s) after a
//!   call could send nothing to it (connect, DNS or TLS failure);
//! * a call that ends on an origin without having sent anything (those
//!   failures, no connection free, the breaker refusing it) goes on to the
//!   next origin, whatever its method: that can't duplicate anything;
//! * a read (GET, HEAD, PUT, DELETE, OPTIONS, or a request marked
//!   [`ApiRequest::idempotent`]) also goes on after a transport error or a
//!   502/503/504 answer, once the origin's own retries are spent; a write
//!   that was sent **never** goes to another origin, `Idempotency-Key` or
//!   not (its outcome is unknown, and another origin need not share the key
//!   store): its error comes back as it would without failover;
//! * an origin passed over comes back through a probe: when its breaker is
//!   due for its half-open probe, or `failover_recheck` after it was found
//!   unreachable, the next call first sends one `GET <base URL><probe path>`
//!   there ([`failover_probe`](ApiClientBuilder::failover_probe), the base URL
//!   itself by default) through that origin's breaker, so one probe is out at
//!   a time (a call that finds one out goes on to the next origin at once,
//!   without waiting for its verdict); an answer below 500 brings the origin
//!   back, and the call goes to it (a probe that could not go out, for want
//!   of credentials or time, leaves it passed over for the next call to
//!   probe).
//!
//! A call's path is appended to every base URL unchanged: the base URLs must
//! serve the same API (their own paths may differ). A `next` link under one
//! base URL is that path under all of them; a link elsewhere on one of the
//! origins stays on it. The whole call, every origin it visits included, ends
//! by one `total_timeout`; an origin (or its probe) that uses it up ends the
//! call with that origin's error. When every origin failed, the error is
//! [`Error::AllOriginsFailed`](crate::Error::AllOriginsFailed): each origin
//! with why it could not serve, the last origin's error as its source.
//! [`ApiClient::base_url`], [`ApiClient::origin`] and [`ApiClient::policies`]
//! are the primary's; [`ApiClient::origins`] lists them all, and
//! [`ApiClient::breaker_open`] is true only when every origin's breaker is.
//! Each origin's metrics count the calls it served (`requests_sent`,
//! `responses`) and `failed_over`, `failover_served`, `failover_probes`,
//! `failover_recovered`.
//!
//! # Coalescing
//!
//! With [`ApiClientBuilder::coalesce_gets`] (off by default), GETs of one
//! client (and its clones) that are in flight at the same time with the same
//! URL (origin, path, query), headers and credentials share one request:
//! the first sends it, the others wait for it and each get a copy of its
//! answer, or of its error. Other methods, and GETs with a body, never
//! share. An answer is never shared across credentials: the `Authorization`
//! value is part of what makes two calls identical. Nothing is cached; a call
//! after the answer sends its own. A waiting call gives up at its own
//! deadline ([`CallWait::SharedRequest`](crate::CallWait::SharedRequest));
//! a panic of the sending call reaches the waiting ones as an error. Counted
//! per origin as `coalesced_requests` (the calls that waited instead of
//! sending).

mod call;
mod client;
mod coalesce;
mod failover;
mod layers;
mod request;
mod retry;

pub use client::{ApiClient, ApiClientBuilder, DEFAULT_MAX_REDIRECTS, Streamed};
pub use request::{ApiRequest, Auth, AuthProvider};
pub use retry::{RetryPolicy, parse_retry_after};
