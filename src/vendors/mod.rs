//! Platform profiles: each wraps a transport protocol in its vendor's bootstrap, auth,
//! subscription and keepalive rules.

pub mod deconz;
pub mod igtimi;
pub mod navixy;
pub mod smartserver;
pub mod thethings;
