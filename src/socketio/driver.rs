//! The Socket.IO session driver, over the Engine.IO WebSocket transport.
//!
//! Version selection: the client asks for `EIO=4` (or what the `eio` option forces) and
//! reads the server's revision from its open packet: only revision 4 servers send
//! `maxPayload`. An engine.io 3 server ignores the `EIO` parameter and speaks revision 3,
//! so one connection suffices for both (PROTOCOLS.md §2.5 suggests probing EIO=3 first;
//! reading the open packet avoids the extra round trip).
//!
//! Options (`SessionConfig::options`): `namespace` (default: the URL path, else `/`),
//! `auth` (JSON object for the namespace connect, revision 5), `path` (default
//! `/socket.io/`), `query` (extra `k=v&...`), `eio` (`3`, `4` or `auto`), `transport`
//! (`websocket`; `polling` for Engine.IO long-polling; `upgrade` for long-polling first,
//! then a WebSocket once the server offers it, as socket.io's own client does).

use super::packet::{Header, Kind, Packet, check_placeholders, split_event};
use crate::config::SessionConfig;
use crate::engineio::codec::{self, OpenInfo, PacketType, Version};
use crate::engineio::heartbeat::{Beat, Heartbeat};
use crate::error::{Error, ErrorCode, Result};
use crate::event::{Event, EventKind};
use crate::session::command::{Emit, Outbound};
use crate::session::driver::{Driver, Io, Step};
use crate::url::{Scheme, Url};
use serde_json::Value;
use std::time::Instant;
use tungstenite::Message;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Membership {
    Joining,
    Joined,
}

struct Namespace {
    name: String,
    auth: Option<String>,
    state: Membership,
}

struct PendingAck {
    id: u64,
    namespace: String,
    deadline: Instant,
}

/// A binary packet waiting for its attachments.
struct Partial {
    packet: Packet,
    buffers: Vec<Vec<u8>>,
}

/// Drives a session as a Socket.IO client.
pub struct SocketIoDriver {
    url: Url,
    polling: bool,
    upgrade: bool,
    forced: Option<Version>,
    version: Version,
    primary: String,
    namespaces: Vec<Namespace>,
    heartbeat: Option<Heartbeat>,
    acks: Vec<PendingAck>,
    partial: Option<Partial>,
    reported_open: bool,
    /// Revision 4 servers join every client to `/` unasked; a later join of `/` is then
    /// answered at once.
    root_joined: bool,
    /// A platform's authentication step after joining the main namespace (see `Login`).
    login: Option<Login>,
    logged_in: bool,
    /// How the platform subscribes (events and argument key), and the live subscriptions,
    /// renewed on every new connection.
    subscriber: Option<Subscriber>,
    subscriptions: Vec<String>,
}

/// An event emitted after joining the main namespace, which the server answers with an
/// event of the same name whose first argument has `"status":"success"`
/// (thethings.io's `authenticate`). The feed opens only then.
pub struct Login {
    /// Event name.
    pub event: String,
    /// Arguments, a JSON array.
    pub args: String,
}

/// How a platform subscribes over Socket.IO: `subscribe`/`unsubscribe` events whose one
/// argument is `{key: topic}`.
pub struct Subscriber {
    /// Event that subscribes.
    pub subscribe: String,
    /// Event that unsubscribes.
    pub unsubscribe: String,
    /// The argument object's key for the topic.
    pub key: String,
}

fn protocol_error(why: impl Into<String>) -> Error {
    Error::new(ErrorCode::Protocol, why.into())
}

/// Splices `["event", args...]` from an event name and a JSON array text (already checked).
fn event_array(event: &str, args: &str) -> String {
    let inner = args.trim();
    let inner = inner.strip_prefix('[').and_then(|s| s.strip_suffix(']')).unwrap_or("").trim();
    let name = Value::String(event.to_string()).to_string();
    if inner.is_empty() { format!("[{name}]") } else { format!("[{name},{inner}]") }
}

