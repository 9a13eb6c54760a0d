//! `lf_config`: a session configuration built with setters (so options never break the ABI).

use super::boundary::{
    bytes_arg, guard, handle, handle_mut, opt_str_arg, result, str_arg, write_out,
};
use crate::config::{Overflow, Protocol, ProxySetting, SessionConfig};
use crate::error::{Error, ErrorCode};
use std::ffi::c_char;
use std::time::Duration;

/// A session configuration. Create with `lf_config_new`, set options, pass to
/// `lf_session_new` (which copies it), free with `lf_config_free`.
///
/// Thread safety: setters need exclusive access; a config may be read by
/// `lf_session_new` from several threads at once when nobody modifies it.
pub struct lf_config {
    pub(crate) inner: SessionConfig,
}

/// Which deadline `lf_config_set_timeout` sets.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum lf_timeout {
    /// Name resolution (default 10 s).
    Dns = 0,
    /// TCP connect over all addresses (default 10 s).
    Connect = 1,
    /// TLS handshake (default 10 s).
    Tls = 2,
    /// HTTP exchange or WebSocket upgrade; then again, once connected, the protocol's own
    /// handshake and login or subscription answer until the feed is open (default 10 s).
    Handshake = 3,
    /// Close handshake (default 5 s).
    Close = 4,
    /// Idle time before a keepalive ping (default 20 s; 0 disables keepalive).
    PingInterval = 5,
    /// Time after a ping without any data before the peer is declared dead (default 10 s).
    Pong = 6,
}

/// Which size limit `lf_config_set_limit` sets.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum lf_limit {
    /// Largest WebSocket frame accepted (default 16 MiB).
    MaxFrame = 0,
    /// Largest reassembled message accepted (default 16 MiB).
    MaxMessage = 1,
    /// Bytes waiting to be sent before sends report back-pressure (default 1 MiB).
    SendBuffer = 2,
    /// Largest HTTP response head (default 64 KiB).
    HttpHead = 3,
    /// Largest HTTP response body (default 8 MiB).
    HttpBody = 4,
    /// Most redirects followed (default 5).
    Redirects = 5,
    /// The first allocation for a WebSocket message that must be put together: one in
    /// fragments, or one cut by the end of a read (default 2 KiB). Socket reads go through
    /// one buffer per loop and whole messages are handed over from there, so an idle
    /// session keeps no read buffer at all.
    ReadBuffer = 6,
}

impl lf_timeout {
    fn from_u32(v: u32) -> Option<lf_timeout> {
        use lf_timeout::*;
        [Dns, Connect, Tls, Handshake, Close, PingInterval, Pong]
            .into_iter()
            .find(|t| *t as u32 == v)
    }
}

impl lf_limit {
    fn from_u32(v: u32) -> Option<lf_limit> {
        use lf_limit::*;
        [MaxFrame, MaxMessage, SendBuffer, HttpHead, HttpBody, Redirects, ReadBuffer]
            .into_iter()
            .find(|l| *l as u32 == v)
    }
}

fn invalid(what: &str) -> Error {
    Error::new(ErrorCode::InvalidParameter, what.to_string())
}

/// Creates a configuration with every default (protocol ws, verification on, keepalive on).
///
/// Parameters: `out` receives the new config on success; the caller owns it and frees it
/// with `lf_config_free`.
/// Returns: `LF_RESULT_OK`, `LF_RESULT_NULL_PARAMETER`.
/// Thread safety: any thread.
#[unsafe(no_mangle)]
pub extern "C" fn lf_config_new(out: *mut *mut lf_config) -> ErrorCode {
    result(|| {
        if out.is_null() {
            return Err(super::boundary::null("out"));
        }
        let cfg = Box::into_raw(Box::new(lf_config { inner: SessionConfig::new("") }));
        // SAFETY: `out` was checked non-NULL; the caller provides a writable pointer.
        unsafe { write_out(out, cfg, "out") }
    })
}

