//! How many connections are working through requests right now, which
//! decides how long a connection holds its replies.
//!
//! A connection's reading task holds the replies to a batch of requests
//! and writes them when it is about to wait (see
//! [`Replies`](crate::service::replies::Replies)): one write per batch.
//! That is the cheapest when many connections keep the cores busy. When a
//! single client pipelines, though, it sits idle until the whole batch is
//! answered, and the server then idles while the client works through the
//! replies. So a connection that starts a batch while few connections are
//! working hands its replies on in parts, the first small
//! ([`FIRST_PART_BYTES`], a dozen replies) and each next twice as large up
//! to [`MAX_HELD_BYTES`], and the client works on the first parts while
//! the server makes the rest.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Reply bytes a connection holds first in a batch started while few
/// connections are working.
pub(crate) const FIRST_PART_BYTES: usize = 1 << 9;

/// Reply bytes a connection holds at most: all of a batch started while
/// many are working, and the cap of the growing parts.
pub(crate) const MAX_HELD_BYTES: usize = 256 << 10;

/// The count of connections whose reading task is working (not waiting),
/// shared by all connections of a server; on a cache line of its own, as
/// every connection changes it whenever it starts or stops working.
#[derive(Debug)]
#[repr(align(128))]
pub(crate) struct WorkingReaders {
    working: AtomicUsize,
    /// Up to this many working connections send replies early: half the
    /// cores, leaving the other half to the clients (at least one).
    few: usize,
}

impl Default for WorkingReaders {
    fn default() -> WorkingReaders {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        WorkingReaders::new((cores / 2).max(1))
    }
}

impl WorkingReaders {
    /// A count where up to `few` working connections send replies early.
    pub(crate) fn new(few: usize) -> WorkingReaders {
        WorkingReaders {
            working: AtomicUsize::new(0),
            few,
        }
    }
}

/// One connection's place in a [`WorkingReaders`] count, and how much it
/// holds. It changes the count only when the connection changes between
/// working and waiting. The limit is decided when the connection starts a
/// batch (after waiting for its next request), from the count then, and
/// kept through waits inside the batch (for room in the outbox, say).
/// Its owner stops it when the connection ends.
///
/// Only the connection's reading task changes it (atomics only because the
/// task may move between threads).
#[derive(Debug)]
pub(crate) struct ReaderState {
    working: AtomicBool,
    /// The reply bytes the connection holds next; 0 until a batch starts.
    limit: AtomicUsize,
}

impl Default for ReaderState {
    fn default() -> ReaderState {
        ReaderState {
            working: AtomicBool::new(false),
            limit: AtomicUsize::new(0),
        }
    }
}

impl ReaderState {
    /// How many reply bytes the connection holds now, before it hands
    /// them on.
    pub(crate) fn hold_limit(&self) -> usize {
        match self.limit.load(Ordering::Relaxed) {
            // not working: nothing is held for long
            0 => FIRST_PART_BYTES,
            n => n,
        }
    }

    /// The connection handed its replies on before waiting: it holds
    /// twice as many next time.
    pub(crate) fn handed_on_early(&self) {
        let next = self.hold_limit().saturating_mul(2);
        self.limit
            .store(next.min(MAX_HELD_BYTES), Ordering::Relaxed);
    }

    /// Counts the connection as working in `readers`. One that starts a
    /// batch holds replies in parts if few connections work, counting
    /// itself, and all of them otherwise.
    pub(crate) fn start_working(&self, readers: &WorkingReaders) {
        if self.working.load(Ordering::Relaxed) {
            return;
        }
        self.working.store(true, Ordering::Relaxed);
        let now = readers.working.fetch_add(1, Ordering::Relaxed) + 1;
        if self.limit.load(Ordering::Relaxed) == 0 {
            let limit = if now <= readers.few {
                FIRST_PART_BYTES
            } else {
                MAX_HELD_BYTES
            };
            self.limit.store(limit, Ordering::Relaxed);
        }
    }

    /// Counts the connection as waiting in `readers`; `batch_done` when it
    /// waits for its next request (the next batch decides anew).
    pub(crate) fn stop_working(&self, readers: &WorkingReaders, batch_done: bool) {
        if batch_done {
            self.limit.store(0, Ordering::Relaxed);
        }
        if self.working.load(Ordering::Relaxed) {
            self.working.store(false, Ordering::Relaxed);
            readers.working.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_go_out_early_while_few_connections_work() {
        let readers = WorkingReaders::new(1);
        let (a, b) = (ReaderState::default(), ReaderState::default());
        a.start_working(&readers);
        a.start_working(&readers);
        assert_eq!(a.hold_limit(), FIRST_PART_BYTES, "one works, counted once");
        b.start_working(&readers);
        assert_eq!(
            b.hold_limit(),
            MAX_HELD_BYTES,
            "the second to work holds all"
        );
        assert_eq!(a.hold_limit(), FIRST_PART_BYTES, "decided when it started");
        a.stop_working(&readers, true);
        a.start_working(&readers);
        assert_eq!(a.hold_limit(), MAX_HELD_BYTES, "two work");
        b.stop_working(&readers, true);
        b.stop_working(&readers, true);
        a.stop_working(&readers, true);
        a.start_working(&readers);
        assert_eq!(a.hold_limit(), FIRST_PART_BYTES, "alone again");
        a.stop_working(&readers, true);
        assert_eq!(readers.working.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn each_part_handed_on_early_is_twice_the_last_until_the_batch_ends() {
        let readers = WorkingReaders::new(1);
        let a = ReaderState::default();
        a.start_working(&readers);
        a.handed_on_early();
        assert_eq!(a.hold_limit(), 2 * FIRST_PART_BYTES);
        // waiting inside the batch (for room, say) keeps the size
        a.stop_working(&readers, false);
        a.start_working(&readers);
        a.handed_on_early();
        assert_eq!(a.hold_limit(), 4 * FIRST_PART_BYTES);
        for _ in 0..64 {
            a.handed_on_early();
        }
        assert_eq!(a.hold_limit(), MAX_HELD_BYTES, "never more than the cap");
        a.stop_working(&readers, true);
        a.start_working(&readers);
        assert_eq!(a.hold_limit(), FIRST_PART_BYTES);
        assert_eq!(readers.working.load(Ordering::Relaxed), 1);
    }
}
