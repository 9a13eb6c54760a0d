//! A fault-injecting TCP proxy for the tests: listens on 127.0.0.1 (port 0), forwards every
//! connection to an upstream port on 127.0.0.1, and breaks connections on command from the
//! test while they run.
//!
//! Faults and what they do:
//!
//! | call | applies to | effect |
//! |---|---|---|
//! | [`FaultProxy::cut`] | live connections | both sockets of each closed at once, with FIN or RST ([`Close`]) on both sides |
//! | [`FaultProxy::stall`] | live connections | nothing more is forwarded either way; the sockets stay open. Bytes are **held**, not lost: they stay unread in the kernel's buffers, or in the proxy when it had read them already (only a write under way when the stall came completes). [`FaultProxy::resume`] lets them through; [`FaultProxy::cut`] or dropping the proxy ends them |
//! | [`FaultProxy::truncate`] | live connections | `n` more bytes go downstream (towards the client), then the connection is cut with FIN both ways: the client sees its stream end inside whatever it was reading |
//! | [`FaultProxy::truncate_next`] | the next connection | its first response head (through the blank line) and `n` more bytes go downstream, then the cut (FIN): a bootstrap answer or the first WebSocket frame ends early ([`FaultProxy::truncate_next_at`]: the first `n` bytes, head or not) |
//! | [`FaultProxy::delay`] | live and new connections | every chunk waits this long before it is written on, in both directions (order kept) |
//! | [`FaultProxy::refuse`] | new connections | accepted and closed at once (FIN or RST); or accepted and held, never answered ([`Refuse::Hold`]); or the listener is closed so that connecting is refused by the kernel (ECONNREFUSED) |
//! | [`FaultProxy::block_websockets`] | requests | a WebSocket upgrade request is reset instead of forwarded (plain HTTP passes) |
//! | [`FaultProxy::pass`] | new connections | undoes `refuse` and `delay` (the listener comes back on the same port; held connections are closed) |
//!
//! Stalled connections are not new connections: a client that gives up on a stalled
//! connection and connects again gets through (as after a NAT mapping died). Everything is
//! bounded: at most [`MAX_LIVE`] connections are forwarded at a time (more are refused and
//! counted), chunks are 16 KiB, the bytes recorded per connection stop at [`RECORD_CAP`], and
//! every thread checks for work at least every [`TICK`]. Dropping the proxy closes every
//! connection and joins every thread it started.
//!
//! [`FaultProxy::client_bytes`] returns what a client sent upstream on one connection (for
//! counting the requests a session made on each connection); [`FaultProxy::rewrite`] replaces a
//! byte string in the downstream stream by another of the same length (for a bootstrap answer
//! that names the upstream's port, so that the client comes back through the proxy).

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often every proxy thread looks at its instructions, at the least.
pub const TICK: Duration = Duration::from_millis(10);

/// Connections forwarded at the same time, at most; more are closed at once (and counted).
pub const MAX_LIVE: usize = 64;

/// Bytes recorded per connection in the client-to-upstream direction, at most.
pub const RECORD_CAP: usize = 1 << 20;

/// How long connecting to the upstream may take.
const UPSTREAM_CONNECT: Duration = Duration::from_secs(5);

/// Size of one forwarded chunk.
const CHUNK: usize = 16 << 10;

/// How a connection is closed by a fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Close {
    /// An orderly close (FIN): the peer reads end-of-stream.
    Fin,
    /// An abortive close (RST, `SO_LINGER` 0): the peer's next read fails with a reset.
    Rst,
}

/// How new connections are refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refuse {
    /// Accepted, then closed at once with FIN (the client sees end-of-stream).
    Fin,
    /// Accepted, then reset at once (RST).
    Rst,
    /// The listener is closed: the kernel refuses the connection (ECONNREFUSED).
    Unlisten,
    /// Accepted and kept open, but nothing is read, written or forwarded (a server that
    /// accepts and never answers). Closed by [`FaultProxy::pass`], [`FaultProxy::cut`] or
    /// dropping the proxy: with FIN, or with RST when the client had sent something (it
    /// was never read, and Linux resets a socket closed with unread data).
    Hold,
}

