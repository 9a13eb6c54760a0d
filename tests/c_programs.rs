//! The C programs, built against the public header only, run against real WebSocket
//! peers (tungstenite's server role): under AddressSanitizer + UBSan (`make asan`) and
//! under valgrind (`make all`). They need those builds, so they are `#[ignore]`d for a
//! plain `cargo test`; `make test` runs them with `--ignored`.

mod support;

use support::programs::{program, run, valgrind};

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;
use tungstenite::Message;
use tungstenite::protocol::CloseFrame;
use tungstenite::protocol::frame::coding::CloseCode;

/// A WebSocket server that sends `messages` to every client, then closes with 1000.
fn feed(messages: Vec<Message>) -> u16 {
    serve(move |mut ws| {
        for m in &messages {
            ws.send(m.clone()).unwrap();
        }
        let _ = ws.close(Some(CloseFrame { code: CloseCode::Normal, reason: "done".into() }));
        while ws.read().is_ok() {}
    })
}

/// A WebSocket server that echoes every data message until the client closes.
fn echo() -> u16 {
    serve(|mut ws| {
        while let Ok(m) = ws.read() {
            if (m.is_text() || m.is_binary()) && ws.send(m).is_err() {
                break;
            }
        }
    })
}

fn serve(
    handler: impl Fn(tungstenite::WebSocket<TcpStream>) + Send + Sync + Clone + 'static,
) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let handler = handler.clone();
            std::thread::spawn(move || {
                if let Ok(ws) = tungstenite::accept(conn) {
                    handler(ws);
                }
            });
        }
    });
    port
}

fn sample_feed() -> u16 {
    feed(vec![
        Message::text(r#"{ "sensor": "s1", "temperature": 21.5, "ok": [true, null] }"#),
        Message::text("not json \"quoted\"\n"),
        Message::binary(vec![0u8, 1, 2, 255]),
    ])
}

const EXPECTED_LINES: [&str; 3] = [
    r#"{"type":"message","topic":"","data":{"sensor":"s1","temperature":21.5,"ok":[true,null]}}"#,
    r#"{"type":"message","topic":"","data":"not json \"quoted\"\n"}"#,
    r#"{"type":"binary","topic":"","data":"AAEC/w=="}"#,
];

fn assert_ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed: {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn lfcat_prints_feed(mut cmd: Command) {
    let port = sample_feed();
    cmd.args(["--count", "3", "--timeout", "20", &format!("ws://127.0.0.1:{port}/")]);
    let out = run(cmd, Duration::from_secs(60));
    assert_ok(&out, "lfcat");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().collect::<Vec<_>>(), EXPECTED_LINES);
}

#[test]
#[ignore = "needs `make asan`"]
fn lfcat_under_asan_prints_one_json_object_per_event() {
    lfcat_prints_feed(Command::new(program("build/asan", "lfcat")));
}

#[test]
#[ignore = "needs `make all` and valgrind"]
fn lfcat_under_valgrind_prints_one_json_object_per_event() {
    lfcat_prints_feed(valgrind(program("build", "lfcat")));
}

#[test]
#[ignore = "needs `make asan`"]
fn lfcat_sends_and_receives_echo() {
    let port = echo();
    let mut cmd = Command::new(program("build/asan", "lfcat"));
    cmd.args(["--send", "hello", "--send", r#"{"n":1}"#, "--count", "2", "--timeout", "20"])
        .arg(format!("ws://127.0.0.1:{port}/"));
    let out = run(cmd, Duration::from_secs(60));
    assert_ok(&out, "lfcat --send");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "{\"type\":\"message\",\"topic\":\"\",\"data\":\"hello\"}\n{\"type\":\"message\",\"topic\":\"\",\"data\":{\"n\":1}}\n"
    );
}

fn lfcat_status(args: &[&str], limit: Duration) -> (i32, String) {
    let mut cmd = Command::new(program("build/asan", "lfcat"));
    cmd.args(args);
    let out = run(cmd, limit);
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).to_string())
}

