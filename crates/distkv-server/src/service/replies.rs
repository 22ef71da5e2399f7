//! The reply side of a connection: what actions and streams send, queued
//! for the connection's writer task.

use std::sync::Arc;

use distkv_proto::value_map::MapBuilder;
use distkv_tree::Value;
use tokio::sync::mpsc;

use crate::state::Shared;

/// The reply side of a connection: a bounded queue to the writer task.
/// Sending waits while the queue is full, which slows down this client's
/// requests only.
#[derive(Clone)]
pub struct Replies {
    tx: mpsc::Sender<Value>,
    shared: Arc<Shared>,
}

impl Replies {
    /// Sends a reply for `seq`, adding a fresh `tock` if it has none.
    /// Returns false once the connection is gone.
    pub async fn send(&self, seq: u64, mut m: MapBuilder) -> bool {
        if !m.has("tock") {
            m.push("tock", self.shared.store.clock.next());
        }
        m.push("seq", seq);
        if m.has("error") {
            self.shared.service.metrics.error();
        }
        self.tx.send(m.build()).await.is_ok()
    }

    /// Sends a message without `seq` (fatal errors before closing).
    pub(crate) async fn send_raw(&self, m: MapBuilder) {
        let m = m.set("tock", self.shared.store.clock.next());
        let _ = self.tx.send(m.build()).await;
    }
}

impl Replies {
    /// Replies that go into `tx`, with the server's clock and counters.
    pub(crate) fn new(tx: mpsc::Sender<Value>, shared: Arc<Shared>) -> Replies {
        Replies { tx, shared }
    }
}