/// The proxy's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Connections accepted (refused ones included; with [`Refuse::Unlisten`] none arrive).
    pub accepted: usize,
    /// Connections accepted and closed at once (or held) because of [`FaultProxy::refuse`]
    /// or [`MAX_LIVE`].
    pub refused: usize,
    /// Connections held now ([`Refuse::Hold`]).
    pub held: usize,
    /// Connections forwarded to the upstream (the upstream accepted them).
    pub forwarded: usize,
    /// Connections whose upstream connect failed (the client was closed with FIN).
    pub upstream_failures: usize,
    /// Connections being forwarded now (stalled ones included).
    pub live: usize,
    /// Connections closed by [`FaultProxy::cut`], [`FaultProxy::truncate`] or
    /// [`FaultProxy::truncate_next`].
    pub cut: usize,
    /// Connections ended by [`FaultProxy::truncate`] or [`FaultProxy::truncate_next`] once
    /// their bytes were through (also counted in `cut`).
    pub truncated: usize,
    /// Replacements made by [`FaultProxy::rewrite`].
    pub rewrites: usize,
}

/// What a fault asks of one live connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    None,
    Stalled,
    /// This many more bytes downstream, then a FIN cut.
    Truncate(usize),
    /// Downstream up to the end of the first response head, then as `Truncate`.
    TruncateAfterHead(usize),
    Cut(Close),
}

struct Conn {
    /// Index among forwarded connections (0-based, in accept order).
    index: usize,
    client: TcpStream,
    upstream: TcpStream,
    fault: Mutex<Fault>,
    /// When the connection was forwarded.
    since: Instant,
    /// Pumps still running (2, 1, 0).
    pumps: Mutex<u8>,
}

struct State {
    upstream: u16,
    refuse: Option<Refuse>,
    delay: Duration,
    rewrite: Option<(Vec<u8>, Vec<u8>)>,
    block_websockets: bool,
    counts: Counts,
    conns: Vec<Arc<Conn>>,
    /// Connections accepted and held ([`Refuse::Hold`]).
    held: Vec<TcpStream>,
    /// The fault the next forwarded connection starts with.
    next_fault: Option<Fault>,
    /// What the client sent upstream, per forwarded connection.
    records: Vec<Vec<u8>>,
    threads: Vec<JoinHandle<()>>,
    /// An error the acceptor met (it cannot panic usefully); reported by the next call.
    trouble: Option<String>,
    /// Counts the faults applied to live connections ...
    epoch: u64,
    /// ... and the last of them, which a connection accepted before it (and registered
    /// after it) gets too.
    last_fault: Fault,
}

struct Shared {
    state: Mutex<State>,
    /// The listener (none while [`Refuse::Unlisten`] holds).
    listener: Mutex<Option<TcpListener>>,
    changed: Condvar,
    stop: AtomicBool,
    port: u16,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
}

