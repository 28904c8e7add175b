//! `etlpool status --redis` shows each state of a queued project (waiting,
//! running with its worker and heartbeat, done, failed with its exit code
//! and error) and exits 6 while some wait or run; a worker's `/metrics`
//! carries its `worker` label. Before the fleet work there was no `status`
//! command (exit 2).

use std::time::{Duration, Instant};

use redis::Commands;

use crate::cli::run;
use crate::ops_util::{get, sample, signal, spawn};
use crate::support::fleet::{
    RedisServer, big_sizes, enqueue, etlpool, project_mocks, sizes, write_list,
};
use crate::support::{Scratch, check};

#[test]
fn status_shows_waiting_running_done_and_failed() {
    let redis = RedisServer::start();
    let url = redis.url();
    let dir = Scratch::new("fleet-status");
    let (code, out) = run(&mut etlpool(&dir.0, &["status", "--redis", &url]));
    assert_eq!(code, 0, "an empty queue is done: {out}");

    let done = project_mocks(0, 950, sizes());
    let failed = project_mocks(1, 950, sizes());
    let first = write_list(&dir.0, "first.csv", &[&done, &failed]);
    // P1's qTest project does not exist: its run fails before any work (4).
    let text = std::fs::read_to_string(&first).unwrap().replace(
        &format!("P1,{}", failed.qtest_project_id()),
        &format!("P1,{}", failed.qtest_project_id() + 1),
    );
    std::fs::write(&first, text).unwrap();
    assert_eq!(enqueue(&dir.0, &first, &url).0, 0);
    let (code, out) = run(&mut etlpool(
        &dir.0.join("w1"),
        &["worker", "--redis", &url, "--drain", "--max-attempts", "1"],
    ));
    assert_eq!(code, 4, "the worst project's code: {out}");
    check::assert_migrated(&done);

    let big = big_sizes();
    let running = project_mocks(2, 950, big);
    let waiting = project_mocks(3, 950, sizes());
    assert_eq!(
        enqueue(
            &dir.0,
            &write_list(&dir.0, "second.csv", &[&running, &waiting]),
            &url
        )
        .0,
        0
    );
    let mut worker = etlpool(
        &dir.0.join("w2"),
        &[
            "worker",
            "--redis",
            &url,
            "--lease",
            "60s",
            "--worker-name",
            "busy-1",
            "--metrics-addr",
            "127.0.0.1:0",
            "-v",
        ],
    );
    let (mut child, mut lines) = spawn(&mut worker);
    let serving = lines
        .until("serving /metrics")
        .expect("the worker serves /metrics");
    let addr = serving.rsplit("http://").next().unwrap().trim().to_string();
    let mut conn = redis.conn();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let len: usize = conn.hlen("etlpool:journal:P2").unwrap();
        if len >= 20 {
            break;
        }
        assert!(Instant::now() < deadline && child.try_wait().unwrap().is_none());
        std::thread::sleep(Duration::from_millis(5));
    }
    let (status, metrics) = get(&addr, "/metrics");
    assert_eq!(status, 200);
    for line in metrics
        .lines()
        .filter(|l| l.starts_with("etlpool_job_running"))
    {
        assert!(
            line.contains("worker=\"busy-1\"") && line.contains("project=\"P2\""),
            "{line}"
        );
    }
    assert_eq!(
        sample(&metrics, "etlpool_job_running"),
        Some(1.0),
        "{metrics}"
    );
    // Stopped for good in mid-project: it stays `running` on busy-1 until
    // its lease runs out.
    signal(child.id(), "-KILL");
    child.wait().unwrap();

    let (code, out) = run(&mut etlpool(&dir.0, &["status", "--redis", &url, "--json"]));
    assert_eq!(code, 6, "{out}");
    let doc: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    let of = |key: &str| {
        doc["projects"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["project"]["zephyr_project"] == key)
            .unwrap_or_else(|| panic!("{key} not in {doc}"))
            .clone()
    };
    assert_eq!(of("P0")["state"], "done");
    assert_eq!(of("P1")["state"], "failed");
    assert_eq!(of("P1")["exit_code"], 4);
    assert!(
        of("P1")["error"].as_str().unwrap().contains("qTest"),
        "{doc}"
    );
    assert_eq!(of("P2")["state"], "running");
    assert_eq!(of("P2")["worker"], "busy-1");
    assert!(of("P2")["heartbeat_at_ms"].as_u64().is_some(), "{doc}");
    assert_eq!(of("P3")["state"], "waiting");
    for (state, n) in [("waiting", 1), ("running", 1), ("done", 1), ("failed", 1)] {
        assert_eq!(doc["counts"][state], n, "{doc}");
    }

    let (code, out) = run(&mut etlpool(&dir.0, &["status", "--redis", &url]));
    assert_eq!(code, 6, "{out}");
    let row = |key: &str| {
        out.lines()
            .find(|l| l.starts_with(&format!("{key} ")))
            .unwrap_or_else(|| panic!("no row for {key}: {out}"))
            .to_string()
    };
    assert!(row("P0").contains(" done "), "{out}");
    assert!(
        row("P1").contains(" failed ") && row("P1").contains("exit 4 after 1 attempt"),
        "{out}"
    );
    assert!(
        row("P2").contains(" running ") && row("P2").contains("busy-1"),
        "{out}"
    );
    assert!(
        row("P2").contains("since ") && row("P2").contains("heartbeat"),
        "{out}"
    );
    assert!(
        row("P3").contains(" waiting ") && row("P3").contains("queued"),
        "{out}"
    );
    assert!(out.contains("4 projects on redis://127.0.0.1:"), "{out}");
}
