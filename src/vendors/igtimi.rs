//! Igtimi live data (PROTOCOLS.md §1). Not written yet: opening a session answers `NotSupported`.

use crate::config::SessionConfig;
use crate::error::{Error, ErrorCode, Result};
use crate::session::driver::{Driver, Step};

/// The Igtimi profile.
pub struct IgtimiDriver;

impl IgtimiDriver {
    /// Reads the options.
    pub fn new(_config: &SessionConfig) -> Result<IgtimiDriver> {
        Err(Error::new(ErrorCode::NotSupported, "this platform is not built yet"))
    }
}

impl Driver for IgtimiDriver {
    fn start(&mut self, _config: &SessionConfig) -> Result<Step> {
        Err(Error::new(ErrorCode::NotSupported, "this platform is not built yet"))
    }
}
