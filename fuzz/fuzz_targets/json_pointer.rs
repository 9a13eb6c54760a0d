//! Fuzzes `livefeed::json_pointer::find`, the JSON pointer walk behind every
//! `lf_event_json_*` lookup, against serde_json's own: parse the document into a `Value`,
//! then `Value::pointer`.
//!
//! Input layout (also in fuzz/README.md):
//!   byte 0   n, the pointer's length (bytes 1..=n; clipped to the input)
//!   n bytes  the pointer (inputs where it is not UTF-8 are skipped)
//!   rest     the JSON document
//!
//! Checks, besides "never panics":
//!   - where the document parses, `find` gives the same value as `Value::pointer` (its text,
//!     parsed, equals the value there), or nothing where there is nothing;
//!   - where it does not parse, `find` finds nothing.

#![no_main]

use libfuzzer_sys::fuzz_target;
use livefeed::json_pointer::find;
use serde_json::Value;

fuzz_target!(|input: &[u8]| {
    let Some((&n, rest)) = input.split_first() else { return };
    let n = usize::from(n).min(rest.len());
    let (pointer, doc) = rest.split_at(n);
    let Ok(pointer) = std::str::from_utf8(pointer) else { return };
    let ours = find(doc, pointer);
    match serde_json::from_slice::<Value>(doc) {
        Ok(value) => {
            let ours = ours.map(|raw| {
                serde_json::from_str::<Value>(raw.get()).expect("found text is one JSON value")
            });
            assert_eq!(ours.as_ref(), value.pointer(pointer), "pointer {pointer:?}");
        }
        Err(e) => assert!(ours.is_none(), "found a value in a document that does not parse: {e}"),
    }
});
