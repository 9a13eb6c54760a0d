//! Igtimi live data (PROTOCOLS.md §1): fetch the WebSocket server list, try the servers in
//! order, send the configuration block (access token, device serials) once per connection,
//! wait for the server's timestamp (the only success signal), then keep the `1` heartbeat
//! going both ways and turn data frames into one event per device and data type.
//!
//! Every (re)connection fetches the server list again. A server that cannot be reached
//! (connect and upgrade deadlines are the session's `Timeouts`), that sends no timestamp
//! within `timestamp_timeout_ms`, or that closes before its timestamp is skipped at once for
//! the next one in the list; when the list is used up the session fails with the last
//! error (or, with reconnecting on, waits out the backoff and starts over from the list).
//! Once confirmed, a connection that stays silent (no heartbeat, no data) for `watchdog_ms`
//! fails with `PeerTimeout`. A server list or upgrade answered HTTP 401/403 is `Auth`, which
//! ends the session for good; a close before the timestamp (the vendor documents no refusal
//! message) is `Protocol` and goes on to the next server.
//!
//! The session URL is the service's base URL; the server list is read from
//! `<base>/server_listers/web_sockets`, or from the URL itself when its path already ends in
//! `/web_sockets`. Classic Igtimi: `https://www.igtimi.com`; the SAP replacement:
//! `https://wind.sapsailing.com/igtimi/api/v1` with `token_in=header` and `binary=pass`.
//!
//! Options:
//! - `token`: the access token. Required unless the session has its own `Authorization`
//!   header (which then goes on the server-list request and the upgrade).
//! - `device` (repeatable): device serial numbers, such as `GA-DK-AAAD`.
//! - `token_in`: `body` (default: `"access_token"` in the configuration block) or `header`
//!   (`Authorization: Bearer <token>` on the server-list request and the WebSocket upgrade;
//!   the block then carries only the devices).
//! - `binary`: `pass` (default: binary frames become `Binary` events, for servers that send
//!   protobuf) or `ignore`.
//! - `heartbeat_ms` (default 15000), `watchdog_ms` (default 45000),
//!   `timestamp_timeout_ms` (default 5000; 0 reports the feed open as soon as the block is
//!   sent, for servers that send no timestamp). 0 turns the heartbeat or watchdog off.
//!
//! Events: a data frame gives one `Event` per device and data type with topic
//! `SERIAL/TYPE`, event type `TYPE` (the decimal type code: 1 = GPS position, 9 = SOG, ...;
//! unknown codes are passed on too) and the payload
//! `{"serial":"GA-DK-AAAD","type":1,"dsi":0,"samples":[{"t":1384906722040,"v":[170.5,-45.8]}]}`
//! (`t` in JS epoch ms, `v[i]` = component `"i+1"`, `dsi` from a `TYPE:DSI` key). The
//! `Open` state's payload is `{"server":"wss://...","time":<server ms or null>}`. A frame
//! that is not a heartbeat, timestamp or data array, and data parts of another shape, give
//! an `Error` event (`Protocol`) and the feed goes on.
//!
//! Subscriptions: `Session::subscribe(serial)` / `unsubscribe(serial)` change the device
//! set; since the block is sent once per connection, the session then reconnects (server
//! list, next block; changes within 100 ms of the first make a single reconnect). Text the
//! host sends goes to the server as is.

pub mod frames;

use crate::config::SessionConfig;
use crate::error::{Error, ErrorCode, Result};
use crate::event::{Event, EventKind};
use crate::http::{Request, Response};
use crate::session::command::Outbound;
use crate::session::driver::{Driver, Io, Step};
use crate::url::{Scheme, Url};
use frames::{Frame, SampleSet};
use serde_json::{Map, Value};
use std::time::{Duration, Instant};
use tungstenite::Message;

pub use frames::map_frame;

/// How long a device change waits before the reconnect it needs, so that a host
/// subscribing several serials in a row causes one reconnect, not one each.
const CHANGE_DELAY: Duration = Duration::from_millis(100);

/// Where the access token goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TokenIn {
    /// `"access_token"` in the configuration block (classic Igtimi).
    Body,
    /// `Authorization: Bearer` on the list request and the upgrade (SAP's replacement).
    Header,
}

