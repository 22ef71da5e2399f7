//! The connection: seq allocation, the writer and the reply router.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use distkv_proto::value_map::MapBuilder;
use distkv_proto::{Limits, MsgpackCodec};
use distkv_tree::Value;
use futures_util::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot};
use tokio_util::codec::{FramedRead, FramedWrite};

use crate::error::{ClientError, ServerError};

/// Messages a stream may buffer before the connection waits for its
/// consumer.
pub const STREAM_QUEUE: usize = 1024;

pub(crate) type Reply = Result<Value, ClientError>;

enum Pending {
    Single(oneshot::Sender<Reply>),
    Stream(mpsc::Sender<Reply>),
}

/// The requests waiting for replies, and whether the connection has ended
/// (after which nothing may be added: nobody would ever answer it).
#[derive(Default)]
struct PendingTable {
    map: HashMap<u64, Pending>,
    closed: bool,
}

type PendingMap = Arc<Mutex<PendingTable>>;

fn lock(p: &PendingMap) -> std::sync::MutexGuard<'_, PendingTable> {
    p.lock().unwrap_or_else(|e| e.into_inner())
}

/// The shared half of a connection.
pub(crate) struct Conn {
    sender: tokio::sync::Mutex<(u64, mpsc::Sender<Value>)>,
    pending: PendingMap,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl Conn {
    /// Starts the writer and reader tasks on an established stream whose
    /// greeting has been read already (`frames` holds the rest).
    pub(crate) fn start<R, W>(frames: FramedRead<R, MsgpackCodec>, wr: W, limits: Limits) -> Conn
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let (tx, rx) = mpsc::channel::<Value>(256);
        tokio::spawn(distkv_proto::codec::write_frames(
            FramedWrite::new(wr, MsgpackCodec::new(limits)),
            rx,
        ));
        let pending: PendingMap = Arc::default();
        let reader = tokio::spawn(route_replies(frames, pending.clone()));
        Conn {
            sender: tokio::sync::Mutex::new((0, tx)),
            pending,
            reader,
        }
    }

    async fn submit(&self, msg: MapBuilder, pending: Pending) -> Result<u64, ClientError> {
        // Seq allocation and queueing happen under one lock, so requests
        // reach the server in seq order.
        let mut s = self.sender.lock().await;
        s.0 += 1;
        let seq = s.0;
        {
            let mut p = lock(&self.pending);
            if p.closed {
                return Err(ClientError::Closed);
            }
            p.map.insert(seq, pending);
        }
        if s.1.send(msg.set("seq", seq).build()).await.is_err() {
            lock(&self.pending).map.remove(&seq);
            return Err(ClientError::Closed);
        }
        Ok(seq)
    }

    /// Sends a request that gets exactly one reply.
    pub(crate) async fn request(&self, msg: MapBuilder) -> Reply {
        let (tx, rx) = oneshot::channel();
        self.submit(msg, Pending::Single(tx)).await?;
        rx.await.map_err(|_| ClientError::Closed)?
    }

    /// Sends a request answered by a `start` … `end` stream.
    pub(crate) async fn request_stream(
        &self,
        msg: MapBuilder,
    ) -> Result<(u64, mpsc::Receiver<Reply>), ClientError> {
        let (tx, rx) = mpsc::channel(STREAM_QUEUE);
        let seq = self.submit(msg, Pending::Stream(tx)).await?;
        Ok((seq, rx))
    }

    /// Forgets a stream (its consumer is gone).
    pub(crate) fn forget(&self, seq: u64) {
        lock(&self.pending).map.remove(&seq);
    }

    /// Whether the reader task has ended (the connection is closed).
    pub(crate) fn is_closed(&self) -> bool {
        self.reader.is_finished()
    }
}

async fn route_replies<R: AsyncRead + Unpin>(
    mut frames: FramedRead<R, MsgpackCodec>,
    pending: PendingMap,
) {
    let fatal = loop {
        let msg = match frames.next().await {
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
    let text = fatal.to_string();
    let waiting: Vec<Pending> = {
        let mut p = lock(&pending);
        p.closed = true;
        p.map.drain().map(|(_, w)| w).collect()
    };
    for p in waiting {
        let err = match &fatal {
            ClientError::Closed => ClientError::Closed,
            _ => ClientError::Protocol(text.clone()),
        };
        match p {
            Pending::Single(tx) => {
                let _ = tx.send(Err(err));
            }
            Pending::Stream(tx) => {
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
                if let Some(Pending::Single(tx)) = p.map.remove(&seq) {
                    let r = match error {
                        Some(t) => Err(ClientError::Server(ServerError(t))),
                        None => Ok(msg),
                    };
                    let _ = tx.send(r);
                }
                return;
            }
            Some(Pending::Stream(tx)) => {
                if state.as_deref() == Some("end") {
                    p.map.remove(&seq);
                    return;
                }
                tx.clone()
            }
        }
    };
    if state.as_deref() == Some("start") {
        return;
    }
    let r = match error {
        Some(t) => Err(ClientError::Server(ServerError(t))),
        None => Ok(msg),
    };
    if stream.send(r).await.is_err() {
        lock(pending).map.remove(&seq);
    }
}