/// Frees a configuration. NULL is a no-op. Sessions created from it are unaffected.
///
/// Thread safety: any thread, but not concurrently with other calls on the same config.
#[unsafe(no_mangle)]
pub extern "C" fn lf_config_free(config: *mut lf_config) {
    guard(|| {
        if !config.is_null() {
            // SAFETY: created by `lf_config_new` and not freed before (caller contract).
            drop(unsafe { Box::from_raw(config) });
        }
    })
}

/// Runs a setter on a config handle.
fn set(
    config: *mut lf_config,
    f: impl FnOnce(&mut SessionConfig) -> crate::Result<()>,
) -> ErrorCode {
    result(|| {
        // SAFETY: a live config used exclusively by this call (caller contract).
        let cfg = unsafe { handle_mut(config, "config") }?;
        f(&mut cfg.inner)
    })
}

/// Sets the URL (ws://, wss://; http(s):// for protocols that bootstrap over HTTP).
/// Checked when the session is created.
///
/// Parameters: `url` NUL-terminated UTF-8, copied. Must not be NULL.
/// Returns: `LF_RESULT_OK`, `LF_RESULT_NULL_PARAMETER`, `LF_RESULT_INVALID_UTF8`.
#[unsafe(no_mangle)]
pub extern "C" fn lf_config_set_url(config: *mut lf_config, url: *const c_char) -> ErrorCode {
    // SAFETY: `url` is NULL or a NUL-terminated string (caller contract).
    set(config, |c| unsafe { str_arg(url, "url") }.map(|u| c.url = u.to_string()))
}

/// Sets the protocol (an `lf_protocol` value; default `LF_PROTOCOL_WEB_SOCKET`).
///
/// Returns: `LF_RESULT_OK`, `LF_RESULT_NULL_PARAMETER`, `LF_RESULT_INVALID_PARAMETER` for an
/// unknown value.
#[unsafe(no_mangle)]
pub extern "C" fn lf_config_set_protocol(config: *mut lf_config, protocol: u32) -> ErrorCode {
    set(config, |c| {
        c.protocol = Protocol::from_u32(protocol).ok_or_else(|| invalid("unknown protocol"))?;
        Ok(())
    })
}

/// Looks a protocol up by its lfcat name (`"ws"`, `"socketio"`, `"atmosphere"`, `"igtimi"`,
/// `"thethings"`, `"smartserver"`, `"deconz"`, `"navixy"`).
///
/// Parameters: `name` NUL-terminated; `out` receives the `lf_protocol` value on success.
/// Returns: `LF_RESULT_OK`, `LF_RESULT_NULL_PARAMETER`, `LF_RESULT_INVALID_PARAMETER` if unknown.
/// Thread safety: any thread.
#[unsafe(no_mangle)]
pub extern "C" fn lf_protocol_from_name(name: *const c_char, out: *mut Protocol) -> ErrorCode {
    result(|| {
        // SAFETY: NULL or NUL-terminated (caller contract).
        let name = unsafe { str_arg(name, "name") }?;
        let p = Protocol::from_name(name).ok_or_else(|| invalid("unknown protocol name"))?;
        // SAFETY: NULL or writable (caller contract).
        unsafe { write_out(out, p, "out") }
    })
}

/// Adds a header to the upgrade (and bootstrap) requests. Repeatable.
///
/// Parameters: `name`, `value` NUL-terminated UTF-8, copied; must not be NULL.
/// Returns: `LF_RESULT_OK`, `LF_RESULT_NULL_PARAMETER`, `LF_RESULT_INVALID_UTF8`,
/// `LF_RESULT_INVALID_PARAMETER` (not a header token, or CR/LF in the value).
#[unsafe(no_mangle)]
pub extern "C" fn lf_config_add_header(
    config: *mut lf_config,
    name: *const c_char,
    value: *const c_char,
) -> ErrorCode {
    set(config, |c| {
        // SAFETY: NULL or NUL-terminated strings (caller contract).
        let (n, v) = unsafe { (str_arg(name, "name")?, str_arg(value, "value")?) };
        c.add_header(n, v)
    })
}

