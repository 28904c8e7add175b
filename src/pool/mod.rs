//! The connection pool: a registry of host pools keyed by origin, lending ureq
//! agents through RAII leases.
//!
//! ```no_run
//! use std::time::Duration;
//! use etlpool::Pool;
//!
//! # fn main() -> etlpool::Result<()> {
//! let pool = Pool::builder()
//!     .max_connections_per_host(8)
//!     .idle_timeout(Duration::from_secs(30))
//!     .build()?;
//! std::thread::scope(|s| {
//!     for _ in 0..8 {
//!         s.spawn(|| -> etlpool::Result<()> {
//!             let lease = pool.lease("https://api.example.com/v2")?;
//!             let reply = lease.fetch("https://api.example.com/v2/projects")?;
//!             println!("{}", reply.status());
//!             Ok(())
//!         });
//!     }
//! });
//! println!("{}", pool.metrics().total.connections_created);
//! # Ok(()) }
//! ```

mod cleaner;
mod config;
mod exchange;
mod health;
mod host;
mod lease;
mod origin;
mod resolver;
mod socket;
mod tcp;
mod tls;
mod total;
mod transport;
mod warm;
mod wire;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use parking_lot::{Mutex, RwLock};
use ureq::AsSendBody;
use ureq::http::Request;

pub use self::config::{PoolConfig, TlsOptions};
pub use self::health::{Health, OriginHealth, Probe};
pub use self::lease::{Lease, Reply};
pub use self::origin::{Origin, Scheme};
pub use self::tcp::{SocketInfo, TcpKeepalive};
pub use self::tls::TlsHandshakeError;
pub use self::transport::CrossOriginError;
use crate::metrics::{CloseReason, EventHandler, Snapshot};

pub(crate) use self::lease::is_socket_claim_timeout;
pub(crate) use self::lease::{failure_kind, request_error};
pub(crate) use crate::metrics::OriginMetrics;

use self::cleaner::Cleaner;
use self::host::{AgentFactory, HostLimits, HostParts, HostPool};
use self::resolver::DnsCache;
use self::tls::SessionStore;
use self::total::TotalLimit;
use crate::error::{Error, Result};
use crate::policy::{OriginPolicies, PolicySettings};
use crate::redact;

/// A thread-safe pool of HTTP connections, keyed by origin. Cheap to clone: all
/// clones share one pool. The last clone dropped shuts it down.
#[derive(Clone)]
pub struct Pool {
    inner: Arc<PoolInner>,
}

/// The shared state behind every [`Pool`] handle.
pub(crate) struct PoolInner {
    config: PoolConfig,
    factory: Arc<AgentFactory>,
    closed: Arc<AtomicBool>,
    total: Option<Arc<TotalLimit>>,
    events: Option<Arc<dyn EventHandler>>,
    /// What an origin's built-in policies are made from unless set otherwise.
    default_policies: PolicySettings,
    /// Guards the origin map only; host pools have their own locks.
    hosts: RwLock<HashMap<Origin, Arc<HostPool>>>,
    last_cleanup: Mutex<Option<SystemTime>>,
    cleaner: Mutex<Option<Cleaner>>,
}

/// Builds a [`Pool`]; every setter documents its default (see [`PoolConfig`]).
#[must_use]
pub struct PoolBuilder {
    config: PoolConfig,
    events: Option<Arc<dyn EventHandler>>,
    default_policies: PolicySettings,
}

