//! Shared helpers for the integration tests: real peers (Python scripts in tests/peers),
//! an event collector with bounded waits, a managed loop that shuts down on drop, a
//! throwaway PKI made with the `openssl` command, and a capturing logger.
//!
//! Every wait here is bounded; a helper that runs out of time panics with the history of
//! what it saw, so a failing test says why.

#![allow(dead_code)] // each test binary uses a different subset
pub mod fault_proxy;

pub mod programs;

use livefeed::{ErrorCode, Event, EventKind, Loop, Session, SessionState};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, TryRecvError};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The bound on any single wait for something that should happen promptly.
pub const WAIT: Duration = Duration::from_secs(10);

/// How long a peer script may take to print its port (Python start-up on a loaded machine).
const PEER_START: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------
// Peers

/// A peer script running as a child process; killed when dropped. Its stdin is a pipe we
/// hold, so it also exits when this test process ends (for peers kept in statics).
pub struct Peer {
    child: Child,
    lines: Mutex<Receiver<String>>,
    /// The port from the first line the peer printed.
    pub port: u16,
    name: String,
    args: Vec<String>,
}

/// The directory of the peer scripts.
pub fn peers_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("peers")
}

impl Peer {
    /// Starts `tests/peers/<script>` with `args` and extra environment variables, and waits
    /// (bounded) for the port on its first stdout line.
    pub fn spawn(script: &str, args: &[&str], envs: &[(&str, &str)]) -> Peer {
        let path = peers_dir().join(script);
        let interpreter = if script.ends_with(".js") { "node" } else { "python3" };
        let mut cmd = Command::new(interpreter);
        cmd.arg(&path)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child =
            cmd.spawn().unwrap_or_else(|e| panic!("cannot start {interpreter} {path:?}: {e}"));
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                match line {
                    Ok(l) => {
                        if tx.send(l).is_err() {
                            break;
                        }
                    }
                    Err(_) => break,
                }
            }
        });
        let name = script.to_string();
        let first = match rx.recv_timeout(PEER_START) {
            Ok(l) => l,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("peer {name} printed no port within {PEER_START:?} ({e:?})");
            }
        };
        // A bare port, or `{"port":N}` (the Node peers).
        let port = serde_json::from_str::<serde_json::Value>(first.trim())
            .ok()
            .and_then(|v| v.as_u64().or_else(|| v.get("port")?.as_u64()))
            .and_then(|p| u16::try_from(p).ok())
            .unwrap_or_else(|| panic!("peer {name}: first line {first:?} is not a port"));
        let args = args.iter().map(|a| a.to_string()).collect();
        Peer { child, lines: Mutex::new(rx), port, name, args }
    }

    /// The next line the peer printed after its port, waiting at most `within`.
    pub fn next_line(&self, within: Duration) -> String {
        let rx = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        rx.recv_timeout(within)
            .unwrap_or_else(|e| panic!("peer {}: no further line ({e:?})", self.name))
    }

    /// The arguments the peer was started with.
    pub fn args(&self) -> &[String] {
        &self.args
    }

    /// `ws://127.0.0.1:<port><path>`.
    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://127.0.0.1:{}{}", self.port, path)
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn http_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    /// POSTs `body` (JSON) to a fixture's control endpoint and returns its JSON answer
    /// (bounded: the fixture must answer within 10 s).
    pub fn control(&self, path: &str, body: &serde_json::Value) -> serde_json::Value {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let body = body.to_string();
        let request = format!(
            "POST {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        s.write_all(request.as_bytes()).unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        let json = answer.split("\r\n\r\n").nth(1).unwrap_or("");
        serde_json::from_str(json)
            .unwrap_or_else(|e| panic!("{}: {path} answered {answer:?}: {e}", self.name))
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `websockets` server (tests/peers/ws_server.py) shared by the tests of one binary.
pub fn ws_server() -> &'static Peer {
    static PEER: OnceLock<Peer> = OnceLock::new();
    PEER.get_or_init(|| Peer::spawn("ws_server.py", &[], &[]))
}

/// The raw fixture (tests/peers/raw_fixture.py) shared by the tests of one binary, and
/// the refused ("closed") loopback port it holds.
pub fn raw_fixture() -> &'static (Peer, u16) {
    static PEER: OnceLock<(Peer, u16)> = OnceLock::new();
    PEER.get_or_init(|| {
        let peer = Peer::spawn("raw_fixture.py", &[], &[]);
        let line = peer.next_line(PEER_START);
        let closed = line
            .strip_prefix("closed ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("raw fixture: bad second line {line:?}"));
        (peer, closed)
    })
}

// ---------------------------------------------------------------------------------------
// Loops

/// A loop on its managed thread, shut down when dropped.
pub struct TestLoop(pub Arc<Loop>);

impl TestLoop {
    /// A new loop running on its own thread.
    pub fn start() -> TestLoop {
        let lp = Loop::new().expect("loop");
        lp.start_thread().expect("loop thread");
        TestLoop(lp)
    }
}

impl std::ops::Deref for TestLoop {
    type Target = Loop;
    fn deref(&self) -> &Loop {
        &self.0
    }
}

impl Drop for TestLoop {
    fn drop(&mut self) {
        self.0.shutdown();
    }
}

// ---------------------------------------------------------------------------------------
// Events

/// An owned copy of an [`Event`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ev {
    pub kind: EventKind,
    pub state: SessionState,
    pub payload: Vec<u8>,
    pub error: Option<ErrorCode>,
    pub message: String,
    pub close_code: u16,
    pub topic: String,
    pub event_type: String,
    pub namespace: String,
    pub ack_id: u64,
    pub attachments: Vec<Vec<u8>>,
}

