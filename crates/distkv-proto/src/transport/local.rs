//! The in-process gossip backend for a single node.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::mpsc;

use super::{Gossip, GossipError, GossipEvent, Subscription};

type Subscribers = HashMap<String, Vec<(mpsc::Sender<GossipEvent>, Arc<AtomicU64>)>>;

/// Delivers every broadcast to the subscribers in this process only.
///
/// Each subscription has a bounded queue of `queue` events; when it is
/// full, further events for it are dropped and counted, like a gossip
/// agent dropping events under load.
#[derive(Debug)]
pub struct LocalGossip {
    subscribers: Mutex<Subscribers>,
    queue: usize,
    max_event_size: usize,
}

impl LocalGossip {
    /// A backend with per-subscriber queues of `queue` events.
    pub fn new(queue: usize) -> LocalGossip {
        LocalGossip {
            subscribers: Mutex::new(HashMap::new()),
            queue: queue.max(1),
            max_event_size: 1 << 20,
        }
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
        let mut subs = self
            .subscribers
            .lock()
            .map_err(|_| GossipError::Closed("subscriber table poisoned".into()))?;
        if let Some(list) = subs.get_mut(name) {
            list.retain(|(tx, dropped)| {
                let ev = GossipEvent {
                    name: name.to_owned(),
                    payload: payload.clone(),
                };
                match tx.try_send(ev) {
                    Ok(()) => true,
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        dropped.fetch_add(1, Ordering::Relaxed);
                        true
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => false,
                }
            });
        }
        Ok(())
    }

    async fn subscribe(&self, name: &str) -> Result<Subscription, GossipError> {
        let (tx, rx) = mpsc::channel(self.queue);
        let dropped = Arc::new(AtomicU64::new(0));
        self.subscribers
            .lock()
            .map_err(|_| GossipError::Closed("subscriber table poisoned".into()))?
            .entry(name.to_owned())
            .or_default()
            .push((tx, dropped.clone()));
        Ok(Subscription::new(rx, dropped))
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
