//! deCONZ (dresden elektronik) gateway events (PROTOCOLS.md §4).
//!
//! The session URL is the gateway's REST API, `http://<host>[:<port>]` (or `https://`; a path
//! is kept as a prefix, for gateways behind a reverse proxy). Every connection and every
//! reconnect runs the whole bootstrap again, because the WebSocket port can change when the
//! gateway restarts:
//!
//! 1. `GET /api/<apikey>/config`, for `websocketport` (or `websocketport_wss` when TLS is
//!    wanted);
//! 2. with `snapshot`: `GET /api/<apikey>/<resource>` for each resource asked for, each item
//!    delivered as an event (the WebSocket carries no state of its own);
//! 3. the WebSocket `ws[s]://<host>:<port>/` (it takes no authentication), kept alive with
//!    WebSocket pings (`SessionConfig::timeouts`).
//!
//! The snapshot runs before the socket opens because a session runs one exchange at a time:
//! a change in the short gap between the REST read and the socket's upgrade is not seen.
//!
//! Options:
//! - `apikey`: the gateway API key (required for a feed; see [`api_key_request`]);
//! - `tls`: `true` to take the TLS WebSocket (`websocketport_wss`, `wss://`), `false` for the
//!   plain one; default: `true` when the URL is `https://`. A gateway that offers no TLS port
//!   is an error, never a silent downgrade;
//! - `snapshot`: `true` (lights, sensors and groups), `false` (the default), or a
//!   comma-separated list of `lights`, `sensors`, `groups`.
//!
//! Events (kind `Event`):
//! - gateway messages: type = the message's `e` (`added`, `changed`, `deleted`,
//!   `scene-called`, or a kind newer gateways add), topic = `<r>/<id>` (`lights/1`,
//!   `sensors/5`, `groups/2`, `alarmsystems/1`, ...) or `groups/<gid>/scenes/<scid>` for a
//!   scene (its REST address), payload = the message text as the gateway sent it;
//! - snapshot items: type `snapshot`, topic `<resource>/<id>`, payload = the resource object
//!   as REST returned it; after each resource, type `snapshot-end`, topic `<resource>`,
//!   payload = the JSON array of the ids read (what is not in it is gone).
//!
//! A frame the driver cannot map (not JSON, not an event object, no resource or id) is
//! reported as a `Protocol` error event and skipped: the feed stays open.
//!
//! API key acquisition: without `apikey` and with `devicetype` (the application's name, at
//! most 40 characters; optional `username` to choose the key, `user` + `password` for HTTP
//! Basic authentication, which unlocks the gateway without the link button), the session
//! asks the gateway for a key instead: `POST /api`, then one event of type `apikey` whose
//! payload is the key, then it finishes. A locked gateway (error 101, link button not
//! pressed) is an `Auth` error saying how to unlock it. [`api_key_request`] and
//! [`parse_api_key`] are the same steps for callers with their own HTTP client.

use crate::config::SessionConfig;
use crate::engineio::codec::base64_encode;
use crate::error::{Error, ErrorCode, Result};
use crate::event::{Event, EventKind};
use crate::http::{Request, Response};
use crate::session::driver::{Driver, Io, Step};
use crate::url::{Scheme, Url};
use serde_json::{Map, Value};

/// The resources a snapshot can read.
pub const SNAPSHOT_RESOURCES: [&str; 3] = ["lights", "sensors", "groups"];

/// deCONZ REST error type for "link button not pressed".
pub const ERROR_LINK_BUTTON: u64 = 101;

/// deCONZ REST error type for "unauthorized user" (unknown or revoked API key).
pub const ERROR_UNAUTHORIZED: u64 = 1;

/// Longest `devicetype` the gateway takes.
const MAX_DEVICETYPE: usize = 40;

/// Longest event kind, resource name or id put into a type or topic.
const MAX_SEGMENT: usize = 128;

/// How much of a peer's text goes into an error message.
const QUOTE: usize = 60;

fn protocol(message: impl Into<String>) -> Error {
    Error::new(ErrorCode::Protocol, message)
}

