//! Fuzzes the Engine.IO codec (`livefeed::engineio::codec`): long-polling payloads as they come
//! off an HTTP body, WebSocket text and binary frames, open packets and base64.
//!
//! Input layout (also in fuzz/README.md):
//!   byte 0   bit 0: protocol revision (0: v3, 1: v4), for the raw framing
//!            bits 1-2: framing of the rest
//!              0, 3  raw: the rest is the body as it came off the wire
//!              1     v3 text built here: the rest is split at `\n` into packets, each sent
//!                    as `<its length in UTF-16 units>:<packet>` (revision v3; pieces that are
//!                    not UTF-8 are dropped)
//!              2     v3 XHR2 binary built here: the rest is split at `\n`; each piece's first
//!                    byte (bit 0) says string (0) or binary (1), the others are the packet,
//!                    sent as `<0|1><length digits><0xFF><packet>` (revision v3)
//!   rest     the body / packets
//!
//! The built framings let the fuzzer change a packet without having to fix its declared
//! length; the raw one lets it break the framing itself. In the built framings the frame
//! checks below run on the first `FRAME_CHECKS` pieces only (thousands of one-byte pieces
//! would otherwise slow the target down tenfold).
//!
//! Checks, besides "never panics" (on every function below):
//!   - `decode_payload(body, version)`: when it succeeds, the packets
//!       - match an independent split of the body: v3 text `<len>:<packet>` segments whose
//!         declared lengths count UTF-16 units, v3 XHR2 binary frames, v4 `\x1e`-separated
//!         segments; each text packet re-encodes to exactly its segment and each binary
//!         packet is the base64 (or raw bytes) of its segment;
//!       - re-encode with `encode_payload` to a body that decodes to the same packets, and
//!         whose re-encoding is the same body (a fixed point);
//!       - also survive a round trip through the other revision's framing (v4 cannot carry
//!         `\x1e` inside a packet nor an empty list, so those are skipped);
//!   - `decode_payload` in v3 text framing does not refuse a body whose independent split
//!     has only valid packets.
//!   - `decode_text` / `decode_binary`: succeed exactly on a known type / always in v4, and
//!     `encode_text` / `encode_binary` give back the input.
//!   - `OpenInfo::parse` on the body and on the data of an open packet.
//!   - `base64_decode`: accepts exactly the alphabet with `len % 4 != 1` (after trailing `=`),
//!     yields `len * 6 / 8` bytes, and `base64_encode` of them decodes back to them.

#![no_main]

use libfuzzer_sys::fuzz_target;
use livefeed::engineio::OpenInfo;
use livefeed::engineio::codec::{
    Packet, PacketType, Version, base64_decode, base64_encode, decode_binary, decode_payload,
    decode_text, encode_binary, encode_payload, encode_text,
};

const SEPARATOR: char = '\u{1e}';
const FRAME_CHECKS: usize = 4;

fn other(version: Version) -> Version {
    match version {
        Version::V3 => Version::V4,
        Version::V4 => Version::V3,
    }
}

/// Independent v3 text framing: the segments `<len>:<packet>`, `len` in UTF-16 units,
/// or `None` when the framing itself is broken.
fn split_v3_text(text: &str) -> Option<Vec<&str>> {
    let mut segments = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let colon = rest.find(':')?;
        let declared = &rest[..colon];
        if declared.is_empty()
            || declared.len() > 10
            || !declared.chars().all(|c| c.is_ascii_digit())
        {
            return None;
        }
        let units: u64 = declared.parse().ok()?;
        let after = &rest[colon + 1..];
        let mut end = None;
        let mut counted = 0u64;
        if units == 0 {
            end = Some(0);
        } else {
            for (i, c) in after.char_indices() {
                counted += c.len_utf16() as u64;
                if counted >= units {
                    // A surrogate pair may not straddle the declared end.
                    end = (counted == units).then_some(i + c.len_utf8());
                    break;
                }
            }
        }
        let end = end?;
        let segment = &after[..end];
        assert_eq!(segment.encode_utf16().count() as u64, units);
        segments.push(segment);
        rest = &after[end..];
    }
    Some(segments)
}

