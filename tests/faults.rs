//! Staying connected through network faults: a fault-injecting TCP proxy
//! (tests/support/fault_proxy.rs) sits between a session and a real or fixture server of
//! every protocol the library speaks (WebSocket, Socket.IO 4 and 2 over WebSocket,
//! long-polling and upgrade, thethings.io, Atmosphere, Navixy over WebSocket and
//! long-polling, deCONZ, Igtimi, SmartServer), and breaks the connection in each way a
//! network does:
//!
//! - cut with FIN, cut with RST (a NAT or load balancer dropping the flow, a server crash);
//! - truncate: a few more bytes, then the end, inside whatever the client was reading;
//! - a truncated first answer: the next connection's bootstrap reply (login, config, server
//!   list, subscription PUT) or first WebSocket frame ends early;
//! - stall: the connection stays open but nothing flows (a half-open connection); the
//!   session must notice through its liveness check (WebSocket ping/pong, the Engine.IO
//!   heartbeat, the Atmosphere watchdog, Igtimi's heartbeat watchdog), not through TCP,
//!   within the configured bound;
//! - refuse: new connections are reset, refused by the kernel, or accepted and never
//!   answered (the session's own deadlines must end those) for a while;
//! - delay: latency on every chunk, below the liveness bounds: no false alarm;
//! - at the end, the host closes while the network is stalled: closed within the close
//!   deadline, for good.
//!
//! After each fault the session must reconnect within the backoff bound (the delay it
//! announced, plus the time to connect), make its subscription exactly once per connection
//! (checked on the server: fixture counters, or the client's own frames as the proxy saw
//! them), and keep receiving data. Each protocol runs the whole sequence on one session; the
//! timings of every step are printed (`--nocapture`). Where the session learns the
//! WebSocket's port from a bootstrap answer (deCONZ config, Igtimi server list), a second
//! proxy on the REST leg rewrites that port into the faulted proxy's, so the faults hit the
//! long-lived connection; the truncated first answer hits the REST leg there.
//!
//! Also: a middlebox that resets WebSocket upgrades (Socket.IO stays on long-polling,
//! Atmosphere should fall back), the proxy's own behaviour against a TCP echo server, and
//! lfcat under ASan through a cut (ignored: needs `make asan`).
//!
//! Timing bounds are generous where a busy two-core machine needs it (`CONNECT`, `SLACK`);
//! nothing sleeps to synchronise: every wait is for an event, a proxy counter or a fixture
//! counter, bounded.

mod support;

use livefeed::{
    ErrorCode, Event, EventKind, Protocol, ProxySetting, Reconnect, Session, SessionConfig,
    SessionState,
};
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::fault_proxy::{Close, FaultProxy, Refuse};
use support::{Ev, Events, Peer, TestLoop, collector};

const fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The reconnect policy of every session here.
const MIN_DELAY: Duration = ms(50);
const MAX_DELAY: Duration = ms(200);

/// Time to connect again once the backoff delay is over (bootstrap requests, upgrade,
/// namespace join, login, subscribe), on a loaded machine.
const CONNECT: Duration = ms(3000);

/// Slack over a liveness bound: the loop thread, the peer and the test thread may each be
/// descheduled for a while on two busy cores.
const SLACK: Duration = ms(1200);

/// WebSocket keepalive of the sessions that use it (plain WebSocket, deCONZ, SmartServer).
const PING_INTERVAL: Duration = ms(200);
const PONG_TIMEOUT: Duration = ms(300);

/// Engine.IO heartbeat the Socket.IO servers announce.
const EIO_PING_INTERVAL: u64 = 200;
const EIO_PING_TIMEOUT: u64 = 300;

/// Atmosphere: the client's receive watchdog, and the fixture's server heartbeat that keeps a
/// healthy connection inside it.
const WATCHDOG_MS: u64 = 400;

/// The session's deadline for each HTTP exchange and WebSocket upgrade: a server that
/// accepts and never answers ([`Refuse::Hold`]) costs this long per attempt.
const HANDSHAKE: Duration = ms(1000);

/// How long the session waits for the server's answer to its close.
const CLOSE: Duration = ms(500);

/// Latency added per chunk by the delay step: well below every liveness bound here.
const LATENCY: Duration = ms(60);

/// Bytes let through by the truncate step: inside the first frame that follows.
const TRUNCATE_AT: usize = 7;

// ---------------------------------------------------------------------------------------
// Events with the instants the loop dispatched them

struct Feed {
    ev: Events,
    at: Arc<Mutex<Vec<Instant>>>,
}

fn stamped() -> (impl FnMut(&Event<'_>) + Send + 'static, Feed) {
    let (mut inner, ev) = collector();
    let at = Arc::new(Mutex::new(Vec::new()));
    let mine = Arc::clone(&at);
    let handler = move |e: &Event<'_>| {
        mine.lock().unwrap_or_else(|p| p.into_inner()).push(Instant::now());
        inner(e);
    };
    (handler, Feed { ev, at })
}

impl Feed {
    /// When the loop dispatched `ev.seen[i]`.
    fn at(&self, i: usize) -> Instant {
        self.at.lock().unwrap_or_else(|p| p.into_inner())[i]
    }

    /// The next event satisfying `pred`, within `within`, with its index in `seen`.
    fn wait(&mut self, what: &str, within: Duration, pred: impl Fn(&Ev) -> bool) -> (usize, Ev) {
        let e = self.ev.wait_for_within(what, within, pred);
        (self.ev.seen.len() - 1, e)
    }

    fn history_since(&self, mark: usize) -> String {
        let mut s = String::new();
        for (i, e) in self.ev.seen.iter().enumerate().skip(mark) {
            let text: String = e.text().chars().take(100).collect();
            s.push_str(&format!(
                "\n  #{i} {:?}/{:?} code={:?} {:?} {} {}",
                e.kind, e.state, e.error, text, e.topic, e.message
            ));
        }
        s
    }
}

fn is_drop(e: &Ev) -> bool {
    e.kind == EventKind::Error || e.kind == EventKind::Close
}

/// `(attempt, delay_ms, reason)` of a Reconnecting state event.
fn announced(e: &Ev) -> (u64, u64, String) {
    let v: Value = serde_json::from_slice(&e.payload)
        .unwrap_or_else(|err| panic!("Reconnecting detail {:?} is not JSON: {err}", e.text()));
    (
        v["attempt"].as_u64().expect("attempt"),
        v["delay_ms"].as_u64().expect("delay_ms"),
        v["reason"].as_str().expect("reason").to_string(),
    )
}

// ---------------------------------------------------------------------------------------
// Small HTTP and WebSocket helpers