fn invalid(message: impl Into<String>) -> Error {
    Error::new(ErrorCode::InvalidParameter, message)
}

/// The first characters of untrusted text, for an error message.
fn quote(text: &str) -> String {
    let mut q: String = text.chars().take(QUOTE).collect();
    if q.len() < text.len() {
        q.push('…');
    }
    q
}

/// A gateway message mapped for the host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapped {
    /// The event kind (`e`): `added`, `changed`, `deleted`, `scene-called`, ...
    pub event_type: String,
    /// `<r>/<id>`, or `groups/<gid>/scenes/<scid>` for a scene.
    pub topic: String,
}

/// A name or id that can go into a type or topic: 1 to 128 bytes, no control characters,
/// and (with `slash_free`) no `/`, so a topic splits back into its parts.
fn segment(what: &str, value: &str, slash_free: bool) -> Result<()> {
    if value.is_empty() || value.len() > MAX_SEGMENT {
        return Err(protocol(format!("`{what}` is empty or longer than {MAX_SEGMENT} bytes")));
    }
    if value.chars().any(char::is_control) || (slash_free && value.contains('/')) {
        return Err(protocol(format!(
            "`{what}` {:?} holds a control character or `/`",
            quote(value)
        )));
    }
    Ok(())
}

/// A string field that must be present.
fn text_field<'a>(message: &'a Map<String, Value>, key: &str) -> Result<&'a str> {
    match message.get(key) {
        Some(Value::String(s)) => Ok(s),
        Some(other) => {
            Err(protocol(format!("`{key}` is not a string: {}", quote(&other.to_string()))))
        }
        None => Err(protocol(format!("the message has no `{key}`"))),
    }
}

/// An id field: a string (as deCONZ sends them) or a non-negative integer.
fn id_field(message: &Map<String, Value>, key: &str) -> Result<Option<String>> {
    let id = match message.get(key) {
        None => return Ok(None),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) if n.is_u64() => n.to_string(),
        Some(other) => {
            return Err(protocol(format!("`{key}` is not an id: {}", quote(&other.to_string()))));
        }
    };
    segment(key, &id, true)?;
    Ok(Some(id))
}

/// Maps one WebSocket text frame from the gateway to an event type and topic (the payload
/// is the frame itself). Pure, for tests and fuzzing; errors are `Protocol` and say what
/// was wrong.
pub fn map_event(text: &str) -> Result<Mapped> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| protocol(format!("a frame that is not JSON ({e}): {}", quote(text))))?;
    let Value::Object(message) = value else {
        return Err(protocol(format!("a frame that is not a JSON object: {}", quote(text))));
    };
    let t = text_field(&message, "t")?;
    if t != "event" {
        return Err(protocol(format!("a message of type `t` = {:?}, not \"event\"", quote(t))));
    }
    let kind = text_field(&message, "e")?;
    segment("e", kind, false)?;
    let resource = text_field(&message, "r")?;
    segment("r", resource, true)?;
    let id = id_field(&message, "id")?;
    let scene = match (id_field(&message, "gid")?, id_field(&message, "scid")?) {
        (Some(gid), Some(scid)) => Some(format!("groups/{gid}/scenes/{scid}")),
        _ => None,
    };
    // A scene call names its group and scene, and has no `id`.
    let topic = match (kind, id, scene) {
        ("scene-called", _, Some(scene)) | (_, None, Some(scene)) => scene,
        ("scene-called", _, None) => {
            return Err(protocol("a scene-called event without `gid` and `scid`"));
        }
        (_, Some(id), _) => format!("{resource}/{id}"),
        (_, None, None) => {
            return Err(protocol(format!("a {kind:?} event on {resource:?} without an `id`")));
        }
    };
    Ok(Mapped { event_type: kind.to_string(), topic })
}

/// One REST error (`{"error":{"type":n,"address":..,"description":..}}`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestError {
    /// The deCONZ error type (101: link button not pressed, 1: unauthorized user, ...).
    pub kind: u64,
    /// The resource it is about.
    pub address: String,
    /// The gateway's description.
    pub description: String,
}

