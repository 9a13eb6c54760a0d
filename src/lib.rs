//! livefeed: live device-data feeds for native programs.
//!
//! One blocking, mio-based [`Loop`] drives many [`Session`]s; each session connects,
//! keeps its connection healthy and hands [`Event`]s to a handler on the loop thread.
//! The same API is exposed to C through `include/livefeed.h` (see the `ffi` module).

pub mod atmosphere;
pub mod config;
pub mod engineio;
pub mod error;
pub mod event;
pub mod http;
pub mod json_pointer;
pub mod net;
pub mod reactor;
pub mod session;
pub mod socketio;
pub mod url;
pub mod vendors;
pub mod ws;

mod ffi;

pub use config::{
    Limits, Outbox, Overflow, Protocol, ProxySetting, Reconnect, SessionConfig, Timeouts,
    TlsOptions,
};
pub use error::{Error, ErrorCode, Result};
pub use event::{Event, EventKind, SessionState};
pub use reactor::{Loop, Session};
pub use session::stats::SessionStats;
