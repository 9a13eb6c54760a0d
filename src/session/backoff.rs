//! Reconnect delays: exponential growth with full jitter, so that many clients cut off by
//! the same outage do not come back in lockstep.

use crate::config::Reconnect;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A small xorshift generator: jitter needs spread, not cryptographic quality.
#[derive(Debug)]
pub struct Jitter(u64);

impl Jitter {
    /// A generator seeded from the clock and `salt` (sessions started together differ).
    pub fn seeded(salt: u64) -> Jitter {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let seed = (nanos as u64) ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        Jitter(seed | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// The delay before attempt `attempt` (1-based): uniform between the minimum and a
    /// cap that doubles with each attempt, up to the maximum.
    pub fn delay(&mut self, policy: &Reconnect, attempt: u32) -> Duration {
        let min = policy.min_delay.as_millis() as u64;
        let max = (policy.max_delay.as_millis() as u64).max(min);
        let cap = min.saturating_mul(1u64 << attempt.saturating_sub(1).min(32)).min(max);
        let spread = cap - min;
        let extra = if spread == 0 { 0 } else { self.next() % (spread + 1) };
        Duration::from_millis(min + extra)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_stay_within_the_growing_cap() {
        let policy = Reconnect::with_delays(Duration::from_millis(100), Duration::from_secs(2));
        let mut j = Jitter::seeded(7);
        for attempt in 1..40 {
            let cap = (100u64 << (attempt - 1).min(20)).min(2000);
            for _ in 0..50 {
                let d = j.delay(&policy, attempt).as_millis() as u64;
                assert!((100..=cap).contains(&d), "attempt {attempt}: {d} ms outside 100..={cap}");
            }
        }
    }

    #[test]
    fn delays_are_spread() {
        let policy = Reconnect::with_delays(Duration::from_millis(10), Duration::from_secs(10));
        let mut j = Jitter::seeded(1);
        let delays: std::collections::HashSet<_> = (0..20).map(|_| j.delay(&policy, 10)).collect();
        assert!(delays.len() > 10, "full jitter draws different delays: {delays:?}");
    }

    #[test]
    fn equal_bounds_give_a_fixed_delay() {
        let policy = Reconnect::with_delays(Duration::from_millis(50), Duration::from_millis(50));
        assert_eq!(Jitter::seeded(3).delay(&policy, 5), Duration::from_millis(50));
    }
}
