//! What the host asks a session to do, carried from any thread to the loop thread.

use std::time::Duration;
use tungstenite::Message;

/// A Socket.IO emit.
#[derive(Debug)]
pub struct Emit {
    /// Namespace, such as `/` or `/chat`.
    pub namespace: String,
    /// Event name.
    pub event: String,
    /// The arguments: a JSON array (placeholders `{"_placeholder":true,"num":i}` mark
    /// where attachment `i` goes).
    pub args: String,
    /// Binary attachments.
    pub attachments: Vec<Vec<u8>>,
    /// Acknowledgement wanted: the id the host was given and how long to wait.
    pub ack: Option<(u64, Duration)>,
}

/// Something to send.
#[derive(Debug)]
pub enum Outbound {
    /// A data message (`send_text`/`send_binary`); protocols may wrap it.
    Message(Message),
    /// Socket.IO: emit an event.
    Emit(Emit),
    /// Socket.IO: answer an acknowledgement the server asked for.
    Ack {
        /// Namespace of the event being answered.
        namespace: String,
        /// The id the server gave.
        id: u64,
        /// Answer arguments, a JSON array.
        args: String,
        /// Binary attachments.
        attachments: Vec<Vec<u8>>,
    },
    /// Socket.IO: join a namespace, with an optional JSON auth object.
    Join {
        /// Namespace to join.
        namespace: String,
        /// Auth payload (revision 5) as JSON text.
        auth: Option<String>,
    },
    /// Socket.IO: leave a namespace.
    Leave {
        /// Namespace to leave.
        namespace: String,
    },
    /// Subscribe to a topic (resource, channel, datapoint) the way the protocol does it;
    /// kept and renewed after every reconnect.
    Subscribe(String),
    /// Stop a subscription.
    Unsubscribe(String),
}

/// An outbound item with the send budget reserved for it.
#[derive(Debug)]
pub struct Budgeted {
    /// What to send.
    pub out: Outbound,
    /// Bytes reserved from the session's send budget, returned once written.
    pub budget: usize,
    /// Counted against the outbox's `Reject` limit when it was made (the session was
    /// not open); uncounted once it is sent or dropped.
    pub in_outbox: bool,
}

/// A command from the host.
#[derive(Debug)]
pub enum Command {
    /// Send something.
    Send(Budgeted),
    /// Start the close handshake.
    Close(u16, String),
    /// Connect again now (the network changed).
    Reconnect,
}
