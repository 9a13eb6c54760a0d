//! Socket.IO packets: `<type>[<attachments>-][<namespace>,][<ack id>][<JSON>]`.

use crate::error::{Error, ErrorCode, Result};
use serde::de::IgnoredAny;
use serde_json::Value;
use std::borrow::Cow;

/// Most binary attachments one packet may announce (each is buffered until complete).
pub const MAX_ATTACHMENTS: usize = 256;

/// Socket.IO packet types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `0` join a namespace (client) / joined (server).
    Connect,
    /// `1` leave a namespace.
    Disconnect,
    /// `2` an event: `["name", args...]`.
    Event,
    /// `3` an acknowledgement: `[args...]`.
    Ack,
    /// `4` joining refused (`ERROR` in revision 4).
    ConnectError,
    /// `5` an event with binary attachments.
    BinaryEvent,
    /// `6` an acknowledgement with binary attachments.
    BinaryAck,
}

impl Kind {
    fn from_digit(d: u8) -> Option<Kind> {
        Some(match d {
            b'0' => Kind::Connect,
            b'1' => Kind::Disconnect,
            b'2' => Kind::Event,
            b'3' => Kind::Ack,
            b'4' => Kind::ConnectError,
            b'5' => Kind::BinaryEvent,
            b'6' => Kind::BinaryAck,
            _ => return None,
        })
    }

    fn digit(self) -> char {
        (b'0' + self as u8) as char
    }

    /// Whether binary attachments follow.
    pub fn is_binary(self) -> bool {
        matches!(self, Kind::BinaryEvent | Kind::BinaryAck)
    }
}

/// The parts of a packet before its JSON data, borrowed from the text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header<'a> {
    /// Type.
    pub kind: Kind,
    /// Announced binary attachments.
    pub attachments: usize,
    /// Namespace (`/` when omitted), without a revision 4 query.
    pub nsp: &'a str,
    /// Acknowledgement id.
    pub id: Option<u64>,
    /// The JSON data text (may be empty).
    pub json: &'a str,
}

impl<'a> Header<'a> {
    /// Splits `<type>[<attachments>-][<namespace>,][<ack id>]` off the JSON data.
    pub fn parse(text: &'a str) -> Result<Header<'a>> {
        let bytes = text.as_bytes();
        let kind = bytes
            .first()
            .and_then(|d| Kind::from_digit(*d))
            .ok_or_else(|| malformed("unknown type"))?;
        let mut pos = 1;
        let mut attachments = 0;
        if kind.is_binary() {
            let dash = text[pos..]
                .find('-')
                .ok_or_else(|| malformed("binary packet without attachment count"))?;
            let count = &text[pos..pos + dash];
            if count.is_empty() || count.len() > 6 || !count.bytes().all(|b| b.is_ascii_digit()) {
                return Err(malformed("bad attachment count"));
            }
            attachments = count.parse().map_err(|_| malformed("bad attachment count"))?;
            if attachments > MAX_ATTACHMENTS {
                return Err(malformed(format!(
                    "{attachments} attachments (most {MAX_ATTACHMENTS})"
                )));
            }
            pos += dash + 1;
        }
        let mut nsp = "/";
        if bytes.get(pos) == Some(&b'/') {
            let end = text[pos..].find(',').map_or(text.len(), |i| pos + i);
            // Revision 4 clients may append a query to the namespace; it is not part of the name.
            nsp = text[pos..end].split('?').next().unwrap_or("/");
            pos = (end + 1).min(text.len());
        }
        let digits = bytes[pos..].iter().take_while(|b| b.is_ascii_digit()).count();
        let id = if digits > 0 {
            let id = text[pos..pos + digits].parse::<u64>().map_err(|_| malformed("bad ack id"))?;
            pos += digits;
            Some(id)
        } else {
            None
        };
        Ok(Header { kind, attachments, nsp, id, json: &text[pos..] })
    }
}

/// An event's name and its arguments as one JSON array text, split without building a
/// JSON tree (the hot path of every feed): one validating pass over the text, then the
/// name is cut out by hand. The name is borrowed unless it has escapes; the arguments are
/// the rest of the array's text, behind a new `[` (one allocation).
pub fn split_event(json: &str) -> Result<(Cow<'_, str>, String)> {
    serde_json::from_str::<IgnoredAny>(json).map_err(|e| {
        malformed(format!("an event must be a JSON array starting with its name ({e})"))
    })?;
    let bad = || malformed("an event must be a non-empty array starting with its name");
    // Valid JSON from here on, so a string ends at the first unescaped quote (escapes and
    // quotes are ASCII: every slice below is at a character boundary).
    let b = json.as_bytes();
    let open = skip_ws(b, 0);
    let start = skip_ws(b, open + 1);
    if b.get(open) != Some(&b'[') || b.get(start) != Some(&b'"') {
        return Err(bad());
    }
    let (mut end, mut escaped) = (start + 1, false);
    loop {
        match b.get(end) {
            Some(b'\\') => (end, escaped) = (end + 2, true),
            Some(b'"') => break,
            Some(_) => end += 1,
            None => return Err(bad()),
        }
    }
    let quoted = &json[start..=end];
    let name = if escaped {
        Cow::Owned(serde_json::from_str::<String>(quoted).map_err(|_| bad())?)
    } else {
        Cow::Borrowed(&quoted[1..quoted.len() - 1])
    };
    let after = skip_ws(b, end + 1);
    let rest = match b.get(after) {
        Some(b',') => &json[after + 1..],
        _ => "]", // valid JSON: the array ends after its name
    };
    let mut args = String::with_capacity(rest.len() + 1);
    args.push('[');
    args.push_str(rest);
    Ok((name, args))
}

/// The index of the first byte at or after `i` that is not JSON whitespace.
fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

/// One packet.
#[derive(Clone, Debug, PartialEq)]
pub struct Packet {
    /// Type.
    pub kind: Kind,
    /// Namespace (`/` when omitted on the wire).
    pub nsp: String,
    /// Acknowledgement id, if one is requested or answered.
    pub id: Option<u64>,
    /// JSON data.
    pub data: Option<Value>,
    /// Number of binary attachments that follow (binary kinds).
    pub attachments: usize,
}

fn malformed(why: impl Into<String>) -> Error {
    Error::new(ErrorCode::Protocol, format!("malformed Socket.IO packet: {}", why.into()))
}

impl Packet {
    /// A packet without data or id.
    pub fn new(kind: Kind, nsp: &str) -> Packet {
        Packet { kind, nsp: nsp.to_string(), id: None, data: None, attachments: 0 }
    }

