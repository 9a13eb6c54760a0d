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
