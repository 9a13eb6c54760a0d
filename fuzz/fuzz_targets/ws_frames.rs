//! Fuzzes `livefeed::ws::decode::Decoder`, which reads every WebSocket frame a server
//! sends, fed the way the connection feeds it: whatever the last read brought, after the
//! bytes the decoder left unconsumed.
//!
//! Input layout (also in fuzz/README.md):
//!   byte 0   limits: bits 0-2 pick `max_frame`, bits 3-5 pick `max_message`
//!   byte 1   bits 0-2: how many split sizes follow (0: one piece)
//!   n bytes  split sizes, used in turn: piece length = byte + 1
//!   rest     the bytes the "server" sends
//!
//! Checks, besides "never panics":
//!   - the decoder never leaves more than `MAX_UNCONSUMED` bytes unconsumed, and never
//!     claims more than it was given;
//!   - messages respect the limits, and text is valid UTF-8 (the type says so; the length
//!     is checked);
//!   - the outcome does not depend on how the bytes were split: feeding everything at once
//!     and feeding the fuzzer's pieces give the same frames and the same error, if any.
//!     In the split run every other piece goes, when a frame is cut, straight into
//!     `payload_room` as a long frame's socket reads do.

#![no_main]

use libfuzzer_sys::fuzz_target;
use livefeed::error::ErrorCode;
use livefeed::ws::decode::{Decoder, Frame, MAX_UNCONSUMED};

const MAX_FRAMES: [usize; 8] = [0, 1, 16, 125, 126, 1024, 65536, 1 << 20];
const MAX_MESSAGES: [usize; 8] = [0, 1, 16, 200, 4096, 65536, 1 << 20, 1 << 30];

/// What decoding produced: every frame (as text) and the error that ended it, if any.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    frames: Vec<String>,
    error: Option<ErrorCode>,
}

fn decode(limits: (usize, usize), pieces: &[usize], data: &[u8]) -> Outcome {
    let (max_frame, max_message) = limits;
    let mut decoder = Decoder::new(max_frame, max_message, 0);
    let mut frames = Vec::new();
    let mut buf: Vec<u8> = Vec::new();
    let mut fed = 0;
    let mut turn = 0;
    while fed < data.len() {
        let n = if pieces.is_empty() { data.len() } else { pieces[turn % pieces.len()] };
        turn += 1;
        let n = n.min(data.len() - fed);
        if !pieces.is_empty() && turn % 2 == 0 && buf.is_empty() && decoder.missing() > 0 {
            // As the connection reads a long frame: straight into the decoder's room.
            let missing = decoder.missing();
            let room = decoder.payload_room(n);
            let got = room.len();
            assert!(got > 0 && got <= n, "room of {got} for {n} bytes");
            assert!(got as u64 <= missing, "room of {got} for {missing} missing bytes");
            room.copy_from_slice(&data[fed..fed + got]);
            fed += got;
            match decoder.payload_read(got) {
                Err(e) => return Outcome { frames, error: Some(e.code) },
                Ok(Some(f)) => frames.push(format!("{f:?}")),
                Ok(None) => {}
            }
            continue;
        }
        buf.extend_from_slice(&data[fed..fed + n]);
        fed += n;
        let mut pos = 0;
        loop {
            match decoder.decode(&buf[pos..]) {
                Err(e) => return Outcome { frames, error: Some(e.code) },
                Ok((used, frame)) => {
                    assert!(used <= buf.len() - pos, "consumed more than it was given");
                    pos += used;
                    match frame {
                        Some(f) => {
                            match &f {
                                Frame::Text(t) => assert!(t.len() <= max_message),
                                Frame::Binary(b) => assert!(b.len() <= max_message),
                                Frame::Ping(p) | Frame::Pong(p) => assert!(p.len() <= 125),
                                Frame::Close(_) => {}
                            }
                            frames.push(format!("{f:?}"));
                        }
                        None if used > 0 => {}
                        None => break,
                    }
                }
            }
        }
        let left = buf.len() - pos;
        assert!(left <= MAX_UNCONSUMED, "{left} bytes left unconsumed");
        buf.drain(..pos);
    }
    Outcome { frames, error: None }
}

fuzz_target!(|input: &[u8]| {
    let [limits, splits, rest @ ..] = input else { return };
    let count = usize::from(splits & 7).min(rest.len());
    let (sizes, data) = rest.split_at(count);
    let pieces: Vec<usize> = sizes.iter().map(|&b| usize::from(b) + 1).collect();
    let limits =
        (MAX_FRAMES[usize::from(limits & 7)], MAX_MESSAGES[usize::from((limits >> 3) & 7)]);
    let whole = decode(limits, &[], data);
    let split = decode(limits, &pieces, data);
    assert_eq!(whole, split, "the outcome depends on how the bytes were split");
});
