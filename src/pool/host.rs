//! One origin's share of the pool: its idle stack, its slots and its waiters.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use rustls::ClientConfig;

use super::PoolInner;
use super::lease::Lease;
use super::origin::Origin;
use super::resolver::{DnsCache, PoolResolver};
use super::total::TotalLimit;
use super::transport::{AgentWire, PooledConnector};
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

/// Everything needed to make agents, shared by all host pools of one pool.
pub(crate) struct AgentFactory {
    pub(crate) ureq_config: ureq::config::Config,
    pub(crate) tls: Arc<ClientConfig>,
    pub(crate) dns: Arc<DnsCache>,
    pub(crate) epoch: Instant,
    pub(crate) lifetime: Option<(Duration, f64)>,
    pub(crate) acquire_timeout: Duration,
    pub(crate) proxied: bool,
    pub(crate) tls_options: super::config::TlsOptions,
}

impl AgentFactory {
    pub(crate) fn tls_options(&self) -> &super::config::TlsOptions {
        &self.tls_options
    }

    /// An agent whose connector reports to `metrics` and frees its slot in `host`.
    pub(crate) fn make(
        &self,
        metrics: Arc<OriginMetrics>,
        host: Weak<HostPool>,
        tls: Arc<ClientConfig>,
        dns: Arc<DnsCache>,
    ) -> PooledAgent {
        let lifetime = if host.strong_count() > 0 {
            self.lifetime
        } else {
            None
        };
        let wire = Arc::new(AgentWire::new(metrics.clone(), host, self.epoch, lifetime));
        let connector = PooledConnector {
            wire: wire.clone(),
            tls,
            wait: self.acquire_timeout,
            proxied: self.proxied,
        };
        let resolver = PoolResolver {
            cache: dns,
            metrics,
        };
        let agent = ureq::Agent::with_parts(self.ureq_config.clone(), connector, resolver);
        PooledAgent { agent, wire }
    }
}

/// Limits and flags a host pool reads on every lease, copied so the hot path
/// touches nothing but its own lock.
pub(crate) struct HostLimits {
    pub(crate) max: usize,
    pub(crate) acquire_timeout: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) max_body_bytes: u64,
}

pub(crate) struct HostPool {
    pub(crate) origin: Origin,
    pub(crate) metrics: Arc<OriginMetrics>,
    limits: HostLimits,
    factory: Arc<AgentFactory>,
    closed: Arc<AtomicBool>,
    total: Option<Arc<TotalLimit>>,
    pool: Weak<PoolInner>,
    /// Guards the idle stack, the slot count and the lease counters.
    state: Mutex<HostState>,
    /// Signalled when an agent comes back or a slot frees.
    available: Condvar,
    /// The origin's rate limiter, breaker and retry budget, shared by every
    /// client of the origin; set once, by the first to ask.
    policies: OnceLock<OriginPolicies>,
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
}