impl Ev {
    /// Copies an event.
    pub fn of(ev: &Event<'_>) -> Ev {
        Ev {
            kind: ev.kind(),
            state: ev.state(),
            payload: ev.payload().to_vec(),
            error: ev.error().map(|e| e.code),
            message: ev.error().map(|e| e.message.clone()).unwrap_or_default(),
            close_code: ev.close_code(),
            topic: ev.topic().to_string(),
            event_type: ev.event_type().to_string(),
            namespace: ev.namespace().to_string(),
            ack_id: ev.ack_id(),
            attachments: ev.attachments().to_vec(),
        }
    }

    /// The payload as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.payload).into_owned()
    }

    /// Whether this is the state change to `s`.
    pub fn is_state(&self, s: SessionState) -> bool {
        self.kind == EventKind::State && self.state == s
    }
}

/// The receiving side of [`collector`]: every event a handler saw, in order.
pub struct Events {
    rx: Receiver<Ev>,
    /// Everything received so far.
    pub seen: Vec<Ev>,
}

/// A handler that forwards owned copies of its events, and the receiver for them.
/// The handler owns the only sender, so once the handler is dropped the receiver
/// reports disconnection: [`Events::assert_handler_dropped`] relies on that.
pub fn collector() -> (impl FnMut(&Event<'_>) + Send + 'static, Events) {
    let (tx, rx) = mpsc::channel();
    let handler = move |ev: &Event<'_>| {
        let _ = tx.send(Ev::of(ev));
    };
    (handler, Events { rx, seen: Vec::new() })
}

impl Events {
    fn history(&self) -> String {
        let mut s = String::new();
        for e in &self.seen {
            let text = e.text();
            let text: String = text.chars().take(80).collect();
            s.push_str(&format!(
                "\n  {:?}/{:?} code={:?} close={} {:?} {}",
                e.kind, e.state, e.error, e.close_code, text, e.message
            ));
        }
        s
    }

    /// The next event, waiting at most `within`.
    pub fn next_within(&mut self, within: Duration) -> Ev {
        match self.rx.recv_timeout(within) {
            Ok(e) => {
                self.seen.push(e.clone());
                e
            }
            Err(e) => panic!("no event within {within:?} ({e:?}); seen so far:{}", self.history()),
        }
    }

    /// The next event, waiting at most [`WAIT`].
    pub fn next(&mut self) -> Ev {
        self.next_within(WAIT)
    }

    /// An event if one is already there.
    pub fn try_next(&mut self) -> Option<Ev> {
        match self.rx.try_recv() {
            Ok(e) => {
                self.seen.push(e.clone());
                Some(e)
            }
            Err(_) => None,
        }
    }