/// The first error of a deCONZ REST error body (an array of `{"error":{...}}`), if any.
pub fn rest_error(body: &[u8]) -> Option<RestError> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let items = match &value {
        Value::Array(items) => items.as_slice(),
        single @ Value::Object(_) => std::slice::from_ref(single),
        _ => return None,
    };
    items.iter().find_map(|item| {
        let e = item.get("error")?;
        let text = |k: &str| e.get(k).and_then(Value::as_str).map(quote).unwrap_or_default();
        Some(RestError {
            kind: e.get("type").and_then(Value::as_u64)?,
            address: text("address"),
            description: text("description"),
        })
    })
}

/// The error for a REST reply that is not what was asked for.
fn refused(what: &str, status: u16, body: &[u8]) -> Error {
    match rest_error(body) {
        Some(e) if e.kind == ERROR_LINK_BUTTON => Error::new(
            ErrorCode::Auth,
            format!(
                "{what}: the gateway is locked (error 101, {}): press the link button, or \
                 unlock it in the Phoscon app (Gateway > Advanced > Authenticate app) and \
                 retry within 60 s, or give `user` and `password`",
                e.description
            ),
        ),
        Some(e) if e.kind == ERROR_UNAUTHORIZED || status == 403 => Error::new(
            ErrorCode::Auth,
            format!(
                "{what}: the API key was refused (HTTP {status}, error {}: {})",
                e.kind, e.description
            ),
        ),
        Some(e) => Error::new(
            if status >= 300 { ErrorCode::HttpStatus } else { ErrorCode::Protocol },
            format!(
                "{what}: HTTP {status}, error {} at {:?}: {}",
                e.kind, e.address, e.description
            ),
        ),
        None if matches!(status, 401 | 403) => {
            Error::new(ErrorCode::Auth, format!("{what}: refused (HTTP {status})"))
        }
        None if status >= 300 => {
            Error::new(ErrorCode::HttpStatus, format!("{what}: HTTP {status}"))
        }
        None => {
            protocol(format!("{what}: unexpected reply {}", quote(&String::from_utf8_lossy(body))))
        }
    }
}

/// The JSON object of a successful REST reply.
fn object_reply(what: &str, status: u16, body: &[u8]) -> Result<Map<String, Value>> {
    if !(200..300).contains(&status) {
        return Err(refused(what, status, body));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(Value::Array(_)) if rest_error(body).is_some() => Err(refused(what, status, body)),
        Ok(other) => Err(protocol(format!(
            "{what}: the reply is not a JSON object: {}",
            quote(&other.to_string())
        ))),
        Err(e) => Err(protocol(format!(
            "{what}: the reply is not JSON ({e}): {}",
            quote(&String::from_utf8_lossy(body))
        ))),
    }
}

/// The WebSocket port from a `GET /api/<apikey>/config` reply: `websocketport`, or
/// `websocketport_wss` when `tls` is wanted.
pub fn websocket_port(status: u16, body: &[u8], tls: bool) -> Result<u16> {
    let config = object_reply("reading the gateway config", status, body)?;
    let key = if tls { "websocketport_wss" } else { "websocketport" };
    match config.get(key) {
        Some(v) => {
            v.as_u64().and_then(|p| u16::try_from(p).ok()).filter(|p| *p != 0).ok_or_else(|| {
                protocol(format!(
                    "the gateway config's `{key}` is not a port: {}",
                    quote(&v.to_string())
                ))
            })
        }
        None if tls => Err(protocol(
            "the gateway config has no `websocketport_wss`: this gateway offers no TLS \
             WebSocket (set option tls=false to use the plain one)",
        )),
        None => Err(protocol(
            "the gateway config has no `websocketport` (deCONZ before 2.04.40 has no \
             WebSocket; a reduced config also means the API key was not accepted)",
        )),
    }
}

