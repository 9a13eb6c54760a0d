//! thethings.io real-time API (PROTOCOLS.md §2.1): log in over REST when given credentials,
//! join the `/v2` Socket.IO namespace, `authenticate` with the session token and wait for
//! `"status":"success"`, then `subscribe` each resource; live values arrive as events named
//! after the resource. Every new connection authenticates and subscribes again.
//!
//! Options: `token` (session token), or `user` + `password` (+ `app`) to log in; `api`
//! (REST base URL; default `https://api.thethings.io` for `ws.thethings.io`, else the
//! feed URL's own origin); `subscribe` (repeatable: `/me/resources/<key>` or
//! `/things/<thingToken>`); `namespace` (default `/v2`).

use crate::config::{Protocol, SessionConfig};
use crate::error::{Error, ErrorCode, Result};
use crate::http::{Request, Response};
use crate::session::command::Outbound;
use crate::session::driver::{Driver, Io, Step};
use crate::socketio::SocketIoDriver;
use crate::socketio::driver::{Login, Subscriber};
use crate::url::{Scheme, Url};
use serde_json::{Value, json};
use std::time::Instant;

/// The thethings.io profile.
pub struct TheThingsDriver {
    inner: SocketIoDriver,
    token: Option<String>,
    credentials: Option<(String, String, Option<String>)>,
    login_url: Url,
    /// A refused session token was already answered with a fresh login.
    relogged: bool,
}

impl TheThingsDriver {
    /// Reads the options.
    pub fn new(config: &SessionConfig) -> Result<TheThingsDriver> {
        let feed = Url::parse(&config.url)?;
        let mut sio = config.clone();
        sio.protocol = Protocol::SocketIo;
        // The token authenticates with an event, not with the namespace's auth object.
        sio.options.retain(|(k, _)| k != "token" && k != "auth");
        if config.option("namespace").is_none() && feed.path() == "/" {
            sio.options.push(("namespace".into(), "/v2".into()));
        }
        let mut inner = SocketIoDriver::new(&sio)?;
        let topics = config.option_values("subscribe").map(str::to_string).collect();
        inner.set_subscriber(
            Subscriber {
                subscribe: "subscribe".into(),
                unsubscribe: "unsubscribe".into(),
                key: "resource".into(),
            },
            topics,
        );
        let token = config.option("token").map(str::to_string);
        let credentials = match (config.option("user"), config.option("password")) {
            (Some(u), Some(p)) => {
                Some((u.to_string(), p.to_string(), config.option("app").map(str::to_string)))
            }
            _ => None,
        };
        if token.is_none() && credentials.is_none() {
            return Err(Error::new(
                ErrorCode::InvalidParameter,
                "thethings.io needs a session token (token) or credentials (user and password)",
            ));
        }
        let api = match config.option("api") {
            Some(api) => Url::parse(api)?,
            None if feed.host == "ws.thethings.io" => Url::parse("https://api.thethings.io/")?,
            None => {
                let scheme = if feed.scheme.is_tls() { "https" } else { "http" };
                Url::parse(&format!("{scheme}://{}/", feed.host_header()))?
            }
        };
        if !matches!(api.scheme, Scheme::Http | Scheme::Https) {
            return Err(Error::new(
                ErrorCode::InvalidParameter,
                "option `api` must be an http(s) URL",
            ));
        }
        let login_url = api.join("/v2/login")?;
        Ok(TheThingsDriver { inner, token, credentials, login_url, relogged: false })
    }

    fn connect_with(&mut self, token: &str) -> Step {
        let args = Value::Array(vec![json!({ "sessionToken": token })]).to_string();
        self.inner.set_login(Login { event: "authenticate".into(), args });
        self.inner.begin()
    }
}

impl Driver for TheThingsDriver {
    fn start(&mut self, _config: &SessionConfig) -> Result<Step> {
        if let Some(token) = self.token.clone() {
            return Ok(self.connect_with(&token));
        }
        let Some((user, password, app)) = &self.credentials else {
            return Err(Error::new(ErrorCode::Auth, "no session token and no credentials"));
        };
        let mut body = json!({ "email": user, "password": password });
        if let Some(app) = app {
            body["app"] = Value::String(app.clone());
        }
        Ok(Step::Http(Request::json("POST", self.login_url.clone(), &body)))
    }

    fn on_http_response(&mut self, response: Response, _io: &mut Io<'_>) -> Result<Step> {
        let reply: Option<Value> = serde_json::from_slice(&response.body).ok();
        let token = reply.as_ref().and_then(|r| r.get("token")).and_then(Value::as_str);
        match (response.status, token) {
            (200..=299, Some(token)) => {
                log::info!("thethings.io: logged in");
                // The token is not kept: a reconnect logs in again with the credentials.
                Ok(self.connect_with(token))
            }
            (status, _) => {
                let why = reply
                    .as_ref()
                    .and_then(|r| r.get("message"))
                    .and_then(Value::as_str)
                    .unwrap_or("no token in the answer");
                let code = if matches!(status, 401 | 403) || status < 300 {
                    ErrorCode::Auth
                } else {
                    ErrorCode::HttpStatus
                };
                Err(Error::new(code, format!("thethings.io login failed (HTTP {status}): {why}")))
            }
        }
    }

    fn on_open(&mut self, subprotocol: &str, io: &mut Io<'_>) -> Result<()> {
        self.inner.on_open(subprotocol, io)
    }

    fn on_text(&mut self, text: &str, io: &mut Io<'_>) -> Result<()> {
        match self.inner.on_text(text, io) {
            // A refused session token (expired, revoked): log in again, once, if we can.
            Err(e) if e.code == ErrorCode::Auth && self.credentials.is_some() && !self.relogged => {
                log::warn!("thethings.io: {}; logging in again", e.message);
                self.relogged = true;
                self.token = None;
                io.restart("the session token was refused");
                Ok(())
            }
            Err(e) => Err(e),
            Ok(()) => {
                if self.inner.logged_in() {
                    self.relogged = false;
                }
                Ok(())
            }
        }
    }

    fn on_binary(&mut self, data: &[u8], io: &mut Io<'_>) -> Result<()> {
        self.inner.on_binary(data, io)
    }

    fn on_send(&mut self, out: Outbound, io: &mut Io<'_>) -> Result<()> {
        self.inner.on_send(out, io)
    }

    fn on_timer(&mut self, io: &mut Io<'_>) -> Result<()> {
        self.inner.on_timer(io)
    }

    fn deadline(&self) -> Option<Instant> {
        self.inner.deadline()
    }

    fn on_end(&mut self, io: &mut Io<'_>) {
        self.inner.on_end(io);
    }

    fn websocket_keepalive(&self) -> bool {
        self.inner.websocket_keepalive()
    }
}
