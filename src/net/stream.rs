//! The byte stream under HTTP and WebSocket: plain TCP or TLS over TCP.

use mio::net::TcpStream;
use std::io::{self, Read, Write};

/// A connected, non-blocking stream.
pub enum Stream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP (boxed: the TLS state is large and most loops hold many streams).
    Tls(Box<super::tls::TlsStream>),
}

impl Stream {
    /// The TCP socket, for registration with the poller.
    pub fn tcp_mut(&mut self) -> &mut TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => s.get_mut(),
        }
    }

    /// Sends a TLS close_notify where there is TLS; errors are irrelevant at this point.
    pub fn shutdown(&mut self) {
        if let Stream::Tls(s) = self {
            let _ = s.shutdown();
        }
        let _ = self.tcp_mut().shutdown(std::net::Shutdown::Both);
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
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