/// The items of a snapshot reply (`GET /api/<apikey>/<resource>`): `(id, object as JSON)`,
/// in the gateway's order.
pub fn parse_snapshot(resource: &str, status: u16, body: &[u8]) -> Result<Vec<(String, String)>> {
    let what = format!("reading {resource}");
    let items = object_reply(&what, status, body)?;
    items
        .into_iter()
        .map(|(id, item)| {
            segment("id", &id, true).map_err(|e| protocol(format!("{what}: {}", e.message)))?;
            if !item.is_object() {
                return Err(protocol(format!(
                    "{what}: item {:?} is not a JSON object: {}",
                    quote(&id),
                    quote(&item.to_string())
                )));
            }
            Ok((id, item.to_string()))
        })
        .collect()
}

/// The `POST /api` request that asks the gateway at `gateway` (its REST URL) for a new API
/// key. `devicetype` names the application (1 to 40 characters); `username` (10 to 40
/// characters) chooses the key; `basic` (user, password) unlocks the gateway without the
/// link button.
pub fn api_key_request(
    gateway: &Url,
    devicetype: &str,
    username: Option<&str>,
    basic: Option<(&str, &str)>,
) -> Result<Request> {
    let n = devicetype.chars().count();
    if n == 0 || n > MAX_DEVICETYPE || devicetype.chars().any(char::is_control) {
        return Err(invalid("devicetype must be 1 to 40 characters, without control characters"));
    }
    let mut body = serde_json::json!({ "devicetype": devicetype });
    if let Some(username) = username {
        let n = username.chars().count();
        if !(10..=40).contains(&n) || !username.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(invalid("username must be 10 to 40 letters or digits"));
        }
        body["username"] = Value::String(username.to_string());
    }
    let mut request = Request::json("POST", rest_url(gateway, ""), &body);
    if let Some((user, password)) = basic {
        let token = base64_encode(format!("{user}:{password}").as_bytes());
        request = request.header("Authorization", &format!("Basic {token}"));
    }
    Ok(request)
}

/// The key in the gateway's answer to [`api_key_request`]
/// (`[{"success":{"username":"<key>"}}]`). A locked gateway (error 101, link button not
/// pressed) is an `Auth` error that says how to unlock it.
pub fn parse_api_key(status: u16, body: &[u8]) -> Result<String> {
    const WHAT: &str = "asking the gateway for an API key";
    if (200..300).contains(&status) {
        let value: Option<Value> = serde_json::from_slice(body).ok();
        let key = value.as_ref().and_then(Value::as_array).and_then(|items| {
            items.iter().find_map(|i| i.pointer("/success/username").and_then(Value::as_str))
        });
        if let Some(key) = key {
            if key.is_empty() || !key.chars().all(|c| c.is_ascii_graphic()) {
                return Err(protocol(format!("{WHAT}: the key is empty or not printable ASCII")));
            }
            return Ok(key.to_string());
        }
    }
    Err(refused(WHAT, status, body))
}

/// `<base path>/api[/<rest>]` on the gateway's origin.
fn rest_url(base: &Url, rest: &str) -> Url {
    let prefix = base.path().trim_end_matches('/');
    let mut url = base.clone();
    url.target =
        if rest.is_empty() { format!("{prefix}/api") } else { format!("{prefix}/api/{rest}") };
    url
}

/// `GET <base>/api/<apikey>/<rest>`.
fn get(gateway: &Url, apikey: &str, rest: &str) -> Step {
    let url = rest_url(gateway, &format!("{apikey}/{rest}"));
    Step::Http(Request::get(url).header("Accept", "application/json"))
}

/// The resources the `snapshot` option names.
fn snapshot_option(config: &SessionConfig) -> Result<Vec<&'static str>> {
    let Some(value) = config.option("snapshot").map(str::trim) else { return Ok(Vec::new()) };
    match value {
        "true" | "1" | "yes" | "on" | "all" => return Ok(SNAPSHOT_RESOURCES.to_vec()),
        "false" | "0" | "no" | "off" | "none" | "" => return Ok(Vec::new()),
        _ => {}
    }
    let mut out = Vec::new();
    for name in value.split(',').map(str::trim) {
        let r = SNAPSHOT_RESOURCES.iter().find(|r| **r == name).ok_or_else(|| {
            invalid("option `snapshot` must be true, false or a list of lights, sensors, groups")
        })?;
        if !out.contains(r) {
            out.push(*r);
        }
    }
    Ok(out)
}

