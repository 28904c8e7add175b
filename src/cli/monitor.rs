//! Watching a running command: a progress bar on a terminal or a progress
//! line per interval in a log, alert checks, `/metrics` and `/health`
//! (`--metrics-addr`), and the metrics file at the end (`--metrics`).

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use clap::Args;
use crossbeam_channel::{RecvTimeoutError, Sender};
use parking_lot::Mutex;
use serde_json::json;

use super::error::CliError;
use super::job::{Job, rfc3339};
use super::output::OutputPath;
use super::serve::{Handler, Server};
use crate::alerts::{AlertMonitor, Thresholds};
use crate::metrics::Snapshot;
use crate::migrate::{ProgressSnapshot, RunProgress};
use crate::policy::BreakerState;
use crate::pool::Pool;

/// The default of `--status-interval`.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);

/// Options for watching a command while it runs (`migrate`, `verify`, `load`).
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Monitoring")]
pub struct OpsArgs {
    /// Serve /metrics (Prometheus text: the pool's and the job's metrics) and
    /// /health (JSON per origin; 503 while a circuit breaker is open) on this
    /// address while the command runs, e.g. 127.0.0.1:9464.
    #[arg(long, value_name = "ADDR:PORT", env = "ETLPOOL_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    /// Write the same metrics text to this file at the end, atomically (for
    /// node_exporter's textfile collector); `-` is stdout.
    #[arg(long, value_name = "PATH")]
    pub metrics: Option<PathBuf>,
    /// How often to log a progress line (when stderr is not a terminal) and
    /// to check the alert thresholds, e.g. 30s or 5m. Defaults to 30s, or
    /// `[run] status_interval` of the config file.
    #[arg(long, value_name = "DURATION", env = "ETLPOOL_STATUS_INTERVAL")]
    pub status_interval: Option<String>,
}

impl OpsArgs {
    /// The metrics file, checked before any work.
    pub(super) fn metrics_output(&self) -> Result<Option<OutputPath>, CliError> {
        let Some(path) = &self.metrics else {
            return Ok(None);
        };
        let out = OutputPath::new(path);
        out.check("--metrics")?;
        Ok(Some(out))
    }

    /// The flag (or its variable), else the config file's, else 30 s.
    pub(super) fn interval(&self, from_file: Option<Duration>) -> Result<Duration, CliError> {
        match &self.status_interval {
            Some(v) => Ok(super::config::positive_duration("--status-interval", v)?),
            None => Ok(from_file.unwrap_or(DEFAULT_INTERVAL)),
        }
    }
}

/// What a monitor watches and how.
pub(super) struct Watch {
    pub(super) pool: Pool,
    pub(super) job: Arc<Job>,
    pub(super) progress: Option<RunProgress>,
    pub(super) interval: Duration,
    pub(super) thresholds: Thresholds,
    /// Draw a bar (or log lines); off with `-q`.
    pub(super) show_progress: bool,
}

/// A running monitor; [`Monitor::finish`] stops it and writes the metrics file.
pub(super) struct Monitor {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
    server: Option<Server>,
    pool: Pool,
    job: Arc<Job>,
    metrics: Option<OutputPath>,
}

impl Monitor {
    /// Starts watching; binds `--metrics-addr` first (a taken port is a usage
    /// error, before any work).
    pub(super) fn start(ops: &OpsArgs, watch: Watch) -> Result<Monitor, CliError> {
        let metrics = ops.metrics_output()?;
        let failures = Arc::new(FailureWatch::default());
        let server = match ops.metrics_addr {
            Some(addr) => {
                let handler = handler(&watch, &failures);
                let server = Server::start(addr, handler).map_err(|e| {
                    CliError::Usage(format!("--metrics-addr {addr}: cannot listen there: {e}"))
                })?;
                log::info!("serving /metrics and /health on http://{}", server.addr());
                Some(server)
            }
            None => None,
        };
        let (stop, stopped) = crossbeam_channel::bounded::<()>(0);
        let (pool, job) = (watch.pool.clone(), watch.job.clone());
        let thread = std::thread::Builder::new()
            .name("etlpool-monitor".into())
            .spawn(move || watch_loop(watch, &failures, &stopped))
            .map_err(|e| CliError::io("starting the monitor thread", e))?;
        Ok(Monitor {
            stop: Some(stop),
            thread: Some(thread),
            server,
            pool,
            job,
            metrics,
        })
    }

