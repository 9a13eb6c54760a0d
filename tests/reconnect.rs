//! Reconnecting: after the peer drops the connection or a connect fails, the session waits a
//! jittered, growing delay and connects again; host sends made meanwhile go out once it is
//! back; a close the host asked for, a refused login and the attempt limit end it for good.
//! Peers: Python `websockets` (tests/peers/ws_server.py, `/drops` closes the first N
//! connections with 1012) and the raw fixture's refused port.

mod support;

use livefeed::{ErrorCode, EventKind, Reconnect, SessionConfig, SessionState};
use serde_json::Value;
use std::time::Duration;
use support::{Ev, TestLoop, collector, raw_fixture, ws_server};

fn reconnecting(min_ms: u64, max_ms: u64) -> Reconnect {
    Reconnect::with_delays(Duration::from_millis(min_ms), Duration::from_millis(max_ms))
}

/// The attempt and delay a Reconnecting state event announces.
fn announced(e: &Ev) -> (u64, u64) {
    let v: Value = serde_json::from_slice(&e.payload).expect("the detail is JSON");
    (v["attempt"].as_u64().expect("attempt"), v["delay_ms"].as_u64().expect("delay_ms"))
}

fn is_reconnecting(e: &Ev) -> bool {
    e.is_state(SessionState::Reconnecting)
}

#[test]
fn a_dropped_connection_comes_back_and_what_was_sent_meanwhile_goes_out_once_in_order() {
    let lp = TestLoop::start();
    let (h, mut ev) = collector();
    let mut config = SessionConfig::new(ws_server().ws_url("/drops?key=outbox&n=2"));
    // A fixed delay long enough for the sends below to be made while the session waits.
    config.reconnect = reconnecting(300, 300);
    config.reconnect.stable_after = Duration::from_secs(3600);
    let s = lp.open(config, h).unwrap();
    ev.expect_open();
    assert_eq!(ev.expect_text(), "conn:1");
    let close = ev.wait_for("the server's close", |e| e.kind == EventKind::Close);
    assert_eq!(close.close_code, 1012, "the server's close code");
    let first = ev.next();
    assert!(is_reconnecting(&first), "a Reconnecting state follows the close: {first:?}");
    assert_eq!(announced(&first), (1, 300));

    ev.wait_for("the second connection", |e| e.text() == "conn:2");
    let second = ev.wait_for("the second Reconnecting", is_reconnecting);
    assert_eq!(announced(&second).0, 2, "attempts count up while connections stay short");
    for i in 0..3 {
        s.send_text(&format!("queued {i}")).unwrap();
    }
    let back = ev.wait_for("Open again", |e| e.is_state(SessionState::Open));
    assert_eq!(back.state, SessionState::Open);
    assert_eq!(ev.expect_text(), "conn:3");
    for i in 0..3 {
        assert_eq!(ev.expect_text(), format!("queued {i}"), "sent once, in order");
    }
    support::echo_text(&s, &mut ev, "live again");
    support::close_cleanly(&s, &mut ev);
    assert!(ev.quiet_for(Duration::from_millis(400)), "no reconnect after the host's close");
    let errors: Vec<_> = ev.seen.iter().filter(|e| e.kind == EventKind::Error).collect();
    assert!(errors.is_empty(), "a peer's clean close is not an error: {errors:?}");
}

#[test]
fn a_stable_connection_resets_the_backoff() {
    let lp = TestLoop::start();
    let (h, mut ev) = collector();
    let mut config = SessionConfig::new(ws_server().ws_url("/drops?key=stable&n=3"));
    config.reconnect = reconnecting(10, 10_000);
    config.reconnect.stable_after = Duration::ZERO;
    let _s = lp.open(config, h).unwrap();
    for _ in 0..3 {
        let e = ev.wait_for("Reconnecting", is_reconnecting);
        let (attempt, delay) = announced(&e);
        assert_eq!(attempt, 1, "every connection counted as stable, so attempt 1 each time");
        assert_eq!(delay, 10, "the first attempt waits the minimum");
    }
    ev.wait_for("the fourth connection", |e| e.text() == "conn:4");
}

