//! From host and port to a connected stream: resolve, connect each address in turn, TLS.
//!
//! Every phase has a deadline enforced by the loop through [`Connector::deadline`];
//! the connector itself never blocks and never reads a clock.

use super::dns::{self, Resolver};
use super::stream::Stream;
use super::tls;
use crate::config::Timeouts;
use crate::error::{Error, ErrorCode, Result};
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use native_tls::{HandshakeError, MidHandshakeTlsStream, TlsConnector};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The shortest slice of the connect budget one address gets while others remain.
const MIN_ATTEMPT: Duration = Duration::from_secs(2);

/// What a step of the connector produced.
pub enum Progress {
    /// Still working; wait for readiness, a resolver answer or the deadline.
    Pending,
    /// Connected (and TLS done, where asked for).
    Ready(Stream),
}

enum Phase {
    Resolving,
    Connecting { addrs: Vec<SocketAddr>, next: usize, sock: TcpStream, attempt_end: Instant },
    Tls(Box<MidHandshakeTlsStream<TcpStream>>),
    Done,
}

/// Connects one stream. Create a new one for every attempt.
pub struct Connector {
    host: String,
    port: u16,
    tls: Option<Arc<TlsConnector>>,
    token: Token,
    timeouts: Timeouts,
    phase: Phase,
    deadline: Instant,
    connect_end: Instant,
    last_error: Option<io::Error>,
}

