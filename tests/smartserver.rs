//! The SmartServer profile against tests/peers/smartserver_fixture.py, a stand-in written
//! from PROTOCOLS.md §3: REST login with the `cmsSID` cookie, 401 without a valid cookie,
//! the subscription PUT (last subscriber wins), UPD:DATAPOINT and other actions on the
//! general-purpose socket, data-log sockets that end with `"end"`, TLS with the gateway's
//! own CA or self-signed certificate.

mod support;

use livefeed::{ErrorCode, EventKind, Protocol, Reconnect, SessionConfig, SessionState};
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;
use support::{Ev, Events, Peer, TestLoop, WAIT, collector};

const USER: &str = "gateway";
const PASSWORD: &str = "secret-pw-7f3a";
const TEMP: &str = "17q4bn7/lon/2.1/Joystick/0/nvoValue";
const HUMIDITY: &str = "17q4bn7/lon/2.1/Joystick/0/nvoHumidity";
const OTHER: &str = "17q4bn7/lon/2.1/Joystick/0/nvoOther";

/// The fixture and its plain-HTTP control port.
struct Fixture {
    peer: Peer,
    ctl: u16,
}

impl Fixture {
    fn start(args: &[&str]) -> Fixture {
        Self::start_with(args, &[])
    }

    fn start_with(args: &[&str], envs: &[(&str, &str)]) -> Fixture {
        let mut all = vec!["--user", USER, "--password", PASSWORD];
        all.extend_from_slice(args);
        let peer = Peer::spawn("smartserver_fixture.py", &all, envs);
        let line = peer.next_line(WAIT);
        let ctl = line
            .strip_prefix("ctl ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("fixture: bad second line {line:?}"));
        Fixture { peer, ctl }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.peer.port)
    }