    /// Stops watching, then writes the metrics file with the job's end.
    pub(super) fn finish(mut self, code: super::ExitCode) -> Result<(), CliError> {
        self.job.end(code);
        self.stop_thread();
        drop(self.server.take());
        if let Some(out) = &self.metrics {
            out.write(self.job.prometheus(&self.pool.metrics()).as_bytes())?;
        }
        Ok(())
    }

    fn stop_thread(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.stop_thread();
    }
}

/// Ticks until stopped: the bar (or a line per interval), failure times for
/// `/health`, alerts per interval.
fn watch_loop(watch: Watch, failures: &FailureWatch, stopped: &crossbeam_channel::Receiver<()>) {
    let bar = (watch.show_progress && watch.progress.is_some() && bar_wanted()).then(new_bar);
    super::logging::set_bar(bar.clone());
    let tick = if bar.is_some() {
        Duration::from_millis(200)
    } else {
        Duration::from_secs(1).min(watch.interval)
    };
    let mut alerts = AlertMonitor::new(&watch.pool, watch.thresholds);
    // `None`: an interval too long for the clock, so never.
    let after_interval = || Instant::now().checked_add(watch.interval);
    let mut next_status = after_interval();
    while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(tick) {
        failures.observe(&watch.pool.metrics());
        let progress = watch.progress.as_ref().map(RunProgress::snapshot);
        if let (Some(bar), Some(p)) = (&bar, &progress) {
            draw(bar, p);
        }
        if next_status.is_some_and(|at| Instant::now() >= at) {
            next_status = after_interval();
            if let (None, Some(p), true) = (&bar, &progress, watch.show_progress) {
                p.log();
            }
            warn_alerts(&mut alerts);
        }
    }
    // The last, shorter interval is checked too: a short job gets its say.
    warn_alerts(&mut alerts);
    super::logging::set_bar(None);
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
}

/// One WARN per crossed threshold.
fn warn_alerts(alerts: &mut AlertMonitor) {
    for alert in alerts.check() {
        log::warn!(
            target: "etlpool::alerts",
            kind = alert.kind.name(),
            origin = alert.origin.as_str(),
            value = alert.value,
            threshold = alert.threshold;
            "{alert}"
        );
    }
}

/// A bar only where someone watches: stderr a terminal, logs in text.
fn bar_wanted() -> bool {
    std::io::stderr().is_terminal() && !super::logging::json()
}

fn new_bar() -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::with_draw_target(
        None,
        indicatif::ProgressDrawTarget::stderr_with_hz(5),
    );
    // The template is a literal known to parse; fall back to the default.
    let style = indicatif::ProgressStyle::with_template(
        "{prefix:>13} [{elapsed_precise}] {wide_bar} {pos}/{len} {msg}",
    )
    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    bar.set_style(style);
    bar
}

fn draw(bar: &indicatif::ProgressBar, p: &ProgressSnapshot) {
    bar.set_prefix(p.phase.clone().unwrap_or_default());
    match p.total {
        Some(total) => bar.set_length(total),
        None => bar.unset_length(),
    }
    bar.set_position(p.done);
    let mut msg = format!("{}/s", p.rate_per_sec);
    if let Some(eta) = p.eta {
        msg.push_str(&format!(
            ", ETA {}",
            humantime::format_duration(crate::migrate::whole_secs(eta))
        ));
    }
    if p.failed() > 0 {
        msg.push_str(&format!(", {} failed (see the report)", p.failed()));
    }
    bar.set_message(msg);
}

fn handler(watch: &Watch, failures: &Arc<FailureWatch>) -> Handler {
    let (pool, job, failures) = (watch.pool.clone(), watch.job.clone(), failures.clone());
    let checked = pool.clone();
    super::serve::metrics_and_health(
        move || job.prometheus(&pool.metrics()),
        move || health(&checked, &failures),
    )
}

