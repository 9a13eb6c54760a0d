//! `lf_session`: one feed on a loop.

use super::boundary::{bytes_arg, guard, handle, opt_str_arg, result, str_arg, write_out};
use super::config::{config_ref, lf_config};
use super::event::lf_event;
use super::loop_api::lf_loop;
use super::types::{UserData, lf_bytes, lf_userdata_free};
use crate::error::{Error, ErrorCode};
use crate::event::SessionState;
use crate::reactor::Session;
use std::ffi::{c_char, c_void};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// One feed: a connection that a loop establishes and services, reporting through a
/// callback.
///
/// Thread safety: every `lf_session_*` function may be called from any thread, including
/// from inside callbacks, except `lf_session_free`, which must not race with other calls
/// on the same session.
pub struct lf_session {
    inner: Session,
    routes: Arc<Routes>,
}

/// A callback registered for one event name.
struct Route {
    event: String,
    callback: unsafe extern "C" fn(*mut c_void, *const lf_event),
    userdata: UserData,
}

/// Per-event-name callbacks, consulted before the catch-all callback.
#[derive(Default)]
struct Routes {
    any: AtomicBool,
    list: std::sync::Mutex<Vec<Arc<Route>>>,
}

impl Routes {
    /// The route for `event`, if any (cloned so it outlives a concurrent removal).
    fn find(&self, event: &str) -> Option<Arc<Route>> {
        if !self.any.load(Ordering::Acquire) {
            return None;
        }
        let list = self.list.lock().unwrap_or_else(|e| e.into_inner());
        list.iter().find(|r| r.event == event).cloned()
    }
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
        let routes = Arc::new(Routes::default());
        let lookup = Arc::clone(&routes);
        let session = lp.inner.open(cfg.clone(), move |ev| {
            let view = lf_event::new(ev);
            let route = match ev.kind() {
                crate::event::EventKind::Event => lookup.find(ev.topic()),
                _ => None,
            };
            match route {
                // SAFETY: the host registered this callback for this userdata; `view`
                // outlives the call, and `route` keeps the userdata alive through it.
                Some(r) => unsafe { (r.callback)(r.userdata.ptr(), &view) },
                // SAFETY: the host registered `callback` for `ud.ptr`; `view` outlives the call.
                None => unsafe { callback(ud.ptr(), &view) },
            }
        })?;
        adopted.store(true, Ordering::Release);
        let s = Box::into_raw(Box::new(lf_session { inner: session, routes }));
        // SAFETY: checked non-NULL; writable per caller contract.
        unsafe { write_out(out, s, "out") }
    })
}

