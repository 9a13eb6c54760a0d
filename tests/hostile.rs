//! Hostile servers: fragment storms, ping floods, invalid UTF-8, frames announcing huge
//! lengths, bytes trickled one per second, connections dropped without a close handshake,
//! garbage after the upgrade. Each runs on its own session next to a healthy one on the
//! same loop, which keeps echoing before, during and after; each must end in one specific
//! error, then State(Closed). The floods and storms also check that the process's memory
//! (VmRSS) stays within a bound while the peer sends far more than that.
//!
//! The hostile peers are tests/peers/raw_fixture.py (see its docstring), written from
//! RFC 6455.
//!
//! Memory is the whole process's, so the tests that measure it run alone (an exclusive
//! lock); the others share the lock and allocate little.

mod support;

use livefeed::{ErrorCode, EventKind, Session, SessionConfig, SessionState};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};
use support::{Ev, Events, TestLoop, collector, echo_text, raw_fixture, ws_server};

const MIB: u64 = 1 << 20;

/// The most the process may grow while one hostile peer runs: the small limits below
/// allow a few MiB per connection (a 64 KiB message, a write buffer capped at about
/// 2 MiB); the rest is slack for the allocator. Measured: at most +2.3 MiB.
const RSS_BOUND: u64 = 8 * MIB;

/// The longest a healthy echo may take while a hostile peer runs on the same loop (an
/// echo takes about a millisecond; a starved loop takes as long as the flood lasts).
const RESPONSIVE: Duration = Duration::from_secs(1);

static MEMORY: RwLock<()> = RwLock::new(());

/// For tests that measure memory: nothing else in this process runs meanwhile.
fn alone() -> RwLockWriteGuard<'static, ()> {
    MEMORY.write().unwrap_or_else(|e| e.into_inner())
}

/// For the other tests: they may run together, never beside a memory measurement.
fn shared() -> RwLockReadGuard<'static, ()> {
    MEMORY.read().unwrap_or_else(|e| e.into_inner())
}

/// The process's resident set size in bytes (`VmRSS` in /proc/self/status).
fn vm_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("a VmRSS line");
    let kib: u64 = line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).expect("VmRSS kB");
    kib * 1024
}

/// Samples [`vm_rss`] every 5 ms on its own thread (the test thread may be blocked in a
/// wait while the loop is busy) until [`PeakRss::stop`]; returns the highest.
struct PeakRss {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<u64>,
}

impl PeakRss {
    fn start() -> PeakRss {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut peak = vm_rss();
            while !flag.load(Ordering::Relaxed) {
                // A sampling period, not a synchronisation.
                std::thread::sleep(Duration::from_millis(5));
                peak = peak.max(vm_rss());
            }
            peak
        });
        PeakRss { stop, thread }
    }

    fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("the sampler does not panic").max(vm_rss())
    }
}

/// A session on the raw fixture with small limits and short deadlines: 64 KiB frames and
/// messages, 1 s to finish the upgrade, a ping after 500 ms without a complete frame and
/// 500 ms for the answer.
fn hostile_cfg(path: &str) -> SessionConfig {
    let mut cfg = SessionConfig::new(raw_fixture().0.ws_url(path));
    cfg.limits.max_frame = 64 << 10;
    cfg.limits.max_message = 64 << 10;
    cfg.limits.max_http_head = 16 << 10;
    cfg.timeouts.handshake = Duration::from_secs(1);
    cfg.timeouts.ping_interval = Duration::from_millis(500);
    cfg.timeouts.pong_timeout = Duration::from_millis(500);
    cfg
}

/// What happened while one hostile session ran.
struct Run {
    url: String,
    /// The hostile session's events, each with the time since it was opened.
    events: Vec<(Duration, Ev)>,
    /// Healthy echoes completed while the hostile session was open or connecting.
    echoes: usize,
    /// The slowest of those echoes.
    slowest_echo: Duration,
    /// VmRSS before the hostile session was opened, and the highest seen while it ran.
    rss_before: u64,
    rss_peak: u64,
}

impl Run {
    fn evs(&self) -> Vec<&Ev> {
        self.events.iter().map(|(_, e)| e).collect()
    }