impl SocketIoDriver {
    /// Reads the options; fails on a bad URL or an unsupported choice.
    pub fn new(config: &SessionConfig) -> Result<SocketIoDriver> {
        let bad = |why: &str| Error::new(ErrorCode::InvalidParameter, why.to_string());
        let mut url = Url::parse(&config.url)?;
        let namespace = match config.option("namespace") {
            Some(ns) => ns.to_string(),
            None if url.path() != "/" => url.path().trim_end_matches('/').to_string(),
            None => "/".to_string(),
        };
        if !namespace.starts_with('/') || namespace.contains([',', '?']) {
            return Err(bad("a namespace starts with `/` and has no `,` or `?`"));
        }
        let forced = match config.option("eio").unwrap_or("auto") {
            "auto" => None,
            "3" => Some(Version::V3),
            "4" => Some(Version::V4),
            _ => return Err(bad("option `eio` is 3, 4 or auto")),
        };
        // `upgrade`: what socket.io's own client does — long-polling first, then WebSocket.
        let (polling, upgrade) = match config.option("transport").unwrap_or("websocket") {
            "websocket" => (false, false),
            "polling" => (true, false),
            "upgrade" => (true, true),
            _ => return Err(bad("option `transport` is websocket, polling or upgrade")),
        };
        // `token` (lfcat --token) is shorthand for the auth object {"token": ...}.
        let auth = config.option("auth").map(str::to_string).or_else(|| {
            config.option("token").map(|t| serde_json::json!({ "token": t }).to_string())
        });
        if let Some(a) = &auth {
            if !serde_json::from_str::<Value>(a).is_ok_and(|v| v.is_object()) {
                return Err(bad("option `auth` must be a JSON object"));
            }
        }
        let path = config.option("path").unwrap_or("/socket.io/");
        let query = url.target.split_once('?').map(|(_, q)| q.to_string());
        let transport = if polling { "polling" } else { "websocket" };
        let mut target =
            format!("{path}?EIO={}&transport={transport}", forced.unwrap_or(Version::V4).query());
        for extra in [query.as_deref(), config.option("query")].into_iter().flatten() {
            if !extra.is_empty() {
                target.push('&');
                target.push_str(extra.trim_start_matches('?'));
            }
        }
        url.scheme = match (polling, url.scheme.is_tls()) {
            (false, true) => Scheme::Wss,
            (false, false) => Scheme::Ws,
            (true, true) => Scheme::Https,
            (true, false) => Scheme::Http,
        };
        url.target = target;
        Ok(SocketIoDriver {
            url,
            polling,
            upgrade,
            forced,
            version: forced.unwrap_or(Version::V4),
            primary: namespace.clone(),
            namespaces: vec![Namespace { name: namespace, auth, state: Membership::Joining }],
            heartbeat: None,
            acks: Vec::new(),
            partial: None,
            reported_open: false,
            root_joined: false,
            login: None,
            logged_in: false,
            subscriber: None,
            subscriptions: Vec::new(),
        })
    }

    /// Whether the login event was answered with success on this connection.
    pub fn logged_in(&self) -> bool {
        self.logged_in
    }

    /// Sets the authentication step (replacing an earlier one).
    pub fn set_login(&mut self, login: Login) {
        self.login = Some(login);
    }

    /// Sets how subscriptions are made, with the initial topics.
    pub fn set_subscriber(&mut self, subscriber: Subscriber, topics: Vec<String>) {
        self.subscriber = Some(subscriber);
        self.subscriptions = topics;
    }

    fn subscription_emit(&self, event: &str, topic: &str) -> Emit {
        let key = self.subscriber.as_ref().map_or("resource", |s| s.key.as_str());
        Emit {
            namespace: self.primary.clone(),
            event: event.to_string(),
            args: Value::Array(vec![serde_json::json!({ key: topic })]).to_string(),
            attachments: vec![],
            ack: None,
        }
    }

    /// The feed is ready: tell the host, then (re)subscribe everything.
    fn feed_open(&mut self, io: &mut Io<'_>) {
        self.reported_open = true;
        let primary = self.primary.clone();
        io.open(&primary);
        if let Some(sub) = &self.subscriber {
            let event = sub.subscribe.clone();
            for topic in self.subscriptions.clone() {
                let e = self.subscription_emit(&event, &topic);
                self.emit(e, io);
            }
        }
    }

    /// Checks the server's answer to the login event.
    fn on_login_answer(&mut self, args: &[Value], io: &mut Io<'_>) -> Result<()> {
        let status = args.first().and_then(|a| a.get("status")).and_then(Value::as_str);
        if status != Some("success") {
            let why = args
                .first()
                .and_then(|a| a.get("message"))
                .and_then(Value::as_str)
                .unwrap_or("no success status");
            return Err(Error::new(ErrorCode::Auth, format!("authentication refused: {why}")));
        }
        self.logged_in = true;
        self.feed_open(io);
        Ok(())
    }

