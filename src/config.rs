//! Session configuration: what to connect to and how, with defaults a gateway can ship with.

use crate::error::{Error, ErrorCode, Result};
pub use crate::net::proxy::ProxySetting;
use std::time::Duration;

/// The protocol a session speaks on top of its transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Protocol {
    /// Plain WebSocket (RFC 6455).
    WebSocket = 0,
    /// Socket.IO over Engine.IO.
    SocketIo = 1,
    /// The Atmosphere protocol.
    Atmosphere = 2,
    /// Igtimi live data.
    Igtimi = 3,
    /// thethings.io real-time API.
    TheThings = 4,
    /// SmartServer IoT IAP/WS.
    SmartServer = 5,
    /// deCONZ WebSocket events.
    Deconz = 6,
    /// Navixy live tracking.
    Navixy = 7,
}

impl Protocol {
    /// Every protocol, in numeric order.
    pub const ALL: &'static [Protocol] = &[
        Self::WebSocket,
        Self::SocketIo,
        Self::Atmosphere,
        Self::Igtimi,
        Self::TheThings,
        Self::SmartServer,
        Self::Deconz,
        Self::Navixy,
    ];

    /// The short name used by lfcat and `lf_protocol_from_name`.
    pub fn name(self) -> &'static str {
        match self {
            Self::WebSocket => "ws",
            Self::SocketIo => "socketio",
            Self::Atmosphere => "atmosphere",
            Self::Igtimi => "igtimi",
            Self::TheThings => "thethings",
            Self::SmartServer => "smartserver",
            Self::Deconz => "deconz",
            Self::Navixy => "navixy",
        }
    }

    /// Whether sessions of this protocol take subscriptions (`Session::subscribe`).
    pub fn subscribes(self) -> bool {
        matches!(self, Self::TheThings | Self::Navixy | Self::SmartServer | Self::Igtimi)
    }

    /// Looks a protocol up by its short name.
    pub fn from_name(name: &str) -> Option<Protocol> {
        Self::ALL.iter().copied().find(|p| p.name() == name)
    }

    /// Looks a protocol up by its numeric value.
    pub fn from_u32(value: u32) -> Option<Protocol> {
        Self::ALL.iter().copied().find(|p| *p as u32 == value)
    }
}

/// Deadlines and keepalive periods. A zero keepalive period disables it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// Name resolution.
    pub dns: Duration,
    /// TCP connect, for all addresses together.
    pub connect: Duration,
    /// TLS handshake.
    pub tls: Duration,
    /// HTTP request/response or WebSocket upgrade exchange.
    pub handshake: Duration,
    /// Waiting for the peer's close frame after ours.
    pub close: Duration,
    /// Idle time after which the client sends a ping (0: never).
    pub ping_interval: Duration,
    /// Time without any data after a ping before the peer is declared dead.
    pub pong_timeout: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            dns: Duration::from_secs(10),
            connect: Duration::from_secs(10),
            tls: Duration::from_secs(10),
            handshake: Duration::from_secs(10),
            close: Duration::from_secs(5),
            ping_interval: Duration::from_secs(20),
            pong_timeout: Duration::from_secs(10),
        }
    }
}

/// The largest frame or message limit honoured: a message is held whole in memory before
/// it is handed over, so a larger limit would let one peer make the process ask for more
/// memory than exists (an abort, not an error).
pub const MAX_MESSAGE_LIMIT: usize = 1 << 30;

/// Size limits. Every buffer the library keeps is bounded by one of these.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest WebSocket frame accepted.
    pub max_frame: usize,
    /// Largest reassembled WebSocket message accepted.
    pub max_message: usize,
    /// Bytes that may wait to be sent before `send` reports back-pressure.
    pub max_send_buffer: usize,
    /// Largest HTTP response head (status line and headers).
    pub max_http_head: usize,
    /// Largest HTTP response body.
    pub max_http_body: usize,
    /// Most redirects followed by one HTTP exchange.
    pub max_redirects: usize,
    /// The first allocation for a WebSocket message that must be put together
    /// (fragmented, or cut by a read); whole messages are handed over from the loop's
    /// shared read chunk.
    pub read_buffer: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame: 16 << 20,
            max_message: 16 << 20,
            max_send_buffer: 1 << 20,
            max_http_head: 64 << 10,
            max_http_body: 8 << 20,
            max_redirects: 5,
            read_buffer: 2 << 10,
        }
    }
}

