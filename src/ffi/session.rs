//! `lf_session`: one feed on a loop.

use super::boundary::{bytes_arg, guard, handle, opt_str_arg, result, write_out};
use super::config::{config_ref, lf_config};
use super::event::lf_event;
use super::loop_api::lf_loop;
use super::types::{UserData, lf_userdata_free};
use crate::error::{Error, ErrorCode};
use crate::event::SessionState;
use crate::reactor::Session;
use std::ffi::{c_char, c_void};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// One feed: a connection that a loop establishes and services, reporting through a
/// callback.
///
/// Thread safety: every `lf_session_*` function may be called from any thread, including
/// from inside callbacks, except `lf_session_free`, which must not race with other calls
/// on the same session.
pub struct lf_session {
    inner: Session,
}

/// Receives the events of one session.
///
/// Runs on the thread driving the loop, never concurrently for the same session. `event`
/// and everything read from it are valid only until the callback returns.
/// Allowed inside: every `lf_session_*` function (on any session, including freeing this
/// one), `lf_loop_stop`, `lf_session_new`. Not allowed: `lf_loop_run`/`lf_loop_run_once`
/// (they return `LF_RESULT_WRONG_STATE`) and `lf_loop_free` (refused). Must not unwind
/// (C++ exceptions) or longjmp out of the callback.
pub type lf_event_callback =
    Option<unsafe extern "C" fn(userdata: *mut c_void, event: *const lf_event)>;

/// Creates a session on `lp` from `config` (copied; the config may be freed right after).
/// The configuration is checked now; connecting starts on the loop thread, which then
/// reports a `LF_KIND_STATE` event for `connecting`.
///
/// Parameters:
///   `lp`, `config`: borrowed, must not be NULL.
///   `callback`: must not be NULL.
///   `userdata`: handed to every callback; on success the session owns it and calls
///     `userdata_free` (may be NULL) once when it no longer needs it. On failure the
///     caller keeps it and `userdata_free` is not called.
///   `out`: receives the session on success; free it with `lf_session_free`.
/// Returns: `LF_RESULT_OK`, `LF_RESULT_NULL_PARAMETER`, `LF_RESULT_INVALID_PARAMETER` (bad
/// URL), `LF_RESULT_NOT_SUPPORTED` (protocol not available yet), `LF_RESULT_TLS_CONFIG`,
/// `LF_RESULT_CLOSED` (the loop is being freed).
/// Thread safety: any thread, including callbacks.
#[unsafe(no_mangle)]
pub extern "C" fn lf_session_new(
    lp: *const lf_loop,
    config: *const lf_config,
    callback: lf_event_callback,
    userdata: *mut c_void,
    userdata_free: lf_userdata_free,
    out: *mut *mut lf_session,
) -> ErrorCode {
    result(|| {
        // SAFETY: live handles (caller contract).
        let (lp, cfg) = unsafe { (handle(lp, "loop")?, config_ref(config)?) };
        let callback = callback.ok_or_else(|| super::boundary::null("callback"))?;
        if out.is_null() {
            return Err(super::boundary::null("out"));
        }
        let adopted = Arc::new(AtomicBool::new(false));
        let ud = UserData { ptr: userdata, free: userdata_free, adopted: Arc::clone(&adopted) };
        let session = lp.inner.open(cfg.clone(), move |ev| {
            let view = lf_event::new(ev);
            // SAFETY: the host registered `callback` for `ud.ptr`; `view` outlives the call.
            unsafe { callback(ud.ptr(), &view) };
        })?;
        adopted.store(true, Ordering::Release);
        let s = Box::into_raw(Box::new(lf_session { inner: session }));
        // SAFETY: checked non-NULL; writable per caller contract.
        unsafe { write_out(out, s, "out") }
    })
}

fn with_session(s: *const lf_session, f: impl FnOnce(&Session) -> crate::Result<()>) -> ErrorCode {
    result(|| {
        // SAFETY: live handle (caller contract).
        f(&unsafe { handle(s, "session") }?.inner)
    })
}

