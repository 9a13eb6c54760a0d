//! One logical feed: connect, upgrade, exchange messages, close. Driven by the loop.
//!
//! The session owns its socket and reacts to four stimuli: socket readiness, its
//! deadline, a resolver answer and a command from the host. Each handler leaves the
//! session in a consistent phase and reports its next deadline.

pub mod shared;

use crate::config::{Protocol, SessionConfig};
use crate::error::{Error, ErrorCode, Result};
use crate::event::{Event, EventKind, SessionState};
use crate::http::{CookieJar, Exchange, ResponseParser};
use crate::net::{Connector, Progress, Resolver, Stream};
use crate::url::{Scheme, Url};
use crate::ws::handshake;
use crate::ws::link::{Incoming, Link, ReadOutcome};
use mio::{Registry, Token};
use native_tls::TlsConnector;
use shared::SessionShared;
use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use tungstenite::Message;

/// Data messages handled per readiness event before other sessions get their turn.
const READ_BUDGET: usize = 64;

/// Carries a resolver answer `(session id, attempt, result)` back to the loop, from any thread.
pub type ResolvedSink = Arc<dyn Fn(u64, u64, io::Result<Vec<SocketAddr>>) + Send + Sync>;

/// What the loop lends a session while it handles one stimulus.
pub struct Ctx<'a> {
    /// Where sockets are registered.
    pub registry: &'a Registry,
    /// Name resolution.
    pub resolver: &'a Resolver,
    /// Carries a resolver answer back to the loop: `(session id, attempt, result)`.
    pub resolved: &'a ResolvedSink,
    /// The time of this loop turn.
    pub now: Instant,
    /// Scratch buffer for reading HTTP responses.
    pub scratch: &'a mut [u8],
}

enum Phase {
    Idle,
    Connecting(Connector),
    Upgrading { stream: Stream, exchange: Exchange, key: String, deadline: Instant },
    Open(Link),
    Closing { link: Link, deadline: Instant },
    Closed,
}

/// A command from the host, carried to the loop thread.
pub enum Command {
    /// Send a data message (its length was reserved from the send budget).
    Send(Message),
    /// Start the close handshake.
    Close(u16, String),
}

/// The loop-owned side of a session.
pub struct SessionCore {
    /// The side shared with the host's handle.
    pub shared: Arc<SessionShared>,
    config: SessionConfig,
    url: Url,
    tls: Option<Arc<TlsConnector>>,
    jar: CookieJar,
    phase: Phase,
    redirects: usize,
    attempt: u64,
    /// Messages sent before the connection opened.
    pending: VecDeque<Message>,
    /// Set when budget-limited reading left data in the socket.
    pub more_to_read: bool,
}

/// Checks a configuration up front, so `open` can refuse it synchronously.
pub fn validate(config: &SessionConfig) -> Result<(Url, Option<Arc<TlsConnector>>)> {
    if config.protocol != Protocol::WebSocket {
        return Err(Error::new(
            ErrorCode::NotSupported,
            format!("protocol `{}` is not supported yet", config.protocol.name()),
        ));
    }
    let url = Url::parse(&config.url)?;
    if !matches!(url.scheme, Scheme::Ws | Scheme::Wss) {
        return Err(Error::new(ErrorCode::InvalidParameter, "a WebSocket URL must be ws:// or wss://"));
    }
    let tls = if url.scheme.is_tls() { Some(Arc::new(crate::net::tls::connector(&config.tls)?)) } else { None };
    Ok((url, tls))
}

fn message_len(m: &Message) -> usize {
    match m {
        Message::Text(t) => t.len(),
        Message::Binary(b) => b.len(),
        _ => 0,
    }
}

impl SessionCore {
    /// A session for a validated configuration; call [`SessionCore::start`] next.
    pub fn new(
        shared: Arc<SessionShared>,
        config: SessionConfig,
        url: Url,
        tls: Option<Arc<TlsConnector>>,
    ) -> SessionCore {
        let mut jar = CookieJar::default();
        for (n, v) in &config.cookies {
            jar.preset(n, v);
        }
        SessionCore {
            shared,
            config,
            url,
            tls,
            jar,
            phase: Phase::Idle,
            redirects: 0,
            attempt: 0,
            pending: VecDeque::new(),
            more_to_read: false,
        }
    }

