//! HTTP requests on connections of their own, one per slot, for the long-polling
//! transports (Engine.IO and Atmosphere): each slot resolves, connects, sends its request
//! and reads the response without blocking, under the session's deadlines. The server's
//! cookies are kept across requests (sticky sessions).

use super::ResolvedSink;
use crate::config::{Limits, SessionConfig, Timeouts};
use crate::error::{Error, ErrorCode, Result};
use crate::http::{CookieJar, Exchange, Request, Response, ResponseParser};
use crate::net::tls::TlsConnector;
use crate::net::{Connector, Endpoint, Progress, ProxySetting, Resolver, Stream};
use crate::url::Url;
use mio::{Registry, Token};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

/// Resolver answers for these connections carry attempts with this bit set.
pub const POLL_ATTEMPT: u64 = 1 << 63;

/// One request in flight, or none.
pub enum Slot {
    /// Nothing in flight.
    Idle,
    /// Resolving or connecting.
    Connecting {
        /// The connection being made (boxed: much larger than the other states).
        connector: Box<Connector>,
        /// What to send once connected.
        request: Request,
        /// Matches resolver answers to this connection.
        attempt: u64,
    },
    /// Sending the request or reading the response.
    Exchanging {
        /// The connection.
        stream: Stream,
        /// The exchange on it.
        exchange: Exchange,
        /// When the response must be complete.
        deadline: Instant,
    },
}

impl Slot {
    /// When this slot's current phase must end.
    pub fn deadline(&self) -> Option<Instant> {
        match self {
            Slot::Idle => None,
            Slot::Connecting { connector, .. } => Some(connector.deadline()),
            Slot::Exchanging { deadline, .. } => Some(*deadline),
        }
    }

    /// Whether nothing is in flight.
    pub fn is_idle(&self) -> bool {
        matches!(self, Slot::Idle)
    }
}

/// Makes the connections for a session's slots.
pub struct Requester {
    /// The session id (for logs and resolver answers).
    pub id: u64,
    token: Token,
    registry: Registry,
    resolver: Resolver,
    resolved: ResolvedSink,
    tls: Option<Arc<TlsConnector>>,
    proxy: ProxySetting,
    pins: Vec<Vec<u8>>,
    /// The session's deadlines.
    pub timeouts: Timeouts,
    /// The session's limits.
    pub limits: Limits,
    attempts: u64,
    /// Cookies the server set on earlier answers, and the configured ones.
    pub jar: CookieJar,
    /// The host's extra request headers.
    headers: Vec<(String, String)>,
}

impl Requester {
    /// A requester registering its sockets under `token`.
    pub fn new(
        id: u64,
        token: Token,
        registry: &Registry,
        resolver: &Resolver,
        resolved: &ResolvedSink,
        tls: Option<Arc<TlsConnector>>,
        config: &SessionConfig,
    ) -> Result<Requester> {
        let registry = registry
            .try_clone()
            .map_err(|e| Error::new(ErrorCode::Io, format!("cannot share the registry: {e}")))?;
        let mut jar = CookieJar::default();
        for (n, v) in &config.cookies {
            jar.preset(n, v);
        }
        Ok(Requester {
            id,
            token,
            registry,
            resolver: resolver.clone(),
            resolved: Arc::clone(resolved),
            tls,
            proxy: config.proxy.clone(),
            pins: config.tls.pinned_der.clone(),
            timeouts: config.timeouts.clone(),
            limits: config.limits.clone(),
            attempts: 0,
            jar,
            headers: config.headers.clone(),
        })
    }

    /// A GET (or, with a body, a POST of text) to `url` with the host's headers and the
    /// cookies for it, on a connection of its own.
    pub fn request(&self, url: Url, body: Option<Vec<u8>>) -> Request {
        let cookie = self.jar.header_for(&url);
        let mut r = Request::get(url).header("Accept", "*/*");
        for (n, v) in &self.headers {
            r = r.header(n, v);
        }
        if !cookie.is_empty() {
            r = r.header("Cookie", &cookie);
        }
        if let Some(body) = body {
            r.method = "POST".into();
            r.body = body;
            r = r.header("Content-Type", "text/plain;charset=UTF-8");
        }
        r.header("Connection", "close")
    }

