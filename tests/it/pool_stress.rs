//! Stress tests in the style of crossbeam-channel's `tests/array.rs`: threads run
//! randomized schedules of leases, requests, body reads after the lease went
//! back, clones used from other threads, discards, panics, cleaner evictions
//! and shutdown, over several origins with a per-host and a total cap, while a
//! monitor checks the caps against the kernel's own socket table. At the end
//! the books must balance: no slot leaked, `created + reused = sent`, closes
//! by reason add up to `created - open`.
//!
//! Sized to finish in seconds; `ETLPOOL_STRESS_SCALE=N` runs N times the
//! operations, and `ETLPOOL_STRESS_SEED` replays a schedule.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::time::Duration;

use crate::support::{TestCa, WAIT, server, wait_until};
use etlpool::mock::server::{Answer, HttpServer, Response};
use etlpool::{Error, Pool};

const PER_HOST: usize = 3;
const TOTAL: usize = 5;
const THREADS: usize = 8;
const OPS_PER_THREAD: usize = 150;

fn scale() -> usize {
    std::env::var("ETLPOOL_STRESS_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
        .max(1)
}

fn seed() -> u64 {
    std::env::var("ETLPOOL_STRESS_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..))
}

/// A server for the stress runs: small answers, a large one, and one that
/// closes the connection after answering.
fn stress_server(tls: Option<&TestCa>) -> HttpServer {
    let handler = |req: etlpool::mock::server::Request, _: &etlpool::mock::server::ConnContext| {
        let answer = match req.path.as_str() {
            "/big" => Response::bytes(200, "text/plain", vec![b'b'; 64 * 1024]),
            "/close" => Response::bytes(200, "text/plain", b"bye".to_vec()).close(),
            "/error" => Response::bytes(503, "text/plain", b"later".to_vec()),
            _ => Response::bytes(200, "text/plain", b"ok".to_vec()),
        };
        Answer::Response(answer)
    };
    match tls {
        None => server(handler),
        Some(ca) => {
            let opts = etlpool::mock::server::ServerOptions {
                tls: Some(ca.server.clone()),
                ..Default::default()
            };
            HttpServer::start(opts, std::sync::Arc::new(handler)).unwrap()
        }
    }
}

/// Established client sockets to each of `ports`, from one read of the
/// kernel's table (Linux; `None` elsewhere).
fn established_to(ports: &[u16]) -> Option<Vec<usize>> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let mut counts = vec![0; ports.len()];
    for line in table.lines().skip(1) {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() < 4 || cols[3] != "01" {
            continue;
        }
        let remote = cols[2]
            .rsplit(':')
            .next()
            .and_then(|p| u16::from_str_radix(p, 16).ok());
        if let Some(i) = ports.iter().position(|p| Some(*p) == remote) {
            counts[i] += 1;
        }
    }
    Some(counts)
}

/// Counts the pool's open sockets from its own events, which the transport
/// sends when a socket has connected and after it has closed; keeps the most
/// ever open at once, per origin and in all.
#[derive(Default)]
struct SocketCounter {
    /// Guards the counts; the events of all threads go through it in order.
    open: parking_lot::Mutex<(std::collections::HashMap<String, usize>, usize)>,
    most: parking_lot::Mutex<(usize, usize)>,
}

impl etlpool::EventHandler for SocketCounter {
    fn on_event(&self, event: &etlpool::Event) {
        let mut open = self.open.lock();
        match event {
            etlpool::Event::Connected { origin, .. } => {
                let n = open.0.entry(origin.clone()).or_default();
                *n += 1;
                let per_host = *n;
                open.1 += 1;
                let mut most = self.most.lock();
                most.0 = most.0.max(per_host);
                most.1 = most.1.max(open.1);
            }
            etlpool::Event::Closed { origin, .. } => {
                if let Some(n) = open.0.get_mut(origin) {
                    *n = n.saturating_sub(1);
                }
                open.1 = open.1.saturating_sub(1);
            }
            _ => {}
        }
    }
}

/// Watches the caps in the kernel's table until `stop`. The table is read in
/// pages while it changes (and grows with every closed connection's
/// TIME_WAIT entry), so under churn one read can count a socket being
/// replaced twice; a count over a cap in [`STREAK`] reads in a row is a
/// broken cap (a leaked socket stays), a single one is not. The exact check
/// is [`SocketCounter`]'s.
fn monitor(servers: &[HttpServer], stop: &AtomicBool, samples: &AtomicU64) {
    let ports: Vec<u16> = servers.iter().map(|s| s.addr().port()).collect();
    let mut streak = 0;
    while !stop.load(SeqCst) {
        let Some(counts) = established_to(&ports) else {
            return;
        };
        let over = counts.iter().any(|&n| n > PER_HOST) || counts.iter().sum::<usize>() > TOTAL;
        streak = if over { streak + 1 } else { 0 };
        assert!(
            streak < STREAK,
            "sockets open per server, {STREAK} reads in a row: {counts:?}"
        );
        samples.fetch_add(1, SeqCst);
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Reads of the kernel's table over a cap, in a row, that mean a broken cap.
const STREAK: usize = 5;

/// One random step against one of `urls`.
fn step(pool: &Pool, urls: &[String], rng: &mut fastrand::Rng) {
    let url = &urls[rng.usize(..urls.len())];
    let path = ["/", "/", "/", "/big", "/close", "/error"][rng.usize(..6)];
    let target = format!("{url}{path}");
    let lease = match pool.lease(url) {
        Ok(lease) => lease,
        // Under load a lease may time out, and after shutdown none is granted.
        Err(Error::PoolTimeout(_) | Error::PoolShutdown { .. }) => return,
        Err(e) => panic!("lease {url}: {e}"),
    };
    match rng.u8(..8) {
        // A whole request through the helper.
        0 | 1 => {
            let _ = lease.fetch(&target);
        }
        // The body read after the lease went back.
        2 => {
            let response = lease.get(&target).call();
            drop(lease);
            if let Ok(mut response) = response {
                let _ = response.body_mut().read_to_vec();
            }
        }
        // A clone used from another thread while the holder uses the agent too.
        3 => {
            let clone: ureq::Agent = (*lease).clone();
            std::thread::scope(|s| {
                s.spawn(|| {
                    if let Ok(mut r) = clone.get(&target).call() {
                        let _ = r.body_mut().read_to_vec();
                    }
                });
                let _ = lease.fetch(&target);
            });
        }
        // Discarded after use.
        4 => {
            let _ = lease.fetch(&target);
            lease.discard();
        }
        // A panic unwinding through the lease holder, body unread. (Raised
        // with resume_unwind, which skips the panic hook and its message.)
        5 => {
            let caught = catch_unwind(AssertUnwindSafe(|| {
                let _response = lease.get(&target).call();
                std::panic::resume_unwind(Box::new("a job failed while holding a lease"));
            }));
            assert!(caught.is_err());
        }
        // A body dropped unread.
        6 => {
            let _ = lease.get(&target).call();
        }
        // Warming the origin up while others use it.
        _ => {
            drop(lease);
            let _ = pool.warm(url, PER_HOST);
        }
    }
}

/// Runs the schedule; with `shutdown_at`, one thread shuts the pool down
/// after that many of its steps while the others go on.
fn run(shutdown_at: Option<usize>) {
    let seed = seed();
    let ca = TestCa::new();
    let servers = vec![
        stress_server(None),
        stress_server(None),
        stress_server(Some(&ca)),
    ];
    let urls: Vec<String> = servers.iter().map(|s| s.url()).collect();
    let counter = std::sync::Arc::new(SocketCounter::default());
    let pool = Pool::builder()
        .max_connections_per_host(PER_HOST)
        .max_connections_total(Some(TOTAL))
        .acquire_timeout(Duration::from_millis(500))
        .idle_timeout(Duration::from_millis(15))
        .reap_interval(Duration::from_millis(5))
        .ca_pem(Some(ca.ca_pem.clone()))
        .event_handler(counter.clone())
        .build()
        .unwrap();
    let ops = OPS_PER_THREAD * scale();
    let stop = AtomicBool::new(false);
    let samples = AtomicU64::new(0);
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        std::thread::scope(|s| {
            let watcher = s.spawn(|| monitor(&servers, &stop, &samples));
            let workers: Vec<_> = (0..THREADS)
                .map(|t| {
                    let (pool, urls) = (&pool, &urls);
                    s.spawn(move || {
                        let mut rng = fastrand::Rng::with_seed(seed.wrapping_add(t as u64));
                        for i in 0..ops {
                            if t == 0 && shutdown_at == Some(i) {
                                pool.shutdown();
                            }
                            step(pool, urls, &mut rng);
                        }
                    })
                })
                .collect();
            let results: Vec<_> = workers.into_iter().map(|w| w.join()).collect();
            stop.store(true, SeqCst);
            watcher.join().map_err(|_| "the monitor saw a cap broken")?;
            if results.iter().any(|r| r.is_err()) {
                return Err("a worker failed");
            }
            Ok(())
        })
    }));
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(what)) => panic!("seed {seed}: {what}"),
        Err(_) => panic!("seed {seed}: the run panicked"),
    }
    if cfg!(target_os = "linux") {
        assert!(samples.load(SeqCst) > 0, "the monitor never looked");
    }
    let (per_host, all) = *counter.most.lock();
    assert!(
        per_host <= PER_HOST && all <= TOTAL,
        "seed {seed}: up to {per_host} sockets open to one origin, {all} in all"
    );
    check_books(&pool, &servers, seed, shutdown_at.is_some());
}

