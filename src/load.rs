//! A load generator through the pool (`etlpool load`), also used by the benches.
//!
//! Threads share one request budget and each sends until it is spent, through
//! the pool or, with [`LoadMode::Unpooled`], through a new agent (so a new
//! connection) per request. Without a URL it starts a keep-alive server on
//! 127.0.0.1 in-process and measures against it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::Serialize;

use crate::cancel::CancelToken;
use crate::error::{Error, Result};
use crate::histogram::{Histogram, HistogramData};
use crate::http::{ApiClient, ApiRequest, Auth};
use crate::metrics::{HistogramSnapshot, Snapshot};
use crate::mock::server::{Answer, ConnContext, HttpServer, Request, Response, ServerOptions};
use crate::policy::RateLimit;
use crate::pool::{Pool, PoolConfig};

/// How requests get a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LoadMode {
    /// Lease from the pool: connections are reused.
    Pooled,
    /// A new agent per request: a new connection (and full TLS handshake) each
    /// time, as a client without a pool does.
    Unpooled,
    /// Through an [`ApiClient`]: the origin's policies apply (its rate
    /// limit, shared or not, the server's pauses, the breaker, retries).
    Client,
}

/// What to run.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Target URL; `None` starts an in-process keep-alive server.
    pub url: Option<String>,
    /// Worker threads.
    pub threads: usize,
    /// Requests in total, shared by the threads.
    pub requests: u64,
    /// Pooled or not.
    pub mode: LoadMode,
    /// The pool's settings; `max_connections_per_host` is raised to `threads`.
    pub pool: PoolConfig,
    /// A bearer token to send, if the target needs one.
    pub bearer: Option<String>,
    /// Stop sending after this long, even if requests are left.
    pub duration: Option<Duration>,
    /// The client-side rate limit of [`LoadMode::Client`] (the origin's
    /// own policies, given with [`Pool::set_policies`], keep to it too).
    pub rate_limit: Option<RateLimit>,
}

/// What happened.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct LoadReport {
    /// The URL requested (redacted).
    pub url: String,
    /// Pooled or not.
    pub mode: LoadMode,
    /// Worker threads.
    pub threads: usize,
    /// Requests sent.
    pub requests: u64,
    /// Requests that failed (transport error or a status >= 400).
    pub errors: u64,
    /// The first failure, if any.
    pub first_error: Option<String>,
    /// Wall time, in seconds.
    pub elapsed_secs: f64,
    /// Requests per second.
    pub requests_per_sec: f64,
    /// Per-request latency measured by the client, in microseconds.
    pub latency: HistogramSnapshot,
    /// The pool's metrics at the end.
    pub metrics: Snapshot,
}

/// Runs the load on a pool of its own and reports.
pub fn run(opts: &LoadOptions) -> Result<LoadReport> {
    run_on(&Pool::new(pool_config(opts))?, opts)
}

/// The pool settings a load needs: `opts.pool` with a connection per thread.
pub fn pool_config(opts: &LoadOptions) -> PoolConfig {
    let mut config = opts.pool.clone();
    config.max_connections_per_host = config.max_connections_per_host.max(opts.threads);
    config
}

/// Runs the load on `pool` (made with [`pool_config`]), so a caller can watch
/// the pool's metrics while it runs.
pub fn run_on(pool: &Pool, opts: &LoadOptions) -> Result<LoadReport> {
    if opts.threads == 0 {
        return Err(Error::config("threads", "must be at least 1"));
    }
    // Kept alive until the load is done.
    let (url, _server) = match &opts.url {
        Some(u) => (u.clone(), None),
        None => {
            let server = local_server()?;
            (format!("{}/load", server.url()), Some(server))
        }
    };
    // Fail fast on a bad URL or TLS setup before timing anything.
    pool.origin(&url)?;

    let remaining = AtomicU64::new(opts.requests);
    let tally = Tally::default();
    let stop = CancelToken::new();
    let client = match opts.mode {
        LoadMode::Client => Some(client(pool, &url, opts, &stop)?),
        _ => None,
    };
    let (remaining, tally) = (&remaining, &tally);
    let start = Instant::now();
    std::thread::scope(|s| {
        if let Some(d) = opts.duration {
            let stop = &stop;
            s.spawn(move || {
                stop.wait_timeout(d);
                stop.cancel();
            });
        }
        let workers: Vec<_> = (0..opts.threads)
            .map(|_| {
                let sender = Sender {
                    pool,
                    url: &url,
                    opts,
                    client: client.as_ref(),
                    stop: &stop,
                };
                s.spawn(move || sender.run(remaining, tally))
            })
            .collect();
        for w in workers {
            let _ = w.join();
        }
        // Ends the timer too.
        stop.cancel();
    });
    let elapsed = start.elapsed();
    let mut latency = HistogramData::default();
    tally.latency.add_to(&mut latency);
    let done = tally.sent.load(Ordering::Relaxed);
    Ok(LoadReport {
        url: crate::redact::url(&url),
        mode: opts.mode,
        threads: opts.threads,
        requests: done,
        errors: tally.errors.load(Ordering::Relaxed),
        first_error: tally.first_error.lock().clone(),
        elapsed_secs: elapsed.as_secs_f64(),
        requests_per_sec: done as f64 / elapsed.as_secs_f64().max(1e-9),
        latency: latency.summary(),
        metrics: pool.metrics(),
    })
}