/// Offers a WebSocket subprotocol (repeatable, in preference order). The one the server
/// picks is the payload of the `open` state event.
///
/// Returns: `LF_RESULT_OK`, `LF_RESULT_NULL_PARAMETER`, `LF_RESULT_INVALID_UTF8`,
/// `LF_RESULT_INVALID_PARAMETER` (empty or containing separators).
#[unsafe(no_mangle)]
pub extern "C" fn lf_config_add_subprotocol(
    config: *mut lf_config,
    subprotocol: *const c_char,
) -> ErrorCode {
    set(config, |c| {
        // SAFETY: NULL or NUL-terminated (caller contract).
        let p = unsafe { str_arg(subprotocol, "subprotocol") }?;
        if p.is_empty() || p.bytes().any(|b| !b.is_ascii_graphic() || b == b',') {
            return Err(invalid("invalid subprotocol"));
        }
        c.subprotocols.push(p.to_string());
        Ok(())
    })
}

/// Sets the `Origin` header of the upgrade request; NULL removes it.
///
/// Returns: `LF_RESULT_OK`, `LF_RESULT_NULL_PARAMETER` (config), `LF_RESULT_INVALID_UTF8`,
/// `LF_RESULT_INVALID_PARAMETER` (CR/LF).
#[unsafe(no_mangle)]
pub extern "C" fn lf_config_set_origin(config: *mut lf_config, origin: *const c_char) -> ErrorCode {
    set(config, |c| {
        // SAFETY: NULL or NUL-terminated (caller contract).
        let o = unsafe { opt_str_arg(origin, "origin") }?;
        if o.is_some_and(|o| o.contains(['\r', '\n'])) {
            return Err(invalid("invalid origin"));
        }
        c.origin = o.map(str::to_string);
        Ok(())
    })
}

/// Presets a cookie sent with every request of the session (cookies the servers set
/// are kept in the session's own jar as well).
///
/// Returns: `LF_RESULT_OK`, `LF_RESULT_NULL_PARAMETER`, `LF_RESULT_INVALID_UTF8`,
/// `LF_RESULT_INVALID_PARAMETER` (`;`, `=` in the name, CR/LF).
#[unsafe(no_mangle)]
pub extern "C" fn lf_config_add_cookie(
    config: *mut lf_config,
    name: *const c_char,
    value: *const c_char,
) -> ErrorCode {
    set(config, |c| {
        // SAFETY: NULL or NUL-terminated strings (caller contract).
        let (n, v) = unsafe { (str_arg(name, "name")?, str_arg(value, "value")?) };
        if n.is_empty()
            || n.contains([';', '=', ' '])
            || format!("{n}{v}").contains(['\r', '\n', ';'])
        {
            return Err(invalid("invalid cookie"));
        }
        c.cookies.push((n.to_string(), v.to_string()));
        Ok(())
    })
}

/// Adds trusted CA certificates from a PEM file (read now). The system trust store stays
/// trusted as well.
///
/// Returns: `LF_RESULT_OK`, `LF_RESULT_NULL_PARAMETER`, `LF_RESULT_INVALID_UTF8`,
/// `LF_RESULT_TLS_CONFIG` (unreadable file or no certificate in it).
#[unsafe(no_mangle)]
pub extern "C" fn lf_config_add_ca_file(config: *mut lf_config, path: *const c_char) -> ErrorCode {
    set(config, |c| {
        // SAFETY: NULL or NUL-terminated (caller contract).
        let path = unsafe { str_arg(path, "path") }?;
        let pem = std::fs::read(path).map_err(|e| {
            Error::new(ErrorCode::TlsConfig, format!("cannot read CA file {path}: {e}"))
        })?;
        if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
            return Err(Error::new(ErrorCode::TlsConfig, format!("no PEM certificate in {path}")));
        }
        c.tls.extra_ca_pem.push(pem);
        Ok(())
    })
}

