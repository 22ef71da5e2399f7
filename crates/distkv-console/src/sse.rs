//! `GET /api/watch`: the changes below a path as server-sent events.
//!
//! The stream opens with `retry` and an `event: ready` once the watch is
//! registered at the server (every change after it is delivered; the
//! page reloads what it shows then). Each change is a `message` whose
//! data is `{path, has_value, value, chain, tock}`. The stream holds at
//! most [`QUEUE`] events for the browser: one that reads slower than
//! changes come loses the stream, which ends with `event: reload`. A
//! stream ends by itself after [`LIFETIME`] (the endpoint's connections
//! are bounded in time); the browser reconnects and gets `ready` again.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use distkv_client::{Client, TreeOptions, WatchItem};
use distkv_proto::request::Action;
use distkv_server::HttpBody;
use futures_util::StreamExt as _;
use http_body_util::BodyExt as _;
use hyper::body::{Body, Frame};
use hyper::{Response, StatusCode};
use tokio::sync::{OwnedSemaphorePermit, mpsc};

use crate::ConsoleError;
use crate::api::{Query, entry};
use crate::json;

/// Events queued for one browser.
pub const QUEUE: usize = 256;

/// How long one stream lasts, below the endpoint's connection time.
pub const LIFETIME: Duration = Duration::from_secs(25);

/// The response body: queued events, then `reload` if the queue
/// overflowed.
struct Events {
    rx: mpsc::Receiver<Bytes>,
    overflow: Arc<AtomicBool>,
    done: bool,
}

impl Body for Events {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.done {
            return Poll::Ready(None);
        }
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(b)) => Poll::Ready(Some(Ok(Frame::data(b)))),
            Poll::Ready(None) => {
                self.done = true;
                if self.overflow.load(Ordering::Acquire) {
                    let last = Bytes::from_static(
                        b"event: reload\ndata: {\"error\":\"too many changes for this view; reload\"}\n\n",
                    );
                    Poll::Ready(Some(Ok(Frame::data(last))))
                } else {
                    Poll::Ready(None)
                }
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

fn event(name: Option<&str>, data: &serde_json::Value) -> Bytes {
    let mut s = String::new();
    if let Some(n) = name {
        s.push_str("event: ");
        s.push_str(n);
        s.push('\n');
    }
    // serde_json never writes a raw newline, so one data line suffices
    s.push_str("data: ");
    s.push_str(&data.to_string());
    s.push_str("\n\n");
    Bytes::from(s)
}

/// How often a stream on the console's own connection checks, while it
/// delivers changes, that the server still requires no login.
const LOGIN_CHECK: Duration = Duration::from_secs(1);

/// Opens the watch and answers with its event stream. A stream on the
/// console's own connection (`own`: no session) ends once the server
/// requires logins: it checks before delivering a change, at most once
/// per [`LOGIN_CHECK`], and ends with `event: login`.
pub(crate) async fn watch(
    c: Client,
    q: &Query,
    permit: OwnedSemaphorePermit,
    peer: SocketAddr,
    own: bool,
) -> Result<Response<HttpBody>, ConsoleError> {
    let opts = TreeOptions {
        nchain: 3,
        ..TreeOptions::default()
    };
    let mut stream = c
        .watch(&q.path, false, &opts)
        .await
        .map_err(|e| ConsoleError::from_client(&e))?;
    // The server handles a connection's requests in order: once this
    // answers, the watch is registered.
    c.send(&Action::GetTock)
        .await
        .map_err(|e| ConsoleError::from_client(&e))?;
    let (tx, rx) = mpsc::channel::<Bytes>(QUEUE);
    let overflow = Arc::new(AtomicBool::new(false));
    let flag = overflow.clone();
    let _ = tx.try_send(Bytes::from_static(b"retry: 1000\n\n"));
    let _ = tx.try_send(event(
        Some("ready"),
        &serde_json::json!({"path": json::path(&q.path)}),
    ));
    tokio::spawn(async move {
        let _permit = permit;
        let end = tokio::time::sleep(LIFETIME);
        tokio::pin!(end);
        let mut checked = tokio::time::Instant::now();
        loop {
            let item = tokio::select! {
                i = stream.next() => i,
                () = &mut end => break,
                () = tx.closed() => break,
            };
            let data = match item {
                None => break,
                Some(Ok(WatchItem::UpToDate)) => continue,
                Some(Ok(WatchItem::Entry(i))) => {
                    let mut e = entry(i.value.as_ref(), i.chain.as_ref(), i.tock);
                    if let serde_json::Value::Object(o) = &mut e {
                        o.insert("path".into(), json::path(&i.path));
                    }
                    e
                }
                Some(Err(e)) => {
                    tracing::info!(%peer, error = %e, "console watch ended");
                    flag.store(true, Ordering::Release);
                    break;
                }
            };
            if own && checked.elapsed() >= LOGIN_CHECK {
                checked = tokio::time::Instant::now();
                if !matches!(crate::required_login(&c).await, Ok(None)) {
                    tracing::info!(%peer, "console watch ended: the server requires logins now");
                    let _ = tx.try_send(event(
                        Some("login"),
                        &serde_json::json!({"error": "the server requires a login now"}),
                    ));
                    break;
                }
            }
            if tx.try_send(event(None, &data)).is_err() {
                tracing::info!(%peer, "console watch: the browser fell behind; stream dropped");
                flag.store(true, Ordering::Release);
                break;
            }
        }
        // dropping the stream stops the watch at the server
    });
    let body = Events {
        rx,
        overflow,
        done: false,
    };
    Ok(crate::respond(
        StatusCode::OK,
        "text/event-stream",
        body.boxed(),
    ))
}
