//! The seam between the generic session machinery and a protocol profile.
//!
//! A session asks its driver what to do: run an HTTP exchange (a bootstrap step such as
//! a login or a server-list fetch), open a WebSocket, or finish. Once a WebSocket is
//! open the driver sees every frame, every host send and its own timer, and answers
//! through [`Io`]: events for the host, frames for the peer, "open" and "finish".
//! Vendors and higher protocols are drivers; the session keeps the sockets, deadlines,
//! cookies, redirects, budgets and the event order.

use super::command::Outbound;
use super::shared::SessionShared;
use crate::config::SessionConfig;
use crate::error::{Error, ErrorCode, Result};
use crate::event::{Event, EventKind, SessionState};
use crate::http::{Request, Response};
use crate::url::{Scheme, Url};
use std::time::Instant;
use tungstenite::Message;

/// What the session does next.
#[derive(Debug)]
pub enum Step {
    /// Run an HTTP exchange; its response goes to [`Driver::on_http_response`].
    Http(Request),
    /// Open a WebSocket at this URL.
    WebSocket(Url),
    /// Run Engine.IO long-polling at this URL (`...?EIO=..&transport=polling`), moving to a
    /// WebSocket when the flag is set and the server offers it.
    Polling(Url, bool),
    /// Run Atmosphere long-polling: GETs at the first URL (built by the Atmosphere
    /// engine), the second being the explicit close request.
    AtmospherePolling(Url, Url),
    /// End the session normally.
    Finish,
}

/// A frame for the peer and the send budget it returns once written.
pub type Frame = (Message, usize);

/// How a driver asks the connection to end.
#[derive(Debug)]
pub enum End {
    /// Close normally (close handshake) and end the session.
    Finish(u16, String),
    /// Drop this connection and run the driver's bootstrap again from `start`.
    Restart(String),
}

/// What a driver may do while it handles one stimulus.
pub struct Io<'a> {
    /// The time of this loop turn.
    pub now: Instant,
    shared: &'a SessionShared,
    frames: &'a mut Vec<Frame>,
    budget: usize,
    opened: &'a mut Option<String>,
    end: &'a mut Option<End>,
}

impl<'a> Io<'a> {
    pub(crate) fn new(
        now: Instant,
        shared: &'a SessionShared,
        frames: &'a mut Vec<Frame>,
        opened: &'a mut Option<String>,
        end: &'a mut Option<End>,
    ) -> Io<'a> {
        Io { now, shared, frames, budget: 0, opened, end }
    }

    /// Attributes a host send's budget to the next frame sent.
    pub(crate) fn with_budget(mut self, budget: usize) -> Io<'a> {
        self.budget = budget;
        self
    }

    /// The session's state (as last reported to the host).
    pub fn state(&self) -> SessionState {
        self.shared.state()
    }

    /// Hands an event to the host's handler now.
    pub fn emit(&self, event: &Event<'_>) {
        self.shared.dispatch(event);
    }

    /// Queues a frame for the peer.
    pub fn send(&mut self, message: Message) {
        let budget = std::mem::take(&mut self.budget);
        self.frames.push((message, budget));
    }

    /// Reports the session open (the feed is ready); `detail` becomes the event payload.
    pub fn open(&mut self, detail: &str) {
        *self.opened = Some(detail.to_string());
    }

    /// Ends the session normally with a close handshake.
    pub fn finish(&mut self, code: u16, reason: &str) {
        *self.end = Some(End::Finish(code, reason.to_string()));
    }

    /// Drops this connection and starts over with [`Driver::start`] (for example to log in
    /// again after the server refused a session token).
    pub fn restart(&mut self, reason: &str) {
        *self.end = Some(End::Restart(reason.to_string()));
    }
}

/// A protocol profile driving a session.
pub trait Driver: Send {
    /// Checks the configuration when the session is opened, so mistakes fail synchronously.
    fn check(&self, config: &SessionConfig) -> Result<()> {
        let _ = config;
        Ok(())
    }

    /// The first step of a (re)connection.
    fn start(&mut self, config: &SessionConfig) -> Result<Step>;

    /// An HTTP exchange finished (redirects already followed, cookies already stored).
    fn on_http_response(&mut self, response: Response, io: &mut Io<'_>) -> Result<Step> {
        let _ = (response, io);
        Err(Error::new(ErrorCode::Protocol, "this protocol makes no HTTP requests"))
    }

    /// The WebSocket opened; `subprotocol` is the one the server chose (or empty).
    fn on_open(&mut self, subprotocol: &str, io: &mut Io<'_>) -> Result<()> {
        io.open(subprotocol);
        Ok(())
    }

