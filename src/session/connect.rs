//! Establishing a connection for a step: resolve, connect, TLS, send the request (an
//! HTTP exchange or a WebSocket upgrade), follow redirects, store cookies.

use super::atmosphere_polling::AtmospherePoller;
use super::driver::Step;
use super::polling::Poller;
use super::requester::Requester;
use super::transport::Transport;
use super::{Ctx, Phase, SessionCore};
use crate::error::{Error, ErrorCode, Result};
use crate::http::{Exchange, Request, Response, ResponseParser};
use crate::net::tls::TlsConnector;
use crate::net::{Connector, Endpoint, Progress, Stream};
use crate::url::{Scheme, Url};
use crate::ws::handshake;
use crate::ws::link::Link;
use std::sync::Arc;
use std::time::Instant;

/// What a connection is for.
pub(super) enum Target {
    /// A WebSocket upgrade at this URL.
    WebSocket(Url),
    /// An HTTP exchange.
    Http(Request),
}

impl Target {
    fn url(&self) -> &Url {
        match self {
            Target::WebSocket(u) => u,
            Target::Http(r) => &r.url,
        }
    }
}

impl SessionCore {
    /// Carries out what the driver asked for.
    pub(super) fn take_step(&mut self, ctx: &mut Ctx<'_>, step: Step) -> Result<()> {
        self.redirects = 0;
        match step {
            Step::Http(request) => self.connect(ctx, Target::Http(request)),
            Step::WebSocket(url) => self.connect(ctx, Target::WebSocket(url)),
            Step::Polling(url, upgrade) => {
                log::info!("session {}: long-polling {url}", self.shared.id);
                let http = self.requester(ctx, &url)?;
                let poller = Poller::start(http, &self.config, url, upgrade, ctx.now)?;
                self.phase = Phase::Open(Transport::Polling(Box::new(poller)));
                self.transport_up(ctx.now);
                self.with_io(ctx, 0, |driver, io| driver.on_open("", io))
            }
            Step::AtmospherePolling(url, close_url) => {
                log::info!("session {}: Atmosphere long-polling {url}", self.shared.id);
                let http = self.requester(ctx, &url)?;
                let poller = AtmospherePoller::start(http, url, close_url, ctx.now)?;
                self.phase = Phase::Open(Transport::AtmospherePolling(Box::new(poller)));
                self.transport_up(ctx.now);
                self.with_io(ctx, 0, |driver, io| driver.on_open("", io))
            }
            Step::Finish => {
                self.ending = true; // the driver is done: no reconnect follows
                self.finish(ctx, 1000, "");
                Ok(())
            }
        }
    }

    /// Makes the requester a long-polling transport runs its requests through.
    fn requester(&mut self, ctx: &Ctx<'_>, url: &Url) -> Result<Requester> {
        let tls = self.tls_for(url)?;
        let (id, token) = (self.shared.id, self.token());
        Requester::new(id, token, ctx.registry, ctx.resolver, ctx.resolved, tls, &self.config)
    }

    fn tls_for(&mut self, url: &Url) -> Result<Option<Arc<TlsConnector>>> {
        if !url.scheme.is_tls() {
            return Ok(None);
        }
        if self.tls.is_none() {
            self.tls = Some(crate::net::tls::shared_connector(&self.config.tls)?);
        }
        Ok(self.tls.clone())
    }

    fn connect(&mut self, ctx: &mut Ctx<'_>, target: Target) -> Result<()> {
        self.attempt += 1;
        let (id, attempt, resolved) = (self.shared.id, self.attempt, Arc::clone(ctx.resolved));
        let reply = Box::new(move |r| resolved(id, attempt, r));
        let url = target.url().clone();
        log::info!("session {id}: connecting to {url}");
        if url.scheme.is_tls() && self.config.tls.insecure {
            log::warn!(
                "session {id}: TLS certificate and host name verification are DISABLED (insecure mode)"
            );
        }
        let tls = self.tls_for(&url)?;
        let proxy = self.config.proxy.proxy_for(&url)?;
        if let Some(p) = &proxy {
            log::info!("session {id}: through the proxy {}:{}", p.host, p.port);
        }
        let pins = self.config.tls.pinned_der.clone();
        let endpoint = Endpoint { host: url.host.clone(), port: url.port, tls, proxy, pins };
        let connector = Connector::start(
            endpoint,
            &self.config.timeouts,
            self.token(),
            ctx.registry,
            ctx.resolver,
            reply,
            ctx.now,
        )?;
        self.phase = Phase::Connecting { connector, target };
        Ok(())
    }

