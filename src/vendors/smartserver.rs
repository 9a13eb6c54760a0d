//! SmartServer IoT IAP/WS (PROTOCOLS.md §3): log in over REST and keep the `cmsSID`
//! session cookie, put the datapoint subscription list over REST, then open the
//! WebSocket with the cookie; or run one data-log query on its own socket.
//!
//! The feed URL names the SmartServer: `https://host`, `wss://host/iap/ws` (the same
//! thing), or a prefix behind a reverse proxy (`https://proxy/ss1/`). REST calls go to
//! `http(s)://host<prefix>/iap/...`, the socket to `ws(s)://host<prefix>/iap/ws`.
//!
//! Options:
//! - `user`, `password` (required): the IAP login. Use a login of its own for the
//!   library: the server keeps one subscription per login and the last subscriber wins.
//! - `subscribe` (repeatable): datapoint qualifiers such as
//!   `17q4bn7/lon/2.1/Joystick/0/nvoValue`; more at run time with `Session::subscribe`.
//! - `datalog`: run a data-log query instead of the live feed. The value is the `value`
//!   filter, e.g. `*+utc>2026-01-01T00:00:00.000&utc<=2026-01-02T00:00:00.000` (a leading
//!   `value=` is accepted); it is percent-encoded here.
//! - `datalog_dev`, `datalog_block_name`, `datalog_block_index`, `datalog_dp_name`: the
//!   query's optional `dev`, `blockName`, `blockIndex` and `dpName` filters.
//!
//! Every connection logs in first unless the session already holds a cookie the server
//! accepted; then it puts the full subscription list (again after every reconnect: another
//! client may have replaced it), then opens the socket. A 401 on the subscription PUT or on
//! the WebSocket upgrade means the session expired: one fresh login, then the PUT again.
//! A live socket the server closes before sending anything also makes the next connection
//! log in afresh (a server may refuse a stale cookie that way). A 401 right after a fresh
//! login, a refused login and a 403 on the PUT are `Auth` errors (the session ends).
//!
//! Events (kind `Event`): every `UPD:DATAPOINT` entry becomes one event whose topic is its
//! `datapointQualifier`, type `UPD:DATAPOINT`, payload the entry object as sent. Any other
//! action becomes one event whose topic and type are the action, payload the frame's
//! `payload` (JSON `null` when absent). Data-log entries are events of type `DATALOG`,
//! topic the entry's `datapointName` (or `name`; empty when neither), payload the entry;
//! the final `"end"` closes the session normally (code 1000), a close before it is a
//! `Protocol` error. A frame that does not parse or has an unexpected shape raises an
//! `Error` event (`Protocol`) and the session carries on.
//!
//! Changing the subscription list on an open session reconnects it (the PUT cannot run
//! while the socket is open): the state goes `Connecting`, then `Open` again. A completed
//! data-log query is not run again; one that failed before its end is, from the start,
//! when the session reconnects.

use crate::config::SessionConfig;
use crate::error::{Error, ErrorCode, Result};
use crate::event::{Event, EventKind};
use crate::http::{Request, Response};
use crate::session::command::Outbound;
use crate::session::driver::{Driver, Io, Step};
use crate::url::{Scheme, Url};
use serde_json::error::Category;
use serde_json::value::RawValue;
use std::collections::HashMap;

/// Most datapoints one session subscribes to (keeps the PUT body bounded).
pub const MAX_SUBSCRIPTIONS: usize = 10_000;
/// Longest datapoint qualifier accepted, in bytes.
pub const MAX_QUALIFIER: usize = 1024;
/// The event type of a datapoint update.
pub const UPD_DATAPOINT: &str = "UPD:DATAPOINT";
/// The event type of a data-log entry.
pub const DATALOG: &str = "DATALOG";

/// Which SmartServer socket a frame came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Socket {
    /// The general-purpose socket (`/iap/ws`): `{"action":..,"payload":..}` frames.
    Live,
    /// A data-log query socket: one JSON object per entry, then `"end"`.
    DataLog,
}

/// What one frame means for the host.
#[derive(Debug, PartialEq, Eq)]
pub enum Mapped<'a> {
    /// An event: topic, type and JSON payload (a slice of the frame).
    Event {
        /// Datapoint qualifier, action, or data-log datapoint name.
        topic: &'a str,
        /// `UPD:DATAPOINT`, the action, or `DATALOG`.
        event_type: &'a str,
        /// JSON text, exactly as the server sent it.
        payload: &'a str,
    },
    /// The data-log query's final `"end"`.
    End,
    /// Part of the frame is not what PROTOCOLS.md §3 describes; the text says what.
    Invalid(String),
}

/// The start of a frame for error messages (frames carry data, not secrets).
fn snippet(text: &str) -> String {
    const MAX: usize = 80;
    match text.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text.to_string(),
    }
}

/// Parses a JSON object into its members, keeping each value's raw text.
fn object(text: &str) -> std::result::Result<HashMap<String, &RawValue>, serde_json::Error> {
    serde_json::from_str(text)
}

