//! The event loop: one mio `Poll` for many sessions, a deadline heap, and a
//! cross-thread queue woken through `mio::Waker`.
//!
//! Threading: the loop's state sits behind a mutex taken by whichever thread drives
//! it (`run`, `run_once` or the managed thread). Everything other threads do
//! (open, send, close, release, stop) goes through the queue, so none of it ever
//! waits for the loop, and handlers may call any of it without deadlock.

mod handle;
mod timers;

pub use handle::Session;

use crate::config::SessionConfig;
use crate::error::{Error, ErrorCode, Result};
use crate::event::{Event, SessionState};
use crate::net::Resolver;
use crate::session::command::Command;
use crate::session::driver::Driver;
use crate::session::shared::SessionShared;
use crate::session::{self, Ctx, ResolvedSink, SessionCore};
use mio::{Events, Poll, Token, Waker};
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use timers::Timers;

const WAKER: Token = Token(0);
const EVENTS_CAPACITY: usize = 1024;
const SCRATCH: usize = 64 << 10;

thread_local! {
    /// The loop (by address) whose managed thread this is; 0 on other threads.
    /// A flag rather than `thread::current()`, which allocates a handle for C threads.
    static MANAGED_LOOP: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Session ids are unique in the process (they also tag the running handler on a thread).
static NEXT_SESSION_ID: AtomicU64 = AtomicU64::new(1);

enum Queued {
    Open(Box<SessionCore>),
    Command(u64, Command),
    Release(u64),
    Resolved(u64, u64, io::Result<Vec<SocketAddr>>),
    /// Every session connects again now.
    NetworkChanged,
}

/// The part of a loop that any thread may touch.
struct Shared {
    waker: Waker,
    queue: Mutex<Vec<Queued>>,
    stop: AtomicBool,
    gone: AtomicBool,
}

impl Shared {
    fn push(&self, q: Queued) {
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        let was_empty = queue.is_empty();
        queue.push(q);
        drop(queue);
        // The loop drains the whole queue each turn, so one wake per batch is enough.
        if was_empty {
            if let Err(e) = self.waker.wake() {
                log::error!("cannot wake the loop: {e}");
            }
        }
    }
}

/// A session in the loop's map. Boxed: the map then moves 8-byte pointers, not whole
/// sessions, when it grows, and its empty slots cost little.
struct Entry {
    core: Box<SessionCore>,
    armed: Option<Instant>,
}

/// The loop-thread state.
struct Core {
    poll: Poll,
    events: Events,
    sessions: HashMap<u64, Entry>,
    timers: Timers,
    resolver: Resolver,
    resolved: ResolvedSink,
    scratch: Vec<u8>,
    inbox: Vec<Queued>,
    /// Sessions with readiness this turn (reused buffer).
    ready: Vec<u64>,
    /// Sessions whose read budget ran out: served again next turn without waiting.
    again: Vec<u64>,
}

/// An event loop driving any number of sessions.
///
/// Create it with [`Loop::new`], open sessions with [`Loop::open`], and drive it in one
/// of three ways: [`Loop::run`] on a thread of your choice, [`Loop::run_once`] from your
/// own poll loop (watching [`Loop::fd`]), or [`Loop::start_thread`].
pub struct Loop {
    shared: Arc<Shared>,
    core: Mutex<Core>,
    fd: RawFd,
    thread: Mutex<Option<JoinHandle<()>>>,
}

fn wrong_state(what: &str) -> Error {
    Error::new(ErrorCode::WrongState, what.to_string())
}

impl Loop {
    /// A new, idle loop.
    pub fn new() -> Result<Arc<Loop>> {
        let io_err =
            |e: io::Error| Error::new(ErrorCode::Io, format!("cannot create the event loop: {e}"));
        let poll = Poll::new().map_err(io_err)?;
        let waker = Waker::new(poll.registry(), WAKER).map_err(io_err)?;
        let shared = Arc::new(Shared {
            waker,
            queue: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
            gone: AtomicBool::new(false),
        });
        let weak: Weak<Shared> = Arc::downgrade(&shared);
        let resolved: ResolvedSink = Arc::new(move |id, attempt, result| {
            if let Some(shared) = weak.upgrade() {
                shared.push(Queued::Resolved(id, attempt, result));
            }
        });
        let fd = poll.as_raw_fd();
        let core = Core {
            poll,
            events: Events::with_capacity(EVENTS_CAPACITY),
            sessions: HashMap::new(),
            timers: Timers::default(),
            resolver: Resolver::default(),
            resolved,
            scratch: vec![0; SCRATCH],
            inbox: Vec::new(),
            ready: Vec::new(),
            again: Vec::new(),
        };
        Ok(Arc::new(Loop { shared, core: Mutex::new(core), fd, thread: Mutex::new(None) }))
    }

    /// Opens a session. The configuration is checked now (URL, protocol, TLS settings);
    /// connecting happens on the loop. `handler` runs on the loop thread for every event.
    pub fn open(
        &self,
        config: SessionConfig,
        handler: impl FnMut(&Event<'_>) + Send + 'static,
    ) -> Result<Session> {
        let driver = session::driver_for(&config)?;
        self.open_with(config, driver, handler)
    }

    /// Opens a session run by a custom [`Driver`] (a protocol profile) instead of the one
    /// the configuration's protocol names. The configuration's URL is checked as by `open`.
    pub fn open_with(
        &self,
        config: SessionConfig,
        driver: Box<dyn Driver>,
        handler: impl FnMut(&Event<'_>) + Send + 'static,
    ) -> Result<Session> {
        if self.shared.gone.load(Ordering::Acquire) {
            return Err(Error::new(ErrorCode::Closed, "the loop is gone"));
        }
        driver.check(&config)?;
        let tls = session::validate(&config)?;
        let id = NEXT_SESSION_ID.fetch_add(1, Ordering::Relaxed);
        let shared = Arc::new(SessionShared::new(
            id,
            config.protocol,
            Box::new(handler),
            config.limits.max_send_buffer,
            config.outbox.clone(),
        ));
        let core = SessionCore::new(Arc::clone(&shared), config, driver, tls);
        self.shared.push(Queued::Open(Box::new(core)));
        Ok(Session { shared, loop_shared: Arc::clone(&self.shared) })
    }

    /// Runs until [`Loop::stop`]. A stop requested before `run` makes it return at once.
    /// Fails with `WrongState` if another thread (or a handler) is driving the loop.
    pub fn run(&self) -> Result<()> {
        let mut core = self.lock_core()?;
        while !self.shared.stop.load(Ordering::Acquire) {
            core.turn(&self.shared, None)?;
        }
        self.shared.stop.store(false, Ordering::Release);
        Ok(())
    }

    /// Runs one turn: waits up to `timeout` (`None`: until something happens) for
    /// readiness, then handles everything due. For hosts with their own poll loop.
    pub fn run_once(&self, timeout: Option<Duration>) -> Result<()> {
        self.lock_core()?.turn(&self.shared, timeout)
    }

    /// Time until the loop has work due without any I/O (`None`: nothing scheduled).
    /// Queued commands count as due now.
    pub fn next_timeout(&self) -> Result<Option<Duration>> {
        let core = self.lock_core()?;
        Ok(core.wait_bound(&self.shared, Instant::now()))
    }

    /// The file descriptor to watch for readability from a host poll loop (epoll on Linux).
    pub fn fd(&self) -> RawFd {
        self.fd
    }

    /// Asks `run` (or the managed thread) to return. Any thread; never blocks.
    pub fn stop(&self) {
        self.shared.stop.store(true, Ordering::Release);
        if let Err(e) = self.shared.waker.wake() {
            log::error!("cannot wake the loop: {e}");
        }
    }

    /// Tells every session of the loop that the network changed: each drops its
    /// connection (or its wait) and connects again now. Any thread.
    pub fn network_changed(&self) {
        self.shared.push(Queued::NetworkChanged);
    }

    /// Starts a thread that runs the loop until [`Loop::shutdown`].
    pub fn start_thread(self: &Arc<Self>) -> Result<()> {
        let mut slot = self.thread.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_some() {
            return Err(wrong_state("the loop already has a thread"));
        }
        let this = Arc::clone(self);
        let handle = std::thread::Builder::new()
            .name("livefeed-loop".into())
            .spawn(move || {
                MANAGED_LOOP.with(|m| m.set(Arc::as_ptr(&this) as usize));
                if let Err(e) = this.run() {
                    log::error!("loop thread ended: {e}");
                }
            })
            .map_err(|e| Error::new(ErrorCode::Io, format!("cannot start the loop thread: {e}")))?;
        *slot = Some(handle);
        Ok(())
    }

    /// Stops the managed thread, if any, and waits for it (unless called from it).
    pub fn shutdown(&self) {
        let handle = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(handle) = handle {
            self.stop();
            let on_own_thread = MANAGED_LOOP.with(|m| m.get()) == self as *const Loop as usize;
            if !on_own_thread {
                let _ = handle.join();
            }
        }
    }

    /// Whether some thread (or a handler on this thread) is driving the loop right now.
    pub fn is_busy(&self) -> bool {
        matches!(self.core.try_lock(), Err(TryLockError::WouldBlock))
    }

    fn lock_core(&self) -> Result<MutexGuard<'_, Core>> {
        match self.core.try_lock() {
            Ok(core) => Ok(core),
            Err(TryLockError::Poisoned(p)) => Ok(p.into_inner()),
            Err(TryLockError::WouldBlock) => {
                Err(wrong_state("the loop is being driven by another caller"))
            }
        }
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        self.shared.gone.store(true, Ordering::Release);
        let core = self.core.get_mut().unwrap_or_else(|e| e.into_inner());
        core.resolver.shutdown();
        let now = Instant::now();
        let ids: Vec<u64> = core.sessions.keys().copied().collect();
        for id in ids {
            if let Some(mut entry) = core.sessions.remove(&id) {
                let mut ctx =
                    core_ctx(&core.poll, &core.resolver, &core.resolved, &mut core.scratch, now);
                entry.core.release(&mut ctx);
                entry.core.shared.set_state(SessionState::Closed);
            }
        }
    }
}

fn core_ctx<'a>(
    poll: &'a Poll,
    resolver: &'a Resolver,
    resolved: &'a ResolvedSink,
    scratch: &'a mut [u8],
    now: Instant,
) -> Ctx<'a> {
    Ctx { registry: poll.registry(), resolver, resolved, now, scratch }
}