    /// Revision 5 (Engine.IO 4) connects every namespace explicitly; revision 4 joins `/`
    /// by itself.
    fn connect_packet(&self, ns: &Namespace) -> Option<String> {
        if self.version == Version::V3 && ns.name == "/" {
            return None;
        }
        let p = Packet::new(Kind::Connect, &ns.name);
        let auth = if self.version == Version::V4 { ns.auth.as_deref() } else { None };
        Some(codec::encode_text(PacketType::Message, &p.encode_with_raw(auth)))
    }

    fn on_engine_open(&mut self, json: &str, io: &mut Io<'_>) -> Result<()> {
        if self.heartbeat.is_some() {
            return Err(protocol_error("a second Engine.IO open packet"));
        }
        let info = OpenInfo::parse(json)?;
        self.version = self.forced.unwrap_or(info.version());
        log::debug!(
            "Engine.IO revision {} (ping every {:?}, timeout {:?})",
            self.version.query(),
            info.ping_interval,
            info.ping_timeout
        );
        self.heartbeat = Some(Heartbeat::new(self.version, &info, io.now));
        let connects: Vec<String> =
            self.namespaces.iter().filter_map(|ns| self.connect_packet(ns)).collect();
        for c in connects {
            io.send(Message::text(c));
        }
        Ok(())
    }

    fn on_socketio(&mut self, text: &str, io: &mut Io<'_>) -> Result<()> {
        if self.partial.is_some() {
            return Err(protocol_error("a packet arrived while attachments were expected"));
        }
        let header = Header::parse(text)?;
        if header.kind == Kind::Event {
            return self.on_event(header, io);
        }
        let packet = Packet::decode(text)?;
        if packet.kind.is_binary() && packet.attachments > 0 {
            self.partial = Some(Partial { packet, buffers: Vec::new() });
            return Ok(());
        }
        self.deliver(packet, &[], io)
    }

    fn on_attachment(&mut self, data: Vec<u8>, io: &mut Io<'_>) -> Result<()> {
        let mut partial =
            self.partial.take().ok_or_else(|| protocol_error("a binary frame nobody announced"))?;
        partial.buffers.push(data);
        if partial.buffers.len() < partial.packet.attachments {
            self.partial = Some(partial);
            return Ok(());
        }
        self.deliver(partial.packet, &partial.buffers, io)
    }

    /// A (text) event: the hot path, handled without building a JSON tree.
    fn on_event(&mut self, h: Header<'_>, io: &mut Io<'_>) -> Result<()> {
        let (name, args) = split_event(h.json)?;
        let awaiting_login = self.login.as_ref().is_some_and(|l| l.event == name)
            && !self.logged_in
            && h.nsp == self.primary;
        if awaiting_login {
            let args: Vec<Value> = serde_json::from_str(&args)
                .map_err(|e| protocol_error(format!("bad login answer: {e}")))?;
            return self.on_login_answer(&args, io);
        }
        // Handles are nonzero: the server's ids start at 0.
        let handle = match h.id {
            None => 0,
            Some(id) => id
                .checked_add(1)
                .ok_or_else(|| protocol_error(format!("ack id {id} out of range")))?,
        };
        io.emit(
            &Event::new(EventKind::Event, io.state(), args.as_bytes())
                .with_topic(&name)
                .with_namespace(h.nsp)
                .with_ack_id(handle),
        );
        Ok(())
    }

    fn namespace_mut(&mut self, name: &str) -> Option<&mut Namespace> {
        self.namespaces.iter_mut().find(|n| n.name == name)
    }

