//! `lf_loop`: the event loop and its three driving modes.

use super::boundary::{guard, handle, result, write_out};
use crate::error::{Error, ErrorCode};
use crate::reactor::Loop;
use std::sync::Arc;
use std::time::Duration;

/// An event loop driving any number of sessions.
///
/// Drive it one of three ways: `lf_loop_run` (blocking, on a thread of your choice),
/// `lf_loop_run_once` with `lf_loop_fd` and `lf_loop_next_timeout` (from your own poll
/// loop), or `lf_loop_start` (a thread owned by the library). Only one thread drives a
/// loop at a time; `lf_loop_stop` and `lf_session_*` calls are safe from any thread.
pub struct lf_loop {
    pub(crate) inner: Arc<Loop>,
}

/// Creates an event loop.
///
/// Parameters: `out` receives the loop on success; the caller owns it and frees it with
/// `lf_loop_free`.
/// Returns: `LF_RESULT_OK`, `LF_RESULT_NULL_PARAMETER`, `LF_RESULT_IO` (no epoll/eventfd).
/// Thread safety: any thread.
#[unsafe(no_mangle)]
pub extern "C" fn lf_loop_new(out: *mut *mut lf_loop) -> ErrorCode {
    result(|| {
        if out.is_null() {
            return Err(super::boundary::null("out"));
        }
        let lp = Box::into_raw(Box::new(lf_loop { inner: Loop::new()? }));
        // SAFETY: checked non-NULL; writable per caller contract.
        unsafe { write_out(out, lp, "out") }
    })
}

/// Frees a loop: stops and joins the managed thread if `lf_loop_start` was used, closes
/// every session's connection, and releases the loop. Session handles stay valid (their
/// sends return `LF_RESULT_CLOSED`) and must still be freed with `lf_session_free`.
/// NULL is a no-op.
///
/// Must not be called while another thread is inside `lf_loop_run`/`lf_loop_run_once`
/// (stop it and let it return first), nor from inside a callback of this loop: such a
/// call is refused, logged, and the loop is left alive (leaked) rather than freed under
/// the running callback.
/// Thread safety: any thread, subject to the above.
#[unsafe(no_mangle)]
pub extern "C" fn lf_loop_free(lp: *mut lf_loop) {
    guard(|| {
        if lp.is_null() {
            return;
        }
        // SAFETY: created by `lf_loop_new`, not yet freed (caller contract).
        let boxed = unsafe { Box::from_raw(lp) };
        boxed.inner.shutdown();
        // A managed thread holds its own reference and drops the loop when it exits; a loop
        // driven by a host thread (or freed from its own callback) must not be dropped now.
        if Arc::strong_count(&boxed.inner) == 1 && boxed.inner.is_busy() {
            log::error!("lf_loop_free called while the loop is running; the loop is leaked");
            let _leaked = Box::leak(boxed);
            return;
        }
        drop(boxed);
    })
}

/// Runs the loop on the calling thread until `lf_loop_stop`. Callbacks run on this thread.
/// A stop requested before the call makes it return at once (and consumes the request).
///
/// Returns: `LF_RESULT_OK` after a stop; `LF_RESULT_NULL_PARAMETER`;
/// `LF_RESULT_WRONG_STATE` if the loop is already being driven (by another thread, the
/// managed thread, or a callback of this loop); `LF_RESULT_IO` if polling failed.
/// Thread safety: any one thread at a time.
#[unsafe(no_mangle)]
pub extern "C" fn lf_loop_run(lp: *mut lf_loop) -> ErrorCode {
    result(|| {
        // SAFETY: live handle (caller contract).
        let lp = unsafe { handle(lp.cast_const(), "loop") }?;
        lp.inner.run()
    })
}

