//! How close a client gets to a server's rate limit, and how often it hits it:
//! `cargo bench --bench ratelimit`.
//!
//! Each case runs W worker threads making GETs as fast as they can through one
//! `ApiClient` against a mock answering in 20 ms and allowing N requests per
//! wall-clock second (429 with `Retry-After` above it, and its rate-limit
//! headers on every answer). It prints, for the measured seconds:
//!
//! * throughput as a share of N (answered 2xx per second / N);
//! * the share of answers that were 429.
//!
//! Both are ratios within one run, so a loaded machine moves them little. The
//! first second is a warm-up and not counted; the counted span is whole
//! wall-clock seconds, the mock's windows. `ETLPOOL_BENCH_SECS` (default 10)
//! sets the measured seconds per case.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use etlpool::Pool;
use etlpool::http::{ApiClient, Auth};
use etlpool::mock::{FaultConfig, MockOptions, MockServers};

struct Case {
    service: &'static str,
    limit: u32,
    workers: usize,
}

fn main() {
    let secs = std::env::var("ETLPOOL_BENCH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10u64);
    let cases = [
        Case {
            service: "zephyr",
            limit: 50,
            workers: 8,
        },
        Case {
            service: "qtest",
            limit: 50,
            workers: 8,
        },
        Case {
            service: "zephyr",
            limit: 200,
            workers: 16,
        },
    ];
    println!("case                        throughput/N  429 share  (2xx, 429 in {secs} s)");
    for case in &cases {
        let (ok, throttled) = run(case, Duration::from_secs(secs));
        let share = ok as f64 / secs as f64 / f64::from(case.limit);
        let total = ok + throttled;
        let rate = if total == 0 {
            0.0
        } else {
            throttled as f64 / total as f64
        };
        println!(
            "{:<6} N={:<4} {:>2} workers   {:>9.1} %  {:>7.2} %  ({ok}, {throttled})",
            case.service,
            case.limit,
            case.workers,
            share * 100.0,
            rate * 100.0
        );
    }
}

/// Runs one case; returns the 2xx and 429 answers of the measured seconds.
fn run(case: &Case, measured: Duration) -> (u64, u64) {
    let faults = FaultConfig {
        latency: Duration::from_millis(20),
        rate_limit: Some(case.limit),
        ..FaultConfig::default()
    };
    let mut options = MockOptions::seeded(7);
    options.zephyr_faults = faults.clone();
    options.qtest_faults = faults;
    let mocks = MockServers::start(options).expect("start the mocks");
    let (base, token, path) = match case.service {
        "zephyr" => (
            mocks.zephyr_url(),
            mocks.zephyr_token().to_string(),
            "/projects".to_string(),
        ),
        _ => (
            mocks.qtest_url(),
            mocks.qtest_token().to_string(),
            format!("/projects/{}", mocks.qtest_project_id()),
        ),
    };
    let pool = Pool::builder()
        .max_connections_per_host(case.workers)
        .build()
        .expect("pool");
    let client = ApiClient::new(&pool, &base, Auth::Bearer(token)).expect("client");
    let stop = AtomicBool::new(false);
    let warm_up = Duration::from_secs(1);
    let counted = std::sync::Mutex::new((0u64, 0u64));
    std::thread::scope(|s| {
        for _ in 0..case.workers {
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    // Errors (a 429 past its retries) are counted from the metrics.
                    let _ = client.get_json::<serde_json::Value>(&path, &[]);
                }
            });
        }
        std::thread::sleep(warm_up);
        // The mock's windows are wall-clock seconds: count whole ones, from
        // just after a second starts (answers take 20 ms to come back).
        std::thread::sleep(to_next_second() + Duration::from_millis(25));
        let origin = client.origin().to_string();
        let before = answers(&pool, &origin);
        std::thread::sleep(measured);
        let after = answers(&pool, &origin);
        *counted.lock().unwrap() = (after.0 - before.0, after.1 - before.1);
        stop.store(true, Ordering::Relaxed);
    });
    let counted = *counted.lock().unwrap();
    mocks.shutdown();
    counted
}

/// Time to the start of the next wall-clock second.
fn to_next_second() -> Duration {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Duration::from_secs(1) - Duration::from_nanos(u64::from(now.subsec_nanos()))
}

/// The origin's 2xx and 4xx answers so far (the mock answers nothing but 2xx
/// and 429 here).
fn answers(pool: &Pool, origin: &str) -> (u64, u64) {
    let m = pool.metrics().origin(origin);
    let class = |c: &str| m.responses.get(c).copied().unwrap_or(0);
    (class("2xx"), class("4xx"))
}
