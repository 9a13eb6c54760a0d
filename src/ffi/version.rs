//! Version and result-code names.

use super::boundary::{guard, with_last_error};
use crate::error::ErrorCode;
use std::ffi::c_char;

/// Major version of the header; compare with `lf_version_number()` at run time.
pub const LF_VERSION_MAJOR: u32 = 0;
/// Minor version of the header.
pub const LF_VERSION_MINOR: u32 = 1;
/// Patch version of the header.
pub const LF_VERSION_PATCH: u32 = 0;
/// The header's version packed as 0x00MMmmpp, one byte per component.
pub const LF_VERSION_NUMBER: u32 =
    (LF_VERSION_MAJOR << 16) | (LF_VERSION_MINOR << 8) | LF_VERSION_PATCH;

const VERSION: &str = include_str!(concat!(env!("OUT_DIR"), "/version.txt"));

/// The library version and the versions of its protocol stack, such as
/// `"livefeed/0.1.0 tungstenite/0.30.0 native-tls/0.2.18 mio/1.2.5"`.
///
/// Returns: a static NUL-terminated string; never NULL; do not free.
/// Thread safety: any thread.
#[unsafe(no_mangle)]
pub extern "C" fn lf_version() -> *const c_char {
    VERSION.as_ptr().cast()
}

/// The library's version packed as 0x00MMmmpp. Equal to `LF_VERSION_NUMBER` when the
/// header and the linked library match.
///
/// Thread safety: any thread.
#[unsafe(no_mangle)]
pub extern "C" fn lf_version_number() -> u32 {
    LF_VERSION_NUMBER
}

/// The name of a result code, such as `"LF_RESULT_TIMEOUT"`; `"LF_RESULT_UNKNOWN"` for a
/// value this library does not define.
///
/// Returns: a static NUL-terminated string; never NULL; do not free.
/// Thread safety: any thread.
#[unsafe(no_mangle)]
pub extern "C" fn lf_result_name(result: u32) -> *const c_char {
    guard(|| {
        ErrorCode::from_u32(result)
            .map_or(c"LF_RESULT_UNKNOWN".as_ptr(), |c| c.name_nul().as_ptr().cast())
    })
}

/// Copies the message of the calling thread's last failed call into `buf`, truncated
/// to `len - 1` bytes and NUL-terminated (nothing is written when `buf` is NULL or
/// `len` is 0). The message is UTF-8 and never contains secrets.
///
/// Returns: the full length of the message in bytes, excluding the NUL, so a caller
/// can size a buffer (like snprintf). 0 when no call failed on this thread yet.
/// Thread safety: any thread; each thread has its own last error.
#[unsafe(no_mangle)]
pub extern "C" fn lf_last_error_message(buf: *mut c_char, len: usize) -> usize {
    guard(|| {
        with_last_error(|msg| {
            if !buf.is_null() && len > 0 {
                let n = msg.len().min(len - 1);
                // SAFETY: the caller provides `len` writable bytes at `buf`; we write n + 1 <= len.
                unsafe {
                    std::ptr::copy_nonoverlapping(msg.as_ptr(), buf.cast::<u8>(), n);
                    buf.add(n).write(0);
                }
            }
            msg.len()
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_version_matches_the_package() {
        let v = |s: &str| s.parse::<u32>().ok();
        assert_eq!(Some(LF_VERSION_MAJOR), v(env!("CARGO_PKG_VERSION_MAJOR")));
        assert_eq!(Some(LF_VERSION_MINOR), v(env!("CARGO_PKG_VERSION_MINOR")));
        assert_eq!(Some(LF_VERSION_PATCH), v(env!("CARGO_PKG_VERSION_PATCH")));
        assert!(VERSION.starts_with(concat!("livefeed/", env!("CARGO_PKG_VERSION"), " ")));
        assert!(VERSION.ends_with('\0') && !VERSION[..VERSION.len() - 1].contains('\0'));
    }
}
