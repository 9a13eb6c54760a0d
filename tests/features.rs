//! Builds that leave cargo features out keep the same API: a part that is not built in
//! answers `NotSupported` ("not built in") when a session asks for it. CI runs this file
//! with the default features (everything built in) and with `--no-default-features`.

use livefeed::{ErrorCode, Loop, Protocol, SessionConfig};

/// Opens a session; its error code, if opening failed.
fn open_error(config: SessionConfig) -> Option<(ErrorCode, String)> {
    let lp = Loop::new().unwrap();
    let result = lp.open(config, |_| {}).err().map(|e| (e.code, e.message));
    lp.shutdown();
    result
}

#[test]
fn platforms_left_out_answer_not_built_in() {
    let platforms = [
        (Protocol::TheThings, cfg!(feature = "thethings")),
        (Protocol::Navixy, cfg!(feature = "navixy")),
        (Protocol::Igtimi, cfg!(feature = "igtimi")),
        (Protocol::Deconz, cfg!(feature = "deconz")),
        (Protocol::SmartServer, cfg!(feature = "smartserver")),
    ];
    for (protocol, built_in) in platforms {
        let mut c = SessionConfig::new("http://127.0.0.1:9/v2");
        c.protocol = protocol;
        for (k, v) in [("token", "t"), ("user", "u"), ("password", "p"), ("apikey", "ABCDEF0123")] {
            c.options.push((k.into(), v.into()));
        }
        match open_error(c) {
            Some((ErrorCode::NotSupported, message)) => {
                assert!(!built_in, "{protocol:?} is built in but answered: {message}");
                assert!(message.contains("not built in"), "{message}");
            }
            other => assert!(built_in, "{protocol:?} is left out but answered {other:?}"),
        }
    }
    // The protocols themselves are always in.
    for protocol in [Protocol::WebSocket, Protocol::SocketIo, Protocol::Atmosphere] {
        let mut c = SessionConfig::new("http://127.0.0.1:9/");
        c.protocol = protocol;
        if protocol == Protocol::WebSocket {
            c.url = "ws://127.0.0.1:9/".into();
        }
        assert_eq!(open_error(c), None, "{protocol:?}");
    }
}

#[test]
fn tls_left_out_answers_not_built_in() {
    let built_in = cfg!(feature = "tls");
    let wss = open_error(SessionConfig::new("wss://127.0.0.1:9/"));
    let mut with_ca = SessionConfig::new("ws://127.0.0.1:9/");
    with_ca.tls.insecure = true;
    let settings = open_error(with_ca);
    if built_in {
        assert_eq!(wss, None);
        assert_eq!(settings, None);
    } else {
        for answer in [wss, settings] {
            let (code, message) = answer.expect("refused");
            assert_eq!(code, ErrorCode::NotSupported);
            assert!(message.contains("not built in"), "{message}");
        }
    }
}