/// A fault-injecting proxy to `127.0.0.1:<upstream>`; see the module documentation.
pub struct FaultProxy {
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// Starts a proxy on 127.0.0.1 (a free port) that forwards to `127.0.0.1:<upstream>`.
    pub fn start(upstream: u16) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("proxy listener");
        listener.set_nonblocking(true).expect("non-blocking listener");
        let port = listener.local_addr().expect("listener address").port();
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                upstream,
                refuse: None,
                delay: Duration::ZERO,
                rewrite: None,
                block_websockets: false,
                counts: Counts::default(),
                conns: Vec::new(),
                held: Vec::new(),
                next_fault: None,
                records: Vec::new(),
                threads: Vec::new(),
                trouble: None,
                epoch: 0,
                last_fault: Fault::None,
            }),
            listener: Mutex::new(Some(listener)),
            changed: Condvar::new(),
            stop: AtomicBool::new(false),
            port,
        });
        let mine = Arc::clone(&shared);
        let acceptor = std::thread::Builder::new()
            .name(format!("fault-proxy-{port}"))
            .spawn(move || accept_loop(&mine))
            .expect("proxy thread");
        FaultProxy { shared, acceptor: Some(acceptor) }
    }

    /// The port the proxy listens on.
    pub fn port(&self) -> u16 {
        self.shared.port
    }

    /// `http://127.0.0.1:<proxy port><path>`.
    pub fn http_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port(), path)
    }

    /// `ws://127.0.0.1:<proxy port><path>`.
    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://127.0.0.1:{}{}", self.port(), path)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        let st = self.shared.lock();
        if let Some(t) = &st.trouble {
            panic!("fault proxy {}: {t}", self.port());
        }
        st
    }

    /// New connections go to `127.0.0.1:<port>` from now on.
    pub fn set_upstream(&self, port: u16) {
        self.lock().upstream = port;
    }

    /// New connections are forwarded again, without delay; live ones lose their delay too;
    /// held connections are closed (see [`Refuse::Hold`]). (Stalled connections stay
    /// stalled: see [`FaultProxy::resume`].)
    pub fn pass(&self) {
        let mut st = self.lock();
        st.refuse = None;
        st.delay = Duration::ZERO;
        let held = std::mem::take(&mut st.held);
        drop(st);
        drop(held);
        self.shared.changed.notify_all();
    }

    /// Refuses new connections, `how`, until [`FaultProxy::pass`].
    pub fn refuse(&self, how: Refuse) {
        self.lock().refuse = Some(how);
        self.shared.changed.notify_all();
    }

    /// Every chunk, in both directions, on live and new connections, waits `by` before it is
    /// written on.
    pub fn delay(&self, by: Duration) {
        self.lock().delay = by;
        self.shared.changed.notify_all();
    }

    /// Downstream, every occurrence of `from` within one chunk becomes `to` (same length, so
    /// that an HTTP Content-Length stays right). Counted in [`Counts::rewrites`].
    pub fn rewrite(&self, from: &[u8], to: &[u8]) {
        assert_eq!(from.len(), to.len(), "a rewrite keeps the length");
        assert!(!from.is_empty(), "a rewrite needs something to look for");
        self.lock().rewrite = Some((from.to_vec(), to.to_vec()));
    }

    /// Closes every live connection now, `how`, on both sides, and every held one. Returns
    /// how many live connections were cut.
    pub fn cut(&self, how: Close) -> usize {
        let held = std::mem::take(&mut self.lock().held);
        for h in &held {
            if how == Close::Rst {
                set_abortive(h);
            }
        }
        drop(held);
        self.fault_all(Fault::Cut(how))
    }

    /// Stops forwarding on every live connection (bytes are held). Returns how many.
    pub fn stall(&self) -> usize {
        self.fault_all(Fault::Stalled)
    }

    /// Lets stalled connections forward again (what was held flows on). Returns how many.
    pub fn resume(&self) -> usize {
        let st = self.lock();
        let mut n = 0;
        for c in &st.conns {
            let mut f = c.fault.lock().unwrap_or_else(|e| e.into_inner());
            if *f == Fault::Stalled {
                *f = Fault::None;
                n += 1;
            }
        }
        drop(st);
        self.shared.changed.notify_all();
        n
    }

    /// Every live connection forwards `n` more bytes downstream, then is cut (FIN). Returns
    /// how many connections were armed.
    pub fn truncate(&self, n: usize) -> usize {
        self.fault_all(Fault::Truncate(n))
    }

    /// The next connection forwarded sends its first response head (through the blank line)
    /// and `n` more bytes downstream, then is cut (FIN).
    pub fn truncate_next(&self, n: usize) {
        self.lock().next_fault = Some(Fault::TruncateAfterHead(n));
    }

    /// With `on`, a WebSocket upgrade request is answered by a reset (RST) instead of being
    /// forwarded, as by a middlebox that does not let WebSockets through; other requests
    /// pass.
    pub fn block_websockets(&self, on: bool) {
        self.lock().block_websockets = on;
    }

    /// The next connection forwarded sends its first `n` bytes downstream, then is cut
    /// (FIN): for an answer without a body, a cut inside its head.
    pub fn truncate_next_at(&self, n: usize) {
        self.lock().next_fault = Some(Fault::Truncate(n));
    }

    /// Applies `fault` to every live connection, including those still in the listener's
    /// backlog or being set up: a client that connected before the fault gets it.
    fn fault_all(&self, fault: Fault) -> usize {
        let before = {
            let mut st = self.lock();
            st.epoch += 1;
            st.last_fault = fault;
            st.epoch - 1
        };
        while let Some(client) = accept_one(&self.shared) {
            admit(&self.shared, client, before);
        }
        let st = self.lock();
        let conns = st.conns.clone();
        drop(st);
        for c in &conns {
            *c.fault.lock().unwrap_or_else(|e| e.into_inner()) = fault;
            match fault {
                Fault::Cut(how) => cut_now(c, how),
                Fault::Truncate(0) => cut_now(c, Close::Fin),
                _ => {}
            }
        }
        self.shared.changed.notify_all();
        conns.len()
    }

    /// The counters now.
    pub fn counts(&self) -> Counts {
        let st = self.lock();
        let mut c = st.counts;
        c.live = st.conns.len();
        c.held = st.held.len();
        c
    }

    /// Waits (at most `within`) until `pred` holds for the counters; returns the counters,
    /// or panics with them.
    pub fn wait(&self, what: &str, within: Duration, pred: impl Fn(&Counts) -> bool) -> Counts {
        let end = Instant::now() + within;
        let mut st = self.lock();
        loop {
            let mut c = st.counts;
            c.live = st.conns.len();
            c.held = st.held.len();
            if pred(&c) {
                return c;
            }
            let left = end.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "fault proxy {}: waited {within:?} for {what}: {c:?}",
                self.port()
            );
            st = self
                .shared
                .changed
                .wait_timeout(st, left.min(TICK))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Waits (at most `within`) until a live connection has lasted `age`: with clients that
    /// open a short connection per request (long-polling), a fault on "every live
    /// connection" then surely hits a held request, not only a finished one.
    pub fn wait_settled(&self, age: Duration, within: Duration) {
        let end = Instant::now() + within;
        let mut st = self.lock();
        while !st.conns.iter().any(|c| c.since.elapsed() >= age) {
            let left = end.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "fault proxy {}: no connection lasted {age:?} within {within:?}",
                self.port()
            );
            st = self
                .shared
                .changed
                .wait_timeout(st, left.min(TICK))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// What the client sent upstream on forwarded connection `index` (0-based, in accept
    /// order), up to [`RECORD_CAP`] bytes.
    pub fn client_bytes(&self, index: usize) -> Vec<u8> {
        self.lock().records.get(index).cloned().unwrap_or_default()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let (conns, held) = {
            let mut st = self.shared.lock();
            (st.conns.clone(), std::mem::take(&mut st.held))
        };
        drop(held);
        for c in &conns {
            let _ = c.client.shutdown(Shutdown::Both);
            let _ = c.upstream.shutdown(Shutdown::Both);
        }
        self.shared.changed.notify_all();
        if let Some(a) = self.acceptor.take() {
            let _ = a.join();
        }
        let threads = std::mem::take(&mut self.shared.lock().threads);
        for t in threads {
            let _ = t.join();
        }
    }
}

/// Makes the socket's close abortive: the last close of it sends RST instead of FIN.
#[cfg(target_os = "linux")]
fn set_abortive(s: &TcpStream) {
    use std::os::fd::AsRawFd;
    #[repr(C)]
    struct Linger {
        l_onoff: i32,
        l_linger: i32,
    }
    unsafe extern "C" {
        fn setsockopt(fd: i32, level: i32, name: i32, value: *const Linger, len: u32) -> i32;
    }
    const SOL_SOCKET: i32 = 1;
    const SO_LINGER: i32 = 13;
    let linger = Linger { l_onoff: 1, l_linger: 0 };
    // SAFETY: `std::net::TcpStream::set_linger` is unstable (`tcp_linger`), so this calls the
    // libc function std itself links. The descriptor is open (we hold the stream) and the
    // value points to a live `struct linger` of the length given, which is only read.
    let rc = unsafe {
        setsockopt(s.as_raw_fd(), SOL_SOCKET, SO_LINGER, &linger, size_of::<Linger>() as u32)
    };
    assert_eq!(rc, 0, "setsockopt(SO_LINGER): {}", std::io::Error::last_os_error());
}

#[cfg(not(target_os = "linux"))]
fn set_abortive(_: &TcpStream) {
    panic!("the fault proxy makes RSTs on Linux only");
}

/// Cuts a connection at once. FIN: `shutdown` both sockets (the pumps wake up and leave).
/// RST: make both closes abortive and wake the pumps with a read-side shutdown (which sends
/// nothing on Linux); the RSTs go out when the pumps drop the last handles.
fn cut_now(c: &Conn, how: Close) {
    match how {
        Close::Fin => {
            let _ = c.client.shutdown(Shutdown::Both);
            let _ = c.upstream.shutdown(Shutdown::Both);
        }
        Close::Rst => {
            set_abortive(&c.client);
            set_abortive(&c.upstream);
            let _ = c.client.shutdown(Shutdown::Read);
            let _ = c.upstream.shutdown(Shutdown::Read);
        }
    }
}

/// A connection waiting in the listener's backlog, if any.
fn accept_one(shared: &Shared) -> Option<TcpStream> {
    let listener = shared.listener.lock().unwrap_or_else(|e| e.into_inner());
    listener.as_ref()?.accept().ok().map(|(c, _)| c)
}

fn accept_loop(shared: &Arc<Shared>) {
    while !shared.stopping() {
        let refuse = shared.lock().refuse;
        {
            let mut listener = shared.listener.lock().unwrap_or_else(|e| e.into_inner());
            match (refuse, listener.is_some()) {
                (Some(Refuse::Unlisten), true) => *listener = None,
                (Some(Refuse::Unlisten), false) => {}
                (_, false) => match TcpListener::bind(("127.0.0.1", shared.port)) {
                    Ok(l) => {
                        l.set_nonblocking(true).expect("non-blocking listener");
                        *listener = Some(l);
                    }
                    Err(e) => {
                        shared.lock().trouble = Some(format!("cannot listen again: {e}"));
                        return;
                    }
                },
                (_, true) => {}
            }
        }
        let epoch = shared.lock().epoch;
        match accept_one(shared) {
            Some(client) => admit(shared, client, epoch),
            // Nothing waiting (or not listening): look again shortly (connect latency
            // stays a few ms).
            None => std::thread::sleep(Duration::from_millis(2)),
        }
    }
}

/// Takes a connection accepted when the fault count was `epoch`.
fn admit(shared: &Arc<Shared>, client: TcpStream, epoch: u64) {
    let _ = client.set_nonblocking(false);
    let _ = client.set_nodelay(true);
    let mut st = shared.lock();
    st.counts.accepted += 1;
    let full = st.conns.len() + st.held.len() >= MAX_LIVE;
    let refuse = if full { Some(Refuse::Fin) } else { st.refuse };
    if let Some(how) = refuse {
        st.counts.refused += 1;
        if how == Refuse::Hold {
            st.held.push(client);
            drop(st);
            shared.changed.notify_all();
            return;
        }
        drop(st);
        if how == Refuse::Rst {
            set_abortive(&client);
        }
        drop(client);
        shared.changed.notify_all();
        return;
    }
    let upstream_port = st.upstream;
    drop(st);
    let addr = SocketAddr::from(([127, 0, 0, 1], upstream_port));
    let upstream = match TcpStream::connect_timeout(&addr, UPSTREAM_CONNECT) {
        Ok(u) => u,
        Err(_) => {
            shared.lock().counts.upstream_failures += 1;
            drop(client);
            shared.changed.notify_all();
            return;
        }
    };
    let _ = upstream.set_nodelay(true);
    let handles = (|| {
        Some((
            client.try_clone().ok()?,
            client.try_clone().ok()?,
            upstream.try_clone().ok()?,
            upstream.try_clone().ok()?,
        ))
    })();
    let Some((c_read, c_write, u_read, u_write)) = handles else {
        shared.lock().counts.upstream_failures += 1;
        return;
    };
    for s in [&client, &upstream] {
        let _ = s.set_read_timeout(Some(TICK));
        let _ = s.set_write_timeout(Some(TICK));
    }
    let mut st = shared.lock();
    let index = st.counts.forwarded;
    st.counts.forwarded += 1;
    st.records.push(Vec::new());
    // A fault that came after the accept applies to this connection too.
    let missed = if st.epoch != epoch { st.last_fault } else { Fault::None };
    let fault = match missed {
        Fault::None => st.next_fault.take().unwrap_or(Fault::None),
        f => f,
    };
    let conn = Arc::new(Conn {
        index,
        client,
        upstream,
        fault: Mutex::new(fault),
        since: Instant::now(),
        pumps: Mutex::new(2),
    });
    st.conns.push(Arc::clone(&conn));
    if let Fault::Cut(how) = fault {
        cut_now(&conn, how);
    }
    for (from, to, downstream) in [(c_read, u_write, false), (u_read, c_write, true)] {
        let (shared2, conn2) = (Arc::clone(shared), Arc::clone(&conn));
        let t = std::thread::Builder::new()
            .name(format!("fault-proxy-{}-{index}", shared.port))
            .spawn(move || pump(&shared2, &conn2, from, to, downstream))
            .expect("pump thread");
        st.threads.push(t);
    }
    // Finished pumps of earlier connections are joined here, so the list stays short.
    let (done, running): (Vec<_>, Vec<_>) =
        std::mem::take(&mut st.threads).into_iter().partition(|t| t.is_finished());
    st.threads = running;
    drop(st);
    for t in done {
        let _ = t.join();
    }
    shared.changed.notify_all();
}

/// Whether `chunk` starts a WebSocket upgrade request.
fn is_upgrade(chunk: &[u8]) -> bool {
    let text = String::from_utf8_lossy(chunk).to_ascii_lowercase();
    text.starts_with("get ") && text.contains("\r\nupgrade: websocket")
}

/// Cuts a connection from one of its own pumps.
fn st_cut(shared: &Shared, conn: &Conn, how: Close) {
    *conn.fault.lock().unwrap_or_else(|e| e.into_inner()) = Fault::Cut(how);
    cut_now(conn, how);
    shared.changed.notify_all();
}

/// What a pump does next.
enum Next {
    Go,
    Wait,
    Leave,
}

fn fault_of(conn: &Conn) -> Fault {
    *conn.fault.lock().unwrap_or_else(|e| e.into_inner())
}

fn next(shared: &Shared, conn: &Conn) -> Next {
    if shared.stopping() {
        return Next::Leave;
    }
    match fault_of(conn) {
        Fault::None | Fault::Truncate(_) | Fault::TruncateAfterHead(_) => Next::Go,
        Fault::Stalled => Next::Wait,
        Fault::Cut(_) => Next::Leave,
    }
}

/// Waits until `until`, or less if the connection is cut or the proxy stops; false then.
fn pause(shared: &Shared, conn: &Conn, until: Instant) -> bool {
    loop {
        if matches!(next(shared, conn), Next::Leave) {
            return false;
        }
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return true;
        }
        let st = shared.lock();
        let _ = shared.changed.wait_timeout(st, left.min(TICK));
    }
}

