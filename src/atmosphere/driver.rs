//! Raw Atmosphere sessions (`-p atmosphere`): every application message becomes a
//! `Message` event; host text goes to the server as one message. The engine does the
//! protocol; this only connects it to the session. Options: see [`super::engine`].

use super::engine::{Carrier, Engine, Settings, Target};
use crate::config::SessionConfig;
use crate::error::{Error, ErrorCode, Result};
use crate::event::{Event, EventKind};
use crate::session::command::Outbound;
use crate::session::driver::{Driver, Io, Step};
use std::time::Instant;
use tungstenite::Message;

/// The step that opens a connection to `target`.
pub fn step_for(target: Target, engine: &Engine) -> Step {
    match target.carrier {
        Carrier::WebSocket => Step::WebSocket(target.url),
        Carrier::LongPolling => Step::AtmospherePolling(target.url, engine.close_url()),
    }
}

/// Runs the engine's timers: sends the client heartbeat when due, fails an overdue
/// handshake or a silent server.
pub fn heartbeat(engine: &mut Engine, io: &mut Io<'_>) -> Result<()> {
    if let Some(beat) = engine.on_timer(io.now)? {
        io.send(Message::text(beat));
    }
    Ok(())
}

/// A raw Atmosphere client.
pub struct AtmosphereDriver {
    engine: Engine,
}

impl AtmosphereDriver {
    /// Reads the options.
    pub fn new(config: &SessionConfig) -> Result<AtmosphereDriver> {
        Ok(AtmosphereDriver { engine: Engine::new(&config.url, Settings::from_config(config)?)? })
    }
}

impl Driver for AtmosphereDriver {
    fn start(&mut self, _config: &SessionConfig) -> Result<Step> {
        let target = self.engine.connect();
        Ok(step_for(target, &self.engine))
    }

    fn on_open(&mut self, _subprotocol: &str, io: &mut Io<'_>) -> Result<()> {
        if self.engine.on_connected(io.now) {
            io.open(self.engine.tracking_id());
        }
        Ok(())
    }

    fn on_text(&mut self, text: &str, io: &mut Io<'_>) -> Result<()> {
        if !self.engine.awaiting_handshake() {
            // The hot path: each message straight to the host, no copy.
            let state = io.state();
            self.engine.on_frame(text, io.now, &mut |m| {
                io.emit(&Event::new_text(EventKind::Message, state, m));
            })?;
            return Ok(());
        }
        // Messages that came with the handshake follow the open.
        let mut early = Vec::new();
        let opened = self.engine.on_frame(text, io.now, &mut |m| early.push(m.to_string()))?;
        if opened {
            io.open(self.engine.tracking_id());
        }
        for m in early {
            io.emit(&Event::new_text(EventKind::Message, io.state(), &m));
        }
        Ok(())
    }

    fn on_binary(&mut self, _data: &[u8], _io: &mut Io<'_>) -> Result<()> {
        Err(Error::new(ErrorCode::Protocol, "an Atmosphere server sent a binary frame"))
    }

    fn on_send(&mut self, out: Outbound, io: &mut Io<'_>) -> Result<()> {
        match out {
            Outbound::Message(m @ Message::Text(_)) => {
                io.send(m);
                Ok(())
            }
            Outbound::Message(_) => {
                Err(Error::new(ErrorCode::NotSupported, "Atmosphere messages are text"))
            }
            _ => Err(Error::new(ErrorCode::NotSupported, "this protocol has no such operation")),
        }
    }

    fn on_timer(&mut self, io: &mut Io<'_>) -> Result<()> {
        heartbeat(&mut self.engine, io)
    }

    fn deadline(&self) -> Option<Instant> {
        self.engine.deadline()
    }

    fn retry_now(&mut self, error: &Error) -> bool {
        self.engine.fall_back(error)
    }

    fn on_peer_close(&mut self, _code: u16, _reason: &str) -> Result<()> {
        self.engine.on_peer_close()
    }

    fn websocket_keepalive(&self) -> bool {
        false // Atmosphere has its own heartbeats and watchdog.
    }
}