/// One HTTP/1.0 request to 127.0.0.1:`port`: `(status, JSON body or Null)`.
fn http(port: u16, method: &str, path: &str, body: &str) -> (u16, Value) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the peer");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body.as_bytes()).unwrap();
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).expect("the peer answered in time");
    let answer = String::from_utf8_lossy(&answer);
    let (head, body) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).expect("a status");
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// The text messages a WebSocket client sent on one connection, read from the bytes the
/// proxy saw (the upgrade request, then masked frames). Empty for a connection that was not
/// a WebSocket upgrade (a REST request).
fn ws_client_texts(bytes: &[u8]) -> Vec<String> {
    let Some(head_end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Vec::new();
    };
    let head = String::from_utf8_lossy(&bytes[..head_end]).to_ascii_lowercase();
    if !head.starts_with("get ") || !head.contains("upgrade: websocket") {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut i = head_end + 4;
    while let Some(&[b0, b1]) = bytes.get(i..i + 2) {
        let mut j = i + 2;
        let mut len = usize::from(b1 & 0x7f);
        if len == 126 {
            let Some(b) = bytes.get(j..j + 2) else { break };
            len = usize::from(u16::from_be_bytes([b[0], b[1]]));
            j += 2;
        } else if len == 127 {
            let Some(b) = bytes.get(j..j + 8) else { break };
            len = usize::try_from(u64::from_be_bytes(b.try_into().unwrap())).unwrap();
            j += 8;
        }
        let mut key = [0u8; 4];
        if b1 & 0x80 != 0 {
            let Some(k) = bytes.get(j..j + 4) else { break };
            key.copy_from_slice(k);
            j += 4;
        }
        let Some(payload) = bytes.get(j..j + len) else { break };
        if b0 & 0x0f == 1 {
            let clear: Vec<u8> = payload.iter().enumerate().map(|(n, b)| b ^ key[n % 4]).collect();
            out.push(String::from_utf8_lossy(&clear).into_owned());
        }
        i = j + len;
    }
    out
}

/// Every text message the client sent through `proxy`, per forwarded connection.
fn client_texts(proxy: &FaultProxy) -> Vec<Vec<String>> {
    (0..proxy.counts().forwarded).map(|i| ws_client_texts(&proxy.client_bytes(i))).collect()
}

// ---------------------------------------------------------------------------------------
// The rig: one session through one proxy, and the fault steps

#[derive(Clone, Copy, Debug)]
enum Step {
    Cut(Close),
    Truncate,
    /// The next connection's first answer (a bootstrap reply, or the first WebSocket frame)
    /// is cut short.
    TruncateBootstrap,
    Stall,
    Refuse(Refuse),
    Delay,
}

/// What differs between protocols.
trait Platform {
    fn name(&self) -> String;
    /// The port the faulted proxy forwards to.
    fn upstream(&self) -> u16;
    /// The session's configuration, pointed at `proxy` (the rig adds reconnecting).
    fn config(&self, proxy: &FaultProxy) -> SessionConfig;
    /// The longest a stalled peer may go unnoticed: from the last byte received to the
    /// dead-peer error, as configured.
    fn liveness(&self) -> Duration;
    /// Right after each State(Open), before anything else is checked.
    fn on_open(&self, _rig: &mut Rig) {}
    /// While the session waits to reconnect (once per drop).
    fn on_reconnecting(&self, _rig: &mut Rig) {}
    /// Makes the server send something now, and waits for it to arrive.
    fn fresh_data(&self, rig: &mut Rig);
    /// Makes the server send something now (the truncate step cuts into it).
    fn provoke(&self, rig: &mut Rig);
    /// Arms `proxy` to cut the first answer of its next connection short.
    fn truncate_first_answer(&self, proxy: &FaultProxy) {
        proxy.truncate_next(TRUNCATE_AT);
    }
    /// The proxy in front of the bootstrap request when it is not the faulted one.
    fn bootstrap_proxy(&self) -> Option<&FaultProxy> {
        None
    }
    /// The subscription (or its equivalent) was made exactly once per connection:
    /// `rig.opens()` connections opened so far, `rig.attempts()` bootstraps started.
    fn check_once(&self, rig: &Rig);
}

struct Rig {
    name: String,
    proxy: FaultProxy,
    s: Session,
    feed: Feed,
    /// Connections through the faulted proxy whose first answer was cut short
    /// ([`Step::TruncateBootstrap`]) before the session opened (they reached the server
    /// but never opened): the first line of the request each carried.
    cut_short: Vec<String>,
    /// Probes sent so far (fresh data tags).
    probes: usize,
    /// Latency the proxy adds per chunk now (the delay step).
    latency: Duration,
    lines: Vec<String>,
    // Last: the loop shuts down after the session handle is dropped.
    _lp: TestLoop,
}

impl Rig {
    fn start(p: &dyn Platform) -> Rig {
        Rig::start_with(p, |_| {})
    }

    /// [`Rig::start`], with `prepare` run on the proxy before the session opens.
    fn start_with(p: &dyn Platform, prepare: impl FnOnce(&FaultProxy)) -> Rig {
        let proxy = FaultProxy::start(p.upstream());
        prepare(&proxy);
        let mut cfg = p.config(&proxy);
        cfg.proxy = ProxySetting::Direct;
        cfg.reconnect = Reconnect::with_delays(MIN_DELAY, MAX_DELAY);
        cfg.timeouts.handshake = HANDSHAKE;
        cfg.timeouts.close = CLOSE;
        let lp = TestLoop::start();
        let (h, feed) = stamped();
        let started = Instant::now();
        let s = lp.open(cfg, h).unwrap();
        let mut rig = Rig {
            name: p.name(),
            proxy,
            s,
            feed,
            cut_short: Vec::new(),
            probes: 0,
            latency: Duration::ZERO,
            lines: Vec::new(),
            _lp: lp,
        };
        let (i, _) =
            rig.feed.wait("the first Open", CONNECT + ms(2000), |e| e.is_state(SessionState::Open));
        let took = rig.feed.at(i) - started;
        rig.lines.push(format!("first open after {took:?}"));
        p.on_open(&mut rig);
        p.fresh_data(&mut rig);
        p.check_once(&rig);
        let errors: Vec<_> = rig.feed.ev.seen.iter().filter(|e| is_drop(e)).collect();
        assert!(errors.is_empty(), "{}: trouble before any fault: {errors:?}", rig.name);
        rig
    }

    /// Connections opened so far (State(Open) events).
    fn opens(&self) -> usize {
        self.feed.ev.seen.iter().filter(|e| e.is_state(SessionState::Open)).count()
    }

    /// Bootstraps started so far (State(Connecting) events).
    fn attempts(&self) -> usize {
        self.feed.ev.seen.iter().filter(|e| e.is_state(SessionState::Connecting)).count()
    }

    fn probe(&mut self) -> String {
        self.probes += 1;
        format!("probe-{}", self.probes)
    }

    /// Waits for the end of the connection (an Error or a Close event), then the
    /// Reconnecting announcement; checks the delay. Returns (drop event index, Reconnecting
    /// index, announced delay).
    fn dropped(&mut self, p: &dyn Platform, what: &str, within: Duration) -> (usize, usize, u64) {
        self.dropped_then(p, what, within, true)
    }

    /// [`Rig::dropped`], calling the platform's `on_reconnecting` or not.
    fn dropped_then(
        &mut self,
        p: &dyn Platform,
        what: &str,
        within: Duration,
        hook: bool,
    ) -> (usize, usize, u64) {
        let name = self.name.clone();
        let (d, _) = self.feed.wait(&format!("{name}: the drop after {what}"), within, is_drop);
        let (r, rec) =
            self.feed.wait(&format!("{name}: Reconnecting after {what}"), WAITING, |e| {
                e.is_state(SessionState::Reconnecting) || e.is_state(SessionState::Closed)
            });
        assert!(
            rec.is_state(SessionState::Reconnecting),
            "{name}: {what} ended the session:{}",
            self.feed.history_since(d)
        );
        let (_, delay, reason) = announced(&rec);
        assert!(
            (MIN_DELAY.as_millis() as u64..=MAX_DELAY.as_millis() as u64).contains(&delay),
            "{name}: {what}: delay {delay} ms outside the policy"
        );
        assert!(!reason.is_empty(), "{name}: {what}: the Reconnecting detail says why");
        if hook {
            p.on_reconnecting(self);
        }
        (d, r, delay)
    }

    /// Waits for State(Open) after the Reconnecting event `r` (delay `delay` ms), then
    /// [`Rig::reopened`].
    fn back(&mut self, p: &dyn Platform, what: &str, r: usize, delay: u64) -> Duration {
        let name = self.name.clone();
        let left =
            (self.feed.at(r) + ms(delay) + CONNECT).saturating_duration_since(Instant::now());
        let (o, _) =
            self.feed.wait(&format!("{name}: Open again after {what}"), left + ms(1), |e| {
                e.is_state(SessionState::Open) || e.is_state(SessionState::Closed)
            });
        assert!(
            self.feed.ev.seen[o].is_state(SessionState::Open),
            "{name}: {what} ended the session:{}",
            self.feed.history_since(r)
        );
        self.reopened(p, what, o, r, delay)
    }

    /// The session is open again (`o`) after the Reconnecting event `r` (delay `delay`
    /// ms): it must have come within the delay plus [`CONNECT`], with nothing failing in
    /// between. Then the platform's checks: subscribed once per connection, data
    /// flows. Returns the time from Reconnecting to Open.
    fn reopened(
        &mut self,
        p: &dyn Platform,
        what: &str,
        o: usize,
        r: usize,
        delay: u64,
    ) -> Duration {
        let name = self.name.clone();
        let bound = ms(delay) + CONNECT;
        let took = self.feed.at(o) - self.feed.at(r);
        assert!(took <= bound, "{name}: {what}: open {took:?} after Reconnecting({delay} ms)");
        let between = &self.feed.ev.seen[r + 1..o];
        assert!(
            between.iter().all(|e| !is_drop(e) && !e.is_state(SessionState::Reconnecting)),
            "{name}: {what}: the reconnect itself failed:{}",
            self.feed.history_since(r)
        );
        let connecting = between.iter().filter(|e| e.is_state(SessionState::Connecting));
        assert_eq!(connecting.count(), 1, "{name}: {what}: one attempt");
        p.on_open(self);
        p.fresh_data(self);
        p.check_once(self);
        took
    }

    /// The host closes the session while the network is stalled: whatever the protocol
    /// says on its way out (a close frame, an unsubscribe, a close request) cannot get
    /// through, and the session must still end within its close deadline, for good.
    fn close_while_stalled(&mut self) {
        let name = self.name.clone();
        self.proxy.wait_settled(SETTLED, WAITING);
        assert!(self.proxy.stall() >= 1, "{name}: nothing to stall");
        let mark = self.feed.ev.seen.len();
        let t0 = Instant::now();
        self.s.close(1000, "done").unwrap();
        let (c, _) = self
            .feed
            .wait(&format!("{name}: Closed"), CLOSE + SLACK, |e| e.is_state(SessionState::Closed));
        let took = self.feed.at(c) - t0;
        let after: Vec<_> = self.feed.ev.seen[mark..]
            .iter()
            .filter(|e| {
                e.is_state(SessionState::Reconnecting) || e.is_state(SessionState::Connecting)
            })
            .collect();
        assert!(after.is_empty(), "{name}: a host close is for good: {after:?}");
        let quiet = self.feed.ev.quiet_for(ms(100));
        assert!(quiet, "{name}: events after Closed:{}", self.feed.history_since(mark));
        self.lines.push(format!("host close while stalled: closed after {took:?}"));
    }

    fn step(&mut self, p: &dyn Platform, step: Step) {
        let name = self.name.clone();
        if !matches!(step, Step::Delay) {
            // A held request, if the transport makes one per request.
            self.proxy.wait_settled(SETTLED, WAITING);
        }
        let mark = self.feed.ev.seen.len();
        let t0 = Instant::now();
        let line = match step {
            Step::Cut(how) => {
                assert!(self.proxy.cut(how) >= 1, "{name}: nothing to cut");
                let what = format!("cut ({how:?})");
                let (d, r, delay) = self.dropped(p, &what, WAITING);
                let seen = self.feed.at(d) - t0;
                let code = self.feed.ev.seen[d].error;
                let took = self.back(p, &what, r, delay);
                format!(
                    "{what}: noticed {seen:?} ({code:?}), open {took:?} after Reconnecting({delay} ms)"
                )
            }
            Step::Truncate => {
                assert!(self.proxy.truncate(TRUNCATE_AT) >= 1, "{name}: nothing to truncate");
                p.provoke(self);
                let what = format!("truncate ({TRUNCATE_AT} bytes)");
                let (d, r, delay) = self.dropped(p, &what, WAITING);
                let seen = self.feed.at(d) - t0;
                let code = self.feed.ev.seen[d].error;
                let took = self.back(p, &what, r, delay);
                format!(
                    "{what}: noticed {seen:?} ({code:?}), open {took:?} after Reconnecting({delay} ms)"
                )
            }
            Step::Stall => {
                let stalled = self.proxy.stall();
                assert!(stalled >= 1, "{name}: nothing to stall");
                let bound = p.liveness() + SLACK;
                let (d, r, delay) = self.dropped(p, "stall", bound);
                let e = self.feed.ev.seen[d].clone();
                let seen = self.feed.at(d) - t0;
                assert!(
                    e.kind == EventKind::Error
                        && matches!(e.error, Some(ErrorCode::PeerTimeout | ErrorCode::Timeout)),
                    "{name}: a stalled peer must be caught by the liveness check, got:{}",
                    self.feed.history_since(mark)
                );
                assert!(seen <= bound, "{name}: stall noticed after {seen:?} (bound {bound:?})");
                let took = self.back(p, "stall", r, delay);
                // The network comes back: what was held flows to a socket the session has
                // closed, and the old connection ends (the session did not keep it).
                let live = self.proxy.counts().live;
                assert_eq!(self.proxy.resume(), stalled, "{name}: the stalled connections");
                self.proxy.wait("the stalled connection to end", WAITING, |c| c.live < live);
                format!(
                    "stall: noticed {seen:?} ({:?}: {}), open {took:?} after Reconnecting({delay} ms)",
                    e.error.unwrap(),
                    e.message
                )
            }
            Step::TruncateBootstrap => {
                let bp = p.bootstrap_proxy().unwrap_or(&self.proxy);
                let before = bp.counts();
                p.truncate_first_answer(bp);
                assert!(self.proxy.cut(Close::Fin) >= 1, "{name}: nothing to cut");
                // No host messages wait for this attempt: a WebSocket is open (and sends
                // them) as soon as the upgrade is done, before the cut in the first frame.
                let (_, r1, _) =
                    self.dropped_then(p, "the cut before a truncated bootstrap", WAITING, false);
                let what = "truncated first answer".to_string();
                let (d, r, delay) = self.dropped(p, &what, WAITING);
                let bp = p.bootstrap_proxy().unwrap_or(&self.proxy);
                bp.wait("the truncation", WAITING, |c| c.truncated > before.truncated);
                let opened = (r1..r).any(|i| self.feed.ev.seen[i].is_state(SessionState::Open));
                if p.bootstrap_proxy().is_none() && !opened {
                    // The first request line of the connection cut short.
                    let sent = self.proxy.client_bytes(before.forwarded);
                    let line = String::from_utf8_lossy(&sent).lines().next().unwrap_or("").into();
                    self.cut_short.push(line);
                }
                let e = &self.feed.ev.seen[d];
                let (code, message) = (e.error, e.message.clone());
                let took = self.back(p, &what, r, delay);
                format!(
                    "{what}: failed with {code:?} ({message}), open {took:?} after Reconnecting({delay} ms)"
                )
            }
            Step::Refuse(how) => {
                self.proxy.refuse(how);
                assert!(self.proxy.cut(Close::Fin) >= 1, "{name}: nothing to cut");
                let what = format!("refuse ({how:?})");
                let (d, r, _) = self.dropped(p, &what, WAITING);
                let (first, _, _) = announced(&self.feed.ev.seen[r]);
                // Attempts refused after the drop: two, or one held to its deadline.
                let failures = if how == Refuse::Hold { 1 } else { 2 };
                let (r2, _) = self.feed.wait(
                    &format!("{name}: {failures} refused attempts"),
                    WAITING + HANDSHAKE * 2,
                    |e| {
                        e.is_state(SessionState::Reconnecting) && announced(e).0 >= first + failures
                    },
                );
                let refused: Vec<_> =
                    (r + 1..r2).filter(|&i| is_drop(&self.feed.ev.seen[i])).collect();
                assert_eq!(
                    refused.len(),
                    failures as usize,
                    "{name}: {what}:{}",
                    self.feed.history_since(d)
                );
                if how == Refuse::Hold {
                    // Nothing ever answers: the session's own deadline ends the attempt, the
                    // exchange deadline or, where a transport counts as open before any
                    // answer (Atmosphere long-polling with a known tracking id), the
                    // liveness check, whichever is shorter.
                    let f = refused[0];
                    let c = (r..f)
                        .rev()
                        .find(|&i| self.feed.ev.seen[i].is_state(SessionState::Connecting))
                        .unwrap();
                    let waited = self.feed.at(f) - self.feed.at(c);
                    let e = &self.feed.ev.seen[f];
                    assert!(
                        matches!(e.error, Some(ErrorCode::Timeout | ErrorCode::PeerTimeout)),
                        "{name}: {what}: {e:?}"
                    );
                    let deadline = HANDSHAKE.min(p.liveness());
                    assert!(
                        waited >= deadline && waited <= deadline + SLACK,
                        "{name}: {what}: a held attempt failed after {waited:?} (deadline {deadline:?})"
                    );
                }
                let codes: Vec<_> = refused.iter().map(|&i| self.feed.ev.seen[i].error).collect();
                let passed = Instant::now();
                self.proxy.pass();
                // An attempt under way when connections pass again may still be refused (or
                // held to its deadline), so the bound from here is that and two delays;
                // from the last announcement, one delay.
                let worst = if how == Refuse::Hold { HANDSHAKE } else { Duration::ZERO };
                let (o, _) = self.feed.wait(
                    &format!("{name}: Open once connections pass"),
                    worst + MAX_DELAY * 2 + CONNECT,
                    |e| e.is_state(SessionState::Open),
                );
                let since_pass = self.feed.at(o) - passed;
                let last_r = (r2..o)
                    .rev()
                    .find(|&i| self.feed.ev.seen[i].is_state(SessionState::Reconnecting))
                    .unwrap();
                let (_, delay, _) = announced(&self.feed.ev.seen[last_r]);
                let took = self.reopened(p, &what, o, last_r, delay);
                format!(
                    "{what}: attempts failed with {codes:?}; open {since_pass:?} after \
                     connections passed, {took:?} after Reconnecting({delay} ms)"
                )
            }
            Step::Delay => {
                self.proxy.delay(LATENCY);
                self.latency = LATENCY;
                let until = Instant::now() + p.liveness() * 2;
                let mut rounds = 0;
                while rounds < 2 || Instant::now() < until {
                    p.fresh_data(self);
                    rounds += 1;
                }
                let trouble: Vec<_> = self.feed.ev.seen[mark..]
                    .iter()
                    .filter(|e| is_drop(e) || e.is_state(SessionState::Reconnecting))
                    .collect();
                assert!(
                    trouble.is_empty(),
                    "{name}: {LATENCY:?} of latency per chunk is not a dead peer:{}",
                    self.feed.history_since(mark)
                );
                self.proxy.pass();
                self.latency = Duration::ZERO;
                p.fresh_data(self);
                format!("delay ({LATENCY:?} per chunk): {rounds} rounds of data, no drop")
            }
        };
        self.lines.push(format!("{line} [{:?}]", t0.elapsed()));
    }
}

/// A connection that lasted this long is a held one (a WebSocket, a held long-polling
/// request): faults wait for one, so that they hit it.
const SETTLED: Duration = ms(40);

/// How long to wait for something that follows at once (an error after a cut, the
/// announcement after an error).
const WAITING: Duration = ms(5000);

/// Runs `steps` on one session of `p`, then checks once more and prints the timings.
fn run(p: &dyn Platform, steps: &[Step]) {
    let started = Instant::now();
    let mut rig = Rig::start(p);
    for &step in steps {
        rig.step(p, step);
    }
    p.check_once(&rig);
    rig.close_while_stalled();
    let mut report = format!("{}: {} opens in {:?}", rig.name, rig.opens(), started.elapsed());
    for l in &rig.lines {
        report.push_str("\n    ");
        report.push_str(l);
    }
    println!("{report}");
}

const EVERY_FAULT: [Step; 9] = [
    Step::Cut(Close::Fin),
    Step::Cut(Close::Rst),
    Step::Truncate,
    Step::TruncateBootstrap,
    Step::Stall,
    Step::Refuse(Refuse::Rst),
    Step::Refuse(Refuse::Unlisten),
    Step::Refuse(Refuse::Hold),
    Step::Delay,
];

// ---------------------------------------------------------------------------------------
// Plain WebSocket: tests/peers/ws_server.py. `/drops?key=K&n=0` greets every connection with
// "conn:<i>" (i counts the server's connections for K), then echoes. A message the host
// sends while the session waits to reconnect must go out once, after the reconnect.

struct Ws {
    key: String,
    queued: Mutex<Vec<String>>,
}

impl Ws {
    fn new(key: &str) -> Ws {
        Ws { key: key.into(), queued: Mutex::new(Vec::new()) }
    }

    fn next_text(rig: &mut Rig, what: &str) -> String {
        let name = rig.name.clone();
        let (_, e) = rig.feed.wait(&format!("{name}: {what}"), WAITING, |e| {
            e.kind == EventKind::Message || is_drop(e)
        });
        assert_eq!(e.kind, EventKind::Message, "{name}: {what}: {e:?}");
        e.text()
    }
}

impl Platform for Ws {
    fn name(&self) -> String {
        "websocket".into()
    }

    fn upstream(&self) -> u16 {
        support::ws_server().port
    }

    fn config(&self, proxy: &FaultProxy) -> SessionConfig {
        let mut c = SessionConfig::new(proxy.ws_url(&format!("/drops?key={}&n=0", self.key)));
        c.timeouts.ping_interval = PING_INTERVAL;
        c.timeouts.pong_timeout = PONG_TIMEOUT;
        c
    }

    fn liveness(&self) -> Duration {
        PING_INTERVAL + PONG_TIMEOUT
    }

    fn on_open(&self, rig: &mut Rig) {
        let greeting = Ws::next_text(rig, "the greeting");
        let connections = rig.opens() + rig.cut_short.len();
        assert_eq!(greeting, format!("conn:{connections}"), "one server connection per attempt");
        let queued = std::mem::take(&mut *self.queued.lock().unwrap());
        for q in queued {
            assert_eq!(Ws::next_text(rig, "the queued message"), q, "sent after the reconnect");
        }
    }

    fn on_reconnecting(&self, rig: &mut Rig) {
        let q = format!("queued-{}", rig.probe());
        rig.s.send_text(&q).unwrap();
        self.queued.lock().unwrap().push(q);
    }

    fn fresh_data(&self, rig: &mut Rig) {
        let probe = rig.probe();
        let sent = Instant::now();
        rig.s.send_text(&probe).unwrap();
        // The very next message: nothing sent earlier comes back twice.
        assert_eq!(Ws::next_text(rig, "the echo"), probe);
        let latency = rig.latency;
        let rtt = sent.elapsed();
        assert!(rtt >= latency * 2, "an echo through {latency:?} of latency took {rtt:?}");
    }

    fn provoke(&self, rig: &mut Rig) {
        rig.s.send_text(&"x".repeat(300)).unwrap();
    }

    fn check_once(&self, _rig: &Rig) {
        // Done in on_open: greeting i on the i-th open, the queued message once.
    }
}

#[test]
fn websocket_survives_every_fault() {
    run(&Ws::new("every-fault"), &EVERY_FAULT);
}

#[test]
fn websocket_survives_a_server_that_closes_at_once() {
    run(&Ws::new("refusals"), &[Step::Refuse(Refuse::Fin)]);
}

// ---------------------------------------------------------------------------------------
// Socket.IO: the real npm servers (tests/peers/socketio/server.js), socket.io 4 (Engine.IO 4:
// the server pings, the client watches) and socket.io 2 (Engine.IO 3: the client pings).
// The subscription is the namespace join: one CONNECT packet (`40/chat`) per connection, as
// the proxy saw the client's frames, and one `connect` event per open.

struct SocketIo {
    peer: Peer,
    version: u8,
    /// The session's `transport` option: websocket, polling or upgrade.
    transport: &'static str,
}

impl SocketIo {
    fn new(version: u8, transport: &'static str) -> SocketIo {
        let v = version.to_string();
        let (pi, pt) = (EIO_PING_INTERVAL.to_string(), EIO_PING_TIMEOUT.to_string());
        let args =
            ["--version", v.as_str(), "--ping-interval", &pi, "--ping-timeout", &pt, "--quiet"];
        SocketIo { peer: Peer::spawn("socketio/server.js", &args, &[]), version, transport }
    }

    fn echo(&self, rig: &mut Rig, text: &str) {
        let name = rig.name.clone();
        rig.s.emit("/chat", "echo", &json!([text]).to_string(), &[], None).unwrap();
        let (_, e) = rig.feed.wait(&format!("{name}: the echo"), WAITING, |e| {
            (e.kind == EventKind::Event && e.topic == "echo") || is_drop(e)
        });
        assert_eq!(e.kind, EventKind::Event, "{name}: {e:?}");
        let args: Value = serde_json::from_slice(&e.payload).unwrap();
        assert_eq!(args, json!([text]), "{name}: the echo of this emit, nothing older");
    }
}

impl Platform for SocketIo {
    fn name(&self) -> String {
        format!("socket.io {} ({})", self.version, self.transport)
    }

    fn upstream(&self) -> u16 {
        self.peer.port
    }

    fn config(&self, proxy: &FaultProxy) -> SessionConfig {
        let mut c = SessionConfig::new(proxy.http_url("/chat"));
        c.protocol = Protocol::SocketIo;
        c.options.push(("eio".into(), if self.version == 4 { "4" } else { "3" }.into()));
        c.options.push(("transport".into(), self.transport.into()));
        c
    }

    fn liveness(&self) -> Duration {
        ms(EIO_PING_INTERVAL + EIO_PING_TIMEOUT)
    }

    fn fresh_data(&self, rig: &mut Rig) {
        let probe = rig.probe();
        self.echo(rig, &probe);
    }

    fn provoke(&self, rig: &mut Rig) {
        rig.s.emit("/chat", "echo", &json!(["x".repeat(300)]).to_string(), &[], None).unwrap();
    }

    fn check_once(&self, rig: &Rig) {
        let joined = rig
            .feed
            .ev
            .seen
            .iter()
            .filter(|e| {
                e.kind == EventKind::Event && e.topic == "connect" && e.namespace == "/chat"
            })
            .count();
        assert_eq!(joined, rig.opens(), "{}: one `connect` event per open", rig.name);
        // WebSocket frames as the client sent them; over long-polling, the POST bodies (one
        // HTTP connection may carry several requests).
        let texts = client_texts(&rig.proxy);
        let joins: Vec<usize> = (0..texts.len())
            .map(|i| {
                if texts[i].is_empty() {
                    let raw = String::from_utf8_lossy(&rig.proxy.client_bytes(i)).into_owned();
                    raw.matches("40/chat").count()
                } else {
                    texts[i].iter().filter(|m| m.starts_with("40/chat")).count()
                }
            })
            .collect();
        assert_eq!(
            joins.iter().sum::<usize>(),
            rig.opens(),
            "{}: namespace joins per connection {joins:?}: {texts:?}",
            rig.name
        );
        assert!(joins.iter().all(|&n| n <= 1), "{}: {texts:?}", rig.name);
    }
}

#[test]
fn socketio_4_survives_every_fault() {
    run(&SocketIo::new(4, "websocket"), &EVERY_FAULT);
}

#[test]
fn socketio_2_survives_every_fault() {
    run(&SocketIo::new(2, "websocket"), &EVERY_FAULT);
}

#[test]
fn socketio_4_on_long_polling_survives_every_fault() {
    run(&SocketIo::new(4, "polling"), &EVERY_FAULT);
}

#[test]
fn socketio_4_upgrading_from_long_polling_survives_every_fault() {
    run(&SocketIo::new(4, "upgrade"), &EVERY_FAULT);
}

/// The session's log lines about moving from long-polling to a WebSocket.
fn upgrade_log(session: &Session) -> Vec<String> {
    let prefix = format!("session {}: ", session.id());
    support::logged(|r| {
        r.message.starts_with(&prefix)
            && (r.message.contains("upgraded from long-polling")
                || r.message.contains("staying on long-polling"))
    })
    .into_iter()
    .map(|r| r.message)
    .collect()
}

#[test]
fn socketio_4_stays_on_long_polling_when_a_middlebox_resets_websockets() {
    // A proxy in the path resets WebSocket upgrades and lets plain HTTP through: the
    // session opens on long-polling, its upgrade probe fails, and it carries on there,
    // through faults, without a reconnect loop; once WebSockets pass again, the next
    // connection upgrades.
    support::capture_logs();
    let p = SocketIo::new(4, "upgrade");
    let mut rig = Rig::start_with(&p, |proxy| proxy.block_websockets(true));
    let mark = rig.feed.ev.seen.len();
    let until = Instant::now() + p.liveness() * 2;
    while Instant::now() < until {
        p.fresh_data(&mut rig);
    }
    let trouble: Vec<_> = rig.feed.ev.seen[mark..]
        .iter()
        .filter(|e| is_drop(e) || e.is_state(SessionState::Reconnecting))
        .collect();
    assert!(trouble.is_empty(), "a blocked upgrade is not a failure: {trouble:?}");
    let log = upgrade_log(&rig.s);
    assert!(
        log.len() == 1 && log[0].contains("staying on long-polling"),
        "the upgrade was tried and given up: {log:?}"
    );
    rig.step(&p, Step::Cut(Close::Fin));
    rig.proxy.block_websockets(false);
    rig.step(&p, Step::Cut(Close::Rst));
    let log = upgrade_log(&rig.s);
    assert!(log.last().is_some_and(|l| l.contains("upgraded")), "upgraded at last: {log:?}");
    println!("{}: {}", rig.name, rig.lines.join("; "));
}

// ---------------------------------------------------------------------------------------
// thethings.io: tests/peers/socketio/thethings.js (socket.io 2). Each connection logs in over
// REST (through the proxy too), joins /v2, authenticates, subscribes; values stream every
// 50 ms. Its /stats count logins and, per connection, authenticates and subscribes.

const TEMPERATURE: &str = "/me/resources/temperature";

struct TheThings {
    peer: Peer,
}

impl TheThings {
    fn new() -> TheThings {
        let (pi, pt) = (EIO_PING_INTERVAL.to_string(), EIO_PING_TIMEOUT.to_string());
        let args = ["--interval", "50", "--ping-interval", &pi, "--ping-timeout", &pt, "--quiet"];
        TheThings { peer: Peer::spawn("socketio/thethings.js", &args, &[]) }
    }
}

impl Platform for TheThings {
    fn name(&self) -> String {
        "thethings.io".into()
    }

    fn upstream(&self) -> u16 {
        self.peer.port
    }

    fn config(&self, proxy: &FaultProxy) -> SessionConfig {
        let mut c = SessionConfig::new(proxy.http_url("/"));
        c.protocol = Protocol::TheThings;
        for (k, v) in
            [("user", "user@example.com"), ("password", "secret"), ("subscribe", TEMPERATURE)]
        {
            c.options.push((k.into(), v.into()));
        }
        c
    }

    fn liveness(&self) -> Duration {
        ms(EIO_PING_INTERVAL + EIO_PING_TIMEOUT)
    }

    fn fresh_data(&self, rig: &mut Rig) {
        let name = rig.name.clone();
        // Two values: the second one was certainly sent after this call.
        for _ in 0..2 {
            let (_, e) = rig.feed.wait(&format!("{name}: a value"), WAITING, |e| {
                (e.kind == EventKind::Event && e.topic == TEMPERATURE) || is_drop(e)
            });
            assert_eq!(e.kind, EventKind::Event, "{name}: {e:?}");
        }
    }

    fn provoke(&self, _rig: &mut Rig) {
        // Values stream on their own.
    }

    fn check_once(&self, rig: &Rig) {
        let (status, st) = http(self.peer.port, "GET", "/stats", "");
        assert_eq!(status, 200);
        let conns = st["connections"].as_array().unwrap();
        assert_eq!(conns.len(), rig.opens(), "{}: one /v2 connection per open: {st}", rig.name);
        // The login whose answer was cut short counts too.
        let logins = rig.opens() + rig.cut_short.len();
        assert_eq!(st["logins"], logins, "{}: one login per attempt: {st}", rig.name);
        for c in conns {
            let counts = (&c["authenticates"], &c["authOk"], &c["subscribes"]);
            assert_eq!(counts, (&json!(1), &json!(1), &json!(1)), "{}: {st}", rig.name);
        }
    }
}

#[test]
fn thethings_survives_every_fault() {
    run(&TheThings::new(), &EVERY_FAULT);
}

// ---------------------------------------------------------------------------------------
// Atmosphere and Navixy: tests/peers/atmosphere_fixture.py. The fixture writes a server
// heartbeat after 100 ms of silence, so a healthy connection never trips the client's
// 400 ms watchdog; a stalled one must.

const NAVIXY_KEY: &str = "0123456789abcdef0123456789abcdef";

fn atmosphere_fixture(extra: &[&str]) -> Peer {
    let mut args = vec![
        "--apikey",
        NAVIXY_KEY,
        "--user",
        "ops@example.com:s3cret",
        "--client-heartbeat-ms",
        "100",
        "--server-heartbeat-s",
        "0.1",
    ];
    args.extend_from_slice(extra);
    Peer::spawn("atmosphere_fixture.py", &args, &[])
}

fn atmosphere_totals(peer: &Peer) -> Value {
    peer.control("/_control/stats", &json!({}))["totals"].clone()
}

#[test]
fn atmosphere_falls_back_to_long_polling_when_a_middlebox_resets_the_first_websocket() {
    // PROTOCOLS.md §5.7: "If the very first WebSocket attempt fails, atmosphere.js falls back
    // to fallbackTransport". When the network kills the upgrade request after the TCP
    // connect (a reset, as proxies without WebSocket support do), the session must fall
    // back too, not retry the WebSocket forever while long-polling would pass.
    let peer = atmosphere_fixture(&[]);
    let proxy = FaultProxy::start(peer.port);
    proxy.block_websockets(true);
    let lp = TestLoop::start();
    let (h, mut feed) = stamped();
    let mut c = SessionConfig::new(proxy.http_url("/v2/event/subscription"));
    c.protocol = Protocol::Atmosphere;
    c.proxy = ProxySetting::Direct;
    c.reconnect = Reconnect::with_delays(MIN_DELAY, MAX_DELAY);
    let _s = lp.open(c, h).unwrap();
    feed.wait("Open on long-polling", WAITING, |e| e.is_state(SessionState::Open));
    let sent = peer.control("/_control/push", &json!({"message": "through"}));
    assert_eq!(sent["sent_to"].as_array().map(Vec::len), Some(1), "{sent}");
    let (_, m) = feed.wait("the message", WAITING, |e| e.kind == EventKind::Message);
    assert_eq!(m.text(), "through");
    let t = atmosphere_totals(&peer);
    assert_eq!(t["longpoll_connections"], 1, "{t}");
}

/// Raw Atmosphere: the host's own messages; the tracking id is reused on every reconnect
/// (one handshake in all), and the fixture pushes what the test asks.
struct Atmosphere {
    peer: Peer,
    /// The session's `transport` option.
    transport: &'static str,
}

impl Platform for Atmosphere {
    fn name(&self) -> String {
        format!("atmosphere ({})", self.transport)
    }

    fn upstream(&self) -> u16 {
        self.peer.port
    }

    fn config(&self, proxy: &FaultProxy) -> SessionConfig {
        let mut c = SessionConfig::new(proxy.http_url("/v2/event/subscription"));
        c.protocol = Protocol::Atmosphere;
        c.options.push(("watchdog_ms".into(), WATCHDOG_MS.to_string()));
        c.options.push(("transport".into(), self.transport.into()));
        c
    }

    fn liveness(&self) -> Duration {
        ms(WATCHDOG_MS)
    }

    fn fresh_data(&self, rig: &mut Rig) {
        let name = rig.name.clone();
        let probe = rig.probe();
        if self.transport == "long-polling" {
            // Long-polling has no acknowledgement: a message the server writes into a GET
            // that a fault already cut is lost (at most once, by the protocol). Wait for a
            // GET made after this point, so the push meets the live connection's poll.
            let polls = atmosphere_totals(&self.peer)["polls"].as_u64().unwrap_or(0);
            let r = self.peer.control(
                &format!("/_control/wait?key=polls&at_least={}&timeout=5", polls + 1),
                &json!({}),
            );
            assert_eq!(r["ok"], true, "{name}: no new poll: {r}");
        }
        let sent = self.peer.control("/_control/push", &json!({"message": probe}));
        assert!(!sent["sent_to"].as_array().unwrap().is_empty(), "{name}: {sent}");
        let (_, e) = rig.feed.wait(&format!("{name}: the pushed message"), WAITING, |e| {
            e.kind == EventKind::Message || is_drop(e)
        });
        assert_eq!(
            (e.kind, e.text()),
            (EventKind::Message, probe),
            "{name}: the very next message"
        );
    }

    fn provoke(&self, _rig: &mut Rig) {
        self.peer.control("/_control/push", &json!({"message": "x".repeat(300)}));
    }

    fn check_once(&self, rig: &Rig) {
        let t = atmosphere_totals(&self.peer);
        let connections = rig.opens() + rig.cut_short.len();
        if self.transport == "long-polling" {
            // The server sees only GETs: a cut poll is not a closed connection to it, so a
            // reconnect with the same tracking id may continue the connection it knows.
            let seen = t["connections"].as_u64().unwrap_or(0);
            assert!(seen as usize <= connections, "{}: {t}", rig.name);
        } else {
            assert_eq!(t["connections"], connections, "{}: {t}", rig.name);
        }
        assert_eq!(t["handshakes_sent"], 1, "{}: the tracking id is reused: {t}", rig.name);
    }
}

#[test]
fn atmosphere_survives_every_fault() {
    run(&Atmosphere { peer: atmosphere_fixture(&[]), transport: "websocket" }, &EVERY_FAULT);
}

/// What a quiet long-polling feed must not do: an empty answer to a held GET (the
/// server's hold time passed with nothing to send) proves the server alive, so it must
/// reset the receive watchdog instead of letting it fail the connection.
const EMPTY_POLLS: &str = "an empty poll answer must reset the Atmosphere receive watchdog";

#[test]
fn a_quiet_atmosphere_long_polling_feed_stays_open_while_the_server_answers_its_polls() {
    // Long-polling has no server heartbeats (PROTOCOLS.md §5.4 describes them for open
    // streams): the fixture answers a held GET with an empty 200 after 100 ms. Three
    // watchdog periods of such answers, and nothing else, must not look like a dead server.
    let peer = atmosphere_fixture(&["--hold-s", "0.1"]);
    let lp = TestLoop::start();
    let (h, mut feed) = stamped();
    let mut c = SessionConfig::new(peer.http_url("/v2/event/subscription"));
    c.protocol = Protocol::Atmosphere;
    c.options.push(("transport".into(), "long-polling".into()));
    c.options.push(("watchdog_ms".into(), WATCHDOG_MS.to_string()));
    let _s = lp.open(c, h).unwrap();
    feed.wait("open", WAITING, |e| e.is_state(SessionState::Open));
    let window = ms(WATCHDOG_MS * 3);
    let end = Instant::now() + window;
    while !feed.ev.quiet_for(end.saturating_duration_since(Instant::now())) {}
    let polls = peer.control("/_control/stats", &json!({}))["totals"]["polls"].clone();
    assert!(polls.as_u64() >= Some(5), "the fixture answered polls meanwhile: {polls}");
    let errors: Vec<_> = feed.ev.seen.iter().filter(|e| is_drop(e)).collect();
    assert!(errors.is_empty(), "{EMPTY_POLLS}: {errors:?}");
}

#[test]
fn atmosphere_on_long_polling_survives_every_fault() {
    // Held GETs come back empty every 100 ms, which must keep the watchdog quiet. A
    // truncated first answer cannot be made here: the answers of a quiet long-polling feed
    // are empty, so there is nothing after the head to cut (the Navixy run covers it).
    let peer = atmosphere_fixture(&["--hold-s", "0.1"]);
    let faults: Vec<Step> =
        EVERY_FAULT.into_iter().filter(|s| !matches!(s, Step::TruncateBootstrap)).collect();
    run(&Atmosphere { peer, transport: "long-polling" }, &faults);
}

/// Navixy: REST login (through the proxy), then the Atmosphere socket and one subscribe
/// action per connection; the session hash is kept across reconnects.
struct Navixy {
    peer: Peer,
    /// The session's `transport` option.
    transport: &'static str,
}

impl Platform for Navixy {
    fn name(&self) -> String {
        format!("navixy ({})", self.transport)
    }

    fn upstream(&self) -> u16 {
        self.peer.port
    }

    fn config(&self, proxy: &FaultProxy) -> SessionConfig {
        let mut c = SessionConfig::new(proxy.http_url("/v2"));
        c.protocol = Protocol::Navixy;
        for (k, v) in [
            ("user", "ops@example.com"),
            ("password", "s3cret"),
            ("subscribe", "state_batch"),
            ("watchdog_ms", &WATCHDOG_MS.to_string()),
            ("transport", self.transport),
        ] {
            c.options.push((k.into(), v.into()));
        }
        c
    }

    fn liveness(&self) -> Duration {
        ms(WATCHDOG_MS)
    }

    fn fresh_data(&self, rig: &mut Rig) {
        let name = rig.name.clone();
        let sent = self.peer.control("/_control/event", &json!({"event": "state_batch"}));
        assert!(sent["sent"].as_u64() >= Some(1), "{name}: {sent}");
        let (_, e) = rig.feed.wait(&format!("{name}: a state_batch"), WAITING, |e| {
            (e.kind == EventKind::Event && e.topic == "state_batch") || is_drop(e)
        });
        assert_eq!(e.kind, EventKind::Event, "{name}: {e:?}");
    }

    fn provoke(&self, _rig: &mut Rig) {
        self.peer.control("/_control/event", &json!({"event": "state_batch"}));
    }

    fn check_once(&self, rig: &Rig) {
        let t = atmosphere_totals(&self.peer);
        // The connection whose first answer was cut short had subscribed too.
        let connections = rig.opens() + rig.cut_short.len();
        assert_eq!(t["subscribes"], connections, "{}: one subscribe per connection: {t}", rig.name);
        assert_eq!(t["subscribe_errors"], 0, "{}: {t}", rig.name);
        assert_eq!(t["auth_ok"], 1, "{}: the session hash is kept: {t}", rig.name);
        if self.transport == "websocket" {
            // (A long-polling "connection" of the fixture outlives a cut GET.)
            assert_eq!(t["connections"], connections, "{}: {t}", rig.name);
        }
    }
}

#[test]
fn navixy_survives_every_fault() {
    run(&Navixy { peer: atmosphere_fixture(&[]), transport: "websocket" }, &EVERY_FAULT);
}

#[test]
fn navixy_on_long_polling_survives_every_fault() {
    // The Atmosphere long-polling transport under every fault. The fixture sends a
    // state_batch every 100 ms, so the poll answers are never empty (see EMPTY_POLLS).
    let peer = atmosphere_fixture(&["--hold-s", "0.1", "--event-interval-s", "0.1"]);
    run(&Navixy { peer, transport: "long-polling" }, &EVERY_FAULT);
}

// ---------------------------------------------------------------------------------------
// deCONZ: tests/peers/deconz_fixture.py. The session reads the WebSocket port from the REST
// config, so two proxies: one on the REST port that rewrites the WebSocket port in the
// config answer into the second proxy's port (same length: both are 5-digit ephemeral
// ports), and the faulted one on the WebSocket, where the long-lived connection is.

const DECONZ_KEY: &str = "0123ABCDEF";

struct Deconz {
    peer: Peer,
    ws_port: u16,
    rest: FaultProxy,
}

impl Deconz {
    fn new() -> Deconz {
        let peer = Peer::spawn("deconz_fixture.py", &[], &[]);
        let (_, st) = http(peer.port, "GET", "/control/stats", "");
        let ws_port = u16::try_from(st["ws_port"].as_u64().expect("ws_port")).unwrap();
        let rest = FaultProxy::start(peer.port);
        Deconz { peer, ws_port, rest }
    }

    fn stats(&self) -> Value {
        let (status, st) = http(self.peer.port, "GET", "/control/stats", "");
        assert_eq!(status, 200, "{st}");
        st
    }
}

impl Platform for Deconz {
    fn name(&self) -> String {
        "deconz".into()
    }

    fn upstream(&self) -> u16 {
        self.ws_port
    }

    fn config(&self, proxy: &FaultProxy) -> SessionConfig {
        self.rest.rewrite(self.ws_port.to_string().as_bytes(), proxy.port().to_string().as_bytes());
        let mut c = SessionConfig::new(format!("http://127.0.0.1:{}", self.rest.port()));
        c.protocol = Protocol::Deconz;
        c.options.push(("apikey".into(), DECONZ_KEY.into()));
        c.timeouts.ping_interval = PING_INTERVAL;
        c.timeouts.pong_timeout = PONG_TIMEOUT;
        c
    }

    fn liveness(&self) -> Duration {
        PING_INTERVAL + PONG_TIMEOUT
    }

    fn fresh_data(&self, rig: &mut Rig) {
        let name = rig.name.clone();
        let id = rig.probe();
        let body = json!({"t":"event","e":"changed","r":"sensors","id":id,"state":{"on":true}});
        let (status, _) = http(self.peer.port, "POST", "/control/send", &body.to_string());
        assert_eq!(status, 200);
        let topic = format!("sensors/{id}");
        let (_, e) = rig.feed.wait(&format!("{name}: {topic}"), WAITING, |e| {
            e.kind == EventKind::Event || is_drop(e)
        });
        assert_eq!((e.kind, e.topic.as_str()), (EventKind::Event, topic.as_str()), "{name}");
    }

    fn provoke(&self, _rig: &mut Rig) {
        let body = json!({"t":"event","e":"changed","r":"lights","id":"1","name":"x".repeat(300)});
        http(self.peer.port, "POST", "/control/send", &body.to_string());
    }

    fn bootstrap_proxy(&self) -> Option<&FaultProxy> {
        Some(&self.rest)
    }

    fn check_once(&self, rig: &Rig) {
        let st = self.stats();
        assert_eq!(st["ws_connects"], rig.opens(), "{}: one WebSocket per open: {st}", rig.name);
        // The whole bootstrap once per attempt: the port is read again every time.
        assert_eq!(st["config_reads"], rig.attempts(), "{}: {st}", rig.name);
        let rewrites = self.rest.counts().rewrites;
        assert_eq!(rewrites, rig.attempts(), "{}: every config answer went through", rig.name);
    }
}

#[test]
fn deconz_survives_every_fault() {
    run(&Deconz::new(), &EVERY_FAULT);
}

// ---------------------------------------------------------------------------------------
// Igtimi: tests/peers/igtimi_fixture.py. The session reads the WebSocket servers from the
// server lister, so two proxies as for deCONZ: the lister's rewrites the server's port in
// the list into the faulted proxy's. The server sends its heartbeat every 100 ms, data
// every 50 ms; the session's watchdog is 400 ms. The subscription is the configuration
// block (the devices and the token): once per connection, as the proxy saw the client's
// frames.

const IGTIMI_DEVICE: &str = "GA-DK-AAAD";

struct Igtimi {
    /// Kept for its lifetime: the fixture stops when this is dropped.
    _peer: Peer,
    ws_port: u16,
    lister: FaultProxy,
}

impl Igtimi {
    fn new() -> Igtimi {
        let args = ["--servers", "good", "--heartbeat", "100", "--data", "50"];
        let peer = Peer::spawn("igtimi_fixture.py", &args, &[]);
        let (status, list) = http(peer.port, "GET", "/server_listers/web_sockets", "");
        assert_eq!(status, 200, "{list}");
        let url = list["web_socket_servers"][0].as_str().expect("a server").to_string();
        let port = url.trim_start_matches("ws://127.0.0.1:").split('/').next().unwrap();
        let ws_port = port.parse().unwrap_or_else(|_| panic!("no port in {url}"));
        let lister = FaultProxy::start(peer.port);
        Igtimi { _peer: peer, ws_port, lister }
    }
}

impl Platform for Igtimi {
    fn name(&self) -> String {
        "igtimi".into()
    }

    fn upstream(&self) -> u16 {
        self.ws_port
    }

    fn config(&self, proxy: &FaultProxy) -> SessionConfig {
        self.lister
            .rewrite(self.ws_port.to_string().as_bytes(), proxy.port().to_string().as_bytes());
        let mut c = SessionConfig::new(self.lister.http_url("/"));
        c.protocol = Protocol::Igtimi;
        for (k, v) in [
            ("token", "tok-good"),
            ("device", IGTIMI_DEVICE),
            ("heartbeat_ms", "100"),
            ("watchdog_ms", &WATCHDOG_MS.to_string()),
        ] {
            c.options.push((k.into(), v.into()));
        }
        c
    }

    fn liveness(&self) -> Duration {
        ms(WATCHDOG_MS)
    }

    fn fresh_data(&self, rig: &mut Rig) {
        let name = rig.name.clone();
        // Two data frames: the second was certainly sent after this call.
        for _ in 0..2 {
            let (_, e) = rig.feed.wait(&format!("{name}: data"), WAITING, |e| {
                (e.kind == EventKind::Event && e.topic == format!("{IGTIMI_DEVICE}/9"))
                    || is_drop(e)
            });
            assert_eq!(e.kind, EventKind::Event, "{name}: {e:?}");
        }
    }

    fn provoke(&self, _rig: &mut Rig) {
        // Data and heartbeats flow on their own.
    }

    fn bootstrap_proxy(&self) -> Option<&FaultProxy> {
        Some(&self.lister)
    }

    fn check_once(&self, rig: &Rig) {
        let texts = client_texts(&rig.proxy);
        let blocks: Vec<usize> = texts
            .iter()
            .map(|t| {
                t.iter()
                    .filter(|m| {
                        serde_json::from_str::<Value>(m).is_ok_and(|v| v.get("devices").is_some())
                    })
                    .count()
            })
            .collect();
        assert!(blocks.iter().all(|&n| n <= 1), "{}: blocks per connection {blocks:?}", rig.name);
        assert_eq!(
            blocks.iter().sum::<usize>(),
            rig.opens(),
            "{}: {blocks:?}: {texts:?}",
            rig.name
        );
        // Every attempt reads the server list again.
        let lists = self.lister.counts().rewrites;
        assert_eq!(lists, rig.attempts(), "{}: one server list per attempt", rig.name);
    }
}

#[test]
fn igtimi_survives_every_fault() {
    run(&Igtimi::new(), &EVERY_FAULT);
}

// ---------------------------------------------------------------------------------------
// SmartServer: tests/peers/smartserver_fixture.py. REST login (the cmsSID cookie), the
// subscription PUT, then the general-purpose WebSocket, all on one port behind the proxy;
// the fixture's control port stays direct. The subscription is the PUT: one per connection
// that opened (and one more for a connection whose PUT answer was cut short).

const SS_USER: &str = "gateway";
const SS_PASSWORD: &str = "secret-pw-7f3a";
const SS_TEMP: &str = "17q4bn7/lon/2.1/Joystick/0/nvoValue";

struct SmartServer {
    peer: Peer,
    ctl: u16,
}

impl SmartServer {
    fn new() -> SmartServer {
        let args = ["--user", SS_USER, "--password", SS_PASSWORD];
        let peer = Peer::spawn("smartserver_fixture.py", &args, &[]);
        let line = peer.next_line(support::WAIT);
        let ctl = line
            .strip_prefix("ctl ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("smartserver fixture: bad second line {line:?}"));
        SmartServer { peer, ctl }
    }

    fn update(&self, value: Value) -> Value {
        let body = json!({"updates": [[SS_TEMP, value]]}).to_string();
        let (status, answer) = http(self.ctl, "POST", "/_ctl/update", &body);
        assert_eq!(status, 200, "{answer}");
        answer
    }
}

impl Platform for SmartServer {
    fn name(&self) -> String {
        "smartserver".into()
    }

    fn upstream(&self) -> u16 {
        self.peer.port
    }

    fn config(&self, proxy: &FaultProxy) -> SessionConfig {
        let mut c = SessionConfig::new(proxy.http_url("/"));
        c.protocol = Protocol::SmartServer;
        for (k, v) in [("user", SS_USER), ("password", SS_PASSWORD), ("subscribe", SS_TEMP)] {
            c.options.push((k.into(), v.into()));
        }
        c.timeouts.ping_interval = PING_INTERVAL;
        c.timeouts.pong_timeout = PONG_TIMEOUT;
        c
    }

    fn liveness(&self) -> Duration {
        PING_INTERVAL + PONG_TIMEOUT
    }

    fn fresh_data(&self, rig: &mut Rig) {
        let name = rig.name.clone();
        rig.probes += 1;
        let n = rig.probes;
        let sent = self.update(json!(n));
        assert!(sent["sent"].as_u64() >= Some(1), "{name}: {sent}");
        let (_, e) = rig.feed.wait(&format!("{name}: update {n}"), WAITING, |e| {
            (e.kind == EventKind::Event && e.topic == SS_TEMP) || is_drop(e)
        });
        assert_eq!(e.kind, EventKind::Event, "{name}: {e:?}");
        let v: Value = serde_json::from_slice(&e.payload).unwrap();
        assert_eq!(v["value"], n, "{name}: this update, not an older one: {v}");
    }

    fn provoke(&self, _rig: &mut Rig) {
        self.update(json!("x".repeat(300)));
    }

    fn truncate_first_answer(&self, proxy: &FaultProxy) {
        // The next request is the subscription PUT (the cookie is kept), and its answer, a
        // 204, has no body: cut inside the status line.
        proxy.truncate_next_at(20);
    }

    fn check_once(&self, rig: &Rig) {
        let (_, st) = http(self.ctl, "GET", "/_ctl/stats", "");
        let puts = st["puts"].as_array().unwrap();
        assert!(puts.iter().all(|p| p["status"] == 204 && p["body"] == json!([SS_TEMP])), "{st}");
        let cut_puts = rig.cut_short.iter().filter(|l| l.starts_with("PUT ")).count();
        let name = &rig.name;
        assert_eq!(puts.len(), rig.opens() + cut_puts, "{name}: one PUT per connection: {st}");
        assert_eq!(st["ws_opens"], rig.opens(), "{name}: one socket per open: {st}");
        assert_eq!(st["login_failures"], 0, "{name}: {st}");
    }
}

#[test]
fn smartserver_survives_every_fault() {
    run(&SmartServer::new(), &EVERY_FAULT);
}

// ---------------------------------------------------------------------------------------
// The proxy itself: every fault does what the module documentation says, against a plain
// TCP echo server.

/// A TCP echo server on 127.0.0.1 whose threads end when it is dropped.
struct Echo {
    port: u16,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Echo {
    fn start() -> Echo {
        use std::sync::atomic::{AtomicBool, Ordering};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let mine = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut conns = Vec::new();
            while !mine.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((mut s, _)) => {
                        s.set_nonblocking(false).unwrap();
                        s.set_read_timeout(Some(ms(20))).unwrap();
                        let stop = Arc::clone(&mine);
                        conns.push(std::thread::spawn(move || {
                            let mut buf = [0u8; 4096];
                            while !stop.load(Ordering::SeqCst) {
                                match s.read(&mut buf) {
                                    Ok(0) => break,
                                    Ok(n) => {
                                        if s.write_all(&buf[..n]).is_err() {
                                            break;
                                        }
                                    }
                                    Err(e)
                                        if matches!(
                                            e.kind(),
                                            std::io::ErrorKind::WouldBlock
                                                | std::io::ErrorKind::TimedOut
                                        ) => {}
                                    Err(_) => break,
                                }
                            }
                        }));
                    }
                    Err(_) => std::thread::sleep(ms(2)),
                }
            }
            for c in conns {
                let _ = c.join();
            }
        });
        Echo { port, stop, thread: Some(thread) }
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn client(proxy: &FaultProxy) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", proxy.port())).unwrap();
    s.set_read_timeout(Some(WAITING)).unwrap();
    s
}