    /// Checks the events are Connecting, `prelude`, one Error with `code` and a message,
    /// Closed; returns the Error.
    fn ends_with(&self, code: ErrorCode, prelude: &[(EventKind, &str)]) -> &Ev {
        let (url, evs) = (&self.url, self.evs());
        assert!(evs[0].is_state(SessionState::Connecting), "{url}: {evs:?}");
        let n = prelude.len();
        assert_eq!(evs.len(), n + 3, "{url}: Connecting, {prelude:?}, Error, Closed; got {evs:?}");
        for (e, (kind, text)) in evs[1..=n].iter().zip(prelude) {
            assert_eq!((e.kind, e.text().as_str()), (*kind, *text), "{url}: {evs:?}");
        }
        let err = evs[n + 1];
        assert_eq!(err.kind, EventKind::Error, "{url}: {evs:?}");
        assert_eq!(err.error, Some(code), "{url}: {}", err.message);
        assert!(!err.message.is_empty(), "{url}: the error says what happened");
        assert!(evs[n + 2].is_state(SessionState::Closed), "{url}: {evs:?}");
        err
    }

    /// When the hostile session closed, counted from its opening.
    fn elapsed(&self) -> Duration {
        self.events.last().map(|(t, _)| *t).unwrap_or_default()
    }

    fn rss_growth(&self) -> u64 {
        self.rss_peak.saturating_sub(self.rss_before)
    }

    fn assert_memory_bounded(&self) {
        assert!(
            self.rss_growth() < RSS_BOUND,
            "{}: VmRSS grew by {} KiB (from {} KiB), more than {} KiB",
            self.url,
            self.rss_growth() >> 10,
            self.rss_before >> 10,
            RSS_BOUND >> 10
        );
    }

    fn assert_responsive(&self) {
        assert!(self.echoes > 0, "{}: no healthy echo completed meanwhile", self.url);
        assert!(
            self.slowest_echo < RESPONSIVE,
            "{}: a healthy echo on the same loop took {:?} (of {} echoes): the hostile \
             session kept the loop thread busy",
            self.url,
            self.slowest_echo,
            self.echoes
        );
    }

    fn print(&self) {
        println!(
            "{}: closed after {:?}; {} healthy echoes meanwhile, slowest {:?}; VmRSS {} KiB \
             before, peak {} KiB (+{} KiB)",
            self.url,
            self.elapsed(),
            self.echoes,
            self.slowest_echo,
            self.rss_before >> 10,
            self.rss_peak >> 10,
            self.rss_growth() >> 10
        );
    }
}

/// Sends `text` on the healthy session and waits at most `within` for its echo.
fn echo_within(s: &Session, ev: &mut Events, text: &str, within: Duration) -> Duration {
    let started = Instant::now();
    s.send_text(text).unwrap_or_else(|e| panic!("send_text({text:?}): {e}"));
    let e = ev.next_within(within);
    assert_eq!((e.kind, e.text()), (EventKind::Message, text.to_string()), "echo of {text:?}");
    started.elapsed()
}

