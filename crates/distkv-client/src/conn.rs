//! The connection: seq allocation, the writer and the reply router.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use distkv_proto::CodecError;
use distkv_proto::request::Action;
use distkv_proto::value_map::MapBuilder;
use distkv_tree::Value;
use std::sync::atomic::{AtomicU64, Ordering};

use distkv_connect::{BusyPoll, Outbox, WriterEnd};
use tokio::io::AsyncWrite;
use tokio::sync::{mpsc, oneshot};

use crate::error::{ClientError, ServerError};

/// Messages a stream may buffer before the connection waits for its
/// consumer.
pub const STREAM_QUEUE: usize = 1024;

pub(crate) type Reply = Result<Value, ClientError>;

/// The server's messages, decoded: the reading half of a connection
/// framed with the msgpack codec.
pub(crate) trait Frames:
    futures_util::Stream<Item = Result<Value, CodecError>> + Unpin
{
}
impl<T: futures_util::Stream<Item = Result<Value, CodecError>> + Unpin> Frames for T {}

enum Pending {
    Single(oneshot::Sender<Reply>),
    /// A stream; `true`: its `start` message is delivered too.
    Stream(mpsc::Sender<Reply>, bool),
}

/// The requests waiting for replies, and whether the connection has ended
/// (after which nothing may be added: nobody would ever answer it).
#[derive(Default)]
struct PendingTable {
    map: HashMap<u64, Pending>,
    /// How many entries of `map` are callers waiting for one reply (kept
    /// with the map, so the reader can ask cheaply whether to poll).
    callers: usize,
    closed: bool,
}

impl PendingTable {
    fn insert(&mut self, seq: u64, p: Pending) {
        if matches!(p, Pending::Single(_)) {
            self.callers += 1;
        }
        if let Some(Pending::Single(_)) = self.map.insert(seq, p) {
            self.callers -= 1;
        }
    }

    fn remove(&mut self, seq: u64) -> Option<Pending> {
        let p = self.map.remove(&seq);
        if let Some(Pending::Single(_)) = p {
            self.callers -= 1;
        }
        p
    }
}

type PendingMap = Arc<Mutex<PendingTable>>;

fn lock(p: &PendingMap) -> std::sync::MutexGuard<'_, PendingTable> {
    p.lock().unwrap_or_else(|e| e.into_inner())
}

/// Queued request bytes above which a new request waits for the writer.
const OUTBOX_LIMIT: usize = 1 << 20;

/// The shared half of a connection.
///
/// Requests are encoded by the task that makes them, straight into the
/// connection's [`Outbox`], and its writer task sends whatever has piled
/// up with one write: many requests in flight cost a few system calls,
/// not one each.
pub(crate) struct Conn {
    out: Outbox,
    /// The seq of the last request queued (assigned under the outbox's
    /// lock, so requests reach the server in seq order).
    seq: Arc<AtomicU64>,
    pending: PendingMap,
    reader: tokio::task::JoinHandle<()>,
    writer: tokio::task::JoinHandle<()>,
}

/// Dropping the last handle closes the connection at once: nobody waits
/// for a reply any more, and a writer stuck on a server that does not read
/// must not keep the socket open.
impl Drop for Conn {
    fn drop(&mut self) {
        self.reader.abort();
        self.writer.abort();
    }
}

