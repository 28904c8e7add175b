//! What happened on the wire, counted where it happened.
//!
//! Connection counters are bumped by the transport (`transport.rs`), which ureq
//! calls only when it opens a socket or sends on one, so `connections_created`
//! is the number of TCP connects and `connections_reused` the number of requests
//! that went out on an already used socket: not checkouts. Lease counters live
//! under the host lock (`host.rs`), where they cost nothing extra.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;

use serde::{Deserialize, Serialize};

pub use crate::histogram::HistogramSnapshot;
use crate::histogram::{Histogram, HistogramData};

/// A set of labelled counters indexed by an enum.
pub(crate) trait Label: Copy + 'static {
    /// Every label, in index order.
    const ALL: &'static [Self];
    /// The index of this label in [`Label::ALL`].
    fn index(self) -> usize;
    /// The lower-case name used in snapshots and Prometheus labels.
    fn name(self) -> &'static str;
}

macro_rules! labels {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $text:literal,)+ }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name { $($(#[$vdoc])* $variant,)+ }

        impl Label for $name {
            const ALL: &'static [Self] = &[$($name::$variant,)+];
            fn index(self) -> usize { self as usize }
            fn name(self) -> &'static str { match self { $($name::$variant => $text,)+ } }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

labels! {
    /// Why a connection was closed.
    CloseReason {
        /// Idle longer than `idle_timeout`.
        Idle => "idle",
        /// Older than `max_lifetime`.
        Lifetime => "lifetime",
        /// An I/O error or timeout broke it.
        Broken => "broken",
        /// The server closed it or asked to (`Connection: close`).
        Server => "server",
        /// The caller discarded the lease.
        Discarded => "discarded",
        /// The pool shut down.
        Shutdown => "shutdown",
        /// Closed to make room under a connection cap.
        Evicted => "evicted",
        /// The HTTP client dropped it mid-exchange, e.g. a body not read to the end.
        Abandoned => "abandoned",
    }
}

labels! {
    /// How a request failed, for the `failures` counters.
    FailureKind {
        /// The host name did not resolve.
        Dns => "dns",
        /// TCP connect failed.
        Connect => "connect",
        /// TLS handshake failed.
        Tls => "tls",
        /// A timeout fired.
        Timeout => "timeout",
        /// The connection broke mid-exchange.
        Io => "io",
        /// The server sent invalid HTTP.
        Protocol => "protocol",
        /// No connection became free in time.
        PoolTimeout => "pool_timeout",
        /// The circuit breaker refused the call.
        BreakerOpen => "breaker_open",
        /// A body could not be decoded.
        Decode => "decode",
        /// A response body exceeded the limit.
        BodyTooLarge => "body_too_large",
        /// A 4xx answer surfaced as an error.
        Status4xx => "status_4xx",
        /// A 5xx answer surfaced as an error.
        Status5xx => "status_5xx",
        /// The origin's monthly budget fell under its floor; nothing was sent.
        BudgetExhausted => "budget_exhausted",
        /// Anything else.
        Other => "other",
    }
}

labels! {
    /// Why a request was sent again.
    RetryReason {
        /// The connection could not be made; nothing was sent.
        Connect => "connect",
        /// A transport error on an idempotent request.
        Transport => "transport",
        /// A reused connection died before any response byte.
        StaleConnection => "stale_connection",
        /// 429 Too Many Requests.
        TooManyRequests => "too_many_requests",
        /// 502, 503 or 504.
        ServerError => "server_error",
        /// A 2xx answer to an idempotent request whose body was not the
        /// expected JSON (cut short, garbled, another content type).
        BadBody => "bad_body",
    }
}

labels! {
    /// A circuit-breaker state change.
    BreakerTransition {
        /// Closed or half-open to open.
        Opened => "opened",
        /// Open to half-open (a probe may go through).
        HalfOpened => "half_opened",
        /// Back to closed after a successful probe.
        Closed => "closed",
    }
}

/// Something the pool did, for an [`EventHandler`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A TCP connection was opened (and, for https, its TLS handshake finished).
    Connected {
        /// The origin.
        origin: String,
        /// The TLS session was resumed rather than negotiated in full.
        tls_resumed: Option<bool>,
    },
    /// A request went out on an already used connection.
    Reused {
        /// The origin.
        origin: String,
    },
    /// A connection was closed.
    Closed {
        /// The origin.
        origin: String,
        /// Why.
        reason: CloseReason,
    },
    /// A connect had to wait because its agent's one socket was still busy (a
    /// body read after its lease returned, or a clone of the agent in use).
    SocketBusy {
        /// The origin.
        origin: String,
    },
    /// A lease request gave up after the acquire timeout.
    LeaseTimedOut {
        /// The origin.
        origin: String,
    },
}

/// Receives pool events as they happen, on the thread that caused them. Keep it
/// fast and never call back into the pool from it. The default is none. A
/// panic in it is caught and logged, so it can't leave the pool's books wrong.
pub trait EventHandler: Send + Sync + 'static {
    /// Called for every event.
    fn on_event(&self, event: &Event);
}

struct Counters<L: Label> {
    counts: Box<[AtomicU64]>,
    _label: std::marker::PhantomData<L>,
}

impl<L: Label> Default for Counters<L> {
    fn default() -> Self {
        Counters {
            counts: L::ALL.iter().map(|_| AtomicU64::new(0)).collect(),
            _label: std::marker::PhantomData,
        }
    }
}

impl<L: Label> Counters<L> {
    fn add(&self, label: L, n: u64) {
        self.counts[label.index()].fetch_add(n, Relaxed);
    }

    fn snapshot(&self) -> BTreeMap<String, u64> {
        L::ALL
            .iter()
            .map(|l| (l.name().to_string(), self.counts[l.index()].load(Relaxed)))
            .collect()
    }
}

/// Counters of one origin. Shared by its host pool, agents, transports and the
/// resilience layer.
pub(crate) struct OriginMetrics {
    pub(crate) origin: String,
    events: Option<Arc<dyn EventHandler>>,
    connections_created: AtomicU64,
    connections_reused: AtomicU64,
    requests_sent: AtomicU64,
    closed: Counters<CloseReason>,
    open_connections: AtomicI64,
    tls_full: AtomicU64,
    tls_resumed: AtomicU64,
    dns_lookups: AtomicU64,
    dns_cache_hits: AtomicU64,
    /// Final responses by class: `1xx` .. `5xx`, then anything else ureq accepts.
    statuses: [AtomicU64; 6],
    warm_requests: AtomicU64,
    failover: FailoverCounters,
    coalesced_requests: AtomicU64,
    /// The last failure; written on failures only.
    last_error: Mutex<Option<LastError>>,
    failures: Counters<FailureKind>,
    retries: Counters<RetryReason>,
    breaker: Counters<BreakerTransition>,
    rate_limit_waits: AtomicU64,
    rate_limit_paused_us: AtomicU64,
    pub(crate) acquire_wait: Histogram,
    pub(crate) request_latency: Histogram,
}

impl OriginMetrics {
    pub(crate) fn new(origin: String, events: Option<Arc<dyn EventHandler>>) -> Self {
        OriginMetrics {
            origin,
            events,
            connections_created: AtomicU64::new(0),
            connections_reused: AtomicU64::new(0),
            requests_sent: AtomicU64::new(0),
            closed: Counters::default(),
            open_connections: AtomicI64::new(0),
            tls_full: AtomicU64::new(0),
            tls_resumed: AtomicU64::new(0),
            dns_lookups: AtomicU64::new(0),
            dns_cache_hits: AtomicU64::new(0),
            statuses: Default::default(),
            warm_requests: AtomicU64::new(0),
            failover: FailoverCounters::default(),
            coalesced_requests: AtomicU64::new(0),
            last_error: Mutex::new(None),
            failures: Counters::default(),
            retries: Counters::default(),
            breaker: Counters::default(),
            rate_limit_waits: AtomicU64::new(0),
            rate_limit_paused_us: AtomicU64::new(0),
            acquire_wait: Histogram::default(),
            request_latency: Histogram::default(),
        }
    }

    fn emit(&self, make: impl FnOnce(String) -> Event) {
        if let Some(handler) = &self.events {
            let event = make(self.origin.clone());
            // The handler runs inside the pool (where a socket closes, under a
            // wire's lock): its panic must not skip the pool's own bookkeeping
            // after it (a slot freed, a socket forgotten) or abort a thread
            // that is unwinding already.
            let delivered =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handler.on_event(&event)));
            if delivered.is_err() {
                log::error!("the pool's event handler panicked on {event:?}; the pool goes on");
            }
        }
    }

    pub(crate) fn connected(&self, tls_resumed: Option<bool>) {
        self.connections_created.fetch_add(1, Relaxed);
        self.open_connections.fetch_add(1, Relaxed);
        match tls_resumed {
            Some(true) => self.tls_resumed.fetch_add(1, Relaxed),
            Some(false) => self.tls_full.fetch_add(1, Relaxed),
            None => 0,
        };
        self.emit(|origin| Event::Connected {
            origin,
            tls_resumed,
        });
    }

    pub(crate) fn request_sent(&self, reused: bool) {
        self.requests_sent.fetch_add(1, Relaxed);
        if reused {
            self.connections_reused.fetch_add(1, Relaxed);
            self.emit(|origin| Event::Reused { origin });
        }
    }

    pub(crate) fn closed(&self, reason: CloseReason) {
        self.closed.add(reason, 1);
        self.open_connections.fetch_sub(1, Relaxed);
        self.emit(|origin| Event::Closed { origin, reason });
    }

    pub(crate) fn response(&self, status: u16, latency: Duration) {
        let class = match status {
            100..=599 => usize::from(status / 100 - 1),
            _ => STATUS_CLASSES.len() - 1,
        };
        self.statuses[class].fetch_add(1, Relaxed);
        self.request_latency.record(latency);
    }

    /// A request sent only to open a connection ahead of use.
    pub(crate) fn warm_request(&self) {
        self.warm_requests.fetch_add(1, Relaxed);
    }

    /// A call of a client with failover origins that this origin did not
    /// serve and that went on to the next origin.
    pub(crate) fn failed_over(&self) {
        self.failover.failed_over.fetch_add(1, Relaxed);
    }

    /// A call this origin served after an earlier origin of its client could not.
    pub(crate) fn failover_served(&self) {
        self.failover.served.fetch_add(1, Relaxed);
    }

    /// A probe sent to see whether this origin is back.
    pub(crate) fn failover_probe(&self) {
        self.failover.probes.fetch_add(1, Relaxed);
    }

    /// A probe found this origin back: calls go to it again.
    pub(crate) fn failover_recovered(&self) {
        self.failover.recovered.fetch_add(1, Relaxed);
    }

    /// A GET that joined an identical one in flight instead of sending its own.
    pub(crate) fn coalesced(&self) {
        self.coalesced_requests.fetch_add(1, Relaxed);
    }

    /// Sockets open now, lent or idle.
    pub(crate) fn open_now(&self) -> usize {
        usize::try_from(self.open_connections.load(Relaxed).max(0)).unwrap_or(usize::MAX)
    }

    /// The last failure, for the health view.
    pub(crate) fn last_error(&self) -> Option<LastError> {
        self.last_error.lock().clone()
    }

    pub(crate) fn dns(&self, cache_hit: bool) {
        if cache_hit {
            self.dns_cache_hits.fetch_add(1, Relaxed);
        } else {
            self.dns_lookups.fetch_add(1, Relaxed);
        }
    }

    pub(crate) fn socket_busy(&self) {
        self.emit(|origin| Event::SocketBusy { origin });
    }

    pub(crate) fn lease_timed_out(&self) {
        self.failure(FailureKind::PoolTimeout);
        self.emit(|origin| Event::LeaseTimedOut { origin });
    }

    /// Counts a failed call by kind.
    pub(crate) fn failure(&self, kind: FailureKind) {
        self.failures.add(kind, 1);
        self.note_error(kind, None);
    }

    /// Counts a failed call by kind, keeping its message for the health view.
    pub(crate) fn failure_with(&self, kind: FailureKind, error: &crate::Error) {
        self.failures.add(kind, 1);
        self.note_error(kind, Some(error.to_string()));
    }

    fn note_error(&self, kind: FailureKind, message: Option<String>) {
        *self.last_error.lock() = Some(LastError {
            kind: kind.name().to_string(),
            message,
            at_unix_ms: unix_ms(SystemTime::now()),
        });
    }

    /// Counts a retry by reason.
    pub(crate) fn retry(&self, reason: RetryReason) {
        self.retries.add(reason, 1);
    }

    /// Counts a circuit-breaker transition.
    pub(crate) fn breaker(&self, transition: BreakerTransition) {
        self.breaker.add(transition, 1);
    }

    /// Counts a wait imposed by the rate limiter.
    pub(crate) fn rate_limited(&self, paused: Duration) {
        self.rate_limit_waits.fetch_add(1, Relaxed);
        let us = u64::try_from(paused.as_micros()).unwrap_or(u64::MAX);
        self.rate_limit_paused_us.fetch_add(us, Relaxed);
    }

    /// Everything but the host-lock gauges, which the host pool fills in.
    pub(crate) fn snapshot(&self, host: HostGauges) -> (OriginSnapshot, HistogramPair) {
        let mut acquire = HistogramData::default();
        self.acquire_wait.add_to(&mut acquire);
        let mut latency = HistogramData::default();
        self.request_latency.add_to(&mut latency);
        let snap = OriginSnapshot {
            connections_created: self.connections_created.load(Relaxed),
            connections_reused: self.connections_reused.load(Relaxed),
            requests_sent: self.requests_sent.load(Relaxed),
            connections_closed: self.closed.snapshot(),
            open_connections: self.open_connections.load(Relaxed).max(0) as u64,
            tls_handshakes_full: self.tls_full.load(Relaxed),
            tls_handshakes_resumed: self.tls_resumed.load(Relaxed),
            dns_lookups: self.dns_lookups.load(Relaxed),
            dns_cache_hits: self.dns_cache_hits.load(Relaxed),
            leases_granted: host.leases_granted,
            leases_waited: host.leases_waited,
            leases_timed_out: host.leases_timed_out,
            in_use: host.in_use as u64,
            idle: host.idle as u64,
            waiting: host.waiting as u64,
            warm_requests: self.warm_requests.load(Relaxed),
            failed_over: self.failover.failed_over.load(Relaxed),
            failover_served: self.failover.served.load(Relaxed),
            failover_probes: self.failover.probes.load(Relaxed),
            failover_recovered: self.failover.recovered.load(Relaxed),
            coalesced_requests: self.coalesced_requests.load(Relaxed),
            responses: STATUS_CLASSES
                .iter()
                .zip(&self.statuses)
                .map(|(n, c)| (n.to_string(), c.load(Relaxed)))
                .collect(),
            failures: self.failures.snapshot(),
            retries: self.retries.snapshot(),
            breaker_transitions: self.breaker.snapshot(),
            rate_limit_waits: self.rate_limit_waits.load(Relaxed),
            rate_limit_paused_ms: self.rate_limit_paused_us.load(Relaxed) / 1000,
            acquire_wait: acquire.summary(),
            request_latency: latency.summary(),
        };
        (snap, HistogramPair { acquire, latency })
    }
}