/// What the timers of one connection want done.
#[derive(Debug, PartialEq, Eq)]
enum Due {
    Nothing,
    /// Send our heartbeat.
    Beat,
    /// Nothing heard for this long: the link is dead.
    Silent(Duration),
    /// The timestamp did not come within this long.
    NoTimestamp(Duration),
}

/// The timers of one connection: our heartbeat, the receive watchdog and the deadline for
/// the server's timestamp. Sans-IO, so the timing rules are unit-tested.
#[derive(Debug)]
struct Liveness {
    heartbeat: Option<Duration>,
    watchdog: Option<Duration>,
    next_beat: Option<Instant>,
    last_heard: Instant,
    timestamp: Option<(Instant, Duration)>,
}

impl Liveness {
    fn new(d: &IgtimiDriver, now: Instant) -> Liveness {
        Liveness {
            heartbeat: d.heartbeat,
            watchdog: d.watchdog,
            next_beat: d.heartbeat.map(|h| now + h),
            last_heard: now,
            timestamp: d.timestamp_timeout.map(|t| (now + t, t)),
        }
    }

    /// Heartbeat or data arrived: the watchdog starts again.
    fn heard(&mut self, now: Instant) {
        self.last_heard = now;
    }

    fn confirmed(&mut self) {
        self.timestamp = None;
    }

    fn deadline(&self) -> Option<Instant> {
        [self.next_beat, self.watchdog.map(|w| self.last_heard + w), self.timestamp.map(|t| t.0)]
            .into_iter()
            .flatten()
            .min()
    }

    /// What is due at `now`; a beat moves the next one on.
    fn due(&mut self, now: Instant) -> Due {
        if let Some((at, within)) = self.timestamp {
            if now >= at {
                return Due::NoTimestamp(within);
            }
        }
        if let Some(w) = self.watchdog {
            if now >= self.last_heard + w {
                return Due::Silent(w);
            }
        }
        match (self.next_beat, self.heartbeat) {
            (Some(at), Some(every)) if now >= at => {
                // From now, not from `at`: a stalled loop must not send a burst.
                self.next_beat = Some(now + every);
                Due::Beat
            }
            _ => Due::Nothing,
        }
    }
}

/// The server list being walked.
struct Walk {
    servers: Vec<Url>,
    at: usize,
}

/// One WebSocket connection.
struct Conn {
    server: Url,
    confirmed: bool,
    live: Liveness,
}

/// The Igtimi profile.
pub struct IgtimiDriver {
    lister: Url,
    token: Option<String>,
    token_in: TokenIn,
    devices: Vec<String>,
    pass_binary: bool,
    heartbeat: Option<Duration>,
    watchdog: Option<Duration>,
    timestamp_timeout: Option<Duration>,
    /// The session's own headers, also sent with the server-list request.
    headers: Vec<(String, String)>,
    walk: Option<Walk>,
    /// `retry_now` chose the next server of the walk for the coming `start`.
    retry_next: bool,
    conn: Option<Conn>,
    /// The device set changed: reconnect at this time (coalesces a burst of changes).
    restart_at: Option<Instant>,
}

fn invalid(message: impl Into<String>) -> Error {
    Error::new(ErrorCode::InvalidParameter, message)
}

/// A duration option in milliseconds; 0 is `None` (off).
fn millis(config: &SessionConfig, key: &str, default: u64) -> Result<Option<Duration>> {
    let ms = config.option_number(key)?.unwrap_or(default);
    Ok((ms > 0).then(|| Duration::from_millis(ms)))
}

/// The server-lister URL for a session URL (see the module documentation).
fn lister_url(base: &str) -> Result<Url> {
    let mut url = Url::parse(base)?;
    if !matches!(url.scheme, Scheme::Http | Scheme::Https) {
        return Err(invalid(
            "Igtimi needs the http(s) base URL of the service (the WebSocket servers come from its server list)",
        ));
    }
    if !url.path().trim_end_matches('/').ends_with("/web_sockets") {
        let (path, query) = match url.target.split_once('?') {
            Some((p, q)) => (p.to_string(), Some(q.to_string())),
            None => (url.target.clone(), None),
        };
        let mut target = format!("{}/server_listers/web_sockets", path.trim_end_matches('/'));
        if let Some(q) = query {
            target.push('?');
            target.push_str(&q);
        }
        url.target = target;
    }
    Ok(url)
}

