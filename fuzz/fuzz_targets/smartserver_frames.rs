//! Fuzzes the SmartServer frame mapping (`livefeed::vendors::smartserver::map_frame`): every
//! text frame of the general-purpose socket and of data-log sockets goes through it.
//!
//! Input layout: byte 0 bit 0 picks the socket (0: general-purpose, 1: data log); the rest
//! is the frame text (inputs that are not UTF-8 are skipped: WebSocket text is UTF-8).
//!
//! Checks, besides "never panics":
//!   - every frame yields something (an event, the end, or a complaint; only an
//!     `UPD:DATAPOINT` frame with an empty entry list may yield nothing), and a frame that is
//!     not a JSON object (general-purpose) or not JSON (data log) yields exactly one
//!     complaint;
//!   - every event payload is a slice of the frame and is JSON; complaints stay short;
//!   - general-purpose socket: `UPD:DATAPOINT` events carry an object whose
//!     `datapointQualifier` is the (non-empty) topic; any other event's topic and type are
//!     the frame's `action`; the end never comes;
//!   - data log: the end comes alone and only for the JSON string `"end"`; an event is the
//!     whole frame (JSON whitespace aside), of type `DATALOG`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use livefeed::vendors::smartserver::{DATALOG, Mapped, Socket, UPD_DATAPOINT, map_frame};
use serde_json::value::RawValue;
use std::collections::HashMap;

#[derive(Debug)]
enum Item {
    /// `offset`: where the payload is in the frame (`None`: the `null` of a frame
    /// without `payload`).
    Event {
        topic: String,
        event_type: String,
        payload: String,
        offset: Option<usize>,
    },
    End,
    Invalid(String),
}

fn members(text: &str) -> Option<HashMap<String, &RawValue>> {
    serde_json::from_str(text).ok()
}

fn string(raw: Option<&&RawValue>) -> Option<String> {
    raw.and_then(|r| serde_json::from_str::<String>(r.get()).ok())
}

fuzz_target!(|input: &[u8]| {
    let Some((&mode, rest)) = input.split_first() else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let socket = if mode & 1 == 0 { Socket::Live } else { Socket::DataLog };

    let mut items = Vec::new();
    let start = text.as_ptr() as usize;
    map_frame(socket, text, &mut |m| {
        items.push(match m {
            Mapped::Event { topic, event_type, payload } => {
                let offset = (payload.as_ptr() as usize).wrapping_sub(start);
                let inside = offset <= text.len() && payload.len() <= text.len() - offset;
                assert!(inside || payload == "null", "payload is not a slice of the frame");
                let offset = inside.then_some(offset);
                Item::Event {
                    topic: topic.into(),
                    event_type: event_type.into(),
                    payload: payload.into(),
                    offset,
                }
            }
            Mapped::End => Item::End,
            Mapped::Invalid(why) => Item::Invalid(why),
        })
    });
    // Only an UPD:DATAPOINT frame with an empty entry list may yield nothing.
    let empty_update = members(text).is_some_and(|f| {
        string(f.get("action")).as_deref() == Some(UPD_DATAPOINT)
            && f.get("payload").is_some_and(|p| {
                serde_json::from_str::<Vec<&RawValue>>(p.get()).is_ok_and(|v| v.is_empty())
            })
    });
    assert!(
        !items.is_empty() || (socket == Socket::Live && empty_update),
        "nothing came of {text:?}"
    );

    for item in &items {
        match item {
            Item::Event { payload, .. } => {
                serde_json::from_str::<&RawValue>(payload)
                    .unwrap_or_else(|e| panic!("payload {payload:?} is not JSON: {e}"));
            }
            Item::Invalid(why) => assert!(why.len() <= 700, "a long complaint: {why:?}"),
            Item::End => {}
        }
    }

    match socket {
        Socket::Live => {
            let Some(frame) = members(text) else {
                assert!(matches!(&items[..], [Item::Invalid(_)]), "{text:?}: {items:?}");
                return;
            };
            let action = string(frame.get("action"));
            for item in &items {
                match item {
                    Item::End => panic!("an end on the general-purpose socket: {text:?}"),
                    Item::Invalid(_) => {}
                    Item::Event { topic, event_type, payload, offset }
                        if event_type == UPD_DATAPOINT
                            && action.as_deref() == Some(UPD_DATAPOINT) =>
                    {
                        assert!(offset.is_some(), "an entry comes from the frame");
                        let entry = members(payload).expect("an UPD:DATAPOINT entry is an object");
                        assert!(!topic.is_empty());
                        assert_eq!(string(entry.get("datapointQualifier")).as_ref(), Some(topic));
                    }
                    Item::Event { topic, event_type, offset, .. } => {
                        assert_eq!(Some(topic), action.as_ref(), "{text:?}");
                        assert_eq!(offset.is_none(), !frame.contains_key("payload"), "{text:?}");
                        assert_eq!(topic, event_type);
                        assert_ne!(event_type, UPD_DATAPOINT);
                    }
                }
            }
            if action.is_none() {
                assert!(matches!(&items[..], [Item::Invalid(_)]), "{text:?}: {items:?}");
            }
        }
        Socket::DataLog => {
            let trimmed = text.trim_matches([' ', '\t', '\n', '\r']);
            let is_end = serde_json::from_str::<String>(text).is_ok_and(|s| s == "end");
            if items.iter().any(|i| matches!(i, Item::End)) {
                assert!(is_end && items.len() == 1, "{text:?}: {items:?}");
            }
            if is_end {
                assert!(matches!(&items[..], [Item::End]), "{text:?}: {items:?}");
            }
            assert!(items.len() == 1, "one item per data-log frame: {items:?}");
            if let Item::Event { event_type, payload, offset, .. } = &items[0] {
                assert_eq!(event_type, DATALOG);
                assert_eq!(payload, trimmed);
                let lead = text.len() - text.trim_start_matches([' ', '\t', '\n', '\r']).len();
                assert_eq!(*offset, Some(lead));
                assert!(members(payload).is_some(), "a data-log entry is an object");
            }
        }
    }
});