/// Adds trusted CA certificates from PEM data in memory (copied).
///
/// Returns: `LF_RESULT_OK`, `LF_RESULT_NULL_PARAMETER`, `LF_RESULT_TLS_CONFIG` (no certificate).
#[unsafe(no_mangle)]
pub extern "C" fn lf_config_add_ca_pem(
    config: *mut lf_config,
    pem: *const u8,
    len: usize,
) -> ErrorCode {
    set(config, |c| {
        // SAFETY: NULL or `len` readable bytes (caller contract).
        let pem = unsafe { bytes_arg(pem, len, "pem") }?;
        if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
            return Err(Error::new(ErrorCode::TlsConfig, "no PEM certificate in the data"));
        }
        c.tls.extra_ca_pem.push(pem.to_vec());
        Ok(())
    })
}

/// Pins the server certificate: the first certificate of this PEM file (read now). With
/// one or more pins, a TLS server must present exactly one of the pinned certificates;
/// who signed it and which names it carries no longer matter (a gateway's self-signed
/// certificate, without turning verification off). Applies to every connection of the
/// session, REST steps included.
///
/// Returns: `LF_RESULT_OK`, `LF_RESULT_NULL_PARAMETER`, `LF_RESULT_INVALID_UTF8`,
/// `LF_RESULT_TLS_CONFIG` (unreadable file, no certificate in it).
#[unsafe(no_mangle)]
pub extern "C" fn lf_config_pin_certificate_file(
    config: *mut lf_config,
    path: *const c_char,
) -> ErrorCode {
    set(config, |c| {
        // SAFETY: NULL or NUL-terminated (caller contract).
        let path = unsafe { str_arg(path, "path") }?;
        let pem = std::fs::read(path).map_err(|e| {
            Error::new(ErrorCode::TlsConfig, format!("cannot read certificate file {path}: {e}"))
        })?;
        c.tls.pinned_der.push(crate::net::tls::pin_from_pem(&pem)?);
        Ok(())
    })
}

/// Pins the server certificate given as PEM data in memory (copied); see
/// `lf_config_pin_certificate_file`.
///
/// Returns: `LF_RESULT_OK`, `LF_RESULT_NULL_PARAMETER`, `LF_RESULT_TLS_CONFIG`.
#[unsafe(no_mangle)]
pub extern "C" fn lf_config_pin_certificate_pem(
    config: *mut lf_config,
    pem: *const u8,
    len: usize,
) -> ErrorCode {
    set(config, |c| {
        // SAFETY: NULL or `len` readable bytes (caller contract).
        let pem = unsafe { bytes_arg(pem, len, "pem") }?;
        c.tls.pinned_der.push(crate::net::tls::pin_from_pem(pem)?);
        Ok(())
    })
}

/// Sets the client certificate chain and its PKCS#8 private key, both PEM (copied).
/// Checked when the session is created.
///
/// Returns: `LF_RESULT_OK`, `LF_RESULT_NULL_PARAMETER`.
#[unsafe(no_mangle)]
pub extern "C" fn lf_config_set_client_cert_pem(
    config: *mut lf_config,
    cert: *const u8,
    cert_len: usize,
    key: *const u8,
    key_len: usize,
) -> ErrorCode {
    set(config, |c| {
        // SAFETY: NULL or readable for the given lengths (caller contract).
        let (cert, key) =
            unsafe { (bytes_arg(cert, cert_len, "cert")?, bytes_arg(key, key_len, "key")?) };
        c.tls.client_identity = Some((cert.to_vec(), key.to_vec()));
        Ok(())
    })
}

/// INSECURE: skips certificate and host name verification when `insecure` is true.
/// Every connection made this way logs a warning. For test rigs only.
///
/// Returns: `LF_RESULT_OK`, `LF_RESULT_NULL_PARAMETER`.
#[unsafe(no_mangle)]
pub extern "C" fn lf_config_set_insecure(config: *mut lf_config, insecure: bool) -> ErrorCode {
    set(config, |c| {
        c.tls.insecure = insecure;
        Ok(())
    })
}

