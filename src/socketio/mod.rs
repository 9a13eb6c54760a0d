//! Socket.IO (protocol revisions 4 and 5) over Engine.IO: the packet codec and the
//! session driver. Wire facts: PROTOCOLS.md §2.3 and the socket.io-protocol README.

pub mod driver;
pub mod packet;

pub use driver::SocketIoDriver;
pub use packet::{Kind, Packet};
