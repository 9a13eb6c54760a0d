//! Borrowed views passed to C, and the callback types.

use std::ffi::{c_char, c_void};

/// Borrowed UTF-8 text, NOT NUL-terminated. Valid for the lifetime stated by the function
/// that produced it (for event accessors: until the callback returns).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct lf_str {
    /// First byte; never NULL (points to a static empty string when `len` is 0).
    pub data: *const c_char,
    /// Length in bytes.
    pub len: usize,
}

impl lf_str {
    pub(crate) fn from(s: &str) -> lf_str {
        if s.is_empty() {
            return lf_str::empty();
        }
        lf_str { data: s.as_ptr().cast(), len: s.len() }
    }

    pub(crate) fn empty() -> lf_str {
        lf_str { data: c"".as_ptr(), len: 0 }
    }
}

/// Borrowed bytes. Valid for the lifetime stated by the function that produced it.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct lf_bytes {
    /// First byte; never NULL (points to a static empty buffer when `len` is 0).
    pub data: *const u8,
    /// Length in bytes.
    pub len: usize,
}

impl lf_bytes {
    pub(crate) fn from(b: &[u8]) -> lf_bytes {
        if b.is_empty() {
            return lf_bytes { data: c"".as_ptr().cast(), len: 0 };
        }
        lf_bytes { data: b.as_ptr(), len: b.len() }
    }
}

/// Called once when the library no longer needs `userdata` (for example after
/// `lf_session_free`). Runs on the thread that released it, or on the loop thread.
pub type lf_userdata_free = Option<unsafe extern "C" fn(userdata: *mut c_void)>;

/// Host data handed back to a callback, released with its `userdata_free` when dropped.
pub struct UserData {
    pub ptr: *mut c_void,
    pub free: lf_userdata_free,
    /// Only an adopted pointer is freed by the library: a failed `_new` leaves it to the caller.
    pub adopted: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

// SAFETY: the host promises (header docs) that userdata may be used from the loop thread
// and released from any thread; the library never touches what it points to.
unsafe impl Send for UserData {}

// SAFETY: shared references only read the pointer value (to pass it to the host's
// callback on the loop thread); the pointee is never touched by the library.
unsafe impl Sync for UserData {}

impl UserData {
    /// The host's pointer (a method, so closures capture the whole `UserData`).
    pub fn ptr(&self) -> *mut c_void {
        self.ptr
    }
}

impl Drop for UserData {
    fn drop(&mut self) {
        if let Some(free) = self.free {
            if self.adopted.load(std::sync::atomic::Ordering::Acquire) {
                // SAFETY: the host supplied `free` for exactly this pointer; called once.
                unsafe { free(self.ptr) };
            }
        }
    }
}
