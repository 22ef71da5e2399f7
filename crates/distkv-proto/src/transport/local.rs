//! The in-process gossip backend for a single node.

use async_trait::async_trait;
use bytes::Bytes;

use super::{Gossip, GossipError, GossipEvent, SubscriberTable, Subscription};

/// Delivers every broadcast to the subscribers in this process only.
///
/// Each subscription has a bounded queue of `queue` events; when it is
/// full, further events for it are dropped and counted, like a gossip
/// agent dropping events under load.
#[derive(Debug)]
pub struct LocalGossip {
    subscribers: SubscriberTable,
    queue: usize,
    max_event_size: usize,
}

impl LocalGossip {
    /// A backend with per-subscriber queues of `queue` events.
    pub fn new(queue: usize) -> LocalGossip {
        LocalGossip {
            subscribers: SubscriberTable::new(),
            queue: queue.max(1),
            max_event_size: 1 << 20,
        }
    }

    /// Lets one event carry at most `max` bytes of name and payload (1 MiB
    /// unless set), to stand in for a transport with small events.
    pub fn with_max_event_size(mut self, max: usize) -> LocalGossip {
        self.max_event_size = max.max(1);
        self
    }
}

impl Default for LocalGossip {
    fn default() -> LocalGossip {
        LocalGossip::new(1024)
    }
}

#[async_trait]
impl Gossip for LocalGossip {
    async fn broadcast(&self, name: &str, payload: Bytes) -> Result<(), GossipError> {
        let size = name.len() + payload.len();
        if size > self.max_event_size {
            return Err(GossipError::TooLarge {
                size,
                max: self.max_event_size,
            });
        }
        self.subscribers.deliver(GossipEvent {
            name: name.to_owned(),
            payload,
        });
        Ok(())
    }

    async fn subscribe(&self, name: &str) -> Result<Subscription, GossipError> {
        Ok(self.subscribers.subscribe(name, self.queue).0)
    }

    fn max_event_size(&self) -> usize {
        self.max_event_size
    }

    fn kind(&self) -> &'static str {
        "local"
    }

    fn has_peers(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn delivers_by_name_and_counts_drops() {
        let g = LocalGossip::new(2);
        let mut a = g.subscribe("x.update").await.expect("subscribe");
        let mut b = g.subscribe("x.ping").await.expect("subscribe");
        for i in 0..3u8 {
            g.broadcast("x.update", Bytes::from(vec![i]))
                .await
                .expect("broadcast");
        }
        assert_eq!(
            a.recv().await.map(|e| e.payload),
            Some(Bytes::from(vec![0]))
        );
        assert_eq!(
            a.recv().await.map(|e| e.payload),
            Some(Bytes::from(vec![1]))
        );
        assert_eq!(a.dropped(), 1);
        g.broadcast("x.ping", Bytes::from_static(b"p"))
            .await
            .expect("broadcast");
        assert_eq!(b.recv().await.map(|e| e.name), Some("x.ping".to_owned()));
    }

    #[tokio::test]
    async fn refuses_oversized_events() {
        let g = LocalGossip::default();
        let big = Bytes::from(vec![0u8; 2 << 20]);
        assert!(matches!(
            g.broadcast("x", big).await,
            Err(GossipError::TooLarge { .. })
        ));
    }
}
