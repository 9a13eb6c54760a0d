//! Transport: name resolution off the loop thread, non-blocking TCP connect, TLS.

pub mod connector;
pub mod dns;
pub mod stream;
pub mod tls;

pub use connector::{Connector, Progress};
pub use dns::Resolver;
pub use stream::Stream;