impl IgtimiDriver {
    /// Reads the options (see the module documentation); mistakes are `InvalidParameter`.
    pub fn new(config: &SessionConfig) -> Result<IgtimiDriver> {
        let lister = lister_url(&config.url)?;
        let token = config.option("token").map(str::trim).filter(|t| !t.is_empty());
        let own_auth = config.headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("authorization"));
        if token.is_none() && !own_auth {
            return Err(invalid("Igtimi needs an access token (option `token`)"));
        }
        let token_in = match config.option("token_in").unwrap_or("body") {
            "body" => TokenIn::Body,
            "header" => TokenIn::Header,
            other => {
                return Err(invalid(format!("option `token_in` is body or header, not {other:?}")));
            }
        };
        let pass_binary = match config.option("binary").unwrap_or("pass") {
            "pass" => true,
            "ignore" => false,
            other => {
                return Err(invalid(format!("option `binary` is pass or ignore, not {other:?}")));
            }
        };
        let mut devices: Vec<String> = Vec::new();
        for d in config.option_values("device").map(str::trim).filter(|d| !d.is_empty()) {
            if !devices.iter().any(|x| x == d) {
                devices.push(d.to_string());
            }
        }
        if devices.is_empty() {
            log::warn!(
                "igtimi: no device serials (option `device`): no data will flow until one is subscribed"
            );
        }
        Ok(IgtimiDriver {
            lister,
            token: token.map(str::to_string),
            token_in,
            devices,
            pass_binary,
            heartbeat: millis(config, "heartbeat_ms", 15_000)?,
            watchdog: millis(config, "watchdog_ms", 45_000)?,
            timestamp_timeout: millis(config, "timestamp_timeout_ms", 5_000)?,
            headers: config.headers.clone(),
            walk: None,
            retry_next: false,
            conn: None,
            restart_at: None,
        })
    }

    /// `Authorization: Bearer` when the token goes in a header and the session has no
    /// `Authorization` of its own.
    fn auth_header(&self) -> Option<(String, String)> {
        let own = self.headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("authorization"));
        match (&self.token, self.token_in, own) {
            (Some(token), TokenIn::Header, false) => {
                Some(("Authorization".to_string(), format!("Bearer {token}")))
            }
            _ => None,
        }
    }

    /// `{"access_token":"…","devices":[…]}` (§1.4 step 3); no token when it goes in a header.
    fn configuration_block(&self) -> String {
        let mut block = Map::new();
        if let (Some(token), TokenIn::Body) = (&self.token, self.token_in) {
            block.insert("access_token".into(), Value::from(token.as_str()));
        }
        block.insert(
            "devices".into(),
            Value::Array(self.devices.iter().map(|d| Value::from(d.as_str())).collect()),
        );
        Value::Object(block).to_string()
    }

    fn list_request(&self) -> Request {
        let mut request = Request::get(self.lister.clone());
        for (n, v) in &self.headers {
            request = request.header(n, v);
        }
        if !request.has_header("Accept") {
            request = request.header("Accept", "application/json");
        }
        if let Some((n, v)) = self.auth_header() {
            request = request.header(&n, &v);
        }
        request
    }

    fn current_server(&self) -> Option<&Url> {
        self.walk.as_ref().and_then(|w| w.servers.get(w.at))
    }

    /// The feed is confirmed: report it open.
    fn confirm(&mut self, time: Option<i64>, io: &mut Io<'_>) {
        let Some(conn) = &mut self.conn else { return };
        conn.confirmed = true;
        conn.live.confirmed();
        let detail = serde_json::json!({ "server": conn.server.to_string(), "time": time });
        log::info!("igtimi: {} confirmed the configuration", conn.server);
        io.open(&detail.to_string());
    }

    fn emit_error(io: &Io<'_>, e: &Error) {
        log::warn!("{}", e.message);
        io.emit(&Event::new(EventKind::Error, io.state(), e.message.as_bytes()).with_error(e));
    }

    fn change_devices(&mut self, serial: &str, add: bool, now: Instant) {
        let serial = serial.trim();
        let known = self.devices.iter().position(|d| d == serial);
        match (add, known) {
            (true, None) => self.devices.push(serial.to_string()),
            (false, Some(i)) => {
                self.devices.remove(i);
            }
            _ => return,
        }
        log::info!(
            "igtimi: {} device(s) now; reconnecting with a new configuration block",
            self.devices.len()
        );
        self.restart_at.get_or_insert(now + CHANGE_DELAY);
    }
}