    fn deliver(&mut self, packet: Packet, buffers: &[Vec<u8>], io: &mut Io<'_>) -> Result<()> {
        if let (true, Some(data)) = (packet.kind.is_binary(), &packet.data) {
            check_placeholders(data, packet.attachments)?;
        }
        let state = io.state();
        let nsp = packet.nsp.as_str();
        match packet.kind {
            Kind::Connect => {
                let Some(ns) = self.namespace_mut(nsp) else {
                    self.root_joined |= nsp == "/";
                    log::debug!("joined namespace {nsp} that was not asked for");
                    return Ok(());
                };
                ns.state = Membership::Joined;
                let data = packet.data.as_ref().map_or("{}".to_string(), Value::to_string);
                io.emit(
                    &Event::new(EventKind::Event, state, data.as_bytes())
                        .with_topic("connect")
                        .with_namespace(nsp),
                );
                if nsp == self.primary && !self.reported_open {
                    match &self.login {
                        Some(login) => {
                            let e = Emit {
                                namespace: self.primary.clone(),
                                event: login.event.clone(),
                                args: login.args.clone(),
                                attachments: vec![],
                                ack: None,
                            };
                            self.emit(e, io);
                        }
                        None => self.feed_open(io),
                    }
                }
            }
            Kind::Disconnect => {
                self.namespaces.retain(|n| n.name != nsp);
                io.emit(
                    &Event::new(EventKind::Event, state, b"[]")
                        .with_topic("disconnect")
                        .with_namespace(nsp),
                );
                if nsp == self.primary {
                    io.finish(1000, "the server disconnected the namespace");
                }
            }
            Kind::Event | Kind::BinaryEvent => {
                let Some(Value::Array(mut args)) = packet.data else {
                    return Err(protocol_error("an event without arguments"));
                };
                let name = match args.remove(0) {
                    Value::String(s) => s,
                    _ => return Err(protocol_error("an event name that is not a string")),
                };
                let awaiting_login = self.login.as_ref().is_some_and(|l| l.event == name)
                    && !self.logged_in
                    && nsp == self.primary;
                if awaiting_login {
                    return self.on_login_answer(&args, io);
                }
                let payload = Value::Array(args).to_string();
                // Handles are nonzero: the server's ids start at 0.
                let handle = match packet.id {
                    None => 0,
                    Some(id) => id
                        .checked_add(1)
                        .ok_or_else(|| protocol_error(format!("ack id {id} out of range")))?,
                };
                io.emit(
                    &Event::new(EventKind::Event, state, payload.as_bytes())
                        .with_topic(&name)
                        .with_namespace(nsp)
                        .with_ack_id(handle)
                        .with_attachments(buffers),
                );
            }
            Kind::Ack | Kind::BinaryAck => {
                let id = packet.id.unwrap_or(0);
                let Some(pos) = self.acks.iter().position(|a| a.id == id) else {
                    let e = protocol_error(format!("an acknowledgement for unknown id {id}"));
                    log::warn!("{e}");
                    io.emit(
                        &Event::new(EventKind::Error, state, e.message.as_bytes()).with_error(&e),
                    );
                    return Ok(());
                };
                self.acks.remove(pos);
                let payload = packet.data.as_ref().map_or("[]".to_string(), Value::to_string);
                io.emit(
                    &Event::new(EventKind::Ack, state, payload.as_bytes())
                        .with_namespace(nsp)
                        .with_ack_id(id)
                        .with_attachments(buffers),
                );
            }
            Kind::ConnectError => {
                let message = packet.error_message();
                let e = Error::new(
                    ErrorCode::Auth,
                    format!("joining namespace {nsp} was refused: {message}"),
                );
                if nsp == self.primary {
                    return Err(e); // the feed's own namespace: nothing left to run on
                }
                self.namespaces.retain(|n| n.name != nsp);
                io.emit(
                    &Event::new(EventKind::Error, state, e.message.as_bytes())
                        .with_error(&e)
                        .with_namespace(nsp),
                );
            }
        }
        Ok(())
    }

    fn send_packet(
        &self,
        packet: &Packet,
        json: Option<&str>,
        attachments: Vec<Vec<u8>>,
        io: &mut Io<'_>,
    ) {
        io.send(Message::text(codec::encode_text(
            PacketType::Message,
            &packet.encode_with_raw(json),
        )));
        for a in attachments {
            io.send(Message::binary(codec::encode_binary(&a, self.version)));
        }
    }

    /// The namespace a host call names; empty is the main one.
    fn resolve<'s>(&'s self, namespace: &'s str) -> &'s str {
        if namespace.is_empty() { &self.primary } else { namespace }
    }

    fn emit(&mut self, mut e: Emit, io: &mut Io<'_>) {
        e.namespace = self.resolve(&e.namespace).to_string();
        let binary = !e.attachments.is_empty();
        let mut p = Packet::new(if binary { Kind::BinaryEvent } else { Kind::Event }, &e.namespace);
        p.attachments = e.attachments.len();
        if let Some((id, timeout)) = e.ack {
            p.id = Some(id);
            self.acks.push(PendingAck {
                id,
                namespace: e.namespace.clone(),
                deadline: io.now + timeout,
            });
        }
        let json = event_array(&e.event, &e.args);
        self.send_packet(&p, Some(&json), e.attachments, io);
    }
}

