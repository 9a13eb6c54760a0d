//! The plain blocking tungstenite client of the benchmarks (the floor our framing costs),
//! and a raw byte sink that measures the sender itself. Loopback only.
//!
//! ```text
//! tungstenite_recv throughput URL N      N text messages, each handed to a C callback
//! tungstenite_recv echo URL N [WARMUP]   N echo round trips of a 150-byte text message
//! tungstenite_recv drain URL N SKIP [TEXT]
//! ```
//!
//! throughput: tungstenite's blocking client (`tungstenite::client_with_config`, default
//! `WebSocketConfig`) on a `std::net::TcpStream`; `read()` in a loop, every text message
//! handed to an `extern "C"` callback through a function pointer the optimiser cannot see
//! through (it counts the message and reads its first byte, like bench/recv.c's callback).
//! Times the first message to the N-th (CLOCK_MONOTONIC) and the process CPU time over the
//! same interval.
//!
//! echo: sends a 150-byte JSON text message, waits for it to come back, N times after
//! WARMUP (default 1000) untimed round trips; reports percentiles of the round-trip time.
//!
//! drain: the sender's own rate. Does the upgrade by hand, optionally sends one masked text
//! frame TEXT (`40`: the Socket.IO namespace connect), then reads the socket into a 1 MiB
//! buffer and only walks the frame headers (never touching a payload), skipping the first
//! SKIP frames (Socket.IO open packet and connect answer, Atmosphere handshake), until N
//! data frames have arrived. What the flood server can send when the client costs
//! nothing: the ceiling of every throughput figure.
//!
//! Results: one line of key=value pairs on stdout (parsed by scripts/bench.sh).

use std::ffi::c_void;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::ExitCode;
use std::time::Instant;
use tungstenite::Message;
use tungstenite::protocol::WebSocketConfig;

/// CPU time (user + system) of the whole process, from the C library's clock.
fn cpu_seconds() -> f64 {
    #[repr(C)]
    struct Timespec {
        tv_sec: i64,
        tv_nsec: i64,
    }
    unsafe extern "C" {
        fn clock_gettime(clock: i32, ts: *mut Timespec) -> i32;
    }
    const CLOCK_PROCESS_CPUTIME_ID: i32 = 2;
    let mut ts = Timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec (64-bit Linux layout).
    if unsafe { clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &mut ts) } != 0 {
        return 0.0;
    }
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

/// `host:port` and the request target of a `ws://` URL.
fn split_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("ws://")?;
    Some(match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    })
}

fn connect(url: &str) -> Result<tungstenite::WebSocket<TcpStream>, String> {
    let (addr, _) = split_url(url).ok_or_else(|| format!("not a ws:// URL: {url}"))?;
    let tcp = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    tcp.set_nodelay(true).map_err(|e| e.to_string())?;
    let (ws, _) =
        tungstenite::client::client_with_config(url, tcp, Some(WebSocketConfig::default()))
            .map_err(|e| format!("handshake: {e}"))?;
    Ok(ws)
}

/// What the callback sees: the same work as bench/recv.c's.
#[derive(Default)]
struct Counter {
    count: u64,
    bytes: u64,
    checksum: u64,
}

/// The C callback every message is handed to.
extern "C" fn on_message(userdata: *mut c_void, data: *const u8, len: usize) {
    // SAFETY: `userdata` is the `Counter` that `throughput` passes, alive for the call.
    let c = unsafe { &mut *(userdata as *mut Counter) };
    c.count += 1;
    c.bytes += len as u64;
    if len > 0 {
        // SAFETY: `data` points at `len` readable bytes for the duration of the call.
        c.checksum += u64::from(unsafe { *data });
    }
}

type Callback = extern "C" fn(*mut c_void, *const u8, usize);

