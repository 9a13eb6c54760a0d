//! Events delivered to a session's handler, with lazy JSON lookups into the payload.

use crate::error::Error;
use serde_json::Value;
use std::cell::OnceCell;

/// What an event reports.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// The session changed state; see [`Event::state`].
    State = 0,
    /// A text message (payload is UTF-8, often JSON).
    Message = 1,
    /// A binary message.
    Binary = 2,
    /// Something failed; see [`Event::error`]. A `State` event follows if the session ended.
    Error = 3,
    /// The close handshake finished or the peer closed; see [`Event::close_code`], payload is the reason.
    Close = 4,
    /// The send buffer drained after `send` reported back-pressure: sending may resume.
    Writable = 5,
    /// A named event (Socket.IO event, vendor resource update): [`Event::topic`] names it,
    /// the payload is JSON (for Socket.IO the array of arguments).
    Event = 6,
    /// The answer to an emit that asked for an acknowledgement: [`Event::ack_id`] says
    /// which; the payload is the JSON array of arguments, or the event carries an error
    /// (`Timeout`) when no answer came in time.
    Ack = 7,
    /// A host send that will not be made: the outbox overflowed, or the session ended
    /// before it could go. The payload is the message (empty for Socket.IO operations,
    /// whose topic is then the event name).
    Dropped = 8,
}

impl EventKind {
    /// Lower-case name, as lfcat prints it.
    pub fn name(self) -> &'static str {
        let n = self.name_nul();
        &n[..n.len() - 1]
    }

    /// The name with a trailing NUL, for C.
    pub(crate) fn name_nul(self) -> &'static str {
        match self {
            Self::State => "state\0",
            Self::Message => "message\0",
            Self::Binary => "binary\0",
            Self::Error => "error\0",
            Self::Close => "close\0",
            Self::Writable => "writable\0",
            Self::Event => "event\0",
            Self::Ack => "ack\0",
            Self::Dropped => "dropped\0",
        }
    }

    /// Looks a kind up by value.
    pub fn from_u32(v: u32) -> Option<EventKind> {
        [
            Self::State,
            Self::Message,
            Self::Binary,
            Self::Error,
            Self::Close,
            Self::Writable,
            Self::Event,
            Self::Ack,
            Self::Dropped,
        ]
        .into_iter()
        .find(|k| *k as u32 == v)
    }
}

/// Where a session is in its life.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionState {
    /// Resolving, connecting, TLS, upgrade.
    Connecting = 0,
    /// Open: messages flow.
    Open = 1,
    /// Close handshake under way.
    Closing = 2,
    /// Ended; no more events.
    Closed = 3,
    /// The connection ended; waiting out the backoff delay before connecting again.
    Reconnecting = 4,
}

impl SessionState {
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        let n = self.name_nul();
        &n[..n.len() - 1]
    }

    /// The name with a trailing NUL, for C.
    pub(crate) fn name_nul(self) -> &'static str {
        match self {
            Self::Connecting => "connecting\0",
            Self::Open => "open\0",
            Self::Closing => "closing\0",
            Self::Closed => "closed\0",
            Self::Reconnecting => "reconnecting\0",
        }
    }

    /// Looks a state up by value.
    pub fn from_u32(v: u32) -> Option<SessionState> {
        [Self::Connecting, Self::Open, Self::Closing, Self::Closed, Self::Reconnecting]
            .into_iter()
            .find(|s| *s as u32 == v)
    }
}

/// One event. Borrowed: valid only while the handler runs.
pub struct Event<'a> {
    kind: EventKind,
    state: SessionState,
    topic: &'a str,
    event_type: &'a str,
    payload: &'a [u8],
    /// The payload as text, when it is known to be UTF-8 already (a WebSocket text
    /// message was validated on receipt): `text()` need not check it again.
    text: Option<&'a str>,
    error: Option<&'a Error>,
    close_code: u16,
    namespace: &'a str,
    ack_id: u64,
    attachments: &'a [Vec<u8>],
    json: OnceCell<Option<Value>>,
}