fn string_member(fields: &HashMap<String, &RawValue>, key: &str) -> Option<String> {
    fields.get(key).and_then(|raw| serde_json::from_str::<String>(raw.get()).ok())
}

/// Maps one text frame to events, the end of a data log, or complaints, in frame order.
/// Pure: this is what the fuzz target exercises.
pub fn map_frame(socket: Socket, text: &str, sink: &mut dyn FnMut(Mapped<'_>)) {
    match socket {
        Socket::Live => map_live(text, sink),
        Socket::DataLog => map_datalog(text, sink),
    }
}

fn map_live(text: &str, sink: &mut dyn FnMut(Mapped<'_>)) {
    let fields = match object(text) {
        Ok(f) => f,
        Err(e) => {
            let what =
                if e.classify() == Category::Data { "is not a JSON object" } else { "is not JSON" };
            // serde_json's message may quote the whole offending value: cut it too.
            let e = snippet(&e.to_string());
            sink(Mapped::Invalid(format!("a SmartServer frame {what} ({e}): {}", snippet(text))));
            return;
        }
    };
    let Some(action) = string_member(&fields, "action") else {
        sink(Mapped::Invalid(format!(
            "a SmartServer frame without a string `action`: {}",
            snippet(text)
        )));
        return;
    };
    let payload = fields.get("payload").map_or("null", |raw| raw.get());
    if action == UPD_DATAPOINT {
        map_datapoints(payload, sink);
    } else {
        sink(Mapped::Event { topic: &action, event_type: &action, payload });
    }
}

fn map_datapoints(payload: &str, sink: &mut dyn FnMut(Mapped<'_>)) {
    // The sample sends an array; a lone object is taken as an array of one.
    let items = serde_json::from_str::<Vec<&RawValue>>(payload).ok().or_else(|| {
        let one = serde_json::from_str::<&RawValue>(payload).ok()?;
        one.get().starts_with('{').then(|| vec![one])
    });
    let items = match items {
        Some(items) => items,
        None => {
            sink(Mapped::Invalid(format!(
                "an UPD:DATAPOINT payload that is not an array of entries: {}",
                snippet(payload)
            )));
            return;
        }
    };
    for item in items {
        let item = item.get();
        let Ok(fields) = object(item) else {
            sink(Mapped::Invalid(format!(
                "an UPD:DATAPOINT entry that is not an object: {}",
                snippet(item)
            )));
            continue;
        };
        match string_member(&fields, "datapointQualifier") {
            Some(q) if !q.is_empty() => {
                sink(Mapped::Event { topic: &q, event_type: UPD_DATAPOINT, payload: item });
            }
            _ => sink(Mapped::Invalid(format!(
                "an UPD:DATAPOINT entry without a `datapointQualifier`: {}",
                snippet(item)
            ))),
        }
    }
}

fn map_datalog(text: &str, sink: &mut dyn FnMut(Mapped<'_>)) {
    let raw = match serde_json::from_str::<&RawValue>(text) {
        Ok(raw) => raw.get(),
        Err(e) => {
            // serde_json's message may quote the whole offending value: cut it too.
            let e = snippet(&e.to_string());
            sink(Mapped::Invalid(format!(
                "a data-log frame that is not JSON ({e}): {}",
                snippet(text)
            )));
            return;
        }
    };
    if raw.starts_with('"') {
        match serde_json::from_str::<String>(raw) {
            Ok(s) if s == "end" => sink(Mapped::End),
            _ => sink(Mapped::Invalid(format!(
                "a data-log frame that is a string other than \"end\": {}",
                snippet(raw)
            ))),
        }
        return;
    }
    match object(raw) {
        Ok(fields) => {
            let name = string_member(&fields, "datapointName")
                .or_else(|| string_member(&fields, "name"))
                .unwrap_or_default();
            sink(Mapped::Event { topic: &name, event_type: DATALOG, payload: raw });
        }
        Err(_) => sink(Mapped::Invalid(format!(
            "a data-log entry that is not an object: {}",
            snippet(raw)
        ))),
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters (the sample encodes
/// `*`, `+`, `:`, `<`, `>`, `=` and `&` inside the `value` filter).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Where the driver is in one connection attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Idle,
    Login,
    Subscribe,
    Upgrade,
    Open,
}

/// The SmartServer profile.
pub struct SmartServerDriver {
    user: String,
    password: String,
    login_url: Url,
    subscribe_url: Url,
    ws_url: Url,
    /// Running a data-log query rather than the live feed.
    datalog: bool,
    subscriptions: Vec<String>,
    /// The list put last (what the server holds from us); `None` before the first PUT.
    put_list: Option<Vec<String>>,
    /// The list changed after the PUT under way was built.
    dirty: bool,
    phase: Phase,
    /// The session holds a cookie the server has not refused yet.
    logged_in: bool,
    /// This attempt logged in: a 401 now is not an expired session.
    fresh_login: bool,
    /// The data log's `"end"` arrived.
    ended: bool,
    /// A frame arrived on the socket now open.
    heard: bool,
}

fn bad(why: impl Into<String>) -> Error {
    Error::new(ErrorCode::InvalidParameter, why)
}

fn check_qualifier(q: &str) -> Result<()> {
    if q.is_empty() || q.len() > MAX_QUALIFIER || q.chars().any(char::is_control) {
        return Err(bad(format!(
            "a datapoint qualifier must be 1 to {MAX_QUALIFIER} bytes without control characters"
        )));
    }
    Ok(())
}

impl SmartServerDriver {
    /// Reads the options.
    pub fn new(config: &SessionConfig) -> Result<SmartServerDriver> {
        let feed = Url::parse(&config.url)?;
        if feed.target.contains('?') {
            return Err(bad("the SmartServer URL takes no query; use option `datalog`"));
        }
        let (Some(user), Some(password)) = (config.option("user"), config.option("password"))
        else {
            return Err(bad("SmartServer needs options `user` and `password`"));
        };
        let path = feed.path();
        let prefix = path.strip_suffix("/iap/ws").unwrap_or(path).trim_end_matches('/');
        let tls = feed.scheme.is_tls();
        let origin = |scheme: Scheme, rest: &str| Url {
            scheme,
            host: feed.host.clone(),
            port: feed.port,
            target: format!("{prefix}{rest}"),
        };
        let http = if tls { Scheme::Https } else { Scheme::Http };
        let ws = if tls { Scheme::Wss } else { Scheme::Ws };

        let mut subscriptions: Vec<String> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for q in config.option_values("subscribe") {
            check_qualifier(q)?;
            if seen.insert(q) {
                if subscriptions.len() == MAX_SUBSCRIPTIONS {
                    return Err(bad(format!("at most {MAX_SUBSCRIPTIONS} datapoints per session")));
                }
                subscriptions.push(q.to_string());
            }
        }

        let datalog = config.option("datalog");
        let mut ws_url = origin(ws, "/iap/ws");
        if let Some(query) = datalog {
            let query = query.strip_prefix("value=").unwrap_or(query);
            if query.is_empty() {
                return Err(bad("option `datalog` needs the query's `value` filter"));
            }
            if !subscriptions.is_empty() {
                return Err(bad("a data-log query takes no `subscribe` options"));
            }
            let mut q = format!("value={}", percent_encode(query));
            for (option, key) in [
                ("datalog_dev", "dev"),
                ("datalog_block_name", "blockName"),
                ("datalog_block_index", "blockIndex"),
                ("datalog_dp_name", "dpName"),
            ] {
                if let Some(v) = config.option(option) {
                    q.push_str(&format!("&{key}={}", percent_encode(v)));
                }
            }
            ws_url.target = format!("{}?{q}", ws_url.target);
        }

        Ok(SmartServerDriver {
            user: user.to_string(),
            password: password.to_string(),
            login_url: origin(http, "/iap/auth/login"),
            subscribe_url: origin(http, "/iap/dp/updates/subscribe"),
            ws_url,
            datalog: datalog.is_some(),
            subscriptions,
            put_list: None,
            dirty: false,
            phase: Phase::Idle,
            logged_in: false,
            fresh_login: false,
            ended: false,
            heard: false,
        })
    }

    fn json_request(&self, method: &str, url: &Url, body: String) -> Request {
        let mut r = Request::get(url.clone())
            .header("Content-Type", "application/json;charset=utf-8")
            .header("Accept", "application/json");
        r.method = method.into();
        r.body = body.into_bytes();
        r
    }

    fn login(&mut self) -> Step {
        self.phase = Phase::Login;
        let body = serde_json::json!({ "username": self.user, "password": self.password });
        Step::Http(self.json_request("POST", &self.login_url, body.to_string()))
    }

    /// After a login (or with a cookie already held): the PUT if there is a list to put
    /// (or one to clear), else the socket.
    fn after_login(&mut self) -> Step {
        let clear = self.put_list.as_ref().is_some_and(|l| !l.is_empty());
        if !self.datalog && (!self.subscriptions.is_empty() || clear) {
            self.phase = Phase::Subscribe;
            self.dirty = false;
            let body = serde_json::to_string(&self.subscriptions).unwrap_or_else(|_| "[]".into());
            Step::Http(self.json_request("PUT", &self.subscribe_url, body))
        } else {
            self.phase = Phase::Upgrade;
            Step::WebSocket(self.ws_url.clone())
        }
    }

    fn on_login(&mut self, response: &Response) -> Result<Step> {
        match response.status {
            200..=299 => {
                log::info!("SmartServer: logged in");
                if response.header("set-cookie").is_none() {
                    log::warn!("SmartServer: the login answer set no session cookie");
                }
                self.logged_in = true;
                self.fresh_login = true;
                Ok(self.after_login())
            }
            401 | 403 => Err(Error::new(
                ErrorCode::Auth,
                format!(
                    "SmartServer login refused (HTTP {}): check the user and password",
                    response.status
                ),
            )),
            status => Err(Error::new(
                ErrorCode::HttpStatus,
                format!("SmartServer login failed: HTTP {status} {}", response.reason),
            )),
        }
    }

    fn on_subscribed(&mut self, response: &Response) -> Result<Step> {
        match response.status {
            200..=299 => {
                log::info!("SmartServer: subscribed to {} datapoints", self.subscriptions.len());
                self.put_list = Some(self.subscriptions.clone());
                if self.dirty {
                    return Ok(self.after_login());
                }
                self.phase = Phase::Upgrade;
                Ok(Step::WebSocket(self.ws_url.clone()))
            }
            401 => self.expired("the subscription PUT"),
            403 => Err(Error::new(
                ErrorCode::Auth,
                "SmartServer refused the subscription (HTTP 403): this login may not subscribe",
            )),
            status if self.subscriptions.is_empty() => {
                // Clearing is unverified (PROTOCOLS.md §3.7): a server refusing an empty
                // list must not end a session that no longer wants anything.
                log::warn!("SmartServer: clearing the subscription list failed (HTTP {status})");
                self.put_list = Some(Vec::new());
                self.phase = Phase::Upgrade;
                Ok(Step::WebSocket(self.ws_url.clone()))
            }
            status => {
                let body = String::from_utf8_lossy(&response.body);
                Err(Error::new(
                    ErrorCode::HttpStatus,
                    format!(
                        "SmartServer refused the subscription: HTTP {status} {} {}",
                        response.reason,
                        snippet(body.trim())
                    ),
                ))
            }
        }
    }

    /// A 401: log in again, unless this attempt just did.
    fn expired(&mut self, what: &str) -> Result<Step> {
        self.logged_in = false;
        if self.fresh_login {
            return Err(Error::new(
                ErrorCode::Auth,
                format!("SmartServer refused {what} right after logging in (HTTP 401)"),
            ));
        }
        log::info!("SmartServer: the session expired ({what} got HTTP 401); logging in again");
        Ok(self.login())
    }

    /// The subscription list changed: put it now, or after the PUT under way.
    fn changed(&mut self, io: &mut Io<'_>) {
        match self.phase {
            Phase::Open | Phase::Upgrade => io.restart("the subscription list changed"),
            Phase::Subscribe => self.dirty = true,
            Phase::Idle | Phase::Login => {} // the PUT to come takes the current list
        }
    }

    fn complain(&self, io: &Io<'_>, error: &Error) {
        log::warn!("SmartServer: {}", error.message);
        io.emit(
            &Event::new(EventKind::Error, io.state(), error.message.as_bytes()).with_error(error),
        );
    }

    fn subscription(&mut self, on: bool, q: String, io: &mut Io<'_>) {
        let refuse = |why: String| Error::new(ErrorCode::InvalidParameter, why);
        let problem = if self.datalog {
            Some(Error::new(ErrorCode::NotSupported, "a data-log session has no subscriptions"))
        } else if let Err(e) = check_qualifier(&q) {
            Some(e)
        } else if on && self.subscriptions.len() >= MAX_SUBSCRIPTIONS {
            Some(refuse(format!("at most {MAX_SUBSCRIPTIONS} datapoints per session")))
        } else {
            None
        };
        if let Some(e) = problem {
            self.complain(io, &e);
            return;
        }
        let before = self.subscriptions.len();
        if on {
            if !self.subscriptions.contains(&q) {
                self.subscriptions.push(q);
            }
        } else {
            self.subscriptions.retain(|s| *s != q);
        }
        if self.subscriptions.len() != before {
            self.changed(io);
        }
    }
}

/// Whether a failure is the server refusing our cookie (the session reports an upgrade
/// answered 401 or 403 as `Auth`).
fn unauthorized(e: &Error) -> bool {
    e.code == ErrorCode::Auth
}

impl Driver for SmartServerDriver {
    fn start(&mut self, _config: &SessionConfig) -> Result<Step> {
        self.fresh_login = false;
        if self.datalog && self.ended {
            // The query completed; running it again would repeat every entry.
            return Ok(Step::Finish);
        }
        if self.logged_in { Ok(self.after_login()) } else { Ok(self.login()) }
    }

    fn on_http_response(&mut self, response: Response, _io: &mut Io<'_>) -> Result<Step> {
        match self.phase {
            Phase::Login => self.on_login(&response),
            Phase::Subscribe => self.on_subscribed(&response),
            _ => Err(Error::new(ErrorCode::Protocol, "an HTTP answer nobody asked for")),
        }
    }

    fn on_open(&mut self, _subprotocol: &str, io: &mut Io<'_>) -> Result<()> {
        self.phase = Phase::Open;
        self.heard = false;
        io.open(if self.datalog { "datalog" } else { "live" });
        Ok(())
    }

    fn on_text(&mut self, text: &str, io: &mut Io<'_>) -> Result<()> {
        self.heard = true;
        let socket = if self.datalog { Socket::DataLog } else { Socket::Live };
        let mut end = false;
        map_frame(socket, text, &mut |m| match m {
            Mapped::Event { topic, event_type, payload } => io.emit(
                &Event::new(EventKind::Event, io.state(), payload.as_bytes())
                    .with_topic(topic)
                    .with_type(event_type),
            ),
            Mapped::End => end = true,
            Mapped::Invalid(why) => self.complain(io, &Error::new(ErrorCode::Protocol, why)),
        });
        if end && !self.ended {
            self.ended = true;
            log::info!("SmartServer: the data-log query is complete");
            io.finish(1000, "end of data log");
        }
        Ok(())
    }

    fn on_binary(&mut self, data: &[u8], io: &mut Io<'_>) -> Result<()> {
        self.heard = true;
        let why =
            format!("an unexpected binary frame of {} bytes from the SmartServer", data.len());
        self.complain(io, &Error::new(ErrorCode::Protocol, why));
        Ok(())
    }

    fn on_send(&mut self, out: Outbound, io: &mut Io<'_>) -> Result<()> {
        match out {
            // The server ignores client frames (PROTOCOLS.md §3.2); pass them through.
            Outbound::Message(m) => io.send(m),
            Outbound::Subscribe(q) => self.subscription(true, q, io),
            Outbound::Unsubscribe(q) => self.subscription(false, q, io),
            _ => {
                return Err(Error::new(
                    ErrorCode::NotSupported,
                    "SmartServer sessions take messages and subscriptions only",
                ));
            }
        }
        Ok(())
    }

    fn retry_now(&mut self, error: &Error) -> bool {
        // A refused upgrade is the one 401 the driver does not see as an HTTP answer.
        if self.phase == Phase::Upgrade && unauthorized(error) && !self.fresh_login {
            log::info!("SmartServer: the WebSocket upgrade was refused (401); logging in again");
            self.logged_in = false;
            self.phase = Phase::Idle;
            return true;
        }
        if unauthorized(error) {
            self.logged_in = false;
        }
        false
    }

    fn on_peer_close(&mut self, code: u16, reason: &str) -> Result<()> {
        if self.phase == Phase::Open && !self.heard {
            // Whether a server refuses a cookie by closing right after the upgrade is an
            // open question (PROTOCOLS.md §3.7): a socket closed unheard logs in afresh.
            self.logged_in = false;
        }
        if self.datalog && self.phase == Phase::Open && !self.ended {
            return Err(Error::new(
                ErrorCode::Protocol,
                if reason.is_empty() {
                    format!("the data-log socket closed before its \"end\" message (code {code})")
                } else {
                    format!(
                        "the data-log socket closed before its \"end\" message (code {code}: {})",
                        snippet(reason)
                    )
                },
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Protocol;
    use crate::session::driver::End;
    use crate::session::shared::SessionShared;
    use std::sync::{Arc, Mutex};
    use std::time::Instant;

    fn mapped(socket: Socket, text: &str) -> Vec<String> {
        let mut out = Vec::new();
        map_frame(socket, text, &mut |m| {
            out.push(match m {
                Mapped::Event { topic, event_type, payload } => {
                    format!("{event_type} {topic} {payload}")
                }
                Mapped::End => "END".into(),
                Mapped::Invalid(why) => format!("INVALID {why}"),
            })
        });
        out
    }

    #[test]
    fn datapoint_updates_become_one_event_per_entry() {
        let frame = r#"{"action":"UPD:DATAPOINT","payload":[
            {"datapointQualifier":"dev/lon/2.1/Joystick/0/nvoValue","value":{"a":1.50},"presetValue":"ON"},
            {"datapointQualifier":"d\u00e9v/x","value":7,"timestamp":"2026-01-01T00:00:00.000Z"}]}"#;
        let got = mapped(Socket::Live, frame);
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got[0].starts_with("UPD:DATAPOINT dev/lon/2.1/Joystick/0/nvoValue {"), "{got:?}");
        assert!(got[0].contains(r#""value":{"a":1.50}"#), "payload kept verbatim: {got:?}");
        assert!(got[1].starts_with("UPD:DATAPOINT dév/x {"), "escapes decoded: {got:?}");
        let empty = r#"{"action":"UPD:DATAPOINT","payload":[]}"#;
        assert!(mapped(Socket::Live, empty).is_empty(), "no entries, no events");
        // A lone object is an array of one.
        let one = r#"{"action":"UPD:DATAPOINT","payload":{"datapointQualifier":"q","value":1}}"#;
        assert_eq!(
            mapped(Socket::Live, one),
            vec![r#"UPD:DATAPOINT q {"datapointQualifier":"q","value":1}"#]
        );
    }

    #[test]
    fn other_actions_are_events_named_after_the_action() {
        assert_eq!(
            mapped(Socket::Live, r#"{"action":"NTF:TIME","payload":{"value":"x"}}"#),
            vec![r#"NTF:TIME NTF:TIME {"value":"x"}"#]
        );
        assert_eq!(mapped(Socket::Live, r#"{"action":"UPD:CPU"}"#), vec!["UPD:CPU UPD:CPU null"]);
        assert_eq!(
            mapped(Socket::Live, r#"{"payload":3,"action":"DEL:ALARM"}"#),
            vec!["DEL:ALARM DEL:ALARM 3"]
        );
    }

    #[test]
    fn bad_frames_are_reported_not_fatal() {
        let cases = [
            ("not json", "is not JSON"),
            ("[1,2]", "is not a JSON object"),
            ("\"end\"", "is not a JSON object"),
            (r#"{"payload":[]}"#, "without a string `action`"),
            (r#"{"action":5}"#, "without a string `action`"),
            (r#"{"action":"UPD:DATAPOINT","payload":"x"}"#, "not an array of entries"),
            (r#"{"action":"UPD:DATAPOINT"}"#, "not an array of entries"),
            (r#"{"action":"UPD:DATAPOINT","payload":[1]}"#, "entry that is not an object"),
            (
                r#"{"action":"UPD:DATAPOINT","payload":[{"value":1}]}"#,
                "without a `datapointQualifier`",
            ),
            (
                r#"{"action":"UPD:DATAPOINT","payload":[{"datapointQualifier":""}]}"#,
                "without a `datapointQualifier`",
            ),
        ];
        for (frame, why) in cases {
            let got = mapped(Socket::Live, frame);
            assert_eq!(got.len(), 1, "{frame}: {got:?}");
            assert!(got[0].starts_with("INVALID") && got[0].contains(why), "{frame}: {got:?}");
        }
        // One bad entry does not hide the good ones.
        let mixed =
            r#"{"action":"UPD:DATAPOINT","payload":[{"value":1},{"datapointQualifier":"q"}]}"#;
        let got = mapped(Socket::Live, mixed);
        assert!(got[0].starts_with("INVALID") && got[1].starts_with("UPD:DATAPOINT q"), "{got:?}");
    }

    #[test]
    fn datalog_entries_end_and_garbage() {
        assert_eq!(mapped(Socket::DataLog, " \"end\" "), vec!["END"]);
        assert_eq!(
            mapped(Socket::DataLog, r#"{"datapointName":"nvoTemp","utc":"x","value":21.5}"#),
            vec![r#"DATALOG nvoTemp {"datapointName":"nvoTemp","utc":"x","value":21.5}"#]
        );
        assert_eq!(mapped(Socket::DataLog, r#"{"name":"n"}"#), vec![r#"DATALOG n {"name":"n"}"#]);
        assert_eq!(mapped(Socket::DataLog, "{}"), vec!["DATALOG  {}"]);
        for (frame, why) in [
            ("end", "not JSON"),
            ("\"END\"", "other than \"end\""),
            ("[]", "not an object"),
            ("{", "not JSON"),
        ] {
            let got = mapped(Socket::DataLog, frame);
            assert!(got.len() == 1 && got[0].contains(why), "{frame}: {got:?}");
        }
    }

    #[test]
    fn complaints_stay_short_whatever_the_frame() {
        let long = format!("\"{}\"", "x".repeat(1 << 20));
        for socket in [Socket::Live, Socket::DataLog] {
            for frame in [long.clone(), format!("{long} junk"), format!("[{long}]")] {
                for m in mapped(socket, &frame) {
                    assert!(m.len() < 600, "{socket:?}: {} bytes", m.len());
                }
            }
        }
    }

    #[test]
    fn snippets_cut_on_char_boundaries() {
        let long = "é".repeat(200);
        let s = snippet(&long);
        assert_eq!(s.chars().count(), 83);
    }

    fn config(url: &str, options: &[(&str, &str)]) -> SessionConfig {
        let mut c = SessionConfig::new(url);
        c.protocol = Protocol::SmartServer;
        c.options.extend(options.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        c
    }

    const CREDS: [(&str, &str); 2] = [("user", "u"), ("password", "p")];

    #[test]
    fn urls_follow_the_feed_url() {
        for (url, login, ws) in [
            ("https://ss.local", "https://ss.local/iap/auth/login", "wss://ss.local/iap/ws"),
            (
                "wss://ss.local:8443/iap/ws",
                "https://ss.local:8443/iap/auth/login",
                "wss://ss.local:8443/iap/ws",
            ),
            ("http://proxy/ss1/", "http://proxy/ss1/iap/auth/login", "ws://proxy/ss1/iap/ws"),
        ] {
            let d = SmartServerDriver::new(&config(url, &CREDS)).unwrap();
            assert_eq!(
                (d.login_url.to_string(), d.ws_url.to_string()),
                (login.to_string(), ws.to_string())
            );
        }
        let d = SmartServerDriver::new(&config("http://h", &CREDS)).unwrap();
        assert_eq!(d.subscribe_url.target, "/iap/dp/updates/subscribe");
    }

    #[test]
    fn the_datalog_query_is_percent_encoded() {
        let q = "*+utc>2022-04-11T07:00:00.000&utc<=2022-04-12T07:00:00.000";
        let mut opts = CREDS.to_vec();
        opts.push(("datalog", q));
        let d = SmartServerDriver::new(&config("https://h", &opts)).unwrap();
        // The very URL PROTOCOLS.md §3.4 quotes from the sample.
        assert_eq!(
            d.ws_url.target,
            "/iap/ws?value=%2A%2Butc%3E2022-04-11T07%3A00%3A00.000%26utc%3C%3D2022-04-12T07%3A00%3A00.000"
        );
        opts[2] = ("datalog", "value=*");
        opts.push(("datalog_dev", "*+name==My Dev"));
        opts.push(("datalog_dp_name", "nvoTemp"));
        let d = SmartServerDriver::new(&config("https://h", &opts)).unwrap();
        assert_eq!(
            d.ws_url.target,
            "/iap/ws?value=%2A&dev=%2A%2Bname%3D%3DMy%20Dev&dpName=nvoTemp"
        );
    }

    #[test]
    fn bad_options_are_refused() {
        let refused = |url: &str, opts: &[(&str, &str)]| {
            SmartServerDriver::new(&config(url, opts)).err().map(|e| e.code)
        };
        let inv = Some(ErrorCode::InvalidParameter);
        assert_eq!(refused("https://h", &[("user", "u")]), inv);
        assert_eq!(refused("https://h/iap/ws?value=x", &CREDS), inv);
        assert_eq!(refused("ftp://h", &CREDS), inv);
        let with = |extra: (&'static str, &'static str)| {
            let mut o = CREDS.to_vec();
            o.push(extra);
            o
        };
        assert_eq!(refused("https://h", &with(("subscribe", ""))), inv);
        assert_eq!(refused("https://h", &with(("subscribe", "a\nb"))), inv);
        assert_eq!(refused("https://h", &with(("datalog", ""))), inv);
        let names: Vec<String> = (0..=MAX_SUBSCRIPTIONS).map(|i| format!("dp{i}")).collect();
        let mut many = CREDS.to_vec();
        many.extend(names.iter().map(|n| ("subscribe", n.as_str())));
        assert_eq!(refused("https://h", &many), inv, "one datapoint too many");
        many.pop();
        assert_eq!(refused("https://h", &many), None, "the limit itself is fine");
        let mut both = with(("datalog", "*"));
        both.push(("subscribe", "q"));
        assert_eq!(refused("https://h", &both), inv);
    }

    type Raised = Vec<(EventKind, String, String)>;

    /// Runs `f` with an Io; returns what it asked for and the events it raised.
    fn with_io<T>(f: impl FnOnce(&mut Io<'_>) -> T) -> (T, Option<End>, Option<String>, Raised) {
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&events);
        let handler = Box::new(move |e: &Event<'_>| {
            let text = String::from_utf8_lossy(e.payload()).into_owned();
            sink.lock().unwrap().push((e.kind(), e.topic().to_string(), text));
        });
        let shared =
            SessionShared::new(1, Protocol::SmartServer, handler, 1 << 20, Default::default());
        let (mut frames, mut opened, mut end) = (Vec::new(), None, None);
        let t = {
            let mut io = Io::new(Instant::now(), &shared, &mut frames, &mut opened, &mut end);
            f(&mut io)
        };
        let events = events.lock().unwrap().clone();
        (t, end, opened, events)
    }

    fn answer(status: u16, cookie: bool) -> Response {
        let mut headers = Vec::new();
        if cookie {
            headers.push(("Set-Cookie".to_string(), "cmsSID=s1; Path=/".to_string()));
        }
        Response { status, headers, ..Default::default() }
    }

    fn http(step: Step) -> Request {
        match step {
            Step::Http(r) => r,
            other => panic!("expected an HTTP step, got {other:?}"),
        }
    }

    fn respond(d: &mut SmartServerDriver, r: Response) -> Result<Step> {
        with_io(|io| d.on_http_response(r, io)).0
    }

    #[test]
    fn login_put_upgrade_then_expiry_relogs_once() {
        let mut opts = CREDS.to_vec();
        opts.push(("subscribe", "a"));
        opts.push(("subscribe", "b"));
        opts.push(("subscribe", "a"));
        let c = config("https://h", &opts);
        let mut d = SmartServerDriver::new(&c).unwrap();
        let login = http(d.start(&c).unwrap());
        assert_eq!((login.method.as_str(), login.url.target.as_str()), ("POST", "/iap/auth/login"));
        let body: serde_json::Value = serde_json::from_slice(&login.body).unwrap();
        assert_eq!(body, serde_json::json!({"username":"u","password":"p"}));
        let put = http(respond(&mut d, answer(200, true)).unwrap());
        assert_eq!((put.method.as_str(), put.body.as_slice()), ("PUT", &br#"["a","b"]"#[..]));
        let ws = respond(&mut d, answer(204, false)).unwrap();
        assert!(matches!(ws, Step::WebSocket(ref u) if u.target == "/iap/ws"), "{ws:?}");
        // A 401 on the upgrade right after logging in is not an expired session.
        let refused = Error::new(ErrorCode::Auth, "upgrade refused: HTTP 401 Unauthorized");
        assert!(!d.retry_now(&refused));

        // Next connection: the cookie is tried first; the PUT's 401 brings one fresh login.
        let mut d = SmartServerDriver::new(&c).unwrap();
        let _ = d.start(&c).unwrap();
        let _ = respond(&mut d, answer(200, true)).unwrap();
        let _ = respond(&mut d, answer(200, false)).unwrap();
        with_io(|io| d.on_open("", io)).0.unwrap();
        let put = http(d.start(&c).unwrap());
        assert_eq!(put.method, "PUT", "a held cookie skips the login");
        let login = http(respond(&mut d, answer(401, false)).unwrap());
        assert_eq!(login.method, "POST");
        let put = http(respond(&mut d, answer(200, true)).unwrap());
        assert_eq!(put.method, "PUT");
        let e = respond(&mut d, answer(401, false)).unwrap_err();
        assert_eq!(e.code, ErrorCode::Auth, "{e}");

        // An upgrade refused with a held cookie: retry at once, with a login.
        let mut d = SmartServerDriver::new(&c).unwrap();
        let _ = d.start(&c).unwrap();
        let _ = respond(&mut d, answer(200, true)).unwrap();
        let _ = respond(&mut d, answer(200, false)).unwrap();
        with_io(|io| d.on_open("", io)).0.unwrap();
        let _ = http(d.start(&c).unwrap());
        let _ = respond(&mut d, answer(200, false)).unwrap();
        assert!(d.retry_now(&refused));
        assert_eq!(http(d.start(&c).unwrap()).method, "POST");
    }

    #[test]
    fn login_failures_are_classified() {
        let c = config("https://h", &CREDS);
        let mut d = SmartServerDriver::new(&c).unwrap();
        let _ = d.start(&c).unwrap();
        assert_eq!(respond(&mut d, answer(401, false)).unwrap_err().code, ErrorCode::Auth);
        let _ = d.start(&c).unwrap();
        assert_eq!(respond(&mut d, answer(500, false)).unwrap_err().code, ErrorCode::HttpStatus);
        // No subscriptions: straight to the socket after the login.
        let _ = d.start(&c).unwrap();
        assert!(matches!(respond(&mut d, answer(200, true)).unwrap(), Step::WebSocket(_)));
    }

    #[test]
    fn subscription_changes_reconnect_or_wait_for_the_put() {
        let mut opts = CREDS.to_vec();
        opts.push(("subscribe", "a"));
        let c = config("http://h", &opts);
        let mut d = SmartServerDriver::new(&c).unwrap();
        let _ = d.start(&c).unwrap();
        let _ = respond(&mut d, answer(200, true)).unwrap();
        // A change while the PUT is under way: put again before opening.
        let _ = with_io(|io| d.on_send(Outbound::Subscribe("b".into()), io));
        let again = http(respond(&mut d, answer(200, false)).unwrap());
        assert_eq!(again.body, br#"["a","b"]"#);
        assert!(matches!(respond(&mut d, answer(200, false)).unwrap(), Step::WebSocket(_)));
        let (_, _, opened, _) = with_io(|io| d.on_open("", io));
        assert_eq!(opened.as_deref(), Some("live"));
        // Open: a change restarts; a repeat changes nothing.
        let (_, end, _, _) = with_io(|io| d.on_send(Outbound::Subscribe("a".into()), io));
        assert!(end.is_none());
        let (_, end, _, _) = with_io(|io| d.on_send(Outbound::Unsubscribe("a".into()), io));
        assert!(matches!(end, Some(End::Restart(_))));
        let (_, end, _, _) = with_io(|io| d.on_send(Outbound::Unsubscribe("b".into()), io));
        assert!(matches!(end, Some(End::Restart(_))));
        // The emptied list is put (to clear the server's), and a refusal of it is tolerated.
        let put = http(d.start(&c).unwrap());
        assert_eq!(put.body, b"[]");
        assert!(matches!(respond(&mut d, answer(400, false)).unwrap(), Step::WebSocket(_)));
        // Bad names raise an error event but keep the session.
        let (r, end, _, evs) = with_io(|io| d.on_send(Outbound::Subscribe("x\u{7}".into()), io));
        assert!(r.is_ok() && end.is_none());
        assert_eq!(evs[0].0, EventKind::Error, "{evs:?}");
    }

    #[test]
    fn datalog_ends_on_end_and_fails_without_it() {
        let mut opts = CREDS.to_vec();
        opts.push(("datalog", "*"));
        let c = config("http://h", &opts);
        let mut d = SmartServerDriver::new(&c).unwrap();
        let _ = d.start(&c).unwrap();
        assert!(matches!(respond(&mut d, answer(200, true)).unwrap(), Step::WebSocket(_)));
        let (_, _, opened, _) = with_io(|io| d.on_open("", io));
        assert_eq!(opened.as_deref(), Some("datalog"));
        let (_, end, _, evs) = with_io(|io| d.on_text(r#"{"datapointName":"t","value":1}"#, io));
        assert!(end.is_none());
        assert_eq!(
            evs,
            vec![(EventKind::Event, "t".into(), r#"{"datapointName":"t","value":1}"#.into())]
        );
        assert_eq!(d.on_peer_close(1000, "").unwrap_err().code, ErrorCode::Protocol);
        let (_, end, _, _) = with_io(|io| d.on_text("\"end\"", io));
        assert!(matches!(end, Some(End::Finish(1000, _))));
        assert!(d.on_peer_close(1000, "").is_ok());
        assert!(matches!(d.start(&c).unwrap(), Step::Finish), "a finished query is not re-run");
        // Subscriptions make no sense here.
        let (_, end, _, evs) = with_io(|io| d.on_send(Outbound::Subscribe("q".into()), io));
        assert!(end.is_none() && evs[0].0 == EventKind::Error);
    }
}
