//! Alert thresholds over the pool's metrics: slow lease waits, a saturated
//! pool, a high error rate, slow requests.
//!
//! [`evaluate`] is a pure function of two [`Snapshot`]s (the previous check's
//! and now), so it needs nothing of the pool's insides and tests can feed it
//! made-up numbers. [`AlertMonitor`] keeps the previous snapshot of a [`Pool`]
//! for you: call [`AlertMonitor::check`] at an interval (the `etlpool` binary
//! does every `--status-interval` and logs one WARN per crossed threshold).
//!
//! ```
//! use etlpool::alerts::{AlertMonitor, Thresholds};
//! # fn main() -> etlpool::Result<()> {
//! let pool = etlpool::Pool::builder().build()?;
//! let mut alerts = AlertMonitor::new(&pool, Thresholds::default());
//! // ... run the job; then, every minute:
//! for alert in alerts.check() {
//!     eprintln!("{alert}");
//! }
//! # Ok(()) }
//! ```

use std::fmt;
use std::time::Duration;

use serde::Serialize;

use crate::metrics::{OriginSnapshot, Snapshot};
use crate::pool::Pool;

/// When to alert. `None` turns a check off.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Thresholds {
    /// The 95th percentile of lease waits (over the run, checked while
    /// leases wait) above this. Defaults to 1 s.
    pub acquire_wait_p95: Option<Duration>,
    /// Connections wanted per connection allowed, `(in use + waiting) /
    /// max_connections_per_host`, above this. A job sized to its cap sits at
    /// 1.0; more means callers queue for connections. Defaults to 1.0.
    pub utilisation: Option<f64>,
    /// Failed requests (5xx answers and transport failures) per request sent
    /// since the last check, above this. Defaults to 0.05.
    pub error_rate: Option<f64>,
    /// The 95th percentile of request latency (over the run, checked while
    /// requests are sent) above this. Defaults to 5 s.
    pub slow_request_p95: Option<Duration>,
    /// Fewer requests than this since the last check say nothing about an
    /// error rate. Defaults to 20.
    pub min_requests: u64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            acquire_wait_p95: Some(Duration::from_secs(1)),
            utilisation: Some(1.0),
            error_rate: Some(0.05),
            slow_request_p95: Some(Duration::from_secs(5)),
            min_requests: 20,
        }
    }
}

/// Which threshold was crossed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AlertKind {
    /// [`Thresholds::acquire_wait_p95`].
    AcquireWait,
    /// [`Thresholds::utilisation`].
    Utilisation,
    /// [`Thresholds::error_rate`].
    ErrorRate,
    /// [`Thresholds::slow_request_p95`].
    SlowRequests,
}

impl AlertKind {
    /// The snake_case name, as serialised.
    pub fn name(self) -> &'static str {
        match self {
            AlertKind::AcquireWait => "acquire_wait",
            AlertKind::Utilisation => "utilisation",
            AlertKind::ErrorRate => "error_rate",
            AlertKind::SlowRequests => "slow_requests",
        }
    }
}

/// A crossed threshold on one origin.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Alert {
    /// What was crossed.
    pub kind: AlertKind,
    /// `scheme://host[:port]`.
    pub origin: String,
    /// The measured value (seconds for waits and latencies, a ratio otherwise).
    pub value: f64,
    /// The threshold, in the same unit.
    pub threshold: f64,
}

impl fmt::Display for Alert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (v, t) = (self.value, self.threshold);
        match self.kind {
            AlertKind::AcquireWait => write!(
                f,
                "{}: lease waits p95 {v:.2} s above {t:.2} s (raise --workers' cap or \
                 max_connections_per_host, or lower the workers)",
                self.origin
            ),
            AlertKind::Utilisation => write!(
                f,
                "{}: {:.0}% of the connection cap wanted (above {:.0}%): callers are queueing \
                 for connections",
                self.origin,
                v * 100.0,
                t * 100.0
            ),
            AlertKind::ErrorRate => write!(
                f,
                "{}: {:.1}% of requests failed since the last check (above {:.1}%)",
                self.origin,
                v * 100.0,
                t * 100.0
            ),
            AlertKind::SlowRequests => write!(
                f,
                "{}: request latency p95 {v:.2} s above {t:.2} s",
                self.origin
            ),
        }
    }
}