/// Runs one turn of the loop: waits up to `timeout_ms` (-1: until something happens,
/// 0: not at all) for readiness or a deadline, then handles everything due, calling
/// callbacks on the calling thread. For hosts with their own poll loop.
///
/// Returns: `LF_RESULT_OK`, `LF_RESULT_NULL_PARAMETER`, `LF_RESULT_INVALID_PARAMETER`
/// (timeout below -1), `LF_RESULT_WRONG_STATE` (already being driven), `LF_RESULT_IO`.
/// Thread safety: any one thread at a time.
#[unsafe(no_mangle)]
pub extern "C" fn lf_loop_run_once(lp: *mut lf_loop, timeout_ms: i32) -> ErrorCode {
    result(|| {
        // SAFETY: live handle (caller contract).
        let lp = unsafe { handle(lp.cast_const(), "loop") }?;
        let timeout = match timeout_ms {
            -1 => None,
            t if t >= 0 => Some(Duration::from_millis(t as u64)),
            _ => return Err(Error::new(ErrorCode::InvalidParameter, "timeout must be -1 or more")),
        };
        lp.inner.run_once(timeout)
    })
}

/// The file descriptor a host poll loop watches for readability (level-triggered: it
/// stays readable while the loop has work). Valid until `lf_loop_free`. Do not read,
/// close or modify it.
///
/// Returns: the descriptor, or -1 if `lp` is NULL.
/// Thread safety: any thread.
#[unsafe(no_mangle)]
pub extern "C" fn lf_loop_fd(lp: *const lf_loop) -> i32 {
    guard(|| {
        // SAFETY: NULL or live handle (caller contract).
        unsafe { lp.as_ref() }.map_or(-1, |lp| lp.inner.fd())
    })
}

/// How long the host may wait before calling `lf_loop_run_once` even if the fd stays
/// quiet: `*out_ms` receives milliseconds (rounded up), 0 if work is due now, or -1 if
/// nothing is scheduled.
///
/// Returns: `LF_RESULT_OK`, `LF_RESULT_NULL_PARAMETER`, `LF_RESULT_WRONG_STATE` (another
/// thread is driving the loop).
/// Thread safety: the thread that drives the loop.
#[unsafe(no_mangle)]
pub extern "C" fn lf_loop_next_timeout(lp: *mut lf_loop, out_ms: *mut i32) -> ErrorCode {
    result(|| {
        // SAFETY: live handle (caller contract).
        let lp = unsafe { handle(lp.cast_const(), "loop") }?;
        let ms = match lp.inner.next_timeout()? {
            None => -1,
            Some(d) => d.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as i32,
        };
        // SAFETY: NULL or writable (caller contract).
        unsafe { write_out(out_ms, ms, "out_ms") }
    })
}

/// Asks `lf_loop_run` (or the managed thread) to return after the current turn.
/// Never blocks; idempotent.
///
/// Returns: `LF_RESULT_OK`, `LF_RESULT_NULL_PARAMETER`.
/// Thread safety: any thread, including from inside callbacks.
#[unsafe(no_mangle)]
pub extern "C" fn lf_loop_stop(lp: *const lf_loop) -> ErrorCode {
    result(|| {
        // SAFETY: live handle (caller contract).
        unsafe { handle(lp, "loop") }?.inner.stop();
        Ok(())
    })
}

/// Tells every session of the loop that the network changed: each drops its connection
/// (or its wait) and connects again now, with a fresh backoff.
///
/// Returns: `LF_RESULT_OK`, `LF_RESULT_NULL_PARAMETER`.
/// Thread safety: any thread, including from inside callbacks.
#[unsafe(no_mangle)]
pub extern "C" fn lf_loop_network_changed(lp: *const lf_loop) -> ErrorCode {
    result(|| {
        // SAFETY: live handle (caller contract).
        unsafe { handle(lp, "loop") }?.inner.network_changed();
        Ok(())
    })
}

/// Starts a library-owned thread that runs the loop until `lf_loop_free` (managed mode).
/// Callbacks then run on that thread.
///
/// Returns: `LF_RESULT_OK`, `LF_RESULT_NULL_PARAMETER`, `LF_RESULT_WRONG_STATE` (already
/// started), `LF_RESULT_IO` (thread creation failed).
/// Thread safety: any thread.
#[unsafe(no_mangle)]
pub extern "C" fn lf_loop_start(lp: *mut lf_loop) -> ErrorCode {
    result(|| {
        // SAFETY: live handle (caller contract).
        let lp = unsafe { handle(lp.cast_const(), "loop") }?;
        lp.inner.start_thread()
    })
}
