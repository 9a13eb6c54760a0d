//! The deCONZ profile against a fixture gateway (tests/peers/deconz_fixture.py, written from
//! PROTOCOLS.md §4): the config read for the WebSocket port (plain and TLS), events of
//! every kind, the REST snapshot, WebSocket pings, bad input from the gateway, API-key
//! acquisition with the link-button error, and what reconnecting re-reads.

mod support;

use livefeed::{ErrorCode, Event, EventKind, Protocol, Reconnect, SessionConfig, SessionState};
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};
use support::{Peer, TestLoop, WAIT, pki};

const KEY: &str = "0123ABCDEF";

// ---------------------------------------------------------------------------------------
// A collector that keeps the event type (support's `Ev` has no field for it).

#[derive(Clone, Debug)]
struct Got {
    kind: EventKind,
    state: SessionState,
    event_type: String,
    topic: String,
    text: String,
    error: Option<ErrorCode>,
    message: String,
    close_code: u16,
}

impl Got {
    fn is_state(&self, s: SessionState) -> bool {
        self.kind == EventKind::State && self.state == s
    }

    fn is_event(&self) -> bool {
        self.kind == EventKind::Event
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("{:?} is not JSON: {e}", self.text))
    }
}

struct Feed {
    rx: Receiver<Got>,
    seen: Vec<Got>,
}

fn collector() -> (impl FnMut(&Event<'_>) + Send + 'static, Feed) {
    let (tx, rx) = mpsc::channel();
    let handler = move |ev: &Event<'_>| {
        let _ = tx.send(Got {
            kind: ev.kind(),
            state: ev.state(),
            event_type: ev.event_type().to_string(),
            topic: ev.topic().to_string(),
            text: String::from_utf8_lossy(ev.payload()).into_owned(),
            error: ev.error().map(|e| e.code),
            message: ev.error().map(|e| e.message.clone()).unwrap_or_default(),
            close_code: ev.close_code(),
        });
    };
    (handler, Feed { rx, seen: Vec::new() })
}

impl Feed {
    fn history(&self) -> String {
        self.seen
            .iter()
            .map(|g| {
                let text: String = g.text.chars().take(70).collect();
                format!(
                    "\n  {:?}/{:?} type={:?} topic={:?} err={:?} {text:?}",
                    g.kind, g.state, g.event_type, g.topic, g.error
                )
            })
            .collect()
    }

    /// Skips events until one satisfies `pred`, within [`WAIT`].
    fn wait_for(&mut self, what: &str, pred: impl Fn(&Got) -> bool) -> Got {
        let end = Instant::now() + WAIT;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(g) => {
                    self.seen.push(g.clone());
                    if pred(&g) {
                        return g;
                    }
                }
                Err(e) => panic!("waited {WAIT:?} for {what} ({e:?}); seen:{}", self.history()),
            }
        }
    }

    /// The next `n` events of kind `Event`, skipping nothing else but pings' silence:
    /// any other kind in between fails the test.
    fn events(&mut self, n: usize) -> Vec<Got> {
        (0..n)
            .map(|_| {
                let g = self.wait_for("an event", |_| true);
                assert!(g.is_event(), "expected an Event:{}", self.history());
                g
            })
            .collect()
    }

    fn open(&mut self) {
        self.wait_for("Open", |g| g.is_state(SessionState::Open));
    }

    /// Every event up to and including `State(Closed)`.
    fn until_closed(&mut self) -> Vec<Got> {
        let start = self.seen.len();
        self.wait_for("Closed", |g| g.is_state(SessionState::Closed));
        self.seen[start..].to_vec()
    }

    fn errors(&self) -> Vec<&Got> {
        self.seen.iter().filter(|g| g.kind == EventKind::Error).collect()
    }
}

// ---------------------------------------------------------------------------------------
// The fixture gateway

fn gateway(args: &[&str]) -> Peer {
    Peer::spawn("deconz_fixture.py", args, &[])
}

fn tls_gateway() -> Peer {
    let pki = pki();
    Peer::spawn(
        "deconz_fixture.py",
        &["--tls"],
        &[("LF_TLS_CERT", &pki.good_cert), ("LF_TLS_KEY", &pki.good_key)],
    )
}