    /// Skips events until one satisfies `pred`, within `within` overall.
    pub fn wait_for_within(
        &mut self,
        what: &str,
        within: Duration,
        pred: impl Fn(&Ev) -> bool,
    ) -> Ev {
        let end = Instant::now() + within;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(e) => {
                    self.seen.push(e.clone());
                    if pred(&e) {
                        return e;
                    }
                }
                Err(e) => panic!("waited {within:?} for {what} ({e:?}); seen:{}", self.history()),
            }
        }
    }

    /// Skips events until one satisfies `pred`, within [`WAIT`].
    pub fn wait_for(&mut self, what: &str, pred: impl Fn(&Ev) -> bool) -> Ev {
        self.wait_for_within(what, WAIT, pred)
    }

    /// Waits for `State(Open)`, which must follow `State(Connecting)` with nothing between.
    /// Returns the Open event (its payload is the negotiated subprotocol, or "open").
    pub fn expect_open(&mut self) -> Ev {
        let first = self.next();
        assert!(
            first.is_state(SessionState::Connecting),
            "first event is not Connecting:{}",
            self.history()
        );
        let open = self.next();
        assert!(open.is_state(SessionState::Open), "second event is not Open:{}", self.history());
        open
    }

    /// The next event, which must be a text message.
    pub fn expect_text(&mut self) -> String {
        let e = self.next();
        assert_eq!(e.kind, EventKind::Message, "expected a text message:{}", self.history());
        e.text()
    }

    /// Every event up to and including `State(Closed)`, within [`WAIT`].
    pub fn until_closed(&mut self) -> Vec<Ev> {
        self.until_closed_within(WAIT)
    }

    /// Every event up to and including `State(Closed)`, within `within`.
    pub fn until_closed_within(&mut self, within: Duration) -> Vec<Ev> {
        let start = self.seen.len();
        self.wait_for_within("State(Closed)", within, |e| e.is_state(SessionState::Closed));
        self.seen[start..].to_vec()
    }

    /// After the session handle was dropped: the handler must be gone, so the channel is
    /// disconnected once the events already sent are drained. Returns those events.
    pub fn assert_handler_dropped(&mut self) -> Vec<Ev> {
        let mut rest = Vec::new();
        loop {
            match self.rx.try_recv() {
                Ok(e) => {
                    self.seen.push(e.clone());
                    rest.push(e);
                }
                Err(TryRecvError::Disconnected) => return rest,
                Err(TryRecvError::Empty) => {
                    panic!(
                        "the handler is still alive after its session was dropped; seen:{}",
                        self.history()
                    )
                }
            }
        }
    }

    /// Whether nothing arrives within `within` (an observation window, not a synchronisation).
    pub fn quiet_for(&mut self, within: Duration) -> bool {
        match self.rx.recv_timeout(within) {
            Ok(e) => {
                self.seen.push(e);
                false
            }
            Err(RecvTimeoutError::Timeout) => true,
            Err(RecvTimeoutError::Disconnected) => true,
        }
    }
}

/// Sends `text` and expects the very next event to be the same text coming back.
pub fn echo_text(s: &Session, ev: &mut Events, text: &str) {
    s.send_text(text).unwrap_or_else(|e| panic!("send_text({text:?}): {e}"));
    assert_eq!(ev.expect_text(), text, "echo of {text:?}");
}

/// Closes a session with 1000 and waits for the end of the close handshake.
pub fn close_cleanly(s: &Session, ev: &mut Events) {
    s.close(1000, "done").expect("close");
    let evs = ev.until_closed();
    let close = evs.iter().find(|e| e.kind == EventKind::Close).expect("a Close event");
    assert_eq!(close.close_code, 1000, "close code echoed by the peer: {evs:?}");
}

// ---------------------------------------------------------------------------------------
// Throwaway PKI

