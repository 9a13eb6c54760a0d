//! Builds without the `tls` feature: the same interface as `tls.rs`, with types that
//! cannot exist, so a `wss://` or `https://` connection answers `NotSupported` ("not
//! built in") at open, and TLS settings are refused the same way.

use crate::config::TlsOptions;
use crate::error::{Error, ErrorCode, Result};
use mio::net::TcpStream;
use std::io::{self, Read, Write};
use std::sync::Arc;

fn not_built_in() -> Error {
    Error::new(ErrorCode::NotSupported, "TLS is not built in (cargo feature `tls`)")
}

/// No TLS connector can exist in this build.
pub enum TlsConnector {}

/// No TLS stream can exist in this build.
pub enum TlsStream {}

/// No handshake can exist in this build.
pub enum Handshake {}

/// Where a handshake stands (never reached in this build).
pub enum HandshakeStep {
    /// Done.
    Done(Box<TlsStream>),
    /// Waiting for readiness.
    Pending(Box<Handshake>),
}

/// Always `NotSupported`.
pub fn shared_connector(_opts: &TlsOptions) -> Result<Arc<TlsConnector>> {
    Err(not_built_in())
}

/// Refuses any TLS setting: without TLS they could never apply.
pub fn check(opts: &TlsOptions) -> Result<()> {
    let any = !opts.extra_ca_pem.is_empty()
        || opts.client_identity.is_some()
        || opts.insecure
        || !opts.pinned_der.is_empty();
    if any { Err(not_built_in()) } else { Ok(()) }
}

/// Always `NotSupported`.
pub fn pin_from_pem(_pem: &[u8]) -> Result<Vec<u8>> {
    Err(not_built_in())
}

impl Handshake {
    /// Never called: no connector exists.
    pub fn start(
        connector: &TlsConnector,
        _host: &str,
        _sock: TcpStream,
        _pins: &[Vec<u8>],
    ) -> Result<HandshakeStep> {
        match *connector {}
    }

    /// Never called.
    pub fn resume(self, _pins: &[Vec<u8>], _host: &str) -> Result<HandshakeStep> {
        match self {}
    }

    /// Never called.
    pub fn tcp_mut(&mut self) -> &mut TcpStream {
        match *self {}
    }
}

impl TlsStream {
    /// Never called.
    pub fn get_mut(&mut self) -> &mut TcpStream {
        match *self {}
    }

    /// Never called.
    pub fn shutdown(&mut self) -> io::Result<()> {
        match *self {}
    }
}

impl Read for TlsStream {
    fn read(&mut self, _buf: &mut [u8]) -> io::Result<usize> {
        match *self {}
    }
}

impl Write for TlsStream {
    fn write(&mut self, _buf: &[u8]) -> io::Result<usize> {
        match *self {}
    }

    fn flush(&mut self) -> io::Result<()> {
        match *self {}
    }
}