/// Routes events named `event` (`LF_KIND_EVENT` with that topic: a Socket.IO event name or
/// a vendor resource) to `callback` instead of the session's catch-all callback. A NULL
/// `callback` removes the route. Replacing or removing a route releases its userdata
/// (`userdata_free`) once any call of it in progress has returned.
///
/// Parameters: `event` NUL-terminated, copied; `userdata`/`userdata_free` as for
/// `lf_session_new` (on failure the caller keeps `userdata`).
/// Returns: `LF_RESULT_OK`, `LF_RESULT_NULL_PARAMETER`, `LF_RESULT_INVALID_UTF8`.
/// Thread safety: any thread, including callbacks.
#[unsafe(no_mangle)]
pub extern "C" fn lf_session_on(
    session: *const lf_session,
    event: *const c_char,
    callback: lf_event_callback,
    userdata: *mut c_void,
    userdata_free: lf_userdata_free,
) -> ErrorCode {
    result(|| {
        // SAFETY: live handle and NUL-terminated name (caller contract).
        let (s, event) = unsafe { (handle(session, "session")?, str_arg(event, "event")?) };
        let mut list = s.routes.list.lock().unwrap_or_else(|e| e.into_inner());
        list.retain(|r| r.event != event);
        if let Some(callback) = callback {
            let adopted = Arc::new(AtomicBool::new(true));
            let userdata = UserData { ptr: userdata, free: userdata_free, adopted };
            list.push(Arc::new(Route { event: event.to_string(), callback, userdata }));
        }
        s.routes.any.store(!list.is_empty(), Ordering::Release);
        Ok(())
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

/// A session's counters (see `lf_session_stats`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct lf_stats {
    /// The state (an `lf_state` value) when the snapshot was taken.
    pub state: u32,
    /// The last error reported (an `lf_result` value; `LF_RESULT_OK` if none).
    pub last_error: u32,
    /// Connection attempts after the first one.
    pub reconnects: u64,
    /// Messages received (WebSocket data messages, long-polling payloads).
    pub messages_in: u64,
    /// Their payload bytes.
    pub bytes_in: u64,
    /// Messages written (protocol heartbeats included, WebSocket control frames not).
    pub messages_out: u64,
    /// Their payload bytes.
    pub bytes_out: u64,
    /// Sends dropped (outbox overflow, or unsent when the session ended).
    pub dropped: u64,
    /// Round-trip time of the last answered WebSocket ping, in microseconds (0: none yet).
    pub rtt_us: u64,
}

/// Copies the session's counters into `out`. `out_size` is `sizeof(lf_stats)` as the
/// caller was compiled: fields are only ever appended, and at most `out_size` bytes are
/// written, so a program built against an older header keeps working.
///
/// Returns: `LF_RESULT_OK`, `LF_RESULT_NULL_PARAMETER`.
/// Thread safety: any thread, including callbacks.
#[unsafe(no_mangle)]
pub extern "C" fn lf_session_stats(
    session: *const lf_session,
    out: *mut lf_stats,
    out_size: usize,
) -> ErrorCode {
    with_session(session, |s| {
        if out.is_null() {
            return Err(Error::new(ErrorCode::NullParameter, "out is NULL"));
        }
        let st = s.stats();
        let snapshot = lf_stats {
            state: st.state as u32,
            last_error: st.last_error as u32,
            reconnects: st.reconnects,
            messages_in: st.messages_in,
            bytes_in: st.bytes_in,
            messages_out: st.messages_out,
            bytes_out: st.bytes_out,
            dropped: st.dropped,
            rtt_us: st.rtt.map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX)),
        };
        let n = out_size.min(std::mem::size_of::<lf_stats>());
        // SAFETY: `out` points to at least `out_size` writable bytes (caller contract);
        // `n` is no more than either size, and the regions cannot overlap.
        unsafe {
            std::ptr::copy_nonoverlapping(
                (&snapshot as *const lf_stats).cast::<u8>(),
                out.cast::<u8>(),
                n,
            );
        }
        Ok(())
    })
}

/// Drops the connection (or the wait before the next attempt) and connects again now,
/// with a fresh backoff: for when the host knows the network changed (a new Wi-Fi, a
/// modem back online). Works with or without reconnecting turned on.
///
/// Returns: `LF_RESULT_OK`, `LF_RESULT_NULL_PARAMETER`, `LF_RESULT_CLOSED`.
/// Thread safety: any thread, including callbacks.
#[unsafe(no_mangle)]
pub extern "C" fn lf_session_reconnect(session: *const lf_session) -> ErrorCode {
    with_session(session, |s| s.reconnect_now())
}

