//! Platform profiles: small drivers over the generic protocol engines.

pub mod thethings;
