//! Throughput of `WorkQueue`: `cargo bench --bench queue`.
//!
//! Plain `Instant` timing (no harness): each case runs several times and the
//! median is printed. The 1 ms case is compared with its ideal bound
//! (jobs × 1 ms / workers) and with the Python peer this crate replaces,
//! which needed 10 s for it because its workers polled every 100 ms.

use std::convert::Infallible;
use std::thread;
use std::time::{Duration, Instant};

use etlpool::queue::WorkQueue;

const RUNS: usize = 7;

/// Builds a queue, submits `jobs` jobs, closes it and reads every result.
fn run_once(jobs: u32, workers: usize, work: Duration) -> Duration {
    let start = Instant::now();
    let (queue, results) = WorkQueue::builder()
        .workers(workers)
        .build(move |n: u32| {
            if !work.is_zero() {
                thread::sleep(work);
            }
            Ok::<_, Infallible>(n)
        })
        .expect("valid settings");
    for n in 0..jobs {
        queue.submit(n).expect("the queue is open");
    }
    let stats = queue.close();
    assert_eq!(stats.succeeded, u64::from(jobs));
    assert_eq!(results.iter().count(), jobs as usize);
    start.elapsed()
}

fn median(jobs: u32, workers: usize, work: Duration) -> Duration {
    run_once(jobs, workers, work); // warm-up
    let mut times: Vec<Duration> = (0..RUNS).map(|_| run_once(jobs, workers, work)).collect();
    times.sort();
    times[RUNS / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let cores = thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "queue bench: {cores} cores, median of {RUNS} runs, build + submit + close + read results"
    );

    for (jobs, workers) in [(10_000, 8), (10_000, 1)] {
        let t = median(jobs, workers, Duration::ZERO);
        println!(
            "{jobs:>6} no-op jobs, {workers:>2} workers: {:>8.2} ms  ({:.0} jobs/s, {:.2} µs/job)",
            ms(t),
            f64::from(jobs) / t.as_secs_f64(),
            t.as_secs_f64() * 1e6 / f64::from(jobs),
        );
    }

    let (jobs, workers, work) = (1_000, 10, Duration::from_millis(1));
    let ideal = work * jobs / workers as u32;
    let t = median(jobs, workers, work);
    println!(
        "{jobs:>6} jobs of 1 ms, {workers:>2} workers: {:>8.2} ms  ({:.2}x the ideal {} ms; \
         the polling Python peer took 10 s, {:.0}x longer)",
        ms(t),
        t.as_secs_f64() / ideal.as_secs_f64(),
        ms(ideal),
        10.0 / t.as_secs_f64(),
    );
}
