//! A fast local WebSocket peer for benchmarks (loopback only).
//!
//! ```text
//! flood_server [--port P] [--count N] [--size BYTES] [--atmosphere | --socketio]
//! flood_server [--port P] --echo
//! flood_server [--port P] --idle
//! ```
//!
//! Flood mode (the default): every client that completes the handshake receives N unmasked
//! text frames, each carrying a JSON reading with a sequence number (0..N-1) padded to
//! exactly BYTES bytes (default 150), as fast as the socket takes them, then a close frame
//! (1000). Messages of up to 4 KiB are all encoded once at start-up into one buffer that
//! every client shares; larger ones (the 1 MiB benchmark) are encoded once and the same
//! frame is written N times. Either way the sender writes with large `write_all` calls and
//! costs next to nothing per message.
//!
//! `--atmosphere`: the same flood, preceded by the Atmosphere handshake frame
//! `<uuid>|0|X|` (client heartbeats off; PROTOCOLS.md §5), so an Atmosphere client
//! (`LF_PROTOCOL_ATMOSPHERE`) receives every following frame as one message. Any path and
//! query are accepted.
//!
//! `--socketio`: an Engine.IO 4 / Socket.IO 5 server on the WebSocket transport (any path,
//! e.g. `/socket.io/?EIO=4&transport=websocket`): it sends the open packet, waits for the
//! client's namespace connect (`40...`), answers `40{"sid":...}`, then floods N events
//! `42["tick",<reading>]` and ends with `42["done",{"count":N,"seconds":S,"cpu_seconds":C}]`
//! (S: wall time of the flood writes, C: this connection thread's CPU time over them), the
//! same stream as bench/sio_flood.js but without a JavaScript thread as the bottleneck.
//!
//! Echo mode: every text or binary message is sent straight back (TCP_NODELAY), one thread
//! per connection.
//!
//! Idle mode: one thread, non-blocking (mio), any number of connections (up to the
//! descriptor limit): completes the handshake, then answers pings and close frames and
//! sends nothing else (for the memory, connect-time and 10,000-session figures).
//!
//! The first line on stdout is `listening ws://127.0.0.1:PORT/`, printed once the server
//! is ready; diagnostics go to stderr.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::ExitCode;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};
use tungstenite::Message;

/// Default payload size of every flood message.
const MESSAGE_LEN: usize = 150;
/// Messages larger than this are encoded once and written N times.
const DISTINCT_MAX: usize = 4096;
/// `write_all` chunk.
const CHUNK: usize = 1 << 20;
/// Stack for per-connection threads (they only run the handshake and a read loop).
const STACK: usize = 256 << 10;

/// What a flood connection speaks on top of WebSocket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    Plain,
    Atmosphere,
    SocketIo,
}

/// The JSON text of message `seq`, padded to exactly `size` bytes (`size >= MESSAGE_LEN`).
fn message(seq: u64, size: usize) -> String {
    let sensor = seq % 16;
    let t = 18.0 + (seq % 1000) as f64 / 100.0;
    let h = 40.0 + (seq % 400) as f64 / 10.0;
    let ts = 1_732_400_000_000u64 + seq;
    let head = format!(
        r#"{{"sensor":"greenhouse-{sensor:02}","seq":{seq},"temperature":{t:.2},"humidity":{h:.1},"pressure":1013.25,"ts":{ts},"pad":""#
    );
    let fill = size.checked_sub(head.len() + 2).expect("message head fits");
    let mut m = String::with_capacity(size);
    m.push_str(&head);
    m.extend(std::iter::repeat_n('x', fill));
    m.push_str("\"}");
    debug_assert_eq!(m.len(), size);
    m
}

