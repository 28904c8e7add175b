//! A small HTTP/1.1 server for tests and mocks, with socket-level fault control.
//!
//! One thread per connection, keep-alive by default, `Content-Length` and chunked request
//! bodies, TLS through rustls. Besides answering, a [`Handler`] can close without answering,
//! reset, send part of a response, or hang ([`Answer`]); [`ServerStats`] counts what happened
//! to every connection so tests can assert exact numbers without sleeping.

mod conn;
mod message;
mod parse;
mod stats;
mod stream;

use std::collections::HashMap;
use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use parking_lot::Mutex;

pub use message::{Answer, ConnContext, Handler, Request, Response};
pub use parse::{parse_query, percent_decode};
pub use stats::{ServerStats, StatsSnapshot};

/// Largest request body accepted when [`ServerOptions::max_body_bytes`] is 0.
pub const DEFAULT_MAX_BODY: usize = 16 * 1024 * 1024;

/// How an [`HttpServer`] listens.
#[derive(Clone, Default)]
pub struct ServerOptions {
    /// Port on 127.0.0.1; 0 picks a free one. Defaults to 0.
    pub port: u16,
    /// Serve TLS with this configuration. Defaults to plain HTTP.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Close keep-alive connections idle longer than this. Defaults to never.
    pub idle_close: Option<Duration>,
    /// Largest request body; larger ones get 413. 0 means [`DEFAULT_MAX_BODY`]. Defaults to 0.
    pub max_body_bytes: usize,
}

/// A running server; it shuts down when dropped.
pub struct HttpServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    accept: Mutex<Option<JoinHandle<()>>>,
    /// Set when a shutdown has finished; later callers wait for it.
    stopped: (Mutex<bool>, parking_lot::Condvar),
}

/// What the accept thread, the connection threads and the handle share.
pub(crate) struct Shared {
    stats: Arc<ServerStats>,
    handler: Arc<dyn Handler>,
    tls: Option<Arc<rustls::ServerConfig>>,
    max_body: usize,
    /// Idle-close limit in nanoseconds; `u64::MAX` means none.
    idle_close_nanos: AtomicU64,
    shutting_down: AtomicBool,
    next_id: AtomicU64,
    // Guards the open sockets and the connection threads; held only to insert or take, never
    // across I/O.
    registry: Mutex<Registry>,
}

#[derive(Default)]
struct Registry {
    closed: bool,
    /// A clone of every open connection's socket, so shutdown can wake its thread.
    sockets: HashMap<u64, TcpStream>,
    threads: Vec<JoinHandle<()>>,
}

