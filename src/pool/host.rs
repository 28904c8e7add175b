//! One origin's share of the pool: its idle stack, its slots and its waiters.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant, SystemTime};

use parking_lot::{Condvar, Mutex};
use rustls::ClientConfig;
use ureq::http::Request;

use super::PoolInner;
use super::lease::Lease;
use super::origin::Origin;
use super::resolver::{DnsCache, PoolResolver};
use super::tcp::KeepaliveSettings;
use super::tls::SessionStore;
use super::total::{TotalLimit, evict_lru_idle};
use super::transport::PooledConnector;
use super::warm::WarmUps;
use super::wire::AgentWire;
use crate::error::{Error, PoolTimeout, Result};
use crate::metrics::{CloseReason, HostGauges, OriginMetrics};
use crate::policy::{OriginPolicies, PolicySettings};

/// A ureq agent owned by the pool, with the state its connector shares.
pub(crate) struct PooledAgent {
    pub(crate) agent: ureq::Agent,
    pub(crate) wire: Arc<AgentWire>,
}

struct IdleAgent {
    agent: PooledAgent,
    since: Instant,
}

impl IdleAgent {
    /// Its socket is free for a request now. Read from the wire every time:
    /// an idle agent's socket can turn busy while it waits here (a clone the
    /// last holder kept starts a request), not only be busy when it came back.
    fn free(&self) -> bool {
        !self.agent.wire.is_busy()
    }
}

/// Everything needed to make agents, shared by all host pools of one pool.
pub(crate) struct AgentFactory {
    pub(crate) ureq_config: ureq::config::Config,
    /// The pool's TLS settings; each origin shares a copy keyed to its sessions.
    pub(crate) tls: Arc<ClientConfig>,
    pub(crate) sessions: Arc<SessionStore>,
    pub(crate) dns: Arc<DnsCache>,
    pub(crate) epoch: Instant,
    pub(crate) lifetime: Option<(Duration, f64)>,
    pub(crate) acquire_timeout: Duration,
    /// The pool's CONNECT proxy: every connection goes through it.
    pub(crate) proxy: Option<ureq::Proxy>,
    pub(crate) keepalive: Option<KeepaliveSettings>,
    pub(crate) tls_options: super::config::TlsOptions,
}

/// What one agent is made for.
pub(crate) struct AgentParts {
    pub(crate) origin: Origin,
    pub(crate) metrics: Arc<OriginMetrics>,
    /// The host whose slot the agent holds; empty for an agent outside the pool.
    pub(crate) host: Weak<HostPool>,
    pub(crate) tls: Arc<ClientConfig>,
    pub(crate) dns: Arc<DnsCache>,
    pub(crate) closed: Arc<AtomicBool>,
}

impl AgentFactory {
    pub(crate) fn tls_options(&self) -> &super::config::TlsOptions {
        &self.tls_options
    }

    /// An agent whose connector reports to `metrics` and frees its slot in `host`.
    pub(crate) fn make(&self, parts: AgentParts) -> PooledAgent {
        let AgentParts {
            origin,
            metrics,
            host,
            tls,
            dns,
            closed,
        } = parts;
        let lifetime = if host.strong_count() > 0 {
            self.lifetime
        } else {
            None
        };
        let wire = Arc::new(AgentWire::new(metrics.clone(), host, self.epoch, lifetime));
        let connector = PooledConnector {
            wire: wire.clone(),
            origin: origin.clone(),
            tls,
            wait: self.acquire_timeout,
            proxy: self.proxy.clone(),
            closed,
            keepalive: self.keepalive,
        };
        let resolver = PoolResolver {
            cache: dns,
            metrics,
            origin,
        };
        let agent = ureq::Agent::with_parts(self.ureq_config.clone(), connector, resolver);
        PooledAgent { agent, wire }
    }
}

/// Limits and flags a host pool reads on every lease, copied so the hot path
/// touches nothing but its own lock.
pub(crate) struct HostLimits {
    pub(crate) max: usize,
    pub(crate) min_idle: usize,
    pub(crate) acquire_timeout: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) max_body_bytes: u64,
}

/// What a host pool is made of.
pub(crate) struct HostParts {
    pub(crate) origin: Origin,
    pub(crate) metrics: Arc<OriginMetrics>,
    pub(crate) limits: HostLimits,
    pub(crate) factory: Arc<AgentFactory>,
    pub(crate) closed: Arc<AtomicBool>,
    pub(crate) total: Option<Arc<TotalLimit>>,
    pub(crate) pool: Weak<PoolInner>,
}