impl<'a> Event<'a> {
    pub(crate) fn new(kind: EventKind, state: SessionState, payload: &'a [u8]) -> Event<'a> {
        Event {
            kind,
            state,
            topic: "",
            event_type: "",
            payload,
            text: None,
            error: None,
            close_code: 0,
            namespace: "",
            ack_id: 0,
            attachments: &[],
            json: OnceCell::new(),
        }
    }

    pub(crate) fn with_namespace(mut self, namespace: &'a str) -> Self {
        self.namespace = namespace;
        self
    }

    pub(crate) fn with_ack_id(mut self, id: u64) -> Self {
        self.ack_id = id;
        self
    }

    pub(crate) fn with_attachments(mut self, attachments: &'a [Vec<u8>]) -> Self {
        self.attachments = attachments;
        self
    }

    /// An event whose payload is text already known to be UTF-8.
    pub fn new_text(kind: EventKind, state: SessionState, text: &'a str) -> Event<'a> {
        let mut e = Event::new(kind, state, text.as_bytes());
        e.text = Some(text);
        e
    }

    /// Sets the event's topic (see [`Event::topic`]).
    pub fn with_topic(mut self, topic: &'a str) -> Self {
        self.topic = topic;
        self
    }

    /// Sets what kind of platform event this is (see [`Event::event_type`]).
    pub fn with_type(mut self, event_type: &'a str) -> Self {
        self.event_type = event_type;
        self
    }

    pub(crate) fn with_error(mut self, error: &'a Error) -> Self {
        self.error = Some(error);
        self
    }

    pub(crate) fn with_close_code(mut self, code: u16) -> Self {
        self.close_code = code;
        self
    }

    /// The kind of event.
    pub fn kind(&self) -> EventKind {
        self.kind
    }

    /// The session's state when the event was raised.
    pub fn state(&self) -> SessionState {
        self.state
    }

    /// Event name, resource or channel, where the protocol has one; empty otherwise.
    pub fn topic(&self) -> &str {
        self.topic
    }

    /// For platform `Event`s, what happened where the platform says so: deCONZ's event
    /// kind (`changed`, `added`, ...), SmartServer's action, Navixy's message type, Igtimi's
    /// data type. Empty otherwise.
    pub fn event_type(&self) -> &str {
        self.event_type
    }

    /// The payload: message bytes, error text, close reason or state name.
    pub fn payload(&self) -> &[u8] {
        self.payload
    }

    /// The payload as text, if it is UTF-8.
    pub fn text(&self) -> Option<&str> {
        self.text.or_else(|| std::str::from_utf8(self.payload).ok())
    }

    /// The error, for `Error` events.
    pub fn error(&self) -> Option<&Error> {
        self.error
    }

    /// The Socket.IO namespace of an `Event` or `Ack` (empty for other protocols).
    pub fn namespace(&self) -> &str {
        self.namespace
    }

    /// For `Ack`: the id returned by the emit. For `Event`: nonzero when the server asks
    /// for an acknowledgement, which the host gives with that id.
    pub fn ack_id(&self) -> u64 {
        self.ack_id
    }

    /// Binary attachments of a Socket.IO event or ack; placeholders
    /// `{"_placeholder":true,"num":i}` in the JSON payload mark where each belongs.
    pub fn attachments(&self) -> &[Vec<u8>] {
        self.attachments
    }

    /// The close code, for `Close` events (1005 when the peer sent none).
    pub fn close_code(&self) -> u16 {
        self.close_code
    }

    /// The payload parsed as JSON, once, on first use; `None` if it is not JSON.
    pub fn json(&self) -> Option<&Value> {
        self.json.get_or_init(|| serde_json::from_slice(self.payload).ok()).as_ref()
    }

    /// The value at a JSON pointer (RFC 6901; `""` is the whole document).
    pub fn json_at(&self, pointer: &str) -> Option<&Value> {
        self.json()?.pointer(pointer)
    }

    /// The text of the value at a JSON pointer, found by one pass over the payload that
    /// builds nothing (see [`crate::json_pointer`]); cheaper than [`Event::json_at`] for
    /// a few fields of a message.
    pub fn json_find(&self, pointer: &str) -> Option<&'a serde_json::value::RawValue> {
        crate::json_pointer::find(self.payload, pointer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_pointer_lookups() {
        let ev = Event::new(EventKind::Message, SessionState::Open, br#"{"a":{"b":[1,true,"x"]}}"#);
        assert_eq!(ev.json_at("/a/b/0").and_then(Value::as_f64), Some(1.0));
        assert_eq!(ev.json_at("/a/b/1").and_then(Value::as_bool), Some(true));
        assert_eq!(ev.json_at("/a/b/2").and_then(Value::as_str), Some("x"));
        assert!(ev.json_at("/nope").is_none());
        let not_json = Event::new(EventKind::Message, SessionState::Open, b"{oops");
        assert!(not_json.json_at("").is_none());
    }
}
