//! The Igtimi wire text, without sockets (PROTOCOLS.md §1.2–§1.4): what a server frame is
//! (heartbeat, timestamp, data), how a data frame becomes one sample set per device and
//! data type, and how the server list reads.

use crate::error::{Error, ErrorCode, Result};
use crate::url::{Scheme, Url};
use serde_json::{Map, Value};

/// Highest value component ("1", "2", ...) kept: a key such as "4000000000" must not make
/// us allocate billions of nulls, and every row is padded to the widest component, so this
/// also bounds how much larger than the frame its events can be. Known types have at most
/// three.
pub const MAX_COMPONENTS: usize = 8;

/// Longest device serial accepted (real ones look like `GA-DK-AAAD`): the serial is repeated
/// in every event of its device, so an unbounded one would make output grow with the square
/// of the input.
pub const MAX_SERIAL: usize = 64;

/// Most servers taken from one server list (each may cost a connect deadline).
pub const MAX_SERVERS: usize = 16;

/// Problems described in detail per data frame; further ones are only counted.
const MAX_PROBLEMS: usize = 4;

/// What a text frame from the server was.
#[derive(Debug, PartialEq)]
pub enum Frame {
    /// The heartbeat `1`.
    Heartbeat,
    /// The server's clock, JS epoch milliseconds: the answer to the configuration block.
    Timestamp(i64),
    /// A data array; its sample sets went to the callback.
    Data(DataReport),
}

/// What became of a data frame.
#[derive(Debug, Default, PartialEq)]
pub struct DataReport {
    /// Sample sets handed to the callback.
    pub sets: usize,
    /// Parts that did not have the documented shape and were skipped (or, for components,
    /// padded); the first few are described in `problems`.
    pub skipped: usize,
    /// Descriptions of the first skipped parts.
    pub problems: Vec<String>,
}

impl DataReport {
    fn problem(&mut self, what: String) {
        self.skipped += 1;
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(what);
        }
    }

    /// One line for an error event, or `None` when nothing was skipped.
    pub fn summary(&self) -> Option<String> {
        if self.skipped == 0 {
            return None;
        }
        let mut s = format!(
            "igtimi: {} malformed part(s) of a data frame skipped: {}",
            self.skipped,
            self.problems.join("; ")
        );
        if self.skipped > self.problems.len() {
            s.push_str("; ...");
        }
        Some(s)
    }
}

/// The samples of one data type of one device, from one object of a data frame.
#[derive(Debug)]
pub struct SampleSet<'a> {
    /// The device serial number, such as `GA-DK-AAAD`.
    pub serial: &'a str,
    /// The data type code as decimal text (`"1"` = GPS position, ...; unknown codes too).
    pub data_type: &'a str,
    /// The data-source identifier after `:` in a `type:dsi` key (0 when absent).
    pub dsi: u64,
    /// `SERIAL/TYPE`, the event topic.
    pub topic: &'a str,
    /// The samples as JSON:
    /// `{"serial":S,"type":N,"dsi":D,"samples":[{"t":MS,"v":[C1,C2,...]},...]}`, where
    /// `v[i]` is component `"i+1"` (null where the server sent none).
    pub json: &'a str,
}

/// A short, quoted excerpt of peer text for an error message.
pub fn excerpt(text: &str) -> String {
    const MAX: usize = 48;
    match text.char_indices().nth(MAX) {
        Some((end, _)) => format!("{:?}...", &text[..end]),
        None => format!("{text:?}"),
    }
}

fn protocol(message: String) -> Error {
    Error::new(ErrorCode::Protocol, message)
}

