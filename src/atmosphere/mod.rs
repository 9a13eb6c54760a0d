//! The Atmosphere protocol (atmosphere.js 2.x against Atmosphere 2.4), sans-IO: the
//! subscription URL, the handshake frame, and `trackMessageLength` framing.
//! Wire facts: PROTOCOLS.md §5.2–5.5. The session driver and the Navixy profile build on it.

pub mod codec;

pub use codec::{Deframer, Handshake, subscription_target};
