//! Fuzzes the Atmosphere parsers (`livefeed::atmosphere`): the handshake frame and the
//! `trackMessageLength` deframer that every server frame goes through.
//!
//! Input layout: byte 0 picks how many frame boundaries to make (0..=15), the following
//! bytes (one per boundary) where to put them; the rest is the text (lossy UTF-8).
//!
//! Checks, besides "never panics": messages come out in order, each no longer than the
//! limit, and together never longer than the input; `Handshake::parse` never panics and
//! its rest is a suffix of its input. The same frames then go through the whole client
//! engine (handshake first, framing on or off by the first byte's top bit), and every
//! message it delivers through the Navixy message mapping.

#![no_main]

use libfuzzer_sys::fuzz_target;
use livefeed::SessionConfig;
use livefeed::atmosphere::{Deframer, Engine, Handshake, Settings};
use livefeed::vendors::navixy::map_message;
use std::time::Instant;

const LIMIT: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else { return };
    let framed = n & 0x80 != 0;
    let n = usize::from(n % 16).min(rest.len());
    let (cuts, text) = rest.split_at(n);
    let text = String::from_utf8_lossy(text);

    if let Ok((_, rest)) = Handshake::parse(&text) {
        assert!(text.ends_with(rest));
    }

    let mut bounds: Vec<usize> = cuts.iter().map(|c| usize::from(*c) * text.len() / 256).collect();
    bounds.push(text.len());
    bounds.sort_unstable();
    let mut frames = Vec::new();
    let mut start = 0;
    for end in bounds {
        let mut end = end.max(start);
        while !text.is_char_boundary(end) {
            end += 1;
        }
        frames.push(&text[start..end]);
        start = end;
    }

    let mut d = Deframer::new(LIMIT, "X");
    let mut total = 0;
    for frame in &frames {
        let result = d.feed(frame, &mut |m| {
            assert!(m.len() <= LIMIT * 4, "a message over the limit");
            total += m.len();
        });
        if result.is_err() {
            break;
        }
    }
    assert!(total <= text.len(), "more message bytes than input");

    let mut config = SessionConfig::new("http://127.0.0.1/v2/event/subscription");
    config.limits.max_message = LIMIT;
    if framed {
        config.options.push(("track_message_length".into(), "true".into()));
    }
    let Ok(settings) = Settings::from_config(&config) else { return };
    let Ok(mut engine) = Engine::new(&config.url, settings) else { return };
    engine.connect();
    let now = Instant::now();
    engine.on_connected(now);
    for frame in &frames {
        let result = engine.on_frame(frame, now, &mut |m| {
            let _ = map_message(m);
        });
        if result.is_err() {
            break;
        }
    }
});
