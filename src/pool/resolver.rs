//! Name resolution for pooled agents.
//!
//! ureq asks its resolver on every request, even one that will go out on a pooled
//! connection, and its default resolver spawns a thread per call whenever a
//! timeout is set. With a total timeout on every request that thread dominated
//! the cost of a pooled request. This resolver:
//!
//! * skips IP literals and answers from a TTL cache (hits read a lock and bump
//!   a reference count, nothing more);
//! * looks each host up once at a time: concurrent misses for one host wait for
//!   the lookup in flight instead of making their own;
//! * resolves on the calling thread, except a miss under a deadline, which runs
//!   on a helper thread so the caller can give up in time; at most
//!   [`MAX_HELPERS`] helpers exist, so a hanging DNS server can't pile threads up;
//! * keeps at most [`MAX_ENTRIES`] hosts, and remembers a failed lookup for
//!   [`NEGATIVE_TTL`] (at most `dns_ttl`), so a burst of requests for a name that
//!   does not resolve makes one lookup, not one each.
//!
//! It is also the first guard of the origin rule: an agent resolves only its
//! own origin's host, so a request for another origin fails before any lookup.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, RwLock};
use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::NextTimeout;

use super::origin::Origin;
use super::transport::cross_origin;
use crate::metrics::OriginMetrics;

/// Hosts remembered at most; expired entries go first, then the soonest to expire.
pub(crate) const MAX_ENTRIES: usize = 1024;
/// Helper threads running lookups under a deadline at once, per pool.
pub(crate) const MAX_HELPERS: usize = 4;
/// How long a failed lookup is remembered.
pub(crate) const NEGATIVE_TTL: Duration = Duration::from_secs(1);

/// Looks a host up: the system resolver, or a stand-in in unit tests.
type LookupFn = Arc<dyn Fn(&str, u16) -> io::Result<Vec<IpAddr>> + Send + Sync>;

/// A lookup's answer: the addresses, or why there are none.
type Answer = Result<Arc<[IpAddr]>, Failure>;

#[derive(Debug, Clone)]
struct Failure {
    kind: io::ErrorKind,
    message: Arc<str>,
}

impl Failure {
    fn error(&self) -> ureq::Error {
        match self.kind {
            io::ErrorKind::NotFound => ureq::Error::HostNotFound,
            io::ErrorKind::TimedOut => ureq::Error::Timeout(ureq::Timeout::Resolve),
            // The system resolver's failures ("Name or service not known",
            // "Temporary failure in name resolution") come as uncategorized
            // I/O errors, which read as a failed connect.
            _ => ureq::Error::Other(Box::new(LookupFailed(self.message.clone()))),
        }
    }
}

/// A name lookup failed (the resolver's own message); a DNS failure, not a
/// failed connect.
#[derive(Debug)]
pub(crate) struct LookupFailed(Arc<str>);

impl std::fmt::Display for LookupFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LookupFailed {}

/// Resolved addresses shared by every agent of a pool.
pub(crate) struct DnsCache {
    ttl: Duration,
    negative_ttl: Duration,
    max_entries: usize,
    lookup: LookupFn,
    /// Guards the map only; lookups run outside it.
    /// Keyed by host alone so a lookup borrows the `&str` instead of allocating.
    entries: RwLock<HashMap<String, Slot>>,
    /// Helper threads running now; guarded, with `helper_freed` to wait for one.
    helpers: Mutex<usize>,
    helper_freed: Condvar,
    max_helpers: usize,
}

enum Slot {
    Ready { answer: Answer, expires: Instant },
    Pending(Arc<Flight>),
}

/// One lookup in progress, awaited by every caller that needs its host.
#[derive(Default)]
struct Flight {
    answer: Mutex<Option<Answer>>,
    done: Condvar,
}

impl Flight {
    fn complete(&self, answer: Answer) {
        *self.answer.lock() = Some(answer);
        self.done.notify_all();
    }