/// What failover did at one origin (see [`OriginSnapshot::failed_over`]).
#[derive(Default)]
struct FailoverCounters {
    failed_over: AtomicU64,
    served: AtomicU64,
    probes: AtomicU64,
    recovered: AtomicU64,
}

/// The names of the status classes in [`OriginSnapshot::responses`].
const STATUS_CLASSES: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "other"];

/// An origin's last failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LastError {
    /// The [`FailureKind`] name.
    pub kind: String,
    /// What went wrong, when the pool saw the error itself (no secrets: error
    /// messages never carry any).
    pub message: Option<String>,
    /// When, in milliseconds since the Unix epoch.
    pub at_unix_ms: u64,
}

/// Gauges and lease counters kept under the host lock.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct HostGauges {
    pub(crate) leases_granted: u64,
    pub(crate) leases_waited: u64,
    pub(crate) leases_timed_out: u64,
    pub(crate) in_use: usize,
    pub(crate) idle: usize,
    pub(crate) waiting: usize,
}

/// Raw histogram data kept beside a snapshot so totals can merge buckets.
pub(crate) struct HistogramPair {
    acquire: HistogramData,
    latency: HistogramData,
}

/// Counters of one origin (or the total over all origins) at one moment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct OriginSnapshot {
    /// TCP connections opened.
    pub connections_created: u64,
    /// Requests sent on a connection that had carried an earlier request.
    pub connections_reused: u64,
    /// Requests handed to a connection (created + reused, for one request per connect).
    pub requests_sent: u64,
    /// Connections closed, by [`CloseReason`] name.
    pub connections_closed: BTreeMap<String, u64>,
    /// Sockets open now, lent or idle.
    pub open_connections: u64,
    /// Full TLS handshakes.
    pub tls_handshakes_full: u64,
    /// Resumed TLS sessions (abbreviated handshakes).
    pub tls_handshakes_resumed: u64,
    /// DNS lookups made (cache misses).
    pub dns_lookups: u64,
    /// DNS answers served from the cache.
    pub dns_cache_hits: u64,
    /// Leases handed out.
    pub leases_granted: u64,
    /// Leases that had to wait for a free connection.
    pub leases_waited: u64,
    /// Lease requests that gave up after `acquire_timeout`.
    pub leases_timed_out: u64,
    /// Leases held now.
    pub in_use: u64,
    /// Idle agents now.
    pub idle: u64,
    /// Callers waiting for a lease now.
    pub waiting: u64,
    /// Requests sent only to open a connection ahead of use (`Pool::warm`,
    /// `min_idle`); also counted in `requests_sent`.
    #[serde(default)]
    pub warm_requests: u64,
    /// Calls of a client with failover origins that this origin did not serve
    /// and that went on to the next origin: it was unreachable, its circuit
    /// breaker was open, or it failed in a way that let the call move on.
    #[serde(default)]
    pub failed_over: u64,
    /// Calls this origin served after an earlier origin of their client could
    /// not (`responses` and `requests_sent` count them too).
    #[serde(default)]
    pub failover_served: u64,
    /// Probes sent to see whether this origin, passed over by failover, is
    /// back (also counted in `requests_sent`).
    #[serde(default)]
    pub failover_probes: u64,
    /// Times a probe found this origin back, so calls went to it again.
    #[serde(default)]
    pub failover_recovered: u64,
    /// GETs that joined an identical GET in flight (same URL, headers and
    /// credentials) and got its answer instead of sending their own request;
    /// counted at the origin of the client's base URL.
    #[serde(default)]
    pub coalesced_requests: u64,
    /// Final responses by status class (`1xx` .. `5xx`, and `other` for
    /// 600..999), counted at the socket; interim `100 Continue` heads are not.
    pub responses: BTreeMap<String, u64>,
    /// Failed calls by [`FailureKind`] name.
    pub failures: BTreeMap<String, u64>,
    /// Retries by [`RetryReason`] name.
    pub retries: BTreeMap<String, u64>,
    /// Circuit-breaker transitions by [`BreakerTransition`] name.
    pub breaker_transitions: BTreeMap<String, u64>,
    /// Times a call waited for the rate limiter.
    pub rate_limit_waits: u64,
    /// Total time calls spent waiting for the rate limiter.
    pub rate_limit_paused_ms: u64,
    /// Time spent waiting for a lease, for leases that waited.
    pub acquire_wait: HistogramSnapshot,
    /// Time from the first request byte sent to the response head received.
    pub request_latency: HistogramSnapshot,
}