/// What a session does.
enum Mode {
    /// Config, optional snapshot, then the event feed.
    Feed { apikey: String, tls: bool, snapshot: Vec<&'static str> },
    /// Ask for an API key, deliver it, finish.
    AcquireKey(Box<Request>),
}

/// Where a feed's bootstrap is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    Config,
    /// Reading the snapshot resource with this index.
    Snapshot(usize),
    Socket,
}

/// The deCONZ profile.
pub struct DeconzDriver {
    gateway: Url,
    mode: Mode,
    stage: Stage,
    /// The WebSocket found in the config, opened once the snapshot is read.
    socket: Option<Url>,
}

impl DeconzDriver {
    /// Reads the options.
    pub fn new(config: &SessionConfig) -> Result<DeconzDriver> {
        let gateway = Url::parse(&config.url)?;
        if !matches!(gateway.scheme, Scheme::Http | Scheme::Https) {
            return Err(invalid(
                "a deCONZ session's URL is the gateway's REST API: http://<host>[:<port>] or https://",
            ));
        }
        let mode = match (config.option("apikey"), config.option("devicetype")) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "set either `apikey` (event feed) or `devicetype` (API key acquisition), not both",
                ));
            }
            (Some(apikey), None) => {
                let unreserved = |c: char| c.is_ascii_alphanumeric() || "-._~".contains(c);
                if apikey.is_empty() || apikey.len() > 256 || !apikey.chars().all(unreserved) {
                    return Err(invalid(
                        "option `apikey` must be 1 to 256 letters, digits or - . _ ~",
                    ));
                }
                let tls = config.option_flag("tls")?.unwrap_or(gateway.scheme == Scheme::Https);
                Mode::Feed { apikey: apikey.to_string(), tls, snapshot: snapshot_option(config)? }
            }
            (None, Some(devicetype)) => {
                let basic = match (config.option("user"), config.option("password")) {
                    (Some(u), Some(p)) => Some((u, p)),
                    (None, None) => None,
                    _ => return Err(invalid("options `user` and `password` go together")),
                };
                let request =
                    api_key_request(&gateway, devicetype, config.option("username"), basic)?;
                Mode::AcquireKey(Box::new(request))
            }
            (None, None) => {
                return Err(invalid(
                    "deCONZ needs option `apikey` (or `devicetype` to ask the gateway for a key)",
                ));
            }
        };
        Ok(DeconzDriver { gateway, mode, stage: Stage::Config, socket: None })
    }

    /// The step after the config or a snapshot resource: the next resource, or the socket.
    fn next_snapshot(&mut self, index: usize) -> Result<Step> {
        let Mode::Feed { apikey, snapshot, .. } = &self.mode else {
            return Err(Error::new(ErrorCode::WrongState, "not a feed"));
        };
        if let Some(resource) = snapshot.get(index) {
            self.stage = Stage::Snapshot(index);
            return Ok(get(&self.gateway, apikey, resource));
        }
        self.stage = Stage::Socket;
        let url =
            self.socket.clone().ok_or_else(|| Error::new(ErrorCode::WrongState, "no port"))?;
        log::info!("deCONZ: WebSocket at {url}");
        Ok(Step::WebSocket(url))
    }
}

impl Driver for DeconzDriver {
    fn start(&mut self, _config: &SessionConfig) -> Result<Step> {
        self.stage = Stage::Config;
        self.socket = None;
        match &self.mode {
            Mode::AcquireKey(request) => Ok(Step::Http(request.as_ref().clone())),
            Mode::Feed { apikey, .. } => Ok(get(&self.gateway, apikey, "config")),
        }
    }

