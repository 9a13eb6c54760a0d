//! RFC 6455 frames as a client receives them, without copies where none are needed.
//!
//! A message that arrives whole in one frame inside the input is handed out as a view
//! into that input: no allocation, no copy, one UTF-8 check. Only a message that spans
//! frames (fragmentation) or reads (a frame cut by the end of the input) is assembled in
//! the decoder's own buffer. A fragmented text message is checked as each fragment ends,
//! so a bad one fails at once, and again as a whole (fragmented messages are rare; a
//! frame that is merely cut by a read is checked once, when it is complete). Sans-IO:
//! the caller reads the socket and feeds the bytes (the fuzz target `ws_frames` drives
//! it directly).

use crate::error::{Error, ErrorCode, Result};

/// One decoded frame, or a completed message.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A complete text message (valid UTF-8).
    Text(&'a str),
    /// A complete binary message.
    Binary(&'a [u8]),
    /// A ping with its payload.
    Ping(&'a [u8]),
    /// A pong with its payload.
    Pong(&'a [u8]),
    /// A close frame: its status code and reason, if it carried any.
    Close(Option<(u16, &'a str)>),
}

/// The longest frame header: 2 bytes, an 8-byte length and a 4-byte mask (which a server
/// may not send, but the length is what the header says).
const MAX_HEADER: usize = 14;

/// The most bytes [`Decoder::decode`] may leave unconsumed when it asks for more: a
/// control frame with its header (data frames are taken as far as they arrived).
pub const MAX_UNCONSUMED: usize = MAX_HEADER + 125;

const CONTINUATION: u8 = 0x0;
const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xA;

/// The largest allocation made ahead of a long frame's payload; the rest grows as the
/// bytes arrive, so a header alone cannot make the decoder ask for a gigabyte.
const RESERVE_AHEAD: usize = 1 << 20;

struct Header {
    fin: bool,
    opcode: u8,
    len: u64,
    size: usize,
}

fn protocol(message: impl Into<String>) -> Error {
    Error::new(ErrorCode::WsProtocol, message)
}

fn invalid_utf8(what: &str) -> Error {
    Error::new(ErrorCode::WsInvalidUtf8, format!("invalid UTF-8 in {what}"))
}

/// Parses a frame header; `None` when `input` does not hold all of it yet.
fn parse_header(input: &[u8]) -> Result<Option<Header>> {
    let (Some(&b0), Some(&b1)) = (input.first(), input.get(1)) else {
        return Ok(None);
    };
    if b0 & 0x70 != 0 {
        return Err(protocol("a frame with reserved bits set (no extension was negotiated)"));
    }
    let opcode = b0 & 0x0F;
    if !matches!(opcode, CONTINUATION | TEXT | BINARY | CLOSE | PING | PONG) {
        return Err(protocol(format!("a frame with the reserved opcode {opcode:#x}")));
    }
    if b1 & 0x80 != 0 {
        return Err(protocol("the server masked a frame (RFC 6455 5.1 forbids it)"));
    }
    let fin = b0 & 0x80 != 0;
    let (len, size) = match b1 & 0x7F {
        126 => match input.get(2..4) {
            Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 4),
            None => return Ok(None),
        },
        127 => match input.get(2..10) {
            // A length with its most significant bit set (RFC 6455 5.2 forbids it) is
            // over every limit, and fails as too large.
            Some(b) => (u64::from_be_bytes(b.try_into().unwrap_or_default()), 10),
            None => return Ok(None),
        },
        n => (u64::from(n), 2),
    };
    if opcode >= CLOSE {
        if !fin {
            return Err(protocol("a fragmented control frame"));
        }
        if len > 125 {
            return Err(protocol(format!("a control frame of {len} bytes (at most 125)")));
        }
    }
    Ok(Some(Header { fin, opcode, len, size }))
}

/// Whether a close frame may carry `code` on the wire (RFC 6455 7.4; 1004-1006 and 1015
/// are reserved for endpoints, 1016-2999 for future standards).
fn close_code_allowed(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

fn parse_close(payload: &[u8]) -> Result<Option<(u16, &str)>> {
    match payload {
        [] => Ok(None),
        [_] => Err(protocol("a close frame with a 1-byte payload")),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            if !close_code_allowed(code) {
                return Err(protocol(format!(
                    "a close frame with the status code {code}, which may not appear on the wire"
                )));
            }
            let reason =
                std::str::from_utf8(reason).map_err(|_| invalid_utf8("a close frame's reason"))?;
            Ok(Some((code, reason)))
        }
    }
}

/// A data frame whose payload is still arriving.
struct Partial {
    left: u64,
    fin: bool,
}

/// Decodes the frames a server sends, one call per frame.
pub struct Decoder {
    max_frame: u64,
    max_message: usize,
    /// The smallest allocation for a message that must be assembled.
    min_assembly: usize,
    /// The kind (text or binary) of a message that spans frames or reads, while it lasts.
    message: Option<u8>,
    /// That message's bytes so far, `..filled`; while a frame is cut, zeros after them that
    /// the socket reads the frame's next bytes into (see [`Decoder::payload_room`]).
    assembly: Vec<u8>,
    /// How much of `assembly` holds the message.
    filled: usize,
    /// How much of `assembly` is known to be valid UTF-8 (checked at fragment ends).
    checked: usize,
    /// The data frame cut by the end of the input, if any.
    partial: Option<Partial>,
    /// The last call handed out the assembled message: clear it first.
    delivered: bool,
}

impl Decoder {
    /// A decoder for frames up to `max_frame` bytes and messages up to `max_message`;
    /// `min_assembly` is the first allocation when a message must be assembled.
    pub fn new(max_frame: usize, max_message: usize, min_assembly: usize) -> Decoder {
        Decoder {
            max_frame: max_frame as u64,
            max_message,
            min_assembly,
            message: None,
            assembly: Vec::new(),
            filled: 0,
            checked: 0,
            partial: None,
            delivered: false,
        }
    }

    /// Decodes from the start of `input`: returns how many bytes it consumed and the frame
    /// or message they completed, if any. With `(n, None)` the caller feeds the input from
    /// `n` on again with more bytes after it; at most [`MAX_UNCONSUMED`] bytes are left
    /// unconsumed then. Any error fails the connection (its code says with which close code).
    pub fn decode<'a>(&'a mut self, input: &'a [u8]) -> Result<(usize, Option<Frame<'a>>)> {
        if self.delivered {
            self.delivered = false;
            self.assembly.clear();
            self.filled = 0;
            self.checked = 0;
            self.message = None;
        }
        if let Some(partial) = &self.partial {
            let n = input.len().min(usize::try_from(partial.left).unwrap_or(usize::MAX));
            self.put(&input[..n]);
            let frame = self.payload_arrived(n)?;
            return Ok((n, frame));
        }
        let Some(h) = parse_header(input)? else {
            return Ok((0, None));
        };
        let available = input.len() - h.size;
        let whole = h.len <= available as u64;
        if h.opcode < CLOSE && h.len > self.max_frame {
            // Control frames are at most 125 bytes whatever the limit.
            return Err(too_large("frame", h.len, self.max_frame));
        }
        if h.opcode >= CLOSE {
            if !whole {
                return Ok((0, None));
            }
            let payload = &input[h.size..h.size + h.len as usize];
            let frame = match h.opcode {
                PING => Frame::Ping(payload),
                PONG => Frame::Pong(payload),
                _ => Frame::Close(parse_close(payload)?),
            };
            return Ok((h.size + payload.len(), Some(frame)));
        }
        match (h.opcode, self.message) {
            (CONTINUATION, None) => {
                return Err(protocol("a continuation frame with no message to continue"));
            }
            (TEXT | BINARY, Some(_)) => {
                return Err(protocol("a new message began inside a fragmented one"));
            }
            _ => {}
        }
        let len = h.len as usize; // fits: at most max_frame, a usize
        if self.message.is_none() && h.fin && whole {
            // The common case: the whole message in one frame, in the input.
            if len > self.max_message {
                return Err(too_large("message", h.len, self.max_message as u64));
            }
            let payload = &input[h.size..h.size + len];
            let frame = if h.opcode == TEXT {
                Frame::Text(
                    std::str::from_utf8(payload).map_err(|_| invalid_utf8("a text message"))?,
                )
            } else {
                Frame::Binary(payload)
            };
            return Ok((h.size + len, Some(frame)));
        }
        // Assembled: a fragment, or a frame the input holds only the start of.
        let total = self.filled as u64 + h.len;
        if total > self.max_message as u64 {
            return Err(too_large("message", total, self.max_message as u64));
        }
        if self.message.is_none() {
            self.message = Some(h.opcode);
            let ahead = len.max(self.min_assembly).min(RESERVE_AHEAD);
            self.assembly.reserve(ahead);
        }
        let take = len.min(available);
        if take < len {
            self.partial = Some(Partial { left: (len - take) as u64, fin: h.fin });
        }
        self.put(&input[h.size..h.size + take]);
        let frame = self.assembled(take == len, h.fin)?;
        Ok((h.size + take, frame))
    }

    /// Adds bytes of the message, into the zeroed room first.
    fn put(&mut self, bytes: &[u8]) {
        let room = (self.assembly.len() - self.filled).min(bytes.len());
        self.assembly[self.filled..self.filled + room].copy_from_slice(&bytes[..room]);
        self.assembly.extend_from_slice(&bytes[room..]);
        self.filled += bytes.len();
    }

    /// Bytes still missing from the data frame cut by the end of the input (0: none is).
    pub fn missing(&self) -> u64 {
        self.partial.as_ref().map_or(0, |p| p.left)
    }

    /// Room for up to `max` more bytes of the cut frame's payload, to read straight from
    /// the socket: a long message then skips the copy through the loop's chunk. Each byte
    /// of the room is zeroed once (the room is kept between reads). Empty when no frame
    /// is cut; the caller hands the count read to [`Decoder::payload_read`].
    pub fn payload_room(&mut self, max: usize) -> &mut [u8] {
        let want = usize::try_from(self.missing()).unwrap_or(usize::MAX).min(max);
        if self.assembly.len() - self.filled < want {
            self.assembly.resize(self.filled + want, 0);
        }
        &mut self.assembly[self.filled..self.filled + want]
    }

    /// `n` bytes were read into [`Decoder::payload_room`]: the message they complete, if any.
    pub fn payload_read(&mut self, n: usize) -> Result<Option<Frame<'_>>> {
        self.filled += n;
        self.payload_arrived(n)
    }

    /// `n` more bytes of the cut frame's payload are in: the message they complete, if any.
    fn payload_arrived(&mut self, n: usize) -> Result<Option<Frame<'_>>> {
        let Some(partial) = &mut self.partial else {
            return Ok(None);
        };
        partial.left -= n as u64;
        let (done, fin) = (partial.left == 0, partial.fin);
        if done {
            self.partial = None;
            self.assembly.truncate(self.filled); // no room left over
        }
        self.assembled(done, fin)
    }

    /// After a frame's bytes were added: checks a text fragment that ended, and hands
    /// the message out once its last frame ended.
    fn assembled(&mut self, frame_done: bool, last: bool) -> Result<Option<Frame<'_>>> {
        let text = self.message == Some(TEXT);
        if !(frame_done && last) {
            if frame_done && text {
                match std::str::from_utf8(&self.assembly[self.checked..self.filled]) {
                    Ok(_) => self.checked = self.filled,
                    // A character split between fragments: its end is in the next one.
                    Err(e) if e.error_len().is_none() => self.checked += e.valid_up_to(),
                    Err(_) => return Err(invalid_utf8("a text message")),
                }
            }
            return Ok(None);
        }
        self.delivered = true;
        Ok(Some(if text {
            Frame::Text(
                std::str::from_utf8(&self.assembly[..self.filled])
                    .map_err(|_| invalid_utf8("a text message"))?,
            )
        } else {
            Frame::Binary(&self.assembly[..self.filled])
        }))
    }

    /// Whether a message is being assembled (its bytes are held here).
    pub fn is_assembling(&self) -> bool {
        self.message.is_some() && !self.delivered
    }

    /// Gives the assembly buffer's memory back while no message is in progress (an idle
    /// session holds none).
    pub fn release_idle(&mut self) {
        if !self.is_assembling() {
            self.assembly = Vec::new();
            self.filled = 0;
            self.checked = 0;
            self.message = None;
            self.delivered = false;
        }
    }
}