impl SocketIoDriver {
    /// Starts a (re)connection: a new Engine.IO session, every namespace joins again and
    /// every subscription is renewed.
    pub fn begin(&mut self) -> Step {
        self.heartbeat = None;
        self.partial = None;
        // Acknowledgements still awaited stay: the new connection cannot answer them, so
        // each ends as a Timeout `Ack` event at its deadline, never silently.
        self.reported_open = false;
        self.root_joined = false;
        self.logged_in = false;
        for ns in &mut self.namespaces {
            ns.state = Membership::Joining;
        }
        if self.polling {
            Step::Polling(self.url.clone(), self.upgrade)
        } else {
            Step::WebSocket(self.url.clone())
        }
    }
}

impl Driver for SocketIoDriver {
    fn start(&mut self, _config: &SessionConfig) -> Result<Step> {
        Ok(self.begin())
    }

    fn on_open(&mut self, _subprotocol: &str, _io: &mut Io<'_>) -> Result<()> {
        Ok(()) // the feed opens when the namespace is joined
    }

    fn on_text(&mut self, text: &str, io: &mut Io<'_>) -> Result<()> {
        let codec::Packet::Text(kind, data) = codec::decode_text(text)? else {
            return Err(protocol_error("unexpected Engine.IO packet"));
        };
        if let Some(hb) = &mut self.heartbeat {
            hb.on_packet(io.now);
        } else if kind != PacketType::Open {
            return Err(protocol_error("Engine.IO traffic before the open packet"));
        }
        match kind {
            PacketType::Open => self.on_engine_open(&data, io),
            PacketType::Ping => {
                io.send(Message::text(codec::encode_text(PacketType::Pong, &data)));
                Ok(())
            }
            PacketType::Pong => {
                if let Some(hb) = &mut self.heartbeat {
                    hb.on_pong();
                }
                Ok(())
            }
            PacketType::Message => self.on_socketio(&data, io),
            PacketType::Close => {
                io.finish(1000, "the server closed the Engine.IO session");
                Ok(())
            }
            PacketType::Upgrade | PacketType::Noop => Ok(()),
        }
    }

    fn on_binary(&mut self, data: &[u8], io: &mut Io<'_>) -> Result<()> {
        match codec::decode_binary(data, self.version)? {
            codec::Packet::Binary(b) => self.on_attachment(b, io),
            codec::Packet::Text(..) => Err(protocol_error("unexpected Engine.IO packet")),
        }
    }

    fn on_send(&mut self, out: Outbound, io: &mut Io<'_>) -> Result<()> {
        match out {
            Outbound::Emit(e) => self.emit(e, io),
            Outbound::Message(Message::Text(t)) => {
                let args = Value::Array(vec![Value::String(t.as_str().to_string())]).to_string();
                let e = Emit {
                    namespace: self.primary.clone(),
                    event: "message".into(),
                    args,
                    attachments: vec![],
                    ack: None,
                };
                self.emit(e, io);
            }
            Outbound::Message(Message::Binary(b)) => {
                let e = Emit {
                    namespace: self.primary.clone(),
                    event: "message".into(),
                    args: r#"[{"_placeholder":true,"num":0}]"#.into(),
                    attachments: vec![b.to_vec()],
                    ack: None,
                };
                self.emit(e, io);
            }
            Outbound::Message(_) => {}
            Outbound::Ack { namespace, id, args, attachments } => {
                let binary = !attachments.is_empty();
                let namespace = self.resolve(&namespace).to_string();
                let mut p =
                    Packet::new(if binary { Kind::BinaryAck } else { Kind::Ack }, &namespace);
                p.id = Some(id.saturating_sub(1)); // handles are the server's id + 1
                p.attachments = attachments.len();
                self.send_packet(&p, Some(args.trim()), attachments, io);
            }
            Outbound::Join { namespace, auth } => {
                if self.namespaces.iter().any(|n| n.name == namespace) {
                    return Ok(());
                }
                let mut ns = Namespace { name: namespace, auth, state: Membership::Joining };
                match self.connect_packet(&ns) {
                    Some(c) => io.send(Message::text(c)),
                    None if self.root_joined => {
                        ns.state = Membership::Joined;
                        io.emit(
                            &Event::new(EventKind::Event, io.state(), b"{}")
                                .with_topic("connect")
                                .with_namespace("/"),
                        );
                    }
                    None => {} // the server's own join of `/` is still to come
                }
                self.namespaces.push(ns);
            }
            Outbound::Subscribe(topic) => {
                let Some(sub) = &self.subscriber else {
                    return Err(Error::new(
                        ErrorCode::NotSupported,
                        "this session has no subscriptions",
                    ));
                };
                let event = sub.subscribe.clone();
                if !self.subscriptions.contains(&topic) {
                    self.subscriptions.push(topic.clone());
                }
                let e = self.subscription_emit(&event, &topic);
                self.emit(e, io);
            }
            Outbound::Unsubscribe(topic) => {
                let Some(sub) = &self.subscriber else {
                    return Err(Error::new(
                        ErrorCode::NotSupported,
                        "this session has no subscriptions",
                    ));
                };
                let event = sub.unsubscribe.clone();
                self.subscriptions.retain(|t| *t != topic);
                let e = self.subscription_emit(&event, &topic);
                self.emit(e, io);
            }
            Outbound::Leave { namespace } => {
                if let Some(pos) = self.namespaces.iter().position(|n| n.name == namespace) {
                    let ns = self.namespaces.remove(pos);
                    if ns.state == Membership::Joined || self.version == Version::V4 {
                        let p = Packet::new(Kind::Disconnect, &ns.name);
                        self.send_packet(&p, None, vec![], io);
                    }
                }
            }
        }
        Ok(())
    }

