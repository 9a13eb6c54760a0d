//! Per-session counters, written by the loop and read from any thread.

use crate::error::ErrorCode;
use crate::event::SessionState;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

/// The live counters (relaxed atomics: each is exact, a snapshot is not a transaction).
#[derive(Debug, Default)]
pub struct Counters {
    reconnects: AtomicU64,
    messages_in: AtomicU64,
    bytes_in: AtomicU64,
    messages_out: AtomicU64,
    bytes_out: AtomicU64,
    dropped: AtomicU64,
    /// Round-trip time of the last answered ping, in microseconds (0: none yet).
    rtt_us: AtomicU64,
    last_error: AtomicU32,
}

/// Traffic counted locally during one read pass.
#[derive(Debug, Default)]
pub(crate) struct Traffic {
    pub messages_in: u64,
    pub bytes_in: u64,
    pub messages_out: u64,
    pub bytes_out: u64,
}

impl Traffic {
    pub(crate) fn received(&mut self, bytes: usize) {
        self.messages_in += 1;
        self.bytes_in += bytes as u64;
    }

    pub(crate) fn sent(&mut self, bytes: usize) {
        self.messages_out += 1;
        self.bytes_out += bytes as u64;
    }
}

/// A snapshot of a session's counters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionStats {
    /// The state when the snapshot was taken.
    pub state: SessionState,
    /// Connection attempts made after the first one.
    pub reconnects: u64,
    /// Messages received (WebSocket data messages, long-polling payloads).
    pub messages_in: u64,
    /// Their payload bytes.
    pub bytes_in: u64,
    /// Messages written (protocol heartbeats included; WebSocket control frames not).
    pub messages_out: u64,
    /// Their payload bytes.
    pub bytes_out: u64,
    /// Host sends dropped: outbox overflow, or still waiting when the session ended.
    pub dropped: u64,
    /// Round-trip time of the last answered WebSocket ping.
    pub rtt: Option<Duration>,
    /// The last error reported (`Ok` if none).
    pub last_error: ErrorCode,
}

impl Counters {
    /// Adds what one read pass received and answered (one update per pass, not per
    /// message: these are shared atomics).
    pub(crate) fn traffic(&self, t: &Traffic) {
        if t.messages_in > 0 {
            self.messages_in.fetch_add(t.messages_in, Ordering::Relaxed);
            self.bytes_in.fetch_add(t.bytes_in, Ordering::Relaxed);
        }
        if t.messages_out > 0 {
            self.messages_out.fetch_add(t.messages_out, Ordering::Relaxed);
            self.bytes_out.fetch_add(t.bytes_out, Ordering::Relaxed);
        }
    }

    pub(crate) fn sent(&self, bytes: usize) {
        self.messages_out.fetch_add(1, Ordering::Relaxed);
        self.bytes_out.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub(crate) fn reconnecting(&self) {
        self.reconnects.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn dropped(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn rtt(&self, rtt: Duration) {
        let us = u64::try_from(rtt.as_micros()).unwrap_or(u64::MAX).max(1);
        self.rtt_us.store(us, Ordering::Relaxed);
    }

    pub(crate) fn error(&self, code: ErrorCode) {
        self.last_error.store(code as u32, Ordering::Relaxed);
    }

    /// A snapshot, with the given state.
    pub fn snapshot(&self, state: SessionState) -> SessionStats {
        let rtt_us = self.rtt_us.load(Ordering::Relaxed);
        SessionStats {
            state,
            reconnects: self.reconnects.load(Ordering::Relaxed),
            messages_in: self.messages_in.load(Ordering::Relaxed),
            bytes_in: self.bytes_in.load(Ordering::Relaxed),
            messages_out: self.messages_out.load(Ordering::Relaxed),
            bytes_out: self.bytes_out.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            rtt: (rtt_us > 0).then(|| Duration::from_micros(rtt_us)),
            last_error: ErrorCode::from_u32(self.last_error.load(Ordering::Relaxed))
                .unwrap_or(ErrorCode::Ok),
        }
    }
}
