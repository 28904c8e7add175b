//! Coalescing: identical GETs in flight at once share one request; different
//! credentials, queries or methods never do; the leader's error (or panic)
//! reaches every follower, and a follower leaves at its own deadline.

use std::cell::Cell;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use crate::support::{WAIT, json, scripted, test_pool, wait_until};
use crossbeam_channel::bounded;
use etlpool::http::{ApiClient, Auth, AuthProvider, RetryPolicy};
use etlpool::mock::server::Answer;
use etlpool::{CallWait, Error, Pool};
use parking_lot::{Condvar, Mutex};
use serde_json::{Value, json as j};

/// How many GETs join the one in flight.
pub(crate) const N: usize = 8;

pub(crate) fn coalesced(pool: &Pool, url: &str) -> u64 {
    pool.metrics().origin(url).coalesced_requests
}

/// Holds its handler until `n` requests have arrived (or [`WAIT`] passed),
/// so requests that should not share must all be at the server at once.
#[derive(Default)]
pub(crate) struct Gate(Mutex<usize>, Condvar);

impl Gate {
    pub(crate) fn arrive(&self, n: usize) {
        let mut arrived = self.0.lock();
        *arrived += 1;
        self.1.notify_all();
        let deadline = Instant::now() + WAIT;
        while *arrived < n && !self.1.wait_until(&mut arrived, deadline).timed_out() {}
    }
}

/// A server that answers once `n` requests are in, echoing what it got.
pub(crate) fn gated(n: usize) -> crate::support::Scripted {
    let gate = Arc::new(Gate::default());
    scripted(move |_, req| {
        gate.arrive(n);
        json(
            200,
            j!({"query": req.target, "auth": req.header("authorization")}),
        )
    })
}

#[test]
fn identical_concurrent_gets_share_one_request() {
    let (release, released) = bounded::<()>(0);
    let srv = scripted(move |n, _| {
        if n == 0 {
            let _ = released.recv_timeout(WAIT);
        }
        json(200, j!({"request": n}))
    });
    let pool = test_pool().build().unwrap();
    let client = ApiClient::builder(&pool, &srv.url())
        .auth(Auth::Bearer("t".into()))
        .coalesce_gets(true)
        .build()
        .unwrap();
    let start = Barrier::new(N);
    let answers: Vec<Value> = thread::scope(|s| {
        let calls: Vec<_> = (0..N)
            .map(|_| {
                s.spawn(|| {
                    start.wait();
                    client.get_json::<Value>("/items", &[("page", "1")])
                })
            })
            .collect();
        // Every other call has joined the one the server holds.
        assert!(
            wait_until(|| coalesced(&pool, &srv.url()) == (N - 1) as u64, WAIT),
            "{} joined",
            coalesced(&pool, &srv.url())
        );
        release.send(()).unwrap();
        calls
            .into_iter()
            .map(|c| c.join().unwrap().unwrap())
            .collect()
    });
    assert_eq!(answers, vec![j!({"request": 0}); N]);
    assert_eq!(srv.count(), 1, "the server saw more than one request");
    let m = pool.metrics().origin(&srv.url());
    assert_eq!(m.coalesced_requests, (N - 1) as u64);
    assert_eq!(m.requests_sent, 1);

    // Nothing is cached: a call after the answer sends its own.
    let again: Value = client.get_json("/items", &[("page", "1")]).unwrap();
    assert_eq!(again, j!({"request": 1}));
}

/// Names the caller's thread as its token.
pub(crate) struct ByThread;

impl AuthProvider for ByThread {
    fn authorization(&self) -> etlpool::Result<String> {
        Ok(format!(
            "Bearer {}",
            thread::current().name().unwrap_or("none")
        ))
    }

    fn rejected(&self, _: &str) -> bool {
        false
    }
}