    /// Gives a resolver answer to whichever of `slots` is waiting for it.
    pub fn on_resolved_any(
        &self,
        slots: [&mut Slot; 2],
        attempt: u64,
        result: io::Result<Vec<SocketAddr>>,
        now: Instant,
    ) -> Result<()> {
        for slot in slots {
            if let Slot::Connecting { connector, attempt: a, .. } = slot {
                if *a == attempt {
                    return connector.on_resolved(&self.registry, result, now);
                }
            }
        }
        Ok(())
    }

    /// Where the sockets are registered.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Starts a connection to `url`; resolver answers for it carry the returned attempt.
    pub fn connect(&mut self, url: &Url, now: Instant) -> Result<(Connector, u64)> {
        self.attempts += 1;
        let attempt = POLL_ATTEMPT | self.attempts;
        let (id, sink) = (self.id, Arc::clone(&self.resolved));
        let reply = Box::new(move |r| sink(id, attempt, r));
        let tls = if url.scheme.is_tls() { self.tls.clone() } else { None };
        let proxy = self.proxy.proxy_for(url)?;
        let pins = self.pins.clone();
        let endpoint = Endpoint { host: url.host.clone(), port: url.port, tls, proxy, pins };
        let connector = Connector::start(
            endpoint,
            &self.timeouts,
            self.token,
            &self.registry,
            &self.resolver,
            reply,
            now,
        )?;
        Ok((connector, attempt))
    }

    /// Starts `request` on a new connection.
    pub fn open(&mut self, request: Request, now: Instant) -> Result<Slot> {
        let (connector, attempt) = self.connect(&request.url.clone(), now)?;
        Ok(Slot::Connecting { connector: Box::new(connector), request, attempt })
    }

    /// Advances a slot; returns the response once complete (its cookies stored, the
    /// connection closed). `deadline` bounds the exchange once connected.
    pub fn advance(
        &mut self,
        slot: &mut Slot,
        deadline: Instant,
        scratch: &mut [u8],
        now: Instant,
    ) -> Result<Option<Response>> {
        loop {
            match slot {
                Slot::Idle => return Ok(None),
                Slot::Connecting { connector, request, .. } => {
                    match connector.on_ready(&self.registry, now)? {
                        Progress::Pending => return Ok(None),
                        Progress::Ready(stream) => {
                            let parser = ResponseParser::new(
                                self.limits.max_http_head,
                                self.limits.max_http_body,
                            );
                            let exchange = Exchange::new(request.encode(""), parser);
                            *slot = Slot::Exchanging { stream, exchange, deadline };
                        }
                    }
                }
                Slot::Exchanging { stream, exchange, .. } => {
                    match exchange.drive(stream, scratch)? {
                        None => return Ok(None),
                        Some(response) => {
                            let _ = self.registry.deregister(stream.tcp_mut());
                            stream.shutdown();
                            *slot = Slot::Idle;
                            return Ok(Some(response));
                        }
                    }
                }
            }
        }
    }

    /// Stores the cookies a response set, for requests to `url`'s site.
    pub fn remember_cookies(&mut self, url: &Url, response: &Response) {
        for c in response.headers_all("set-cookie") {
            self.jar.store(url, c);
        }
    }

    /// Fails when the slot's deadline passed.
    pub fn check_deadline(&self, slot: &mut Slot, now: Instant, what: &str) -> Result<()> {
        match slot {
            Slot::Connecting { connector, .. } => connector.on_timeout(&self.registry, now),
            Slot::Exchanging { deadline, .. } if now >= *deadline => {
                Err(Error::new(ErrorCode::Timeout, format!("{what} got no answer in time")))
            }
            _ => Ok(()),
        }
    }

    /// Closes the slot's connection.
    pub fn abandon(&self, slot: &mut Slot) {
        match std::mem::replace(slot, Slot::Idle) {
            Slot::Connecting { mut connector, .. } => connector.abandon(&self.registry),
            Slot::Exchanging { mut stream, .. } => {
                let _ = self.registry.deregister(stream.tcp_mut());
                stream.shutdown();
            }
            Slot::Idle => {}
        }
    }
}

/// Fails unless the response is a 200.
pub fn expect_ok(response: &Response, what: &str) -> Result<()> {
    if response.status == 200 {
        return Ok(());
    }
    let body: String = String::from_utf8_lossy(&response.body).chars().take(200).collect();
    Err(Error::new(
        ErrorCode::HttpStatus,
        format!("{what} answered HTTP {} {}: {}", response.status, response.reason, body.trim()),
    ))
}
