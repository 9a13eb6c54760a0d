//! Bad peers and bad addresses: each gets an Error event with a specific code, then
//! State(Closed), and nothing else; meanwhile a healthy session on the same loop keeps
//! echoing (before, during and after the bad one).
//!
//! The bad peers are tests/peers/raw_fixture.py, written from RFC 9112 and RFC 6455.

mod support;

use livefeed::{ErrorCode, EventKind, SessionConfig, SessionState};
use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
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
fn refused_upgrade_403_is_auth_with_the_status_and_body() {
    let e = fails_cleanly(fixture_cfg("/forbidden"), ErrorCode::Auth, &[]);
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
fn masked_server_frame_is_ws_protocol() {
    fails_cleanly(fixture_cfg("/masked-frame"), ErrorCode::WsProtocol, OPENED);
}

#[test]
fn reserved_opcode_is_ws_protocol() {
    fails_cleanly(fixture_cfg("/reserved-opcode"), ErrorCode::WsProtocol, OPENED);
}

#[test]
fn eof_without_close_frame_is_ws_abnormal_close() {
    fails_cleanly(
        fixture_cfg("/eof-after-open"),
        ErrorCode::WsAbnormalClose,
        &[(EventKind::State, "open"), (EventKind::Message, "bye")],
    );
}

#[test]
fn forbidden_close_code_on_the_wire_is_ws_protocol() {
    // RFC 6455 §7.4.1: 1005 must not be sent in a Close frame; receiving it fails the
    // connection. The Close event must not claim the peer sent a code it never sent.
    fails_cleanly(fixture_cfg("/close-bad-code"), ErrorCode::WsProtocol, OPENED);
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
// sends it even for the reserved `.invalid` TLD), which is outside traffic. So the DNS
// checks run this test binary again inside new mount and network namespaces
// (`unshare --mount --net`, which needs root or user namespaces):
// - the network namespace has only a loopback interface, so nothing can leave it;
// - /etc/resolv.conf is bind-mounted (in that mount namespace only) with one pointing at
//   127.0.0.1, where the test runs a tiny nameserver (RFC 1035 header facts): it answers
//   NXDOMAIN for names under `nx.`, and never answers anything else.
// The inner run verifies both before it resolves anything.

const NETNS_ENV: &str = "LIVEFEED_TEST_IN_EMPTY_NETNS";
const NETNS_MARK: &str = "dns-checked-in-empty-netns";
const RESOLV_CONF: &str = "nameserver 127.0.0.1\noptions timeout:2 attempts:1\n";

#[test]
fn dns_failures_are_dns_errors_and_never_block_the_loop() {
    if std::env::var_os(NETNS_ENV).is_some() {
        dns_checks_inside_the_namespace();
        return;
    }
    let resolv = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("livefeed-resolv-{}.conf", std::process::id()));
    std::fs::write(&resolv, RESOLV_CONF).unwrap();
    let exe = std::env::current_exe().unwrap();
    let script =
        "ip link set lo up && mount --bind \"$LF_RESOLV\" /etc/resolv.conf && exec \"$0\" \"$@\"";
    let mut child = Command::new("unshare")
        .args(["--mount", "--net", "--", "sh", "-c", script])
        .arg(&exe)
        .args(["--exact", "dns_failures_are_dns_errors_and_never_block_the_loop", "--nocapture"])
        .env(NETNS_ENV, "1")
        .env("LF_RESOLV", &resolv)
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
                panic!("the run inside the namespaces did not finish within 60 s");
            }
        }
    }
    let status = child.wait().unwrap();
    let _ = std::fs::remove_file(&resolv);
    let [stdout, stderr] = texts;
    assert!(
        status.success() && stdout.contains(NETNS_MARK) && stdout.contains("1 passed"),
        "inside `unshare --mount --net` ({status}); this test needs root or user namespaces.\n\
         stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    println!("inside the namespaces:\n{stdout}");
}

/// Queries the fake nameserver answered with NXDOMAIN, and queries it ignored.
static NXDOMAIN_SENT: AtomicUsize = AtomicUsize::new(0);
static IGNORED: AtomicUsize = AtomicUsize::new(0);

/// Answers NXDOMAIN to queries for names whose first label is `nx`; ignores the rest.
fn fake_nameserver() {
    let sock =
        std::net::UdpSocket::bind("127.0.0.1:53").expect("bind 127.0.0.1:53 in the namespace");
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        while let Ok((n, from)) = sock.recv_from(&mut buf) {
            // Header: 12 bytes; the question starts with the first label's length byte.
            if n < 15 || buf[12] != 2 || &buf[13..15] != b"nx" {
                IGNORED.fetch_add(1, Ordering::SeqCst);
                continue;
            }
            let mut answer = buf[..n].to_vec();
            answer[2] = 0x80 | (answer[2] & 0x79); // QR=1, keep opcode and RD, AA=0, TC=0
            answer[3] = 0x80 | 3; // RA=1, RCODE=3 (NXDOMAIN)
            answer[6..12].fill(0); // no answer, authority or additional records
            if sock.send_to(&answer, from).is_ok() {
                NXDOMAIN_SENT.fetch_add(1, Ordering::SeqCst);
            }
        }
    });
}

fn dns_checks_inside_the_namespace() {
    // /proc/self/net/dev lists the interfaces of this process's network namespace
    // (unlike /sys/class/net, which some sandboxes do not virtualise).
    let dev = std::fs::read_to_string("/proc/self/net/dev").expect("/proc/self/net/dev");
    let ifaces: Vec<&str> =
        dev.lines().skip(2).filter_map(|l| l.split(':').next()).map(str::trim).collect();
    assert_eq!(ifaces, ["lo"], "refusing to resolve anything: this network namespace is not empty");
    let resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap();
    assert_eq!(resolv, RESOLV_CONF, "refusing to resolve anything: /etc/resolv.conf is not ours");
    fake_nameserver();

    let cases = [
        // The nameserver says the name does not exist.
        ("nx.livefeed.invalid", ErrorCode::Dns),
        // glibc refuses a label that starts with '-' before sending any query.
        ("-no-such-host.invalid", ErrorCode::Dns),
        // The nameserver never answers: our deadline (300 ms) ends it, while glibc still waits.
        ("silent.livefeed.invalid", ErrorCode::DnsTimeout),
    ];
    for (name, code) in cases {
        let mut cfg = SessionConfig::new(format!("ws://{name}:80/"));
        cfg.timeouts.dns = Duration::from_millis(300);
        let (answered, ignored) =
            (NXDOMAIN_SENT.load(Ordering::SeqCst), IGNORED.load(Ordering::SeqCst));
        let started = Instant::now();
        let e = fails_cleanly(cfg, code, &[]);
        println!("{name}: {:?} after {:?}: {}", code, started.elapsed(), e.message);
        let (answered, ignored) = (
            NXDOMAIN_SENT.load(Ordering::SeqCst) - answered,
            IGNORED.load(Ordering::SeqCst) - ignored,
        );
        match name.split('.').next() {
            Some("nx") => assert!(answered > 0, "{name}: the NXDOMAIN came from our nameserver"),
            Some("silent") => assert!(ignored > 0, "{name}: the query reached our nameserver"),
            _ => assert_eq!((answered, ignored), (0, 0), "{name}: refused without any query"),
        }
    }
    println!("{NETNS_MARK}");
}
