//! Reading the next message without giving the core up at once.
//!
//! A task that waits for a socket sleeps, and the thread under it parks
//! in `epoll_wait`; when the message arrives the kernel has to wake that
//! thread, and on a virtual machine whose core went idle that costs tens
//! of microseconds, often more than the rest of a request's round trip.
//! While the two ends of a connection play ping-pong (one message in, one
//! answer out, the next message only after that answer), the next message
//! is usually a round trip away, so it pays to keep polling the socket for
//! a short while before going to sleep: [`BusyPoll`].
//!
//! Polling here means yielding to the runtime between looks at the
//! socket: every other ready task runs first, and the runtime polls its
//! I/O driver without blocking each time round, so the spinning costs only
//! time that nothing else wanted. Connections that pipeline (several
//! messages arrive per wake-up) never spin: their next message is already
//! in the buffer or the wait is worth sleeping through. And no more than
//! one reader per two cores polls at once in a process: beyond that a
//! poller mostly keeps others from running, on a busy machine waking is
//! cheap anyway, and the rest sleep as before.

use std::num::NonZeroUsize;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::{FutureExt, Stream, StreamExt};

/// The busy-polling budget servers and clients use unless configured
/// otherwise (`server.busy_poll`, `connect.busy_poll`): 50 µs, about twice
/// a round trip on loopback when neither end sleeps.
pub const DEFAULT_BUSY_POLL: Duration = Duration::from_micros(50);

/// Reads a connection's messages, polling for a while before sleeping
/// when the connection plays ping-pong.
///
/// ```
/// use std::time::Duration;
/// use distkv_connect::BusyPoll;
/// use futures_util::stream;
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime").block_on(async {
/// let mut messages = stream::iter([1, 2, 3]);
/// let mut poll = BusyPoll::new(Duration::from_micros(50));
/// assert_eq!(poll.next(&mut messages, || true).await, Some(1));
/// assert_eq!(poll.next(&mut messages, || true).await, Some(2));
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct BusyPoll {
    budget: Duration,
    /// Messages taken since the connection last had to wait.
    since_wait: u32,
    /// Where a poller takes its place (the process's, but in tests).
    places: &'static Places,
}

impl BusyPoll {
    /// Polls for up to `budget` before sleeping (zero: never polls).
    pub fn new(budget: Duration) -> BusyPoll {
        BusyPoll {
            budget,
            since_wait: 0,
            places: places(),
        }
    }

    /// The longest a wait polls before sleeping.
    pub fn budget(&self) -> Duration {
        self.budget
    }

    /// The next message of `messages`.
    ///
    /// If none is ready and the last wait brought just one message before
    /// this one (ping-pong), the stream is polled again after each yield
    /// to the runtime, for up to the budget, before the task sleeps on it.
    /// `worth_it` is asked after each yield (so a task woken by the last
    /// message has had its turn): say whether anybody waits for the next
    /// message; once it says no, the task sleeps.
    pub async fn next<S>(
        &mut self,
        messages: &mut S,
        mut worth_it: impl FnMut() -> bool,
    ) -> Option<S::Item>
    where
        S: Stream + Unpin,
    {
        if let Some(m) = messages.next().now_or_never() {
            self.since_wait = self.since_wait.saturating_add(1);
            return m;
        }
        let ping_pong = self.since_wait <= 1;
        self.since_wait = 1;
        if self.budget.is_zero() || !ping_pong {
            return messages.next().await;
        }
        if let Some(place) = self.places.take() {
            let until = Instant::now() + self.budget;
            loop {
                tokio::task::yield_now().await;
                if !worth_it() || Instant::now() >= until {
                    break;
                }
                if let Some(m) = messages.next().now_or_never() {
                    return m;
                }
            }
            // the place is for polling, not for sleeping
            drop(place);
        }
        messages.next().await
    }
}

#[derive(Debug)]
struct Places {
    taken: AtomicUsize,
    max: usize,
}

/// A place taken; given back when dropped.
struct Place<'a>(&'a Places);

impl Places {
    const fn new(max: usize) -> Places {
        Places {
            taken: AtomicUsize::new(0),
            max,
        }
    }