/// Runs `cfg` as the hostile session beside a healthy echo session on one loop. The
/// healthy session echoes before, continuously during (each echo waiting at most
/// `echo_wait`), and after. The hostile session must close within `within`; nothing may
/// reach its handler after that. `on_open` runs once when the hostile session opens.
fn run_hostile(
    cfg: SessionConfig,
    within: Duration,
    echo_wait: Duration,
    on_open: impl FnOnce(&Session),
) -> Run {
    let lp = TestLoop::start();
    let (h, mut good) = collector();
    let healthy = lp.open(SessionConfig::new(ws_server().ws_url("/echo")), h).unwrap();
    good.expect_open();
    echo_text(&healthy, &mut good, "before");

    let url = cfg.url.clone();
    let rss_before = vm_rss();
    let sampler = PeakRss::start();
    let (h, mut bad) = collector();
    let opened = Instant::now();
    let session = lp.open(cfg, h).unwrap();
    let mut on_open = Some(on_open);
    let (mut events, mut echoes, mut slowest_echo) = (Vec::new(), 0, Duration::ZERO);
    loop {
        let took = echo_within(&healthy, &mut good, &format!("during {echoes}"), echo_wait);
        slowest_echo = slowest_echo.max(took);
        echoes += 1;
        // An observation window that also paces the echoes, not a synchronisation.
        bad.quiet_for(Duration::from_millis(2));
        while bad.try_next().is_some() {}
        while events.len() < bad.seen.len() {
            let e = bad.seen[events.len()].clone();
            if e.is_state(SessionState::Open) {
                if let Some(f) = on_open.take() {
                    f(&session);
                }
            }
            events.push((opened.elapsed(), e));
        }
        if bad.seen.last().is_some_and(|e| e.is_state(SessionState::Closed)) {
            break;
        }
        assert!(
            opened.elapsed() < within,
            "{url}: hostile session not closed within {within:?}: {:?}",
            bad.seen
        );
    }
    let rss_peak = sampler.stop();
    drop(session);
    let late = bad.assert_handler_dropped();
    assert!(late.is_empty(), "{url}: events after Closed: {late:?}");
    echo_text(&healthy, &mut good, "after");
    support::close_cleanly(&healthy, &mut good);
    let run = Run { url, events, echoes, slowest_echo, rss_before, rss_peak };
    run.print();
    run
}

/// [`run_hostile`] with the usual bounds: 15 s for the whole run, 10 s per echo.
fn run(cfg: SessionConfig) -> Run {
    run_hostile(cfg, Duration::from_secs(15), support::WAIT, |_| {})
}

/// The figures of the fixture's "report <tag> k=v ..." line for `tag`.
fn fixture_report(tag: &str) -> HashMap<String, i64> {
    let prefix = format!("report {tag} ");
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let left = end.saturating_duration_since(Instant::now());
        let line = raw_fixture().0.next_line(left);
        if let Some(rest) = line.strip_prefix(&prefix) {
            return rest
                .split_whitespace()
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_string(), v.parse().expect("a number")))
                .collect();
        }
    }
}

