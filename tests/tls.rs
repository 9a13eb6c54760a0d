//! `wss://` against a real TLS server (Python `websockets` with an `ssl` context) using a
//! throwaway CA and certificates made at test time with the `openssl` command.
//!
//! This binary installs a capturing logger (one per process) to check the insecure-mode
//! warning and that secrets stay out of the log.

mod support;

use livefeed::{ErrorCode, EventKind, SessionConfig, SessionState};
use std::sync::OnceLock;
use support::{Peer, TestLoop, collector, echo_text, logged, pki, tls_server};

/// Serves a certificate for DNS:localhost and IP:127.0.0.1, signed by the test CA.
fn good_server() -> &'static Peer {
    static P: OnceLock<Peer> = OnceLock::new();
    P.get_or_init(|| tls_server(&pki().good_cert, &pki().good_key))
}

/// Serves a certificate for DNS:other.example only, signed by the same test CA.
fn wrong_name_server() -> &'static Peer {
    static P: OnceLock<Peer> = OnceLock::new();
    P.get_or_init(|| tls_server(&pki().wrong_name_cert, &pki().wrong_name_key))
}

fn wss(host: &str, peer: &Peer, path: &str) -> SessionConfig {
    SessionConfig::new(format!("wss://{host}:{}{path}", peer.port))
}

/// Opens `cfg` and expects Connecting, one Error with `code`, Closed; nothing else.
fn expect_failure(lp: &TestLoop, cfg: SessionConfig, code: ErrorCode) -> String {
    let url = cfg.url.clone();
    let (h, mut ev) = collector();
    let s = lp.open(cfg, h).unwrap();
    ev.until_closed();
    drop(s);
    ev.assert_handler_dropped();
    let kinds: Vec<_> = ev.seen.iter().map(|e| (e.kind, e.state, e.error)).collect();
    assert_eq!(ev.seen.len(), 3, "{url}: Connecting, Error, Closed; got {kinds:?}");
    let evs = &ev.seen;
    assert!(evs[0].is_state(SessionState::Connecting), "{url}: {kinds:?}");
    assert_eq!(evs[1].kind, EventKind::Error, "{url}: {kinds:?}");
    assert_eq!(evs[1].error, Some(code), "{url}: {}", evs[1].message);
    assert!(evs[2].is_state(SessionState::Closed), "{url}: {kinds:?}");
    evs[1].message.clone()
}

/// With OpenSSL (native-tls on Linux) the message carries the verification failure, which
/// shows the certificate was refused for the reason the test set up, not another one.
fn assert_reason(message: &str, reason: &str) {
    if cfg!(target_os = "linux") {
        assert!(message.contains(reason), "expected {reason:?} in {message:?}");
    }
}

#[test]
fn right_ca_connects_by_name_and_by_ip() {
    let lp = TestLoop::start();
    for host in ["localhost", "127.0.0.1"] {
        let mut cfg = wss(host, good_server(), "/echo");
        cfg.tls.extra_ca_pem.push(pki().ca_pem.clone());
        let (h, mut ev) = collector();
        let s = lp.open(cfg, h).unwrap();
        ev.expect_open();
        echo_text(&s, &mut ev, &format!("over TLS to {host}"));
        let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        s.send_binary(&big).unwrap();
        let e = ev.next();
        assert_eq!((e.kind, e.payload.len()), (EventKind::Binary, big.len()));
        assert!(e.payload == big, "binary echo over TLS is exact");
        support::close_cleanly(&s, &mut ev);
        assert!(ev.seen.iter().all(|e| e.kind != EventKind::Error), "{:?}", ev.seen);
    }
}

#[test]
fn unknown_ca_is_a_certificate_error() {
    let lp = TestLoop::start();
    // Trusting only an unrelated CA (plus the system store), and only the system store.
    let mut cfg = wss("localhost", good_server(), "/echo");
    cfg.tls.extra_ca_pem.push(pki().other_ca_pem.clone());
    let msg = expect_failure(&lp, cfg, ErrorCode::TlsCertificate);
    println!("unrelated CA: {msg}");
    assert_reason(&msg, "unable to get local issuer certificate");
    let msg =
        expect_failure(&lp, wss("localhost", good_server(), "/echo"), ErrorCode::TlsCertificate);
    println!("system store only: {msg}");
    assert_reason(&msg, "unable to get local issuer certificate");
}

#[test]
fn wrong_host_name_is_a_certificate_error() {
    let lp = TestLoop::start();
    // A certificate from the trusted CA, but for other.example: neither the name nor the
    // address we connect with is in it.
    for host in ["localhost", "127.0.0.1"] {
        let mut cfg = wss(host, wrong_name_server(), "/echo");
        cfg.tls.extra_ca_pem.push(pki().ca_pem.clone());
        let msg = expect_failure(&lp, cfg, ErrorCode::TlsCertificate);
        println!("{host}: {msg}");
        assert_reason(
            &msg,
            if host == "localhost" { "hostname mismatch" } else { "IP address mismatch" },
        );
    }
}

