//! Thread safety of the Rust API: sends from several threads, dropping a session from
//! another thread or from inside its own handler while messages flow, and calling the
//! session from inside its handler. Peers: Python `websockets` (tests/peers/ws_server.py).

mod support;

use livefeed::{Event, EventKind, Loop, Session, SessionConfig, SessionState};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex, mpsc};
use support::{TestLoop, WAIT, collector, echo_text, ws_server};

const THREADS: usize = 4;
const PER_THREAD: usize = 250;

#[test]
fn sends_from_many_threads_are_echoed_exactly_once() {
    let lp = Loop::new().unwrap();
    let runner = Arc::clone(&lp);
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done_tx.send(runner.run());
    });

    let (h, mut ev) = collector();
    let s = lp.open(SessionConfig::new(ws_server().ws_url("/echo")), h).unwrap();
    ev.expect_open();

    let start = Barrier::new(THREADS);
    std::thread::scope(|scope| {
        for t in 0..THREADS {
            let (s, start) = (&s, &start);
            scope.spawn(move || {
                start.wait();
                for i in 0..PER_THREAD {
                    s.send_text(&format!("t{t}-{i:04}"))
                        .unwrap_or_else(|e| panic!("send from thread {t}: {e}"));
                }
            });
        }
    });

    let mut count: HashMap<String, usize> = HashMap::new();
    let mut last_of_thread = [None::<usize>; THREADS];
    for _ in 0..THREADS * PER_THREAD {
        let e = ev.next();
        assert_eq!(e.kind, EventKind::Message, "{e:?}");
        let text = e.text();
        let (t, i) = text[1..].split_once('-').expect("t<thread>-<index>");
        let (t, i): (usize, usize) = (t.parse().unwrap(), i.parse().unwrap());
        // One thread's sends stay in order through the queue, the socket and the echo.
        assert!(
            last_of_thread[t].is_none_or(|prev| prev < i),
            "thread {t}: {i} after {:?}",
            last_of_thread[t]
        );
        last_of_thread[t] = Some(i);
        *count.entry(text).or_default() += 1;
    }
    assert_eq!(count.len(), THREADS * PER_THREAD, "every message came back");
    assert!(count.values().all(|n| *n == 1), "each exactly once");

    lp.stop();
    let ran = done_rx.recv_timeout(WAIT).expect("run() returns after stop()");
    assert!(ran.is_ok(), "run() ended with {ran:?}");
    // Nothing more was delivered (no duplicate arrived late) before the loop stopped.
    assert!(ev.try_next().is_none(), "unexpected event after all echoes: {:?}", ev.seen.last());
    drop(s);
    ev.assert_handler_dropped();
}

/// A handler that counts its calls, flags any call after `dropped` is set, and forwards
/// message events (only) to a channel.
fn watched_handler(
    calls: Arc<AtomicUsize>,
    dropped: Arc<AtomicBool>,
    late: Arc<AtomicBool>,
    tx: mpsc::Sender<String>,
) -> impl FnMut(&Event<'_>) + Send + 'static {
    move |ev: &Event<'_>| {
        calls.fetch_add(1, Ordering::SeqCst);
        if dropped.load(Ordering::SeqCst) {
            late.store(true, Ordering::SeqCst);
        }
        if ev.kind() == EventKind::Message {
            let _ = tx.send(ev.text().unwrap_or("").to_string());
        }
    }
}

#[test]
fn dropping_a_session_from_another_thread_stops_its_handler() {
    let lp = TestLoop::start();
    let (h, mut witness_ev) = collector();
    let witness = lp.open(SessionConfig::new(ws_server().ws_url("/echo")), h).unwrap();
    witness_ev.expect_open();

    for round in 0..10 {
        let calls = Arc::new(AtomicUsize::new(0));
        let dropped = Arc::new(AtomicBool::new(false));
        let late = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        let handler = watched_handler(calls.clone(), dropped.clone(), late.clone(), tx);
        let s = lp.open(SessionConfig::new(ws_server().ws_url("/flood")), handler).unwrap();
        // Messages are flowing: the handler is being called continuously.
        for _ in 0..50 + round * 20 {
            rx.recv_timeout(WAIT).expect("flood message");
        }

        // Drop it on yet another thread, bounded, so a deadlock in drop fails the test.
        let (done_tx, done_rx) = mpsc::channel();
        let (calls2, dropped2) = (calls.clone(), dropped.clone());
        std::thread::spawn(move || {
            drop(s);
            dropped2.store(true, Ordering::SeqCst);
            let _ = done_tx.send(calls2.load(Ordering::SeqCst));
        });
        let calls_at_drop = done_rx.recv_timeout(WAIT).expect("drop(Session) returned");

        // The handler was dropped with the session: its channel is disconnected once drained.
        let mut after = 0;
        loop {
            match rx.try_recv() {
                Ok(_) => after += 1,
                Err(mpsc::TryRecvError::Disconnected) => break,
                Err(mpsc::TryRecvError::Empty) => {
                    panic!("round {round}: handler still alive after drop returned")
                }
            }
        }
        // Let the loop run more turns (the flood socket stays readable until its release is
        // processed), then check that the handler was never entered again.
        for i in 0..3 {
            echo_text(&witness, &mut witness_ev, &format!("round {round} echo {i}"));
        }
        assert!(!late.load(Ordering::SeqCst), "round {round}: handler ran after drop returned");
        assert_eq!(
            calls.load(Ordering::SeqCst),
            calls_at_drop,
            "round {round}: handler calls after drop"
        );
        assert!(
            calls_at_drop >= 50,
            "round {round}: messages were flowing ({after} queued at drop)"
        );
    }
    support::close_cleanly(&witness, &mut witness_ev);
}

