//! Policies per origin: every client of one origin, the qTest login included,
//! shares its rate limiter, circuit breaker and retry budget; a user's own
//! policies are consulted for every request of their origin.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::support::{json, scripted, test_pool};
use etlpool::http::{ApiClient, Auth, AuthProvider, RetryPolicy};
use etlpool::metrics::BreakerTransition;
use etlpool::policy::{
    Admission, Breaker, BreakerOpen, BreakerPolicy, BreakerState, Denied, Limiter, OriginPolicies,
    Outcome, RateFeedback, RateLimit,
};
use etlpool::qtest::QtestLogin;
use etlpool::{CancelToken, Error, Pool};
use serde_json::{Value, json as j};

fn no_retries(pool: &Pool, url: &str) -> ApiClient {
    ApiClient::builder(pool, url)
        .retry(RetryPolicy::none())
        .build()
        .unwrap()
}

#[test]
fn a_429_seen_by_one_client_pauses_another_client_of_the_origin() {
    let srv = scripted(|n, _| {
        if n == 0 {
            etlpool::mock::server::Answer::Response(
                etlpool::mock::server::Response::json(429, &j!({"message": "slow down"}))
                    .header("Retry-After", "1"),
            )
        } else {
            json(200, j!({}))
        }
    });
    let pool = test_pool().build().unwrap();
    let first = no_retries(&pool, &srv.url());
    let second = no_retries(&pool, &format!("{}/other/base", srv.url()));
    assert_eq!(
        first.get_json::<Value>("/a", &[]).unwrap_err().status(),
        Some(429)
    );
    let _: Value = second.get_json("/b", &[]).unwrap();
    let seen = srv.seen.lock();
    let gap = seen[1].at - seen[0].at;
    assert!(
        gap >= Duration::from_millis(900),
        "the second client went out {gap:?} after the 429"
    );
}

#[test]
fn a_breaker_opened_by_one_client_stops_another_client_of_the_origin() {
    let srv = scripted(|_, _| json(503, j!({"message": "down"})));
    let pool = test_pool().build().unwrap();
    let first = ApiClient::builder(&pool, &srv.url())
        .retry(RetryPolicy::none())
        .breaker(BreakerPolicy {
            cooldown: Duration::from_secs(60),
            ..BreakerPolicy::after_failures(2)
        })
        .build()
        .unwrap();
    for _ in 0..2 {
        assert_eq!(
            first.get_json::<Value>("/a", &[]).unwrap_err().status(),
            Some(503)
        );
    }
    let second = no_retries(&pool, &srv.url());
    assert!(second.breaker_open());
    let err = second.get_json::<Value>("/b", &[]).unwrap_err();
    assert!(matches!(err, Error::CircuitOpen { .. }), "{err:?}");
    assert_eq!(srv.count(), 2, "the second client reached the server");
    let m = pool.metrics().origin(&srv.url());
    assert_eq!(m.breaker_transitions.get("opened"), Some(&1));
}

#[test]
fn the_qtest_login_shares_its_origins_breaker() {
    let srv = scripted(|_, _| json(503, j!({"message": "down"})));
    let pool = test_pool().build().unwrap();
    let api_url = format!("{}/api/v3", srv.url());
    let api = ApiClient::builder(&pool, &api_url)
        .retry(RetryPolicy::none())
        .breaker(BreakerPolicy {
            cooldown: Duration::from_secs(60),
            ..BreakerPolicy::after_failures(1)
        })
        .build()
        .unwrap();
    assert!(api.get_json::<Value>("/projects", &[]).is_err());
    let login = QtestLogin::new(&pool, &api_url, "user", "pass")
        .unwrap()
        .with_site("site");
    let err = login.authorization().unwrap_err();
    assert!(matches!(err, Error::CircuitOpen { .. }), "{err:?}");
    assert_eq!(
        srv.count(),
        1,
        "the login went to a server its origin gave up on"
    );
}

/// A limiter that counts turns and learns nothing.
#[derive(Default)]
struct CountingLimiter {
    turns: AtomicU64,
}

impl Limiter for CountingLimiter {
    fn acquire(&self, _: Option<Instant>, _: Option<&CancelToken>) -> Result<Duration, Denied> {
        self.turns.fetch_add(1, Ordering::SeqCst);
        Ok(Duration::ZERO)
    }
    fn pause_until(&self, _: Instant) {}
    fn observe(&self, _: &RateFeedback) {}
}

/// A breaker that admits everything and counts what it hears.
#[derive(Default)]
struct CountingBreaker {
    allowed: AtomicU64,
    successes: AtomicU64,
    failures: AtomicU64,
}

