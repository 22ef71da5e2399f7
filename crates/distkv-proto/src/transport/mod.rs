//! The transport between servers: what a distributed engine (a Serf
//! agent, an MQTT broker, or this process for a single node) must offer.
//!
//! Servers broadcast their changes and coordination messages as named
//! events through a [`Gossip`] backend and receive everybody's events
//! through [`Subscription`]s. The server does not know which backend it
//! has. The backends live beside each other above this crate
//! (`distkv-serf`, `distkv-mqtt`); the in-process one, [`local::LocalGossip`],
//! is here, for a single node and for tests.
//!
//! Gossip is unreliable by contract: events may be lost, duplicated or
//! reordered. The server's tick bookkeeping repairs that.

pub mod local;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::mpsc;

/// One user event as received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GossipEvent {
    /// The event name (for distkv: `<root>.update`, `<root>.ping`, …).
    pub name: String,
    /// The payload (a msgpack message for distkv's own events).
    pub payload: Bytes,
}

/// What can go wrong when talking to the gossip layer.
#[derive(Debug, thiserror::Error)]
pub enum GossipError {
    /// The backend is gone (agent connection lost, shut down).
    #[error("gossip backend closed: {0}")]
    Closed(String),
    /// Name plus payload exceed what one event may carry.
    #[error("event too large: {size} bytes, at most {max}")]
    TooLarge {
        /// Bytes of name and payload.
        size: usize,
        /// The backend's limit.
        max: usize,
    },
    /// The backend reported an error.
    #[error("gossip backend error: {0}")]
    Backend(String),
    /// I/O with the backend failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// A stream of received events of one name.
///
/// Backed by a bounded queue: when the consumer falls behind, the backend
/// drops events (gossip is lossy by contract) and counts them in
/// [`Subscription::dropped`].
#[derive(Debug)]
pub struct Subscription {
    rx: mpsc::Receiver<GossipEvent>,
    dropped: Arc<AtomicU64>,
}

impl Subscription {
    /// Wraps a receiver and its drop counter (for backends).
    pub fn new(rx: mpsc::Receiver<GossipEvent>, dropped: Arc<AtomicU64>) -> Subscription {
        Subscription { rx, dropped }
    }

    /// The next event; `None` once the backend is closed.
    pub async fn recv(&mut self) -> Option<GossipEvent> {
        self.rx.recv().await
    }

    /// How many events were dropped because this subscriber was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// One subscriber's queue and its drop counter.
type Subscriber = (mpsc::Sender<GossipEvent>, Arc<AtomicU64>);

/// The subscribers of a backend, by event name: what every [`Gossip`]
/// backend keeps to hand received events to its [`Subscription`]s.
///
/// Each subscriber has a bounded queue. [`SubscriberTable::deliver`] never
/// waits: when a queue is full the event is dropped for that subscriber and
/// counted (see [`Subscription::dropped`]); subscribers that went away are
/// removed. Names stay in the table once subscribed, so that a backend can
/// re-establish them after a reconnect ([`SubscriberTable::names`]).
#[derive(Debug, Default)]
pub struct SubscriberTable {
    subs: Mutex<HashMap<String, Vec<Subscriber>>>,
}

impl SubscriberTable {
    /// An empty table.
    pub fn new() -> SubscriberTable {
        SubscriberTable::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<Subscriber>>> {
        // The map stays consistent whatever panicked while holding it.
        self.subs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a subscriber of `name` with a queue of `queue` events (at
    /// least one). Returns its subscription and whether `name` is new to
    /// the table (the backend then has to start receiving it).
    pub fn subscribe(&self, name: &str, queue: usize) -> (Subscription, bool) {
        let (tx, rx) = mpsc::channel(queue.max(1));
        let dropped = Arc::new(AtomicU64::new(0));
        let mut subs = self.lock();
        let new = !subs.contains_key(name);
        subs.entry(name.to_owned())
            .or_default()
            .push((tx, dropped.clone()));
        (Subscription::new(rx, dropped), new)
    }

    /// Hands `ev` to every subscriber of `ev.name`, without waiting: a
    /// full queue drops it (counted), a closed one is removed.
    pub fn deliver(&self, ev: GossipEvent) {
        let mut subs = self.lock();
        let Some(list) = subs.get_mut(&ev.name) else {
            return;
        };
        list.retain(|(tx, dropped)| match tx.try_send(ev.clone()) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                dropped.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        });
    }

    /// Every name ever subscribed.
    pub fn names(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }
}

/// A broadcast medium between servers.
#[async_trait]
pub trait Gossip: Send + Sync + 'static {
    /// Broadcasts one user event to every member (this one included).
    async fn broadcast(&self, name: &str, payload: Bytes) -> Result<(), GossipError>;

    /// Receives the user events named `name`.
    async fn subscribe(&self, name: &str) -> Result<Subscription, GossipError>;

    /// The most bytes of name plus payload one event may carry; larger
    /// messages must be split by the caller.
    fn max_event_size(&self) -> usize;

    /// A short name of the backend for logs (`local`, `serf`, `mqtt`).
    fn kind(&self) -> &'static str;

    /// Whether other servers can be reached at all. A single-node backend
    /// returns false, and the server then skips replication entirely.
    fn has_peers(&self) -> bool {
        true
    }

    /// Publishes `key=value` tags for this member (for instance its client
    /// address), so that other members can find it.
    async fn set_tags(&self, _tags: &[(String, String)]) -> Result<(), GossipError> {
        Ok(())
    }

    /// The members of the gossip network, with their tags.
    async fn peers(&self) -> Result<Vec<Peer>, GossipError> {
        Ok(Vec::new())
    }

    /// A counter that increases whenever the backend reconnected after an
    /// outage (events may have been lost meanwhile). `None` if the backend
    /// cannot lose its connection.
    fn generation(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        None
    }

    /// How many events wait in the backend to be spread (Serf's
    /// `event_queue`), if it can tell. Senders hold back while it is long,
    /// so that urgent messages (pings) are not stuck behind bulk updates.
    fn backlog(&self) -> Option<u64> {
        None
    }
}

/// A member of the gossip network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    /// The member's name in the gossip layer.
    pub name: String,
    /// Whether it is currently reachable.
    pub alive: bool,
    /// Its tags.
    pub tags: Vec<(String, String)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(name: &str, b: u8) -> GossipEvent {
        GossipEvent {
            name: name.to_owned(),
            payload: Bytes::from(vec![b]),
        }
    }

    #[tokio::test]
    async fn table_delivers_by_name_counts_drops_and_forgets_closed() {
        let t = SubscriberTable::new();
        let (mut a, new_a) = t.subscribe("x", 1);
        let (b, new_b) = t.subscribe("x", 1);
        let (mut c, new_c) = t.subscribe("y", 0);
        assert!(new_a && !new_b && new_c);
        drop(b);
        t.deliver(ev("x", 1));
        t.deliver(ev("x", 2));
        t.deliver(ev("y", 3));
        t.deliver(ev("z", 4));
        assert_eq!(a.recv().await, Some(ev("x", 1)));
        assert_eq!(a.dropped(), 1);
        assert_eq!(c.recv().await, Some(ev("y", 3)));
        assert_eq!(t.lock().get("x").map(Vec::len), Some(1));
        let mut names = t.names();
        names.sort();
        assert_eq!(names, ["x", "y"]);
    }
}