/// When and how a session reconnects after its connection ends without the host asking.
///
/// Delays grow exponentially from `min_delay` to `max_delay` with full jitter (each delay is
/// drawn uniformly between `min_delay` and the current cap), so a fleet of gateways does
/// not reconnect in lockstep after an outage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reconnect {
    /// Reconnect at all (off by default: the session ends on the first failure).
    pub enabled: bool,
    /// Shortest delay before an attempt.
    pub min_delay: Duration,
    /// Longest delay before an attempt.
    pub max_delay: Duration,
    /// Attempts in a row before giving up (0: no limit).
    pub max_attempts: u32,
    /// A connection open this long resets the backoff to `min_delay`.
    pub stable_after: Duration,
}

impl Default for Reconnect {
    fn default() -> Self {
        Reconnect {
            enabled: false,
            min_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_attempts: 0,
            stable_after: Duration::from_secs(30),
        }
    }
}

impl Reconnect {
    /// Reconnecting on, with these delays and no attempt limit.
    pub fn with_delays(min_delay: Duration, max_delay: Duration) -> Reconnect {
        Reconnect { enabled: true, min_delay, max_delay, ..Reconnect::default() }
    }
}

/// What happens to a host send when the outbox (sends waiting for the session to be open)
/// is full.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(u32)]
pub enum Overflow {
    /// The send fails with `Backpressure`.
    #[default]
    Reject = 0,
    /// The oldest waiting send is dropped to make room.
    DropOldest = 1,
    /// The new send is dropped.
    DropNewest = 2,
}

/// The outbox: host sends made while the session is not open wait here and go out once,
/// in order, when it is. Every drop is counted and reported with a `Dropped` event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outbox {
    /// Most sends that may wait (the send buffer's byte limit applies as well).
    pub max_messages: usize,
    /// What a send does when the outbox is full.
    pub overflow: Overflow,
}

impl Default for Outbox {
    fn default() -> Self {
        Outbox { max_messages: 1024, overflow: Overflow::Reject }
    }
}

/// TLS settings. Verification against the system trust store is on by default.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct TlsOptions {
    /// Extra trusted CA certificates, PEM.
    pub extra_ca_pem: Vec<Vec<u8>>,
    /// Client certificate chain and PKCS#8 private key, PEM.
    pub client_identity: Option<(Vec<u8>, Vec<u8>)>,
    /// Skip certificate and host name verification (logs a warning on every connect).
    pub insecure: bool,
    /// Pinned server certificates (DER): when any is set, the server must present one of
    /// them, whoever signed it and whatever names it carries (a gateway's self-signed
    /// certificate). Chain and host name checks are replaced by this exact match.
    pub pinned_der: Vec<Vec<u8>>,
}

/// Everything a session needs to know. Cloned into the session when it is opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionConfig {
    /// The URL to connect to.
    pub url: String,
    /// The protocol spoken on it.
    pub protocol: Protocol,
    /// Extra request headers for the upgrade (and bootstrap) requests.
    pub headers: Vec<(String, String)>,
    /// WebSocket subprotocols offered, in preference order.
    pub subprotocols: Vec<String>,
    /// `Origin` header for the upgrade request.
    pub origin: Option<String>,
    /// Cookies sent from the start, before any `Set-Cookie` arrives.
    pub cookies: Vec<(String, String)>,
    /// TLS settings.
    pub tls: TlsOptions,
    /// Deadlines and keepalive.
    pub timeouts: Timeouts,
    /// Size limits.
    pub limits: Limits,
    /// Reconnect policy.
    pub reconnect: Reconnect,
    /// HTTP proxy (default: from `https_proxy`, `http_proxy`, `no_proxy`).
    pub proxy: ProxySetting,
    /// Sends made while not open.
    pub outbox: Outbox,
    /// Protocol-specific options (`token`, `user`, `device`, `subscribe`, ...), in the order set.
    pub options: Vec<(String, String)>,
}

