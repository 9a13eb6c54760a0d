//! deCONZ WebSocket events (PROTOCOLS.md §4). Not written yet: opening a session answers `NotSupported`.

use crate::config::SessionConfig;
use crate::error::{Error, ErrorCode, Result};
use crate::session::driver::{Driver, Step};

/// The Deconz profile.
pub struct DeconzDriver;

impl DeconzDriver {
    /// Reads the options.
    pub fn new(_config: &SessionConfig) -> Result<DeconzDriver> {
        Err(Error::new(ErrorCode::NotSupported, "this platform is not built yet"))
    }
}

impl Driver for DeconzDriver {
    fn start(&mut self, _config: &SessionConfig) -> Result<Step> {
        Err(Error::new(ErrorCode::NotSupported, "this platform is not built yet"))
    }
}
