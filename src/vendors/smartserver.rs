//! SmartServer IoT IAP/WS (PROTOCOLS.md §3). Not written yet: opening a session answers `NotSupported`.

use crate::config::SessionConfig;
use crate::error::{Error, ErrorCode, Result};
use crate::session::driver::{Driver, Step};

/// The SmartServer profile.
pub struct SmartServerDriver;

impl SmartServerDriver {
    /// Reads the options.
    pub fn new(_config: &SessionConfig) -> Result<SmartServerDriver> {
        Err(Error::new(ErrorCode::NotSupported, "this platform is not built yet"))
    }
}

impl Driver for SmartServerDriver {
    fn start(&mut self, _config: &SessionConfig) -> Result<Step> {
        Err(Error::new(ErrorCode::NotSupported, "this platform is not built yet"))
    }
}