/// Reads exactly `n` bytes (bounded by the read timeout).
fn read_n(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    s.read_exact(&mut buf).unwrap();
    buf
}

/// What the next read brings: `Ok(bytes)` (empty at end of stream) or the error kind.
fn read_some(s: &mut TcpStream) -> Result<Vec<u8>, std::io::ErrorKind> {
    let mut buf = [0u8; 4096];
    s.read(&mut buf).map(|n| buf[..n].to_vec()).map_err(|e| e.kind())
}

#[test]
fn the_proxy_forwards_cuts_stalls_delays_and_truncates() {
    use std::io::ErrorKind;
    let echo = Echo::start();
    let proxy = FaultProxy::start(echo.port);

    // pass, and what the client sent is recorded
    let mut a = client(&proxy);
    a.write_all(b"hello").unwrap();
    assert_eq!(read_n(&mut a, 5), b"hello");
    assert_eq!(proxy.client_bytes(0), b"hello");
    let c = proxy.counts();
    assert_eq!((c.accepted, c.forwarded, c.live), (1, 1, 1), "{c:?}");

    // cut: FIN, then RST
    assert_eq!(proxy.cut(Close::Fin), 1);
    assert_eq!(read_some(&mut a), Ok(Vec::new()), "FIN: end of stream");
    let mut b = client(&proxy);
    b.write_all(b"x").unwrap();
    assert_eq!(read_n(&mut b, 1), b"x");
    proxy.wait("one live connection", WAITING, |c| c.live == 1);
    assert_eq!(proxy.cut(Close::Rst), 1);
    assert_eq!(read_some(&mut b), Err(ErrorKind::ConnectionReset), "RST: a reset");
    proxy.wait("both cuts counted", WAITING, |c| c.cut == 2 && c.live == 0);

    // stall: bytes are held, not lost; resume lets them through
    let mut s = client(&proxy);
    s.write_all(b"1").unwrap();
    assert_eq!(read_n(&mut s, 1), b"1");
    assert_eq!(proxy.stall(), 1);
    s.write_all(b"held").unwrap();
    s.set_read_timeout(Some(ms(300))).unwrap();
    let r = read_some(&mut s);
    assert!(matches!(r, Err(ErrorKind::WouldBlock | ErrorKind::TimedOut)), "stalled: {r:?}");
    assert_eq!(proxy.resume(), 1);
    s.set_read_timeout(Some(WAITING)).unwrap();
    assert_eq!(read_n(&mut s, 4), b"held");

    // delay: both directions, every chunk
    proxy.delay(ms(100));
    let t = Instant::now();
    s.write_all(b"slow").unwrap();
    assert_eq!(read_n(&mut s, 4), b"slow");
    assert!(t.elapsed() >= ms(200), "a round trip through 100 ms each way: {:?}", t.elapsed());
    proxy.pass();

    // truncate: n more bytes downstream, then the end
    assert_eq!(proxy.truncate(3), 1);
    s.write_all(b"abcdef").unwrap();
    assert_eq!(read_n(&mut s, 3), b"abc");
    assert_eq!(read_some(&mut s), Ok(Vec::new()), "truncated: end of stream");

    // truncate_next: the first head and n bytes of the next connection, then the end
    proxy.truncate_next(2);
    let mut h = client(&proxy);
    h.write_all(b"HTTP/1.1 200 OK\r\nA: b\r\n\r\nbody").unwrap();
    let mut got = Vec::new();
    h.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"HTTP/1.1 200 OK\r\nA: b\r\n\r\nbo");

    // rewrite, same length
    proxy.rewrite(b"12345", b"54321");
    let mut w = client(&proxy);
    w.write_all(b"port 12345!").unwrap();
    assert_eq!(read_n(&mut w, 11), b"port 54321!");
    assert_eq!(proxy.counts().rewrites, 1);

    // block_websockets: an upgrade request is reset, plain HTTP passes
    proxy.block_websockets(true);
    let mut u = client(&proxy);
    u.write_all(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n").unwrap();
    assert_eq!(read_some(&mut u), Err(ErrorKind::ConnectionReset), "upgrade reset");
    let mut g = client(&proxy);
    g.write_all(b"GET /plain HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert_eq!(read_n(&mut g, 9), b"GET /plai", "plain HTTP forwarded");
    proxy.block_websockets(false);

    // Dropping the proxy ends its connections and threads.
    let t = Instant::now();
    drop(proxy);
    assert!(t.elapsed() < ms(1000), "the proxy took {:?} to stop", t.elapsed());
    assert_eq!(read_some(&mut w), Ok(Vec::new()), "closed with the proxy");
}

#[test]
fn the_proxy_refuses_in_every_way() {
    use std::io::ErrorKind;
    let echo = Echo::start();
    let proxy = FaultProxy::start(echo.port);

    proxy.refuse(Refuse::Fin);
    let mut f = client(&proxy);
    assert_eq!(read_some(&mut f), Ok(Vec::new()), "refused with FIN");
    proxy.refuse(Refuse::Rst);
    let mut r = client(&proxy);
    assert_eq!(read_some(&mut r), Err(ErrorKind::ConnectionReset), "refused with RST");
    proxy.wait("two refused", WAITING, |c| c.refused == 2 && c.forwarded == 0);

    proxy.refuse(Refuse::Hold);
    let mut h = client(&proxy);
    h.write_all(b"anyone?").unwrap();
    proxy.wait("one held", WAITING, |c| c.held == 1);
    h.set_read_timeout(Some(ms(300))).unwrap();
    let got = read_some(&mut h);
    assert!(matches!(got, Err(ErrorKind::WouldBlock | ErrorKind::TimedOut)), "held: {got:?}");

    proxy.refuse(Refuse::Unlisten);
    // The listener goes within a few milliseconds; connecting is then refused.
    let end = Instant::now() + WAITING;
    loop {
        match TcpStream::connect(("127.0.0.1", proxy.port())) {
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
                break;
            }
            Ok(_) => assert!(Instant::now() < end, "the listener never went away"),
        }
        std::thread::sleep(ms(5));
    }

    proxy.pass();
    h.set_read_timeout(Some(WAITING)).unwrap();
    // Closed with what the client sent still unread: the kernel resets it.
    let got = read_some(&mut h);
    assert_eq!(got, Err(ErrorKind::ConnectionReset), "passing again closes the held connection");
    // The listener comes back on the same port.
    let end = Instant::now() + WAITING;
    let mut p = loop {
        match TcpStream::connect(("127.0.0.1", proxy.port())) {
            Ok(s) => break s,
            Err(e) => assert!(Instant::now() < end, "not listening again: {e}"),
        }
        std::thread::sleep(ms(5));
    };
    p.set_read_timeout(Some(WAITING)).unwrap();
    p.write_all(b"back").unwrap();
    assert_eq!(read_n(&mut p, 4), b"back");
}

