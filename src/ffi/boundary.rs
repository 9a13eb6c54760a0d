//! The panic boundary, argument conversion, and the per-thread last error.

use crate::error::{Error, ErrorCode, Result};
use std::cell::RefCell;
use std::ffi::{CStr, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};

thread_local! {
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Records the calling thread's last error message.
pub fn set_last_error(message: &str) {
    LAST_ERROR.with(|l| {
        let mut l = l.borrow_mut();
        l.clear();
        l.push_str(message);
    });
}

/// Runs `f` with the calling thread's last error message.
pub fn with_last_error<R>(f: impl FnOnce(&str) -> R) -> R {
    LAST_ERROR.with(|l| f(&l.borrow()))
}

/// What an export returns when its body panicked.
pub trait OnPanic {
    /// The value reported to C after a caught panic.
    fn on_panic() -> Self;
}

impl OnPanic for ErrorCode {
    fn on_panic() -> Self {
        ErrorCode::Panic
    }
}
impl OnPanic for () {
    fn on_panic() -> Self {}
}
impl OnPanic for bool {
    fn on_panic() -> Self {
        false
    }
}
impl OnPanic for u16 {
    fn on_panic() -> Self {
        0
    }
}
impl OnPanic for u32 {
    fn on_panic() -> Self {
        0
    }
}
impl OnPanic for u64 {
    fn on_panic() -> Self {
        0
    }
}
impl OnPanic for usize {
    fn on_panic() -> Self {
        0
    }
}
impl OnPanic for i32 {
    fn on_panic() -> Self {
        -1
    }
}
impl<T> OnPanic for *const T {
    fn on_panic() -> Self {
        std::ptr::null()
    }
}

/// Runs an export body; a panic becomes `R::on_panic()` and a last-error message.
pub fn guard<R: OnPanic>(f: impl FnOnce() -> R) -> R {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            set_last_error(&format!("internal error (panic): {what}"));
            R::on_panic()
        }
    }
}

/// Runs a fallible export body: `Ok` → `LF_RESULT_OK`, `Err` → its code plus last error.
pub fn result(f: impl FnOnce() -> Result<()>) -> ErrorCode {
    guard(|| match f() {
        Ok(()) => ErrorCode::Ok,
        Err(e) => {
            set_last_error(&e.message);
            e.code
        }
    })
}

/// A NULL-pointer error naming the argument.
pub fn null(what: &str) -> Error {
    Error::new(ErrorCode::NullParameter, format!("`{what}` must not be NULL"))
}

/// Borrows a NUL-terminated UTF-8 string argument.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string that outlives `'a`.
pub unsafe fn str_arg<'a>(p: *const c_char, what: &str) -> Result<&'a str> {
    if p.is_null() {
        return Err(null(what));
    }
    // SAFETY: non-NULL and NUL-terminated per this function's contract.
    let c = unsafe { CStr::from_ptr(p) };
    c.to_str()
        .map_err(|_| Error::new(ErrorCode::InvalidUtf8, format!("`{what}` is not valid UTF-8")))
}

/// Borrows an optional string argument (NULL → `None`).
///
/// # Safety
/// As [`str_arg`].
pub unsafe fn opt_str_arg<'a>(p: *const c_char, what: &str) -> Result<Option<&'a str>> {
    if p.is_null() {
        return Ok(None);
    }
    // SAFETY: forwarded contract.
    unsafe { str_arg(p, what) }.map(Some)
}

/// Borrows a pointer + length byte argument; NULL is allowed only with length 0.
///
/// # Safety
/// `p` is NULL or valid for reads of `len` bytes for `'a`.
pub unsafe fn bytes_arg<'a>(p: *const u8, len: usize, what: &str) -> Result<&'a [u8]> {
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(null(what));
    }
    // SAFETY: non-NULL and valid for `len` bytes per this function's contract.
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// Writes an out-parameter.
///
/// # Safety
/// `out` is NULL or valid for a write of `T`.
pub unsafe fn write_out<T>(out: *mut T, value: T, what: &str) -> Result<()> {
    if out.is_null() {
        return Err(null(what));
    }
    // SAFETY: non-NULL and writable per this function's contract.
    unsafe { out.write(value) };
    Ok(())
}

/// Borrows a handle.
///
/// # Safety
/// `p` is NULL or a live handle created by this library.
pub unsafe fn handle<'a, T>(p: *const T, what: &str) -> Result<&'a T> {
    // SAFETY: live handle per this function's contract.
    unsafe { p.as_ref() }.ok_or_else(|| null(what))
}

/// Borrows a handle mutably.
///
/// # Safety
/// `p` is NULL or a live handle created by this library, not used concurrently.
pub unsafe fn handle_mut<'a, T>(p: *mut T, what: &str) -> Result<&'a mut T> {
    // SAFETY: live, exclusively used handle per this function's contract.
    unsafe { p.as_mut() }.ok_or_else(|| null(what))
}
