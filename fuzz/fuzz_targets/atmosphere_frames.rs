//! Fuzzes the Atmosphere parsers (`livefeed::atmosphere`): the handshake frame and the
//! `trackMessageLength` deframer that every server frame goes through.
//!
//! Input layout: byte 0 picks how many frame boundaries to make (0..=15), the following
//! bytes (one per boundary) where to put them; the rest is the text (lossy UTF-8).
//!
//! Checks, besides "never panics": messages come out in order, each no longer than the
//! limit, and together never longer than the input; `Handshake::parse` never panics and
//! its rest is a suffix of its input.

#![no_main]

use libfuzzer_sys::fuzz_target;
use livefeed::atmosphere::{Deframer, Handshake};

const LIMIT: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else { return };
    let n = usize::from(n % 16).min(rest.len());
    let (cuts, text) = rest.split_at(n);
    let text = String::from_utf8_lossy(text);

    if let Ok((_, rest)) = Handshake::parse(&text) {
        assert!(text.ends_with(rest));
    }

    let mut bounds: Vec<usize> = cuts.iter().map(|c| usize::from(*c) * text.len() / 256).collect();
    bounds.push(text.len());
    bounds.sort_unstable();
    let mut d = Deframer::new(LIMIT, "X");
    let mut total = 0;
    let mut start = 0;
    for end in bounds {
        let mut end = end.max(start);
        while !text.is_char_boundary(end) {
            end += 1;
        }
        let frame = &text[start..end];
        start = end;
        let result = d.feed(frame, &mut |m| {
            assert!(m.len() <= LIMIT * 4, "a message over the limit");
            total += m.len();
        });
        if result.is_err() {
            return;
        }
    }
    assert!(total <= text.len(), "more message bytes than input");
});
