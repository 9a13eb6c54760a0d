//! Navixy live tracking (PROTOCOLS.md §5): authenticate with an API key hash, or log in
//! with user and password (`POST <base>/user/auth`) for a session hash; open the Atmosphere
//! socket at `<base>/event/subscription`; send the `subscribe` action with the requests;
//! deliver responses, events and errors; resubscribe after every reconnect; `unsubscribe`
//! before closing.
//!
//! The session URL is the API base (`https://api.eu.navixy.com/v2`). Options: `token` (an
//! API key or session hash), or `user` + `password`; `subscribe` (repeatable request types:
//! `state`, `state_batch`, `readings_batch`, `iot_monitor`; default `state_batch`);
//! `device` (repeatable tracker ids; all trackers when none — `state` and `iot_monitor`
//! need ids); `rate_limit` (e.g. `5s`); `format` (`compact` or `full`); `sensor_type`
//! (readings_batch); and the Atmosphere options of [`crate::atmosphere::engine`].
//!
//! Events: `EVENT` with type `event` and the event name as topic (`state_batch`,
//! `lifecycle`, `logout`, ...), the payload being the message's `data`; type `response`
//! (topic: the action) with the whole reply, per-tracker statuses in
//! `/data/<event>/value`. The session opens when the first subscription is answered.
//! A wrong hash (error 3) or an ended session (error 4), or a `logout` event, log in again
//! once when credentials allow, else end the session with `AUTH`.

use crate::atmosphere::driver::{heartbeat, step_for};
use crate::atmosphere::{Engine, Settings};
use crate::config::SessionConfig;
use crate::error::{Error, ErrorCode, Result};
use crate::event::{Event, EventKind};
use crate::http::{Request, Response};
use crate::session::command::Outbound;
use crate::session::driver::{Driver, Io, Step};
use crate::url::{Scheme, Url};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use std::borrow::Cow;
use std::collections::HashMap;
use std::time::Instant;
use tungstenite::Message;

/// The request types Navixy's subscribe action knows.
pub const REQUEST_TYPES: &[&str] = &["state", "state_batch", "readings_batch", "iot_monitor"];

/// What a subscription asks for, from the options.
#[derive(Clone, Debug)]
pub struct Requests {
    trackers: Vec<u64>,
    rate_limit: Option<String>,
    format: Option<String>,
    sensor_type: Option<String>,
}

