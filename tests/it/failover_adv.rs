//! Adversarial review of failover (issue 11): a write the primary may have
//! acted on never reaches the backup, a write nothing was sent of may; a read
//! answered 502/503/504 fails over with the primary's books kept (breaker,
//! metrics) and comes back after a successful probe; one failover of a call
//! counts once; a probe out (or one that unwound) never keeps calls from the
//! backup or the primary.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::thread;
use std::time::Duration;

use crate::failover::{comes_up, from, named, pair, paths, refused};
use crate::support::{Scripted, WAIT, json, scripted, test_pool};
use crossbeam_channel::bounded;
use etlpool::http::{ApiClient, ApiClientBuilder, Auth, AuthProvider};
use etlpool::metrics::FailureKind;
use etlpool::mock::server::{Answer, HttpServer, ServerOptions};
use etlpool::policy::BreakerPolicy;
use etlpool::{Error, Pool};
use serde_json::{Value, json as j};

/// A backup answering `{"from": "secondary"}`, a pool, and a client of
/// `primary` failing over to it, without retries.
fn backed_up(primary: &str) -> (Scripted, Pool, ApiClientBuilder) {
    let secondary = named("secondary");
    let pool = test_pool().build().unwrap();
    let builder = pair(&pool, primary, &secondary.url());
    (secondary, pool, builder)
}

/// A breaker that opens after `failures` failed calls in a row and is due
/// for its probe at once.
fn quick_breaker(failures: u32) -> BreakerPolicy {
    BreakerPolicy {
        cooldown: Duration::ZERO,
        ..BreakerPolicy::after_failures(failures)
    }
}

#[test]
fn a_post_the_primary_read_and_left_unanswered_never_reaches_the_backup() {
    let primary = scripted(|_, req| match req.path.as_str() {
        "/hang" => Answer::Hang,
        "/reset" => Answer::Reset,
        _ => Answer::CloseWithoutResponse,
    });
    let (secondary, pool, builder) = backed_up(&primary.url());
    let client = builder
        // Retries on: a POST that was sent is still never sent again.
        .retry(crate::http::policy())
        .request_timeout(Duration::from_millis(300))
        .breaker(BreakerPolicy::disabled())
        .build()
        .unwrap();
    for path in ["/closed", "/reset", "/hang"] {
        let err = client
            .post_json::<_, Value>(path, &[], &j!({"name": "x"}))
            .unwrap_err();
        assert!(matches!(err, Error::Request(_)), "{path}: {err:?}");
        assert!(err.is_outcome_unknown(), "{path}: {err}");
        assert!(err.to_string().contains("outcome unknown"), "{path}: {err}");
    }
    assert_eq!(paths(&primary), ["/closed", "/reset", "/hang"]);
    assert_eq!(secondary.count(), 0, "a write was replayed on the backup");
    let m = pool.metrics();
    assert_eq!(m.origin(&primary.url()).failed_over, 0);
    assert_eq!(m.origin(&secondary.url()).failover_served, 0);

    // The same failure for a read goes on.
    assert_eq!(from(&client, "/closed"), "secondary");
}