    fn on_timer(&mut self, io: &mut Io<'_>) -> Result<()> {
        if let Some(hb) = &mut self.heartbeat {
            if hb.poll(io.now)? == Beat::SendPing {
                io.send(Message::text(codec::encode_text(PacketType::Ping, "")));
            }
        }
        let now = io.now;
        let state = io.state();
        let (expired, kept): (Vec<_>, Vec<_>) =
            self.acks.drain(..).partition(|a| a.deadline <= now);
        self.acks = kept;
        for a in expired {
            let e = Error::new(ErrorCode::Timeout, format!("no acknowledgement for emit {}", a.id));
            io.emit(
                &Event::new(EventKind::Ack, state, e.message.as_bytes())
                    .with_error(&e)
                    .with_namespace(&a.namespace)
                    .with_ack_id(a.id),
            );
        }
        Ok(())
    }

    fn deadline(&self) -> Option<Instant> {
        let ack = self.acks.iter().map(|a| a.deadline).min();
        let beat = self.heartbeat.as_ref().map(Heartbeat::deadline);
        match (ack, beat) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn on_end(&mut self, io: &mut Io<'_>) {
        let state = io.state();
        for a in self.acks.drain(..) {
            let e = Error::new(
                ErrorCode::Closed,
                format!("the session ended before emit {} was acknowledged", a.id),
            );
            io.emit(
                &Event::new(EventKind::Ack, state, e.message.as_bytes())
                    .with_error(&e)
                    .with_namespace(&a.namespace)
                    .with_ack_id(a.id),
            );
        }
    }

    fn websocket_keepalive(&self) -> bool {
        false // Engine.IO's heartbeat is the liveness check
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splices_event_arrays() {
        assert_eq!(event_array("e", "[]"), r#"["e"]"#);
        assert_eq!(event_array("e", r#" [1, {"a":2}] "#), r#"["e",1, {"a":2}]"#);
        assert_eq!(event_array("q\"", "[true]"), r#"["q\"",true]"#);
    }

    #[test]
    fn url_and_options() {
        let mut c = SessionConfig::new("https://ws.example.com/v2?x=1");
        c.protocol = crate::config::Protocol::SocketIo;
        let d = SocketIoDriver::new(&c).unwrap();
        assert_eq!(d.primary, "/v2");
        assert_eq!(d.url.scheme, Scheme::Wss);
        assert_eq!(d.url.target, "/socket.io/?EIO=4&transport=websocket&x=1");
        c.options.push(("eio".into(), "3".into()));
        c.options.push(("namespace".into(), "/".into()));
        let d = SocketIoDriver::new(&c).unwrap();
        assert_eq!(
            (d.primary.as_str(), d.url.target.starts_with("/socket.io/?EIO=3")),
            ("/", true)
        );
        c.options.push(("auth".into(), "[1]".into()));
        assert!(SocketIoDriver::new(&c).is_err());
    }
}
