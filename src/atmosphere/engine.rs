//! The Atmosphere client state machine, sans-IO: which URL the next connection uses, the
//! handshake, heartbeats both ways, the receive watchdog, `trackMessageLength` framing,
//! tracking-id reuse across reconnects and the fallback to long-polling. Drivers (raw
//! Atmosphere, Navixy) feed it frames and timer ticks and act on what it returns.
//!
//! Options read from the configuration: `transport` (`websocket`, the default, or
//! `long-polling`), `fallback` (`long-polling`, the default: used when the very first
//! WebSocket upgrade is refused; `none`), `track_message_length` (`true`/`false`),
//! `heartbeat_server` (seconds, sent as `X-Heartbeat-Server`), `watchdog_ms` (receive
//! inactivity limit, default 150 000: two and a half of the server's default 60 s
//! heartbeat period), `tracking_id` (`reuse`, the default: a reconnect presents the uuid
//! and expects no handshake, as atmosphere.js does; `fresh`: a new handshake each time).

use super::codec::{Deframer, Handshake, subscription_target};
use crate::config::SessionConfig;
use crate::error::{Error, ErrorCode, Result};
use crate::url::{Scheme, Url};
use std::time::{Duration, Instant};

/// What carries the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Carrier {
    /// One WebSocket.
    WebSocket,
    /// Repeated GETs held by the server, POSTs for what the client sends.
    LongPolling,
}

impl Carrier {
    /// The `X-Atmosphere-Transport` value.
    pub fn name(self) -> &'static str {
        match self {
            Carrier::WebSocket => "websocket",
            Carrier::LongPolling => "long-polling",
        }
    }
}

/// The engine's settings, from the configuration's options.
#[derive(Clone, Debug)]
pub struct Settings {
    /// First carrier tried.
    pub carrier: Carrier,
    /// Fall back to long-polling when the first WebSocket upgrade is refused.
    pub fallback: bool,
    /// Ask for `<length>|<message>` framing.
    pub track_message_length: bool,
    /// `X-Heartbeat-Server`, seconds.
    pub heartbeat_server: Option<u32>,
    /// Longest silence from the server before the connection counts as dead.
    pub watchdog: Duration,
    /// Present the known tracking id on reconnect.
    pub reuse_tracking_id: bool,
    /// Longest message accepted.
    pub max_message: usize,
    /// Longest wait for the handshake frame.
    pub handshake_timeout: Duration,
}

fn invalid(why: &str) -> Error {
    Error::new(ErrorCode::InvalidParameter, why.to_string())
}

impl Settings {
    /// Reads the options (see the module documentation).
    pub fn from_config(config: &SessionConfig) -> Result<Settings> {
        let carrier = match config.option("transport").unwrap_or("websocket") {
            "websocket" => Carrier::WebSocket,
            "long-polling" | "polling" => Carrier::LongPolling,
            _ => return Err(invalid("option `transport` is websocket or long-polling")),
        };
        let fallback = match config.option("fallback").unwrap_or("long-polling") {
            "long-polling" | "polling" => true,
            "none" => false,
            _ => return Err(invalid("option `fallback` is long-polling or none")),
        };
        let heartbeat_server = config
            .option_number("heartbeat_server")?
            .map(|s| u32::try_from(s).map_err(|_| invalid("heartbeat_server is too large")))
            .transpose()?;
        let watchdog =
            Duration::from_millis(config.option_number("watchdog_ms")?.unwrap_or(150_000).max(1));
        let reuse_tracking_id = match config.option("tracking_id").unwrap_or("reuse") {
            "reuse" => true,
            "fresh" => false,
            _ => return Err(invalid("option `tracking_id` is reuse or fresh")),
        };
        Ok(Settings {
            carrier,
            fallback,
            track_message_length: config.option_flag("track_message_length")?.unwrap_or(false),
            heartbeat_server,
            watchdog,
            reuse_tracking_id,
            max_message: config.limits.max_message,
            handshake_timeout: config.timeouts.handshake,
        })
    }
}

/// Where the next connection goes.
#[derive(Debug)]
pub struct Target {
    /// The carrier.
    pub carrier: Carrier,
    /// The full URL, protocol parameters included (`ws(s)` for a WebSocket, `http(s)`
    /// for long-polling).
    pub url: Url,
}

