//! Incremental HTTP/1.1 response parser: bytes in, a complete response out.

use crate::error::{Error, ErrorCode, Result};

const MAX_HEADERS: usize = 100;
/// Longest chunk-size line (size and extensions, without CRLF).
const MAX_CHUNK_LINE: usize = 1024;
/// Longest trailer line (without CRLF).
const MAX_TRAILER_LINE: usize = 8192;

/// A complete HTTP response.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Reason phrase.
    pub reason: String,
    /// Headers in order; names as received.
    pub headers: Vec<(String, String)>,
    /// Decoded body (chunked framing removed).
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of a header (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers_all(name).next()
    }

    /// Every value of a header (case-insensitive name).
    pub fn headers_all<'a, 'n>(
        &'a self,
        name: &'n str,
    ) -> impl Iterator<Item = &'a str> + use<'a, 'n> {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether a comma-separated header contains `token` (case-insensitive).
    pub fn header_has_token(&self, name: &str, token: &str) -> bool {
        self.headers_all(name)
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }
}

#[derive(Debug)]
enum Body {
    Length(usize),
    Chunked(Chunk),
    UntilClose,
}

#[derive(Debug)]
enum Chunk {
    Size,
    Data(usize),
    DataEnd,
    Trailer,
}

/// Parses one response. Feed it bytes; it says when the response is complete.
#[derive(Debug)]
pub struct ResponseParser {
    buf: Vec<u8>,
    head: Option<Response>,
    body: Option<Body>,
    max_head: usize,
    max_body: usize,
    head_request: bool,
}

fn malformed(why: impl Into<String>) -> Error {
    Error::new(ErrorCode::HttpMalformed, format!("malformed HTTP response: {}", why.into()))
}

impl ResponseParser {
    /// A parser with size limits for the head and the decoded body.
    pub fn new(max_head: usize, max_body: usize) -> ResponseParser {
        ResponseParser {
            buf: Vec::new(),
            head: None,
            body: None,
            max_head,
            max_body,
            head_request: false,
        }
    }

    /// The response answers a HEAD request, so it has no body whatever its headers say.
    pub fn for_head_request(mut self) -> ResponseParser {
        self.head_request = true;
        self
    }

    /// Adds received bytes. Returns the response once complete; bytes after it stay
    /// available through [`ResponseParser::take_leftover`].
    pub fn feed(&mut self, data: &[u8]) -> Result<Option<Response>> {
        self.buf.extend_from_slice(data);
        if self.head.is_none() && !self.parse_head()? {
            return Ok(None);
        }
        self.parse_body()
    }

    /// The peer closed the connection: completes a close-delimited body, else fails.
    pub fn eof(&mut self) -> Result<Response> {
        match (&self.head, &self.body) {
            (Some(_), Some(Body::UntilClose)) => {
                let mut r = self.head.take().unwrap_or_default();
                r.body = std::mem::take(&mut self.buf);
                Ok(r)
            }
            (None, _) if self.buf.is_empty() => {
                Err(Error::new(ErrorCode::Io, "connection closed before any HTTP response"))
            }
            (None, _) => Err(malformed("connection closed inside the response head")),
            _ => Err(malformed("connection closed inside the response body")),
        }
    }

    /// Bytes received after the end of the response (for a protocol that follows it).
    pub fn take_leftover(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }

