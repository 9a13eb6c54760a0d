//! An open WebSocket: our decoder for what arrives, tungstenite's codec for what we send,
//! with send accounting and keepalive.

use crate::config::{Limits, MAX_MESSAGE_LIMIT, Timeouts};
use crate::error::{Error, ErrorCode, Result};
use crate::net::Stream;
use crate::ws::decode::{Decoder, Frame};
use std::io::{self, Read};
use std::time::Instant;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{CloseFrame, Role, WebSocketConfig, WebSocketContext};
use tungstenite::{Bytes, Message};

/// How a read pass ended.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadOutcome {
    /// The socket has no more data for now.
    Drained,
    /// The message budget ran out; more data may be waiting.
    Budget,
    /// The connection ended after a close handshake (code, reason).
    Closed(u16, String),
}

/// Frames to write in answer to a message, each with the send budget it returns.
pub type Answers = Vec<(Message, usize)>;

/// One received data message.
pub enum Incoming<'a> {
    /// Text (valid UTF-8).
    Text(&'a str),
    /// Binary.
    Binary(&'a [u8]),
}

/// An open WebSocket connection.
pub struct Link {
    stream: Stream,
    /// tungstenite's codec, for the frames we send.
    ctx: WebSocketContext,
    /// Our decoder, for the frames we receive.
    decoder: Decoder,
    /// Whether our close frame is queued or sent.
    we_closed: bool,
    /// Bytes handed to tungstenite since its buffer was last completely flushed.
    unflushed: usize,
    last_rx: Instant,
    ping_sent: Option<Instant>,
    /// When the ping awaiting its pong went out (for the round-trip time), and the last
    /// round trip measured, not yet collected.
    ping_rtt_from: Option<Instant>,
    rtt: Option<std::time::Duration>,
    peer_close: Option<(u16, String)>,
    /// Socket bytes read into the loop's shared chunk but not consumed when a read pass
    /// ended (its turns ran out, or a header was cut); empty, without an allocation,
    /// while the session is idle.
    spill: Vec<u8>,
}

/// The tungstenite settings for our limits: no read buffer (it does not read), bounded
/// write buffer.
fn codec_config(limits: &Limits) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(0)
        .write_buffer_size(0)
        // Our own accounting refuses sends first; this is a backstop above it.
        .max_write_buffer_size(
            limits.max_send_buffer.saturating_mul(2).saturating_add(limits.max_message),
        )
        .max_message_size(Some(limits.max_message.min(MAX_MESSAGE_LIMIT)))
        .max_frame_size(Some(limits.max_frame.min(MAX_MESSAGE_LIMIT)))
}