impl Breaker for CountingBreaker {
    fn allow(&self) -> Result<Admission, BreakerOpen> {
        self.allowed.fetch_add(1, Ordering::SeqCst);
        Ok(Admission::closed())
    }
    fn record(&self, _: Admission, outcome: Outcome) -> Option<BreakerTransition> {
        match outcome {
            Outcome::Success => self.successes.fetch_add(1, Ordering::SeqCst),
            Outcome::Failure => self.failures.fetch_add(1, Ordering::SeqCst),
            Outcome::Neutral => 0,
        };
        None
    }
    fn state(&self) -> BreakerState {
        BreakerState::Closed
    }
}

/// A pool whose origin of `url` has a counting limiter and breaker.
fn counted_pool(url: &str) -> (Pool, Arc<CountingLimiter>, Arc<CountingBreaker>) {
    let pool = test_pool().build().unwrap();
    let limiter = Arc::new(CountingLimiter::default());
    let breaker = Arc::new(CountingBreaker::default());
    let policies = OriginPolicies::builder()
        .limiter(limiter.clone())
        .breaker(breaker.clone())
        .build();
    pool.set_policies(url, policies).unwrap();
    (pool, limiter, breaker)
}

#[test]
fn a_users_limiter_and_breaker_are_consulted_for_every_request_of_their_origin() {
    // The fourth request gets a 503 and is retried: two attempts, two turns.
    let srv = scripted(|n, _| {
        if n == 3 {
            json(503, j!({"message": "blip"}))
        } else {
            json(200, j!({}))
        }
    });
    let (pool, limiter, breaker) = counted_pool(&srv.url());
    let retrying = RetryPolicy {
        backoff: etlpool::backoff::Backoff {
            base: Duration::from_millis(1),
            cap: Duration::from_millis(5),
        },
        ..RetryPolicy::default()
    };
    let a = ApiClient::builder(&pool, &srv.url())
        .retry(retrying.clone())
        .build()
        .unwrap();
    let b = ApiClient::new(&pool, &format!("{}/v2", srv.url()), Auth::None).unwrap();
    for _ in 0..5 {
        let _: Value = a.get_json("/a", &[]).unwrap();
    }
    for _ in 0..3 {
        let _: Value = b.get_json("/b", &[]).unwrap();
    }
    assert_eq!(srv.count(), 9);
    assert_eq!(limiter.turns.load(Ordering::SeqCst), 9);
    assert_eq!(breaker.allowed.load(Ordering::SeqCst), 9);
    // The retry's outcome is no news of the service (one bad call would
    // count twice): it is reported neutral.
    assert_eq!(breaker.successes.load(Ordering::SeqCst), 7);
    assert_eq!(breaker.failures.load(Ordering::SeqCst), 1);
    // Another origin keeps the built-in policies.
    let other = scripted(|_, _| json(200, j!({})));
    let c = ApiClient::new(&pool, &other.url(), Auth::None).unwrap();
    let _: Value = c.get_json("/c", &[]).unwrap();
    assert_eq!(limiter.turns.load(Ordering::SeqCst), 9);
}

#[test]
fn settings_an_origin_already_has_otherwise_are_an_error_not_ignored() {
    let srv = scripted(|_, _| json(200, j!({})));
    let pool = test_pool().build().unwrap();
    let ten = RateLimit {
        per_second: Some(10.0),
        ..RateLimit::default()
    };
    let _first = ApiClient::builder(&pool, &srv.url())
        .rate_limit(ten)
        .build()
        .unwrap();
    // The same settings, or none, share what is there.
    ApiClient::builder(&pool, &srv.url())
        .rate_limit(ten)
        .build()
        .unwrap();
    ApiClient::new(&pool, &srv.url(), Auth::None).unwrap();
    let err = ApiClient::builder(&pool, &srv.url())
        .rate_limit(RateLimit {
            per_second: Some(20.0),
            ..RateLimit::default()
        })
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("rate_limit"), "{err}");
    let err = pool
        .set_policies(&srv.url(), OriginPolicies::builder().build())
        .unwrap_err();
    assert!(
        err.to_string().contains("already has its policies"),
        "{err}"
    );
    // A custom part can't be given settings by a client either.
    let custom = scripted(|_, _| json(200, j!({})));
    let policies = OriginPolicies::builder()
        .limiter(Arc::new(CountingLimiter::default()))
        .build();
    pool.set_policies(&custom.url(), policies).unwrap();
    assert!(
        ApiClient::builder(&pool, &custom.url())
            .rate_limit(RateLimit::default())
            .build()
            .is_err()
    );
}

