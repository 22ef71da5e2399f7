//! The reply side of a connection: what actions and streams send, encoded
//! into the connection's [`Outbox`].

use std::sync::{Arc, Mutex};

use distkv_connect::Outbox;
use distkv_proto::value_map::MapBuilder;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::service::working_readers::{ReaderState, WorkingReaders};
use crate::state::Shared;
use crate::storage::group_commit::Durable;
use crate::storage::sink::UnwrittenLogs;

/// The reply side of a connection. Sending waits while the connection's
/// outbox is full, which slows down this client's requests only.
///
/// The connection's reading task holds its replies, and the state log
/// records of its changes, until it is about to wait (for the next
/// request, or inside a request that waits): then it writes the log
/// records, and then the replies, so a batch of requests costs one log
/// write and one socket write, without a task switch (while many
/// connections work; otherwise it hands them on in growing parts), and no
/// reply announces a change whose record is not in the kernel yet. Clones,
/// which other tasks (streams) use, queue their messages for the writer
/// task at once. How many reply bytes the reading task holds at most
/// depends on how many connections are working
/// ([`WorkingReaders`](crate::service::working_readers::WorkingReaders)).
///
/// Replies to changes wait, with `server.log_sync: always`, until the
/// changes are on disk: the reading task hands each batch of them, with
/// one promise covering the batch, to a task that sends them once the
/// promise is kept, so that one disk sync releases many replies with one
/// wake-up and the connection's next requests are not held up.
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
    /// Replies to changes, held like `replies`.
    change_replies: Mutex<Vec<u8>>,
    /// The task that sends replies to changes once they are on disk
    /// (started for the first), and its queue.
    after_sync: Mutex<Option<AfterSync>>,
    /// Whether the reading task is working or waiting.
    reading: ReaderState,
}

/// Batches of encoded replies, each with the promise it waits for.
type SyncedBatch = (Durable, Vec<u8>);

struct AfterSync {
    queue: mpsc::UnboundedSender<SyncedBatch>,
    task: JoinHandle<()>,
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

impl Drop for Replies {
    fn drop(&mut self) {
        // a connection that ends, however, stops counting as working
        if let Some(held) = &self.held {
            held.reading
                .stop_working(&self.shared.service.working_readers, true);
        }
    }
}

impl Replies {
    /// Sends a reply for `seq`, adding a fresh `tock` if it has none.
    /// Returns false once the connection is gone.
    pub async fn send(&self, seq: u64, m: MapBuilder) -> bool {
        let m = self.stamped(seq, m);
        self.push(m).await
    }

    /// Sends a reply for `seq` to a change: with `server.log_sync: always`
    /// once the change is on disk, without holding up this connection's
    /// next requests. Returns false once the connection is gone.
    pub async fn send_change_reply(&self, seq: u64, m: MapBuilder) -> bool {
        let Some(held) = &self.held else {
            // not the reading task: wait in a task of its own
            return match self.shared.store.durable() {
                None => self.send(seq, m).await,
                Some(durable) => {
                    let me = self.clone();
                    tokio::spawn(async move {
                        durable.wait().await;
                        me.send(seq, m).await;
                    });
                    !self.out.is_closed()
                }
            };
        };
        let m = self.stamped(seq, m).build();
        let full = {
            let mut r = lock(&held.change_replies);
            distkv_proto::msgpack::encode(&m, &mut r);
            r.len() >= held.reading.hold_limit()
        };
        if full {
            self.hand_on(held);
            held.reading.handed_on_early();
        } else if held.logs.take_written_early() {
            // the records of the changes so far are in the kernel: their
            // replies can go as soon as they are on disk, while the rest
            // of the batch is made
            if let Some(durable) = self.shared.store.durable() {
                let bytes = std::mem::take(&mut *lock(&held.change_replies));
                self.after_sync(held, durable, bytes);
            }
        }
        !self.out.is_closed()
    }

    /// `m` with a `tock` (unless it has one) and `seq`, counted.
    fn stamped(&self, seq: u64, mut m: MapBuilder) -> MapBuilder {
        if !m.has("tock") {
            m.push("tock", self.shared.store.clock.next());
        }
        m.push("seq", seq);
        if m.has("error") {
            self.shared.service.metrics.error();
        }
        m
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
            r.len() >= held.reading.hold_limit()
        };
        if full {
            held.reading.handed_on_early();
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
            Some(held) => {
                held.reading.start_working(self.readers());
                held.logs.collecting(f)
            }
            None => f(),
        }
    }

    fn readers(&self) -> &WorkingReaders {
        &self.shared.service.working_readers
    }

    /// The reading task is about to wait: writes the held log records,
    /// then hands the held replies on and writes what the socket takes
    /// now (see the type's description), and counts the task as waiting;
    /// `batch_done` when it waits for its next request, not inside one.
    pub(crate) fn release(&self, batch_done: bool) {
        let Some(held) = &self.held else { return };
        held.reading.stop_working(self.readers(), batch_done);
        self.hand_on(held);
    }

    /// Writes the held log records, then hands the held replies on.
    fn hand_on(&self, held: &Held) {
        held.logs.write();
        let mut bytes = std::mem::take(&mut *lock(&held.replies));
        let changes = std::mem::take(&mut *lock(&held.change_replies));
        if !changes.is_empty() {
            // taken after the log records were written: covers them all
            match self.shared.store.durable() {
                None => bytes.extend_from_slice(&changes),
                Some(durable) => self.after_sync(held, durable, changes),
            }
        }
        if !bytes.is_empty() && self.out.append_now(&bytes).is_ok() {
            self.out.write_now();
        }
    }

