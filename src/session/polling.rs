//! The Engine.IO long-polling transport: a GET that the server holds until it has packets,
//! and a POST for what the client sends, each on its own connection, at most one of each
//! in flight (engine-io protocol). It offers the session the same interface as a WebSocket
//! link, one Engine.IO packet per "frame", so the Socket.IO driver does not know which
//! transport carries it.

use super::requester::{Requester, Slot, expect_ok};
use crate::config::SessionConfig;
use crate::engineio::codec::{self, OpenInfo, PacketType, Version};
use crate::error::{Error, ErrorCode, Result};
use crate::http::{Exchange, Request, ResponseParser};
use crate::net::{Connector, Progress, Stream};
use crate::url::{Scheme, Url};
use crate::ws::handshake;
use crate::ws::link::{Answers, Incoming, Link, ReadOutcome};
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tungstenite::Message;

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

/// A long-polling Engine.IO connection.
pub struct Poller {
    http: Requester,
    base: Url,
    version: Version,
    sid: Option<String>,
    /// How long the server may hold a GET (pingInterval + pingTimeout, once known).
    hold: Duration,
    seq: u64,
    get: Slot,
    post: Slot,
    outbox: Vec<codec::Packet>,
    outbox_budget: usize,
    post_budget: usize,
    released: usize,
    closing: bool,
    config: SessionConfig,
    upgrade: Upgrade,
}

impl Poller {
    /// Starts the handshake GET at `base` (`.../?EIO=..&transport=polling[&...]`).
    pub fn start(
        http: Requester,
        config: &SessionConfig,
        base: Url,
        upgrade: bool,
        now: Instant,
    ) -> Result<Poller> {
        let version = if base.target.contains("EIO=3") { Version::V3 } else { Version::V4 };
        let mut p = Poller {
            hold: http.timeouts.handshake,
            http,
            base,
            version,
            sid: None,
            seq: 0,
            get: Slot::Idle,
            post: Slot::Idle,
            outbox: Vec::new(),
            outbox_budget: 0,
            post_budget: 0,
            released: 0,
            closing: false,
            config: config.clone(),
            upgrade: if upgrade { Upgrade::Wanted } else { Upgrade::Off },
        };
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
        self.http.request(url, body.map(String::into_bytes))
    }

    fn open_slot(&mut self, body: Option<String>, now: Instant) -> Result<Slot> {
        let request = self.request(body);
        self.http.open(request, now)
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
                if let Err(e) = connector.on_resolved(self.http.registry(), result, now) {
                    self.give_up_upgrade(&e);
                }
                return Ok(());
            }
        }
        self.http.on_resolved_any([&mut self.get, &mut self.post], attempt, result, now)
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
        if let Some(response) = self.http.advance(&mut self.get, get_deadline, scratch, now)? {
            self.http.remember_cookies(&self.base, &response);
            expect_ok(&response, "polling GET")?;
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
        let post_deadline = now + self.http.timeouts.handshake;
        if let Some(response) = self.http.advance(&mut self.post, post_deadline, scratch, now)? {
            self.http.remember_cookies(&self.base, &response);
            expect_ok(&response, "polling POST")?;
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
        log::info!("session {}: staying on long-polling: {}", self.http.id, why.message);
        self.abandon_upgrade();
    }

    fn abandon_upgrade(&mut self) {
        match std::mem::replace(&mut self.upgrade, Upgrade::Off) {
            Upgrade::Connecting { mut connector, .. } => connector.abandon(self.http.registry()),
            Upgrade::Exchanging { mut stream, .. } => {
                let _ = self.http.registry().deregister(stream.tcp_mut());
                stream.shutdown();
            }
            Upgrade::Probing { mut link, .. }
            | Upgrade::Pausing { mut link, .. }
            | Upgrade::Done(mut link) => {
                let _ = self.http.registry().deregister(link.stream_mut().tcp_mut());
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
        let (connector, attempt) = self.http.connect(&url, now)?;
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
                    match connector.on_ready(self.http.registry(), now)? {
                        Progress::Pending => return Ok(()),
                        Progress::Ready(stream) => {
                            let sid = self.sid.clone().unwrap_or_default();
                            let up = handshake::request(&self.upgrade_url(&sid), &self.config);
                            let parser =
                                ResponseParser::new(self.http.limits.max_http_head, 64 << 10);
                            let exchange = Exchange::new(
                                up.request.encode(&self.http.jar.header_for(&self.base)),
                                parser,
                            );
                            let deadline = now + self.http.timeouts.handshake;
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
                                &self.http.limits,
                                now,
                            ));
                            link.write(
                                Message::text(codec::encode_text(PacketType::Ping, "probe")),
                                0,
                            )?;
                            link.flush()?;
                            let deadline = now + self.http.timeouts.handshake;
                            self.upgrade = Upgrade::Probing { link, deadline };
                        }
                    }
                }
                Upgrade::Probing { link, .. } => {
                    let mut answered = false;
                    let outcome = link.read(16, now, scratch, &mut |m| {
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
                    log::info!("session {}: upgraded from long-polling to WebSocket", self.http.id);
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
                connector.on_timeout(self.http.registry(), now).err()
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
            self.http.check_deadline(slot, now, "a long-polling request")?;
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
        [self.get.deadline(), self.post.deadline(), upgrade].into_iter().flatten().min()
    }

    /// Closes both connections.
    pub fn abandon(&mut self) {
        self.abandon_upgrade();
        for slot in [&mut self.get, &mut self.post] {
            self.http.abandon(slot);
        }
    }
}
