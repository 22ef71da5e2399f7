//! The tock: a Lamport-style clock shared by everything a server sends.

use std::sync::atomic::{AtomicU64, Ordering};

/// A server's tock counter.
///
/// Reading it for any outgoing purpose increments it first ([`next`]), so
/// a tock is never used twice; every tock seen in an incoming message raises
/// it ([`seen`]).
///
/// [`next`]: TockClock::next
/// [`seen`]: TockClock::seen
#[derive(Debug, Default)]
pub struct TockClock(AtomicU64);

impl TockClock {
    /// A clock starting at `t`.
    pub fn new(t: u64) -> TockClock {
        TockClock(AtomicU64::new(t))
    }

    /// Increments the clock and returns the new value.
    pub fn next(&self) -> u64 {
        self.0.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// Raises the clock to `t` if it is behind.
    pub fn seen(&self, t: u64) {
        self.0.fetch_max(t, Ordering::AcqRel);
    }

    /// The current value, without incrementing (for diagnostics only).
    pub fn current(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_reuses() {
        let c = TockClock::new(5);
        assert_eq!(c.next(), 6);
        c.seen(3);
        assert_eq!(c.next(), 7);
        c.seen(100);
        assert_eq!(c.next(), 101);
    }
}
