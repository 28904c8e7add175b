//! Test helpers shared by the integration tests: loopback servers, test
//! certificates, and migrations against the mocks.

pub mod check;
pub mod flatten;
pub mod fleet;
pub mod migration;
pub mod mock;
mod tls;

pub use tls::TestCa;

use std::sync::Arc;
use std::time::Duration;

use etlpool::mock::server::{Answer, ConnContext, HttpServer, Request, Response, ServerOptions};
use etlpool::{Event, EventHandler, Pool, PoolBuilder};
use parking_lot::Mutex;

/// Generous bound for waiting on an event (a close seen by the server, a thread).
pub const WAIT: Duration = Duration::from_secs(10);

/// Checks `cond` every millisecond until it holds or `timeout` passes; returns
/// whether it held. Only for state nothing signals (the pool's gauges); a
/// bound on waiting, never a measurement.
pub fn wait_until(cond: impl Fn() -> bool, timeout: Duration) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    while !cond() {
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    true
}

/// A plain-HTTP server on 127.0.0.1:0 answering with `handler`.
pub fn server<F>(handler: F) -> HttpServer
where
    F: Fn(Request, &ConnContext) -> Answer + Send + Sync + 'static,
{
    HttpServer::start(ServerOptions::default(), Arc::new(handler)).expect("start test server")
}

/// The body of [`big_body_server`]: large enough that a response read later
/// still holds its connection.
pub const BIG_BODY: usize = 64 * 1024;

/// A keep-alive server answering every request with a [`BIG_BODY`]-byte body.
pub fn big_body_server() -> HttpServer {
    server(|_, _| Answer::Response(Response::bytes(200, "text/plain", vec![b'y'; BIG_BODY])))
}

/// Leases an agent for `url`, starts a GET whose body stays unread, and gives
/// the agent back while that body still holds its socket.
pub fn late_body(pool: &Pool, url: &str) -> ureq::http::Response<ureq::Body> {
    let lease = pool.lease(url).expect("lease");
    lease.get(url).call().expect("response head")
}

/// A keep-alive server answering every request with 200 "ok".
pub fn ok_server() -> HttpServer {
    server(|_, _| Answer::Response(Response::bytes(200, "text/plain", b"ok".to_vec())))
}

/// A pool for tests: no lifetime jitter, a cleaner that stays out of the way, and
/// short acquire waits.
pub fn test_pool() -> PoolBuilder {
    Pool::builder()
        .lifetime_jitter(0.0)
        .reap_interval(Duration::from_secs(3600))
        .acquire_timeout(Duration::from_secs(5))
}

/// `builder` built with a [`Recorder`] of its events.
pub fn recorded(builder: PoolBuilder) -> (Pool, Arc<Recorder>) {
    let events = Arc::new(Recorder::default());
    let pool = builder.event_handler(events.clone()).build().expect("pool");
    (pool, events)
}

/// Records pool events in order.
#[derive(Default)]
pub struct Recorder(pub Mutex<Vec<Event>>, parking_lot::Condvar);

impl EventHandler for Recorder {
    fn on_event(&self, event: &Event) {
        self.0.lock().push(event.clone());
        self.1.notify_all();
    }
}

impl Recorder {
    /// Blocks until an event named `name` (see [`Recorder::names`]) was recorded.
    pub fn wait_for(&self, name: &str, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        let mut events = self.0.lock();
        loop {
            if events.iter().any(|e| event_name(e) == name) {
                return true;
            }
            if self.1.wait_until(&mut events, deadline).timed_out() {
                return events.iter().any(|e| event_name(e) == name);
            }
        }
    }

    /// A short name per event: "connected", "reused", "closed:<reason>", "socket_busy",
    /// "lease_timeout".
    pub fn names(&self) -> Vec<String> {
        self.0.lock().iter().map(event_name).collect()
    }
}

fn event_name(e: &Event) -> String {
    match e {
        Event::Connected { .. } => "connected".to_string(),
        Event::Reused { .. } => "reused".to_string(),
        Event::Closed { reason, .. } => format!("closed:{reason}"),
        Event::SocketBusy { .. } => "socket_busy".to_string(),
        Event::LeaseTimedOut { .. } => "lease_timeout".to_string(),
        _ => "other".to_string(),
    }
}

