//! `/metrics` and `/health` while a migration runs, and the metrics file at
//! the end.

use std::time::{Duration, Instant};

use crate::cli::{migrate, mocks};
use crate::ops_util::{get, sample, spawn};
use crate::support::Scratch;
use etlpool::mock::FailPoint;

#[test]
fn metrics_and_health_show_a_run_moving_and_an_open_breaker() {
    let mocks = mocks(111);
    for f in [&mocks.faults().zephyr, &mocks.faults().qtest] {
        f.set_latency(Duration::from_millis(6), Duration::ZERO);
    }
    let dir = Scratch::new("ops-metrics");
    let file = dir.0.join("etlpool.prom");
    let (mut child, mut lines) = spawn(
        migrate(&mocks, &dir.0)
            .args(["-v", "--metrics-addr", "127.0.0.1:0", "--metrics"])
            .arg(&file),
    );
    let serving = lines
        .until("serving /metrics")
        .unwrap_or_else(|| panic!("{}", lines.rest()));
    let addr = serving.rsplit("http://").next().unwrap().trim().to_string();

    // Progress moves between two scrapes.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        let (status, text) = get(&addr, "/metrics");
        assert_eq!(status, 200, "{text}");
        let done: f64 = text
            .lines()
            .filter(|l| l.starts_with("etlpool_job_records_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        seen.push(done);
        if seen.last() > seen.first() && seen.len() > 2 {
            assert!(text.contains("etlpool_job_phase{"), "{text}");
            assert!(
                text.contains("etlpool_connections_created_total{"),
                "{text}"
            );
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        seen.last() > seen.first(),
        "no progress between scrapes: {seen:?}"
    );

    let (status, body) = get(&addr, "/health");
    assert_eq!(status, 200, "{body}");
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    let zephyr = etlpool::Origin::parse(&mocks.zephyr_url())
        .unwrap()
        .to_string();
    assert_eq!(
        health["origins"][&zephyr]["breaker"], "closed",
        "{health:#}"
    );
    for key in ["in_use", "idle", "waiting", "last_error", "last_cleanup"] {
        assert!(
            health["origins"][&zephyr].get(key).is_some(),
            "{key}: {health:#}"
        );
    }

    // qTest fails every request: its breaker opens and /health says 503.
    // (It takes a window's minimum of calls, which qTest's writes reach
    // whatever is left of the run's Zephyr reads.)
    let qtest = etlpool::Origin::parse(&mocks.qtest_url())
        .unwrap()
        .to_string();
    mocks.faults().qtest.set_fail_rate(1.0, FailPoint::Before);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = (0, String::new());
    while Instant::now() < deadline && child.try_wait().unwrap().is_none() {
        last = get(&addr, "/health");
        if last.0 == 503 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    mocks.faults().qtest.clear();
    assert_eq!(last.0, 503, "{}", last.1);
    let health: serde_json::Value = serde_json::from_str(&last.1).unwrap();
    assert_eq!(health["origins"][&qtest]["breaker"], "open", "{health:#}");
    assert!(
        health["origins"][&qtest]["last_error"]["kind"].is_string(),
        "{health:#}"
    );

    let status = child.wait().unwrap();
    let code = status.code().unwrap_or(-1);
    assert!([0, 3].contains(&code), "exit {code}: {}", lines.rest());
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(
        sample(&text, "etlpool_job_exit_code"),
        Some(f64::from(code)),
        "{text}"
    );
    assert_eq!(sample(&text, "etlpool_job_running"), Some(0.0), "{text}");
}

#[test]
fn a_crossed_error_rate_is_one_warning() {
    // Every other request fails: 50 % against the 5 % threshold.
    let srv = crate::support::scripted(|n, _| {
        let status = if n % 2 == 0 { 503 } else { 200 };
        crate::support::json(status, serde_json::json!({}))
    });
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_etlpool"))
        .env_clear()
        .args(["load", "--threads", "1", "--requests", "100"])
        .arg(format!("{}/x", srv.url()))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    let warnings: Vec<_> = err
        .lines()
        .filter(|l| l.contains("etlpool::alerts") && l.contains("of requests failed"))
        .collect();
    assert_eq!(warnings.len(), 1, "{err}");
    assert!(warnings[0].contains(&srv.url()), "{err}");
}

#[test]
fn a_scraper_that_trickles_its_request_neither_blocks_scrapes_nor_holds_the_exit() {
    use std::io::Write;
    use std::sync::atomic::{AtomicBool, Ordering};

    let mocks = mocks(112);
    let dir = Scratch::new("ops-metrics-trickle");
    // The run waits for this lock, so the slow client is surely being
    // served before the run ends.
    let held = etlpool::migrate::Journal::open(dir.0.join("journal.csv")).unwrap();
    let (mut child, mut lines) =
        spawn(migrate(&mocks, &dir.0).args(["-v", "--wait", "--metrics-addr", "127.0.0.1:0"]));
    let serving = lines
        .until("serving /metrics")
        .unwrap_or_else(|| panic!("{}", lines.rest()));
    let addr = serving.rsplit("http://").next().unwrap().trim().to_string();

    // A client that sends a header line every 100 ms and never ends its
    // request, for up to a minute; another that sends one endless line.
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let tricklers: Vec<_> = [&b"X-Slow: yes\r\n"[..], &b"aaaaaaaa"[..]]
        .into_iter()
        .map(|chunk| {
            let mut slow = std::net::TcpStream::connect(&addr).unwrap();
            slow.write_all(b"GET /metrics HTTP/1.1\r\n").unwrap();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let until = Instant::now() + Duration::from_secs(60);
                while !stop.load(Ordering::SeqCst) && Instant::now() < until {
                    if slow.write_all(chunk).is_err() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            })
        })
        .collect();
    // Scrapes still get answers, within a bound well below the minute.
    let asked = Instant::now();
    let (status, text) = get(&addr, "/metrics");
    assert_eq!(status, 200, "{text}");
    assert!(
        asked.elapsed() < Duration::from_secs(20),
        "a scrape waited {:?} behind slow clients",
        asked.elapsed()
    );

    drop(held);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait().unwrap()));
    let status = rx.recv_timeout(Duration::from_secs(30));
    stop.store(true, Ordering::SeqCst);
    for t in tricklers {
        t.join().unwrap();
    }
    let status = status.unwrap_or_else(|_| {
        panic!(
            "etlpool did not exit while a scraper trickled: {}",
            lines.rest()
        )
    });
    assert_eq!(status.code(), Some(0), "{}", lines.rest());
}