impl Conn {
    /// Starts the writer and reader tasks on an established stream whose
    /// greeting has been read already (`frames` holds the rest).
    ///
    /// `busy_poll`: how long the reader keeps polling for a reply a
    /// caller waits for before its thread sleeps (see [`BusyPoll`]).
    pub(crate) fn start<F, W>(frames: F, wr: W, busy_poll: Duration) -> Conn
    where
        F: Frames + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let out = Outbox::new(wr, OUTBOX_LIMIT);
        let pending: PendingMap = Arc::default();
        let writer = tokio::spawn(write_requests(out.clone(), pending.clone()));
        let reader = tokio::spawn(route_replies(frames, pending.clone(), busy_poll));
        Conn {
            out,
            seq: Arc::default(),
            pending,
            reader,
            writer,
        }
    }

    /// Queues a request and returns its seq.
    ///
    /// A request made while nothing else is in flight and the writer is
    /// idle is written to the socket right here, without waking the writer
    /// task: a caller that waits for each reply before the next request
    /// saves a task switch per request. The write never waits (it takes
    /// what the socket accepts now; the writer task sends the rest), so it
    /// is as cancellation-safe as queueing. Requests made while others are
    /// in flight are left to the writer, which sends them in one write.
    ///
    /// `encode` appends the request, given its seq.
    async fn submit(
        &self,
        encode: impl FnOnce(u64, &mut Vec<u8>),
        pending: Pending,
    ) -> Result<u64, ClientError> {
        let pending_map = &self.pending;
        let seq_counter = &self.seq;
        let (seq, direct) = self
            .out
            .push(false, move |buf, was_empty| {
                // under the outbox's lock: seqs in queue order
                let seq = seq_counter.fetch_add(1, Ordering::Relaxed) + 1;
                let alone = {
                    // registered before the request can be written, so the
                    // reply always finds it
                    let mut p = lock(pending_map);
                    if p.closed {
                        return Err(ClientError::Closed);
                    }
                    p.insert(seq, pending);
                    p.map.len() == 1
                };
                encode(seq, buf);
                Ok((seq, was_empty && alone))
            })
            .await
            .map_err(|_| ClientError::Closed)??;
        if direct {
            self.out.write_now();
        } else {
            self.out.wake();
        }
        Ok(seq)
    }

    /// Sends a request that gets exactly one reply.
    pub(crate) async fn request(&self, msg: MapBuilder) -> Reply {
        self.request_encoded(|seq, buf| encode_map(msg, seq, buf))
            .await
    }

    /// Sends a typed request that gets exactly one reply, encoded straight
    /// from the action where it can be (see [`Action::encode_with_seq`]).
    pub(crate) async fn request_action(&self, action: &Action) -> Reply {
        self.request_encoded(|seq, buf| action.encode_with_seq(seq, buf))
            .await
    }

    async fn request_encoded(&self, encode: impl FnOnce(u64, &mut Vec<u8>)) -> Reply {
        let (tx, rx) = oneshot::channel();
        self.submit(encode, Pending::Single(tx)).await?;
        rx.await.map_err(|_| ClientError::Closed)?
    }

    /// Sends a request answered by a `start` … `end` stream; the
    /// `start` message is delivered only `with_start`.
    pub(crate) async fn request_stream(
        &self,
        msg: MapBuilder,
        with_start: bool,
    ) -> Result<(u64, mpsc::Receiver<Reply>), ClientError> {
        let (tx, rx) = mpsc::channel(STREAM_QUEUE);
        let seq = self
            .submit(
                |seq, buf| encode_map(msg, seq, buf),
                Pending::Stream(tx, with_start),
            )
            .await?;
        Ok((seq, rx))
    }

    /// Forgets a stream (its consumer is gone).
    pub(crate) fn forget(&self, seq: u64) {
        lock(&self.pending).remove(seq);
    }

    /// Whether the reader or the writer task has ended (the connection
    /// is closed).
    pub(crate) fn is_closed(&self) -> bool {
        self.reader.is_finished() || self.writer.is_finished()
    }
}

/// Appends a request map with its `seq`.
fn encode_map(msg: MapBuilder, seq: u64, buf: &mut Vec<u8>) {
    distkv_proto::msgpack::encode(&msg.set("seq", seq).build(), buf);
}

/// Writes whatever requests are queued, one write per batch, until writing
/// fails (or the connection is dropped, which aborts this task). On
/// failure every waiting and later request gets [`ClientError::Closed`].
async fn write_requests(out: Outbox, pending: PendingMap) {
    if let WriterEnd::Failed(e) = out.run_writer(None).await {
        tracing::debug!(error = %e, "writing to the server failed");
    }
    fail_all(&pending, &ClientError::Closed);
}