/// Queues a text message. Copies `data`; returns once queued, not once sent.
///
/// Parameters: `data` UTF-8 of `len` bytes (need not be NUL-terminated; NULL only if `len` is 0).
/// Returns: `LF_RESULT_OK`; `LF_RESULT_NULL_PARAMETER`; `LF_RESULT_INVALID_UTF8`;
/// `LF_RESULT_BACKPRESSURE` when the send buffer (`LF_LIMIT_SEND_BUFFER`) is full — a
/// `LF_KIND_WRITABLE` event follows when it drains; `LF_RESULT_CLOSED` when the
/// session is closing or closed. Messages queued before the session opens are sent on open.
/// Thread safety: any thread, including callbacks.
#[unsafe(no_mangle)]
pub extern "C" fn lf_session_send_text(
    session: *const lf_session,
    data: *const c_char,
    len: usize,
) -> ErrorCode {
    with_session(session, |s| {
        // SAFETY: NULL or `len` readable bytes (caller contract).
        let bytes = unsafe { bytes_arg(data.cast(), len, "data") }?;
        let text = std::str::from_utf8(bytes)
            .map_err(|_| Error::new(ErrorCode::InvalidUtf8, "text message is not valid UTF-8"))?;
        s.send_text(text)
    })
}

/// Queues a binary message. Copies `data`. Same results as `lf_session_send_text`
/// (without `LF_RESULT_INVALID_UTF8`).
/// Thread safety: any thread, including callbacks.
#[unsafe(no_mangle)]
pub extern "C" fn lf_session_send_binary(
    session: *const lf_session,
    data: *const u8,
    len: usize,
) -> ErrorCode {
    with_session(session, |s| {
        // SAFETY: NULL or `len` readable bytes (caller contract).
        let bytes = unsafe { bytes_arg(data, len, "data") }?;
        s.send_binary(bytes)
    })
}

/// Starts the close handshake. A `LF_KIND_CLOSE` event and the `closed` state
/// follow (after the peer answers or `LF_TIMEOUT_CLOSE`).
///
/// Parameters: `code` 1000, 1001–1003, 1007–1011 or 3000–4999; `reason` NUL-terminated
/// UTF-8 of at most 123 bytes, or NULL for none.
/// Returns: `LF_RESULT_OK`, `LF_RESULT_NULL_PARAMETER`, `LF_RESULT_INVALID_UTF8`,
/// `LF_RESULT_INVALID_PARAMETER`, `LF_RESULT_CLOSED`.
/// Thread safety: any thread, including callbacks.
#[unsafe(no_mangle)]
pub extern "C" fn lf_session_close(
    session: *const lf_session,
    code: u16,
    reason: *const c_char,
) -> ErrorCode {
    with_session(session, |s| {
        // SAFETY: NULL or NUL-terminated (caller contract).
        let reason = unsafe { opt_str_arg(reason, "reason") }?.unwrap_or("");
        s.close(code, reason)
    })
}

/// The session's current state (an `lf_state` value); `LF_STATE_CLOSED` for NULL.
/// Thread safety: any thread.
#[unsafe(no_mangle)]
pub extern "C" fn lf_session_state(session: *const lf_session) -> SessionState {
    guard(|| {
        // SAFETY: NULL or live handle (caller contract).
        unsafe { session.as_ref() }.map_or(SessionState::Closed, |s| s.inner.state())
    })
}

/// Bytes accepted by the send functions and not yet written to the socket (0 for NULL).
/// Thread safety: any thread.
#[unsafe(no_mangle)]
pub extern "C" fn lf_session_queued_bytes(session: *const lf_session) -> usize {
    guard(|| {
        // SAFETY: NULL or live handle (caller contract).
        unsafe { session.as_ref() }.map_or(0, |s| s.inner.queued_bytes())
    })
}

/// Frees a session: its callback is not called again once this returns (when called from
/// that very callback, no later callback happens either), its connection is closed
/// (politely when open), and `userdata_free` runs. NULL is a no-op.
/// Thread safety: any thread, including callbacks; not concurrently with other calls on
/// the same session.
#[unsafe(no_mangle)]
pub extern "C" fn lf_session_free(session: *mut lf_session) {
    guard(|| {
        if !session.is_null() {
            // SAFETY: created by `lf_session_new`, not yet freed (caller contract).
            drop(unsafe { Box::from_raw(session) });
        }
    })
}

impl super::boundary::OnPanic for SessionState {
    fn on_panic() -> Self {
        SessionState::Closed
    }
}
