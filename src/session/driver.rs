//! The seam between the generic session machinery and a protocol profile.
//!
//! A session asks its driver what to do: run an HTTP exchange (a bootstrap step such as
//! a login or a server-list fetch), open a WebSocket, or finish. Vendors and higher
//! protocols are drivers; the session keeps the sockets, deadlines, cookies, redirects
//! and events.

use crate::config::SessionConfig;
use crate::error::{Error, ErrorCode, Result};
use crate::event::EventKind;
use crate::http::{Request, Response};
use crate::url::{Scheme, Url};

/// What the session does next.
#[derive(Debug)]
pub enum Step {
    /// Run an HTTP exchange; its response goes to [`Driver::on_http_response`].
    Http(Request),
    /// Open a WebSocket at this URL.
    WebSocket(Url),
    /// End the session normally.
    Finish,
}

/// Emits an event from a driver: kind, topic, payload.
pub type Emit<'a> = dyn FnMut(EventKind, &str, &[u8]) + 'a;

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
    fn on_http_response(&mut self, response: Response, emit: &mut Emit<'_>) -> Result<Step> {
        let _ = (response, emit);
        Err(Error::new(ErrorCode::Protocol, "this protocol makes no HTTP requests"))
    }
}

/// Plain WebSocket: connect to the configured URL.
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

    fn on_http_response(&mut self, response: Response, emit: &mut Emit<'_>) -> Result<Step> {
        emit(EventKind::Message, &response.status.to_string(), &response.body);
        Ok(Step::Finish)
    }
}
