//! Bad peers and bad addresses: each gets an Error event with a specific code, then
//! State(Closed), and nothing else; meanwhile a healthy session on the same loop keeps
//! echoing (before, during and after the bad one).
//!
//! The bad peers are tests/peers/raw_fixture.py, written from RFC 9112 and RFC 6455.

mod support;

use livefeed::{ErrorCode, EventKind, SessionConfig, SessionState};
use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use support::{Ev, TestLoop, collector, echo_text, raw_fixture, ws_server};

/// Opens a healthy echo session and a bad one on the same loop; echoes on the healthy one
/// until the bad one has closed, then once more. Returns the bad session's events after
/// State(Connecting), checked to be: `prelude` events, one Error, State(Closed).
fn fails_cleanly(cfg: SessionConfig, expected: ErrorCode, prelude: &[(EventKind, &str)]) -> Ev {
    let lp = TestLoop::start();
    let (h, mut good) = collector();
    let healthy = lp.open(SessionConfig::new(ws_server().ws_url("/echo")), h).unwrap();
    good.expect_open();
    echo_text(&healthy, &mut good, "before");

    let url = cfg.url.clone();
    let (h, mut bad) = collector();
    let session = lp.open(cfg, h).unwrap();
    let end = Instant::now() + Duration::from_secs(15);
    let mut round = 0;
    loop {
        echo_text(&healthy, &mut good, &format!("during {round}"));
        round += 1;
        while bad.try_next().is_some() {}
        if bad.seen.last().is_some_and(|e| e.is_state(SessionState::Closed)) {
            break;
        }
        assert!(Instant::now() < end, "{url}: bad session not closed within 15 s: {:?}", bad.seen);
    }
    drop(session);
    let late = bad.assert_handler_dropped();
    assert!(late.is_empty(), "{url}: events after Closed: {late:?}");
    echo_text(&healthy, &mut good, "after");
    support::close_cleanly(&healthy, &mut good);

    let evs = &bad.seen;
    assert!(evs[0].is_state(SessionState::Connecting), "{url}: {evs:?}");
    let n = prelude.len();
    assert_eq!(evs.len(), n + 3, "{url}: Connecting, {prelude:?}, Error, Closed; got {evs:?}");
    for (e, (kind, text)) in evs[1..=n].iter().zip(prelude) {
        assert_eq!((e.kind, e.text().as_str()), (*kind, *text), "{url}: {evs:?}");
    }
    let err = &evs[n + 1];
    assert_eq!(err.kind, EventKind::Error, "{url}: {evs:?}");
    assert_eq!(err.error, Some(expected), "{url}: {}", err.message);
    assert!(!err.message.is_empty(), "{url}: the error says what happened");
    assert!(evs[n + 2].is_state(SessionState::Closed), "{url}: {evs:?}");
    err.clone()
}

fn fixture_cfg(path: &str) -> SessionConfig {
    SessionConfig::new(raw_fixture().0.ws_url(path))
}

const OPENED: &[(EventKind, &str)] = &[(EventKind::State, "open")];

#[test]
fn malformed_status_line_is_http_malformed() {
    let e = fails_cleanly(fixture_cfg("/malformed-status"), ErrorCode::HttpMalformed, &[]);
    println!("{}", e.message);
}

#[test]
fn non_http_answer_is_http_malformed() {
    fails_cleanly(fixture_cfg("/not-http"), ErrorCode::HttpMalformed, &[]);
}

#[test]
fn malformed_header_line_is_http_malformed() {
    fails_cleanly(fixture_cfg("/bad-header-line"), ErrorCode::HttpMalformed, &[]);
}

#[test]
fn refused_upgrade_is_http_status_with_the_status_and_body() {
    let e = fails_cleanly(fixture_cfg("/forbidden"), ErrorCode::HttpStatus, &[]);
    assert!(e.message.contains("403"), "{}", e.message);
    assert!(e.message.contains("no entry for this feed"), "body snippet: {}", e.message);
}

#[test]
fn wrong_accept_key_is_ws_handshake() {
    let e = fails_cleanly(fixture_cfg("/bad-accept"), ErrorCode::WsHandshake, &[]);
    assert!(e.message.contains("Accept"), "{}", e.message);
}

#[test]
fn missing_upgrade_header_is_ws_handshake() {
    fails_cleanly(fixture_cfg("/no-upgrade"), ErrorCode::WsHandshake, &[]);
}

#[test]
fn invalid_utf8_text_is_ws_invalid_utf8() {
    // The valid frame before it is delivered; the invalid one ends the session.
    fails_cleanly(
        fixture_cfg("/bad-utf8"),
        ErrorCode::WsInvalidUtf8,
        &[(EventKind::State, "open"), (EventKind::Message, "ok")],
    );
}

