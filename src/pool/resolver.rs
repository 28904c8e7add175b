//! Name resolution for pooled agents.
//!
//! ureq asks its resolver on every request, even one that will go out on a pooled
//! connection, and its default resolver spawns a thread per call whenever a
//! timeout is set. With a total timeout on every request that thread dominated
//! the cost of a pooled request. This resolver skips IP literals, answers from a
//! TTL cache, and resolves on the calling thread; only a cache miss under a
//! deadline uses a helper thread, so the deadline can be honoured.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use parking_lot::RwLock;
use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::NextTimeout;

use crate::metrics::OriginMetrics;

/// Resolved addresses shared by every agent of a pool.
#[derive(Debug, Default)]
pub(crate) struct DnsCache {
    ttl: Duration,
    /// Guards the map only; lookups run outside it.
    /// Keyed by host alone so a lookup borrows the `&str` instead of allocating.
    entries: RwLock<HashMap<String, Entry>>,
}

#[derive(Debug, Clone)]
struct Entry {
    ips: Vec<IpAddr>,
    expires: Instant,
}

impl DnsCache {
    pub(crate) fn new(ttl: Duration) -> Self {
        DnsCache {
            ttl,
            entries: RwLock::new(HashMap::new()),
        }
    }

    fn get(&self, host: &str) -> Option<Vec<IpAddr>> {
        let entries = self.entries.read();
        let e = entries.get(host)?;
        (e.expires > Instant::now()).then(|| e.ips.clone())
    }

    fn put(&self, host: &str, ips: Vec<IpAddr>) {
        if self.ttl.is_zero() {
            return;
        }
        let Some(expires) = Instant::now().checked_add(self.ttl) else {
            return;
        };
        self.entries
            .write()
            .insert(host.to_string(), Entry { ips, expires });
    }
}

/// The resolver handed to each pooled agent: the pool's cache plus the origin's
/// counters.
#[derive(Clone)]
pub(crate) struct PoolResolver {
    pub(crate) cache: Arc<DnsCache>,
    pub(crate) metrics: Arc<OriginMetrics>,
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
        let ips = match self.cache.get(host) {
            Some(ips) => {
                self.metrics.dns(true);
                ips
            }
            None => {
                self.metrics.dns(false);
                let ips = lookup(host, port, timeout)?;
                self.cache.put(host, ips.clone());
                ips
            }
        };
        let addrs = ips.into_iter().map(|ip| SocketAddr::new(ip, port));
        for addr in config.ip_family().keep_wanted(addrs).take(16) {
            out.push(addr);
        }
        if out.is_empty() {
            return Err(ureq::Error::HostNotFound);
        }
        Ok(out)
    }
}

fn lookup(host: &str, port: u16, timeout: NextTimeout) -> Result<Vec<IpAddr>, ureq::Error> {
    let target = (host.to_string(), port);
    let ips = |addrs: std::vec::IntoIter<SocketAddr>| addrs.map(|a| a.ip()).collect::<Vec<_>>();
    if timeout.after.is_not_happening() {
        return Ok(ips(target.to_socket_addrs()?));
    }
    // getaddrinfo can't be cancelled: run it on a helper thread so the caller can
    // give up at the deadline. Only cache misses get here.
    let (tx, rx) = mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("etlpool-dns".into())
        .spawn(move || {
            let _ = tx.send(target.to_socket_addrs().map(ips));
        })?;
    match rx.recv_timeout(*timeout.after) {
        Ok(result) => Ok(result?),
        Err(mpsc::RecvTimeoutError::Timeout) => Err(ureq::Error::Timeout(timeout.reason)),
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(ureq::Error::HostNotFound),
    }
}
