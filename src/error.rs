//! Error codes shared by the Rust API and the C ABI.
//!
//! Codes are grouped by subsystem and never renumbered; a retired code stays
//! reserved. The C enum `lf_result` mirrors [`ErrorCode`] value for value.

use std::fmt;

/// Why an operation failed. `Ok` (0) exists so the C ABI can use the same values.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// Success.
    Ok = 0,
    /// A required pointer or argument was missing.
    NullParameter = 1,
    /// An argument was out of range or malformed (bad URL, unknown enum value).
    InvalidParameter = 2,
    /// A string was not valid UTF-8.
    InvalidUtf8 = 3,
    /// The call is not allowed in the current state (for example from inside a callback).
    WrongState = 4,
    /// The feature or protocol is not available in this build or not implemented yet.
    NotSupported = 5,
    /// The session's send buffer is full; wait for a `WRITABLE` event and retry.
    Backpressure = 6,
    /// The session or loop is closed.
    Closed = 7,
    /// A JSON lookup found nothing at that pointer.
    NotFound = 8,
    /// A JSON lookup found a value of another type.
    TypeMismatch = 9,
    /// A panic was caught at the C boundary; the object should be freed.
    Panic = 99,
    /// The host name could not be resolved.
    Dns = 100,
    /// Name resolution did not finish before its deadline.
    DnsTimeout = 101,
    /// Every address refused or was unreachable.
    Connect = 102,
    /// The TCP connection was not established before its deadline.
    ConnectTimeout = 103,
    /// A socket read or write failed, or the peer reset the connection.
    Io = 104,
    /// The peer stopped answering keepalives (dead peer).
    PeerTimeout = 105,
    /// A protocol phase (handshake, close, reply) did not finish before its deadline.
    Timeout = 106,
    /// The HTTP proxy refused or failed the tunnel (any answer to CONNECT but 2xx and 407).
    Proxy = 107,
    /// The HTTP proxy wants other credentials (407, or 401 from proxies that answer so).
    ProxyAuth = 108,
    /// The TLS handshake failed.
    Tls = 200,
    /// The server certificate was rejected (unknown CA, expired, wrong host name).
    TlsCertificate = 201,
    /// The TLS configuration is invalid (unreadable CA file, bad PEM, bad client key).
    TlsConfig = 202,
    /// The HTTP response was malformed.
    HttpMalformed = 300,
    /// The HTTP status was not the one expected.
    HttpStatus = 301,
    /// The HTTP response exceeded a size limit.
    HttpTooLarge = 302,
    /// Too many HTTP redirects.
    HttpRedirects = 303,
    /// The WebSocket upgrade response was invalid (missing Upgrade, wrong accept key, ...).
    WsHandshake = 400,
    /// The peer violated RFC 6455.
    WsProtocol = 401,
    /// A text message was not valid UTF-8.
    WsInvalidUtf8 = 402,
    /// A frame or message exceeded the configured size limit.
    WsTooLarge = 403,
    /// The connection ended without a close handshake.
    WsAbnormalClose = 404,
    /// A higher-level protocol (Socket.IO, Atmosphere, vendor) was violated.
    Protocol = 500,
    /// Authentication or authorization was refused.
    Auth = 600,
}