/// PEM material made at test time.
pub struct Pki {
    /// The CA that signed both server certificates.
    pub ca_pem: Vec<u8>,
    /// A CA that signed nothing here.
    pub other_ca_pem: Vec<u8>,
    /// Server certificate for DNS:localhost and IP:127.0.0.1, and its key.
    pub good_cert: String,
    pub good_key: String,
    /// Server certificate for DNS:other.example only, and its key.
    pub wrong_name_cert: String,
    pub wrong_name_key: String,
    /// Client certificate (clientAuth) signed by the CA, and its PKCS#8 key.
    pub client_cert: Vec<u8>,
    pub client_key: Vec<u8>,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run openssl: {e}"));
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn unique_dir(prefix: &str) -> PathBuf {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("{prefix}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn make_ca(dir: &Path, name: &str, cn: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.pem"),
            "-days",
            "2",
            "-subj",
            &format!("/CN={cn}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
}

fn make_leaf(dir: &Path, name: &str, ca: &str, cn: &str, san: &str) {
    make_cert(dir, name, ca, cn, san, "serverAuth");
}

fn make_cert(dir: &Path, name: &str, ca: &str, cn: &str, san: &str, usage: &str) {
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            &format!("/CN={cn}"),
        ],
    );
    let ext = format!(
        "subjectAltName={san}\nbasicConstraints=critical,CA:FALSE\n\
         keyUsage=critical,digitalSignature\nextendedKeyUsage={usage}\n"
    );
    std::fs::write(dir.join(format!("{name}.ext")), ext).expect("write ext");
    let serial = format!(
        "0x{:x}",
        SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(1)
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}.key"),
            "-set_serial",
            &serial,
            "-days",
            "2",
            "-out",
            &format!("{name}.pem"),
            "-extfile",
            &format!("{name}.ext"),
        ],
    );
}

/// A CA, a second unrelated CA, and two server certificates, made once per test binary
/// with the `openssl` command in a private directory that is removed right after.
pub fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let dir = unique_dir("livefeed-pki");
        make_ca(&dir, "ca", "livefeed test CA");
        make_ca(&dir, "other-ca", "livefeed unrelated CA");
        make_leaf(&dir, "good", "ca", "localhost", "DNS:localhost,IP:127.0.0.1");
        make_leaf(&dir, "wrong-name", "ca", "other.example", "DNS:other.example");
        make_cert(&dir, "client", "ca", "gateway-7", "DNS:gateway-7", "clientAuth");
        let read = |f: &str| std::fs::read(dir.join(f)).unwrap_or_else(|e| panic!("read {f}: {e}"));
        let text = |f: &str| String::from_utf8(read(f)).expect("PEM is ASCII");
        let pki = Pki {
            ca_pem: read("ca.pem"),
            other_ca_pem: read("other-ca.pem"),
            good_cert: text("good.pem"),
            good_key: text("good.key"),
            wrong_name_cert: text("wrong-name.pem"),
            wrong_name_key: text("wrong-name.key"),
            client_cert: read("client.pem"),
            client_key: read("client.key"),
        };
        let _ = std::fs::remove_dir_all(&dir);
        pki
    })
}

/// A TLS `websockets` server that also requires a client certificate signed by the CA.
pub fn mtls_server() -> Peer {
    let pki = pki();
    let ca = String::from_utf8(pki.ca_pem.clone()).expect("PEM is ASCII");
    Peer::spawn(
        "ws_server.py",
        &["--tls-env"],
        &[
            ("LF_TLS_CERT", &pki.good_cert),
            ("LF_TLS_KEY", &pki.good_key),
            ("LF_TLS_CLIENT_CA", &ca),
        ],
    )
}

/// A TLS `websockets` server presenting `cert` (PEM chain) with `key`.
pub fn tls_server(cert: &str, key: &str) -> Peer {
    Peer::spawn("ws_server.py", &["--tls-env"], &[("LF_TLS_CERT", cert), ("LF_TLS_KEY", key)])
}

// ---------------------------------------------------------------------------------------
// Logging

/// One captured log record.
#[derive(Clone, Debug)]
pub struct Record {
    pub level: log::Level,
    pub target: String,
    pub message: String,
}

struct Capture {
    records: Mutex<Vec<Record>>,
}

impl log::Log for Capture {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.target().starts_with("livefeed")
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            self.records.lock().unwrap_or_else(|e| e.into_inner()).push(Record {
                level: record.level(),
                target: record.target().to_string(),
                message: record.args().to_string(),
            });
        }
    }

    fn flush(&self) {}
}

static CAPTURE: Capture = Capture { records: Mutex::new(Vec::new()) };

/// Installs the capturing logger for this test binary (once; later calls do nothing).
pub fn capture_logs() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        log::set_logger(&CAPTURE).expect("no other logger in this test binary");
        log::set_max_level(log::LevelFilter::Debug);
    });
}

/// The records captured so far that satisfy `pred`.
pub fn logged(pred: impl Fn(&Record) -> bool) -> Vec<Record> {
    CAPTURE
        .records
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter(|r| pred(r))
        .cloned()
        .collect()
}