/// Independent v3 XHR2 binary framing: `(is_binary, bytes)` per frame.
fn split_v3_binary(mut body: &[u8]) -> Option<Vec<(bool, &[u8])>> {
    let mut frames = Vec::new();
    while let Some((&kind, rest)) = body.split_first() {
        let sep = rest.iter().position(|&b| b == 0xFF)?;
        let digits = &rest[..sep];
        if digits.is_empty() || digits.len() > 10 || digits.iter().any(|&d| d > 9) {
            return None;
        }
        let len = digits.iter().fold(0u64, |n, &d| n * 10 + u64::from(d));
        let data = rest.get(sep + 1..)?;
        if (data.len() as u64) < len {
            return None;
        }
        let (data, next) = data.split_at(len as usize);
        frames.push((kind != 0, data));
        body = next;
    }
    Some(frames)
}

/// The text packet's exact wire form, or a binary packet's base64 form after `prefix`.
fn check_text_segment(packet: &Packet, segment: &str, binary_prefix: &str) {
    match packet {
        Packet::Text(kind, data) => {
            assert_eq!(encode_text(*kind, data), segment, "text packet differs from its segment")
        }
        Packet::Binary(data) => {
            let b64 = segment
                .strip_prefix(binary_prefix)
                .unwrap_or_else(|| panic!("binary packet from segment {segment:?}"));
            assert_eq!(&base64_decode(b64).expect("segment was accepted"), data);
        }
    }
}

/// Whether a v3 text segment is a valid packet on its own.
fn v3_segment_ok(segment: &str) -> bool {
    match segment.strip_prefix("b4") {
        Some(b64) => base64_decode(b64).is_ok(),
        None => !segment.starts_with('b') && decode_text(segment).is_ok(),
    }
}

fn check_payload(body: &[u8], version: Version) {
    let decoded = decode_payload(body, version);
    let v3_binary = version == Version::V3 && matches!(body.first(), Some(0 | 1));

    // Against an independent reading of the framing.
    match (version, v3_binary) {
        (Version::V3, true) => {
            if let Ok(packets) = &decoded {
                let frames = split_v3_binary(body).expect("accepted XHR2 payload has frames");
                assert_eq!(frames.len(), packets.len(), "one packet per XHR2 frame");
                for (p, (is_binary, data)) in packets.iter().zip(frames) {
                    match p {
                        Packet::Text(kind, text) => {
                            assert!(!is_binary, "text packet from a binary frame");
                            assert_eq!(encode_text(*kind, text).as_bytes(), data);
                        }
                        Packet::Binary(bytes) => {
                            assert!(is_binary, "binary packet from a string frame");
                            assert_eq!(encode_binary(bytes, Version::V3), data);
                        }
                    }
                }
            }
        }
        (Version::V3, false) => {
            let segments = std::str::from_utf8(body).ok().and_then(split_v3_text);
            match &decoded {
                Ok(packets) => {
                    let segments = segments.expect("accepted v3 payload has valid framing");
                    assert_eq!(segments.len(), packets.len(), "one packet per declared length");
                    for (p, s) in packets.iter().zip(&segments) {
                        check_text_segment(p, s, "b4");
                    }
                }
                Err(_) => {
                    if let Some(segments) = segments {
                        assert!(
                            !segments.iter().all(|s| v3_segment_ok(s)),
                            "v3 payload refused although every segment {segments:?} is valid"
                        );
                    }
                }
            }
        }
        (Version::V4, _) => {
            if let Ok(packets) = &decoded {
                let text = std::str::from_utf8(body).expect("accepted v4 payload is UTF-8");
                let segments: Vec<&str> = text.split(SEPARATOR).collect();
                assert_eq!(segments.len(), packets.len(), "one packet per \\x1e segment");
                for (p, s) in packets.iter().zip(&segments) {
                    check_text_segment(p, s, "b");
                }
            }
        }
    }

    let Ok(packets) = decoded else { return };
    // Round trip through our own encoder, in the same revision and in the other one.
    for v in [version, other(version)] {
        let representable = match v {
            Version::V3 => true,
            Version::V4 => {
                !packets.is_empty()
                    && packets.iter().all(|p| match p {
                        Packet::Text(_, data) => !data.contains(SEPARATOR),
                        Packet::Binary(_) => true,
                    })
            }
        };
        if !representable {
            continue;
        }
        let encoded = encode_payload(&packets, v);
        let again = decode_payload(encoded.as_bytes(), v)
            .unwrap_or_else(|e| panic!("re-encoded {v:?} payload {encoded:?} refused: {e:?}"));
        assert_eq!(again, packets, "{v:?} round trip changed the packets (body {encoded:?})");
        assert_eq!(encode_payload(&again, v), encoded, "{v:?} encoding is not a fixed point");
        if v == Version::V3 {
            let segments = split_v3_text(&encoded).expect("our v3 encoding has valid framing");
            assert_eq!(segments.len(), packets.len());
        }
    }
}

