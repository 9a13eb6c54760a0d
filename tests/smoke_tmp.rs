//! Throwaway smoke test (to be replaced by the real-peer suites).
use livefeed::*;
use std::sync::mpsc;
use std::time::Duration;
#[test]
fn smoke() {
    let mut child = std::process::Command::new("python3")
        .arg("/tmp/echo.py")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    let port: u16 = line.trim().parse().unwrap();
    let lp = Loop::new().unwrap();
    lp.start_thread().unwrap();
    let (tx, rx) = mpsc::channel();
    let s = lp
        .open(SessionConfig::new(format!("ws://127.0.0.1:{port}/")), move |ev: &Event| {
            tx.send((ev.kind(), ev.state(), String::from_utf8_lossy(ev.payload()).to_string()))
                .ok();
        })
        .unwrap();
    s.send_text("hello").unwrap();
    for _ in 0..4 {
        let e = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        println!("{e:?}");
        if e.0 == EventKind::Message {
            assert_eq!(e.2, "hello");
            break;
        }
    }
    s.close(1000, "bye").unwrap();
    loop {
        let e = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        println!("{e:?}");
        if e.1 == SessionState::Closed && e.0 == EventKind::State {
            break;
        }
    }
    drop(s);
    lp.shutdown();
    child.kill().ok();
}