    fn token(&self) -> Token {
        Token(self.shared.id as usize)
    }

    /// Whether the session ended.
    pub fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed)
    }

    fn emit(&self, kind: EventKind, state: SessionState, payload: &[u8]) {
        self.shared.dispatch(&Event::new(kind, state, payload));
    }

    fn set_state(&self, state: SessionState, detail: &str) {
        if self.shared.state() != state {
            self.shared.set_state(state);
            let payload = if detail.is_empty() { state.name() } else { detail };
            self.emit(EventKind::State, state, payload.as_bytes());
        }
    }

    /// Begins the first connection.
    pub fn start(&mut self, ctx: &mut Ctx<'_>) {
        self.shared.dispatch(&Event::new(EventKind::State, SessionState::Connecting, b"connecting"));
        self.connect(ctx);
    }

    fn connect(&mut self, ctx: &mut Ctx<'_>) {
        self.attempt += 1;
        let (id, attempt, resolved) = (self.shared.id, self.attempt, Arc::clone(ctx.resolved));
        let reply = Box::new(move |r| resolved(id, attempt, r));
        log::info!("session {id}: connecting to {}", self.url);
        if self.url.scheme.is_tls() && self.config.tls.insecure {
            log::warn!("session {id}: TLS certificate and host name verification are DISABLED (insecure mode)");
        }
        let tls = if self.url.scheme.is_tls() { self.tls.clone() } else { None };
        match Connector::start(
            &self.url.host,
            self.url.port,
            tls,
            &self.config.timeouts,
            self.token(),
            ctx.registry,
            ctx.resolver,
            reply,
            ctx.now,
        ) {
            Ok(c) => self.phase = Phase::Connecting(c),
            Err(e) => self.fail(ctx, e),
        }
    }

    /// A resolver answer arrived.
    pub fn on_resolved(&mut self, ctx: &mut Ctx<'_>, attempt: u64, result: io::Result<Vec<SocketAddr>>) {
        if attempt != self.attempt {
            return;
        }
        if let Phase::Connecting(c) = &mut self.phase {
            if let Err(e) = c.on_resolved(ctx.registry, result, ctx.now) {
                self.fail(ctx, e);
            }
        }
    }

    /// The socket is ready (or may be): advance.
    pub fn on_ready(&mut self, ctx: &mut Ctx<'_>) {
        self.more_to_read = false;
        if let Err(e) = self.advance(ctx) {
            self.fail(ctx, e);
        }
    }

    fn advance(&mut self, ctx: &mut Ctx<'_>) -> Result<()> {
        loop {
            match &mut self.phase {
                Phase::Connecting(c) => match c.on_ready(ctx.registry, ctx.now)? {
                    Progress::Pending => return Ok(()),
                    Progress::Ready(stream) => self.begin_upgrade(stream, ctx.now),
                },
                Phase::Upgrading { stream, exchange, .. } => match exchange.drive(stream, ctx.scratch)? {
                    None => return Ok(()),
                    Some(response) => self.on_upgrade_response(ctx, response)?,
                },
                Phase::Open(_) | Phase::Closing { .. } => return self.pump(ctx),
                Phase::Idle | Phase::Closed => return Ok(()),
            }
        }
    }

    fn begin_upgrade(&mut self, stream: Stream, now: Instant) {
        let up = handshake::request(&self.url, &self.config);
        let bytes = up.request.encode(&self.jar.header_for(&self.url));
        let limits = &self.config.limits;
        let parser = ResponseParser::new(limits.max_http_head, limits.max_http_body.min(64 << 10));
        let deadline = now + self.config.timeouts.handshake;
        self.phase = Phase::Upgrading { stream, exchange: Exchange::new(bytes, parser), key: up.key, deadline };
    }

    fn on_upgrade_response(&mut self, ctx: &mut Ctx<'_>, response: crate::http::Response) -> Result<()> {
        let Phase::Upgrading { mut stream, mut exchange, key, .. } = std::mem::replace(&mut self.phase, Phase::Idle)
        else {
            return Ok(());
        };
        for c in response.headers_all("set-cookie") {
            self.jar.store(&self.url, c);
        }
        if (300..400).contains(&response.status) {
            if let Some(location) = response.header("location") {
                let _ = ctx.registry.deregister(stream.tcp_mut());
                stream.shutdown();
                return self.redirect(ctx, location.to_string());
            }
        }
        let protocol = handshake::validate(&response, &key, &self.config.subprotocols)?;
        let link = Link::new(stream, exchange.take_leftover(), &self.config.limits, ctx.now);
        self.phase = Phase::Open(link);
        log::info!("session {}: open", self.shared.id);
        self.set_state(SessionState::Open, protocol.as_deref().unwrap_or(""));
        while let Some(m) = self.pending.pop_front() {
            if let Phase::Open(link) = &mut self.phase {
                link.write(m)?;
            }
        }
        Ok(())
    }

    fn redirect(&mut self, ctx: &mut Ctx<'_>, location: String) -> Result<()> {
        self.redirects += 1;
        if self.redirects > self.config.limits.max_redirects {
            return Err(Error::new(ErrorCode::HttpRedirects, "too many redirects"));
        }
        let mut next = self.url.join(&location)?;
        next.scheme = match next.scheme {
            Scheme::Http | Scheme::Ws => Scheme::Ws,
            Scheme::Https | Scheme::Wss => Scheme::Wss,
        };
        if next.scheme.is_tls() && self.tls.is_none() {
            self.tls = Some(Arc::new(crate::net::tls::connector(&self.config.tls)?));
        }
        log::info!("session {}: redirected to {next}", self.shared.id);
        self.url = next;
        self.connect(ctx);
        Ok(())
    }

    /// Reads, delivers and flushes on an open or closing link.
    fn pump(&mut self, ctx: &mut Ctx<'_>) -> Result<()> {
        let shared = &self.shared;
        let (link, closing) = match &mut self.phase {
            Phase::Open(link) => (link, false),
            Phase::Closing { link, .. } => (link, true),
            _ => return Ok(()),
        };
        let state = if closing { SessionState::Closing } else { SessionState::Open };
        let outcome = link.read(READ_BUDGET, ctx.now, &mut |m| match m {
            Incoming::Text(t) => shared.dispatch(&Event::new(EventKind::Message, state, t.as_bytes())),
            Incoming::Binary(b) => shared.dispatch(&Event::new(EventKind::Binary, state, b)),
        })?;
        if let Some(released) = link.flush()? {
            if released > 0 && shared.release_budget(released) {
                shared.dispatch(&Event::new(EventKind::Writable, state, b""));
            }
        }
        match outcome {
            ReadOutcome::Drained => {}
            ReadOutcome::Budget => self.more_to_read = true,
            ReadOutcome::Closed(code, reason) => {
                self.finish(ctx, code, &reason);
                return Ok(());
            }
        }
        if let Phase::Open(link) = &self.phase {
            if link.peer_closed() {
                let Phase::Open(link) = std::mem::replace(&mut self.phase, Phase::Idle) else { return Ok(()) };
                let deadline = ctx.now + self.config.timeouts.close;
                self.phase = Phase::Closing { link, deadline };
                self.set_state(SessionState::Closing, "");
            }
        }
        Ok(())
    }

    /// A command from the host.
    pub fn on_command(&mut self, ctx: &mut Ctx<'_>, cmd: Command) {
        let result = match cmd {
            Command::Send(m) => self.send(m),
            Command::Close(code, reason) => self.close(ctx, code, &reason),
        };
        if let Err(e) = result {
            self.fail(ctx, e);
        }
    }

    fn send(&mut self, m: Message) -> Result<()> {
        match &mut self.phase {
            Phase::Open(link) => {
                link.write(m)?;
                if let Some(released) = link.flush()? {
                    if released > 0 && self.shared.release_budget(released) {
                        self.emit(EventKind::Writable, SessionState::Open, b"");
                    }
                }
            }
            Phase::Idle | Phase::Connecting(_) | Phase::Upgrading { .. } => self.pending.push_back(m),
            Phase::Closing { .. } | Phase::Closed => {
                self.shared.release_budget(message_len(&m));
            }
        }
        Ok(())
    }

    fn close(&mut self, ctx: &mut Ctx<'_>, code: u16, reason: &str) -> Result<()> {
        match std::mem::replace(&mut self.phase, Phase::Idle) {
            Phase::Open(mut link) => {
                link.close(code, reason)?;
                self.phase = Phase::Closing { link, deadline: ctx.now + self.config.timeouts.close };
                self.set_state(SessionState::Closing, "");
            }
            Phase::Closing { link, deadline } => self.phase = Phase::Closing { link, deadline },
            Phase::Closed => self.phase = Phase::Closed,
            other => {
                self.phase = other;
                self.teardown(ctx);
                self.finish(ctx, code, reason);
            }
        }
        Ok(())
    }

    /// A deadline may have passed.
    pub fn on_timer(&mut self, ctx: &mut Ctx<'_>) {
        let now = ctx.now;
        let result = match &mut self.phase {
            Phase::Connecting(c) => c.on_timeout(ctx.registry, now),
            Phase::Upgrading { deadline, .. } if now >= *deadline => Err(Error::new(
                ErrorCode::Timeout,
                format!("the upgrade response took longer than {:?}", self.config.timeouts.handshake),
            )),
            Phase::Open(link) => link.keepalive(&self.config.timeouts, now).map(|_| ()),
            Phase::Closing { deadline, .. } if now >= *deadline => {
                self.teardown(ctx);
                let e = Error::new(ErrorCode::Timeout, "the peer did not finish the close handshake");
                self.emit_error(&e);
                self.finish(ctx, 1006, "close handshake timed out");
                Ok(())
            }
            _ => Ok(()),
        };
        if let Err(e) = result {
            self.fail(ctx, e);
        }
    }

    /// When [`SessionCore::on_timer`] wants to run next.
    pub fn deadline(&self) -> Option<Instant> {
        match &self.phase {
            Phase::Connecting(c) => Some(c.deadline()),
            Phase::Upgrading { deadline, .. } | Phase::Closing { deadline, .. } => Some(*deadline),
            Phase::Open(link) => link.keepalive_deadline(&self.config.timeouts),
            Phase::Idle | Phase::Closed => None,
        }
    }

    fn emit_error(&self, e: &Error) {
        log::warn!("session {}: {e}", self.shared.id);
        let state = self.shared.state();
        self.shared.dispatch(&Event::new(EventKind::Error, state, e.message.as_bytes()).with_error(e));
    }

    /// Ends the session on an error: error event, then the closed state.
    pub fn fail(&mut self, ctx: &mut Ctx<'_>, e: Error) {
        self.teardown(ctx);
        self.emit_error(&e);
        self.phase = Phase::Closed;
        self.pending.clear();
        self.shared.clear_budget();
        self.set_state(SessionState::Closed, "");
    }

    /// Ends the session after a close: close event, then the closed state.
    fn finish(&mut self, ctx: &mut Ctx<'_>, code: u16, reason: &str) {
        self.teardown(ctx);
        self.phase = Phase::Closed;
        self.pending.clear();
        self.shared.clear_budget();
        log::info!("session {}: closed ({code})", self.shared.id);
        let state = self.shared.state();
        self.shared.dispatch(&Event::new(EventKind::Close, state, reason.as_bytes()).with_close_code(code));
        self.set_state(SessionState::Closed, "");
    }

    /// Releases the socket, whatever the phase.
    pub fn teardown(&mut self, ctx: &mut Ctx<'_>) {
        match std::mem::replace(&mut self.phase, Phase::Idle) {
            Phase::Connecting(mut c) => c.abandon(ctx.registry),
            Phase::Upgrading { mut stream, .. } => {
                let _ = ctx.registry.deregister(stream.tcp_mut());
                stream.shutdown();
            }
            Phase::Open(mut link) | Phase::Closing { mut link, .. } => {
                let _ = ctx.registry.deregister(link.stream_mut().tcp_mut());
                link.shutdown();
            }
            Phase::Idle => {}
            Phase::Closed => self.phase = Phase::Closed,
        }
    }

    /// The host dropped its handle: say goodbye politely if open, then let go.
    pub fn release(&mut self, ctx: &mut Ctx<'_>) {
        if let Phase::Open(link) = &mut self.phase {
            let _ = link.close(1001, "");
        }
        self.teardown(ctx);
        self.phase = Phase::Closed;
    }
}