impl Requests {
    /// Reads `device`, `rate_limit`, `format` and `sensor_type`.
    pub fn from_config(config: &SessionConfig) -> Result<Requests> {
        let trackers = config
            .option_values("device")
            .map(|d| {
                d.trim().parse::<u64>().map_err(|_| {
                    Error::new(ErrorCode::InvalidParameter, "Navixy tracker ids are numbers")
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Requests {
            trackers,
            rate_limit: config.option("rate_limit").map(str::to_string),
            format: config.option("format").map(str::to_string),
            sensor_type: config.option("sensor_type").map(str::to_string),
        })
    }

    /// The request object for one type (PROTOCOLS.md §5.6).
    pub fn request(&self, kind: &str) -> Result<Value> {
        let needs_ids =
            |why: &str| Error::new(ErrorCode::InvalidParameter, format!("Navixy `{kind}` {why}"));
        let target = if self.trackers.is_empty() {
            json!({ "type": "all" })
        } else {
            json!({ "type": "selected", "tracker_ids": self.trackers })
        };
        let mut r = match kind {
            "state" if self.trackers.is_empty() => {
                return Err(needs_ids("needs tracker ids (device); state_batch covers all"));
            }
            "state" => json!({ "type": "state", "trackers": self.trackers }),
            "iot_monitor" if self.trackers.is_empty() || self.trackers.len() > 10 => {
                return Err(needs_ids("needs 1 to 10 tracker ids (device)"));
            }
            "state_batch" | "readings_batch" | "iot_monitor" => {
                json!({ "type": kind, "target": target })
            }
            _ => {
                return Err(Error::new(
                    ErrorCode::InvalidParameter,
                    format!("unknown Navixy request type `{kind}` (one of {REQUEST_TYPES:?})"),
                ));
            }
        };
        if kind != "state" {
            if let Some(rl) = &self.rate_limit {
                r["rate_limit"] = Value::String(rl.clone());
            }
        }
        if matches!(kind, "state" | "state_batch") {
            if let Some(f) = &self.format {
                r["format"] = Value::String(f.clone());
            }
        }
        if kind == "readings_batch" {
            if let Some(s) = &self.sensor_type {
                r["sensor_type"] = Value::String(s.clone());
            }
        }
        Ok(r)
    }
}

/// What a server message means for the session.
#[derive(Debug, PartialEq, Eq)]
pub enum Mapped<'a> {
    /// A live event: name and its `data`.
    Event(String, &'a str),
    /// A reply to an action: the action and the whole message.
    Response(String),
    /// A refused action: the action, Navixy's error code and description.
    Error(String, i64, String),
}

/// Interprets one Navixy message (pure; fuzzed with the Atmosphere engine by
/// `fuzz/fuzz_targets/atmosphere_frames.rs`).
pub fn map_message(text: &str) -> Result<Mapped<'_>> {
    let bad = |why: String| Error::new(ErrorCode::Protocol, why);
    // Fields stay unparsed until needed; `data` is handed on as the server wrote it.
    let fields: HashMap<Cow<'_, str>, &RawValue> = serde_json::from_str(text)
        .map_err(|e| bad(format!("a Navixy message that is not a JSON object: {e}")))?;
    let string = |key: &str| -> Option<String> {
        fields.get(key).and_then(|raw| serde_json::from_str::<String>(raw.get()).ok())
    };
    let action = string("action").unwrap_or_else(|| "null".into());
    match string("type").as_deref() {
        Some("event") => {
            let name =
                string("event").ok_or_else(|| bad("a Navixy event without a name".into()))?;
            let data = fields.get("data").map_or("null", |raw| raw.get());
            Ok(Mapped::Event(name, data))
        }
        Some("response") => Ok(Mapped::Response(action)),
        Some("error") => {
            let status =
                fields.get("status").and_then(|raw| serde_json::from_str::<Value>(raw.get()).ok());
            let code = status.as_ref().and_then(|s| s.get("code")).and_then(Value::as_i64);
            let description = status
                .as_ref()
                .and_then(|s| s.get("description"))
                .and_then(Value::as_str)
                .unwrap_or("no description")
                .to_string();
            Ok(Mapped::Error(action, code.unwrap_or(0), description))
        }
        Some(other) => Err(bad(format!("an unknown Navixy message type `{other}`"))),
        None => Err(bad("a Navixy message without a type".into())),
    }
}

/// The Navixy profile.
pub struct NavixyDriver {
    engine: Engine,
    login_url: Url,
    /// The hash in use: the configured one, or the one the last login returned.
    hash: Option<String>,
    credentials: Option<(String, String)>,
    requests: Requests,
    /// Subscribed request types, renewed on every connection.
    kinds: Vec<String>,
    subscribed: bool,
    relogged: bool,
}

fn base_url(config: &SessionConfig) -> Result<(String, String)> {
    let url = config.url.trim_end_matches('/');
    let base = url.strip_suffix("/event/subscription").unwrap_or(url);
    let parsed = Url::parse(base)?;
    if !matches!(parsed.scheme, Scheme::Http | Scheme::Https) {
        return Err(Error::new(
            ErrorCode::InvalidParameter,
            "the Navixy URL is the API base, e.g. https://api.eu.navixy.com/v2",
        ));
    }
    Ok((format!("{base}/event/subscription"), format!("{base}/user/auth")))
}

impl NavixyDriver {
    /// Reads the options.
    pub fn new(config: &SessionConfig) -> Result<NavixyDriver> {
        let (subscription, login) = base_url(config)?;
        let engine = Engine::new(&subscription, Settings::from_config(config)?)?;
        let credentials = match (config.option("user"), config.option("password")) {
            (Some(u), Some(p)) => Some((u.to_string(), p.to_string())),
            _ => None,
        };
        let hash = config.option("token").map(str::to_string);
        if hash.is_none() && credentials.is_none() {
            return Err(Error::new(
                ErrorCode::InvalidParameter,
                "Navixy needs a hash (token) or credentials (user and password)",
            ));
        }
        let requests = Requests::from_config(config)?;
        let mut kinds: Vec<String> =
            config.option_values("subscribe").map(str::to_string).collect();
        if kinds.is_empty() {
            kinds.push("state_batch".into());
        }
        for k in &kinds {
            requests.request(k)?; // refuse a bad request type now, not on the wire
        }
        Ok(NavixyDriver {
            engine,
            login_url: Url::parse(&login)?,
            hash,
            credentials,
            requests,
            kinds,
            subscribed: false,
            relogged: false,
        })
    }

    fn action(&self, action: &str, kinds: &[String]) -> Result<String> {
        let requests =
            kinds.iter().map(|k| self.requests.request(k)).collect::<Result<Vec<_>>>()?;
        let hash = self.hash.as_deref().unwrap_or_default();
        Ok(json!({ "action": action, "hash": hash, "requests": requests }).to_string())
    }

    fn subscribe_all(&mut self, io: &mut Io<'_>) -> Result<()> {
        self.subscribed = false;
        let text = self.action("subscribe", &self.kinds)?;
        io.send(Message::text(text));
        Ok(())
    }

    /// A refused hash: log in again once if credentials allow, else end with `Auth`.
    fn auth_lost(&mut self, why: &str, io: &mut Io<'_>) -> Result<()> {
        if self.credentials.is_some() && !self.relogged {
            log::warn!("Navixy: {why}; logging in again");
            self.relogged = true;
            self.hash = None;
            io.restart(why);
            return Ok(());
        }
        Err(Error::new(ErrorCode::Auth, format!("Navixy: {why}")))
    }

    fn on_message(&mut self, text: &str, io: &mut Io<'_>) -> Result<()> {
        let state = io.state();
        let mapped = match map_message(text) {
            Ok(m) => m,
            Err(e) => {
                // One unreadable message does not end a live feed: report it and go on.
                log::warn!("Navixy: {e}");
                io.emit(&Event::new(EventKind::Error, state, e.message.as_bytes()).with_error(&e));
                return Ok(());
            }
        };
        match mapped {
            Mapped::Event(name, data) => {
                io.emit(
                    &Event::new(EventKind::Event, state, data.as_bytes())
                        .with_topic(&name)
                        .with_type("event"),
                );
                if name == "logout" {
                    let reason = serde_json::from_str::<String>(data).unwrap_or_default();
                    return self.auth_lost(&format!("logged out ({reason})"), io);
                }
            }
            Mapped::Response(action) => {
                io.emit(
                    &Event::new(EventKind::Event, state, text.as_bytes())
                        .with_topic(&action)
                        .with_type("response"),
                );
                if action == "subscription/subscribe" && !self.subscribed {
                    self.subscribed = true;
                    self.relogged = false;
                    io.open(self.engine.tracking_id());
                }
            }
            Mapped::Error(action, code, description) => {
                let why = format!("error {code} ({description}) for {action}");
                match code {
                    3 | 4 => return self.auth_lost(&why, io),
                    // A malformed or invalid request will not improve by repetition.
                    5 | 7 => return Err(Error::new(ErrorCode::InvalidParameter, why)),
                    _ if !self.subscribed && action == "subscription/subscribe" => {
                        return Err(Error::new(ErrorCode::Protocol, format!("Navixy: {why}")));
                    }
                    _ => {
                        let e = Error::new(ErrorCode::Protocol, format!("Navixy: {why}"));
                        io.emit(
                            &Event::new(EventKind::Error, state, e.message.as_bytes())
                                .with_error(&e),
                        );
                    }
                }
            }
        }
        Ok(())
    }
}

impl Driver for NavixyDriver {
    fn start(&mut self, _config: &SessionConfig) -> Result<Step> {
        self.subscribed = false;
        if self.hash.is_some() {
            let target = self.engine.connect();
            return Ok(step_for(target, &self.engine));
        }
        let Some((user, password)) = &self.credentials else {
            return Err(Error::new(ErrorCode::Auth, "no Navixy hash and no credentials"));
        };
        let body = json!({ "login": user, "password": password });
        Ok(Step::Http(Request::json("POST", self.login_url.clone(), &body)))
    }

    fn on_http_response(&mut self, response: Response, _io: &mut Io<'_>) -> Result<Step> {
        let reply: Option<Value> = serde_json::from_slice(&response.body).ok();
        let hash = reply.as_ref().and_then(|r| r.get("hash")).and_then(Value::as_str);
        let success = reply.as_ref().and_then(|r| r.get("success")).and_then(Value::as_bool);
        match (response.status, success, hash) {
            (200..=299, Some(true), Some(hash)) => {
                log::info!("Navixy: logged in");
                self.hash = Some(hash.to_string());
                let target = self.engine.connect();
                Ok(step_for(target, &self.engine))
            }
            (status, _, _) => {
                let description = reply
                    .as_ref()
                    .and_then(|r| r.pointer("/status/description"))
                    .and_then(Value::as_str)
                    .unwrap_or("no hash in the answer");
                let code = if status >= 500 { ErrorCode::HttpStatus } else { ErrorCode::Auth };
                Err(Error::new(code, format!("Navixy login failed (HTTP {status}): {description}")))
            }
        }
    }

    fn on_open(&mut self, _subprotocol: &str, io: &mut Io<'_>) -> Result<()> {
        if self.engine.on_connected(io.now) {
            self.subscribe_all(io)?;
        }
        Ok(())
    }

    fn on_text(&mut self, text: &str, io: &mut Io<'_>) -> Result<()> {
        let mut messages = Vec::new();
        let opened = self.engine.on_frame(text, io.now, &mut |m| messages.push(m.to_string()))?;
        if opened {
            self.subscribe_all(io)?;
        }
        for m in messages {
            self.on_message(&m, io)?;
        }
        Ok(())
    }

    fn on_binary(&mut self, _data: &[u8], _io: &mut Io<'_>) -> Result<()> {
        Err(Error::new(ErrorCode::Protocol, "Navixy sent a binary frame"))
    }

    fn on_send(&mut self, out: Outbound, io: &mut Io<'_>) -> Result<()> {
        match out {
            Outbound::Subscribe(kind) => {
                self.requests.request(&kind)?;
                if !self.kinds.contains(&kind) {
                    io.send(Message::text(self.action("subscribe", std::slice::from_ref(&kind))?));
                    self.kinds.push(kind);
                }
                Ok(())
            }
            Outbound::Unsubscribe(kind) => {
                if let Some(i) = self.kinds.iter().position(|k| *k == kind) {
                    io.send(Message::text(self.action("unsubscribe", &[kind])?));
                    self.kinds.remove(i);
                }
                Ok(())
            }
            Outbound::Message(m @ Message::Text(_)) => {
                io.send(m);
                Ok(())
            }
            _ => Err(Error::new(ErrorCode::NotSupported, "Navixy takes text actions only")),
        }
    }

    fn on_timer(&mut self, io: &mut Io<'_>) -> Result<()> {
        heartbeat(&mut self.engine, io)
    }

    fn deadline(&self) -> Option<Instant> {
        self.engine.deadline()
    }

    fn on_closing(&mut self, io: &mut Io<'_>) {
        if self.subscribed && !self.kinds.is_empty() {
            if let Ok(text) = self.action("unsubscribe", &self.kinds) {
                io.send(Message::text(text));
            }
        }
    }

    fn retry_now(&mut self, error: &Error) -> bool {
        self.engine.fall_back(error)
    }

    fn on_peer_close(&mut self, _code: u16, _reason: &str) -> Result<()> {
        self.engine.on_peer_close()
    }

    fn websocket_keepalive(&self) -> bool {
        false // Atmosphere heartbeats and the watchdog.
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_map_to_events_responses_and_errors() {
        let ev = r#"{"type":"event","event":"state_batch","data":[{"source_id":1}]}"#;
        assert_eq!(
            map_message(ev).unwrap(),
            Mapped::Event("state_batch".into(), r#"[{"source_id":1}]"#)
        );
        let resp = r#"{"type":"response","action":"subscription/subscribe","events":["state"]}"#;
        assert_eq!(map_message(resp).unwrap(), Mapped::Response("subscription/subscribe".into()));
        let err = r#"{"type":"error","action":"subscription/subscribe","status":{"code":3,"description":"Wrong hash"}}"#;
        assert_eq!(
            map_message(err).unwrap(),
            Mapped::Error("subscription/subscribe".into(), 3, "Wrong hash".into())
        );
        for bad in ["X", "[1]", r#"{"type":"weird"}"#, r#"{"type":"event"}"#, "{}"] {
            assert_eq!(map_message(bad).unwrap_err().code, ErrorCode::Protocol, "{bad}");
        }
    }

    #[test]
    fn requests_follow_the_documented_shapes() {
        let mut c = SessionConfig::new("https://api.example/v2");
        c.options.push(("rate_limit".into(), "5s".into()));
        let all = Requests::from_config(&c).unwrap();
        assert_eq!(
            all.request("state_batch").unwrap(),
            json!({"type":"state_batch","target":{"type":"all"},"rate_limit":"5s"})
        );
        assert_eq!(all.request("state").unwrap_err().code, ErrorCode::InvalidParameter);
        assert_eq!(all.request("bogus").unwrap_err().code, ErrorCode::InvalidParameter);
        c.options.push(("device".into(), "21080".into()));
        let some = Requests::from_config(&c).unwrap();
        assert_eq!(some.request("state").unwrap(), json!({"type":"state","trackers":[21080]}));
        assert_eq!(
            some.request("iot_monitor").unwrap(),
            json!({"type":"iot_monitor","target":{"type":"selected","tracker_ids":[21080]},"rate_limit":"5s"})
        );
        assert_eq!(
            base_url(&SessionConfig::new("https://api.example/v2/")).unwrap(),
            (
                "https://api.example/v2/event/subscription".to_string(),
                "https://api.example/v2/user/auth".to_string()
            )
        );
    }
}
