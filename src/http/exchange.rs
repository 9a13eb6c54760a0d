//! Runs one request/response exchange over a non-blocking stream.

use super::response::{Response, ResponseParser};
use crate::error::{Error, ErrorCode, Result};
use std::io::{self, Read, Write};

/// One exchange in progress: the request bytes still to write and the parser for the answer.
pub struct Exchange {
    out: Vec<u8>,
    written: usize,
    parser: ResponseParser,
}

/// Maps a socket error to an error with a code.
pub fn io_error(e: &io::Error, doing: &str) -> Error {
    Error::new(ErrorCode::Io, format!("{doing}: {e}"))
}

impl Exchange {
    /// Starts an exchange that will write `request` and parse the answer with `parser`.
    pub fn new(request: Vec<u8>, parser: ResponseParser) -> Exchange {
        Exchange { out: request, written: 0, parser }
    }

    /// Writes and reads as far as the stream allows. Returns the response when complete.
    pub fn drive<S: Read + Write>(
        &mut self,
        stream: &mut S,
        buf: &mut [u8],
    ) -> Result<Option<Response>> {
        while self.written < self.out.len() {
            match stream.write(&self.out[self.written..]) {
                Ok(0) => {
                    return Err(Error::new(
                        ErrorCode::Io,
                        "connection closed while sending the request",
                    ));
                }
                Ok(n) => self.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_error(&e, "sending the request")),
            }
        }
        if self.written == self.out.len() && !self.out.is_empty() {
            match stream.flush() {
                Ok(()) => self.out = Vec::new(),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) => return Err(io_error(&e, "sending the request")),
            }
        }
        loop {
            match stream.read(buf) {
                Ok(0) => return self.parser.eof().map(Some),
                Ok(n) => {
                    if let Some(r) = self.parser.feed(&buf[..n])? {
                        return Ok(Some(r));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_error(&e, "reading the response")),
            }
        }
    }

    /// Bytes that followed the response (the first WebSocket frames after a 101).
    pub fn take_leftover(&mut self) -> Vec<u8> {
        self.parser.take_leftover()
    }
}