/// Whether a caller waits for a reply (streams alone do not make the
/// reader poll: their messages come when they come).
fn awaits_reply(pending: &PendingMap) -> bool {
    lock(pending).callers > 0
}

async fn route_replies<F: Frames>(mut frames: F, pending: PendingMap, busy_poll: Duration) {
    // a caller waiting for its reply gets it without this task's thread
    // going to sleep in between (see `BusyPoll`)
    let mut reading = BusyPoll::new(busy_poll);
    let fatal = loop {
        let msg = match reading.next(&mut frames, || awaits_reply(&pending)).await {
            None => break ClientError::Closed,
            Some(Err(e)) => break ClientError::Codec(e),
            Some(Ok(m)) => m,
        };
        let Some(seq) = msg.get("seq").and_then(Value::as_u64) else {
            let text = msg
                .get("error")
                .map_or_else(|| "a reply without seq".to_owned(), |e| e.to_string());
            break ClientError::Protocol(text);
        };
        deliver(&pending, seq, msg).await;
    };
    tracing::debug!(error = %fatal, "client connection ended");
    fail_all(&pending, &fatal);
}

/// Ends every waiting request with `fatal` and refuses new ones.
fn fail_all(pending: &PendingMap, fatal: &ClientError) {
    let text = fatal.to_string();
    let waiting: Vec<Pending> = {
        let mut p = lock(pending);
        p.closed = true;
        p.callers = 0;
        p.map.drain().map(|(_, w)| w).collect()
    };
    for p in waiting {
        let err = match fatal {
            ClientError::Closed => ClientError::Closed,
            _ => ClientError::Protocol(text.clone()),
        };
        match p {
            Pending::Single(tx) => {
                let _ = tx.send(Err(err));
            }
            Pending::Stream(tx, _) => {
                let _ = tx.try_send(Err(err));
            }
        }
    }
}

