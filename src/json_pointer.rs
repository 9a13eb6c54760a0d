//! RFC 6901 JSON pointer lookups straight over the JSON text.
//!
//! One validating pass over the document, skipping what the pointer does not lead into:
//! no tree is built and nothing is allocated (a host reading a few fields of each
//! message pays for those, not for a parse of everything). The answer is the value's own
//! text, a slice of the input. It agrees with `serde_json::Value::pointer` on a parsed
//! document: the whole document must be valid JSON, the last of duplicate keys wins, and
//! array indexes are decimal without leading zeros (the fuzz target `json_pointer`
//! checks the two against each other). Skipped values are checked as strictly as a parse
//! checks them (numbers in range, `\u` escapes paired), only not kept.

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use std::fmt;

/// The text of the value at `pointer` (`""`: the whole document) in the JSON document
/// `json`; `None` when there is no such value or `json` is not one valid JSON document.
pub fn find<'a>(json: &'a [u8], pointer: &str) -> Option<&'a RawValue> {
    if !pointer.is_empty() && !pointer.starts_with('/') {
        return None;
    }
    let mut de = serde_json::Deserializer::from_slice(json);
    let found = Seek { rest: pointer, depth: 0 }.deserialize(&mut de).ok()?;
    de.end().ok()?;
    // serde_json takes a raw value's text as it comes: check it as a parse would, nesting
    // limit included (counted from the document's top, hence the brackets around it).
    let (found, depth) = found?;
    if depth > 0 && matches!(kind(found), Kind::Array | Kind::Object) {
        let mut nested = "[".repeat(depth);
        nested.push_str(found.get());
        nested.push_str(&"]".repeat(depth));
        serde_json::from_str::<Skip>(&nested).ok()?;
    } else {
        serde_json::from_str::<Skip>(found.get()).ok()?;
    }
    Some(found)
}

/// A value read and checked, then dropped. (serde's `IgnoredAny` lets serde_json skip
/// strings and numbers without checking their escapes and ranges.)
struct Skip;

impl<'de> Deserialize<'de> for Skip {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Skip, D::Error> {
        d.deserialize_any(SkipVisitor)
    }
}

struct SkipVisitor;

impl<'de> Visitor<'de> for SkipVisitor {
    type Value = Skip;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Skip, A::Error> {
        while map.next_entry::<Skip, Skip>()?.is_some() {}
        Ok(Skip)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Skip, A::Error> {
        while seq.next_element::<Skip>()?.is_some() {}
        Ok(Skip)
    }
}

/// What a raw JSON value is, by its first byte.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum Kind {
    /// `null`
    Null,
    /// `true` or `false`
    Bool,
    /// A number.
    Number,
    /// A string.
    String,
    /// An array.
    Array,
    /// An object.
    Object,
}

/// The kind of a value [`find`] returned.
pub fn kind(raw: &RawValue) -> Kind {
    match raw.get().as_bytes().first() {
        Some(b'n') => Kind::Null,
        Some(b't' | b'f') => Kind::Bool,
        Some(b'"') => Kind::String,
        Some(b'[') => Kind::Array,
        Some(b'{') => Kind::Object,
        _ => Kind::Number,
    }
}

/// The next reference token of `pointer` (which starts with '/'), still escaped, and
/// the pointer after it.
fn split(pointer: &str) -> (&str, &str) {
    let tail = &pointer[1..];
    match tail.find('/') {
        Some(i) => (&tail[..i], &tail[i..]),
        None => (tail, ""),
    }
}

/// Whether an escaped reference token (`~1` is '/', `~0` is '~') names `key`.
fn token_is(token: &str, key: &str) -> bool {
    if !token.contains('~') {
        return token == key;
    }
    // Rare: unescaped the way serde_json's pointer does it, invalid escapes kept.
    token.replace("~1", "/").replace("~0", "~") == key
}

/// An array index token: decimal, no sign, no leading zero.
fn index(token: &str) -> Option<usize> {
    if token.starts_with('+') || (token.starts_with('0') && token.len() != 1) {
        return None;
    }
    token.parse().ok()
}

/// Follows `rest` into the value being read, `depth` containers down; every other
/// value is skipped. Finds the value and its depth.
struct Seek<'p> {
    rest: &'p str,
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for Seek<'_> {
    type Value = Option<(&'de RawValue, usize)>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        if self.rest.is_empty() {
            return <&RawValue>::deserialize(d).map(|raw| Some((raw, self.depth)));
        }
        d.deserialize_any(self)
    }
}

