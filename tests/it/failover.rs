//! Failover: an `ApiClient` with several base URLs of one service sends calls
//! to the next origin when the primary is unreachable or its breaker is open,
//! never replays a write whose outcome is unknown, and comes back to the
//! primary when a probe of it succeeds. The servers' request counts and each
//! origin's metrics say which origin served what.

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::support::{json, scripted, test_pool};
use etlpool::http::{ApiClient, ApiClientBuilder, ApiRequest, RetryPolicy};
use etlpool::metrics::{BreakerTransition, FailureKind};
use etlpool::mock::server::{Answer, HttpServer, ServerOptions};
use etlpool::policy::BreakerPolicy;
use etlpool::{Error, Origin, Pool};
use parking_lot::Mutex;
use serde_json::{Value, json as j};

/// A URL on 127.0.0.1 whose port refuses connections, and that port.
pub(crate) fn refused() -> (String, u16) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    (format!("http://127.0.0.1:{port}"), port)
}

/// A server answering every request with `{"from": name}`.
pub(crate) fn named(name: &'static str) -> crate::support::Scripted {
    scripted(move |_, _| json(200, j!({ "from": name })))
}

pub(crate) fn from(client: &ApiClient, path: &str) -> String {
    let v: Value = client.get_json(path, &[]).unwrap();
    v["from"].as_str().unwrap_or_default().to_string()
}

/// A client of `primary` failing over to `secondary`, without retries.
pub(crate) fn pair(pool: &Pool, primary: &str, secondary: &str) -> ApiClientBuilder {
    ApiClient::builder(pool, primary)
        .failover(secondary)
        .retry(RetryPolicy::none())
}

/// A primary that refuses connections, a secondary, and their pool.
struct Setup {
    primary: String,
    port: u16,
    secondary: crate::support::Scripted,
    pool: Pool,
}

/// [`Setup`], and a client of it with base path `/v2` on both origins.
fn primary_down() -> (Setup, ApiClientBuilder) {
    let (primary, port) = refused();
    let secondary = named("secondary");
    let pool = test_pool().build().unwrap();
    let builder = pair(
        &pool,
        &format!("{primary}/v2"),
        &format!("{}/v2", secondary.url()),
    );
    let setup = Setup {
        primary,
        port,
        secondary,
        pool,
    };
    (setup, builder)
}

/// The primary comes up on `port`, answering `{"from": "primary"}`: the
/// server, and the paths it is asked for.
pub(crate) fn comes_up(port: u16) -> (HttpServer, Arc<Mutex<Vec<String>>>) {
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let log = seen.clone();
    let server = HttpServer::start(
        ServerOptions {
            port,
            ..ServerOptions::default()
        },
        Arc::new(move |req: etlpool::mock::server::Request, _: &_| {
            log.lock().push(req.path.clone());
            json(200, j!({"from": "primary"}))
        }),
    )
    .expect("the primary's port is free again");
    (server, seen)
}

pub(crate) fn paths(server: &crate::support::Scripted) -> Vec<String> {
    server.seen.lock().iter().map(|s| s.path.clone()).collect()
}

#[test]
fn calls_go_to_the_secondary_while_the_primary_refuses_connections() {
    let (
        Setup {
            primary,
            secondary,
            pool,
            ..
        },
        builder,
    ) = primary_down();
    let client = builder.build().unwrap();
    assert_eq!(client.base_url(), format!("{primary}/v2"));
    assert_eq!(
        client.origins(),
        [
            Origin::parse(&primary).unwrap(),
            Origin::parse(&secondary.url()).unwrap()
        ]
    );

    assert_eq!(from(&client, "/items"), "secondary");
    // Passed over now: no second connect to the primary.
    assert_eq!(from(&client, "/items"), "secondary");
    // A write moves on too when nothing was sent: it can't be duplicated.
    let _: Value = client.post_json("/items", &[], &j!({"n": 1})).unwrap();
    // A `next` link under the primary's base URL is that path on the secondary.
    assert_eq!(
        from(&client, &format!("{primary}/v2/items?page=2")),
        "secondary"
    );

    assert_eq!(paths(&secondary), ["/v2/items"; 4]);
    assert_eq!(secondary.seen.lock()[2].method, "POST");
    let m = pool.metrics();
    let (p, s) = (m.origin(&primary), m.origin(&secondary.url()));
    assert_eq!(
        p.failed(FailureKind::Connect),
        1,
        "the primary was tried once"
    );
    assert_eq!(p.requests_sent, 0);
    assert_eq!((p.failed_over, p.failover_probes), (4, 0));
    assert_eq!((s.failover_served, s.failed_over), (4, 0));
    assert_eq!(s.responses["2xx"], 4);
    assert!(!client.breaker_open());
}

