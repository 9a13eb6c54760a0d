//! A per-session cookie jar: enough of RFC 6265 for bootstrap logins and sticky load balancers.

use crate::url::Url;

const MAX_COOKIES: usize = 64;
const MAX_COOKIE_BYTES: usize = 4096;

#[derive(Clone, Debug, PartialEq, Eq)]
struct Cookie {
    name: String,
    value: String,
    /// Lower-case domain; `host_only` cookies match it exactly.
    domain: String,
    host_only: bool,
    path: String,
    secure: bool,
}

/// Cookies received with `Set-Cookie` (and preset by the host), sent back on matching requests.
#[derive(Clone, Debug, Default)]
pub struct CookieJar {
    cookies: Vec<Cookie>,
}

impl CookieJar {
    /// Presets a cookie sent to every host of this session.
    pub fn preset(&mut self, name: &str, value: &str) {
        self.cookies.retain(|c| c.name != name);
        self.cookies.push(Cookie {
            name: name.into(),
            value: value.into(),
            domain: String::new(),
            host_only: false,
            path: "/".into(),
            secure: false,
        });
    }

    /// Stores one `Set-Cookie` header value received from `url`.
    pub fn store(&mut self, url: &Url, header: &str) {
        if header.len() > MAX_COOKIE_BYTES {
            log::debug!("ignoring an oversized cookie");
            return;
        }
        let mut parts = header.split(';');
        let Some((name, value)) = parts.next().and_then(|nv| nv.split_once('=')) else { return };
        let (name, value) = (name.trim(), value.trim());
        if name.is_empty() {
            return;
        }
        let mut cookie = Cookie {
            name: name.into(),
            value: value.into(),
            domain: url.host.clone(),
            host_only: true,
            path: default_path(url.path()),
            secure: false,
        };
        let mut delete = false;
        for attr in parts {
            let (k, v) = attr.split_once('=').unwrap_or((attr, ""));
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
            match k.as_str() {
                "domain" if !v.is_empty() => {
                    let d = v.trim_start_matches('.').to_ascii_lowercase();
                    if !domain_matches(&url.host, &d) {
                        return; // a host may not set cookies for another domain
                    }
                    cookie.domain = d;
                    cookie.host_only = false;
                }
                "path" if v.starts_with('/') => cookie.path = v.into(),
                "secure" => cookie.secure = true,
                "max-age" => delete = v.parse::<i64>().map(|s| s <= 0).unwrap_or(false),
                _ => {}
            }
        }
        self.cookies.retain(|c| {
            !(c.name == cookie.name && c.domain == cookie.domain && c.path == cookie.path)
        });
        if delete {
            return;
        }
        if self.cookies.len() >= MAX_COOKIES {
            self.cookies.remove(0);
        }
        self.cookies.push(cookie);
    }

    /// The `Cookie` header value for a request to `url` (empty when none match).
    pub fn header_for(&self, url: &Url) -> String {
        let path = url.path();
        let mut out = String::new();
        for c in &self.cookies {
            let host_ok = c.domain.is_empty()
                || if c.host_only {
                    c.domain == url.host
                } else {
                    domain_matches(&url.host, &c.domain)
                };
            let path_ok = path == c.path
                || (path.starts_with(&c.path)
                    && (c.path.ends_with('/') || path[c.path.len()..].starts_with('/')));
            if host_ok && path_ok && (!c.secure || url.scheme.is_tls()) {
                if !out.is_empty() {
                    out.push_str("; ");
                }
                out.push_str(&c.name);
                out.push('=');
                out.push_str(&c.value);
            }
        }
        out
    }
}

fn domain_matches(host: &str, domain: &str) -> bool {
    host == domain || (host.ends_with(domain) && host[..host.len() - domain.len()].ends_with('.'))
}

fn default_path(path: &str) -> String {
    match path.rfind('/') {
        Some(0) | None => "/".into(),
        Some(i) => path[..i].into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn stores_matches_and_deletes() {
        let mut jar = CookieJar::default();
        let origin = url("https://api.example.com/v2/login");
        jar.store(&origin, "sid=abc; Path=/; Secure; HttpOnly");
        jar.store(&origin, "lb=1; Domain=example.com; Path=/");
        jar.store(&origin, "evil=1; Domain=other.com");
        jar.store(&origin, "scoped=1");
        assert_eq!(jar.header_for(&url("https://api.example.com/x")), "sid=abc; lb=1");
        assert_eq!(jar.header_for(&url("http://api.example.com/v2/a")), "lb=1; scoped=1");
        assert_eq!(jar.header_for(&url("https://ws.example.com/")), "lb=1");
        jar.store(&origin, "sid=gone; Path=/; Max-Age=0");
        assert_eq!(jar.header_for(&url("https://api.example.com/")), "lb=1");
    }

    #[test]
    fn preset_goes_everywhere_and_jar_is_bounded() {
        let mut jar = CookieJar::default();
        jar.preset("a", "1");
        assert_eq!(jar.header_for(&url("ws://anything/")), "a=1");
        let origin = url("http://h/");
        for i in 0..200 {
            jar.store(&origin, &format!("c{i}=v"));
        }
        assert!(jar.cookies.len() <= MAX_COOKIES);
    }
}
