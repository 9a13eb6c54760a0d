//! Fuzzes the Socket.IO packet codec (`livefeed::socketio::packet`): the text of every
//! Engine.IO message a server sends goes through `Packet::decode`.
//!
//! Input layout (also in fuzz/README.md): the whole input is the packet text (inputs that are
//! not UTF-8 are skipped), e.g. `2/chat,7["event",{"a":1}]`.
//!
//! Checks, besides "never panics":
//!   - the driver's event hot path agrees with `Packet::decode`: `Header::parse` gives the same
//!     kind, namespace, ack id and attachment count, and for events `split_event` succeeds
//!     when `decode` does, with the same name and arguments. It may also take events whose
//!     JSON has no tree (lone surrogate escapes, numbers beyond f64, nesting over 128), as
//!     long as the arguments it hands on are a JSON array; otherwise the two must agree;
//!   - a decoded packet is well formed: `attachments <= MAX_ATTACHMENTS` (and 0 unless the
//!     kind is binary), the namespace starts with `/` and holds no `,` or `?`;
//!   - `encode` gives text that decodes to an equal packet, and encoding that packet again
//!     gives the same text (a fixed point);
//!   - `error_message` never panics;
//!   - `check_placeholders(data, count)` never panics and agrees with an independent reading
//!     of the placeholders (`Ok` exactly when the `{"_placeholder":true,"num":n}` markers name
//!     `0..count` once each). Counts tried: the packet's own attachment count, 0, 1, 300,
//!     the input length mod 301, the number of markers and the largest `num` (each +-1), and
//!     every count 0..=300 when the data holds a marker at all.

#![no_main]

use libfuzzer_sys::fuzz_target;
use livefeed::Result;
use livefeed::socketio::packet::{
    Header, Kind, MAX_ATTACHMENTS, Packet, check_placeholders, split_event,
};
use serde_json::Value;
use serde_json::value::RawValue;

/// Collects the `num` of every placeholder marker (None when it is not a u64), in the same
/// places `check_placeholders` looks: a marker object is not searched further.
fn markers(v: &Value, out: &mut Vec<Option<u64>>) {
    match v {
        Value::Object(o) => {
            if o.get("_placeholder").and_then(Value::as_bool) == Some(true) {
                out.push(o.get("num").and_then(Value::as_u64));
            } else {
                for v in o.values() {
                    markers(v, out);
                }
            }
        }
        Value::Array(a) => {
            for v in a {
                markers(v, out);
            }
        }
        _ => {}
    }
}

/// Whether `nums` name `0..count` exactly once each.
fn expected(nums: &[Option<u64>], count: usize) -> bool {
    if nums.len() != count {
        return false;
    }
    let mut seen = vec![false; count];
    for n in nums {
        let Some(n) = *n else { return false };
        match usize::try_from(n).ok().and_then(|n| seen.get_mut(n)) {
            Some(slot) if !*slot => *slot = true,
            _ => return false,
        }
    }
    true
}

fn check_counts(data: &Value, own: usize, input_len: usize) {
    let mut nums = Vec::new();
    markers(data, &mut nums);
    let mut counts = vec![own, 0, 1, 300, input_len % 301];
    let largest = nums.iter().flatten().max().copied().unwrap_or(0);
    let largest = usize::try_from(largest).unwrap_or(usize::MAX).min(1 << 20);
    for base in [nums.len(), largest] {
        counts.extend([base.saturating_sub(1), base, base.saturating_add(1)]);
    }
    if !nums.is_empty() {
        counts.extend(0..=300);
    }
    for count in counts {
        let got = check_placeholders(data, count).is_ok();
        assert_eq!(
            got,
            expected(&nums, count),
            "check_placeholders(count {count}) = {got} for markers {nums:?}"
        );
    }
}

/// The driver's hot path for events (`Header::parse`, then `split_event` without a JSON
/// tree) must agree with `Packet::decode`.
fn check_hot_path(text: &str, decoded: &Result<Packet>) {
    let header = Header::parse(text);
    if let Ok(p) = decoded {
        let h = header.as_ref().expect("Header::parse refused a packet Packet::decode took");
        assert_eq!(
            (h.kind, h.nsp, h.id, h.attachments, h.json.is_empty()),
            (p.kind, p.nsp.as_str(), p.id, p.attachments, p.data.is_none()),
            "Header::parse and Packet::decode disagree on {text:?}"
        );
    }
    let Ok(h) = header else { return };
    assert!(h.attachments <= MAX_ATTACHMENTS, "{} attachments", h.attachments);
    if h.kind != Kind::Event {
        return;
    }
    match (split_event(h.json), decoded) {
        (Ok((name, args)), Ok(p)) => {
            let Some(Value::Array(data)) = &p.data else { panic!("event data {:?}", p.data) };
            assert_eq!(
                Some(&Value::String(name.into_owned())),
                data.first(),
                "event name of {text:?}"
            );
            let args: Value = serde_json::from_str(&args)
                .unwrap_or_else(|e| panic!("split_event arguments {args:?} are not JSON: {e}"));
            assert_eq!(args, Value::Array(data[1..].to_vec()), "event arguments of {text:?}");
        }
        (Err(_), Err(_)) => {}
        // The hot path is more lenient than a JSON tree: it takes arguments serde_json cannot
        // turn into a `Value` (lone surrogate escapes, numbers beyond f64, nesting deeper
        // than 128). Allowed, as long as what it hands on is a JSON array of the arguments.
        (Ok((name, args)), Err(_)) if serde_json::from_str::<Value>(h.json).is_err() => {
            let parts: Vec<&RawValue> = serde_json::from_str(h.json).expect("split_event took it");
            let again: Vec<&RawValue> = serde_json::from_str(&args)
                .unwrap_or_else(|e| panic!("split_event arguments {args:?} are not JSON: {e}"));
            assert_eq!(again.len() + 1, parts.len(), "argument count of {text:?}");
            assert_eq!(
                serde_json::from_str::<String>(parts[0].get()).ok(),
                Some(name.into_owned())
            );
        }
        (split, decoded) => {
            panic!("split_event and Packet::decode disagree on {text:?}: {split:?} / {decoded:?}")
        }
    }
}

fuzz_target!(|input: &[u8]| {
    let Ok(text) = std::str::from_utf8(input) else { return };
    let decoded = Packet::decode(text);
    check_hot_path(text, &decoded);
    let Ok(p) = decoded else { return };

    assert!(p.attachments <= MAX_ATTACHMENTS, "{} attachments", p.attachments);
    if !p.kind.is_binary() {
        assert_eq!(p.attachments, 0, "attachments on a {:?} packet", p.kind);
    }
    assert!(p.nsp.starts_with('/'), "namespace {:?}", p.nsp);
    assert!(!p.nsp.contains([',', '?']), "namespace {:?}", p.nsp);
    let _ = p.error_message();

    let encoded = p.encode();
    let again = Packet::decode(&encoded)
        .unwrap_or_else(|e| panic!("re-encoded {encoded:?} (from {text:?}) refused: {e:?}"));
    assert_eq!(again, p, "round trip through {encoded:?} changed the packet (from {text:?})");
    assert_eq!(again.encode(), encoded, "encoding is not a fixed point (from {text:?})");

    if let Some(data) = &p.data {
        check_counts(data, p.attachments, input.len());
    }
});