    /// Decodes the text of an Engine.IO message.
    pub fn decode(text: &str) -> Result<Packet> {
        let h = Header::parse(text)?;
        let data = if h.json.is_empty() {
            None
        } else {
            Some(
                serde_json::from_str::<Value>(h.json)
                    .map_err(|e| malformed(format!("bad JSON: {e}")))?,
            )
        };
        let p = Packet {
            kind: h.kind,
            nsp: h.nsp.to_string(),
            id: h.id,
            data,
            attachments: h.attachments,
        };
        p.validate()?;
        Ok(p)
    }

    fn validate(&self) -> Result<()> {
        match self.kind {
            Kind::Event | Kind::BinaryEvent => match &self.data {
                Some(Value::Array(a)) if a.first().is_some_and(Value::is_string) => Ok(()),
                _ => Err(malformed("an event must be a non-empty array starting with its name")),
            },
            Kind::Ack | Kind::BinaryAck => match (&self.data, self.id) {
                (Some(Value::Array(_)), Some(_)) => Ok(()),
                _ => Err(malformed("an ack needs an id and an array")),
            },
            Kind::Connect => match &self.data {
                None | Some(Value::Object(_)) => Ok(()),
                _ => Err(malformed("connect data must be an object")),
            },
            // As socket.io-parser (3.x and 4.x): a disconnect carries no data. Accepting some
            // would also make `1 5` (data 5) re-encode as `15` (ack id 5).
            Kind::Disconnect => match self.data {
                None => Ok(()),
                Some(_) => Err(malformed("a disconnect carries no data")),
            },
            Kind::ConnectError => match &self.data {
                None | Some(Value::Object(_)) | Some(Value::String(_)) => Ok(()),
                _ => Err(malformed("connect error data must be an object or a string")),
            },
        }
    }

    /// Encodes the packet (the Engine.IO `4` prefix is not included).
    pub fn encode(&self) -> String {
        let data = self.data.as_ref().map(|d| d.to_string());
        self.encode_with_raw(data.as_deref())
    }

    /// Encodes with already-serialized JSON data (avoids a parse/serialize round trip).
    pub fn encode_with_raw(&self, data: Option<&str>) -> String {
        let mut s = String::with_capacity(16 + self.nsp.len() + data.map_or(0, str::len));
        s.push(self.kind.digit());
        if self.kind.is_binary() {
            s.push_str(&self.attachments.to_string());
            s.push('-');
        }
        if self.nsp != "/" {
            s.push_str(&self.nsp);
            s.push(',');
        }
        if let Some(id) = self.id {
            s.push_str(&id.to_string());
        }
        if let Some(d) = data {
            s.push_str(d);
        }
        s
    }

    /// The error message of a `ConnectError` (object `message` or plain string).
    pub fn error_message(&self) -> String {
        match &self.data {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Object(o)) => {
                o.get("message").and_then(Value::as_str).unwrap_or("refused").to_string()
            }
            _ => "refused".to_string(),
        }
    }
}