#[derive(Default)]
struct Tally {
    sent: AtomicU64,
    latency: Histogram,
    errors: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl Tally {
    fn failed(&self, message: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        self.first_error.lock().get_or_insert(message);
    }
}

/// The client of [`LoadMode::Client`]; `stop` ends its waits.
fn client(pool: &Pool, url: &str, opts: &LoadOptions, stop: &CancelToken) -> Result<ApiClient> {
    let mut builder = ApiClient::builder(pool, url).cancel_token(stop.clone());
    if let Some(token) = &opts.bearer {
        builder = builder.auth(Auth::Bearer(token.clone()));
    }
    if let Some(limit) = opts.rate_limit {
        builder = builder.rate_limit(limit);
    }
    builder.build()
}

/// One worker thread's view of the load.
#[derive(Clone, Copy)]
struct Sender<'a> {
    pool: &'a Pool,
    url: &'a str,
    opts: &'a LoadOptions,
    client: Option<&'a ApiClient>,
    stop: &'a CancelToken,
}

impl Sender<'_> {
    fn run(self, remaining: &AtomicU64, tally: &Tally) {
        let origin = match self.pool.origin(self.url) {
            Ok(o) => o,
            Err(e) => return tally.failed(e.to_string()),
        };
        let bearer = self.opts.bearer.as_deref();
        while !self.stop.is_cancelled()
            && remaining
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok()
        {
            let t = Instant::now();
            let outcome = match (self.opts.mode, self.client) {
                (LoadMode::Client, Some(client)) => {
                    client.send(&ApiRequest::get(self.url)).map(|r| r.status())
                }
                (LoadMode::Unpooled, _) => unpooled_request(self.pool, self.url, bearer),
                _ => origin
                    .lease()
                    .and_then(|l| l.send(get(self.url, bearer)?))
                    .map(|r| r.status()),
            };
            // A wait cut short at the end sent nothing.
            if matches!(outcome, Err(Error::Cancelled)) {
                break;
            }
            tally.sent.fetch_add(1, Ordering::Relaxed);
            tally.latency.record(t.elapsed());
            match outcome {
                Ok(status) if status < 400 => {}
                Ok(status) => tally.failed(format!("status {status}")),
                Err(e) => tally.failed(e.to_string()),
            }
        }
    }
}

/// `GET url`, with the bearer token if one is given.
fn get(url: &str, bearer: Option<&str>) -> Result<ureq::http::Request<()>> {
    let mut builder = ureq::http::Request::get(url);
    if let Some(token) = bearer {
        builder = builder.header("Authorization", format!("Bearer {token}"));
    }
    builder.body(()).map_err(|e| Error::InvalidUrl {
        url: crate::redact::url(url),
        reason: e.to_string(),
    })
}

fn unpooled_request(pool: &Pool, url: &str, bearer: Option<&str>) -> Result<u16> {
    let agent = pool.unpooled_agent(url)?;
    let context = || format!("GET {}", crate::redact::url(url));
    let mut response = agent
        .run(get(url, bearer)?)
        .map_err(|e| Error::io(context(), e.into_io()))?;
    response
        .body_mut()
        .read_to_vec()
        .map_err(|e| Error::io(context(), e.into_io()))?;
    Ok(response.status().as_u16())
}

/// A keep-alive server answering every request with a small body.
pub fn local_server() -> Result<HttpServer> {
    let handler = |_: Request, _: &ConnContext| {
        Answer::Response(Response::bytes(200, "text/plain", b"ok".to_vec()))
    };
    HttpServer::start(ServerOptions::default(), Arc::new(handler))
        .map_err(|e| Error::io("starting the in-process load server", e))
}

impl LoadReport {
    /// A few human-readable lines.
    pub fn summary(&self) -> String {
        let t = &self.metrics.total;
        let l = &self.latency;
        let us = |v: u64| format_us(Duration::from_micros(v));
        format!(
            "{} requests to {} on {} threads ({:?})\n\
             elapsed {:.2} s, {:.0} req/s, {} errors{}\n\
             latency p50 {}, p95 {}, p99 {}, max {}\n\
             connections created {}, reused {}, closed {}; tls full {}, resumed {}",
            self.requests,
            self.url,
            self.threads,
            self.mode,
            self.elapsed_secs,
            self.requests_per_sec,
            self.errors,
            self.first_error
                .as_deref()
                .map(|e| format!(" (first: {e})"))
                .unwrap_or_default(),
            us(l.p50_us),
            us(l.p95_us),
            us(l.p99_us),
            us(l.max_us),
            t.connections_created,
            t.connections_reused,
            t.closed_total(),
            t.tls_handshakes_full,
            t.tls_handshakes_resumed,
        )
    }
}

fn format_us(d: Duration) -> String {
    if d >= Duration::from_millis(10) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{} µs", d.as_micros())
    }
}
