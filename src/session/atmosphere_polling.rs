//! The Atmosphere long-polling transport (PROTOCOLS.md §5.7): a GET that the server holds
//! until it has messages (the first one, with tracking id 0, returns the handshake at
//! once), then the next GET with the tracking id; a POST per client message; and the
//! explicit close request (`X-Atmosphere-Transport=close`) when the session closes. Each
//! GET body reaches the driver as one text "frame", so the Atmosphere engine deframes it
//! as it would a WebSocket frame.

use super::requester::{Requester, Slot, expect_ok};
use crate::atmosphere::Handshake;
use crate::error::{Error, ErrorCode, Result};
use crate::url::Url;
use crate::ws::link::{Answers, Incoming, ReadOutcome};
use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tungstenite::Message;

/// How long a held GET may last once connected; the driver's receive watchdog is the
/// real liveness check (a live server answers at least with its heartbeat).
const GET_HOLD: Duration = Duration::from_secs(3600);

/// A long-polling Atmosphere connection.
pub struct AtmospherePoller {
    http: Requester,
    get_url: Url,
    close_url: Url,
    /// Known once the handshake came (or given on a reconnect).
    tracking_id: Option<String>,
    get: Slot,
    post: Slot,
    outbox: VecDeque<(String, usize)>,
    post_budget: usize,
    released: usize,
    closing: bool,
    close_sent: bool,
}

const TRACKING_ZERO: &str = "X-Atmosphere-tracking-id=0&";

fn with_tracking_id(url: &Url, uuid: &str) -> Url {
    let mut u = url.clone();
    u.target = u.target.replacen(TRACKING_ZERO, &format!("X-Atmosphere-tracking-id={uuid}&"), 1);
    u
}

/// The uuid in a first GET's body: `[<length>|]<uuid>|<interval>|<padding>|...`, the
/// length there when `framed` (trackMessageLength).
fn handshake_uuid(body: &str, framed: bool) -> Result<String> {
    let unframed = match body.split_once('|') {
        Some((_, rest)) if framed => rest,
        _ => body,
    };
    Handshake::parse(unframed).map(|(h, _)| h.uuid)
}

impl AtmospherePoller {
    /// Starts the first GET at `get_url` (built by the Atmosphere engine); `close_url` is
    /// the explicit close request.
    pub fn start(
        http: Requester,
        get_url: Url,
        close_url: Url,
        now: Instant,
    ) -> Result<AtmospherePoller> {
        let tracking_id = (!get_url.target.contains(TRACKING_ZERO)).then(String::new);
        let mut p = AtmospherePoller {
            http,
            get_url,
            close_url,
            tracking_id,
            get: Slot::Idle,
            post: Slot::Idle,
            outbox: VecDeque::new(),
            post_budget: 0,
            released: 0,
            closing: false,
            close_sent: false,
        };
        p.get = p.open(None, now)?;
        Ok(p)
    }

    fn open(&mut self, body: Option<&str>, now: Instant) -> Result<Slot> {
        let request = self.http.request(self.get_url.clone(), body.map(|b| b.as_bytes().to_vec()));
        self.http.open(request, now)
    }

    /// A resolver answer for one of the poller's connections.
    pub fn on_resolved(
        &mut self,
        attempt: u64,
        result: io::Result<Vec<SocketAddr>>,
        now: Instant,
    ) -> Result<()> {
        self.http.on_resolved_any([&mut self.get, &mut self.post], attempt, result, now)
    }

