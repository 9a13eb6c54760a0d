//! The thethings.io profile against a fixture built on the real socket.io server
//! (tests/peers/socketio/thethings.js, behaving as PROTOCOLS.md §2.1 describes): REST
//! login, the /v2 namespace, authenticate with success and failure, subscribe, values on
//! the topic event, unsubscribe.

mod support;

use livefeed::{ErrorCode, EventKind, Protocol, SessionConfig, SessionState};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;
use support::{Peer, TestLoop, collector};

const TEMPERATURE: &str = "/me/resources/temperature";
const HUMIDITY: &str = "/me/resources/humidity";

fn fixture(version: &str) -> Peer {
    Peer::spawn(
        "socketio/thethings.js",
        &["--version", version, "--interval", "20", "--quiet"],
        &[],
    )
}

fn config(peer: &Peer, options: &[(&str, &str)]) -> SessionConfig {
    let mut c = SessionConfig::new(format!("http://127.0.0.1:{}/", peer.port));
    c.protocol = Protocol::TheThings;
    c.options.extend(options.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    c
}

/// The fixture's counters (GET /stats).
fn stats(peer: &Peer) -> Value {
    let mut s = TcpStream::connect(("127.0.0.1", peer.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET /stats HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    let json = body.split("\r\n\r\n").nth(1).expect("a body");
    serde_json::from_str(json).expect("stats are JSON")
}

fn values_flow(version: &str) {
    let peer = fixture(version);
    let lp = TestLoop::start();
    let creds = [("user", "user@example.com"), ("password", "secret"), ("subscribe", TEMPERATURE)];
    let (h, mut ev) = collector();
    let s = lp.open(config(&peer, &creds), h).unwrap();
    ev.wait_for("open", |e| e.is_state(SessionState::Open));
    let value = ev.wait_for("a value", |e| e.kind == EventKind::Event && e.topic == TEMPERATURE);
    let v: Value = serde_json::from_slice(&value.payload).unwrap();
    assert_eq!(v[0][0]["key"], "temperature", "{v}");
    assert!(v[0][0]["value"].is_number(), "{v}");

    // More subscriptions at run time, then unsubscribe.
    s.subscribe(HUMIDITY).unwrap();
    ev.wait_for("humidity", |e| e.kind == EventKind::Event && e.topic == HUMIDITY);
    s.unsubscribe(TEMPERATURE).unwrap();
    ev.wait_for("humidity again", |e| e.kind == EventKind::Event && e.topic == HUMIDITY);
    let st = stats(&peer);
    assert_eq!(st["logins"], 1, "{st}");
    let conn = &st["connections"][0];
    assert_eq!(
        (&conn["authenticates"], &conn["authOk"]),
        (&Value::from(1), &Value::from(1)),
        "{st}"
    );
    assert_eq!(
        (&conn["subscribes"], &conn["unsubscribes"]),
        (&Value::from(2), &Value::from(1)),
        "{st}"
    );
    assert!(ev.seen.iter().all(|e| e.kind != EventKind::Error), "{:?}", ev.seen);
}

#[test]
fn login_authenticate_subscribe_values_unsubscribe_on_socketio_2() {
    values_flow("2");
}

#[test]
fn login_authenticate_subscribe_values_unsubscribe_on_socketio_4() {
    values_flow("4");
}

#[test]
fn a_session_token_skips_the_login() {
    let peer = fixture("2");
    let lp = TestLoop::start();
    let (h, mut ev) = collector();
    let _s =
        lp.open(config(&peer, &[("token", "tok-good"), ("subscribe", TEMPERATURE)]), h).unwrap();
    ev.wait_for("a value", |e| e.kind == EventKind::Event && e.topic == TEMPERATURE);
    assert_eq!(stats(&peer)["logins"], 0);
}

fn refused(options: &[(&str, &str)], what: &str) {
    let peer = fixture("2");
    let lp = TestLoop::start();
    let (h, mut ev) = collector();
    let _s = lp.open(config(&peer, options), h).unwrap();
    let evs = ev.until_closed();
    let err = evs.iter().find(|e| e.kind == EventKind::Error).expect("an error event");
    assert_eq!(err.error, Some(ErrorCode::Auth), "{what}: {err:?}");
    assert!(evs.iter().all(|e| !e.is_state(SessionState::Open)), "{what}: {evs:?}");
}

#[test]
fn a_refused_token_is_an_auth_error() {
    refused(&[("token", "tok-bad"), ("subscribe", TEMPERATURE)], "bad token");
}

#[test]
fn refused_credentials_are_an_auth_error() {
    refused(&[("user", "user@example.com"), ("password", "wrong")], "bad password");
}

#[test]
fn missing_credentials_are_refused_at_open() {
    let lp = TestLoop::start();
    let (h, _ev) = collector();
    let mut c = SessionConfig::new("https://ws.thethings.io/");
    c.protocol = Protocol::TheThings;
    assert_eq!(lp.open(c, h).err().map(|e| e.code), Some(ErrorCode::InvalidParameter));
}

#[test]
fn a_refused_token_is_replaced_by_a_fresh_login_when_credentials_allow() {
    let peer = fixture("2");
    let lp = TestLoop::start();
    let options = [
        ("token", "tok-expired"),
        ("user", "user@example.com"),
        ("password", "secret"),
        ("subscribe", TEMPERATURE),
    ];
    let (h, mut ev) = collector();
    let _s = lp.open(config(&peer, &options), h).unwrap();
    ev.wait_for("a value", |e| e.kind == EventKind::Event && e.topic == TEMPERATURE);
    assert!(ev.seen.iter().all(|e| e.kind != EventKind::Error), "{:?}", ev.seen);
    let st = stats(&peer);
    assert_eq!(st["logins"], 1, "one fresh login: {st}");
    let auths: Vec<_> =
        st["connections"].as_array().unwrap().iter().map(|c| c["authOk"].clone()).collect();
    assert_eq!(auths, vec![Value::from(0), Value::from(1)], "refused, then accepted: {st}");
}

#[test]
fn a_failed_fresh_login_ends_the_session() {
    refused(
        &[("token", "tok-expired"), ("user", "user@example.com"), ("password", "wrong")],
        "relogin refused",
    );
}