fn check_frames(body: &[u8], version: Version) {
    match decode_binary(body, version) {
        Ok(Packet::Binary(data)) => {
            assert_eq!(encode_binary(&data, version), body, "binary frame round trip")
        }
        Ok(p) => panic!("decode_binary gave {p:?}"),
        Err(_) => assert!(
            version == Version::V3 && body.first() != Some(&4),
            "binary frame refused: {body:?}"
        ),
    }
    let Ok(text) = std::str::from_utf8(body) else { return };
    let known = matches!(text.as_bytes().first(), Some(b'0'..=b'6'));
    match decode_text(text) {
        Ok(Packet::Text(kind, data)) => {
            assert!(known);
            assert_eq!(encode_text(kind, &data), text, "text frame round trip");
            if kind == PacketType::Open {
                check_open(&data);
            }
        }
        Ok(p) => panic!("decode_text gave {p:?}"),
        Err(_) => assert!(!known, "text frame with a known type refused: {text:?}"),
    }
    check_open(text);
    check_base64(text);
}

fn check_open(json: &str) {
    if let Ok(info) = OpenInfo::parse(json) {
        let v4 = info.max_payload.is_some();
        assert_eq!(info.version(), if v4 { Version::V4 } else { Version::V3 });
    }
}

fn check_base64(text: &str) {
    let trimmed = text.trim_end_matches('=');
    let valid = trimmed.len() % 4 != 1
        && trimmed.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/');
    match base64_decode(text) {
        Ok(data) => {
            assert!(valid, "base64 {text:?} accepted");
            assert_eq!(data.len(), trimmed.len() * 6 / 8, "decoded length of {text:?}");
            let canonical = base64_encode(&data);
            assert_eq!(canonical.len(), data.len().div_ceil(3) * 4);
            assert_eq!(base64_decode(&canonical).expect("own base64 refused"), data);
        }
        Err(_) => assert!(!valid, "valid base64 {text:?} refused"),
    }
}

/// `<len>:<packet>` per piece, `len` in UTF-16 units.
fn build_v3_text(pieces: &[&[u8]]) -> Vec<u8> {
    let mut body = String::new();
    for piece in pieces {
        if let Ok(packet) = std::str::from_utf8(piece) {
            body.push_str(&packet.encode_utf16().count().to_string());
            body.push(':');
            body.push_str(packet);
        }
    }
    body.into_bytes()
}

/// `<0|1><length digits><0xFF><packet>` per piece; the piece's first byte picks the kind.
fn build_v3_binary(pieces: &[&[u8]]) -> Vec<u8> {
    let mut body = Vec::new();
    for piece in pieces {
        let Some((&kind, packet)) = piece.split_first() else { continue };
        body.push(kind & 1);
        body.extend(packet.len().to_string().bytes().map(|d| d - b'0'));
        body.push(0xFF);
        body.extend_from_slice(packet);
    }
    body
}

fuzz_target!(|input: &[u8]| {
    let [flags, rest @ ..] = input else { return };
    let pieces = || rest.split(|&b| b == b'\n').collect::<Vec<_>>();
    match (flags >> 1) & 3 {
        1 => {
            let pieces = pieces();
            check_payload(&build_v3_text(&pieces), Version::V3);
            for piece in pieces.into_iter().take(FRAME_CHECKS) {
                check_frames(piece, Version::V3);
            }
        }
        2 => {
            let pieces = pieces();
            check_payload(&build_v3_binary(&pieces), Version::V3);
            for piece in pieces.into_iter().take(FRAME_CHECKS) {
                check_frames(piece, Version::V3);
            }
        }
        _ => {
            let version = if flags & 1 == 0 { Version::V3 } else { Version::V4 };
            check_payload(rest, version);
            check_frames(rest, version);
        }
    }
});
