//! WebSocket client: the upgrade exchange over our HTTP layer, then tungstenite's
//! frame codec driven over the non-blocking stream.

pub mod handshake;
pub mod link;

pub use link::{Link, ReadOutcome};
