//! Fuzzes `livefeed::http::ResponseParser`, the incremental HTTP/1.1 response parser that
//! reads every upgrade and REST reply straight off the network.
//!
//! Input layout (also in fuzz/README.md):
//!   byte 0   limits: bits 0-2 pick `max_head`, bits 3-5 pick `max_body`,
//!            bit 6 parses the reply to a HEAD request
//!   byte 1   bits 0-2: how many split sizes follow (0: one piece)
//!   n bytes  split sizes, used in turn: piece length = byte + 1
//!   rest     the bytes the "server" sends, fed piece by piece, then end of stream
//!
//! Checks, besides "never panics":
//!   - a completed response respects the limits (body <= max_body, <= 100 headers) and the
//!     framing (no body for HEAD/1xx/204/304; Content-Length bodies have exactly that length);
//!   - every byte is accounted for: the bytes after a completed response (parser leftover
//!     plus bytes not fed yet) are a suffix of the input;
//!   - the outcome does not depend on how the bytes were split: feeding everything at once
//!     and feeding the fuzzer's pieces give the same response and leftover, or both fail.

#![no_main]

use libfuzzer_sys::fuzz_target;
use livefeed::error::ErrorCode;
use livefeed::http::{Response, ResponseParser};

const MAX_HEADS: [usize; 8] = [1, 16, 64, 256, 1024, 4096, 16384, 65536];
const MAX_BODIES: [usize; 8] = [0, 1, 5, 16, 256, 4096, 65536, 8 << 20];

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// A response completed; `leftover` is everything received after it; `by_eof` tells
    /// whether it took the end of the stream to complete it.
    Done { response: Response, leftover: Vec<u8>, by_eof: bool },
    /// The parser refused the input.
    Failed(ErrorCode),
}

struct Setup {
    max_head: usize,
    max_body: usize,
    head_request: bool,
}

impl Setup {
    fn parser(&self) -> ResponseParser {
        let p = ResponseParser::new(self.max_head, self.max_body);
        if self.head_request { p.for_head_request() } else { p }
    }
}

/// Feeds `data` in pieces whose lengths cycle through `sizes` (all of it at once if empty).
fn run(setup: &Setup, data: &[u8], sizes: &[usize]) -> Outcome {
    let mut parser = setup.parser();
    let mut fed = 0;
    let mut turn = 0;
    while fed < data.len() {
        let len = if sizes.is_empty() { data.len() } else { sizes[turn % sizes.len()] };
        turn += 1;
        let end = (fed + len).min(data.len());
        let result = parser.feed(&data[fed..end]);
        fed = end;
        match result {
            Ok(None) => {}
            Ok(Some(response)) => {
                let mut leftover = parser.take_leftover();
                leftover.extend_from_slice(&data[fed..]);
                // The stream may end right after the response: must not panic either.
                let _ = parser.eof();
                return Outcome::Done { response, leftover, by_eof: false };
            }
            Err(e) => {
                let _ = parser.eof();
                return Outcome::Failed(e.code);
            }
        }
    }
    match parser.eof() {
        Ok(response) => Outcome::Done { response, leftover: parser.take_leftover(), by_eof: true },
        Err(e) => Outcome::Failed(e.code),
    }
}

fn check_response(setup: &Setup, data: &[u8], outcome: &Outcome) {
    let Outcome::Done { response: r, leftover, by_eof } = outcome else { return };
    assert!(
        r.body.len() <= setup.max_body,
        "body of {} bytes exceeds max_body {}",
        r.body.len(),
        setup.max_body
    );
    assert!(r.headers.len() <= 100, "{} headers", r.headers.len());
    // httparse takes any three digits, so 000-099 pass too (a leniency, not a crash).
    assert!(r.status <= 999, "status {}", r.status);
    assert!(data.ends_with(leftover), "leftover is not a suffix of the input");
    if *by_eof {
        assert!(leftover.is_empty(), "leftover after a close-delimited body");
    }
    let no_body = setup.head_request || matches!(r.status, 100..=199 | 204 | 304);
    if no_body {
        assert!(
            r.body.is_empty(),
            "status {} (head request: {}) has a body",
            r.status,
            setup.head_request
        );
        return;
    }
    if !r.header_has_token("transfer-encoding", "chunked") {
        if let Some(len) = r.header("content-length") {
            let len: usize = len.parse().expect("an accepted Content-Length is a number");
            assert_eq!(r.body.len(), len, "body length differs from Content-Length");
            assert!(!by_eof, "a Content-Length body completed only at end of stream");
        } else {
            assert!(*by_eof, "a close-delimited body completed before end of stream");
        }
    }
}

fuzz_target!(|input: &[u8]| {
    let [flags, count, rest @ ..] = input else { return };
    let setup = Setup {
        max_head: MAX_HEADS[usize::from(flags & 7)],
        max_body: MAX_BODIES[usize::from((flags >> 3) & 7)],
        head_request: flags & 0x40 != 0,
    };
    let count = usize::from(count & 7).min(rest.len());
    let (sizes, data) = rest.split_at(count);
    let sizes: Vec<usize> = sizes.iter().map(|&b| usize::from(b) + 1).collect();

    let split = run(&setup, data, &sizes);
    check_response(&setup, data, &split);
    let whole = run(&setup, data, &[]);
    check_response(&setup, data, &whole);
    // Bytes in one piece or many: the same response, or a refusal either way.
    match (&split, &whole) {
        (Outcome::Failed(_), Outcome::Failed(_)) => {}
        _ => {
            assert_eq!(split, whole, "outcome depends on how the input was split (sizes {sizes:?})")
        }
    }
    // One byte at a time: the harshest split.
    if data.len() <= 4096 {
        let bytewise = run(&setup, data, &[1]);
        check_response(&setup, data, &bytewise);
        match (&bytewise, &whole) {
            (Outcome::Failed(_), Outcome::Failed(_)) => {}
            _ => assert_eq!(bytewise, whole, "outcome differs when fed one byte at a time"),
        }
    }
});