#[test]
fn a_post_refused_at_connect_goes_to_the_backup_once() {
    let (primary, _) = refused();
    let secondary = scripted(|_, req| {
        json(
            201,
            j!({"body": String::from_utf8_lossy(&req.body).to_string()}),
        )
    });
    let pool = test_pool().build().unwrap();
    let client = pair(&pool, &primary, &secondary.url())
        .retry(crate::http::policy())
        .build()
        .unwrap();
    let created: Value = client.post_json("/cases", &[], &j!({"name": "x"})).unwrap();
    assert_eq!(created["body"], r#"{"name":"x"}"#);
    assert_eq!(secondary.count(), 1);
    assert_eq!(secondary.seen.lock()[0].method, "POST");
    let m = pool.metrics();
    let (p, s) = (m.origin(&primary), m.origin(&secondary.url()));
    assert!(p.failed(FailureKind::Connect) >= 1);
    assert_eq!(p.requests_sent, 0);
    assert_eq!((p.failed_over, s.failover_served), (1, 1));
}

#[test]
fn one_failover_of_a_call_counts_once_whatever_its_retries() {
    let primary = scripted(|_, _| json(503, j!({"message": "busy"})));
    let (secondary, pool, builder) = backed_up(&primary.url());
    let client = builder
        .retry(crate::http::policy())
        .retry_budget(crate::http::generous_budget())
        .breaker(BreakerPolicy::disabled())
        .build()
        .unwrap();
    assert_eq!(from(&client, "/items"), "secondary");
    let retries = client.retry_policy().max_retries as usize;
    assert_eq!(primary.count(), 1 + retries, "the primary's own retries");
    let m = pool.metrics();
    let (p, s) = (m.origin(&primary.url()), m.origin(&secondary.url()));
    assert_eq!(p.failed_over, 1);
    assert_eq!(p.failed(FailureKind::Status5xx), 1, "one call, one failure");
    assert_eq!(
        (s.failover_served, s.requests_sent, s.failed_over),
        (1, 1, 0)
    );
}

#[test]
fn reads_answered_502_503_504_fail_over_with_the_books_kept_and_come_back() {
    let up = Arc::new(AtomicBool::new(false));
    let state = up.clone();
    let primary = scripted(move |n, _| match state.load(Ordering::SeqCst) {
        true => json(200, j!({"from": "primary"})),
        false => json(502 + (n % 3) as u16, j!({"message": "down"})),
    });
    let (secondary, pool, builder) = backed_up(&primary.url());
    let client = builder
        .breaker(quick_breaker(3))
        .failover_probe("/health")
        .build()
        .unwrap();
    // 502, 503, 504: each read goes on; the third opens the breaker.
    for _ in 0..3 {
        assert_eq!(from(&client, "/items"), "secondary");
    }
    // Due for its probe at once: answered 502, the call goes on.
    assert_eq!(from(&client, "/items"), "secondary");
    up.store(true, Ordering::SeqCst);
    assert_eq!(
        from(&client, "/items"),
        "primary",
        "the probe brought it back"
    );
    assert_eq!(from(&client, "/items"), "primary");

    assert_eq!(
        paths(&primary),
        [
            "/items", "/items", "/items", "/health", "/health", "/items", "/items"
        ]
    );
    assert_eq!(secondary.count(), 4);
    let m = pool.metrics();
    let (p, s) = (m.origin(&primary.url()), m.origin(&secondary.url()));
    assert_eq!(p.responses["5xx"], 4);
    assert_eq!(p.failed(FailureKind::Status5xx), 3, "each answered call");
    assert_eq!(p.breaker_transitions["opened"], 2);
    assert_eq!(p.breaker_transitions["closed"], 1);
    assert_eq!((p.failed_over, p.failover_served), (4, 0));
    assert_eq!((p.failover_probes, p.failover_recovered), (2, 1));
    assert_eq!((s.failover_served, s.requests_sent), (4, 4));
    assert_eq!(s.responses["2xx"], 4);
}

#[test]
fn a_call_goes_to_the_backup_while_another_calls_breaker_probe_is_out() {
    let (arrived, probe_in) = bounded::<()>(1);
    let (release, released) = bounded::<()>(1);
    let primary = scripted(move |n, _| match n {
        0 => json(503, j!({"message": "down"})),
        // The first probe: held until the test lets it answer.
        1 => {
            let _ = arrived.send(());
            let _ = released.recv_timeout(WAIT);
            json(200, j!({"from": "primary"}))
        }
        _ => json(200, j!({"from": "primary"})),
    });
    let (_secondary, pool, builder) = backed_up(&primary.url());
    let client = builder
        .breaker(quick_breaker(1))
        .failover_probe("/health")
        .build()
        .unwrap();
    assert_eq!(from(&client, "/items"), "secondary", "the 503 opens it");
    thread::scope(|s| {
        let probing = s.spawn(|| from(&client, "/items"));
        probe_in.recv_timeout(WAIT).expect("the probe is out");
        // One probe is out: this call must not wait for its verdict.
        let other = from(&client, "/items");
        release.send(()).unwrap();
        assert_eq!(other, "secondary", "the call waited behind the probe");
        assert_eq!(probing.join().unwrap(), "primary");
    });
    assert_eq!(paths(&primary), ["/items", "/health", "/items"]);
    let p = pool.metrics().origin(&primary.url());
    assert_eq!(p.failover_probes, 1, "one probe was sent");
    assert_eq!(p.failed_over, 2);
}

/// Credentials that break on demand: fine, panicking, or failing (a login
/// that can't be had).
#[derive(Default)]
struct Breakable(AtomicU8);

const FINE: u8 = 0;
const PANICS: u8 = 1;
const FAILS: u8 = 2;

impl AuthProvider for Breakable {
    fn authorization(&self) -> etlpool::Result<String> {
        match self.0.load(Ordering::SeqCst) {
            PANICS => panic!("the credentials provider broke"),
            FAILS => Err(Error::Config {
                key: "login".into(),
                message: "the identity provider is down".into(),
            }),
            _ => Ok("Bearer t".into()),
        }
    }

    fn rejected(&self, _: &str) -> bool {
        false
    }
}

/// A client whose primary was just found unreachable and is due for a probe
/// (`/health`) on the next call.
struct FoundDown {
    client: ApiClient,
    auth: Arc<Breakable>,
    primary: String,
    port: u16,
    pool: Pool,
    _secondary: crate::support::Scripted,
}

fn primary_found_down() -> FoundDown {
    let (primary, port) = refused();
    let (secondary, pool, builder) = backed_up(&primary);
    let auth = Arc::new(Breakable::default());
    let client = builder
        .auth(Auth::Provider(auth.clone()))
        .failover_recheck(Duration::ZERO)
        .failover_probe("/health")
        .build()
        .unwrap();
    assert_eq!(from(&client, "/items"), "secondary", "found unreachable");
    FoundDown {
        client,
        auth,
        primary,
        port,
        pool,
        _secondary: secondary,
    }
}

#[test]
fn a_probe_that_unwinds_does_not_keep_the_primary_passed_over() {
    let FoundDown {
        client, auth, port, ..
    } = primary_found_down();
    // The next call takes the probe, and its credentials panic.
    auth.0.store(PANICS, Ordering::SeqCst);
    let unwound = std::panic::catch_unwind(AssertUnwindSafe(|| from(&client, "/items")));
    assert!(unwound.is_err());
    auth.0.store(FINE, Ordering::SeqCst);

    let (_up, seen) = comes_up(port);
    assert_eq!(
        from(&client, "/items"),
        "primary",
        "the primary stayed passed over: its probe is still marked out"
    );
    assert_eq!(*seen.lock(), ["/health", "/items"]);
}

#[test]
fn a_probe_that_could_not_go_out_does_not_bring_the_primary_back() {
    let FoundDown {
        client,
        auth,
        primary,
        port,
        pool,
        ..
    } = primary_found_down();
    // The next call's probe can't get credentials: nothing reaches the
    // primary, which says nothing of it.
    auth.0.store(FAILS, Ordering::SeqCst);
    let err = client.get_json::<Value>("/items", &[]).unwrap_err();
    assert!(
        matches!(&err, Error::Config { key, .. } if key == "login"),
        "{err:?}"
    );
    auth.0.store(FINE, Ordering::SeqCst);

    let (_up, seen) = comes_up(port);
    assert_eq!(from(&client, "/items"), "primary");
    assert_eq!(
        *seen.lock(),
        ["/health", "/items"],
        "the primary came back without a probe"
    );
    let p = pool.metrics().origin(&primary);
    assert_eq!((p.failover_probes, p.failover_recovered), (1, 1));
}

#[test]
fn a_call_whose_deadline_the_primary_used_up_reports_the_primary() {
    let primary = scripted(|_, _| Answer::Hang);
    let (secondary, pool, builder) = backed_up(&primary.url());
    let client = builder
        .total_timeout(Some(Duration::from_millis(300)))
        .build()
        .unwrap();
    let err = client.get_json::<Value>("/items", &[]).unwrap_err();
    // The time went on the primary: the error says so, not that the backup
    // (which was sent nothing) ran out of it.
    timed_out_at(&err, &primary.url(), &secondary.url());
    assert_eq!((primary.count(), secondary.count()), (1, 0));
    let m = pool.metrics();
    assert_eq!(m.origin(&primary.url()).failed_over, 0, "nothing went on");
}

#[test]
fn a_call_whose_deadline_the_primarys_probe_used_up_reports_the_primary() {
    let (primary, port) = refused();
    let (secondary, _pool, builder) = backed_up(&primary);
    let client = builder
        .failover_recheck(Duration::ZERO)
        .failover_probe("/health")
        .total_timeout(Some(Duration::from_millis(300)))
        .build()
        .unwrap();
    assert_eq!(from(&client, "/items"), "secondary", "found unreachable");
    // The primary is back, but its probe never hears back.
    let _up = HttpServer::start(
        ServerOptions {
            port,
            ..ServerOptions::default()
        },
        Arc::new(|_: etlpool::mock::server::Request, _: &_| Answer::Hang),
    )
    .expect("the primary's port is free again");
    let err = client.get_json::<Value>("/items", &[]).unwrap_err();
    timed_out_at(&err, &primary, &secondary.url());
    assert_eq!(secondary.count(), 1, "only the first call");
}

/// Asserts that `err` is a timeout naming `spent` (where the call's time
/// went), never `untried` (which was sent nothing).
fn timed_out_at(err: &Error, spent: &str, untried: &str) {
    assert!(err.is_timeout(), "{err:?}");
    let text = etlpool::error_chain(err);
    assert!(text.contains(spent), "{text}");
    assert!(!text.contains(untried), "{text}");
}

#[test]
fn under_contention_no_write_reaches_both_origins_and_each_failover_counts_once() {
    const THREADS: usize = 8;
    const CALLS: usize = 30;
    let primary = scripted(|_, _| match fastrand::u8(0..4) {
        0 => json(200, j!({"from": "primary"})),
        1 => json(503, j!({"message": "busy"})),
        2 => Answer::CloseWithoutResponse,
        _ => Answer::Reset,
    });
    let (secondary, pool, builder) = backed_up(&primary.url());
    let client = builder.breaker(BreakerPolicy::disabled()).build().unwrap();
    let start = std::sync::Barrier::new(THREADS);
    thread::scope(|s| {
        for _ in 0..THREADS {
            let (client, start) = (&client, &start);
            s.spawn(move || {
                start.wait();
                for c in 0..CALLS {
                    if fastrand::bool() {
                        let v: Value = client.get_json("/items", &[]).unwrap();
                        assert!(v["from"] == "primary" || v["from"] == "secondary");
                    } else if let Err(e) =
                        client.post_json::<_, Value>("/items", &[], &j!({"n": c}))
                    {
                        assert!(e.is_outcome_unknown(), "{e}");
                    }
                }
            });
        }
    });
    let posts = |server: &crate::support::Scripted| {
        server
            .seen
            .lock()
            .iter()
            .filter(|s| s.method == "POST")
            .count()
    };
    assert_eq!(posts(&secondary), 0, "a write the primary read went on");
    assert!(posts(&primary) > 0);
    let moved = secondary.count() as u64;
    let m = pool.metrics();
    let (p, s) = (m.origin(&primary.url()), m.origin(&secondary.url()));
    assert_eq!((p.failed_over, s.failover_served), (moved, moved));
    assert_eq!(s.requests_sent, moved);
}
