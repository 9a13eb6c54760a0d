//! `lf_event`: accessors for the event passed to a callback, including JSON lookups.

use super::boundary::{guard, result, str_arg, write_out};
use super::types::{lf_bytes, lf_str};
use crate::error::{Error, ErrorCode};
use crate::event::{Event, EventKind, SessionState};
use crate::json_pointer::{self, Kind};
use serde_json::Value;
use serde_json::value::RawValue;
use std::cell::RefCell;
use std::ffi::c_char;

/// An event passed to an `lf_event_callback`. Borrowed: valid only during the callback,
/// and so is every view read from it.
pub struct lf_event {
    /// Points to an `Event` that outlives this view (it lives on the dispatcher's stack).
    ev: *const Event<'static>,
    /// Compact JSON texts produced by `lf_event_json_raw`, kept until the callback returns.
    arena: RefCell<Vec<Box<str>>>,
}

impl lf_event {
    pub(crate) fn new(ev: &Event<'_>) -> lf_event {
        lf_event { ev: (ev as *const Event<'_>).cast(), arena: RefCell::new(Vec::new()) }
    }
}

/// Borrows the event behind a view, for the duration of an accessor call.
fn with_event<R: super::boundary::OnPanic>(
    event: *const lf_event,
    default: R,
    f: impl FnOnce(&lf_event, &Event<'_>) -> R,
) -> R {
    guard(|| {
        // SAFETY: the host passes the pointer it received in the callback, during the
        // callback (header contract); the view and its event are alive until it returns.
        match unsafe { event.as_ref() } {
            None => default,
            // SAFETY: `ev` was set from a live `&Event` that outlives the view.
            Some(view) => f(view, unsafe { &*view.ev }),
        }
    })
}

impl super::boundary::OnPanic for EventKind {
    fn on_panic() -> Self {
        EventKind::Error
    }
}
impl super::boundary::OnPanic for lf_str {
    fn on_panic() -> Self {
        lf_str::empty()
    }
}
impl super::boundary::OnPanic for lf_bytes {
    fn on_panic() -> Self {
        lf_bytes::from(&[])
    }
}

/// The kind of event (an `lf_kind` value). New kinds may be added: ignore unknown ones.
/// Returns `LF_KIND_ERROR` for NULL.
#[unsafe(no_mangle)]
pub extern "C" fn lf_event_kind(event: *const lf_event) -> EventKind {
    with_event(event, EventKind::Error, |_, e| e.kind())
}

/// The session's state when the event was raised (for `LF_KIND_STATE`: the new state).
#[unsafe(no_mangle)]
pub extern "C" fn lf_event_state(event: *const lf_event) -> SessionState {
    with_event(event, SessionState::Closed, |_, e| e.state())
}

/// The topic: event name, resource or channel where the protocol has one; empty otherwise.
/// Valid until the callback returns.
#[unsafe(no_mangle)]
pub extern "C" fn lf_event_topic(event: *const lf_event) -> lf_str {
    with_event(event, lf_str::empty(), |_, e| lf_str::from(e.topic()))
}

/// For platform `LF_KIND_EVENT`s, what happened where the platform says so (deCONZ:
/// `changed`, `added`, ..., `snapshot`; SmartServer: the action; Navixy: `event` or
/// `response`; Igtimi: the data type code); empty otherwise. Valid until the callback returns.
#[unsafe(no_mangle)]
pub extern "C" fn lf_event_type(event: *const lf_event) -> lf_str {
    with_event(event, lf_str::empty(), |_, e| lf_str::from(e.event_type()))
}

/// The payload as text: the message for `MESSAGE`, the error message for `ERROR`, the
/// close reason for `CLOSE`, the state name (or the chosen subprotocol on open) for
/// `STATE`. Empty for binary payloads that are not UTF-8. Valid until the callback returns.
#[unsafe(no_mangle)]
pub extern "C" fn lf_event_text(event: *const lf_event) -> lf_str {
    with_event(event, lf_str::empty(), |_, e| e.text().map_or_else(lf_str::empty, lf_str::from))
}

/// The payload bytes (any kind). Valid until the callback returns.
#[unsafe(no_mangle)]
pub extern "C" fn lf_event_data(event: *const lf_event) -> lf_bytes {
    with_event(event, lf_bytes::from(&[]), |_, e| lf_bytes::from(e.payload()))
}

/// For `LF_KIND_ERROR`: why (an `lf_result` value). `LF_RESULT_OK` for other kinds.
#[unsafe(no_mangle)]
pub extern "C" fn lf_event_result(event: *const lf_event) -> ErrorCode {
    with_event(event, ErrorCode::NullParameter, |_, e| e.error().map_or(ErrorCode::Ok, |e| e.code))
}

/// Socket.IO: the namespace of an `LF_KIND_EVENT`, `LF_KIND_ACK` or namespace error
/// (empty for other protocols). Valid until the callback returns.
#[unsafe(no_mangle)]
pub extern "C" fn lf_event_namespace(event: *const lf_event) -> lf_str {
    with_event(event, lf_str::empty(), |_, e| lf_str::from(e.namespace()))
}

/// For `LF_KIND_ACK`: the id `lf_session_emit` returned. For `LF_KIND_EVENT`: nonzero when
/// the server asks for an acknowledgement; answer with `lf_session_ack` and this id.
/// 0 otherwise (and for NULL).
#[unsafe(no_mangle)]
pub extern "C" fn lf_event_ack_id(event: *const lf_event) -> u64 {
    with_event(event, 0, |_, e| e.ack_id())
}

/// Socket.IO: the number of binary attachments of an event or ack (0 for NULL).
#[unsafe(no_mangle)]
pub extern "C" fn lf_event_attachment_count(event: *const lf_event) -> usize {
    with_event(event, 0, |_, e| e.attachments().len())
}

/// Socket.IO: attachment `index` (the `num` of its placeholder in the JSON payload); an
/// empty view when out of range. Valid until the callback returns.
#[unsafe(no_mangle)]
pub extern "C" fn lf_event_attachment(event: *const lf_event, index: usize) -> lf_bytes {
    with_event(event, lf_bytes::from(&[]), |_, e| {
        e.attachments().get(index).map_or(lf_bytes::from(&[]), |a| lf_bytes::from(a))
    })
}

/// For `LF_KIND_CLOSE`: the close code (1005 when the peer sent none, 1006 when the
/// connection ended without a close handshake). 0 for other kinds.
#[unsafe(no_mangle)]
pub extern "C" fn lf_event_close_code(event: *const lf_event) -> u16 {
    with_event(event, 0, |_, e| e.close_code())
}

fn lookup<'e>(e: &'e Event<'_>, pointer: *const c_char) -> crate::Result<&'e RawValue> {
    // SAFETY: NULL or NUL-terminated (caller contract).
    let pointer = unsafe { str_arg(pointer, "pointer") }?;
    if !pointer.is_empty() && !pointer.starts_with('/') {
        return Err(Error::new(
            ErrorCode::InvalidParameter,
            "a JSON pointer is empty or starts with '/'",
        ));
    }
    e.json_find(pointer)
        .ok_or_else(|| Error::new(ErrorCode::NotFound, "no value at that JSON pointer"))
}

/// Keeps text made during the callback alive until it returns, and views it.
fn keep(view: &lf_event, text: String) -> lf_str {
    let text = text.into_boxed_str();
    let s = lf_str::from(&text);
    // The box's heap buffer does not move when the arena grows: `s` stays valid.
    view.arena.borrow_mut().push(text);
    s
}

fn mismatch(want: &str) -> Error {
    Error::new(ErrorCode::TypeMismatch, format!("the value is not a {want}"))
}

fn json_call(
    event: *const lf_event,
    f: impl FnOnce(&lf_event, &Event<'_>) -> crate::Result<()>,
) -> ErrorCode {
    with_event(event, ErrorCode::NullParameter, |view, e| result(|| f(view, e)))
}

/// Looks up a string in the JSON payload by JSON pointer (RFC 6901, e.g. `"/state/on"`;
/// `""` is the whole payload). Each lookup is one pass over the payload that builds
/// nothing: a few fields cost a few passes, and nothing else is parsed (so each of many
/// fields read from a large payload costs a pass over all of it).
///
/// Parameters: `pointer` NUL-terminated; `out` receives a view valid until the callback
/// returns (written only on success).
/// Returns: `LF_RESULT_OK`, `LF_RESULT_NULL_PARAMETER`, `LF_RESULT_INVALID_PARAMETER` (bad
/// pointer syntax), `LF_RESULT_NOT_FOUND` (no such value, or the payload is not JSON),
/// `LF_RESULT_TYPE_MISMATCH`.
/// Thread safety: the callback's thread, during the callback.
#[unsafe(no_mangle)]
pub extern "C" fn lf_event_json_string(
    event: *const lf_event,
    pointer: *const c_char,
    out: *mut lf_str,
) -> ErrorCode {
    json_call(event, |view, e| {
        let raw = lookup(e, pointer)?;
        if json_pointer::kind(raw) != Kind::String {
            return Err(mismatch("string"));
        }
        let quoted = raw.get();
        let inner = &quoted[1..quoted.len() - 1];
        let s = if inner.contains('\\') {
            // Escapes: the unescaped copy lives until the callback returns.
            let text: String = serde_json::from_str(quoted).map_err(|_| mismatch("string"))?;
            keep(view, text)
        } else {
            lf_str::from(inner) // the payload's own bytes
        };
        // SAFETY: NULL or writable (caller contract).
        unsafe { write_out(out, s, "out") }
    })
}

/// Looks up a number by JSON pointer (see `lf_event_json_string`). Integers beyond 2^53
/// lose precision.
#[unsafe(no_mangle)]
pub extern "C" fn lf_event_json_number(
    event: *const lf_event,
    pointer: *const c_char,
    out: *mut f64,
) -> ErrorCode {
    json_call(event, |_, e| {
        let raw = lookup(e, pointer)?;
        if json_pointer::kind(raw) != Kind::Number {
            return Err(mismatch("number"));
        }
        // JSON's number grammar is a subset of Rust's; both round correctly.
        let n: f64 = raw.get().parse().map_err(|_| mismatch("number"))?;
        // SAFETY: NULL or writable (caller contract).
        unsafe { write_out(out, n, "out") }
    })
}

/// Looks up a boolean by JSON pointer (see `lf_event_json_string`).
#[unsafe(no_mangle)]
pub extern "C" fn lf_event_json_bool(
    event: *const lf_event,
    pointer: *const c_char,
    out: *mut bool,
) -> ErrorCode {
    json_call(event, |_, e| {
        let b = match lookup(e, pointer)?.get() {
            "true" => true,
            "false" => false,
            _ => return Err(mismatch("boolean")),
        };
        // SAFETY: NULL or writable (caller contract).
        unsafe { write_out(out, b, "out") }
    })
}

/// Whether the JSON payload has a value (of any type, null included) at `pointer`.
/// `lf_event_json_has(ev, "")` tells whether the payload is JSON at all.
/// Returns false for NULL arguments or a payload that is not JSON.
#[unsafe(no_mangle)]
pub extern "C" fn lf_event_json_has(event: *const lf_event, pointer: *const c_char) -> bool {
    with_event(event, false, |_, e| lookup(e, pointer).is_ok())
}

/// The value at `pointer` as compact JSON text (one line, no insignificant whitespace):
/// a sub-object to hand on, or with `""` the whole payload normalized.
///
/// Parameters: `out` receives a view valid until the callback returns.
/// Returns: as `lf_event_json_string`, without `LF_RESULT_TYPE_MISMATCH`.
#[unsafe(no_mangle)]
pub extern "C" fn lf_event_json_raw(
    event: *const lf_event,
    pointer: *const c_char,
    out: *mut lf_str,
) -> ErrorCode {
    json_call(event, |view, e| {
        let raw = lookup(e, pointer)?;
        // Normalized: parsed and written again (compact, as documented).
        let value: Value = serde_json::from_str(raw.get())
            .map_err(|e| Error::new(ErrorCode::Protocol, e.to_string()))?;
        let text = serde_json::to_string(&value)
            .map_err(|e| Error::new(ErrorCode::Protocol, e.to_string()))?;
        let s = keep(view, text);
        // SAFETY: NULL or writable (caller contract).
        unsafe { write_out(out, s, "out") }
    })
}

/// The name of an event kind (`"state"`, `"message"`, `"binary"`, `"error"`, `"close"`,
/// `"writable"`, `"event"`, `"ack"`, `"dropped"`), or `"unknown"`. Static; never NULL. Any thread.
#[unsafe(no_mangle)]
pub extern "C" fn lf_event_kind_name(kind: u32) -> *const c_char {
    guard(|| {
        EventKind::from_u32(kind).map_or(c"unknown".as_ptr(), |k| k.name_nul().as_ptr().cast())
    })
}

/// The name of a state (`"connecting"`, `"open"`, `"closing"`, `"closed"`,
/// `"reconnecting"`), or `"unknown"`.
/// Static; never NULL. Any thread.
#[unsafe(no_mangle)]
pub extern "C" fn lf_state_name(state: u32) -> *const c_char {
    guard(|| {
        SessionState::from_u32(state).map_or(c"unknown".as_ptr(), |s| s.name_nul().as_ptr().cast())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    /// The text a view points to.
    fn text(s: &lf_str) -> &str {
        // SAFETY: views come from live `&str`s of the event or its arena (test-local).
        std::str::from_utf8(unsafe { std::slice::from_raw_parts(s.data.cast::<u8>(), s.len) })
            .unwrap_or("<not UTF-8>")
    }

    fn string_at(view: &lf_event, pointer: &CStr) -> (ErrorCode, String, bool) {
        let mut out = lf_str::empty();
        let r = lf_event_json_string(view, pointer.as_ptr(), &mut out);
        (r, text(&out).to_string(), view.arena.borrow().is_empty())
    }

    #[test]
    fn json_lookups_answer_each_case_with_its_code() {
        let payload = br#"{"plain":"abc","esc":"a\"b","n":-2.5,"t":true,"o":{"k":[1, 2]}}"#;
        let ev = Event::new(EventKind::Message, SessionState::Open, payload);
        let view = lf_event::new(&ev);

        // A string without escapes is the payload's own bytes; one with escapes is kept
        // in the arena until the callback returns.
        assert_eq!(string_at(&view, c"/plain"), (ErrorCode::Ok, "abc".into(), true));
        let mut out = lf_str::empty();
        assert_eq!(lf_event_json_string(&view, c"/plain".as_ptr(), &mut out), ErrorCode::Ok);
        let inside = payload.as_ptr_range();
        assert!(inside.contains(&out.data.cast::<u8>()), "a view into the payload");
        assert_eq!(string_at(&view, c"/esc"), (ErrorCode::Ok, "a\"b".into(), false));

        let mut n = 0.0;
        assert_eq!(lf_event_json_number(&view, c"/n".as_ptr(), &mut n), ErrorCode::Ok);
        assert_eq!(n, -2.5);
        let mut b = false;
        assert_eq!(lf_event_json_bool(&view, c"/t".as_ptr(), &mut b), ErrorCode::Ok);
        assert!(b);
        let mut raw = lf_str::empty();
        assert_eq!(lf_event_json_raw(&view, c"/o".as_ptr(), &mut raw), ErrorCode::Ok);
        assert_eq!(text(&raw), r#"{"k":[1,2]}"#, "normalized");

        // Wrong type, nothing there, bad pointer syntax, NULL arguments.
        assert_eq!(string_at(&view, c"/n").0, ErrorCode::TypeMismatch);
        assert_eq!(lf_event_json_number(&view, c"/t".as_ptr(), &mut n), ErrorCode::TypeMismatch);
        assert_eq!(lf_event_json_bool(&view, c"/n".as_ptr(), &mut b), ErrorCode::TypeMismatch);
        assert_eq!(string_at(&view, c"/missing").0, ErrorCode::NotFound);
        assert_eq!(string_at(&view, c"plain").0, ErrorCode::InvalidParameter);
        assert_eq!(
            lf_event_json_string(&view, std::ptr::null(), &mut out),
            ErrorCode::NullParameter
        );
        assert!(lf_event_json_has(&view, c"/o/k/1".as_ptr()));
        assert!(!lf_event_json_has(&view, c"/o/k/2".as_ptr()));

        // A payload that is not JSON has nothing at any pointer.
        let bad = Event::new(EventKind::Message, SessionState::Open, b"{\"plain\":\"abc\",");
        let bad_view = lf_event::new(&bad);
        assert!(!lf_event_json_has(&bad_view, c"".as_ptr()));
        assert_eq!(string_at(&bad_view, c"/plain").0, ErrorCode::NotFound);
    }
}