/// `/health`: per origin, connections in use, idle and waited for, the
/// circuit breaker's state, the last failure seen and the last cleanup; 503
/// while a breaker is open. Built from `pool.metrics()` and each origin's
/// breaker; the one place to change when the pool offers a health view of
/// its own.
pub(super) fn health(pool: &Pool, failures: &FailureWatch) -> (u16, String) {
    let snapshot = pool.metrics();
    failures.observe(&snapshot);
    let last_cleanup = snapshot
        .last_cleanup_unix_ms
        .map(|ms| rfc3339(SystemTime::UNIX_EPOCH + Duration::from_millis(ms)));
    let mut any_open = false;
    let mut origins = serde_json::Map::new();
    for (origin, o) in &snapshot.origins {
        // Only looked at: asking for the policies would make them, with the
        // pool's defaults, before the origin's first client sets its own.
        let breaker = match pool.origin(origin).map(|o| {
            o.policies_if_made()
                .map_or(BreakerState::Closed, |p| p.breaker().state())
        }) {
            Ok(BreakerState::Closed) => "closed",
            Ok(BreakerState::HalfOpen) => "half_open",
            Ok(BreakerState::Open { .. }) => {
                any_open = true;
                "open"
            }
            Err(_) => "unknown",
        };
        let last_error = failures
            .last(origin)
            .map(|(kind, at)| json!({ "kind": kind, "at": rfc3339(at) }));
        origins.insert(
            origin.clone(),
            json!({
                "in_use": o.in_use,
                "idle": o.idle,
                "waiting": o.waiting,
                "open_connections": o.open_connections,
                "max_connections": pool.config().max_connections_per_host,
                "breaker": breaker,
                "last_error": last_error,
                "last_cleanup": last_cleanup,
            }),
        );
    }
    let status = if any_open { "unavailable" } else { "ok" };
    let body = json!({ "status": status, "origins": origins, "last_cleanup": last_cleanup });
    (if any_open { 503 } else { 200 }, body.to_string() + "\n")
}

/// The last kind of failure each origin had, and when, as seen by comparing
/// snapshots (the pool counts failures but keeps no last error).
#[derive(Default)]
pub(super) struct FailureWatch {
    /// Guards the counts last seen and the last failure per origin.
    seen: Mutex<BTreeMap<String, Seen>>,
}

#[derive(Default)]
struct Seen {
    counts: BTreeMap<String, u64>,
    last: Option<(String, SystemTime)>,
}

impl FailureWatch {
    pub(super) fn observe(&self, snapshot: &Snapshot) {
        let now = SystemTime::now();
        let mut seen = self.seen.lock();
        for (origin, o) in &snapshot.origins {
            let entry = seen.entry(origin.clone()).or_default();
            let server_errors = o.responses.get("5xx").copied().unwrap_or(0);
            let counts = o
                .failures
                .iter()
                .map(|(k, v)| (k.clone(), *v))
                .chain([("5xx response".to_string(), server_errors)]);
            for (kind, n) in counts {
                let before = entry.counts.insert(kind.clone(), n).unwrap_or(0);
                if n > before {
                    entry.last = Some((kind, now));
                }
            }
        }
    }

    fn last(&self, origin: &str) -> Option<(String, SystemTime)> {
        self.seen.lock().get(origin).and_then(|s| s.last.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::ApiClient;
    use crate::mock::server::{Answer, HttpServer, Response, ServerOptions};
    use crate::policy::RateLimit;

    #[test]
    fn health_reads_an_origins_breaker_without_giving_it_policies() {
        let server = HttpServer::start(
            ServerOptions::default(),
            Arc::new(|_, _: &_| {
                Answer::Response(Response::bytes(200, "text/plain", b"ok".to_vec()))
            }),
        )
        .unwrap();
        let pool = Pool::builder().build().unwrap();
        // The origin is in the registry (a plain request, or a client half
        // built) but has no policies yet when /health is scraped.
        assert_eq!(pool.fetch(&server.url()).unwrap().status(), 200);
        let (status, body) = health(&pool, &FailureWatch::default());
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("\"breaker\":\"closed\""), "{body}");
        // So the client built next still sets them.
        let limit = RateLimit {
            per_second: Some(10.0),
            ..RateLimit::default()
        };
        let client = ApiClient::builder(&pool, &server.url())
            .rate_limit(limit)
            .build();
        assert!(client.is_ok(), "{:?}", client.err());
    }
}