fn unique_tag(name: &str) -> String {
    use std::sync::atomic::AtomicUsize;
    static N: AtomicUsize = AtomicUsize::new(0);
    format!("{name}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

const OPENED: &[(EventKind, &str)] = &[(EventKind::State, "open")];

// ---------------------------------------------------------------------------------------
// Fragment storms

#[test]
fn endless_fragments_of_one_message_are_ws_too_large() {
    // 1 KiB continuation frames without end: the message outgrows max_message (64 KiB).
    let _g = alone();
    let tag = unique_tag("storm");
    let run = run(hostile_cfg(&format!("/fragment-storm?tag={tag}")));
    let e = run.ends_with(ErrorCode::WsTooLarge, OPENED);
    assert!(e.message.contains("65536"), "names the limit: {}", e.message);
    run.assert_memory_bounded();
    run.assert_responsive();
    let report = fixture_report(&tag);
    println!("fragment storm: the fixture wrote {} bytes", report["sent"]);
}

#[test]
fn a_million_one_byte_fragments_are_ws_too_large_with_bounded_memory() {
    // 3-byte frames carrying one byte each; max_message 1 MiB: the millionth-and-first
    // fragment ends it. (While it runs the loop serves nothing else: see the ignored
    // tests below; hence the long echo wait here.)
    let _g = alone();
    let tag = unique_tag("tiny");
    let mut cfg = hostile_cfg(&format!("/fragment-flood?size=1&tag={tag}"));
    cfg.limits.max_message = 1 << 20;
    let run = run_hostile(cfg, Duration::from_secs(60), Duration::from_secs(60), |_| {});
    let e = run.ends_with(ErrorCode::WsTooLarge, OPENED);
    assert!(e.message.contains("1048576"), "names the limit: {}", e.message);
    run.assert_memory_bounded();
    let sent = fixture_report(&tag)["sent"];
    assert!(sent >= 3 << 20, "the fixture wrote a million fragments: {sent} bytes");
    println!("one-byte fragments: the fixture wrote {sent} bytes");
}

#[test]
fn empty_fragment_flood_ends_by_the_keepalive_deadline_without_starving_the_loop() {
    // Empty continuation frames for 5 s, then silence; the message never completes and
    // the fixture never answers a ping. The keepalive (ping after 500 ms, 500 ms for the
    // answer) must end it at about 1 s, while the flood still runs; the healthy session
    // must keep echoing meanwhile.
    let _g = alone();
    let tag = unique_tag("empty");
    let cfg = hostile_cfg(&format!("/fragment-flood?size=0&secs=5&tag={tag}"));
    let run = run_hostile(cfg, Duration::from_secs(30), Duration::from_secs(30), |_| {});
    println!("the fixture wrote {} bytes", fixture_report(&tag)["sent"]);
    run.ends_with(ErrorCode::PeerTimeout, OPENED);
    run.assert_memory_bounded();
    assert!(
        run.elapsed() < Duration::from_secs(4),
        "ended after {:?}: by the end of the flood, not by the keepalive deadline",
        run.elapsed()
    );
    run.assert_responsive();
}

// ---------------------------------------------------------------------------------------
// Ping floods

fn ping_flood(query: &str) -> (Run, HashMap<String, i64>) {
    // Pings (125-byte payloads) as fast as the socket takes them, then silence: every ping
    // counts as life, so the keepalive ends the session only after the flood.
    let tag = unique_tag("pings");
    let cfg = hostile_cfg(&format!("/ping-flood?{query}&tag={tag}"));
    let run = run_hostile(cfg, Duration::from_secs(90), Duration::from_secs(60), |_| {});
    let report = fixture_report(&tag);
    println!("ping flood: {report:?}");
    (run, report)
}

#[test]
fn ping_flood_is_answered_with_bounded_memory_then_ends_by_the_keepalive() {
    let _g = alone();
    let (run, report) = ping_flood("mib=32");
    let e = run.ends_with(
        ErrorCode::PeerTimeout,
        &[
            (EventKind::State, "open"),
            (EventKind::Message, "flood-start"),
            (EventKind::Message, "flood-end"),
        ],
    );
    assert!(e.message.contains("500ms"), "{}", e.message);
    let (sent, pings, pongs) = (report["sent"], report["pings"], report["pongs"]);
    assert!(sent >= 32 << 20, "the fixture wrote {sent} bytes");
    assert!(sent as u64 >= 4 * RSS_BOUND, "the flood ({sent} bytes) is far larger than the bound");
    run.assert_memory_bounded();
    // RFC 6455 §5.5.3: a pong may answer only the most recent of several pings, but the
    // most recent one must be answered.
    assert!(pongs >= 1 && pongs <= pings, "{pongs} pongs for {pings} pings");
    assert_eq!(report["last_pong"], pings - 1, "the last ping was answered");
}

#[test]
fn ping_flood_whose_pongs_back_up_keeps_memory_bounded() {
    // The fixture reads nothing while it sends 16 MiB of pings: once the socket buffers
    // are full the client cannot write its pongs. RFC 6455 §5.5.3 lets it answer only the
    // most recent ping; a client that queued a pong per ping would grow by the flood.
    let _g = alone();
    let (run, report) = ping_flood("mib=16&read=0");
    run.ends_with(
        ErrorCode::PeerTimeout,
        &[
            (EventKind::State, "open"),
            (EventKind::Message, "flood-start"),
            (EventKind::Message, "flood-end"),
        ],
    );
    let (sent, pings, pongs) = (report["sent"], report["pings"], report["pongs"]);
    assert!(sent >= 16 << 20, "the fixture wrote {sent} bytes");
    run.assert_memory_bounded();
    assert!(pongs >= 1 && pongs <= pings, "{pongs} pongs for {pings} pings");
    assert_eq!(report["last_pong"], pings - 1, "the last ping was answered");
}

#[test]
fn ping_flood_does_not_starve_other_sessions() {
    let _g = alone();
    let (run, _) = ping_flood("mib=32");
    run.assert_responsive();
}

// ---------------------------------------------------------------------------------------
// Trickles: the deadlines end them.

#[test]
fn frame_trickled_one_byte_per_second_is_peer_timeout() {
    // No frame completes, so nothing counts as life: ping at 500 ms, dead at 1 s.
    let _g = shared();
    let run = run(hostile_cfg("/trickle-frame"));
    let e = run.ends_with(ErrorCode::PeerTimeout, OPENED);
    assert!(e.message.contains("500ms"), "{}", e.message);
    assert!(run.elapsed() >= Duration::from_secs(1), "not before the deadline");
    assert!(run.elapsed() < Duration::from_secs(5), "at the deadline: {:?}", run.elapsed());
    run.assert_responsive();
}

#[test]
fn upgrade_response_trickled_one_byte_per_second_is_handshake_timeout() {
    // The deadline covers the whole response, not the gap between two bytes.
    let _g = shared();
    let run = run(hostile_cfg("/trickle-upgrade"));
    let e = run.ends_with(ErrorCode::Timeout, &[]);
    assert!(e.message.contains("took longer than 1s"), "{}", e.message);
    assert!(run.elapsed() >= Duration::from_secs(1), "not before the deadline");
    assert!(run.elapsed() < Duration::from_secs(5), "at the deadline: {:?}", run.elapsed());
    run.assert_responsive();
}

// ---------------------------------------------------------------------------------------
// Garbage

#[test]
fn endless_response_headers_are_http_malformed() {
    let _g = alone();
    let run = run(hostile_cfg("/endless-headers"));
    let e = run.ends_with(ErrorCode::HttpMalformed, &[]);
    assert!(e.message.contains("too many headers"), "{}", e.message);
    run.assert_memory_bounded();
    run.assert_responsive();
}

#[test]
fn html_after_the_upgrade_is_ws_protocol() {
    // "<" (0x3C) as a frame's first byte: RSV2 and RSV3 set, reserved opcode 0xC. It
    // arrives in the same segment as the 101: the bytes read past the response head must
    // be parsed as frames.
    let _g = shared();
    let run = run(hostile_cfg("/garbage-after-upgrade"));
    let e = run.ends_with(ErrorCode::WsProtocol, OPENED);
    println!("{}", e.message);
    run.assert_responsive();
}

#[test]
fn random_bytes_after_the_upgrade_end_in_a_protocol_error() {
    // Endless pseudo-random bytes, eight seeds. Whatever the first bytes announce (reserved
    // bits, opcodes, a masked frame, a huge length, a fragment, bad UTF-8) the session
    // ends in one of the errors for a peer breaking RFC 6455, never in a hang.
    let _g = alone();
    for seed in 0..8 {
        let run = run(hostile_cfg(&format!("/random-after-upgrade?seed={seed}")));
        let evs = run.evs();
        let err = evs.iter().find(|e| e.kind == EventKind::Error).expect("an Error");
        let code = err.error.unwrap();
        println!("seed {seed}: {code:?}: {}", err.message);
        assert!(
            matches!(
                code,
                ErrorCode::WsProtocol | ErrorCode::WsTooLarge | ErrorCode::WsInvalidUtf8
            ),
            "seed {seed}: {code:?} {}",
            err.message
        );
        // Valid data frames may come first by chance; then the one Error, then Closed.
        let n = evs.len();
        assert!(evs[0].is_state(SessionState::Connecting), "seed {seed}: {evs:?}");
        assert!(evs[n - 1].is_state(SessionState::Closed), "seed {seed}: {evs:?}");
        assert_eq!(evs[n - 2].kind, EventKind::Error, "seed {seed}: {evs:?}");
        assert!(
            evs[1..n - 2].iter().all(|e| e.is_state(SessionState::Open)
                || matches!(e.kind, EventKind::Message | EventKind::Binary)),
            "seed {seed}: {evs:?}"
        );
        run.assert_memory_bounded();
        run.assert_responsive();
    }
}

// ---------------------------------------------------------------------------------------
// Huge announced lengths

#[test]
fn frame_announcing_2_pow_63_minus_1_bytes_is_ws_too_large() {
    let _g = alone();
    for limit in [64 << 10, livefeed::Limits::default().max_frame] {
        let mut cfg = hostile_cfg("/huge-length?bits=63");
        cfg.limits.max_frame = limit;
        let run = run(cfg);
        let e = run.ends_with(ErrorCode::WsTooLarge, OPENED);
        assert!(e.message.contains("9223372036854775807"), "says the length: {}", e.message);
        run.assert_memory_bounded();
        run.assert_responsive();
    }
}

#[test]
fn frame_announcing_2_pow_64_minus_1_bytes_is_ws_too_large() {
    // The most significant bit must be 0 (RFC 6455 §5.2); too large in any case.
    let _g = shared();
    let run = run(hostile_cfg("/huge-length?bits=64"));
    run.ends_with(ErrorCode::WsTooLarge, OPENED);
    run.assert_responsive();
}

#[test]
fn frame_announcing_2_pow_63_minus_1_bytes_with_the_largest_limit_is_ws_too_large() {
    let _g = shared();
    let mut cfg = hostile_cfg("/huge-length?bits=63");
    cfg.limits.max_frame = usize::MAX;
    cfg.limits.max_message = usize::MAX;
    run(cfg).ends_with(ErrorCode::WsTooLarge, OPENED);
}

const CHILD_ENV: &str = "LIVEFEED_HOSTILE_CHILD";

#[test]
fn frame_announcing_more_than_memory_with_the_largest_limit_does_not_abort() {
    let name = "frame_announcing_more_than_memory_with_the_largest_limit_does_not_abort";
    if std::env::var_os(CHILD_ENV).is_some() {
        let mut cfg = hostile_cfg("/huge-length?bits=50");
        cfg.limits.max_frame = usize::MAX;
        cfg.limits.max_message = usize::MAX;
        let run = run(cfg);
        run.ends_with(ErrorCode::WsTooLarge, OPENED);
        run.assert_memory_bounded();
        return;
    }
    // Run in a child process, which the bug kills.
    use std::os::unix::process::ExitStatusExt;
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--ignored", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .stdin(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let end = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the child did not finish within 60 s");
        }
        // Polling a child's exit, not synchronising with it.
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "the child failed: {status:?} (signal {:?})", status.signal());
}

