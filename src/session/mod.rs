//! One logical feed: connect, upgrade, exchange messages, close. Driven by the loop.
//!
//! The session owns its socket and reacts to four stimuli: socket readiness, its
//! deadline, a resolver answer and a command from the host. Each handler leaves the
//! session in a consistent phase and reports its next deadline.

pub mod driver;
pub mod shared;

use crate::config::{Protocol, SessionConfig};
use crate::error::{Error, ErrorCode, Result};
use crate::event::{Event, EventKind, SessionState};
use crate::http::{CookieJar, Exchange, Request, Response, ResponseParser};
use crate::net::{Connector, Progress, Resolver, Stream};
use crate::url::{Scheme, Url};
use crate::ws::handshake;
use crate::ws::link::{Incoming, Link, ReadOutcome};
use driver::{Driver, Step, WebSocketDriver};
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

/// What a connection is for.
enum Target {
    /// A WebSocket upgrade at this URL.
    WebSocket(Url),
    /// An HTTP exchange.
    Http(Request),
}

impl Target {
    fn url(&self) -> &Url {
        match self {
            Target::WebSocket(u) => u,
            Target::Http(r) => &r.url,
        }
    }
}

enum Phase {
    Idle,
    Connecting {
        connector: Connector,
        target: Target,
    },
    /// Request sent or being sent; waiting for the response (the upgrade key for WebSockets).
    Exchanging {
        stream: Stream,
        exchange: Exchange,
        target: Target,
        key: String,
        deadline: Instant,
    },
    Open(Link),
    Closing {
        link: Link,
        deadline: Instant,
    },
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
    driver: Box<dyn Driver>,
    /// Built on first use of TLS, then shared by every connection of the session.
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

/// The driver for a configuration's protocol.
pub fn driver_for(config: &SessionConfig) -> Result<Box<dyn Driver>> {
    match config.protocol {
        Protocol::WebSocket => Ok(Box::new(WebSocketDriver)),
        other => Err(Error::new(
            ErrorCode::NotSupported,
            format!("protocol `{}` is not supported yet", other.name()),
        )),
    }
}

/// Checks a configuration up front, so `open` can refuse it synchronously: the URL,
/// and the TLS settings (built now when the first step needs TLS).
pub fn validate(config: &SessionConfig) -> Result<Option<Arc<TlsConnector>>> {
    let url = Url::parse(&config.url)?;
    // TLS settings are checked even for a plain URL: a redirect or bootstrap may need them.
    crate::net::tls::check(&config.tls)?;
    let tls = if url.scheme.is_tls() {
        Some(Arc::new(crate::net::tls::connector(&config.tls)?))
    } else {
        None
    };
    Ok(tls)
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
        driver: Box<dyn Driver>,
        tls: Option<Arc<TlsConnector>>,
    ) -> SessionCore {
        let mut jar = CookieJar::default();
        for (n, v) in &config.cookies {
            jar.preset(n, v);
        }
        SessionCore {
            shared,
            config,
            driver,
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
        self.shared.dispatch(&Event::new(
            EventKind::State,
            SessionState::Connecting,
            b"connecting",
        ));
        let step = self.driver.start(&self.config);
        if let Err(e) = step.and_then(|step| self.take_step(ctx, step)) {
            self.fail(ctx, e);
        }
    }

    /// Carries out what the driver asked for.
    fn take_step(&mut self, ctx: &mut Ctx<'_>, step: Step) -> Result<()> {
        self.redirects = 0;
        match step {
            Step::Http(request) => self.connect(ctx, Target::Http(request)),
            Step::WebSocket(url) => self.connect(ctx, Target::WebSocket(url)),
            Step::Finish => {
                self.finish(ctx, 1000, "");
                Ok(())
            }
        }
    }

    fn tls_for(&mut self, url: &Url) -> Result<Option<Arc<TlsConnector>>> {
        if !url.scheme.is_tls() {
            return Ok(None);
        }
        if self.tls.is_none() {
            self.tls = Some(Arc::new(crate::net::tls::connector(&self.config.tls)?));
        }
        Ok(self.tls.clone())
    }

    fn connect(&mut self, ctx: &mut Ctx<'_>, target: Target) -> Result<()> {
        self.attempt += 1;
        let (id, attempt, resolved) = (self.shared.id, self.attempt, Arc::clone(ctx.resolved));
        let reply = Box::new(move |r| resolved(id, attempt, r));
        let url = target.url().clone();
        log::info!("session {id}: connecting to {url}");
        if url.scheme.is_tls() && self.config.tls.insecure {
            log::warn!(
                "session {id}: TLS certificate and host name verification are DISABLED (insecure mode)"
            );
        }
        let tls = self.tls_for(&url)?;
        let connector = Connector::start(
            &url.host,
            url.port,
            tls,
            &self.config.timeouts,
            self.token(),
            ctx.registry,
            ctx.resolver,
            reply,
            ctx.now,
        )?;
        self.phase = Phase::Connecting { connector, target };
        Ok(())
    }

    /// A resolver answer arrived.
    pub fn on_resolved(
        &mut self,
        ctx: &mut Ctx<'_>,
        attempt: u64,
        result: io::Result<Vec<SocketAddr>>,
    ) {
        if attempt != self.attempt {
            return;
        }
        if let Phase::Connecting { connector, .. } = &mut self.phase {
            if let Err(e) = connector.on_resolved(ctx.registry, result, ctx.now) {
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
                Phase::Connecting { connector, .. } => {
                    match connector.on_ready(ctx.registry, ctx.now)? {
                        Progress::Pending => return Ok(()),
                        Progress::Ready(stream) => self.begin_exchange(stream, ctx.now),
                    }
                }
                Phase::Exchanging { stream, exchange, .. } => {
                    match exchange.drive(stream, ctx.scratch)? {
                        None => return Ok(()),
                        Some(response) => self.on_response(ctx, response)?,
                    }
                }
                Phase::Open(_) | Phase::Closing { .. } => return self.pump(ctx),
                Phase::Idle | Phase::Closed => return Ok(()),
            }
        }
    }

    fn begin_exchange(&mut self, stream: Stream, now: Instant) {
        let Phase::Connecting { target, .. } = std::mem::replace(&mut self.phase, Phase::Idle)
        else {
            return;
        };
        let limits = &self.config.limits;
        let (bytes, key, parser) = match &target {
            Target::WebSocket(url) => {
                let up = handshake::request(url, &self.config);
                // A refused upgrade's body only feeds the error message: keep it small.
                let parser =
                    ResponseParser::new(limits.max_http_head, limits.max_http_body.min(64 << 10));
                (up.request.encode(&self.jar.header_for(url)), up.key, parser)
            }
            Target::Http(request) => {
                let mut request = request.clone();
                if !request.has_header("Connection") {
                    request = request.header("Connection", "close");
                }
                let parser = ResponseParser::new(limits.max_http_head, limits.max_http_body);
                let parser =
                    if request.method == "HEAD" { parser.for_head_request() } else { parser };
                (request.encode(&self.jar.header_for(&request.url)), String::new(), parser)
            }
        };
        let deadline = now + self.config.timeouts.handshake;
        self.phase = Phase::Exchanging {
            stream,
            exchange: Exchange::new(bytes, parser),
            target,
            key,
            deadline,
        };
    }

    fn on_response(&mut self, ctx: &mut Ctx<'_>, response: Response) -> Result<()> {
        let Phase::Exchanging { mut stream, mut exchange, target, key, .. } =
            std::mem::replace(&mut self.phase, Phase::Idle)
        else {
            return Ok(());
        };
        for c in response.headers_all("set-cookie") {
            self.jar.store(target.url(), c);
        }
        let redirect = matches!(response.status, 301 | 302 | 303 | 307 | 308);
        if redirect || !matches!(target, Target::WebSocket(_)) {
            let _ = ctx.registry.deregister(stream.tcp_mut());
            stream.shutdown();
        }
        if let (true, Some(location)) = (redirect, response.header("location")) {
            return self.redirect(ctx, target, response.status, location.to_string());
        }
        match target {
            Target::WebSocket(_) => self.open_link(ctx, stream, &mut exchange, &response, &key),
            Target::Http(_) => {
                let shared = &self.shared;
                let state = shared.state();
                let step =
                    self.driver.on_http_response(response, &mut |kind, topic, payload| {
                        shared.dispatch(&Event::new(kind, state, payload).with_topic(topic));
                    })?;
                self.take_step(ctx, step)
            }
        }
    }

    fn open_link(
        &mut self,
        ctx: &mut Ctx<'_>,
        stream: Stream,
        exchange: &mut Exchange,
        response: &Response,
        key: &str,
    ) -> Result<()> {
        let protocol = handshake::validate(response, key, &self.config.subprotocols)?;
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

    fn redirect(
        &mut self,
        ctx: &mut Ctx<'_>,
        target: Target,
        status: u16,
        location: String,
    ) -> Result<()> {
        self.redirects += 1;
        if self.redirects > self.config.limits.max_redirects {
            return Err(Error::new(ErrorCode::HttpRedirects, "too many redirects"));
        }
        let next = target.url().join(&location)?;
        log::info!("session {}: redirected to {next}", self.shared.id);
        let target = match target {
            Target::WebSocket(_) => {
                let mut next = next;
                next.scheme = if next.scheme.is_tls() { Scheme::Wss } else { Scheme::Ws };
                Target::WebSocket(next)
            }
            Target::Http(mut request) => {
                if matches!(request.url.scheme, Scheme::Https) && !next.scheme.is_tls() {
                    return Err(Error::new(
                        ErrorCode::HttpRedirects,
                        "refusing a redirect from https to http",
                    ));
                }
                if request.url.host != next.host {
                    // Credentials are for the host they were given for.
                    request.headers.retain(|(n, _)| !n.eq_ignore_ascii_case("authorization"));
                }
                if status == 303 || ((status == 301 || status == 302) && request.method == "POST") {
                    request.method = "GET".into();
                    request.body.clear();
                    request.headers.retain(|(n, _)| !n.eq_ignore_ascii_case("content-type"));
                }
                request.url = next;
                Target::Http(request)
            }
        };
        self.connect(ctx, target)
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
        let outcome = link.read(READ_BUDGET, ctx.now, &mut |m| {
            match m {
                Incoming::Text(t) => {
                    shared.dispatch(&Event::new(EventKind::Message, state, t.as_bytes()))
                }
                Incoming::Binary(b) => shared.dispatch(&Event::new(EventKind::Binary, state, b)),
            }
            shared.take_handler_sends()
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
                let Phase::Open(link) = std::mem::replace(&mut self.phase, Phase::Idle) else {
                    return Ok(());
                };
                let deadline = ctx.now + self.config.timeouts.close;
                self.phase = Phase::Closing { link, deadline };
                self.set_state(SessionState::Closing, "");
            }
        }
        Ok(())
    }

    /// Writes (or queues, before the link is open) what this session's own handler sent
    /// during the stimulus just handled. The loop calls it after every stimulus.
    pub fn send_from_handler(&mut self, ctx: &mut Ctx<'_>) {
        // Writing may raise `Writable`, whose handler may send more: until none are left.
        loop {
            let sends = self.shared.take_handler_sends();
            if sends.is_empty() {
                return;
            }
            for m in sends {
                if let Err(e) = self.send(m) {
                    self.fail(ctx, e);
                    self.shared.take_handler_sends();
                    return;
                }
            }
        }
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
            Phase::Idle | Phase::Connecting { .. } | Phase::Exchanging { .. } => {
                self.pending.push_back(m)
            }
            Phase::Closing { .. } | Phase::Closed => {
                let len = message_len(&m);
                log::warn!(
                    "session {}: a {len}-byte message was not sent: the session is closing",
                    self.shared.id
                );
                self.shared.release_budget(len);
            }
        }
        Ok(())
    }

    fn close(&mut self, ctx: &mut Ctx<'_>, code: u16, reason: &str) -> Result<()> {
        match std::mem::replace(&mut self.phase, Phase::Idle) {
            Phase::Open(mut link) => {
                link.close(code, reason)?;
                self.phase =
                    Phase::Closing { link, deadline: ctx.now + self.config.timeouts.close };
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
            Phase::Connecting { connector, .. } => connector.on_timeout(ctx.registry, now),
            Phase::Exchanging { deadline, .. } if now >= *deadline => Err(Error::new(
                ErrorCode::Timeout,
                format!("the HTTP response took longer than {:?}", self.config.timeouts.handshake),
            )),
            Phase::Open(link) => link.keepalive(&self.config.timeouts, now).map(|_| ()),
            Phase::Closing { link, deadline } if now >= *deadline => {
                if let Some((code, reason)) = link.peer_close() {
                    // Both close frames were exchanged; only the TCP close is missing,
                    // which RFC 6455 §7.1.1 lets the client do itself.
                    let reason = reason.to_string();
                    self.finish(ctx, code, &reason);
                    return;
                }
                self.teardown(ctx);
                let e =
                    Error::new(ErrorCode::Timeout, "the peer did not finish the close handshake");
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
            Phase::Connecting { connector, .. } => Some(connector.deadline()),
            Phase::Exchanging { deadline, .. } | Phase::Closing { deadline, .. } => Some(*deadline),
            Phase::Open(link) => link.keepalive_deadline(&self.config.timeouts),
            Phase::Idle | Phase::Closed => None,
        }
    }

    fn emit_error(&self, e: &Error) {
        log::warn!("session {}: {e}", self.shared.id);
        let state = self.shared.state();
        self.shared
            .dispatch(&Event::new(EventKind::Error, state, e.message.as_bytes()).with_error(e));
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
        self.shared.dispatch(
            &Event::new(EventKind::Close, state, reason.as_bytes()).with_close_code(code),
        );
        self.set_state(SessionState::Closed, "");
    }

    /// Releases the socket, whatever the phase.
    pub fn teardown(&mut self, ctx: &mut Ctx<'_>) {
        match std::mem::replace(&mut self.phase, Phase::Idle) {
            Phase::Connecting { mut connector, .. } => connector.abandon(ctx.registry),
            Phase::Exchanging { mut stream, .. } => {
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
            // Unread input would make the close send a TCP reset, which can destroy
            // our close frame before the peer reads it.
            link.discard_input(ctx.scratch);
        }
        self.teardown(ctx);
        self.phase = Phase::Closed;
    }
}