/// Appends one unmasked server frame.
fn push_frame(buf: &mut Vec<u8>, opcode: u8, payload: &[u8]) {
    buf.push(0x80 | opcode);
    match payload.len() {
        n if n < 126 => buf.push(n as u8),
        n if n <= 0xffff => {
            buf.push(126);
            buf.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            buf.push(127);
            buf.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    buf.extend_from_slice(payload);
}

/// The text payload of flood message `seq` in `framing`.
fn payload(seq: u64, size: usize, framing: Framing) -> String {
    match framing {
        Framing::SocketIo => format!("42[\"tick\",{}]", message(seq, size)),
        Framing::Plain | Framing::Atmosphere => message(seq, size),
    }
}

/// What every flood connection writes after its handshake: `body` `repeat` times, then
/// `tail` (the close frame; for Socket.IO the "done" event and the close frame are written
/// by the connection itself).
struct Flood {
    body: Vec<u8>,
    repeat: u64,
    count: u64,
    size: usize,
    framing: Framing,
}

impl Flood {
    fn new(count: u64, size: usize, framing: Framing) -> Flood {
        if size <= DISTINCT_MAX {
            let mut body = Vec::with_capacity(count as usize * (size + 16));
            for seq in 0..count {
                push_frame(&mut body, 0x1, payload(seq, size, framing).as_bytes());
            }
            Flood { body, repeat: 1, count, size, framing }
        } else {
            let mut body = Vec::with_capacity(size + 32);
            push_frame(&mut body, 0x1, payload(0, size, framing).as_bytes());
            Flood { body, repeat: count, count, size, framing }
        }
    }

    fn bytes(&self) -> u64 {
        self.body.len() as u64 * self.repeat
    }
}

/// Reads client frames (masked) until a close frame or EOF, so the client's close reply
/// is seen before the server closes the TCP connection, as RFC 6455 asks of a server.
fn await_close(stream: &mut TcpStream) -> io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        while let Some(frame) = parse_frame(&buf) {
            if frame.opcode == 0x8 {
                return Ok(());
            }
            buf.drain(..frame.len);
        }
        match stream.read(&mut chunk)? {
            0 => return Ok(()),
            n => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// One complete frame at the start of a buffer.
struct Frame {
    opcode: u8,
    /// Where the payload starts.
    at: usize,
    /// Header and payload.
    len: usize,
    mask: Option<[u8; 4]>,
}

/// The first frame in `buf`, if it is complete.
fn parse_frame(buf: &[u8]) -> Option<Frame> {
    if buf.len() < 2 {
        return None;
    }
    let opcode = buf[0] & 0x0f;
    let masked = buf[1] & 0x80 != 0;
    let (len, mut at) = match buf[1] & 0x7f {
        126 if buf.len() >= 4 => (u16::from_be_bytes([buf[2], buf[3]]) as usize, 4),
        127 if buf.len() >= 10 => (u64::from_be_bytes(buf[2..10].try_into().unwrap()) as usize, 10),
        126 | 127 => return None,
        n => (n as usize, 2),
    };
    let mut mask = None;
    if masked {
        if buf.len() < at + 4 {
            return None;
        }
        mask = Some([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]);
        at += 4;
    }
    if buf.len() < at + len {
        return None;
    }
    Some(Frame { opcode, at, len: at + len, mask })
}

/// CPU time of the calling thread so far, from /proc (0 where unavailable).
fn thread_cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|ns| ns.parse::<u64>().ok()))
        .map_or(0.0, |ns| ns as f64 / 1e9)
}

