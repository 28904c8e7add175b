//! Reading HTTP/1.1 requests from a buffered byte source.

use std::io::{self, Read};

use super::message::Request;

/// Longest request head accepted; longer heads are malformed for the mocks.
const MAX_HEAD: usize = 64 * 1024;
/// Longest chunk-size or trailer line.
const MAX_LINE: usize = 4096;
const MAX_HEADERS: usize = 100;

/// Why no request could be read.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The client closed the connection (EOF or an error from the peer).
    Closed,
    /// The server is shutting down.
    Shutdown,
    /// A keep-alive connection stayed idle past the idle-close limit.
    Idle,
    /// The bytes are not a request this server accepts: answer 400 and close.
    Malformed(&'static str),
    /// The body is larger than allowed: answer 413, read what the client
    /// still sends, and close.
    TooLarge,
}

impl From<io::Error> for ReadError {
    fn from(_: io::Error) -> Self {
        ReadError::Closed
    }
}

/// Bytes read from a connection and not yet consumed.
#[derive(Default)]
pub(crate) struct Input {
    buf: Vec<u8>,
    pos: usize,
}

/// Gets at least one more byte into an [`Input`], or says why it can't.
pub(crate) type Fill<'a> = dyn FnMut(&mut Input) -> Result<(), ReadError> + 'a;

/// A parsed request head.
pub(crate) struct Head {
    pub request: Request,
    /// HTTP/1.0 rather than 1.1.
    pub http10: bool,
}

impl Input {
    pub(crate) fn is_empty(&self) -> bool {
        self.pos == self.buf.len()
    }

    fn pending(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    fn consume(&mut self, n: usize) {
        self.pos += n;
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
    }

    /// Reads once from `r`; `Ok(0)` is EOF.
    pub(crate) fn read_from(&mut self, r: &mut impl Read) -> io::Result<usize> {
        if self.pos > 0 && self.pos * 2 >= self.buf.len() {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        let len = self.buf.len();
        self.buf.resize(len + 16 * 1024, 0);
        let n = r.read(&mut self.buf[len..]);
        self.buf.truncate(len + *n.as_ref().unwrap_or(&0));
        n
    }

    /// Reads a request head; `fill` is called whenever more bytes are needed.
    pub(crate) fn read_head(&mut self, fill: &mut Fill) -> Result<Head, ReadError> {
        loop {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut parsed = httparse::Request::new(&mut headers);
            match parsed.parse(self.pending()) {
                Ok(httparse::Status::Complete(n)) => {
                    let head = head_from(&parsed)?;
                    self.consume(n);
                    return Ok(head);
                }
                Ok(httparse::Status::Partial) if self.pending().len() < MAX_HEAD => fill(self)?,
                Ok(httparse::Status::Partial) => {
                    return Err(ReadError::Malformed("request head too large"));
                }
                Err(_) => return Err(ReadError::Malformed("malformed request head")),
            }
        }
    }

    /// Reads the body the head announces, de-chunking it, into `req.body`.
    pub(crate) fn read_body(
        &mut self,
        req: &mut Request,
        max: usize,
        fill: &mut Fill,
    ) -> Result<(), ReadError> {
        match body_kind(req)? {
            BodyKind::None => Ok(()),
            BodyKind::Length(n) if n > max => Err(ReadError::TooLarge),
            BodyKind::Length(n) => {
                req.body = self.take(n, fill)?;
                Ok(())
            }
            BodyKind::Chunked => self.read_chunked(&mut req.body, max, fill),
        }
    }

    fn take(&mut self, n: usize, fill: &mut Fill) -> Result<Vec<u8>, ReadError> {
        while self.pending().len() < n {
            fill(self)?;
        }
        let out = self.pending()[..n].to_vec();
        self.consume(n);
        Ok(out)
    }

    fn read_line(&mut self, fill: &mut Fill) -> Result<String, ReadError> {
        loop {
            if let Some(i) = self.pending().windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.pending()[..i]).into_owned();
                self.consume(i + 2);
                return Ok(line);
            }
            if self.pending().len() > MAX_LINE {
                return Err(ReadError::Malformed("chunk line too long"));
            }
            fill(self)?;
        }
    }

    fn read_chunked(
        &mut self,
        body: &mut Vec<u8>,
        max: usize,
        fill: &mut Fill,
    ) -> Result<(), ReadError> {
        loop {
            let line = self.read_line(fill)?;
            let size_hex = line.split(';').next().unwrap_or_default().trim();
            let size = usize::from_str_radix(size_hex, 16)
                .map_err(|_| ReadError::Malformed("bad chunk size"))?;
            if size == 0 {
                // Trailer fields are read and ignored up to the empty line.
                while !self.read_line(fill)?.is_empty() {}
                return Ok(());
            }
            if body.len().saturating_add(size) > max {
                return Err(ReadError::TooLarge);
            }
            body.extend(self.take(size, fill)?);
            if !self.read_line(fill)?.is_empty() {
                return Err(ReadError::Malformed("chunk not followed by CRLF"));
            }
        }
    }
}

/// Whether `req` announces a body (`Content-Length`) larger than `max`.
pub(crate) fn too_large(req: &Request, max: usize) -> bool {
    matches!(body_kind(req), Ok(BodyKind::Length(n)) if n > max)
}

enum BodyKind {
    None,
    Length(usize),
    Chunked,
}

fn body_kind(req: &Request) -> Result<BodyKind, ReadError> {
    let te = req.header("transfer-encoding");
    let lengths: Vec<&str> = req
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .map(|(_, v)| v.trim())
        .collect();
    match (te, lengths.as_slice()) {
        (Some(_), [_, ..]) => Err(ReadError::Malformed(
            "both Transfer-Encoding and Content-Length",
        )),
        (Some(te), []) if te.trim().to_ascii_lowercase().ends_with("chunked") => {
            Ok(BodyKind::Chunked)
        }
        (Some(_), []) => Err(ReadError::Malformed("unsupported Transfer-Encoding")),
        (None, []) => Ok(BodyKind::None),
        (None, [first, rest @ ..]) => {
            let valid = !first.is_empty() && first.bytes().all(|b| b.is_ascii_digit());
            if !valid || rest.iter().any(|v| v != first) {
                return Err(ReadError::Malformed("bad Content-Length"));
            }
            first
                .parse()
                .map(BodyKind::Length)
                .map_err(|_| ReadError::TooLarge)
        }
    }
}

fn head_from(parsed: &httparse::Request) -> Result<Head, ReadError> {
    let (Some(method), Some(target), Some(version)) = (parsed.method, parsed.path, parsed.version)
    else {
        return Err(ReadError::Malformed("incomplete request line"));
    };
    let headers = parsed
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_string(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect();
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let request = Request {
        method: method.to_string(),
        target: target.to_string(),
        path: path.to_string(),
        query: parse_query(query),
        headers,
        body: Vec::new(),
    };
    Ok(Head {
        request,
        http10: version == 0,
    })
}

/// Splits `a=1&b=x+y` into decoded pairs; a name without `=` gets an empty value.
pub fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// Decodes `%XX` escapes and `+` as a space; an invalid escape stays as it is.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
