//! HTTP proxies: which one a URL goes through (the configuration, else `https_proxy`,
//! `http_proxy` and `no_proxy` as curl reads them), and the CONNECT exchange that opens a
//! tunnel through it. Every connection (WebSocket, REST step, long-polling request) goes
//! through a tunnel, so TLS stays end to end.

use crate::engineio::codec::base64_encode;
use crate::error::{Error, ErrorCode, Result};
use crate::url::Url;

/// An HTTP proxy to tunnel through.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proxy {
    /// Proxy host.
    pub host: String,
    /// Proxy port (curl's 1080 when the URL has none).
    pub port: u16,
    /// `Proxy-Authorization` value (`Basic ...`), from the URL's user and password.
    pub authorization: Option<String>,
}

/// Where a session's connections go.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ProxySetting {
    /// `https_proxy` (for wss/https), `http_proxy` (for ws/http) and `no_proxy`, read
    /// when a connection starts.
    #[default]
    FromEnvironment,
    /// No proxy, whatever the environment says.
    Direct,
    /// This proxy (`http://[user:password@]host[:port]`) for every connection.
    Url(String),
}

fn invalid(why: &str) -> Error {
    Error::new(ErrorCode::InvalidParameter, format!("proxy: {why}"))
}

/// Decodes `%XX` escapes (user names and passwords in proxy URLs).
fn percent_decode(s: &str) -> Result<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3).ok_or_else(|| invalid("bad % escape"))?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| invalid("bad % escape"))?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| invalid("credentials are not UTF-8"))
}

impl Proxy {
    /// Parses `[http://][user:password@]host[:port][/]`.
    pub fn parse(url: &str) -> Result<Proxy> {
        let rest = url.trim();
        let rest = match rest.split_once("://") {
            Some(("http" | "HTTP", r)) => r,
            Some(_) => return Err(invalid("only http:// proxies are supported")),
            None => rest,
        };
        let rest = rest.trim_end_matches('/');
        let (userinfo, hostport) = match rest.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, rest),
        };
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || hostport.starts_with('[') => {
                (h, p.parse::<u16>().map_err(|_| invalid("bad port"))?)
            }
            _ => (hostport, 1080),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() || host.contains(['/', '?', '#', ' ']) {
            return Err(invalid("bad host"));
        }
        let authorization = match userinfo {
            Some(u) => {
                let (user, password) = u.split_once(':').unwrap_or((u, ""));
                let credentials =
                    format!("{}:{}", percent_decode(user)?, percent_decode(password)?);
                Some(format!("Basic {}", base64_encode(credentials.as_bytes())))
            }
            None => None,
        };
        Ok(Proxy { host: host.to_string(), port, authorization })
    }

    /// The CONNECT request for `host:port`.
    pub fn connect_request(&self, host: &str, port: u16) -> Vec<u8> {
        let authority =
            if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
        let mut r = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
        if let Some(a) = &self.authorization {
            r.push_str(&format!("Proxy-Authorization: {a}\r\n"));
        }
        r.push_str("\r\n");
        r.into_bytes()
    }
}