/// Maps a tungstenite write error to ours; `None` for "would block".
fn map_error(e: tungstenite::Error) -> Option<Error> {
    use tungstenite::Error as T;
    Some(match e {
        T::Io(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
        T::Io(e) => Error::new(ErrorCode::Io, format!("connection lost: {e}")),
        T::ConnectionClosed | T::AlreadyClosed => {
            Error::new(ErrorCode::Closed, "connection closed")
        }
        T::Protocol(p) => {
            Error::new(ErrorCode::WsProtocol, format!("WebSocket protocol error: {p}"))
        }
        T::Capacity(c) => Error::new(ErrorCode::WsTooLarge, format!("size limit exceeded: {c}")),
        T::WriteBufferFull(_) => Error::new(ErrorCode::Backpressure, "write buffer full"),
        other => Error::new(ErrorCode::WsProtocol, other.to_string()),
    })
}

/// The close code a client sends when it fails the connection for `code`.
fn close_code_for(code: ErrorCode) -> Option<CloseCode> {
    match code {
        ErrorCode::WsProtocol => Some(CloseCode::Protocol),
        ErrorCode::WsInvalidUtf8 => Some(CloseCode::Invalid),
        ErrorCode::WsTooLarge => Some(CloseCode::Size),
        _ => None,
    }
}

/// Bytes one read pass may take from the socket. Frames that never complete a message
/// (endless fragments) or control frames (a ping flood) would otherwise keep the loop
/// thread in one pass for as long as the peer keeps sending.
const READ_PASS_BYTES: usize = 256 << 10;

/// A frame still missing at least this much is read straight into its message.
const DIRECT_READ_MIN: usize = 32 << 10;

/// The most one such read asks for (and zeroes ahead of the data).
const DIRECT_READ_MAX: usize = 256 << 10;

/// What one read pass may still do.
struct Pass {
    /// Messages and control frames the pass may still hand out (a hard limit: a flood of
    /// tiny frames stops here, and the rest of the read waits in the spill).
    frames_left: usize,
    /// Below this many frames left, the pass reads the socket no more. Halfway: one read
    /// of ordinary messages fits in what remains, so nothing is copied aside for them.
    read_floor: usize,
    /// Socket bytes left to read.
    bytes_left: usize,
    /// Whether a frame was decoded (bytes alone do not prove the peer alive).
    got_any: bool,
}

/// What a decoded frame asks of the link once the frame's bytes are no longer borrowed.
enum Then {
    Write(Answers),
    Pong(Bytes),
    ReplyClose(Option<(u16, String)>),
    Nothing,
}

impl Link {
    /// Wraps a stream whose upgrade succeeded; `leftover` are bytes read past the 101.
    pub fn new(stream: Stream, leftover: Vec<u8>, limits: &Limits, now: Instant) -> Link {
        // Frames are read by our decoder: tungstenite's codec only writes, so it gets
        // no read buffer.
        let ctx = WebSocketContext::new(Role::Client, Some(codec_config(limits)));
        Link {
            stream,
            ctx,
            decoder: Decoder::new(
                limits.max_frame.min(MAX_MESSAGE_LIMIT),
                limits.max_message.min(MAX_MESSAGE_LIMIT),
                limits.read_buffer,
            ),
            we_closed: false,
            unflushed: 0,
            last_rx: now,
            ping_sent: None,
            ping_rtt_from: None,
            rtt: None,
            peer_close: None,
            spill: leftover,
        }
    }

    /// The stream, for registration changes.
    pub fn stream_mut(&mut self) -> &mut Stream {
        &mut self.stream
    }

    /// One read pass: hands each message to `on_message` and writes the answers it returns
    /// before the next frame; at most `budget` frames (control frames included), and no
    /// more socket reads once half of them are used. `chunk` is the loop's shared read
    /// buffer: a message that arrived whole in it reaches `on_message` as a view into it,
    /// uncopied.
    pub fn read(
        &mut self,
        budget: usize,
        now: Instant,
        chunk: &mut [u8],
        on_message: &mut dyn FnMut(Incoming<'_>) -> Result<Answers>,
    ) -> Result<ReadOutcome> {
        let mut pass = Pass {
            frames_left: budget,
            read_floor: budget / 2,
            bytes_left: READ_PASS_BYTES,
            got_any: false,
        };
        let outcome = self.read_pass(&mut pass, chunk, now, on_message);
        if matches!(outcome, Ok(ReadOutcome::Drained)) {
            // Idle again: an idle session holds no read memory it does not need.
            if self.spill.is_empty() {
                self.spill = Vec::new();
            }
            self.decoder.release_idle();
        }
        self.finish_read(outcome, pass.got_any, now)
    }

    fn read_pass(
        &mut self,
        pass: &mut Pass,
        chunk: &mut [u8],
        now: Instant,
        on_message: &mut dyn FnMut(Incoming<'_>) -> Result<Answers>,
    ) -> Result<ReadOutcome> {
        let mut end = 0;
        if !self.spill.is_empty() {
            // Bytes kept from the last pass (or read past the upgrade) come first.
            let mut spill = std::mem::take(&mut self.spill);
            let (used, out_of_turns) = self.frames(&spill, pass, now, on_message)?;
            if out_of_turns {
                spill.drain(..used);
                self.spill = spill;
                return Ok(ReadOutcome::Budget);
            }
            // What is left is short (a header, a control frame): it moves to the chunk.
            let rest = &spill[used..];
            chunk[..rest.len()].copy_from_slice(rest);
            end = rest.len();
            spill.clear(); // the allocation stays while the session is busy
            self.spill = spill;
        }
        loop {
            let (used, out_of_turns) = self.frames(&chunk[..end], pass, now, on_message)?;
            if out_of_turns {
                self.spill.extend_from_slice(&chunk[used..end]);
                return Ok(ReadOutcome::Budget);
            }
            // The decoder wants more: keep its unconsumed tail at the front of the chunk.
            chunk.copy_within(used..end, 0);
            end -= used;
            if pass.frames_left <= pass.read_floor || pass.bytes_left == 0 {
                self.spill.extend_from_slice(&chunk[..end]);
                return Ok(ReadOutcome::Budget);
            }
            // The rest of a long frame goes straight into its message (the chunk is empty:
            // the decoder took all of it); everything else through the chunk.
            let direct = end == 0 && self.decoder.missing() >= DIRECT_READ_MIN as u64;
            let read = if direct {
                let room = self.decoder.payload_room(pass.bytes_left.min(DIRECT_READ_MAX));
                self.stream.read(room)
            } else {
                let want = (chunk.len() - end).min(pass.bytes_left);
                self.stream.read(&mut chunk[end..end + want])
            };
            match read {
                Ok(0) => return self.at_eof(),
                Ok(n) if direct => {
                    pass.bytes_left -= n;
                    if let Some(frame) = self.decoder.payload_read(n)? {
                        pass.got_any = true;
                        pass.frames_left = pass.frames_left.saturating_sub(1);
                        let answers = match frame {
                            Frame::Text(t) => on_message(Incoming::Text(t))?,
                            Frame::Binary(b) => on_message(Incoming::Binary(b))?,
                            _ => Vec::new(), // only data frames are ever cut
                        };
                        self.write_all(answers)?;
                    }
                }
                Ok(n) => {
                    pass.bytes_left -= n;
                    end += n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.spill.extend_from_slice(&chunk[..end]);
                    return Ok(ReadOutcome::Drained);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // A reset after the peer's close frame (it got our reply after closing its
                // socket) still ends a clean close.
                Err(_) if self.peer_close.is_some() => return self.at_eof(),
                Err(e) => return Err(Error::new(ErrorCode::Io, format!("connection lost: {e}"))),
            }
        }
    }

    /// Decodes and handles the frames in `input` until it needs more bytes (`false`) or
    /// the pass's turns run out (`true`); returns the bytes it consumed as well.
    fn frames(
        &mut self,
        input: &[u8],
        pass: &mut Pass,
        now: Instant,
        on_message: &mut dyn FnMut(Incoming<'_>) -> Result<Answers>,
    ) -> Result<(usize, bool)> {
        let mut pos = 0;
        loop {
            if self.peer_close.is_some() {
                // Nothing the peer sends after its close frame counts (RFC 6455 5.5.1).
                return Ok((input.len(), false));
            }
            if pass.frames_left == 0 {
                return Ok((pos, true));
            }
            let (used, frame) = self.decoder.decode(&input[pos..])?;
            pos += used;
            let Some(frame) = frame else {
                if used > 0 {
                    continue; // a fragment, or the start of a frame: the input may hold more
                }
                return Ok((pos, false));
            };
            pass.got_any = true;
            // Control frames count too: a ping flood gets no more turns than data.
            pass.frames_left -= 1;
            let then = match frame {
                Frame::Text(t) => Then::Write(on_message(Incoming::Text(t))?),
                Frame::Binary(b) => Then::Write(on_message(Incoming::Binary(b))?),
                // Every ping gets its pong, before anything that follows it (the hard
                // limit on frames per pass bounds a flood).
                Frame::Ping(p) => Then::Pong(Bytes::copy_from_slice(p)),
                Frame::Pong(_) => {
                    if let Some(sent) = self.ping_rtt_from.take() {
                        self.rtt = Some(now.saturating_duration_since(sent));
                    }
                    Then::Nothing
                }
                Frame::Close(close) => Then::ReplyClose(close.map(|(c, r)| (c, r.to_string()))),
            };
            match then {
                Then::Write(answers) => self.write_all(answers)?,
                Then::Pong(payload) => self.write(Message::Pong(payload), 0)?,
                Then::ReplyClose(close) => {
                    // Echo the status code (RFC 6455 5.5.1); the peer then ends the TCP
                    // connection, and the pass that sees it reports `Closed`.
                    let reply = close.as_ref().map(|(code, _)| CloseFrame {
                        code: CloseCode::from(*code),
                        reason: "".into(),
                    });
                    self.peer_close = Some(close.unwrap_or((1005, String::new())));
                    // Best effort: a peer that hung up right after its close frame has
                    // still closed cleanly.
                    let _ = self.close_with(reply);
                }
                Then::Nothing => {}
            }
        }
    }

    /// The peer ended the TCP connection.
    fn at_eof(&mut self) -> Result<ReadOutcome> {
        match self.peer_close.take() {
            Some((code, reason)) => Ok(ReadOutcome::Closed(code, reason)),
            // We closed first and the peer hung up without its close frame: an end, but
            // an abnormal one (RFC 6455 7.1.5: no close frame, 1006).
            None if self.we_closed => Ok(ReadOutcome::Closed(1006, String::new())),
            None => Err(Error::new(
                ErrorCode::WsAbnormalClose,
                "peer closed the connection without a close frame",
            )),
        }
    }

    fn finish_read(
        &mut self,
        outcome: Result<ReadOutcome>,
        got_any: bool,
        now: Instant,
    ) -> Result<ReadOutcome> {
        if got_any {
            self.last_rx = now;
            self.ping_sent = None;
        }
        if let Err(e) = &outcome {
            self.fail(e.code);
        }
        outcome
    }

    fn write_all(&mut self, messages: Answers) -> Result<()> {
        if messages.is_empty() {
            return Ok(()); // the common case on the receive path: nothing to answer
        }
        messages.into_iter().try_for_each(|(m, budget)| self.write(m, budget))
    }

    /// Queues a frame; `budget` is the send budget it returns once flushed (the host's
    /// bytes it carries; 0 for frames the library makes itself).
    pub fn write(&mut self, msg: Message, budget: usize) -> Result<()> {
        let len = budget;
        if self.we_closed {
            // Nothing may follow our close frame: an answer the driver still gives (an
            // Engine.IO pong, say) is dropped, and its budget returns with the next flush.
            self.unflushed += len;
            return Ok(());
        }
        match self.ctx.write(&mut self.stream, msg) {
            Ok(()) => {}
            Err(e) => {
                if let Some(err) = map_error(e) {
                    return Err(err);
                }
            }
        }
        self.unflushed += len;
        Ok(())
    }

    /// Writes out buffered frames. Returns the payload bytes released when the buffer emptied.
    pub fn flush(&mut self) -> Result<Option<usize>> {
        match self.ctx.flush(&mut self.stream) {
            Ok(()) => Ok(Some(std::mem::take(&mut self.unflushed))),
            Err(e) => match map_error(e) {
                None => Ok(None),
                Some(err) => Err(err),
            },
        }
    }

    /// Starts the close handshake.
    pub fn close(&mut self, code: u16, reason: &str) -> Result<()> {
        self.close_with(Some(CloseFrame { code: CloseCode::from(code), reason: reason.into() }))
    }

    fn close_with(&mut self, frame: Option<CloseFrame>) -> Result<()> {
        self.we_closed = true;
        match self.ctx.close(&mut self.stream, frame) {
            Ok(()) => Ok(()),
            Err(e) => match map_error(e) {
                None => Ok(()),
                Some(err) if err.code == ErrorCode::Closed => Ok(()),
                Some(err) => Err(err),
            },
        }
    }

    /// Best effort: tell the peer why we fail the connection, then stop.
    fn fail(&mut self, code: ErrorCode) {
        if let Some(close) = close_code_for(code) {
            self.we_closed = true;
            let _ = self
                .ctx
                .close(&mut self.stream, Some(CloseFrame { code: close, reason: "".into() }));
        }
        self.stream.shutdown();
    }

    /// Runs the keepalive: sends a ping when idle, reports a dead peer. Returns the next deadline.
    pub fn keepalive(&mut self, timeouts: &Timeouts, now: Instant) -> Result<Option<Instant>> {
        if timeouts.ping_interval.is_zero() {
            return Ok(None);
        }
        if let Some(sent) = self.ping_sent {
            let dead_at = sent + timeouts.pong_timeout;
            if now >= dead_at {
                self.stream.shutdown();
                return Err(Error::new(
                    ErrorCode::PeerTimeout,
                    format!("no answer to a ping within {:?}", timeouts.pong_timeout),
                ));
            }
            return Ok(Some(dead_at));
        }
        let ping_at = self.last_rx + timeouts.ping_interval;
        if now < ping_at {
            return Ok(Some(ping_at));
        }
        if let Err(e) = self.ctx.write(&mut self.stream, Message::Ping(Bytes::new())) {
            if let Some(err) = map_error(e) {
                return Err(err);
            }
        }
        self.flush()?;
        self.ping_sent = Some(now);
        self.ping_rtt_from = Some(now);
        Ok(Some(now + timeouts.pong_timeout))
    }

    /// The round-trip time of the last answered ping, once.
    pub fn take_rtt(&mut self) -> Option<std::time::Duration> {
        self.rtt.take()
    }

    /// Shuts the socket down.
    pub fn shutdown(&mut self) {
        self.stream.shutdown();
    }
}

impl Link {
    /// When [`Link::keepalive`] next has work to do.
    pub fn keepalive_deadline(&self, timeouts: &Timeouts) -> Option<Instant> {
        if timeouts.ping_interval.is_zero() {
            None
        } else if let Some(sent) = self.ping_sent {
            Some(sent + timeouts.pong_timeout)
        } else {
            Some(self.last_rx + timeouts.ping_interval)
        }
    }

    /// The close frame the peer sent, if any.
    pub fn peer_close(&self) -> Option<(u16, &str)> {
        self.peer_close.as_ref().map(|(c, r)| (*c, r.as_str()))
    }

    /// Reads and drops whatever input is waiting (bounded), before the socket is closed.
    pub fn discard_input(&mut self, scratch: &mut [u8]) {
        use std::io::Read;
        for _ in 0..64 {
            match self.stream.read(scratch) {
                Ok(n) if n > 0 => continue,
                _ => break,
            }
        }
    }

    /// Whether the peer started the close handshake.
    pub fn peer_closed(&self) -> bool {
        self.peer_close.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;
    use std::net::{TcpListener, TcpStream};

    /// A link over loopback, and the server's end of the socket.
    fn pair() -> (Link, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        client.set_nonblocking(true).unwrap();
        let stream = Stream::Plain(mio::net::TcpStream::from_std(client));
        (Link::new(stream, Vec::new(), &Limits::default(), Instant::now()), server)
    }

    /// Reads passes until the socket is drained; the frames each pass handed out.
    fn passes(link: &mut Link, budget: usize, sent: usize) -> Vec<usize> {
        let mut chunk = vec![0; 64 << 10];
        let (mut per_pass, mut total) = (Vec::new(), 0);
        let deadline = Instant::now() + std::time::Duration::from_secs(10);
        while total < sent {
            assert!(Instant::now() < deadline, "{total} of {sent} frames after 10 s");
            let mut n = 0;
            let outcome = link
                .read(budget, Instant::now(), &mut chunk, &mut |_| {
                    n += 1;
                    Ok(Vec::new())
                })
                .unwrap();
            assert!(!matches!(outcome, ReadOutcome::Closed(..)), "{outcome:?}");
            if n > 0 {
                per_pass.push(n);
                total += n;
            }
        }
        per_pass
    }

    #[test]
    fn a_flood_of_tiny_messages_gets_a_bounded_number_of_turns_per_pass() {
        // 100,000 empty text messages (2 bytes each) are 3 reads of the 64 KiB chunk: a pass
        // must still stop at its budget, and lose nothing.
        let (mut link, mut server) = pair();
        let flood = [0x81u8, 0x00].repeat(100_000);
        let writer = std::thread::spawn(move || {
            server.write_all(&flood).unwrap();
            server
        });
        let per_pass = passes(&mut link, 1024, 100_000);
        let _server = writer.join().unwrap();
        assert!(per_pass.iter().all(|&n| n <= 1024), "turns per pass: {per_pass:?}");
        assert_eq!(per_pass.iter().sum::<usize>(), 100_000);
    }

    /// One read pass whose handler expects no messages.
    fn read_once(link: &mut Link) -> Result<ReadOutcome> {
        let mut chunk = vec![0; 4096];
        link.read(64, Instant::now(), &mut chunk, &mut |_| panic!("no message expected"))
    }

    /// Reads until the pass ends in something other than "drained" (bounded).
    fn read_until_end(link: &mut Link) -> Result<ReadOutcome> {
        let deadline = Instant::now() + std::time::Duration::from_secs(10);
        loop {
            match read_once(link) {
                Ok(ReadOutcome::Drained) if Instant::now() < deadline => {}
                other => return other,
            }
        }
    }

    #[test]
    fn the_peers_close_is_echoed_and_ends_the_link_at_its_eof() {
        let (mut link, mut server) = pair();
        server.write_all(&[0x88, 0x05, 0x0F, 0xA0, b'b', b'y', b'e']).unwrap();
        assert_eq!(read_once(&mut link).unwrap(), ReadOutcome::Drained);
        assert!(link.peer_closed());
        link.flush().unwrap();
        // Our reply: a masked close frame with the same code (2 + 4 + 2 bytes).
        let mut reply = [0u8; 8];
        server.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
        server.read_exact(&mut reply).unwrap();
        assert_eq!(&reply[..2], &[0x88, 0x82]);
        assert_eq!([reply[6] ^ reply[2], reply[7] ^ reply[3]], [0x0F, 0xA0], "code 4000");
        drop(server);
        assert_eq!(read_until_end(&mut link).unwrap(), ReadOutcome::Closed(4000, "bye".into()));
    }

    #[test]
    fn a_peer_that_hangs_up_after_our_close_ends_it_abnormally() {
        let (mut link, mut server) = pair();
        link.close(1000, "").unwrap();
        // The peer reads our close frame (so its hang-up is a FIN, not a reset), then goes
        // without its own.
        let mut ours = [0u8; 8];
        server.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
        server.read_exact(&mut ours).unwrap();
        drop(server);
        assert_eq!(read_until_end(&mut link).unwrap(), ReadOutcome::Closed(1006, String::new()));
        // Without our close first, the same hang-up is an error.
        let (mut link, server) = pair();
        drop(server);
        let e = read_until_end(&mut link).unwrap_err();
        assert_eq!(e.code, ErrorCode::WsAbnormalClose);
    }

    #[test]
    fn sends_after_our_close_are_dropped_and_their_budget_returns() {
        let (mut link, _server) = pair();
        link.close(1000, "").unwrap();
        assert!(link.write(Message::text("late"), 4).is_ok());
        assert_eq!(link.flush().unwrap(), Some(4));
    }

    #[test]
    fn every_ping_gets_its_pong() {
        let (mut link, mut server) = pair();
        let mut pings = Vec::new();
        for i in 0..10u8 {
            pings.extend_from_slice(&[0x89, 0x01, i]);
        }
        pings.extend_from_slice(&[0x81, 0x02, b'o', b'k']);
        server.write_all(&pings).unwrap();
        passes(&mut link, 1024, 1);
        link.flush().unwrap();
        // Ten masked pongs of one byte: 2 + 4 + 1 bytes each, payloads 0..10 in order.
        let mut got = vec![0u8; 70];
        server.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
        server.read_exact(&mut got).unwrap();
        for (i, pong) in got.chunks(7).enumerate() {
            assert_eq!(&pong[..2], &[0x8A, 0x81], "pong {i}: {pong:02x?}");
            assert_eq!(pong[6] ^ pong[2], i as u8, "pong {i} carries ping {i}'s payload");
        }
    }
}
