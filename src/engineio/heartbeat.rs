//! Engine.IO liveness. Revision 3: the client pings every `pingInterval` and wants a pong
//! within `pingTimeout`. Revision 4: the server pings; silence for
//! `pingInterval + pingTimeout` means the link is dead.

use super::codec::{OpenInfo, Version};
use crate::error::{Error, ErrorCode, Result};
use std::time::{Duration, Instant};

/// What the heartbeat wants done.
#[derive(Debug, PartialEq, Eq)]
pub enum Beat {
    /// Nothing now.
    Idle,
    /// Send a ping (revision 3).
    SendPing,
}

/// The heartbeat state of one Engine.IO connection.
#[derive(Debug)]
pub struct Heartbeat {
    version: Version,
    interval: Duration,
    timeout: Duration,
    /// Revision 4: last packet from the server. Revision 3: when our last ping went out.
    mark: Instant,
    awaiting_pong: bool,
}

impl Heartbeat {
    /// Starts after the open packet.
    pub fn new(version: Version, open: &OpenInfo, now: Instant) -> Heartbeat {
        Heartbeat {
            version,
            interval: open.ping_interval,
            timeout: open.ping_timeout,
            mark: now,
            awaiting_pong: false,
        }
    }

    /// Any packet from the server arrived (a pong in revision 3 is `on_pong`).
    pub fn on_packet(&mut self, now: Instant) {
        if self.version == Version::V4 {
            self.mark = now;
        }
    }

    /// A pong arrived (revision 3).
    pub fn on_pong(&mut self) {
        self.awaiting_pong = false;
    }

    /// When `poll` next has something to do.
    pub fn deadline(&self) -> Instant {
        match (self.version, self.awaiting_pong) {
            (Version::V4, _) => self.mark + self.interval + self.timeout,
            (Version::V3, true) => self.mark + self.timeout,
            (Version::V3, false) => self.mark + self.interval,
        }
    }

    /// Checks the clock: a ping to send, or a dead peer.
    pub fn poll(&mut self, now: Instant) -> Result<Beat> {
        if now < self.deadline() {
            return Ok(Beat::Idle);
        }
        match (self.version, self.awaiting_pong) {
            (Version::V3, false) => {
                self.mark = now;
                self.awaiting_pong = true;
                Ok(Beat::SendPing)
            }
            (Version::V3, true) => Err(Error::new(
                ErrorCode::PeerTimeout,
                format!("no Engine.IO pong within pingTimeout ({:?})", self.timeout),
            )),
            (Version::V4, _) => Err(Error::new(
                ErrorCode::PeerTimeout,
                format!(
                    "no Engine.IO ping within pingInterval + pingTimeout ({:?})",
                    self.interval + self.timeout
                ),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(interval: u64, timeout: u64) -> OpenInfo {
        OpenInfo {
            sid: "s".into(),
            upgrades: vec![],
            ping_interval: Duration::from_millis(interval),
            ping_timeout: Duration::from_millis(timeout),
            max_payload: None,
        }
    }

    #[test]
    fn v3_client_pings_and_waits_for_pong() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut hb = Heartbeat::new(Version::V3, &open(100, 50), t0);
        assert_eq!(hb.poll(ms(99)).unwrap(), Beat::Idle);
        assert_eq!(hb.poll(ms(100)).unwrap(), Beat::SendPing);
        assert_eq!(hb.deadline(), ms(150));
        hb.on_pong();
        assert_eq!(hb.deadline(), ms(200));
        assert_eq!(hb.poll(ms(200)).unwrap(), Beat::SendPing);
        assert_eq!(hb.poll(ms(250)).unwrap_err().code, ErrorCode::PeerTimeout);
    }

    #[test]
    fn v4_server_silence_is_death() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut hb = Heartbeat::new(Version::V4, &open(100, 50), t0);
        hb.on_packet(ms(120));
        assert_eq!(hb.poll(ms(269)).unwrap(), Beat::Idle);
        assert_eq!(hb.poll(ms(270)).unwrap_err().code, ErrorCode::PeerTimeout);
    }
}