pub(crate) struct HostPool {
    pub(crate) origin: Origin,
    pub(crate) metrics: Arc<OriginMetrics>,
    limits: HostLimits,
    factory: Arc<AgentFactory>,
    /// The TLS configuration every agent of this origin shares.
    tls: Arc<ClientConfig>,
    closed: Arc<AtomicBool>,
    total: Option<Arc<TotalLimit>>,
    pool: Weak<PoolInner>,
    /// Guards the idle stack, the slot count and the lease counters.
    state: Mutex<HostState>,
    /// Signalled when an agent comes back or a slot frees (without a total
    /// cap; with one, waiters wait in the [`TotalLimit`]).
    available: Condvar,
    /// The origin's rate limiter, breaker and retry budget, shared by every
    /// client of the origin; set once, by the first to ask.
    policies: OnceLock<OriginPolicies>,
    warm_ups: WarmUps,
}

#[derive(Default)]
struct HostState {
    /// LIFO: push and pop at the end, so hot connections stay hot and the
    /// coldest, at index 0, age out.
    idle: Vec<IdleAgent>,
    /// Agents alive, plus retired agents whose socket is still open.
    slots: usize,
    in_use: usize,
    waiting: usize,
    leases_granted: u64,
    leases_waited: u64,
    leases_timed_out: u64,
    last_cleanup: Option<SystemTime>,
}

impl HostPool {
    pub(crate) fn new(parts: HostParts) -> Self {
        let HostParts {
            origin,
            metrics,
            limits,
            factory,
            closed,
            total,
            pool,
        } = parts;
        let tls = super::tls::for_origin(&factory.tls, &factory.sessions, origin.port());
        HostPool {
            origin,
            metrics,
            limits,
            factory,
            tls,
            closed,
            total,
            pool,
            state: Mutex::new(HostState::default()),
            available: Condvar::new(),
            policies: OnceLock::new(),
            warm_ups: WarmUps::default(),
        }
    }

    /// The origin's policies, made from `defaults` if it has none yet.
    pub(crate) fn policies(&self, defaults: impl FnOnce() -> PolicySettings) -> &OriginPolicies {
        self.policies
            .get_or_init(|| OriginPolicies::from_settings(defaults()))
    }

    /// The origin's policies if it has any, without making them.
    pub(crate) fn policies_if_made(&self) -> Option<&OriginPolicies> {
        self.policies.get()
    }

    /// Gives the origin `policies`; false if it already has some.
    pub(crate) fn set_policies(&self, policies: OriginPolicies) -> bool {
        self.policies.set(policies).is_ok()
    }

    pub(crate) fn max_body_bytes(&self) -> u64 {
        self.limits.max_body_bytes
    }

    fn shutdown_error(&self) -> Error {
        Error::PoolShutdown {
            origin: self.metrics.origin.clone(),
        }
    }

    /// Lends an agent, waiting up to `acquire_timeout`.
    pub(crate) fn lease(self: &Arc<Self>) -> Result<Lease> {
        self.lease_until(None)
    }

    /// Lends an agent: an idle one whose socket is free if any (no clock read,
    /// no allocation), else a new one if a slot is free, else an idle one whose
    /// socket is still busy, else waits up to `acquire_timeout` or `deadline`,
    /// whichever comes first.
    pub(crate) fn lease_until(self: &Arc<Self>, deadline: Option<Instant>) -> Result<Lease> {
        let mut st = self.state.lock();
        if self.closed.load(Relaxed) {
            return Err(self.shutdown_error());
        }
        // The hot path: the warmest idle agent, its socket free.
        if st.idle.last().is_some_and(IdleAgent::free)
            && let Some(idle) = st.idle.pop()
        {
            st.in_use += 1;
            st.leases_granted += 1;
            return Ok(Lease::new(idle.agent, self.clone()));
        }
        if let Some(taken) = self.take(&mut st) {
            drop(st);
            return Ok(self.grant(taken));
        }
        self.wait_for_lease(st, deadline)
    }

    /// Lends an agent only if one is available at once, without evicting
    /// another origin's; `None` if none is. For warming up.
    fn try_lease(self: &Arc<Self>) -> Result<Option<Lease>> {
        let mut st = self.state.lock();
        if self.closed.load(Relaxed) {
            return Err(self.shutdown_error());
        }
        let taken = self.take(&mut st);
        drop(st);
        Ok(taken.map(|t| self.grant(t)))
    }

