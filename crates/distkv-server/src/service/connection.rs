//! One client connection: greeting, request dispatch, reply writing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use distkv_proto::ErrorClass;
use distkv_proto::request::{Action, Request, RequestErrorKind, SetValue, parse_request};
use distkv_proto::value_map::MapBuilder;
use distkv_proto::{Limits, MsgpackCodec};
use distkv_tree::{Path, PathElem, Value};
use futures_util::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio_util::codec::{FramedRead, FramedWrite};
use tokio_util::sync::CancellationToken;

use crate::service::actions::{self, Outcome};
use crate::service::login::{self, Session, User};
use crate::service::replies::Replies;
use crate::service::streams;
use crate::state::Shared;

type Tasks = Arc<Mutex<HashMap<u64, CancellationToken>>>;

fn lock_tasks(t: &Tasks) -> std::sync::MutexGuard<'_, HashMap<u64, CancellationToken>> {
    t.lock().unwrap_or_else(|p| p.into_inner())
}

/// Serves one connection until the client closes it, sends garbage, or the
/// server shuts down.
pub async fn serve<S>(shared: Arc<Shared>, stream: S, peer: String, shutdown: CancellationToken)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (rd, wr) = tokio::io::split(stream);
    let limits = Limits {
        max_frame: shared.service.max_frame,
        ..Limits::default()
    };
    // a small read buffer: it grows with the requests, and idle
    // connections stay cheap
    let mut frames = FramedRead::with_capacity(rd, MsgpackCodec::new(limits), 512);
    let (tx, rx) = mpsc::channel(shared.service.reply_queue.max(1));
    let stall_peer = peer.clone();
    let send_timeout = shared.service.send_timeout;
    let writer = tokio::spawn(async move {
        let stalled = distkv_proto::codec::write_frames_within(
            FramedWrite::new(wr, MsgpackCodec::new(limits)),
            rx,
            Some(send_timeout),
        )
        .await;
        if stalled {
            tracing::warn!(peer = %stall_peer, "closing connection: the client does not read its replies");
        }
    });
    let out = Replies::new(tx, shared.clone());
    let tasks: Tasks = Arc::default();

    shared.service.metrics.connection(true);
    let mut session = greet(&shared, &out).await;
    let mut last_seq = 0u64;
    loop {
        if writer.is_finished() {
            break;
        }
        let frame = tokio::select! {
            f = frames.next() => f,
            _ = shutdown.cancelled() => break,
        };
        let msg = match frame {
            None => break,
            Some(Ok(m)) => m,
            Some(Err(e)) => {
                tracing::info!(%peer, error = %e, "closing connection: bad input");
                out.send_raw(MapBuilder::new().set("error", format!("ProtocolError: {e}")))
                    .await;
                break;
            }
        };
        match parse_request(msg) {
            Ok(req) if req.seq <= last_seq => {
                let text = format!("Channel closed? Sequence error: {last_seq} < {}", req.seq);
                out.send(req.seq, MapBuilder::new().set("error", text))
                    .await;
            }
            Ok(req) => {
                last_seq = req.seq;
                let action = req.action.name();
                let started = std::time::Instant::now();
                dispatch(&shared, &out, &tasks, &mut session, req).await;
                shared
                    .service
                    .metrics
                    .request(action, started.elapsed().as_secs_f64());
            }
            Err(e) => match (e.seq, &e.error) {
                // A follow-up message of a running request: nothing reads
                // client streams yet, so it is ignored.
                (Some(seq), RequestErrorKind::NoAction)
                    if lock_tasks(&tasks).contains_key(&seq) => {}
                (Some(seq), _) => {
                    out.send(seq, MapBuilder::new().set("error", e.to_string()))
                        .await;
                }
                (None, _) => {
                    tracing::info!(%peer, error = %e, "closing connection: bad request");
                    out.send_raw(MapBuilder::new().set("error", e.to_string()))
                        .await;
                    break;
                }
            },
        }
    }
    for (_, t) in lock_tasks(&tasks).drain() {
        t.cancel();
    }
    drop(out);
    let _ = writer.await;
    shared.service.metrics.connection(false);
    tracing::debug!(%peer, "connection closed");
}

