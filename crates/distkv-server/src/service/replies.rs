//! The reply side of a connection: what actions and streams send, encoded
//! into the connection's [`Outbox`].

use std::sync::Arc;

use distkv_connect::Outbox;
use distkv_proto::value_map::MapBuilder;

use crate::state::Shared;

/// The reply side of a connection. Sending waits while the connection's
/// outbox is full, which slows down this client's requests only.
///
/// The connection's reading task sends without waking the writer task: it
/// writes what it queued itself when it is about to wait (for the next
/// request, or inside a request that waits), so a batch of requests gets
/// its replies in one write, without a task switch. Clones, which other
/// tasks (streams) use, wake the writer.
pub struct Replies {
    out: Outbox,
    shared: Arc<Shared>,
    wake: bool,
}

impl Clone for Replies {
    fn clone(&self) -> Replies {
        Replies {
            out: self.out.clone(),
            shared: self.shared.clone(),
            wake: true,
        }
    }
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
        self.push(m).await
    }

    /// Sends a message without `seq` (fatal errors before closing).
    pub(crate) async fn send_raw(&self, m: MapBuilder) {
        let m = m.set("tock", self.shared.store.clock.next());
        self.push(m).await;
    }

    async fn push(&self, m: MapBuilder) -> bool {
        let v = m.build();
        self.out
            .push(self.wake, |buf, _| distkv_proto::msgpack::encode(&v, buf))
            .await
            .is_ok()
    }

    /// Writes what the reading task queued (see the type's description).
    pub(crate) fn write_now(&self) {
        self.out.write_now();
    }

    /// Takes no more replies: the writer writes what is queued and ends.
    pub(crate) fn close(&self) {
        self.out.close();
    }
}

impl Replies {
    /// The reading task's replies into `out`, with the server's clock and
    /// counters.
    pub(crate) fn new(out: Outbox, shared: Arc<Shared>) -> Replies {
        Replies {
            out,
            shared,
            wake: false,
        }
    }
}