/// Whether a map key is the token looked for.
struct KeyIs<'p>(&'p str);

impl<'de> DeserializeSeed<'de> for KeyIs<'_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyIs<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<bool, E> {
        Ok(token_is(self.0, key))
    }
}

impl<'de> Visitor<'de> for Seek<'_> {
    type Value = Option<(&'de RawValue, usize)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (token, rest) = split(self.rest);
        let mut found = None;
        while let Some(hit) = map.next_key_seed(KeyIs(token))? {
            if hit {
                // The last of duplicate keys wins, as in a parsed object.
                found = map.next_value_seed(Seek { rest, depth: self.depth + 1 })?;
            } else {
                map.next_value::<Skip>()?;
            }
        }
        Ok(found)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let (token, rest) = split(self.rest);
        let wanted = index(token);
        let mut found = None;
        let mut i = 0;
        loop {
            if Some(i) == wanted {
                match seq.next_element_seed(Seek { rest, depth: self.depth + 1 })? {
                    Some(v) => found = v,
                    None => break,
                }
            } else if seq.next_element::<Skip>()?.is_none() {
                break;
            }
            i += 1;
        }
        Ok(found)
    }

    // A scalar where the pointer wants to go deeper: nothing there.
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn at<'a>(json: &'a str, pointer: &str) -> Option<&'a str> {
        find(json.as_bytes(), pointer).map(RawValue::get)
    }

    #[test]
    fn finds_values_as_their_text() {
        let doc = r#" {"a": {"b": [1, true, "x\"y", null, {"c": 2.5}]}, "": 7, "m~n/o": 8} "#;
        assert_eq!(at(doc, "/a/b/0"), Some("1"));
        assert_eq!(at(doc, "/a/b/2"), Some(r#""x\"y""#));
        assert_eq!(at(doc, "/a/b/3"), Some("null"));
        assert_eq!(at(doc, "/a/b/4/c"), Some("2.5"));
        assert_eq!(at(doc, "/"), Some("7"));
        assert_eq!(at(doc, "/m~0n~1o"), Some("8"));
        assert_eq!(at(doc, "").map(str::trim), Some(doc.trim()));
        assert_eq!(kind(find(doc.as_bytes(), "/a/b").unwrap()), Kind::Array);
    }

    #[test]
    fn misses_are_none() {
        let doc = r#"{"a": [0, 1], "s": "text"}"#;
        for pointer in ["/b", "/a/2", "/a/01", "/a/-", "/a/+1", "/s/0", "a", "/a/0/x"] {
            assert_eq!(at(doc, pointer), None, "{pointer}");
        }
        // The whole document must be JSON, also after the value looked for.
        assert_eq!(at(r#"{"a": 1, "b": [}"#, "/a"), None);
        assert_eq!(at(r#"{"a": 1, "b": }"#, "/a"), None);
        assert_eq!(at(r#"{"a": 1} x"#, "/a"), None);
    }

    #[test]
    fn skipped_values_are_checked_as_a_parse_checks_them() {
        for doc in [r#"{"a": 1, "big": 1e400}"#, r#"{"a": 1, "s": "\ude00"}"#] {
            assert!(serde_json::from_str::<Value>(doc).is_err(), "{doc}");
            assert_eq!(at(doc, "/a"), None, "{doc}");
        }
        assert_eq!(at(r#"{"a": "\ud800"}"#, "/a"), None, "the value found, too");
        // Nesting counts from the top of the document, as in a parse.
        for n in [126, 127, 128] {
            let doc = format!(r#"{{"a": {}{}}}"#, "[".repeat(n), "]".repeat(n));
            let parsed = serde_json::from_str::<Value>(&doc).ok();
            assert_eq!(at(&doc, "/a").is_some(), parsed.is_some(), "{n} levels");
        }
    }

    #[test]
    fn agrees_with_a_parsed_document() {
        let doc = r#"{"k": 1, "k": {"z": 2}, "arr": [[], [{"q": "é\u00e9"}]], "~": 3}"#;
        let value: Value = serde_json::from_str(doc).unwrap();
        for pointer in ["", "/k", "/k/z", "/arr/1/0/q", "/arr/0", "/~0", "/~", "/arr/1/0/r"] {
            let ours = find(doc.as_bytes(), pointer)
                .map(|raw| serde_json::from_str::<Value>(raw.get()).unwrap());
            assert_eq!(ours.as_ref(), value.pointer(pointer), "{pointer}");
        }
    }
}