fn too_large(what: &str, len: u64, limit: u64) -> Error {
    Error::new(
        ErrorCode::WsTooLarge,
        format!("a {what} of {len} bytes exceeds the limit of {limit} bytes"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server frame (unmasked) with the given first byte and payload.
    fn frame(b0: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![b0];
        match payload.len() {
            n @ 0..=125 => out.push(n as u8),
            n @ 126..=0xFFFF => {
                out.push(126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(payload);
        out
    }

    fn decoder() -> Decoder {
        Decoder::new(1 << 20, 1 << 20, 0)
    }

    fn code(r: Result<(usize, Option<Frame<'_>>)>) -> ErrorCode {
        r.err().map(|e| e.code).unwrap_or(ErrorCode::Ok)
    }

    #[test]
    fn whole_messages_are_views_into_the_input() {
        let mut input = frame(0x81, b"hello");
        input.extend(frame(0x82, &[1, 2, 3]));
        let mut d = decoder();
        let (n, f) = d.decode(&input).unwrap();
        assert_eq!((n, f), (7, Some(Frame::Text("hello"))));
        let rest = &input[7..];
        let (n, f) = d.decode(rest).unwrap();
        let Some(Frame::Binary(b)) = f else { panic!("binary expected") };
        assert_eq!(b.as_ptr(), rest[2..].as_ptr(), "no copy");
        assert_eq!(n, rest.len());
        assert_eq!(d.decode(&[]).unwrap(), (0, None));
        assert_eq!(d.assembly.capacity(), 0, "nothing allocated");
    }

    #[test]
    fn a_cut_header_or_control_frame_is_left_for_more_bytes() {
        let mut d = decoder();
        let long = frame(0x81, &[b'a'; 300]);
        assert_eq!(d.decode(&long[..3]).unwrap(), (0, None), "16-bit length cut");
        let ping = frame(0x89, b"abc");
        assert_eq!(d.decode(&ping[..4]).unwrap(), (0, None));
        assert_eq!(d.decode(&ping).unwrap(), (5, Some(Frame::Ping(b"abc"))));
    }

    #[test]
    fn a_frame_cut_by_the_input_is_assembled_byte_by_byte() {
        let text = "héllo € 😀, then more text";
        let input = frame(0x81, text.as_bytes());
        let mut d = decoder();
        let (mut pos, mut got) = (0, None);
        // One byte more at a time: every cut, including inside the header and characters.
        for end in 1..=input.len() {
            let (n, f) = d.decode(&input[pos..end]).unwrap();
            pos += n;
            if let Some(f) = f {
                got = Some(format!("{f:?}"));
            }
        }
        assert_eq!(pos, input.len());
        assert_eq!(got, Some(format!("{:?}", Frame::Text(text))));
    }

    #[test]
    fn a_long_frame_is_read_into_its_room() {
        let text: String = "0123456789€".repeat(3000);
        let input = frame(0x81, text.as_bytes());
        let mut d = decoder();
        assert_eq!(d.decode(&input[..1000]).unwrap(), (1000, None));
        let mut fed = 1000;
        let mut got = None;
        while fed < input.len() {
            assert!(d.missing() > 0);
            let room = d.payload_room(4096);
            let n = room.len().min(1500); // a short read: the room stays for the next one
            room[..n].copy_from_slice(&input[fed..fed + n]);
            fed += n;
            assert!(d.assembly.len() <= d.filled + 4096, "zeroed at most 4 KiB ahead");
            if let Some(f) = d.payload_read(n).unwrap() {
                got = Some(format!("{f:?}"));
            }
        }
        assert_eq!(got, Some(format!("{:?}", Frame::Text(&text))));
        assert_eq!(d.missing(), 0);
        assert!(d.payload_room(4096).is_empty(), "no room without a cut frame");
    }

    #[test]
    fn fragments_are_joined_with_control_frames_between_them() {
        let mut input = frame(0x01, b"he");
        input.extend(frame(0x89, b"p"));
        input.extend(frame(0x00, b"ll"));
        input.extend(frame(0x80, b"o"));
        let mut d = decoder();
        let mut pos = 0;
        let mut frames = Vec::new();
        while pos < input.len() {
            let (n, f) = d.decode(&input[pos..]).unwrap();
            pos += n;
            frames.extend(f.map(|f| format!("{f:?}")));
        }
        assert_eq!(frames, [format!("{:?}", Frame::Ping(b"p")), r#"Text("hello")"#.to_string()]);
        assert!(!d.is_assembling());
        d.release_idle();
        assert_eq!(d.assembly.capacity(), 0);
    }

    #[test]
    fn a_bad_text_fragment_fails_before_the_message_ends() {
        let mut d = decoder();
        // "€" split between fragments is fine; 0xFF is not, whatever follows.
        assert_eq!(d.decode(&frame(0x01, &[0xE2, 0x82])).unwrap(), (4, None));
        assert_eq!(d.decode(&frame(0x00, &[0xAC, b'!'])).unwrap(), (4, None));
        assert_eq!(code(d.decode(&frame(0x00, &[0xFF]))), ErrorCode::WsInvalidUtf8);
    }

    #[test]
    fn protocol_violations_fail_with_their_codes() {
        let cases: &[(Vec<u8>, ErrorCode)] = &[
            (frame(0xC1, b"x"), ErrorCode::WsProtocol), // RSV1
            (frame(0x83, b"x"), ErrorCode::WsProtocol), // reserved data opcode
            (frame(0x8B, b""), ErrorCode::WsProtocol),  // reserved control opcode
            (vec![0x81, 0x81, 1, 2, 3, 4, b'x'], ErrorCode::WsProtocol), // masked
            (frame(0x09, b""), ErrorCode::WsProtocol),  // fragmented ping
            (frame(0x89, &[0; 126]), ErrorCode::WsProtocol), // long ping
            (frame(0x80, b"x"), ErrorCode::WsProtocol), // continuation of nothing
            (frame(0x81, &[0xC3, 0x28]), ErrorCode::WsInvalidUtf8),
            (frame(0x88, &[3]), ErrorCode::WsProtocol), // 1-byte close
            (frame(0x88, &[0x03, 0xED]), ErrorCode::WsProtocol), // 1005 on the wire
            (frame(0x88, &[0x03, 0xE8, 0xFF]), ErrorCode::WsInvalidUtf8),
            (vec![0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0], ErrorCode::WsTooLarge),
            (vec![0x82, 127, 0, 0, 0, 1, 0, 0, 0, 0], ErrorCode::WsTooLarge),
        ];
        for (input, want) in cases {
            assert_eq!(code(decoder().decode(input)), *want, "{input:02x?}");
        }
        let mut d = decoder();
        let start = frame(0x01, b"a");
        d.decode(&start).unwrap();
        assert_eq!(code(d.decode(&frame(0x81, b"b"))), ErrorCode::WsProtocol, "new message inside");
    }

    #[test]
    fn limits_count_frames_and_whole_messages() {
        let mut d = Decoder::new(4, 6, 0);
        assert_eq!(code(d.decode(&frame(0x81, b"12345"))), ErrorCode::WsTooLarge);
        let mut d = Decoder::new(4, 6, 0);
        d.decode(&frame(0x01, b"1234")).unwrap();
        assert_eq!(code(d.decode(&frame(0x80, b"567"))), ErrorCode::WsTooLarge);
        // Control frames are not data: a ping up to 125 bytes passes any frame limit.
        let mut d = Decoder::new(4, 6, 0);
        let ping = frame(0x89, &[7; 125]);
        assert_eq!(d.decode(&ping).unwrap(), (127, Some(Frame::Ping(&[7; 125]))));
        // A huge announced length reserves a bounded amount, not what it announces.
        let mut d = Decoder::new(1 << 30, 1 << 30, usize::MAX);
        let header = [0x82, 127, 0, 0, 0, 0, 0x3F, 0, 0, 0, 7];
        assert_eq!(d.decode(&header).unwrap(), (11, None));
        assert!(d.assembly.capacity() <= RESERVE_AHEAD, "also with a huge LF_LIMIT_READ_BUFFER");
    }

    #[test]
    fn close_frames_carry_code_and_reason() {
        let mut d = decoder();
        assert_eq!(d.decode(&frame(0x88, b"")).unwrap(), (2, Some(Frame::Close(None))));
        let f = frame(0x88, &[0x0F, 0xA0, b'b', b'y', b'e']);
        assert_eq!(d.decode(&f).unwrap(), (7, Some(Frame::Close(Some((4000, "bye"))))));
    }
}
