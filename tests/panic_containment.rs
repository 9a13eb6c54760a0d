//! A panic inside one session (here a protocol driver that panics on purpose) stops only
//! that session, with an `Error(Panic)` then `Closed`; the loop and its other sessions go on.

mod support;

use livefeed::session::driver::{Driver, Io, Step};
use livefeed::url::Url;
use livefeed::{ErrorCode, EventKind, SessionConfig, SessionState};
use support::{TestLoop, collector, echo_text, ws_server};

/// Connects like a plain WebSocket session, then panics on the first message.
struct PanicsOnText;

impl Driver for PanicsOnText {
    fn start(&mut self, config: &SessionConfig) -> livefeed::Result<Step> {
        Ok(Step::WebSocket(Url::parse(&config.url)?))
    }

    fn on_text(&mut self, _text: &str, _io: &mut Io<'_>) -> livefeed::Result<()> {
        panic!("a bug in a protocol driver");
    }
}

#[test]
fn a_panicking_session_is_stopped_and_the_others_go_on() {
    let lp = TestLoop::start();
    let (h, mut good) = collector();
    let healthy = lp.open(SessionConfig::new(ws_server().ws_url("/echo")), h).unwrap();
    good.expect_open();

    let (h, mut bad) = collector();
    let broken = lp
        .open_with(SessionConfig::new(ws_server().ws_url("/echo")), Box::new(PanicsOnText), h)
        .unwrap();
    bad.expect_open();
    broken.send_text("boom").unwrap();
    let evs = bad.until_closed();
    let err = evs.iter().find(|e| e.kind == EventKind::Error).expect("an error event");
    assert_eq!(err.error, Some(ErrorCode::Panic), "{evs:?}");
    assert!(evs.last().unwrap().is_state(SessionState::Closed), "{evs:?}");
    assert_eq!(broken.send_text("again").unwrap_err().code, ErrorCode::Closed);

    echo_text(&healthy, &mut good, "still here");
    support::close_cleanly(&healthy, &mut good);
}