impl SessionConfig {
    /// A WebSocket configuration for `url` with every default.
    pub fn new(url: impl Into<String>) -> SessionConfig {
        SessionConfig {
            url: url.into(),
            protocol: Protocol::WebSocket,
            headers: Vec::new(),
            subprotocols: Vec::new(),
            origin: None,
            cookies: Vec::new(),
            tls: TlsOptions::default(),
            timeouts: Timeouts::default(),
            limits: Limits::default(),
            reconnect: Reconnect::default(),
            proxy: ProxySetting::default(),
            outbox: Outbox::default(),
            options: Vec::new(),
        }
    }

    /// Adds a request header after checking it cannot break the request framing.
    pub fn add_header(&mut self, name: &str, value: &str) -> Result<()> {
        let token_ok = !name.is_empty()
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if !token_ok || value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
            return Err(Error::new(ErrorCode::InvalidParameter, "invalid header name or value"));
        }
        self.headers.push((name.to_string(), value.trim().to_string()));
        Ok(())
    }

    /// The values of a protocol option, in the order they were set.
    pub fn option_values<'a, 'k>(
        &'a self,
        key: &'k str,
    ) -> impl Iterator<Item = &'a str> + use<'a, 'k> {
        self.options.iter().filter(move |(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// The last value of a protocol option.
    pub fn option(&self, key: &str) -> Option<&str> {
        self.option_values(key).last()
    }

    /// A yes/no option (`true`, `1`, `yes`, `on` / `false`, `0`, `no`, `off`); `None` when
    /// unset, `InvalidParameter` for anything else.
    pub fn option_flag(&self, key: &str) -> Result<Option<bool>> {
        match self.option(key).map(str::trim) {
            None => Ok(None),
            Some("true" | "1" | "yes" | "on") => Ok(Some(true)),
            Some("false" | "0" | "no" | "off") => Ok(Some(false)),
            Some(v) => Err(Error::new(
                ErrorCode::InvalidParameter,
                format!("option `{key}` must be true or false, not {v:?}"),
            )),
        }
    }

    /// A whole-number option; `None` when unset, `InvalidParameter` when not a number.
    pub fn option_number(&self, key: &str) -> Result<Option<u64>> {
        self.option(key)
            .map(|v| {
                v.trim().parse::<u64>().map_err(|_| {
                    Error::new(
                        ErrorCode::InvalidParameter,
                        format!("option `{key}` must be a whole number, not {v:?}"),
                    )
                })
            })
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_and_number_options() {
        let mut c = SessionConfig::new("ws://h/");
        assert_eq!(c.option_flag("tls").unwrap(), None);
        for (v, want) in [("yes", true), ("on", true), ("0", false), (" false ", false)] {
            c.options = vec![("tls".into(), v.into())];
            assert_eq!(c.option_flag("tls").unwrap(), Some(want), "{v}");
        }
        c.options = vec![("tls".into(), "maybe".into()), ("n".into(), "12x".into())];
        assert_eq!(c.option_flag("tls").unwrap_err().code, ErrorCode::InvalidParameter);
        assert_eq!(c.option_number("n").unwrap_err().code, ErrorCode::InvalidParameter);
        c.options.push(("n".into(), " 42".into()));
        assert_eq!(c.option_number("n").unwrap(), Some(42), "the last value counts");
    }

    #[test]
    fn header_injection_is_refused() {
        let mut c = SessionConfig::new("ws://h/");
        assert!(c.add_header("X-Ok", "v").is_ok());
        assert!(c.add_header("X-Bad", "v\r\nInjected: 1").is_err());
        assert!(c.add_header("Bad Name", "v").is_err());
        assert!(c.add_header("", "v").is_err());
    }

    #[test]
    fn protocol_names_round_trip() {
        for p in Protocol::ALL {
            assert_eq!(Protocol::from_name(p.name()), Some(*p));
            assert_eq!(Protocol::from_u32(*p as u32), Some(*p));
        }
    }
}