    /// A control request; answers the JSON body.
    fn ctl(&self, method: &str, path: &str, body: &str) -> Value {
        let mut s = TcpStream::connect(("127.0.0.1", self.ctl)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let req = format!(
            "{method} {path} HTTP/1.0\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        let json = answer.split("\r\n\r\n").nth(1).expect("a body");
        serde_json::from_str(json).unwrap_or_else(|e| panic!("{path}: {e}: {answer}"))
    }

    fn stats(&self) -> Value {
        self.ctl("GET", "/_ctl/stats", "")
    }

    /// Sends datapoint values; answers how many entries went out.
    fn update(&self, updates: Value) -> u64 {
        let r = self.ctl("POST", "/_ctl/update", &json!({ "updates": updates }).to_string());
        r["entries"].as_u64().unwrap()
    }

    fn push(&self, frame: &str) {
        let r = self.ctl("POST", "/_ctl/push", frame);
        assert_eq!(r["sent"], 1, "one live socket got {frame:?}: {r}");
    }

    /// The HTTP status of each subscription PUT so far.
    fn put_statuses(&self) -> Vec<u64> {
        let st = self.stats();
        st["puts"].as_array().unwrap().iter().map(|p| p["status"].as_u64().unwrap()).collect()
    }
}

fn config(url: &str, options: &[(&str, &str)]) -> SessionConfig {
    let mut c = SessionConfig::new(url);
    c.protocol = Protocol::SmartServer;
    c.options.push(("user".into(), USER.into()));
    c.options.push(("password".into(), PASSWORD.into()));
    c.options.extend(options.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    c
}

fn fast_reconnect(mut c: SessionConfig) -> SessionConfig {
    c.reconnect = Reconnect::with_delays(Duration::from_millis(10), Duration::from_millis(50));
    c
}

fn is_event(e: &Ev, topic: &str) -> bool {
    e.kind == EventKind::Event && e.topic == topic
}

fn errors(ev: &Events) -> Vec<&Ev> {
    ev.seen.iter().filter(|e| e.kind == EventKind::Error).collect()
}

fn json_of(e: &Ev) -> Value {
    serde_json::from_slice(&e.payload).unwrap_or_else(|err| panic!("{err}: {e:?}"))
}

#[test]
fn login_subscribe_and_datapoint_updates_one_event_per_datapoint() {
    let fx = Fixture::start(&[]);
    let lp = TestLoop::start();
    let (h, mut ev) = collector();
    let c = config(&fx.url(), &[("subscribe", TEMP), ("subscribe", HUMIDITY)]);
    let _s = lp.open(c, h).unwrap();
    assert_eq!(ev.expect_open().text(), "live");

    let sent = fx.update(json!([[TEMP, 21.5], [OTHER, 1], [HUMIDITY, {"value": 40, "unit": "%"}]]));
    assert_eq!(sent, 2, "the fixture sends subscribed datapoints only");
    let t = ev.next();
    assert!(is_event(&t, TEMP), "{t:?}");
    assert_eq!(t.event_type, "UPD:DATAPOINT");
    let v = json_of(&t);
    assert_eq!((&v["datapointQualifier"], &v["value"]), (&json!(TEMP), &json!(21.5)), "{v}");
    assert!(v["timestamp"].is_string(), "the entry is passed on whole: {v}");
    let h = ev.next();
    assert!(is_event(&h, HUMIDITY), "{h:?}");
    assert_eq!(json_of(&h)["value"], json!({"value": 40, "unit": "%"}));

    let st = fx.stats();
    assert_eq!(st["logins"], 1, "{st}");
    assert_eq!(st["puts"], json!([{"status": 204, "body": [TEMP, HUMIDITY]}]), "{st}");
    // The upgrade carried the cookie the login set.
    let cookies = st["ws_cookies"].as_array().unwrap();
    assert!(cookies.len() == 1 && cookies[0].as_str().is_some_and(|c| c.len() == 32), "{st}");
    assert!(errors(&ev).is_empty(), "{:?}", ev.seen);
}

#[test]
fn other_actions_become_events_named_after_the_action() {
    let fx = Fixture::start(&[]);
    let lp = TestLoop::start();
    let (h, mut ev) = collector();
    let _s = lp.open(config(&fx.url(), &[]), h).unwrap();
    ev.expect_open();
    assert_eq!(fx.stats()["puts"], json!([]), "no list, no PUT");

    fx.push(r#"{"action":"NTF:TIME","payload":{"value":"2026-01-01T00:00:00.000Z"}}"#);
    fx.push(r#"{"action":"CRT:ALARM","payload":[{"id":7,"severity":"high"}]}"#);
    fx.push(r#"{"action":"UPD:MONITORINGSTATE","payload":{"active":true}}"#);
    fx.push(r#"{"action":"UPD:CPU"}"#);
    let expected = [
        ("NTF:TIME", json!({"value": "2026-01-01T00:00:00.000Z"})),
        ("CRT:ALARM", json!([{"id": 7, "severity": "high"}])),
        ("UPD:MONITORINGSTATE", json!({"active": true})),
        ("UPD:CPU", Value::Null),
    ];
    for (action, payload) in expected {
        let e = ev.next();
        assert!(is_event(&e, action), "{e:?}");
        assert_eq!(e.event_type, action);
        assert_eq!(json_of(&e), payload, "{action}");
    }
}

#[test]
fn bad_frames_raise_protocol_errors_and_the_feed_carries_on() {
    let fx = Fixture::start(&[]);
    let lp = TestLoop::start();
    let (h, mut ev) = collector();
    let _s = lp.open(config(&fx.url(), &[("subscribe", TEMP)]), h).unwrap();
    ev.expect_open();
    let bad = [
        ("not json at all", "is not JSON"),
        ("[1,2,3]", "is not a JSON object"),
        (r#"{"payload":{}}"#, "without a string `action`"),
        (r#"{"action":["UPD:DATAPOINT"]}"#, "without a string `action`"),
        (r#"{"action":"UPD:DATAPOINT","payload":"oops"}"#, "not an array of entries"),
        (r#"{"action":"UPD:DATAPOINT","payload":[42]}"#, "entry that is not an object"),
        (r#"{"action":"UPD:DATAPOINT","payload":[{"value":1}]}"#, "without a `datapointQualifier`"),
        ("{\"action\":\"UPD:DATAPOINT\",\"payload\":[", "is not JSON"),
    ];
    for (frame, why) in bad {
        fx.push(frame);
        let e = ev.next();
        assert_eq!((e.kind, e.error), (EventKind::Error, Some(ErrorCode::Protocol)), "{e:?}");
        assert!(e.message.contains(why), "{frame}: {}", e.message);
        assert_eq!(e.state, SessionState::Open, "the error does not end the session");
    }
    let r = fx.ctl("POST", "/_ctl/push?binary=1", "\u{1}\u{2}");
    assert_eq!(r["sent"], 1);
    let e = ev.next();
    assert_eq!(e.error, Some(ErrorCode::Protocol), "{e:?}");
    assert!(e.message.contains("binary frame of 2 bytes"), "{}", e.message);

    // Still open and delivering.
    assert_eq!(fx.update(json!([[TEMP, 1]])), 1);
    let e = ev.next();
    assert!(is_event(&e, TEMP), "{e:?}");
}

fn refused_at_login(c: SessionConfig) {
    let fx = Fixture::start(&[]);
    let lp = TestLoop::start();
    let (h, mut ev) = collector();
    let mut c = c;
    c.url = fx.url();
    let _s = lp.open(c, h).unwrap();
    let evs = ev.until_closed();
    let err = evs.iter().find(|e| e.kind == EventKind::Error).expect("an error event");
    assert_eq!(err.error, Some(ErrorCode::Auth), "{err:?}");
    assert!(err.message.contains("login refused (HTTP 401)"), "{}", err.message);
    assert!(evs.iter().all(|e| !e.is_state(SessionState::Open)), "{evs:?}");
    let st = fx.stats();
    assert_eq!((&st["logins"], &st["login_failures"]), (&json!(0), &json!(1)), "{st}");
}

#[test]
fn a_wrong_password_is_an_auth_error() {
    let mut c = config("http://unused/", &[]);
    c.options.retain(|(k, _)| k != "password");
    c.options.push(("password".into(), "wrong".into()));
    refused_at_login(c);
}

#[test]
fn a_wrong_password_ends_the_session_even_with_reconnect_on() {
    let mut c = fast_reconnect(config("http://unused/", &[]));
    c.options.retain(|(k, _)| k != "password");
    c.options.push(("password".into(), "wrong".into()));
    refused_at_login(c);
}

#[test]
fn missing_or_conflicting_options_are_refused_at_open() {
    let lp = TestLoop::start();
    let mut no_password = config("https://ss.local/", &[]);
    no_password.options.retain(|(k, _)| k != "password");
    let both = config("https://ss.local/", &[("datalog", "*+utc>x"), ("subscribe", TEMP)]);
    let bad_name = config("https://ss.local/", &[("subscribe", "")]);
    let query = config("https://ss.local/iap/ws?value=x", &[]);
    for c in [no_password, both, bad_name, query] {
        let (h, _ev) = collector();
        let got = lp.open(c.clone(), h).err().map(|e| e.code);
        assert_eq!(got, Some(ErrorCode::InvalidParameter), "{:?}", c.options);
    }
}

#[test]
fn an_expired_session_is_renewed_and_the_subscription_put_again() {
    let fx = Fixture::start(&[]);
    let lp = TestLoop::start();
    let (h, mut ev) = collector();
    let c = fast_reconnect(config(&fx.url(), &[("subscribe", TEMP)]));
    let _s = lp.open(c, h).unwrap();
    ev.expect_open();
    assert_eq!(fx.update(json!([[TEMP, 1]])), 1);
    ev.wait_for("an update", |e| is_event(e, TEMP));
    // Another client with the same login replaces the list, then the session times out and
    // the server closes the socket.
    fx.ctl("POST", "/_ctl/take-over", &json!([OTHER]).to_string());
    assert_eq!(fx.update(json!([[TEMP, 1]])), 0, "the take-over stopped our updates");
    fx.ctl("POST", "/_ctl/expire?close=1001", "");

    ev.wait_for("reconnecting", |e| e.is_state(SessionState::Reconnecting));
    ev.wait_for("open again", |e| e.is_state(SessionState::Open));
    // The old cookie was tried (401), then one fresh login, then the full list again.
    assert_eq!(fx.put_statuses(), vec![204, 401, 204]);
    let st = fx.stats();
    assert_eq!(st["logins"], 2, "{st}");
    assert_eq!(st["puts"][2]["body"], json!([TEMP]), "{st}");
    let cookies = st["ws_cookies"].as_array().unwrap();
    assert!(cookies.len() == 2 && cookies[0] != cookies[1], "a new cookie: {st}");
    assert_eq!(fx.update(json!([[TEMP, 2]])), 1);
    let e = ev.wait_for("an update after the renewal", |e| is_event(e, TEMP));
    assert_eq!(json_of(&e)["value"], 2);
    assert!(errors(&ev).is_empty(), "the renewal is not an error: {:?}", ev.seen);
}

#[test]
fn a_refused_upgrade_brings_a_fresh_login_at_once() {
    // No subscriptions: the upgrade is the first request to meet the expired cookie.
    let fx = Fixture::start(&[]);
    let lp = TestLoop::start();
    let (h, mut ev) = collector();
    let _s = lp.open(fast_reconnect(config(&fx.url(), &[])), h).unwrap();
    ev.expect_open();
    fx.push(r#"{"action":"NTF:TIME","payload":{}}"#);
    ev.wait_for("a frame", |e| is_event(e, "NTF:TIME"));
    fx.ctl("POST", "/_ctl/expire?close=1001", "");
    ev.wait_for("open again", |e| e.is_state(SessionState::Open));
    let st = fx.stats();
    assert_eq!((&st["ws_refused"], &st["logins"]), (&json!(1), &json!(2)), "{st}");
    // The session reports the refused upgrade, then recovers without waiting out a backoff.
    let errs = errors(&ev);
    assert!(errs.len() == 1 && errs[0].error == Some(ErrorCode::Auth), "{:?}", ev.seen);
    fx.push(r#"{"action":"NTF:TIME","payload":{}}"#);
    ev.wait_for("a frame after the renewal", |e| is_event(e, "NTF:TIME"));
}

#[test]
fn a_socket_closed_right_after_the_upgrade_logs_in_afresh() {
    // A server that refuses the cookie by opening and closing at once (1008), not with 401.
    let fx = Fixture::start(&["--ws-unauth", "close"]);
    let lp = TestLoop::start();
    let (h, mut ev) = collector();
    let _s = lp.open(fast_reconnect(config(&fx.url(), &[])), h).unwrap();
    ev.expect_open();
    fx.push(r#"{"action":"NTF:TIME","payload":{}}"#);
    ev.wait_for("a frame", |e| is_event(e, "NTF:TIME"));
    fx.ctl("POST", "/_ctl/expire?close=1001", "");
    // Reconnect with the old cookie: opened, then closed unheard (1008); then a login.
    ev.wait_for("refusal", |e| e.kind == EventKind::Close && e.close_code == 1008);
    ev.wait_for("open again", |e| e.is_state(SessionState::Open));
    let st = fx.stats();
    assert_eq!((&st["ws_refused"], &st["logins"]), (&json!(1), &json!(2)), "{st}");
    let r = fx.ctl("POST", "/_ctl/push", r#"{"action":"NTF:TIME","payload":{}}"#);
    assert_eq!(r["sent"], 1, "{r}");
    ev.wait_for("a frame after the renewal", |e| is_event(e, "NTF:TIME"));
}

#[test]
fn subscriptions_at_run_time_put_the_new_list_and_renew_an_expired_session() {
    let fx = Fixture::start(&[]);
    let lp = TestLoop::start();
    let (h, mut ev) = collector();
    let s = lp.open(config(&fx.url(), &[("subscribe", TEMP)]), h).unwrap();
    ev.expect_open();

    s.subscribe(HUMIDITY).unwrap();
    ev.wait_for("connecting", |e| e.is_state(SessionState::Connecting));
    ev.wait_for("open", |e| e.is_state(SessionState::Open));
    assert_eq!(fx.stats()["puts"][1]["body"], json!([TEMP, HUMIDITY]));
    assert_eq!(fx.update(json!([[HUMIDITY, 3]])), 1);
    ev.wait_for("humidity", |e| is_event(e, HUMIDITY));

    // No reconnect policy: the PUT of a changed list meets the expired session.
    fx.ctl("POST", "/_ctl/expire", "");
    s.unsubscribe(TEMP).unwrap();
    ev.wait_for("connecting", |e| e.is_state(SessionState::Connecting));
    ev.wait_for("open", |e| e.is_state(SessionState::Open));
    assert_eq!(fx.put_statuses(), vec![204, 204, 401, 204]);
    let st = fx.stats();
    assert_eq!((&st["logins"], &st["puts"][3]["body"]), (&json!(2), &json!([HUMIDITY])), "{st}");
    assert_eq!(fx.update(json!([[TEMP, 1], [HUMIDITY, 4]])), 1);
    let e = ev.wait_for("humidity", |e| e.kind == EventKind::Event);
    assert!(is_event(&e, HUMIDITY), "{e:?}");
    assert!(errors(&ev).is_empty(), "{:?}", ev.seen);
}

#[test]
fn a_login_without_a_cookie_meets_401_and_ends_with_auth() {
    // Without the cookie every later request is unauthenticated: the 401 right after a
    // login must end the session, not start a login loop.
    let fx = Fixture::start(&["--no-cookie"]);
    let lp = TestLoop::start();
    let (h, mut ev) = collector();
    let _s = lp.open(fast_reconnect(config(&fx.url(), &[("subscribe", TEMP)])), h).unwrap();
    let evs = ev.until_closed();
    let err = evs.iter().find(|e| e.kind == EventKind::Error).expect("an error");
    assert_eq!(err.error, Some(ErrorCode::Auth), "{err:?}");
    assert!(err.message.contains("right after logging in"), "{}", err.message);
    assert_eq!(fx.put_statuses(), vec![401]);
    assert_eq!(fx.stats()["logins"], 1);
}

#[test]
fn a_refused_relogin_ends_the_session_even_with_reconnect_on() {
    let fx = Fixture::start(&[]);
    let lp = TestLoop::start();
    let (h, mut ev) = collector();
    let s = lp.open(fast_reconnect(config(&fx.url(), &[("subscribe", TEMP)])), h).unwrap();
    ev.expect_open();
    // The session expires and an administrator changes the password meanwhile.
    fx.ctl("POST", "/_ctl/expire", "");
    fx.ctl("POST", "/_ctl/password", "changed");
    s.subscribe(HUMIDITY).unwrap();
    let evs = ev.until_closed();
    let err = evs.iter().find(|e| e.kind == EventKind::Error).expect("an error");
    assert_eq!(err.error, Some(ErrorCode::Auth), "{err:?}");
    assert!(evs.iter().all(|e| !e.is_state(SessionState::Reconnecting)), "{evs:?}");
    let st = fx.stats();
    assert_eq!((&st["logins"], &st["login_failures"]), (&json!(1), &json!(1)), "{st}");
    assert_eq!(fx.put_statuses(), vec![204, 401]);
}

// ---------------------------------------------------------------------------------------
// Data-log queries

const WINDOW: &str = "*+utc>2026-01-01T00:00:00.000&utc<=2026-01-01T02:00:00.000";

fn datalog(fx: &Fixture, extra: &[(&str, &str)]) -> (TestLoop, livefeed::Session, Events) {
    let lp = TestLoop::start();
    let (h, ev) = collector();
    let mut options = vec![("datalog", WINDOW)];
    options.extend_from_slice(extra);
    let s = lp.open(config(&fx.url(), &options), h).unwrap();
    (lp, s, ev)
}

#[test]
fn a_datalog_query_delivers_one_event_per_entry_and_ends_on_end() {
    let fx = Fixture::start(&[]);
    let (_lp, _s, mut ev) = datalog(&fx, &[("datalog_dev", "*+name==Sensor 1")]);
    assert_eq!(ev.expect_open().text(), "datalog");
    let evs = ev.until_closed();
    let entries: Vec<&Ev> = evs.iter().filter(|e| e.kind == EventKind::Event).collect();
    // Entries at 00:30 and 01:30 fall in the window, newest first.
    assert_eq!(entries.len(), 2, "{evs:?}");
    assert_eq!((entries[0].topic.as_str(), entries[1].topic.as_str()), ("nvoHumidity", "nvoTemp"));
    assert!(entries.iter().all(|e| e.event_type == "DATALOG"));
    assert_eq!(json_of(entries[0])["utc"], "2026-01-01T01:30:00.000");
    assert_eq!(json_of(entries[1])["value"], 20);
    let close = evs.iter().find(|e| e.kind == EventKind::Close).expect("a close");
    assert_eq!(close.close_code, 1000, "{evs:?}");
    assert!(errors(&ev).is_empty(), "{:?}", ev.seen);
    // The filter reached the server intact: `+`, `&`, `<=` were percent-encoded.
    let st = fx.stats();
    assert_eq!(st["datalog_queries"], json!([WINDOW]), "{st}");
    assert_eq!(st["puts"], json!([]), "a data-log session subscribes to nothing: {st}");
}

#[test]
fn a_datalog_query_with_no_match_gets_only_end() {
    let fx = Fixture::start(&["--log-entries", "0"]);
    let (_lp, _s, mut ev) = datalog(&fx, &[]);
    ev.expect_open();
    let evs = ev.until_closed();
    assert!(evs.iter().all(|e| e.kind != EventKind::Event), "{evs:?}");
    assert!(errors(&ev).is_empty(), "{:?}", ev.seen);
}

fn completes_once_with_reconnect_on(mode: &str) {
    let fx = Fixture::start(&["--datalog-mode", mode]);
    let lp = TestLoop::start();
    let (h, mut ev) = collector();
    let c = fast_reconnect(config(&fx.url(), &[("datalog", WINDOW)]));
    let _s = lp.open(c, h).unwrap();
    ev.expect_open();
    let evs = ev.until_closed();
    assert_eq!(evs.iter().filter(|e| e.kind == EventKind::Event).count(), 2, "{evs:?}");
    let closes: Vec<&Ev> = evs.iter().filter(|e| e.kind == EventKind::Close).collect();
    assert!(closes.len() == 1 && closes[0].close_code == 1000, "{evs:?}");
    assert!(ev.quiet_for(Duration::from_millis(300)), "events after Closed: {:?}", ev.seen);
    assert!(ev.seen.iter().all(|e| !e.is_state(SessionState::Reconnecting)), "{:?}", ev.seen);
    assert_eq!(fx.stats()["datalog_queries"].as_array().unwrap().len(), 1);
}

#[test]
fn a_completed_datalog_query_is_not_repeated_when_reconnect_is_on() {
    completes_once_with_reconnect_on("end");
}

#[test]
fn a_datalog_end_read_together_with_the_close_completes_the_query() {
    completes_once_with_reconnect_on("end-at-once");
}

fn datalog_fails(mode: &str, codes: &[ErrorCode], why: &str) {
    let fx = Fixture::start(&["--datalog-mode", mode]);
    let (_lp, _s, mut ev) = datalog(&fx, &[]);
    ev.expect_open();
    let evs = ev.until_closed();
    assert_eq!(evs.iter().filter(|e| e.kind == EventKind::Event).count(), 2, "{evs:?}");
    let err = evs.iter().find(|e| e.kind == EventKind::Error).expect("an error");
    assert!(err.error.is_some_and(|c| codes.contains(&c)), "{mode}: {err:?}");
    assert!(err.message.contains(why), "{mode}: {}", err.message);
}

#[test]
fn a_datalog_socket_closed_before_end_is_an_error() {
    datalog_fails("early-close", &[ErrorCode::Protocol], "closed before its \"end\"");
}

#[test]
fn a_datalog_connection_cut_before_end_is_an_error() {
    datalog_fails("drop", &[ErrorCode::WsAbnormalClose, ErrorCode::Io], "");
}

#[test]
fn a_bad_datalog_frame_is_reported_and_the_query_completes() {
    let fx = Fixture::start(&["--datalog-mode", "garbage"]);
    let (_lp, _s, mut ev) = datalog(&fx, &[]);
    ev.expect_open();
    let evs = ev.until_closed();
    let errs: Vec<&Ev> = evs.iter().filter(|e| e.kind == EventKind::Error).collect();
    assert_eq!(errs.len(), 1, "{evs:?}");
    assert_eq!(errs[0].error, Some(ErrorCode::Protocol));
    assert!(errs[0].message.contains("data-log frame that is not JSON"), "{}", errs[0].message);
    assert_eq!(evs.iter().filter(|e| e.kind == EventKind::Event).count(), 2, "{evs:?}");
    let close = evs.iter().find(|e| e.kind == EventKind::Close).expect("a close");
    assert_eq!(close.close_code, 1000);
}

#[test]
fn a_datalog_query_the_server_refuses_is_an_http_error() {
    let fx = Fixture::start(&[]);
    let lp = TestLoop::start();
    let (h, mut ev) = collector();
    let _s = lp.open(config(&fx.url(), &[("datalog", "everything")]), h).unwrap();
    let evs = ev.until_closed();
    let err = evs.iter().find(|e| e.kind == EventKind::Error).expect("an error");
    assert_eq!(err.error, Some(ErrorCode::HttpStatus), "{err:?}");
    assert!(err.message.contains("400"), "{}", err.message);
}

// ---------------------------------------------------------------------------------------
// TLS: gateways present their own certificates.

fn tls_fixture(cert: &str, key: &str) -> Fixture {
    Fixture::start_with(&["--tls-env"], &[("LF_TLS_CERT", cert), ("LF_TLS_KEY", key)])
}

fn tls_session(fx: &Fixture, host: &str, ca: Option<Vec<u8>>) -> Events {
    let lp = TestLoop::start();
    let (h, mut ev) = collector();
    let mut c = config(&format!("https://{host}:{}/", fx.peer.port), &[("subscribe", TEMP)]);
    c.tls.extra_ca_pem.extend(ca);
    let s = lp.open(c, h).unwrap();
    let first = ev.wait_for("open or closed", |e| {
        e.is_state(SessionState::Open) || e.is_state(SessionState::Closed)
    });
    if first.is_state(SessionState::Open) {
        assert_eq!(fx.update(json!([[TEMP, 5]])), 1);
        ev.wait_for("an update over TLS", |e| is_event(e, TEMP));
        support::close_cleanly(&s, &mut ev);
    }
    ev
}

#[test]
fn tls_with_the_gateway_ca_as_a_ca_file() {
    let pki = support::pki();
    let fx = tls_fixture(&pki.good_cert, &pki.good_key);
    let ev = tls_session(&fx, "localhost", Some(pki.ca_pem.clone()));
    assert!(errors(&ev).is_empty(), "{:?}", ev.seen);
    let st = fx.stats();
    assert_eq!((&st["logins"], &st["ws_opens"]), (&json!(1), &json!(1)), "{st}");
}

/// A self-signed certificate like the one a SmartServer makes for itself.
fn self_signed() -> (String, String) {
    // One directory per call: tests run in parallel and each removes its own.
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("ss-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"])
        .args(["-nodes", "-keyout", "ss.key", "-out", "ss.pem", "-days", "2"])
        .args(["-subj", "/CN=smartserver", "-addext", "subjectAltName=IP:127.0.0.1"])
        .current_dir(&dir)
        .stdin(Stdio::null())
        .output()
        .expect("openssl");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
    let pair = (read("ss.pem"), read("ss.key"));
    let _ = std::fs::remove_dir_all(&dir);
    pair
}

#[test]
fn tls_with_a_self_signed_gateway_certificate_as_the_ca_file() {
    let (cert, key) = self_signed();
    let fx = tls_fixture(&cert, &key);
    let ev = tls_session(&fx, "127.0.0.1", Some(cert.into_bytes()));
    assert!(errors(&ev).is_empty(), "{:?}", ev.seen);
}

#[test]
fn tls_refuses_an_unknown_gateway_certificate_by_default() {
    let (cert, key) = self_signed();
    let fx = tls_fixture(&cert, &key);
    let ev = tls_session(&fx, "127.0.0.1", None);
    let errs = errors(&ev);
    assert!(errs.len() == 1 && errs[0].error == Some(ErrorCode::TlsCertificate), "{:?}", ev.seen);
    assert_eq!(fx.stats()["login_failures"], 0);
    assert_eq!(fx.stats()["logins"], 0, "the password never left");
}

// ---------------------------------------------------------------------------------------
// Secrets

#[test]
fn neither_password_nor_cookie_is_logged() {
    support::capture_logs();
    let fx = Fixture::start(&[]);
    let lp = TestLoop::start();
    let (h, mut ev) = collector();
    let s = lp.open(config(&fx.url(), &[("subscribe", TEMP)]), h).unwrap();
    ev.expect_open();
    s.subscribe(HUMIDITY).unwrap();
    ev.wait_for("open again", |e| e.is_state(SessionState::Open));
    support::close_cleanly(&s, &mut ev);
    let st = fx.stats();
    let cookie = st["ws_cookies"][0].as_str().unwrap().to_string();
    let all = support::logged(|_| true);
    assert!(all.iter().any(|r| r.message.contains("SmartServer: logged in")), "{all:?}");
    let leaks = support::logged(|r| r.message.contains(PASSWORD) || r.message.contains(&cookie));
    assert!(leaks.is_empty(), "{leaks:?}");
}

// ---------------------------------------------------------------------------------------
// lfcat (needs `make asan`, like tests/c_programs.rs; `make test` runs it with --ignored)

fn lfcat(args: &[&str]) -> (i32, String, String) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("build/asan/lfcat");
    assert!(path.exists(), "{} is missing: run `make asan` first", path.display());
    let mut all = vec!["-p", "smartserver", "--user", USER, "--password", PASSWORD];
    all.extend_from_slice(args);
    all.extend(["--timeout", "8"]);
    let out = Command::new(path).args(&all).stdin(Stdio::null()).output().expect("lfcat runs");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

#[test]
#[ignore = "needs build/asan/lfcat (make asan)"]
fn lfcat_runs_a_datalog_query() {
    let fx = Fixture::start(&[]);
    let (code, out, err) = lfcat(&["--datalog", WINDOW, &fx.url()]);
    assert_eq!(code, 0, "{out}\n{err}");
    let lines: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!(lines[0]["event"], "DATALOG");
    assert_eq!(lines[0]["topic"], "nvoHumidity");
    assert_eq!(lines[1]["data"]["utc"], "2026-01-01T00:30:00.000");

    let early = Fixture::start(&["--datalog-mode", "early-close"]);
    let (code, out, err) = lfcat(&["--datalog", WINDOW, &early.url()]);
    assert_eq!(code, 1, "an early close fails: {out}\n{err}");
    assert!(err.contains("LF_RESULT_PROTOCOL"), "{err}");
}

#[test]
#[ignore = "needs build/asan/lfcat (make asan)"]
fn lfcat_prints_datapoint_updates() {
    let fx = Fixture::start(&[]);
    let url = fx.url();
    let run = std::thread::spawn(move || lfcat(&["--subscribe", TEMP, "--count", "1", &url]));
    // Wait (bounded) until lfcat's socket is open, then send one update.
    let deadline = std::time::Instant::now() + WAIT;
    while fx.stats()["live"] != 1 {
        assert!(std::time::Instant::now() < deadline, "lfcat never opened the socket");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(fx.update(json!([[TEMP, 9], [OTHER, 1]])), 1);
    let (code, out, err) = run.join().unwrap();
    assert_eq!(code, 0, "{out}\n{err}");
    let line: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!((&line["topic"], &line["event"]), (&json!(TEMP), &json!("UPD:DATAPOINT")));
    assert_eq!(line["data"]["value"], 9);
}
