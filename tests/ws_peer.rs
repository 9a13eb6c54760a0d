//! Plain `ws://` against a real server: Python `websockets` (pinned in
//! tests/peers/requirements.txt), plus one raw fixture for a peer that goes silent.

mod support;

use livefeed::{ErrorCode, EventKind, SessionConfig, SessionState};
use std::time::{Duration, Instant};
use support::{Ev, Peer, TestLoop, collector, echo_text, raw_fixture, ws_server};

fn assert_no_error(evs: &[Ev]) {
    assert!(evs.iter().all(|e| e.kind != EventKind::Error), "unexpected error event: {evs:?}");
}

#[test]
fn echoes_text_and_binary() {
    let lp = TestLoop::start();
    let (h, mut ev) = collector();
    let s = lp.open(SessionConfig::new(ws_server().ws_url("/echo")), h).unwrap();
    assert_eq!(ev.expect_open().text(), "open", "no subprotocol offered, none chosen");

    for text in ["hello", "grüße, ✓ ☃", "", &"x".repeat(70_000)] {
        echo_text(&s, &mut ev, text);
    }
    let binary: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 256) as u8).collect();
    for data in [&b"\x00\xff\x00"[..], &[][..], &binary[..]] {
        s.send_binary(data).unwrap();
        let e = ev.next();
        assert_eq!(e.kind, EventKind::Binary, "binary echo arrives as Binary");
        assert_eq!(e.payload, data, "binary echo of {} bytes is exact", data.len());
    }
    support::close_cleanly(&s, &mut ev);
    assert_no_error(&ev.seen);
}

#[test]
fn fragmented_messages_are_reassembled() {
    let lp = TestLoop::start();
    let (h, mut ev) = collector();
    let s = lp.open(SessionConfig::new(ws_server().ws_url("/fragments")), h).unwrap();
    ev.expect_open();
    // The server sends the text in 4 frames (+ an empty final one) and the binary in 3 (+1).
    assert_eq!(ev.expect_text(), "hello, fragments");
    let b = ev.next();
    assert_eq!(
        (b.kind, b.payload.as_slice()),
        (EventKind::Binary, &b"\x00\x01\x02\x03\x04\xff"[..])
    );
    echo_text(&s, &mut ev, "still in sync after fragments");
    support::close_cleanly(&s, &mut ev);
    assert_no_error(&ev.seen);
}

#[test]
fn server_pings_are_answered_and_keep_the_session_alive() {
    // websockets' own keepalive: a ping every 50 ms; no pong within 500 ms closes the
    // connection with 1011. The client sends no pings of its own here.
    let server =
        Peer::spawn("ws_server.py", &["--ping-interval", "0.05", "--ping-timeout", "0.5"], &[]);
    let lp = TestLoop::start();
    let quiet_client = |path: &str| {
        let mut cfg = SessionConfig::new(server.ws_url(path));
        cfg.timeouts.ping_interval = Duration::ZERO;
        cfg
    };

    // Explicit pings with payloads: the server checks each pong echoes its ping's payload.
    let (h, mut pings) = collector();
    let a = lp.open(quiet_client("/pings?n=5"), h).unwrap();
    pings.expect_open();
    assert_eq!(pings.expect_text(), "pongs:5");

    // A second of silence from the server: about 20 keepalive pings, each must be answered.
    let (h, mut idle) = collector();
    let b = lp.open(quiet_client("/idle?secs=1"), h).unwrap();
    idle.expect_open();
    assert_eq!(idle.expect_text(), "idle-done", "the session survived the server's keepalive");
    echo_text(&b, &mut idle, "alive");
    echo_text(&a, &mut pings, "alive too");
    support::close_cleanly(&a, &mut pings);
    support::close_cleanly(&b, &mut idle);
    assert_no_error(&pings.seen);
    assert_no_error(&idle.seen);
}