impl OriginSnapshot {
    /// Connections closed for `reason`.
    pub fn closed(&self, reason: CloseReason) -> u64 {
        self.connections_closed
            .get(reason.name())
            .copied()
            .unwrap_or(0)
    }

    /// Failures of `kind`.
    pub fn failed(&self, kind: FailureKind) -> u64 {
        self.failures.get(kind.name()).copied().unwrap_or(0)
    }

    /// Retries for `reason`.
    pub fn retried(&self, reason: RetryReason) -> u64 {
        self.retries.get(reason.name()).copied().unwrap_or(0)
    }

    /// All connections closed, whatever the reason.
    pub fn closed_total(&self) -> u64 {
        self.connections_closed.values().sum()
    }

    fn add(&mut self, o: &OriginSnapshot) {
        let sum = |a: &mut BTreeMap<String, u64>, b: &BTreeMap<String, u64>| {
            for (k, v) in b {
                *a.entry(k.clone()).or_default() += v;
            }
        };
        self.connections_created += o.connections_created;
        self.connections_reused += o.connections_reused;
        self.requests_sent += o.requests_sent;
        self.warm_requests += o.warm_requests;
        self.failed_over += o.failed_over;
        self.failover_served += o.failover_served;
        self.failover_probes += o.failover_probes;
        self.failover_recovered += o.failover_recovered;
        self.coalesced_requests += o.coalesced_requests;
        sum(&mut self.connections_closed, &o.connections_closed);
        self.open_connections += o.open_connections;
        self.tls_handshakes_full += o.tls_handshakes_full;
        self.tls_handshakes_resumed += o.tls_handshakes_resumed;
        self.dns_lookups += o.dns_lookups;
        self.dns_cache_hits += o.dns_cache_hits;
        self.leases_granted += o.leases_granted;
        self.leases_waited += o.leases_waited;
        self.leases_timed_out += o.leases_timed_out;
        self.in_use += o.in_use;
        self.idle += o.idle;
        self.waiting += o.waiting;
        sum(&mut self.responses, &o.responses);
        sum(&mut self.failures, &o.failures);
        sum(&mut self.retries, &o.retries);
        sum(&mut self.breaker_transitions, &o.breaker_transitions);
        self.rate_limit_waits += o.rate_limit_waits;
        self.rate_limit_paused_ms += o.rate_limit_paused_ms;
    }
}