impl HttpServer {
    /// Binds 127.0.0.1:`opts.port` and starts accepting.
    pub fn start(opts: ServerOptions, handler: Arc<dyn Handler>) -> io::Result<HttpServer> {
        let listener = TcpListener::bind(("127.0.0.1", opts.port))?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            stats: Arc::default(),
            handler,
            tls: opts.tls,
            max_body: if opts.max_body_bytes == 0 {
                DEFAULT_MAX_BODY
            } else {
                opts.max_body_bytes
            },
            idle_close_nanos: AtomicU64::new(to_nanos(opts.idle_close)),
            shutting_down: AtomicBool::new(false),
            next_id: AtomicU64::new(1),
            registry: Mutex::default(),
        });
        let acceptor = Arc::clone(&shared);
        let accept = thread::Builder::new()
            .name(format!("mock-accept-{}", addr.port()))
            .spawn(move || accept_loop(&acceptor, &listener))?;
        Ok(HttpServer {
            shared,
            addr,
            accept: Mutex::new(Some(accept)),
            stopped: Default::default(),
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, or `https://localhost:PORT` with TLS so the name matches a
    /// certificate issued for `localhost`.
    pub fn url(&self) -> String {
        match self.shared.tls {
            Some(_) => format!("https://localhost:{}", self.addr.port()),
            None => format!("http://127.0.0.1:{}", self.addr.port()),
        }
    }

    /// The live counters.
    pub fn stats(&self) -> &Arc<ServerStats> {
        &self.shared.stats
    }

    /// Closes keep-alive connections idle longer than `idle` from now on (`None`: never).
    /// Connections already waiting see the change within 100 ms.
    pub fn set_idle_close(&self, idle: Option<Duration>) {
        self.shared
            .idle_close_nanos
            .store(to_nanos(idle), Ordering::SeqCst);
    }

    /// Stops accepting, shuts down every open connection and joins all threads. Idempotent:
    /// a second caller waits until the first has finished, so the port is free when it returns.
    /// A handler may call it (its own thread is not joined, and it does not wait).
    pub fn shutdown(&self) {
        if self.shared.shutting_down.swap(true, Ordering::SeqCst) {
            let on_conn_thread = thread::current()
                .name()
                .is_some_and(|n| n.starts_with("mock-conn-"));
            let mut stopped = self.stopped.0.lock();
            while !*stopped && !on_conn_thread {
                self.stopped.1.wait(&mut stopped);
            }
            return;
        }
        self.stop();
        *self.stopped.0.lock() = true;
        self.stopped.1.notify_all();
    }

    fn stop(&self) {
        // A blocking accept only returns for a connection: make one.
        let woke = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1)).is_ok();
        if let Some(handle) = self.accept.lock().take() {
            if woke {
                join_unless_current(handle);
            } else {
                log::warn!("mock server: could not wake the accept thread; leaving it");
            }
        }
        let (sockets, threads) = {
            let mut reg = self.shared.registry.lock();
            reg.closed = true;
            (
                std::mem::take(&mut reg.sockets),
                std::mem::take(&mut reg.threads),
            )
        };
        for socket in sockets.values() {
            let _ = socket.shutdown(Shutdown::Both);
        }
        drop(sockets);
        threads.into_iter().for_each(join_unless_current);
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl std::fmt::Debug for HttpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpServer")
            .field("url", &self.url())
            .finish_non_exhaustive()
    }
}

impl Shared {
    pub(crate) fn idle_close(&self) -> Option<Duration> {
        match self.idle_close_nanos.load(Ordering::SeqCst) {
            u64::MAX => None,
            n => Some(Duration::from_nanos(n)),
        }
    }

    pub(crate) fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    pub(crate) fn deregister(&self, conn_id: u64) {
        let socket = self.registry.lock().sockets.remove(&conn_id);
        drop(socket);
    }
}

fn to_nanos(d: Option<Duration>) -> u64 {
    d.map_or(u64::MAX, |d| {
        u64::try_from(d.as_nanos()).unwrap_or(u64::MAX - 1)
    })
}

fn join_unless_current(handle: JoinHandle<()>) {
    if handle.thread().id() != thread::current().id() {
        let _ = handle.join();
    }
}

fn accept_loop(shared: &Arc<Shared>, listener: &TcpListener) {
    for incoming in listener.incoming() {
        if shared.is_shutting_down() {
            return;
        }
        match incoming {
            Ok(tcp) => spawn_conn(shared, tcp),
            Err(e) => {
                // Out of descriptors and the like: back off instead of spinning.
                log::warn!("mock server: accept failed: {e}");
                thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

fn spawn_conn(shared: &Arc<Shared>, tcp: TcpStream) {
    let id = shared.next_id.fetch_add(1, Ordering::SeqCst);
    shared.stats.record(stats::Event::Accepted);
    let (Ok(peer), Ok(clone)) = (tcp.peer_addr(), tcp.try_clone()) else {
        shared.stats.record(stats::Event::ClientClosed);
        return;
    };
    {
        let mut reg = shared.registry.lock();
        if reg.closed {
            drop(reg);
            shared.stats.record(stats::Event::ServerClosed);
            return;
        }
        reg.threads.retain(|h| !h.is_finished());
        reg.sockets.insert(id, clone);
    }
    let worker = Arc::clone(shared);
    let spawned = thread::Builder::new()
        .name(format!("mock-conn-{id}"))
        .spawn(move || conn::run(&worker, id, tcp, peer));
    match spawned {
        Ok(handle) => shared.registry.lock().threads.push(handle),
        Err(e) => {
            log::warn!("mock server: cannot spawn a connection thread: {e}");
            shared.deregister(id);
            shared.stats.record(stats::Event::ServerClosed);
        }
    }
}
