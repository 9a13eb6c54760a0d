//! The Navixy profile against the Atmosphere/Navixy fixture written from PROTOCOLS.md §5
//! (tests/peers/atmosphere_fixture.py): API key hash or user/auth login, the subscribe
//! action and its requests, responses with per-tracker statuses, events by name, error and
//! logout mapping with a fresh login, resubscribe after reconnect, unsubscribe on close,
//! long-polling, and unreadable messages.

mod support;

use livefeed::{ErrorCode, EventKind, Protocol, Reconnect, SessionConfig, SessionState};
use serde_json::{Value, json};
use std::time::Duration;
use support::{Ev, Events, Peer, TestLoop, collector};

const KEY: &str = "0123456789abcdef0123456789abcdef";

fn fixture(args: &[&str]) -> Peer {
    let mut all = vec!["--apikey", KEY, "--user", "ops@example.com:s3cret"];
    all.extend_from_slice(args);
    Peer::spawn("atmosphere_fixture.py", &all, &[])
}

fn config(peer: &Peer, options: &[(&str, &str)]) -> SessionConfig {
    let mut c = SessionConfig::new(peer.http_url("/v2"));
    c.protocol = Protocol::Navixy;
    c.options.extend(options.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    c
}

fn with_key(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    let mut o = vec![("token", KEY)];
    o.extend_from_slice(extra);
    o
}

fn credentials() -> Vec<(&'static str, &'static str)> {
    vec![("user", "ops@example.com"), ("password", "s3cret")]
}

fn stats(peer: &Peer) -> Value {
    peer.control("/_control/stats", &json!({}))
}

fn event(ev: &mut Events, topic: &str) -> Ev {
    ev.wait_for(topic, |e| e.kind == EventKind::Event && e.topic == topic)
}

fn json_of(e: &Ev) -> Value {
    serde_json::from_slice(&e.payload).expect("JSON payload")
}

fn opened(ev: &mut Events) {
    ev.wait_for("open", |e| e.is_state(SessionState::Open));
}

#[test]
fn an_api_key_subscribes_and_events_arrive_by_name() {
    let peer = fixture(&[]);
    let lp = TestLoop::start();
    let (h, mut ev) = collector();
    let options = with_key(&[
        ("subscribe", "state_batch"),
        ("subscribe", "readings_batch"),
        ("rate_limit", "5s"),
        ("format", "compact"),
    ]);
    let _s = lp.open(config(&peer, &options), h).unwrap();
    let response = event(&mut ev, "subscription/subscribe");
    assert_eq!(response.event_type, "response");
    assert_eq!(response.state, SessionState::Connecting, "the answer opens the feed");
    let statuses = &json_of(&response)["data"]["state_batch"]["value"];
    assert_eq!(statuses["15564"], "normal");
    assert_eq!(statuses["15565"], "blocked", "per-tracker statuses reach the host");
    opened(&mut ev);
    let batch = event(&mut ev, "state_batch");
    assert_eq!(batch.event_type, "event");
    let states = json_of(&batch);
    assert!(states.as_array().unwrap().iter().all(|s| s["source_id"].is_number()), "{states}");
    event(&mut ev, "readings_batch");

    let sent = &stats(&peer)["subscribes"][0]["json"];
    let sent: Value = if sent.is_string() {
        serde_json::from_str(sent.as_str().unwrap()).unwrap()
    } else {
        sent.clone()
    };
    assert_eq!(sent["action"], "subscribe");
    assert_eq!(sent["hash"], KEY);
    assert_eq!(
        sent["requests"],
        json!([
            {"type":"state_batch","target":{"type":"all"},"rate_limit":"5s","format":"compact"},
            {"type":"readings_batch","target":{"type":"all"},"rate_limit":"5s"}
        ])
    );
}

#[test]
fn selected_trackers_and_subscriptions_at_run_time() {
    let peer = fixture(&[]);
    let lp = TestLoop::start();
    let (h, mut ev) = collector();
    let options = with_key(&[("subscribe", "state"), ("device", "15564"), ("device", "21080")]);
    let s = lp.open(config(&peer, &options), h).unwrap();
    opened(&mut ev);
    let a = json_of(&event(&mut ev, "state"));
    let b = json_of(&event(&mut ev, "state"));
    let mut sources = [a["source_id"].as_u64().unwrap(), b["source_id"].as_u64().unwrap()];
    sources.sort_unstable();
    assert_eq!(sources, [1_015_564, 1_021_080], "one state event per selected tracker");

    s.subscribe("iot_monitor").unwrap();
    let iot = json_of(&event(&mut ev, "iot_monitor"));
    assert!(iot["iot_last_values"].is_array(), "{iot}");
    s.unsubscribe("iot_monitor").unwrap();
    event(&mut ev, "subscription/unsubscribe");
    peer.control("/_control/event", &json!({"event": "state", "tracker_ids": [15564]}));
    event(&mut ev, "state");
    peer.control("/_control/event", &json!({"event": "iot_monitor"}));
    let quiet = ev.quiet_for(Duration::from_millis(300));
    assert!(quiet, "no iot_monitor after unsubscribing: {:?}", ev.seen.last());
}

#[test]
fn a_login_with_user_and_password_gets_the_hash() {
    let peer = fixture(&[]);
    let lp = TestLoop::start();
    let (h, mut ev) = collector();
    let _s = lp.open(config(&peer, &credentials()), h).unwrap();
    opened(&mut ev);
    let st = stats(&peer);
    assert_eq!(st["auth"][0]["login"], "ops@example.com");
    assert_eq!(st["connections"][0]["hash"], st["auth"][0]["hash"]);
}

#[test]
fn refused_credentials_and_a_wrong_hash_are_auth_errors_without_retries() {
    let peer = fixture(&[]);
    let lp = TestLoop::start();
    for options in [
        vec![("user", "ops@example.com"), ("password", "wrong")],
        vec![("token", "ffffffffffffffffffffffffffffffff")],
    ] {
        let (h, mut ev) = collector();
        let mut c = config(&peer, &options);
        c.reconnect = Reconnect::with_delays(Duration::from_millis(10), Duration::from_millis(10));
        let _s = lp.open(c, h).unwrap();
        let evs = ev.until_closed();
        let e = evs.iter().find(|e| e.kind == EventKind::Error).expect("an error");
        assert_eq!(e.error, Some(ErrorCode::Auth), "{options:?}: {}", e.message);
        assert!(!evs.iter().any(|e| e.is_state(SessionState::Reconnecting)), "{evs:?}");
    }
    assert!(stats(&peer)["subscribes"][0]["json"].to_string().contains("ffff"));
}

#[test]
fn a_logout_with_credentials_logs_in_again_and_resubscribes() {
    let peer = fixture(&[]);
    let lp = TestLoop::start();
    let (h, mut ev) = collector();
    let _s = lp.open(config(&peer, &credentials()), h).unwrap();
    opened(&mut ev);
    peer.control("/_control/logout", &json!({"reason": "session closed", "invalidate": true}));
    let logout = event(&mut ev, "logout");
    assert_eq!(json_of(&logout), json!("session closed"));
    ev.wait_for("connecting again", |e| e.is_state(SessionState::Connecting));
    opened(&mut ev);
    event(&mut ev, "state_batch");
    let st = stats(&peer);
    assert_eq!(st["totals"]["auth_ok"], 2, "a fresh login");
    assert_eq!(st["totals"]["subscribes"], 2, "subscribed once per connection");
    assert_ne!(st["auth"][0]["hash"], st["auth"][1]["hash"]);
}

#[test]
fn a_logout_of_an_api_key_ends_the_session() {
    let peer = fixture(&[]);
    let lp = TestLoop::start();
    let (h, mut ev) = collector();
    let _s = lp.open(config(&peer, &with_key(&[])), h).unwrap();
    opened(&mut ev);
    peer.control("/_control/logout", &json!({"reason": "user blocked"}));
    let evs = ev.until_closed();
    assert!(evs.iter().any(|e| e.topic == "logout"), "the host sees the logout: {evs:?}");
    let e = evs.iter().find(|e| e.kind == EventKind::Error).expect("an error");
    assert_eq!(e.error, Some(ErrorCode::Auth));
    assert!(e.message.contains("user blocked"), "{}", e.message);
}

#[test]
fn an_ended_session_error_logs_in_again() {
    let peer = fixture(&[]);
    let lp = TestLoop::start();
    let (h, mut ev) = collector();
    let _s = lp.open(config(&peer, &credentials()), h).unwrap();
    opened(&mut ev);
    peer.control("/_control/error", &json!({"code": 4, "invalidate": true}));
    ev.wait_for("connecting again", |e| e.is_state(SessionState::Connecting));
    opened(&mut ev);
    assert_eq!(stats(&peer)["totals"]["auth_ok"], 2);
}

#[test]
fn every_reconnect_subscribes_again_exactly_once() {
    let peer = fixture(&[]);
    let lp = TestLoop::start();
    let (h, mut ev) = collector();
    let mut c = config(&peer, &with_key(&[]));
    c.reconnect = Reconnect::with_delays(Duration::from_millis(20), Duration::from_millis(50));
    let _s = lp.open(c, h).unwrap();
    opened(&mut ev);
    for round in 2..=3 {
        peer.control("/_control/drop", &json!({"how": if round == 2 { "close" } else { "abort" }}));
        ev.wait_for("reconnecting", |e| e.is_state(SessionState::Reconnecting));
        opened(&mut ev);
        event(&mut ev, "state_batch");
        let st = stats(&peer);
        assert_eq!(st["totals"]["subscribes"], round, "one subscribe per connection");
        assert_eq!(st["totals"]["handshakes_sent"], 1, "the tracking id was reused");
    }
}

#[test]
fn closing_unsubscribes_first() {
    let peer = fixture(&[]);
    let lp = TestLoop::start();
    let (h, mut ev) = collector();
    let s = lp.open(config(&peer, &with_key(&[("subscribe", "state_batch")])), h).unwrap();
    opened(&mut ev);
    support::close_cleanly(&s, &mut ev);
    let st = stats(&peer);
    assert_eq!(st["totals"]["unsubscribes"], 1);
    let sent = st["unsubscribes"][0]["json"].to_string();
    assert!(sent.contains("state_batch") && sent.contains(KEY), "{sent}");
}

#[test]
fn long_polling_and_length_framing_carry_navixy() {
    let peer = fixture(&["--refuse-websocket", "--framing", "split", "--hold-s", "0.3"]);
    let lp = TestLoop::start();
    let (h, mut ev) = collector();
    let options = with_key(&[("track_message_length", "true")]);
    let s = lp.open(config(&peer, &options), h).unwrap();
    opened(&mut ev);
    let batch = json_of(&event(&mut ev, "state_batch"));
    assert!(batch.to_string().contains('😀'), "{batch}");
    support::close_cleanly(&s, &mut ev);
    let st = stats(&peer);
    assert_eq!(st["totals"]["longpoll_connections"], 1);
    assert_eq!(st["totals"]["unsubscribes"], 1, "unsubscribed through a POST");
    assert_eq!(st["totals"]["close_requests"], 1);
}

#[test]
fn unreadable_messages_are_reported_and_the_feed_goes_on() {
    let peer = fixture(&[]);
    let lp = TestLoop::start();
    let (h, mut ev) = collector();
    let _s = lp.open(config(&peer, &with_key(&[])), h).unwrap();
    opened(&mut ev);
    event(&mut ev, "state_batch");
    for (kind, says) in [
        ("unknown-type", "unknown Navixy message type `weird`"),
        ("non-json", "not a JSON object"),
        ("truncated-json", "not a JSON object"),
    ] {
        peer.control("/_control/bad", &json!({"kind": kind}));
        let e = ev.wait_for(kind, |e| e.kind == EventKind::Error);
        assert_eq!(e.error, Some(ErrorCode::Protocol));
        assert!(e.message.contains(says), "{kind}: {}", e.message);
        assert_eq!(e.state, SessionState::Open, "still open");
    }
    peer.control("/_control/bad", &json!({"kind": "unknown-event"}));
    assert_eq!(event(&mut ev, "mystery").event_type, "event", "unknown events pass through");
    peer.control("/_control/event", &json!({"event": "state_batch"}));
    event(&mut ev, "state_batch");
}