    /// Takes what a lease can have right now, in order of preference, and
    /// counts it as lent.
    fn take(&self, st: &mut HostState) -> Option<Taken> {
        let taken = if let Some(i) = st.idle.iter().rposition(IdleAgent::free) {
            Taken::Idle(st.idle.remove(i).agent)
        } else if st.slots < self.limits.max && self.total.as_ref().is_none_or(|t| t.try_acquire())
        {
            st.slots += 1;
            Taken::New
        } else {
            // Its request will wait for the socket, as it would for a lease.
            Taken::Idle(st.idle.pop()?.agent)
        };
        st.in_use += 1;
        st.leases_granted += 1;
        Some(taken)
    }

    fn grant(self: &Arc<Self>, taken: Taken) -> Lease {
        let agent = match taken {
            Taken::Idle(agent) => agent,
            Taken::New => self.make_agent(),
        };
        Lease::new(agent, self.clone())
    }

    fn wait_for_lease<'a>(
        self: &'a Arc<Self>,
        mut st: parking_lot::MutexGuard<'a, HostState>,
        deadline: Option<Instant>,
    ) -> Result<Lease> {
        let start = Instant::now();
        let acquire = start.checked_add(self.limits.acquire_timeout);
        let deadline = match (acquire, deadline) {
            (Some(a), Some(d)) => Some(a.min(d)),
            (a, d) => a.or(d),
        };
        st.waiting += 1;
        if let Some(total) = &self.total {
            total.enter();
        }
        let _left = LeaveOnDrop(self.total.as_deref());
        loop {
            // Read before looking, so an event after the look wakes the wait.
            let seen = self.total.as_ref().map(|t| t.generation());
            if self.closed.load(Relaxed) {
                st.waiting -= 1;
                return Err(self.shutdown_error());
            }
            if let Some(taken) = self.take(&mut st) {
                st.waiting -= 1;
                st.leases_waited += 1;
                drop(st);
                self.metrics.acquire_wait.record(start.elapsed());
                return Ok(self.grant(taken));
            }
            // Only the pool-wide cap stands in the way: a free host slot.
            let total_blocked = self.total.is_some() && st.slots < self.limits.max;
            if deadline.is_some_and(|d| Instant::now() >= d) {
                st.waiting -= 1;
                st.leases_timed_out += 1;
                let err = self.timeout_error_locked(&st, start.elapsed(), total_blocked);
                drop(st);
                self.metrics.lease_timed_out();
                return Err(err);
            }
            match (&self.total, seen) {
                (Some(total), Some(seen)) => {
                    drop(st);
                    if !(total_blocked && evict_lru_idle(self)) {
                        total.wait_for_change(seen, deadline);
                    }
                    st = self.state.lock();
                }
                _ => match deadline {
                    Some(d) => {
                        self.available.wait_until(&mut st, d);
                    }
                    None => self.available.wait(&mut st),
                },
            }
        }
    }

    fn make_agent(self: &Arc<Self>) -> PooledAgent {
        self.factory.make(AgentParts {
            origin: self.origin.clone(),
            metrics: self.metrics.clone(),
            host: Arc::downgrade(self),
            tls: self.tls.clone(),
            dns: self.factory.dns.clone(),
            closed: self.closed.clone(),
        })
    }

    /// Takes an agent back from a lease. `discard` closes it.
    pub(crate) fn give_back(&self, agent: PooledAgent, discard: bool) {
        let now = Instant::now();
        let mut st = self.state.lock();
        st.in_use -= 1;
        // Read under the lock: a shutdown either sees this agent idle when it
        // closes the idle ones, or is seen here.
        let reason = if discard {
            Some(CloseReason::Discarded)
        } else if self.closed.load(Relaxed) {
            Some(CloseReason::Shutdown)
        } else if agent.wire.is_shut_down() {
            // The holder shut the agent down through a clone.
            Some(CloseReason::Discarded)
        } else if agent.wire.socket_expired(now) {
            Some(CloseReason::Lifetime)
        } else {
            None
        };
        match reason {
            None => {
                st.idle.push(IdleAgent { agent, since: now });
                drop(st);
                self.available.notify_one();
                if let Some(total) = &self.total {
                    total.wake();
                }
            }
            Some(reason) => {
                drop(st);
                self.retire(agent, reason);
            }
        }
    }

    /// Closes an agent outside any lock (dropping it closes its socket).
    fn retire(&self, agent: PooledAgent, reason: CloseReason) {
        let free_now = agent.wire.retire(reason);
        drop(agent);
        if free_now {
            self.slot_released();
        }
    }

    /// A slot of this host is free: an agent was retired and its socket is closed.
    pub(crate) fn slot_released(&self) {
        let mut st = self.state.lock();
        st.slots -= 1;
        drop(st);
        self.available.notify_one();
        if let Some(total) = &self.total {
            total.release();
        }
    }

    /// Closes idle agents past their lifetime, and those idle longer than
    /// `idle_timeout` as long as `min_idle` stay; records the pass.
    pub(crate) fn reap(&self, now: Instant) {
        let expired = {
            let mut st = self.state.lock();
            st.last_cleanup = Some(SystemTime::now());
            // Oldest first: the coldest go, the warmest stay for min_idle.
            let mut may_idle_out = st.idle.len().saturating_sub(self.limits.min_idle);
            take_idle(&mut st, |a| {
                if a.agent.wire.socket_expired(now) {
                    Some(CloseReason::Lifetime)
                } else if may_idle_out > 0
                    && now.saturating_duration_since(a.since) >= self.limits.idle_timeout
                {
                    may_idle_out -= 1;
                    Some(CloseReason::Idle)
                } else {
                    None
                }
            })
        };
        for (agent, reason) in expired {
            self.retire(agent, reason);
        }
    }

    /// Idle agents holding an open socket.
    fn warm_idle(&self) -> usize {
        let st = self.state.lock();
        st.idle.iter().filter(|a| a.agent.wire.has_socket()).count()
    }

    /// Starts opening connections until `min_idle` idle ones are warm; for the
    /// cleaner, which must not wait for a server: the warm-up runs on a thread
    /// of its own, one at a time per origin.
    pub(crate) fn keep_min_idle(self: &Arc<Self>, warm_path: &str) {
        let min = self.limits.min_idle;
        if min == 0 || self.warm_idle() >= min || !self.warm_ups.begin_top_up() {
            return;
        }
        let (host, path) = (self.clone(), warm_path.to_string());
        let spawned = std::thread::Builder::new()
            .name("etlpool-warm".into())
            .spawn(move || {
                host.top_up(&path);
                host.warm_ups.end_top_up();
            });
        if let Err(e) = spawned {
            self.warm_ups.end_top_up();
            log::warn!("keeping {min} idle connections to {}: {e}", self.origin);
        }
    }

    fn top_up(self: &Arc<Self>, warm_path: &str) {
        let min = self.limits.min_idle;
        let warm = self.warm_idle();
        if warm >= min {
            return;
        }
        let open = self.metrics.open_now();
        if let Err(e) = self.warm(open + (min - warm), warm_path) {
            log::debug!("keeping {min} idle connections to {}: {e}", self.origin);
        }
    }

    /// Opens connections until `target` are open (at most the per-host cap),
    /// each with one `HEAD warm_path`; returns how many it opened that stayed
    /// open. Uses only agents free right now: it never waits for a lease or
    /// evicts. A shutdown interrupts its request.
    pub(crate) fn warm(self: &Arc<Self>, target: usize, warm_path: &str) -> Result<usize> {
        let target = target.min(self.limits.max);
        let url = format!("{}{warm_path}", self.origin);
        let mut held = Vec::new();
        let mut opened = 0;
        while self.metrics.open_now() < target {
            let Some(lease) = self.try_lease()? else {
                break;
            };
            let wire = &lease.pooled().wire;
            if !wire.has_socket() {
                let request = Request::head(url.as_str())
                    .body(())
                    .map_err(|e| Error::config("warm_path", e.to_string()))?;
                let sent = {
                    let Some(_in_flight) =
                        self.warm_ups
                            .start(wire.id(), &lease.pooled().agent, &self.closed)
                    else {
                        return Err(self.shutdown_error());
                    };
                    lease.send(request)
                };
                if lease.last_exchange().sent {
                    self.metrics.warm_request();
                }
                sent?;
                // The server closed it after answering (or answered HEAD with
                // a body, which leaves it unusable): warming can't help, and
                // trying on would churn through the whole per-host cap.
                if !wire.has_socket() {
                    break;
                }
                opened += 1;
            }
            held.push(lease);
        }
        Ok(opened)
    }

    /// Interrupts warm-ups in flight, closes every idle agent and wakes all
    /// waiters (used at shutdown).
    pub(crate) fn close_idle(&self, reason: CloseReason) {
        self.warm_ups.interrupt_all();
        let closing = take_idle(&mut self.state.lock(), |_| Some(reason));
        for (agent, reason) in closing {
            self.retire(agent, reason);
        }
        self.available.notify_all();
        if let Some(total) = &self.total {
            total.wake();
        }
    }

    /// Closes the idle agent whose wire is `wire`, if it is idle: ureq shut it
    /// down (through a clone its last holder kept). One lent now is closed
    /// when it comes back.
    pub(crate) fn retire_shut_down(&self, wire: usize) {
        let mut st = self.state.lock();
        let Some(i) = st.idle.iter().position(|a| a.agent.wire.id() == wire) else {
            return;
        };
        let agent = st.idle.remove(i).agent;
        drop(st);
        self.retire(agent, CloseReason::Discarded);
    }

    /// When this host's coldest idle agent fell idle, for the total cap's LRU.
    pub(crate) fn coldest_idle(&self) -> Option<Instant> {
        self.state.lock().idle.first().map(|a| a.since)
    }

    /// Closes the coldest idle agent if it fell idle at `since`; returns whether
    /// one was closed.
    pub(crate) fn evict_coldest(&self, since: Instant) -> bool {
        let mut st = self.state.lock();
        if st.idle.first().map(|a| a.since) != Some(since) {
            return false;
        }
        let agent = st.idle.remove(0).agent;
        drop(st);
        self.retire(agent, CloseReason::Evicted);
        true
    }

    /// An agent outside the pool's caps, with a TLS configuration of its own (so
    /// no session is resumed) and no DNS cache: what a client without a pool
    /// uses. Counted under this origin's metrics.
    pub(crate) fn unpooled_agent(&self) -> Result<ureq::Agent> {
        Ok(self
            .factory
            .make(AgentParts {
                origin: self.origin.clone(),
                metrics: self.metrics.clone(),
                host: Weak::new(),
                tls: super::tls::client_config(self.factory.tls_options())?,
                dns: Arc::new(DnsCache::new(Duration::ZERO)),
                closed: Arc::new(AtomicBool::new(false)),
            })
            .agent)
    }

    pub(crate) fn pool(&self) -> Option<Arc<PoolInner>> {
        self.pool.upgrade()
    }

    fn timeout_error_locked(
        &self,
        st: &HostState,
        waited: Duration,
        total_cap_reached: bool,
    ) -> Error {
        Error::PoolTimeout(Box::new(PoolTimeout {
            origin: self.metrics.origin.clone(),
            waited,
            total: st.slots,
            in_use: st.in_use,
            idle: st.idle.len(),
            waiting: st.waiting,
            max: self.limits.max,
            total_cap_reached,
        }))
    }

    pub(crate) fn gauges(&self) -> HostGauges {
        let st = self.state.lock();
        HostGauges {
            leases_granted: st.leases_granted,
            leases_waited: st.leases_waited,
            leases_timed_out: st.leases_timed_out,
            in_use: st.in_use,
            idle: st.idle.len(),
            waiting: st.waiting,
        }
    }

    /// When the cleaner last looked at this origin.
    pub(crate) fn last_cleanup(&self) -> Option<SystemTime> {
        self.state.lock().last_cleanup
    }
}

/// What a lease got.
enum Taken {
    Idle(PooledAgent),
    New,
}

/// Stops counting a waiter in the total cap, however the wait ends.
struct LeaveOnDrop<'a>(Option<&'a TotalLimit>);

impl Drop for LeaveOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(total) = self.0 {
            total.leave();
        }
    }
}

/// Removes the idle agents `pick` chooses; the caller closes them after the
/// lock is released.
fn take_idle(
    st: &mut HostState,
    mut pick: impl FnMut(&IdleAgent) -> Option<CloseReason>,
) -> Vec<(PooledAgent, CloseReason)> {
    let mut taken = Vec::new();
    let mut kept = Vec::with_capacity(st.idle.len());
    for idle in st.idle.drain(..) {
        match pick(&idle) {
            Some(reason) => taken.push((idle.agent, reason)),
            None => kept.push(idle),
        }
    }
    st.idle = kept;
    taken
}