/// Sets a deadline or keepalive period in milliseconds (`which`: an `lf_timeout` value).
/// Deadlines must be at least 1 ms; keepalive periods may be 0 (off).
///
/// Returns: `LF_RESULT_OK`, `LF_RESULT_NULL_PARAMETER`, `LF_RESULT_INVALID_PARAMETER`.
#[unsafe(no_mangle)]
pub extern "C" fn lf_config_set_timeout(config: *mut lf_config, which: u32, ms: u32) -> ErrorCode {
    set(config, |c| {
        let d = Duration::from_millis(ms.into());
        let t = &mut c.timeouts;
        let which = lf_timeout::from_u32(which).ok_or_else(|| invalid("unknown timeout"))?;
        let slot = match which {
            lf_timeout::Dns => &mut t.dns,
            lf_timeout::Connect => &mut t.connect,
            lf_timeout::Tls => &mut t.tls,
            lf_timeout::Handshake => &mut t.handshake,
            lf_timeout::Close => &mut t.close,
            lf_timeout::PingInterval => &mut t.ping_interval,
            lf_timeout::Pong => &mut t.pong_timeout,
        };
        if ms == 0 && which != lf_timeout::PingInterval {
            return Err(invalid("a deadline must be at least 1 ms"));
        }
        *slot = d;
        Ok(())
    })
}

/// Sets a size limit (`which`: an `lf_limit` value). Sizes must be at least 1 (redirects: 0
/// allowed); frame and message limits at most 1 GiB (a peer's frame header announces its
/// length, and memory for it is reserved before the payload arrives).
///
/// Returns: `LF_RESULT_OK`, `LF_RESULT_NULL_PARAMETER`, `LF_RESULT_INVALID_PARAMETER`.
#[unsafe(no_mangle)]
pub extern "C" fn lf_config_set_limit(
    config: *mut lf_config,
    which: u32,
    value: usize,
) -> ErrorCode {
    set(config, |c| {
        let l = &mut c.limits;
        let which = lf_limit::from_u32(which).ok_or_else(|| invalid("unknown limit"))?;
        let slot = match which {
            lf_limit::MaxFrame => &mut l.max_frame,
            lf_limit::MaxMessage => &mut l.max_message,
            lf_limit::SendBuffer => &mut l.max_send_buffer,
            lf_limit::HttpHead => &mut l.max_http_head,
            lf_limit::HttpBody => &mut l.max_http_body,
            lf_limit::Redirects => &mut l.max_redirects,
            lf_limit::ReadBuffer => &mut l.read_buffer,
        };
        if value == 0 && which != lf_limit::Redirects {
            return Err(invalid("a size limit must be at least 1"));
        }
        let framing = matches!(which, lf_limit::MaxFrame | lf_limit::MaxMessage);
        if framing && value > crate::config::MAX_MESSAGE_LIMIT {
            return Err(invalid("frame and message limits are at most 1 GiB"));
        }
        *slot = value;
        Ok(())
    })
}

/// Turns reconnecting on (`min_ms` ≥ 1) or off (all three 0). After a connection ends
/// without the host asking, the session waits a delay drawn between `min_ms` and a cap that
/// doubles from `min_ms` up to `max_ms` (full jitter), then connects again, re-running the
/// protocol's bootstrap and subscriptions. `max_attempts` failed attempts in a row end the
/// session (0: no limit). While it waits the state is `LF_STATE_RECONNECTING`, announced by
/// a STATE event whose text is `{"attempt":N,"delay_ms":D,"reason":"..."}`.
///
/// Returns: `LF_RESULT_OK`, `LF_RESULT_NULL_PARAMETER`, `LF_RESULT_INVALID_PARAMETER`
/// (`min_ms` 0 with other values, or `max_ms` below `min_ms`).
#[unsafe(no_mangle)]
pub extern "C" fn lf_config_set_reconnect(
    config: *mut lf_config,
    min_ms: u32,
    max_ms: u32,
    max_attempts: u32,
) -> ErrorCode {
    set(config, |c| {
        if min_ms == 0 && max_ms == 0 && max_attempts == 0 {
            c.reconnect.enabled = false;
            return Ok(());
        }
        if min_ms == 0 || max_ms < min_ms {
            return Err(invalid("reconnect delays need 1 <= min_ms <= max_ms"));
        }
        let r = &mut c.reconnect;
        r.enabled = true;
        r.min_delay = Duration::from_millis(min_ms.into());
        r.max_delay = Duration::from_millis(max_ms.into());
        r.max_attempts = max_attempts;
        Ok(())
    })
}

