//! The writing side of a connection: messages are encoded by whoever sends
//! them into one buffer per connection; a writer task writes everything
//! queued with one system call per batch. A sender that knows nothing else
//! is going out (a lone request, the last reply to a batch of requests)
//! writes the buffer itself when the writer is idle, without waking it:
//! one task switch less per round trip.

use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::io::AsyncWrite;
use tokio::sync::Notify;

/// The connection is closed: its writer ended or [`Outbox::close`] was
/// called.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the connection is closed")]
pub struct Closed;

/// How a writer task ended.
#[derive(Debug)]
pub enum WriterEnd {
    /// [`Outbox::close`] was called and everything queued was written.
    Closed,
    /// The peer took nothing for the stall time.
    Stalled,
    /// Writing failed.
    Failed(std::io::Error),
}

type Writer = Box<dyn AsyncWrite + Unpin + Send>;

#[derive(Default)]
struct State {
    buf: Vec<u8>,
    /// No more messages are taken.
    closed: bool,
    /// The writer task is writing a batch.
    busy: bool,
    /// A direct write could not flush: the writer must.
    unflushed: bool,
}

struct Inner {
    state: Mutex<State>,
    /// Wakes the writer task.
    to_write: Notify,
    /// Wakes senders waiting for room.
    written: Notify,
    wr: Mutex<Writer>,
    /// Bytes queued before senders wait.
    limit: usize,
}

/// The outgoing side of one connection; cheap to clone.
#[derive(Clone)]
pub struct Outbox {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox").finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Outbox {
    /// An outbox writing to `wr`; senders wait while more than `limit`
    /// bytes are queued. Run [`Outbox::run_writer`] in a task of its own.
    pub fn new<W>(wr: W, limit: usize) -> Outbox
    where
        W: AsyncWrite + Unpin + Send + 'static,
    {
        Outbox {
            inner: Arc::new(Inner {
                state: Mutex::default(),
                to_write: Notify::new(),
                written: Notify::new(),
                wr: Mutex::new(Box::new(wr)),
                limit: limit.max(1),
            }),
        }
    }

    /// Waits for room, then appends a message with `append` (which gets
    /// the buffer and whether it was empty before, and returns what `push`
    /// returns). With `wake`, the writer task is told; without, the
    /// caller promises a [`Outbox::write_now`] soon.
    pub async fn push<R>(
        &self,
        wake: bool,
        append: impl FnOnce(&mut Vec<u8>, bool) -> R,
    ) -> Result<R, Closed> {
        let mut st = loop {
            let room = self.inner.written.notified();
            {
                let st = lock(&self.inner.state);
                if st.closed {
                    return Err(Closed);
                }
                if st.buf.len() < self.inner.limit {
                    break st;
                }
            }
            // full: whatever `wake` said, the writer must make room
            self.inner.to_write.notify_one();
            room.await;
        };
        let was_empty = st.buf.is_empty();
        let r = append(&mut st.buf, was_empty);
        drop(st);
        if wake && was_empty {
            self.inner.to_write.notify_one();
        }
        Ok(r)
    }

    /// Appends `bytes` (whole messages) without waiting for room and
    /// without waking the writer: for a sender that bounds what it holds
    /// itself and calls [`Outbox::write_now`] next.
    pub fn append_now(&self, bytes: &[u8]) -> Result<(), Closed> {
        let mut st = lock(&self.inner.state);
        if st.closed {
            return Err(Closed);
        }
        st.buf.extend_from_slice(bytes);
        Ok(())
    }

    /// Writes what the socket takes of the queue now, if the writer task
    /// is idle; whatever is left (or everything, when the writer is busy)
    /// goes to the writer task. Never waits.
    pub fn write_now(&self) {
        let mut st = lock(&self.inner.state);
        if st.buf.is_empty() {
            return;
        }
        if st.busy || !self.try_write(&mut st) {
            drop(st);
            self.inner.to_write.notify_one();
        }
    }

    /// Writes the queue without blocking, under the state lock (so the
    /// writer cannot start a batch meanwhile). True when all of it went
    /// out and was flushed.
    fn try_write(&self, st: &mut State) -> bool {
        let Ok(mut wr) = self.inner.wr.try_lock() else {
            return false;
        };
        let mut cx = Context::from_waker(Waker::noop());
        let mut done = 0;
        while done < st.buf.len() {
            match Pin::new(&mut *wr).poll_write(&mut cx, &st.buf[done..]) {
                Poll::Ready(Ok(n)) if n > 0 => done += n,
                // full, closed or failed: the writer task finds out
                _ => break,
            }
        }
        st.buf.drain(..done);
        if done > 0 {
            self.inner.written.notify_waiters();
        }
        if !st.buf.is_empty() {
            return false;
        }
        match Pin::new(&mut *wr).poll_flush(&mut cx) {
            Poll::Ready(Ok(())) => true,
            _ => {
                st.unflushed = true;
                false
            }
        }
    }

    /// Tells the writer task that messages are queued.
    pub fn wake(&self) {
        self.inner.to_write.notify_one();
    }

