//! Engine.IO packets on a WebSocket (one packet per frame) and in long-polling payloads
//! (v3: `<length>:<packet>` with lengths in UTF-16 units; v4: packets joined by 0x1E).

use crate::error::{Error, ErrorCode, Result};
use std::time::Duration;

/// The Engine.IO protocol revision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// Revision 3 (engine.io 1.x–3.x, socket.io 1.x/2.x): the client pings.
    V3,
    /// Revision 4 (engine.io 4+, socket.io 3+): the server pings.
    V4,
}

impl Version {
    /// The `EIO` query value.
    pub fn query(self) -> &'static str {
        match self {
            Version::V3 => "3",
            Version::V4 => "4",
        }
    }
}

/// Packet types, the same in both revisions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PacketType {
    /// `0`: handshake data from the server.
    Open,
    /// `1`: the transport is closing.
    Close,
    /// `2`: heartbeat request (or upgrade probe).
    Ping,
    /// `3`: heartbeat answer.
    Pong,
    /// `4`: application data.
    Message,
    /// `5`: transport upgrade done.
    Upgrade,
    /// `6`: no operation (ends a paused poll).
    Noop,
}

impl PacketType {
    fn from_byte(b: u8) -> Option<PacketType> {
        Some(match b {
            b'0' | 0 => PacketType::Open,
            b'1' | 1 => PacketType::Close,
            b'2' | 2 => PacketType::Ping,
            b'3' | 3 => PacketType::Pong,
            b'4' | 4 => PacketType::Message,
            b'5' | 5 => PacketType::Upgrade,
            b'6' | 6 => PacketType::Noop,
            _ => return None,
        })
    }

    /// The digit on the wire.
    pub fn digit(self) -> char {
        (b'0' + self as u8) as char
    }
}

/// One decoded packet. Text data borrows from the input; binary data is owned when it had
/// to be decoded from base64.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Packet {
    /// Packet with text data (possibly empty).
    Text(PacketType, String),
    /// A binary message.
    Binary(Vec<u8>),
}

/// The handshake data of an open packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenInfo {
    /// Engine.IO session id.
    pub sid: String,
    /// Transports the server offers to upgrade to.
    pub upgrades: Vec<String>,
    /// Heartbeat period.
    pub ping_interval: Duration,
    /// Heartbeat answer deadline.
    pub ping_timeout: Duration,
    /// Largest polling payload (v4 only; its presence marks a revision 4 server).
    pub max_payload: Option<u64>,
}

fn malformed(why: impl Into<String>) -> Error {
    Error::new(ErrorCode::Protocol, format!("malformed Engine.IO packet: {}", why.into()))
}

impl OpenInfo {
    /// Parses the JSON of an open packet.
    pub fn parse(json: &str) -> Result<OpenInfo> {
        let v: serde_json::Value =
            serde_json::from_str(json).map_err(|e| malformed(format!("open packet: {e}")))?;
        let ms = |key: &str| {
            v.get(key)
                .and_then(serde_json::Value::as_u64)
                .map(Duration::from_millis)
                .ok_or_else(|| malformed(format!("open packet lacks `{key}`")))
        };
        let sid = v
            .get("sid")
            .and_then(|s| s.as_str())
            .ok_or_else(|| malformed("open packet lacks `sid`"))?;
        let upgrades = v
            .get("upgrades")
            .and_then(|u| u.as_array())
            .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
            .unwrap_or_default();
        Ok(OpenInfo {
            sid: sid.to_string(),
            upgrades,
            ping_interval: ms("pingInterval")?,
            ping_timeout: ms("pingTimeout")?,
            max_payload: v.get("maxPayload").and_then(serde_json::Value::as_u64),
        })
    }

    /// The revision the server speaks: only revision 4 sends `maxPayload`.
    pub fn version(&self) -> Version {
        if self.max_payload.is_some() { Version::V4 } else { Version::V3 }
    }
}

/// Decodes a WebSocket text frame: `<type digit>[data]`.
pub fn decode_text(frame: &str) -> Result<Packet> {
    let first = *frame.as_bytes().first().ok_or_else(|| malformed("empty frame"))?;
    let kind = PacketType::from_byte(first)
        .filter(|_| first.is_ascii_digit())
        .ok_or_else(|| malformed(format!("unknown packet type {:?}", first as char)))?;
    Ok(Packet::Text(kind, frame[1..].to_string()))
}

