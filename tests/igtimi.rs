//! The Igtimi profile against a fixture service written from PROTOCOLS.md §1
//! (tests/peers/igtimi_fixture.py): server lister, several WebSocket servers (some
//! unreachable or misbehaving), heartbeats both ways, the timestamp, data arrays.
//!
//! The fixture reports what it sees (`--events`: one JSON line per list request,
//! connection, configuration block, client heartbeat); the tests wait on those lines and on
//! the session's events, every wait bounded.

mod support;

use livefeed::{Error, ErrorCode, EventKind, Protocol, Reconnect, SessionConfig, SessionState};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use support::{Ev, Events, Peer, TestLoop, collector};

const A: &str = "GA-DK-AAAD";
const B: &str = "DE-FE-AAKG";

/// The fixture with its observation lines.
struct Fixture {
    peer: Peer,
}

impl Fixture {
    /// `servers`: the fixture's `--servers` list; `extra`: more fixture arguments.
    fn start(servers: &str, extra: &[&str]) -> Fixture {
        let mut args = vec!["--servers", servers, "--events"];
        args.extend_from_slice(extra);
        Fixture { peer: Peer::spawn("igtimi_fixture.py", &args, &[]) }
    }

    /// A session configuration for the service at `prefix` (`/` for the real list).
    fn config(&self, prefix: &str, options: &[(&str, &str)]) -> SessionConfig {
        let mut c = SessionConfig::new(format!("http://127.0.0.1:{}{prefix}", self.peer.port));
        c.protocol = Protocol::Igtimi;
        c.options.extend(options.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        c
    }

    /// Skips observation lines until one of kind `ev` satisfies `pred`, within 10 s.
    fn observe(&self, ev: &str, mut pred: impl FnMut(&Value) -> bool) -> Value {
        let end = Instant::now() + support::WAIT;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "the fixture reported no {ev:?} line in time");
            let line = self.peer.next_line(left);
            let v: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("fixture line {line:?} is not JSON: {e}"));
            if v["ev"] == ev && pred(&v) {
                return v;
            }
        }
    }
}

fn is_event(topic: &'static str) -> impl Fn(&Ev) -> bool {
    move |e| e.kind == EventKind::Event && e.topic == topic
}

fn json_of(e: &Ev) -> Value {
    serde_json::from_slice(&e.payload)
        .unwrap_or_else(|err| panic!("payload {:?} is not JSON: {err}", e.text()))
}

/// The first error event in `evs`, which must exist.
fn first_error(evs: &[Ev]) -> &Ev {
    evs.iter().find(|e| e.kind == EventKind::Error).unwrap_or_else(|| panic!("no error: {evs:?}"))
}

/// Collects whatever arrives during `window` (an observation window, not a synchronisation).
fn watch(ev: &mut Events, window: Duration) {
    let end = Instant::now() + window;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() || ev.quiet_for(left) {
            return;
        }
    }
}

fn no_errors(ev: &Events) {
    let errors: Vec<_> = ev.seen.iter().filter(|e| e.kind == EventKind::Error).collect();
    assert!(errors.is_empty(), "unexpected errors: {errors:?}");
}

/// Test timings: our heartbeat every 100 ms; watchdog and timestamp deadline generous (3 s,
/// for a loaded machine) unless a test is about them.
const FAST: [(&str, &str); 3] =
    [("heartbeat_ms", "100"), ("watchdog_ms", "3000"), ("timestamp_timeout_ms", "3000")];

fn options<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut o = vec![("token", "tok-good"), ("device", A), ("device", B)];
    o.extend_from_slice(&FAST);
    o.extend_from_slice(extra);
    o
}

// ---------------------------------------------------------------------------------------
// The normal flow

