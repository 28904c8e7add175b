//! Calls whose bodies stream: a download read as it arrives, an upload sent
//! from a reader. Neither holds a body whole in memory, so a file of any size
//! passes through in constant memory (ureq's own buffers).
//!
//! Each is **one attempt**: a streamed body can't be replayed, so retrying is
//! the caller's job (download again; for an upload, first look up whether the
//! server has it). The origin's policies apply as to any call's first attempt
//! (the call machinery's `Call::once`): credentials, the breaker's admission
//! and verdict, the rate limiter's turn, its pauses and what the answer's
//! rate-limit headers or 429 tell it, errors masked of what was sent and
//! marked when a write's outcome is unknown.

use std::cell::Cell;
use std::io::{self, Read};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ureq::http::{HeaderMap, Request};
use ureq::{BodyReader, SendBody};

use super::{ApiClient, Call, redirect};
use crate::error::{
    Error, Exchange, RedirectError, RedirectRefusal, RequestContext, Result, StatusError,
};
use crate::http::{ApiRequest, Auth};
use crate::metrics::FailureKind;
use crate::pool::{Lease, Origin, Reply, Scheme};
use crate::redact;

/// How fast a streamed body must move at least: a transfer of `n` bytes may
/// take the client's `request_timeout` plus `n` at this rate (4 s per MiB),
/// so a big file is not cut off by a limit sized for JSON calls, and a stalled
/// one still ends.
const MIN_RATE_BYTES_PER_SEC: u64 = 256 * 1024;

/// A 2xx response whose body is read as it arrives ([`Read`]). Holds its
/// connection's lease until dropped, so the pool's cap counts it; dropped
/// before the end, the connection is closed rather than reused.
pub struct Streamed {
    headers: HeaderMap,
    status: u16,
    reader: BodyReader<'static>,
    /// Bytes read so far.
    read: u64,
    finished: bool,
    lease: Option<Lease>,
    /// Where the request went and what was exchanged when the body began,
    /// for [`Streamed::read_error`].
    at: RequestContext,
    exchange: Exchange,
}

impl Streamed {
    /// The status code (2xx).
    pub fn status(&self) -> u16 {
        self.status
    }

    /// A header as text, if present and valid UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body's length as the server announced it (`Content-Length`).
    pub fn content_length(&self) -> Option<u64> {
        self.header("content-length")
            .and_then(|v| v.trim().parse().ok())
    }

    /// Bytes of the body read so far.
    pub fn bytes_read(&self) -> u64 {
        self.read
    }

    /// `e`, an error of a read of this body, as the call's transport error
    /// ([`Error::Request`], with the request's context, the response
    /// started): a body cut off midway is a failure that may pass, as it is
    /// for a body read whole by the call itself.
    pub fn read_error(&self, e: io::Error) -> Error {
        // ureq hands its own errors to readers wrapped in an io error:
        // unwrapped, they classify as they do for any call.
        let source = match e.get_ref().is_some_and(|inner| inner.is::<ureq::Error>()) {
            true => match e.into_inner().map(|inner| inner.downcast::<ureq::Error>()) {
                Some(Ok(inner)) => *inner,
                Some(Err(other)) => ureq::Error::Io(io::Error::other(other)),
                None => ureq::Error::Io(io::Error::other("body read failed")),
            },
            false => ureq::Error::Io(e),
        };
        crate::pool::request_error(source, self.at.clone(), self.exchange, u64::MAX)
    }
}

impl Read for Streamed {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.reader.read(buf)?;
        self.read += n as u64;
        if n == 0 && !buf.is_empty() {
            self.finished = true;
        }
        Ok(n)
    }
}

impl Drop for Streamed {
    fn drop(&mut self) {
        if let Some(lease) = self.lease.take()
            && !self.finished
        {
            // The rest of the body is still on the wire: the socket can't
            // carry another request.
            lease.discard();
        }
    }
}

impl std::fmt::Debug for Streamed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Streamed")
            .field("status", &self.status)
            .field("read", &self.read)
            .finish_non_exhaustive()
    }
}

/// What one hop of a download got: the file, or where a redirect leads.
enum Opened {
    Body(Box<Streamed>),
    /// The status and the `Location`, as sent, or why it can't be used.
    Redirect(u16, std::result::Result<String, String>),
}