/// Sets the outbox: sends made while the session is not open (connecting, waiting to
/// reconnect) wait in it, at most `max_messages` (default 1024; 0 keeps none), and go out
/// once, in order, when it opens. `overflow` (an `lf_overflow` value) says what a send does
/// when it is full: `LF_OVERFLOW_REJECT` (default: it fails with `LF_RESULT_BACKPRESSURE`),
/// `LF_OVERFLOW_DROP_OLDEST` or `LF_OVERFLOW_DROP_NEWEST`. Every dropped send is counted
/// (`lf_stats.dropped`) and reported with an `LF_KIND_DROPPED` event carrying it; sends
/// still waiting when the session ends are reported the same way. The send buffer's byte
/// limit (`LF_LIMIT_SEND_BUFFER`) applies as well.
///
/// Returns: `LF_RESULT_OK`, `LF_RESULT_NULL_PARAMETER`, `LF_RESULT_INVALID_PARAMETER`.
#[unsafe(no_mangle)]
pub extern "C" fn lf_config_set_outbox(
    config: *mut lf_config,
    max_messages: usize,
    overflow: u32,
) -> ErrorCode {
    set(config, |c| {
        c.outbox.overflow = match overflow {
            0 => Overflow::Reject,
            1 => Overflow::DropOldest,
            2 => Overflow::DropNewest,
            _ => return Err(invalid("unknown overflow policy")),
        };
        c.outbox.max_messages = max_messages;
        Ok(())
    })
}

/// Chooses the HTTP proxy every connection of the session tunnels through (CONNECT, for
/// ws, wss and the HTTP steps alike): `http://[user:password@]host[:port]` (port 1080
/// when absent; user and password percent-encoded, sent as basic auth), `""` for none, or
/// NULL for the default: `https_proxy` (wss/https) or `http_proxy` (ws/http), minus the
/// hosts in `no_proxy`, read when each connection starts. A proxy answering 407 fails the
/// session with `LF_RESULT_PROXY_AUTH`, any other refusal with `LF_RESULT_PROXY`.
///
/// Parameters: `proxy` NUL-terminated UTF-8 or NULL, copied.
/// Returns: `LF_RESULT_OK`, `LF_RESULT_NULL_PARAMETER` (config), `LF_RESULT_INVALID_PARAMETER`
/// (not an http:// proxy URL), `LF_RESULT_INVALID_UTF8`.
#[unsafe(no_mangle)]
pub extern "C" fn lf_config_set_proxy(config: *mut lf_config, proxy: *const c_char) -> ErrorCode {
    set(config, |c| {
        c.proxy = if proxy.is_null() {
            ProxySetting::FromEnvironment
        } else {
            // SAFETY: a non-NULL NUL-terminated string (caller contract).
            let url = unsafe { str_arg(proxy, "proxy")? };
            if url.is_empty() {
                ProxySetting::Direct
            } else {
                crate::net::Proxy::parse(url)?;
                ProxySetting::Url(url.to_string())
            }
        };
        Ok(())
    })
}

/// Sets a protocol option, appending to earlier values of the same key. Common keys:
/// `token`, `user`, `password`, `apikey`, `device` (repeatable), `subscribe` (repeatable).
/// Each protocol's own keys are listed in its guide under docs/ (Socket.IO: `namespace`,
/// `auth`, `path`, `query`, `eio`, `transport`; Atmosphere and Navixy: `transport`,
/// `fallback`, `track_message_length`, `heartbeat_server`, `watchdog_ms`, `tracking_id`,
/// `rate_limit`, `format`, `sensor_type`; Igtimi: `token_in`, `binary`, `heartbeat_ms`,
/// `watchdog_ms`, `timestamp_timeout_ms`; deCONZ: `tls`, `snapshot`, `devicetype`,
/// `username`; SmartServer: `datalog` and those in docs/smartserver.md). Unknown keys are
/// kept and ignored; a protocol refuses bad values of its keys when the session opens.
///
/// Parameters: `key`, `value` NUL-terminated UTF-8, copied. Values may be secrets: they
/// are never logged.
/// Returns: `LF_RESULT_OK`, `LF_RESULT_NULL_PARAMETER`, `LF_RESULT_INVALID_UTF8`.
#[unsafe(no_mangle)]
pub extern "C" fn lf_config_set_option(
    config: *mut lf_config,
    key: *const c_char,
    value: *const c_char,
) -> ErrorCode {
    set(config, |c| {
        // SAFETY: NULL or NUL-terminated strings (caller contract).
        let (k, v) = unsafe { (str_arg(key, "key")?, str_arg(value, "value")?) };
        c.options.push((k.to_string(), v.to_string()));
        Ok(())
    })
}

