//! The small part of URL syntax a feed client needs: scheme, host, port and request target.

use crate::error::{Error, ErrorCode, Result};
use std::fmt;

/// URL schemes livefeed connects to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// `ws://`
    Ws,
    /// `wss://`
    Wss,
    /// `http://`
    Http,
    /// `https://`
    Https,
}

impl Scheme {
    /// Whether the scheme runs over TLS.
    pub fn is_tls(self) -> bool {
        matches!(self, Scheme::Wss | Scheme::Https)
    }

    fn default_port(self) -> u16 {
        if self.is_tls() { 443 } else { 80 }
    }

    fn as_str(self) -> &'static str {
        match self {
            Scheme::Ws => "ws",
            Scheme::Wss => "wss",
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// A parsed absolute URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    /// The scheme.
    pub scheme: Scheme,
    /// Host name or IP literal, without IPv6 brackets.
    pub host: String,
    /// Port, explicit or the scheme's default.
    pub port: u16,
    /// Path and query, always starting with `/`.
    pub target: String,
}

impl Url {
    /// Parses an absolute `ws`, `wss`, `http` or `https` URL.
    pub fn parse(input: &str) -> Result<Url> {
        let bad =
            |why: &str| Error::new(ErrorCode::InvalidParameter, format!("invalid URL: {why}"));
        let input = input.trim();
        let (scheme, rest) = input.split_once("://").ok_or_else(|| bad("missing scheme"))?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "ws" => Scheme::Ws,
            "wss" => Scheme::Wss,
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            _ => return Err(bad("scheme must be ws, wss, http or https")),
        };
        let rest = rest.split('#').next().unwrap_or_default();
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, target) = rest.split_at(authority_end);
        if authority.contains('@') {
            return Err(bad("credentials in the URL are not supported; use the login options"));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or_else(|| bad("unclosed IPv6 literal"))?;
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or_else(|| bad("junk after IPv6 literal"))?),
            };
            (host, port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("missing or malformed host"));
        }
        let port = match port {
            None | Some("") => scheme.default_port(),
            Some(p) => p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(|| bad("bad port"))?,
        };
        let target = if target.is_empty() {
            "/".to_string()
        } else if target.starts_with('?') {
            format!("/{target}")
        } else {
            target.to_string()
        };
        if target.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("whitespace in path"));
        }
        Ok(Url { scheme, host: host.to_ascii_lowercase(), port, target })
    }

    /// Resolves a `Location` header value against this URL.
    pub fn join(&self, location: &str) -> Result<Url> {
        if location.contains("://") {
            return Url::parse(location);
        }
        let mut next = self.clone();
        if let Some(rest) = location.strip_prefix("//") {
            return Url::parse(&format!("{}://{rest}", self.scheme.as_str()));
        }
        next.target = if location.starts_with('/') {
            location.to_string()
        } else {
            let path = self.target.split('?').next().unwrap_or("/");
            let dir = &path[..=path.rfind('/').unwrap_or(0)];
            format!("{dir}{location}")
        };
        Ok(next)
    }

    /// The `Host` header value: host, bracketed if IPv6, with the port unless it is the default.
    pub fn host_header(&self) -> String {
        let host =
            if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        if self.port == self.scheme.default_port() { host } else { format!("{host}:{}", self.port) }
    }

    /// The path part of the target, without the query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("/")
    }
}

/// Whether a path segment looks like a credential (deCONZ puts its API key in the path):
/// 8 or more token characters with at least one digit.
fn looks_secret(segment: &str) -> bool {
    segment.len() >= 8
        && segment.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && segment.bytes().any(|b| b.is_ascii_digit())
}

impl fmt::Display for Url {
    /// Scheme, authority and path, for logs: the query is left out and path segments that
    /// look like keys are masked, since both may carry credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme.as_str(), self.host_header())?;
        for (i, segment) in self.path().split('/').enumerate() {
            let shown = if looks_secret(segment) { "***" } else { segment };
            write!(f, "{}{shown}", if i == 0 { "" } else { "/" })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_masks_what_may_be_credentials() {
        let u = Url::parse("http://gw:80/api/1A2B3C4D5E/config?token=x").unwrap();
        assert_eq!(u.to_string(), "http://gw/api/***/config");
        let u = Url::parse("wss://h/v2/event/subscription?X-Atmosphere-tracking-id=0").unwrap();
        assert_eq!(u.to_string(), "wss://h/v2/event/subscription");
        assert_eq!(Url::parse("ws://h/").unwrap().to_string(), "ws://h/");
    }

    #[test]
    fn parses_common_shapes() {
        let u = Url::parse("wss://Example.com/live?x=1#frag").unwrap();
        assert_eq!(
            (u.scheme, u.host.as_str(), u.port, u.target.as_str()),
            (Scheme::Wss, "example.com", 443, "/live?x=1")
        );
        let u = Url::parse("ws://[::1]:9001").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.target.as_str()), ("::1", 9001, "/"));
        assert_eq!(u.host_header(), "[::1]:9001");
        let u = Url::parse("http://h?q").unwrap();
        assert_eq!(u.target, "/?q");
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "ftp://x",
            "ws://",
            "ws://h:0",
            "ws://h:99999",
            "ws://u:p@h/",
            "ws://[::1",
            "ws://a b/",
        ] {
            assert_eq!(Url::parse(bad).unwrap_err().code, ErrorCode::InvalidParameter, "{bad}");
        }
    }

    #[test]
    fn joins_locations() {
        let base = Url::parse("https://a.example/x/y?z").unwrap();
        assert_eq!(base.join("/p").unwrap().target, "/p");
        assert_eq!(base.join("q").unwrap().target, "/x/q");
        assert_eq!(base.join("http://b/").unwrap().host, "b");
        assert_eq!(base.join("//c/d").unwrap().host, "c");
    }

    #[test]
    fn display_hides_query() {
        assert_eq!(Url::parse("ws://h:81/p?token=secret").unwrap().to_string(), "ws://h:81/p");
    }
}