/// Checks that the `{"_placeholder":true,"num":n}` markers in `value` name `0..count`
/// exactly once each.
pub fn check_placeholders(value: &Value, count: usize) -> Result<()> {
    fn walk(v: &Value, seen: &mut Vec<bool>) -> Result<()> {
        match v {
            Value::Object(o) if o.get("_placeholder") == Some(&Value::Bool(true)) => {
                let n = o
                    .get("num")
                    .and_then(Value::as_u64)
                    .ok_or_else(|| malformed("placeholder without num"))?;
                let slot = seen
                    .get_mut(n as usize)
                    .ok_or_else(|| malformed("placeholder beyond the attachments"))?;
                if std::mem::replace(slot, true) {
                    return Err(malformed("placeholder used twice"));
                }
                Ok(())
            }
            Value::Object(o) => o.values().try_for_each(|v| walk(v, seen)),
            Value::Array(a) => a.iter().try_for_each(|v| walk(v, seen)),
            _ => Ok(()),
        }
    }
    let mut seen = vec![false; count];
    walk(value, &mut seen)?;
    if seen.iter().all(|s| *s) {
        Ok(())
    } else {
        Err(malformed("attachment count does not match the placeholders"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decodes_the_documented_shapes() {
        let p = Packet::decode("0/v2,").unwrap();
        assert_eq!((p.kind, p.nsp.as_str(), p.data), (Kind::Connect, "/v2", None));
        let p = Packet::decode(r#"0/v2,{"sid":"oSO0OpakMV_3jnilAAAA"}"#).unwrap();
        assert_eq!(p.data, Some(json!({"sid":"oSO0OpakMV_3jnilAAAA"})));
        let p = Packet::decode(r#"2/v2,12["event",{}]"#).unwrap();
        assert_eq!((p.kind, p.id), (Kind::Event, Some(12)));
        let p = Packet::decode(r#"3/v2,12["reply"]"#).unwrap();
        assert_eq!((p.kind, p.id, p.data), (Kind::Ack, Some(12), Some(json!(["reply"]))));
        let p = Packet::decode(r#"51-/v2,["up",{"_placeholder":true,"num":0}]"#).unwrap();
        assert_eq!((p.kind, p.attachments, p.nsp.as_str()), (Kind::BinaryEvent, 1, "/v2"));
        check_placeholders(p.data.as_ref().unwrap(), 1).unwrap();
        assert_eq!(Packet::decode("1/v2,").unwrap().kind, Kind::Disconnect);
        let refused = Packet::decode(r#"4/v2,{"message":"Invalid namespace"}"#).unwrap();
        assert_eq!(refused.error_message(), "Invalid namespace");
        let refused = Packet::decode(r#"4/v2,"Invalid namespace""#).unwrap();
        assert_eq!(refused.error_message(), "Invalid namespace");
        assert_eq!(Packet::decode("0").unwrap().nsp, "/");
        assert_eq!(Packet::decode(r#"2["hi"]"#).unwrap().nsp, "/");
        assert_eq!(Packet::decode("0/v2?token=x,").unwrap().nsp, "/v2");
    }

    #[test]
    fn refuses_bad_packets() {
        for bad in [
            "",
            "7",
            "x",
            "2",
            r#"2"notarray""#,
            "2[]",
            "2[1]",
            r#"3["no id"]"#,
            "5-[\"e\"]",
            "5x-[\"e\"]",
            "5999999-[\"e\"]",
            r#"2["e""#,
            "0[1]",
            "4[1]",
            "31{}",
            // A disconnect has no data; `1 5` would re-encode as `15` (ack id 5).
            "1 5",
            "1[1]",
            "1/chat,{}",
        ] {
            assert!(Packet::decode(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn encodes_round_trip() {
        for text in [
            "0/v2,",
            r#"0{"token":"t"}"#,
            r#"2/chat,7["e",1]"#,
            r#"61-3[{"_placeholder":true,"num":0}]"#,
            "1",
        ] {
            assert_eq!(Packet::decode(text).unwrap().encode(), text);
        }
    }

    #[test]
    fn splits_events_without_a_tree() {
        let (name, args) = split_event(r#" [ "tick", {"i": 1}, [2,3] ,"x"] "#).unwrap();
        assert!(matches!(name, Cow::Borrowed("tick")), "borrowed: {name:?}");
        assert_eq!(args, r#"[ {"i": 1}, [2,3] ,"x"] "#);
        let (name, args) = split_event(r#"["a\"b\\" ]"#).unwrap();
        assert_eq!((name.as_ref(), args.as_str()), ("a\"b\\", "[]"));
        for bad in ["[]", "[1]", "{}", "[\"e\"", "nope", "[\"e\",]", "\"e\"", "[{\"e\":1}]"] {
            assert!(split_event(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn floats_parse_exactly() {
        // Needs serde_json's `float_roundtrip`: its default parser is off by one ulp here,
        // and on its own output for this value.
        let p = Packet::decode(r#"2["n",1.844674407e37]"#).unwrap();
        assert_eq!(p.data, Some(json!(["n", 1.844674407e37])));
        assert_eq!(Packet::decode(&p.encode()).unwrap(), p);
    }

    #[test]
    fn placeholders_must_match() {
        let v = json!(["e", {"_placeholder":true,"num":0}, [{"_placeholder":true,"num":1}]]);
        assert!(check_placeholders(&v, 2).is_ok());
        assert!(check_placeholders(&v, 3).is_err());
        assert!(check_placeholders(&v, 1).is_err());
        let twice = json!([{"_placeholder":true,"num":0},{"_placeholder":true,"num":0}]);
        assert!(check_placeholders(&twice, 2).is_err());
    }
}
