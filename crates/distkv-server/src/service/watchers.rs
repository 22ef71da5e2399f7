//! Watchers: clients streaming the changes below a path.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use distkv_tree::{Chain, Path, Value};
use tokio::sync::mpsc;

/// One change as delivered to a watcher.
#[derive(Clone, Debug)]
pub struct WatchEvent {
    /// Absolute path of the changed entry.
    pub path: Path,
    /// Its value now (`None`: deleted).
    pub value: Option<Value>,
    /// Its chain now.
    pub chain: Option<Chain>,
    /// The tock of the change.
    pub tock: u64,
}

/// The receiving end of a watcher registration.
///
/// Every change it holds counts against the server-wide budget of queued
/// changes until it is received or the handle is dropped.
#[derive(Debug)]
pub struct WatchHandle {
    /// The registration's id, for removal.
    pub id: u64,
    /// Changes, in the order they were made.
    rx: mpsc::Receiver<WatchEvent>,
    /// Set when the queue overflowed and changes were lost.
    pub overflowed: Arc<AtomicBool>,
    /// Changes queued for all watchers of the server.
    queued: Arc<AtomicUsize>,
}

impl WatchHandle {
    /// The next change; `None` once the watcher is unregistered or
    /// overflowed and everything queued before has been received.
    pub async fn recv(&mut self) -> Option<WatchEvent> {
        let ev = self.rx.recv().await;
        if ev.is_some() {
            self.queued.fetch_sub(1, Ordering::AcqRel);
        }
        ev
    }

    /// The next change if one is queued.
    pub fn try_recv(&mut self) -> Option<WatchEvent> {
        let ev = self.rx.try_recv().ok();
        if ev.is_some() {
            self.queued.fetch_sub(1, Ordering::AcqRel);
        }
        ev
    }
}

impl Drop for WatchHandle {
    fn drop(&mut self) {
        // nothing can be queued after `close`; what is queued is returned
        // to the budget
        self.rx.close();
        while self.try_recv().is_some() {}
    }
}

#[derive(Debug)]
struct Watcher {
    id: u64,
    path: Path,
    min_depth: usize,
    max_depth: Option<usize>,
    tx: mpsc::Sender<WatchEvent>,
    overflowed: Arc<AtomicBool>,
}

/// The largest queue one watcher gets, whatever the configuration says
/// (the channel refuses larger bounds).
pub const MAX_WATCH_QUEUE: usize = 1 << 24;

/// How far watchers may fall behind before they overflow.
#[derive(Debug, Clone, Copy)]
pub struct QueueLimits {
    /// Changes queued per watcher; beyond, it overflows (at most
    /// [`MAX_WATCH_QUEUE`]).
    pub per_watcher: usize,
    /// Changes queued for all watchers together; beyond, the watcher that
    /// would get one more overflows.
    pub total: usize,
}

/// All watchers of a server. Lives next to the tree under the same lock, so
/// that registering and reading the current tock is atomic with respect to
/// changes: a watcher sees every change made after it registered.
#[derive(Debug, Default)]
pub struct Watchers {
    list: Vec<Watcher>,
    next_id: u64,
    /// Changes queued for all watchers (shared with their handles).
    queued: Arc<AtomicUsize>,
    /// The limit on `queued` (from the latest registration).
    total_limit: usize,
}

impl Watchers {
    /// Registers a watcher for `path`, falling behind by at most `limits`.
    pub fn add(
        &mut self,
        path: Path,
        min_depth: usize,
        max_depth: Option<usize>,
        limits: QueueLimits,
    ) -> WatchHandle {
        let (tx, rx) = mpsc::channel(limits.per_watcher.clamp(1, MAX_WATCH_QUEUE));
        self.next_id += 1;
        self.total_limit = limits.total.max(1);
        let overflowed = Arc::new(AtomicBool::new(false));
        self.list.push(Watcher {
            id: self.next_id,
            path,
            min_depth,
            max_depth,
            tx,
            overflowed: overflowed.clone(),
        });
        WatchHandle {
            id: self.next_id,
            rx,
            overflowed,
            queued: self.queued.clone(),
        }
    }

