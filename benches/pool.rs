//! Pool throughput against baselines measured in the same run.
//!
//! `cargo bench --bench pool` prints the median requests/s of each case over
//! interleaved rounds (so a noisy neighbour hurts every case alike) and the
//! ratios the pool is judged by:
//!
//! * pooled vs one bare `ureq::Agent` shared by all threads (its idle pool sized
//!   to the threads, per-phase timeouts, no global timeout), over HTTP and over
//!   HTTPS (ureq's own rustls connector, trusting the test CA);
//! * pooled with `total_timeout` vs the same pool without it;
//! * pooled vs a new agent (so a new connection, and a full TLS handshake) per
//!   request, over HTTP and HTTPS;
//! * an uncontended lease + return, in nanoseconds;
//! * TLS resumption on reconnect: N threads open N connections to one host, the
//!   cleaner closes them all as idle, and N threads reconnect at once; how many
//!   of those N handshakes resumed a session, for N = 8, 16 and 32.
//!
//! With one client thread the result depends mostly on where the scheduler puts
//! the client and the server thread (same core: a cheap switch; different
//! cores: a cross-core wake-up), which made medians bimodal. So the one-thread
//! cases pin the client and their own server to one core; the eight-thread
//! cases use both cores freely.
//!
//! `ETLPOOL_BENCH_ROUNDS` and `ETLPOOL_BENCH_SCALE` shorten or lengthen it.

use std::sync::Arc;
// The integration tests' CA; the bench uses only its server side.
#[allow(dead_code)]
#[path = "../tests/it/support/tls.rs"]
mod tls;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use etlpool::mock::server::{Answer, ConnContext, HttpServer, Request, Response, ServerOptions};
use etlpool::{Pool, PoolConfig};

type Request1 = dyn Fn() + Sync;

struct Case {
    name: String,
    threads: usize,
    requests: u64,
    /// Makes the per-request closure for one round (a fresh pool or agent).
    setup: Box<dyn Fn() -> Box<Request1>>,
    samples: Vec<f64>,
}

fn main() {
    let rounds = env_num("ETLPOOL_BENCH_ROUNDS", 7) as usize;
    let scale = env_num("ETLPOOL_BENCH_SCALE", 10);
    let ca = tls::TestCa::new();
    let mut servers = Vec::new();
    let mut cases = Vec::new();
    for threads in [1usize, 8] {
        let pin = (threads == 1).then(first_core).flatten();
        let http = server(None, pin);
        let https = server(Some(ca.server.clone()), pin);
        let http_url = format!("{}/bench", http.url());
        let https_url = format!("{}/bench", https.url());
        servers.push((http, https));
        let n = 2_000 * scale * threads as u64;
        cases.push(case(
            "bare ureq agent",
            threads,
            n,
            bare_agent(&http_url, threads, None),
        ));
        cases.push(case(
            "pooled",
            threads,
            n,
            pooled(&http_url, threads, None, true),
        ));
        cases.push(case(
            "pooled, no total_timeout",
            threads,
            n,
            pooled(&http_url, threads, None, false),
        ));
        cases.push(case("no pool", threads, n / 4, unpooled(&http_url, None)));
        cases.push(case(
            "https bare ureq agent",
            threads,
            n / 2,
            bare_agent(&https_url, threads, Some(&ca.ca_pem)),
        ));
        cases.push(case(
            "https pooled",
            threads,
            n / 2,
            pooled(&https_url, threads, Some(&ca.ca_pem), true),
        ));
        cases.push(case(
            "https no pool",
            threads,
            n / 40,
            unpooled(&https_url, Some(&ca.ca_pem)),
        ));
    }

    for round in 0..rounds {
        for c in cases.iter_mut() {
            let work = (c.setup)();
            let pin = (c.threads == 1).then(first_core).flatten();
            c.samples.push(measure(c.threads, c.requests, pin, &*work));
        }
        eprintln!("round {}/{rounds} done", round + 1);
    }

    println!(
        "\n{:<28} {:>7} {:>12} {:>12} {:>12}",
        "case", "threads", "median req/s", "min", "max"
    );
    for c in &cases {
        let (lo, hi) = spread(&c.samples);
        println!(
            "{:<28} {:>7} {:>12.0} {:>12.0} {:>12.0}",
            c.name,
            c.threads,
            median(&c.samples),
            lo,
            hi
        );
    }
    let rate = |name: &str, threads: usize| {
        let c = cases
            .iter()
            .find(|c| c.name == name && c.threads == threads)
            .expect("case exists");
        median(&c.samples)
    };
    println!("\nratios (medians of {rounds} interleaved rounds)");
    for threads in [1, 8] {
        let r = |a: &str, b: &str| rate(a, threads) / rate(b, threads);
        println!(
            "  {threads} thread(s): pooled / bare ureq agent (http)  {:.2}x",
            r("pooled", "bare ureq agent")
        );
        println!(
            "  {threads} thread(s): pooled / bare ureq agent (https) {:.2}x",
            r("https pooled", "https bare ureq agent")
        );
        println!(
            "  {threads} thread(s): with / without total_timeout  {:.2}x",
            r("pooled", "pooled, no total_timeout")
        );
        println!(
            "  {threads} thread(s): pooled / no pool (http)        {:.2}x",
            r("pooled", "no pool")
        );
        println!(
            "  {threads} thread(s): pooled / no pool (https)       {:.2}x",
            r("https pooled", "https no pool")
        );
    }
    lease_cost(&format!("{}/bench", servers[0].0.url()));
    drop(servers);
    for per_host in [8, 16, 32] {
        resumption(&ca, per_host);
    }
}

