//! The host's handle on a session: sends, Socket.IO calls, subscriptions and close,
//! checked on the caller's thread and queued to the loop. Safe from any thread.

use super::{Queued, Shared};
use crate::config::{Protocol, SessionConfig};
use crate::error::{Error, ErrorCode, Result};
use crate::event::SessionState;
use crate::session::command::{Budgeted, Command, Emit, Outbound};
use crate::session::shared::SessionShared;
use crate::session::stats::SessionStats;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tungstenite::Message;

/// The host's handle on one session. Dropping it releases the session: its handler is
/// not called again once `drop` returns.
pub struct Session {
    pub(super) shared: Arc<SessionShared>,
    pub(super) loop_shared: Arc<Shared>,
}

/// A namespace name, or empty for the session's main namespace.
fn check_namespace(namespace: &str) -> Result<()> {
    if !namespace.is_empty() && (!namespace.starts_with('/') || namespace.contains([',', '?'])) {
        return Err(Error::new(
            ErrorCode::InvalidParameter,
            "a namespace starts with `/` and has no `,` or `?`",
        ));
    }
    Ok(())
}

fn check_args(args: &str, attachments: usize) -> Result<()> {
    let value: serde_json::Value = serde_json::from_str(args)
        .map_err(|e| Error::new(ErrorCode::InvalidParameter, format!("args are not JSON: {e}")))?;
    if !value.is_array() {
        return Err(Error::new(ErrorCode::InvalidParameter, "args must be a JSON array"));
    }
    crate::socketio::packet::check_placeholders(&value, attachments)
        .map_err(|e| Error::new(ErrorCode::InvalidParameter, e.message))
}

/// Valid close codes for an application to send (RFC 6455 §7.4).
fn sendable_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1011 | 3000..=4999)
}

impl Session {
    /// The process-unique id of the session.
    pub fn id(&self) -> u64 {
        self.shared.id
    }

    /// The session's current state.
    pub fn state(&self) -> SessionState {
        self.shared.state()
    }

    /// Bytes accepted by `send_*` and not yet written to the socket.
    pub fn queued_bytes(&self) -> usize {
        self.shared.queued()
    }

    /// The session's counters. Any thread.
    pub fn stats(&self) -> SessionStats {
        self.shared.counters.snapshot(self.shared.state())
    }

    /// Drops the connection (or the wait before the next attempt) and connects again now,
    /// with a fresh backoff: for when the host knows the network changed. Any thread.
    pub fn reconnect_now(&self) -> Result<()> {
        self.command(Command::Reconnect)
    }

    /// Replaces the configuration for the next connection attempts (a new URL, headers,
    /// token): the current connection is not touched. Given from the handler of the
    /// `Connecting` state event, it applies to the attempt that event announces. The
    /// protocol cannot change. Any thread.
    pub fn reconfigure(&self, config: SessionConfig) -> Result<()> {
        if config.protocol != self.shared.protocol {
            return Err(Error::new(ErrorCode::InvalidParameter, "the protocol cannot change"));
        }
        crate::session::driver_for(&config)?.check(&config)?;
        crate::session::validate(&config)?;
        self.shared.set_next_config(config);
        Ok(())
    }

    fn command(&self, cmd: Command) -> Result<()> {
        if self.loop_shared.gone.load(Ordering::Acquire)
            || self.shared.state() == SessionState::Closed
        {
            return Err(Error::new(ErrorCode::Closed, "the session is closed"));
        }
        self.loop_shared.push(Queued::Command(self.shared.id, cmd));
        Ok(())
    }

    fn send(&self, budget: usize, out: impl FnOnce() -> Outbound) -> Result<()> {
        if matches!(self.shared.state(), SessionState::Closing | SessionState::Closed) {
            return Err(Error::new(ErrorCode::Closed, "the session is closed or closing"));
        }
        if !self.shared.reserve(budget) {
            return Err(Error::new(
                ErrorCode::Backpressure,
                "send buffer full; wait for a writable event",
            ));
        }
        let Some(in_outbox) = self.shared.enter_outbox() else {
            self.shared.release_budget(budget);
            return Err(Error::new(
                ErrorCode::Backpressure,
                "the outbox is full while the session is not open",
            ));
        };
        let b = Budgeted { out: out(), budget, in_outbox };
        if self.shared.in_own_handler() {
            // The loop is inside this session's handler: the session sends it right after
            // the handler returns (before reading on), not a turn later.
            self.shared.push_handler_send(b);
            return Ok(());
        }
        self.command(Command::Send(b)).inspect_err(|_| {
            self.shared.release_budget(budget);
            self.shared.leave_outbox(in_outbox);
        })
    }

    /// Queues a text message. Any thread. Fails with `Backpressure` when the send buffer is full.
    pub fn send_text(&self, text: &str) -> Result<()> {
        self.send(text.len(), || Outbound::Message(Message::text(text)))
    }

    /// Queues a binary message. Any thread. Fails with `Backpressure` when the send buffer is full.
    pub fn send_binary(&self, data: &[u8]) -> Result<()> {
        self.send(data.len(), || Outbound::Message(Message::binary(data.to_vec())))
    }

    fn socketio_only(&self) -> Result<()> {
        if !matches!(self.shared.protocol, Protocol::SocketIo | Protocol::TheThings) {
            return Err(Error::new(
                ErrorCode::NotSupported,
                "only Socket.IO sessions have namespaces, emits and acknowledgements",
            ));
        }
        Ok(())
    }