/// Decodes a WebSocket binary frame: v3 starts with a type byte, v4 is the message itself.
pub fn decode_binary(frame: &[u8], version: Version) -> Result<Packet> {
    match version {
        Version::V4 => Ok(Packet::Binary(frame.to_vec())),
        Version::V3 => match frame.split_first() {
            Some((4, data)) => Ok(Packet::Binary(data.to_vec())),
            Some((t, _)) => Err(malformed(format!("binary frame of packet type {t}"))),
            None => Err(malformed("empty binary frame")),
        },
    }
}

/// Encodes a text packet for a WebSocket frame.
pub fn encode_text(kind: PacketType, data: &str) -> String {
    let mut s = String::with_capacity(1 + data.len());
    s.push(kind.digit());
    s.push_str(data);
    s
}

/// Encodes a binary message for a WebSocket frame.
pub fn encode_binary(data: &[u8], version: Version) -> Vec<u8> {
    match version {
        Version::V4 => data.to_vec(),
        Version::V3 => {
            let mut v = Vec::with_capacity(1 + data.len());
            v.push(4);
            v.extend_from_slice(data);
            v
        }
    }
}

const SEPARATOR: char = '\u{1e}';

/// Decodes a long-polling response body.
pub fn decode_payload(body: &[u8], version: Version) -> Result<Vec<Packet>> {
    match version {
        Version::V4 => {
            let text = std::str::from_utf8(body).map_err(|_| malformed("payload is not UTF-8"))?;
            text.split(SEPARATOR).map(decode_polled_v4).collect()
        }
        Version::V3 => decode_payload_v3(body),
    }
}

fn decode_polled_v4(packet: &str) -> Result<Packet> {
    match packet.strip_prefix('b') {
        Some(b64) => Ok(Packet::Binary(base64_decode(b64)?)),
        None => decode_text(packet),
    }
}

/// v3 payloads: `<len>:<packet>` repeated, `len` counting UTF-16 code units; binary packets
/// as `b<type><base64>`. Also the XHR2 binary framing (`<0|1><digits…><0xFF><packet>`).
fn decode_payload_v3(body: &[u8]) -> Result<Vec<Packet>> {
    if body.first().is_some_and(|b| *b == 0 || *b == 1) {
        return decode_payload_v3_binary(body);
    }
    let text = std::str::from_utf8(body).map_err(|_| malformed("payload is not UTF-8"))?;
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (len, after) =
            rest.split_once(':').ok_or_else(|| malformed("payload length without `:`"))?;
        if len.is_empty() || len.len() > 10 || !len.bytes().all(|b| b.is_ascii_digit()) {
            return Err(malformed("bad payload length"));
        }
        let units: usize = len.parse().map_err(|_| malformed("bad payload length"))?;
        // Walk `units` UTF-16 code units into `after`.
        let mut taken = 0;
        let mut end = 0;
        for c in after.chars() {
            if taken >= units {
                break;
            }
            taken += c.len_utf16();
            end += c.len_utf8();
        }
        if taken != units {
            return Err(malformed("payload shorter than its length"));
        }
        let packet = &after[..end];
        out.push(match packet.strip_prefix('b') {
            Some(rest) => {
                let b64 = rest
                    .strip_prefix('4')
                    .ok_or_else(|| malformed("binary payload packet that is not a message"))?;
                Packet::Binary(base64_decode(b64)?)
            }
            None => decode_text(packet)?,
        });
        rest = &after[end..];
    }
    Ok(out)
}

fn decode_payload_v3_binary(mut body: &[u8]) -> Result<Vec<Packet>> {
    let mut out = Vec::new();
    while let Some((&kind, rest)) = body.split_first() {
        let sep = rest
            .iter()
            .position(|b| *b == 0xFF)
            .ok_or_else(|| malformed("binary payload without 0xFF"))?;
        let digits = &rest[..sep];
        if digits.is_empty() || digits.len() > 10 || digits.iter().any(|d| *d > 9) {
            return Err(malformed("bad binary payload length"));
        }
        let len = digits.iter().fold(0usize, |n, d| n * 10 + *d as usize);
        let data = rest
            .get(sep + 1..sep + 1 + len)
            .ok_or_else(|| malformed("payload shorter than its length"))?;
        out.push(match kind {
            0 => decode_text(
                std::str::from_utf8(data).map_err(|_| malformed("text packet is not UTF-8"))?,
            )?,
            _ => decode_binary(data, Version::V3)?,
        });
        body = &rest[sep + 1 + len..];
    }
    Ok(out)
}