/// One request to the fixture's REST port: `(status, JSON body)`.
fn http(peer: &Peer, method: &str, path: &str, body: &[u8]) -> (u16, Value) {
    let mut s = TcpStream::connect(("127.0.0.1", peer.port)).expect("connect to the fixture");
    s.set_read_timeout(Some(WAIT)).unwrap();
    let head =
        format!("{method} {path} HTTP/1.0\r\nHost: gw\r\nContent-Length: {}\r\n\r\n", body.len());
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).expect("the fixture answered in time");
    let answer = String::from_utf8_lossy(&answer);
    let (head, body) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).expect("a status");
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// A control request that must succeed.
fn control(peer: &Peer, method: &str, path: &str, body: &[u8]) -> Value {
    let (status, answer) = http(peer, method, path, body);
    assert_eq!(status, 200, "{method} {path}: {answer}");
    answer
}

fn stats(peer: &Peer) -> Value {
    control(peer, "GET", "/control/stats", b"")
}

/// The stats once `counter` reached `n` (the fixture waits, bounded).
fn stats_once(peer: &Peer, counter: &str, n: usize) -> Value {
    control(peer, "GET", &format!("/control/stats?until={counter}&n={n}"), b"")
}

fn config(peer: &Peer, options: &[(&str, &str)]) -> SessionConfig {
    let mut c = SessionConfig::new(format!("http://127.0.0.1:{}", peer.port));
    c.protocol = Protocol::Deconz;
    c.options.extend(options.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    c
}

/// What POST /control/emit sends, as (type, topic) — from PROTOCOLS.md §4.3, the fixture's
/// EVENTS list in order.
const EVERY_KIND: [(&str, &str); 13] = [
    ("changed", "sensors/5"),
    ("changed", "lights/1"),
    ("scene-called", "groups/0/scenes/2"),
    ("deleted", "lights/3"),
    ("changed", "lights/1"),
    ("changed", "sensors/5"),
    ("changed", "groups/2"),
    ("changed", "groups/2"),
    ("added", "lights/4"),
    ("added", "sensors/9"),
    ("added", "groups/6"),
    ("deleted", "groups/6"),
    ("changed", "alarmsystems/1"),
];

fn expect_every_kind(feed: &mut Feed) {
    let got = feed.events(EVERY_KIND.len());
    for (g, (kind, topic)) in got.iter().zip(EVERY_KIND) {
        assert_eq!((g.event_type.as_str(), g.topic.as_str()), (kind, topic), "{g:?}");
        let message = g.json();
        assert_eq!((&message["t"], &message["e"]), (&json!("event"), &json!(kind)), "{g:?}");
        assert_eq!(g.state, SessionState::Open);
    }
    // The payload is the gateway's message itself.
    assert_eq!(got[0].json()["state"]["buttonevent"], 2002);
    assert_eq!(got[1].json()["attr"]["lastseen"], "2024-06-01T19:18:20Z");
    assert_eq!(got[2].json()["scid"], "2");
    assert_eq!(got[6].json()["name"], "Lounge");
    assert_eq!(got[8].json()["light"]["name"], "Porch");
    assert_eq!(got[10].json()["group"]["name"], "Garden");
}

// ---------------------------------------------------------------------------------------
// Events

#[test]
fn events_of_every_kind_arrive_with_their_type_topic_and_message() {
    let gw = gateway(&[]);
    let lp = TestLoop::start();
    let (h, mut feed) = collector();
    let _s = lp.open(config(&gw, &[("apikey", KEY)]), h).unwrap();
    feed.open();
    control(&gw, "POST", "/control/emit", b"");
    expect_every_kind(&mut feed);
    assert!(feed.errors().is_empty(), "{}", feed.history());
    let st = stats(&gw);
    assert_eq!(st["config_reads"], 1, "{st}");
    assert_eq!(st["ws_ports_connected"], json!([st["ws_port"]]), "the port from the config: {st}");
    // No snapshot unless asked for.
    assert_eq!((&st["lights_reads"], &st["sensors_reads"]), (&json!(0), &json!(0)), "{st}");
    assert_eq!(st["groups_reads"], 0, "{st}");
}

#[test]
fn frames_that_are_not_events_are_reported_and_the_feed_goes_on() {
    let gw = gateway(&[]);
    let lp = TestLoop::start();
    let (h, mut feed) = collector();
    let _s = lp.open(config(&gw, &[("apikey", KEY)]), h).unwrap();
    feed.open();
    let bad: [(&[u8], &str); 6] = [
        (b"this is not JSON", "not JSON"),
        (b"[1,2,3]", "not a JSON object"),
        (br#"{"t":"event","e":"changed","r":"lights"}"#, "without an `id`"),
        (br#"{"t":"event","e":"changed","r":"lights","id":{"deep":[1]}}"#, "not an id"),
        (br#"{"t":"notice","e":"changed","r":"lights","id":"1"}"#, "not \"event\""),
        (br#"{"t":"event","e":"scene-called","r":"scenes","gid":"1"}"#, "`scid`"),
    ];
    for (frame, needle) in bad {
        control(&gw, "POST", "/control/send", frame);
        let e = feed.wait_for("an error", |g| g.kind != EventKind::State);
        assert_eq!((e.kind, e.error), (EventKind::Error, Some(ErrorCode::Protocol)), "{e:?}");
        assert!(e.message.contains(needle), "{:?} lacks {needle:?}", e.message);
    }
    control(&gw, "POST", "/control/send?binary=1", b"\x00\x01");
    let e = feed.wait_for("an error", |g| g.kind != EventKind::State);
    assert_eq!(e.error, Some(ErrorCode::Protocol), "{e:?}");
    assert!(e.message.contains("binary"), "{e:?}");
    // Still open: real events still come through.
    control(&gw, "POST", "/control/emit", b"");
    expect_every_kind(&mut feed);
    assert!(
        feed.seen.iter().all(|g| g.kind != EventKind::State || g.state != SessionState::Closed),
        "{}",
        feed.history()
    );
}

#[test]
fn a_gateway_closing_the_socket_ends_a_session_without_reconnect() {
    let gw = gateway(&[]);
    let lp = TestLoop::start();
    let (h, mut feed) = collector();
    let _s = lp.open(config(&gw, &[("apikey", KEY)]), h).unwrap();
    feed.open();
    stats_once(&gw, "clients", 1);
    control(&gw, "POST", "/control/drop", b"");
    let evs = feed.until_closed();
    let close = evs.iter().find(|g| g.kind == EventKind::Close).expect("a Close event");
    assert_eq!(close.close_code, 1001, "{}", feed.history());
}

// ---------------------------------------------------------------------------------------
// Config and ports

#[test]
fn the_tls_websocket_port_is_used_when_tls_is_wanted() {
    let gw = tls_gateway();
    let lp = TestLoop::start();
    let mut c = config(&gw, &[("apikey", KEY), ("tls", "true")]);
    c.tls.extra_ca_pem.push(pki().ca_pem.clone());
    let (h, mut feed) = collector();
    let _s = lp.open(c, h).unwrap();
    feed.open();
    control(&gw, "POST", "/control/emit", b"");
    expect_every_kind(&mut feed);
    let st = stats(&gw);
    assert_eq!(st["ws_ports_connected"], json!([st["wss_port"]]), "{st}");

    // tls=false takes the plain port of the same gateway.
    let (h, mut plain) = collector();
    let _p = lp.open(config(&gw, &[("apikey", KEY), ("tls", "false")]), h).unwrap();
    plain.open();
    let st = stats_once(&gw, "ws_connects", 2);
    assert_eq!(st["ws_ports_connected"], json!([st["wss_port"], st["ws_port"]]), "{st}");
}

fn bootstrap_fails(gw: &Peer, options: &[(&str, &str)]) -> Got {
    let lp = TestLoop::start();
    let (h, mut feed) = collector();
    let _s = lp.open(config(gw, options), h).unwrap();
    let evs = feed.until_closed();
    assert!(evs.iter().all(|g| !g.is_state(SessionState::Open)), "{}", feed.history());
    assert_eq!(stats(gw)["ws_connects"], 0);
    evs.into_iter().find(|g| g.kind == EventKind::Error).expect("an Error event")
}

#[test]
fn tls_wanted_but_not_offered_is_a_clear_error() {
    let gw = gateway(&[]);
    let e = bootstrap_fails(&gw, &[("apikey", KEY), ("tls", "true")]);
    assert_eq!(e.error, Some(ErrorCode::Protocol), "{e:?}");
    assert!(e.message.contains("websocketport_wss") && e.message.contains("tls=false"), "{e:?}");
}

#[test]
fn a_config_without_a_usable_port_is_a_clear_error() {
    let cases = [
        ("no-port", ErrorCode::Protocol, "no `websocketport`"),
        ("port-string", ErrorCode::Protocol, "is not a port"),
        ("not-json", ErrorCode::Protocol, "not JSON"),
        ("array", ErrorCode::Protocol, "not a JSON object"),
        ("busy", ErrorCode::HttpStatus, "bridge busy"),
    ];
    let gateways: Vec<Peer> = cases.iter().map(|(mode, ..)| gateway(&["--config", mode])).collect();
    for (gw, (mode, code, needle)) in gateways.iter().zip(cases) {
        let e = bootstrap_fails(gw, &[("apikey", KEY)]);
        assert_eq!(e.error, Some(code), "{mode}: {e:?}");
        assert!(e.message.contains(needle), "{mode}: {:?} lacks {needle:?}", e.message);
        assert_eq!(stats(gw)["config_reads"], 1, "{mode}");
    }
}

#[test]
fn an_unknown_api_key_is_an_auth_error() {
    let gw = gateway(&[]);
    let e = bootstrap_fails(&gw, &[("apikey", "FFFFFFFFFF")]);
    assert_eq!(e.error, Some(ErrorCode::Auth), "{e:?}");
    assert!(e.message.contains("unauthorized user"), "{e:?}");
    assert_eq!(stats(&gw)["unauthorized"], 1);
}

#[test]
fn bad_options_are_refused_at_open() {
    let gw = gateway(&[]);
    let lp = TestLoop::start();
    let cases: [(&str, &[(&str, &str)]); 6] = [
        ("no key", &[]),
        ("key with a slash", &[("apikey", "../config")]),
        ("key and devicetype", &[("apikey", KEY), ("devicetype", "app")]),
        ("bad tls", &[("apikey", KEY), ("tls", "sometimes")]),
        ("bad snapshot", &[("apikey", KEY), ("snapshot", "lights,rules")]),
        ("long devicetype", &[("devicetype", "an application name well over forty chars")]),
    ];
    for (what, options) in cases {
        let (h, _feed) = collector();
        let e = lp.open(config(&gw, options), h).err().unwrap_or_else(|| panic!("{what}"));
        assert_eq!(e.code, ErrorCode::InvalidParameter, "{what}: {e}");
    }
    let mut ws = config(&gw, &[("apikey", KEY)]);
    ws.url = format!("ws://127.0.0.1:{}/", gw.port);
    let (h, _feed) = collector();
    assert_eq!(lp.open(ws, h).err().map(|e| e.code), Some(ErrorCode::InvalidParameter));
    let st = stats(&gw);
    assert_eq!((&st["config_reads"], &st["key_posts"]), (&json!(0), &json!(0)), "{st}");
}

// ---------------------------------------------------------------------------------------
// Snapshot

#[test]
fn the_snapshot_of_lights_sensors_and_groups_comes_before_the_socket() {
    let gw = gateway(&[]);
    let lp = TestLoop::start();
    let (h, mut feed) = collector();
    let _s = lp.open(config(&gw, &[("apikey", KEY), ("snapshot", "true")]), h).unwrap();
    feed.open();
    let items: Vec<(String, String)> = feed
        .seen
        .iter()
        .filter(|g| g.is_event())
        .map(|g| (g.event_type.clone(), g.topic.clone()))
        .collect();
    let want = [
        ("snapshot", "lights/1"),
        ("snapshot", "lights/3"),
        ("snapshot-end", "lights"),
        ("snapshot", "sensors/5"),
        ("snapshot-end", "sensors"),
        ("snapshot", "groups/2"),
        ("snapshot-end", "groups"),
    ];
    let want: Vec<(String, String)> =
        want.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
    assert_eq!(items, want, "{}", feed.history());
    let by_topic =
        |t: &str| feed.seen.iter().find(|g| g.is_event() && g.topic == t).unwrap().json();
    assert_eq!(by_topic("lights/1")["name"], "Desk");
    assert_eq!(by_topic("sensors/5")["state"]["buttonevent"], 2002);
    assert_eq!(by_topic("groups/2")["lights"], json!(["1", "3"]));
    assert_eq!(by_topic("lights"), json!(["1", "3"]));
    assert!(feed.seen.iter().filter(|g| g.is_event()).all(|g| g.state == SessionState::Connecting));
    let st = stats(&gw);
    for r in ["lights_reads", "sensors_reads", "groups_reads", "config_reads"] {
        assert_eq!(st[r], 1, "{r}: {st}");
    }
    // Then the live events.
    control(&gw, "POST", "/control/emit", b"");
    expect_every_kind(&mut feed);
}

#[test]
fn the_snapshot_can_name_its_resources() {
    let gw = gateway(&[]);
    let lp = TestLoop::start();
    let (h, mut feed) = collector();
    let _s = lp.open(config(&gw, &[("apikey", KEY), ("snapshot", "groups")]), h).unwrap();
    feed.open();
    let topics: Vec<&str> =
        feed.seen.iter().filter(|g| g.is_event()).map(|g| g.topic.as_str()).collect();
    assert_eq!(topics, ["groups/2", "groups"], "{}", feed.history());
    let st = stats(&gw);
    assert_eq!((&st["lights_reads"], &st["groups_reads"]), (&json!(0), &json!(1)), "{st}");
}

#[test]
fn a_snapshot_of_an_unexpected_shape_is_a_clear_error() {
    for (mode, needle) in [("not-object", "not a JSON object"), ("not-json", "not JSON")] {
        let gw = gateway(&["--snapshot", mode]);
        let e = bootstrap_fails(&gw, &[("apikey", KEY), ("snapshot", "lights")]);
        assert_eq!(e.error, Some(ErrorCode::Protocol), "{mode}: {e:?}");
        assert!(e.message.contains("reading lights") && e.message.contains(needle), "{e:?}");
    }
}

// ---------------------------------------------------------------------------------------
// Liveness

#[test]
fn websocket_pings_are_sent_while_the_gateway_is_quiet() {
    let gw = gateway(&[]);
    let lp = TestLoop::start();
    let mut c = config(&gw, &[("apikey", KEY)]);
    c.timeouts.ping_interval = Duration::from_millis(100);
    c.timeouts.pong_timeout = Duration::from_millis(2000);
    let (h, mut feed) = collector();
    let _s = lp.open(c, h).unwrap();
    feed.open();
    let st = stats_once(&gw, "pings", 3);
    assert_eq!(st["clients"], 1, "{st}");
    assert!(feed.errors().is_empty(), "{}", feed.history());
}

#[test]
fn a_gateway_that_stops_answering_pings_is_a_dead_peer() {
    let gw = gateway(&[]);
    let lp = TestLoop::start();
    let mut c = config(&gw, &[("apikey", KEY)]);
    c.timeouts.ping_interval = Duration::from_millis(100);
    c.timeouts.pong_timeout = Duration::from_millis(300);
    let (h, mut feed) = collector();
    let _s = lp.open(c, h).unwrap();
    feed.open();
    control(&gw, "POST", "/control/mute", b"");
    let evs = feed.until_closed();
    let e = evs.iter().find(|g| g.kind == EventKind::Error).expect("an Error event");
    assert_eq!(e.error, Some(ErrorCode::PeerTimeout), "{}", feed.history());
}

// ---------------------------------------------------------------------------------------
// API key acquisition

fn acquire(gw: &Peer, options: &[(&str, &str)]) -> Vec<Got> {
    let lp = TestLoop::start();
    let (h, mut feed) = collector();
    let _s = lp.open(config(gw, options), h).unwrap();
    feed.until_closed()
}

fn issued_key(evs: &[Got]) -> String {
    let key = evs.iter().find(|g| g.is_event()).expect("an apikey event");
    assert_eq!(key.event_type, "apikey", "{evs:?}");
    let close = evs.iter().find(|g| g.kind == EventKind::Close).expect("a Close event");
    assert_eq!(close.close_code, 1000, "{evs:?}");
    assert!(evs.iter().all(|g| g.kind != EventKind::Error), "{evs:?}");
    key.text.clone()
}

#[test]
fn a_locked_gateway_says_to_press_the_link_button_and_an_unlocked_one_issues_a_key() {
    let gw = gateway(&[]);
    let evs = acquire(&gw, &[("devicetype", "livefeed-test")]);
    let e = evs.iter().find(|g| g.kind == EventKind::Error).expect("an Error event");
    assert_eq!(e.error, Some(ErrorCode::Auth), "{evs:?}");
    assert!(e.message.contains("link button not pressed"), "{e:?}");
    assert!(e.message.contains("Authenticate app"), "says how to unlock: {e:?}");
    assert!(evs.iter().all(|g| !g.is_event()), "no key: {evs:?}");

    control(&gw, "POST", "/control/unlock", b"");
    let key = issued_key(&acquire(&gw, &[("devicetype", "livefeed-test")]));
    assert_eq!(key.len(), 10, "{key}");
    let st = stats(&gw);
    assert_eq!((&st["key_posts"], &st["keys_issued"]), (&json!(2), &json!(1)), "{st}");

    // The key opens a feed.
    let lp = TestLoop::start();
    let (h, mut feed) = collector();
    let _s = lp.open(config(&gw, &[("apikey", &key)]), h).unwrap();
    feed.open();
    control(&gw, "POST", "/control/emit", b"");
    expect_every_kind(&mut feed);
}

#[test]
fn basic_credentials_unlock_key_acquisition_and_username_chooses_the_key() {
    let gw = gateway(&[]);
    let options = [
        ("devicetype", "livefeed-test"),
        ("username", "LivefeedKey42"),
        ("user", "delight"),
        ("password", "gatewaypw"),
    ];
    assert_eq!(issued_key(&acquire(&gw, &options)), "LivefeedKey42");
    let wrong = [("devicetype", "livefeed-test"), ("user", "delight"), ("password", "nope")];
    let evs = acquire(&gw, &wrong);
    let e = evs.iter().find(|g| g.kind == EventKind::Error).expect("an Error event");
    assert_eq!(e.error, Some(ErrorCode::Auth), "{evs:?}");
}

// ---------------------------------------------------------------------------------------
// Reconnecting: the whole bootstrap runs again

fn reconnecting(peer: &Peer, options: &[(&str, &str)]) -> SessionConfig {
    let mut c = config(peer, options);
    c.reconnect = Reconnect::with_delays(Duration::from_millis(20), Duration::from_millis(100));
    c
}

/// The gateway moves its WebSocket (`how`: close 1001 or TCP abort); the session must read
/// the new port from the config and connect there.
fn port_change_is_followed(how: &str) {
    let gw = gateway(&[]);
    let lp = TestLoop::start();
    let (h, mut feed) = collector();
    let _s = lp.open(reconnecting(&gw, &[("apikey", KEY)]), h).unwrap();
    feed.open();
    let before = stats_once(&gw, "clients", 1);
    let moved = control(&gw, "POST", &format!("/control/move?how={how}"), b"");
    assert_ne!(moved["ws_port"], before["ws_port"], "{moved}");
    feed.wait_for("Reconnecting", |g| g.is_state(SessionState::Reconnecting));
    feed.open();
    control(&gw, "POST", "/control/emit", b"");
    expect_every_kind(&mut feed);
    let st = stats(&gw);
    assert_eq!(st["config_reads"], 2, "the config is read again: {st}");
    assert_eq!(
        st["ws_ports_connected"],
        json!([before["ws_port"], moved["ws_port"]]),
        "the second connection went to the new port (the old one refuses): {st}"
    );
}

#[test]
fn a_port_change_between_reconnects_is_followed_after_a_close() {
    port_change_is_followed("close");
}

#[test]
fn a_port_change_between_reconnects_is_followed_after_a_dropped_connection() {
    port_change_is_followed("abort");
}

#[test]
fn the_tls_port_change_is_followed_too() {
    let gw = tls_gateway();
    let lp = TestLoop::start();
    let mut c = reconnecting(&gw, &[("apikey", KEY), ("tls", "true")]);
    c.tls.extra_ca_pem.push(pki().ca_pem.clone());
    let (h, mut feed) = collector();
    let _s = lp.open(c, h).unwrap();
    feed.open();
    let before = stats_once(&gw, "clients", 1);
    let moved = control(&gw, "POST", "/control/move", b"");
    feed.wait_for("Reconnecting", |g| g.is_state(SessionState::Reconnecting));
    feed.open();
    let st = stats_once(&gw, "ws_connects", 2);
    assert_eq!(st["ws_ports_connected"], json!([before["wss_port"], moved["wss_port"]]), "{st}");
}

#[test]
fn the_snapshot_is_taken_again_after_every_reconnect() {
    let gw = gateway(&[]);
    let lp = TestLoop::start();
    let (h, mut feed) = collector();
    let _s = lp.open(reconnecting(&gw, &[("apikey", KEY), ("snapshot", "true")]), h).unwrap();
    for round in 1..=3 {
        feed.open();
        let start = feed.seen.iter().rposition(|g| g.is_state(SessionState::Connecting));
        let since = &feed.seen[start.expect("a Connecting state")..];
        let ends: Vec<&str> = since
            .iter()
            .filter(|g| g.event_type == "snapshot-end")
            .map(|g| g.topic.as_str())
            .collect();
        assert_eq!(ends, ["lights", "sensors", "groups"], "round {round}:{}", feed.history());
        stats_once(&gw, "ws_connects", round);
        control(&gw, "POST", "/control/drop", b"");
        feed.wait_for("Reconnecting", |g| g.is_state(SessionState::Reconnecting));
    }
    let st = stats(&gw);
    for r in ["config_reads", "lights_reads", "sensors_reads", "groups_reads"] {
        assert!(st[r].as_u64() >= Some(3), "{r}: {st}");
    }
}

#[test]
fn a_refused_api_key_is_not_retried() {
    let gw = gateway(&[]);
    let lp = TestLoop::start();
    let (h, mut feed) = collector();
    let _s = lp.open(reconnecting(&gw, &[("apikey", "FFFFFFFFFF")]), h).unwrap();
    let evs = feed.until_closed();
    assert!(evs.iter().all(|g| !g.is_state(SessionState::Reconnecting)), "{}", feed.history());
    assert_eq!(stats(&gw)["unauthorized"], 1);
}

#[test]
fn key_acquisition_ends_once_the_key_is_issued_even_with_reconnect_on() {
    let gw = gateway(&[]);
    control(&gw, "POST", "/control/unlock", b"");
    let lp = TestLoop::start();
    let (h, mut feed) = collector();
    let _s = lp.open(reconnecting(&gw, &[("devicetype", "livefeed-test")]), h).unwrap();
    let evs = feed.until_closed();
    issued_key(&evs);
    assert!(evs.iter().all(|g| !g.is_state(SessionState::Reconnecting)), "{}", feed.history());
    assert_eq!(stats(&gw)["keys_issued"], 1);
}

#[test]
fn the_api_key_never_appears_in_the_logs() {
    support::capture_logs();
    let gw = gateway(&[]);
    let lp = TestLoop::start();
    let (h, mut feed) = collector();
    let _s = lp.open(config(&gw, &[("apikey", KEY), ("snapshot", "true")]), h).unwrap();
    feed.open();
    let leaks = support::logged(|r| r.message.contains(KEY));
    assert!(leaks.is_empty(), "the API key is logged: {leaks:?}");
}

#[test]
fn a_busy_gateway_is_asked_again_after_the_backoff() {
    let gw = gateway(&["--config", "busy"]);
    let lp = TestLoop::start();
    let (h, mut feed) = collector();
    let _s = lp.open(reconnecting(&gw, &[("apikey", KEY)]), h).unwrap();
    let e = feed.wait_for("an error", |g| g.kind == EventKind::Error);
    assert_eq!(e.error, Some(ErrorCode::HttpStatus), "{e:?}");
    feed.wait_for("Reconnecting", |g| g.is_state(SessionState::Reconnecting));
    stats_once(&gw, "config_reads", 3);
}