    /// The answer, or `None` if `deadline` passed first.
    fn wait(&self, deadline: Option<Instant>) -> Option<Answer> {
        let mut answer = self.answer.lock();
        loop {
            if let Some(a) = answer.as_ref() {
                return Some(a.clone());
            }
            match deadline {
                Some(d) => {
                    if self.done.wait_until(&mut answer, d).timed_out() {
                        return answer.clone();
                    }
                }
                None => self.done.wait(&mut answer),
            }
        }
    }
}

impl std::fmt::Debug for DnsCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsCache")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

fn system_lookup(host: &str, port: u16) -> io::Result<Vec<IpAddr>> {
    Ok((host, port).to_socket_addrs()?.map(|a| a.ip()).collect())
}

impl DnsCache {
    pub(crate) fn new(ttl: Duration) -> Self {
        DnsCache::with_lookup(ttl, MAX_ENTRIES, MAX_HELPERS, Arc::new(system_lookup))
    }

    fn with_lookup(
        ttl: Duration,
        max_entries: usize,
        max_helpers: usize,
        lookup: LookupFn,
    ) -> Self {
        DnsCache {
            ttl,
            negative_ttl: NEGATIVE_TTL.min(ttl),
            max_entries: max_entries.max(1),
            lookup,
            entries: RwLock::new(HashMap::new()),
            helpers: Mutex::new(0),
            helper_freed: Condvar::new(),
            max_helpers: max_helpers.max(1),
        }
    }

    /// The hot path: `f` applied to the fresh cached answer for `host`, under
    /// the read lock (no clone of the addresses); `None` on a miss.
    fn fresh<R>(
        &self,
        host: &str,
        now: Instant,
        f: impl FnOnce(&[IpAddr]) -> R,
    ) -> Option<Result<R, Failure>> {
        match self.entries.read().get(host) {
            Some(Slot::Ready { answer, expires }) if *expires > now => {
                Some(answer.as_ref().map(|ips| f(ips)).map_err(Failure::clone))
            }
            _ => None,
        }
    }

    /// The addresses of `host`, and whether they came without a lookup of
    /// this caller's own (from the cache, or from another caller's lookup).
    fn resolve(
        self: &Arc<Self>,
        host: &str,
        port: u16,
        deadline: Option<Instant>,
    ) -> Result<(Arc<[IpAddr]>, bool), ureq::Error> {
        if self.ttl.is_zero() {
            // No cache: what a client without a pool does, a lookup per call.
            let answer = self.run_lookup(host, port, deadline)?;
            return answer.map(|ips| (ips, false)).map_err(|f| f.error());
        }
        let now = Instant::now();
        let (flight, leader) = {
            let mut entries = self.entries.write();
            match entries.get(host) {
                Some(Slot::Ready { answer, expires }) if *expires > now => {
                    return answer.clone().map(|ips| (ips, true)).map_err(|f| f.error());
                }
                Some(Slot::Pending(flight)) => (flight.clone(), false),
                _ => {
                    make_room(&mut entries, self.max_entries, now);
                    let flight = Arc::new(Flight::default());
                    entries.insert(host.to_string(), Slot::Pending(flight.clone()));
                    (flight, true)
                }
            }
        };
        if leader {
            self.lead(host, port, &flight, deadline);
        }
        match flight.wait(deadline) {
            Some(answer) => answer.map(|ips| (ips, !leader)).map_err(|f| f.error()),
            None => Err(ureq::Error::Timeout(ureq::Timeout::Resolve)),
        }
    }