#[test]
fn data_frames_become_one_event_per_device_and_data_type() {
    let fx = Fixture::start("good", &["--heartbeat", "100", "--data", "50"]);
    let lp = TestLoop::start();
    let (h, mut ev) = collector();
    let _s = lp.open(fx.config("/", &options(&[])), h).unwrap();
    let open = ev.expect_open();
    let detail = json_of(&open);
    assert!(
        detail["server"].as_str().is_some_and(|s| s.starts_with("ws://127.0.0.1:")),
        "{detail}"
    );
    let now_ms =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()
            as i64;
    let server_ms = detail["time"].as_i64().unwrap_or_else(|| panic!("no time: {detail}"));
    assert!((server_ms - now_ms).abs() < 60_000, "server time {server_ms} vs {now_ms}");

    // Both frame shapes, for both devices: shape A gives types 1, 2, 9; shape B 13, 1, 22.
    let wanted: BTreeSet<String> = ["1", "2", "9", "13", "22"]
        .iter()
        .flat_map(|t| [format!("{A}/{t}"), format!("{B}/{t}")])
        .collect();
    let got = std::cell::RefCell::new(BTreeSet::new());
    ev.wait_for("every topic", |e| {
        if e.kind == EventKind::Event {
            got.borrow_mut().insert(e.topic.clone());
        }
        wanted.is_subset(&got.borrow())
    });
    no_errors(&ev);
    let events: Vec<&Ev> = ev.seen.iter().filter(|e| e.kind == EventKind::Event).collect();
    for e in &events {
        let (serial, code) = e.topic.split_once('/').unwrap();
        let json = json_of(e);
        assert_eq!(e.event_type, code, "{e:?}");
        assert_eq!(json["serial"], serial, "{json}");
        assert_eq!(json["type"].to_string(), code, "{json}");
        assert!(json["samples"].as_array().is_some_and(|s| !s.is_empty()), "{json}");
    }
    let find = |topic: String| json_of(events.iter().find(|e| e.topic == topic).unwrap());
    let hrm = find(format!("{A}/13"));
    assert_eq!(hrm["dsi"], 201, "{hrm}");
    let samples = hrm["samples"].as_array().unwrap();
    assert_eq!(samples.len(), 2, "{hrm}");
    // The float timestamp (`...000.0`) arrives as an integer, one second before the next.
    let (t0, t1) = (samples[0]["t"].as_i64().unwrap(), samples[1]["t"].as_i64().unwrap());
    assert_eq!(t1 - t0, 1000, "{hrm}");
    assert_eq!(samples[1]["v"], json!([2, 11, 120]), "{hrm}");
    let gps = find(format!("{B}/1"));
    assert_eq!(gps["dsi"], 0);
    let v = &gps["samples"][0]["v"];
    assert!((v[0].as_f64().unwrap() - 170.5).abs() < 0.01 && v[1] == json!(-45.8), "{gps}");
    assert_eq!(find(format!("{A}/22"))["samples"][0]["v"].as_array().map(Vec::len), Some(1));
}

#[test]
fn the_configuration_block_goes_once_per_connection_with_token_and_devices() {
    let fx = Fixture::start("good", &["--heartbeat", "100", "--data", "50"]);
    let lp = TestLoop::start();
    let (h, mut ev) = collector();
    let s = lp.open(fx.config("/", &options(&[])), h).unwrap();
    let config = fx.observe("config", |_| true);
    assert_eq!(config["block"], json!({"access_token": "tok-good", "devices": [A, B]}));
    assert_eq!(config["n"], 1);
    ev.expect_open();
    // Several data frames and client heartbeats later, still one block on the connection.
    for _ in 0..3 {
        ev.wait_for("a data event", is_event("GA-DK-AAAD/9"));
    }
    fx.observe("heartbeat", |v| v["n"] == 3);
    s.close(1000, "done").unwrap();
    ev.until_closed();
    let closed = fx.observe("closed", |_| true);
    assert_eq!(
        (closed["configs"].as_u64(), closed["conn"].as_u64()),
        (Some(1), Some(1)),
        "{closed}"
    );
    no_errors(&ev);
}

