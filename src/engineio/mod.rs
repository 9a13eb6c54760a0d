//! Engine.IO (protocol 3 and 4), sans-IO: packet and payload codecs and the heartbeat.
//! Wire facts: PROTOCOLS.md §2.2 and the engine.io-protocol README (revisions 3 and 4).

pub mod codec;
pub mod heartbeat;

pub use codec::{OpenInfo, Packet, PacketType, Version};
pub use heartbeat::Heartbeat;