    fn on_http_response(&mut self, response: Response, io: &mut Io<'_>) -> Result<Step> {
        let (status, body) = (response.status, response.body.as_slice());
        let tls = match &self.mode {
            Mode::AcquireKey(_) => {
                let key = parse_api_key(status, body)?;
                log::info!("deCONZ: the gateway issued an API key");
                io.emit(
                    &Event::new(EventKind::Event, io.state(), key.as_bytes()).with_type("apikey"),
                );
                return Ok(Step::Finish);
            }
            Mode::Feed { tls, .. } => *tls,
        };
        match self.stage {
            Stage::Config => {
                let port = websocket_port(status, body, tls)?;
                let scheme = if tls { Scheme::Wss } else { Scheme::Ws };
                let host = self.gateway.host.clone();
                self.socket = Some(Url { scheme, host, port, target: "/".into() });
                self.next_snapshot(0)
            }
            Stage::Snapshot(index) => {
                let resource = match &self.mode {
                    Mode::Feed { snapshot, .. } => snapshot.get(index).copied().unwrap_or(""),
                    Mode::AcquireKey(_) => "",
                };
                let items = parse_snapshot(resource, status, body)?;
                let state = io.state();
                let mut ids = Vec::with_capacity(items.len());
                for (id, item) in &items {
                    let topic = format!("{resource}/{id}");
                    io.emit(
                        &Event::new(EventKind::Event, state, item.as_bytes())
                            .with_topic(&topic)
                            .with_type("snapshot"),
                    );
                    ids.push(Value::String(id.clone()));
                }
                let ids = Value::Array(ids).to_string();
                io.emit(
                    &Event::new(EventKind::Event, state, ids.as_bytes())
                        .with_topic(resource)
                        .with_type("snapshot-end"),
                );
                self.next_snapshot(index + 1)
            }
            Stage::Socket => {
                Err(Error::new(ErrorCode::WrongState, "an HTTP reply after the socket"))
            }
        }
    }

    fn on_text(&mut self, text: &str, io: &mut Io<'_>) -> Result<()> {
        let state = io.state();
        match map_event(text) {
            Ok(m) => io.emit(
                &Event::new(EventKind::Event, state, text.as_bytes())
                    .with_topic(&m.topic)
                    .with_type(&m.event_type),
            ),
            // One odd frame does not stop the feed: report it and go on.
            Err(e) => {
                log::warn!("deCONZ: {}", e.message);
                io.emit(&Event::new(EventKind::Error, state, e.message.as_bytes()).with_error(&e));
            }
        }
        Ok(())
    }