fn first_core() -> Option<core_affinity::CoreId> {
    core_affinity::get_core_ids().and_then(|ids| ids.into_iter().next())
}

fn case(name: &str, threads: usize, requests: u64, setup: Box<dyn Fn() -> Box<Request1>>) -> Case {
    Case {
        name: name.to_string(),
        threads,
        requests,
        setup,
        samples: Vec::new(),
    }
}

/// Requests per second for `requests` calls of `work` shared by `threads` threads.
fn measure(
    threads: usize,
    requests: u64,
    pin: Option<core_affinity::CoreId>,
    work: &Request1,
) -> f64 {
    let left = AtomicU64::new(requests);
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                if let Some(core) = pin {
                    core_affinity::set_for_current(core);
                }
                while left
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                    .is_ok()
                {
                    work();
                }
            });
        }
    });
    requests as f64 / start.elapsed().as_secs_f64()
}

/// One bare ureq agent shared by the threads: its idle pool sized to them,
/// per-phase timeouts; with `ca_pem`, ureq's own rustls connector trusting it.
fn bare_agent(url: &str, threads: usize, ca_pem: Option<&str>) -> Box<dyn Fn() -> Box<Request1>> {
    use ureq::tls::{Certificate, RootCerts, TlsConfig};
    let url = url.to_string();
    let ca = ca_pem.map(|pem| Certificate::from_pem(pem.as_bytes()).expect("test CA"));
    Box::new(move || {
        let mut config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .proxy(None)
            .max_idle_connections(threads)
            .max_idle_connections_per_host(threads)
            .timeout_connect(Some(Duration::from_secs(10)))
            .timeout_send_request(Some(Duration::from_secs(60)))
            .timeout_recv_response(Some(Duration::from_secs(60)))
            .timeout_recv_body(Some(Duration::from_secs(60)));
        if let Some(ca) = &ca {
            let roots = RootCerts::new_with_certs(std::slice::from_ref(ca));
            config = config.tls_config(TlsConfig::builder().root_certs(roots).build());
        }
        let agent: ureq::Agent = config.build().into();
        let url = url.clone();
        Box::new(move || {
            let mut r = agent.get(&url).call().expect("bare request");
            r.body_mut().read_to_vec().expect("bare body");
        })
    })
}

fn pool_config(threads: usize, ca: Option<&str>, total: bool) -> PoolConfig {
    let mut config = PoolConfig {
        max_connections_per_host: threads,
        ..PoolConfig::default()
    };
    if !total {
        config.total_timeout = None;
    }
    config.tls.ca_pem = ca.map(str::to_string);
    config
}

fn pooled(
    url: &str,
    threads: usize,
    ca: Option<&str>,
    total: bool,
) -> Box<dyn Fn() -> Box<Request1>> {
    let url = url.to_string();
    let config = pool_config(threads, ca, total);
    Box::new(move || {
        let pool = Pool::new(config.clone()).expect("pool");
        let origin = pool.origin(&url).expect("origin");
        let url = url.clone();
        Box::new(move || {
            let reply = origin
                .lease()
                .expect("lease")
                .fetch(&url)
                .expect("pooled request");
            assert_eq!(reply.status(), 200);
        })
    })
}

