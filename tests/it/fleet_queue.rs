//! Projects queued in Redis and taken by worker processes (the real binary
//! against a real `redis-server`): each project migrated exactly once, a
//! worker killed in mid-project taken over without duplicates. Before the
//! fleet work there was no `worker` command and no `--redis` (exit 2).

use std::time::{Duration, Instant};

use redis::Commands;

use crate::cli::run;
use crate::ops_util::{signal, spawn};
use crate::support::fleet::{
    RedisServer, big_sizes, enqueue, etlpool, project_mocks, reports_of, sizes, write_list,
};
use crate::support::migration::{clients, verify_defaults};
use crate::support::{Scratch, check};

#[test]
fn ten_projects_over_three_workers_are_each_migrated_exactly_once() {
    let redis = RedisServer::start();
    let mocks: Vec<_> = (0..10).map(|i| project_mocks(i, 900, sizes())).collect();
    let dir = Scratch::new("fleet-ten");
    let list = write_list(&dir.0, "projects.csv", &mocks.iter().collect::<Vec<_>>());
    let url = redis.url();
    let (code, out) = enqueue(&dir.0, &list, &url);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("queued 10 projects"), "{out}");

    let workers: Vec<_> = (0..3)
        .map(|i| {
            let mut cmd = etlpool(
                &dir.0.join(format!("w{i}")),
                &["worker", "--redis", &url, "--drain", "--lease", "20s"],
            );
            std::thread::spawn(move || run(&mut cmd))
        })
        .collect();
    for (i, w) in workers.into_iter().enumerate() {
        let (code, out) = w.join().unwrap();
        assert_eq!(code, 0, "worker {i}: {out}");
    }
    for m in &mocks {
        check::assert_migrated(m);
        let (zephyr, qtest) = clients(m);
        let report = verify_defaults(&zephyr, &qtest);
        assert!(report.is_clean(), "{}: {report:?}", m.project_key());
        let runs: usize = (0..3)
            .map(|i| reports_of(&dir.0.join(format!("w{i}")), m.project_key()))
            .sum();
        assert_eq!(runs, 1, "project {} ran {runs} times", m.project_key());
    }
    let (code, out) = run(&mut etlpool(&dir.0, &["status", "--redis", &url, "--json"]));
    assert_eq!(code, 0, "{out}");
    let doc: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(doc["counts"]["done"], 10, "{out}");

    // Queued again: nothing to do twice.
    let (code, out) = enqueue(&dir.0, &list, &url);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("queued 0 projects"), "{out}");
    assert!(out.contains("P3 (done)"), "{out}");
}

/// Waits until the Redis journal of `key` has `n` records; false if the
/// worker ended first.
fn wait_for_records(
    redis: &RedisServer,
    key: &str,
    n: usize,
    worker: &mut std::process::Child,
) -> bool {
    let mut conn = redis.conn();
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        let len: usize = conn.hlen(format!("etlpool:journal:{key}")).unwrap();
        if len >= n {
            return true;
        }
        if worker.try_wait().unwrap().is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

#[test]
fn a_worker_killed_in_mid_project_is_taken_over_without_duplicates() {
    let redis = RedisServer::start();
    let big = big_sizes();
    let mocks = project_mocks(0, 930, big);
    let dir = Scratch::new("fleet-kill");
    let list = write_list(&dir.0, "projects.csv", &[&mocks]);
    let url = redis.url();
    let (code, out) = enqueue(&dir.0, &list, &url);
    assert_eq!(code, 0, "{out}");

    let lease = ["--lease", "2s"];
    let mut first = etlpool(
        &dir.0.join("a"),
        &["worker", "--redis", &url, "--worker-name", "doomed"],
    );
    first.args(lease);
    let (mut a, _lines) = spawn(&mut first);
    assert!(
        wait_for_records(&redis, "P0", 40, &mut a),
        "the first worker ended before it was killed"
    );
    signal(a.id(), "-KILL");
    a.wait().unwrap();
    let writes_before = mocks.journal().len();

    let mut second = etlpool(
        &dir.0.join("b"),
        &[
            "worker",
            "--redis",
            &url,
            "--drain",
            "--worker-name",
            "heir",
        ],
    );
    second.args(lease);
    let (code, out) = run(&mut second);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("taking it over"), "{out}");
    assert!(
        mocks.journal().len() > writes_before,
        "the heir did not go on"
    );
    // Every record on qTest exactly once, nothing missing.
    check::assert_migrated(&mocks);

    let (code, out) = run(&mut etlpool(&dir.0, &["status", "--redis", &url, "--json"]));
    assert_eq!(code, 0, "{out}");
    let doc: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    let p = &doc["projects"][0];
    assert_eq!(
        (p["state"].as_str(), p["worker"].as_str()),
        (Some("done"), Some("heir"))
    );
    assert_eq!(p["attempts"], 2, "{p}");
    let mut conn = redis.conn();
    let lock: Option<String> = conn.get("etlpool:lock:P0").unwrap();
    assert_eq!(lock, None, "the lock outlived the run");
}
