//! A fast local WebSocket sender for benchmarks (loopback only).
//!
//! ```text
//! flood_server [--port P] [--count N]     flood mode (default N = 1000000)
//! flood_server [--port P] --idle          idle mode
//! ```
//!
//! Flood mode: every client that completes the handshake receives N unmasked text
//! frames, each carrying a 150-byte JSON reading with a sequence number (0..N-1), as fast
//! as the socket takes them, then a close frame (1000). All frames are encoded once at
//! start-up into one buffer (N x 154 bytes) that every client shares, and written with
//! large `write_all` calls, so the sender costs next to nothing per message.
//!
//! Idle mode: accepts and keeps any number of connections without sending anything,
//! reading each one so pings are answered and closes are honoured (for memory figures).
//!
//! The first line on stdout is `listening ws://127.0.0.1:PORT/`, printed once the server
//! is ready; diagnostics go to stderr.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};
use tungstenite::Message;

/// Payload size of every flood message.
const MESSAGE_LEN: usize = 150;
/// `write_all` chunk.
const CHUNK: usize = 1 << 20;
/// Stack for per-connection threads (they only run the handshake and a read loop).
const STACK: usize = 256 << 10;

/// The JSON text of message `seq`, padded to exactly `MESSAGE_LEN` bytes.
fn message(seq: u64) -> String {
    let sensor = seq % 16;
    let t = 18.0 + (seq % 1000) as f64 / 100.0;
    let h = 40.0 + (seq % 400) as f64 / 10.0;
    let ts = 1_732_400_000_000u64 + seq;
    let head = format!(
        r#"{{"sensor":"greenhouse-{sensor:02}","seq":{seq},"temperature":{t:.2},"humidity":{h:.1},"pressure":1013.25,"ts":{ts},"pad":""#
    );
    let fill = MESSAGE_LEN.checked_sub(head.len() + 2).expect("message head fits");
    let mut m = head;
    m.extend(std::iter::repeat_n('x', fill));
    m.push_str("\"}");
    debug_assert_eq!(m.len(), MESSAGE_LEN);
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

/// N text frames followed by a close frame (1000).
fn encode_flood(count: u64) -> Vec<u8> {
    let mut buf = Vec::with_capacity(count as usize * (MESSAGE_LEN + 4) + 4);
    for seq in 0..count {
        push_frame(&mut buf, 0x1, message(seq).as_bytes());
    }
    push_frame(&mut buf, 0x8, &1000u16.to_be_bytes());
    buf
}

/// Reads client frames (masked) until a close frame or EOF, so the client's close reply
/// is seen before the server closes the TCP connection, as RFC 6455 asks of a server.
fn await_close(stream: &mut TcpStream) -> io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        // Parse every complete frame in `buf`.
        loop {
            if buf.len() < 2 {
                break;
            }
            let opcode = buf[0] & 0x0f;
            let masked = buf[1] & 0x80 != 0;
            let (len, mut at) = match buf[1] & 0x7f {
                126 if buf.len() >= 4 => (u16::from_be_bytes([buf[2], buf[3]]) as usize, 4),
                127 if buf.len() >= 10 => {
                    (u64::from_be_bytes(buf[2..10].try_into().unwrap()) as usize, 10)
                }
                126 | 127 => break,
                n => (n as usize, 2),
            };
            if masked {
                at += 4;
            }
            if buf.len() < at + len {
                break;
            }
            if opcode == 0x8 {
                return Ok(());
            }
            buf.drain(..at + len);
        }
        match stream.read(&mut chunk)? {
            0 => return Ok(()),
            n => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

fn flood(stream: TcpStream, frames: Arc<Vec<u8>>, count: u64) {
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
    // The handshake response is flushed; from here on the raw socket is ours.
    let stream = ws.get_mut();
    let started = Instant::now();
    for chunk in frames.chunks(CHUNK) {
        if let Err(e) = stream.write_all(chunk) {
            eprintln!("flood_server: {peer}: write failed: {e}");
            return;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "flood_server: {peer}: sent {count} messages ({} bytes) in {secs:.3} s",
        frames.len()
    );
    if let Err(e) = await_close(stream) {
        eprintln!("flood_server: {peer}: no close reply: {e}");
    }
    let _ = stream.shutdown(Shutdown::Both);
}

fn idle(stream: TcpStream, open: Arc<AtomicUsize>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut ws = match tungstenite::accept(stream) {
        Ok(ws) => ws,
        Err(e) => {
            eprintln!("flood_server: idle handshake failed: {e}");
            return;
        }
    };
    let _ = ws.get_mut().set_read_timeout(None);
    let n = open.fetch_add(1, Ordering::Relaxed) + 1;
    if n % 500 == 0 {
        eprintln!("flood_server: {n} idle connections");
    }
    // Pongs and close replies are queued by tungstenite and flushed by the next read.
    loop {
        match ws.read() {
            Ok(Message::Close(_)) => {
                let _ = ws.flush();
                break;
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    open.fetch_sub(1, Ordering::Relaxed);
}

/// Raises the listen backlog: std listens with 128, and a burst of connects (the memory
/// benchmark opens 1000 sessions at once) would overflow the accept queue, and the
/// dropped SYNs would only be retried a second later. Linux lets `listen` be called again
/// to change the backlog (capped by net.core.somaxconn).
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
    eprintln!("usage: flood_server [--port P] [--count N] [--idle]");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let mut port: u16 = 0;
    let mut count: u64 = 1_000_000;
    let mut idle_mode = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--idle" => idle_mode = true,
            "--port" => match args.next().and_then(|v| v.parse().ok()) {
                Some(p) => port = p,
                None => return usage(),
            },
            "--count" => match args.next().and_then(|v| v.replace(['_', ','], "").parse().ok()) {
                Some(n) if n > 0 => count = n,
                _ => return usage(),
            },
            "-h" | "--help" => {
                usage();
                return ExitCode::SUCCESS;
            }
            _ => return usage(),
        }
    }

    let frames = if idle_mode { Arc::new(Vec::new()) } else { Arc::new(encode_flood(count)) };
    let listener = match TcpListener::bind(("127.0.0.1", port)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("flood_server: cannot listen on 127.0.0.1:{port}: {e}");
            return ExitCode::FAILURE;
        }
    };
    widen_backlog(&listener, 4096);
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(port);
    {
        let mut out = io::stdout().lock();
        let _ = writeln!(out, "listening ws://127.0.0.1:{port}/");
        let _ = out.flush();
    }
    if idle_mode {
        eprintln!("flood_server: idle mode");
    } else {
        eprintln!(
            "flood_server: {count} messages of {MESSAGE_LEN} bytes per client ({} bytes encoded)",
            frames.len()
        );
    }

    let open = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                eprintln!("flood_server: accept failed: {e}");
                continue;
            }
        };
        let spawned = if idle_mode {
            let open = Arc::clone(&open);
            thread::Builder::new().stack_size(STACK).spawn(move || idle(stream, open))
        } else {
            let frames = Arc::clone(&frames);
            thread::Builder::new().stack_size(STACK).spawn(move || flood(stream, frames, count))
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
        for seq in [0, 7, 999_999, u32::MAX as u64] {
            let m = message(seq);
            assert_eq!(m.len(), MESSAGE_LEN);
            let v: serde_json::Value = serde_json::from_str(&m).unwrap();
            assert_eq!(v["seq"], seq);
        }
    }

    #[test]
    fn frames_decode() {
        let buf = encode_flood(3);
        assert_eq!(buf.len(), 3 * (MESSAGE_LEN + 4) + 4);
        assert_eq!(&buf[..4], &[0x81, 126, 0, MESSAGE_LEN as u8]);
        assert_eq!(&buf[buf.len() - 4..], &[0x88, 2, 0x03, 0xe8]);
    }
}
