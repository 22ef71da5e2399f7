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

    fn few_working(&self) -> bool {
        self.working.load(Ordering::Relaxed) <= self.few
    }
}

/// One connection's place in a [`WorkingReaders`] count. It counts only
/// changes, so polling a working or a waiting connection again touches no
/// shared memory. Its owner sets it to waiting when the connection ends.
#[derive(Debug)]
pub(crate) struct ReaderState {
    working: AtomicBool,
    /// What the connection holds next while few connections work.
    early: AtomicUsize,
}

impl Default for ReaderState {
    fn default() -> ReaderState {
        ReaderState {
            working: AtomicBool::new(false),
            early: AtomicUsize::new(EARLY_REPLIES),
        }
    }
}

impl ReaderState {
    /// How many reply bytes the connection holds now, before it hands
    /// them on.
    pub(crate) fn hold_limit(&self, readers: &WorkingReaders) -> usize {
        if readers.few_working() {
            self.early.load(Ordering::Relaxed)
        } else {
            HELD_REPLIES
        }
    }

    /// The connection handed its replies on before waiting: it holds
    /// twice as many next time.
    pub(crate) fn handed_on_early(&self) {
        let next = self.early.load(Ordering::Relaxed).saturating_mul(2);
        self.early.store(next.min(HELD_REPLIES), Ordering::Relaxed);
    }

    /// Counts the connection as working (`true`) or waiting in `readers`;
    /// one that waits starts over with small parts.
    pub(crate) fn set(&self, readers: &WorkingReaders, working: bool) {
        if !working {
            self.early.store(EARLY_REPLIES, Ordering::Relaxed);
        }
        if self.working.swap(working, Ordering::Relaxed) != working {
            if working {
                readers.working.fetch_add(1, Ordering::Relaxed);
            } else {
                readers.working.fetch_sub(1, Ordering::Relaxed);
            }
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
        assert_eq!(a.hold_limit(&readers), EARLY_REPLIES, "nobody works");
        a.set(&readers, true);
        a.set(&readers, true);
        assert_eq!(
            a.hold_limit(&readers),
            EARLY_REPLIES,
            "one works, counted once"
        );
        b.set(&readers, true);
        assert_eq!(a.hold_limit(&readers), HELD_REPLIES, "two work");
        b.set(&readers, false);
        b.set(&readers, false);
        assert_eq!(a.hold_limit(&readers), EARLY_REPLIES, "one waits again");
        a.set(&readers, false);
        assert_eq!(readers.working.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn each_part_handed_on_early_is_twice_the_last_until_the_connection_waits() {
        let readers = WorkingReaders::new(1);
        let a = ReaderState::default();
        a.set(&readers, true);
        a.handed_on_early();
        assert_eq!(a.hold_limit(&readers), 2 * EARLY_REPLIES);
        a.handed_on_early();
        assert_eq!(a.hold_limit(&readers), 4 * EARLY_REPLIES);
        for _ in 0..64 {
            a.handed_on_early();
        }
        assert_eq!(
            a.hold_limit(&readers),
            HELD_REPLIES,
            "never more than when many work"
        );
        a.set(&readers, false);
        a.set(&readers, true);
        assert_eq!(a.hold_limit(&readers), EARLY_REPLIES);
    }
}
