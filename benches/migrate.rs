//! Migration throughput against the latency bound, and peak memory on a big
//! project.
//!
//! `cargo bench --bench migrate` runs:
//!
//! 1. **Throughput**: the mocks answer every request after 2 ms; 16 workers.
//!    The bound is `requests x latency / workers` (every worker always waiting
//!    on one request); the run should reach 80 % of it. Also checks that the
//!    pool opened no more connections per host than there are workers.
//! 2. **Peak RSS** of the `etlpool migrate` process (the mocks run in another
//!    process, `etlpool mock`) for 200,000 cases with 5 steps each and
//!    1,000,000 executions: it must stay under 100 MB. It takes a while (tens
//!    of minutes on 2 cores). The project also holds the sample attachments
//!    and one 200 MB file (`ETLPOOL_BENCH_RSS_BIG_FILE`, bytes; 0 for none),
//!    streamed from one mock to the other: it must not raise the peak. Skip
//!    it with `ETLPOOL_BENCH_RSS=0`; resize it with `ETLPOOL_BENCH_RSS_CASES`
//!    and `ETLPOOL_BENCH_RSS_EXECUTIONS`; skip the throughput part with
//!    `ETLPOOL_BENCH_THROUGHPUT=0`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use etlpool::CancelToken;
use etlpool::cli::mock_endpoints;
use etlpool::migrate::{AttachmentOptions, MigrateOptions, RunHooks, migrate_with};
use etlpool::mock::{DataSizes, MockOptions, MockServers};
use etlpool::{Pool, PoolConfig};

const WORKERS: usize = 16;
const LATENCY: Duration = Duration::from_millis(2);

fn main() {
    if std::env::var("ETLPOOL_BENCH_THROUGHPUT").as_deref() != Ok("0") {
        throughput();
    }
    if std::env::var("ETLPOOL_BENCH_RSS").as_deref() != Ok("0") {
        peak_rss();
    }
}

