//! The send buffer is bounded: a peer that stops reading makes `send` report
//! back-pressure, and a `Writable` event follows once the peer drains; nothing is lost.

use livefeed::{ErrorCode, EventKind, Loop, SessionConfig, SessionState};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

const CHUNK: usize = 16 << 10;

#[test]
fn backpressure_then_writable_and_nothing_lost() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (drain_tx, drain_rx) = mpsc::channel::<()>();
    let (count_tx, count_rx) = mpsc::channel::<usize>();
    // A real RFC 6455 server (tungstenite's server role) that reads only when told to.
    let server = std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        let mut ws = tungstenite::accept(conn).unwrap();
        drain_rx.recv_timeout(Duration::from_secs(30)).expect("told to drain");
        let mut received = 0;
        while let Ok(msg) = ws.read() {
            match msg {
                tungstenite::Message::Binary(b) if b.is_empty() => break, // end marker
                tungstenite::Message::Binary(_) => received += 1,
                _ => {}
            }
        }
        count_tx.send(received).unwrap();
    });

    let mut config = SessionConfig::new(format!("ws://127.0.0.1:{port}/"));
    config.limits.max_send_buffer = 256 << 10;
    let (tx, rx) = mpsc::channel();
    let lp = Loop::new().unwrap();
    lp.start_thread().unwrap();
    let session = lp
        .open(config, move |ev| {
            let _ = tx.send((ev.kind(), ev.state()));
        })
        .unwrap();
    let wait_for = |want: EventKind, state: Option<SessionState>| loop {
        let (kind, s) = rx.recv_timeout(Duration::from_secs(10)).expect("event within 10 s");
        if kind == want && state.is_none_or(|w| w == s) {
            return;
        }
    };
    wait_for(EventKind::State, Some(SessionState::Open));

    let payload = vec![7u8; CHUNK];
    let mut sent = 0;
    let refused = loop {
        assert!(sent < 20_000, "no back-pressure after {sent} messages of {CHUNK} bytes");
        match session.send_binary(&payload) {
            Ok(()) => sent += 1,
            Err(e) => break e,
        }
    };
    assert_eq!(refused.code, ErrorCode::Backpressure);
    assert!(
        session.queued_bytes() <= (256 << 10) + CHUNK,
        "queued {} bytes",
        session.queued_bytes()
    );

    drain_tx.send(()).unwrap();
    wait_for(EventKind::Writable, None);
    session.send_binary(&payload).expect("sending resumes after the writable event");
    sent += 1;
    session.send_binary(&[]).unwrap();
    assert_eq!(
        count_rx.recv_timeout(Duration::from_secs(30)).unwrap(),
        sent,
        "every accepted message arrived"
    );
    server.join().unwrap();
    drop(session);
    lp.shutdown();
}