/// The pool's metrics at one moment: per origin and in total. Returned by
/// [`crate::Pool::metrics`]; serialises to JSON with serde, and to the Prometheus
/// text format with [`Snapshot::to_prometheus`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Snapshot {
    /// When the snapshot was taken, in milliseconds since the Unix epoch.
    pub taken_at_unix_ms: u64,
    /// When the cleaner last ran, in milliseconds since the Unix epoch.
    pub last_cleanup_unix_ms: Option<u64>,
    /// Sum over all origins (histograms merged bucket by bucket).
    pub total: OriginSnapshot,
    /// Per origin, keyed by `scheme://host[:port]`.
    pub origins: BTreeMap<String, OriginSnapshot>,
}

pub(crate) fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Snapshot {
    pub(crate) fn build(
        parts: Vec<(String, OriginSnapshot, HistogramPair)>,
        last_cleanup: Option<SystemTime>,
    ) -> Snapshot {
        let mut total = OriginSnapshot::default();
        let mut acquire = HistogramData::default();
        let mut latency = HistogramData::default();
        let mut origins = BTreeMap::new();
        for (name, snap, hist) in parts {
            total.add(&snap);
            acquire.merge(&hist.acquire);
            latency.merge(&hist.latency);
            origins.insert(name, snap);
        }
        total.acquire_wait = acquire.summary();
        total.request_latency = latency.summary();
        Snapshot {
            taken_at_unix_ms: unix_ms(SystemTime::now()),
            last_cleanup_unix_ms: last_cleanup.map(unix_ms),
            total,
            origins,
        }
    }

    /// The origin's counters, or all zero if it was never used.
    pub fn origin(&self, origin: &str) -> OriginSnapshot {
        self.origins.get(origin).cloned().unwrap_or_default()
    }

    /// Renders the Prometheus text exposition format (version 0.0.4), one sample
    /// per origin with an `origin` label.
    pub fn to_prometheus(&self) -> String {
        let mut out = String::new();
        prometheus::render(&mut out, &self.origins);
        if let Some(ms) = self.last_cleanup_unix_ms {
            let _ = writeln!(
                out,
                "# HELP etlpool_last_cleanup_seconds When the cleaner last ran (Unix time).\n\
                 # TYPE etlpool_last_cleanup_seconds gauge\n\
                 etlpool_last_cleanup_seconds {:.3}",
                ms as f64 / 1000.0
            );
        }
        out
    }
}

