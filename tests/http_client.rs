//! The HTTP/1.1 client on the event loop, against a fixture server written from
//! RFC 9112 framing rules: chunked and close-delimited bodies, redirects carrying
//! cookies, redirect limits, size limits, deadlines and garbage answers.

use livefeed::http::Request;
use livefeed::session::driver::FetchDriver;
use livefeed::url::Url;
use livefeed::{ErrorCode, EventKind, Loop, SessionConfig, SessionState};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::Duration;

/// Serves one canned answer per request path, each connection on its own thread.
fn fixture() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || serve(conn));
        }
    });
    port
}

fn serve(mut conn: TcpStream) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match conn.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head).to_string();
    let path = head.split(' ').nth(1).unwrap_or("/").to_string();
    let cookie = head
        .lines()
        .find_map(|l| l.strip_prefix("Cookie: ").map(str::to_string))
        .unwrap_or_default();
    let answer: Vec<u8> = match path.as_str() {
        "/chunked" => b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWiki\r\n5\r\npedia\r\n0\r\n\r\n".to_vec(),
        "/close" => b"HTTP/1.0 200 OK\r\n\r\nuntil the end".to_vec(),
        "/login" => b"HTTP/1.1 302 Found\r\nLocation: /next\r\nSet-Cookie: sid=abc; Path=/\r\nContent-Length: 0\r\n\r\n".to_vec(),
        "/next" => format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{cookie}", cookie.len()).into_bytes(),
        "/loop" => b"HTTP/1.1 307 Again\r\nLocation: /loop\r\nContent-Length: 0\r\n\r\n".to_vec(),
        "/big" => b"HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\n\r\n".to_vec(),
        "/garbage" => b"SSH-2.0-OpenSSH_9.2\r\n\r\n".to_vec(),
        "/silent" => {
            let _ = conn.read(&mut [0u8; 64]); // holds the connection open, answers nothing
            return;
        }
        _ => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec(),
    };
    let _ = conn.write_all(&answer);
}

/// What a fetch produced: `(status, body)` or the error code, within a bounded wait.
fn fetch(
    lp: &Loop,
    port: u16,
    path: &str,
    tune: impl FnOnce(&mut SessionConfig),
) -> Result<(String, String), ErrorCode> {
    let url = format!("http://127.0.0.1:{port}{path}");
    let mut config = SessionConfig::new(url.clone());
    tune(&mut config);
    let (tx, rx) = mpsc::channel();
    let driver = Box::new(FetchDriver::new(Request::get(Url::parse(&url).unwrap())));
    let _session = lp
        .open_with(config, driver, move |ev| {
            let item = match ev.kind() {
                EventKind::Message => {
                    Some(Ok((ev.topic().to_string(), ev.text().unwrap_or("").to_string())))
                }
                EventKind::Error => Some(Err(ev.error().unwrap().code)),
                EventKind::State if ev.state() == SessionState::Closed => {
                    Some(Err(ErrorCode::Closed))
                }
                _ => None,
            };
            if let Some(item) = item {
                let _ = tx.send(item);
            }
        })
        .unwrap();
    rx.recv_timeout(Duration::from_secs(10)).expect("the fetch ended within 10 s")
}

#[test]
fn http_bodies_redirects_cookies_and_limits() {
    let port = fixture();
    let lp = Loop::new().unwrap();
    lp.start_thread().unwrap();
    assert_eq!(fetch(&lp, port, "/chunked", |_| {}), Ok(("200".into(), "Wikipedia".into())));
    assert_eq!(fetch(&lp, port, "/close", |_| {}), Ok(("200".into(), "until the end".into())));
    // The cookie set by the redirect reaches the next request.
    assert_eq!(fetch(&lp, port, "/login", |_| {}), Ok(("200".into(), "sid=abc".into())));
    assert_eq!(fetch(&lp, port, "/nothing", |_| {}), Ok(("404".into(), "".into())));
    assert_eq!(fetch(&lp, port, "/loop", |_| {}), Err(ErrorCode::HttpRedirects));
    assert_eq!(fetch(&lp, port, "/big", |_| {}), Err(ErrorCode::HttpTooLarge));
    assert_eq!(fetch(&lp, port, "/garbage", |_| {}), Err(ErrorCode::HttpMalformed));
    let quick = |c: &mut SessionConfig| c.timeouts.handshake = Duration::from_millis(300);
    assert_eq!(fetch(&lp, port, "/silent", quick), Err(ErrorCode::Timeout));
    lp.shutdown();
}

#[test]
fn connection_refused_is_a_connect_error() {
    let closed_port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let lp = Loop::new().unwrap();
    lp.start_thread().unwrap();
    assert_eq!(fetch(&lp, closed_port, "/", |_| {}), Err(ErrorCode::Connect));
    lp.shutdown();
}
