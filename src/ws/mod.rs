//! WebSocket client: the upgrade exchange over our HTTP layer, then our frame decoder
//! for what arrives and tungstenite's codec for what we send, over the non-blocking stream.

pub mod decode;
pub mod handshake;
pub mod link;

pub use link::{Link, ReadOutcome};
