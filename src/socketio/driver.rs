//! The Socket.IO session driver (filled in next).

/// Placeholder.
pub struct SocketIoDriver;
