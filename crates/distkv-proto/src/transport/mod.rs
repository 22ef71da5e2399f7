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
    dropped: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Subscription {
    /// Wraps a receiver and its drop counter (for backends).
    pub fn new(
        rx: mpsc::Receiver<GossipEvent>,
        dropped: std::sync::Arc<std::sync::atomic::AtomicU64>,
    ) -> Subscription {
        Subscription { rx, dropped }
    }

    /// The next event; `None` once the backend is closed.
    pub async fn recv(&mut self) -> Option<GossipEvent> {
        self.rx.recv().await
    }

    /// How many events were dropped because this subscriber was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(std::sync::atomic::Ordering::Relaxed)
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
