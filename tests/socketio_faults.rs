//! Socket.IO / Engine.IO faults, against tests/peers/eio_fixture.py (a fixture server written
//! from PROTOCOLS.md §2): heartbeat timing and direction in both Engine.IO revisions, and
//! hostile packets at both layers.
//!
//! A fatal fault must give exactly: State(Connecting), [`connect` event, State(Open)], one
//! Error with the expected code, State(Closed), and nothing after; meanwhile a healthy
//! Socket.IO session on the same loop (with its own server heartbeat) keeps echoing, before,
//! during and after. Timing bounds use instants taken in the event handler (on the loop
//! thread) and in the fixture; nothing sleeps to synchronise.

mod support;

use livefeed::{ErrorCode, Event, EventKind, Protocol, Session, SessionConfig, SessionState};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{Ev, Events, Peer, TestLoop, WAIT, collector};

/// The namespace every session here joins.
const NS: &str = "/v2";

/// Slack over a protocol deadline on a loaded machine (two busy cores): the loop thread, the
/// fixture and the test thread may each be descheduled for a while.
const SLACK: Duration = Duration::from_millis(1200);

/// The fixture stamps a packet once its send returned, a little after the bytes left:
/// a client on time can look this much early by the fixture's clock.
const STAMP_SKEW_MS: f64 = 2.0;

fn fixture() -> Peer {
    Peer::spawn("eio_fixture.py", &[], &[])
}

fn config(peer: &Peer, scenario: &str) -> SessionConfig {
    let mut c = SessionConfig::new(format!("http://127.0.0.1:{}{NS}", peer.port));
    c.protocol = Protocol::SocketIo;
    c.options.push(("query".into(), format!("scenario={scenario}")));
    c
}

fn json_of(e: &Ev) -> Value {
    serde_json::from_slice(&e.payload).unwrap_or_else(|_| panic!("not JSON: {e:?}"))
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The line the fixture printed when the connection of `scenario` ended (skipping the lines
/// of other connections, such as the healthy session's).
fn report(peer: &Peer, scenario: &str) -> Value {
    let end = Instant::now() + WAIT;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "the fixture printed no report for {scenario}");
        let line = peer.next_line(left);
        let v: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("fixture report {line:?} is not JSON: {e}"));
        if v["scenario"] == scenario {
            return v;
        }
    }
}

fn millis(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|x| x.as_f64().unwrap_or_else(|| panic!("not a number: {x}")))
        .collect()
}

/// The client sent no Engine.IO packets but heartbeat and message ones, except perhaps a
/// close (`1`, which PROTOCOLS.md §2.2 allows either side to send).
fn only_closes(r: &Value) {
    let other = r["other"].as_array().unwrap_or_else(|| panic!("no `other` in {r}"));
    assert!(other.iter().all(|o| o == "1"), "unexpected client packets: {r}");
}

/// A collector whose handler also notes when the loop dispatched each event:
/// `at[i]` is the dispatch instant of `ev.seen[i]`.
struct Stamped {
    ev: Events,
    at: Arc<Mutex<Vec<Instant>>>,
}

fn stamped() -> (impl FnMut(&Event<'_>) + Send + 'static, Stamped) {
    let (mut inner, ev) = collector();
    let at = Arc::new(Mutex::new(Vec::new()));
    let mine = Arc::clone(&at);
    let handler = move |e: &Event<'_>| {
        mine.lock().unwrap_or_else(|p| p.into_inner()).push(Instant::now());
        inner(e);
    };
    (handler, Stamped { ev, at })
}

impl Stamped {
    fn at(&self, i: usize) -> Instant {
        self.at.lock().unwrap_or_else(|p| p.into_inner())[i]
    }
}

/// A session on the fixture's `healthy` scenario: revision 4, the server pings every 150 ms,
/// and `echo` events come back.
struct Healthy {
    s: Session,
    ev: Events,
}

impl Healthy {
    fn open(lp: &TestLoop, peer: &Peer) -> Healthy {
        let (h, mut ev) = collector();
        let s = lp.open(config(peer, "healthy"), h).unwrap();
        ev.wait_for("healthy open", |e| e.is_state(SessionState::Open));
        Healthy { s, ev }
    }