#[test]
fn server_close_code_and_reason_are_surfaced() {
    let lp = TestLoop::start();
    let (h, mut ev) = collector();
    let _s =
        lp.open(SessionConfig::new(ws_server().ws_url("/close?code=4001&reason=bye")), h).unwrap();
    ev.expect_open();
    let rest = ev.until_closed();
    let closes: Vec<&Ev> = rest.iter().filter(|e| e.kind == EventKind::Close).collect();
    assert_eq!(closes.len(), 1, "exactly one Close event: {rest:?}");
    assert_eq!((closes[0].close_code, closes[0].text().as_str()), (4001, "bye"));
    assert_no_error(&rest);
    // Only a Closing state may come between Open and the Close event; Closed comes last.
    let kinds: Vec<(EventKind, SessionState)> = rest.iter().map(|e| (e.kind, e.state)).collect();
    let close_at = rest.iter().position(|e| e.kind == EventKind::Close).unwrap();
    assert!(rest[..close_at].iter().all(|e| e.is_state(SessionState::Closing)), "{kinds:?}");
    assert_eq!(close_at + 2, rest.len(), "Close is followed by State(Closed) only: {kinds:?}");
}

#[test]
fn client_initiated_close_reaches_the_server() {
    let lp = TestLoop::start();
    let tag = format!("client-close-{}", std::process::id());
    let (h, mut ev) = collector();
    let s =
        lp.open(SessionConfig::new(ws_server().ws_url(&format!("/echo?tag={tag}"))), h).unwrap();
    ev.expect_open();
    echo_text(&s, &mut ev, "before closing");
    s.close(4000, "client bye").unwrap();
    let rest = ev.until_closed();
    assert!(rest[0].is_state(SessionState::Closing), "Closing first: {rest:?}");
    let close = rest.iter().find(|e| e.kind == EventKind::Close).expect("Close event");
    // RFC 6455 §5.5.1: the server echoes the status code; websockets echoes the reason too.
    assert_eq!((close.close_code, close.text().as_str()), (4000, "client bye"));
    assert_no_error(&rest);
    assert_eq!(s.send_text("too late").unwrap_err().code, ErrorCode::Closed);

    // What the server received on that connection.
    let (h, mut report) = collector();
    let r =
        lp.open(SessionConfig::new(ws_server().ws_url(&format!("/report?tag={tag}"))), h).unwrap();
    report.expect_open();
    let e = report.next();
    assert_eq!(e.kind, EventKind::Message);
    let json: serde_json::Value = serde_json::from_slice(&e.payload).unwrap();
    assert_eq!(json, serde_json::json!({"code": 4000, "reason": "client bye"}));
    support::close_cleanly(&r, &mut report);
}

#[test]
fn subprotocol_is_negotiated() {
    let lp = TestLoop::start();
    // The server supports chat.v2 and chat.v1, preferring chat.v2; it announces its choice.
    for (offer, chosen) in [
        (vec!["nope", "chat.v1"], "chat.v1"),
        (vec!["chat.v1", "chat.v2"], "chat.v2"),
        (vec!["nope"], "none"),
    ] {
        let mut cfg = SessionConfig::new(ws_server().ws_url("/subprotocol"));
        cfg.subprotocols = offer.iter().map(|s| s.to_string()).collect();
        let (h, mut ev) = collector();
        let s = lp.open(cfg, h).unwrap();
        let open = ev.expect_open();
        let expected_payload = if chosen == "none" { "open" } else { chosen };
        assert_eq!(
            open.text(),
            expected_payload,
            "Open event carries the subprotocol for {offer:?}"
        );
        assert_eq!(ev.expect_text(), chosen, "the server's view for {offer:?}");
        support::close_cleanly(&s, &mut ev);
    }
}

