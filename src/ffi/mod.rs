//! The C ABI. The only module with `extern "C"`, raw pointers and the panic boundary;
//! it holds no logic of its own and wraps the Rust API thinly.
//!
//! Conventions (see README "API conventions"): opaque handles; every fallible call
//! returns `lf_result` and records a per-thread message; out-parameters are written
//! only on success; enum values from C arrive as `uint32_t` and are validated.
#![allow(non_camel_case_types)]

mod boundary;
mod config;
mod event;
mod logging;
mod loop_api;
mod session;
mod types;
mod version;