/// Classifies a text frame the way the vendor's own client does (PROTOCOLS.md §1.4 step 5):
/// `1` is a heartbeat, a frame starting with `[` is data, anything else must be the
/// timestamp. Each sample set of a data frame goes to `emit`, in frame order.
///
/// Errors (`Protocol`): a data frame that is not a JSON array, or a frame that is neither a
/// heartbeat nor a number. Parts of a data array that do not have the documented shape are
/// skipped and reported in [`DataReport`]; unknown data types are mapped like known ones.
pub fn map_frame(text: &str, emit: &mut dyn FnMut(&SampleSet<'_>)) -> Result<Frame> {
    let text = text.trim();
    if text == "1" {
        return Ok(Frame::Heartbeat);
    }
    if text.starts_with('[') {
        let Ok(Value::Array(items)) = serde_json::from_str::<Value>(text) else {
            return Err(protocol(format!(
                "igtimi: a data frame that is not a JSON array: {}",
                excerpt(text)
            )));
        };
        return Ok(Frame::Data(map_items(&items, emit)));
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Number(n)) => {
            let ms = n.as_i64().or_else(|| {
                n.as_f64().filter(|f| f.is_finite() && f.abs() < 9.0e18).map(|f| f as i64)
            });
            match ms {
                Some(ms) => Ok(Frame::Timestamp(ms)),
                None => Err(protocol(format!("igtimi: timestamp out of range: {}", excerpt(text)))),
            }
        }
        Ok(_) => Err(protocol(format!(
            "igtimi: unexpected JSON (not a heartbeat, timestamp or data array): {}",
            excerpt(text)
        ))),
        Err(_) => Err(protocol(format!(
            "igtimi: a frame that is not JSON (not a heartbeat, timestamp or data array): {}",
            excerpt(text)
        ))),
    }
}

