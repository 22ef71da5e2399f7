//! How many connections are working through requests right now, which
//! decides how long a connection holds its replies.
//!
//! A connection's reading task holds the replies to a batch of requests
//! and writes them when it is about to wait (see
//! [`Replies`](crate::service::replies::Replies)): one write per batch.
//! That is the cheapest when many connections keep the cores busy. When a
//! single client pipelines, though, it sits idle until the whole batch is
//! answered, and the server then idles while the client works through the
//! replies. So while few connections are working, the replies go out in
//! parts, the first small ([`EARLY_REPLIES`] bytes, a dozen replies) and
//! each next twice as large, and the client works on the first parts
//! while the server makes the rest.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Reply bytes a connection holds first, while few connections are
/// working.
pub(crate) const EARLY_REPLIES: usize = 1 << 9;

/// Reply bytes a connection holds while many are working.
pub(crate) const HELD_REPLIES: usize = 256 << 10;

/// The count of connections whose reading task is working (not waiting
/// for its next request), shared by all connections of a server.
#[derive(Debug)]
pub struct WorkingReaders {
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

/// One connection's place in a [`WorkingReaders`] count. It counts only
/// changes, so polling a working or a waiting connection again touches no
/// shared memory, and it decides how much to hold when the connection
/// starts working, from the count then. Its owner sets it to waiting when
/// the connection ends.
///
/// Only the connection's reading task changes it (atomics only because the
/// task may move between threads).
#[derive(Debug)]
pub(crate) struct ReaderState {
    working: AtomicBool,
    /// The reply bytes the connection holds next.
    limit: AtomicUsize,
}

impl Default for ReaderState {
    fn default() -> ReaderState {
        ReaderState {
            working: AtomicBool::new(false),
            limit: AtomicUsize::new(EARLY_REPLIES),
        }
    }
}

impl ReaderState {
    /// How many reply bytes the connection holds now, before it hands
    /// them on.
    pub(crate) fn hold_limit(&self) -> usize {
        self.limit.load(Ordering::Relaxed)
    }

    /// The connection handed its replies on before waiting: it holds
    /// twice as many next time.
    pub(crate) fn handed_on_early(&self) {
        let next = self.hold_limit().saturating_mul(2);
        self.limit.store(next.min(HELD_REPLIES), Ordering::Relaxed);
    }

    /// Counts the connection as working (`true`) or waiting in `readers`.
    /// One that starts working holds replies in small parts if few
    /// connections work, counting itself, and all of them otherwise.
    pub(crate) fn set(&self, readers: &WorkingReaders, working: bool) {
        if self.working.load(Ordering::Relaxed) == working {
            return;
        }
        self.working.store(working, Ordering::Relaxed);
        if working {
            let now = readers.working.fetch_add(1, Ordering::Relaxed) + 1;
            let limit = if now <= readers.few {
                EARLY_REPLIES
            } else {
                HELD_REPLIES
            };
            self.limit.store(limit, Ordering::Relaxed);
        } else {
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
        a.set(&readers, true);
        a.set(&readers, true);
        assert_eq!(a.hold_limit(), EARLY_REPLIES, "one works, counted once");
        b.set(&readers, true);
        assert_eq!(b.hold_limit(), HELD_REPLIES, "the second to work holds all");
        assert_eq!(a.hold_limit(), EARLY_REPLIES, "decided when it started");
        a.set(&readers, false);
        a.set(&readers, true);
        assert_eq!(a.hold_limit(), HELD_REPLIES, "two work");
        b.set(&readers, false);
        b.set(&readers, false);
        a.set(&readers, false);
        a.set(&readers, true);
        assert_eq!(a.hold_limit(), EARLY_REPLIES, "alone again");
        a.set(&readers, false);
        assert_eq!(readers.working.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn each_part_handed_on_early_is_twice_the_last_until_the_connection_waits() {
        let readers = WorkingReaders::new(1);
        let a = ReaderState::default();
        a.set(&readers, true);
        a.handed_on_early();
        assert_eq!(a.hold_limit(), 2 * EARLY_REPLIES);
        a.handed_on_early();
        assert_eq!(a.hold_limit(), 4 * EARLY_REPLIES);
        for _ in 0..64 {
            a.handed_on_early();
        }
        assert_eq!(
            a.hold_limit(),
            HELD_REPLIES,
            "never more than when many work"
        );
        a.set(&readers, false);
        a.set(&readers, true);
        assert_eq!(a.hold_limit(), EARLY_REPLIES);
    }
}
