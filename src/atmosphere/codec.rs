//! Atmosphere framing.
//!
//! - Handshake: with tracking id `0` and `X-atmo-protocol`, the server's first frame is
//!   `<uuid>|<clientHeartbeatMs>|<padding>|[data]` (length-prefixed itself when
//!   `trackMessageLength` is on).
//! - `trackMessageLength`: every message is `<length>|<message>`, the length counting
//!   UTF-16 code units; a frame may carry several messages or part of one. Heartbeats (the
//!   padding, `X` by default) and whitespace-only messages are written without a prefix.

use crate::error::{Error, ErrorCode, Result};

/// Version announced in `X-Atmosphere-Framework` (servers refuse versions below 2.2.1).
pub const FRAMEWORK_VERSION: &str = "2.3.6-javascript";

fn malformed(why: impl Into<String>) -> Error {
    Error::new(ErrorCode::Protocol, format!("malformed Atmosphere frame: {}", why.into()))
}

/// The query that opens an Atmosphere connection, appended to `path` (which may carry a
/// query of its own). `tracking_id` is `"0"` for a new client (the server answers with a
/// handshake) or the UUID it gave before.
pub fn subscription_target(
    path: &str,
    tracking_id: &str,
    transport: &str,
    track_message_length: bool,
    server_heartbeat_s: Option<u32>,
) -> String {
    let mut t = String::from(path);
    t.push(if path.contains('?') { '&' } else { '?' });
    t.push_str(&format!(
        "X-Atmosphere-tracking-id={tracking_id}&X-Atmosphere-Framework={FRAMEWORK_VERSION}\
         &X-Atmosphere-Transport={transport}&Content-Type=application/json&X-atmo-protocol=true"
    ));
    if track_message_length {
        t.push_str("&X-Atmosphere-TrackMessageSize=true");
    }
    if let Some(s) = server_heartbeat_s {
        t.push_str(&format!("&X-Heartbeat-Server={s}"));
    }
    t
}

/// The server's handshake.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Handshake {
    /// The tracking id to reuse on reconnect.
    pub uuid: String,
    /// How often the client sends the padding as a heartbeat (0: never).
    pub heartbeat_ms: u64,
    /// The heartbeat text (`X` by default).
    pub padding: String,
}

impl Handshake {
    /// Parses `<uuid>|<ms>|<padding>|[rest]`; returns the handshake and the rest (data that
    /// came in the same message).
    pub fn parse(message: &str) -> Result<(Handshake, &str)> {
        let mut parts = message.splitn(4, '|');
        let (Some(uuid), Some(ms), Some(padding), Some(rest)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed("the handshake needs `uuid|interval|padding|`"));
        };
        let uuid = uuid.trim();
        let valid_uuid = !uuid.is_empty()
            && uuid.len() <= 64
            && uuid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !valid_uuid {
            return Err(malformed("bad tracking id in the handshake"));
        }
        let heartbeat_ms =
            ms.trim().parse::<u64>().map_err(|_| malformed("bad heartbeat interval"))?;
        if padding.is_empty() || padding.len() > 64 {
            return Err(malformed("bad heartbeat padding"));
        }
        let h = Handshake { uuid: uuid.to_string(), heartbeat_ms, padding: padding.to_string() };
        Ok((h, rest))
    }
}

/// Splits `trackMessageLength` frames into messages.
#[derive(Debug)]
pub struct Deframer {
    buf: String,
    max_message: usize,
    padding: String,
}

impl Deframer {
    /// A deframer that refuses messages longer than `max_message` bytes.
    pub fn new(max_message: usize, padding: &str) -> Deframer {
        Deframer { buf: String::new(), max_message, padding: padding.to_string() }
    }

    /// Sets the heartbeat padding (from the handshake).
    pub fn set_padding(&mut self, padding: &str) {
        self.padding = padding.to_string();
    }

    /// Whether a message is waiting for more frames.
    pub fn has_partial(&self) -> bool {
        !self.buf.is_empty()
    }