/// A unique scratch directory under the target dir, removed on drop.
pub struct Scratch(pub std::path::PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!(
            "etlpool-test-{name}-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    pub fn file(&self, name: &str, content: &[u8]) -> std::path::PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, content).unwrap();
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A request as a test server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    /// Path and query as sent, undecoded.
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub at: std::time::Instant,
}

/// A server whose answer depends on how many requests came before, recording
/// every request it reads.
pub struct Scripted {
    pub server: HttpServer,
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

impl Scripted {
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// Requests read so far.
    pub fn count(&self) -> usize {
        self.seen.lock().len()
    }
}

/// Starts a server answering the n-th request (0-based) with `script(n, request)`.
pub fn scripted<F>(script: F) -> Scripted
where
    F: Fn(usize, &Request) -> Answer + Send + Sync + 'static,
{
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let log = seen.clone();
    let server = server(move |req, _ctx| {
        let n = {
            let mut log = log.lock();
            log.push(Seen {
                method: req.method.clone(),
                path: req.path.clone(),
                target: req.target.clone(),
                headers: req.headers.clone(),
                at: std::time::Instant::now(),
            });
            log.len() - 1
        };
        script(n, &req)
    });
    Scripted { server, seen }
}

/// A 200 answer with a JSON body.
pub fn json(status: u16, body: serde_json::Value) -> Answer {
    Answer::Response(Response::json(status, &body))
}

/// A migration against a running pair of mocks, with its files in a scratch dir.
pub struct Migration {
    pub mocks: etlpool::mock::MockServers,
    pub dir: Scratch,
    pub pool: Pool,
    /// How long a run waits out a service whose breaker is open: short, so
    /// a test whose mock crashed for good sees the run stop in seconds.
    pub max_outage: std::time::Duration,
}

impl Migration {
    /// Mocks seeded with `seed` and `sizes`, and a pool sized for 4 workers.
    pub fn new(seed: u64, sizes: etlpool::mock::DataSizes) -> Migration {
        let mut options = etlpool::mock::MockOptions::seeded(seed);
        options.sizes = sizes;
        Migration::with_options(options)
    }

    pub fn with_options(options: etlpool::mock::MockOptions) -> Migration {
        let mocks = etlpool::mock::MockServers::start(options).expect("start mocks");
        Migration {
            mocks,
            dir: Scratch::new("migration"),
            pool: Migration::fresh_pool(),
            max_outage: std::time::Duration::from_secs(2),
        }
    }

    fn fresh_pool() -> Pool {
        test_pool()
            .max_connections_per_host(4)
            .build()
            .expect("pool")
    }

    /// A new pool, as the next run of a scheduled job (a new process) starts
    /// with: no connections and no origin state (a breaker that the last run
    /// opened is not open in the next).
    pub fn new_process(&mut self) {
        self.pool = Migration::fresh_pool();
    }

    pub fn endpoints(&self) -> etlpool::migrate::Endpoints {
        etlpool::cli::mock_endpoints(&self.mocks)
    }

    pub fn options(&self) -> etlpool::migrate::MigrateOptions {
        etlpool::migrate::MigrateOptions {
            endpoints: self.endpoints(),
            mapping: Default::default(),
            workers: 4,
            journal: self.dir.0.join("journal.csv"),
            report: self.dir.0.join("report.csv"),
            dry_run: false,
            only: Default::default(),
            page_size: 25,
            progress: false,
        }
    }

    /// The report's `failed` rows, for assertion messages.
    pub fn failures(&self) -> String {
        std::fs::read_to_string(self.dir.0.join("report.csv"))
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(",failed,"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    pub fn run(&self) -> etlpool::migrate::RunSummary {
        self.run_with(&self.options())
    }

    /// Verifies the mocks with the default mapping and options.
    pub fn verify(&self) -> etlpool::migrate::VerifyReport {
        let (zephyr, qtest) = migration::clients(&self.mocks);
        migration::verify_defaults(&zephyr, &qtest)
    }

    pub fn run_with(
        &self,
        options: &etlpool::migrate::MigrateOptions,
    ) -> etlpool::migrate::RunSummary {
        let cancel = etlpool::CancelToken::new();
        let hooks = etlpool::migrate::RunHooks::default().max_outage(self.max_outage);
        etlpool::migrate::migrate_with(&self.pool, options, &cancel, &hooks)
            .expect("migration runs")
    }
}

/// A minimal HTTP CONNECT proxy on 127.0.0.1:0 that counts its tunnels.
pub struct ConnectProxy {
    pub addr: std::net::SocketAddr,
    pub tunnels: Arc<std::sync::atomic::AtomicU64>,
}

impl ConnectProxy {
    pub fn start() -> ConnectProxy {
        use std::io::{BufRead, BufReader, Write};
        use std::net::{TcpListener, TcpStream};
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let tunnels: Arc<std::sync::atomic::AtomicU64> = Arc::default();
        let count = tunnels.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(client.try_clone().unwrap());
                    let mut line = String::new();
                    reader.read_line(&mut line).unwrap();
                    let target = line.split_whitespace().nth(1).unwrap().to_string();
                    // Skip the rest of the head.
                    loop {
                        let mut h = String::new();
                        if reader.read_line(&mut h).unwrap() == 0 || h == "\r\n" {
                            break;
                        }
                    }
                    let upstream = TcpStream::connect(target).unwrap();
                    let mut client = client;
                    client
                        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                        .unwrap();
                    let (mut up_r, mut up_w) = (upstream.try_clone().unwrap(), upstream);
                    let mut down_w = client.try_clone().unwrap();
                    std::thread::spawn(move || std::io::copy(&mut up_r, &mut down_w));
                    let _ = std::io::copy(&mut reader, &mut up_w);
                    let _ = up_w.shutdown(std::net::Shutdown::Both);
                });
            }
        });
        ConnectProxy { addr, tunnels }
    }
}
