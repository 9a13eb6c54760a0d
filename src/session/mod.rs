//! One logical feed: connect, upgrade, exchange messages, close. Driven by the loop.
//!
//! The session owns its socket and reacts to four stimuli: socket readiness, its
//! deadline, a resolver answer and a command from the host. Each handler leaves the
//! session in a consistent phase and reports its next deadline. What the bytes mean is
//! the driver's business (`driver.rs`); establishing connections is in `connect.rs`.

mod atmosphere_polling;
mod backoff;
pub mod command;
mod connect;
pub mod driver;
mod polling;
mod requester;
pub mod shared;
pub mod stats;
mod transport;

use crate::config::{Overflow, Protocol, SessionConfig};
use crate::error::{Error, ErrorCode, Result};
use crate::event::{Event, EventKind, SessionState};
use crate::http::{CookieJar, Exchange};
use crate::net::tls::TlsConnector;
use crate::net::{Connector, Resolver, Stream};
use crate::url::Url;
use crate::ws::link::{Incoming, ReadOutcome};
use command::{Budgeted, Command, Outbound};
use connect::Target;
use driver::{Driver, End, Frame, Io, WebSocketDriver};
use mio::{Registry, Token};
use shared::SessionShared;
use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use transport::Transport;
use tungstenite::Message;

/// Frames handed out per read pass before other sessions get their turn (a pass stops
/// reading the socket at half of it, so ordinary traffic never meets the hard limit).
const READ_BUDGET: usize = 1024;

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
    Open(Transport),
    Closing {
        link: Transport,
        deadline: Instant,
    },
    /// The connection was lost; connecting again at `until`.
    Waiting {
        until: Instant,
    },
    Closed,
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
    /// Host sends waiting for the session to open.
    pending: VecDeque<Budgeted>,
    /// Set when budget-limited reading left data in the socket.
    pub more_to_read: bool,
    /// The host or the driver asked for the close under way: no reconnect follows it.
    ending: bool,
    /// Reconnect attempts since the last stable connection.
    retries: u32,
    /// When the feed last opened (for the backoff reset after a stable period).
    opened_at: Option<Instant>,
    /// Jitter source.
    rng: backoff::Jitter,
    /// While the transport is up but the protocol has not reported the feed open (its
    /// handshake, login or subscription answer): when that must have happened.
    open_by: Option<Instant>,
}

/// The driver for a configuration's protocol.
pub fn driver_for(config: &SessionConfig) -> Result<Box<dyn Driver>> {
    match config.protocol {
        Protocol::WebSocket => Ok(Box::new(WebSocketDriver)),
        Protocol::SocketIo => Ok(Box::new(crate::socketio::SocketIoDriver::new(config)?)),
        #[cfg(feature = "thethings")]
        Protocol::TheThings => {
            Ok(Box::new(crate::vendors::thethings::TheThingsDriver::new(config)?))
        }
        #[cfg(feature = "igtimi")]
        Protocol::Igtimi => Ok(Box::new(crate::vendors::igtimi::IgtimiDriver::new(config)?)),
        #[cfg(feature = "deconz")]
        Protocol::Deconz => Ok(Box::new(crate::vendors::deconz::DeconzDriver::new(config)?)),
        #[cfg(feature = "smartserver")]
        Protocol::SmartServer => {
            Ok(Box::new(crate::vendors::smartserver::SmartServerDriver::new(config)?))
        }
        #[cfg(feature = "navixy")]
        Protocol::Navixy => Ok(Box::new(crate::vendors::navixy::NavixyDriver::new(config)?)),
        Protocol::Atmosphere => Ok(Box::new(crate::atmosphere::AtmosphereDriver::new(config)?)),
        #[allow(unreachable_patterns)] // every platform built in
        other => Err(Error::new(
            ErrorCode::NotSupported,
            format!("protocol `{}` is not built in (cargo feature)", other.name()),
        )),
    }
}

/// Checks a configuration up front, so `open` can refuse it synchronously: the URL,
/// and the TLS settings (built now when the first step needs TLS).
pub fn validate(config: &SessionConfig) -> Result<Option<Arc<TlsConnector>>> {
    let url = Url::parse(&config.url)?;
    // TLS settings are checked even for a plain URL: a redirect or bootstrap may need them.
    crate::net::tls::check(&config.tls)?;
    if let crate::net::ProxySetting::Url(proxy) = &config.proxy {
        crate::net::Proxy::parse(proxy)?;
    }
    let tls = if url.scheme.is_tls() {
        Some(crate::net::tls::shared_connector(&config.tls)?)
    } else {
        None
    };
    Ok(tls)
}

