//! HTTP proxies, through a real one: tinyproxy from Debian (installed by the test command),
//! with and without basic auth, carrying ws, wss, REST steps and long-polling; wrong
//! credentials are LF_RESULT_PROXY_AUTH; a proxy that refuses is LF_RESULT_PROXY.

mod support;

use livefeed::{ErrorCode, EventKind, Protocol, ProxySetting, Reconnect, SessionConfig};
use livefeed::{SessionState, Timeouts};
use serde_json::json;
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::{TestLoop, collector, echo_text, pki, tls_server, ws_server};

/// A tinyproxy on loopback, stopped when dropped.
struct Tinyproxy {
    child: Child,
    port: u16,
    dir: std::path::PathBuf,
}

impl Tinyproxy {
    /// Starts tinyproxy; with `auth`, it asks for these basic-auth credentials.
    fn start(auth: Option<(&str, &str)>) -> Tinyproxy {
        // tinyproxy needs a fixed port: take a free one from the kernel.
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let dir =
            std::env::temp_dir().join(format!("livefeed-tinyproxy-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut conf = format!(
            "Port {port}\nListen 127.0.0.1\nTimeout 30\nMaxClients 64\nLogLevel Error\n\
             Allow 127.0.0.1\nDisableViaHeader Yes\nPidFile \"{}/pid\"\n",
            dir.display()
        );
        if let Some((user, password)) = auth {
            conf.push_str(&format!("BasicAuth {user} {password}\n"));
        }
        let conf_path = dir.join("tinyproxy.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let child = Command::new("tinyproxy")
            .args(["-d", "-c"])
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("tinyproxy is installed (scripts/install-deps.sh)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "tinyproxy did not listen on {port}");
            std::thread::sleep(Duration::from_millis(20)); // polling a bounded start-up
        }
        Tinyproxy { child, port, dir }
    }

    fn url(&self, credentials: Option<&str>) -> ProxySetting {
        let auth = credentials.map(|c| format!("{c}@")).unwrap_or_default();
        ProxySetting::Url(format!("http://{auth}127.0.0.1:{}", self.port))
    }
}

impl Drop for Tinyproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn ws_and_wss_go_through_the_proxy_with_credentials() {
    let proxy = Tinyproxy::start(Some(("gw", "s3cret-pw")));
    let lp = TestLoop::start();
    let (h, mut ev) = collector();
    let mut c = SessionConfig::new(ws_server().ws_url("/echo"));
    c.proxy = proxy.url(Some("gw:s3cret%2Dpw"));
    let s = lp.open(c, h).unwrap();
    ev.expect_open();
    echo_text(&s, &mut ev, "through the tunnel");
    support::close_cleanly(&s, &mut ev);

    let tls = tls_server(&pki().good_cert, &pki().good_key);
    let (h, mut ev) = collector();
    let mut c = SessionConfig::new(format!("wss://localhost:{}/echo", tls.port));
    c.tls.extra_ca_pem.push(pki().ca_pem.clone());
    c.proxy = proxy.url(Some("gw:s3cret%2Dpw"));
    let s = lp.open(c, h).unwrap();
    ev.expect_open();
    echo_text(&s, &mut ev, "TLS end to end through the tunnel");
    support::close_cleanly(&s, &mut ev);
}

#[test]
fn wrong_proxy_credentials_are_their_own_error_and_not_retried() {
    let proxy = Tinyproxy::start(Some(("gw", "secret")));
    let lp = TestLoop::start();
    for credentials in [None, Some("gw:wrong")] {
        let (h, mut ev) = collector();
        let mut c = SessionConfig::new(ws_server().ws_url("/echo"));
        c.proxy = proxy.url(credentials);
        c.reconnect = Reconnect::with_delays(Duration::from_millis(10), Duration::from_millis(10));
        let _s = lp.open(c, h).unwrap();
        let evs = ev.until_closed();
        let e = evs.iter().find(|e| e.kind == EventKind::Error).expect("an error");
        assert_eq!(e.error, Some(ErrorCode::ProxyAuth), "{credentials:?}: {}", e.message);
        // tinyproxy 1.11 answers 401 where RFC 9110 says 407; both mean the same here.
        assert!(e.message.contains("401") || e.message.contains("407"), "{}", e.message);
        assert!(!e.message.contains("wrong"), "no credentials in messages: {}", e.message);
        assert!(!evs.iter().any(|e| e.is_state(SessionState::Reconnecting)));
    }
}

#[test]
fn a_proxy_that_cannot_reach_the_target_is_a_proxy_error() {
    let proxy = Tinyproxy::start(None);
    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let lp = TestLoop::start();
    let (h, mut ev) = collector();
    let mut c = SessionConfig::new(format!("ws://127.0.0.1:{closed}/"));
    c.proxy = proxy.url(None);
    let _s = lp.open(c, h).unwrap();
    let evs = ev.until_closed();
    let e = evs.iter().find(|e| e.kind == EventKind::Error).expect("an error");
    assert_eq!(e.error, Some(ErrorCode::Proxy), "{}", e.message);
}

#[test]
fn rest_steps_and_long_polling_go_through_the_proxy() {
    let proxy = Tinyproxy::start(Some(("gw", "secret")));
    let fixture = support::Peer::spawn(
        "atmosphere_fixture.py",
        &["--user", "ops:pw", "--refuse-websocket", "--hold-s", "0.3"],
        &[],
    );
    let lp = TestLoop::start();
    let (h, mut ev) = collector();
    // Navixy: the login POST, the refused WebSocket, then long-polling GETs and POSTs.
    let mut c = SessionConfig::new(fixture.http_url("/v2"));
    c.protocol = Protocol::Navixy;
    c.options = vec![("user".into(), "ops".into()), ("password".into(), "pw".into())];
    c.proxy = proxy.url(Some("gw:secret"));
    let s = lp.open(c, h).unwrap();
    ev.wait_for("open", |e| e.is_state(SessionState::Open));
    ev.wait_for("an event", |e| e.kind == EventKind::Event && e.topic == "state_batch");
    support::close_cleanly(&s, &mut ev);
    let stats = fixture.control("/_control/stats", &json!({}));
    assert_eq!(stats["totals"]["auth_ok"], 1);
    assert_eq!(stats["totals"]["longpoll_connections"], 1);
    assert_eq!(stats["totals"]["unsubscribes"], 1);
}

#[test]
fn a_silent_proxy_is_caught_by_the_connect_deadline() {
    // A listener that accepts and never answers CONNECT.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let lp = TestLoop::start();
    let (h, mut ev) = collector();
    let mut c = SessionConfig::new(ws_server().ws_url("/echo"));
    c.proxy = ProxySetting::Url(format!("http://127.0.0.1:{port}"));
    c.timeouts = Timeouts { connect: Duration::from_millis(300), ..Timeouts::default() };
    let _s = lp.open(c, h).unwrap();
    let evs = ev.until_closed_within(Duration::from_secs(3));
    let e = evs.iter().find(|e| e.kind == EventKind::Error).expect("an error");
    assert_eq!(e.error, Some(ErrorCode::Timeout), "{}", e.message);
    assert!(e.message.contains("proxy"), "{}", e.message);
    drop(silent);
}