async fn greet(shared: &Shared, out: &Replies) -> Session {
    let (tick, auth) = {
        let mut core = shared.store.lock();
        let meta = Path(vec![PathElem::Nil]);
        // The system subtree exists from the first connection on.
        let _ = core.tree.ensure(&meta);
        (core.tree.own_tick(), login::greeting_auth(&core.tree))
    };
    let current = auth
        .as_ref()
        .and_then(|a| a.as_array())
        .and_then(|a| a.first())
        .and_then(Value::as_str)
        .map(str::to_owned);
    let version: Vec<Value> = env!("CARGO_PKG_VERSION")
        .split('.')
        .filter_map(|p| p.parse::<i64>().ok())
        .map(Value::Int)
        .collect();
    let mut m = MapBuilder::new()
        .set("version", Value::Array(version))
        .set("node", shared.service.name.as_str())
        .set("tick", tick.map_or(Value::Nil, Value::from_u64));
    if let Some(a) = auth {
        m.push("auth", a);
    }
    out.send(0, m).await;
    Session::new(current.as_deref())
}

/// Whether `user` may run `action` (`internal`: an `*_internal` action):
/// `Err` is the text for the client. ACLs restrict data actions; actions
/// that reach past them (by tick, server files, messages, repair) are
/// for users without an ACL; internal actions are for super-root users,
/// whom an ACL does not restrict there (that is how they manage ACLs and
/// users).
fn permitted(user: &User, action: &Action, internal: bool) -> Result<(), String> {
    if internal && !user.super_root {
        return Err(ErrorClass::NoAuth.message("only super-root users may use internal actions"));
    }
    let system = || ErrorClass::NoAuth.message("only super-root users may use the system subtree");
    let path = match action {
        Action::GetValue { path, .. }
        | Action::SetValue(SetValue { path, .. })
        | Action::DeleteTree { path, .. }
        | Action::GetTree { path, .. }
        | Action::Enumerate { path, .. }
        | Action::Watch { path, .. } => Some(path),
        Action::GetByEvent { .. }
        | Action::FetchTicks { .. }
        | Action::Log { .. }
        | Action::Save { .. } => {
            return if !user.super_root {
                Err(ErrorClass::NoAuth.message("only super-root users may do this"))
            } else if user.acl.is_some() {
                Err(ErrorClass::NoAuth.message("not for users bound to an ACL"))
            } else {
                Ok(())
            };
        }
        Action::MsgSend { .. } | Action::MsgMonitor { .. } if user.acl.is_some() => {
            return Err(ErrorClass::NoAuth.message("not for users bound to an ACL"));
        }
        _ => None,
    };
    match path {
        Some(p) if !user.may_access(p) => Err(system()),
        _ => Ok(()),
    }
}