mod prometheus {
    use super::*;

    type Getter = fn(&OriginSnapshot) -> u64;

    const COUNTERS: &[(&str, &str, Getter)] = &[
        (
            "connections_created_total",
            "TCP connections opened.",
            |s| s.connections_created,
        ),
        (
            "connections_reused_total",
            "Requests sent on a reused connection.",
            |s| s.connections_reused,
        ),
        (
            "requests_sent_total",
            "Requests handed to a connection.",
            |s| s.requests_sent,
        ),
        (
            "warm_requests_total",
            "Requests sent only to open a connection ahead of use.",
            |s| s.warm_requests,
        ),
        ("tls_handshakes_full_total", "Full TLS handshakes.", |s| {
            s.tls_handshakes_full
        }),
        (
            "tls_handshakes_resumed_total",
            "Resumed TLS sessions.",
            |s| s.tls_handshakes_resumed,
        ),
        ("dns_lookups_total", "DNS lookups (cache misses).", |s| {
            s.dns_lookups
        }),
        ("dns_cache_hits_total", "DNS answers from the cache.", |s| {
            s.dns_cache_hits
        }),
        ("leases_granted_total", "Leases handed out.", |s| {
            s.leases_granted
        }),
        (
            "leases_waited_total",
            "Leases that waited for a connection.",
            |s| s.leases_waited,
        ),
        (
            "leases_timed_out_total",
            "Lease requests that timed out.",
            |s| s.leases_timed_out,
        ),
        (
            "failed_over_total",
            "Calls that went on from this origin to the next of their client.",
            |s| s.failed_over,
        ),
        (
            "failover_served_total",
            "Calls served after an earlier origin of their client could not.",
            |s| s.failover_served,
        ),
        (
            "failover_probes_total",
            "Probes of an origin passed over by failover.",
            |s| s.failover_probes,
        ),
        (
            "failover_recovered_total",
            "Times a probe brought an origin back.",
            |s| s.failover_recovered,
        ),
        (
            "coalesced_requests_total",
            "GETs that shared an identical GET in flight.",
            |s| s.coalesced_requests,
        ),
        (
            "rate_limit_waits_total",
            "Waits imposed by the rate limiter.",
            |s| s.rate_limit_waits,
        ),
    ];