/// What bounds one streamed attempt: the body's length when known (it
/// widens the transfer limit) and a deadline of its own, if any.
struct Bounds {
    len: Option<u64>,
    deadline: Option<Instant>,
}

/// The body of an upload as ureq reads it, keeping an error of its own
/// reader (not of the connection) in `failed`.
struct Source<'a> {
    inner: &'a mut dyn Read,
    failed: &'a Cell<Option<io::Error>>,
}

impl Read for Source<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).map_err(|e| {
            self.failed.set(Some(e));
            io::Error::other("the body's reader failed")
        })
    }
}

impl ApiClient {
    /// `request` (a GET) with its body streamed: the answer if 2xx, else
    /// [`Error::Status`] with an excerpt of the body. One attempt per hop
    /// (see the module docs); `expected_len`, when known (an upper bound
    /// will do), widens the time allowed.
    ///
    /// A 301, 302, 303, 307 or 308 with a `Location` (absolute or relative
    /// to the URL that answered) is followed, up to the client's
    /// [`max_redirects`](super::ApiClientBuilder::max_redirects) (5 by
    /// default), as reqwest and curl do for a download whose bytes live on
    /// a storage host (a pre-signed URL). Each hop is a call to its own
    /// origin, through the pool's share of that origin and its policies
    /// (limiter, breaker, metrics). The credentials and any header that may
    /// carry one go to a hop only while every hop so far stayed on the
    /// request's origin (scheme, host, port): once a redirect leaves it,
    /// they are not sent again, even to a hop that leads back. A
    /// pre-signed URL's query goes to its hop as it is, and is masked in
    /// every error and log line like any query. The chain shares the
    /// client's `total_timeout` (each hop's waits end at it, no hop starts
    /// after it: [`Error::TotalTimeout`]); a redirect's body is not read.
    /// [`Error::Redirect`] ends
    /// the chain: one redirect more than allowed (a loop ends there), one
    /// from `https` to `http`, a `Location` that can't be used.
    pub fn open_stream(&self, request: &ApiRequest, expected_len: Option<u64>) -> Result<Streamed> {
        let (_, uri) = self.target(request)?;
        let mut url = uri.to_string();
        let mut hops = vec![url.clone()];
        let mut trusted = true;
        let mut hop_request = request.clone();
        let mut client = self.clone();
        // One deadline for the whole chain, as reqwest's timeout covers its
        // redirects: each hop's waits end there, and no hop starts after it.
        let start = Instant::now();
        let deadline = self.deadline(None);
        loop {
            if hops.len() > 1 && deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(Error::TotalTimeout {
                    at: self.context(request, 1),
                    elapsed: start.elapsed(),
                    waiting_for: None,
                });
            }
            let opened = client.open_once(&hop_request, expected_len, deadline)?;
            let (status, location) = match opened {
                Opened::Body(streamed) => return Ok(*streamed),
                Opened::Redirect(status, location) => (status, location),
            };
            let refused = |refused, hops: &[String]| {
                Error::Redirect(Box::new(RedirectError {
                    at: self.context(request, 1),
                    refused,
                    hops: hops.iter().map(|h| redact::url(h)).collect(),
                }))
            };
            let next = match location.map(|l| (redirect::resolve(&url, &l), l)) {
                Ok((Ok(next), _)) => next,
                Ok((Err(why), location)) => {
                    hops.push(location);
                    return Err(refused(RedirectRefusal::BadLocation(why), &hops));
                }
                Err(why) => return Err(refused(RedirectRefusal::BadLocation(why), &hops)),
            };
            hops.push(next.clone());
            if hops.len() - 1 > self.inner.max_redirects as usize {
                let max = self.inner.max_redirects;
                return Err(refused(RedirectRefusal::TooMany { max }, &hops));
            }
            let origin = match Origin::parse(&next) {
                Ok(origin) => origin,
                Err(Error::InvalidUrl { reason, .. }) => {
                    return Err(refused(RedirectRefusal::BadLocation(reason), &hops));
                }
                Err(e) => return Err(e),
            };
            if client.origin().scheme() == Scheme::Https && origin.scheme() == Scheme::Http {
                return Err(refused(RedirectRefusal::Downgrade, &hops));
            }
            trusted &= origin == *self.origin();
            log::debug!(
                "{} {}{} answered {status}: following it to {} (redirect {} of at most {}{})",
                request.method,
                client.origin(),
                client.path_of(&hop_request),
                redact::url(&next),
                hops.len() - 1,
                self.inner.max_redirects,
                if trusted { "" } else { ", without credentials" },
            );
            client = match trusted {
                true => self.clone(),
                false => self.hop_client(&next)?,
            };
            hop_request = redirect::next_request(request, &next, trusted);
            url = next;
        }
    }

    /// A client for one hop of a redirect to another origin: this client's
    /// limits, that origin's share of the pool and its policies, and no
    /// credentials.
    fn hop_client(&self, url: &str) -> Result<ApiClient> {
        let origin = self.inner.origin.pool().origin(url)?;
        let mut inner = (*self.inner).clone();
        inner.policies = origin.policies().clone();
        inner.metrics = origin.metrics().clone();
        inner.base = origin.origin().to_string();
        inner.base_path = String::new();
        inner.auth = Auth::None;
        inner.origin = origin;
        Ok(ApiClient {
            inner: Arc::new(inner),
            layers: None,
        })
    }

    /// One hop of [`ApiClient::open_stream`]: the body of a 2xx, where a
    /// redirect that may be followed leads, else the error.
    fn open_once(
        &self,
        request: &ApiRequest,
        expected_len: Option<u64>,
        deadline: Option<Instant>,
    ) -> Result<Opened> {
        let follows = self.inner.max_redirects > 0 && request.method == "GET";
        self.stream_call(
            request,
            SendBody::none(),
            Bounds {
                len: expected_len,
                deadline,
            },
            None,
            |lease, response, exchange| {
                let (parts, body) = response.into_parts();
                let head = Reply::new(parts.status.as_u16(), parts.headers.clone(), Vec::new());
                let streamed = Streamed {
                    headers: parts.headers,
                    status: head.status(),
                    reader: body.into_reader(),
                    read: 0,
                    finished: false,
                    lease: Some(lease),
                    at: self.context(request, 1),
                    exchange,
                };
                Ok((head, streamed))
            },
            |head, mut streamed| {
                if (200..300).contains(&head.status()) {
                    return Ok(Opened::Body(Box::new(streamed)));
                }
                if let Some(location) = follows
                    .then(|| redirect::location(head.status(), &streamed.headers))
                    .flatten()
                {
                    // A redirect's body is not read: it may never end (or
                    // trickle until the transfer limit). An empty one costs
                    // no wait and leaves the connection to be used again;
                    // any other closes it when dropped, as hyper does.
                    if streamed.content_length() == Some(0) {
                        let _ = streamed.read(&mut [0; 1]);
                    }
                    return Ok(Opened::Redirect(head.status(), location));
                }
                // Only an excerpt of a body that is not the file is read:
                // the rest is dropped with the connection.
                let mut excerpt = Vec::new();
                let _ = (&mut streamed).take(4096).read_to_end(&mut excerpt);
                Err(self.status_error(request, head.status(), &excerpt, false))
            },
        )
    }

    /// `request` (a POST or PUT) with `body` streamed as its body: `len`
    /// bytes when known (sent with `Content-Length`), else chunked. Sent
    /// without `Expect: 100-continue`: ureq 3.5 then writes the whole body
    /// before it reads an answer, so a server that refuses early (a 413)
    /// must read the body to its end for its answer to arrive, as servers
    /// with a lingering close do. (With `Expect`, ureq 3.5 skips the body
    /// on an early final answer but then waits for more input until the
    /// server closes or the call times out: a refusal on a kept-open
    /// connection would cost the whole transfer limit.)
    ///
    /// A 2xx answer, else [`Error::Status`]; in **one attempt**, never repeated: a
    /// transport failure after the request started, or a 5xx, is an error
    /// whose [`Error::is_outcome_unknown`] is true. If `body` itself fails
    /// to read, the request is cut short: [`Error::Io`] with that error as
    /// its source, the outcome known (the server got an incomplete request)
    /// and nothing charged to the server's breaker.
    pub fn send_stream(
        &self,
        request: &ApiRequest,
        body: &mut dyn Read,
        len: Option<u64>,
    ) -> Result<Reply> {
        let failed = Cell::new(None);
        let mut source = Source {
            inner: body,
            failed: &failed,
        };
        self.stream_call(
            request,
            SendBody::from_reader(&mut source),
            Bounds {
                len,
                deadline: None,
            },
            Some(&failed),
            |lease, response, sent| {
                let (parts, body) = response.into_parts();
                let read = body.into_with_config().limit(1024 * 1024).read_to_vec();
                drop(lease);
                let body = read.map_err(|e| self.transport_error(request, e, sent))?;
                Ok((Reply::new(parts.status.as_u16(), parts.headers, body), ()))
            },
            |reply, ()| {
                if !(200..300).contains(&reply.status()) {
                    return Err(self.status_error(request, reply.status(), reply.body(), true));
                }
                Ok(reply)
            },
        )
    }

    /// One attempt through the call machinery ([`Call::once`]): the
    /// request on a lease, with the limit of a transfer of `bounds.len` bytes;
    /// `read` takes the response (with the lease and what was sent) to the
    /// answer's head and what is kept of it, `finish` judges it.
    /// `bounds.deadline` caps the call's own (a redirect chain shares one).
    /// `source_failed` holds the error of the body's own reader, if it
    /// failed: the request was then cut short by this side, which says
    /// nothing of the server (its breaker hears nothing) and left it a
    /// request it can't have acted on (the outcome is known).
    fn stream_call<S, T>(
        &self,
        request: &ApiRequest,
        body: SendBody<'_>,
        bounds: Bounds,
        source_failed: Option<&Cell<Option<io::Error>>>,
        read: impl FnOnce(Lease, ureq::http::Response<ureq::Body>, Exchange) -> Result<(Reply, S)>,
        finish: impl FnOnce(Reply, S) -> Result<T>,
    ) -> Result<T> {
        let (method, uri) = self.target(request)?;
        let Bounds { len, deadline } = bounds;
        let call = Call::new(self, request, method.clone(), uri.clone(), deadline);
        let send = |lease: Lease, auth: Option<&str>| {
            let mut builder = Request::builder().method(method).uri(uri);
            for (k, v) in &request.headers {
                builder = builder.header(k, v);
            }
            if let Some(value) = auth {
                builder = builder.header("Authorization", value);
            }
            if let Some(n) = len.filter(|_| request.method != "GET") {
                builder = builder.header("Content-Length", n.to_string());
            }
            let ureq_request = builder
                .body(body)
                .map_err(|e| Error::config("header", e.to_string()))?;
            let limit = self.transfer_limit(len);
            let ureq_request = lease
                .configure_request(ureq_request)
                .timeout_per_call(Some(limit))
                .timeout_global(Some(limit))
                .build();
            lease.reset_exchange();
            match lease.run(ureq_request) {
                Ok(response) => {
                    let exchange = lease.last_exchange();
                    read(lease, response, exchange)
                }
                Err(e) => {
                    let exchange = lease.last_exchange();
                    lease.discard();
                    if let Some(cause) = source_failed.and_then(Cell::take) {
                        let at = self.context(request, 1);
                        let context = format!("{at}: reading the body to send failed; cut short");
                        return Err(Error::io(context, cause));
                    }
                    Err(self.transport_error(request, e, exchange))
                }
            }
        };
        call.once(send, finish)
    }

    /// How long one streamed transfer of `len` bytes may take.
    fn transfer_limit(&self, len: Option<u64>) -> Duration {
        let base = self.inner.request_timeout;
        match len {
            Some(n) => base.saturating_add(Duration::from_secs(n / MIN_RATE_BYTES_PER_SEC)),
            None => self.inner.total_timeout.unwrap_or(base).max(base),
        }
    }

    fn transport_error(&self, request: &ApiRequest, e: ureq::Error, exchange: Exchange) -> Error {
        let mut err = crate::pool::request_error(e, self.context(request, 1), exchange, u64::MAX);
        if let Error::Request(r) = &mut err {
            // A write that may have reached the server: never assume either way.
            r.outcome_unknown = exchange.sent && request.method != "GET";
        }
        self.inner.metrics.failure(crate::pool::failure_kind(&err));
        err
    }

    fn status_error(&self, request: &ApiRequest, status: u16, body: &[u8], write: bool) -> Error {
        self.inner.metrics.failure(if status >= 500 {
            FailureKind::Status5xx
        } else {
            FailureKind::Status4xx
        });
        Error::Status(Box::new(StatusError {
            at: self.context(request, 1),
            status,
            body: redact::body_excerpt(body, 300),
            outcome_unknown: write && status >= 500,
        }))
    }
}
