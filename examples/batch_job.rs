//! A threaded batch job: 8 queue workers share the global pool and fetch every
//! test case of a mock Zephyr project, one request per case.
//!
//! Run with `cargo run --release --example batch_job`. It prints the queue's
//! stats and the pool's metrics, and checks that the pool opened no more
//! connections than there are workers.

use etlpool::http::{ApiClient, Auth};
use etlpool::mock::{MockOptions, MockServers};
use etlpool::queue::WorkQueue;
use etlpool::{Pool, PoolConfig};

const WORKERS: usize = 8;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut options = MockOptions::seeded(7);
    options.sizes.cases = 400;
    let mocks = MockServers::start(options)?;

    // One pool for the whole process, sized to the workers.
    let pool = Pool::init_global(PoolConfig {
        max_connections_per_host: WORKERS,
        ..PoolConfig::from_env()?
    })?;
    let zephyr = ApiClient::new(
        &pool,
        &mocks.zephyr_url(),
        Auth::Bearer(mocks.zephyr_token().into()),
    )?;

    let client = zephyr.clone();
    let (queue, results) = WorkQueue::builder()
        .workers(WORKERS)
        .capacity(2 * WORKERS)
        .build(move |key: String| {
            client.get_json::<serde_json::Value>(&format!("/testcases/{key}"), &[])
        })?;

    // Producer: the keys stream in, back-pressure keeps at most 16 in the queue.
    let keys: Vec<String> = mocks.source().cases.iter().map(|c| c.key.clone()).collect();
    let consumer = std::thread::spawn(move || {
        let mut names = 0;
        for result in results {
            match result.outcome {
                Ok(case) if case["name"].is_string() => names += 1,
                Ok(other) => eprintln!("job {}: unexpected body {other}", result.id),
                Err(e) => eprintln!("job {}: {e}", result.id),
            }
        }
        names
    });
    for key in keys {
        if queue.submit(key).is_err() {
            break;
        }
    }
    let stats = queue.close();
    let fetched = consumer.join().map_err(|_| "consumer panicked")?;

    let snapshot = pool.metrics();
    let m = snapshot.origin(&zephyr.origin().to_string());
    println!("{stats}");
    println!(
        "fetched {fetched} cases; connections created {}, reused {}; p50 {} µs, p99 {} µs",
        m.connections_created,
        m.connections_reused,
        m.request_latency.p50_us,
        m.request_latency.p99_us
    );
    assert!(
        m.connections_created <= WORKERS as u64,
        "the pool opened more connections than workers"
    );
    Ok(())
}
