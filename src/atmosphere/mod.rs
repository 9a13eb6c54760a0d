//! The Atmosphere protocol (atmosphere.js 2.x against Atmosphere 2.4): the wire codec
//! (subscription URL, handshake frame, `trackMessageLength` framing), the client engine
//! (heartbeats, watchdog, tracking-id reuse, long-polling fallback), both sans-IO, and the
//! raw Atmosphere session driver. Wire facts: PROTOCOLS.md §5.2–5.7. The Navixy profile
//! builds on the engine.

pub mod codec;
pub mod driver;
pub mod engine;

pub use codec::{Deframer, Handshake, subscription_target};
pub use driver::AtmosphereDriver;
pub use engine::{Carrier, Engine, Settings};