#[test]
fn heartbeats_go_both_ways_and_keep_the_watchdog_quiet() {
    // One data frame, then only server heartbeats (the next data frame is a minute away).
    let fx = Fixture::start("good", &["--heartbeat", "100", "--data", "60000"]);
    let lp = TestLoop::start();
    let (h, mut ev) = collector();
    let opts = options(&[("watchdog_ms", "600")]);
    let _s = lp.open(fx.config("/", &opts), h).unwrap();
    ev.expect_open();
    let opened = Instant::now();
    // Our heartbeat every 100 ms: the fifth arrives after about half a second.
    fx.observe("heartbeat", |v| v["n"] == 5);
    let took = opened.elapsed();
    assert!(took >= Duration::from_millis(350), "5 heartbeats in {took:?}: too fast");
    // The server's heartbeats (every 100 ms) keep the 600 ms watchdog from firing for
    // three of its periods.
    watch(&mut ev, Duration::from_millis(1800));
    no_errors(&ev);
    assert!(
        ev.seen.iter().all(|e| e.kind != EventKind::State
            || e.state == SessionState::Open
            || e.state == SessionState::Connecting),
        "{:?}",
        ev.seen
    );
}

#[test]
fn the_server_list_can_come_from_an_explicit_lister_url() {
    let fx = Fixture::start("good", &["--heartbeat", "100", "--data", "50"]);
    let lp = TestLoop::start();
    let (h, mut ev) = collector();
    let _s = lp.open(fx.config("/api/v1/server_listers/web_sockets", &options(&[])), h).unwrap();
    let list = fx.observe("list", |_| true);
    assert_eq!(list["path"], "/api/v1/server_listers/web_sockets");
    ev.expect_open();
    let _s2 = lp.open(fx.config("/igtimi/api/v1/", &options(&[])), collector().0).unwrap();
    let list = fx.observe("list", |_| true);
    assert_eq!(list["path"], "/igtimi/api/v1/server_listers/web_sockets");
}

#[test]
fn servers_without_a_timestamp_are_opened_at_once_when_asked() {
    let fx = Fixture::start("notime", &["--heartbeat", "100", "--data", "50"]);
    let lp = TestLoop::start();
    let (h, mut ev) = collector();
    let _s = lp.open(fx.config("/", &options(&[("timestamp_timeout_ms", "0")])), h).unwrap();
    let open = ev.expect_open();
    assert_eq!(json_of(&open)["time"], Value::Null);
    ev.wait_for("data", is_event("GA-DK-AAAD/1"));
    no_errors(&ev);
}

// ---------------------------------------------------------------------------------------
// Subscriptions

#[test]
fn subscribe_and_unsubscribe_reconnect_with_the_new_device_list() {
    let fx = Fixture::start("good", &["--heartbeat", "100", "--data", "50"]);
    let lp = TestLoop::start();
    let (h, mut ev) = collector();
    let opts: Vec<_> =
        options(&[]).into_iter().filter(|(k, v)| !(*k == "device" && *v == B)).collect();
    let s = lp.open(fx.config("/", &opts), h).unwrap();
    ev.expect_open();
    assert_eq!(fx.observe("config", |_| true)["block"]["devices"], json!([A]));

    s.subscribe(B).unwrap();
    // The block goes once per connection: a new connection, from a fresh server list.
    fx.observe("list", |_| true);
    let config = fx.observe("config", |_| true);
    assert_eq!((config["conn"].as_u64(), config["n"].as_u64()), (Some(2), Some(1)), "{config}");
    assert_eq!(config["block"]["devices"], json!([A, B]));
    ev.wait_for("data of the new device", is_event("DE-FE-AAKG/1"));

    s.unsubscribe(A).unwrap();
    let config = fx.observe("config", |_| true);
    assert_eq!(
        (config["conn"].as_u64(), config["block"]["devices"].clone()),
        (Some(3), json!([B]))
    );
    no_errors(&ev);
}

// ---------------------------------------------------------------------------------------
// Binary frames

#[test]
fn binary_frames_pass_through_as_binary_events() {
    let fx = Fixture::start("binary", &["--heartbeat", "100", "--data", "50"]);
    let lp = TestLoop::start();
    let (h, mut ev) = collector();
    let _s = lp.open(fx.config("/", &options(&[])), h).unwrap();
    ev.expect_open();
    let bin = ev.wait_for("a binary event", |e| e.kind == EventKind::Binary);
    assert_eq!(bin.payload, b"\x0a\x03abc");
    ev.wait_for("data after it", is_event("GA-DK-AAAD/1"));
    no_errors(&ev);
}