/// A size from the environment, or `default`.
fn size(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("etlpool-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fn throughput() {
    // Without step files first: the workload of the figures before they were
    // migrated (Zephyr lists them one step at a time, about doubling its
    // requests), so the two stay comparable; then the default.
    throughput_of(
        AttachmentOptions::default().steps(false),
        "without step files",
    );
    throughput_of(
        AttachmentOptions::default(),
        "with step files (the default)",
    );
}

/// One migration of the bench's project on fresh mocks, then a run with
/// nothing new.
fn throughput_of(attachments: AttachmentOptions, what: &str) {
    let mut options = MockOptions::seeded(7);
    options.sizes = DataSizes {
        folders: 30,
        folder_depth: 3,
        cycle_folders: 4,
        cases: 1_500,
        steps_per_case: 4,
        cycles: 15,
        executions: 4_000,
    };
    let mocks = MockServers::start(options).expect("mocks");
    for f in [&mocks.faults().zephyr, &mocks.faults().qtest] {
        f.set_latency(LATENCY, Duration::ZERO);
    }
    let pool = Pool::new(PoolConfig {
        max_connections_per_host: WORKERS,
        ..PoolConfig::default()
    })
    .expect("pool");
    let dir = scratch("throughput");
    let opts = MigrateOptions {
        endpoints: mock_endpoints(&mocks),
        mapping: Default::default(),
        workers: WORKERS,
        journal: dir.join("journal.csv"),
        report: dir.join("report.csv"),
        dry_run: false,
        only: Default::default(),
        page_size: 100,
        progress: false,
    };
    let hooks = RunHooks::default().attachments(attachments);
    let start = Instant::now();
    let summary = migrate_with(&pool, &opts, &CancelToken::new(), &hooks).expect("migration");
    let elapsed = start.elapsed().as_secs_f64();
    assert!(summary.is_complete(), "{summary}");
    let m = &summary.metrics;
    let requests = m.total.requests_sent;
    let bound = requests as f64 * LATENCY.as_secs_f64() / WORKERS as f64;
    println!("migration throughput {what} (mock latency {LATENCY:?}, {WORKERS} workers)");
    println!("  elapsed            {elapsed:.2} s");
    println!(
        "  requests           {requests} ({:.0}/s)",
        requests as f64 / elapsed
    );
    println!(
        "  latency bound      {bound:.2} s -> {:.0} % of the bound",
        bound / elapsed * 100.0
    );
    let l = &m.total.request_latency;
    println!(
        "  request latency    p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms (first byte sent to response head)",
        l.p50_us as f64 / 1e3,
        l.p95_us as f64 / 1e3,
        l.p99_us as f64 / 1e3
    );
    let mean_ms = l.mean_us as f64 / 1e3;
    println!(
        "  bound from the measured mean latency ({mean_ms:.2} ms): {:.0} %",
        requests as f64 * mean_ms / 1e3 / WORKERS as f64 / elapsed * 100.0
    );
    for (origin, o) in &m.origins {
        println!(
            "  {origin}: {} connections created, {} reused (max {WORKERS} per host: {})",
            o.connections_created,
            o.connections_reused,
            if o.connections_created <= WORKERS as u64 {
                "ok"
            } else {
                "EXCEEDED"
            }
        );
    }
    no_change(&mocks, &pool, &opts, &hooks);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A nightly sync with nothing new: the same migration run again, counting
/// what it reads.
fn no_change(mocks: &MockServers, pool: &Pool, opts: &MigrateOptions, hooks: &RunHooks) {
    let zephyr = mocks.zephyr_stats().snapshot().requests;
    let qtest = mocks.qtest_stats().snapshot().requests;
    let writes = mocks.journal().len();
    let start = Instant::now();
    let summary = migrate_with(pool, opts, &CancelToken::new(), hooks).expect("second run");
    let elapsed = start.elapsed().as_secs_f64();
    assert!(summary.is_complete(), "{summary}");
    println!("a run with nothing new (same project, same latency)");
    println!("  elapsed            {elapsed:.2} s");
    println!(
        "  requests           {} to Zephyr, {} to qTest",
        mocks.zephyr_stats().snapshot().requests - zephyr,
        mocks.qtest_stats().snapshot().requests - qtest
    );
    assert_eq!(
        mocks.journal().len(),
        writes,
        "a run with nothing new wrote"
    );
}

fn peak_rss() {
    let cases = size("ETLPOOL_BENCH_RSS_CASES", 200_000);
    let executions = size("ETLPOOL_BENCH_RSS_EXECUTIONS", 1_000_000);
    let big_file = size("ETLPOOL_BENCH_RSS_BIG_FILE", 200 * 1024 * 1024);
    let bin = env!("CARGO_BIN_EXE_etlpool");
    let mut mock = Command::new(bin)
        .args([
            "-q",
            "mock",
            "--seed",
            "9",
            "--json",
            "--steps",
            "5",
            "--folders",
            "60",
            "--cycles",
            "40",
        ])
        .args([
            "--cases",
            &cases.to_string(),
            "--executions",
            &executions.to_string(),
            "--attachments",
            "--big-attachment-bytes",
            &big_file.to_string(),
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start etlpool mock");
    let mut line = String::new();
    let stdout = mock.stdout.take().expect("mock stdout");
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("mock prints its endpoints");
    let info: serde_json::Value = serde_json::from_str(&line).expect("mock json");
    let dir = scratch("rss");
    let start = Instant::now();
    let mut child = Command::new(bin)
        .arg("-q")
        .arg("migrate")
        .env(
            "ZEPHYR_URL",
            info["zephyr"]["url"].as_str().unwrap_or_default(),
        )
        .env(
            "ZEPHYR_TOKEN",
            info["zephyr"]["token"].as_str().unwrap_or_default(),
        )
        .env(
            "ZEPHYR_PROJECT",
            info["zephyr"]["project_key"].as_str().unwrap_or_default(),
        )
        .env(
            "QTEST_URL",
            info["qtest"]["url"].as_str().unwrap_or_default(),
        )
        .env(
            "QTEST_TOKEN",
            info["qtest"]["token"].as_str().unwrap_or_default(),
        )
        .env("QTEST_PROJECT_ID", info["qtest"]["project_id"].to_string())
        .env("ETLPOOL_WORKERS", WORKERS.to_string())
        .env("ETLPOOL_MAX_ATTACHMENT_BYTES", (big_file + 1).to_string())
        .arg("--journal")
        .arg(dir.join("journal.csv"))
        .arg("--report")
        .arg(dir.join("report.csv"))
        .arg("--summary-json")
        .arg(dir.join("summary.json"))
        .stdout(Stdio::null())
        .spawn()
        .expect("start etlpool migrate");
    // VmHWM is the process's peak resident set so far: the last reading before
    // it exits is its peak.
    let mut peak_kb = 0u64;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        peak_kb = peak_kb.max(vm_hwm_kb(child.id()).unwrap_or(0));
        std::thread::sleep(Duration::from_millis(20));
    };
    let elapsed = start.elapsed().as_secs_f64();
    let _ = mock.kill();
    let _ = mock.wait();
    let summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("summary.json")).unwrap_or_default(),
    )
    .unwrap_or_default();
    let requests = summary["metrics"]["total"]["requests_sent"]
        .as_u64()
        .unwrap_or(0);
    println!(
        "\npeak memory of `etlpool migrate`: {cases} cases x 5 steps, {executions} executions, \
         one file of {big_file} bytes"
    );
    println!(
        "  elapsed       {elapsed:.1} s, {requests} requests ({:.0}/s)",
        requests as f64 / elapsed
    );
    println!("  exit          {status}");
    println!("  records       {}", summary["records"]);
    println!(
        "  peak RSS      {:.1} MB (limit 100 MB)",
        peak_kb as f64 / 1024.0
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn vm_hwm_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