/// The Engine.IO / Socket.IO opening: open packet, the client's namespace connect, our
/// connect answer.
fn socketio_open(ws: &mut tungstenite::WebSocket<TcpStream>, id: u64) -> tungstenite::Result<()> {
    let sid = format!("bench{id:015}");
    ws.send(Message::text(format!(
        r#"0{{"sid":"{sid}","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}}"#
    )))?;
    loop {
        match ws.read()? {
            Message::Text(t) if t.as_str().starts_with("40") => break,
            Message::Close(_) => return Err(tungstenite::Error::ConnectionClosed),
            _ => {}
        }
    }
    ws.send(Message::text(format!(r#"40{{"sid":"ns{sid}"}}"#)))
}

fn flood(stream: TcpStream, flood: Arc<Flood>, id: u64) {
    let peer = stream.peer_addr().map(|a| a.to_string()).unwrap_or_else(|_| "?".into());
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(60)));
    let mut ws = match tungstenite::accept(stream) {
        Ok(ws) => ws,
        Err(e) => {
            eprintln!("flood_server: {peer}: handshake failed: {e}");
            return;
        }
    };
    match flood.framing {
        Framing::SocketIo => {
            if let Err(e) = socketio_open(&mut ws, id) {
                eprintln!("flood_server: {peer}: Socket.IO opening failed: {e}");
                return;
            }
        }
        Framing::Atmosphere => {
            let uuid = format!("00000000-0000-4000-8000-{id:012}");
            if let Err(e) = ws.send(Message::text(format!("{uuid}|0|X|"))) {
                eprintln!("flood_server: {peer}: Atmosphere handshake failed: {e}");
                return;
            }
        }
        Framing::Plain => {}
    }
    // The handshake response (and opening frames) are flushed; from here on the raw socket
    // is ours.
    let stream = ws.get_mut();
    let started = Instant::now();
    let cpu0 = thread_cpu_seconds();
    for _ in 0..flood.repeat {
        for chunk in flood.body.chunks(CHUNK) {
            if let Err(e) = stream.write_all(chunk) {
                eprintln!("flood_server: {peer}: write failed: {e}");
                return;
            }
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let cpu = thread_cpu_seconds() - cpu0;
    let mut tail = Vec::new();
    if flood.framing == Framing::SocketIo {
        let done = format!(
            r#"42["done",{{"count":{},"seconds":{secs:.4},"cpu_seconds":{cpu:.4}}}]"#,
            flood.count
        );
        push_frame(&mut tail, 0x1, done.as_bytes());
    } else {
        push_frame(&mut tail, 0x8, &1000u16.to_be_bytes());
    }
    if let Err(e) = stream.write_all(&tail) {
        eprintln!("flood_server: {peer}: write failed: {e}");
        return;
    }
    eprintln!(
        "flood_server: {peer}: sent {} messages of {} bytes ({} bytes) in {secs:.3} s, {:.0} msgs/s, \
         CPU {cpu:.3} s",
        flood.count,
        flood.size,
        flood.bytes(),
        flood.count as f64 / secs
    );
    if let Err(e) = await_close(stream) {
        eprintln!("flood_server: {peer}: no close reply: {e}");
    }
    let _ = stream.shutdown(Shutdown::Both);
}

fn echo(stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let mut ws = match tungstenite::accept(stream) {
        Ok(ws) => ws,
        Err(e) => {
            eprintln!("flood_server: echo handshake failed: {e}");
            return;
        }
    };
    let mut n: u64 = 0;
    loop {
        match ws.read() {
            Ok(m @ (Message::Text(_) | Message::Binary(_))) => {
                n += 1;
                if ws.send(m).is_err() {
                    break;
                }
            }
            Ok(Message::Close(_)) => {
                let _ = ws.flush();
                break;
            }
            Ok(_) => {}
            Err(e) => {
                eprintln!("flood_server: echo connection ended: {e}");
                break;
            }
        }
    }
    eprintln!("flood_server: echoed {n} messages");
}

/// The idle server: one thread, mio, handshake then silence.
mod idle {
    use super::{parse_frame, push_frame};
    use mio::net::{TcpListener, TcpStream};
    use mio::{Events, Interest, Poll, Token};
    use std::io::{self, Read, Write};

    const LISTENER: Token = Token(usize::MAX);
    /// Largest request head accepted.
    const MAX_HEAD: usize = 16 << 10;

    struct Conn {
        stream: TcpStream,
        buf: Vec<u8>,
        open: bool,
    }

    /// The 101 response to a request head, or None if it is not a WebSocket upgrade.
    fn upgrade_response(head: &[u8]) -> Option<Vec<u8>> {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(head) {
            Ok(httparse::Status::Complete(_)) => {}
            _ => return None,
        }
        let key =
            req.headers.iter().find(|h| h.name.eq_ignore_ascii_case("sec-websocket-key"))?.value;
        let accept = tungstenite::handshake::derive_accept_key(key);
        Some(
            format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Accept: {accept}\r\n\r\n"
            )
            .into_bytes(),
        )
    }

    /// Writes a small reply in full (a fresh socket's send buffer always has room).
    fn reply(stream: &mut TcpStream, bytes: &[u8]) -> bool {
        let mut at = 0;
        while at < bytes.len() {
            match stream.write(&bytes[at..]) {
                Ok(0) => return false,
                Ok(n) => at += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        true
    }

    /// Serves one readable connection; false when it is finished.
    fn service(c: &mut Conn, open_count: &mut usize) -> bool {
        let mut chunk = [0u8; 4096];
        loop {
            match c.stream.read(&mut chunk) {
                Ok(0) => return false,
                Ok(n) => c.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        if !c.open {
            let Some(end) = c.buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                return c.buf.len() <= MAX_HEAD;
            };
            let Some(resp) = upgrade_response(&c.buf[..end + 4]) else {
                let _ =
                    reply(&mut c.stream, b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n");
                return false;
            };
            if !reply(&mut c.stream, &resp) {
                return false;
            }
            c.buf.drain(..end + 4);
            c.open = true;
            *open_count += 1;
            if *open_count % 1000 == 0 {
                eprintln!("flood_server: {open_count} idle connections");
            }
        }
        while let Some(f) = parse_frame(&c.buf) {
            let mut payload = c.buf[f.at..f.len].to_vec();
            if let Some(m) = f.mask {
                for (i, b) in payload.iter_mut().enumerate() {
                    *b ^= m[i % 4];
                }
            }
            c.buf.drain(..f.len);
            match f.opcode {
                0x9 => {
                    let mut out = Vec::new();
                    push_frame(&mut out, 0xA, &payload);
                    if !reply(&mut c.stream, &out) {
                        return false;
                    }
                }
                0x8 => {
                    let mut out = Vec::new();
                    push_frame(&mut out, 0x8, &1000u16.to_be_bytes());
                    let _ = reply(&mut c.stream, &out);
                    return false;
                }
                _ => {}
            }
        }
        if c.buf.is_empty() {
            c.buf = Vec::new();
        }
        true
    }

    pub fn run(listener: std::net::TcpListener) -> io::Result<()> {
        listener.set_nonblocking(true)?;
        let mut listener = TcpListener::from_std(listener);
        let mut poll = Poll::new()?;
        poll.registry().register(&mut listener, LISTENER, Interest::READABLE)?;
        let mut conns: Vec<Option<Conn>> = Vec::new();
        let mut free: Vec<usize> = Vec::new();
        let mut events = Events::with_capacity(1024);
        let mut open_count = 0usize;
        let mut warned = false;
        loop {
            if let Err(e) = poll.poll(&mut events, None) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            for ev in events.iter() {
                if ev.token() == LISTENER {
                    loop {
                        match listener.accept() {
                            Ok((mut stream, _)) => {
                                let _ = stream.set_nodelay(true);
                                let slot = free.pop().unwrap_or_else(|| {
                                    conns.push(None);
                                    conns.len() - 1
                                });
                                if poll
                                    .registry()
                                    .register(&mut stream, Token(slot), Interest::READABLE)
                                    .is_err()
                                {
                                    free.push(slot);
                                    continue;
                                }
                                conns[slot] = Some(Conn { stream, buf: Vec::new(), open: false });
                            }
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                            Err(e) => {
                                // EMFILE: keep serving the open ones; the client sees a
                                // stalled connect.
                                if !warned {
                                    eprintln!("flood_server: accept failed: {e}");
                                    warned = true;
                                }
                                break;
                            }
                        }
                    }
                    continue;
                }
                let slot = ev.token().0;
                let keep = match conns.get_mut(slot).and_then(Option::as_mut) {
                    Some(c) => service(c, &mut open_count),
                    None => continue,
                };
                if keep {
                    continue;
                }
                if let Some(mut c) = conns[slot].take() {
                    if c.open {
                        open_count -= 1;
                    }
                    let _ = poll.registry().deregister(&mut c.stream);
                    free.push(slot);
                }
            }
        }
    }
}

/// Raises the listen backlog: std listens with 128, and a burst of connects (the memory
/// benchmark opens 1000 sessions at once, the scale one 10,000) would overflow the accept
/// queue, and the dropped SYNs would only be retried a second later. Linux lets `listen` be
/// called again to change the backlog (capped by net.core.somaxconn).
#[cfg(target_os = "linux")]
fn widen_backlog(listener: &TcpListener, backlog: i32) {
    use std::os::fd::AsRawFd;
    unsafe extern "C" {
        fn listen(fd: i32, backlog: i32) -> i32;
    }
    // SAFETY: `listen` on a descriptor we own that is a bound, listening TCP socket.
    if unsafe { listen(listener.as_raw_fd(), backlog) } != 0 {
        eprintln!("flood_server: cannot raise the listen backlog: {}", io::Error::last_os_error());
    }
}

#[cfg(not(target_os = "linux"))]
fn widen_backlog(_listener: &TcpListener, _backlog: i32) {}

fn usage() -> ExitCode {
    eprintln!(
        "usage: flood_server [--port P] [--count N] [--size BYTES] [--atmosphere | --socketio]\n       \
         flood_server [--port P] --echo\n       flood_server [--port P] --idle"
    );
    ExitCode::from(2)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Flood(Framing),
    Echo,
    Idle,
}

fn main() -> ExitCode {
    let mut port: u16 = 0;
    let mut count: u64 = 1_000_000;
    let mut size: usize = MESSAGE_LEN;
    let mut mode = Mode::Flood(Framing::Plain);
    let mut args = std::env::args().skip(1);
    let number = |v: Option<String>| v.and_then(|v| v.replace(['_', ','], "").parse::<u64>().ok());
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--idle" => mode = Mode::Idle,
            "--echo" => mode = Mode::Echo,
            "--atmosphere" => mode = Mode::Flood(Framing::Atmosphere),
            "--socketio" => mode = Mode::Flood(Framing::SocketIo),
            "--port" => match args.next().and_then(|v| v.parse().ok()) {
                Some(p) => port = p,
                None => return usage(),
            },
            "--count" => match number(args.next()) {
                Some(n) if n > 0 => count = n,
                _ => return usage(),
            },
            "--size" => match number(args.next()) {
                Some(n) if n as usize >= MESSAGE_LEN => size = n as usize,
                _ => {
                    eprintln!("flood_server: --size is at least {MESSAGE_LEN}");
                    return usage();
                }
            },
            "-h" | "--help" => {
                usage();
                return ExitCode::SUCCESS;
            }
            _ => return usage(),
        }
    }

    let flood_data = match mode {
        Mode::Flood(framing) => Arc::new(Flood::new(count, size, framing)),
        _ => Arc::new(Flood::new(1, MESSAGE_LEN, Framing::Plain)),
    };
    let listener = match TcpListener::bind(("127.0.0.1", port)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("flood_server: cannot listen on 127.0.0.1:{port}: {e}");
            return ExitCode::FAILURE;
        }
    };
    widen_backlog(&listener, 16384);
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(port);
    {
        let mut out = io::stdout().lock();
        let _ = writeln!(out, "listening ws://127.0.0.1:{port}/");
        let _ = out.flush();
    }
    match mode {
        Mode::Idle => {
            eprintln!("flood_server: idle mode");
            if let Err(e) = idle::run(listener) {
                eprintln!("flood_server: {e}");
                return ExitCode::FAILURE;
            }
            return ExitCode::SUCCESS;
        }
        Mode::Echo => eprintln!("flood_server: echo mode"),
        Mode::Flood(framing) => eprintln!(
            "flood_server: {count} messages of {size} bytes per client, {framing:?} ({} bytes)",
            flood_data.bytes()
        ),
    }

    let mut id: u64 = 0;
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                eprintln!("flood_server: accept failed: {e}");
                continue;
            }
        };
        id += 1;
        let spawned = if mode == Mode::Echo {
            thread::Builder::new().stack_size(STACK).spawn(move || echo(stream))
        } else {
            let f = Arc::clone(&flood_data);
            thread::Builder::new().stack_size(STACK).spawn(move || flood(stream, f, id))
        };
        if let Err(e) = spawned {
            eprintln!("flood_server: cannot start a connection thread: {e}");
        }
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_fixed_size_json() {
        for size in [MESSAGE_LEN, 1000, 1 << 20] {
            for seq in [0, 7, 999_999, u32::MAX as u64] {
                let m = message(seq, size);
                assert_eq!(m.len(), size);
                let v: serde_json::Value = serde_json::from_str(&m).unwrap();
                assert_eq!(v["seq"], seq);
            }
        }
    }

    #[test]
    fn frames_decode() {
        let f = Flood::new(3, MESSAGE_LEN, Framing::Plain);
        assert_eq!(f.body.len(), 3 * (MESSAGE_LEN + 4));
        assert_eq!(&f.body[..4], &[0x81, 126, 0, MESSAGE_LEN as u8]);
        let big = Flood::new(5, 1 << 20, Framing::Plain);
        assert_eq!(big.body.len(), (1 << 20) + 10);
        assert_eq!(big.bytes(), 5 * ((1 << 20) + 10));
        let sio = Flood::new(2, MESSAGE_LEN, Framing::SocketIo);
        let first = parse_frame(&sio.body).unwrap();
        let v: serde_json::Value =
            serde_json::from_slice(&sio.body[first.at + 2..first.len]).unwrap();
        assert_eq!(v[0], "tick");
        assert_eq!(v[1]["seq"], 0);
    }
}
