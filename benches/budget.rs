//! Several processes under one rate budget shared through Redis:
//! `cargo bench --features redis --bench budget` (needs `redis-server`).
//!
//! Each case runs P `etlpool load` processes (4 threads each, as fast as
//! their limiter lets them) against the Zephyr mock answering in 20 ms and
//! allowing N = 50 requests per wall-clock second (429 with `Retry-After`
//! above it). With `--redis` the processes share `--rate 50`; without, each
//! keeps to `--rate 50` alone, as processes did before the shared budget.
//! It prints, over the processes' run:
//!
//! * total throughput as a share of N (2xx answers per second / N);
//! * the share of answers that were 429.
//!
//! Both are ratios within one run, so a loaded machine moves them little.
//! `ETLPOOL_BENCH_SECS` (default 6) sets each case's seconds.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use etlpool::mock::{FaultConfig, MockOptions, MockServers};

/// The mock's limit, and the rate the processes are given.
const LIMIT: u32 = 50;

fn main() {
    let secs = std::env::var("ETLPOOL_BENCH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6u64);
    let redis = RedisServer::start();
    println!("processes  budget     throughput/N  429 share  (2xx, 429 in {secs} s)");
    for (processes, shared) in [(1, true), (2, true), (4, true), (2, false), (4, false)] {
        let (ok, throttled) = run(processes, shared.then(|| redis.url()), secs);
        let share = ok as f64 / secs as f64 / f64::from(LIMIT);
        let total = ok + throttled;
        let rate = if total == 0 {
            0.0
        } else {
            throttled as f64 / total as f64
        };
        println!(
            "{processes:>9}  {:<9} {:>11.1} %  {:>7.2} %  ({ok}, {throttled})",
            if shared { "shared" } else { "each own" },
            share * 100.0,
            rate * 100.0
        );
    }
}

/// Runs `processes` loads for `secs`; returns their 2xx and 429 answers.
fn run(processes: usize, redis: Option<String>, secs: u64) -> (u64, u64) {
    let mut options = MockOptions::seeded(7);
    options.zephyr_faults = FaultConfig {
        latency: Duration::from_millis(20),
        rate_limit: Some(LIMIT),
        ..FaultConfig::default()
    };
    let mocks = MockServers::start(options).expect("start the mocks");
    let url = format!("{}/projects", mocks.zephyr_url());
    let children: Vec<Child> = (0..processes)
        .map(|_| {
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_etlpool"));
            cmd.env_clear()
                .env("ZEPHYR_TOKEN", mocks.zephyr_token())
                .args(["load", &url, "--token-env", "ZEPHYR_TOKEN", "--json", "-q"])
                .args(["--rate", &LIMIT.to_string(), "--burst", "5"])
                .args(["--threads", "4", "--duration", &format!("{secs}s")])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null());
            if let Some(redis) = &redis {
                cmd.args(["--redis", redis]);
            }
            cmd.spawn().expect("start etlpool load")
        })
        .collect();
    let mut answers = (0, 0);
    for child in children {
        let out = child.wait_with_output().expect("etlpool load");
        // A load that ends with 429s exits 3; its report is there all the same.
        let report: serde_json::Value =
            serde_json::from_slice(&out.stdout).expect("the load's JSON report");
        let class = |c: &str| {
            report["metrics"]["total"]["responses"][c]
                .as_u64()
                .unwrap_or(0)
        };
        answers.0 += class("2xx");
        answers.1 += class("4xx");
    }
    mocks.shutdown();
    answers
}

/// A `redis-server` on a free loopback port, without persistence; killed
/// when dropped.
struct RedisServer {
    child: Child,
    port: u16,
}

impl RedisServer {
    fn start() -> RedisServer {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--logfile", ""])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server (apt-get install redis-server)");
        let out = child.stdout.take().expect("piped stdout");
        let ready = BufReader::new(out)
            .lines()
            .map_while(Result::ok)
            .any(|l| l.contains("Ready to accept connections"));
        assert!(ready, "redis-server did not start on port {port}");
        RedisServer { child, port }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