// ---------------------------------------------------------------------------------------
// lfcat (the C program, under AddressSanitizer) through the proxy: a cut, and it keeps
// printing.

/// Kills the child when dropped (a failing test leaves nothing behind).
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
#[ignore = "needs `make asan`"]
fn lfcat_keeps_printing_events_after_a_cut() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    let lfcat = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("build/asan/lfcat");
    assert!(lfcat.exists(), "{} is missing: run `make asan` first", lfcat.display());
    let things = TheThings::new();
    let proxy = FaultProxy::start(things.peer.port);
    const COUNT: usize = 30;
    let mut child = Child(
        Command::new(&lfcat)
            .args(["-p", "thethings", "--user", "user@example.com", "--password", "secret"])
            .args(["--subscribe", TEMPERATURE, "--reconnect", "50,200"])
            .args(["--count", &COUNT.to_string(), "--timeout", "20"])
            .arg(proxy.http_url("/"))
            .env_remove("http_proxy")
            .env_remove("https_proxy")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let (tx, lines) = std::sync::mpsc::channel();
    let stdout = child.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut stderr = child.0.stderr.take().unwrap();
    let errors = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let value = |line: &str| -> u64 {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
        assert_eq!(v["topic"], TEMPERATURE, "{line}");
        v["data"][0]["value"].as_u64().unwrap_or_else(|| panic!("no value in {line}"))
    };
    let mut values = Vec::new();
    for _ in 0..5 {
        values.push(value(&lines.recv_timeout(WAITING).expect("lfcat prints the feed")));
    }
    proxy.wait_settled(SETTLED, WAITING);
    assert!(proxy.cut(Close::Rst) >= 1);
    let cut_at = values.len();
    while values.len() < COUNT {
        let line = lines.recv_timeout(CONNECT + WAITING).unwrap_or_else(|e| {
            panic!("lfcat stopped printing after {} lines ({e}); {values:?}", values.len())
        });
        values.push(value(&line));
    }
    let end = Instant::now() + WAITING;
    let status = loop {
        if let Some(st) = child.0.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < end, "lfcat did not exit after {COUNT} events");
        std::thread::sleep(ms(20));
    };
    let stderr = errors.join().unwrap();
    assert!(status.success(), "lfcat: {status:?}\n{stderr}");
    assert!(stderr.contains("lfcat: reconnecting:"), "the reconnect is reported:\n{stderr}");
    // Values count from 1 per subscription: after the cut they start again.
    let restart = values[cut_at..].iter().position(|&v| v == 1);
    assert!(restart.is_some(), "a second subscription after the cut: {values:?}");
    assert!(restart.unwrap() + cut_at + 1 < COUNT, "and values after it: {values:?}");
    let (_, st) = http(things.peer.port, "GET", "/stats", "");
    assert_eq!(st["logins"], 2, "{st}");
    let subscribes: Vec<_> =
        st["connections"].as_array().unwrap().iter().map(|c| c["subscribes"].clone()).collect();
    assert_eq!(subscribes, [json!(1), json!(1)], "subscribed once per connection: {st}");
}