    /// Emits a Socket.IO event on `namespace` (empty for the session's main namespace). `args` is a JSON
    /// array of arguments; placeholders `{"_placeholder":true,"num":i}` in it mark where
    /// `attachments[i]` goes. With `ack_timeout`, the server is asked to acknowledge: an
    /// `Ack` event with the returned id follows, carrying the answer or a `Timeout` error.
    /// Returns the acknowledgement id (0 when none was asked for). Any thread.
    pub fn emit(
        &self,
        namespace: &str,
        event: &str,
        args: &str,
        attachments: &[&[u8]],
        ack_timeout: Option<Duration>,
    ) -> Result<u64> {
        self.socketio_only()?;
        check_namespace(namespace)?;
        const RESERVED: [&str; 6] = [
            "connect",
            "connect_error",
            "disconnect",
            "disconnecting",
            "newListener",
            "removeListener",
        ];
        if event.is_empty() || RESERVED.contains(&event) {
            return Err(Error::new(ErrorCode::InvalidParameter, "empty or reserved event name"));
        }
        check_args(args, attachments.len())?;
        let ack = ack_timeout.map(|t| (self.shared.next_ack_id(), t));
        let budget = event.len() + args.len() + attachments.iter().map(|a| a.len()).sum::<usize>();
        self.send(budget, || {
            Outbound::Emit(Emit {
                namespace: namespace.to_string(),
                event: event.to_string(),
                args: args.to_string(),
                attachments: attachments.iter().map(|a| a.to_vec()).collect(),
                ack,
            })
        })?;
        Ok(ack.map_or(0, |(id, _)| id))
    }

    /// Answers an acknowledgement the server asked for: `id` is the event's
    /// [`Event::ack_id`]. `args` and `attachments` as for [`Session::emit`]. Any thread.
    pub fn ack(&self, namespace: &str, id: u64, args: &str, attachments: &[&[u8]]) -> Result<()> {
        self.socketio_only()?;
        check_namespace(namespace)?;
        if id == 0 {
            return Err(Error::new(ErrorCode::InvalidParameter, "0 is not an acknowledgement id"));
        }
        check_args(args, attachments.len())?;
        let budget = args.len() + attachments.iter().map(|a| a.len()).sum::<usize>();
        self.send(budget, || Outbound::Ack {
            namespace: namespace.to_string(),
            id,
            args: args.to_string(),
            attachments: attachments.iter().map(|a| a.to_vec()).collect(),
        })
    }

    /// Joins another Socket.IO namespace, with an optional JSON auth object (revision 5).
    /// A `connect` event (or an `Error` event with `Auth`) follows. Any thread.
    pub fn join(&self, namespace: &str, auth: Option<&str>) -> Result<()> {
        self.socketio_only()?;
        check_namespace(namespace)?;
        if namespace.is_empty() {
            return Err(Error::new(ErrorCode::InvalidParameter, "name the namespace to join"));
        }
        if let Some(a) = auth {
            if !serde_json::from_str::<serde_json::Value>(a).is_ok_and(|v| v.is_object()) {
                return Err(Error::new(ErrorCode::InvalidParameter, "auth must be a JSON object"));
            }
        }
        self.send(0, || Outbound::Join {
            namespace: namespace.to_string(),
            auth: auth.map(str::to_string),
        })
    }

    /// Leaves a Socket.IO namespace. Any thread.
    pub fn leave(&self, namespace: &str) -> Result<()> {
        self.socketio_only()?;
        check_namespace(namespace)?;
        if namespace.is_empty() {
            return Err(Error::new(ErrorCode::InvalidParameter, "name the namespace to leave"));
        }
        self.send(0, || Outbound::Leave { namespace: namespace.to_string() })
    }

    /// Subscribes to a topic the way the protocol does (a thethings.io resource, ...).
    /// Subscriptions are renewed after every reconnect. Any thread.
    pub fn subscribe(&self, topic: &str) -> Result<()> {
        self.subscription(topic, true)
    }

    /// Ends a subscription made with [`Session::subscribe`] or the `subscribe` option.
    pub fn unsubscribe(&self, topic: &str) -> Result<()> {
        self.subscription(topic, false)
    }

    fn subscription(&self, topic: &str, on: bool) -> Result<()> {
        if !self.shared.protocol.subscribes() {
            return Err(Error::new(ErrorCode::NotSupported, "this protocol has no subscriptions"));
        }
        if topic.is_empty() {
            return Err(Error::new(ErrorCode::InvalidParameter, "empty topic"));
        }
        let topic = topic.to_string();
        self.send(0, || if on { Outbound::Subscribe(topic) } else { Outbound::Unsubscribe(topic) })
    }

    /// Starts the close handshake with `code` (1000, 1001–1003, 1007–1011 or 3000–4999) and a
    /// reason of at most 123 bytes. Any thread.
    pub fn close(&self, code: u16, reason: &str) -> Result<()> {
        if !sendable_close_code(code) || reason.len() > 123 {
            return Err(Error::new(
                ErrorCode::InvalidParameter,
                "invalid close code or reason too long",
            ));
        }
        self.command(Command::Close(code, reason.to_string()))
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.shared.release();
        if !self.loop_shared.gone.load(Ordering::Acquire) {
            self.loop_shared.push(Queued::Release(self.shared.id));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_codes() {
        assert!(sendable_close_code(1000) && sendable_close_code(4999));
        assert!(
            !sendable_close_code(1005) && !sendable_close_code(1006) && !sendable_close_code(999)
        );
    }
}