/// One Atmosphere client across its connections.
#[derive(Debug)]
pub struct Engine {
    /// The subscription URL without the protocol parameters.
    base: Url,
    settings: Settings,
    carrier: Carrier,
    /// `"0"` until a handshake gave the uuid.
    tracking_id: String,
    /// Heartbeat period and padding (from the handshake; kept across reused connections).
    heartbeat: Option<Handshake>,
    awaiting_handshake: bool,
    deframer: Option<Deframer>,
    last_rx: Instant,
    next_beat: Option<Instant>,
    handshake_deadline: Option<Instant>,
    ever_open: bool,
}

const DEFAULT_PADDING: &str = "X";

impl Engine {
    /// An engine for the subscription URL `url` (`http(s)://` or `ws(s)://`).
    pub fn new(url: &str, settings: Settings) -> Result<Engine> {
        let base = Url::parse(url)?;
        Ok(Engine {
            base,
            carrier: settings.carrier,
            settings,
            tracking_id: "0".to_string(),
            heartbeat: None,
            awaiting_handshake: true,
            deframer: None,
            last_rx: Instant::now(),
            next_beat: None,
            handshake_deadline: None,
            ever_open: false,
        })
    }

    /// The tracking id (`"0"` before the first handshake).
    pub fn tracking_id(&self) -> &str {
        &self.tracking_id
    }

    /// Whether the next frame must be the handshake.
    pub fn awaiting_handshake(&self) -> bool {
        self.awaiting_handshake
    }