    /// Runs the lookup for a flight this caller started: here, or on a helper
    /// thread under a deadline. The answer goes into the cache and the flight.
    fn lead(
        self: &Arc<Self>,
        host: &str,
        port: u16,
        flight: &Arc<Flight>,
        deadline: Option<Instant>,
    ) {
        let Some(deadline) = deadline else {
            let answer = self.lookup_now(host, port);
            self.publish(host, flight, answer);
            return;
        };
        if !self.take_helper(deadline) {
            // Every helper is stuck (a hanging DNS server): give up without
            // remembering it, so the next caller tries again.
            self.publish(
                host,
                flight,
                Err(Failure {
                    kind: io::ErrorKind::TimedOut,
                    message: "every DNS helper is busy".into(),
                }),
            );
            return;
        }
        let (cache, owned, in_flight) = (self.clone(), host.to_string(), flight.clone());
        let spawned = std::thread::Builder::new()
            .name("etlpool-dns".into())
            .spawn(move || {
                let answer = cache.lookup_now(&owned, port);
                cache.publish(&owned, &in_flight, answer);
                cache.release_helper();
            });
        if let Err(e) = spawned {
            self.release_helper();
            let failure = Failure {
                // Not remembered: the next caller may get a thread.
                kind: io::ErrorKind::TimedOut,
                message: format!("starting a DNS helper thread: {e}").into(),
            };
            self.publish(host, flight, Err(failure));
        }
    }

    /// The lookup without the cache, for a cache with no TTL.
    fn run_lookup(
        self: &Arc<Self>,
        host: &str,
        port: u16,
        deadline: Option<Instant>,
    ) -> Result<Answer, ureq::Error> {
        let flight = Arc::new(Flight::default());
        self.lead(host, port, &flight, deadline);
        flight
            .wait(deadline)
            .ok_or(ureq::Error::Timeout(ureq::Timeout::Resolve))
    }

    fn lookup_now(&self, host: &str, port: u16) -> Answer {
        match (self.lookup)(host, port) {
            Ok(ips) if ips.is_empty() => Err(Failure {
                kind: io::ErrorKind::NotFound,
                message: "no addresses".into(),
            }),
            Ok(ips) => Ok(ips.into()),
            Err(e) => Err(Failure {
                kind: e.kind(),
                message: e.to_string().into(),
            }),
        }
    }

    /// Stores `answer` for `host` (a failure briefly, a timeout not at all)
    /// and hands it to everyone waiting on `flight`.
    fn publish(&self, host: &str, flight: &Arc<Flight>, answer: Answer) {
        if !self.ttl.is_zero() {
            let mut entries = self.entries.write();
            let ours =
                matches!(entries.get(host), Some(Slot::Pending(f)) if Arc::ptr_eq(f, flight));
            if ours {
                let ttl = match &answer {
                    Ok(_) => Some(self.ttl),
                    Err(f) if f.kind == io::ErrorKind::TimedOut => None,
                    Err(_) => Some(self.negative_ttl).filter(|t| !t.is_zero()),
                };
                match ttl.and_then(|t| Instant::now().checked_add(t)) {
                    Some(expires) => {
                        let slot = Slot::Ready {
                            answer: answer.clone(),
                            expires,
                        };
                        entries.insert(host.to_string(), slot);
                    }
                    None => {
                        entries.remove(host);
                    }
                }
            }
        }
        flight.complete(answer);
    }

    /// Takes a helper slot, waiting for one until `deadline`.
    fn take_helper(&self, deadline: Instant) -> bool {
        let mut running = self.helpers.lock();
        while *running >= self.max_helpers {
            if self
                .helper_freed
                .wait_until(&mut running, deadline)
                .timed_out()
                && *running >= self.max_helpers
            {
                return false;
            }
        }
        *running += 1;
        true
    }

    fn release_helper(&self) {
        *self.helpers.lock() -= 1;
        self.helper_freed.notify_one();
    }
}

/// Keeps the map under `max` entries before one is added: drops expired
/// answers, then the one that expires soonest. Lookups in flight stay.
fn make_room(entries: &mut HashMap<String, Slot>, max: usize, now: Instant) {
    if entries.len() < max {
        return;
    }
    entries.retain(|_, slot| !matches!(slot, Slot::Ready { expires, .. } if *expires <= now));
    while entries.len() >= max {
        let soonest = entries
            .iter()
            .filter_map(|(host, slot)| match slot {
                Slot::Ready { expires, .. } => Some((*expires, host.clone())),
                Slot::Pending(_) => None,
            })
            .min();
        match soonest {
            Some((_, host)) => {
                entries.remove(&host);
            }
            None => return,
        }
    }
}

