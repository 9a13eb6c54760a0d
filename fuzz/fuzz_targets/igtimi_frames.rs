//! Fuzzes the Igtimi message mapping (`livefeed::vendors::igtimi`): the classification and
//! mapping of every server text frame (`map_frame`) and the server-list reader.
//!
//! Input: the whole input (lossy UTF-8) is one text frame, and also a server-list body.
//!
//! Checks, besides "never panics": each sample set's topic is `SERIAL/TYPE` with a decimal
//! type and a serial no longer than the limit, its JSON parses and names the same serial,
//! type and dsi, every row's `v` is at most `MAX_COMPONENTS` wide; the report counts the
//! sets handed out; the events of a frame are at most a constant factor larger than the
//! frame (bounded memory); errors are `Protocol`; a server list yields 1..=MAX_SERVERS
//! ws/wss URLs.

#![no_main]

use libfuzzer_sys::fuzz_target;
use livefeed::ErrorCode;
use livefeed::url::Scheme;
use livefeed::vendors::igtimi::frames::{
    Frame, MAX_COMPONENTS, MAX_SERIAL, MAX_SERVERS, SampleSet, map_frame, parse_server_list,
};
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut sets = 0usize;
    let mut bytes = 0usize;
    let result = map_frame(&text, &mut |s: &SampleSet<'_>| {
        sets += 1;
        bytes += s.json.len();
        assert_eq!(s.topic, format!("{}/{}", s.serial, s.data_type));
        assert!(!s.serial.is_empty() && s.serial.len() <= MAX_SERIAL);
        assert!(!s.data_type.is_empty() && s.data_type.bytes().all(|b| b.is_ascii_digit()));
        let json: Value = serde_json::from_str(s.json).expect("sample sets are JSON");
        assert_eq!(json["serial"].as_str(), Some(s.serial));
        assert_eq!(json["type"].to_string(), s.data_type);
        assert_eq!(json["dsi"].as_u64(), Some(s.dsi));
        let samples = json["samples"].as_array().expect("samples is an array");
        assert!(!samples.is_empty());
        for row in samples {
            assert!(row["t"].is_number());
            let width = row["v"].as_array().expect("v is an array").len();
            assert!(width <= MAX_COMPONENTS);
        }
    });
    match result {
        Ok(Frame::Data(report)) => {
            assert_eq!(report.sets, sets);
            assert_eq!(report.summary().is_some(), report.skipped > 0);
            assert!(report.problems.len() <= report.skipped);
        }
        Ok(_) => assert_eq!(sets, 0),
        Err(e) => assert_eq!(e.code, ErrorCode::Protocol),
    }
    assert!(bytes <= 32 * text.len() + 512, "{bytes} bytes of events from {} bytes", text.len());

    match parse_server_list(data) {
        Ok((servers, _skipped)) => {
            assert!(!servers.is_empty() && servers.len() <= MAX_SERVERS);
            assert!(servers.iter().all(|u| matches!(u.scheme, Scheme::Ws | Scheme::Wss)));
        }
        Err(e) => assert_eq!(e.code, ErrorCode::Protocol),
    }
});