/// The thresholds `now` crosses, per origin. `previous` (the last check's
/// snapshot, `None` at the first) turns counters into rates; `capacity` is the
/// pool's `max_connections_per_host`.
pub fn evaluate(
    previous: Option<&Snapshot>,
    now: &Snapshot,
    capacity: usize,
    t: &Thresholds,
) -> Vec<Alert> {
    let mut alerts = Vec::new();
    for (origin, o) in &now.origins {
        let before = previous.map(|p| p.origin(origin)).unwrap_or_default();
        let mut raise = |kind, value: f64, threshold: f64| {
            if value > threshold {
                alerts.push(Alert {
                    kind,
                    origin: origin.clone(),
                    value,
                    threshold,
                });
            }
        };
        if let Some(limit) = t.acquire_wait_p95
            && o.acquire_wait.count > before.acquire_wait.count
        {
            let p95 = o.acquire_wait.p95_us as f64 / 1e6;
            raise(AlertKind::AcquireWait, p95, limit.as_secs_f64());
        }
        if let Some(limit) = t.utilisation {
            let wanted = (o.in_use + o.waiting) as f64 / capacity.max(1) as f64;
            raise(AlertKind::Utilisation, wanted, limit);
        }
        if let Some(limit) = t.error_rate {
            // Attempts: requests sent, and those that failed before any
            // was (a refused connection sends nothing).
            let attempts = (o.requests_sent + unsent(o))
                .saturating_sub(before.requests_sent + unsent(&before));
            if attempts >= t.min_requests.max(1) {
                let failed = failed(o).saturating_sub(failed(&before));
                let rate = (failed as f64 / attempts as f64).min(1.0);
                raise(AlertKind::ErrorRate, rate, limit);
            }
        }
        if let Some(limit) = t.slow_request_p95
            && o.request_latency.count > before.request_latency.count
        {
            let p95 = o.request_latency.p95_us as f64 / 1e6;
            raise(AlertKind::SlowRequests, p95, limit.as_secs_f64());
        }
    }
    alerts
}

/// 5xx answers and transport failures: what says the service is unwell (a
/// 404 of a lookup doesn't).
fn failed(o: &OriginSnapshot) -> u64 {
    failures_of(o, &["dns", "connect", "tls", "timeout", "io", "protocol"])
        + o.responses.get("5xx").copied().unwrap_or(0)
}

/// Attempts that failed before a request was sent.
fn unsent(o: &OriginSnapshot) -> u64 {
    failures_of(o, &["dns", "connect", "tls"])
}

fn failures_of(o: &OriginSnapshot, kinds: &[&str]) -> u64 {
    kinds.iter().filter_map(|k| o.failures.get(*k)).sum()
}

/// Checks a pool's metrics against [`Thresholds`], remembering the previous
/// check's snapshot so error rates are per interval.
#[derive(Debug)]
pub struct AlertMonitor {
    pool: Pool,
    thresholds: Thresholds,
    previous: Option<Snapshot>,
}

impl AlertMonitor {
    /// Watches `pool`.
    pub fn new(pool: &Pool, thresholds: Thresholds) -> AlertMonitor {
        AlertMonitor {
            pool: pool.clone(),
            thresholds,
            previous: None,
        }
    }

    /// The thresholds crossed now (rates since the last call).
    pub fn check(&mut self) -> Vec<Alert> {
        let now = self.pool.metrics();
        let capacity = self.pool.config().max_connections_per_host;
        let alerts = evaluate(self.previous.as_ref(), &now, capacity, &self.thresholds);
        self.previous = Some(now);
        alerts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(origin: &str, edit: impl FnOnce(&mut OriginSnapshot)) -> Snapshot {
        let mut o = OriginSnapshot::default();
        edit(&mut o);
        let mut s = Snapshot::default();
        s.origins.insert(origin.to_string(), o);
        s
    }

    #[test]
    fn error_rates_are_per_interval_and_need_enough_requests() {
        let t = Thresholds::default();
        let a = snapshot("http://q", |o| {
            o.requests_sent = 100;
            o.responses.insert("5xx".into(), 50);
        });
        let b = snapshot("http://q", |o| {
            o.requests_sent = 200;
            o.responses.insert("5xx".into(), 51);
        });
        assert_eq!(
            evaluate(Some(&a), &b, 8, &t),
            vec![],
            "1% since the last check"
        );
        let alerts = evaluate(None, &a, 8, &t);
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].kind, AlertKind::ErrorRate);
        assert!((alerts[0].value - 0.5).abs() < 1e-9);
        let few = snapshot("http://q", |o| {
            o.requests_sent = 5;
            o.failures.insert("connect".into(), 5);
        });
        assert_eq!(evaluate(None, &few, 8, &t), vec![]);
        // Refused connections send nothing: they are attempts, not 300 %.
        let refused = snapshot("http://q", |o| {
            o.requests_sent = 10;
            o.failures.insert("connect".into(), 30);
        });
        let alerts = evaluate(None, &refused, 8, &t);
        assert_eq!(alerts.len(), 1);
        assert!((alerts[0].value - 0.75).abs() < 1e-9, "{alerts:?}");
    }

    #[test]
    fn queueing_waits_and_latency_alert_once_each() {
        let s = snapshot("http://z", |o| {
            o.in_use = 8;
            o.waiting = 4;
            o.acquire_wait.count = 3;
            o.acquire_wait.p95_us = 2_000_000;
            o.request_latency.count = 10;
            o.request_latency.p95_us = 6_000_000;
        });
        let kinds: Vec<_> = evaluate(None, &s, 8, &Thresholds::default())
            .into_iter()
            .map(|a| a.kind)
            .collect();
        assert_eq!(
            kinds,
            [
                AlertKind::AcquireWait,
                AlertKind::Utilisation,
                AlertKind::SlowRequests
            ]
        );
        // Nothing new waited or was sent: old percentiles don't alert again.
        let off = Thresholds {
            utilisation: None,
            ..Thresholds::default()
        };
        assert_eq!(evaluate(Some(&s), &s, 8, &off), vec![]);
    }
}