/// The resolver handed to each pooled agent: the pool's cache plus the origin's
/// counters.
#[derive(Clone)]
pub(crate) struct PoolResolver {
    pub(crate) cache: Arc<DnsCache>,
    pub(crate) metrics: Arc<OriginMetrics>,
    pub(crate) origin: Origin,
}

impl std::fmt::Debug for PoolResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolResolver").finish_non_exhaustive()
    }
}

impl Resolver for PoolResolver {
    fn resolve(
        &self,
        uri: &Uri,
        config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        // Through a CONNECT proxy ureq resolves only the proxy's name; the
        // connector checks the target.
        if config.proxy().is_none() && !self.origin.matches(uri) {
            return Err(cross_origin(&self.origin, uri));
        }
        let authority = uri
            .authority()
            .ok_or_else(|| ureq::Error::BadUri(format!("{uri} has no host")))?;
        let port = match (authority.port_u16(), uri.scheme_str()) {
            (Some(p), _) => p,
            (None, Some("https")) => 443,
            (None, Some("http")) => 80,
            (None, other) => {
                return Err(ureq::Error::BadUri(format!("unsupported scheme {other:?}")));
            }
        };
        let host = authority.host();
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let mut out = self.empty();
        if let Ok(ip) = bare.parse::<IpAddr>() {
            out.push(SocketAddr::new(ip, port));
            return Ok(out);
        }
        let fill = |out: &mut ResolvedSocketAddrs, ips: &[IpAddr]| {
            let addrs = ips.iter().map(|ip| SocketAddr::new(*ip, port));
            for addr in config.ip_family().keep_wanted(addrs).take(16) {
                out.push(addr);
            }
        };
        let now = Instant::now();
        match self.cache.fresh(host, now, |ips| fill(&mut out, ips)) {
            Some(answer) => {
                self.metrics.dns(true);
                answer.map_err(|f| f.error())?;
            }
            None => {
                let deadline = if timeout.after.is_not_happening() {
                    None
                } else {
                    now.checked_add(*timeout.after)
                };
                let (ips, hit) = self
                    .cache
                    .resolve(host, port, deadline)
                    .map_err(|e| match e {
                        ureq::Error::Timeout(_) => ureq::Error::Timeout(timeout.reason),
                        other => other,
                    })?;
                self.metrics.dns(hit);
                fill(&mut out, &ips);
            }
        }
        if out.is_empty() {
            return Err(ureq::Error::HostNotFound);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

    const LOCAL: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    /// A lookup that counts its calls, blocks until `gate` says go, and
    /// answers `LOCAL` (or fails for names starting with "bad").
    fn gated(calls: Arc<AtomicUsize>, gate: crossbeam_channel::Receiver<()>) -> LookupFn {
        Arc::new(move |host: &str, _| {
            calls.fetch_add(1, SeqCst);
            let _ = gate.recv();
            if host.starts_with("bad") {
                Err(io::Error::new(io::ErrorKind::NotFound, "no such host"))
            } else {
                Ok(vec![LOCAL])
            }
        })
    }

    fn soon(ms: u64) -> Option<Instant> {
        Instant::now().checked_add(Duration::from_millis(ms))
    }

    #[test]
    fn concurrent_misses_share_one_lookup() {
        let calls = Arc::new(AtomicUsize::new(0));
        let (go, gate) = crossbeam_channel::unbounded();
        let cache = Arc::new(DnsCache::with_lookup(
            Duration::from_secs(60),
            8,
            2,
            gated(calls.clone(), gate),
        ));
        std::thread::scope(|s| {
            let waiters: Vec<_> = (0..8)
                .map(|_| {
                    s.spawn(|| {
                        cache
                            .resolve("h", 80, soon(10_000))
                            .map(|(ips, _)| ips.to_vec())
                    })
                })
                .collect();
            while calls.load(SeqCst) == 0 {
                std::thread::yield_now();
            }
            go.send(()).unwrap();
            for w in waiters {
                assert_eq!(w.join().unwrap().unwrap(), vec![LOCAL]);
            }
        });
        assert_eq!(calls.load(SeqCst), 1);
        // Cached now: no lookup, reported as a hit.
        assert!(cache.resolve("h", 80, None).unwrap().1);
        assert_eq!(calls.load(SeqCst), 1);
    }

    #[test]
    fn a_hanging_dns_server_gets_a_bounded_number_of_helpers() {
        let calls = Arc::new(AtomicUsize::new(0));
        let (go, gate) = crossbeam_channel::unbounded();
        let cache = Arc::new(DnsCache::with_lookup(
            Duration::from_secs(60),
            64,
            2,
            gated(calls.clone(), gate),
        ));
        // Ten hosts, each asked with a short deadline while DNS hangs.
        for i in 0..10 {
            let err = cache.resolve(&format!("h{i}"), 80, soon(20)).unwrap_err();
            assert!(matches!(err, ureq::Error::Timeout(_)), "{err:?}");
        }
        let started = Instant::now() + Duration::from_secs(10);
        while calls.load(SeqCst) < 2 {
            assert!(Instant::now() < started, "the helpers never started");
            std::thread::yield_now();
        }
        assert_eq!(
            calls.load(SeqCst),
            2,
            "only two helpers may be stuck at once"
        );
        assert_eq!(*cache.helpers.lock(), 2);
        drop(go);
        // Once DNS answers, the helpers finish and the next lookup gets one.
        let freed = Instant::now() + Duration::from_secs(10);
        while *cache.helpers.lock() > 0 {
            assert!(Instant::now() < freed);
            std::thread::yield_now();
        }
        assert!(cache.resolve("h9", 80, soon(10_000)).is_ok());
    }

    #[test]
    fn a_failed_lookup_is_remembered_briefly() {
        let calls = Arc::new(AtomicUsize::new(0));
        let (go, gate) = crossbeam_channel::unbounded();
        drop(go);
        let mut cache =
            DnsCache::with_lookup(Duration::from_secs(60), 8, 2, gated(calls.clone(), gate));
        cache.negative_ttl = Duration::from_millis(100);
        let cache = Arc::new(cache);
        for _ in 0..5 {
            let err = cache.resolve("bad.example", 80, None).unwrap_err();
            assert!(matches!(err, ureq::Error::HostNotFound), "{err:?}");
        }
        assert_eq!(calls.load(SeqCst), 1);
        std::thread::sleep(Duration::from_millis(150));
        assert!(cache.resolve("bad.example", 80, None).is_err());
        assert_eq!(
            calls.load(SeqCst),
            2,
            "the failure is looked up again once it expired"
        );
        assert_eq!(NEGATIVE_TTL.min(Duration::from_secs(60)), NEGATIVE_TTL);
    }

    #[test]
    fn the_cache_keeps_at_most_its_bound() {
        let calls = Arc::new(AtomicUsize::new(0));
        let (go, gate) = crossbeam_channel::unbounded();
        drop(go);
        let cache = Arc::new(DnsCache::with_lookup(
            Duration::from_secs(60),
            4,
            2,
            gated(calls.clone(), gate),
        ));
        for i in 0..20 {
            cache.resolve(&format!("h{i}"), 80, None).unwrap();
        }
        assert_eq!(cache.entries.read().len(), 4);
        // The newest are kept.
        assert!(cache.resolve("h19", 80, None).unwrap().1);
        assert_eq!(calls.load(SeqCst), 20);
    }
}