    fn parse_head(&mut self) -> Result<bool> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut parsed = httparse::Response::new(&mut headers);
        let used = match parsed.parse(&self.buf) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => {
                if self.buf.len() > self.max_head {
                    return Err(Error::new(
                        ErrorCode::HttpTooLarge,
                        "HTTP response head too large",
                    ));
                }
                return Ok(false);
            }
            Err(e) => return Err(malformed(e.to_string())),
        };
        if used > self.max_head {
            return Err(Error::new(ErrorCode::HttpTooLarge, "HTTP response head too large"));
        }
        let status = parsed.code.ok_or_else(|| malformed("no status"))?;
        if !(100..=599).contains(&status) {
            return Err(malformed(format!("status {status} out of range")));
        }
        let mut head = Response {
            status,
            reason: parsed.reason.unwrap_or("").to_string(),
            headers: Vec::with_capacity(parsed.headers.len()),
            body: Vec::new(),
        };
        for h in parsed.headers.iter() {
            let value =
                std::str::from_utf8(h.value).map_err(|_| malformed("non-UTF-8 header value"))?;
            head.headers.push((h.name.to_string(), value.trim().to_string()));
        }
        let no_body =
            self.head_request || status == 204 || status == 304 || (100..200).contains(&status);
        let body = if no_body {
            Body::Length(0)
        } else if head.header_has_token("transfer-encoding", "chunked") {
            Body::Chunked(Chunk::Size)
        } else if let Some(len) = head.header("content-length") {
            let mut values = head.headers_all("content-length").flat_map(|v| v.split(','));
            if values.any(|v| v.trim() != len) {
                return Err(malformed("conflicting Content-Length"));
            }
            if len.is_empty() || !len.bytes().all(|b| b.is_ascii_digit()) {
                return Err(malformed("bad Content-Length"));
            }
            let n: usize = len.parse().map_err(|_| malformed("bad Content-Length"))?;
            if n > self.max_body {
                return Err(Error::new(ErrorCode::HttpTooLarge, "HTTP response body too large"));
            }
            Body::Length(n)
        } else {
            Body::UntilClose
        };
        self.buf.drain(..used);
        self.head = Some(head);
        self.body = Some(body);
        Ok(true)
    }

    fn parse_body(&mut self) -> Result<Option<Response>> {
        let Some(head) = self.head.as_mut() else { return Ok(None) };
        match self.body.as_mut() {
            Some(Body::Length(n)) => {
                if self.buf.len() < *n {
                    return Ok(None);
                }
                head.body = self.buf.drain(..*n).collect();
            }
            Some(Body::UntilClose) => {
                if self.buf.len() > self.max_body {
                    return Err(Error::new(
                        ErrorCode::HttpTooLarge,
                        "HTTP response body too large",
                    ));
                }
                return Ok(None);
            }
            Some(Body::Chunked(state)) => {
                if !decode_chunks(state, &mut self.buf, &mut head.body, self.max_body)? {
                    return Ok(None);
                }
            }
            None => return Ok(None),
        }
        self.body = None;
        Ok(self.head.take())
    }
}

