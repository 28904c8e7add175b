//! A tiny HTTP/1.1 server for `/metrics` and `/health` (`--metrics-addr`).
//!
//! Its own few dozen lines rather than the mock servers' core: that core is
//! built for test doubles (fault injection, scripted answers), and the
//! production path shouldn't depend on it. One thread answers one request per
//! connection (`Connection: close`). A request's head must arrive whole
//! within [`HEAD_TIME`] and [`HEAD_BYTES`], however it trickles in, so a
//! stuck or hostile client holds the thread (other scrapes, and the exit,
//! which joins it) for two seconds at most.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a client has to send its request head, and to take the answer.
const HEAD_TIME: Duration = Duration::from_secs(2);

/// The longest request head read; the rest is ignored.
const HEAD_BYTES: u64 = 8 * 1024;

/// An answer: status, content type, body.
pub(super) struct Answer {
    pub(super) status: u16,
    pub(super) content_type: &'static str,
    pub(super) body: String,
}

/// Answers a request path (`/metrics`, `/health`, ...).
pub(super) type Handler = Arc<dyn Fn(&str) -> Answer + Send + Sync>;

/// The handler of `/metrics` (Prometheus text from `metrics`) and `/health`
/// (JSON and its status from `health`), and a 404 elsewhere.
pub(super) fn metrics_and_health(
    metrics: impl Fn() -> String + Send + Sync + 'static,
    health: impl Fn() -> (u16, String) + Send + Sync + 'static,
) -> Handler {
    Arc::new(move |path: &str| match path {
        "/metrics" => Answer {
            status: 200,
            content_type: "text/plain; version=0.0.4",
            body: metrics(),
        },
        "/health" => {
            let (status, body) = health();
            Answer {
                status,
                content_type: "application/json",
                body,
            }
        }
        _ => Answer {
            status: 404,
            content_type: "text/plain",
            body: "try /metrics or /health\n".into(),
        },
    })
}

/// A running server; dropping it stops and joins its thread.
pub(super) struct Server {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Binds `addr` and serves `handler` on a thread of its own.
    pub(super) fn start(addr: SocketAddr, handler: Handler) -> std::io::Result<Server> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::Builder::new()
            .name("etlpool-metrics".into())
            .spawn(move || {
                let mut backoff = AcceptBackoff::default();
                for stream in listener.incoming() {
                    if stopped.load(Ordering::SeqCst) {
                        break;
                    }
                    match stream {
                        Ok(stream) => {
                            backoff.succeeded();
                            answer(stream, &handler);
                        }
                        Err(e) => {
                            let wait = backoff.failed();
                            if wait == AcceptBackoff::FIRST {
                                log::warn!("metrics server: accepting a connection: {e}");
                            }
                            std::thread::sleep(wait);
                        }
                    }
                }
            })?;
        Ok(Server {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    /// The address it listens on (the port, when 0 was asked for).
    pub(super) fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the blocking accept so the thread sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The wait after a failed accept: out of file descriptors, an accept
/// fails at once and keeps failing, and a loop that retried at once would
/// spin a core until descriptors come back. Like Go's `net/http`: 5 ms,
/// doubling to 1 s, back to none after a success.
#[derive(Default)]
struct AcceptBackoff {
    last: Option<Duration>,
}

impl AcceptBackoff {
    const FIRST: Duration = Duration::from_millis(5);
    const MAX: Duration = Duration::from_secs(1);

    /// The wait after one more failure in a row.
    fn failed(&mut self) -> Duration {
        let wait = self
            .last
            .map_or(Self::FIRST, |last| (last * 2).min(Self::MAX));
        self.last = Some(wait);
        wait
    }

    fn succeeded(&mut self) {
        self.last = None;
    }
}

/// Reads from a socket until a deadline, whatever the pace of the bytes.
struct Until<'a> {
    stream: &'a TcpStream,
    deadline: Instant,
}

impl Read for Until<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        self.stream.set_read_timeout(Some(left))?;
        self.stream.read(buf)
    }
}

fn answer(mut stream: TcpStream, handler: &Handler) {
    let _ = stream.set_write_timeout(Some(HEAD_TIME));
    let until = Until {
        stream: &stream,
        deadline: Instant::now() + HEAD_TIME,
    };
    let mut reader = BufReader::new(until.take(HEAD_BYTES));
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
        return;
    }
    // The rest of the head; bodies are not expected.
    let mut line = String::new();
    while reader.read_line(&mut line).unwrap_or(0) > 2 {
        line.clear();
    }
    let mut parts = request_line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or("/"));
    let path = target.split('?').next().unwrap_or("/");
    let reply = match method {
        "GET" | "HEAD" => handler(path),
        _ => Answer {
            status: 405,
            content_type: "text/plain",
            body: "only GET\n".into(),
        },
    };
    let reason = match reply.status {
        200 => "OK",
        404 => "Not Found",
        405 => "Method Not Allowed",
        503 => "Service Unavailable",
        _ => "",
    };
    let head = format!(
        "HTTP/1.1 {} {reason}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        reply.status,
        reply.content_type,
        reply.body.len()
    );
    drop(reader);
    let _ = stream.write_all(head.as_bytes());
    if method != "HEAD" {
        let _ = stream.write_all(reply.body.as_bytes());
    }
    let _ = stream.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_accepts_back_off_to_a_second_and_a_success_resets_the_wait() {
        let mut b = AcceptBackoff::default();
        let waits: Vec<u128> = (0..10).map(|_| b.failed().as_millis()).collect();
        assert_eq!(waits, [5, 10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
        b.succeeded();
        assert_eq!(b.failed(), AcceptBackoff::FIRST);
    }
}
