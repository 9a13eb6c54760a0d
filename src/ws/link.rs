//! An open WebSocket: tungstenite's codec over our stream, with send accounting and keepalive.

use crate::config::{Limits, MAX_MESSAGE_LIMIT, Timeouts};
use crate::error::{Error, ErrorCode, Result};
use crate::net::Stream;
use std::io::{self, Read, Write};
use std::time::Instant;
use tungstenite::error::ProtocolError;
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
    ctx: WebSocketContext,
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
    /// ended (its budget ran out); empty, without an allocation, otherwise.
    spill: Vec<u8>,
    spill_pos: usize,
}

/// The tungstenite settings for our limits: small eager read buffer, bounded write buffer.
pub fn codec_config(limits: &Limits) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(limits.read_buffer)
        .write_buffer_size(0)
        // Our own accounting refuses sends first; this is a backstop above it.
        .max_write_buffer_size(
            limits.max_send_buffer.saturating_mul(2).saturating_add(limits.max_message),
        )
        .max_message_size(Some(limits.max_message.min(MAX_MESSAGE_LIMIT)))
        .max_frame_size(Some(limits.max_frame.min(MAX_MESSAGE_LIMIT)))
}

/// Maps a tungstenite error to ours; `None` for "would block".
pub fn map_error(e: tungstenite::Error) -> Option<Error> {
    use tungstenite::Error as T;
    Some(match e {
        T::Io(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
        T::Io(e) => Error::new(ErrorCode::Io, format!("connection lost: {e}")),
        T::ConnectionClosed | T::AlreadyClosed => {
            Error::new(ErrorCode::Closed, "connection closed")
        }
        T::Protocol(ProtocolError::ResetWithoutClosingHandshake) => Error::new(
            ErrorCode::WsAbnormalClose,
            "peer closed the connection without a close frame",
        ),
        T::Protocol(p) => {
            Error::new(ErrorCode::WsProtocol, format!("WebSocket protocol error: {p}"))
        }
        T::Utf8(m) => {
            // tungstenite does not say which: a text message, or a close frame's reason.
            Error::new(
                ErrorCode::WsInvalidUtf8,
                format!("invalid UTF-8 in a text message or a close reason: {m}"),
            )
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

/// The socket as tungstenite reads it during one pass. One large `recv` into the loop's
/// shared chunk feeds tungstenite's many small reads, so a session's own read buffer can
/// stay small (idle memory) without a system call per small read (throughput). "Would
/// block" once the pass's bytes are used up, and says so: the session comes back.
struct Metered<'a> {
    stream: &'a mut Stream,
    left: usize,
    exhausted: bool,
    /// The loop's chunk and its unread part `pos..end`.
    chunk: &'a mut [u8],
    pos: usize,
    end: usize,
    /// Bytes kept from the previous pass, read first.
    spill: &'a mut Vec<u8>,
    spill_pos: &'a mut usize,
}

impl Read for Metered<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if *self.spill_pos < self.spill.len() {
            let from = &self.spill[*self.spill_pos..];
            let n = buf.len().min(from.len());
            buf[..n].copy_from_slice(&from[..n]);
            *self.spill_pos += n;
            if *self.spill_pos == self.spill.len() {
                self.spill.clear(); // the allocation stays while the session is busy
                *self.spill_pos = 0;
            }
            return Ok(n);
        }
        if self.pos == self.end {
            if self.left == 0 {
                self.exhausted = true;
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let want = self.chunk.len().min(self.left);
            let got = self.stream.read(&mut self.chunk[..want])?;
            self.left -= got;
            (self.pos, self.end) = (0, got);
        }
        let n = buf.len().min(self.end - self.pos);
        buf[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl Write for Metered<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.stream.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

impl Link {
    /// Wraps a stream whose upgrade succeeded; `leftover` are bytes read past the 101.
    pub fn new(stream: Stream, leftover: Vec<u8>, limits: &Limits, now: Instant) -> Link {
        let ctx = WebSocketContext::from_partially_read(
            leftover,
            Role::Client,
            Some(codec_config(limits)),
        );
        Link {
            stream,
            ctx,
            unflushed: 0,
            last_rx: now,
            ping_sent: None,
            ping_rtt_from: None,
            rtt: None,
            peer_close: None,
            spill: Vec::new(),
            spill_pos: 0,
        }
    }

    /// The stream, for registration changes.
    pub fn stream_mut(&mut self) -> &mut Stream {
        &mut self.stream
    }

    /// Reads up to `budget` data messages, handing each to `on_message`, and writes the
    /// messages it returns (answers) before reading the next frame.
    pub fn read(
        &mut self,
        budget: usize,
        now: Instant,
        chunk: &mut [u8],
        on_message: &mut dyn FnMut(Incoming<'_>) -> Result<Answers>,
    ) -> Result<ReadOutcome> {
        let mut delivered = 0;
        let mut got_any = false;
        let mut left = READ_PASS_BYTES;
        let (mut pos, mut end) = (0, 0);
        let outcome = loop {
            if delivered >= budget {
                break Ok(ReadOutcome::Budget);
            }
            let mut metered = Metered {
                stream: &mut self.stream,
                left,
                exhausted: false,
                chunk: &mut *chunk,
                pos,
                end,
                spill: &mut self.spill,
                spill_pos: &mut self.spill_pos,
            };
            let read = self.ctx.read(&mut metered);
            (left, pos, end) = (metered.left, metered.pos, metered.end);
            if metered.exhausted && matches!(&read, Err(tungstenite::Error::Io(_))) {
                // Bytes alone do not prove the peer alive: only frames that parse do, so
                // a flood of fragments that never ends a message still meets the keepalive.
                break Ok(ReadOutcome::Budget);
            }
            match read {
                Ok(msg) => {
                    got_any = true;
                    // Control frames count too: a ping flood gets no more turns than data.
                    delivered += usize::from(!matches!(msg, Message::Text(_) | Message::Binary(_)));
                    match msg {
                        Message::Text(t) => {
                            delivered += 1;
                            let answers = on_message(Incoming::Text(t.as_str()));
                            if let Err(e) = answers.and_then(|a| self.write_all(a)) {
                                break Err(e);
                            }
                        }
                        Message::Binary(b) => {
                            delivered += 1;
                            let answers = on_message(Incoming::Binary(&b));
                            if let Err(e) = answers.and_then(|a| self.write_all(a)) {
                                break Err(e);
                            }
                        }
                        Message::Close(Some(f))
                            if f.code == CloseCode::Protocol
                                && f.reason.as_str() == "Protocol violation" =>
                        {
                            // tungstenite's stand-in for a code that may not appear on the wire
                            // (1005, 1006, 1015, unassigned); it already answered with 1002.
                            break Err(Error::new(
                                ErrorCode::WsProtocol,
                                "the peer sent a close frame with a forbidden status code",
                            ));
                        }
                        Message::Close(frame) => {
                            self.peer_close = Some(match frame {
                                Some(f) => (u16::from(f.code), f.reason.as_str().to_string()),
                                None => (1005, String::new()),
                            });
                        }
                        Message::Pong(_) => {
                            if let Some(sent) = self.ping_rtt_from.take() {
                                self.rtt = Some(now.saturating_duration_since(sent));
                            }
                        }
                        Message::Ping(_) | Message::Frame(_) => {}
                    }
                }
                Err(tungstenite::Error::ConnectionClosed)
                | Err(tungstenite::Error::AlreadyClosed) => {
                    let (code, reason) = self.peer_close.take().unwrap_or((1005, String::new()));
                    break Ok(ReadOutcome::Closed(code, reason));
                }
                Err(e) => match map_error(e) {
                    None => break Ok(ReadOutcome::Drained),
                    Some(err) => break Err(err),
                },
            }
        };
        if pos < end {
            // The pass ended with bytes in the shared chunk: keep them for the next one,
            // which must come even if the socket has nothing new to say.
            self.spill.extend_from_slice(&chunk[pos..end]);
            if matches!(outcome, Ok(ReadOutcome::Drained)) {
                return self.finish_read(Ok(ReadOutcome::Budget), got_any, now);
            }
        } else if self.spill.is_empty() && matches!(outcome, Ok(ReadOutcome::Drained)) {
            self.spill = Vec::new(); // idle again: idle sessions hold no spill memory
        }
        self.finish_read(outcome, got_any, now)
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
        let frame = CloseFrame { code: CloseCode::from(code), reason: reason.into() };
        match self.ctx.close(&mut self.stream, Some(frame)) {
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