    /// Adds a frame; hands each complete message to `on_message`. A frame that is exactly
    /// the padding, or whitespace only, between messages is a heartbeat and yields nothing.
    pub fn feed(&mut self, frame: &str, on_message: &mut dyn FnMut(&str)) -> Result<()> {
        if self.buf.is_empty() && (frame == self.padding || frame.trim().is_empty()) {
            return Ok(());
        }
        self.buf.push_str(frame);
        let mut pos = 0;
        loop {
            let rest = &self.buf[pos..];
            if rest.is_empty() {
                break;
            }
            let Some(bar) = rest.find('|') else {
                if rest.len() > 20 || !rest.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(malformed("a message length that is not a number"));
                }
                break; // the length itself continues in the next frame
            };
            let digits = &rest[..bar];
            if digits.is_empty() || digits.len() > 20 || !digits.bytes().all(|b| b.is_ascii_digit())
            {
                return Err(malformed("a message length that is not a number"));
            }
            let units: usize =
                digits.parse().map_err(|_| malformed("message length out of range"))?;
            if units > self.max_message {
                return Err(Error::new(
                    ErrorCode::WsTooLarge,
                    format!("an Atmosphere message of {units} units exceeds the limit"),
                ));
            }
            // Walk `units` UTF-16 code units into the message.
            let body = &rest[bar + 1..];
            let (mut taken, mut end) = (0, 0);
            for c in body.chars() {
                if taken >= units {
                    break;
                }
                taken += c.len_utf16();
                end += c.len_utf8();
            }
            if taken < units {
                break; // the message continues in the next frame
            }
            if taken != units {
                return Err(malformed("a message length that splits a character"));
            }
            on_message(&body[..end]);
            pos += bar + 1 + end;
        }
        self.buf.drain(..pos);
        if self.buf.len() > self.max_message.saturating_add(24) {
            return Err(malformed("a partial message larger than the limit"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(d: &mut Deframer, frames: &[&str]) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for f in frames {
            d.feed(f, &mut |m| out.push(m.to_string()))?;
        }
        Ok(out)
    }

    #[test]
    fn handshake_frames() {
        let (h, rest) = Handshake::parse("b623a15d-9623-4fd8-a9d3-697036635c29|30000|X|").unwrap();
        assert_eq!(
            (h.uuid.as_str(), h.heartbeat_ms, h.padding.as_str(), rest),
            ("b623a15d-9623-4fd8-a9d3-697036635c29", 30000, "X", "")
        );
        let (_, rest) = Handshake::parse("u-1|0|X|{\"type\":\"event\"}").unwrap();
        assert_eq!(rest, "{\"type\":\"event\"}");
        for bad in ["", "u|30000|X", "u|x|X|", "|30000|X|", "u|30000||", "u u|1|X|"] {
            assert!(Handshake::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn subscription_query() {
        let t = subscription_target("/v2/event/subscription", "0", "websocket", false, None);
        assert_eq!(
            t,
            "/v2/event/subscription?X-Atmosphere-tracking-id=0&X-Atmosphere-Framework=2.3.6-javascript\
             &X-Atmosphere-Transport=websocket&Content-Type=application/json&X-atmo-protocol=true"
        );
        let t = subscription_target("/s?a=1", "u", "long-polling", true, Some(90));
        assert!(t.starts_with("/s?a=1&X-Atmosphere-tracking-id=u&"));
        assert!(t.ends_with("&X-Atmosphere-TrackMessageSize=true&X-Heartbeat-Server=90"));
    }

    #[test]
    fn length_framing_across_and_within_frames() {
        let mut d = Deframer::new(1 << 20, "X");
        // Two messages in one frame; one split over three frames, its length too.
        let got = messages(&mut d, &["5|hello3|abc", "1", "1|hello", " world"]).unwrap();
        assert_eq!(got, ["hello", "abc", "hello world"]);
        assert!(!d.has_partial());
        // Heartbeats between messages are not messages.
        assert!(messages(&mut d, &["X", "   "]).unwrap().is_empty());
        // Lengths count UTF-16 units: "€" is 1, "😀" is 2.
        assert_eq!(messages(&mut d, &["3|€😀2|ok"]).unwrap(), ["€😀", "ok"]);
    }

    #[test]
    fn bad_framing_is_refused() {
        let err =
            |frames: &[&str]| messages(&mut Deframer::new(100, "X"), frames).unwrap_err().code;
        assert_eq!(err(&["abc|hello"]), ErrorCode::Protocol);
        assert_eq!(err(&["|x"]), ErrorCode::Protocol);
        assert_eq!(err(&["1|😀"]), ErrorCode::Protocol); // the length splits a surrogate pair
        assert_eq!(err(&["101|x"]), ErrorCode::WsTooLarge);
        assert_eq!(err(&["99999999999999999999999|x"]), ErrorCode::Protocol);
        assert_eq!(err(&["hello"]), ErrorCode::Protocol);
    }
}