    /// Advances connecting and exchanging as far as the socket allows.
    pub(super) fn establish(&mut self, ctx: &mut Ctx<'_>) -> Result<()> {
        loop {
            match &mut self.phase {
                Phase::Connecting { connector, .. } => {
                    match connector.on_ready(ctx.registry, ctx.now)? {
                        Progress::Pending => return Ok(()),
                        Progress::Ready(stream) => self.begin_exchange(stream, ctx.now),
                    }
                }
                Phase::Exchanging { stream, exchange, .. } => {
                    match exchange.drive(stream, ctx.scratch)? {
                        None => return Ok(()),
                        Some(response) => self.on_response(ctx, response)?,
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    fn begin_exchange(&mut self, stream: Stream, now: Instant) {
        let Phase::Connecting { target, .. } = std::mem::replace(&mut self.phase, Phase::Idle)
        else {
            return;
        };
        let limits = &self.config.limits;
        let (bytes, key, parser) = match &target {
            Target::WebSocket(url) => {
                let mut up = handshake::request(url, &self.config);
                for (n, v) in self.driver.upgrade_headers() {
                    up.request = up.request.header(&n, &v);
                }
                // A refused upgrade's body only feeds the error message: keep it small.
                let parser =
                    ResponseParser::new(limits.max_http_head, limits.max_http_body.min(64 << 10));
                (up.request.encode(&self.jar.header_for(url)), up.key, parser)
            }
            Target::Http(request) => {
                let mut request = request.clone();
                if !request.has_header("Connection") {
                    request = request.header("Connection", "close");
                }
                let parser = ResponseParser::new(limits.max_http_head, limits.max_http_body);
                let parser =
                    if request.method == "HEAD" { parser.for_head_request() } else { parser };
                (request.encode(&self.jar.header_for(&request.url)), String::new(), parser)
            }
        };
        let deadline = now + self.config.timeouts.handshake;
        let exchange = Exchange::new(bytes, parser);
        self.phase = Phase::Exchanging { stream, exchange, target, key, deadline };
    }

    fn on_response(&mut self, ctx: &mut Ctx<'_>, response: Response) -> Result<()> {
        let Phase::Exchanging { mut stream, mut exchange, target, key, .. } =
            std::mem::replace(&mut self.phase, Phase::Idle)
        else {
            return Ok(());
        };
        for c in response.headers_all("set-cookie") {
            self.jar.store(target.url(), c);
        }
        let redirect = matches!(response.status, 301 | 302 | 303 | 307 | 308);
        if redirect || !matches!(target, Target::WebSocket(_)) {
            let _ = ctx.registry.deregister(stream.tcp_mut());
            stream.shutdown();
        }
        if let (true, Some(location)) = (redirect, response.header("location")) {
            return self.redirect(ctx, target, response.status, location.to_string());
        }
        match target {
            Target::WebSocket(_) => {
                let protocol = handshake::validate(&response, &key, &self.config.subprotocols)?;
                let link =
                    Link::new(stream, exchange.take_leftover(), &self.config.limits, ctx.now);
                self.phase = Phase::Open(Transport::Ws(link));
                self.transport_up(ctx.now);
                log::info!("session {}: WebSocket open", self.shared.id);
                self.with_io(ctx, 0, |driver, io| {
                    driver.on_open(protocol.as_deref().unwrap_or(""), io)
                })
            }
            Target::Http(_) => {
                let mut step = None;
                self.with_io(ctx, 0, |driver, io| {
                    step = Some(driver.on_http_response(response, io)?);
                    Ok(())
                })?;
                match step {
                    Some(step) => self.take_step(ctx, step),
                    None => Ok(()),
                }
            }
        }
    }

    fn redirect(
        &mut self,
        ctx: &mut Ctx<'_>,
        target: Target,
        status: u16,
        location: String,
    ) -> Result<()> {
        self.redirects += 1;
        if self.redirects > self.config.limits.max_redirects {
            return Err(Error::new(ErrorCode::HttpRedirects, "too many redirects"));
        }
        let next = target.url().join(&location)?;
        log::info!("session {}: redirected to {next}", self.shared.id);
        let target = match target {
            Target::WebSocket(_) => {
                let mut next = next;
                next.scheme = if next.scheme.is_tls() { Scheme::Wss } else { Scheme::Ws };
                Target::WebSocket(next)
            }
            Target::Http(mut request) => {
                if matches!(request.url.scheme, Scheme::Https) && !next.scheme.is_tls() {
                    return Err(Error::new(
                        ErrorCode::HttpRedirects,
                        "refusing a redirect from https to http",
                    ));
                }
                if request.url.host != next.host {
                    // Credentials are for the host they were given for.
                    request.headers.retain(|(n, _)| !n.eq_ignore_ascii_case("authorization"));
                }
                if status == 303 || ((status == 301 || status == 302) && request.method == "POST") {
                    request.method = "GET".into();
                    request.body.clear();
                    request.headers.retain(|(n, _)| !n.eq_ignore_ascii_case("content-type"));
                }
                request.url = next;
                Target::Http(request)
            }
        };
        self.connect(ctx, target)
    }
}