macro_rules! setters {
    ($($(#[$doc:meta])* $name:ident: $ty:ty => $($field:ident).+;)+) => {
        $(
            $(#[$doc])*
            pub fn $name(mut self, value: $ty) -> Self {
                self.config.$($field).+ = value.into();
                self
            }
        )+
    };
}

impl PoolBuilder {
    setters! {
        /// Most connections to one origin. Defaults to 8.
        max_connections_per_host: usize => max_connections_per_host;
        /// Most connections over all origins. Defaults to no limit.
        max_connections_total: Option<usize> => max_connections_total;
        /// Idle connections kept open per used origin. Defaults to 0.
        min_idle: usize => min_idle;
        /// Path of the `HEAD` request that warms a connection. Defaults to `/`.
        warm_path: String => warm_path;
        /// TCP keepalive on pooled sockets. Defaults to on.
        tcp_keepalive: bool => tcp_keepalive;
        /// Idle time before the first keepalive probe. Defaults to 30 s.
        tcp_keepalive_idle: Duration => tcp_keepalive_idle;
        /// Time between keepalive probes. Defaults to 10 s.
        tcp_keepalive_interval: Duration => tcp_keepalive_interval;
        /// Unanswered keepalive probes before a connection is dead. Defaults to 3.
        tcp_keepalive_count: u32 => tcp_keepalive_count;
        /// How long `lease()` waits for a connection. Defaults to 30 s.
        acquire_timeout: Duration => acquire_timeout;
        /// Idle connections older than this are closed. Defaults to 30 s.
        idle_timeout: Duration => idle_timeout;
        /// Connections older than this are closed. Defaults to 10 min.
        max_lifetime: Option<Duration> => max_lifetime;
        /// Share of `max_lifetime` cut at random per connection; 0 turns it off.
        /// Defaults to 0.025.
        lifetime_jitter: f64 => lifetime_jitter;
        /// How often the cleaner runs. Defaults to 5 s.
        reap_interval: Duration => reap_interval;
        /// TCP connect plus TLS handshake. Defaults to 10 s.
        connect_timeout: Duration => connect_timeout;
        /// One request, send to last body byte. Defaults to 60 s.
        request_timeout: Duration => request_timeout;
        /// A whole call with retries. Defaults to 5 min.
        total_timeout: Option<Duration> => total_timeout;
        /// DNS cache lifetime. Defaults to 60 s.
        dns_ttl: Duration => dns_ttl;
        /// Largest body the helpers read. Defaults to 64 MiB.
        max_body_bytes: u64 => max_body_bytes;
        /// A CONNECT proxy URL. Defaults to none (never from the environment).
        proxy: Option<String> => proxy;
        /// The User-Agent header. Defaults to `etlpool/<version>`.
        user_agent: String => user_agent;
        /// TLS settings. Defaults to verification against the webpki roots.
        tls: TlsOptions => tls;
        /// Extra CA certificates (PEM text) to trust. Defaults to none.
        ca_pem: Option<String> => tls.ca_pem;
    }

    /// Starts from a whole configuration, e.g. [`PoolConfig::from_env`].
    pub fn config(mut self, config: PoolConfig) -> Self {
        self.config = config;
        self
    }

    /// Receives pool events (connects, reuses, closes, lease timeouts). Defaults to none.
    pub fn event_handler(mut self, handler: Arc<dyn EventHandler>) -> Self {
        self.events = Some(handler);
        self
    }

    /// The settings of the built-in rate limiter, breaker and retry budget of
    /// every origin that is not given its own (with [`Pool::set_policies`] or
    /// an [`ApiClientBuilder`](crate::http::ApiClientBuilder)). Defaults to
    /// [`PolicySettings::default`].
    pub fn default_policies(mut self, settings: PolicySettings) -> Self {
        self.default_policies = settings;
        self
    }

    /// Validates the configuration, loads TLS material and starts the cleaner.
    pub fn build(self) -> Result<Pool> {
        self.default_policies.validate()?;
        Pool::with_parts(self.config, self.events, self.default_policies)
    }
}

impl Pool {
    /// A builder starting from [`PoolConfig::default`].
    pub fn builder() -> PoolBuilder {
        PoolBuilder {
            config: PoolConfig::default(),
            events: None,
            default_policies: PolicySettings::default(),
        }
    }

    /// A pool with `config`.
    pub fn new(config: PoolConfig) -> Result<Pool> {
        Pool::with_parts(config, None, PolicySettings::default())
    }

    fn with_parts(
        config: PoolConfig,
        events: Option<Arc<dyn EventHandler>>,
        default_policies: PolicySettings,
    ) -> Result<Pool> {
        config.validate()?;
        let tls = tls::client_config(&config.tls)?;
        let proxy = config.proxy()?;
        let factory = Arc::new(AgentFactory {
            ureq_config: ureq_config(&config, proxy.clone()),
            tls,
            // Enough tickets per server for a burst of reconnects as wide as
            // the per-host cap; rustls keeps 8.
            sessions: Arc::new(SessionStore::new(
                config.max_connections_per_host.max(8),
                TLS_SERVERS,
            )),
            dns: Arc::new(DnsCache::new(config.dns_ttl)),
            epoch: Instant::now(),
            lifetime: config.max_lifetime.map(|l| (l, config.lifetime_jitter)),
            acquire_timeout: config.acquire_timeout,
            proxy,
            keepalive: config.keepalive(),
            tls_options: config.tls.clone(),
        });
        let inner = Arc::new(PoolInner {
            total: config
                .max_connections_total
                .map(|n| Arc::new(TotalLimit::new(n))),
            config,
            factory,
            closed: Arc::new(AtomicBool::new(false)),
            events,
            default_policies,
            hosts: RwLock::new(HashMap::new()),
            last_cleanup: Mutex::new(None),
            cleaner: Mutex::new(None),
        });
        let cleaner = Cleaner::spawn(Arc::downgrade(&inner), inner.config.reap_interval)
            .map_err(|e| Error::io("starting the pool's cleaner thread", e))?;
        *inner.cleaner.lock() = Some(cleaner);
        Ok(Pool { inner })
    }

    /// The process-wide pool, created on first use from [`PoolConfig::from_env`]
    /// (an invalid `ETLPOOL_*` variable is an error, and the next call tries again).
    ///
    /// The global lock is never held while a pool is built (which reads CA and
    /// key files): if two callers race to create it, the first to finish wins
    /// and the other's pool is dropped.
    pub fn global() -> Result<Pool> {
        if let Some(pool) = global_slot().lock().as_ref() {
            return Ok(pool.clone());
        }
        let built = Pool::new(PoolConfig::from_env()?)?;
        let mut slot = global_slot().lock();
        let pool = slot.get_or_insert_with(|| built.clone()).clone();
        // A pool that lost the race shuts down when `built` drops, after the
        // lock (declared later) is released.
        drop(slot);
        Ok(pool)
    }

    /// Creates the global pool with `config`. Calling it again with the same
    /// configuration returns the same pool; with a different one it fails with
    /// [`Error::GlobalPoolConflict`] rather than silently ignore the new settings.
    /// The pool is built outside the global lock, as in [`Pool::global`].
    pub fn init_global(config: PoolConfig) -> Result<Pool> {
        let existing = |slot: &Option<Pool>, config: &PoolConfig| {
            slot.as_ref().map(|pool| {
                if pool.config() == config {
                    Ok(pool.clone())
                } else {
                    Err(Error::GlobalPoolConflict)
                }
            })
        };
        if let Some(found) = existing(&global_slot().lock(), &config) {
            return found;
        }
        let built = Pool::new(config.clone())?;
        let mut slot = global_slot().lock();
        if let Some(found) = existing(&slot, &config) {
            return found;
        }
        *slot = Some(built.clone());
        Ok(built)
    }

    /// The configuration the pool was built with.
    pub fn config(&self) -> &PoolConfig {
        &self.inner.config
    }

    /// Lends an agent for the origin of `base_url` (its path is ignored), waiting
    /// up to `acquire_timeout` if all of that origin's connections are lent.
    pub fn lease(&self, base_url: &str) -> Result<Lease> {
        self.host(&Origin::parse(base_url)?)?.lease()
    }

    /// Opens connections to the origin of `base_url` ahead of a burst, until
    /// `n` are open (at most `max_connections_per_host`): ureq opens a
    /// connection only for a request, so each new one carries a cheap
    /// `HEAD <origin><warm_path>` (any answer will do; counted as
    /// `warm_requests`). Uses only agents free right now, never waits for a
    /// lease or evicts another origin's connection. Returns how many it opened
    /// that stayed open; stops at the first one the server closes after its
    /// answer. A shutdown interrupts it.
    pub fn warm(&self, base_url: &str, n: usize) -> Result<usize> {
        let host = self.host(&Origin::parse(base_url)?)?;
        host.warm(n, &self.inner.config.warm_path)
    }

    /// One cheap request, `GET <origin of url><path>`, on a pooled connection
    /// of that origin: the status and latency, or the error (which the health
    /// view then shows as the origin's last error). Any status is an answer;
    /// judging it is up to the caller.
    pub fn check(&self, base_url: &str, path: &str) -> Result<Probe> {
        let host = self.host(&Origin::parse(base_url)?)?;
        health::check(&host, path)
    }

    /// Per origin: connections in use, idle and waited for, the circuit
    /// breaker's state, the last error and the cleaner's last pass.
    pub fn health(&self) -> Health {
        health::view(&self.inner.hosts())
    }

    /// A handle on one origin's share of the pool. Leasing through it skips
    /// parsing the URL and looking up the origin, for hot loops.
    pub fn origin(&self, base_url: &str) -> Result<OriginPool> {
        Ok(OriginPool {
            host: self.host(&Origin::parse(base_url)?)?,
            _pool: self.clone(),
        })
    }

    /// A one-off agent for the origin of `base_url`, outside the pool: it opens its
    /// own connection, with a TLS configuration of its own (no session
    /// resumption) and no DNS cache, as a client without a pool does on every
    /// request. Its connections count in this pool's metrics but not against its
    /// caps. `etlpool load --no-pool` and the benchmarks use it as a baseline.
    pub fn unpooled_agent(&self, base_url: &str) -> Result<ureq::Agent> {
        self.host(&Origin::parse(base_url)?)?.unpooled_agent()
    }

    /// The rate limiter, circuit breaker and retry budget of the origin of
    /// `base_url`, shared by every client of that origin; made from the pool's
    /// default settings on first use.
    pub fn policies(&self, base_url: &str) -> Result<OriginPolicies> {
        Ok(self.origin(base_url)?.policies().clone())
    }

    /// Gives the origin of `base_url` its own policies, for example a limiter
    /// shared between processes. Fails with [`Error::Config`] if the origin
    /// already has policies (a client of it was built, or this was called
    /// before): set them before the origin's first client, so that no client
    /// keeps using the old ones.
    pub fn set_policies(&self, base_url: &str, policies: OriginPolicies) -> Result<()> {
        let origin = self.origin(base_url)?;
        if origin.host.set_policies(policies) {
            return Ok(());
        }
        Err(Error::config(
            "policies",
            format!(
                "{} already has its policies; set them before its first client is built",
                origin.origin()
            ),
        ))
    }

    /// Sends `request` on a leased agent and reads the whole body.
    pub fn send<B: AsSendBody>(&self, request: Request<B>) -> Result<Reply> {
        let url = request.uri().to_string();
        self.lease(&url)?.send(request)
    }

    /// `GET url`, body read to the end.
    pub fn fetch(&self, url: &str) -> Result<Reply> {
        self.lease(url)?.fetch(url)
    }

    /// Counters per origin and in total, from the transport.
    pub fn metrics(&self) -> Snapshot {
        let parts = self
            .inner
            .hosts()
            .into_iter()
            .map(|h| {
                let (snap, hist) = h.metrics.snapshot(h.gauges());
                (h.origin.to_string(), snap, hist)
            })
            .collect();
        Snapshot::build(parts, *self.inner.last_cleanup.lock())
    }

    /// Stops and joins the cleaner, closes idle connections now and lent ones when
    /// their lease returns, and makes later leases fail with
    /// [`Error::PoolShutdown`]. Calling it again does nothing.
    pub fn shutdown(&self) {
        self.inner.shutdown();
    }

    /// Whether [`Pool::shutdown`] was called.
    pub fn is_shut_down(&self) -> bool {
        self.inner.closed.load(Relaxed)
    }

    fn host(&self, origin: &Origin) -> Result<Arc<HostPool>> {
        if self.is_shut_down() {
            return Err(Error::PoolShutdown {
                origin: origin.to_string(),
            });
        }
        if let Some(host) = self.inner.hosts.read().get(origin) {
            return Ok(host.clone());
        }
        let mut hosts = self.inner.hosts.write();
        let host = hosts
            .entry(origin.clone())
            .or_insert_with(|| Arc::new(self.new_host(origin.clone())));
        Ok(host.clone())
    }

    fn new_host(&self, origin: Origin) -> HostPool {
        let inner = &self.inner;
        let metrics = Arc::new(OriginMetrics::new(origin.to_string(), inner.events.clone()));
        HostPool::new(HostParts {
            origin,
            metrics,
            limits: HostLimits {
                max: inner.config.max_connections_per_host,
                min_idle: inner.config.min_idle,
                acquire_timeout: inner.config.acquire_timeout,
                idle_timeout: inner.config.idle_timeout,
                max_body_bytes: inner.config.max_body_bytes,
            },
            factory: inner.factory.clone(),
            closed: inner.closed.clone(),
            total: inner.total.clone(),
            pool: Arc::downgrade(&self.inner),
        })
    }
}

/// TLS servers (name and port) whose sessions a pool remembers.
const TLS_SERVERS: usize = 256;

fn global_slot() -> &'static Mutex<Option<Pool>> {
    static GLOBAL: OnceLock<Mutex<Option<Pool>>> = OnceLock::new();
    GLOBAL.get_or_init(|| Mutex::new(None))
}

/// The settings every pooled agent gets; see DESIGN.md "ureq settings the pool owns".
fn ureq_config(config: &PoolConfig, proxy: Option<ureq::Proxy>) -> ureq::config::Config {
    ureq::Agent::config_builder()
        // Otherwise every 4xx/5xx closes the connection and loses the body and
        // Retry-After.
        .http_status_as_error(false)
        // A redirect to another origin would open a socket under this origin's
        // cap and metrics; 3xx responses are returned to the caller instead.
        .max_redirects(0)
        .proxy(proxy)
        // One keep-alive connection per agent: the pool, not ureq, decides how
        // many connections live and when they die.
        .max_idle_connections(1)
        .max_idle_connections_per_host(1)
        .max_idle_age(config.ureq_max_idle_age())
        .timeout_connect(Some(config.connect_timeout))
        .timeout_per_call(Some(config.request_timeout))
        .timeout_global(config.total_timeout)
        .user_agent(config.user_agent.as_str())
        .build()
}

impl PoolInner {
    pub(crate) fn hosts(&self) -> Vec<Arc<HostPool>> {
        self.hosts.read().values().cloned().collect()
    }

    fn reap(&self, now: Instant) {
        let hosts = self.hosts();
        for host in &hosts {
            host.reap(now);
        }
        *self.last_cleanup.lock() = Some(SystemTime::now());
        for host in &hosts {
            if self.closed.load(Relaxed) {
                return;
            }
            host.keep_min_idle(&self.config.warm_path);
        }
    }

    fn shutdown(&self) {
        self.closed.store(true, Relaxed);
        if let Some(cleaner) = self.cleaner.lock().take() {
            cleaner.stop();
        }
        for host in self.hosts() {
            host.close_idle(CloseReason::Shutdown);
        }
    }

    #[cfg(test)]
    fn cleaner_thread(&self) -> Option<std::thread::ThreadId> {
        self.cleaner.lock().as_ref().and_then(|c| c.thread_id())
    }
}

impl Drop for PoolInner {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// One origin's share of a pool, from [`Pool::origin`]. Like a [`Pool`] clone, it
/// keeps the pool alive.
#[derive(Clone)]
pub struct OriginPool {
    host: Arc<HostPool>,
    _pool: Pool,
}

impl OriginPool {
    /// Lends an agent for this origin.
    pub fn lease(&self) -> Result<Lease> {
        self.host.lease()
    }

    /// Lends an agent, waiting until `deadline` at the latest (and never
    /// longer than `acquire_timeout`): for a call with a deadline of its own.
    pub fn lease_until(&self, deadline: Instant) -> Result<Lease> {
        self.host.lease_until(Some(deadline))
    }

    /// The origin.
    pub fn origin(&self) -> &Origin {
        &self.host.origin
    }

    /// The origin's policies (see [`Pool::policies`]).
    pub fn policies(&self) -> &OriginPolicies {
        self.policies_made_from(self.default_policy_settings())
    }

    /// The origin's policies if it has them already (a client of it was
    /// built, or [`Pool::set_policies`] was called); `None` otherwise. For
    /// a health check: unlike [`OriginPool::policies`] it makes none, so it
    /// can't fix the origin's settings before its first client sets them.
    pub fn policies_if_made(&self) -> Option<&OriginPolicies> {
        self.host.policies_if_made()
    }

    /// The origin's policies, made from `settings` if it has none yet.
    pub(crate) fn policies_made_from(&self, settings: PolicySettings) -> &OriginPolicies {
        self.host.policies(|| settings)
    }

    /// What the pool makes an origin's policies from by default.
    pub(crate) fn default_policy_settings(&self) -> PolicySettings {
        self._pool.inner.default_policies
    }

    pub(crate) fn metrics(&self) -> &Arc<OriginMetrics> {
        &self.host.metrics
    }

    /// The pool this origin's share is of: a download redirected to another
    /// origin goes through that origin's share of the same pool.
    pub(crate) fn pool(&self) -> &Pool {
        &self._pool
    }
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("origins", &self.inner.hosts.read().len())
            .field("shut_down", &self.is_shut_down())
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for OriginPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("OriginPool")
            .field(&redact::url(&self.host.origin.to_string()))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_types_are_send_sync() {
        fn ensure<T: Send + Sync>() {}
        ensure::<Pool>();
        ensure::<Lease>();
        ensure::<OriginPool>();
        ensure::<Snapshot>();
        ensure::<Reply>();
    }

    #[test]
    fn dropping_the_last_handle_joins_the_cleaner() {
        let pool = Pool::builder()
            .reap_interval(Duration::from_millis(5))
            .build()
            .unwrap();
        let weak = Arc::downgrade(&pool.inner);
        assert!(pool.inner.cleaner_thread().is_some());
        drop(pool);
        assert!(weak.upgrade().is_none());
    }
}
