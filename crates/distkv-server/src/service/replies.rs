//! The reply side of a connection: what actions and streams send, encoded
//! into the connection's [`Outbox`].

use std::sync::{Arc, Mutex};

use distkv_connect::Outbox;
use distkv_proto::value_map::MapBuilder;

use crate::state::Shared;
use crate::storage::sink::UnwrittenLogs;

/// Reply bytes the reading task holds before it hands them on.
const HOLD_LIMIT: usize = 256 << 10;

/// The reply side of a connection. Sending waits while the connection's
/// outbox is full, which slows down this client's requests only.
///
/// The connection's reading task holds its replies, and the state log
/// records of its changes, until it is about to wait (for the next
/// request, or inside a request that waits): then it writes the log
/// records, and then the replies, so a batch of requests costs one log
/// write and one socket write, without a task switch, and no reply
/// announces a change whose record is not in the kernel yet. Clones,
/// which other tasks (streams) use, queue their messages for the writer
/// task at once.
pub struct Replies {
    out: Outbox,
    shared: Arc<Shared>,
    /// The reading task's replies and log files, not yet handed on
    /// (`None` in clones).
    held: Option<Held>,
}

struct Held {
    replies: Mutex<Vec<u8>>,
    logs: Arc<UnwrittenLogs>,
}

impl Clone for Replies {
    fn clone(&self) -> Replies {
        Replies {
            out: self.out.clone(),
            shared: self.shared.clone(),
            held: None,
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
        let Some(held) = &self.held else {
            return self
                .out
                .push(true, |buf, _| distkv_proto::msgpack::encode(&v, buf))
                .await
                .is_ok();
        };
        let full = {
            let mut r = lock(&held.replies);
            distkv_proto::msgpack::encode(&v, &mut r);
            r.len() >= HOLD_LIMIT
        };
        if full {
            held.logs.write();
            let bytes = std::mem::take(&mut *lock(&held.replies));
            // waits for room: back-pressure on this client
            if self
                .out
                .push(false, |buf, _| buf.extend_from_slice(&bytes))
                .await
                .is_err()
            {
                return false;
            }
            self.out.write_now();
        }
        !self.out.is_closed()
    }

    /// Runs `f` (a poll of the reading task's work) collecting the log
    /// files its changes append to.
    pub(crate) fn collecting<R>(&self, f: impl FnOnce() -> R) -> R {
        match &self.held {
            Some(held) => held.logs.collecting(f),
            None => f(),
        }
    }

    /// Writes the held log records, then hands the held replies on and
    /// writes what the socket takes now (see the type's description).
    pub(crate) fn release(&self) {
        let Some(held) = &self.held else { return };
        held.logs.write();
        let bytes = std::mem::take(&mut *lock(&held.replies));
        if !bytes.is_empty() && self.out.append_now(&bytes).is_ok() {
            self.out.write_now();
        }
    }

    /// Takes no more replies: the writer writes what is queued and ends.
    pub(crate) fn close(&self) {
        self.release();
        self.out.close();
    }

    /// The reading task's replies into `out`, with the server's clock and
    /// counters.
    pub(crate) fn new(out: Outbox, shared: Arc<Shared>) -> Replies {
        Replies {
            out,
            shared,
            held: Some(Held {
                replies: Mutex::default(),
                logs: Arc::default(),
            }),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