    /// Hands `bytes` to the task that sends them once `durable` is kept.
    fn after_sync(&self, held: &Held, durable: Durable, bytes: Vec<u8>) {
        let mut slot = lock(&held.after_sync);
        let sender = slot.get_or_insert_with(|| {
            let (queue, rx) = mpsc::unbounded_channel();
            let task = tokio::spawn(send_when_synced(self.out.clone(), rx));
            AfterSync { queue, task }
        });
        // the task only ends once the queue is closed (below)
        let _ = sender.queue.send((durable, bytes));
    }

    /// Takes no more replies: the replies waiting for the disk go out,
    /// then the writer writes what is queued and ends.
    pub(crate) async fn close(&self) {
        self.release(true);
        let waiting = self
            .held
            .as_ref()
            .and_then(|held| lock(&held.after_sync).take());
        if let Some(AfterSync { queue, mut task }) = waiting {
            drop(queue);
            // a disk that does not finish a sync does not keep the
            // connection forever
            let limit = self.shared.service.send_timeout;
            if tokio::time::timeout(limit, &mut task).await.is_err() {
                tracing::warn!("closing a connection with replies still waiting for the disk");
                task.abort();
            }
        }
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
                change_replies: Mutex::default(),
                after_sync: Mutex::default(),
                reading: ReaderState::default(),
            }),
        }
    }
}

/// Sends each batch once its promise is kept; batches whose promises are
/// kept by then go out with it, in one write.
async fn send_when_synced(out: Outbox, mut queue: mpsc::UnboundedReceiver<SyncedBatch>) {
    while let Some((durable, mut bytes)) = queue.recv().await {
        durable.wait().await;
        while let Ok((next, more)) = queue.try_recv() {
            if !next.is_kept() {
                if !send_now(&out, &bytes).await {
                    return;
                }
                bytes.clear();
                next.wait().await;
            }
            bytes.extend_from_slice(&more);
        }
        if !send_now(&out, &bytes).await {
            return;
        }
    }
}

/// Queues `bytes` (waiting for room) and writes what the socket takes.
async fn send_now(out: &Outbox, bytes: &[u8]) -> bool {
    if bytes.is_empty() {
        return true;
    }
    if out
        .push(false, |buf, _| buf.extend_from_slice(bytes))
        .await
        .is_err()
    {
        return false;
    }
    out.write_now();
    true
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, DuplexStream};

    use super::*;
    use crate::service::working_readers::{FIRST_PART_BYTES, MAX_HELD_BYTES, ReaderState};

    /// The reading task's replies of a server where one working
    /// connection sends replies early, and the client's end.
    fn replies() -> (Replies, DuplexStream) {
        let mut config = crate::ServerConfig::new("one");
        config.log_sync = crate::SyncPolicy::Never;
        let mut shared = Shared::new(
            &config,
            Arc::new(distkv_proto::transport::local::LocalGossip::default()),
            None,
        );
        shared.service.working_readers = WorkingReaders::new(1);
        let (client, server) = tokio::io::duplex(1 << 20);
        let out = Outbox::new(server, 1 << 20);
        (Replies::new(out, Arc::new(shared)), client)
    }

    /// Sends small replies while working, several parts' worth (one per
    /// byte of the first part); true when some reached the client before
    /// the task waits. Checks that all of them arrive once it waits.
    async fn sent_before_waiting(r: &Replies, client: &mut DuplexStream) -> bool {
        let sent = FIRST_PART_BYTES;
        r.collecting(|| ());
        for seq in 1..=sent as u64 {
            assert!(r.send(seq, MapBuilder::new().set("value", seq)).await);
        }
        let mut got = Vec::new();
        let mut buf = vec![0; 1 << 16];
        let wait = Duration::from_millis(50);
        let early = match tokio::time::timeout(wait, client.read(&mut buf)).await {
            Ok(Ok(n)) => {
                got.extend_from_slice(&buf[..n]);
                n > 0
            }
            _ => false,
        };
        r.release(true);
        while let Ok(Ok(n)) = tokio::time::timeout(wait, client.read(&mut buf)).await {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        let mut replies = 0;
        let mut rest = &got[..];
        while let Ok(Some((_, len))) = distkv_proto::msgpack::decode(rest, &Default::default()) {
            rest = &rest[len..];
            replies += 1;
        }
        assert_eq!(replies, sent, "all replies arrive when it waits");
        assert!(rest.is_empty());
        early
    }

    #[tokio::test]
    async fn a_lone_working_connection_sends_replies_before_its_batch_ends() {
        let (r, mut client) = replies();
        assert!(sent_before_waiting(&r, &mut client).await);
    }

    #[tokio::test]
    async fn while_others_work_replies_wait_for_the_end_of_the_batch() {
        let (r, mut client) = replies();
        let other = ReaderState::default();
        other.start_working(r.readers());
        assert!(!sent_before_waiting(&r, &mut client).await);
        // the other connection waits now: this one is alone again
        other.stop_working(r.readers(), true);
        assert!(sent_before_waiting(&r, &mut client).await);
    }

    #[tokio::test]
    async fn a_connection_that_ends_stops_counting_as_working() {
        let (r, _client) = replies();
        let shared = r.shared.clone();
        let readers = &shared.service.working_readers;
        r.collecting(|| ());
        let lone = ReaderState::default();
        lone.start_working(readers);
        assert_eq!(lone.hold_limit(), MAX_HELD_BYTES);
        drop(r);
        // alone when it starts working again
        lone.stop_working(readers, true);
        lone.start_working(readers);
        assert_eq!(lone.hold_limit(), FIRST_PART_BYTES);
    }
}