#[test]
#[ignore = "needs `make asan`"]
fn lfcat_exit_codes() {
    let limit = Duration::from_secs(60);
    assert_eq!(lfcat_status(&[], limit).0, 2, "no URL is a usage error");
    assert_eq!(lfcat_status(&["--bogus", "ws://127.0.0.1:1/"], limit).0, 2);
    assert_eq!(lfcat_status(&["ftp://127.0.0.1/"], limit).0, 2, "a bad URL is a usage error");

    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (code, stderr) =
        lfcat_status(&["--timeout", "20", &format!("ws://127.0.0.1:{closed}/")], limit);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("LF_RESULT_CONNECT"), "{stderr}");

    let short = feed(vec![Message::text("1")]);
    let (code, stderr) = lfcat_status(
        &["--count", "5", "--timeout", "20", &format!("ws://127.0.0.1:{short}/")],
        limit,
    );
    assert_eq!(code, 1, "closing before --count is a failure: {stderr}");

    let silent = serve(|mut ws| while ws.read().is_ok() {});
    let (code, _) =
        lfcat_status(&["--timeout", "0.5", &format!("ws://127.0.0.1:{silent}/")], limit);
    assert_eq!(code, 3, "timeout");

    let (code, stderr) = lfcat_status(&["-p", "navixy", "http://127.0.0.1:1/v2"], limit);
    assert!(code == 1 || code == 2, "{code} {stderr}");
    assert!(stderr.contains("needs a hash (token)"), "{stderr}");
}

/// A name that cannot resolve, checked inside an empty network namespace so the lookup
/// fails locally instead of sending DNS traffic off the machine.
#[test]
#[ignore = "needs `make asan` and unshare (root)"]
fn lfcat_reports_a_name_that_does_not_resolve() {
    let mut cmd = Command::new("unshare");
    cmd.arg("-n").arg(program("build/asan", "lfcat")).args([
        "--timeout",
        "20",
        "ws://nonexistent.invalid/",
    ]);
    let out = run(cmd, Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("LF_RESULT_DNS"), "{stderr}");
}

fn minimal_like(build: &str, name: &str) {
    let port = feed((0..5).map(|i| Message::text(format!("{{\"i\":{i}}}"))).collect());
    let mut cmd = Command::new(program(build, name));
    cmd.arg(format!("ws://127.0.0.1:{port}/")).arg("5");
    let out = run(cmd, Duration::from_secs(60));
    assert_ok(&out, name);
    let stdout = String::from_utf8(out.stdout).unwrap();
    for i in 0..5 {
        assert!(stdout.contains(&format!("{{\"i\":{i}}}")), "{name} printed: {stdout}");
    }
}

#[test]
#[ignore = "needs `make asan`"]
fn minimal_blocking_mode_under_asan() {
    minimal_like("build/asan", "minimal");
}

#[test]
#[ignore = "needs `make asan`"]
fn embedded_mode_under_asan() {
    minimal_like("build/asan", "embedded");
}

#[test]
#[ignore = "needs `make all` and valgrind"]
fn embedded_mode_under_valgrind() {
    let port = feed((0..5).map(|i| Message::text(format!("{{\"i\":{i}}}"))).collect());
    let mut cmd = valgrind(program("build", "embedded"));
    cmd.arg(format!("ws://127.0.0.1:{port}/")).arg("5");
    assert_ok(&run(cmd, Duration::from_secs(60)), "embedded under valgrind");
}

