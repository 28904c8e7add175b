//! A connection's byte stream: plain TCP or TLS over it.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use rustls::{HandshakeKind, ServerConnection, StreamOwned};

/// Plain or TLS; both give access to the socket for timeouts and closing.
pub(crate) enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ServerConnection, TcpStream>>),
}

impl Stream {
    pub(crate) fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => &s.sock,
        }
    }

    /// Completes the TLS handshake; returns whether it resumed a session (`None` for plain TCP).
    pub(crate) fn handshake(&mut self) -> io::Result<Option<bool>> {
        let Stream::Tls(s) = self else {
            return Ok(None);
        };
        while s.conn.is_handshaking() {
            let (read, written) = s.conn.complete_io(&mut s.sock)?;
            if read == 0 && written == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
        Ok(Some(
            s.conn.handshake_kind() == Some(HandshakeKind::Resumed),
        ))
    }

    pub(crate) fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.tcp().set_read_timeout(t)
    }

    /// Closes gracefully: TLS `close_notify`, then FIN.
    pub(crate) fn close(mut self) {
        if let Stream::Tls(s) = &mut self {
            s.conn.send_close_notify();
            // The peer may be gone already; a close needs no confirmation.
            let _ = s.flush();
        }
        let _ = self.tcp().shutdown(Shutdown::Write);
    }

    /// Closes with a TCP reset: `SO_LINGER` 0 makes the close discard buffers and send RST.
    pub(crate) fn reset(self) {
        let _ = socket2::SockRef::from(self.tcp()).set_linger(Some(Duration::ZERO));
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => match s.read(buf) {
                // A peer that closes without close_notify is common and harmless here.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
                other => other,
            },
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}
