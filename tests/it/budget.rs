//! The shared rate budget (feature `redis`): `etlpool load` processes
//! against one test server that records when each request came, with a
//! real `redis-server` of the test's own between them.

use std::process::{Child, Output};
use std::time::{Duration, Instant};

use etlpool::mock::server::{Answer, Response};

use crate::support::fleet::{RedisServer, etlpool};
use crate::support::{Scratch, Scripted, WAIT, scripted, wait_until};

/// A server answering every request 200, recording when each came.
fn counting_server() -> Scripted {
    scripted(|_, _| ok())
}

fn ok() -> Answer {
    Answer::Response(Response::bytes(200, "text/plain", b"ok".to_vec()))
}

/// `etlpool load URL` for `secs` seconds at `rate` (burst `burst`) with
/// `threads` threads, sharing the rate through `redis` if given.
fn load(
    dir: &Scratch,
    i: usize,
    url: &str,
    redis: Option<&str>,
    (rate, burst, threads, secs): (u32, u32, usize, u64),
) -> Child {
    let (rate, burst, threads, secs) = (
        rate.to_string(),
        burst.to_string(),
        threads.to_string(),
        format!("{secs}s"),
    );
    let mut args = vec![
        "load",
        url,
        "--rate",
        &rate,
        "--burst",
        &burst,
        "--threads",
        &threads,
        "--duration",
        &secs,
        "-v",
    ];
    if let Some(redis) = redis {
        args.extend(["--redis", redis]);
    }
    etlpool(&dir.0.join(format!("p{i}")), &args)
        .spawn()
        .expect("start etlpool load")
}

/// Three `etlpool load`s against `server` (see [`load`]).
/// in directories under `dir`.
fn three_loads(
    dir: &Scratch,
    server: &Scripted,
    redis: Option<&str>,
    params: (u32, u32, usize, u64),
) -> Vec<Child> {
    let url = format!("{}/items", server.url());
    (0..3).map(|i| load(dir, i, &url, redis, params)).collect()
}

/// Waits for each process; all must have succeeded.
fn finish(children: Vec<Child>) -> Vec<Output> {
    children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().expect("wait for etlpool load");
            assert!(
                out.status.success(),
                "etlpool load failed: {}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
            out
        })
        .collect()
}

/// Request times at the server, sorted.
fn times(server: &Scripted) -> Vec<Instant> {
    let mut at: Vec<Instant> = server.seen.lock().iter().map(|s| s.at).collect();
    at.sort();
    at
}

/// The most requests any window of `window` saw.
fn busiest(at: &[Instant], window: Duration) -> usize {
    let mut most = 0;
    let mut first = 0;
    for (last, t) in at.iter().enumerate() {
        while *t - at[first] > window {
            first += 1;
        }
        most = most.max(last - first + 1);
    }
    most
}

/// Requests that came within `[from, to)`.
fn between(at: &[Instant], from: Instant, to: Instant) -> usize {
    at.iter().filter(|t| **t >= from && **t < to).count()
}

/// Runs three processes at `RATE` each (shared through Redis or not) for
/// `SECS`; returns the busiest `T`-second window's requests.
fn three_processes(shared: bool) -> usize {
    let redis = RedisServer::start();
    let server = counting_server();
    let redis = shared.then(|| redis.url());
    let dir = Scratch::new("budget");
    finish(three_loads(
        &dir,
        &server,
        redis.as_deref(),
        (RATE, BURST, 3, SECS),
    ));
    busiest(&times(&server), Duration::from_secs(T))
}

const RATE: u32 = 50;
const BURST: u32 = 5;
const SECS: u64 = 4;
const T: u64 = 3;

/// Requests a rate of `RATE` allows in `T` seconds after its burst, plus,
/// for the jitter of arrival times at the server (a process delayed between
/// its turn and its send, on a busy machine, bunches requests up), a tenth
/// and two. Three processes alone make three times the rate.
fn allowed() -> usize {
    (f64::from(RATE * T as u32) * 1.1) as usize + BURST as usize + 2
}

#[test]
fn three_processes_sharing_a_budget_stay_under_it_together() {
    let most = three_processes(true);
    assert!(
        most <= allowed(),
        "{most} requests in {T} s; a shared {RATE}/s (burst {BURST}) allows {}",
        allowed()
    );
    // They did use it: well over half of it.
    assert!(most > allowed() / 2, "only {most} requests in {T} s");
}

#[test]
fn three_processes_without_redis_exceed_the_budget() {
    let most = three_processes(false);
    assert!(
        most > allowed() * 2,
        "{most} requests in {T} s: three processes alone should take about 3 x {RATE}/s"
    );
}