#[test]
fn headers_origin_and_cookies_reach_the_server() {
    let lp = TestLoop::start();
    let mut cfg = SessionConfig::new(ws_server().ws_url("/headers?feed=7"));
    cfg.add_header("X-Feed-Token", "t0k3n").unwrap();
    cfg.add_header("X-Client", "livefeed tests").unwrap();
    cfg.origin = Some("https://app.example".into());
    cfg.cookies = vec![("session".into(), "s1".into()), ("theme".into(), "dark".into())];
    let (h, mut ev) = collector();
    let s = lp.open(cfg, h).unwrap();
    ev.expect_open();
    let e = ev.next();
    let json: serde_json::Value = serde_json::from_slice(&e.payload).expect("JSON from the server");
    assert_eq!(json["path"], "/headers?feed=7", "request target with its query");
    let headers: Vec<(String, String)> = json["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_str().unwrap().to_ascii_lowercase(), p[1].as_str().unwrap().to_string()))
        .collect();
    let all = |name: &str| {
        headers.iter().filter(|(n, _)| n == name).map(|(_, v)| v.clone()).collect::<Vec<_>>()
    };
    assert_eq!(all("x-feed-token"), ["t0k3n"], "{headers:?}");
    assert_eq!(all("x-client"), ["livefeed tests"], "{headers:?}");
    assert_eq!(all("origin"), ["https://app.example"], "{headers:?}");
    assert_eq!(all("host"), [format!("127.0.0.1:{}", ws_server().port)], "{headers:?}");
    // RFC 6265 §5.4: one Cookie header, pairs joined by "; ".
    let cookie = all("cookie");
    assert_eq!(cookie.len(), 1, "one Cookie header: {headers:?}");
    let mut pairs: Vec<&str> = cookie[0].split("; ").collect();
    pairs.sort();
    assert_eq!(pairs, ["session=s1", "theme=dark"]);
    support::close_cleanly(&s, &mut ev);
}

#[test]
fn keepalive_declares_a_silent_peer_dead() {
    // The fixture completes the upgrade, then never reads or sends again.
    let (fixture, _) = raw_fixture();
    let mut cfg = SessionConfig::new(fixture.ws_url("/silent"));
    cfg.timeouts.ping_interval = Duration::from_millis(150);
    cfg.timeouts.pong_timeout = Duration::from_millis(300);
    let lp = TestLoop::start();
    let (h, mut ev) = collector();
    let _s = lp.open(cfg, h).unwrap();
    ev.expect_open();
    let opened = Instant::now();
    let rest = ev.until_closed();
    let elapsed = opened.elapsed();
    assert_eq!(rest.len(), 2, "an error, then Closed: {rest:?}");
    assert_eq!(rest[0].error, Some(ErrorCode::PeerTimeout), "{rest:?}");
    assert!(rest[1].is_state(SessionState::Closed));
    assert!(
        elapsed >= Duration::from_millis(400),
        "dead only after ping interval + pong timeout: {elapsed:?}"
    );
}

#[test]
fn keepalive_pings_are_answered_by_a_live_peer() {
    // Control for the test above: same keepalive settings, a real server that stays silent
    // for a second at the application level but answers pings.
    let mut cfg = SessionConfig::new(ws_server().ws_url("/idle?secs=1"));
    cfg.timeouts.ping_interval = Duration::from_millis(100);
    cfg.timeouts.pong_timeout = Duration::from_millis(300);
    let lp = TestLoop::start();
    let (h, mut ev) = collector();
    let s = lp.open(cfg, h).unwrap();
    ev.expect_open();
    assert_eq!(ev.expect_text(), "idle-done");
    echo_text(&s, &mut ev, "alive");
    support::close_cleanly(&s, &mut ev);
    assert_no_error(&ev.seen);
}

#[test]
fn close_without_status_code_is_reported_as_1005() {
    // RFC 6455 §7.1.5: a Close frame with no status code is reported as 1005.
    let (fixture, _) = raw_fixture();
    let lp = TestLoop::start();
    let (h, mut ev) = collector();
    let _s = lp.open(SessionConfig::new(fixture.ws_url("/close-empty")), h).unwrap();
    ev.expect_open();
    let rest = ev.until_closed();
    assert_no_error(&rest);
    let close = rest.iter().find(|e| e.kind == EventKind::Close).expect("Close event");
    assert_eq!((close.close_code, close.text().as_str()), (1005, ""));
}

#[test]
fn peer_close_code_survives_a_server_that_keeps_tcp_open() {
    // The server sends Close 4001 "bye", reads our Close reply, then never closes TCP.
    // The WebSocket close handshake is complete; RFC 6455 §7.1.1 lets the client drop TCP.
    let (fixture, _) = raw_fixture();
    let mut cfg = SessionConfig::new(fixture.ws_url("/close-linger"));
    cfg.timeouts.close = Duration::from_millis(300);
    let lp = TestLoop::start();
    let (h, mut ev) = collector();
    let _s = lp.open(cfg, h).unwrap();
    ev.expect_open();
    let rest = ev.until_closed();
    assert_no_error(&rest);
    let close = rest.iter().find(|e| e.kind == EventKind::Close).expect("Close event");
    assert_eq!((close.close_code, close.text().as_str()), (4001, "bye"), "{rest:?}");
}