    /// One echo round trip; the very next event must be the echo.
    fn echo(&mut self, tag: &str) {
        self.s.emit(NS, "echo", &json!([tag]).to_string(), &[], None).unwrap();
        let e = self.ev.next();
        assert_eq!((e.kind, e.topic.as_str()), (EventKind::Event, "echo"), "healthy: {e:?}");
        assert_eq!(json_of(&e), json!([tag]));
    }

    fn close(mut self) {
        support::close_cleanly(&self.s, &mut self.ev);
        let errors: Vec<_> = self.ev.seen.iter().filter(|e| e.kind == EventKind::Error).collect();
        assert!(errors.is_empty(), "the healthy session saw errors: {errors:?}");
    }
}

/// What a failed session showed.
struct Failed {
    evs: Vec<Ev>,
    /// Just before the session was opened.
    started: Instant,
    /// When the loop dispatched the `connect` event (the namespace join), if any.
    joined_at: Option<Instant>,
    /// When the loop dispatched the Error event.
    error_at: Instant,
}

impl Failed {
    fn error(&self) -> &Ev {
        &self.evs[self.evs.len() - 2]
    }
}

/// Opens a healthy session and the one under test on the same loop; echoes on the healthy
/// one until the other has closed, then once more. Checks the other's events: Connecting,
/// (when `joins`) the `connect` event for [`NS`] and State(Open), one Error with `expected`,
/// State(Closed), nothing after.
fn fails_cleanly(peer: &Peer, cfg: SessionConfig, expected: ErrorCode, joins: bool) -> Failed {
    let lp = TestLoop::start();
    let mut healthy = Healthy::open(&lp, peer);
    healthy.echo("before");

    let what = cfg.options.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ");
    let (h, mut bad) = stamped();
    let started = Instant::now();
    let session = lp.open(cfg, h).unwrap();
    let end = started + Duration::from_secs(15);
    let mut round = 0;
    loop {
        healthy.echo(&format!("during {round}"));
        round += 1;
        while bad.ev.try_next().is_some() {}
        if bad.ev.seen.last().is_some_and(|e| e.is_state(SessionState::Closed)) {
            break;
        }
        assert!(Instant::now() < end, "{what}: not closed within 15 s: {:?}", bad.ev.seen);
    }
    drop(session);
    let late = bad.ev.assert_handler_dropped();
    assert!(late.is_empty(), "{what}: events after Closed: {late:?}");
    healthy.echo("after");
    healthy.close();

    let evs = bad.ev.seen.clone();
    assert!(evs[0].is_state(SessionState::Connecting), "{what}: {evs:?}");
    let prelude = if joins { 2 } else { 0 };
    assert_eq!(evs.len(), prelude + 3, "{what}: unexpected events: {evs:#?}");
    let joined_at = if joins {
        let c = &evs[1];
        assert_eq!(
            (c.kind, c.topic.as_str(), c.namespace.as_str()),
            (EventKind::Event, "connect", NS),
            "{what}: {evs:?}"
        );
        assert!(evs[2].is_state(SessionState::Open), "{what}: {evs:?}");
        Some(bad.at(1))
    } else {
        None
    };
    let err = &evs[prelude + 1];
    assert_eq!(err.kind, EventKind::Error, "{what}: {evs:?}");
    assert_eq!(err.error, Some(expected), "{what}: {}", err.message);
    assert!(!err.message.is_empty(), "{what}: the error says what happened");
    assert!(evs[prelude + 2].is_state(SessionState::Closed), "{what}: {evs:?}");
    println!("{what}: {:?}: {}", expected, err.message);
    Failed { started, joined_at, error_at: bad.at(prelude + 1), evs }
}

/// A hostile scenario after the namespace join: `Protocol`, for the reason in `why`.
fn hostile(scenario: &str, why: &str) {
    let peer = fixture();
    let f = fails_cleanly(&peer, config(&peer, scenario), ErrorCode::Protocol, true);
    let message = &f.error().message;
    assert!(message.contains(why), "{scenario}: {message:?} does not say {why:?}");
}

// ---------------------------------------------------------------------------------------
// Heartbeat

