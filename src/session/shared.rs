//! The part of a session that other threads touch: handler slot, state, send budget.

use super::command::Budgeted;
use super::stats::Counters;
use crate::config::{Outbox, Overflow, Protocol, SessionConfig};
use crate::event::{Event, SessionState};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

/// A session's event handler. Runs on the loop thread only.
pub type Handler = Box<dyn FnMut(&Event<'_>) + Send>;

thread_local! {
    /// The session whose handler is running on this thread (0: none).
    static DISPATCHING: Cell<u64> = const { Cell::new(0) };
}

/// Shared between the loop (which owns the connection) and the host's handle.
pub struct SessionShared {
    /// Unique across all loops of the process; also the poll token.
    pub id: u64,
    /// The protocol the session speaks (for checks made on the caller's thread).
    pub protocol: Protocol,
    handler: Mutex<Option<Handler>>,
    released: AtomicBool,
    state: AtomicU32,
    queued: AtomicUsize,
    max_queued: usize,
    wants_writable: AtomicBool,
    /// Messages this session's own handler sent while it ran on the loop thread. The loop
    /// writes them as soon as the handler returns, before it reads another frame, so an
    /// answer goes out ahead of a close or failure that follows in the same read pass.
    handler_sends: Mutex<Vec<Budgeted>>,
    /// Whether `handler_sends` may be non-empty: keeps the per-message check lock-free.
    has_handler_sends: AtomicBool,
    /// Next acknowledgement id for emits that want one.
    next_ack: std::sync::atomic::AtomicU64,
    /// The outbox policy, and how many sends wait in it (kept by the loop).
    outbox: Outbox,
    outbox_len: AtomicUsize,
    /// A configuration the host gave for the next connection attempt.
    next_config: Mutex<Option<SessionConfig>>,
    /// Counters the host may read.
    pub counters: Counters,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A handler that panicked is dropped by the dispatcher; the slot itself stays usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl SessionShared {
    pub(crate) fn new(
        id: u64,
        protocol: Protocol,
        handler: Handler,
        max_queued: usize,
        outbox: Outbox,
    ) -> SessionShared {
        SessionShared {
            id,
            protocol,
            handler: Mutex::new(Some(handler)),
            released: AtomicBool::new(false),
            state: AtomicU32::new(SessionState::Connecting as u32),
            queued: AtomicUsize::new(0),
            max_queued,
            wants_writable: AtomicBool::new(false),
            handler_sends: Mutex::new(Vec::new()),
            has_handler_sends: AtomicBool::new(false),
            next_ack: std::sync::atomic::AtomicU64::new(1),
            outbox,
            outbox_len: AtomicUsize::new(0),
            next_config: Mutex::new(None),
            counters: Counters::default(),
        }
    }

    /// Counts a send made now against the outbox under the `Reject` policy: `Some(true)`
    /// when counted, `Some(false)` when the outbox does not apply (open, or a dropping
    /// policy, which the loop enforces), `None` when it is full.
    pub(crate) fn enter_outbox(&self) -> Option<bool> {
        if self.outbox.overflow != Overflow::Reject || self.state() == SessionState::Open {
            return Some(false);
        }
        let max = self.outbox.max_messages;
        self.outbox_len
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1))
            .ok()
            .map(|_| true)
    }

    /// A send counted by [`SessionShared::enter_outbox`] was made or dropped.
    pub(crate) fn leave_outbox(&self, counted: bool) {
        if counted {
            let _ = self
                .outbox_len
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| Some(n.saturating_sub(1)));
        }
    }

    /// The outbox policy.
    pub(crate) fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// Keeps a configuration for the next connection attempt.
    pub(crate) fn set_next_config(&self, config: SessionConfig) {
        *lock(&self.next_config) = Some(config);
    }

    /// The configuration for this attempt, if the host gave a new one.
    pub(crate) fn take_next_config(&self) -> Option<SessionConfig> {
        lock(&self.next_config).take()
    }

    /// A fresh, nonzero acknowledgement id.
    pub(crate) fn next_ack_id(&self) -> u64 {
        self.next_ack.fetch_add(1, Ordering::Relaxed)
    }

    /// Whether the caller is this session's handler, running on the loop thread.
    pub(crate) fn in_own_handler(&self) -> bool {
        DISPATCHING.with(|d| d.get()) == self.id
    }

    /// Keeps a message sent from inside this session's handler (budget already reserved).
    pub(crate) fn push_handler_send(&self, m: Budgeted) {
        lock(&self.handler_sends).push(m);
        self.has_handler_sends.store(true, Ordering::Release);
    }

    /// The messages the handler sent since the last call, in order.
    pub(crate) fn take_handler_sends(&self) -> Vec<Budgeted> {
        // A plain load first: the common case, nothing sent, costs no locked instruction.
        if !self.has_handler_sends.load(Ordering::Acquire)
            || !self.has_handler_sends.swap(false, Ordering::AcqRel)
        {
            return Vec::new();
        }
        std::mem::take(&mut *lock(&self.handler_sends))
    }

    /// The state last reported to the handler.
    pub fn state(&self) -> SessionState {
        SessionState::from_u32(self.state.load(Ordering::Acquire)).unwrap_or(SessionState::Closed)
    }

    pub(crate) fn set_state(&self, s: SessionState) {
        self.state.store(s as u32, Ordering::Release);
    }

    /// Moves to `state` and tells the handler, unless already there. `detail` is the
    /// event payload (the state name when empty).
    pub(crate) fn transition(&self, state: SessionState, detail: &str) {
        if self.state() != state {
            self.set_state(state);
            let payload = if detail.is_empty() { state.name() } else { detail };
            self.dispatch(&Event::new(crate::event::EventKind::State, state, payload.as_bytes()));
        }
    }

    /// Whether the host released its handle.
    pub fn released(&self) -> bool {
        self.released.load(Ordering::Acquire)
    }

    /// Calls the handler, unless the host released it.
    pub(crate) fn dispatch(&self, event: &Event<'_>) {
        if self.released() {
            return;
        }
        let mut slot = lock(&self.handler);
        let Some(handler) = slot.as_mut() else { return };
        let outer = DISPATCHING.with(|d| d.replace(self.id));
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handler(event)));
        DISPATCHING.with(|d| d.set(outer));
        if outcome.is_err() {
            log::error!(
                "session {}: the event handler panicked; it will not be called again",
                self.id
            );
            *slot = None;
        }
        if self.released() {
            // Released from inside its own handler: drop it now that it has returned.
            *slot = None;
        }
    }

    /// Releases the handler. When this returns the handler will not run again, unless the
    /// caller is that very handler, which is then dropped as soon as it returns.
    pub(crate) fn release(&self) {
        self.released.store(true, Ordering::Release);
        if DISPATCHING.with(|d| d.get()) == self.id {
            return;
        }
        let handler = lock(&self.handler).take();
        drop(handler);
    }

    /// Reserves send budget for `len` bytes; false means back-pressure.
    pub(crate) fn reserve(&self, len: usize) -> bool {
        let try_reserve = || {
            self.queued
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |q| {
                    let next = q.checked_add(len)?;
                    // One message may always go when nothing waits, whatever its size.
                    (q == 0 || next <= self.max_queued).then_some(next)
                })
                .is_ok()
        };
        if try_reserve() {
            return true;
        }
        // Ask for a writable event, then look again: the loop may have drained the
        // buffer between the failed attempt and the flag, and would not notify then.
        self.wants_writable.store(true, Ordering::Release);
        if try_reserve() {
            self.wants_writable.store(false, Ordering::Release);
            return true;
        }
        false
    }

    /// Returns send budget; true if a sender is waiting to hear that it may resume.
    pub(crate) fn release_budget(&self, len: usize) -> bool {
        let before = self
            .queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |q| Some(q.saturating_sub(len)))
            .unwrap_or(0);
        let now = before.saturating_sub(len);
        now <= self.max_queued / 2 && self.wants_writable.swap(false, Ordering::AcqRel)
    }

    /// Bytes accepted by `send` and not yet written to the socket.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }

    /// Drops all send budget accounting (the connection is gone).
    pub(crate) fn clear_budget(&self) {
        self.queued.store(0, Ordering::Release);
    }
}