#[test]
fn oversize_frame_is_ws_too_large() {
    let mut cfg = fixture_cfg("/oversize-frame");
    cfg.limits.max_frame = 64 << 10;
    cfg.limits.max_message = 64 << 10;
    fails_cleanly(cfg, ErrorCode::WsTooLarge, OPENED);
}

#[test]
fn oversize_fragmented_message_is_ws_too_large() {
    // Three 40 KiB fragments: every frame fits max_frame, the message does not fit max_message.
    let mut cfg = fixture_cfg("/oversize-message");
    cfg.limits.max_frame = 64 << 10;
    cfg.limits.max_message = 64 << 10;
    fails_cleanly(cfg, ErrorCode::WsTooLarge, OPENED);
}

#[test]
fn hangup_before_any_answer_is_io() {
    // Nothing at all came back: there is no HTTP to call malformed; the connection ended.
    let e = fails_cleanly(fixture_cfg("/hangup"), ErrorCode::Io, &[]);
    assert!(e.message.contains("closed before any HTTP response"), "{}", e.message);
}

#[test]
fn hangup_inside_the_response_head_is_http_malformed() {
    let e = fails_cleanly(fixture_cfg("/hangup-partial"), ErrorCode::HttpMalformed, &[]);
    assert!(e.message.contains("closed inside the response head"), "{}", e.message);
}

#[test]
fn unanswered_upgrade_times_out() {
    let mut cfg = fixture_cfg("/no-answer");
    cfg.timeouts.handshake = Duration::from_millis(300);
    let started = Instant::now();
    let e = fails_cleanly(cfg, ErrorCode::Timeout, &[]);
    assert!(started.elapsed() >= Duration::from_millis(300), "not before the deadline");
    assert!(e.message.contains("took longer than 300ms"), "{}", e.message);
}

#[test]
fn refused_port_is_connect() {
    let closed = raw_fixture().1;
    fails_cleanly(SessionConfig::new(format!("ws://127.0.0.1:{closed}/")), ErrorCode::Connect, &[]);
}

// ---------------------------------------------------------------------------------------
// DNS, without DNS traffic leaving the machine.
//
// A lookup of a name that does not exist goes to the nameserver in /etc/resolv.conf (glibc
// sends it even for the reserved `.invalid` TLD). So the check runs this test binary again
// inside a new, empty network namespace (`unshare --net`, which needs root or user
// namespaces), where only a loopback interface exists: a query to the configured
// nameserver fails with "network unreachable" on the spot and nothing can leave. The
// inner run verifies the isolation before it resolves anything.

const NETNS_ENV: &str = "LIVEFEED_TEST_IN_EMPTY_NETNS";
const NETNS_MARK: &str = "dns-checked-in-empty-netns";

#[test]
fn unresolvable_names_are_dns_errors() {
    if std::env::var_os(NETNS_ENV).is_some() {
        dns_checks_inside_the_namespace();
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new("unshare")
        .args(["--net", "--", "sh", "-c", "ip link set lo up && exec \"$0\" \"$@\""])
        .arg(&exe)
        .args(["--exact", "unresolvable_names_are_dns_errors", "--nocapture", "--test-threads=1"])
        .env(NETNS_ENV, "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot run `unshare` (util-linux)");
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let (tx, rx) = mpsc::channel();
    let tx2 = tx.clone();
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        let _ = tx.send((0, s));
    });
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        let _ = tx2.send((1, s));
    });
    let mut texts = [String::new(), String::new()];
    for _ in 0..2 {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok((i, s)) => texts[i] = s,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the run inside the network namespace did not finish within 60 s");
            }
        }
    }
    let status = child.wait().unwrap();
    let [stdout, stderr] = texts;
    assert!(
        status.success() && stdout.contains(NETNS_MARK) && stdout.contains("1 passed"),
        "inside `unshare --net` ({status}); this test needs root or user namespaces.\n\
         stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    println!("inside the namespace:\n{stdout}");
}

fn dns_checks_inside_the_namespace() {
    // /proc/net/dev lists the interfaces of this process's network namespace
    // (unlike /sys/class/net, which some sandboxes do not virtualise).
    let dev = std::fs::read_to_string("/proc/self/net/dev").expect("/proc/self/net/dev");
    let ifaces: Vec<&str> =
        dev.lines().skip(2).filter_map(|l| l.split(':').next()).map(str::trim).collect();
    assert_eq!(ifaces, ["lo"], "refusing to resolve anything: this network namespace is not empty");

    // `.invalid` is reserved (RFC 6761 §6.4) and never resolves. The second name has a label
    // starting with '-', which glibc refuses before querying; both must be Dns errors.
    for name in ["nonexistent.invalid", "-no-such-host.invalid"] {
        let mut cfg = SessionConfig::new(format!("ws://{name}:80/"));
        cfg.timeouts.dns = Duration::from_secs(5);
        let e = fails_cleanly(cfg, ErrorCode::Dns, &[]);
        println!("{name}: {}", e.message);
    }
    println!("{NETNS_MARK}");
}
