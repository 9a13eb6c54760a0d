//! Platform profiles: each wraps a transport protocol in its vendor's bootstrap, auth,
//! subscription and keepalive rules.

#[cfg(feature = "deconz")]
pub mod deconz;
#[cfg(feature = "igtimi")]
pub mod igtimi;
#[cfg(feature = "navixy")]
pub mod navixy;
#[cfg(feature = "smartserver")]
pub mod smartserver;
#[cfg(feature = "thethings")]
pub mod thethings;