#[test]
fn v4_server_silence_is_peer_timeout_after_ping_interval_plus_timeout() {
    // Open packet: revision 4 (maxPayload), pingInterval 200, pingTimeout 100; then the
    // namespace ack (the last packet) and silence.
    let peer = fixture();
    let f = fails_cleanly(&peer, config(&peer, "v4-silent"), ErrorCode::PeerTimeout, true);
    let limit = ms(200 + 100);
    let since_open = f.error_at - f.started;
    let since_last_packet = f.error_at - f.joined_at.unwrap();
    println!("v4-silent: dead {since_open:?} after opening, {since_last_packet:?} after the join");
    assert!(since_open >= limit, "dead after {since_open:?}, before {limit:?} of silence");
    assert!(
        since_last_packet <= limit + SLACK,
        "dead {since_last_packet:?} after the last packet: far beyond {limit:?}"
    );
    assert!(
        f.error().message.contains("300ms"),
        "uses the announced values: {}",
        f.error().message
    );

    let r = report(&peer, "v4-silent");
    assert_eq!((r["rev"].as_u64(), r["eio_query"].as_str()), (Some(4), Some("4")), "{r}");
    assert_eq!(r["client_pings"], json!([]), "a revision 4 client never pings: {r}");
    assert_eq!(r["client_pongs"], json!([]), "nobody pinged the client: {r}");
    only_closes(&r);
    // The fixture's own clock: the connection ended no earlier than the deadline.
    let closed = r["closed_ms"].as_f64().unwrap();
    assert!(closed >= 300.0, "the client hung up {closed} ms after the open packet: {r}");
}

#[test]
fn v3_unanswered_ping_is_peer_timeout_and_the_client_pings() {
    // Open packet: revision 3 (no maxPayload), pingInterval 200, pingTimeout 100. The client
    // asked for EIO=4 (eio=auto) and must detect revision 3 from the open packet: ping after
    // 200 ms, give up 100 ms later.
    let peer = fixture();
    let f = fails_cleanly(&peer, config(&peer, "v3-no-pong"), ErrorCode::PeerTimeout, true);
    let limit = ms(200 + 100);
    let since_open = f.error_at - f.started;
    let since_join = f.error_at - f.joined_at.unwrap();
    println!("v3-no-pong: dead {since_open:?} after opening, {since_join:?} after the join");
    assert!(since_open >= limit, "dead after {since_open:?}, before {limit:?}");
    assert!(
        since_join <= limit + SLACK,
        "dead {since_join:?} after the join: far beyond {limit:?}"
    );
    assert!(f.error().message.contains("pong"), "{}", f.error().message);

    let r = report(&peer, "v3-no-pong");
    assert_eq!((r["rev"].as_u64(), r["eio_query"].as_str()), (Some(3), Some("4")), "{r}");
    let pings = millis(&r["client_pings"]);
    // One ping per interval; with pingTimeout < pingInterval the second is never due.
    assert_eq!(pings.len(), 1, "the revision 3 client pings once before giving up: {r}");
    assert!(
        pings[0] >= 200.0 - STAMP_SKEW_MS,
        "pinged {} ms after the open packet, before pingInterval",
        pings[0]
    );
    assert!(pings[0] <= (200 + SLACK.as_millis()) as f64, "pinged late: {r}");
    assert_eq!(r["client_pongs"], json!([]), "a revision 3 client never sends `3`: {r}");
    only_closes(&r);
    let closed = r["closed_ms"].as_f64().unwrap();
    assert!(closed >= 300.0, "the client hung up {closed} ms after the open packet: {r}");
}