impl Driver for IgtimiDriver {
    fn start(&mut self, _config: &SessionConfig) -> Result<Step> {
        self.conn = None;
        self.restart_at = None;
        if std::mem::take(&mut self.retry_next) {
            if let Some(server) = self.current_server() {
                log::info!("igtimi: trying the next server, {server}");
                return Ok(Step::WebSocket(server.clone()));
            }
        }
        // Every (re)connection starts from a fresh server list (§1.7).
        self.walk = None;
        Ok(Step::Http(self.list_request()))
    }

    fn on_http_response(&mut self, response: Response, _io: &mut Io<'_>) -> Result<Step> {
        if !(200..300).contains(&response.status) {
            let code = match response.status {
                401 | 403 => ErrorCode::Auth,
                _ => ErrorCode::HttpStatus,
            };
            return Err(Error::new(
                code,
                format!("igtimi: the server list request answered HTTP {}", response.status),
            ));
        }
        let (servers, skipped) = frames::parse_server_list(&response.body)?;
        if !skipped.is_empty() {
            log::warn!("igtimi: server list entries skipped: {}", skipped.join(", "));
        }
        let Some(first) = servers.first().cloned() else {
            return Err(Error::new(ErrorCode::Protocol, "igtimi: the server list is empty"));
        };
        log::info!("igtimi: {} server(s) listed, trying {first}", servers.len());
        self.walk = Some(Walk { servers, at: 0 });
        Ok(Step::WebSocket(first))
    }

    fn on_open(&mut self, _subprotocol: &str, io: &mut Io<'_>) -> Result<()> {
        let Some(server) = self.current_server().cloned() else {
            return Err(Error::new(ErrorCode::WrongState, "igtimi: a WebSocket without a server"));
        };
        let live = Liveness::new(self, io.now);
        self.conn = Some(Conn { server, confirmed: false, live });
        io.send(Message::text(self.configuration_block()));
        log::info!("igtimi: configuration block sent ({} device(s))", self.devices.len());
        if self.timestamp_timeout.is_none() {
            self.confirm(None, io);
        }
        Ok(())
    }

