//! The Engine.IO long-polling transport: a GET that the server holds until it has packets,
//! and a POST for what the client sends, each on its own connection, at most one of each
//! in flight (engine-io protocol). It offers the session the same interface as a WebSocket
//! link, one Engine.IO packet per "frame", so the Socket.IO driver does not know which
//! transport carries it.

use super::ResolvedSink;
use crate::config::{Limits, SessionConfig, Timeouts};
use crate::engineio::codec::{self, OpenInfo, PacketType, Version};
use crate::error::{Error, ErrorCode, Result};
use crate::http::{CookieJar, Exchange, Request, Response, ResponseParser};
use crate::net::{Connector, Progress, Resolver, Stream};
use crate::url::{Scheme, Url};
use crate::ws::handshake;
use crate::ws::link::{Answers, Incoming, Link, ReadOutcome};
use mio::{Registry, Token};
use native_tls::TlsConnector;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tungstenite::Message;

/// Resolver answers for the poller's connections carry attempts with this bit set.
pub const POLL_ATTEMPT: u64 = 1 << 63;

/// The move to a WebSocket (engine.io "upgrade"): connect with the same sid, probe with
/// `2probe`/`3probe`, pause polling until the held GET returns, then send `5`.
enum Upgrade {
    /// Not wanted, not offered, or given up (polling goes on).
    Off,
    /// Wanted; starts once the open packet offers it.
    Wanted,
    Connecting {
        connector: Connector,
        attempt: u64,
    },
    Exchanging {
        stream: Stream,
        exchange: Exchange,
        key: String,
        deadline: Instant,
    },
    Probing {
        link: Box<Link>,
        deadline: Instant,
    },
    Pausing {
        link: Box<Link>,
        deadline: Instant,
    },
    Done(Box<Link>),
}

enum Slot {
    Idle,
    Connecting { connector: Connector, request: Request, attempt: u64 },
    Exchanging { stream: Stream, exchange: Exchange, deadline: Instant },
}

/// A long-polling Engine.IO connection.
pub struct Poller {
    id: u64,
    token: Token,
    registry: Registry,
    resolver: Resolver,
    resolved: ResolvedSink,
    tls: Option<Arc<TlsConnector>>,
    timeouts: Timeouts,
    limits: Limits,
    base: Url,
    version: Version,
    sid: Option<String>,
    /// How long the server may hold a GET (pingInterval + pingTimeout, once known).
    hold: Duration,
    seq: u64,
    attempts: u64,
    get: Slot,
    post: Slot,
    outbox: Vec<codec::Packet>,
    outbox_budget: usize,
    post_budget: usize,
    released: usize,
    closing: bool,
    config: SessionConfig,
    upgrade: Upgrade,
    /// Cookies the server sets on polling answers (sticky sessions, engine.io's `io`).
    jar: CookieJar,
}

fn slot_deadline(slot: &Slot) -> Option<Instant> {
    match slot {
        Slot::Idle => None,
        Slot::Connecting { connector, .. } => Some(connector.deadline()),
        Slot::Exchanging { deadline, .. } => Some(*deadline),
    }
}