/// Gives the session a new configuration (URL, headers, token, options...) for its next
/// connection attempts; the current connection is not touched. Called from the callback
/// of the `LF_STATE_CONNECTING` event that precedes every attempt, it applies to that
/// attempt: that event is the hook for changing URL, headers or token before a reconnect.
/// The protocol cannot change.
///
/// Parameters: `config` is copied; the caller still owns and frees it.
/// Returns: `LF_RESULT_OK`, `LF_RESULT_NULL_PARAMETER`, `LF_RESULT_INVALID_PARAMETER`
/// (another protocol, or the options are refused), `LF_RESULT_TLS_CONFIG`.
/// Thread safety: any thread, including callbacks.
#[unsafe(no_mangle)]
pub extern "C" fn lf_session_reconfigure(
    session: *const lf_session,
    config: *const lf_config,
) -> ErrorCode {
    with_session(session, |s| {
        // SAFETY: NULL or a live config handle (caller contract).
        let config = unsafe { config_ref(config) }?;
        s.reconfigure(config.clone())
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

/// NULL is the session's main namespace (the empty name on the Rust side).
fn opt_namespace<'a>(namespace: *const c_char) -> crate::Result<&'a str> {
    // SAFETY: NULL or NUL-terminated (caller contract).
    Ok(unsafe { opt_str_arg(namespace, "namespace") }?.unwrap_or(""))
}

fn opt_args<'a>(args: *const c_char) -> crate::Result<&'a str> {
    // SAFETY: NULL or NUL-terminated (caller contract).
    Ok(unsafe { opt_str_arg(args, "args_json") }?.unwrap_or("[]"))
}

/// Borrows `count` attachment views.
fn attachments_arg<'a>(attachments: *const lf_bytes, count: usize) -> crate::Result<Vec<&'a [u8]>> {
    if count == 0 {
        return Ok(Vec::new());
    }
    if attachments.is_null() {
        return Err(super::boundary::null("attachments"));
    }
    // SAFETY: the caller provides `count` readable views (contract).
    let views = unsafe { std::slice::from_raw_parts(attachments, count) };
    views
        .iter()
        // SAFETY: each view is NULL with length 0 or readable for its length (contract).
        .map(|v| unsafe { bytes_arg(v.data, v.len, "attachment") })
        .collect()
}

/// Socket.IO: emits `event` on `namespace`, optionally asking for an acknowledgement.
///
/// Parameters:
///   `namespace`: NUL-terminated, starting with '/'; NULL means the session's main
///     namespace (the URL path or the `namespace` option).
///   `event`: the event name; not NULL, not a reserved name ("connect", "disconnect", ...).
///   `args_json`: a JSON array of the arguments, e.g. `[{"on":true}]`; NULL means `[]`.
///     `{"_placeholder":true,"num":i}` marks where attachment i goes.
///   `attachments`, `attachment_count`: binary attachments (copied); NULL with 0.
///   `ack_timeout_ms`: 0 for no acknowledgement; otherwise the server is asked for one and
///     an `LF_KIND_ACK` event with the same id follows: the answer's arguments as payload,
///     or `LF_RESULT_TIMEOUT` in `lf_event_result` when none came in time (a reconnect
///     meanwhile included), or `LF_RESULT_CLOSED` when the session ended first.
///   `ack_id_out`: may be NULL; receives the acknowledgement id (0 when none was asked).
/// Returns: `LF_RESULT_OK`, `LF_RESULT_NULL_PARAMETER`, `LF_RESULT_INVALID_UTF8`,
/// `LF_RESULT_INVALID_PARAMETER` (bad namespace, name, JSON or placeholders),
/// `LF_RESULT_NOT_SUPPORTED` (not a Socket.IO session), `LF_RESULT_BACKPRESSURE`,
/// `LF_RESULT_CLOSED`. Emits made before the namespace is joined are sent once it is.
/// Thread safety: any thread, including callbacks.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub extern "C" fn lf_session_emit(
    session: *const lf_session,
    namespace: *const c_char,
    event: *const c_char,
    args_json: *const c_char,
    attachments: *const lf_bytes,
    attachment_count: usize,
    ack_timeout_ms: u32,
    ack_id_out: *mut u64,
) -> ErrorCode {
    with_session(session, |s| {
        let namespace = opt_namespace(namespace)?;
        // SAFETY: NULL or NUL-terminated (caller contract).
        let event = unsafe { str_arg(event, "event") }?;
        let args = opt_args(args_json)?;
        let attachments = attachments_arg(attachments, attachment_count)?;
        let timeout = (ack_timeout_ms > 0).then(|| Duration::from_millis(ack_timeout_ms.into()));
        let id = s.emit(namespace, event, args, &attachments, timeout)?;
        if !ack_id_out.is_null() {
            // SAFETY: non-NULL and writable (caller contract).
            unsafe { write_out(ack_id_out, id, "ack_id_out") }?;
        }
        Ok(())
    })
}

/// Socket.IO: answers an acknowledgement the server asked for (`ack_id` is the event's
/// `lf_event_ack_id`, nonzero). `namespace`, `args_json` and attachments as for
/// `lf_session_emit`.
///
/// Returns: as `lf_session_emit`.
/// Thread safety: any thread, including callbacks.
#[unsafe(no_mangle)]
pub extern "C" fn lf_session_ack(
    session: *const lf_session,
    namespace: *const c_char,
    ack_id: u64,
    args_json: *const c_char,
    attachments: *const lf_bytes,
    attachment_count: usize,
) -> ErrorCode {
    with_session(session, |s| {
        let attachments = attachments_arg(attachments, attachment_count)?;
        s.ack(opt_namespace(namespace)?, ack_id, opt_args(args_json)?, &attachments)
    })
}

/// Socket.IO: joins another namespace (not NULL) on the same connection, with an optional JSON auth
/// object (sent by revision 5 servers' clients). A `connect` event (`LF_KIND_EVENT` with
/// topic "connect") or an `LF_KIND_ERROR` with `LF_RESULT_AUTH` follows; events of the
/// namespace carry it in `lf_event_namespace`.
///
/// Returns: `LF_RESULT_OK`, `LF_RESULT_NULL_PARAMETER`, `LF_RESULT_INVALID_UTF8`,
/// `LF_RESULT_INVALID_PARAMETER`, `LF_RESULT_NOT_SUPPORTED`, `LF_RESULT_CLOSED`.
/// Thread safety: any thread, including callbacks.
#[unsafe(no_mangle)]
pub extern "C" fn lf_session_join(
    session: *const lf_session,
    namespace: *const c_char,
    auth_json: *const c_char,
) -> ErrorCode {
    with_session(session, |s| {
        // SAFETY: NULL or NUL-terminated (caller contract).
        let auth = unsafe { opt_str_arg(auth_json, "auth_json") }?;
        s.join(opt_namespace(namespace)?, auth)
    })
}

/// Socket.IO: leaves a namespace.
///
/// Returns: as `lf_session_join`.
/// Thread safety: any thread, including callbacks.
#[unsafe(no_mangle)]
pub extern "C" fn lf_session_leave(
    session: *const lf_session,
    namespace: *const c_char,
) -> ErrorCode {
    with_session(session, |s| s.leave(opt_namespace(namespace)?))
}

/// Subscribes to a topic the way the session's platform does it; renewed after every
/// reconnect. Topics given with `lf_config_set_option(cfg, "subscribe", ...)` (Igtimi:
/// `device`) are subscribed from the start. What a topic is, per platform:
/// - thethings.io: a resource (`/me/resources/temperature`); values arrive as
///   `LF_KIND_EVENT` whose topic is that resource.
/// - Navixy: a request type (`state_batch`, `iot_monitor`, ...); events are named by the
///   server (`state_batch`, `lifecycle`, ...).
/// - SmartServer: a datapoint; its updates have the datapoint's qualifier as topic.
/// - Igtimi: a device serial; the configuration block is sent once per connection, so
///   the session reconnects to apply it; events have the topic `SERIAL/TYPE`.
///
/// `lf_session_reconfigure` starts from its configuration's list: topics added here are
/// not carried over unless that configuration lists them too.
///
/// Returns: `LF_RESULT_OK`, `LF_RESULT_NULL_PARAMETER`, `LF_RESULT_INVALID_UTF8`,
/// `LF_RESULT_INVALID_PARAMETER` (empty), `LF_RESULT_NOT_SUPPORTED` (the protocol has no
/// subscriptions), `LF_RESULT_CLOSED`.
/// Thread safety: any thread, including callbacks.
#[unsafe(no_mangle)]
pub extern "C" fn lf_session_subscribe(
    session: *const lf_session,
    topic: *const c_char,
) -> ErrorCode {
    with_session(session, |s| {
        // SAFETY: NULL or NUL-terminated (caller contract).
        s.subscribe(unsafe { str_arg(topic, "topic") }?)
    })
}

/// Ends a subscription. Returns: as `lf_session_subscribe`.
/// Thread safety: any thread, including callbacks.
#[unsafe(no_mangle)]
pub extern "C" fn lf_session_unsubscribe(
    session: *const lf_session,
    topic: *const c_char,
) -> ErrorCode {
    with_session(session, |s| {
        // SAFETY: NULL or NUL-terminated (caller contract).
        s.unsubscribe(unsafe { str_arg(topic, "topic") }?)
    })
}