/// The books balance once everything is back: nothing lent, nothing leaked.
fn check_books(pool: &Pool, servers: &[HttpServer], seed: u64, shut_down: bool) {
    let m = pool.metrics().total;
    assert_eq!((m.in_use, m.waiting), (0, 0), "seed {seed}: {m:?}");
    assert_eq!(
        m.connections_created + m.connections_reused,
        m.requests_sent,
        "seed {seed}: {m:?}"
    );
    assert_eq!(
        m.closed_total(),
        m.connections_created - m.open_connections,
        "seed {seed}: {m:?}"
    );
    assert!(m.open_connections <= TOTAL as u64);
    // At rest, the kernel and the pool agree on every open socket. (The
    // cleaner may still close one between the two reads: look again.)
    let ports: Vec<u16> = servers.iter().map(|s| s.addr().port()).collect();
    let agree = || {
        let Some(kernel) = established_to(&ports) else {
            return true;
        };
        let snap = pool.metrics();
        servers
            .iter()
            .zip(kernel)
            .all(|(srv, n)| snap.origin(&srv.url()).open_connections == n as u64)
    };
    assert!(
        wait_until(agree, WAIT),
        "seed {seed}: the kernel sees other sockets than the pool"
    );
    if shut_down {
        assert_eq!((m.open_connections, m.idle), (0, 0), "seed {seed}: {m:?}");
    } else {
        check_capacity(pool, servers, seed);
        pool.shutdown();
    }
    for srv in servers {
        assert!(
            srv.stats().wait_until(|s| s.open() == 0, WAIT),
            "seed {seed}: {} still has connections open",
            srv.url()
        );
    }
    assert!(wait_until(
        || pool.metrics().total.open_connections == 0,
        WAIT
    ));
    let m = pool.metrics().total;
    assert_eq!(
        m.closed_total(),
        m.connections_created,
        "seed {seed}: {m:?}"
    );
    let accepted: u64 = servers.iter().map(|s| s.stats().snapshot().accepted).sum();
    assert_eq!(
        accepted, m.connections_created,
        "seed {seed}: server and pool disagree"
    );
}

/// No slot or permit leaked: every slot of each origin can be held at once,
/// and as many leases as the total cap allows across origins. (The gauges
/// can't show a leaked slot: it is neither lent, idle nor open, and the
/// schedule shrugs off the lease timeouts it causes.)
fn check_capacity(pool: &Pool, servers: &[HttpServer], seed: u64) {
    let urls: Vec<String> = servers.iter().map(|s| s.url()).collect();
    let lease = |url: &String| {
        pool.lease(url)
            .unwrap_or_else(|e| panic!("seed {seed}: a slot or permit leaked: {e}"))
    };
    for url in &urls {
        let held: Vec<_> = (0..PER_HOST).map(|_| lease(url)).collect();
        drop(held);
    }
    let held: Vec<_> = (0..TOTAL).map(|i| lease(&urls[i / PER_HOST])).collect();
    drop(held);
}

#[test]
fn randomized_schedules_hold_every_invariant() {
    run(None);
}

#[test]
fn a_shutdown_in_the_middle_of_a_randomized_schedule_leaves_nothing_open() {
    run(Some(OPS_PER_THREAD * scale() / 2));
}