impl Poller {
    /// Starts the handshake GET at `base` (`.../?EIO=..&transport=polling[&...]`).
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        id: u64,
        token: Token,
        registry: &Registry,
        resolver: &Resolver,
        resolved: &ResolvedSink,
        tls: Option<Arc<TlsConnector>>,
        config: &SessionConfig,
        base: Url,
        upgrade: bool,
        now: Instant,
    ) -> Result<Poller> {
        let (timeouts, limits) = (&config.timeouts, &config.limits);
        let registry = registry
            .try_clone()
            .map_err(|e| Error::new(ErrorCode::Io, format!("cannot share the poller: {e}")))?;
        let version = if base.target.contains("EIO=3") { Version::V3 } else { Version::V4 };
        let mut p = Poller {
            id,
            token,
            registry,
            resolver: resolver.clone(),
            resolved: Arc::clone(resolved),
            tls,
            timeouts: timeouts.clone(),
            limits: limits.clone(),
            base,
            version,
            sid: None,
            hold: timeouts.handshake,
            seq: 0,
            attempts: 0,
            get: Slot::Idle,
            post: Slot::Idle,
            outbox: Vec::new(),
            outbox_budget: 0,
            post_budget: 0,
            released: 0,
            closing: false,
            config: config.clone(),
            upgrade: if upgrade { Upgrade::Wanted } else { Upgrade::Off },
            jar: CookieJar::default(),
        };
        for (n, v) in &config.cookies {
            p.jar.preset(n, v);
        }
        p.get = p.open_slot(None, now)?;
        Ok(p)
    }

    fn request(&mut self, body: Option<String>) -> Request {
        self.seq += 1;
        let mut url = self.base.clone();
        url.target.push_str(&format!("&t={}", self.seq));
        if let Some(sid) = &self.sid {
            url.target.push_str("&sid=");
            url.target.push_str(sid);
        }
        let cookie = self.jar.header_for(&url);
        let mut r = Request::get(url).header("Accept", "*/*");
        for (n, v) in &self.config.headers {
            r = r.header(n, v);
        }
        if !cookie.is_empty() {
            r = r.header("Cookie", &cookie);
        }
        if let Some(body) = body {
            r.method = "POST".into();
            r.body = body.into_bytes();
            r = r.header("Content-Type", "text/plain;charset=UTF-8");
        }
        r.header("Connection", "close")
    }

    /// Starts a connection to `url`; resolver answers for it carry the returned attempt.
    fn connect(&mut self, url: &Url, now: Instant) -> Result<(Connector, u64)> {
        self.attempts += 1;
        let attempt = POLL_ATTEMPT | self.attempts;
        let (id, sink) = (self.id, Arc::clone(&self.resolved));
        let reply = Box::new(move |r| sink(id, attempt, r));
        let tls = if url.scheme.is_tls() { self.tls.clone() } else { None };
        let connector = Connector::start(
            &url.host,
            url.port,
            tls,
            &self.timeouts,
            self.token,
            &self.registry,
            &self.resolver,
            reply,
            now,
        )?;
        Ok((connector, attempt))
    }

    fn open_slot(&mut self, body: Option<String>, now: Instant) -> Result<Slot> {
        let request = self.request(body);
        let (connector, attempt) = self.connect(&request.url.clone(), now)?;
        Ok(Slot::Connecting { connector, request, attempt })
    }

    /// A resolver answer for one of the poller's connections.
    pub fn on_resolved(
        &mut self,
        attempt: u64,
        result: io::Result<Vec<SocketAddr>>,
        now: Instant,
    ) -> Result<()> {
        if let Upgrade::Connecting { connector, attempt: a } = &mut self.upgrade {
            if *a == attempt {
                if let Err(e) = connector.on_resolved(&self.registry, result, now) {
                    self.give_up_upgrade(&e);
                }
                return Ok(());
            }
        }
        for slot in [&mut self.get, &mut self.post] {
            if let Slot::Connecting { connector, attempt: a, .. } = slot {
                if *a == attempt {
                    return connector.on_resolved(&self.registry, result, now);
                }
            }
        }
        Ok(())
    }

    /// Advances one slot; returns a complete response.
    fn advance(
        slot: &mut Slot,
        registry: &Registry,
        deadline: Instant,
        limits: &Limits,
        scratch: &mut [u8],
        now: Instant,
    ) -> Result<Option<Response>> {
        loop {
            match slot {
                Slot::Idle => return Ok(None),
                Slot::Connecting { connector, request, .. } => {
                    match connector.on_ready(registry, now)? {
                        Progress::Pending => return Ok(None),
                        Progress::Ready(stream) => {
                            let parser =
                                ResponseParser::new(limits.max_http_head, limits.max_http_body);
                            let exchange = Exchange::new(request.encode(""), parser);
                            *slot = Slot::Exchanging { stream, exchange, deadline };
                        }
                    }
                }
                Slot::Exchanging { stream, exchange, .. } => {
                    match exchange.drive(stream, scratch)? {
                        None => return Ok(None),
                        Some(response) => {
                            let _ = registry.deregister(stream.tcp_mut());
                            stream.shutdown();
                            *slot = Slot::Idle;
                            return Ok(Some(response));
                        }
                    }
                }
            }
        }
    }

    fn remember_cookies(&mut self, response: &Response) {
        for c in response.headers_all("set-cookie") {
            self.jar.store(&self.base, c);
        }
    }

    fn check(response: &Response, what: &str) -> Result<()> {
        if response.status == 200 {
            return Ok(());
        }
        let body: String = String::from_utf8_lossy(&response.body).chars().take(200).collect();
        Err(Error::new(
            ErrorCode::HttpStatus,
            format!(
                "polling {what} answered HTTP {} {}: {}",
                response.status,
                response.reason,
                body.trim()
            ),
        ))
    }

    /// Reads what the GET brought, hands each packet to `on_message` as a frame, sends
    /// the answers, and keeps one GET and (when there is something to send) one POST going.
    pub fn read(
        &mut self,
        now: Instant,
        scratch: &mut [u8],
        on_message: &mut dyn FnMut(Incoming<'_>) -> Result<Answers>,
    ) -> Result<ReadOutcome> {
        let get_deadline = now + self.hold;
        if let Some(response) =
            Self::advance(&mut self.get, &self.registry, get_deadline, &self.limits, scratch, now)?
        {
            self.remember_cookies(&response);
            Self::check(&response, "GET")?;
            if self.sid.is_none() && !response.body.starts_with(b"0{") {
                // An engine.io 3 server ignores EIO=4 and frames its payloads the v3 way.
                self.version = Version::V3;
            }
            for packet in codec::decode_payload(&response.body, self.version)? {
                let answers = match packet {
                    codec::Packet::Text(kind, data) => {
                        if kind == PacketType::Open && self.sid.is_none() {
                            let info = OpenInfo::parse(&data)?;
                            self.hold =
                                info.ping_interval + info.ping_timeout + Duration::from_secs(5);
                            if !info.upgrades.iter().any(|u| u == "websocket") {
                                self.upgrade = Upgrade::Off; // not offered: stay on polling
                            }
                            self.sid = Some(info.sid);
                        }
                        if kind == PacketType::Close {
                            self.closing = true;
                        }
                        on_message(Incoming::Text(&codec::encode_text(kind, &data)))?
                    }
                    codec::Packet::Binary(data) => {
                        on_message(Incoming::Binary(&codec::encode_binary(&data, self.version)))?
                    }
                };
                for (m, budget) in answers {
                    self.write(m, budget)?;
                }
            }
            if self.sid.is_none() {
                return Err(Error::new(
                    ErrorCode::Protocol,
                    "the first poll brought no open packet",
                ));
            }
            if !self.closing && !self.pausing() {
                self.get = self.open_slot(None, now)?;
            }
        }
        let post_deadline = now + self.timeouts.handshake;
        if let Some(response) = Self::advance(
            &mut self.post,
            &self.registry,
            post_deadline,
            &self.limits,
            scratch,
            now,
        )? {
            self.remember_cookies(&response);
            Self::check(&response, "POST")?;
            self.released += std::mem::take(&mut self.post_budget);
        }
        // After both slots: the upgrade may be waiting for either of them to finish, and
        // no further readiness would come to tell it.
        self.drive_upgrade(now, scratch, on_message)?;
        self.post_if_idle(now)?;
        if self.closing && matches!(self.post, Slot::Idle) && self.outbox.is_empty() {
            return Ok(ReadOutcome::Closed(1000, String::new()));
        }
        Ok(ReadOutcome::Drained)
    }

    /// Whether polling is winding down for the move to the WebSocket.
    fn pausing(&self) -> bool {
        matches!(self.upgrade, Upgrade::Pausing { .. } | Upgrade::Done(_))
    }

    fn give_up_upgrade(&mut self, why: &Error) {
        log::info!("session {}: staying on long-polling: {}", self.id, why.message);
        self.abandon_upgrade();
    }

    fn abandon_upgrade(&mut self) {
        match std::mem::replace(&mut self.upgrade, Upgrade::Off) {
            Upgrade::Connecting { mut connector, .. } => connector.abandon(&self.registry),
            Upgrade::Exchanging { mut stream, .. } => {
                let _ = self.registry.deregister(stream.tcp_mut());
                stream.shutdown();
            }
            Upgrade::Probing { mut link, .. }
            | Upgrade::Pausing { mut link, .. }
            | Upgrade::Done(mut link) => {
                let _ = self.registry.deregister(link.stream_mut().tcp_mut());
                link.shutdown();
            }
            Upgrade::Off | Upgrade::Wanted => {}
        }
    }

    /// The WebSocket URL for the upgrade: same host and path, transport=websocket, our sid.
    fn upgrade_url(&self, sid: &str) -> Url {
        let mut url = self.base.clone();
        url.scheme = if url.scheme.is_tls() { Scheme::Wss } else { Scheme::Ws };
        url.target = url.target.replace("transport=polling", "transport=websocket");
        url.target.push_str("&sid=");
        url.target.push_str(sid);
        url
    }

    fn start_upgrade(&mut self, now: Instant) -> Result<()> {
        let Some(sid) = self.sid.clone() else { return Ok(()) };
        let url = self.upgrade_url(&sid);
        let (connector, attempt) = self.connect(&url, now)?;
        self.upgrade = Upgrade::Connecting { connector, attempt };
        Ok(())
    }

    /// Advances the upgrade as far as it goes; failures only end the upgrade attempt.
    fn drive_upgrade(
        &mut self,
        now: Instant,
        scratch: &mut [u8],
        on_message: &mut dyn FnMut(Incoming<'_>) -> Result<Answers>,
    ) -> Result<()> {
        if let Err(e) = self.try_upgrade(now, scratch, on_message) {
            if matches!(self.upgrade, Upgrade::Pausing { .. }) {
                // Polling already stopped: the session cannot go back.
                return Err(e);
            }
            self.give_up_upgrade(&e);
            if !self.closing && matches!(self.get, Slot::Idle) && self.sid.is_some() {
                self.get = self.open_slot(None, now)?;
            }
        }
        Ok(())
    }

    fn try_upgrade(
        &mut self,
        now: Instant,
        scratch: &mut [u8],
        on_message: &mut dyn FnMut(Incoming<'_>) -> Result<Answers>,
    ) -> Result<()> {
        loop {
            match &mut self.upgrade {
                Upgrade::Off | Upgrade::Done(_) => return Ok(()),
                Upgrade::Wanted => {
                    if self.sid.is_none() || self.closing {
                        return Ok(());
                    }
                    self.start_upgrade(now)?;
                }
                Upgrade::Connecting { connector, .. } => {
                    match connector.on_ready(&self.registry, now)? {
                        Progress::Pending => return Ok(()),
                        Progress::Ready(stream) => {
                            let sid = self.sid.clone().unwrap_or_default();
                            let up = handshake::request(&self.upgrade_url(&sid), &self.config);
                            let parser = ResponseParser::new(self.limits.max_http_head, 64 << 10);
                            let exchange = Exchange::new(
                                up.request.encode(&self.jar.header_for(&self.base)),
                                parser,
                            );
                            let deadline = now + self.timeouts.handshake;
                            self.upgrade =
                                Upgrade::Exchanging { stream, exchange, key: up.key, deadline };
                        }
                    }
                }
                Upgrade::Exchanging { stream, exchange, key, .. } => {
                    match exchange.drive(stream, scratch)? {
                        None => return Ok(()),
                        Some(response) => {
                            handshake::validate(&response, key, &self.config.subprotocols)?;
                            let Upgrade::Exchanging { stream, mut exchange, .. } =
                                std::mem::replace(&mut self.upgrade, Upgrade::Off)
                            else {
                                return Ok(());
                            };
                            let mut link = Box::new(Link::new(
                                stream,
                                exchange.take_leftover(),
                                &self.limits,
                                now,
                            ));
                            link.write(
                                Message::text(codec::encode_text(PacketType::Ping, "probe")),
                                0,
                            )?;
                            link.flush()?;
                            let deadline = now + self.timeouts.handshake;
                            self.upgrade = Upgrade::Probing { link, deadline };
                        }
                    }
                }
                Upgrade::Probing { link, .. } => {
                    let mut answered = false;
                    let outcome = link.read(16, now, &mut |m| {
                        if let Incoming::Text(t) = m {
                            answered |= t == "3probe";
                        }
                        Ok(Vec::new())
                    })?;
                    if let ReadOutcome::Closed(code, _) = outcome {
                        return Err(Error::new(
                            ErrorCode::Protocol,
                            format!("the probe socket closed ({code})"),
                        ));
                    }
                    if !answered {
                        return Ok(());
                    }
                    let Upgrade::Probing { link, .. } =
                        std::mem::replace(&mut self.upgrade, Upgrade::Off)
                    else {
                        return Ok(());
                    };
                    let deadline = now + self.hold;
                    self.upgrade = Upgrade::Pausing { link, deadline };
                }
                Upgrade::Pausing { link, .. } => {
                    // The held GET comes back (the server answers it with a noop) and the
                    // last POST completes; then the WebSocket takes over.
                    if !matches!(self.get, Slot::Idle) || !matches!(self.post, Slot::Idle) {
                        return Ok(());
                    }
                    link.write(Message::text(codec::encode_text(PacketType::Upgrade, "")), 0)?;
                    for packet in self.outbox.drain(..) {
                        let m = match packet {
                            codec::Packet::Text(kind, data) => {
                                Message::text(codec::encode_text(kind, &data))
                            }
                            codec::Packet::Binary(data) => {
                                Message::binary(codec::encode_binary(&data, self.version))
                            }
                        };
                        link.write(m, 0)?;
                    }
                    self.released += std::mem::take(&mut self.outbox_budget);
                    link.flush()?;
                    let Upgrade::Pausing { link, .. } =
                        std::mem::replace(&mut self.upgrade, Upgrade::Off)
                    else {
                        return Ok(());
                    };
                    log::info!("session {}: upgraded from long-polling to WebSocket", self.id);
                    self.upgrade = Upgrade::Done(link);
                    let _ = on_message; // frames from now on arrive through the link
                    return Ok(());
                }
            }
        }
    }

    /// The WebSocket link, once the upgrade finished: the session carries on over it.
    pub fn take_upgraded(&mut self) -> Option<Link> {
        if !matches!(self.upgrade, Upgrade::Done(_)) {
            return None;
        }
        match std::mem::replace(&mut self.upgrade, Upgrade::Off) {
            Upgrade::Done(link) => Some(*link),
            _ => None,
        }
    }

    fn post_if_idle(&mut self, now: Instant) -> Result<()> {
        if self.pausing() {
            return Ok(()); // held for the WebSocket
        }
        if !matches!(self.post, Slot::Idle) || self.outbox.is_empty() || self.sid.is_none() {
            return Ok(());
        }
        let body = codec::encode_payload(&self.outbox, self.version);
        self.outbox.clear();
        self.post_budget = std::mem::take(&mut self.outbox_budget);
        self.post = self.open_slot(Some(body), now)?;
        Ok(())
    }

    /// Queues a frame (one Engine.IO packet) for the next POST.
    pub fn write(&mut self, msg: Message, budget: usize) -> Result<()> {
        let packet = match msg {
            Message::Text(t) => codec::decode_text(t.as_str())?,
            Message::Binary(b) => codec::decode_binary(&b, self.version)?,
            _ => return Ok(()),
        };
        self.outbox.push(packet);
        self.outbox_budget += budget;
        Ok(())
    }

    /// Starts a POST if one can go; returns the send budget of completed POSTs.
    pub fn flush(&mut self) -> Result<Option<usize>> {
        self.post_if_idle(Instant::now())?;
        Ok(Some(std::mem::take(&mut self.released)))
    }

    /// Sends the Engine.IO close packet; the transport ends once it is posted.
    pub fn close(&mut self) -> Result<()> {
        if !self.closing {
            self.closing = true;
            self.outbox.push(codec::Packet::Text(PacketType::Close, String::new()));
            self.post_if_idle(Instant::now())?;
        }
        Ok(())
    }

    /// Enforces the connections' deadlines; returns the next one.
    pub fn check_deadlines(&mut self, now: Instant) -> Result<Option<Instant>> {
        let upgrade_late = match &mut self.upgrade {
            Upgrade::Connecting { connector, .. } => {
                connector.on_timeout(&self.registry, now).err()
            }
            Upgrade::Exchanging { deadline, .. } | Upgrade::Probing { deadline, .. }
                if now >= *deadline =>
            {
                Some(Error::new(ErrorCode::Timeout, "the WebSocket upgrade took too long"))
            }
            Upgrade::Pausing { deadline, .. } if now >= *deadline => {
                return Err(Error::new(ErrorCode::Timeout, "the upgrade pause never ended"));
            }
            _ => None,
        };
        if let Some(e) = upgrade_late {
            self.give_up_upgrade(&e);
        }
        for slot in [&mut self.get, &mut self.post] {
            match slot {
                Slot::Connecting { connector, .. } => connector.on_timeout(&self.registry, now)?,
                Slot::Exchanging { deadline, .. } if now >= *deadline => {
                    return Err(Error::new(
                        ErrorCode::Timeout,
                        "a long-polling request got no answer in time",
                    ));
                }
                _ => {}
            }
        }
        Ok(self.deadline())
    }

    /// The earliest connection deadline.
    pub fn deadline(&self) -> Option<Instant> {
        let upgrade = match &self.upgrade {
            Upgrade::Connecting { connector, .. } => Some(connector.deadline()),
            Upgrade::Exchanging { deadline, .. }
            | Upgrade::Probing { deadline, .. }
            | Upgrade::Pausing { deadline, .. } => Some(*deadline),
            _ => None,
        };
        [slot_deadline(&self.get), slot_deadline(&self.post), upgrade].into_iter().flatten().min()
    }

    /// Closes both connections.
    pub fn abandon(&mut self) {
        self.abandon_upgrade();
        for slot in [&mut self.get, &mut self.post] {
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
}