    /// The carrier in use.
    pub fn carrier(&self) -> Carrier {
        self.carrier
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    fn url_for(&self, carrier: Carrier, transport: &str) -> Url {
        let mut url = self.base.clone();
        url.scheme = match (carrier, url.scheme.is_tls()) {
            (Carrier::WebSocket, true) => Scheme::Wss,
            (Carrier::WebSocket, false) => Scheme::Ws,
            (Carrier::LongPolling, true) => Scheme::Https,
            (Carrier::LongPolling, false) => Scheme::Http,
        };
        url.target = subscription_target(
            &self.base.target,
            &self.tracking_id,
            transport,
            self.settings.track_message_length,
            self.settings.heartbeat_server,
        );
        url
    }

    /// Prepares a new connection and says where it goes.
    pub fn connect(&mut self) -> Target {
        if !self.settings.reuse_tracking_id {
            self.tracking_id = "0".to_string();
        }
        self.awaiting_handshake = self.tracking_id == "0";
        self.deframer = self.settings.track_message_length.then(|| {
            let padding = self.heartbeat.as_ref().map_or(DEFAULT_PADDING, |h| h.padding.as_str());
            Deframer::new(self.settings.max_message, padding)
        });
        self.next_beat = None;
        self.handshake_deadline = None;
        Target { carrier: self.carrier, url: self.url_for(self.carrier, self.carrier.name()) }
    }

    /// The URL of the explicit close request (`X-Atmosphere-Transport=close`).
    pub fn close_url(&self) -> Url {
        self.url_for(Carrier::LongPolling, "close")
    }

    /// The connection is up. Returns true when the feed is open now (a reused tracking
    /// id: no handshake comes), false when the handshake must come first.
    pub fn on_connected(&mut self, now: Instant) -> bool {
        self.last_rx = now;
        if self.awaiting_handshake {
            self.handshake_deadline = Some(now + self.settings.handshake_timeout);
            return false;
        }
        self.opened(now);
        true
    }

    fn opened(&mut self, now: Instant) {
        self.ever_open = true;
        self.handshake_deadline = None;
        self.next_beat = self
            .heartbeat
            .as_ref()
            .filter(|h| h.heartbeat_ms > 0)
            .map(|h| now + Duration::from_millis(h.heartbeat_ms));
    }

    fn padding(&self) -> &str {
        self.heartbeat.as_ref().map_or(DEFAULT_PADDING, |h| h.padding.as_str())
    }

    /// A frame (or long-polling body) arrived: hands each application message to
    /// `deliver`. Returns true when this frame completed the handshake (the feed opens).
    pub fn on_frame(
        &mut self,
        frame: &str,
        now: Instant,
        deliver: &mut dyn FnMut(&str),
    ) -> Result<bool> {
        self.last_rx = now;
        if frame.is_empty() {
            return Ok(false); // an empty long-polling answer: the server is alive, no data
        }
        if self.awaiting_handshake {
            return self.on_handshake_frame(frame, now, deliver).map(|()| true);
        }
        self.on_data(frame, deliver)?;
        Ok(false)
    }

    fn on_handshake_frame(
        &mut self,
        frame: &str,
        now: Instant,
        deliver: &mut dyn FnMut(&str),
    ) -> Result<()> {
        let mut messages = Vec::new();
        match &mut self.deframer {
            // With length tracking the handshake is itself a framed message.
            Some(d) => d.feed(frame, &mut |m| messages.push(m.to_string()))?,
            None => messages.push(frame.to_string()),
        }
        let mut rest_messages = messages.into_iter();
        let Some(first) = rest_messages.next() else {
            if self.deframer.as_ref().is_some_and(Deframer::has_partial) {
                return Ok(()); // the handshake continues in the next frame
            }
            return Err(Error::new(ErrorCode::Protocol, "expected the Atmosphere handshake"));
        };
        let (handshake, rest) = Handshake::parse(&first)?;
        log::debug!(
            "Atmosphere handshake: client heartbeat every {} ms, padding {:?}",
            handshake.heartbeat_ms,
            handshake.padding
        );
        self.tracking_id = handshake.uuid.clone();
        if let Some(d) = &mut self.deframer {
            d.set_padding(&handshake.padding);
        }
        self.heartbeat = Some(handshake);
        self.awaiting_handshake = false;
        self.opened(now);
        if !rest.trim().is_empty() {
            self.on_data(rest, deliver)?;
        }
        for m in rest_messages {
            deliver(&m);
        }
        Ok(())
    }

    fn on_data(&mut self, frame: &str, deliver: &mut dyn FnMut(&str)) -> Result<()> {
        match &mut self.deframer {
            Some(d) => d.feed(frame, deliver),
            None => {
                // Server heartbeats (the padding) and whitespace keep-alives carry nothing.
                if frame != self.padding() && !frame.trim().is_empty() {
                    deliver(frame);
                }
                Ok(())
            }
        }
    }

    /// The server closed the connection: an error when it cut a length-framed message
    /// short (its announced length was larger than what came).
    pub fn on_peer_close(&self) -> Result<()> {
        if self.deframer.as_ref().is_some_and(Deframer::has_partial) {
            return Err(Error::new(
                ErrorCode::Protocol,
                "the Atmosphere server closed in the middle of a message (length larger than the data)",
            ));
        }
        Ok(())
    }

    /// When [`Engine::on_timer`] wants to run.
    pub fn deadline(&self) -> Option<Instant> {
        let watchdog = self.last_rx + self.settings.watchdog;
        [self.next_beat, self.handshake_deadline, Some(watchdog)].into_iter().flatten().min()
    }

    /// Timers: fails when the handshake or the server is overdue; returns the heartbeat to
    /// send when one is due.
    pub fn on_timer(&mut self, now: Instant) -> Result<Option<String>> {
        if self.handshake_deadline.is_some_and(|d| now >= d) {
            return Err(Error::new(
                ErrorCode::Timeout,
                format!("no Atmosphere handshake within {:?}", self.settings.handshake_timeout),
            ));
        }
        if now >= self.last_rx + self.settings.watchdog {
            return Err(Error::new(
                ErrorCode::Timeout,
                format!(
                    "nothing from the Atmosphere server for {} ms (watchdog)",
                    self.settings.watchdog.as_millis()
                ),
            ));
        }
        let (Some(due), Some(h)) = (self.next_beat, &self.heartbeat) else { return Ok(None) };
        if now < due {
            return Ok(None);
        }
        self.next_beat = Some(now + Duration::from_millis(h.heartbeat_ms));
        Ok(Some(h.padding.clone()))
    }

    /// A connection failed. Returns true when the engine switched to long-polling because
    /// the very first WebSocket upgrade failed (the session should start over now).
    pub fn fall_back(&mut self, error: &Error) -> bool {
        // The server was reached but the WebSocket did not come up: refused, reset or cut
        // during the upgrade (a middlebox that blocks WebSockets), or never answered it.
        // Unreachable servers (DNS, connect, TLS) would not serve long-polling either.
        let refused = matches!(
            error.code,
            ErrorCode::HttpStatus
                | ErrorCode::WsHandshake
                | ErrorCode::HttpMalformed
                | ErrorCode::Io
                | ErrorCode::Timeout
        );
        if refused
            && self.carrier == Carrier::WebSocket
            && self.settings.fallback
            && !self.ever_open
        {
            log::info!("Atmosphere: WebSocket refused ({}); falling back to long-polling", error);
            self.carrier = Carrier::LongPolling;
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine(options: &[(&str, &str)]) -> Engine {
        let mut c = SessionConfig::new("https://api.example/v2/event/subscription");
        c.options.extend(options.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        Engine::new(&c.url, Settings::from_config(&c).unwrap()).unwrap()
    }

    fn frames(e: &mut Engine, frames: &[&str], now: Instant) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for f in frames {
            e.on_frame(f, now, &mut |m| out.push(m.to_string()))?;
        }
        Ok(out)
    }

    #[test]
    fn handshake_then_heartbeats_and_reuse() {
        let mut e = engine(&[]);
        let t = e.connect();
        assert_eq!(t.url.scheme, Scheme::Wss);
        assert!(t.url.target.contains("X-Atmosphere-tracking-id=0&"));
        let now = Instant::now();
        assert!(!e.on_connected(now), "tracking id 0: wait for the handshake");
        let got = frames(&mut e, &["abc-1|1000|X|", "X", "{\"a\":1}"], now).unwrap();
        assert_eq!(got, ["{\"a\":1}"], "the server heartbeat is swallowed");
        assert_eq!(e.tracking_id(), "abc-1");
        assert_eq!(e.on_timer(now + Duration::from_millis(999)).unwrap(), None);
        let later = now + Duration::from_millis(1000);
        assert_eq!(e.on_timer(later).unwrap().as_deref(), Some("X"));
        // Reconnect: the uuid is presented and no handshake is expected.
        let t = e.connect();
        assert!(t.url.target.contains("X-Atmosphere-tracking-id=abc-1&"));
        assert!(e.on_connected(later));
        assert_eq!(frames(&mut e, &["{\"b\":2}"], later).unwrap(), ["{\"b\":2}"]);
    }

    #[test]
    fn fresh_tracking_ids_and_the_watchdog() {
        let mut e = engine(&[("tracking_id", "fresh"), ("watchdog_ms", "500")]);
        e.connect();
        let now = Instant::now();
        e.on_connected(now);
        frames(&mut e, &["u|0|X|"], now).unwrap();
        assert_eq!(e.on_timer(now + Duration::from_millis(400)).unwrap(), None, "heartbeats off");
        let late = e.on_timer(now + Duration::from_millis(500)).unwrap_err();
        assert_eq!(late.code, ErrorCode::Timeout);
        let t = e.connect();
        assert!(t.url.target.contains("X-Atmosphere-tracking-id=0&"), "fresh: a new handshake");
    }

    #[test]
    fn length_framed_handshake_and_messages() {
        let mut e = engine(&[("track_message_length", "true")]);
        let t = e.connect();
        assert!(t.url.target.contains("X-Atmosphere-TrackMessageSize=true"));
        let now = Instant::now();
        e.on_connected(now);
        // The handshake split over two frames, then a message in the same frame.
        let got = frames(&mut e, &["10|u-1|", "500|X|4|d€t", "a"], now).unwrap();
        assert_eq!(got, ["d€ta"]);
        assert_eq!(e.tracking_id(), "u-1");
        assert_eq!(frames(&mut e, &["X"], now).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn bad_handshakes_and_the_fallback() {
        let mut e = engine(&[]);
        e.connect();
        let now = Instant::now();
        e.on_connected(now);
        assert_eq!(frames(&mut e, &["uuid-only|"], now).unwrap_err().code, ErrorCode::Protocol);
        let refused = Error::new(ErrorCode::HttpStatus, "upgrade refused: HTTP 400");
        assert!(e.fall_back(&refused));
        assert_eq!(e.carrier(), Carrier::LongPolling);
        let t = e.connect();
        assert_eq!(t.url.scheme, Scheme::Https);
        assert!(t.url.target.contains("X-Atmosphere-Transport=long-polling"));
        assert!(!e.fall_back(&refused), "only once");
        let close = e.close_url();
        assert!(close.target.contains("X-Atmosphere-Transport=close"));
    }
}