/// Runs `call` on one thread per name (named so, for [`ByThread`]), all at
/// once, and returns what each returned, in order.
pub(crate) fn on_threads<T: Send>(names: &[String], call: impl Fn(&str) -> T + Sync) -> Vec<T> {
    let start = Barrier::new(names.len());
    thread::scope(|s| {
        let calls: Vec<_> = names
            .iter()
            .map(|name| {
                let (call, start) = (&call, &start);
                thread::Builder::new()
                    .name(name.clone())
                    .spawn_scoped(s, move || {
                        start.wait();
                        call(name)
                    })
                    .unwrap()
            })
            .collect();
        calls.into_iter().map(|c| c.join().unwrap()).collect()
    })
}

/// Runs `call` on two threads named `alice` and `bob` at once.
fn two_at_once<T: Send>(call: impl Fn(&str) -> T + Sync) -> Vec<T> {
    on_threads(&["alice".into(), "bob".into()], call)
}

#[test]
fn different_credentials_or_queries_are_never_coalesced() {
    let srv = gated(2);
    let pool = test_pool().build().unwrap();
    let client = ApiClient::builder(&pool, &srv.url())
        .auth(Auth::Provider(Arc::new(ByThread)))
        .coalesce_gets(true)
        .build()
        .unwrap();
    let answers = two_at_once(|_| client.get_json::<Value>("/items", &[]).unwrap());
    assert_eq!(srv.count(), 2, "two credentials shared one request");
    assert_eq!(answers[0]["auth"], "Bearer alice");
    assert_eq!(answers[1]["auth"], "Bearer bob");

    let srv = gated(2);
    let client = ApiClient::builder(&pool, &srv.url())
        .auth(Auth::Bearer("t".into()))
        .coalesce_gets(true)
        .build()
        .unwrap();
    let answers = two_at_once(|name| {
        client
            .get_json::<Value>("/items", &[("page", name)])
            .unwrap()
    });
    assert_eq!(srv.count(), 2, "two queries shared one request");
    assert_eq!(answers[0]["query"], "/items?page=alice");
    assert_eq!(answers[1]["query"], "/items?page=bob");
    assert_eq!(coalesced(&pool, &srv.url()), 0);
}

#[test]
fn a_post_is_never_coalesced() {
    let srv = gated(N);
    let pool = test_pool().build().unwrap();
    let client = ApiClient::builder(&pool, &srv.url())
        .coalesce_gets(true)
        .build()
        .unwrap();
    let start = Barrier::new(N);
    thread::scope(|s| {
        for _ in 0..N {
            s.spawn(|| {
                start.wait();
                client
                    .post_json::<_, Value>("/items", &[], &j!({"name": "x"}))
                    .unwrap()
            });
        }
    });
    assert_eq!(srv.count(), N);
    assert_eq!(coalesced(&pool, &srv.url()), 0);
}

#[test]
fn the_leaders_error_reaches_every_follower() {
    let (release, released) = bounded::<()>(0);
    let srv = scripted(move |_, _| {
        let _ = released.recv_timeout(WAIT);
        Answer::Reset
    });
    let pool = test_pool().build().unwrap();
    let client = ApiClient::builder(&pool, &srv.url())
        .retry(RetryPolicy::none())
        .coalesce_gets(true)
        .build()
        .unwrap();
    let errors: Vec<Error> = thread::scope(|s| {
        let calls: Vec<_> = (0..N)
            .map(|_| s.spawn(|| client.get_json::<Value>("/items", &[])))
            .collect();
        assert!(wait_until(
            || coalesced(&pool, &srv.url()) == (N - 1) as u64,
            WAIT
        ));
        release.send(()).unwrap();
        calls
            .into_iter()
            .map(|c| c.join().unwrap().unwrap_err())
            .collect()
    });
    assert_eq!(srv.count(), 1);
    let first = errors[0].to_string();
    for e in &errors {
        assert!(matches!(e, Error::Request(_)), "{e:?}");
        assert_eq!(e.to_string(), first);
        assert!(e.is_transient() && !e.is_outcome_unknown());
    }
}

thread_local! {
    /// How often this thread asked the provider for credentials.
    static USES: Cell<u32> = const { Cell::new(0) };
}

/// This thread's use of the provider, counted.
fn use_count() -> u32 {
    USES.with(|u| {
        u.set(u.get() + 1);
        u.get()
    })
}