impl ErrorCode {
    /// Every code, in numeric order.
    pub const ALL: &'static [ErrorCode] = &[
        Self::Ok,
        Self::NullParameter,
        Self::InvalidParameter,
        Self::InvalidUtf8,
        Self::WrongState,
        Self::NotSupported,
        Self::Backpressure,
        Self::Closed,
        Self::NotFound,
        Self::TypeMismatch,
        Self::Panic,
        Self::Dns,
        Self::DnsTimeout,
        Self::Connect,
        Self::ConnectTimeout,
        Self::Io,
        Self::PeerTimeout,
        Self::Timeout,
        Self::Proxy,
        Self::ProxyAuth,
        Self::Tls,
        Self::TlsCertificate,
        Self::TlsConfig,
        Self::HttpMalformed,
        Self::HttpStatus,
        Self::HttpTooLarge,
        Self::HttpRedirects,
        Self::WsHandshake,
        Self::WsProtocol,
        Self::WsInvalidUtf8,
        Self::WsTooLarge,
        Self::WsAbnormalClose,
        Self::Protocol,
        Self::Auth,
    ];

    /// The code for a raw value, if it is one.
    pub fn from_u32(value: u32) -> Option<ErrorCode> {
        Self::ALL.iter().copied().find(|c| *c as u32 == value)
    }

    /// The C name of the code, such as `"LF_RESULT_TIMEOUT"`.
    pub fn name(self) -> &'static str {
        let n = self.name_nul();
        &n[..n.len() - 1]
    }

    /// The name with a trailing NUL, for C (static, no allocation).
    pub(crate) fn name_nul(self) -> &'static str {
        match self {
            Self::Ok => "LF_RESULT_OK\0",
            Self::NullParameter => "LF_RESULT_NULL_PARAMETER\0",
            Self::InvalidParameter => "LF_RESULT_INVALID_PARAMETER\0",
            Self::InvalidUtf8 => "LF_RESULT_INVALID_UTF8\0",
            Self::WrongState => "LF_RESULT_WRONG_STATE\0",
            Self::NotSupported => "LF_RESULT_NOT_SUPPORTED\0",
            Self::Backpressure => "LF_RESULT_BACKPRESSURE\0",
            Self::Closed => "LF_RESULT_CLOSED\0",
            Self::NotFound => "LF_RESULT_NOT_FOUND\0",
            Self::TypeMismatch => "LF_RESULT_TYPE_MISMATCH\0",
            Self::Panic => "LF_RESULT_PANIC\0",
            Self::Proxy => "LF_RESULT_PROXY\0",
            Self::ProxyAuth => "LF_RESULT_PROXY_AUTH\0",
            Self::Dns => "LF_RESULT_DNS\0",
            Self::DnsTimeout => "LF_RESULT_DNS_TIMEOUT\0",
            Self::Connect => "LF_RESULT_CONNECT\0",
            Self::ConnectTimeout => "LF_RESULT_CONNECT_TIMEOUT\0",
            Self::Io => "LF_RESULT_IO\0",
            Self::PeerTimeout => "LF_RESULT_PEER_TIMEOUT\0",
            Self::Timeout => "LF_RESULT_TIMEOUT\0",
            Self::Tls => "LF_RESULT_TLS\0",
            Self::TlsCertificate => "LF_RESULT_TLS_CERTIFICATE\0",
            Self::TlsConfig => "LF_RESULT_TLS_CONFIG\0",
            Self::HttpMalformed => "LF_RESULT_HTTP_MALFORMED\0",
            Self::HttpStatus => "LF_RESULT_HTTP_STATUS\0",
            Self::HttpTooLarge => "LF_RESULT_HTTP_TOO_LARGE\0",
            Self::HttpRedirects => "LF_RESULT_HTTP_REDIRECTS\0",
            Self::WsHandshake => "LF_RESULT_WS_HANDSHAKE\0",
            Self::WsProtocol => "LF_RESULT_WS_PROTOCOL\0",
            Self::WsInvalidUtf8 => "LF_RESULT_WS_INVALID_UTF8\0",
            Self::WsTooLarge => "LF_RESULT_WS_TOO_LARGE\0",
            Self::WsAbnormalClose => "LF_RESULT_WS_ABNORMAL_CLOSE\0",
            Self::Protocol => "LF_RESULT_PROTOCOL\0",
            Self::Auth => "LF_RESULT_AUTH\0",
        }
    }
}

/// An error: a stable code plus a human-readable message (never containing secrets).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    /// The stable code.
    pub code: ErrorCode,
    /// What happened, for people.
    pub message: String,
}

impl Error {
    /// An error with a code and a message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Error {
        Error { code, message: message.into() }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.name(), self.message)
    }
}

impl std::error::Error for Error {}

/// Result with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_names_are_unique() {
        let mut names = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::from_u32(*code as u32), Some(*code));
            assert!(names.insert(code.name()), "duplicate name {}", code.name());
        }
        assert_eq!(ErrorCode::from_u32(12345), None);
    }
}