// ---------------------------------------------------------------------------------------
// Connections ended without a close handshake

#[test]
fn eof_in_the_middle_of_a_frame_is_ws_abnormal_close() {
    let _g = shared();
    let run = run(hostile_cfg("/eof-mid-frame"));
    run.ends_with(ErrorCode::WsAbnormalClose, OPENED);
    run.assert_responsive();
}

#[test]
fn reset_without_close_frame_is_io() {
    // The fixture resets the connection (RST) once it has read the client's first frame.
    let _g = shared();
    let run = run_hostile(
        hostile_cfg("/reset-after-open"),
        Duration::from_secs(15),
        support::WAIT,
        |s| s.send_text("hello").expect("send"),
    );
    let e = run.ends_with(ErrorCode::Io, OPENED);
    assert!(e.message.contains("reset"), "{}", e.message);
    run.assert_responsive();
}

// ---------------------------------------------------------------------------------------
// Invalid UTF-8

#[test]
fn invalid_utf8_across_fragments_is_ws_invalid_utf8() {
    // "caf\xc3" is a valid prefix; "(" is not a continuation byte.
    let _g = shared();
    let run = run(hostile_cfg("/bad-utf8-fragments"));
    run.ends_with(ErrorCode::WsInvalidUtf8, OPENED);
    run.assert_responsive();
}

#[test]
fn invalid_utf8_close_reason_is_ws_invalid_utf8() {
    let _g = shared();
    let run = run(hostile_cfg("/bad-utf8-close"));
    run.ends_with(ErrorCode::WsInvalidUtf8, OPENED);
    run.assert_responsive();
}

#[test]
fn invalid_utf8_close_reason_is_reported_as_such() {
    let _g = shared();
    let run = run(hostile_cfg("/bad-utf8-close"));
    let e = run.ends_with(ErrorCode::WsInvalidUtf8, OPENED);
    assert!(e.message.contains("close frame's reason"), "{}", e.message);
}