#[test]
fn a_failing_first_connect_is_retried_up_to_the_limit_with_growing_delays() {
    let (_fixture, closed_port) = raw_fixture();
    let lp = TestLoop::start();
    let (h, mut ev) = collector();
    let mut config = SessionConfig::new(format!("ws://127.0.0.1:{closed_port}/"));
    config.reconnect = reconnecting(20, 80);
    config.reconnect.max_attempts = 3;
    let _s = lp.open(config, h).unwrap();
    let evs = ev.until_closed();
    let errors: Vec<_> = evs.iter().filter(|e| e.kind == EventKind::Error).collect();
    assert_eq!(errors.len(), 4, "the first connect and three retries fail: {evs:?}");
    assert!(errors.iter().all(|e| e.error == Some(ErrorCode::Connect)));
    let waits: Vec<_> = evs.iter().filter(|e| is_reconnecting(e)).map(announced).collect();
    assert_eq!(waits.iter().map(|w| w.0).collect::<Vec<_>>(), [1, 2, 3]);
    for (attempt, delay) in &waits {
        let cap = (20u64 << (attempt - 1)).min(80);
        assert!((20..=cap).contains(delay), "attempt {attempt}: {delay} ms outside 20..={cap}");
    }
    assert!(ev.quiet_for(Duration::from_millis(300)), "nothing after Closed");
}

#[test]
fn a_refused_login_is_not_retried() {
    let (fixture, _) = raw_fixture();
    let lp = TestLoop::start();
    let (h, mut ev) = collector();
    let mut config = SessionConfig::new(fixture.ws_url("/forbidden"));
    config.reconnect = reconnecting(10, 10);
    let _s = lp.open(config, h).unwrap();
    let evs = ev.until_closed();
    assert!(evs.iter().any(|e| e.error == Some(ErrorCode::Auth)), "403 is Auth: {evs:?}");
    assert!(!evs.iter().any(is_reconnecting), "credentials do not fix themselves: {evs:?}");
}

#[test]
fn the_host_can_close_while_the_session_waits_to_reconnect() {
    let lp = TestLoop::start();
    let (h, mut ev) = collector();
    let mut config = SessionConfig::new(ws_server().ws_url("/close?code=1001&reason=bye"));
    config.reconnect = reconnecting(60_000, 60_000);
    let s = lp.open(config, h).unwrap();
    ev.wait_for("Reconnecting", is_reconnecting);
    s.close(1000, "").unwrap();
    let rest = ev.until_closed_within(Duration::from_secs(2));
    assert!(rest.iter().any(|e| e.kind == EventKind::Close), "a Close event first: {rest:?}");
    assert!(ev.quiet_for(Duration::from_millis(200)));
}

/// A driver with two addresses: the first refuses, the driver asks to start over at once.
struct TwoServers {
    urls: Vec<String>,
    next: usize,
    peer_closes: std::sync::Arc<std::sync::Mutex<Vec<u16>>>,
}

impl livefeed::session::driver::Driver for TwoServers {
    fn start(&mut self, _: &SessionConfig) -> livefeed::Result<livefeed::session::driver::Step> {
        let url = livefeed::url::Url::parse(&self.urls[self.next % self.urls.len()])?;
        self.next += 1;
        Ok(livefeed::session::driver::Step::WebSocket(url))
    }

    fn retry_now(&mut self, error: &livefeed::Error) -> bool {
        error.code == ErrorCode::Connect && self.next < self.urls.len()
    }

    fn on_peer_close(&mut self, code: u16, _reason: &str) -> livefeed::Result<()> {
        self.peer_closes.lock().unwrap().push(code);
        Err(livefeed::Error::new(ErrorCode::Protocol, "closed before the end"))
    }
}