#[test]
fn when_redis_dies_each_process_keeps_to_its_share_and_rejoins_when_it_is_back() {
    const RATE: u32 = 60;
    let mut redis = RedisServer::start();
    let server = counting_server();
    let dir = Scratch::new("budget-fallback");
    let children = three_loads(&dir, &server, Some(&redis.url()), (RATE, 3, 3, 7));
    // All three are registered (so each one's share is a third) and sending.
    let conn = parking_lot::Mutex::new(redis.conn());
    let registered = wait_until(
        || {
            redis::cmd("ZCARD")
                .arg("etlpool:budget:members")
                .query::<usize>(&mut *conn.lock())
                .is_ok_and(|n| n == 3)
        },
        WAIT,
    );
    assert!(registered, "three members in Redis");
    // Turns taken since then told each process of the other two.
    let sent = server.count();
    assert!(
        wait_until(|| server.count() >= sent + 30, WAIT),
        "requests flow"
    );
    redis.kill();
    let killed = Instant::now();
    // Alone for 2.5 s, then Redis is back (empty) on its port.
    std::thread::sleep(Duration::from_millis(2500));
    redis.restart();
    let back = Instant::now();
    let outputs = finish(children);
    for out in &outputs {
        let err = String::from_utf8_lossy(&out.stderr);
        let warned = err
            .lines()
            .filter(|l| l.contains("WARN") && l.contains("going on alone"))
            .count();
        assert_eq!(warned, 1, "one WARN when Redis went away:\n{err}");
        let rejoined = err
            .lines()
            .filter(|l| l.contains("INFO") && l.contains("rejoined"))
            .count();
        assert_eq!(rejoined, 1, "one INFO when it came back:\n{err}");
    }
    let at = times(&server);
    // Alone: a third of 60/s each (burst 1 each), from when turns taken
    // from Redis before it died have gone out.
    let from = killed + Duration::from_millis(300);
    let alone = between(&at, from, back);
    let span = (back - from).as_secs_f64();
    let allowed = within(RATE, span);
    assert!(
        alone <= allowed,
        "{alone} requests in {span:.1} s without Redis; three thirds of {RATE}/s allow {allowed}\n{}",
        outputs
            .iter()
            .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(alone > allowed / 2, "only {alone} requests without Redis");
    // Back together: within the shared rate again after the heartbeat
    // that rejoins (1 s).
    let rejoined = back + Duration::from_millis(1300);
    let end = *at.last().expect("requests");
    let together = between(&at, rejoined, end + Duration::from_millis(1));
    let span = (end - rejoined).as_secs_f64();
    let allowed = within(RATE, span);
    assert!(
        together <= allowed,
        "{together} requests in {span:.1} s after rejoining; {RATE}/s allows {allowed}"
    );
}

/// The most requests three processes keeping to `rate` together may make
/// in `span` seconds, cut out of a longer run: the rate, a burst of 1 each,
/// and for the jitter of arrival times a tenth more and two per process.
fn within(rate: u32, span: f64) -> usize {
    (f64::from(rate) * span * 1.1) as usize + 3 + 6
}

/// Three processes at 30/s shared (or each its own) against a server that
/// answers its request `N429` with a 429 and `Retry-After: 2`; returns the
/// requests of the others in the pause (from when turns taken before it
/// have gone out to shortly before it ends).
fn requests_in_a_429_pause(shared: bool) -> usize {
    const N429: usize = 60;
    let redis = RedisServer::start();
    let server = scripted(|n, _| {
        if n == N429 {
            Answer::Response(
                Response::bytes(429, "text/plain", b"slow down".to_vec())
                    .header("Retry-After", "2"),
            )
        } else {
            ok()
        }
    });
    let redis = shared.then(|| redis.url());
    let dir = Scratch::new("budget-429");
    finish(three_loads(&dir, &server, redis.as_deref(), (30, 1, 2, 5)));
    let at: Vec<Instant> = server.seen.lock().iter().map(|s| s.at).collect();
    assert!(at.len() > N429, "the 429 was sent");
    let t429 = at[N429];
    let mut sorted = at.clone();
    sorted.sort();
    between(
        &sorted,
        t429 + Duration::from_millis(400),
        t429 + Duration::from_millis(1800),
    )
}

#[test]
fn a_429_seen_by_one_process_pauses_the_others() {
    let during = requests_in_a_429_pause(true);
    assert_eq!(during, 0, "requests during another process's 429 pause");
}

#[test]
fn without_redis_a_429_pauses_only_the_process_that_saw_it() {
    let during = requests_in_a_429_pause(false);
    assert!(
        during > 10,
        "only {during} requests from the other two processes"
    );
}