#[test]
fn a_login_due_when_the_breaker_half_opens_does_not_jam_the_origin() {
    // The API fails once (the breaker opens), then works. Every token is
    // stale at once, so each request needs a login: as after an outage
    // longer than a token's life, the probe of the half-open breaker needs
    // a login first, and the login is a request to the same origin.
    let srv = scripted(|n, req| {
        if req.path.ends_with("/oauth/token") {
            json(200, j!({"access_token": format!("t{n}"), "expires_in": 0}))
        } else if n == 1 {
            json(503, j!({"message": "down"}))
        } else {
            json(200, j!({"ok": true}))
        }
    });
    let pool = test_pool().build().unwrap();
    let api_url = format!("{}/api/v3", srv.url());
    let login = QtestLogin::new(&pool, &api_url, "user", "pass")
        .unwrap()
        .with_site("acme");
    let api = ApiClient::builder(&pool, &api_url)
        .auth(Auth::Provider(Arc::new(login)))
        .retry(RetryPolicy::none())
        .breaker(BreakerPolicy {
            cooldown: Duration::ZERO,
            ..BreakerPolicy::after_failures(1)
        })
        .build()
        .unwrap();
    assert_eq!(
        api.get_json::<Value>("/projects", &[])
            .unwrap_err()
            .status(),
        Some(503)
    );
    // The server is up again: the login takes the probe, closes the
    // breaker, and the call goes through.
    let after: Vec<_> = (0..3)
        .map(|_| {
            api.get_json::<Value>("/projects", &[])
                .map_err(|e| e.to_string())
        })
        .collect();
    assert!(
        after.iter().all(Result::is_ok),
        "the origin stayed jammed after it recovered: {after:?}"
    );
    assert!(!api.breaker_open());
}

/// Credentials that change each time they are rejected.
#[derive(Default)]
struct Versioned(AtomicU64);

impl AuthProvider for Versioned {
    fn authorization(&self) -> etlpool::Result<String> {
        Ok(format!("Bearer v{}", self.0.load(Ordering::SeqCst)))
    }
    fn rejected(&self, _: &str) -> bool {
        self.0.fetch_add(1, Ordering::SeqCst);
        true
    }
}

#[test]
fn a_users_policies_see_stale_connection_resends_and_401_renewals_too() {
    // 0: ok; 1: the reused connection closes unanswered (resent at once,
    // outside the retry budget); 2: ok; 3: 401 (renewed and resent); 4: ok.
    let srv = scripted(|n, _| match n {
        1 => etlpool::mock::server::Answer::CloseWithoutResponse,
        3 => json(401, j!({"message": "expired"})),
        _ => json(200, j!({})),
    });
    let (pool, limiter, breaker) = counted_pool(&srv.url());
    let api = ApiClient::builder(&pool, &srv.url())
        .auth(Auth::Provider(Arc::new(Versioned::default())))
        .retry(RetryPolicy::none())
        .build()
        .unwrap();
    for _ in 0..3 {
        let _: Value = api.get_json("/a", &[]).unwrap();
    }
    assert_eq!(srv.count(), 5);
    assert_eq!(limiter.turns.load(Ordering::SeqCst), 5, "limiter turns");
    // The free resend on a fresh connection reuses its attempt's admission.
    assert_eq!(
        breaker.allowed.load(Ordering::SeqCst),
        4,
        "breaker admissions"
    );
}

#[test]
fn many_threads_first_using_an_origin_make_one_set_of_policies() {
    let srv = scripted(|_, _| json(200, j!({})));
    let pool = test_pool().build().unwrap();
    let barrier = std::sync::Barrier::new(16);
    let limit = |per_second: f64| RateLimit {
        per_second: Some(per_second),
        burst: 100,
        ..RateLimit::default()
    };
    let built: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..16)
            .map(|i| {
                let (pool, barrier, url) = (&pool, &barrier, srv.url());
                s.spawn(move || {
                    barrier.wait();
                    // Half ask for the same settings, half for none.
                    let mut builder = ApiClient::builder(pool, &format!("{url}/base{i}"));
                    if i % 2 == 0 {
                        builder = builder.rate_limit(limit(1000.0));
                    }
                    let client = builder.build();
                    if let Ok(c) = &client {
                        let _: Value = c.get_json("/x", &[]).unwrap();
                    }
                    client
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let limiters: Vec<_> = built
        .iter()
        .filter_map(|c| c.as_ref().ok())
        .map(|c| c.policies().limiter().clone())
        .collect();
    // Whoever came first, every client shares its set; a client asking for
    // the rate may only fail if a client asking for none came first.
    assert!(
        limiters.windows(2).all(|w| Arc::ptr_eq(&w[0], &w[1])),
        "two sets of policies for one origin"
    );
    let made = pool.policies(&srv.url()).unwrap();
    assert!(Arc::ptr_eq(made.limiter(), &limiters[0]));
    let failed = built.iter().filter(|c| c.is_err()).count();
    if made.settings().rate_limit == limit(1000.0) {
        assert_eq!(failed, 0, "the same settings conflicted");
    } else {
        assert_eq!(failed, 8, "only the ones asking for a rate fail");
    }
}