#[test]
fn dropping_a_session_from_inside_its_handler() {
    let lp = TestLoop::start();
    let tag = format!("drop-inside-{}", std::process::id());
    let slot: Arc<Mutex<Option<Session>>> = Arc::new(Mutex::new(None));
    let calls = Arc::new(AtomicUsize::new(0));
    let calls_at_drop = Arc::new(AtomicUsize::new(usize::MAX));
    let (tx, rx) = mpsc::channel::<&'static str>();
    let handler = {
        let (slot, calls, calls_at_drop) = (slot.clone(), calls.clone(), calls_at_drop.clone());
        let mut messages = 0;
        move |ev: &Event<'_>| {
            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
            if calls_at_drop.load(Ordering::SeqCst) != usize::MAX {
                let _ = tx.send("called after dropping itself");
            }
            if ev.kind() == EventKind::Message {
                messages += 1;
                if messages >= 20 {
                    let taken = slot.lock().unwrap().take();
                    if let Some(s) = taken {
                        drop(s); // releases the session from inside its own handler
                        calls_at_drop.store(n, Ordering::SeqCst);
                        let _ = tx.send("dropped");
                    }
                }
            }
        }
    };
    let s = lp
        .open(SessionConfig::new(ws_server().ws_url(&format!("/flood?tag={tag}"))), handler)
        .unwrap();
    *slot.lock().unwrap() = Some(s);

    assert_eq!(rx.recv_timeout(WAIT), Ok("dropped"));
    // The handler is dropped as soon as it returns: the channel disconnects, with nothing
    // sent in between.
    assert_eq!(rx.recv_timeout(WAIT), Err(mpsc::RecvTimeoutError::Disconnected));
    assert_eq!(
        calls.load(Ordering::SeqCst),
        calls_at_drop.load(Ordering::SeqCst),
        "no call after the drop"
    );
    assert!(slot.lock().unwrap().is_none());

    // The loop carries on, and the server saw the connection end.
    let (h, mut ev) = collector();
    let report =
        lp.open(SessionConfig::new(ws_server().ws_url(&format!("/report?tag={tag}"))), h).unwrap();
    ev.expect_open();
    let json: serde_json::Value = serde_json::from_slice(&ev.next().payload).unwrap();
    assert!(json.get("error").is_none(), "the flood connection ended: {json}");
    echo_text(&report, &mut ev, "the loop is fine");
    support::close_cleanly(&report, &mut ev);
    println!("server saw, for the connection dropped from its handler: {json}");
}

#[test]
fn handler_may_send_and_close_its_own_session() {
    let lp = TestLoop::start();
    let slot: Arc<Mutex<Option<Arc<Session>>>> = Arc::new(Mutex::new(None));
    let (tx, rx) = mpsc::channel::<(EventKind, SessionState, String, u16)>();
    let handler = {
        let slot = slot.clone();
        move |ev: &Event<'_>| {
            let _ = tx.send((
                ev.kind(),
                ev.state(),
                ev.text().unwrap_or("").to_string(),
                ev.close_code(),
            ));
            let s = slot.lock().unwrap().clone();
            let Some(s) = s else { return };
            if ev.kind() == EventKind::Message {
                let n: u32 = ev.text().unwrap().parse().unwrap();
                if n < 100 {
                    s.send_text(&(n + 1).to_string()).unwrap();
                } else {
                    s.close(4100, "enough").unwrap();
                }
            }
        }
    };
    let s = Arc::new(lp.open(SessionConfig::new(ws_server().ws_url("/echo")), handler).unwrap());
    *slot.lock().unwrap() = Some(s.clone());
    s.send_text("0").unwrap();
    // 0..=100 bounce between the handler and the echo server, then the handler closes.
    let mut next = 0;
    loop {
        let (kind, state, text, code) = rx.recv_timeout(WAIT).expect("event");
        match kind {
            EventKind::Message => {
                assert_eq!(text, next.to_string());
                next += 1;
            }
            EventKind::Close => assert_eq!((code, text.as_str()), (4100, "enough")),
            EventKind::State if state == SessionState::Closed => break,
            EventKind::State => {}
            other => panic!("unexpected {other:?}: {text}"),
        }
    }
    assert_eq!(next, 101);
    slot.lock().unwrap().take();
    drop(s);
    assert_eq!(rx.recv_timeout(WAIT), Err(mpsc::RecvTimeoutError::Disconnected));
}
