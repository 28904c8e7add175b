//! One connection's thread: TLS handshake, the keep-alive request loop, and how it ends.

use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Shared;
use super::message::{Answer, ConnContext, Request, Response};
use super::parse::{Head, Input, ReadError};
use super::stats::Event;
use super::stream::Stream;

/// Longest single blocking read: bounds how late a change of the idle limit or a shutdown is seen.
const POLL: Duration = Duration::from_millis(100);
/// Longest a connection keeps reading a body it refused (see `Conn::linger`); nginx's `lingering_time`.
const LINGER_MAX: Duration = Duration::from_secs(30);
/// Longest pause of the client while a refused body is read; nginx's `lingering_timeout`.
const LINGER_IDLE: Duration = Duration::from_secs(5);

/// How a connection ends, which decides how its socket is closed and what is counted.
enum End {
    Client,
    Close,
    Idle,
    Reset,
}

struct Conn<'a> {
    shared: &'a Shared,
    stream: Stream,
    input: Input,
    ctx: ConnContext,
    timeout: Option<Duration>,
}

/// Serves one accepted connection until it ends, then closes it and counts how.
pub(crate) fn run(shared: &Shared, conn_id: u64, tcp: TcpStream, peer: SocketAddr) {
    // Small responses must not wait for Nagle's algorithm.
    let _ = tcp.set_nodelay(true);
    let stream = match &shared.tls {
        None => Ok(Stream::Plain(tcp)),
        Some(cfg) => rustls::ServerConnection::new(Arc::clone(cfg))
            .map(|c| Stream::Tls(Box::new(rustls::StreamOwned::new(c, tcp))))
            .map_err(|e| log::warn!("mock server: TLS setup failed: {e}")),
    };
    let (end, stream) = match stream {
        Ok(stream) => {
            let ctx = ConnContext {
                conn_id,
                request_index: 0,
                peer,
                tls_resumed: None,
            };
            let mut conn = Conn {
                shared,
                stream,
                input: Input::default(),
                ctx,
                timeout: None,
            };
            (conn.serve(), Some(conn.stream))
        }
        Err(()) => (End::Close, None),
    };
    // The registry's clone of the socket must be gone first, or closing ours would not close it.
    shared.deregister(conn_id);
    let event = match end {
        End::Client => Event::ClientClosed,
        End::Close => Event::ServerClosed,
        End::Idle => Event::IdleClosed,
        End::Reset => Event::Reset,
    };
    if let Some(stream) = stream {
        match end {
            End::Client => drop(stream),
            End::Close | End::Idle => stream.close(),
            End::Reset => stream.reset(),
        }
    }
    shared.stats.record(event);
}

