//! HTTP/1.1 request encoding.

use crate::url::Url;

/// An HTTP request about to be sent.
#[derive(Clone, Debug)]
pub struct Request {
    /// Method, such as `GET`.
    pub method: String,
    /// Absolute URL; the target and `Host` come from it.
    pub url: Url,
    /// Headers besides `Host`, `Content-Length` and `Cookie`, which are added here.
    pub headers: Vec<(String, String)>,
    /// Body (empty for none).
    pub body: Vec<u8>,
}

impl Request {
    /// A GET for `url`.
    pub fn get(url: Url) -> Request {
        Request { method: "GET".into(), url, headers: Vec::new(), body: Vec::new() }
    }

    /// A JSON request (`POST`, `PUT`, ...) for `url`: the body and the JSON
    /// `Content-Type` and `Accept` headers the platforms' REST APIs expect.
    pub fn json(method: &str, url: Url, body: &serde_json::Value) -> Request {
        let mut r = Request::get(url)
            .header("Content-Type", "application/json")
            .header("Accept", "application/json");
        r.method = method.into();
        r.body = body.to_string().into_bytes();
        r
    }

    /// Appends a header.
    pub fn header(mut self, name: &str, value: &str) -> Request {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Whether a header is present (case-insensitive).
    pub fn has_header(&self, name: &str) -> bool {
        self.headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
    }

    /// The bytes on the wire, with `cookie` (if not empty) as the `Cookie` header.
    pub fn encode(&self, cookie: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(256 + self.body.len());
        let mut line = |s: &str| {
            out.extend_from_slice(s.as_bytes());
            out.extend_from_slice(b"\r\n");
        };
        line(&format!("{} {} HTTP/1.1", self.method, self.url.target));
        line(&format!("Host: {}", self.url.host_header()));
        for (n, v) in &self.headers {
            line(&format!("{n}: {v}"));
        }
        if !cookie.is_empty() {
            line(&format!("Cookie: {cookie}"));
        }
        if !self.body.is_empty() || matches!(self.method.as_str(), "POST" | "PUT" | "PATCH") {
            line(&format!("Content-Length: {}", self.body.len()));
        }
        line("");
        out.extend_from_slice(&self.body);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_host_cookie_and_length() {
        let mut r = Request::get(Url::parse("http://h:8080/a?b").unwrap()).header("X", "1");
        r.method = "POST".into();
        r.body = b"{}".to_vec();
        let text = String::from_utf8(r.encode("k=v")).unwrap();
        assert_eq!(
            text,
            "POST /a?b HTTP/1.1\r\nHost: h:8080\r\nX: 1\r\nCookie: k=v\r\nContent-Length: 2\r\n\r\n{}"
        );
    }
}