    const GAUGES: &[(&str, &str, Getter)] = &[
        ("open_connections", "Sockets open now.", |s| {
            s.open_connections
        }),
        ("in_use", "Leases held now.", |s| s.in_use),
        ("idle", "Idle agents now.", |s| s.idle),
        ("waiting", "Callers waiting for a lease.", |s| s.waiting),
    ];

    type MapGetter = fn(&OriginSnapshot) -> &BTreeMap<String, u64>;

    const LABELLED: &[(&str, &str, &str, MapGetter)] = &[
        (
            "connections_closed_total",
            "Connections closed.",
            "reason",
            |s| &s.connections_closed,
        ),
        (
            "responses_total",
            "Responses by status class.",
            "class",
            |s| &s.responses,
        ),
        ("failures_total", "Failed calls.", "kind", |s| &s.failures),
        ("retries_total", "Requests sent again.", "reason", |s| {
            &s.retries
        }),
        (
            "breaker_transitions_total",
            "Circuit-breaker transitions.",
            "to",
            |s| &s.breaker_transitions,
        ),
    ];

    fn escape(v: &str) -> String {
        v.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
    }

    fn header(out: &mut String, name: &str, help: &str, kind: &str) {
        let _ = writeln!(
            out,
            "# HELP etlpool_{name} {help}\n# TYPE etlpool_{name} {kind}"
        );
    }