fn threads(mut cmd: Command) {
    let port = echo();
    cmd.arg(format!("ws://127.0.0.1:{port}/")).args(["4", "500"]);
    let out = run(cmd, Duration::from_secs(120));
    assert_ok(&out, "threads");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("ok 2000"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
#[ignore = "needs `make asan`"]
fn threads_managed_mode_under_asan() {
    threads(Command::new(program("build/asan", "threads")));
}

#[test]
#[ignore = "needs `make all` and valgrind"]
fn threads_managed_mode_under_valgrind() {
    threads(valgrind(program("build", "threads")));
}

#[test]
#[ignore = "needs `make all` and valgrind"]
fn lfcat_error_path_under_valgrind_is_clean() {
    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut cmd = valgrind(program("build", "lfcat"));
    cmd.args(["--timeout", "20", &format!("ws://127.0.0.1:{closed}/")]);
    let out = run(cmd, Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "exit 1 for a refused connection, not valgrind's 99: {stderr}"
    );
    assert!(stderr.contains("LF_RESULT_CONNECT"), "{stderr}");
}

/// A real socket.io 4 server (tests/peers/socketio), kept alive by our end of its stdin.
struct SocketIoServer {
    child: std::process::Child,
    port: u16,
}

impl SocketIoServer {
    fn start(version: &str) -> SocketIoServer {
        Self::script("server.js", &["--version", version])
    }

    fn script(name: &str, args: &[&str]) -> SocketIoServer {
        use std::io::BufRead;
        let script =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/peers/socketio").join(name);
        let mut child = Command::new("node")
            .arg(script)
            .args(args)
            .arg("--quiet")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node runs the socket.io peer");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = std::io::BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(20)).expect("the peer printed its port");
        let port: serde_json::Value = serde_json::from_str(line.trim()).expect("{\"port\":N}");
        SocketIoServer { child, port: port["port"].as_u64().unwrap() as u16 }
    }
}

impl Drop for SocketIoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
#[ignore = "needs `make asan` and the npm socket.io peers"]
fn lfcat_socketio_emits_and_filters_events_under_asan() {
    for version in ["4", "2"] {
        let server = SocketIoServer::start(version);
        let mut cmd = Command::new(program("build/asan", "lfcat"));
        cmd.args(["-p", "socketio", "--subscribe", "tick", "--send", r#"echo {"a":1}"#])
            .args(["--send", r#"stream {"n":3}"#, "--count", "3", "--timeout", "20"])
            .arg(format!("http://127.0.0.1:{}/chat", server.port));
        let out = run(cmd, Duration::from_secs(60));
        assert_ok(&out, "lfcat -p socketio");
        let lines: Vec<String> =
            String::from_utf8(out.stdout).unwrap().lines().map(String::from).collect();
        let want: Vec<String> = (0..3)
            .map(|i| format!(r#"{{"type":"event","topic":"tick","data":{{"i":{i}}}}}"#))
            .collect();
        assert_eq!(lines, want, "socket.io {version}: only the subscribed event, in order");
    }
}

#[test]
#[ignore = "needs `make asan` and the npm socket.io peers"]
fn lfcat_thethings_logs_in_and_prints_resource_values_under_asan() {
    let server = SocketIoServer::script("thethings.js", &["--interval", "20"]);
    let url = format!("http://127.0.0.1:{}/", server.port);
    let resource = "/me/resources/temperature";
    let mut cmd = Command::new(program("build/asan", "lfcat"));
    cmd.args(["-p", "thethings", "--user", "user@example.com", "--password", "secret"]).args([
        "--subscribe",
        resource,
        "--count",
        "2",
        "--timeout",
        "20",
        &url,
    ]);
    let out = run(cmd, Duration::from_secs(60));
    assert_ok(&out, "lfcat -p thethings");
    let stdout = String::from_utf8(out.stdout).unwrap();
    for line in stdout.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(
            (v["type"].as_str(), v["topic"].as_str()),
            (Some("event"), Some(resource)),
            "{line}"
        );
        assert!(v["data"][0]["value"].is_number(), "{line}");
    }
    assert_eq!(stdout.lines().count(), 2);

    let mut cmd = Command::new(program("build/asan", "lfcat"));
    cmd.args([
        "-p",
        "thethings",
        "--token",
        "tok-bad",
        "--subscribe",
        resource,
        "--timeout",
        "20",
        &url,
    ]);
    let out = run(cmd, Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("LF_RESULT_AUTH"), "{stderr}");
}

/// The Atmosphere/Navixy fixture (tests/peers/atmosphere_fixture.py) with one API key,
/// splitting its length-framed frames.
fn atmosphere_fixture() -> support::Peer {
    support::Peer::spawn(
        "atmosphere_fixture.py",
        &["--apikey", NAVIXY_KEY, "--framing", "split"],
        &[],
    )
}

const NAVIXY_KEY: &str = "0123456789abcdef0123456789abcdef";

#[test]
#[ignore = "needs `make asan`"]
fn lfcat_navixy_prints_typed_events_under_asan() {
    let peer = atmosphere_fixture();
    let mut cmd = Command::new(program("build/asan", "lfcat"));
    cmd.args(["-p", "navixy", "--token", NAVIXY_KEY, "--track-message-length"])
        .args(["--subscribe", "state", "--device", "15564", "--device", "21080"])
        .args(["--count", "3", "--timeout", "20", &peer.http_url("/v2")]);
    let out = run(cmd, Duration::from_secs(60));
    assert_ok(&out, "lfcat -p navixy");
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(
        (&lines[0]["topic"], &lines[0]["event"]),
        (&serde_json::json!("subscription/subscribe"), &serde_json::json!("response"))
    );
    assert_eq!(lines[0]["data"]["data"]["state"]["value"]["21080"], "normal");
    for state in &lines[1..] {
        assert_eq!((&state["topic"], &state["event"]), (&"state".into(), &"event".into()));
        assert!(state["data"]["source_id"].is_number(), "{state}");
    }
}

#[test]
#[ignore = "needs `make asan`"]
fn lfcat_atmosphere_sends_and_prints_raw_messages_under_asan() {
    let peer = atmosphere_fixture();
    let subscribe = format!(
        r#"{{"action":"subscribe","hash":"{NAVIXY_KEY}","requests":[{{"type":"state_batch","target":{{"type":"all"}}}}]}}"#
    );
    let mut cmd = Command::new(program("build/asan", "lfcat"));
    cmd.args(["-p", "atmosphere", "--send", &subscribe, "--count", "2", "--timeout", "20"])
        .arg(peer.http_url("/v2/event/subscription"));
    let out = run(cmd, Duration::from_secs(60));
    assert_ok(&out, "lfcat -p atmosphere");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<serde_json::Value> =
        stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines[0]["type"], "message");
    assert_eq!(lines[0]["data"]["type"], "response");
    assert_eq!(lines[1]["data"]["event"], "state_batch");
}

/// A proxy that answers every CONNECT with 407 and reports the request lines it got.
fn refusing_proxy() -> (u16, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            use std::io::{BufRead, Write};
            let mut line = String::new();
            let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
            let _ = reader.read_line(&mut line);
            let _ = tx.send(line.trim().to_string());
            let _ = stream.write_all(b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n");
        }
    });
    (port, rx)
}

#[test]
#[ignore = "needs `make asan`"]
fn lfcat_takes_the_proxy_from_the_environment_and_honours_no_proxy() {
    let (proxy, requests) = refusing_proxy();
    let target = echo();
    let url = format!("ws://127.0.0.1:{target}/");
    let mut cmd = Command::new(program("build/asan", "lfcat"));
    cmd.args(["--timeout", "10", &url]).env("http_proxy", format!("http://127.0.0.1:{proxy}"));
    let out = run(cmd, Duration::from_secs(30));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("LF_RESULT_PROXY_AUTH"), "{stderr}");
    let line = requests.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(line, format!("CONNECT 127.0.0.1:{target} HTTP/1.1"));

    let mut cmd = Command::new(program("build/asan", "lfcat"));
    cmd.args(["--send", "direct", "--count", "1", "--timeout", "10", &url])
        .env("http_proxy", format!("http://127.0.0.1:{proxy}"))
        .env("no_proxy", "localhost,127.0.0.1");
    let out = run(cmd, Duration::from_secs(30));
    assert_ok(&out, "lfcat with no_proxy");
    assert!(String::from_utf8_lossy(&out.stdout).contains("direct"));
    assert!(requests.try_recv().is_err(), "no_proxy kept the proxy out");
}