    fn on_text(&mut self, text: &str, io: &mut Io<'_>) -> Result<()> {
        if let Some(conn) = &mut self.conn {
            conn.live.heard(io.now);
        }
        let shared: &Io<'_> = io;
        let mapped = frames::map_frame(text, &mut |s: &SampleSet<'_>| {
            shared.emit(
                &Event::new(EventKind::Event, shared.state(), s.json.as_bytes())
                    .with_topic(s.topic)
                    .with_type(s.data_type),
            );
        });
        match mapped {
            Ok(Frame::Heartbeat) => {}
            Ok(Frame::Timestamp(ms)) => {
                if self.conn.as_ref().is_some_and(|c| !c.confirmed) {
                    self.confirm(Some(ms), io);
                } else {
                    log::debug!("igtimi: server time {ms}");
                }
            }
            Ok(Frame::Data(report)) => {
                if let Some(summary) = report.summary() {
                    Self::emit_error(io, &Error::new(ErrorCode::Protocol, summary));
                }
            }
            // One bad frame does not end the feed.
            Err(e) => Self::emit_error(io, &e),
        }
        Ok(())
    }

    fn on_binary(&mut self, data: &[u8], io: &mut Io<'_>) -> Result<()> {
        if let Some(conn) = &mut self.conn {
            conn.live.heard(io.now);
        }
        if self.pass_binary {
            io.emit(&Event::new(EventKind::Binary, io.state(), data));
        } else {
            log::debug!("igtimi: a {}-byte binary frame ignored (binary=ignore)", data.len());
        }
        Ok(())
    }

    fn on_send(&mut self, out: Outbound, io: &mut Io<'_>) -> Result<()> {
        match out {
            Outbound::Message(m) => {
                io.send(m);
                Ok(())
            }
            Outbound::Subscribe(serial) => {
                self.change_devices(&serial, true, io.now);
                Ok(())
            }
            Outbound::Unsubscribe(serial) => {
                self.change_devices(&serial, false, io.now);
                Ok(())
            }
            _ => Err(Error::new(ErrorCode::NotSupported, "Igtimi has no such operation")),
        }
    }

    fn on_timer(&mut self, io: &mut Io<'_>) -> Result<()> {
        if self.restart_at.is_some_and(|at| io.now >= at) {
            self.restart_at = None;
            io.restart("the device set changed");
            return Ok(());
        }
        let Some(conn) = &mut self.conn else { return Ok(()) };
        loop {
            match conn.live.due(io.now) {
                Due::Nothing => return Ok(()),
                Due::Beat => io.send(Message::text("1")),
                Due::Silent(w) => {
                    return Err(Error::new(
                        ErrorCode::PeerTimeout,
                        format!("igtimi: no heartbeat or data from {} for {w:?}", conn.server),
                    ));
                }
                Due::NoTimestamp(within) => {
                    return Err(Error::new(
                        ErrorCode::Timeout,
                        format!(
                            "igtimi: {} sent no timestamp within {within:?} of the configuration block",
                            conn.server
                        ),
                    ));
                }
            }
        }
    }

    fn deadline(&self) -> Option<Instant> {
        let live = self.conn.as_ref().and_then(|c| c.live.deadline());
        match (live, self.restart_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn retry_now(&mut self, error: &Error) -> bool {
        // Only while looking for a server: a confirmed connection that drops starts over
        // from the list (after the reconnect backoff), not with the next server.
        let searching = self.conn.as_ref().is_none_or(|c| !c.confirmed);
        if let (true, Some(walk)) = (searching, &mut self.walk) {
            if walk.at + 1 < walk.servers.len() {
                log::warn!(
                    "igtimi: {} failed ({}); trying the next server",
                    walk.servers[walk.at],
                    error.message
                );
                walk.at += 1;
                self.retry_next = true;
                return true;
            }
        }
        self.walk = None;
        self.retry_next = false;
        false
    }

    fn on_peer_close(&mut self, code: u16, reason: &str) -> Result<()> {
        match &self.conn {
            // Maybe a refused token, maybe a server in trouble (the vendor documents no
            // refusal): not `Auth`, which would end the session for good; the next server,
            // then the reconnect backoff, follow (§1.7).
            Some(conn) if !conn.confirmed => Err(Error::new(
                ErrorCode::Protocol,
                format!(
                    "igtimi: {} closed the connection ({code} {}) before confirming the configuration block (refused token or devices?)",
                    conn.server,
                    frames::excerpt(reason)
                ),
            )),
            _ => Ok(()),
        }
    }

    fn upgrade_headers(&self) -> Vec<(String, String)> {
        self.auth_header().into_iter().collect()
    }

    fn websocket_keepalive(&self) -> bool {
        // The `1` heartbeat and the watchdog do that job.
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: &str, options: &[(&str, &str)]) -> SessionConfig {
        let mut c = SessionConfig::new(url);
        c.protocol = crate::config::Protocol::Igtimi;
        c.options.extend(options.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        c
    }

    fn driver(options: &[(&str, &str)]) -> IgtimiDriver {
        IgtimiDriver::new(&config("https://www.igtimi.com", options)).unwrap()
    }

    #[test]
    fn lister_urls() {
        let target = |u: &str| lister_url(u).unwrap().target;
        assert_eq!(target("https://www.igtimi.com"), "/server_listers/web_sockets");
        assert_eq!(target("https://www.igtimi.com/"), "/server_listers/web_sockets");
        assert_eq!(
            target("https://wind.sapsailing.com/igtimi/api/v1/"),
            "/igtimi/api/v1/server_listers/web_sockets"
        );
        assert_eq!(
            target("http://h/x/server_listers/web_sockets"),
            "/x/server_listers/web_sockets"
        );
        assert_eq!(target("http://h/base?k=v"), "/base/server_listers/web_sockets?k=v");
        assert_eq!(lister_url("wss://h/").unwrap_err().code, ErrorCode::InvalidParameter);
    }

    #[test]
    fn options_are_checked() {
        let url = "https://www.igtimi.com";
        for bad in [
            &[][..],
            &[("token", " ")],
            &[("token", "t"), ("token_in", "query")],
            &[("token", "t"), ("binary", "maybe")],
            &[("token", "t"), ("heartbeat_ms", "15s")],
            &[("token", "t"), ("watchdog_ms", "-1")],
        ] {
            let e = IgtimiDriver::new(&config(url, bad)).err().expect("refused");
            assert_eq!(e.code, ErrorCode::InvalidParameter, "{bad:?}");
        }
        // The session's own Authorization header stands in for the token.
        let mut c = config(url, &[]);
        c.add_header("Authorization", "Basic dTpw").unwrap();
        assert!(IgtimiDriver::new(&c).is_ok());
    }

    #[test]
    fn documented_timings_are_the_defaults() {
        let d = driver(&[("token", "t")]);
        assert_eq!(d.heartbeat, Some(Duration::from_secs(15)));
        assert_eq!(d.watchdog, Some(Duration::from_secs(45)));
        assert_eq!(d.timestamp_timeout, Some(Duration::from_secs(5)));
        let d = driver(&[("token", "t"), ("heartbeat_ms", "0"), ("timestamp_timeout_ms", "0")]);
        assert_eq!((d.heartbeat, d.timestamp_timeout), (None, None));
    }

    #[test]
    fn configuration_blocks() {
        let d = driver(&[("token", "tok"), ("device", "A"), ("device", " B "), ("device", "A")]);
        assert_eq!(d.configuration_block(), r#"{"access_token":"tok","devices":["A","B"]}"#);
        assert!(d.auth_header().is_none());
        let d = driver(&[("token", "tok"), ("device", "A"), ("token_in", "header")]);
        assert_eq!(d.configuration_block(), r#"{"devices":["A"]}"#);
        assert_eq!(d.auth_header(), Some(("Authorization".into(), "Bearer tok".into())));
        let r = d.list_request();
        assert!(r.headers.contains(&("Authorization".into(), "Bearer tok".into())));
        assert!(r.headers.contains(&("Accept".into(), "application/json".into())));
    }

    #[test]
    fn liveness_beats_watches_and_waits_for_the_timestamp() {
        let d = driver(&[
            ("token", "t"),
            ("heartbeat_ms", "100"),
            ("watchdog_ms", "300"),
            ("timestamp_timeout_ms", "250"),
        ]);
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut live = Liveness::new(&d, t0);
        assert_eq!(live.deadline(), Some(ms(100)));
        assert_eq!(live.due(ms(50)), Due::Nothing);
        assert_eq!(live.due(ms(100)), Due::Beat);
        assert_eq!(live.deadline(), Some(ms(200)));
        assert_eq!(live.due(ms(250)), Due::NoTimestamp(Duration::from_millis(250)));
        live.confirmed();
        live.heard(ms(250));
        assert_eq!(live.due(ms(260)), Due::Beat);
        assert_eq!(live.deadline(), Some(ms(360)));
        live.heard(ms(500));
        assert_eq!(live.due(ms(500)), Due::Beat);
        assert_eq!(live.due(ms(799)), Due::Beat);
        assert_eq!(live.due(ms(800)), Due::Silent(Duration::from_millis(300)));
    }

    #[test]
    fn the_walk_moves_on_only_while_searching() {
        let mut d = driver(&[("token", "t")]);
        let err = Error::new(ErrorCode::Connect, "refused");
        assert!(!d.retry_now(&err), "no list yet");
        let servers = vec![Url::parse("ws://a/").unwrap(), Url::parse("ws://b/").unwrap()];
        d.walk = Some(Walk { servers, at: 0 });
        assert!(d.retry_now(&err));
        let Ok(Step::WebSocket(url)) = d.start(&config("https://x", &[])) else { panic!() };
        assert_eq!(url.host, "b");
        assert!(!d.retry_now(&err), "list used up");
        assert!(matches!(d.start(&config("https://x", &[])), Ok(Step::Http(_))));
        // A confirmed connection that fails goes back to the list.
        let servers = vec![Url::parse("ws://a/").unwrap(), Url::parse("ws://b/").unwrap()];
        d.walk = Some(Walk { servers, at: 0 });
        let live = Liveness::new(&d, Instant::now());
        d.conn = Some(Conn { server: Url::parse("ws://a/").unwrap(), confirmed: true, live });
        assert!(!d.retry_now(&err));
        assert!(d.walk.is_none());
    }
}