impl HostPool {
    pub(crate) fn new(
        origin: Origin,
        metrics: Arc<OriginMetrics>,
        limits: HostLimits,
        factory: Arc<AgentFactory>,
        closed: Arc<AtomicBool>,
        total: Option<Arc<TotalLimit>>,
        pool: Weak<PoolInner>,
    ) -> Self {
        HostPool {
            origin,
            metrics,
            limits,
            factory,
            closed,
            total,
            pool,
            state: Mutex::new(HostState::default()),
            available: Condvar::new(),
            policies: OnceLock::new(),
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

    /// Lends an agent: an idle one if any (no clock read, no allocation), else a
    /// new one if a slot is free, else waits up to `acquire_timeout`.
    pub(crate) fn lease(self: &Arc<Self>) -> Result<Lease> {
        let mut st = self.state.lock();
        if self.closed.load(Relaxed) {
            return Err(self.shutdown_error());
        }
        if let Some(idle) = st.idle.pop() {
            st.in_use += 1;
            st.leases_granted += 1;
            return Ok(Lease::new(idle.agent, self.clone()));
        }
        if st.slots < self.limits.max {
            st.slots += 1;
            st.in_use += 1;
            st.leases_granted += 1;
            drop(st);
            return self.new_agent_lease(None);
        }
        self.wait_for_lease(st)
    }

    fn wait_for_lease(
        self: &Arc<Self>,
        mut st: parking_lot::MutexGuard<'_, HostState>,
    ) -> Result<Lease> {
        let start = Instant::now();
        let deadline = start.checked_add(self.limits.acquire_timeout);
        st.waiting += 1;
        loop {
            let timed_out = match deadline {
                Some(d) => self.available.wait_until(&mut st, d).timed_out(),
                None => {
                    self.available.wait(&mut st);
                    false
                }
            };
            if self.closed.load(Relaxed) {
                st.waiting -= 1;
                return Err(self.shutdown_error());
            }
            if let Some(idle) = st.idle.pop() {
                st.waiting -= 1;
                st.in_use += 1;
                st.leases_granted += 1;
                st.leases_waited += 1;
                drop(st);
                self.metrics.acquire_wait.record(start.elapsed());
                return Ok(Lease::new(idle.agent, self.clone()));
            }
            if st.slots < self.limits.max {
                st.waiting -= 1;
                st.slots += 1;
                st.in_use += 1;
                st.leases_granted += 1;
                st.leases_waited += 1;
                drop(st);
                self.metrics.acquire_wait.record(start.elapsed());
                return self.new_agent_lease(deadline);
            }
            if timed_out {
                st.waiting -= 1;
                st.leases_timed_out += 1;
                let err = PoolTimeout {
                    origin: self.metrics.origin.clone(),
                    waited: start.elapsed(),
                    total: st.slots,
                    in_use: st.in_use,
                    idle: st.idle.len(),
                    waiting: st.waiting,
                    max: self.limits.max,
                    total_cap_reached: false,
                };
                drop(st);
                self.metrics.lease_timed_out();
                return Err(Error::PoolTimeout(Box::new(err)));
            }
        }
    }

    /// Makes an agent for a slot already reserved; gives the slot back on failure.
    fn new_agent_lease(self: &Arc<Self>, deadline: Option<Instant>) -> Result<Lease> {
        if let Some(total) = &self.total {
            let deadline =
                deadline.or_else(|| Instant::now().checked_add(self.limits.acquire_timeout));
            if let Err(e) = total.acquire(self, deadline) {
                let mut st = self.state.lock();
                st.slots -= 1;
                st.in_use -= 1;
                drop(st);
                self.available.notify_one();
                return Err(e);
            }
        }
        Ok(Lease::new(self.make_agent(), self.clone()))
    }

    fn make_agent(self: &Arc<Self>) -> PooledAgent {
        self.factory.make(
            self.metrics.clone(),
            Arc::downgrade(self),
            self.factory.tls.clone(),
            self.factory.dns.clone(),
        )
    }

    /// Takes an agent back from a lease. `discard` closes it.
    pub(crate) fn give_back(&self, agent: PooledAgent, discard: bool) {
        let now = Instant::now();
        let reason = if discard {
            Some(CloseReason::Discarded)
        } else if self.closed.load(Relaxed) {
            Some(CloseReason::Shutdown)
        } else if agent.wire.socket_expired(now) {
            Some(CloseReason::Lifetime)
        } else {
            None
        };
        let mut st = self.state.lock();
        st.in_use -= 1;
        match reason {
            None => {
                st.idle.push(IdleAgent { agent, since: now });
                drop(st);
                self.available.notify_one();
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
        if let Some(total) = &self.total {
            total.release();
        }
        self.available.notify_one();
    }

    /// Closes idle agents past `idle_timeout` or their lifetime.
    pub(crate) fn reap(&self, now: Instant) {
        let expired = self.take_idle(|a| {
            if now.saturating_duration_since(a.since) >= self.limits.idle_timeout {
                Some(CloseReason::Idle)
            } else if a.agent.wire.socket_expired(now) {
                Some(CloseReason::Lifetime)
            } else {
                None
            }
        });
        for (agent, reason) in expired {
            self.retire(agent, reason);
        }
    }

    /// Closes every idle agent and wakes all waiters (used at shutdown).
    pub(crate) fn close_idle(&self, reason: CloseReason) {
        for (agent, reason) in self.take_idle(|_| Some(reason)) {
            self.retire(agent, reason);
        }
        self.available.notify_all();
    }

    /// Removes the idle agents `pick` chooses, under the lock; the caller closes
    /// them after it is released.
    fn take_idle(
        &self,
        pick: impl Fn(&IdleAgent) -> Option<CloseReason>,
    ) -> Vec<(PooledAgent, CloseReason)> {
        let mut st = self.state.lock();
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
        let tls = super::tls::client_config(self.factory.tls_options())?;
        let dns = Arc::new(DnsCache::new(Duration::ZERO));
        Ok(self
            .factory
            .make(self.metrics.clone(), Weak::new(), tls, dns)
            .agent)
    }

    pub(crate) fn pool(&self) -> Option<Arc<PoolInner>> {
        self.pool.upgrade()
    }

    /// A [`PoolTimeout`] describing this host, for waits that gave up elsewhere.
    pub(crate) fn timeout_error(&self, waited: Duration, total_cap_reached: bool) -> Error {
        let st = self.state.lock();
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
}