impl Conn<'_> {
    fn serve(&mut self) -> End {
        match self.stream.handshake() {
            Ok(resumed) => self.ctx.tls_resumed = resumed,
            Err(_) => return self.end_of_input(ReadError::Closed),
        }
        match self.ctx.tls_resumed {
            Some(true) => self.shared.stats.record(Event::TlsResumed),
            Some(false) => self.shared.stats.record(Event::TlsFull),
            None => {}
        }
        loop {
            let (req, keep_alive, http10) = match self.next_request() {
                Ok(r) => r,
                Err(e) => return self.end_of_input(e),
            };
            self.shared.stats.record(Event::Request);
            let head = req.method.eq_ignore_ascii_case("HEAD");
            let reply = self.call_handler(req);
            self.ctx.request_index += 1;
            if let Some(end) = self.answer(reply, keep_alive, head, http10) {
                return end;
            }
        }
    }

    /// Reads the next request; also says whether the connection may stay open after it.
    fn next_request(&mut self) -> Result<(Request, bool, bool), ReadError> {
        if self.input.is_empty() {
            self.fill(true)?;
        }
        let (stream, shared) = (&mut self.stream, self.shared);
        let mut fill = |input: &mut Input| fill_once(stream, shared, input, false);
        let Head {
            mut request,
            http10,
        } = self.input.read_head(&mut fill)?;
        if wants_continue(&request, http10) && super::parse::too_large(&request, shared.max_body) {
            // Refused before the body is sent, as RFC 9110 10.1.1 lets a
            // server answer a final status instead of 100 (Continue).
            return Err(ReadError::TooLarge);
        }
        if wants_continue(&request, http10) && self.input.is_empty() {
            stream_write(&mut self.stream, b"HTTP/1.1 100 Continue\r\n\r\n")
                .map_err(|_| ReadError::Closed)?;
        }
        let (stream, shared) = (&mut self.stream, self.shared);
        let mut fill = |input: &mut Input| fill_once(stream, shared, input, false);
        self.input
            .read_body(&mut request, shared.max_body, &mut fill)?;
        let keep_alive = keep_alive(&request, http10);
        Ok((request, keep_alive, http10))
    }

    /// Waits for the first byte of the next request, applying the idle-close limit.
    fn fill(&mut self, idle_applies: bool) -> Result<(), ReadError> {
        let started = Instant::now();
        loop {
            let wait = match self.shared.idle_close().filter(|_| idle_applies) {
                Some(idle) => match idle.checked_sub(started.elapsed()) {
                    Some(left) if !left.is_zero() => left.min(POLL),
                    _ => return Err(ReadError::Idle),
                },
                None => POLL,
            };
            if self.timeout != Some(wait) {
                self.stream
                    .set_read_timeout(Some(wait))
                    .map_err(|_| ReadError::Closed)?;
                self.timeout = Some(wait);
            }
            match fill_once(&mut self.stream, self.shared, &mut self.input, true) {
                Err(ReadError::Idle) => continue,
                other => return other,
            }
        }
    }

    fn call_handler(&self, req: Request) -> Answer {
        let handler = &self.shared.handler;
        catch_unwind(AssertUnwindSafe(|| handler.handle(req, &self.ctx))).unwrap_or_else(|_| {
            log::error!("mock server: handler panicked");
            Answer::Response(error_response(500, "handler panicked").close())
        })
    }

    /// Carries out a reply; `Some` when the connection ends with it.
    fn answer(&mut self, reply: Answer, keep_alive: bool, head: bool, http10: bool) -> Option<End> {
        match reply {
            Answer::Response(mut r) => {
                r.close |= !keep_alive;
                let bytes = r.serialize(head, http10 && !r.close);
                match stream_write(&mut self.stream, &bytes) {
                    Err(_) => Some(End::Client),
                    Ok(()) if r.close => Some(End::Close),
                    Ok(()) => None,
                }
            }
            Answer::CloseWithoutResponse => Some(End::Close),
            Answer::Reset => Some(End::Reset),
            Answer::Partial { response, bytes } => {
                let all = response.serialize(head, false);
                let _ = stream_write(&mut self.stream, &all[..bytes.min(all.len())]);
                Some(End::Reset)
            }
            Answer::Hang => Some(self.hang()),
        }
    }

    /// Reads and discards until the client gives up or the server shuts down.
    fn hang(&mut self) -> End {
        loop {
            self.input = Input::default();
            if let Err(e) = self.fill(false) {
                return self.end_of_input(e);
            }
        }
    }

    /// How a failed read ends the connection; a malformed request is answered first.
    fn end_of_input(&mut self, err: ReadError) -> End {
        let (status, msg) = match err {
            ReadError::Closed => return End::Client,
            ReadError::Shutdown => return End::Close,
            ReadError::Idle => return End::Idle,
            ReadError::Malformed(msg) => (400, msg),
            ReadError::TooLarge => (413, "request body too large"),
        };
        let bytes = error_response(status, msg).close().serialize(false, false);
        // A malformed request can't be read further; a refused body can.
        if stream_write(&mut self.stream, &bytes).is_ok() && status == 413 {
            self.linger();
        }
        End::Close
    }

    /// Reads and discards what the client still sends after an early answer
    /// (a 413 to a body it is still sending), until it closes, pauses for
    /// [`LINGER_IDLE`], or [`LINGER_MAX`] passed, as real servers' lingering
    /// close does (nginx's `lingering_close`): a socket closed with unread
    /// bytes resets the connection, and the client would see a broken pipe
    /// instead of the answer waiting in its buffer.
    fn linger(&mut self) {
        let started = Instant::now();
        let mut heard = Instant::now();
        if self.stream.set_read_timeout(Some(POLL)).is_err() {
            return;
        }
        self.timeout = Some(POLL);
        while started.elapsed() < LINGER_MAX && heard.elapsed() < LINGER_IDLE {
            self.input = Input::default();
            match fill_once(&mut self.stream, self.shared, &mut self.input, true) {
                Ok(()) => heard = Instant::now(),
                Err(ReadError::Idle) => {}
                Err(_) => return,
            }
        }
    }
}

/// One read into `input`. With `report_timeout`, a read timeout comes back as `Idle` for the
/// caller to judge; without it, timeouts are retried until data, EOF or shutdown.
fn fill_once(
    stream: &mut Stream,
    shared: &Shared,
    input: &mut Input,
    report_timeout: bool,
) -> Result<(), ReadError> {
    loop {
        if shared.is_shutting_down() {
            return Err(ReadError::Shutdown);
        }
        match input.read_from(stream) {
            Ok(0) if shared.is_shutting_down() => return Err(ReadError::Shutdown),
            Ok(0) => return Err(ReadError::Closed),
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if is_timeout(&e) && report_timeout => return Err(ReadError::Idle),
            Err(e) if is_timeout(&e) => {}
            Err(_) if shared.is_shutting_down() => return Err(ReadError::Shutdown),
            Err(_) => return Err(ReadError::Closed),
        }
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

fn stream_write(stream: &mut Stream, bytes: &[u8]) -> io::Result<()> {
    stream.write_all(bytes)?;
    stream.flush()
}

fn wants_continue(req: &Request, http10: bool) -> bool {
    !http10
        && req
            .header("expect")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("100-continue"))
}

fn keep_alive(req: &Request, http10: bool) -> bool {
    let has = |token: &str| {
        req.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("connection"))
            .flat_map(|(_, v)| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    if http10 {
        has("keep-alive")
    } else {
        !has("close")
    }
}

/// The body of the server's own errors, in the `{"message": ...}` shape both contracts accept.
fn error_response(status: u16, msg: &str) -> Response {
    Response::json(status, &serde_json::json!({ "message": msg }))
}
