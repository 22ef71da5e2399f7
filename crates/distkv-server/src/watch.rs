//! Watchers: clients streaming the changes below a path.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

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
#[derive(Debug)]
pub struct WatchHandle {
    /// The registration's id, for removal.
    pub id: u64,
    /// Changes, in the order they were made.
    pub rx: mpsc::Receiver<WatchEvent>,
    /// Set when the queue overflowed and changes were lost.
    pub overflowed: Arc<AtomicBool>,
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

/// All watchers of a server. Lives next to the tree under the same lock, so
/// that registering and reading the current tock is atomic with respect to
/// changes: a watcher sees every change made after it registered.
#[derive(Debug, Default)]
pub struct Watchers {
    list: Vec<Watcher>,
    next_id: u64,
}

impl Watchers {
    /// Registers a watcher for `path` with a queue of `queue` changes.
    pub fn add(
        &mut self,
        path: Path,
        min_depth: usize,
        max_depth: Option<usize>,
        queue: usize,
    ) -> WatchHandle {
        let (tx, rx) = mpsc::channel(queue.max(1));
        self.next_id += 1;
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
        }
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
            match w.tx.try_send(ev.clone()) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    w.overflowed.store(true, Ordering::Release);
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let mut h = w.add(Path::from_strs(&["a"]), 1, Some(1), 10);
        w.notify(&ev(&["a"]));
        w.notify(&ev(&["a", "b"]));
        w.notify(&ev(&["a", "b", "c"]));
        w.notify(&ev(&["x", "b"]));
        let got = h.rx.try_recv().expect("one event");
        assert_eq!(got.path, Path::from_strs(&["a", "b"]));
        assert!(h.rx.try_recv().is_err());
    }

    #[test]
    fn overflow_drops_watcher() {
        let mut w = Watchers::default();
        let h = w.add(Path::root(), 0, None, 2);
        for _ in 0..3 {
            w.notify(&ev(&["a"]));
        }
        assert!(h.overflowed.load(Ordering::Acquire));
        assert!(w.is_empty());
    }
}