    /// A text frame arrived.
    fn on_text(&mut self, text: &str, io: &mut Io<'_>) -> Result<()> {
        io.emit(&Event::new_text(EventKind::Message, io.state(), text));
        Ok(())
    }

    /// A binary frame arrived.
    fn on_binary(&mut self, data: &[u8], io: &mut Io<'_>) -> Result<()> {
        io.emit(&Event::new(EventKind::Binary, io.state(), data));
        Ok(())
    }

    /// The host sends something (only once the session is open).
    fn on_send(&mut self, out: Outbound, io: &mut Io<'_>) -> Result<()> {
        match out {
            Outbound::Message(m) => {
                io.send(m);
                Ok(())
            }
            _ => Err(Error::new(ErrorCode::NotSupported, "this protocol has no such operation")),
        }
    }

    /// The driver's deadline passed.
    fn on_timer(&mut self, io: &mut Io<'_>) -> Result<()> {
        let _ = io;
        Ok(())
    }

    /// When [`Driver::on_timer`] wants to run.
    fn deadline(&self) -> Option<Instant> {
        None
    }

    /// The session is about to close at the host's or the driver's request, while the
    /// connection is open: last words for the peer (an unsubscribe) go out before the close.
    fn on_closing(&mut self, io: &mut Io<'_>) {
        let _ = io;
    }

    /// The session ends for good (no reconnect follows): report what can no longer
    /// complete. Frames sent here go nowhere.
    fn on_end(&mut self, io: &mut Io<'_>) {
        let _ = io;
    }

    /// The connection failed (before or after opening; not when the host closed it).
    /// Return true to start over at once with [`Driver::start`] (the next server of a
    /// list, a fresh login after a refused cookie) instead of ending the session or
    /// waiting out the reconnect backoff. The driver must not answer true forever: the
    /// session trusts it to run out of alternatives.
    fn retry_now(&mut self, error: &Error) -> bool {
        let _ = error;
        false
    }

    /// The peer closed the connection (its close frame, or the end of a long-polling
    /// stream). An error turns the close into a failure (a data-log socket that closes
    /// before its `end` message).
    fn on_peer_close(&mut self, code: u16, reason: &str) -> Result<()> {
        let _ = (code, reason);
        Ok(())
    }

    /// Extra headers for the WebSocket upgrade request, after the session's own (a token a
    /// platform wants as `Authorization: Bearer`).
    fn upgrade_headers(&self) -> Vec<(String, String)> {
        Vec::new()
    }

    /// Whether the session should run WebSocket pings for liveness (protocols with their
    /// own heartbeat say no).
    fn websocket_keepalive(&self) -> bool {
        true
    }
}

/// Plain WebSocket: connect to the configured URL, pass frames through.
pub struct WebSocketDriver;

impl WebSocketDriver {
    fn url(config: &SessionConfig) -> Result<Url> {
        let url = Url::parse(&config.url)?;
        if !matches!(url.scheme, Scheme::Ws | Scheme::Wss) {
            return Err(Error::new(
                ErrorCode::InvalidParameter,
                "a WebSocket URL must be ws:// or wss://",
            ));
        }
        Ok(url)
    }
}

impl Driver for WebSocketDriver {
    fn check(&self, config: &SessionConfig) -> Result<()> {
        Self::url(config).map(|_| ())
    }

    fn start(&mut self, config: &SessionConfig) -> Result<Step> {
        Self::url(config).map(Step::WebSocket)
    }
}

/// One HTTP request; the response arrives as a `Message` event whose topic is the status
/// code and whose payload is the body, then the session finishes. Used to exercise the
/// HTTP client on the loop; vendor bootstraps make the same exchanges.
pub struct FetchDriver {
    request: Option<Request>,
}

impl FetchDriver {
    /// A driver that sends `request` once.
    pub fn new(request: Request) -> FetchDriver {
        FetchDriver { request: Some(request) }
    }
}

impl Driver for FetchDriver {
    fn start(&mut self, _config: &SessionConfig) -> Result<Step> {
        self.request
            .take()
            .map(Step::Http)
            .ok_or_else(|| Error::new(ErrorCode::WrongState, "already fetched"))
    }

    fn on_http_response(&mut self, response: Response, io: &mut Io<'_>) -> Result<Step> {
        let status = response.status.to_string();
        io.emit(&Event::new(EventKind::Message, io.state(), &response.body).with_topic(&status));
        Ok(Step::Finish)
    }
}
