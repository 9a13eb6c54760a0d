//! The opening handshake (RFC 6455 §4.1): request building and response validation.

use crate::config::SessionConfig;
use crate::error::{Error, ErrorCode, Result};
use crate::http::{Request, Response};
use crate::url::Url;

/// A prepared upgrade request and the key its answer must match.
pub struct Upgrade {
    /// The request to send.
    pub request: Request,
    /// The `Sec-WebSocket-Key` sent.
    pub key: String,
}

/// Builds the upgrade request for `url` with the session's headers, subprotocols and Origin.
pub fn request(url: &Url, config: &SessionConfig) -> Upgrade {
    let key = tungstenite::handshake::client::generate_key();
    let mut req = Request::get(url.clone())
        .header("Connection", "Upgrade")
        .header("Upgrade", "websocket")
        .header("Sec-WebSocket-Version", "13")
        .header("Sec-WebSocket-Key", &key);
    if !config.subprotocols.is_empty() {
        req = req.header("Sec-WebSocket-Protocol", &config.subprotocols.join(", "));
    }
    if let Some(origin) = &config.origin {
        req = req.header("Origin", origin);
    }
    for (n, v) in &config.headers {
        req = req.header(n, v);
    }
    if !req.has_header("User-Agent") {
        req = req.header("User-Agent", concat!("livefeed/", env!("CARGO_PKG_VERSION")));
    }
    Upgrade { request: req, key }
}

/// Checks a 101 answer. Returns the subprotocol the server chose, if any.
pub fn validate(response: &Response, key: &str, offered: &[String]) -> Result<Option<String>> {
    let bad = |why: String| Error::new(ErrorCode::WsHandshake, why);
    if response.status != 101 {
        let snippet: String = String::from_utf8_lossy(&response.body).chars().take(200).collect();
        // 401/403: the credentials (token, cookie) were refused; a reconnect will not help,
        // a fresh login may.
        let code = if matches!(response.status, 401 | 403) {
            ErrorCode::Auth
        } else {
            ErrorCode::HttpStatus
        };
        return Err(Error::new(
            code,
            format!(
                "upgrade refused: HTTP {} {} {}",
                response.status,
                response.reason,
                snippet.trim()
            ),
        ));
    }
    if !response.header_has_token("upgrade", "websocket") {
        return Err(bad("upgrade response lacks `Upgrade: websocket`".into()));
    }
    if !response.header_has_token("connection", "upgrade") {
        return Err(bad("upgrade response lacks `Connection: Upgrade`".into()));
    }
    let expected = tungstenite::handshake::derive_accept_key(key.as_bytes());
    if response.header("sec-websocket-accept") != Some(expected.as_str()) {
        return Err(bad("wrong Sec-WebSocket-Accept".into()));
    }
    if let Some(ext) = response.header("sec-websocket-extensions") {
        return Err(bad(format!("server chose extension `{ext}` that was not offered")));
    }
    match response.header("sec-websocket-protocol") {
        None => Ok(None),
        Some(p) if offered.iter().any(|o| o == p) => Ok(Some(p.to_string())),
        Some(p) => Err(bad(format!("server chose subprotocol `{p}` that was not offered"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(key: &str, extra: &[(&str, &str)]) -> Response {
        let mut headers = vec![
            ("Upgrade".to_string(), "websocket".to_string()),
            ("Connection".to_string(), "Upgrade".to_string()),
            (
                "Sec-WebSocket-Accept".to_string(),
                tungstenite::handshake::derive_accept_key(key.as_bytes()),
            ),
        ];
        headers.extend(extra.iter().map(|(n, v)| (n.to_string(), v.to_string())));
        Response { status: 101, headers, ..Default::default() }
    }

    #[test]
    fn accepts_a_correct_answer_and_checks_subprotocols() {
        let offered = vec!["a".to_string()];
        assert_eq!(validate(&answer("k", &[]), "k", &offered).unwrap(), None);
        assert_eq!(
            validate(&answer("k", &[("Sec-WebSocket-Protocol", "a")]), "k", &offered).unwrap(),
            Some("a".into())
        );
        assert_eq!(
            validate(&answer("k", &[("Sec-WebSocket-Protocol", "b")]), "k", &offered)
                .unwrap_err()
                .code,
            ErrorCode::WsHandshake
        );
    }

    #[test]
    fn refuses_wrong_accept_status_and_extensions() {
        assert_eq!(
            validate(&answer("other", &[]), "k", &[]).unwrap_err().code,
            ErrorCode::WsHandshake
        );
        let mut r = answer("k", &[]);
        r.status = 200;
        assert_eq!(validate(&r, "k", &[]).unwrap_err().code, ErrorCode::HttpStatus);
        let r = answer("k", &[("Sec-WebSocket-Extensions", "permessage-deflate")]);
        assert_eq!(validate(&r, "k", &[]).unwrap_err().code, ErrorCode::WsHandshake);
    }
}
