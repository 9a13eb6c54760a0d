//! Navixy live tracking over Atmosphere (PROTOCOLS.md §5). Not written yet: opening a session answers `NotSupported`.

use crate::config::SessionConfig;
use crate::error::{Error, ErrorCode, Result};
use crate::session::driver::{Driver, Step};

/// The Navixy profile.
pub struct NavixyDriver;

impl NavixyDriver {
    /// Reads the options.
    pub fn new(_config: &SessionConfig) -> Result<NavixyDriver> {
        Err(Error::new(ErrorCode::NotSupported, "this platform is not built yet"))
    }
}

impl Driver for NavixyDriver {
    fn start(&mut self, _config: &SessionConfig) -> Result<Step> {
        Err(Error::new(ErrorCode::NotSupported, "this platform is not built yet"))
    }
}