fn unpooled(url: &str, ca: Option<&str>) -> Box<dyn Fn() -> Box<Request1>> {
    let url = url.to_string();
    let config = pool_config(1, ca, true);
    Box::new(move || {
        let pool = Pool::new(config.clone()).expect("pool");
        let url = url.clone();
        Box::new(move || {
            let agent = pool.unpooled_agent(&url).expect("agent");
            let mut r = agent.get(&url).call().expect("unpooled request");
            r.body_mut().read_to_vec().expect("unpooled body");
        })
    })
}

/// Median nanoseconds of an uncontended lease + return, over batches.
fn lease_cost(url: &str) {
    let pool = Pool::builder().build().expect("pool");
    let origin = pool.origin(url).expect("origin");
    drop(origin.lease().expect("warm up"));
    let batch = 100_000;
    let mut by_handle = Vec::new();
    let mut by_url = Vec::new();
    for _ in 0..15 {
        let t = Instant::now();
        for _ in 0..batch {
            drop(std::hint::black_box(origin.lease().expect("lease")));
        }
        by_handle.push(t.elapsed().as_nanos() as f64 / batch as f64);
        let t = Instant::now();
        for _ in 0..batch {
            drop(std::hint::black_box(pool.lease(url).expect("lease")));
        }
        by_url.push(t.elapsed().as_nanos() as f64 / batch as f64);
    }
    println!(
        "\nuncontended lease + return: {:.0} ns via Pool::origin handle, {:.0} ns via Pool::lease(url)",
        median(&by_handle),
        median(&by_url)
    );
}

/// `per_host` threads each hold a connection at once (so `per_host` sockets
/// open), the cleaner closes them all as idle, then `per_host` threads
/// reconnect at once. Prints how many of the reconnects resumed a TLS session,
/// as the client and the server counted them.
fn resumption(ca: &tls::TestCa, per_host: usize) {
    let server = ca.ok_server();
    let url = server.url();
    let pool = Pool::builder()
        .max_connections_per_host(per_host)
        .ca_pem(Some(ca.ca_pem.clone()))
        .idle_timeout(Duration::from_millis(300))
        .reap_interval(Duration::from_millis(50))
        .lifetime_jitter(0.0)
        .build()
        .expect("pool");
    let burst = || {
        let all_hold = std::sync::Barrier::new(per_host);
        std::thread::scope(|s| {
            for _ in 0..per_host {
                s.spawn(|| {
                    let lease = pool.lease(&url).expect("lease");
                    assert_eq!(lease.fetch(&url).expect("request").status(), 200);
                    all_hold.wait();
                });
            }
        });
    };
    let all_closed = || {
        let deadline = Instant::now() + Duration::from_secs(30);
        while pool.metrics().total.open_connections > 0 {
            assert!(Instant::now() < deadline, "the cleaner never closed them");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    burst();
    all_closed();
    let before = pool.metrics().total;
    let server_before = server.stats().snapshot();
    burst();
    let after = pool.metrics().total;
    let server_after = server.stats().snapshot();
    let opened = after.connections_created - before.connections_created;
    let resumed = after.tls_handshakes_resumed - before.tls_handshakes_resumed;
    let server_resumed = server_after.tls_resumed - server_before.tls_resumed;
    println!(
        "reconnect resumption at {per_host:>2} per host: {resumed}/{opened} resumed \
         ({:.0} %; server saw {server_resumed} resumed)",
        100.0 * resumed as f64 / opened.max(1) as f64
    );
}

fn median(samples: &[f64]) -> f64 {
    let mut v = samples.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn spread(samples: &[f64]) -> (f64, f64) {
    let lo = samples.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = samples.iter().copied().fold(0.0, f64::max);
    (lo, hi)
}

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A server answering 200 "ok"; with `pin`, started from a thread pinned to that
/// core, so its accept and connection threads inherit the pinning.
fn server(
    tls: Option<Arc<rustls::ServerConfig>>,
    pin: Option<core_affinity::CoreId>,
) -> HttpServer {
    std::thread::spawn(move || {
        if let Some(core) = pin {
            core_affinity::set_for_current(core);
        }
        let handler = |_: Request, _: &ConnContext| {
            Answer::Response(Response::bytes(200, "text/plain", b"ok".to_vec()))
        };
        let opts = ServerOptions {
            tls,
            ..ServerOptions::default()
        };
        HttpServer::start(opts, Arc::new(handler)).expect("bench server")
    })
    .join()
    .expect("server start thread")
}