/// Errors no new connection can cure: the configuration, or credentials the server refused
/// (drivers that can log in again do so through [`Driver::retry_now`] first).
fn fatal(e: &Error) -> bool {
    matches!(
        e.code,
        ErrorCode::InvalidParameter
            | ErrorCode::TlsConfig
            | ErrorCode::NotSupported
            | ErrorCode::Auth
            | ErrorCode::ProxyAuth
            | ErrorCode::Panic
    )
}

/// Where a host send goes in the session's current state.
enum Route {
    Deliver,
    Wait,
    Drop,
}

fn route(state: SessionState) -> Route {
    match state {
        SessionState::Open => Route::Deliver,
        SessionState::Connecting | SessionState::Reconnecting => Route::Wait,
        SessionState::Closing | SessionState::Closed => Route::Drop,
    }
}

/// Tells the host a send will not be made (and gives its budget back).
fn dropped(shared: &SessionShared, b: &Budgeted, why: &str) {
    shared.leave_outbox(b.in_outbox);
    log::warn!("session {}: a {}-byte send was dropped: {why}", shared.id, b.budget);
    shared.release_budget(b.budget);
    shared.counters.dropped();
    let state = shared.state();
    let event = match &b.out {
        Outbound::Message(m) => Event::new(EventKind::Dropped, state, m_bytes(m)),
        Outbound::Emit(e) => Event::new(EventKind::Dropped, state, b"").with_topic(&e.event),
        _ => Event::new(EventKind::Dropped, state, b""),
    };
    shared.dispatch(&event);
}

fn m_bytes(m: &Message) -> &[u8] {
    match m {
        Message::Text(t) => t.as_bytes(),
        Message::Binary(b) => b,
        _ => b"",
    }
}

/// Keeps a send until the session is open, as the outbox policy says.
fn wait_in_outbox(shared: &SessionShared, pending: &mut VecDeque<Budgeted>, b: Budgeted) {
    let outbox = shared.outbox();
    if pending.len() >= outbox.max_messages {
        match outbox.overflow {
            Overflow::DropOldest => {
                if let Some(oldest) = pending.pop_front() {
                    dropped(shared, &oldest, "the outbox is full (drop oldest)");
                }
            }
            // Reject is checked on the caller's thread; a send that raced past it is
            // dropped like the newest.
            Overflow::DropNewest | Overflow::Reject => {
                dropped(shared, &b, "the outbox is full");
                return;
            }
        }
    }
    if outbox.max_messages > 0 {
        pending.push_back(b);
    } else {
        dropped(shared, &b, "the outbox holds nothing");
    }
}

/// Lets the driver turn one host send into frames.
fn send_through(
    driver: &mut dyn Driver,
    shared: &SessionShared,
    b: Budgeted,
    now: Instant,
    frames: &mut Vec<Frame>,
    end: &mut Option<End>,
) -> Result<()> {
    let mut opened = None;
    let mut io = Io::new(now, shared, frames, &mut opened, end).with_budget(b.budget);
    driver.on_send(b.out, &mut io)
}