#[test]
fn calls_go_to_the_secondary_while_the_primary_breaker_is_open() {
    let primary = scripted(|_, _| json(503, j!({"message": "down"})));
    let secondary = named("secondary");
    let pool = test_pool().build().unwrap();
    let client = pair(&pool, &primary.url(), &secondary.url())
        .breaker(BreakerPolicy {
            cooldown: Duration::from_secs(600),
            ..BreakerPolicy::after_failures(1)
        })
        .build()
        .unwrap();
    // A read answered 503 moves on, and opens the primary's breaker.
    assert_eq!(from(&client, "/a"), "secondary");
    // Every client of the origin shares the breaker: open for this one too.
    let plain = ApiClient::builder(&pool, &primary.url()).build().unwrap();
    assert!(plain.breaker_open());
    assert!(!client.breaker_open(), "the secondary's breaker is closed");

    assert_eq!(from(&client, "/a"), "secondary");
    let _: Value = client.post_json("/a", &[], &j!({})).unwrap();

    assert_eq!(
        primary.count(),
        1,
        "the open breaker kept calls off the primary"
    );
    assert_eq!(secondary.count(), 3);
    let m = pool.metrics();
    let (p, s) = (m.origin(&primary.url()), m.origin(&secondary.url()));
    assert_eq!(p.breaker_transitions["opened"], 1);
    assert_eq!((p.failed_over, p.failover_probes), (3, 0));
    assert_eq!(s.failover_served, 3);
}

#[test]
fn calls_come_back_to_the_primary_when_a_probe_finds_it_reachable() {
    let (
        Setup {
            primary,
            port,
            secondary,
            pool,
        },
        builder,
    ) = primary_down();
    let client = builder
        .failover_recheck(Duration::ZERO)
        .failover_probe("/health")
        .build()
        .unwrap();
    assert_eq!(from(&client, "/items"), "secondary");
    // Due for a probe at once (recheck 0): it is refused, the call moves on.
    assert_eq!(from(&client, "/items"), "secondary");

    let (_up, seen) = comes_up(port);
    assert_eq!(
        from(&client, "/items"),
        "primary",
        "the probe brought it back"
    );
    assert_eq!(from(&client, "/items"), "primary");

    assert_eq!(*seen.lock(), ["/v2/health", "/v2/items", "/v2/items"]);
    assert_eq!(secondary.count(), 2);
    let m = pool.metrics();
    let (p, s) = (m.origin(&primary), m.origin(&secondary.url()));
    assert_eq!(p.failover_probes, 2);
    assert_eq!(p.failover_recovered, 1);
    assert_eq!(p.failed_over, 2);
    assert_eq!(p.responses["2xx"], 3);
    assert_eq!(s.failover_served, 2);
}

#[test]
fn calls_come_back_to_the_primary_when_its_breaker_probe_succeeds() {
    let up = Arc::new(AtomicBool::new(false));
    let state = up.clone();
    let primary = scripted(move |_, _| match state.load(Ordering::SeqCst) {
        true => json(200, j!({"from": "primary"})),
        false => json(503, j!({"message": "down"})),
    });
    let secondary = named("secondary");
    let pool = test_pool().build().unwrap();
    let client = pair(&pool, &primary.url(), &secondary.url())
        .breaker(BreakerPolicy {
            cooldown: Duration::ZERO,
            ..BreakerPolicy::after_failures(1)
        })
        .build()
        .unwrap();
    // A read answered 503 moves on; the breaker opens.
    assert_eq!(from(&client, "/items"), "secondary");
    // The breaker lets its half-open probe through at once: still 503.
    assert_eq!(from(&client, "/items"), "secondary");
    up.store(true, Ordering::SeqCst);
    assert_eq!(from(&client, "/items"), "primary");
    assert_eq!(from(&client, "/items"), "primary");

    assert_eq!(paths(&primary), ["/items", "/", "/", "/items", "/items"]);
    assert_eq!(secondary.count(), 2);
    let p = pool.metrics().origin(&primary.url());
    assert_eq!(p.breaker_transitions["opened"], 2);
    assert_eq!(p.breaker_transitions["closed"], 1);
    assert_eq!((p.failover_probes, p.failover_recovered), (2, 1));
    assert_eq!(p.failed_over, 2);
}