    /// Reads what a GET brought and hands it to `on_message`; keeps one GET going and
    /// posts what waits to be sent.
    pub fn read(
        &mut self,
        now: Instant,
        scratch: &mut [u8],
        on_message: &mut dyn FnMut(Incoming<'_>) -> Result<Answers>,
    ) -> Result<ReadOutcome> {
        if let Some(response) = self.http.advance(&mut self.get, now + GET_HOLD, scratch, now)? {
            self.http.remember_cookies(&self.get_url, &response);
            expect_ok(&response, "Atmosphere long-polling GET")?;
            let body = std::str::from_utf8(&response.body).map_err(|_| {
                Error::new(ErrorCode::WsInvalidUtf8, "a long-polling answer that is not UTF-8")
            })?;
            if self.tracking_id.is_none() {
                let framed = self.get_url.target.contains("X-Atmosphere-TrackMessageSize=true");
                let uuid = handshake_uuid(body, framed)?;
                self.get_url = with_tracking_id(&self.get_url, &uuid);
                self.close_url = with_tracking_id(&self.close_url, &uuid);
                self.tracking_id = Some(uuid);
            }
            // Empty answers too: an answered poll proves the server alive (the watchdog).
            for (m, budget) in on_message(Incoming::Text(body))? {
                self.write(m, budget)?;
            }
            if !self.closing {
                self.get = self.open(None, now)?;
            }
        }
        if let Some(response) =
            self.http.advance(&mut self.post, now + self.http.timeouts.handshake, scratch, now)?
        {
            self.http.remember_cookies(&self.get_url, &response);
            if self.close_sent {
                // The close request was answered (whatever the status): done.
                return Ok(ReadOutcome::Closed(1000, String::new()));
            }
            expect_ok(&response, "Atmosphere long-polling POST")?;
            self.released += std::mem::take(&mut self.post_budget);
        }
        self.post_next(now)?;
        Ok(ReadOutcome::Drained)
    }

    fn post_next(&mut self, now: Instant) -> Result<()> {
        if !self.post.is_idle() || self.tracking_id.is_none() || self.close_sent {
            return Ok(());
        }
        if let Some((text, budget)) = self.outbox.pop_front() {
            self.post_budget = budget;
            self.post = self.open(Some(&text), now)?;
        } else if self.closing {
            self.close_sent = true;
            let request = self.http.request(self.close_url.clone(), None);
            self.post = self.http.open(request, now)?;
        }
        Ok(())
    }

    /// Queues a message for its own POST.
    pub fn write(&mut self, msg: Message, budget: usize) -> Result<()> {
        match msg {
            Message::Text(t) => self.outbox.push_back((t.as_str().to_string(), budget)),
            _ => self.released += budget, // nothing else travels over long-polling
        }
        Ok(())
    }

    /// Starts a POST if one can go; returns the send budget of completed POSTs.
    pub fn flush(&mut self) -> Result<Option<usize>> {
        self.post_next(Instant::now())?;
        Ok(Some(std::mem::take(&mut self.released)))
    }

    /// Stops polling; sends what is queued, then the close request.
    pub fn close(&mut self) -> Result<()> {
        if !self.closing {
            self.closing = true;
            self.http.abandon(&mut self.get);
            self.post_next(Instant::now())?;
        }
        Ok(())
    }

    /// Enforces the connections' deadlines.
    pub fn check_deadlines(&mut self, now: Instant) -> Result<()> {
        self.http.check_deadline(&mut self.get, now, "an Atmosphere long-polling GET")?;
        self.http.check_deadline(&mut self.post, now, "an Atmosphere long-polling POST")
    }

    /// The earliest connection deadline.
    pub fn deadline(&self) -> Option<Instant> {
        [self.get.deadline(), self.post.deadline()].into_iter().flatten().min()
    }

    /// Closes both connections.
    pub fn abandon(&mut self) {
        self.http.abandon(&mut self.get);
        self.http.abandon(&mut self.post);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_uuid_comes_from_the_first_answer_framed_or_not() {
        assert_eq!(handshake_uuid("ab-1|30000|X|", false).unwrap(), "ab-1");
        assert_eq!(handshake_uuid("13|ab-1|30000|X|", true).unwrap(), "ab-1");
        assert!(handshake_uuid("{\"not\":\"a handshake\"}", false).is_err());
        let url = Url::parse("http://h/s?X-Atmosphere-tracking-id=0&X-Atmosphere-Framework=2.3.6")
            .unwrap();
        assert!(with_tracking_id(&url, "ab-1").target.contains("tracking-id=ab-1&"));
    }
}
