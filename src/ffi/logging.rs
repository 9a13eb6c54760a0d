//! The process-wide log callback.
//!
//! Only livefeed's own records are forwarded (plus warnings and errors of its
//! dependencies): tungstenite traces message contents, which may carry tokens.

use super::boundary::result;
use crate::error::{Error, ErrorCode};
use std::ffi::{CString, c_char, c_void};
use std::sync::{OnceLock, RwLock};

/// Severity of a log record; a callback receives records at or above its level.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum lf_log_level {
    /// Logging off.
    Off = 0,
    /// Failures.
    Error = 1,
    /// Problems that were handled (including insecure TLS mode).
    Warn = 2,
    /// Connection life cycle.
    Info = 3,
    /// Protocol steps.
    Debug = 4,
    /// Everything.
    Trace = 5,
}

/// Receives one log record: `message` is NUL-terminated UTF-8, valid until the callback
/// returns. May be called from any thread (loop threads, resolver threads), concurrently:
/// it must be thread-safe.
pub type lf_log_callback = Option<
    unsafe extern "C" fn(userdata: *mut c_void, level: lf_log_level, message: *const c_char),
>;

struct Sink {
    callback: unsafe extern "C" fn(*mut c_void, lf_log_level, *const c_char),
    userdata: usize,
}

static SINK: RwLock<Option<Sink>> = RwLock::new(None);
/// Whether our logger is the process's logger (decided once).
static OURS: OnceLock<bool> = OnceLock::new();

struct CLogger;

fn level_of(l: log::Level) -> lf_log_level {
    match l {
        log::Level::Error => lf_log_level::Error,
        log::Level::Warn => lf_log_level::Warn,
        log::Level::Info => lf_log_level::Info,
        log::Level::Debug => lf_log_level::Debug,
        log::Level::Trace => lf_log_level::Trace,
    }
}

impl log::Log for CLogger {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.target().starts_with("livefeed") || m.level() <= log::Level::Warn
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let sink = SINK.read().unwrap_or_else(|e| e.into_inner());
        if let Some(sink) = sink.as_ref() {
            let text = format!("{}: {}", record.target(), record.args()).replace('\0', " ");
            if let Ok(c) = CString::new(text) {
                // SAFETY: the host registered this callback for this userdata; the string
                // outlives the call.
                unsafe {
                    (sink.callback)(
                        sink.userdata as *mut c_void,
                        level_of(record.level()),
                        c.as_ptr(),
                    )
                };
            }
        }
    }

    fn flush(&self) {}
}

static LOGGER: CLogger = CLogger;

/// Installs the process-wide log callback, replacing any previous one; a NULL `callback`
/// (or `LF_LOG_LEVEL_OFF`) turns logging off. Records below `max_level` are not formatted at all.
/// Tokens, passwords, cookies and URL query strings never appear in log messages.
///
/// Parameters: `max_level` an `lf_log_level` value; `userdata` passed to every call
/// (the library never frees it).
/// Returns: `LF_RESULT_OK`; `LF_RESULT_INVALID_PARAMETER` for an unknown level;
/// `LF_RESULT_WRONG_STATE` if the process already has another Rust logger.
/// Thread safety: any thread. After it returns, the previous callback is not called again.
#[unsafe(no_mangle)]
pub extern "C" fn lf_set_log_callback(
    max_level: u32,
    callback: lf_log_callback,
    userdata: *mut c_void,
) -> ErrorCode {
    result(|| {
        let filter = match max_level {
            x if x == lf_log_level::Off as u32 => log::LevelFilter::Off,
            x if x == lf_log_level::Error as u32 => log::LevelFilter::Error,
            x if x == lf_log_level::Warn as u32 => log::LevelFilter::Warn,
            x if x == lf_log_level::Info as u32 => log::LevelFilter::Info,
            x if x == lf_log_level::Debug as u32 => log::LevelFilter::Debug,
            x if x == lf_log_level::Trace as u32 => log::LevelFilter::Trace,
            _ => return Err(Error::new(ErrorCode::InvalidParameter, "unknown log level")),
        };
        if !*OURS.get_or_init(|| log::set_logger(&LOGGER).is_ok()) {
            return Err(Error::new(
                ErrorCode::WrongState,
                "another logger is installed in this process",
            ));
        }
        let mut sink = SINK.write().unwrap_or_else(|e| e.into_inner());
        *sink = callback.map(|callback| Sink { callback, userdata: userdata as usize });
        log::set_max_level(if sink.is_some() { filter } else { log::LevelFilter::Off });
        Ok(())
    })
}
