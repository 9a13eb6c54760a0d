//! The Socket.IO session driver (filled in next).

use crate::config::SessionConfig;
use crate::error::{Error, ErrorCode, Result};

/// Placeholder.
pub struct SocketIoDriver;

impl SocketIoDriver {
    /// Not yet.
    pub fn new(_config: &SessionConfig) -> Result<SocketIoDriver> {
        Err(Error::new(ErrorCode::NotSupported, "protocol `socketio` is not supported yet"))
    }
}

impl crate::session::driver::Driver for SocketIoDriver {
    fn start(&mut self, _config: &SessionConfig) -> Result<crate::session::driver::Step> {
        Err(Error::new(ErrorCode::NotSupported, "protocol `socketio` is not supported yet"))
    }
}