#[test]
fn a_write_whose_outcome_is_unknown_is_never_sent_to_the_secondary() {
    let primary = scripted(|_, req| match req.path.as_str() {
        "/busy" => json(503, j!({"message": "busy"})),
        _ => Answer::Reset,
    });
    let secondary = named("secondary");
    let pool = test_pool().build().unwrap();
    let client = pair(&pool, &primary.url(), &secondary.url())
        .breaker(BreakerPolicy::disabled())
        .build()
        .unwrap();

    let reset = client
        .post_json::<_, Value>("/cases", &[], &j!({"name": "x"}))
        .unwrap_err();
    assert!(matches!(reset, Error::Request(_)), "{reset:?}");
    assert!(reset.is_outcome_unknown(), "{reset}");

    let busy = client
        .post_json::<_, Value>("/busy", &[], &j!({"name": "x"}))
        .unwrap_err();
    assert_eq!(busy.status(), Some(503));
    assert!(busy.is_outcome_unknown(), "{busy}");

    // Keyed: the primary could resend it, another origin's key store may
    // not know the key.
    let keyed = ApiRequest::post("/cases")
        .json(&j!({"name": "x"}))
        .unwrap()
        .idempotency_key("case-1");
    let keyed = client.json::<Value>(&keyed).unwrap_err();
    assert!(matches!(keyed, Error::Request(_)), "{keyed:?}");

    // (The keyed one, sent on the kept-alive socket of the 503, may be resent
    // once by the primary's own stale-connection rule.)
    assert!(primary.count() >= 3, "{}", primary.count());
    assert_eq!(
        secondary.count(),
        0,
        "a write was replayed on the secondary"
    );
    assert_eq!(pool.metrics().origin(&primary.url()).failed_over, 0);

    // A read of the same failure moves on.
    assert_eq!(from(&client, "/cases"), "secondary");
}

#[test]
fn when_every_origin_is_down_the_error_names_them_all() {
    let ((a, _), (b, _)) = (refused(), refused());
    let pool = test_pool().build().unwrap();
    let client = pair(&pool, &a, &b).build().unwrap();
    for round in 0..2 {
        let err = client.get_json::<Value>("/x", &[]).unwrap_err();
        let Error::AllOriginsFailed(f) = &err else {
            panic!("{err:?}")
        };
        let origins: Vec<&str> = f.origins.iter().map(|(o, _)| o.as_str()).collect();
        assert_eq!(origins, [a.as_str(), b.as_str()]);
        assert!(matches!(f.last, Error::Request(_)), "{:?}", f.last);
        let text = err.to_string();
        assert!(text.contains(&a) && text.contains(&b), "{text}");
        assert!(text.contains("connect failed"), "{text}");
        if round == 1 {
            assert!(text.contains("passed over"), "{text}");
        }
        assert!(err.is_transient());
        let source = std::error::Error::source(&err).expect("the last error");
        assert!(source.to_string().contains(&b), "{source}");
    }
    assert!(
        !client.breaker_open(),
        "the breakers did not reach their threshold"
    );
}

#[test]
fn base_urls_must_be_on_origins_of_their_own() {
    let server = named("x");
    let pool: Pool = test_pool().build().unwrap();
    let err = pair(
        &pool,
        &format!("{}/v2", server.url()),
        &format!("{}/mirror/v2", server.url()),
    )
    .build()
    .unwrap_err();
    assert!(
        matches!(&err, Error::Config { key, .. } if key == "failover"),
        "{err:?}"
    );
}

#[test]
fn an_open_breaker_everywhere_is_reported_as_open() {
    let (a, b) = (
        scripted(|_, _| json(503, j!({}))),
        scripted(|_, _| json(503, j!({}))),
    );
    let pool = test_pool().build().unwrap();
    let client = pair(&pool, &a.url(), &b.url())
        .breaker(BreakerPolicy {
            cooldown: Duration::from_secs(600),
            ..BreakerPolicy::after_failures(1)
        })
        .build()
        .unwrap();
    let err = client.get_json::<Value>("/x", &[]).unwrap_err();
    assert_eq!(err.status(), Some(503), "{err}");
    assert!(client.breaker_open());
    let err = client.get_json::<Value>("/x", &[]).unwrap_err();
    assert!(
        matches!(&err, Error::AllOriginsFailed(f) if matches!(f.last, Error::CircuitOpen { .. })),
        "{err:?}"
    );
    assert_eq!((a.count(), b.count()), (1, 1));
    let m = pool.metrics().origin(&b.url());
    assert_eq!(
        m.breaker_transitions[BreakerTransition::Opened.to_string().as_str()],
        1
    );
}
