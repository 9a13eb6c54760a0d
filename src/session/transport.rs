//! What carries an open session: a WebSocket link, or Engine.IO long-polling.

use super::atmosphere_polling::AtmospherePoller;
use super::polling::Poller;
use crate::config::Timeouts;
use crate::error::Result;
use crate::ws::link::{Answers, Incoming, Link, ReadOutcome};
use mio::Registry;
use std::time::Instant;
use tungstenite::Message;

/// The open connection of a session.
// The WebSocket link, the common and hot case, stays inline; the rarer poller is boxed.
#[allow(clippy::large_enum_variant)]
pub enum Transport {
    /// A WebSocket.
    Ws(Link),
    /// Engine.IO long-polling.
    Polling(Box<Poller>),
    /// Atmosphere long-polling.
    AtmospherePolling(Box<AtmospherePoller>),
}

impl Transport {
    /// Reads what arrived, handing each message to `on_message` and writing its answers.
    pub fn read(
        &mut self,
        budget: usize,
        now: Instant,
        scratch: &mut [u8],
        on_message: &mut dyn FnMut(Incoming<'_>) -> Result<Answers>,
    ) -> Result<ReadOutcome> {
        match self {
            Transport::Ws(l) => l.read(budget, now, scratch, on_message),
            Transport::Polling(p) => p.read(now, scratch, on_message),
            Transport::AtmospherePolling(p) => p.read(now, scratch, on_message),
        }
    }

    /// Queues a frame; `budget` is the send budget it returns once written.
    pub fn write(&mut self, msg: Message, budget: usize) -> Result<()> {
        match self {
            Transport::Ws(l) => l.write(msg, budget),
            Transport::Polling(p) => p.write(msg, budget),
            Transport::AtmospherePolling(p) => p.write(msg, budget),
        }
    }

    /// Writes out what is queued; the budget released when everything went out.
    pub fn flush(&mut self) -> Result<Option<usize>> {
        match self {
            Transport::Ws(l) => l.flush(),
            Transport::Polling(p) => p.flush(),
            Transport::AtmospherePolling(p) => p.flush(),
        }
    }

    /// Starts closing.
    pub fn close(&mut self, code: u16, reason: &str) -> Result<()> {
        match self {
            Transport::Ws(l) => l.close(code, reason),
            Transport::Polling(p) => p.close(),
            Transport::AtmospherePolling(p) => p.close(),
        }
    }

    /// Liveness and deadlines: WebSocket pings when `ws_keepalive`, request deadlines for
    /// polling.
    pub fn keepalive(
        &mut self,
        timeouts: &Timeouts,
        now: Instant,
        ws_keepalive: bool,
    ) -> Result<()> {
        match self {
            Transport::Ws(l) if ws_keepalive => l.keepalive(timeouts, now).map(|_| ()),
            Transport::Ws(_) => Ok(()),
            Transport::Polling(p) => p.check_deadlines(now).map(|_| ()),
            Transport::AtmospherePolling(p) => p.check_deadlines(now),
        }
    }

    /// When [`Transport::keepalive`] next has work.
    pub fn keepalive_deadline(&self, timeouts: &Timeouts, ws_keepalive: bool) -> Option<Instant> {
        match self {
            Transport::Ws(l) if ws_keepalive => l.keepalive_deadline(timeouts),
            Transport::Ws(_) => None,
            Transport::Polling(p) => p.deadline(),
            Transport::AtmospherePolling(p) => p.deadline(),
        }
    }

    /// The round-trip time of the last answered WebSocket ping, once.
    pub fn take_rtt(&mut self) -> Option<std::time::Duration> {
        match self {
            Transport::Ws(l) => l.take_rtt(),
            _ => None,
        }
    }

    /// Whether the peer started the close handshake (WebSocket).
    pub fn peer_closed(&self) -> bool {
        matches!(self, Transport::Ws(l) if l.peer_closed())
    }

    /// The peer's close frame (WebSocket).
    pub fn peer_close(&self) -> Option<(u16, &str)> {
        match self {
            Transport::Ws(l) => l.peer_close(),
            Transport::Polling(_) | Transport::AtmospherePolling(_) => None,
        }
    }

    /// Drops unread input before the socket closes (WebSocket).
    pub fn discard_input(&mut self, scratch: &mut [u8]) {
        if let Transport::Ws(l) = self {
            l.discard_input(scratch);
        }
    }

    /// Closes the sockets.
    pub fn abandon(&mut self, registry: &Registry) {
        match self {
            Transport::Ws(l) => {
                let _ = registry.deregister(l.stream_mut().tcp_mut());
                l.shutdown();
            }
            Transport::Polling(p) => p.abandon(),
            Transport::AtmospherePolling(p) => p.abandon(),
        }
    }
}