#[test]
fn a_driver_can_try_its_next_server_at_once_and_turn_a_peer_close_into_an_error() {
    let (_fixture, closed_port) = raw_fixture();
    let lp = TestLoop::start();
    let (h, mut ev) = collector();
    let closes = std::sync::Arc::default();
    let driver = TwoServers {
        urls: vec![
            format!("ws://127.0.0.1:{closed_port}/"),
            ws_server().ws_url("/close?code=1000"),
        ],
        next: 0,
        peer_closes: std::sync::Arc::clone(&closes),
    };
    let mut config = SessionConfig::new(ws_server().ws_url("/echo"));
    config.reconnect = reconnecting(60_000, 60_000);
    let _s = lp.open_with(config, Box::new(driver), h).unwrap();
    let first = ev.wait_for("the refused first server", |e| e.kind == EventKind::Error);
    assert_eq!(first.error, Some(ErrorCode::Connect));
    ev.wait_for("Open on the second server", |e| e.is_state(SessionState::Open));
    let before_open = &ev.seen[..ev.seen.len() - 1];
    assert!(!before_open.iter().any(is_reconnecting), "no backoff: {before_open:?}");
    let e = ev.wait_for("the driver's error", |e| e.kind == EventKind::Error);
    assert_eq!((e.error, e.message.as_str()), (Some(ErrorCode::Protocol), "closed before the end"));
    assert_eq!(*closes.lock().unwrap(), [1000], "the hook saw the peer's close code");
    ev.wait_for("the backoff after the driver's error", is_reconnecting);
}

/// Opens a session on a connection the server drops once, waits until it is waiting
/// 300 ms to reconnect, and makes five sends `m0`..`m4` meanwhile.
fn five_sends_during_an_outage(
    key: &str,
    outbox: livefeed::Outbox,
) -> (livefeed::Session, support::Events, Vec<livefeed::Result<()>>, TestLoop) {
    let lp = TestLoop::start();
    let (h, mut ev) = collector();
    let mut config = SessionConfig::new(ws_server().ws_url(&format!("/drops?key={key}&n=1")));
    config.reconnect = reconnecting(300, 300);
    config.outbox = outbox;
    let s = lp.open(config, h).unwrap();
    ev.wait_for("Reconnecting", is_reconnecting);
    let results = (0..5).map(|i| s.send_text(&format!("m{i}"))).collect();
    ev.wait_for("open again", |e| e.is_state(SessionState::Open));
    assert_eq!(ev.expect_text(), "conn:2");
    (s, ev, results, lp)
}

fn outbox(max_messages: usize, overflow: livefeed::Overflow) -> livefeed::Outbox {
    livefeed::Outbox { max_messages, overflow }
}

#[test]
fn a_full_outbox_drops_the_oldest_and_reports_each_drop() {
    let (s, mut ev, results, _lp) =
        five_sends_during_an_outage("oldest", outbox(3, livefeed::Overflow::DropOldest));
    assert!(results.iter().all(|r| r.is_ok()));
    for i in 2..5 {
        assert_eq!(ev.expect_text(), format!("m{i}"), "the newest three, in order");
    }
    let dropped: Vec<_> =
        ev.seen.iter().filter(|e| e.kind == EventKind::Dropped).map(Ev::text).collect();
    assert_eq!(dropped, ["m0", "m1"], "each drop reported with its message");
    assert_eq!(s.stats().dropped, 2);
}

#[test]
fn a_full_outbox_drops_the_newest() {
    let (s, mut ev, results, _lp) =
        five_sends_during_an_outage("newest", outbox(3, livefeed::Overflow::DropNewest));
    assert!(results.iter().all(|r| r.is_ok()));
    for i in 0..3 {
        assert_eq!(ev.expect_text(), format!("m{i}"));
    }
    let dropped: Vec<_> =
        ev.seen.iter().filter(|e| e.kind == EventKind::Dropped).map(Ev::text).collect();
    assert_eq!(dropped, ["m3", "m4"]);
    assert_eq!(s.stats().dropped, 2);
}

#[test]
fn a_full_outbox_rejects_by_default() {
    let (s, mut ev, results, _lp) =
        five_sends_during_an_outage("reject", outbox(3, livefeed::Overflow::Reject));
    let codes: Vec<_> = results.iter().map(|r| r.as_ref().err().map(|e| e.code)).collect();
    assert_eq!(
        codes,
        [None, None, None, Some(ErrorCode::Backpressure), Some(ErrorCode::Backpressure)]
    );
    for i in 0..3 {
        assert_eq!(ev.expect_text(), format!("m{i}"));
    }
    assert_eq!(s.stats().dropped, 0, "a refused send is not a drop: the caller knows");
}