    fn on_binary(&mut self, data: &[u8], io: &mut Io<'_>) -> Result<()> {
        let e =
            protocol(format!("a binary frame ({} bytes): deCONZ sends only JSON text", data.len()));
        log::warn!("deCONZ: {}", e.message);
        io.emit(&Event::new(EventKind::Error, io.state(), e.message.as_bytes()).with_error(&e));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapped(text: &str) -> (String, String) {
        let m = map_event(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        (m.event_type, m.topic)
    }

    fn refused_with(text: &str, needle: &str) {
        let e = map_event(text).expect_err(text);
        assert_eq!(e.code, ErrorCode::Protocol, "{text}");
        assert!(e.message.contains(needle), "{text}: {:?} lacks {needle:?}", e.message);
    }

    #[test]
    fn maps_every_kind_from_protocols_md() {
        let cases = [
            (
                r#"{"t":"event","e":"changed","r":"sensors","id":"5","uniqueid":"00:0d:6f:00:10:65:8a:6e-01-1000","state":{"buttonevent":2002,"lastupdated":"2019-03-15T20:16:30"}}"#,
                "changed",
                "sensors/5",
            ),
            (
                r#"{"t":"event","e":"changed","r":"lights","id":"1","uniqueid":"x-01","attr":{"lastseen":"2020-06-18T13:16:39Z"}}"#,
                "changed",
                "lights/1",
            ),
            (
                r#"{"t":"event","e":"scene-called","r":"scenes","gid":"0","scid":"2"}"#,
                "scene-called",
                "groups/0/scenes/2",
            ),
            (
                r#"{"t":"event","e":"deleted","r":"lights","id":"3","uniqueid":"u"}"#,
                "deleted",
                "lights/3",
            ),
            (
                r#"{"t":"event","e":"added","r":"groups","id":"7","group":{"name":"Hall"}}"#,
                "added",
                "groups/7",
            ),
            (
                r#"{"t":"event","e":"changed","r":"alarmsystems","id":"1","state":{}}"#,
                "changed",
                "alarmsystems/1",
            ),
            // A kind newer gateways may add passes through.
            (r#"{"t":"event","e":"renamed","r":"lights","id":"1"}"#, "renamed", "lights/1"),
            // Numeric ids are taken.
            (r#"{"t":"event","e":"changed","r":"lights","id":12}"#, "changed", "lights/12"),
        ];
        for (text, kind, topic) in cases {
            assert_eq!(mapped(text), (kind.to_string(), topic.to_string()), "{text}");
        }
    }

    #[test]
    fn odd_frames_are_clear_errors() {
        refused_with("not json", "not JSON");
        refused_with("[1,2]", "not a JSON object");
        refused_with(r#"{"e":"changed","r":"lights","id":"1"}"#, "no `t`");
        refused_with(r#"{"t":"update","e":"changed","r":"lights","id":"1"}"#, "not \"event\"");
        refused_with(r#"{"t":"event","r":"lights","id":"1"}"#, "no `e`");
        refused_with(r#"{"t":"event","e":7,"r":"lights","id":"1"}"#, "`e` is not a string");
        refused_with(r#"{"t":"event","e":"changed","id":"1"}"#, "no `r`");
        refused_with(r#"{"t":"event","e":"changed","r":"lights"}"#, "without an `id`");
        refused_with(r#"{"t":"event","e":"changed","r":"lights","id":{"a":1}}"#, "not an id");
        refused_with(r#"{"t":"event","e":"changed","r":"lights","id":-1}"#, "not an id");
        refused_with(r#"{"t":"event","e":"changed","r":"lights","id":""}"#, "empty");
        refused_with(r#"{"t":"event","e":"changed","r":"lights","id":"1/2"}"#, "`/`");
        refused_with(r#"{"t":"event","e":"chan\nged","r":"lights","id":"1"}"#, "control");
        refused_with(r#"{"t":"event","e":"scene-called","r":"scenes","gid":"0"}"#, "`scid`");
    }

    #[test]
    fn config_ports() {
        let body = br#"{"name":"gw","websocketport":8088,"websocketport_wss":8443}"#;
        assert_eq!(websocket_port(200, body, false), Ok(8088));
        assert_eq!(websocket_port(200, body, true), Ok(8443));
        let no_wss = websocket_port(200, br#"{"websocketport":8088}"#, true).unwrap_err();
        assert!(no_wss.message.contains("tls=false"), "{no_wss}");
        for bad in [
            &br#"{"name":"gw"}"#[..],
            br#"{"websocketport":"8088"}"#,
            br#"{"websocketport":0}"#,
            br#"{"websocketport":70000}"#,
            b"[]",
            b"<html>",
            b"",
        ] {
            let e = websocket_port(200, bad, false).unwrap_err();
            assert_eq!(e.code, ErrorCode::Protocol, "{}: {e}", String::from_utf8_lossy(bad));
        }
        let refused = br#"[{"error":{"type":1,"address":"/","description":"unauthorized user"}}]"#;
        let e = websocket_port(403, refused, false).unwrap_err();
        assert_eq!(e.code, ErrorCode::Auth, "{e}");
        assert!(e.message.contains("unauthorized user"), "{e}");
        assert_eq!(websocket_port(503, b"", false).unwrap_err().code, ErrorCode::HttpStatus);
    }

    #[test]
    fn snapshot_items_keep_the_gateway_order() {
        let body = br#"{"3":{"name":"b"},"1":{"name":"a"}}"#;
        let items = parse_snapshot("lights", 200, body).unwrap();
        assert_eq!(
            items,
            vec![("3".into(), r#"{"name":"b"}"#.into()), ("1".into(), r#"{"name":"a"}"#.into())]
        );
        assert!(parse_snapshot("lights", 200, b"{}").unwrap().is_empty());
        for bad in [&b"[1]"[..], br#"{"1":5}"#, br#"{"a/b":{}}"#, b"nope"] {
            let e = parse_snapshot("lights", 200, bad).unwrap_err();
            assert_eq!(e.code, ErrorCode::Protocol, "{e}");
            assert!(e.message.starts_with("reading lights"), "{e}");
        }
    }

    #[test]
    fn api_key_replies() {
        assert_eq!(
            parse_api_key(200, br#"[{"success":{"username":"83B7780291"}}]"#),
            Ok("83B7780291".into())
        );
        let locked =
            br#"[{"error":{"type":101,"address":"/","description":"link button not pressed"}}]"#;
        let e = parse_api_key(403, locked).unwrap_err();
        assert_eq!(e.code, ErrorCode::Auth);
        assert!(
            e.message.contains("link button not pressed") && e.message.contains("Phoscon"),
            "{e}"
        );
        // Some gateways answer errors with 200.
        assert_eq!(parse_api_key(200, locked).unwrap_err().code, ErrorCode::Auth);
        let bad_value =
            br#"[{"error":{"type":7,"address":"/devicetype","description":"invalid value"}}]"#;
        assert_eq!(parse_api_key(400, bad_value).unwrap_err().code, ErrorCode::HttpStatus);
        assert_eq!(parse_api_key(200, b"{}").unwrap_err().code, ErrorCode::Protocol);
        assert_eq!(
            parse_api_key(200, br#"[{"success":{"username":""}}]"#).unwrap_err().code,
            ErrorCode::Protocol
        );
    }

    #[test]
    fn api_key_request_shape() {
        let gw = Url::parse("http://gw:8080/deconz/").unwrap();
        let r =
            api_key_request(&gw, "livefeed", Some("0123456789"), Some(("delight", "pw"))).unwrap();
        assert_eq!((r.method.as_str(), r.url.target.as_str()), ("POST", "/deconz/api"));
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body, serde_json::json!({"devicetype":"livefeed","username":"0123456789"}));
        assert!(r.headers.contains(&("Authorization".into(), "Basic ZGVsaWdodDpwdw==".into())));
        assert!(api_key_request(&gw, "", None, None).is_err());
        assert!(api_key_request(&gw, &"x".repeat(41), None, None).is_err());
        assert!(api_key_request(&gw, "app", Some("short"), None).is_err());
    }

    fn config(url: &str, options: &[(&str, &str)]) -> SessionConfig {
        let mut c = SessionConfig::new(url);
        c.options = options.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        c
    }

    #[test]
    fn options() {
        let bad = |url: &str, options: &[(&str, &str)]| {
            let e = DeconzDriver::new(&config(url, options)).err().expect("refused");
            assert_eq!(e.code, ErrorCode::InvalidParameter, "{url} {options:?}: {e}");
        };
        bad("http://gw/", &[]);
        bad("ws://gw/", &[("apikey", "K")]);
        bad("http://gw/", &[("apikey", "a/b")]);
        bad("http://gw/", &[("apikey", "K"), ("tls", "maybe")]);
        bad("http://gw/", &[("apikey", "K"), ("snapshot", "lights,scenes")]);
        bad("http://gw/", &[("apikey", "K"), ("devicetype", "app")]);
        bad("http://gw/", &[("devicetype", "app"), ("user", "u")]);
        let d = DeconzDriver::new(&config(
            "https://gw/",
            &[("apikey", "K"), ("snapshot", "groups, lights,groups")],
        ))
        .unwrap();
        match d.mode {
            Mode::Feed { tls, snapshot, .. } => {
                assert_eq!((tls, snapshot), (true, vec!["groups", "lights"]))
            }
            Mode::AcquireKey(_) => panic!("a feed"),
        }
        let mut d = DeconzDriver::new(&config("http://gw:80/", &[("apikey", "K")])).unwrap();
        match d.start(&SessionConfig::new("http://gw/")).unwrap() {
            Step::Http(r) => assert_eq!(r.url.target, "/api/K/config"),
            other => panic!("{other:?}"),
        }
    }
}
