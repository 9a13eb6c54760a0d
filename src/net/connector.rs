//! From host and port to a connected stream: resolve, connect each address in turn,
//! open a tunnel through the HTTP proxy when there is one, TLS.
//!
//! Every phase has a deadline enforced by the loop through [`Connector::deadline`];
//! the connector itself never blocks and never reads a clock.

use super::dns::{self, Resolver};
use super::proxy::{self, Proxy};
use super::stream::Stream;
use super::tls::{Handshake, HandshakeStep, TlsConnector};
use crate::config::Timeouts;
use crate::error::{Error, ErrorCode, Result};
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use std::io::{self, Read, Write};
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

/// The longest answer to CONNECT read.
const MAX_TUNNEL_ANSWER: usize = 16 << 10;

enum Phase {
    Resolving,
    Connecting {
        addrs: Vec<SocketAddr>,
        next: usize,
        sock: TcpStream,
        attempt_end: Instant,
    },
    /// CONNECT sent (`written` bytes of it so far), the proxy's answer being read.
    Tunnel {
        sock: TcpStream,
        request: Vec<u8>,
        written: usize,
        answer: Vec<u8>,
    },
    Tls(Box<Handshake>),
    Done,
}

/// Where a connection goes.
pub struct Endpoint {
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// TLS, when wanted.
    pub tls: Option<Arc<TlsConnector>>,
    /// The HTTP proxy to tunnel through, if any.
    pub proxy: Option<Proxy>,
    /// Pinned server certificates (DER); empty for none.
    pub pins: Vec<Vec<u8>>,
}

/// Connects one stream. Create a new one for every attempt.
pub struct Connector {
    host: String,
    port: u16,
    tls: Option<Arc<TlsConnector>>,
    proxy: Option<Proxy>,
    pins: Vec<Vec<u8>>,
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
    pub fn start(
        endpoint: Endpoint,
        timeouts: &Timeouts,
        token: Token,
        registry: &Registry,
        resolver: &Resolver,
        reply: dns::Reply,
        now: Instant,
    ) -> Result<Connector> {
        let Endpoint { host, port, tls, proxy, pins } = endpoint;
        // With a proxy, the proxy's address is looked up; it resolves the target itself.
        let (dial_host, dial_port) = match &proxy {
            Some(p) => (p.host.clone(), p.port),
            None => (host.clone(), port),
        };
        let mut c = Connector {
            host,
            port,
            tls,
            proxy,
            pins,
            token,
            timeouts: timeouts.clone(),
            phase: Phase::Resolving,
            deadline: now + timeouts.dns,
            connect_end: now,
            last_error: None,
        };
        match dns::literal(&dial_host, dial_port) {
            Some(addr) => c.connect_addrs(registry, vec![addr], now)?,
            None => resolver.resolve(&dial_host, dial_port, reply),
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
            Phase::Tunnel { mut sock, .. } => {
                let _ = registry.deregister(&mut sock);
                Err(Error::new(
                    ErrorCode::Timeout,
                    format!(
                        "the proxy did not open a tunnel to {}:{} within {:?}",
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
            Phase::Tunnel { sock, request, written, answer } => {
                self.tunnel_step(sock, request, written, answer, now)
            }
            Phase::Tls(mid) => {
                let step = mid.resume(&self.pins, &self.host)?;
                self.tls_step(step)
            }
            other => {
                self.phase = other;
                Ok(Progress::Pending)
            }
        }
    }

    fn connected(&mut self, sock: TcpStream, now: Instant) -> Result<Progress> {
        if let Some(p) = &self.proxy {
            let request = p.connect_request(&self.host, self.port);
            self.deadline = now + self.timeouts.connect;
            return self.tunnel_step(sock, request, 0, Vec::new(), now);
        }
        self.through(sock, now)
    }

    /// Writes CONNECT and reads the proxy's answer as far as the socket allows.
    fn tunnel_step(
        &mut self,
        mut sock: TcpStream,
        request: Vec<u8>,
        mut written: usize,
        mut answer: Vec<u8>,
        now: Instant,
    ) -> Result<Progress> {
        let Some(p) = self.proxy.clone() else { return self.through(sock, now) };
        let io_error = |e: io::Error| {
            Error::new(
                ErrorCode::Proxy,
                format!("the connection to the proxy {} failed: {e}", p.host),
            )
        };
        while written < request.len() {
            match sock.write(&request[written..]) {
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_error(e)),
            }
        }
        let mut chunk = [0u8; 1024];
        while written == request.len() {
            // One byte at a time past the head would be exact; the proxy sends nothing
            // after a 2xx head, so reading chunks is safe and checked in tunnel_answer.
            match sock.read(&mut chunk) {
                Ok(0) => {
                    return Err(Error::new(
                        ErrorCode::Proxy,
                        format!("the proxy {} closed the connection before answering", p.host),
                    ));
                }
                Ok(n) => {
                    answer.extend_from_slice(&chunk[..n]);
                    if proxy::tunnel_answer(&p, &answer)? {
                        log::debug!(
                            "tunnel to {}:{} open through {}",
                            self.host,
                            self.port,
                            p.host
                        );
                        return self.through(sock, now);
                    }
                    if answer.len() > MAX_TUNNEL_ANSWER {
                        return Err(Error::new(ErrorCode::Proxy, "the proxy's answer is too long"));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_error(e)),
            }
        }
        self.phase = Phase::Tunnel { sock, request, written, answer };
        Ok(Progress::Pending)
    }

    /// The TCP stream (direct or tunnelled) is up: TLS if wanted.
    fn through(&mut self, sock: TcpStream, now: Instant) -> Result<Progress> {
        let Some(connector) = self.tls.clone() else {
            return Ok(Progress::Ready(Stream::Plain(sock)));
        };
        self.deadline = now + self.timeouts.tls;
        let step = Handshake::start(&connector, &self.host, sock, &self.pins)?;
        self.tls_step(step)
    }

    fn tls_step(&mut self, step: HandshakeStep) -> Result<Progress> {
        match step {
            HandshakeStep::Done(s) => Ok(Progress::Ready(Stream::Tls(s))),
            HandshakeStep::Pending(mid) => {
                self.phase = Phase::Tls(mid);
                Ok(Progress::Pending)
            }
        }
    }

    /// Deregisters whatever socket the connector still holds.
    pub fn abandon(&mut self, registry: &Registry) {
        match std::mem::replace(&mut self.phase, Phase::Done) {
            Phase::Connecting { mut sock, .. } | Phase::Tunnel { mut sock, .. } => {
                let _ = registry.deregister(&mut sock);
            }
            Phase::Tls(mut mid) => {
                let _ = registry.deregister(mid.tcp_mut());
            }
            _ => {}
        }
    }
}