#[test]
fn sends_waiting_when_the_session_gives_up_are_reported() {
    let (_fixture, closed_port) = raw_fixture();
    let lp = TestLoop::start();
    let (h, mut ev) = collector();
    let mut config = SessionConfig::new(format!("ws://127.0.0.1:{closed_port}/"));
    config.reconnect = reconnecting(200, 200);
    config.reconnect.max_attempts = 1;
    let s = lp.open(config, h).unwrap();
    ev.wait_for("Reconnecting", is_reconnecting);
    s.send_text("never sent").unwrap();
    let evs = ev.until_closed();
    let dropped: Vec<_> = evs.iter().filter(|e| e.kind == EventKind::Dropped).collect();
    assert_eq!(dropped.len(), 1, "{evs:?}");
    assert_eq!(dropped[0].text(), "never sent");
    assert_eq!(s.stats().dropped, 1);
}

#[test]
fn counters_follow_the_traffic_and_pings_measure_the_round_trip() {
    let lp = TestLoop::start();
    let (h, mut ev) = collector();
    let mut config = SessionConfig::new(ws_server().ws_url("/drops?key=stats&n=1"));
    config.reconnect = reconnecting(10, 10);
    config.timeouts.ping_interval = Duration::from_millis(50);
    let s = lp.open(config, h).unwrap();
    ev.wait_for("the second connection", |e| e.text() == "conn:2");
    for text in ["a", "bb", "ccc"] {
        support::echo_text(&s, &mut ev, text);
    }
    // The keepalive pings every 50 ms of silence; the server answers each.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while s.stats().rtt.is_none() {
        assert!(std::time::Instant::now() < deadline, "no ping answered: {:?}", s.stats());
        assert!(ev.quiet_for(Duration::from_millis(20)), "nothing else happens meanwhile");
    }
    let st = s.stats();
    assert_eq!(st.state, SessionState::Open);
    assert_eq!(st.reconnects, 1);
    assert_eq!((st.messages_in, st.bytes_in), (5, 6 + 6 + 6), "conn:1, conn:2 and 3 echoes");
    assert_eq!((st.messages_out, st.bytes_out), (3, 6));
    assert!(st.rtt.unwrap() < Duration::from_secs(1));
    assert_eq!(st.last_error, ErrorCode::Ok, "a clean close is not an error");
}

#[test]
fn the_host_can_reconnect_now_and_change_the_url_for_the_next_attempt() {
    let lp = TestLoop::start();
    let (h, mut ev) = collector();
    let s = lp.open(SessionConfig::new(ws_server().ws_url("/echo")), h).unwrap();
    ev.expect_open();
    // Reconnecting is off: the host's request works anyway, with a new URL.
    s.reconfigure(SessionConfig::new(ws_server().ws_url("/subprotocol"))).unwrap();
    s.reconnect_now().unwrap();
    let e = ev.wait_for("Reconnecting", is_reconnecting);
    assert_eq!(announced(&e), (0, 0), "no wait");
    ev.wait_for("open again", |e| e.is_state(SessionState::Open));
    assert_eq!(ev.expect_text(), "none", "the new URL's greeting");
    assert_eq!(s.stats().reconnects, 1);
    let mut other = SessionConfig::new(ws_server().ws_url("/echo"));
    other.protocol = livefeed::Protocol::SocketIo;
    assert_eq!(s.reconfigure(other).unwrap_err().code, ErrorCode::InvalidParameter);
}

#[test]
fn the_loop_tells_every_session_the_network_changed() {
    let lp = TestLoop::start();
    let (h1, mut ev1) = collector();
    let (h2, mut ev2) = collector();
    let _a = lp.open(SessionConfig::new(ws_server().ws_url("/echo")), h1).unwrap();
    let _b = lp.open(SessionConfig::new(ws_server().ws_url("/echo")), h2).unwrap();
    ev1.expect_open();
    ev2.expect_open();
    lp.network_changed();
    for ev in [&mut ev1, &mut ev2] {
        ev.wait_for("Reconnecting", is_reconnecting);
        ev.wait_for("open again", |e| e.is_state(SessionState::Open));
    }
}
