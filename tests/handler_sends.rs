//! A message sent from a session's own handler goes out before the next frame is read:
//! an answer is not lost when the frame after the one it answers fails the connection.

use livefeed::{EventKind, Loop, SessionConfig};
use std::io::Write;
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;
use tungstenite::Message;

#[test]
fn answer_from_the_handler_precedes_the_failure_close() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (seen_tx, seen_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let server = std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut ws = tungstenite::accept(conn).unwrap();
        go_rx.recv_timeout(Duration::from_secs(10)).expect("the client handle is ready");
        // A valid text frame "ping", then a text frame with RSV1 set (no extension agreed:
        // the client must fail the connection), written in one go.
        ws.get_mut().write_all(b"\x81\x04ping\xc1\x01x").unwrap();
        let mut seen = Vec::new();
        while let Ok(m) = ws.read() {
            seen.push(m);
        }
        seen_tx.send(seen).unwrap();
    });
    let lp = Loop::new().unwrap();
    lp.start_thread().unwrap();
    let (done_tx, done_rx) = mpsc::channel();
    let session = std::sync::Arc::new(std::sync::Mutex::new(None::<livefeed::Session>));
    let slot = session.clone();
    let s = lp
        .open(SessionConfig::new(format!("ws://127.0.0.1:{port}/")), move |ev| {
            if ev.kind() == EventKind::Message {
                if let Some(s) = slot.lock().unwrap().as_ref() {
                    s.send_text(&format!("echo:{}", ev.text().unwrap())).unwrap();
                }
            }
            if ev.kind() == EventKind::Error {
                let _ = done_tx.send(ev.error().unwrap().code);
            }
        })
        .unwrap();
    *session.lock().unwrap() = Some(s);
    go_tx.send(()).unwrap();
    let code =
        done_rx.recv_timeout(Duration::from_secs(10)).expect("the bad frame fails the session");
    assert_eq!(code, livefeed::ErrorCode::WsProtocol);
    let seen = seen_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(
        seen.first(),
        Some(&Message::text("echo:ping")),
        "the echo went out first: {seen:?}"
    );
    assert!(
        matches!(seen.get(1), Some(Message::Close(Some(f))) if u16::from(f.code) == 1002),
        "then the protocol-error close: {seen:?}"
    );
    server.join().unwrap();
    session.lock().unwrap().take();
    lp.shutdown();
}
