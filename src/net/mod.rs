//! Transport: name resolution off the loop thread, non-blocking TCP connect, HTTP proxy
//! tunnels, TLS.

pub mod connector;
pub mod dns;
pub mod proxy;
pub mod stream;
#[cfg_attr(not(feature = "tls"), path = "tls_off.rs")]
pub mod tls;

pub use connector::{Connector, Endpoint, Progress};
pub use dns::Resolver;
pub use proxy::{Proxy, ProxySetting};
pub use stream::Stream;