    /// The bytes queued and not yet taken by a write.
    pub fn queued(&self) -> usize {
        lock(&self.inner.state).buf.len()
    }

    /// Takes no more messages; the writer task writes what is queued and
    /// ends.
    pub fn close(&self) {
        lock(&self.inner.state).closed = true;
        self.inner.to_write.notify_one();
        self.inner.written.notify_waiters();
    }

    /// Whether the outbox takes no more messages.
    pub fn is_closed(&self) -> bool {
        lock(&self.inner.state).closed
    }

    /// The writer task: writes whatever is queued, one write per batch,
    /// until [`Outbox::close`] (then the queue is written and the stream
    /// shut down), a failure, or (with `stall`) a batch that does not go
    /// out within that time.
    pub async fn run_writer(self, stall: Option<Duration>) -> WriterEnd {
        let mut batch = Vec::new();
        let end = loop {
            let wake = self.inner.to_write.notified();
            let (flush, closed) = {
                let mut st = lock(&self.inner.state);
                std::mem::swap(&mut st.buf, &mut batch);
                let flush = std::mem::take(&mut st.unflushed) || !batch.is_empty();
                st.busy = flush;
                (flush, st.closed)
            };
            if !flush {
                if closed {
                    break WriterEnd::Closed;
                }
                wake.await;
                // let the other ready tasks queue theirs first, so they
                // go out in this write rather than one write each
                tokio::task::yield_now().await;
                continue;
            }
            self.inner.written.notify_waiters();
            let sent = match stall {
                None => write_batch(&self.inner.wr, &batch).await,
                Some(d) => match tokio::time::timeout(d, write_batch(&self.inner.wr, &batch)).await
                {
                    Ok(r) => r,
                    Err(_) => {
                        self.fail();
                        return WriterEnd::Stalled;
                    }
                },
            };
            lock(&self.inner.state).busy = false;
            if let Err(e) = sent {
                self.fail();
                return WriterEnd::Failed(e);
            }
            batch.clear();
            // a huge message does not keep its buffer for the connection's
            // life
            if batch.capacity() > self.inner.limit.saturating_mul(2) {
                batch = Vec::new();
            }
        };
        let wr = &self.inner.wr;
        let _ = std::future::poll_fn(|cx| Pin::new(&mut **lock(wr)).poll_shutdown(cx)).await;
        end
    }

    /// Closes after a failure: waiting senders are released.
    fn fail(&self) {
        {
            let mut st = lock(&self.inner.state);
            st.closed = true;
            st.busy = false;
            st.buf = Vec::new();
        }
        self.inner.written.notify_waiters();
    }
}

/// Writes and flushes `batch`, taking the socket's lock only within each
/// poll.
async fn write_batch(wr: &Mutex<Writer>, batch: &[u8]) -> std::io::Result<()> {
    let mut done = 0;
    while done < batch.len() {
        let n = std::future::poll_fn(|cx| Pin::new(&mut **lock(wr)).poll_write(cx, &batch[done..]))
            .await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        done += n;
    }
    std::future::poll_fn(|cx| Pin::new(&mut **lock(wr)).poll_flush(cx)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn messages_go_out_in_order_directly_or_through_the_writer() {
        let (a, mut b) = tokio::io::duplex(1 << 16);
        let out = Outbox::new(a, 1 << 10);
        let writer = tokio::spawn(out.clone().run_writer(Some(Duration::from_secs(10))));
        // written directly by the sender: the writer is idle
        out.push(false, |buf, was_empty| {
            assert!(was_empty);
            buf.extend_from_slice(b"one ");
        })
        .await
        .expect("open");
        out.write_now();
        let mut got = [0u8; 4];
        b.read_exact(&mut got).await.expect("read");
        assert_eq!(&got, b"one ");
        // through the writer, more than the limit: senders wait for room
        let sender = {
            let out = out.clone();
            tokio::spawn(async move {
                for i in 0..200u32 {
                    out.push(true, |buf, _| buf.extend_from_slice(&i.to_be_bytes()))
                        .await
                        .expect("open");
                }
                out.close();
            })
        };
        let mut rest = Vec::new();
        b.read_to_end(&mut rest).await.expect("read");
        sender.await.expect("sender");
        let expect: Vec<u8> = (0..200u32).flat_map(u32::to_be_bytes).collect();
        assert_eq!(rest, expect);
        assert!(matches!(writer.await.expect("writer"), WriterEnd::Closed));
        assert_eq!(out.push(true, |_, _| ()).await, Err(Closed));
    }

    #[tokio::test]
    async fn a_peer_that_reads_nothing_stalls_the_writer() {
        let (a, _b) = tokio::io::duplex(64);
        let out = Outbox::new(a, 1 << 20);
        let writer = tokio::spawn(out.clone().run_writer(Some(Duration::from_millis(200))));
        out.push(true, |buf, _| buf.extend_from_slice(&[7; 4096]))
            .await
            .expect("open");
        assert!(matches!(writer.await.expect("writer"), WriterEnd::Stalled));
        assert!(out.is_closed());
    }
}
