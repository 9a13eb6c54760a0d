//! Socket.IO against the real npm servers (tests/peers/socketio): socket.io 4 (Engine.IO 4),
//! socket.io 4 with allowEIO3 driven as Engine.IO 3, and socket.io 2 (Engine.IO 3), over
//! the WebSocket transport: namespaces, events, acks both ways, binary both ways, auth
//! accepted and refused, server-initiated disconnect.

mod support;

use livefeed::{ErrorCode, EventKind, Protocol, Session, SessionConfig, SessionState};
use serde_json::{Value, json};
use std::time::Duration;
use support::{Events, Peer, TestLoop, collector};

fn server(args: &[&str]) -> Peer {
    Peer::spawn("socketio/server.js", args, &[])
}

fn config(peer: &Peer, namespace: &str, eio: &str) -> SessionConfig {
    let mut c = SessionConfig::new(format!("http://127.0.0.1:{}{namespace}", peer.port));
    c.protocol = Protocol::SocketIo;
    c.options.push(("eio".into(), eio.into()));
    c
}

fn json_of(payload: &[u8]) -> Value {
    serde_json::from_slice(payload).expect("event payloads are JSON")
}

fn event(ev: &mut Events, name: &str) -> support::Ev {
    ev.wait_for(&format!("event {name}"), |e| e.kind == EventKind::Event && e.topic == name)
}

/// Everything one namespace session can do, against one server flavour.
fn exercise(peer: &Peer, eio: &str) {
    exercise_with(config(peer, "/chat", eio));
}