#[test]
fn v4_pings_are_answered_and_keep_the_session_alive() {
    // pingInterval 100, pingTimeout 400: 8 pings span 800 ms, beyond the 500 ms the
    // client allows between pings, so each ping must also restart its watchdog.
    let peer = fixture();
    let lp = TestLoop::start();
    let (h, mut ev) = collector();
    let s = lp.open(config(&peer, "v4-pings"), h).unwrap();
    let rep = ev.wait_for("report", |e| e.kind == EventKind::Event && e.topic == "report");
    assert_eq!(rep.namespace, NS);
    let r = &json_of(&rep)[0];
    assert_eq!((r["pings"].as_u64(), r["answered"].as_u64()), (Some(8), Some(8)), "{r}");
    assert_eq!(r["pong_texts"], json!(vec!["3"; 8]), "each ping answered with `3`: {r}");
    assert_eq!(r["client_pings"], json!(0), "a revision 4 client never pings: {r}");
    s.emit(NS, "echo", r#"["still here"]"#, &[], None).unwrap();
    let e = ev.wait_for("echo", |e| e.topic == "echo");
    assert_eq!(json_of(&e), json!(["still here"]));
    support::close_cleanly(&s, &mut ev);
    let errors: Vec<_> = ev.seen.iter().filter(|e| e.kind == EventKind::Error).collect();
    assert!(errors.is_empty(), "{errors:?}");
    let r = report(&peer, "v4-pings");
    assert_eq!(r["client_pings"], json!([]), "{r}");
    only_closes(&r);
}

#[test]
fn v3_client_keeps_pinging_while_pongs_come() {
    // pingInterval 100, pingTimeout 400: the server answers; after 4 client pings it
    // reports, and the session is still usable.
    let peer = fixture();
    let lp = TestLoop::start();
    let (h, mut ev) = collector();
    let s = lp.open(config(&peer, "v3-pongs"), h).unwrap();
    let rep = ev.wait_for("report", |e| e.kind == EventKind::Event && e.topic == "report");
    let r = &json_of(&rep)[0];
    assert!(r["client_pings"].as_u64() >= Some(4), "{r}");
    assert_eq!(r["client_pongs"], json!(0), "a revision 3 client never sends `3`: {r}");
    let first = r["first_ping_ms"].as_f64().unwrap();
    assert!(
        first >= 100.0 - STAMP_SKEW_MS,
        "first ping {first} ms after the open packet, before pingInterval"
    );
    s.emit(NS, "echo", r#"[3]"#, &[], None).unwrap();
    assert_eq!(json_of(&ev.wait_for("echo", |e| e.topic == "echo")), json!([3]));
    support::close_cleanly(&s, &mut ev);
    let errors: Vec<_> = ev.seen.iter().filter(|e| e.kind == EventKind::Error).collect();
    assert!(errors.is_empty(), "{errors:?}");
    let r = report(&peer, "v3-pongs");
    assert_eq!((r["rev"].as_u64(), r["client_pongs"].clone()), (Some(3), json!([])), "{r}");
}

// ---------------------------------------------------------------------------------------
// Version negotiation

#[test]
fn forced_eio3_against_an_engineio4_only_server_is_http_status() {
    // engine.io >= 4 without allowEIO3 refuses the upgrade with 400 (PROTOCOLS.md §2.2).
    let peer = fixture();
    let mut cfg = config(&peer, "v4-silent");
    cfg.options.push(("eio".into(), "3".into()));
    let f = fails_cleanly(&peer, cfg, ErrorCode::HttpStatus, false);
    let m = &f.error().message;
    assert!(m.contains("400") && m.contains("Unsupported protocol version"), "{m}");
}

// ---------------------------------------------------------------------------------------
// Hostile Engine.IO packets

#[test]
fn unknown_engineio_packet_type_is_protocol() {
    hostile("eio-unknown-type", "Engine.IO");
}

#[test]
fn second_open_packet_is_protocol() {
    hostile("second-open", "second");
}

#[test]
fn message_before_the_open_packet_is_protocol() {
    let peer = fixture();
    let f = fails_cleanly(&peer, config(&peer, "message-before-open"), ErrorCode::Protocol, false);
    assert!(f.error().message.contains("open packet"), "{}", f.error().message);
}

#[test]
fn open_packet_without_heartbeat_values_is_protocol() {
    let peer = fixture();
    let f = fails_cleanly(&peer, config(&peer, "open-missing-fields"), ErrorCode::Protocol, false);
    assert!(f.error().message.contains("pingInterval"), "{}", f.error().message);
}

#[test]
fn unannounced_binary_frame_is_protocol() {
    hostile("unannounced-binary", "binary frame");
}

// ---------------------------------------------------------------------------------------
// Hostile Socket.IO packets

#[test]
fn socketio_packet_with_bad_json_is_protocol() {
    hostile("sio-bad-json", "JSON");
}

#[test]
fn unknown_socketio_packet_type_is_protocol() {
    hostile("sio-unknown-type", "Socket.IO");
}

#[test]
fn event_payload_that_is_not_an_array_is_protocol() {
    hostile("event-not-array", "array");
}

#[test]
fn event_name_that_is_not_a_string_is_protocol() {
    hostile("event-name-not-string", "Socket.IO");
}

#[test]
fn fewer_attachments_than_placeholders_is_protocol() {
    hostile("attachment-mismatch", "placeholder");
}

#[test]
fn more_attachments_than_placeholders_is_protocol() {
    hostile("attachment-unused", "placeholder");
}

#[test]
fn text_packet_while_attachments_are_due_is_protocol() {
    hostile("text-during-attachments", "attachments");
}

#[test]
fn ack_for_an_unknown_id_is_reported_and_the_session_stays_open() {
    let peer = fixture();
    let lp = TestLoop::start();
    let (h, mut ev) = collector();
    let s = lp.open(config(&peer, "unknown-ack"), h).unwrap();
    assert!(ev.next().is_state(SessionState::Connecting));
    assert_eq!(ev.next().topic, "connect");
    assert!(ev.next().is_state(SessionState::Open));
    // The fixture answers `ask` with an ACK for id 999 first, then the real ACK, then an event.
    let id = s.emit(NS, "ask", "[]", &[], Some(Duration::from_secs(5))).unwrap();
    assert_ne!(id, 999);
    let err = ev.next();
    assert_eq!(
        (err.kind, err.error, err.state),
        (EventKind::Error, Some(ErrorCode::Protocol), SessionState::Open),
        "{err:?}"
    );
    assert!(err.message.contains("999"), "{}", err.message);
    let ack = ev.next();
    assert_eq!((ack.kind, ack.ack_id, ack.error), (EventKind::Ack, id, None), "{ack:?}");
    assert_eq!(json_of(&ack), json!(["ok"]));
    let after = ev.next();
    assert_eq!((after.kind, after.topic.as_str()), (EventKind::Event, "after"), "{after:?}");
    assert_eq!(json_of(&after), json!([{"n": 1}]));
    s.emit(NS, "echo", r#"["later"]"#, &[], None).unwrap();
    let echo = ev.next();
    assert_eq!((echo.topic.as_str(), json_of(&echo)), ("echo", json!(["later"])));
    support::close_cleanly(&s, &mut ev);
    let errors = ev.seen.iter().filter(|e| e.kind == EventKind::Error).count();
    assert_eq!(errors, 1, "only the unknown ack was an error: {:?}", ev.seen);
}

#[test]
fn revision3_binary_frame_without_the_message_type_byte_is_protocol() {
    hostile("v3-binary-type", "packet type 2");
}

#[test]
fn event_asking_for_ack_id_u64_max_is_protocol_not_a_panic() {
    hostile("ack-id-overflow", "out of range");
}

#[test]
fn huge_heartbeat_values_do_not_overflow() {
    // pingInterval = pingTimeout = 2^64-1 ms: deadlines far away, no arithmetic overflow;
    // the session works, and so does another one on the same loop.
    let peer = fixture();
    let lp = TestLoop::start();
    let mut healthy = Healthy::open(&lp, &peer);
    let (h, mut ev) = collector();
    let s = lp.open(config(&peer, "huge-heartbeat"), h).unwrap();
    ev.wait_for("open", |e| e.is_state(SessionState::Open));
    s.emit(NS, "echo", "[1]", &[], None).unwrap();
    let echo = ev.next();
    assert_eq!((echo.topic.as_str(), json_of(&echo)), ("echo", json!([1])), "{:?}", ev.seen);
    healthy.echo("beside");
    support::close_cleanly(&s, &mut ev);
    let errors: Vec<_> = ev.seen.iter().filter(|e| e.kind == EventKind::Error).collect();
    assert!(errors.is_empty(), "{errors:?}");
    healthy.close();
}