#[test]
fn binary_frames_can_be_ignored() {
    let fx = Fixture::start("binary", &["--heartbeat", "100", "--data", "50"]);
    let lp = TestLoop::start();
    let (h, mut ev) = collector();
    let _s = lp.open(fx.config("/", &options(&[("binary", "ignore")])), h).unwrap();
    ev.expect_open();
    // Each data frame follows a binary frame: three data frames, no binary event.
    for _ in 0..3 {
        ev.wait_for("data", is_event("GA-DK-AAAD/9"));
    }
    assert!(ev.seen.iter().all(|e| e.kind != EventKind::Binary), "{:?}", ev.seen);
    no_errors(&ev);
}

// ---------------------------------------------------------------------------------------
// Deadlines and liveness

#[test]
fn a_server_without_a_timestamp_is_abandoned_at_its_deadline() {
    let fx = Fixture::start("silent", &["--heartbeat", "100"]);
    let lp = TestLoop::start();
    let (h, mut ev) = collector();
    let started = Instant::now();
    let _s = lp.open(fx.config("/", &options(&[("timestamp_timeout_ms", "300")])), h).unwrap();
    let evs = ev.until_closed();
    let took = started.elapsed();
    let err = first_error(&evs);
    assert_eq!(err.error, Some(ErrorCode::Timeout), "{err:?}");
    assert!(err.message.contains("timestamp"), "{}", err.message);
    assert!(evs.iter().all(|e| !e.is_state(SessionState::Open)), "{evs:?}");
    assert!(took >= Duration::from_millis(300) && took < Duration::from_secs(5), "{took:?}");
    // The silent server did get the configuration block.
    assert_eq!(fx.observe("config", |_| true)["server"], 0);
}

#[test]
fn a_silent_connection_trips_the_watchdog() {
    let fx = Fixture::start("mute", &["--heartbeat", "100", "--data", "50"]);
    let lp = TestLoop::start();
    let (h, mut ev) = collector();
    let _s = lp.open(fx.config("/", &options(&[("watchdog_ms", "400")])), h).unwrap();
    ev.expect_open();
    let data = ev.wait_for("the one data frame", is_event("GA-DK-AAAD/1"));
    let heard = Instant::now();
    let _ = data;
    let evs = ev.until_closed();
    let err = first_error(&evs);
    assert_eq!(err.error, Some(ErrorCode::PeerTimeout), "{err:?}");
    let took = heard.elapsed();
    assert!(took >= Duration::from_millis(300) && took < Duration::from_secs(5), "{took:?}");
}

// ---------------------------------------------------------------------------------------
// Bad input

#[test]
fn malformed_server_lists_end_the_session_with_a_clear_error() {
    let fx = Fixture::start("good", &[]);
    let lp = TestLoop::start();
    for (prefix, code, needle) in [
        ("/notjson/", ErrorCode::Protocol, "not JSON"),
        ("/wrongshape/", ErrorCode::Protocol, "no \"web_socket_servers\" array"),
        ("/empty/", ErrorCode::Protocol, "names no ws:// or wss:// server"),
        ("/nows/", ErrorCode::Protocol, "names no ws:// or wss:// server"),
        ("/status500/", ErrorCode::HttpStatus, "HTTP 500"),
    ] {
        let (h, mut ev) = collector();
        let _s = lp.open(fx.config(prefix, &options(&[])), h).unwrap();
        let evs = ev.until_closed();
        let err = first_error(&evs);
        assert_eq!(err.error, Some(code), "{prefix}: {err:?}");
        assert!(
            err.message.starts_with("igtimi: ") && err.message.contains(needle),
            "{prefix}: {}",
            err.message
        );
        assert!(evs.iter().all(|e| !e.is_state(SessionState::Open)), "{prefix}: {evs:?}");
    }
}

#[test]
fn frames_that_are_not_heartbeat_timestamp_or_data_are_reported_and_the_feed_goes_on() {
    let fx = Fixture::start("garbage", &["--heartbeat", "100", "--data", "50"]);
    let lp = TestLoop::start();
    let (h, mut ev) = collector();
    let s = lp.open(fx.config("/", &options(&[])), h).unwrap();
    ev.expect_open();
    ev.wait_for("data after the garbage", is_event("GA-DK-AAAD/1"));
    let errors: Vec<_> = ev.seen.iter().filter(|e| e.kind == EventKind::Error).collect();
    let messages: Vec<_> = errors.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(errors.len(), 4, "{messages:?}");
    assert!(errors.iter().all(|e| e.error == Some(ErrorCode::Protocol)), "{errors:?}");
    for needle in ["not JSON", "unexpected JSON", "not a JSON array", "malformed part(s)"] {
        assert!(messages.iter().any(|m| m.contains(needle)), "{needle}: {messages:?}");
    }
    assert_eq!(s.state(), SessionState::Open);
}