impl Connector {
    /// Starts connecting. Lookups go to `resolver`, whose answer must come back
    /// through [`Connector::on_resolved`] (the `reply` closure carries it to the loop).
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        host: &str,
        port: u16,
        tls: Option<Arc<TlsConnector>>,
        timeouts: &Timeouts,
        token: Token,
        registry: &Registry,
        resolver: &Resolver,
        reply: dns::Reply,
        now: Instant,
    ) -> Result<Connector> {
        let mut c = Connector {
            host: host.to_string(),
            port,
            tls,
            token,
            timeouts: timeouts.clone(),
            phase: Phase::Resolving,
            deadline: now + timeouts.dns,
            connect_end: now,
            last_error: None,
        };
        match dns::literal(host, port) {
            Some(addr) => c.connect_addrs(registry, vec![addr], now)?,
            None => resolver.resolve(host, port, reply),
        }
        Ok(c)
    }

    /// When the current phase times out.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Takes the resolver's answer.
    pub fn on_resolved(
        &mut self,
        registry: &Registry,
        result: io::Result<Vec<SocketAddr>>,
        now: Instant,
    ) -> Result<()> {
        if !matches!(self.phase, Phase::Resolving) {
            return Ok(());
        }
        match result {
            Ok(addrs) if !addrs.is_empty() => {
                self.connect_addrs(registry, dns::interleave(addrs), now)
            }
            Ok(_) => Err(Error::new(ErrorCode::Dns, format!("{} has no addresses", self.host))),
            Err(e) => Err(Error::new(ErrorCode::Dns, format!("cannot resolve {}: {e}", self.host))),
        }
    }

    fn connect_addrs(
        &mut self,
        registry: &Registry,
        addrs: Vec<SocketAddr>,
        now: Instant,
    ) -> Result<()> {
        self.connect_end = now + self.timeouts.connect;
        self.try_address(registry, addrs, 0, now)
    }

    /// Starts a connect to `addrs[next]`, skipping addresses that fail at once.
    fn try_address(
        &mut self,
        registry: &Registry,
        addrs: Vec<SocketAddr>,
        mut next: usize,
        now: Instant,
    ) -> Result<()> {
        while next < addrs.len() {
            let addr = addrs[next];
            next += 1;
            match TcpStream::connect(addr) {
                Ok(mut sock) => {
                    registry
                        .register(&mut sock, self.token, Interest::READABLE | Interest::WRITABLE)
                        .map_err(|e| {
                            Error::new(ErrorCode::Io, format!("cannot register socket: {e}"))
                        })?;
                    let remaining = self.connect_end.saturating_duration_since(now);
                    let left = (addrs.len() - next + 1) as u32;
                    let slice = (remaining / left).max(MIN_ATTEMPT).min(remaining);
                    let attempt_end = now + slice;
                    self.deadline = attempt_end;
                    log::debug!("connecting to {addr}");
                    self.phase = Phase::Connecting { addrs, next, sock, attempt_end };
                    return Ok(());
                }
                Err(e) => {
                    log::debug!("connect to {addr} failed at once: {e}");
                    self.last_error = Some(e);
                }
            }
        }
        Err(self.all_failed())
    }

    fn all_failed(&mut self) -> Error {
        let why =
            self.last_error.take().map(|e| e.to_string()).unwrap_or_else(|| "no address".into());
        Error::new(
            ErrorCode::Connect,
            format!("cannot connect to {}:{}: {why}", self.host, self.port),
        )
    }

    /// The deadline passed: give up this address (or the whole phase).
    pub fn on_timeout(&mut self, registry: &Registry, now: Instant) -> Result<()> {
        if now < self.deadline {
            return Ok(());
        }
        match std::mem::replace(&mut self.phase, Phase::Done) {
            Phase::Resolving => Err(Error::new(
                ErrorCode::DnsTimeout,
                format!("resolving {} took longer than {:?}", self.host, self.timeouts.dns),
            )),
            Phase::Connecting { addrs, next, mut sock, .. } => {
                let _ = registry.deregister(&mut sock);
                if next < addrs.len() && now < self.connect_end {
                    self.last_error = Some(io::Error::from(io::ErrorKind::TimedOut));
                    return self.try_address(registry, addrs, next, now);
                }
                Err(Error::new(
                    ErrorCode::ConnectTimeout,
                    format!(
                        "connecting to {}:{} took longer than {:?}",
                        self.host, self.port, self.timeouts.connect
                    ),
                ))
            }
            Phase::Tls(_) => Err(Error::new(
                ErrorCode::Timeout,
                format!(
                    "TLS handshake with {} took longer than {:?}",
                    self.host, self.timeouts.tls
                ),
            )),
            Phase::Done => Ok(()),
        }
    }

    /// The socket became ready (or a spurious wakeup): advance as far as possible.
    pub fn on_ready(&mut self, registry: &Registry, now: Instant) -> Result<Progress> {
        match std::mem::replace(&mut self.phase, Phase::Done) {
            Phase::Connecting { addrs, next, mut sock, attempt_end } => {
                let failure = match sock.take_error() {
                    Ok(Some(e)) | Err(e) => Some(e),
                    Ok(None) => match sock.peer_addr() {
                        Ok(_) => None,
                        Err(e) if e.kind() == io::ErrorKind::NotConnected => {
                            self.phase = Phase::Connecting { addrs, next, sock, attempt_end };
                            return Ok(Progress::Pending);
                        }
                        Err(e) => Some(e),
                    },
                };
                if let Some(e) = failure {
                    log::debug!("connect to {:?} failed: {e}", addrs.get(next - 1));
                    let _ = registry.deregister(&mut sock);
                    self.last_error = Some(e);
                    self.try_address(registry, addrs, next, now)?;
                    return Ok(Progress::Pending);
                }
                let _ = sock.set_nodelay(true);
                self.connected(sock, now)
            }
            Phase::Tls(mid) => self.tls_step(mid.handshake()),
            other => {
                self.phase = other;
                Ok(Progress::Pending)
            }
        }
    }

    fn connected(&mut self, sock: TcpStream, now: Instant) -> Result<Progress> {
        let Some(connector) = self.tls.clone() else {
            return Ok(Progress::Ready(Stream::Plain(sock)));
        };
        self.deadline = now + self.timeouts.tls;
        self.tls_step(connector.connect(&self.host, sock))
    }

    fn tls_step(
        &mut self,
        result: std::result::Result<native_tls::TlsStream<TcpStream>, HandshakeError<TcpStream>>,
    ) -> Result<Progress> {
        match result {
            Ok(s) => Ok(Progress::Ready(Stream::Tls(Box::new(s)))),
            Err(HandshakeError::WouldBlock(mid)) => {
                self.phase = Phase::Tls(Box::new(mid));
                Ok(Progress::Pending)
            }
            Err(HandshakeError::Failure(e)) => Err(tls::handshake_error(&e)),
        }
    }

    /// Deregisters whatever socket the connector still holds.
    pub fn abandon(&mut self, registry: &Registry) {
        match std::mem::replace(&mut self.phase, Phase::Done) {
            Phase::Connecting { mut sock, .. } => {
                let _ = registry.deregister(&mut sock);
            }
            Phase::Tls(mut mid) => {
                let _ = registry.deregister(mid.get_mut());
            }
            _ => {}
        }
    }
}