/// Borrows the Rust configuration behind a handle.
///
/// # Safety
/// `config` is NULL or a live config handle.
pub(crate) unsafe fn config_ref<'a>(config: *const lf_config) -> crate::Result<&'a SessionConfig> {
    // SAFETY: forwarded contract.
    unsafe { handle(config, "config") }.map(|c| &c.inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A config handle, freed at the end of `f`.
    fn with_config(f: impl FnOnce(*mut lf_config)) {
        let mut c = std::ptr::null_mut();
        assert_eq!(lf_config_new(&mut c), ErrorCode::Ok);
        f(c);
        lf_config_free(c);
    }

    /// What a live handle from `with_config` holds now.
    fn settings<'a>(c: *mut lf_config) -> &'a SessionConfig {
        // SAFETY: `c` comes from `with_config` and is live for the caller's closure.
        unsafe { config_ref(c) }.expect("a live config handle")
    }

    #[test]
    fn reconnect_outbox_proxy_and_pin_setters_refuse_bad_values_and_keep_good_ones() {
        with_config(|c| {
            assert_eq!(lf_config_set_reconnect(c, 0, 10, 0), ErrorCode::InvalidParameter);
            assert_eq!(lf_config_set_reconnect(c, 10, 5, 0), ErrorCode::InvalidParameter);
            assert_eq!(lf_config_set_reconnect(c, 10, 50, 3), ErrorCode::Ok);
            let r = &settings(c).reconnect;
            assert_eq!(
                (r.enabled, r.max_delay, r.max_attempts),
                (true, Duration::from_millis(50), 3)
            );
            assert_eq!(lf_config_set_reconnect(c, 0, 0, 0), ErrorCode::Ok);
            assert!(!settings(c).reconnect.enabled, "all zeros: off");

            assert_eq!(lf_config_set_outbox(c, 10, 3), ErrorCode::InvalidParameter);
            assert_eq!(lf_config_set_outbox(c, 10, 1), ErrorCode::Ok);
            let o = &settings(c).outbox;
            assert_eq!((o.max_messages, o.overflow), (10, Overflow::DropOldest));

            assert_eq!(
                lf_config_set_proxy(c, c"socks5://h:1".as_ptr()),
                ErrorCode::InvalidParameter
            );
            assert_eq!(lf_config_set_proxy(c, c"".as_ptr()), ErrorCode::Ok);
            assert_eq!(settings(c).proxy, ProxySetting::Direct);
            assert_eq!(lf_config_set_proxy(c, std::ptr::null()), ErrorCode::Ok);
            assert_eq!(settings(c).proxy, ProxySetting::FromEnvironment);

            let garbage = b"not a certificate";
            let pin = lf_config_pin_certificate_pem(c, garbage.as_ptr(), garbage.len());
            assert_eq!(
                pin,
                if cfg!(feature = "tls") { ErrorCode::TlsConfig } else { ErrorCode::NotSupported }
            );
            let missing = lf_config_pin_certificate_file(c, c"/nonexistent/cert.pem".as_ptr());
            assert_eq!(missing, ErrorCode::TlsConfig);

            let too_big = crate::config::MAX_MESSAGE_LIMIT + 1;
            assert_eq!(lf_config_set_limit(c, 0, too_big), ErrorCode::InvalidParameter);
        });
        assert_eq!(lf_config_set_outbox(std::ptr::null_mut(), 1, 0), ErrorCode::NullParameter);
    }
}
