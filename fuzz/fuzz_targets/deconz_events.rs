//! Fuzzes the deCONZ profile's mapping of what a gateway sends (`livefeed::vendors::deconz`):
//! WebSocket event frames (`map_event`), the config reply (`websocket_port`), snapshot
//! replies (`parse_snapshot`) and the API-key reply (`parse_api_key`, `rest_error`).
//!
//! Input layout: the whole input is the frame or body, e.g.
//! `{"t":"event","e":"changed","r":"lights","id":"1","state":{"on":true}}`. Every parser sees
//! every input (frames that are not UTF-8 only go to the byte-level parsers).
//!
//! Checks, besides "never panics":
//!   - `map_event` agrees with an independent reading of the JSON: on success `t` is
//!     "event", the type is `e`, and the topic is `r/id` (`groups/gid/scenes/scid` for a
//!     scene call, or when there is no `id`), every part 1 to 128 bytes without control
//!     characters or `/`; on failure the error is `Protocol`;
//!   - `websocket_port` returns a nonzero port that is the config's `websocketport`
//!     (`websocketport_wss` with TLS), and fails with `Protocol` (or `Auth` for an error
//!     body saying the key was refused);
//!   - `parse_snapshot` returns one item per member of the reply object, each a JSON
//!     object, with the same ids in the same order;
//!   - `parse_api_key` returns a non-empty printable key that the reply holds, and fails
//!     only with `Auth`, `HttpStatus` or `Protocol`;
//!   - every error message is bounded (at most 1 KiB, whatever the input size).

#![no_main]

use libfuzzer_sys::fuzz_target;
use livefeed::ErrorCode;
use livefeed::vendors::deconz::{
    map_event, parse_api_key, parse_snapshot, rest_error, websocket_port,
};
use serde_json::Value;

const MAX_MESSAGE: usize = 1024;

fn part_ok(s: &str) -> bool {
    !s.is_empty() && s.len() <= 128 && !s.chars().any(|c| c.is_control() || c == '/')
}

/// An id as the mapping accepts it: a string, or a non-negative integer.
fn id(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) if n.is_u64() => Some(n.to_string()),
        _ => None,
    }
}

fn check_error(e: &livefeed::Error, allowed: &[ErrorCode], what: &str) {
    assert!(allowed.contains(&e.code), "{what}: unexpected code {:?}: {}", e.code, e.message);
    assert!(!e.message.is_empty(), "{what}: empty error message");
    assert!(e.message.len() <= MAX_MESSAGE, "{what}: {} byte message", e.message.len());
}

fn check_event(text: &str) {
    let json: Option<Value> = serde_json::from_str(text).ok();
    match map_event(text) {
        Ok(m) => {
            let v = json.expect("map_event took text serde_json refuses");
            assert_eq!(v["t"], "event", "{text}");
            assert_eq!(v["e"].as_str(), Some(m.event_type.as_str()), "{text}");
            assert!(!m.event_type.is_empty() && m.event_type.len() <= 128);
            assert!(!m.event_type.chars().any(char::is_control), "{:?}", m.event_type);
            let r = v["r"].as_str().expect("r is a string");
            assert!(part_ok(r), "{text}");
            let scene = match (id(&v, "gid"), id(&v, "scid")) {
                (Some(g), Some(s)) => Some((g, s)),
                _ => None,
            };
            let expected = match (m.event_type.as_str(), id(&v, "id"), scene) {
                ("scene-called", _, Some((g, s))) | (_, None, Some((g, s))) => {
                    assert!(part_ok(&g) && part_ok(&s), "{text}");
                    format!("groups/{g}/scenes/{s}")
                }
                (_, Some(i), _) => {
                    assert!(part_ok(&i), "{text}");
                    format!("{r}/{i}")
                }
                _ => panic!("map_event took an event without an id or scene: {text}"),
            };
            assert_eq!(m.topic, expected, "{text}");
        }
        Err(e) => check_error(&e, &[ErrorCode::Protocol], "map_event"),
    }
}

fn check_config(data: &[u8]) {
    let json: Option<Value> = serde_json::from_slice(data).ok();
    for (tls, key) in [(false, "websocketport"), (true, "websocketport_wss")] {
        match websocket_port(200, data, tls) {
            Ok(port) => {
                assert_ne!(port, 0);
                let v = json.as_ref().expect("websocket_port took text serde_json refuses");
                assert_eq!(v[key].as_u64(), Some(u64::from(port)), "{key}");
            }
            // An error body with status 200: `Auth` for a refused key.
            Err(e) => check_error(&e, &[ErrorCode::Protocol, ErrorCode::Auth], "websocket_port"),
        }
    }
    for status in [403, 503] {
        let e = websocket_port(status, data, false).expect_err("a refusal is an error");
        check_error(&e, &[ErrorCode::Auth, ErrorCode::HttpStatus, ErrorCode::Protocol], "status");
    }
}

fn check_snapshot(data: &[u8]) {
    match parse_snapshot("lights", 200, data) {
        Ok(items) => {
            let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(data) else {
                panic!("parse_snapshot took a reply that is not a JSON object");
            };
            assert_eq!(items.len(), map.len());
            for ((id, item), (key, value)) in items.iter().zip(&map) {
                assert_eq!(id, key);
                assert!(part_ok(id), "{id:?}");
                let again: Value = serde_json::from_str(item).expect("an item is JSON");
                assert!(again.is_object());
                assert_eq!(&again, value, "item {id}");
            }
        }
        Err(e) => {
            check_error(&e, &[ErrorCode::Protocol, ErrorCode::Auth], "parse_snapshot");
            assert!(e.message.starts_with("reading lights"), "{}", e.message);
        }
    }
}

fn check_api_key(data: &[u8]) {
    for status in [200, 400, 403] {
        match parse_api_key(status, data) {
            Ok(key) => {
                assert_eq!(status, 200, "a key from a refusal");
                assert!(!key.is_empty() && key.chars().all(|c| c.is_ascii_graphic()), "{key:?}");
                let v: Value = serde_json::from_slice(data).expect("a key from JSON");
                let items = v.as_array().expect("the reply is an array");
                assert!(
                    items.iter().any(|i| i.pointer("/success/username") == Some(&Value::from(key.as_str()))),
                    "{key:?} is not a success username of the reply"
                );
            }
            Err(e) => {
                let allowed = [ErrorCode::Auth, ErrorCode::HttpStatus, ErrorCode::Protocol];
                check_error(&e, &allowed, "parse_api_key");
                if rest_error(data).is_some_and(|r| r.kind == 101) {
                    assert_eq!(e.code, ErrorCode::Auth, "error 101 is Auth: {}", e.message);
                }
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        check_event(text);
    }
    check_config(data);
    check_snapshot(data);
    check_api_key(data);
});
