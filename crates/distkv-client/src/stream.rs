//! Reply streams (`get_tree`, `watch`) as `futures::Stream`s.

use std::pin::Pin;
use std::sync::Weak;
use std::task::{Context, Poll};

use distkv_proto::PathLengthener;
use distkv_proto::request::Action;
use distkv_tree::{Path, Value};
use futures_util::Stream;
use tokio::sync::mpsc;

use crate::conn::{Conn, Reply};
use crate::error::ClientError;
use crate::replies::{TreeItem, WatchItem, chain_of, tock_of};

/// The raw messages of one streamed request. Dropping it before the end
/// cancels the request on the server.
pub struct ReplyStream {
    seq: u64,
    rx: mpsc::Receiver<Reply>,
    conn: Weak<Conn>,
    done: bool,
}

impl ReplyStream {
    pub(crate) fn new(seq: u64, rx: mpsc::Receiver<Reply>, conn: Weak<Conn>) -> ReplyStream {
        ReplyStream {
            seq,
            rx,
            conn,
            done: false,
        }
    }

    /// The request's seq.
    pub fn seq(&self) -> u64 {
        self.seq
    }
}

impl Stream for ReplyStream {
    type Item = Result<Value, ClientError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let r = self.rx.poll_recv(cx);
        if let Poll::Ready(None) = r {
            self.done = true;
        }
        r
    }
}

impl Drop for ReplyStream {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let Some(conn) = self.conn.upgrade() else {
            return;
        };
        conn.forget(self.seq);
        let seq = self.seq;
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let stop = Action::Stop { task: seq };
                let _ = conn.request(stop.to_map()).await;
            });
        }
    }
}

/// Rebuilds full paths from the shortened paths of a stream.
pub(crate) fn tree_item(
    lengthener: &mut PathLengthener,
    mut v: Value,
) -> Result<TreeItem, ClientError> {
    let path = lengthener
        .lengthen_item(&v)
        .map_err(|e| ClientError::Protocol(e.to_string()))?;
    if let Value::Map(m) = &mut v {
        m.retain(|(k, _)| k.as_str() != Some("seq"));
    }
    Ok(TreeItem {
        path,
        value: v.get("value").cloned(),
        chain: chain_of(&v)?,
        tock: tock_of(&v),
        raw: v,
    })
}

/// The entries of a `get_tree` request, with full paths.
pub struct TreeStream {
    inner: ReplyStream,
    lengthener: PathLengthener,
}

impl TreeStream {
    pub(crate) fn new(inner: ReplyStream, prefix: Path) -> TreeStream {
        TreeStream {
            inner,
            lengthener: PathLengthener::new(prefix),
        }
    }

    /// The next item, where a subtree that does not exist (`KeyError`)
    /// is an empty one: the stream just ends.
    pub async fn next_existing(&mut self) -> Option<Result<TreeItem, ClientError>> {
        match futures_util::StreamExt::next(self).await? {
            Err(ClientError::Server(e)) if e.class() == Some(distkv_proto::ErrorClass::Key) => None,
            other => Some(other),
        }
    }
}

impl Stream for TreeStream {
    type Item = Result<TreeItem, ClientError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(v))) => Poll::Ready(Some(tree_item(&mut this.lengthener, v))),
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// The messages of a `watch` request. Dropping it cancels the watch.
pub struct WatchStream {
    inner: ReplyStream,
    lengthener: PathLengthener,
}

impl WatchStream {
    pub(crate) fn new(inner: ReplyStream, prefix: Path) -> WatchStream {
        WatchStream {
            inner,
            lengthener: PathLengthener::new(prefix),
        }
    }
}

impl Stream for WatchStream {
    type Item = Result<WatchItem, ClientError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(v))) => {
                if v.get("state").and_then(Value::as_str) == Some("uptodate") {
                    return Poll::Ready(Some(Ok(WatchItem::UpToDate)));
                }
                Poll::Ready(Some(
                    tree_item(&mut this.lengthener, v).map(WatchItem::Entry),
                ))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl crate::Client {
    /// Every value at and below `path` in the server's system subtree
    /// (where ACLs, types, codecs and users live), with paths relative to
    /// `path`; nothing when it does not exist. Super-root users only.
    pub async fn internal_tree(&self, path: &Path) -> Result<Vec<(Path, Value)>, ClientError> {
        self.internal_values(path.clone(), Path::root(), true).await
    }

    /// Every value at and below the system path `path` (an internal
    /// `get_tree`), with paths lengthened from `base`. With
    /// `missing_is_empty`, a subtree that was never written is an empty
    /// list instead of the server's `KeyError`.
    pub(crate) async fn internal_values(
        &self,
        path: Path,
        base: Path,
        missing_is_empty: bool,
    ) -> Result<Vec<(Path, Value)>, ClientError> {
        let missing = |e: &ClientError| {
            missing_is_empty
                && matches!(e, ClientError::Server(e)
                    if e.class() == Some(distkv_proto::ErrorClass::Key))
        };
        let tree = Action::GetTree {
            path,
            walk: distkv_proto::request::WalkParams::default(),
        };
        let mut out = Vec::new();
        let mut s = match self.request_stream(tree.to_internal_map()).await {
            Ok(s) => s,
            Err(e) if missing(&e) => return Ok(out),
            Err(e) => return Err(e),
        };
        let mut longer = PathLengthener::new(base);
        while let Some(item) = futures_util::StreamExt::next(&mut s).await {
            let item = match item {
                Ok(item) => item,
                Err(e) if out.is_empty() && missing(&e) => break,
                Err(e) => return Err(e),
            };
            let rel = longer
                .lengthen_item(&item)
                .map_err(|e| ClientError::Protocol(e.to_string()))?;
            if let Some(v) = item.get("value") {
                out.push((rel, v.clone()));
            }
        }
        Ok(out)
    }
}