fn throughput(url: &str, n: u64) -> Result<(), String> {
    let mut ws = connect(url)?;
    let cb: Callback = std::hint::black_box(on_message);
    // The counter lives behind the pointer the callback gets; this loop only reads it
    // through the same pointer.
    let ud = Box::into_raw(Box::<Counter>::default());
    let count = || {
        // SAFETY: `ud` is the live Box above; the callback is not running.
        unsafe { (*ud).count }
    };
    let (mut t0, mut c0) = (Instant::now(), 0.0);
    let mut first_len = 0u64;
    while count() < n {
        match ws.read().map_err(|e| format!("after {} messages: {e}", count()))? {
            Message::Text(t) => {
                cb(ud.cast(), t.as_str().as_ptr(), t.len());
                if count() == 1 {
                    t0 = Instant::now();
                    c0 = cpu_seconds();
                    first_len = t.len() as u64;
                }
            }
            Message::Binary(b) => cb(ud.cast(), b.as_ptr(), b.len()),
            Message::Close(_) => return Err(format!("closed after {} messages", count())),
            _ => {}
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - c0;
    let _ = ws.close(None);
    let _ = ws.flush();
    // SAFETY: `ud` came from Box::into_raw and is not used after this.
    let counter = unsafe { Box::from_raw(ud) };
    let bytes = counter.bytes - first_len;
    println!(
        "mode=throughput messages={n} seconds={secs:.4} msgs_per_s={:.0} mb_per_s={:.1} \
         cpu_seconds={cpu:.4} ns_cpu_per_msg={:.1} payload_bytes={bytes} checksum={}",
        (n - 1) as f64 / secs,
        bytes as f64 / secs / 1e6,
        cpu * 1e9 / (n - 1) as f64,
        counter.checksum
    );
    Ok(())
}

/// The 150-byte JSON text every echo client sends.
const ECHO_MESSAGE: &str = r#"{"sensor":"greenhouse-07","seq":0,"temperature":21.50,"humidity":55.5,"pressure":1013.25,"ts":1732400000000,"pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}"#;

fn echo(url: &str, n: usize, warmup: usize) -> Result<(), String> {
    assert_eq!(ECHO_MESSAGE.len(), 150);
    let mut ws = connect(url)?;
    let mut rtts = Vec::with_capacity(n);
    for i in 0..warmup + n {
        let t0 = Instant::now();
        ws.send(Message::text(ECHO_MESSAGE)).map_err(|e| format!("send: {e}"))?;
        loop {
            match ws.read().map_err(|e| format!("read: {e}"))? {
                Message::Text(t) if t.len() == ECHO_MESSAGE.len() => break,
                Message::Close(_) => return Err("closed".into()),
                _ => {}
            }
        }
        if i >= warmup {
            rtts.push(t0.elapsed().as_nanos() as u64);
        }
    }
    let _ = ws.close(None);
    let _ = ws.flush();
    rtts.sort_unstable();
    let pct = |p: usize| rtts[(rtts.len() * p / 100).min(rtts.len() - 1)] as f64 / 1e3;
    let mean = rtts.iter().sum::<u64>() as f64 / rtts.len() as f64 / 1e3;
    println!(
        "mode=echo roundtrips={n} p50_us={:.1} p90_us={:.1} p99_us={:.1} mean_us={mean:.1} max_us={:.1}",
        pct(50),
        pct(90),
        pct(99),
        *rtts.last().unwrap() as f64 / 1e3
    );
    Ok(())
}

/// Walks frame headers in `buf[*at..]`; returns the number of complete frames passed.
/// `*at` may end up past the buffer when the last frame continues in later reads.
fn walk(buf: &[u8], at: &mut usize) -> u64 {
    let mut frames = 0;
    loop {
        let b = &buf[*at..];
        if b.len() < 2 {
            return frames;
        }
        let (len, hdr) = match b[1] & 0x7f {
            126 if b.len() >= 4 => (u16::from_be_bytes([b[2], b[3]]) as usize, 4),
            127 if b.len() >= 10 => (u64::from_be_bytes(b[2..10].try_into().unwrap()) as usize, 10),
            126 | 127 => return frames,
            n => (n as usize, 2),
        };
        *at += hdr + len; // may point past the buffer: the payload continues in later reads
        frames += 1;
        if *at > buf.len() {
            return frames;
        }
    }
}

fn drain(url: &str, n: u64, skip: u64, text: Option<&str>) -> Result<(), String> {
    let (addr, target) = split_url(url).ok_or_else(|| format!("not a ws:// URL: {url}"))?;
    let mut tcp = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    let req = format!(
        "GET {target} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    tcp.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 1 << 20];
    let mut have = 0;
    let head_end = loop {
        let r = tcp.read(&mut buf[have..]).map_err(|e| e.to_string())?;
        if r == 0 {
            return Err("closed during the handshake".into());
        }
        have += r;
        if let Some(i) = buf[..have].windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    if !buf.starts_with(b"HTTP/1.1 101") {
        return Err("no 101 response".into());
    }
    if let Some(t) = text {
        // One masked text frame (mask 0: payload unchanged).
        let mut f = vec![0x81, 0x80 | t.len() as u8, 0, 0, 0, 0];
        f.extend_from_slice(t.as_bytes());
        tcp.write_all(&f).map_err(|e| e.to_string())?;
    }
    let t0 = Instant::now();
    let c0 = cpu_seconds();
    // `at`: where the next frame header starts, relative to the start of `buf`'s content.
    let mut at = head_end;
    let mut frames = walk(&buf[..have], &mut at);
    let mut bytes = (have - head_end) as u64;
    while frames < n + skip {
        // Keep an incomplete header; drop everything before it.
        if at < have {
            buf.copy_within(at..have, 0);
            have -= at;
            at = 0;
        } else {
            at -= have;
            have = 0;
        }
        let r = tcp.read(&mut buf[have..]).map_err(|e| e.to_string())?;
        if r == 0 {
            return Err(format!("closed after {frames} frames"));
        }
        bytes += r as u64;
        have += r;
        if at >= have {
            continue;
        }
        frames += walk(&buf[..have], &mut at);
    }
    let secs = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - c0;
    println!(
        "mode=drain messages={n} seconds={secs:.4} msgs_per_s={:.0} mb_per_s={:.1} cpu_seconds={cpu:.4}",
        n as f64 / secs,
        bytes as f64 / secs / 1e6
    );
    Ok(())
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: tungstenite_recv throughput URL N\n       tungstenite_recv echo URL N [WARMUP]\n       \
         tungstenite_recv drain URL N SKIP [TEXT]"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num = |i: usize| args.get(i).and_then(|v| v.parse::<u64>().ok());
    let result = match (args.first().map(String::as_str), args.get(1), num(2)) {
        (Some("throughput"), Some(url), Some(n)) if n >= 2 && args.len() == 3 => throughput(url, n),
        (Some("echo"), Some(url), Some(n)) if n >= 1 && args.len() <= 4 => {
            let warmup = if args.len() == 4 {
                match num(3) {
                    Some(w) => w as usize,
                    None => return usage(),
                }
            } else {
                1000
            };
            echo(url, n as usize, warmup)
        }
        (Some("drain"), Some(url), Some(n)) if (4..=5).contains(&args.len()) => match num(3) {
            Some(skip) => drain(url, n, skip, args.get(4).map(String::as_str)),
            None => return usage(),
        },
        _ => return usage(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tungstenite_recv: {e}");
            ExitCode::FAILURE
        }
    }
}