/// Encodes packets for a long-polling POST body.
pub fn encode_payload(packets: &[Packet], version: Version) -> String {
    let mut out = String::new();
    for (i, p) in packets.iter().enumerate() {
        let one = match p {
            Packet::Text(kind, data) => encode_text(*kind, data),
            Packet::Binary(data) => match version {
                Version::V4 => format!("b{}", base64_encode(data)),
                Version::V3 => format!("b4{}", base64_encode(data)),
            },
        };
        match version {
            Version::V4 => {
                if i > 0 {
                    out.push(SEPARATOR);
                }
            }
            Version::V3 => {
                out.push_str(&one.encode_utf16().count().to_string());
                out.push(':');
            }
        }
        out.push_str(&one);
    }
    out
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
pub fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Standard base64 (padding optional); refuses anything else.
pub fn base64_decode(text: &str) -> Result<Vec<u8>> {
    let text = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in text.bytes() {
        let v = B64.iter().position(|b| *b == c).ok_or_else(|| malformed("bad base64"))? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    if bits >= 6 {
        return Err(malformed("truncated base64"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_packet_tells_the_revision() {
        let v4 = OpenInfo::parse(r#"{"sid":"a","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#).unwrap();
        assert_eq!(
            (v4.version(), v4.ping_interval, v4.upgrades.len()),
            (Version::V4, Duration::from_secs(25), 1)
        );
        let v3 =
            OpenInfo::parse(r#"{"sid":"b","upgrades":[],"pingInterval":25000,"pingTimeout":5000}"#)
                .unwrap();
        assert_eq!(v3.version(), Version::V3);
        assert!(OpenInfo::parse(r#"{"sid":"b"}"#).is_err());
        assert!(OpenInfo::parse("nope").is_err());
    }

    #[test]
    fn websocket_frames() {
        assert_eq!(
            decode_text("4hello").unwrap(),
            Packet::Text(PacketType::Message, "hello".into())
        );
        assert_eq!(decode_text("2probe").unwrap(), Packet::Text(PacketType::Ping, "probe".into()));
        assert!(
            decode_text("").is_err() && decode_text("9x").is_err() && decode_text("x").is_err()
        );
        assert_eq!(decode_binary(&[4, 1, 2], Version::V3).unwrap(), Packet::Binary(vec![1, 2]));
        assert_eq!(decode_binary(&[4, 1, 2], Version::V4).unwrap(), Packet::Binary(vec![4, 1, 2]));
        assert!(decode_binary(&[2, 1], Version::V3).is_err());
        assert_eq!(encode_binary(&[9], Version::V3), vec![4, 9]);
    }

    #[test]
    fn v4_payloads_round_trip() {
        let packets = vec![
            Packet::Text(PacketType::Message, "héllo".into()),
            Packet::Binary(vec![0, 1, 2, 255]),
            Packet::Text(PacketType::Ping, String::new()),
        ];
        let body = encode_payload(&packets, Version::V4);
        assert_eq!(body, "4héllo\u{1e}bAAEC/w==\u{1e}2");
        assert_eq!(decode_payload(body.as_bytes(), Version::V4).unwrap(), packets);
    }

    #[test]
    fn v3_payloads_count_utf16_units() {
        let packets =
            vec![Packet::Text(PacketType::Message, "€😀".into()), Packet::Binary(vec![1, 2, 3])];
        let body = encode_payload(&packets, Version::V3);
        // "4€😀" is 1 + 1 + 2 UTF-16 units.
        assert_eq!(body, "4:4€😀6:b4AQID");
        assert_eq!(decode_payload(body.as_bytes(), Version::V3).unwrap(), packets);
        // `b` then a multi-byte character used to panic (split inside the character).
        for bad in ["5:4€😀", "x:4a", ":4", "3", "2:b9AA", "99999999999:4", "2:bé", "3:b😀"]
        {
            assert!(decode_payload(bad.as_bytes(), Version::V3).is_err(), "{bad}");
        }
    }

    #[test]
    fn v3_binary_framing() {
        let body = [0u8, 6, 0xFF, b'4', b'h', b'e', b'l', b'l', b'o', 1, 3, 0xFF, 4, 7, 8];
        assert_eq!(
            decode_payload(&body, Version::V3).unwrap(),
            vec![Packet::Text(PacketType::Message, "hello".into()), Packet::Binary(vec![7, 8])]
        );
        assert!(decode_payload(&[0, 9, 0xFF, b'4'], Version::V3).is_err());
    }

    #[test]
    fn base64() {
        for data in [&b""[..], b"f", b"fo", b"foo", b"foob", &[0, 255, 128]] {
            assert_eq!(base64_decode(&base64_encode(data)).unwrap(), data);
        }
        assert!(base64_decode("a$").is_err());
        assert!(base64_decode("a").is_err());
    }
}