#[test]
fn insecure_mode_connects_and_logs_a_warning() {
    support::capture_logs();
    let lp = TestLoop::start();
    // Untrusted CA and wrong name at once: only insecure mode can connect.
    let mut cfg = wss("localhost", wrong_name_server(), "/echo");
    cfg.tls.insecure = true;
    let (h, mut ev) = collector();
    let s = lp.open(cfg, h).unwrap();
    ev.expect_open();
    echo_text(&s, &mut ev, "insecure but connected");
    let me = format!("session {}:", s.id());
    let warnings = logged(|r| r.level == log::Level::Warn && r.message.contains("DISABLED"));
    assert!(
        warnings.iter().any(|r| r.message.contains(&me)),
        "no DISABLED warning for {me}: {warnings:?}"
    );
    support::close_cleanly(&s, &mut ev);

    // Control: a verified session logs no such warning.
    let mut cfg = wss("localhost", good_server(), "/echo");
    cfg.tls.extra_ca_pem.push(pki().ca_pem.clone());
    let (h, mut ev) = collector();
    let secure = lp.open(cfg, h).unwrap();
    ev.expect_open();
    let me = format!("session {}:", secure.id());
    assert!(logged(|r| r.message.contains(&me) && r.message.contains("DISABLED")).is_empty());
    support::close_cleanly(&secure, &mut ev);
}

#[test]
fn garbage_ca_pem_is_refused_at_open() {
    let lp = TestLoop::start();
    let garbage: [&[u8]; 3] = [
        b"this is not PEM at all",
        b"-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n",
        b"-----BEGIN CERTIFICATE-----\n%%% not base64 %%%\n-----END CERTIFICATE-----\n",
    ];
    for pem in garbage {
        let mut cfg = wss("localhost", good_server(), "/echo");
        cfg.tls.extra_ca_pem.push(pem.to_vec());
        let called = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let c = called.clone();
        let err = match lp.open(cfg, move |_| c.store(true, std::sync::atomic::Ordering::SeqCst)) {
            Ok(_) => panic!("open accepted CA data {:?}", String::from_utf8_lossy(pem)),
            Err(e) => e,
        };
        assert_eq!(err.code, ErrorCode::TlsConfig, "{err}");
        assert!(!called.load(std::sync::atomic::Ordering::SeqCst), "no event for a refused open");
    }
    // The same loop still connects with good CA data.
    let mut cfg = wss("localhost", good_server(), "/echo");
    cfg.tls.extra_ca_pem.push(pki().ca_pem.clone());
    let (h, mut ev) = collector();
    let s = lp.open(cfg, h).unwrap();
    ev.expect_open();
    support::close_cleanly(&s, &mut ev);
}

#[test]
fn secrets_stay_out_of_the_log() {
    support::capture_logs();
    let lp = TestLoop::start();
    let mut cfg = wss("localhost", good_server(), "/echo?token=SECRET-QUERY-TOKEN");
    cfg.tls.extra_ca_pem.push(pki().ca_pem.clone());
    cfg.add_header("Authorization", "Bearer SECRET-BEARER").unwrap();
    cfg.cookies = vec![("sid".into(), "SECRET-COOKIE".into())];
    let (h, mut ev) = collector();
    let s = lp.open(cfg, h).unwrap();
    ev.expect_open();
    echo_text(&s, &mut ev, "hello");
    support::close_cleanly(&s, &mut ev);
    let me = format!("session {}", s.id());
    assert!(
        !logged(|r| r.message.contains(&me)).is_empty(),
        "the session logged something (logger works)"
    );
    let leaks = logged(|r| r.message.contains("SECRET-"));
    assert!(leaks.is_empty(), "secrets in the log: {leaks:?}");
}

#[test]
fn client_certificate_is_presented_when_configured() {
    let lp = TestLoop::start();
    let server = support::mtls_server();
    let mut cfg = wss("localhost", &server, "/echo");
    cfg.tls.extra_ca_pem.push(pki().ca_pem.clone());
    cfg.tls.client_identity = Some((pki().client_cert.clone(), pki().client_key.clone()));
    let (h, mut ev) = collector();
    let s = lp.open(cfg.clone(), h).unwrap();
    ev.expect_open();
    echo_text(&s, &mut ev, "mutual TLS");
    support::close_cleanly(&s, &mut ev);

    // Without the certificate the server refuses: the session never opens and says why.
    cfg.tls.client_identity = None;
    let (h, mut ev) = collector();
    let _s = lp.open(cfg, h).unwrap();
    let evs = ev.until_closed();
    assert!(evs.iter().all(|e| !e.is_state(livefeed::SessionState::Open)), "{evs:?}");
    let err = evs.iter().find(|e| e.kind == EventKind::Error).expect("an error event");
    assert!(
        matches!(err.error, Some(ErrorCode::Tls | ErrorCode::TlsCertificate | ErrorCode::Io)),
        "{err:?}"
    );
}

#[test]
fn a_pinned_certificate_is_accepted_whoever_signed_it_and_nothing_else_is() {
    let lp = TestLoop::start();
    let pin = |pem: &str| livefeed::net::tls::pin_from_pem(pem.as_bytes()).unwrap();
    // No CA given and the name does not match: only the pin makes this work.
    let mut cfg = wss("127.0.0.1", wrong_name_server(), "/echo");
    cfg.tls.pinned_der.push(pin(&pki().wrong_name_cert));
    let (h, mut ev) = collector();
    let s = lp.open(cfg, h).unwrap();
    ev.expect_open();
    echo_text(&s, &mut ev, "pinned");
    support::close_cleanly(&s, &mut ev);

    // Another certificate pinned: refused, even though the CA is trusted and the name fits.
    let mut cfg = wss("localhost", good_server(), "/echo");
    cfg.tls.extra_ca_pem.push(pki().ca_pem.clone());
    cfg.tls.pinned_der.push(pin(&pki().wrong_name_cert));
    let message = expect_failure(&lp, cfg, ErrorCode::TlsCertificate);
    assert!(message.contains("not the pinned one"), "{message}");

    let garbage = livefeed::net::tls::pin_from_pem(b"not a certificate").unwrap_err();
    assert_eq!(garbage.code, ErrorCode::TlsConfig);
}