/// Credentials that run `hook` on a thread's second use: the leader's own
/// call, after the value for its key (a follower asks once).
pub(crate) struct OnTheLeadersCall(pub(crate) Box<dyn Fn() + Send + Sync>);

impl AuthProvider for OnTheLeadersCall {
    fn authorization(&self) -> etlpool::Result<String> {
        if use_count() == 2 {
            (self.0)();
        }
        Ok("Bearer t".into())
    }

    fn rejected(&self, _: &str) -> bool {
        false
    }
}

#[test]
fn a_panic_of_the_leader_reaches_every_follower_as_an_error() {
    let srv = scripted(|_, _| json(200, j!({})));
    let pool = test_pool().build().unwrap();
    let (watched, url) = (pool.clone(), srv.url());
    // Panics once every follower has joined.
    let auth = OnTheLeadersCall(Box::new(move || {
        wait_until(|| coalesced(&watched, &url) == (N - 1) as u64, WAIT);
        panic!("the credentials provider broke");
    }));
    let client = ApiClient::builder(&pool, &srv.url())
        .auth(Auth::Provider(Arc::new(auth)))
        // Bounds the followers' wait if the panic never reached them.
        .total_timeout(Some(WAIT))
        .coalesce_gets(true)
        .build()
        .unwrap();
    let outcomes: Vec<_> = thread::scope(|s| {
        let calls: Vec<_> = (0..N)
            .map(|_| s.spawn(|| client.get_json::<Value>("/items", &[])))
            .collect();
        calls.into_iter().map(|c| c.join()).collect()
    });
    let panicked = outcomes.iter().filter(|o| o.is_err()).count();
    assert_eq!(panicked, 1, "only the leader panics");
    for outcome in outcomes.into_iter().flatten() {
        let e = outcome.unwrap_err();
        assert!(e.to_string().contains("panicked"), "{e}");
    }
    assert_eq!(srv.count(), 0);
}

#[test]
fn a_follower_leaves_at_its_own_deadline() {
    let srv = scripted(|_, _| json(200, j!({})));
    let pool = test_pool().build().unwrap();
    let (entered, leader_in) = bounded(1);
    let (release, released) = bounded(1);
    let total = Duration::from_millis(300);
    let client = ApiClient::builder(&pool, &srv.url())
        .auth(Auth::Provider(Arc::new(OnTheLeadersCall(Box::new(
            move || {
                entered.send(()).unwrap();
                let _ = released.recv_timeout(WAIT);
            },
        )))))
        .total_timeout(Some(total))
        .coalesce_gets(true)
        .build()
        .unwrap();
    thread::scope(|s| {
        let leader = s.spawn(|| client.get_json::<Value>("/items", &[]));
        leader_in
            .recv_timeout(WAIT)
            .expect("the leader is in its call");
        let follower = s.spawn(|| {
            let start = Instant::now();
            (client.get_json::<Value>("/items", &[]), start.elapsed())
        });
        let (result, took) = follower.join().unwrap();
        let err = result.unwrap_err();
        let Error::TotalTimeout {
            at,
            elapsed,
            waiting_for,
        } = &err
        else {
            panic!("{err:?}")
        };
        assert_eq!(*waiting_for, Some(CallWait::SharedRequest));
        assert_eq!((at.method.as_str(), at.path.as_str()), ("GET", "/items"));
        assert!(*elapsed <= took, "{elapsed:?} of {took:?}");
        assert!(err.to_string().contains("coalesced"), "{err}");
        assert!(err.is_timeout() && err.is_transient(), "{err}");
        assert!(took >= total - Duration::from_millis(50), "{took:?}");
        assert!(took < WAIT, "the follower waited for the leader: {took:?}");
        release.send(()).unwrap();
        let leader = leader.join().unwrap().unwrap_err();
        assert!(leader.is_timeout(), "{leader}");
    });
    assert_eq!(coalesced(&pool, &srv.url()), 1);
    assert_eq!(srv.count(), 0);
}