async fn deliver(pending: &PendingMap, seq: u64, msg: Value) {
    let state = msg.get("state").and_then(Value::as_str).map(str::to_owned);
    let error = msg.get("error").map(|e| match e {
        Value::Str(s) => s.to_string(),
        other => other.to_string(),
    });
    let stream = {
        let mut p = lock(pending);
        match p.map.get(&seq) {
            None => return,
            Some(Pending::Single(_)) => {
                let waiting = p.remove(seq);
                // the caller is woken outside the lock, which callers
                // on other threads need to send their requests
                drop(p);
                if let Some(Pending::Single(tx)) = waiting {
                    let r = match error {
                        Some(t) => Err(ClientError::Server(ServerError(t))),
                        None => Ok(msg),
                    };
                    let _ = tx.send(r);
                }
                return;
            }
            Some(Pending::Stream(tx, with_start)) => {
                if state.as_deref() == Some("end") {
                    p.remove(seq);
                    return;
                }
                if state.as_deref() == Some("start") && !*with_start {
                    return;
                }
                tx.clone()
            }
        }
    };
    let r = match error {
        Some(t) => Err(ClientError::Server(ServerError(t))),
        None => Ok(msg),
    };
    if stream.send(r).await.is_err() {
        lock(pending).remove(seq);
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::pin::Pin;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::task::{Context, Poll, Waker};
    use std::time::Duration;

    use distkv_proto::{Limits, MsgpackCodec};
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, WriteHalf};
    use tokio::task::JoinHandle;
    use tokio_util::codec::FramedRead;

    use futures_util::StreamExt;

    use super::*;

    #[test]
    fn the_table_counts_the_callers_waiting_for_one_reply() {
        let mut t = PendingTable::default();
        let (a, _ra) = oneshot::channel();
        let (b, _rb) = oneshot::channel();
        let (s1, _rs) = mpsc::channel(1);
        t.insert(1, Pending::Single(a));
        t.insert(2, Pending::Stream(s1, false));
        t.insert(3, Pending::Single(b));
        assert_eq!(t.callers, 2);
        assert!(t.remove(2).is_some());
        assert_eq!(t.callers, 2, "a stream is no caller");
        assert!(t.remove(1).is_some());
        assert!(t.remove(1).is_none());
        assert_eq!(t.callers, 1);
        let pending: PendingMap = Arc::new(Mutex::new(t));
        assert!(awaits_reply(&pending));
        fail_all(&pending, &ClientError::Closed);
        assert!(!awaits_reply(&pending));
    }

    /// Controls a [`GatedWriter`]: writes wait while the gate is shut and
    /// fail once it is broken; completed writes are counted.
    #[derive(Default)]
    struct Gate {
        open: AtomicBool,
        broken: AtomicBool,
        writes: AtomicUsize,
        waker: Mutex<Option<Waker>>,
    }

    impl Gate {
        fn set(&self, open: bool, broken: bool) {
            self.open.store(open, Ordering::SeqCst);
            self.broken.store(broken, Ordering::SeqCst);
            if let Some(w) = self.waker.lock().unwrap_or_else(|e| e.into_inner()).take() {
                w.wake();
            }
        }
    }

    struct GatedWriter {
        inner: WriteHalf<DuplexStream>,
        gate: Arc<Gate>,
    }

    impl AsyncWrite for GatedWriter {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            if self.gate.broken.load(Ordering::SeqCst) {
                return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
            }
            if !self.gate.open.load(Ordering::SeqCst) {
                *self.gate.waker.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some(cx.waker().clone());
                return Poll::Pending;
            }
            let r = Pin::new(&mut self.inner).poll_write(cx, buf);
            if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
                self.gate.writes.fetch_add(1, Ordering::SeqCst);
            }
            r
        }

        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.inner).poll_flush(cx)
        }

        fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.inner).poll_shutdown(cx)
        }
    }

    /// A server that answers every request with `{seq, value: seq}`.
    async fn echo_server(server: DuplexStream) {
        let (rd, mut wr) = tokio::io::split(server);
        let mut frames = FramedRead::new(rd, MsgpackCodec::new(Limits::default()));
        while let Some(Ok(req)) = frames.next().await {
            let seq = req.get("seq").and_then(Value::as_u64).unwrap_or(0);
            let mut out = Vec::new();
            distkv_proto::msgpack::encode(
                &MapBuilder::new().set("seq", seq).set("value", seq).build(),
                &mut out,
            );
            if wr.write_all(&out).await.is_err() {
                break;
            }
        }
    }

    /// A connection whose writes pass through a gate, and the server's end
    /// of it.
    fn gated_conn() -> (Arc<Conn>, Arc<Gate>, DuplexStream) {
        let (client, server) = tokio::io::duplex(1 << 16);
        let (crd, cwr) = tokio::io::split(client);
        let gate = Arc::new(Gate::default());
        let frames = FramedRead::new(crd, MsgpackCodec::new(Limits::default()));
        let wr = GatedWriter {
            inner: cwr,
            gate: gate.clone(),
        };
        (
            Arc::new(Conn::start(frames, wr, Duration::ZERO)),
            gate,
            server,
        )
    }

    fn ping(n: u64) -> MapBuilder {
        MapBuilder::new().set("action", "ping").set("n", n)
    }

    async fn queued_bytes(conn: &Conn) -> usize {
        // let the spawned requests run until they queue or wait for room
        for _ in 0..50 {
            tokio::task::yield_now().await;
        }
        conn.out.queued()
    }

    /// Sends request `n` from a task of its own and waits until the writer
    /// has taken it from the outbox.
    async fn taken_by_the_writer(conn: &Arc<Conn>, n: u64) -> JoinHandle<Reply> {
        let c = conn.clone();
        let task = tokio::spawn(async move { c.request(ping(n)).await });
        assert_eq!(queued_bytes(conn).await, 0, "the writer holds request {n}");
        task
    }

    #[tokio::test]
    async fn requests_queued_during_a_write_go_out_in_one_write() {
        let (conn, gate, server) = gated_conn();
        tokio::spawn(echo_server(server));
        // the first request is taken by the writer, which then waits
        let first = taken_by_the_writer(&conn, 0).await;
        let mut rest = Vec::new();
        for i in 1..=50 {
            let c = conn.clone();
            rest.push(tokio::spawn(async move { c.request(ping(i)).await }));
        }
        assert!(queued_bytes(&conn).await > 0, "later requests are queued");
        gate.set(true, false);
        let r = first.await.expect("task").expect("reply");
        assert_eq!(r.get("value").and_then(Value::as_u64), Some(1));
        for (i, t) in rest.into_iter().enumerate() {
            let r = t.await.expect("task").expect("reply");
            assert_eq!(r.get("seq").and_then(Value::as_u64), Some(i as u64 + 2));
        }
        // one write for the first request, one for the fifty behind it
        assert_eq!(gate.writes.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_request_alone_is_written_by_its_caller_others_wait_for_the_writer() {
        let (conn, gate, server) = gated_conn();
        gate.set(true, false);
        tokio::spawn(echo_server(server));
        // nothing in flight: written before submit returns, although the
        // writer task has not run (one thread, no await point in between)
        let (tx, rx) = oneshot::channel();
        conn.submit(
            |seq, buf| encode_map(ping(1), seq, buf),
            Pending::Single(tx),
        )
        .await
        .expect("queued");
        assert_eq!(conn.out.queued(), 0, "written directly");
        assert_eq!(gate.writes.load(Ordering::SeqCst), 1);
        // with that one in flight, the next waits for the writer's batch
        let (tx2, rx2) = oneshot::channel();
        conn.submit(
            |seq, buf| encode_map(ping(2), seq, buf),
            Pending::Single(tx2),
        )
        .await
        .expect("queued");
        assert!(conn.out.queued() > 0, "left to the writer");
        for (rx, seq) in [(rx, 1), (rx2, 2)] {
            let r = rx.await.expect("answered").expect("reply");
            assert_eq!(r.get("value").and_then(Value::as_u64), Some(seq));
        }
        assert_eq!(gate.writes.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_full_outbox_holds_new_requests_back() {
        let (conn, gate, server) = gated_conn();
        tokio::spawn(echo_server(server));
        let big = "x".repeat(100_000);
        let mut tasks = Vec::new();
        for i in 0..40 {
            let (c, big) = (conn.clone(), big.clone());
            tasks.push(tokio::spawn(async move {
                c.request(ping(i).set("data", big)).await
            }));
        }
        let queued = queued_bytes(&conn).await;
        assert!(queued >= OUTBOX_LIMIT, "the outbox fills up: {queued}");
        assert!(
            queued < OUTBOX_LIMIT + 110_000,
            "no request is queued beyond the limit: {queued}"
        );
        assert!(tasks.iter().any(|t| !t.is_finished()));
        gate.set(true, false);
        for t in tasks {
            t.await.expect("task").expect("reply");
        }
    }

    #[tokio::test]
    async fn a_failed_write_ends_waiting_and_later_requests() {
        // a server that never answers
        let (conn, gate, _server) = gated_conn();
        let waiting = taken_by_the_writer(&conn, 1).await;
        gate.set(false, true);
        let r = tokio::time::timeout(Duration::from_secs(5), waiting).await;
        assert!(matches!(r, Ok(Ok(Err(ClientError::Closed)))), "{r:?}");
        let later = conn.request(ping(2)).await;
        assert!(matches!(later, Err(ClientError::Closed)), "{later:?}");
        assert!(conn.is_closed());
    }

    #[tokio::test]
    async fn dropping_the_connection_closes_it_even_with_a_write_stuck() {
        let (conn, gate, server) = gated_conn();
        taken_by_the_writer(&conn, 1).await.abort();
        drop(conn);
        // the server sees the connection end although nothing was written
        let (mut srd, _swr) = tokio::io::split(server);
        let mut got = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), srd.read_to_end(&mut got))
            .await
            .expect("the connection is closed")
            .expect("read");
        assert!(got.is_empty(), "nothing went out: {got:?}");
        assert_eq!(gate.writes.load(Ordering::SeqCst), 0);
    }
}