    /// Changes queued for all watchers, not yet received.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }

    /// Removes a registration.
    pub fn remove(&mut self, id: u64) {
        self.list.retain(|w| w.id != id);
    }

    /// Number of registrations.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether nobody watches.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Delivers a change to every matching watcher. Never blocks: a watcher
    /// whose queue is full is marked overflowed and dropped (its stream then
    /// ends with an error, and the client must resync).
    pub fn notify(&mut self, ev: &WatchEvent) {
        if self.list.is_empty() {
            return;
        }
        self.list.retain(|w| {
            if !ev.path.starts_with(&w.path) {
                return true;
            }
            let depth = ev.path.len() - w.path.len();
            if depth < w.min_depth || w.max_depth.is_some_and(|m| depth > m) {
                return true;
            }
            // counted before it can be received, so the count never
            // drops below what is queued
            if self.queued.fetch_add(1, Ordering::AcqRel) >= self.total_limit {
                self.queued.fetch_sub(1, Ordering::AcqRel);
                w.overflowed.store(true, Ordering::Release);
                return false;
            }
            match w.tx.try_send(ev.clone()) {
                Ok(()) => true,
                Err(e) => {
                    self.queued.fetch_sub(1, Ordering::AcqRel);
                    if matches!(e, mpsc::error::TrySendError::Full(_)) {
                        w.overflowed.store(true, Ordering::Release);
                    }
                    false
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(per_watcher: usize, total: usize) -> QueueLimits {
        QueueLimits { per_watcher, total }
    }

    fn ev(words: &[&str]) -> WatchEvent {
        WatchEvent {
            path: Path::from_strs(words),
            value: Some(Value::Int(1)),
            chain: None,
            tock: 1,
        }
    }

    #[test]
    fn matches_prefix_and_depth() {
        let mut w = Watchers::default();
        let mut h = w.add(Path::from_strs(&["a"]), 1, Some(1), limits(10, 100));
        w.notify(&ev(&["a"]));
        w.notify(&ev(&["a", "b"]));
        w.notify(&ev(&["a", "b", "c"]));
        w.notify(&ev(&["x", "b"]));
        let got = h.try_recv().expect("one event");
        assert_eq!(got.path, Path::from_strs(&["a", "b"]));
        assert!(h.try_recv().is_none());
    }

    #[test]
    fn overflow_drops_watcher() {
        let mut w = Watchers::default();
        let h = w.add(Path::root(), 0, None, limits(2, 100));
        for _ in 0..3 {
            w.notify(&ev(&["a"]));
        }
        assert!(h.overflowed.load(Ordering::Acquire));
        assert!(w.is_empty());
    }

    #[test]
    fn the_server_wide_budget_overflows_the_watcher_that_would_exceed_it() {
        let mut w = Watchers::default();
        let mut a = w.add(Path::from_strs(&["a"]), 0, None, limits(10, 5));
        let b = w.add(Path::from_strs(&["b"]), 0, None, limits(10, 5));
        for _ in 0..3 {
            w.notify(&ev(&["a"]));
        }
        w.notify(&ev(&["b"]));
        w.notify(&ev(&["b"]));
        assert_eq!(w.queued(), 5);
        // the budget is spent: the next change for b overflows b, not a
        w.notify(&ev(&["b"]));
        assert!(b.overflowed.load(Ordering::Acquire));
        assert!(!a.overflowed.load(Ordering::Acquire));
        // receiving returns budget; dropping a handle returns what it held
        assert!(a.try_recv().is_some());
        assert_eq!(w.queued(), 4);
        drop(b);
        assert_eq!(w.queued(), 2);
        w.notify(&ev(&["a"]));
        assert_eq!(w.queued(), 3);
        assert!(!a.overflowed.load(Ordering::Acquire));
        drop(a);
        assert_eq!(w.queued(), 0);
    }

    #[test]
    fn a_huge_configured_queue_is_capped() {
        let mut w = Watchers::default();
        let mut h = w.add(Path::root(), 0, None, limits(usize::MAX, usize::MAX));
        w.notify(&ev(&["a"]));
        assert!(h.try_recv().is_some());
    }
}