/// Whether `no_proxy` (comma-separated host names, domain suffixes, `*`) exempts `host`.
fn exempt(host: &str, no_proxy: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    no_proxy.split(',').map(str::trim).filter(|e| !e.is_empty()).any(|entry| {
        if entry == "*" {
            return true;
        }
        let entry = entry.split(':').next().unwrap_or(entry); // ports are ignored
        let entry = entry.trim_start_matches('.').to_ascii_lowercase();
        host == entry || host.ends_with(&format!(".{entry}"))
    })
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl ProxySetting {
    /// The proxy for a connection to `url`, if any.
    pub fn proxy_for(&self, url: &Url) -> Result<Option<Proxy>> {
        match self {
            ProxySetting::Direct => Ok(None),
            ProxySetting::Url(u) => Proxy::parse(u).map(Some),
            ProxySetting::FromEnvironment => {
                // Like curl: the lower-case names first; no upper-case HTTP_PROXY (CGI
                // programs get it from the request's Proxy header).
                let var = if url.scheme.is_tls() {
                    env("https_proxy").or_else(|| env("HTTPS_PROXY"))
                } else {
                    env("http_proxy")
                };
                let Some(proxy) = var else { return Ok(None) };
                let no_proxy = env("no_proxy").or_else(|| env("NO_PROXY")).unwrap_or_default();
                if exempt(&url.host, &no_proxy) {
                    return Ok(None);
                }
                Proxy::parse(&proxy).map(Some)
            }
        }
    }
}

/// Reads the proxy's answer to CONNECT once its head is complete: `Ok(true)` when the
/// tunnel is open, `Ok(false)` when more bytes are needed.
pub fn tunnel_answer(proxy: &Proxy, head: &[u8]) -> Result<bool> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    let (status, head_len) = match response.parse(head) {
        Ok(httparse::Status::Partial) => return Ok(false),
        Ok(httparse::Status::Complete(len)) => (response.code.unwrap_or(0), len),
        Err(e) => {
            return Err(Error::new(
                ErrorCode::Proxy,
                format!("the proxy {} answered CONNECT with a malformed response: {e}", proxy.host),
            ));
        }
    };
    let reason = response.reason.unwrap_or("");
    match status {
        // Nothing may follow a 2xx: the server has not been spoken to yet.
        200..=299 if head_len != head.len() => {
            Err(Error::new(ErrorCode::Proxy, "the proxy sent data after opening the tunnel"))
        }
        200..=299 => Ok(true),
        // 407 is the proxy's answer; tinyproxy 1.11 answers CONNECT with 401 instead.
        401 | 407 => Err(Error::new(
            ErrorCode::ProxyAuth,
            format!("the proxy {} wants other credentials ({status} {reason})", proxy.host),
        )),
        _ => Err(Error::new(
            ErrorCode::Proxy,
            format!("the proxy {} refused the tunnel ({status} {reason})", proxy.host),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_urls() {
        let p = Proxy::parse("http://us%40er:p%3Ass@proxy.local:3128/").unwrap();
        assert_eq!((p.host.as_str(), p.port), ("proxy.local", 3128));
        assert_eq!(p.authorization.as_deref(), Some("Basic dXNAZXI6cDpzcw=="));
        let p = Proxy::parse("10.0.0.1").unwrap();
        assert_eq!((p.host.as_str(), p.port, p.authorization), ("10.0.0.1", 1080, None));
        assert_eq!(Proxy::parse("[::1]:8080").unwrap().host, "::1");
        for bad in ["socks5://h:1", "http://h:port", "http://", "http://h/path?x"] {
            assert!(Proxy::parse(bad).is_err(), "{bad}");
        }
        let r = String::from_utf8(Proxy::parse("h:1").unwrap().connect_request("x.io", 443));
        assert_eq!(r.unwrap(), "CONNECT x.io:443 HTTP/1.1\r\nHost: x.io:443\r\n\r\n");
    }

    #[test]
    fn no_proxy_matching() {
        assert!(exempt("api.example.com", "localhost, .example.com"));
        assert!(exempt("example.com", "example.com:443"));
        assert!(!exempt("badexample.com", "example.com"));
        assert!(exempt("anything", "*"));
        assert!(!exempt("127.0.0.1", "localhost"));
    }

    #[test]
    fn tunnel_answers() {
        let p = Proxy::parse("h:1").unwrap();
        assert!(!tunnel_answer(&p, b"HTTP/1.1 200 Connection established\r\n").unwrap());
        assert!(tunnel_answer(&p, b"HTTP/1.1 200 Connection established\r\n\r\n").unwrap());
        let e = tunnel_answer(&p, b"HTTP/1.0 407 Proxy Authentication Required\r\n\r\n<html>");
        assert_eq!(e.unwrap_err().code, ErrorCode::ProxyAuth);
        let e = tunnel_answer(&p, b"HTTP/1.0 403 Filtered\r\n\r\n").unwrap_err();
        assert_eq!(e.code, ErrorCode::Proxy);
        assert!(e.message.contains("403"), "{}", e.message);
        assert_eq!(tunnel_answer(&p, b"SSH-2.0\r\n\r\n").unwrap_err().code, ErrorCode::Proxy);
    }
}