async fn dispatch(
    shared: &Arc<Shared>,
    out: &Replies,
    tasks: &Tasks,
    session: &mut Session,
    req: Request,
) {
    let seq = req.seq;
    let internal = req.internal;
    let user = match (&session.user, req.action) {
        (_, Action::Auth(a)) => {
            for reply in login::handle(shared, session, a).await {
                if !out.send(seq, reply).await {
                    break;
                }
            }
            return;
        }
        (None, _) => {
            let method = login::current_method(&shared.store.lock().tree).unwrap_or_default();
            let text = ErrorClass::NoAuth.message(format!("You need to log in using: {method}"));
            out.send(seq, MapBuilder::new().set("error", text)).await;
            return;
        }
        (Some(user), action) => {
            if let Err(text) = permitted(user, &action, internal) {
                out.send(seq, MapBuilder::new().set("error", text)).await;
                return;
            }
            let user = if internal && user.acl.is_some() {
                Arc::new(User {
                    acl: None,
                    ..(**user).clone()
                })
            } else {
                user.clone()
            };
            (user, action)
        }
    };
    let (user, action) = user;
    match action {
        Action::Stop { task } => {
            let found = lock_tasks(tasks).remove(&task);
            if let Some(t) = &found {
                t.cancel();
            }
            out.send(seq, MapBuilder::new().set("result", found.is_some()))
                .await;
        }
        Action::GetTree { path, walk } => {
            if let Err(why) = may_stream_at(shared, tasks, &path) {
                stream_error(out, seq, why).await;
                return;
            }
            let cancel = register(tasks, seq);
            let (shared, out, tasks) = (shared.clone(), out.clone(), tasks.clone());
            tokio::spawn(async move {
                streams::get_tree(shared, out, seq, path, walk, cancel, user).await;
                lock_tasks(&tasks).remove(&seq);
            });
        }
        Action::Watch { path, fetch, walk } => {
            if let Err(why) = may_stream_at(shared, tasks, &path) {
                stream_error(out, seq, why).await;
                return;
            }
            let cancel = register(tasks, seq);
            let registered = streams::register_watch(shared, &path, &walk);
            let task = streams::WatchTask {
                user,
                seq,
                path,
                fetch,
                walk,
            };
            let (shared, out, tasks) = (shared.clone(), out.clone(), tasks.clone());
            tokio::spawn(async move {
                streams::watch(shared, out, task, registered, cancel).await;
                lock_tasks(&tasks).remove(&seq);
            });
        }
        Action::MsgMonitor { topic, raw, field } => {
            if !room_for_stream(shared, tasks) {
                stream_error(out, seq, TOO_MANY_STREAMS.into()).await;
                return;
            }
            let sub = match shared.network.gossip().subscribe(&topic).await {
                Ok(s) => s,
                Err(e) => {
                    stream_error(out, seq, e.to_string()).await;
                    return;
                }
            };
            let cancel = register(tasks, seq);
            let (out, tasks) = (out.clone(), tasks.clone());
            tokio::spawn(async move {
                streams::monitor(out, seq, sub, raw, field, cancel).await;
                lock_tasks(&tasks).remove(&seq);
            });
        }
        action => {
            let changes = matches!(action, Action::SetValue(_) | Action::DeleteTree { .. });
            match actions::run(shared, action, &user).await {
                Ok(outcome) => match changes.then(|| shared.store.durable()).flatten() {
                    // `log_sync: always`: acknowledge once the change is on
                    // disk, without holding up this connection's next
                    // requests (one disk sync then covers many changes).
                    Some(durable) => {
                        let out = out.clone();
                        tokio::spawn(async move {
                            durable.wait().await;
                            send_outcome(&out, seq, outcome).await;
                        });
                    }
                    None => send_outcome(out, seq, outcome).await,
                },
                Err(e) => {
                    out.send(seq, MapBuilder::new().set("error", e.0)).await;
                }
            }
        }
    }
}

async fn send_outcome(out: &Replies, seq: u64, outcome: Outcome) {
    match outcome {
        Outcome::Reply(m) => {
            out.send(seq, m).await;
        }
        Outcome::Stream(items) => {
            out.send(seq, MapBuilder::new().set("state", "start")).await;
            for m in items {
                out.send(seq, m).await;
            }
            out.send(seq, MapBuilder::new().set("state", "end")).await;
        }
    }
}

/// Whether another stream may be opened on this connection.
fn room_for_stream(shared: &Shared, tasks: &Tasks) -> bool {
    lock_tasks(tasks).len() < shared.service.max_streams
}

/// Whether a tree stream (`get_tree`, `watch`) may start at `path`: room
/// for one more stream, and a path a client may read.
fn may_stream_at(shared: &Shared, tasks: &Tasks, path: &Path) -> Result<(), String> {
    if !room_for_stream(shared, tasks) {
        return Err(TOO_MANY_STREAMS.into());
    }
    actions::check_read_path(path).map_err(|e| e.0)
}

const TOO_MANY_STREAMS: &str = "too many open streams on this connection (server.max_streams)";

fn register(tasks: &Tasks, seq: u64) -> CancellationToken {
    let t = CancellationToken::new();
    lock_tasks(tasks).insert(seq, t.clone());
    t
}

async fn stream_error(out: &Replies, seq: u64, text: String) {
    out.send(seq, MapBuilder::new().set("state", "start")).await;
    out.send(seq, MapBuilder::new().set("error", text)).await;
    out.send(seq, MapBuilder::new().set("state", "end")).await;
}