/// Writes all of `buf`, riding out write timeouts and stalls while the connection lives.
fn write_all(shared: &Shared, conn: &Conn, to: &mut TcpStream, mut buf: &[u8]) -> bool {
    while !buf.is_empty() {
        match next(shared, conn) {
            Next::Leave => return false,
            Next::Wait => {
                let st = shared.lock();
                let _ = shared.changed.wait_timeout(st, TICK);
                continue;
            }
            Next::Go => {}
        }
        match to.write(buf) {
            Ok(0) => return false,
            Ok(n) => buf = &buf[n..],
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    true
}

fn pump(shared: &Shared, conn: &Conn, mut from: TcpStream, mut to: TcpStream, downstream: bool) {
    let mut buf = vec![0u8; CHUNK];
    // Downstream bytes up to the end of the first response head, for `truncate_next`.
    let mut head = Vec::new();
    // Why the loop ended: the source's end of stream (passed on as a half close), or
    // anything else (the whole connection goes).
    let half_close = loop {
        match next(shared, conn) {
            Next::Leave => break false,
            Next::Wait => {
                let st = shared.lock();
                let _ = shared.changed.wait_timeout(st, TICK);
                continue;
            }
            Next::Go => {}
        }
        let n = match from.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => break false,
        };
        let (delay, rewrite, block) = {
            let mut st = shared.lock();
            if !downstream {
                let rec = &mut st.records[conn.index];
                let room = RECORD_CAP.saturating_sub(rec.len());
                rec.extend_from_slice(&buf[..n.min(room)]);
            }
            let block = !downstream && st.block_websockets && is_upgrade(&buf[..n]);
            (st.delay, if downstream { st.rewrite.clone() } else { None }, block)
        };
        if block {
            st_cut(shared, conn, Close::Rst);
            break false;
        }
        if !delay.is_zero() && !pause(shared, conn, Instant::now() + delay) {
            break false;
        }
        let chunk = &mut buf[..n];
        if let Some((from_bytes, to_bytes)) = rewrite {
            let mut made = 0;
            let mut i = 0;
            while i + from_bytes.len() <= chunk.len() {
                if chunk[i..].starts_with(&from_bytes) {
                    chunk[i..i + to_bytes.len()].copy_from_slice(&to_bytes);
                    i += from_bytes.len();
                    made += 1;
                } else {
                    i += 1;
                }
            }
            if made > 0 {
                shared.lock().counts.rewrites += made;
            }
        }
        // Truncation counts downstream bytes only.
        let mut end_after = false;
        let mut len = n;
        if downstream {
            let mut f = conn.fault.lock().unwrap_or_else(|e| e.into_inner());
            if let Fault::TruncateAfterHead(more) = *f {
                // The head may end in a later chunk: scan what came so far (bounded).
                let before = head.len();
                head.extend_from_slice(&buf[..n.min(RECORD_CAP.saturating_sub(before))]);
                let from = before.saturating_sub(3);
                if let Some(at) = head[from..].windows(4).position(|w| w == b"\r\n\r\n") {
                    *f = Fault::Truncate(from + at + 4 - before + more);
                }
            }
            if let Fault::Truncate(left) = *f {
                len = n.min(left);
                end_after = len == left;
                *f = Fault::Truncate(left - len);
            }
        }
        if !write_all(shared, conn, &mut to, &buf[..len]) {
            break false;
        }
        if end_after {
            shared.lock().counts.truncated += 1;
            st_cut(shared, conn, Close::Fin);
            break false;
        }
    };
    let fault = fault_of(conn);
    if let Fault::Cut(_) = fault {
        // Cut by a fault: counted once, by the last pump out.
    } else if half_close && !shared.stopping() {
        let _ = to.shutdown(Shutdown::Write);
    } else {
        let _ = conn.client.shutdown(Shutdown::Both);
        let _ = conn.upstream.shutdown(Shutdown::Both);
    }
    let last = {
        let mut p = conn.pumps.lock().unwrap_or_else(|e| e.into_inner());
        *p -= 1;
        *p == 0
    };
    if last {
        let mut st = shared.lock();
        if let Fault::Cut(_) = fault_of(conn) {
            st.counts.cut += 1;
        }
        st.conns.retain(|c| !std::ptr::eq(&**c, conn));
        drop(st);
        shared.changed.notify_all();
    }
    // The handles close as they drop here; with an abortive cut the last one sends the RST
    // (the Conn's own copies go when the last Arc does, so they are dropped with the list
    // entry above or by the other pump).
}