impl Core {
    fn wait_bound(&self, shared: &Shared, now: Instant) -> Option<Duration> {
        let busy = !self.again.is_empty()
            || !shared.queue.lock().unwrap_or_else(|e| e.into_inner()).is_empty();
        if busy {
            return Some(Duration::ZERO);
        }
        self.timers.next().map(|t| t.saturating_duration_since(now))
    }

    fn turn(&mut self, shared: &Shared, timeout: Option<Duration>) -> Result<()> {
        let wait = match (timeout, self.wait_bound(shared, Instant::now())) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        loop {
            match self.poll.poll(&mut self.events, wait) {
                Ok(()) => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::new(ErrorCode::Io, format!("poll failed: {e}"))),
            }
        }
        let now = Instant::now();
        self.ready.clear();
        let tokens = self.events.iter().map(|e| e.token()).filter(|t| *t != WAKER);
        self.ready.extend(tokens.map(|t| t.0 as u64));
        self.ready.append(&mut self.again);
        self.ready.sort_unstable();
        self.ready.dedup();
        for i in 0..self.ready.len() {
            let id = self.ready[i];
            self.with_session(id, now, |s, ctx| s.on_ready(ctx));
        }
        self.drain_queue(shared, now);
        while let Some(id) = self.timers.pop_due(now) {
            let armed_for_this =
                self.sessions.get(&id).is_some_and(|e| e.armed.is_some_and(|a| a <= now));
            if armed_for_this {
                if let Some(e) = self.sessions.get_mut(&id) {
                    e.armed = None;
                }
                self.with_session(id, now, |s, ctx| s.on_timer(ctx));
            }
        }
        Ok(())
    }

    /// A session panicked: its state cannot be trusted. Close its socket (best effort),
    /// tell the host, and drop it; the loop and its other sessions go on.
    fn stop_broken_session(&mut self, id: u64, now: Instant) {
        let Some(mut entry) = self.sessions.remove(&id) else { return };
        log::error!("session {id}: internal error (panic); the session was stopped");
        let mut ctx = core_ctx(&self.poll, &self.resolver, &self.resolved, &mut self.scratch, now);
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            entry.core.teardown(&mut ctx)
        }));
        let shared = Arc::clone(&entry.core.shared);
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let e = Error::new(ErrorCode::Panic, "internal error; the session was stopped");
            let state = shared.state();
            shared.dispatch(
                &Event::new(crate::event::EventKind::Error, state, e.message.as_bytes())
                    .with_error(&e),
            );
            shared.transition(SessionState::Closed, "");
        }));
    }

    fn drain_queue(&mut self, shared: &Shared, now: Instant) {
        {
            let mut q = shared.queue.lock().unwrap_or_else(|e| e.into_inner());
            std::mem::swap(&mut *q, &mut self.inbox);
        }
        let mut inbox = std::mem::take(&mut self.inbox);
        for item in inbox.drain(..) {
            match item {
                Queued::Open(core) => {
                    let id = core.shared.id;
                    self.sessions.insert(id, Entry { core, armed: None });
                    self.with_session(id, now, |s, ctx| s.start(ctx));
                }
                Queued::Command(id, cmd) => {
                    self.with_session(id, now, |s, ctx| s.on_command(ctx, cmd))
                }
                Queued::Resolved(id, attempt, r) => {
                    self.with_session(id, now, |s, ctx| s.on_resolved(ctx, attempt, r))
                }
                Queued::NetworkChanged => {
                    let ids: Vec<u64> = self.sessions.keys().copied().collect();
                    for id in ids {
                        self.with_session(id, now, |s, ctx| s.on_command(ctx, Command::Reconnect));
                    }
                }
                Queued::Release(id) => {
                    if let Some(mut e) = self.sessions.remove(&id) {
                        let mut ctx = core_ctx(
                            &self.poll,
                            &self.resolver,
                            &self.resolved,
                            &mut self.scratch,
                            now,
                        );
                        e.core.release(&mut ctx);
                    }
                }
            }
        }
        self.inbox = inbox; // keep the allocation
    }

    fn with_session(
        &mut self,
        id: u64,
        now: Instant,
        f: impl FnOnce(&mut SessionCore, &mut Ctx<'_>),
    ) {
        let Some(entry) = self.sessions.get_mut(&id) else { return };
        let mut ctx = core_ctx(&self.poll, &self.resolver, &self.resolved, &mut self.scratch, now);
        // A bug in one session (a protocol driver, say) must not stop the others.
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            f(&mut entry.core, &mut ctx);
            entry.core.send_from_handler(&mut ctx);
        }));
        if outcome.is_err() {
            self.stop_broken_session(id, now);
            return;
        }
        if entry.core.is_closed() && entry.core.shared.released() {
            self.sessions.remove(&id);
            return;
        }
        if entry.core.more_to_read {
            self.again.push(id);
        }
        // Arm only an earlier deadline; a later one is picked up when the earlier fires.
        if let Some(d) = entry.core.deadline() {
            if entry.armed.is_none_or(|a| d < a) {
                entry.armed = Some(d);
                self.timers.push(d, id);
            }
        }
    }
}