/// Moves decoded chunk data from `buf` to `out`; true once the last chunk and trailers are in.
fn decode_chunks(
    state: &mut Chunk,
    buf: &mut Vec<u8>,
    out: &mut Vec<u8>,
    max: usize,
) -> Result<bool> {
    let mut pos = 0;
    let line_end = |from: usize, buf: &[u8]| {
        buf[from..].windows(2).position(|w| w == b"\r\n").map(|p| from + p)
    };
    let done = loop {
        match state {
            Chunk::Size => {
                // The same limit whether the line arrives whole or in pieces (+1: a lone CR
                // may wait for its LF).
                let Some(end) = line_end(pos, buf) else {
                    if buf.len() - pos > MAX_CHUNK_LINE + 1 {
                        return Err(malformed("chunk size line too long"));
                    }
                    break false;
                };
                if end - pos > MAX_CHUNK_LINE {
                    return Err(malformed("chunk size line too long"));
                }
                let line =
                    std::str::from_utf8(&buf[pos..end]).map_err(|_| malformed("bad chunk size"))?;
                let hex = line.split(';').next().unwrap_or("").trim();
                if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(malformed("bad chunk size"));
                }
                let size =
                    usize::from_str_radix(hex, 16).map_err(|_| malformed("bad chunk size"))?;
                if out.len().saturating_add(size) > max {
                    return Err(Error::new(
                        ErrorCode::HttpTooLarge,
                        "HTTP response body too large",
                    ));
                }
                pos = end + 2;
                *state = if size == 0 { Chunk::Trailer } else { Chunk::Data(size) };
            }
            Chunk::Data(left) => {
                let take = (*left).min(buf.len() - pos);
                out.extend_from_slice(&buf[pos..pos + take]);
                pos += take;
                *left -= take;
                if *left > 0 {
                    break false;
                }
                *state = Chunk::DataEnd;
            }
            Chunk::DataEnd => {
                if buf.len() - pos < 2 {
                    break false;
                }
                if &buf[pos..pos + 2] != b"\r\n" {
                    return Err(malformed("chunk not followed by CRLF"));
                }
                pos += 2;
                *state = Chunk::Size;
            }
            Chunk::Trailer => {
                let Some(end) = line_end(pos, buf) else {
                    if buf.len() - pos > MAX_TRAILER_LINE + 1 {
                        return Err(malformed("trailer too long"));
                    }
                    break false;
                };
                if end - pos > MAX_TRAILER_LINE {
                    return Err(malformed("trailer too long"));
                }
                let empty = end == pos;
                pos = end + 2;
                if empty {
                    break true;
                }
            }
        }
    };
    buf.drain(..pos);
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_in_pieces(raw: &[u8], step: usize) -> Result<Response> {
        let mut p = ResponseParser::new(4096, 4096);
        for piece in raw.chunks(step) {
            if let Some(r) = p.feed(piece)? {
                return Ok(r);
            }
        }
        p.eof()
    }

    #[test]
    fn content_length_any_split() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX: y\r\n\r\nhello";
        for step in 1..raw.len() {
            let r = parse_in_pieces(raw, step).unwrap();
            assert_eq!(
                (r.status, r.body.as_slice(), r.header("x")),
                (200, &b"hello"[..], Some("y"))
            );
        }
    }

    #[test]
    fn chunked_any_split_with_extensions_and_trailers() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;x=1\r\nWiki\r\n5\r\npedia\r\n0\r\nT: 1\r\n\r\n";
        for step in 1..raw.len() {
            assert_eq!(parse_in_pieces(raw, step).unwrap().body, b"Wikipedia");
        }
    }

    #[test]
    fn close_delimited_and_leftover() {
        let r = parse_in_pieces(b"HTTP/1.0 200 OK\r\n\r\nall of it", 3).unwrap();
        assert_eq!(r.body, b"all of it");
        let mut p = ResponseParser::new(4096, 4096);
        let r = p
            .feed(b"HTTP/1.1 101 Switching\r\nUpgrade: websocket\r\n\r\n\x81\x02hi")
            .unwrap()
            .unwrap();
        assert_eq!(r.status, 101);
        assert_eq!(p.take_leftover(), b"\x81\x02hi");
    }

    #[test]
    fn bad_input_is_refused_with_codes() {
        let code = |raw: &[u8]| parse_in_pieces(raw, 7).unwrap_err().code;
        assert_eq!(code(b"SSH-2.0-OpenSSH\r\n\r\n"), ErrorCode::HttpMalformed);
        assert_eq!(code(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n"), ErrorCode::HttpMalformed);
        assert_eq!(
            code(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
            ErrorCode::HttpMalformed
        );
        assert_eq!(
            code(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
            ErrorCode::HttpMalformed
        );
        assert_eq!(
            code(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab"),
            ErrorCode::HttpMalformed
        );
        assert_eq!(
            code(b"HTTP/1.1 200 OK\r\nContent-Length: 99999\r\n\r\n"),
            ErrorCode::HttpTooLarge
        );
        assert_eq!(
            code(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc"),
            ErrorCode::HttpMalformed
        );
        assert_eq!(code(b"HTTP/1.1 200 OK\r\nX: y"), ErrorCode::HttpMalformed);
        assert_eq!(code(b"HTTP/1.1 099 Odd\r\n\r\n"), ErrorCode::HttpMalformed);
        assert_eq!(
            code(b"HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\nx"),
            ErrorCode::HttpMalformed
        );
        let plus = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n+1\r\nx\r\n0\r\n\r\n";
        assert_eq!(code(plus), ErrorCode::HttpMalformed);
        assert_eq!(code(b""), ErrorCode::Io);
        let huge = [b"HTTP/1.1 200 OK\r\n".as_slice(), &[b'a'; 5000]].concat();
        assert_eq!(code(&huge), ErrorCode::HttpTooLarge);
        let chunk_bomb = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffff\r\n";
        assert_eq!(code(chunk_bomb), ErrorCode::HttpTooLarge);
    }

    #[test]
    fn no_body_statuses() {
        let mut p = ResponseParser::new(4096, 4096);
        let r = p.feed(b"HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n").unwrap().unwrap();
        assert!(r.body.is_empty());
    }
}