#[test]
fn bad_options_are_refused_at_open() {
    let lp = TestLoop::start();
    let base = "https://www.igtimi.com";
    for (url, opts) in [
        (base, vec![("device", A)]),
        (base, vec![("token", "t"), ("token_in", "cookie")]),
        (base, vec![("token", "t"), ("binary", "maybe")]),
        (base, vec![("token", "t"), ("heartbeat_ms", "soon")]),
        ("wss://www.igtimi.com/live", vec![("token", "t")]),
    ] {
        let mut c = SessionConfig::new(url);
        c.protocol = Protocol::Igtimi;
        c.options.extend(opts.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let err: Option<Error> = lp.open(c, collector().0).err();
        assert_eq!(err.map(|e| e.code), Some(ErrorCode::InvalidParameter), "{url} {opts:?}");
    }
}

fn reconnecting(mut c: SessionConfig) -> SessionConfig {
    c.reconnect = Reconnect::with_delays(Duration::from_millis(50), Duration::from_millis(100));
    c
}

// ---------------------------------------------------------------------------------------
// The server walk

/// Opens a session on a list whose first server fails in some way; the feed must open on
/// the second, within `bound`, after exactly one error of `code`.
fn skips_the_first_server(
    kind: &str,
    mut c: impl FnMut(&Fixture) -> SessionConfig,
    code: ErrorCode,
    bound: Duration,
) -> Duration {
    let fx = Fixture::start(&format!("{kind},good"), &["--heartbeat", "100", "--data", "50"]);
    let lp = TestLoop::start();
    let (h, mut ev) = collector();
    let started = Instant::now();
    let _s = lp.open(c(&fx), h).unwrap();
    ev.wait_for("open", |e| e.is_state(SessionState::Open));
    let took = started.elapsed();
    assert!(took < bound, "{kind}: opened after {took:?}");
    let errors: Vec<_> = ev.seen.iter().filter(|e| e.kind == EventKind::Error).collect();
    assert_eq!(errors.len(), 1, "{kind}: {errors:?}");
    assert_eq!(errors[0].error, Some(code), "{kind}: {errors:?}");
    assert!(
        ev.seen.iter().all(|e| !e.is_state(SessionState::Reconnecting)),
        "{kind}: {:?}",
        ev.seen
    );
    // The block that got the feed going went to the second server.
    let config = fx.observe("config", |v| v["server"] == 1);
    assert_eq!(config["n"], 1);
    ev.wait_for("data", is_event("GA-DK-AAAD/1"));
    took
}

#[test]
fn a_refused_first_server_is_skipped_at_once() {
    skips_the_first_server(
        "refused",
        |fx| fx.config("/", &options(&[])),
        ErrorCode::Connect,
        Duration::from_secs(3),
    );
}

#[test]
fn a_first_server_that_never_answers_the_upgrade_is_skipped_at_the_handshake_deadline() {
    let took = skips_the_first_server(
        "blackhole",
        |fx| {
            let mut c = fx.config("/", &options(&[]));
            c.timeouts.handshake = Duration::from_millis(400);
            c
        },
        ErrorCode::Timeout,
        Duration::from_secs(4),
    );
    assert!(took >= Duration::from_millis(400), "skipped before its deadline: {took:?}");
}

#[test]
fn a_first_server_without_a_timestamp_is_skipped_at_the_timestamp_deadline() {
    let took = skips_the_first_server(
        "silent",
        |fx| fx.config("/", &options(&[("timestamp_timeout_ms", "400")])),
        ErrorCode::Timeout,
        Duration::from_secs(4),
    );
    assert!(took >= Duration::from_millis(400), "skipped before its deadline: {took:?}");
}

#[test]
fn a_first_server_that_closes_before_its_timestamp_is_skipped() {
    skips_the_first_server(
        "close",
        |fx| fx.config("/", &options(&[])),
        ErrorCode::Protocol,
        Duration::from_secs(3),
    );
}

#[test]
fn when_every_server_fails_the_session_ends_with_one_error_per_server() {
    let fx = Fixture::start("refused,silent", &["--heartbeat", "100"]);
    let lp = TestLoop::start();
    let (h, mut ev) = collector();
    let _s = lp.open(fx.config("/", &options(&[("timestamp_timeout_ms", "300")])), h).unwrap();
    let evs = ev.until_closed();
    let codes: Vec<_> =
        evs.iter().filter(|e| e.kind == EventKind::Error).map(|e| e.error).collect();
    assert_eq!(codes, [Some(ErrorCode::Connect), Some(ErrorCode::Timeout)], "{evs:?}");
    assert!(evs.iter().all(|e| !e.is_state(SessionState::Open)), "{evs:?}");
}

#[test]
fn when_every_server_fails_a_reconnect_starts_over_from_a_fresh_list() {
    let fx = Fixture::start("refused,close", &["--heartbeat", "100"]);
    let lp = TestLoop::start();
    let (h, mut ev) = collector();
    let s = lp.open(reconnecting(fx.config("/", &options(&[]))), h).unwrap();
    fx.observe("list", |_| true);
    ev.wait_for("reconnecting", |e| e.is_state(SessionState::Reconnecting));
    // The fresh list, then the walk again: the second server gets a second block.
    fx.observe("list", |_| true);
    let config = fx.observe("config", |v| v["conn"] == 2);
    assert_eq!(config["server"], 1);
    s.close(1000, "done").unwrap();
    ev.until_closed();
}

#[test]
fn a_missing_heartbeat_triggers_a_reconnect() {
    let fx = Fixture::start("mute", &["--heartbeat", "100", "--data", "50"]);
    let lp = TestLoop::start();
    let (h, mut ev) = collector();
    let _s = lp.open(reconnecting(fx.config("/", &options(&[("watchdog_ms", "400")]))), h).unwrap();
    ev.expect_open();
    fx.observe("list", |_| true);
    ev.wait_for("the one data frame", is_event("GA-DK-AAAD/1"));
    let heard = Instant::now();
    let err = ev.wait_for("the watchdog", |e| e.kind == EventKind::Error);
    let took = heard.elapsed();
    assert_eq!(err.error, Some(ErrorCode::PeerTimeout), "{err:?}");
    assert!(took >= Duration::from_millis(300) && took < Duration::from_secs(5), "{took:?}");
    ev.wait_for("reconnecting", |e| e.is_state(SessionState::Reconnecting));
    // A new connection from a fresh server list, with its own configuration block.
    fx.observe("list", |_| true);
    let config = fx.observe("config", |_| true);
    assert_eq!((config["conn"].as_u64(), config["n"].as_u64()), (Some(2), Some(1)), "{config}");
    ev.wait_for("open again", |e| e.is_state(SessionState::Open));
    ev.wait_for("data again", is_event("GA-DK-AAAD/1"));
}

#[test]
fn a_server_that_closes_the_feed_is_reconnected_from_a_fresh_list() {
    let fx = Fixture::start("bye", &["--heartbeat", "100", "--data", "50"]);
    let lp = TestLoop::start();
    let (h, mut ev) = collector();
    let _s = lp.open(reconnecting(fx.config("/", &options(&[]))), h).unwrap();
    fx.observe("list", |_| true);
    ev.expect_open();
    let close = ev.wait_for("the server's close", |e| e.kind == EventKind::Close);
    assert_eq!(close.close_code, 1001);
    ev.wait_for("reconnecting", |e| e.is_state(SessionState::Reconnecting));
    fx.observe("list", |_| true);
    let config = fx.observe("config", |v| v["conn"] == 2);
    assert_eq!(config["n"], 1);
    ev.wait_for("open again", |e| e.is_state(SessionState::Open));
    no_errors(&ev);
}

// ---------------------------------------------------------------------------------------
// Where the token goes

#[test]
fn the_token_can_go_in_an_authorization_header() {
    let fx = Fixture::start("good", &["--heartbeat", "100", "--data", "50", "--auth", "header"]);
    let lp = TestLoop::start();
    let (h, mut ev) = collector();
    let _s = lp.open(fx.config("/", &options(&[("token_in", "header")])), h).unwrap();
    assert_eq!(fx.observe("list", |_| true)["auth"], "Bearer tok-good");
    assert_eq!(fx.observe("connect", |_| true)["auth"], "Bearer tok-good");
    assert_eq!(fx.observe("config", |_| true)["block"], json!({"devices": [A, B]}));
    ev.expect_open();
    ev.wait_for("data", is_event("GA-DK-AAAD/1"));
    no_errors(&ev);
}

#[test]
fn a_server_list_refused_with_401_ends_the_session_even_with_reconnect_on() {
    // The service wants the header; the session puts the token in the block.
    let fx = Fixture::start("good", &["--auth", "header"]);
    let lp = TestLoop::start();
    let (h, mut ev) = collector();
    let _s = lp.open(reconnecting(fx.config("/", &options(&[]))), h).unwrap();
    let evs = ev.until_closed();
    let err = first_error(&evs);
    assert_eq!(err.error, Some(ErrorCode::Auth), "{err:?}");
    assert!(err.message.contains("HTTP 401"), "{}", err.message);
    assert!(evs.iter().all(|e| !e.is_state(SessionState::Reconnecting)), "{evs:?}");
}

#[test]
fn a_wrong_token_is_refused_by_every_server() {
    let fx = Fixture::start("good,good", &["--heartbeat", "100"]);
    let lp = TestLoop::start();
    let (h, mut ev) = collector();
    let opts = options(&[("token", "tok-wrong")]);
    let _s = lp.open(fx.config("/", &opts), h).unwrap();
    let evs = ev.until_closed();
    let errors: Vec<_> = evs.iter().filter(|e| e.kind == EventKind::Error).collect();
    assert_eq!(errors.len(), 2, "{evs:?}");
    assert!(errors.iter().all(|e| e.error == Some(ErrorCode::Protocol)), "{errors:?}");
    assert!(errors[0].message.contains("before confirming"), "{}", errors[0].message);
    assert_eq!(fx.observe("config", |_| true)["block"]["access_token"], "tok-wrong");
}

#[test]
fn the_token_stays_out_of_the_logs() {
    support::capture_logs();
    const SECRET: &str = "tok-secret-7f3a";
    let lp = TestLoop::start();
    for auth in ["body", "header"] {
        let fx = Fixture::start(
            "refused,good",
            &["--heartbeat", "100", "--data", "50", "--token", SECRET, "--auth", auth],
        );
        let (h, mut ev) = collector();
        let opts = options(&[("token", SECRET), ("token_in", auth)]);
        let s = lp.open(fx.config("/", &opts), h).unwrap();
        ev.wait_for("data", is_event("GA-DK-AAAD/1"));
        s.close(1000, "done").unwrap();
        ev.until_closed();
    }
    let ours = support::logged(|r| r.target.contains("igtimi"));
    assert!(ours.len() >= 4, "the driver logged nothing: {ours:?}");
    let leaks = support::logged(|r| r.message.contains(SECRET));
    assert!(leaks.is_empty(), "{leaks:?}");
}

#[test]
fn host_text_goes_to_the_server_unchanged() {
    let fx = Fixture::start("good", &["--heartbeat", "100", "--data", "50"]);
    let lp = TestLoop::start();
    let (h, mut ev) = collector();
    let s = lp.open(fx.config("/", &options(&[])), h).unwrap();
    ev.expect_open();
    s.send_text("hello server").unwrap();
    assert_eq!(fx.observe("text", |_| true)["text"], "hello server");
    // A second block on the same connection, for servers that take one.
    s.send_text(r#"{"devices":["AA-BB-CCCC"]}"#).unwrap();
    let config = fx.observe("config", |v| v["n"] == 2);
    assert_eq!(
        (config["conn"].as_u64(), config["block"].clone()),
        (Some(1), json!({"devices": ["AA-BB-CCCC"]}))
    );
    no_errors(&ev);
}