impl SessionCore {
    /// A session for a validated configuration; call [`SessionCore::start`] next.
    pub fn new(
        shared: Arc<SessionShared>,
        config: SessionConfig,
        driver: Box<dyn Driver>,
        tls: Option<Arc<TlsConnector>>,
    ) -> SessionCore {
        let shared_id = shared.id;
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
            ending: false,
            retries: 0,
            opened_at: None,
            rng: backoff::Jitter::seeded(shared_id),
            open_by: None,
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

    /// Begins the first connection.
    pub fn start(&mut self, ctx: &mut Ctx<'_>) {
        self.emit(EventKind::State, SessionState::Connecting, b"connecting");
        let step = self.driver.start(&self.config);
        if let Err(e) = step.and_then(|step| self.take_step(ctx, step)) {
            self.fail(ctx, e);
        }
    }

    /// A resolver answer arrived.
    pub fn on_resolved(
        &mut self,
        ctx: &mut Ctx<'_>,
        attempt: u64,
        result: io::Result<Vec<SocketAddr>>,
    ) {
        if attempt & requester::POLL_ATTEMPT != 0 {
            let outcome = match &mut self.phase {
                Phase::Open(link) | Phase::Closing { link, .. } => match link {
                    Transport::Polling(p) => p.on_resolved(attempt, result, ctx.now),
                    Transport::AtmospherePolling(p) => p.on_resolved(attempt, result, ctx.now),
                    Transport::Ws(_) => Ok(()),
                },
                _ => Ok(()),
            };
            if let Err(e) = outcome {
                self.fail(ctx, e);
            }
            return;
        }
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
        let result = self.establish(ctx).and_then(|()| self.pump(ctx));
        if let Err(e) = result {
            self.fail(ctx, e);
        }
    }

    /// Runs `f` on the driver with an [`Io`], then carries out what it asked for.
    fn with_io(
        &mut self,
        ctx: &mut Ctx<'_>,
        budget: usize,
        f: impl FnOnce(&mut dyn Driver, &mut Io<'_>) -> Result<()>,
    ) -> Result<()> {
        let (mut frames, mut opened, mut end) = (Vec::new(), None, None);
        {
            let mut io = Io::new(ctx.now, &self.shared, &mut frames, &mut opened, &mut end)
                .with_budget(budget);
            f(self.driver.as_mut(), &mut io)?;
        }
        self.write_frames(frames)?;
        if let Some(detail) = opened {
            self.opened(ctx, &detail)?;
        }
        self.flush()?;
        self.end(ctx, end)
    }

    /// Carries out a driver's request to end the connection.
    fn end(&mut self, ctx: &mut Ctx<'_>, end: Option<End>) -> Result<()> {
        match end {
            None => Ok(()),
            Some(End::Finish(code, reason)) => self.close(ctx, code, &reason),
            Some(End::Restart(reason)) => {
                log::info!("session {}: starting over: {reason}", self.shared.id);
                if let Phase::Open(link) = &mut self.phase {
                    let _ = link.close(1000, "");
                    link.discard_input(ctx.scratch);
                }
                self.teardown(ctx);
                self.shared.transition(SessionState::Connecting, "");
                let step = self.driver.start(&self.config)?;
                self.take_step(ctx, step)
            }
        }
    }

    /// The transport is up; the protocol now has `timeouts.handshake` to open the feed.
    fn transport_up(&mut self, now: Instant) {
        if self.shared.state() != SessionState::Open {
            self.open_by = Some(now + self.config.timeouts.handshake);
        }
    }

    /// The driver reports the feed open: tell the host, then send what waited.
    fn opened(&mut self, ctx: &mut Ctx<'_>, detail: &str) -> Result<()> {
        log::info!("session {}: open", self.shared.id);
        self.opened_at = Some(ctx.now);
        self.open_by = None;
        self.shared.transition(SessionState::Open, detail);
        while let Some(b) = self.pending.pop_front() {
            self.shared.leave_outbox(b.in_outbox);
            let budget = b.budget;
            self.with_io(ctx, budget, |driver, io| driver.on_send(b.out, io))?;
        }
        Ok(())
    }

    fn write_frames(&mut self, frames: Vec<Frame>) -> Result<()> {
        match &mut self.phase {
            Phase::Open(link) | Phase::Closing { link, .. } => {
                for (m, budget) in frames {
                    self.shared.counters.sent(m_bytes(&m).len());
                    link.write(m, budget)?;
                }
            }
            _ => {
                for (_, budget) in frames {
                    self.shared.release_budget(budget);
                }
            }
        }
        Ok(())
    }

    /// Writes out what the link buffered; tells a waiting sender when the budget frees up.
    fn flush(&mut self) -> Result<()> {
        if let Phase::Open(link) | Phase::Closing { link, .. } = &mut self.phase {
            if let Some(released) = link.flush()? {
                if released > 0 && self.shared.release_budget(released) {
                    let state = self.shared.state();
                    self.emit(EventKind::Writable, state, b"");
                }
            }
        }
        Ok(())
    }

    /// Reads, hands frames to the driver, writes its answers and flushes.
    fn pump(&mut self, ctx: &mut Ctx<'_>) -> Result<()> {
        let (shared, driver, pending) = (&self.shared, &mut self.driver, &mut self.pending);
        let link = match &mut self.phase {
            Phase::Open(link) | Phase::Closing { link, .. } => link,
            _ => return Ok(()),
        };
        let now = ctx.now;
        let mut end = None;
        let mut became_open = false;
        let mut traffic = stats::Traffic::default();
        let outcome = link.read(READ_BUDGET, now, ctx.scratch, &mut |m| {
            let mut frames = Vec::new();
            let mut opened = None;
            {
                let mut io = Io::new(now, shared, &mut frames, &mut opened, &mut end);
                match m {
                    Incoming::Text(t) => {
                        traffic.received(t.len());
                        driver.on_text(t, &mut io)?
                    }
                    Incoming::Binary(b) => {
                        traffic.received(b.len());
                        driver.on_binary(b, &mut io)?
                    }
                }
            }
            if let Some(detail) = opened {
                became_open = true;
                shared.transition(SessionState::Open, &detail);
                while let Some(b) = pending.pop_front() {
                    shared.leave_outbox(b.in_outbox);
                    send_through(driver.as_mut(), shared, b, now, &mut frames, &mut end)?;
                }
            }
            // What the handler sent while it ran goes out before the next frame is read.
            // (Counted as sent here: the link writes these answers itself.)
            let sends = shared.take_handler_sends();
            if !sends.is_empty() {
                for b in sends {
                    match route(shared.state()) {
                        Route::Deliver => {
                            shared.leave_outbox(b.in_outbox);
                            send_through(driver.as_mut(), shared, b, now, &mut frames, &mut end)?
                        }
                        Route::Wait => wait_in_outbox(shared, pending, b),
                        Route::Drop => dropped(shared, &b, "the session is closing"),
                    }
                }
            }
            for (m, _) in &frames {
                traffic.sent(m_bytes(m).len());
            }
            Ok(frames)
        })?;
        self.shared.counters.traffic(&traffic);
        if became_open {
            self.opened_at = Some(now);
            self.open_by = None;
        }
        if let Some(rtt) = link.take_rtt() {
            self.shared.counters.rtt(rtt);
        }
        if let Transport::Polling(p) = link {
            if let Some(ws) = p.take_upgraded() {
                // Long-polling handed over to a WebSocket; the held GET came back first.
                *link = Transport::Ws(ws);
            }
        }
        self.flush()?;
        match outcome {
            ReadOutcome::Drained => {}
            ReadOutcome::Budget => self.more_to_read = true,
            ReadOutcome::Closed(code, reason) => {
                if matches!(end, Some(End::Finish(..))) {
                    // The driver finished in this very read pass: the close is no drop.
                    self.ending = true;
                }
                if !self.ending {
                    self.driver.on_peer_close(code, &reason)?;
                }
                self.finish(ctx, code, &reason);
                return Ok(());
            }
        }
        if end.is_some() {
            return self.end(ctx, end);
        }
        if let Phase::Open(link) = &self.phase {
            if link.peer_closed() {
                let Phase::Open(link) = std::mem::replace(&mut self.phase, Phase::Idle) else {
                    return Ok(());
                };
                let deadline = ctx.now + self.config.timeouts.close;
                self.phase = Phase::Closing { link, deadline };
                self.shared.transition(SessionState::Closing, "");
            }
        }
        Ok(())
    }

    /// Sends what this session's own handler sent during the stimulus just handled (the
    /// loop calls it after every stimulus).
    pub fn send_from_handler(&mut self, ctx: &mut Ctx<'_>) {
        // Writing may raise `Writable`, whose handler may send more: until none are left.
        loop {
            let sends = self.shared.take_handler_sends();
            if sends.is_empty() {
                return;
            }
            for b in sends {
                if let Err(e) = self.host_send(ctx, b) {
                    self.fail(ctx, e);
                    for b in self.shared.take_handler_sends() {
                        self.shared.release_budget(b.budget);
                    }
                    return;
                }
            }
        }
    }

    /// A command from the host.
    pub fn on_command(&mut self, ctx: &mut Ctx<'_>, cmd: Command) {
        let result = match cmd {
            Command::Send(b) => self.host_send(ctx, b),
            Command::Close(code, reason) => self.close(ctx, code, &reason),
            Command::Reconnect => self.reconnect_now(ctx),
        };
        if let Err(e) = result {
            self.fail(ctx, e);
        }
    }

    fn host_send(&mut self, ctx: &mut Ctx<'_>, b: Budgeted) -> Result<()> {
        let open_link = matches!(self.phase, Phase::Open(_));
        match route(self.shared.state()) {
            Route::Deliver if open_link => {
                self.shared.leave_outbox(b.in_outbox);
                let budget = b.budget;
                self.with_io(ctx, budget, |driver, io| driver.on_send(b.out, io))
            }
            Route::Deliver | Route::Drop => {
                dropped(&self.shared, &b, "the session is closing");
                Ok(())
            }
            Route::Wait => {
                wait_in_outbox(&self.shared, &mut self.pending, b);
                Ok(())
            }
        }
    }

    fn close(&mut self, ctx: &mut Ctx<'_>, code: u16, reason: &str) -> Result<()> {
        if !self.ending && matches!(self.phase, Phase::Open(_)) {
            self.ending = true;
            self.with_io(ctx, 0, |driver, io| {
                driver.on_closing(io);
                Ok(())
            })?;
        }
        self.ending = true;
        match std::mem::replace(&mut self.phase, Phase::Idle) {
            Phase::Open(mut link) => {
                link.close(code, reason)?;
                self.phase =
                    Phase::Closing { link, deadline: ctx.now + self.config.timeouts.close };
                self.shared.transition(SessionState::Closing, "");
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
        let keepalive = self.driver.websocket_keepalive();
        let driver_due = self.driver.deadline().is_some_and(|d| now >= d);
        let result = match &mut self.phase {
            Phase::Connecting { connector, .. } => connector.on_timeout(ctx.registry, now),
            Phase::Exchanging { deadline, .. } if now >= *deadline => Err(Error::new(
                ErrorCode::Timeout,
                format!("the HTTP response took longer than {:?}", self.config.timeouts.handshake),
            )),
            Phase::Open(_) if self.open_by.is_some_and(|d| now >= d) => Err(Error::new(
                ErrorCode::Timeout,
                format!(
                    "the protocol's handshake or login answer did not come within {:?}",
                    self.config.timeouts.handshake
                ),
            )),
            Phase::Open(link) => {
                let ping = link.keepalive(&self.config.timeouts, now, keepalive);
                match ping {
                    Ok(()) if driver_due => self.with_io(ctx, 0, |driver, io| driver.on_timer(io)),
                    other => other,
                }
            }
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
            Phase::Waiting { until } if now >= *until => self.attempt_again(ctx),
            _ => Ok(()),
        };
        if let Err(e) = result {
            self.fail(ctx, e);
        }
    }

    /// Starts a new connection after a loss: the STATE event for `Connecting` goes first
    /// (the host may hand over a new configuration in it), then the driver's bootstrap.
    fn attempt_again(&mut self, ctx: &mut Ctx<'_>) -> Result<()> {
        self.phase = Phase::Idle;
        self.shared.counters.reconnecting();
        self.shared.transition(SessionState::Connecting, "");
        if let Some(config) = self.shared.take_next_config() {
            log::info!("session {}: connecting with the new configuration", self.shared.id);
            self.driver = driver_for(&config)?;
            self.tls = None; // built again from the new TLS settings when needed
            self.config = config;
        }
        self.driver.start(&self.config).and_then(|step| self.take_step(ctx, step))
    }

    /// The host says the network changed: drop the connection (or the wait) and connect
    /// again now, with a fresh backoff.
    fn reconnect_now(&mut self, ctx: &mut Ctx<'_>) -> Result<()> {
        if self.ending || matches!(self.phase, Phase::Closed) {
            return Ok(());
        }
        log::info!("session {}: reconnecting now (the host asked)", self.shared.id);
        if let Phase::Open(link) = &mut self.phase {
            let _ = link.close(1001, "");
            link.discard_input(ctx.scratch);
        }
        self.teardown(ctx);
        self.retries = 0;
        self.opened_at = None;
        let detail = r#"{"attempt":0,"delay_ms":0,"reason":"the host asked to reconnect now"}"#;
        self.shared.transition(SessionState::Reconnecting, detail);
        self.attempt_again(ctx)
    }

    /// When [`SessionCore::on_timer`] wants to run next.
    pub fn deadline(&self) -> Option<Instant> {
        match &self.phase {
            Phase::Connecting { connector, .. } => Some(connector.deadline()),
            Phase::Exchanging { deadline, .. } | Phase::Closing { deadline, .. } => Some(*deadline),
            Phase::Open(link) => {
                let ping = link
                    .keepalive_deadline(&self.config.timeouts, self.driver.websocket_keepalive());
                [ping, self.driver.deadline(), self.open_by].into_iter().flatten().min()
            }
            Phase::Waiting { until } => Some(*until),
            Phase::Idle | Phase::Closed => None,
        }
    }

    fn emit_error(&self, e: &Error) {
        log::warn!("session {}: {e}", self.shared.id);
        self.shared.counters.error(e.code);
        let state = self.shared.state();
        self.shared
            .dispatch(&Event::new(EventKind::Error, state, e.message.as_bytes()).with_error(e));
    }

    fn drop_pending(&mut self) {
        for b in self.pending.drain(..) {
            dropped(&self.shared, &b, "the session ended before it could go");
        }

        self.shared.clear_budget();
    }

    /// The connection failed: error event, then the driver's own retry (next server, fresh
    /// login), the reconnect backoff, or the closed state.
    pub fn fail(&mut self, ctx: &mut Ctx<'_>, mut e: Error) {
        loop {
            self.teardown(ctx);
            if matches!(self.phase, Phase::Closed) {
                return;
            }
            self.emit_error(&e);
            if self.ending || !self.driver.retry_now(&e) {
                break;
            }
            log::info!("session {}: the driver starts over: {}", self.shared.id, e.message);
            self.shared.transition(SessionState::Connecting, "");
            match self.driver.start(&self.config).and_then(|step| self.take_step(ctx, step)) {
                Ok(()) => return,
                Err(next) => e = next,
            }
        }
        if !fatal(&e) && self.schedule_reconnect(ctx, &e.message) {
            return;
        }
        self.closed_for_good();
    }

    /// Ends the connection after a close: close event, then a reconnect when the peer
    /// closed and the policy allows, else the closed state.
    fn finish(&mut self, ctx: &mut Ctx<'_>, code: u16, reason: &str) {
        self.teardown(ctx);
        log::info!("session {}: closed ({code})", self.shared.id);
        let state = self.shared.state();
        self.shared.dispatch(
            &Event::new(EventKind::Close, state, reason.as_bytes()).with_close_code(code),
        );
        if !self.ending && self.schedule_reconnect(ctx, &format!("the peer closed ({code})")) {
            return;
        }
        self.closed_for_good();
    }

    fn closed_for_good(&mut self) {
        self.phase = Phase::Closed;
        self.drop_pending();
        // The driver reports what can no longer complete (acknowledgements awaited).
        let (mut frames, mut opened, mut end) = (Vec::new(), None, None);
        let mut io = Io::new(Instant::now(), &self.shared, &mut frames, &mut opened, &mut end);
        self.driver.on_end(&mut io);
        self.shared.transition(SessionState::Closed, "");
    }

    /// Waits out the backoff before connecting again, if the policy allows another
    /// attempt. Host sends made meanwhile wait in the pending queue.
    fn schedule_reconnect(&mut self, ctx: &mut Ctx<'_>, reason: &str) -> bool {
        let policy = &self.config.reconnect;
        if !policy.enabled || self.ending || self.shared.released() {
            return false;
        }
        if self.opened_at.take().is_some_and(|t| ctx.now >= t + policy.stable_after) {
            self.retries = 0;
        }
        if policy.max_attempts != 0 && self.retries >= policy.max_attempts {
            log::warn!(
                "session {}: giving up after {} reconnect attempts",
                self.shared.id,
                self.retries
            );
            return false;
        }
        self.retries += 1;
        let delay = self.rng.delay(policy, self.retries);
        log::info!(
            "session {}: reconnecting in {} ms (attempt {}): {reason}",
            self.shared.id,
            delay.as_millis(),
            self.retries
        );
        self.phase = Phase::Waiting { until: ctx.now + delay };
        let detail = serde_json::json!({
            "attempt": self.retries,
            "delay_ms": delay.as_millis() as u64,
            "reason": reason,
        });
        self.shared.transition(SessionState::Reconnecting, &detail.to_string());
        true
    }

    /// Releases the socket, whatever the phase.
    pub fn teardown(&mut self, ctx: &mut Ctx<'_>) {
        match std::mem::replace(&mut self.phase, Phase::Idle) {
            Phase::Connecting { mut connector, .. } => connector.abandon(ctx.registry),
            Phase::Exchanging { mut stream, .. } => {
                let _ = ctx.registry.deregister(stream.tcp_mut());
                stream.shutdown();
            }
            Phase::Open(mut link) | Phase::Closing { mut link, .. } => link.abandon(ctx.registry),
            Phase::Idle | Phase::Waiting { .. } => {}
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