    pub(super) fn render(out: &mut String, origins: &BTreeMap<String, OriginSnapshot>) {
        for (kind, table) in [("counter", COUNTERS), ("gauge", GAUGES)] {
            for (name, help, get) in table {
                header(out, name, help, kind);
                for (origin, s) in origins {
                    let _ = writeln!(
                        out,
                        "etlpool_{name}{{origin=\"{}\"}} {}",
                        escape(origin),
                        get(s)
                    );
                }
            }
        }
        for (name, help, label, get) in LABELLED {
            header(out, name, help, "counter");
            for (origin, s) in origins {
                for (value, n) in get(s) {
                    let _ = writeln!(
                        out,
                        "etlpool_{name}{{origin=\"{}\",{label}=\"{value}\"}} {n}",
                        escape(origin)
                    );
                }
            }
        }
        header(
            out,
            "rate_limit_paused_seconds_total",
            "Time spent waiting for the rate limiter.",
            "counter",
        );
        for (origin, s) in origins {
            let _ = writeln!(
                out,
                "etlpool_rate_limit_paused_seconds_total{{origin=\"{}\"}} {:.3}",
                escape(origin),
                s.rate_limit_paused_ms as f64 / 1000.0
            );
        }
        for (name, help, get) in [
            (
                "acquire_wait_seconds",
                "Time waiting for a lease (leases that waited).",
                (|s| &s.acquire_wait) as fn(&OriginSnapshot) -> &HistogramSnapshot,
            ),
            (
                "request_latency_seconds",
                "First request byte to response head.",
                |s| &s.request_latency,
            ),
        ] {
            header(out, name, help, "summary");
            for (origin, s) in origins {
                let h = get(s);
                let o = escape(origin);
                for (q, v) in [("0.5", h.p50_us), ("0.95", h.p95_us), ("0.99", h.p99_us)] {
                    let _ = writeln!(
                        out,
                        "etlpool_{name}{{origin=\"{o}\",quantile=\"{q}\"}} {:.6}",
                        v as f64 / 1e6
                    );
                }
                let _ = writeln!(
                    out,
                    "etlpool_{name}_sum{{origin=\"{o}\"}} {:.6}",
                    (h.mean_us * h.count) as f64 / 1e6
                );
                let _ = writeln!(out, "etlpool_{name}_count{{origin=\"{o}\"}} {}", h.count);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_sum_origins_and_render() {
        let a = OriginMetrics::new("http://a".into(), None);
        let b = OriginMetrics::new("http://b:8080".into(), None);
        a.connected(None);
        a.request_sent(false);
        a.request_sent(true);
        a.response(200, Duration::from_millis(2));
        b.connected(Some(true));
        b.closed(CloseReason::Idle);
        b.response(503, Duration::from_millis(4));
        let parts = vec![
            {
                let (s, h) = a.snapshot(HostGauges::default());
                ("http://a".to_string(), s, h)
            },
            {
                let (s, h) = b.snapshot(HostGauges::default());
                ("http://b:8080".to_string(), s, h)
            },
        ];
        let snap = Snapshot::build(parts, None);
        assert_eq!(snap.total.connections_created, 2);
        assert_eq!(snap.total.connections_reused, 1);
        assert_eq!(snap.total.tls_handshakes_resumed, 1);
        assert_eq!(snap.total.closed(CloseReason::Idle), 1);
        assert_eq!(snap.total.responses["5xx"], 1);
        assert_eq!(snap.total.request_latency.count, 2);
        assert_eq!(snap.origin("http://a").open_connections, 1);
        let text = snap.to_prometheus();
        assert!(
            text.contains("etlpool_connections_created_total{origin=\"http://a\"} 1"),
            "{text}"
        );
        assert!(text.contains(
            "etlpool_connections_closed_total{origin=\"http://b:8080\",reason=\"idle\"} 1"
        ));
        assert!(text.contains("# TYPE etlpool_request_latency_seconds summary"));
        let json = serde_json::to_string(&snap).unwrap();
        let back: Snapshot = serde_json::from_str(&json).unwrap();
        assert_eq!(back, snap);
    }
}
