//! The Atmosphere client (`Protocol::Atmosphere`) against a fixture server written from
//! PROTOCOLS.md §5 (tests/peers/atmosphere_fixture.py; its docstring is its manual):
//! handshake, heartbeats both ways, the receive watchdog, tracking-id reuse, length framing
//! split across frames with non-ASCII text, long-polling and the fallback to it, the close
//! request, and hostile frames.

mod support;

use livefeed::{ErrorCode, EventKind, Protocol, Reconnect, SessionConfig, SessionState};
use serde_json::{Value, json};
use std::time::Duration;
use support::{Ev, Events, Peer, TestLoop, collector};

const KEY: &str = "0123456789abcdef0123456789abcdef";

fn fixture(args: &[&str]) -> Peer {
    let mut all = vec!["--apikey", KEY];
    all.extend_from_slice(args);
    Peer::spawn("atmosphere_fixture.py", &all, &[])
}

fn config(peer: &Peer, options: &[(&str, &str)]) -> SessionConfig {
    let mut c = SessionConfig::new(peer.http_url("/v2/event/subscription"));
    c.protocol = Protocol::Atmosphere;
    c.options.extend(options.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    c
}

fn stats(peer: &Peer) -> Value {
    peer.control("/_control/stats", &json!({}))
}

/// Waits (in the fixture, bounded) until a counter reaches `n`.
fn wait_total(peer: &Peer, key: &str, n: u64) {
    let r = peer.control(&format!("/_control/wait?key={key}&at_least={n}&timeout=5"), &json!({}));
    assert_eq!(r["ok"], true, "{key} never reached {n}: {r}");
}

fn subscribe_action() -> String {
    json!({"action":"subscribe","hash":KEY,"requests":[{"type":"state_batch","target":{"type":"all"}}]})
        .to_string()
}

fn next_message(ev: &mut Events) -> Value {
    let e = ev.wait_for("a message", |e| e.kind == EventKind::Message);
    serde_json::from_slice(&e.payload)
        .unwrap_or_else(|err| panic!("message {:?} is not JSON: {err}", e.text()))
}

fn open(ev: &mut Events) -> Ev {
    ev.wait_for("open", |e| e.is_state(SessionState::Open))
}

#[test]
fn the_handshake_opens_the_feed_and_messages_flow_both_ways() {
    let peer = fixture(&[]);
    let lp = TestLoop::start();
    let (h, mut ev) = collector();
    let s = lp.open(config(&peer, &[]), h).unwrap();
    let opened = open(&mut ev);
    let st = stats(&peer);
    let conn = &st["connections"][0];
    assert_eq!(conn["tracking_id"], "0", "a new client presents tracking id 0");
    assert_eq!(conn["uuid"], opened.text(), "the open event carries the uuid");
    assert_eq!(conn["framework"], "2.3.6-javascript");
    assert_eq!(conn["atmo_protocol"], true);
    assert_eq!(conn["transport"], "websocket");

    s.send_text(&subscribe_action()).unwrap();
    let response = next_message(&mut ev);
    assert_eq!(response["type"], "response");
    assert_eq!(response["data"]["state_batch"]["value"]["15565"], "blocked");
    let batch = next_message(&mut ev);
    assert_eq!(
        (batch["type"].as_str(), batch["event"].as_str()),
        (Some("event"), Some("state_batch"))
    );
    support::close_cleanly(&s, &mut ev);
}

#[test]
fn client_heartbeats_follow_the_interval_and_server_heartbeats_are_swallowed() {
    let peer = fixture(&["--client-heartbeat-ms", "100", "--server-heartbeat-s", "0.1"]);
    let lp = TestLoop::start();
    let (h, mut ev) = collector();
    let _s = lp.open(config(&peer, &[]), h).unwrap();
    open(&mut ev);
    wait_total(&peer, "heartbeats_received", 5);
    wait_total(&peer, "server_heartbeats_sent", 3);
    let st = stats(&peer);
    assert_eq!(st["totals"]["heartbeat_drops"], 0, "the fixture never missed a heartbeat");
    let beats: Vec<f64> = st["connections"][0]["heartbeat_ms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    for pair in beats.windows(2) {
        let gap = pair[1] - pair[0];
        assert!((60.0..=250.0).contains(&gap), "heartbeats {gap} ms apart: {beats:?}");
    }
    assert!(
        !ev.seen.iter().any(|e| e.kind == EventKind::Message),
        "a server heartbeat is not a message: {:?}",
        ev.seen
    );
}

#[test]
fn a_client_without_heartbeats_is_dropped_by_the_fixture() {
    // A plain WebSocket client at the Atmosphere URL sends no heartbeats.
    let peer = fixture(&["--client-heartbeat-ms", "100"]);
    let lp = TestLoop::start();
    let (h, mut ev) = collector();
    let url = peer.ws_url(
        "/v2/event/subscription?X-Atmosphere-tracking-id=0&X-Atmosphere-Framework=2.3.6-javascript\
         &X-Atmosphere-Transport=websocket&X-atmo-protocol=true",
    );
    let _s = lp.open(SessionConfig::new(url), h).unwrap();
    let close = ev.wait_for("the fixture's close", |e| e.kind == EventKind::Close);
    assert_eq!(close.close_code, 1001);
    assert_eq!(stats(&peer)["totals"]["heartbeat_drops"], 1);
}

#[test]
fn a_silent_server_is_caught_by_the_watchdog() {
    let peer = fixture(&["--client-heartbeat-ms", "0"]);
    let lp = TestLoop::start();
    let (h, mut ev) = collector();
    let _s = lp.open(config(&peer, &[("watchdog_ms", "300")]), h).unwrap();
    open(&mut ev);
    peer.control("/_control/config", &json!({"silent": true}));
    let e =
        ev.wait_for_within("the watchdog", Duration::from_secs(3), |e| e.kind == EventKind::Error);
    assert_eq!(e.error, Some(ErrorCode::Timeout));
    assert!(e.message.contains("watchdog"), "{}", e.message);
    ev.until_closed();
}

#[test]
fn a_reconnect_reuses_the_tracking_id_without_a_new_handshake() {
    let peer = fixture(&[]);
    let lp = TestLoop::start();
    let (h, mut ev) = collector();
    let mut c = config(&peer, &[]);
    c.reconnect = Reconnect::with_delays(Duration::from_millis(20), Duration::from_millis(50));
    let s = lp.open(c, h).unwrap();
    let uuid = open(&mut ev).text();
    peer.control("/_control/drop", &json!({"how": "close", "code": 1001}));
    ev.wait_for("reconnecting", |e| e.is_state(SessionState::Reconnecting));
    assert_eq!(open(&mut ev).text(), uuid, "the same tracking id");
    let st = stats(&peer);
    assert_eq!(st["connections"][1]["tracking_id"], uuid.as_str());
    assert_eq!(st["totals"]["handshakes_sent"], 1, "no handshake for a known uuid");
    s.send_text(&subscribe_action()).unwrap();
    assert_eq!(next_message(&mut ev)["type"], "response", "the new connection works");
}

#[test]
fn a_fresh_tracking_id_gets_a_new_handshake() {
    let peer = fixture(&[]);
    let lp = TestLoop::start();
    let (h, mut ev) = collector();
    let mut c = config(&peer, &[("tracking_id", "fresh")]);
    c.reconnect = Reconnect::with_delays(Duration::from_millis(20), Duration::from_millis(50));
    let _s = lp.open(c, h).unwrap();
    let first = open(&mut ev).text();
    peer.control("/_control/drop", &json!({"how": "abort"}));
    let second = open(&mut ev).text();
    assert_ne!(first, second, "a new uuid");
    let st = stats(&peer);
    assert_eq!(st["connections"][1]["tracking_id"], "0");
    assert_eq!(st["totals"]["handshakes_sent"], 2);
}

/// Subscribes and checks every message is whole JSON with the non-ASCII labels intact.
fn framed_messages_arrive_whole(peer: &Peer, options: &[(&str, &str)]) {
    let lp = TestLoop::start();
    let (h, mut ev) = collector();
    let mut all = vec![("track_message_length", "true")];
    all.extend_from_slice(options);
    let s = lp.open(config(peer, &all), h).unwrap();
    open(&mut ev);
    s.send_text(&subscribe_action()).unwrap();
    assert_eq!(next_message(&mut ev)["type"], "response");
    let batch = next_message(&mut ev);
    let labels: Vec<&str> =
        batch["data"].as_array().unwrap().iter().filter_map(|t| t["label"].as_str()).collect();
    assert!(labels.iter().any(|l| l.contains('😀')), "labels: {labels:?}");
    assert!(labels.contains(&"Café é"), "labels: {labels:?}");
    peer.control("/_control/push", &json!({"message": {"n": "é€😀", "i": 1}}));
    peer.control("/_control/push", &json!({"message": {"n": "second", "i": 2}}));
    assert_eq!(next_message(&mut ev), json!({"n": "é€😀", "i": 1}));
    assert_eq!(next_message(&mut ev), json!({"n": "second", "i": 2}));
    support::close_cleanly(&s, &mut ev);
    let st = stats(peer);
    assert_eq!(st["connections"][0]["tracked"], true, "length framing was asked for");
    assert!(
        st["totals"]["frames_sent"].as_u64().unwrap() > 20,
        "the fixture really split: {}",
        st["totals"]
    );
}

#[test]
fn length_framing_split_by_sizes_and_batched() {
    framed_messages_arrive_whole(&fixture(&["--framing", "split+batch"]), &[]);
}

#[test]
fn length_framing_split_around_every_non_ascii_character() {
    framed_messages_arrive_whole(
        &fixture(&["--framing", "split", "--split-style", "unicode", "--split-handshake"]),
        &[],
    );
}

#[test]
fn long_polling_carries_the_feed_and_the_close_request_ends_it() {
    let peer = fixture(&["--framing", "split", "--hold-s", "0.3"]);
    framed_messages_arrive_whole(&peer, &[("transport", "long-polling")]);
    let st = stats(&peer);
    assert_eq!(st["totals"]["longpoll_connections"], 1);
    assert_eq!(st["totals"]["websocket_connections"], 0);
    assert!(st["posts"].as_array().unwrap().iter().any(|p| p["body"] == subscribe_action()));
    assert_eq!(st["totals"]["close_requests"], 1, "closing sent the close request");
    assert_eq!(st["close_requests"][0]["known"], true);
}

#[test]
fn a_refused_websocket_falls_back_to_long_polling() {
    let peer = fixture(&["--refuse-websocket", "--hold-s", "0.3"]);
    let lp = TestLoop::start();
    let (h, mut ev) = collector();
    let s = lp.open(config(&peer, &[]), h).unwrap();
    open(&mut ev);
    let refused = ev.seen.iter().find(|e| e.kind == EventKind::Error).expect("the refusal");
    assert_eq!(refused.error, Some(ErrorCode::HttpStatus));
    s.send_text(&subscribe_action()).unwrap();
    assert_eq!(next_message(&mut ev)["type"], "response");
    assert_eq!(next_message(&mut ev)["event"], "state_batch");
    support::close_cleanly(&s, &mut ev);
    let st = stats(&peer);
    assert_eq!(st["totals"]["websocket_refusals"], 1);
    assert_eq!(st["totals"]["longpoll_connections"], 1);
    assert_eq!(st["totals"]["close_requests"], 1, "the explicit close request");
}

#[test]
fn without_the_fallback_a_refused_websocket_is_an_error() {
    let peer = fixture(&["--refuse-websocket"]);
    let lp = TestLoop::start();
    let (h, mut ev) = collector();
    let _s = lp.open(config(&peer, &[("fallback", "none")]), h).unwrap();
    let evs = ev.until_closed();
    let e = evs.iter().find(|e| e.kind == EventKind::Error).unwrap();
    assert_eq!(e.error, Some(ErrorCode::HttpStatus));
    assert!(e.message.contains("501"), "{}", e.message);
}

/// Opens a session, has the fixture send something hostile, returns the error.
fn hostile(kind: &str, options: &[(&str, &str)]) -> Ev {
    let peer = fixture(&[]);
    let lp = TestLoop::start();
    let (h, mut ev) = collector();
    let _s = lp.open(config(&peer, options), h).unwrap();
    open(&mut ev);
    peer.control("/_control/bad", &json!({"kind": kind}));
    let evs = ev.until_closed();
    evs.into_iter().find(|e| e.kind == EventKind::Error).expect("an error event")
}

#[test]
fn hostile_frames_end_in_clear_errors() {
    let framed = [("track_message_length", "true")];
    let e = hostile("nonnumeric-length", &framed);
    assert_eq!(e.error, Some(ErrorCode::Protocol));
    assert!(e.message.contains("not a number"), "{}", e.message);
    let e = hostile("overlong-length", &framed);
    assert_eq!(e.error, Some(ErrorCode::Protocol));
    assert!(e.message.contains("middle of a message"), "{}", e.message);
}

#[test]
fn a_handshake_with_missing_fields_is_refused() {
    // The fixture's next handshake is `<uuid>|` only.
    let peer = fixture(&[]);
    peer.control("/_control/bad", &json!({"kind": "handshake-missing-fields"}));
    let lp = TestLoop::start();
    let (h, mut ev) = collector();
    let _s = lp.open(config(&peer, &[]), h).unwrap();
    let evs = ev.until_closed();
    let e = evs.iter().find(|e| e.kind == EventKind::Error).expect("an error");
    assert_eq!(e.error, Some(ErrorCode::Protocol));
    assert!(e.message.contains("handshake"), "{}", e.message);
    assert!(!evs.iter().any(|e| e.is_state(SessionState::Open)), "never open: {evs:?}");
}