    fn take(&self) -> Option<Place<'_>> {
        if self.taken.fetch_add(1, Ordering::AcqRel) < self.max {
            Some(Place(self))
        } else {
            self.taken.fetch_sub(1, Ordering::AcqRel);
            None
        }
    }
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        self.0.taken.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The process's places: one per two cores, at least one. A client and
/// a server on the same machine then leave each other cores to run on.
fn places() -> &'static Places {
    static PLACES: OnceLock<Places> = OnceLock::new();
    PLACES.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
        Places::new((cores / 2).max(1))
    })
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::task::{Context, Poll};

    use super::*;

    /// Yields one item once `ready` is set; counts its polls. It never
    /// wakes anybody by itself: a task sleeping on it is woken by the
    /// test's timer instead, so polls show whether the reader spun.
    struct Gate {
        ready: Arc<AtomicBool>,
        polls: Arc<AtomicUsize>,
        done: bool,
    }

    impl Stream for Gate {
        type Item = u32;
        fn poll_next(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<u32>> {
            self.polls.fetch_add(1, Ordering::Relaxed);
            if self.done {
                return Poll::Ready(None);
            }
            if self.ready.load(Ordering::Relaxed) {
                self.done = true;
                Poll::Ready(Some(7))
            } else {
                Poll::Pending
            }
        }
    }

    fn gate() -> (Gate, Arc<AtomicBool>, Arc<AtomicUsize>) {
        let ready = Arc::new(AtomicBool::new(false));
        let polls = Arc::new(AtomicUsize::new(0));
        let g = Gate {
            ready: ready.clone(),
            polls: polls.clone(),
            done: false,
        };
        (g, ready, polls)
    }

    /// Polls made while waiting for a message that turns up after 2 ms,
    /// the reader having taken `before` messages since its last wait.
    async fn polls_while_waiting(
        budget: Duration,
        before: u32,
        worth_it: bool,
    ) -> (usize, Option<u32>) {
        let (mut g, ready, polls) = gate();
        let mut poll = BusyPoll::new(budget);
        // places of its own: tests running beside it do not take them
        poll.places = Box::leak(Box::new(Places::new(1)));
        poll.since_wait = before;
        let reader = async { poll.next(&mut g, || worth_it).await };
        let mut reader = std::pin::pin!(reader);
        let got = tokio::select! {
            m = &mut reader => m,
            () = tokio::time::sleep(Duration::from_millis(2)) => {
                ready.store(true, Ordering::Relaxed);
                // nothing wakes a sleeping reader: poll it once more
                reader.await
            }
        };
        (polls.load(Ordering::Relaxed), got)
    }

    #[tokio::test]
    async fn a_ping_pong_reader_keeps_polling_before_it_sleeps() {
        let (spun, got) = polls_while_waiting(Duration::from_secs(1), 1, true).await;
        assert_eq!(got, Some(7));
        assert!(spun > 10, "polled {spun} times");
    }

    #[tokio::test]
    async fn a_pipelining_reader_sleeps_at_once() {
        let (polls, got) = polls_while_waiting(Duration::from_secs(1), 5, true).await;
        assert_eq!(got, Some(7));
        // the first look, the wait, perhaps a look on the timer's wake-up,
        // the look after it
        assert!(polls <= 4, "polled {polls} times");
    }

    #[tokio::test]
    async fn nobody_waiting_or_no_budget_means_no_polling() {
        let (polls, _) = polls_while_waiting(Duration::from_secs(1), 1, false).await;
        assert!(polls <= 4, "polled {polls} times");
        let (polls, _) = polls_while_waiting(Duration::ZERO, 1, true).await;
        assert!(polls <= 4, "polled {polls} times");
    }

    #[tokio::test]
    async fn a_reader_gives_its_place_back_before_it_sleeps() {
        // polls for 1 ms, then sleeps: meanwhile the place is free
        let (mut g, ready, _) = gate();
        let mut poll = BusyPoll::new(Duration::from_millis(1));
        let places: &'static Places = Box::leak(Box::new(Places::new(1)));
        poll.places = places;
        poll.since_wait = 1;
        let mut reader = std::pin::pin!(poll.next(&mut g, || true));
        tokio::select! {
            _ = &mut reader => panic!("no message yet"),
            () = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
        assert!(
            places.take().is_some(),
            "the sleeping reader holds no place"
        );
        ready.store(true, Ordering::Relaxed);
        assert_eq!(reader.await, Some(7));
    }

    #[test]
    fn no_more_pollers_than_places() {
        let places = Places::new(2);
        let a = places.take().expect("first");
        let b = places.take().expect("second");
        assert!(places.take().is_none(), "a third poller");
        drop(a);
        let c = places.take().expect("a place given back");
        drop((b, c));
        assert_eq!(places.taken.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn ready_messages_are_taken_without_waiting() {
        let mut poll = BusyPoll::new(Duration::from_secs(1));
        let mut s = futures_util::stream::iter([1, 2, 3]);
        for want in [1, 2, 3] {
            assert_eq!(poll.next(&mut s, || panic!("no wait")).await, Some(want));
        }
        assert_eq!(poll.since_wait, 3);
    }
}