/// Runs the exercise; returns the session id (for the log checks on the transport).
fn exercise_with(cfg: SessionConfig) -> u64 {
    support::capture_logs();
    let lp = TestLoop::start();
    let (h, mut ev) = collector();
    let s: Session = lp.open(cfg, h).unwrap();
    let connect = event(&mut ev, "connect");
    assert_eq!(connect.namespace, "/chat");
    ev.wait_for("open", |e| e.is_state(SessionState::Open));

    // Events both ways, arguments exact.
    s.emit("/chat", "echo", r#"[1,"two",{"three":[3]},null]"#, &[], None).unwrap();
    let echo = event(&mut ev, "echo");
    assert_eq!(json_of(&echo.payload), json!([1, "two", {"three": [3]}, null]));
    assert_eq!((echo.namespace.as_str(), echo.ack_id), ("/chat", 0));

    // Our emit with an acknowledgement.
    let id = s.emit("/chat", "ack", r#"["x",{"y":2}]"#, &[], Some(Duration::from_secs(5))).unwrap();
    assert_ne!(id, 0);
    let ack = ev.wait_for("ack", |e| e.kind == EventKind::Ack);
    assert_eq!((ack.ack_id, ack.error), (id, None));
    assert_eq!(json_of(&ack.payload), json!(["x", {"y": 2}]));

    // The server's emit with an acknowledgement, answered by us.
    s.emit("/chat", "ask", "[]", &[], None).unwrap();
    let question = event(&mut ev, "question");
    assert_eq!(json_of(&question.payload), json!(["q1", 42]));
    assert_ne!(question.ack_id, 0, "the server asked for an acknowledgement");
    // Answered on the main namespace by naming none (the C API's NULL).
    s.ack("", question.ack_id, r#"["yes",7]"#, &[]).unwrap();
    assert_eq!(json_of(&event(&mut ev, "answer").payload), json!(["yes", 7]));

    // Binary from the server, and binary echoed both ways.
    s.emit("/chat", "bin", "[]", &[], None).unwrap();
    let bin = event(&mut ev, "bin");
    assert_eq!(bin.attachments.len(), 1);
    assert_eq!(bin.attachments[0], (0..1024u32).map(|i| (i % 256) as u8).collect::<Vec<_>>());
    assert_eq!(json_of(&bin.payload), json!([{"_placeholder": true, "num": 0}, {"n": 1}]));
    let blob: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 251) as u8).collect();
    let args = r#"["label",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#;
    s.emit("/chat", "echo", args, &[&blob, b"\x00\xff"], None).unwrap();
    let echo = event(&mut ev, "echo");
    assert_eq!(echo.attachments, vec![blob.clone(), b"\x00\xff".to_vec()]);
    assert_eq!(json_of(&echo.payload)[0], json!("label"));

    // A second namespace on the same connection.
    s.join("/", None).unwrap();
    ev.wait_for("connect /", |e| e.topic == "connect" && e.namespace == "/");
    s.emit("/", "echo", r#"["root"]"#, &[], None).unwrap();
    let root = ev.wait_for("echo on /", |e| e.topic == "echo" && e.namespace == "/");
    assert_eq!(json_of(&root.payload), json!(["root"]));

    // Plain send_text is the `message` event.
    s.send_text("plain").unwrap();

    // Server-initiated disconnect of the main namespace ends the session.
    s.emit("/chat", "kick", "[]", &[], None).unwrap();
    ev.wait_for("disconnect", |e| e.topic == "disconnect" && e.namespace == "/chat");
    let rest = ev.until_closed();
    assert!(rest.iter().all(|e| e.kind != EventKind::Error), "a clean end: {rest:?}");
    s.id()
}

/// What the session logged about moving from long-polling to a WebSocket.
fn upgrade_log(id: u64) -> Vec<String> {
    let prefix = format!("session {id}: ");
    support::logged(|r| {
        r.message.starts_with(&prefix)
            && (r.message.contains("upgraded from long-polling")
                || r.message.contains("staying on long-polling"))
    })
    .into_iter()
    .map(|r| r.message)
    .collect()
}

fn assert_upgraded(id: u64) {
    let log = upgrade_log(id);
    assert!(
        log.len() == 1 && log[0].ends_with("upgraded from long-polling to WebSocket"),
        "session {id} should have moved to the WebSocket: {log:?}"
    );
}

fn polling_config(peer: &Peer, namespace: &str, eio: &str) -> SessionConfig {
    let mut c = config(peer, namespace, eio);
    c.options.push(("transport".into(), "polling".into()));
    c
}

fn upgrade_config(peer: &Peer, namespace: &str) -> SessionConfig {
    let mut c = config(peer, namespace, "auto");
    c.options.push(("transport".into(), "upgrade".into()));
    c
}

#[test]
fn socketio_v4_server_polling_then_upgrade() {
    let peer = server(&["--version", "4"]);
    assert_upgraded(exercise_with(upgrade_config(&peer, "/chat")));
}

#[test]
fn socketio_v2_server_polling_then_upgrade() {
    let peer = server(&["--version", "2"]);
    assert_upgraded(exercise_with(upgrade_config(&peer, "/chat")));
}

#[test]
fn socketio_v4_server_with_allow_eio3_polling_and_upgrade_engineio_3() {
    let peer = server(&["--version", "4", "--allow-eio3"]);
    for transport in ["polling", "upgrade"] {
        let mut c = config(&peer, "/chat", "3");
        c.options.push(("transport".into(), transport.into()));
        let id = exercise_with(c);
        if transport == "upgrade" {
            assert_upgraded(id);
        }
    }
}

#[test]
fn upgrade_not_offered_stays_on_polling() {
    let peer = server(&["--version", "4", "--transports", "polling"]);
    let id = exercise_with(upgrade_config(&peer, "/chat"));
    // Not offered: no attempt at all (an attempt would fail and log "staying on ...").
    assert_eq!(upgrade_log(id), Vec::<String>::new(), "session {id} tried an upgrade");
}

#[test]
fn socketio_v4_server_engineio_4_long_polling() {
    let peer = server(&["--version", "4"]);
    exercise_with(polling_config(&peer, "/chat", "auto"));
}

#[test]
fn socketio_v2_server_engineio_3_long_polling() {
    let peer = server(&["--version", "2"]);
    exercise_with(polling_config(&peer, "/chat", "auto"));
}

#[test]
fn socketio_v4_server_engineio_4() {
    exercise(&server(&["--version", "4"]), "auto");
}

#[test]
fn socketio_v4_server_with_allow_eio3_engineio_3() {
    exercise(&server(&["--version", "4", "--allow-eio3"]), "3");
}

#[test]
fn socketio_v2_server_engineio_3_detected() {
    exercise(&server(&["--version", "2"]), "auto");
}

fn private(peer: &Peer, eio: &str, token: &str) -> (Session, Events, TestLoop) {
    let lp = TestLoop::start();
    let mut c = config(peer, "/private", eio);
    if eio == "3" || peer_is_v2(peer) {
        c.options.push(("query".into(), format!("token={token}")));
    } else {
        c.options.push(("auth".into(), json!({ "token": token }).to_string()));
    }
    let (h, ev) = collector();
    let s = lp.open(c, h).unwrap();
    (s, ev, lp)
}

fn peer_is_v2(peer: &Peer) -> bool {
    peer.args().contains(&"2".to_string())
}

fn auth_cases(peer: &Peer, eio: &str) {
    let (_s, mut ev, _lp) = private(peer, eio, "good");
    assert_eq!(json_of(&event(&mut ev, "welcome").payload), json!([{"ns": "/private"}]));
    let (_s, mut ev, _lp) = private(peer, eio, "bad");
    let evs = ev.until_closed();
    let err = evs.iter().find(|e| e.kind == EventKind::Error).expect("refusal is an error");
    assert_eq!(err.error, Some(ErrorCode::Auth), "{err:?}");
    assert!(err.message.contains("bad token"), "{}", err.message);
    assert!(evs.iter().all(|e| !e.is_state(SessionState::Open)), "{evs:?}");
}

#[test]
fn namespace_auth_accepted_and_refused_v4() {
    auth_cases(&server(&["--version", "4"]), "auto");
}

#[test]
fn namespace_auth_accepted_and_refused_v2() {
    auth_cases(&server(&["--version", "2"]), "auto");
}

#[test]
fn emit_on_a_plain_websocket_session_is_not_supported() {
    let lp = TestLoop::start();
    let (h, _ev) = collector();
    let s = lp.open(SessionConfig::new("ws://127.0.0.1:9/"), h).unwrap();
    assert_eq!(s.emit("/", "e", "[]", &[], None).unwrap_err().code, ErrorCode::NotSupported);
}

#[test]
fn bad_emit_arguments_are_refused_at_the_call() {
    let peer = server(&["--version", "4"]);
    let lp = TestLoop::start();
    let (h, _ev) = collector();
    let s = lp.open(config(&peer, "/", "auto"), h).unwrap();
    let code = |r: livefeed::Result<u64>| r.unwrap_err().code;
    assert_eq!(code(s.emit("/", "e", "{}", &[], None)), ErrorCode::InvalidParameter);
    assert_eq!(code(s.emit("/", "e", "[", &[], None)), ErrorCode::InvalidParameter);
    assert_eq!(code(s.emit("/", "connect", "[]", &[], None)), ErrorCode::InvalidParameter);
    assert_eq!(code(s.emit("nons", "e", "[]", &[], None)), ErrorCode::InvalidParameter);
    assert_eq!(code(s.emit("/", "e", "[]", &[b"x"], None)), ErrorCode::InvalidParameter);
}

/// Heartbeats travel over long-polling, and across the upgrade, too: with a 200 ms ping interval the session stays
/// up across several intervals (v4: the server's pings come in GETs, our pongs go in POSTs;
/// v3: our pings go in POSTs) and still answers after them.
#[test]
fn long_polling_keeps_the_heartbeat() {
    for (version, transport) in
        [("4", "polling"), ("2", "polling"), ("4", "upgrade"), ("2", "upgrade")]
    {
        let peer =
            server(&["--version", version, "--ping-interval", "200", "--ping-timeout", "300"]);
        let lp = TestLoop::start();
        let (h, mut ev) = collector();
        let mut c = config(&peer, "/chat", "auto");
        c.options.push(("transport".into(), transport.into()));
        let s = lp.open(c, h).unwrap();
        ev.wait_for("open", |e| e.is_state(SessionState::Open));
        let start = std::time::Instant::now();
        let mut round = 0;
        while start.elapsed() < Duration::from_millis(1500) {
            s.emit("/chat", "echo", &format!("[{round}]"), &[], None).unwrap();
            let echo = event(&mut ev, "echo");
            assert_eq!(json_of(&echo.payload), json!([round]), "socket.io {version} {transport}");
            round += 1;
        }
        assert!(
            ev.seen.iter().all(|e| e.kind != EventKind::Error && !e.is_state(SessionState::Closed)),
            "socket.io {version} {transport}: {:?}",
            ev.seen
        );
    }
}

/// A polling request the server refuses is a clear error: socket.io 4 without allowEIO3
/// answers EIO=3 with HTTP 400 and {"code":5,"message":"Unsupported protocol version"}.
#[test]
fn a_refused_poll_is_an_http_status_error() {
    let peer = server(&["--version", "4"]);
    let lp = TestLoop::start();
    let (h, mut ev) = collector();
    let _s = lp.open(polling_config(&peer, "/chat", "3"), h).unwrap();
    let evs = ev.until_closed();
    let err = evs.iter().find(|e| e.kind == EventKind::Error).expect("an error event");
    assert_eq!(err.error, Some(ErrorCode::HttpStatus), "{err:?}");
    assert!(
        err.message.contains("400") && err.message.contains("Unsupported protocol version"),
        "{}",
        err.message
    );
    assert!(evs.iter().all(|e| !e.is_state(SessionState::Open)), "{evs:?}");
}

#[test]
fn a_namespace_that_never_answers_is_a_timeout_after_the_handshake_deadline() {
    for version in ["4", "2"] {
        let peer = server(&["--version", version]);
        let lp = TestLoop::start();
        let (h, mut ev) = collector();
        let mut cfg = config(&peer, "/hang", "auto");
        cfg.timeouts.handshake = Duration::from_millis(300);
        let started = std::time::Instant::now();
        let _s = lp.open(cfg, h).unwrap();
        let evs = ev.until_closed_within(Duration::from_secs(5));
        let e = evs.iter().find(|e| e.kind == EventKind::Error).expect("an error");
        assert_eq!(e.error, Some(ErrorCode::Timeout), "v{version}: {}", e.message);
        assert!(e.message.contains("handshake or login answer"), "{}", e.message);
        assert!(!evs.iter().any(|e| e.is_state(SessionState::Open)), "v{version}: {evs:?}");
        assert!(started.elapsed() < Duration::from_secs(3), "v{version}");
    }
}

#[test]
fn acknowledgements_still_awaited_when_the_session_ends_are_reported() {
    let peer = server(&["--version", "4"]);
    let lp = TestLoop::start();
    let (h, mut ev) = collector();
    let s = lp.open(config(&peer, "/chat", "auto"), h).unwrap();
    ev.wait_for("open", |e| e.is_state(SessionState::Open));
    // `echo` answers with an event, never with the acknowledgement asked for.
    let id = s.emit("", "echo", "[1]", &[], Some(Duration::from_secs(60))).unwrap();
    event(&mut ev, "echo");
    s.close(1000, "").unwrap();
    let evs = ev.until_closed();
    let ack = evs.iter().find(|e| e.kind == EventKind::Ack).expect("the ack is reported");
    assert_eq!((ack.ack_id, ack.error), (id, Some(ErrorCode::Closed)), "{evs:?}");
}