fn map_items(items: &[Value], emit: &mut dyn FnMut(&SampleSet<'_>)) -> DataReport {
    let mut report = DataReport::default();
    let mut topic = String::new();
    for (i, item) in items.iter().enumerate() {
        let Some(devices) = item.as_object() else {
            report.problem(format!("element {i} is not an object"));
            continue;
        };
        for (serial, types) in devices {
            let serial = serial.trim();
            let Some(types) = types.as_object() else {
                report.problem(format!("device {} is not an object", excerpt(serial)));
                continue;
            };
            if serial.is_empty() || serial.len() > MAX_SERIAL {
                report.problem(format!("device serial {} is empty or too long", excerpt(serial)));
                continue;
            }
            for (key, packed) in types {
                let Some((number, dsi)) = type_key(key) else {
                    report.problem(format!(
                        "device {}: type key {} is not TYPE or TYPE:DSI",
                        excerpt(serial),
                        excerpt(key)
                    ));
                    continue;
                };
                let code = number.to_string();
                let where_ = || format!("device {} type {}", excerpt(serial), excerpt(key));
                let Some(packed) = packed.as_object() else {
                    report.problem(format!("{} is not an object", where_()));
                    continue;
                };
                let samples = match samples(packed, &mut report, &where_) {
                    Some(s) => s,
                    None => continue,
                };
                if samples.is_empty() {
                    continue;
                }
                let json = set_json(serial, number, dsi, samples);
                topic.clear();
                topic.push_str(serial);
                topic.push('/');
                topic.push_str(&code);
                emit(&SampleSet { serial, data_type: &code, dsi, topic: &topic, json: &json });
                report.sets += 1;
            }
        }
    }
    report
}

fn digits(s: &str) -> Option<&str> {
    let s = s.trim();
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then_some(s)
}

/// `"1"`, `" 1"` or `"13:201"` → (type code, dsi). Whitespace is tolerated (a vendor sample
/// has `" 1"`).
pub fn type_key(key: &str) -> Option<(u32, u64)> {
    let (code, dsi) = match key.split_once(':') {
        Some((c, d)) => (c, Some(d)),
        None => (key, None),
    };
    let code = digits(code)?.parse().ok()?;
    let dsi = match dsi {
        Some(d) => digits(d)?.parse().ok()?,
        None => 0,
    };
    Some((code, dsi))
}

/// A timestamp as JSON: integral values as integers (the docs show `.0` sometimes).
fn time_value(t: &Value) -> Option<Value> {
    let n = t.as_number()?;
    if n.is_i64() || n.is_u64() {
        return Some(t.clone());
    }
    let f = n.as_f64()?;
    if f.fract() == 0.0 && f.abs() < 9.0e15 { Some(Value::from(f as i64)) } else { Some(t.clone()) }
}

/// The rows of one packed object: `t` with the components beside it. `None` when the
/// object cannot be read at all (reported).
fn samples(
    packed: &Map<String, Value>,
    report: &mut DataReport,
    where_: &dyn Fn() -> String,
) -> Option<Vec<Value>> {
    let mut times = None;
    let mut components: Vec<(usize, &Vec<Value>)> = Vec::new();
    for (key, value) in packed {
        let key = key.trim();
        if key == "t" {
            times = Some(value);
            continue;
        }
        let index = key.parse::<usize>().ok().filter(|i| (1..=MAX_COMPONENTS).contains(i));
        match (index, value.as_array()) {
            (Some(i), Some(values)) => components.push((i, values)),
            (Some(_), None) => {
                report.problem(format!("{}: component {} is not an array", where_(), excerpt(key)));
                return None;
            }
            (None, _) => {
                report.problem(format!("{}: unknown member {} ignored", where_(), excerpt(key)))
            }
        }
    }
    let Some(times) = times else {
        report.problem(format!("{}: no \"t\" array", where_()));
        return None;
    };
    let Some(times) = times.as_array() else {
        report.problem(format!("{}: \"t\" is not an array", where_()));
        return None;
    };
    let mut times_ok = Vec::with_capacity(times.len());
    for t in times {
        let Some(t) = time_value(t) else {
            report.problem(format!("{}: a timestamp that is not a number", where_()));
            return None;
        };
        times_ok.push(t);
    }
    components.sort_by_key(|(i, _)| *i);
    let width = components.last().map_or(0, |(i, _)| *i);
    for (i, values) in &components {
        if values.len() != times_ok.len() {
            report.problem(format!(
                "{}: component {i} has {} values for {} timestamps",
                where_(),
                values.len(),
                times_ok.len()
            ));
        }
    }
    let rows = times_ok
        .into_iter()
        .enumerate()
        .map(|(row, t)| {
            let mut v = vec![Value::Null; width];
            for (i, values) in &components {
                if let Some(x) = values.get(row) {
                    v[i - 1] = x.clone();
                }
            }
            let mut sample = Map::with_capacity(2);
            sample.insert("t".into(), t);
            sample.insert("v".into(), Value::Array(v));
            Value::Object(sample)
        })
        .collect();
    Some(rows)
}

fn set_json(serial: &str, code: u32, dsi: u64, samples: Vec<Value>) -> String {
    let mut set = Map::with_capacity(4);
    set.insert("serial".into(), Value::from(serial));
    set.insert("type".into(), Value::from(code));
    set.insert("dsi".into(), Value::from(dsi));
    set.insert("samples".into(), Value::Array(samples));
    Value::Object(set).to_string()
}

/// Reads a server-lister answer `{"web_socket_servers":["wss://...", ...]}` (§1.3): the
/// `ws`/`wss` URLs in order (at most [`MAX_SERVERS`]), and a description of each entry
/// that was skipped. Errors (`Protocol`) say what was wrong with the list.
pub fn parse_server_list(body: &[u8]) -> Result<(Vec<Url>, Vec<String>)> {
    let value: Value = serde_json::from_slice(body).map_err(|_| {
        let text = String::from_utf8_lossy(body);
        protocol(format!("igtimi: the server list is not JSON: {}", excerpt(&text)))
    })?;
    let Some(list) = value.get("web_socket_servers").and_then(Value::as_array) else {
        return Err(protocol(format!(
            "igtimi: the server list has no \"web_socket_servers\" array: {}",
            excerpt(&value.to_string())
        )));
    };
    let mut servers = Vec::new();
    let mut skipped = Vec::new();
    for entry in list {
        let url = entry.as_str().ok_or(()).and_then(|s| Url::parse(s).map_err(|_| ()));
        match url {
            Ok(url) if matches!(url.scheme, Scheme::Ws | Scheme::Wss) => {
                if servers.len() < MAX_SERVERS {
                    servers.push(url);
                } else {
                    skipped.push(format!("{url} (more than {MAX_SERVERS} servers)"));
                }
            }
            _ => skipped.push(excerpt(&entry.to_string())),
        }
    }
    if servers.is_empty() {
        return Err(protocol(format!(
            "igtimi: the server list names no ws:// or wss:// server ({} entries)",
            list.len()
        )));
    }
    Ok((servers, skipped))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Topic, type, dsi and payload of each sample set.
    type Sets = Vec<(String, String, u64, Value)>;

    fn collect(text: &str) -> (Result<Frame>, Sets) {
        let mut sets = Vec::new();
        let frame = map_frame(text, &mut |s| {
            assert_eq!(s.topic, format!("{}/{}", s.serial, s.data_type));
            let json: Value = serde_json::from_str(s.json).expect("valid JSON");
            sets.push((s.topic.to_string(), s.data_type.to_string(), s.dsi, json));
        });
        (frame, sets)
    }

    #[test]
    fn heartbeats_and_timestamps() {
        assert_eq!(map_frame("1", &mut |_| panic!()).unwrap(), Frame::Heartbeat);
        assert_eq!(map_frame(" 1\n", &mut |_| panic!()).unwrap(), Frame::Heartbeat);
        assert_eq!(
            map_frame("1384906719000", &mut |_| panic!()).unwrap(),
            Frame::Timestamp(1384906719000)
        );
        assert_eq!(
            map_frame("1384906719000.0", &mut |_| panic!()).unwrap(),
            Frame::Timestamp(1384906719000)
        );
    }

    #[test]
    fn the_documented_data_frame() {
        let text = r#"[{"GA-DK-AAAD":{"1":{"t":[1384906722040],"1":[170.503938],"2":[-45.877031]},"2":{"t":[1384906722040],"1":[1]}}},
            {"GA-DK-AAAD":{"9":{"t":[1384906722040],"1":[0]}}}]"#;
        let (frame, sets) = collect(text);
        let Ok(Frame::Data(report)) = frame else { panic!("{frame:?}") };
        assert_eq!((report.sets, report.skipped), (3, 0));
        let topics: Vec<_> = sets.iter().map(|s| s.0.as_str()).collect();
        assert_eq!(topics, ["GA-DK-AAAD/1", "GA-DK-AAAD/2", "GA-DK-AAAD/9"]);
        assert_eq!(
            sets[0].3,
            serde_json::json!({"serial":"GA-DK-AAAD","type":1,"dsi":0,
                "samples":[{"t":1384906722040_i64,"v":[170.503938,-45.877031]}]})
        );
    }

    #[test]
    fn dsi_keys_whitespace_float_times_several_samples_and_unknown_types() {
        let text = r#"[{"A":{"13:201":{"t":[12345677000.0,12345678000],"1":[1,2],"2":[3,4],"3":[119,120]},
            " 1":{"t":[5],"2":[-45.8],"1":[170.5]},"22":{"t":[7],"1":[180]}},
            "B":{"2 : 3":{"t":[1],"1":[1]}}}]"#;
        let (frame, sets) = collect(text);
        let Ok(Frame::Data(report)) = frame else { panic!("{frame:?}") };
        assert_eq!((report.sets, report.skipped), (4, 0), "{report:?}");
        assert_eq!(sets[0].0, "A/13");
        assert_eq!(sets[0].2, 201);
        assert_eq!(sets[0].3["dsi"], 201);
        assert_eq!(sets[0].3["samples"][0]["t"], serde_json::json!(12345677000_i64));
        assert_eq!(sets[0].3["samples"][1]["v"], serde_json::json!([2, 4, 120]));
        // Components in numeric order whatever the key order.
        assert_eq!(sets[1].0, "A/1");
        assert_eq!(sets[1].3["samples"][0]["v"], serde_json::json!([170.5, -45.8]));
        assert_eq!((sets[2].0.as_str(), sets[2].1.as_str()), ("A/22", "22"));
        assert_eq!((sets[3].0.as_str(), sets[3].2), ("B/2", 3));
    }

    #[test]
    fn malformed_parts_are_skipped_and_reported() {
        let text = r#"[1,{"A":5},{"B":{"x":{"t":[1]}}},{"C":{"1":{"1":[1]}}},{"D":{"1":{"t":"no"}}},
            {"E":{"1":{"t":[1],"1":[1],"2":[2,3],"99":[1]}}},{"F":{"1":{"t":[1],"1":7}}},{"G":{"2":{"t":[1],"1":[1]}}}]"#;
        let (frame, sets) = collect(text);
        let Ok(Frame::Data(report)) = frame else { panic!("{frame:?}") };
        let topics: Vec<_> = sets.iter().map(|s| s.0.as_str()).collect();
        assert_eq!(topics, ["E/1", "G/2"], "{report:?}");
        assert_eq!(report.skipped, 8, "{report:?}");
        assert_eq!(report.problems.len(), MAX_PROBLEMS);
        let summary = report.summary().unwrap();
        assert!(summary.contains("element 0 is not an object"), "{summary}");
        assert!(summary.ends_with("..."), "{summary}");
        // A short component is padded with null rather than dropping the sample.
        assert_eq!(sets[0].3["samples"][0]["v"], serde_json::json!([1, 2]));
    }

    #[test]
    fn huge_component_indexes_are_not_allocated() {
        let (frame, sets) = collect(r#"[{"A":{"1":{"t":[1],"4000000000":[1],"8":[2]}}}]"#);
        let Ok(Frame::Data(report)) = frame else { panic!("{frame:?}") };
        assert_eq!(report.skipped, 1);
        assert_eq!(sets[0].3["samples"][0]["v"].as_array().unwrap().len(), MAX_COMPONENTS);
    }

    #[test]
    fn long_serials_are_refused() {
        let text = format!(r#"[{{"{}":{{"1":{{"t":[1],"1":[1]}}}}}}]"#, "S".repeat(MAX_SERIAL + 1));
        let (frame, sets) = collect(&text);
        let Ok(Frame::Data(report)) = frame else { panic!("{frame:?}") };
        assert_eq!((sets.len(), report.skipped), (0, 1));
    }

    #[test]
    fn bad_frames_are_protocol_errors() {
        for text in ["hello", "{\"a\":1}", "[1,", "[oops]", "\"str\"", "1e400", "", "null"] {
            let e = map_frame(text, &mut |_| panic!()).unwrap_err();
            assert_eq!(e.code, ErrorCode::Protocol, "{text}");
            assert!(e.message.starts_with("igtimi: "), "{}", e.message);
        }
        let long = "x".repeat(10_000);
        assert!(map_frame(&long, &mut |_| ()).unwrap_err().message.len() < 200);
    }

    #[test]
    fn type_keys() {
        assert_eq!(type_key("1"), Some((1, 0)));
        assert_eq!(type_key(" 13:201 "), Some((13, 201)));
        for bad in ["", ":", "1:", "a", "-1", "1:x", "99999999999"] {
            assert_eq!(type_key(bad), None, "{bad}");
        }
    }

    #[test]
    fn server_lists() {
        let (servers, skipped) = parse_server_list(
            br#"{"web_socket_servers":["wss://www.igtimi.com/live_api","http://x/",5,"ws://live.igtimi.com:9081"]}"#,
        )
        .unwrap();
        let names: Vec<_> = servers.iter().map(|u| u.to_string()).collect();
        assert_eq!(names, ["wss://www.igtimi.com/live_api", "ws://live.igtimi.com:9081/"]);
        assert_eq!(skipped.len(), 2);
        for (bad, needle) in [
            (&b"<html>"[..], "not JSON"),
            (br#"{"servers":[]}"#, "no \"web_socket_servers\""),
            (br#"{"web_socket_servers":"ws://x"}"#, "no \"web_socket_servers\""),
            (br#"["ws://x"]"#, "no \"web_socket_servers\""),
            (br#"{"web_socket_servers":[]}"#, "names no ws"),
            (br#"{"web_socket_servers":["http://a/",null]}"#, "names no ws"),
        ] {
            let e = parse_server_list(bad).unwrap_err();
            assert_eq!(e.code, ErrorCode::Protocol);
            assert!(e.message.contains(needle), "{}", e.message);
        }
        let many: Vec<_> = (0..40).map(|i| format!("ws://h{i}/")).collect();
        let body = serde_json::json!({ "web_socket_servers": many }).to_string();
        let (servers, skipped) = parse_server_list(body.as_bytes()).unwrap();
        assert_eq!((servers.len(), skipped.len()), (MAX_SERVERS, 40 - MAX_SERVERS));
    }
}
