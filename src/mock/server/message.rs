//! What a [`Handler`] sees and answers: requests, responses and fault replies.

use std::net::SocketAddr;

/// Answers the requests of an [`HttpServer`](super::HttpServer); called on the connection's thread.
pub trait Handler: Send + Sync + 'static {
    /// Answers one request. `ctx` says which connection it came on.
    fn handle(&self, req: Request, ctx: &ConnContext) -> Answer;
}

impl<F> Handler for F
where
    F: Fn(Request, &ConnContext) -> Answer + Send + Sync + 'static,
{
    fn handle(&self, req: Request, ctx: &ConnContext) -> Answer {
        self(req, ctx)
    }
}

/// One request, read completely (body de-chunked).
#[derive(Clone, Debug, Default)]
pub struct Request {
    /// Method as sent, e.g. `GET`.
    pub method: String,
    /// The raw request target: path and query, undecoded.
    pub target: String,
    /// The target up to `?`, undecoded.
    pub path: String,
    /// Query pairs in order, percent-decoded, `+` read as a space.
    pub query: Vec<(String, String)>,
    /// Header fields in order, names as sent.
    pub headers: Vec<(String, String)>,
    /// The body; empty when none was sent.
    pub body: Vec<u8>,
}

impl Request {
    /// The first header named `name`, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The first query parameter named `name` (case-sensitive, decoded).
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Where a request came from.
#[derive(Clone, Debug)]
pub struct ConnContext {
    /// Server-unique id of the connection, from 1 in accept order.
    pub conn_id: u64,
    /// 0-based index of this request on its connection.
    pub request_index: u64,
    /// The client's address.
    pub peer: SocketAddr,
    /// `None` for plain TCP; for TLS, whether the handshake resumed a session.
    pub tls_resumed: Option<bool>,
}

/// What the server does with a request: answer it, or misbehave on purpose.
#[derive(Clone, Debug)]
pub enum Answer {
    /// Send this response.
    Response(Response),
    /// Close the connection (FIN) without answering.
    CloseWithoutResponse,
    /// Reset the connection (RST, `SO_LINGER` 0) without answering.
    Reset,
    /// Write only the first `bytes` of the serialized response, then reset.
    Partial {
        /// The response to cut short.
        response: Response,
        /// How many bytes of its serialized form to send.
        bytes: usize,
    },
    /// Never answer; the connection stays open until the client closes it or the server shuts down.
    Hang,
}

impl From<Response> for Answer {
    fn from(r: Response) -> Self {
        Answer::Response(r)
    }
}

/// A response. `Content-Length` is always computed by the server; one set here is dropped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Header fields besides `Content-Length` and `Connection`.
    pub headers: Vec<(String, String)>,
    /// The body (not sent for `HEAD`).
    pub body: Vec<u8>,
    /// Send `Connection: close` and close the connection after this response.
    pub close: bool,
}

impl Response {
    /// An empty response with this status.
    pub fn new(status: u16) -> Self {
        Response {
            status,
            ..Response::default()
        }
    }

    /// A JSON response.
    pub fn json(status: u16, body: &serde_json::Value) -> Self {
        Self::bytes(status, "application/json", body.to_string().into_bytes())
    }

    /// A response with this content type and body.
    pub fn bytes(status: u16, content_type: &str, body: Vec<u8>) -> Self {
        Response::new(status)
            .header("Content-Type", content_type)
            .body(body)
    }

    /// Adds a header field.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Replaces the body.
    pub fn body(mut self, body: Vec<u8>) -> Self {
        self.body = body;
        self
    }

    /// Marks the response as the last on its connection.
    pub fn close(mut self) -> Self {
        self.close = true;
        self
    }

    /// The first header named `name`, compared case-insensitively.
    pub fn get_header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The response as bytes on the wire. `keep_alive_10` adds `Connection: keep-alive`
    /// for an HTTP/1.0 client; `head` leaves the body out.
    pub(crate) fn serialize(&self, head: bool, keep_alive_10: bool) -> Vec<u8> {
        use std::io::Write as _;
        let mut out = Vec::with_capacity(128 + self.body.len());
        // Writing into a Vec cannot fail.
        let _ = write!(out, "HTTP/1.1 {} {}\r\n", self.status, reason(self.status));
        for (k, v) in &self.headers {
            let skip =
                k.eq_ignore_ascii_case("content-length") || k.eq_ignore_ascii_case("connection");
            if !skip {
                let _ = write!(out, "{k}: {v}\r\n");
            }
        }
        if !matches!(self.status, 100..=199 | 204) {
            let _ = write!(out, "Content-Length: {}\r\n", self.body.len());
        }
        if self.close {
            out.extend_from_slice(b"Connection: close\r\n");
        } else if keep_alive_10 {
            out.extend_from_slice(b"Connection: keep-alive\r\n");
        }
        out.extend_from_slice(b"\r\n");
        if !head {
            out.extend_from_slice(&self.body);
        }
        out
    }
}

/// The reason phrase of the status codes the mocks use; clients must not rely on it.
fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Unknown",
    }
}
