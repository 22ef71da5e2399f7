//! One client connection: greeting, request dispatch, reply writing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use distkv_connect::{BusyPoll, Outbox, WriterEnd};
use distkv_proto::ErrorClass;
use distkv_proto::request::{
    Action, AuthAction, Request, RequestError, RequestErrorKind, SetValue, WalkParams,
    parse_request,
};
use distkv_proto::value_map::MapBuilder;
use distkv_proto::{Incoming, Limits, RequestCodec, TOO_MANY_STREAMS};
use distkv_tree::{Path, PathElem, Value};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;

use crate::service::actions::{self, Outcome};
use crate::service::login::{self, Session, User};
use crate::service::metrics::ActionMetricsCache;
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
    let mut frames = FramedRead::with_capacity(rd, RequestCodec::new(limits), 512);
    let outbox = Outbox::new(wr, shared.service.reply_buffer);
    let writer = spawn_writer(outbox.clone(), shared.service.send_timeout, peer.clone());
    let out = Replies::new(outbox, shared.clone());
    let tasks: Tasks = Arc::default();

    shared.service.metrics.connection(true);
    let mut conn = Conn {
        shared: &shared,
        out: &out,
        tasks: &tasks,
        session: greet(&shared, &out).await,
        last_seq: 0,
        root: Path::root(),
        metrics: ActionMetricsCache::default(),
    };
    // a client that sends one request at a time gets its next one read
    // without this task's thread going to sleep in between
    let mut reading = BusyPoll::new(shared.service.busy_poll);
    loop {
        if writer.is_finished() {
            break;
        }
        let frame = tokio::select! {
            f = writing_when_waiting(&out, reading.next(&mut frames, || true), true) => f,
            _ = shutdown.cancelled() => break,
        };
        let msg = match frame {
            None => break,
            Some(Ok(m)) => {
                pipelining_reads(frames.read_buffer_mut());
                m
            }
            Some(Err(e)) => {
                tracing::info!(%peer, error = %e, "closing connection: bad input");
                out.release(true);
                out.send_raw(MapBuilder::new().set("error", format!("ProtocolError: {e}")))
                    .await;
                break;
            }
        };
        if let Err(e) = writing_when_waiting(&out, conn.handle(msg), false).await {
            tracing::info!(%peer, error = %e, "closing connection: bad request");
            out.release(true);
            out.send_raw(MapBuilder::new().set("error", e.to_string()))
                .await;
            break;
        }
    }
    for (_, t) in lock_tasks(&tasks).drain() {
        t.cancel();
    }
    out.close().await;
    let _ = writer.await;
    shared.service.metrics.connection(false);
    tracing::debug!(%peer, "connection closed");
}

/// The read buffer of a connection that pipelines: one read takes this
/// much (a few hundred requests), not what fits the small buffer that
/// idle connections keep.
const PIPELINE_READ_BUFFER: usize = 16 << 10;

/// Grows the read buffer, once, when requests are already waiting behind
/// the one just decoded: the client pipelines.
fn pipelining_reads(buf: &mut bytes::BytesMut) {
    if !buf.is_empty() && buf.capacity() < PIPELINE_READ_BUFFER {
        buf.reserve(PIPELINE_READ_BUFFER - buf.len());
    }
}

/// Runs `fut`, collecting the log files its changes append to; whenever
/// it has to wait, first writes what the reading task holds: the log
/// records, then the replies (see [`Replies`]). `next_request`: `fut`
/// reads the next request (a wait there ends a batch).
async fn writing_when_waiting<F: std::future::Future>(
    out: &Replies,
    fut: F,
    next_request: bool,
) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    std::future::poll_fn(|cx| {
        let polled = out.collecting(|| fut.as_mut().poll(cx));
        if polled.is_pending() {
            out.release(next_request);
        }
        polled
    })
    .await
}

/// Starts the writer task: it writes the queued replies, and gives up on a
/// client that takes none for `send_timeout`.
fn spawn_writer(
    outbox: Outbox,
    send_timeout: std::time::Duration,
    peer: String,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        match outbox.run_writer(Some(send_timeout)).await {
            WriterEnd::Closed => {}
            WriterEnd::Stalled => {
                tracing::warn!(%peer, "closing connection: the client does not read its replies");
            }
            WriterEnd::Failed(e) => {
                tracing::debug!(%peer, error = %e, "writing to the client failed");
            }
        }
    })
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
        .set("version", Value::Array(version.into()))
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
        | Action::Watch { path, .. }
        | Action::Root { path } => Some(path),
        Action::GetByEvent { .. }
        | Action::FetchTicks { .. }
        | Action::FakeInfo { .. }
        | Action::CheckDeleted { .. }
        | Action::EnumNode { .. }
        | Action::KillNode { .. }
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

/// The reader's side of one connection: where replies go, its running
/// streams, its session and the last request number.
struct Conn<'a> {
    shared: &'a Arc<Shared>,
    out: &'a Replies,
    tasks: &'a Tasks,
    session: Session,
    last_seq: u64,
    /// Set by `root`: the data actions' paths are relative to it.
    root: Path,
    /// The request metrics of the actions this connection ran.
    metrics: ActionMetricsCache,
}

impl Conn<'_> {
    /// Handles one message. `Err`: a request without a readable `seq`,
    /// which ends the connection.
    async fn handle(&mut self, msg: Incoming) -> Result<(), RequestError> {
        let parsed = match msg {
            Incoming::Request(req) => Ok(req),
            Incoming::Message(v) => parse_request(v),
        };
        match parsed {
            Ok(req) if req.seq <= self.last_seq => {
                let text = format!(
                    "Channel closed? Sequence error: {} < {}",
                    self.last_seq, req.seq
                );
                send_error(self.out, req.seq, text).await;
            }
            Ok(req) => {
                self.last_seq = req.seq;
                let action = req.action.name();
                let started = std::time::Instant::now();
                self.dispatch(req).await;
                let metrics = &self.shared.service.metrics;
                self.metrics
                    .get(metrics, action)
                    .request(started.elapsed().as_secs_f64());
            }
            Err(e) => match (e.seq, &e.error) {
                // A follow-up message of a running request: nothing reads
                // client streams yet, so it is ignored.
                (Some(seq), RequestErrorKind::NoAction)
                    if lock_tasks(self.tasks).contains_key(&seq) => {}
                (Some(seq), _) => send_error(self.out, seq, e.to_string()).await,
                (None, _) => return Err(e),
            },
        }
        Ok(())
    }

    /// Runs a request: logins, then for a logged-in user whatever the user
    /// may do.
    async fn dispatch(&mut self, req: Request) {
        let Request {
            seq,
            action,
            internal,
            ..
        } = req;
        let action = match action {
            Action::Auth(a) => return self.authenticate(seq, a).await,
            action => action,
        };
        let Some(user) = &self.session.user else {
            let method = login::current_method(&self.shared.store.lock().tree).unwrap_or_default();
            let text = ErrorClass::NoAuth.message(format!("You need to log in using: {method}"));
            return send_error(self.out, seq, text).await;
        };
        let action = if internal {
            action
        } else {
            below_root(&self.root, action)
        };
        let user = match acting_user(user, &action, internal) {
            Ok(u) => u,
            Err(text) => return send_error(self.out, seq, text).await,
        };
        match action {
            Action::Root { path } => self.change_root(seq, &user, path).await,
            Action::Stop { task } => self.stop(seq, task).await,
            Action::GetTree { path, walk } => self.start_get_tree(seq, user, path, walk).await,
            Action::Watch { path, fetch, walk } => {
                let task = streams::WatchTask {
                    user,
                    seq,
                    path,
                    fetch,
                    walk,
                };
                self.start_watch(task).await;
            }
            Action::MsgMonitor { topic, raw, field } => {
                self.start_monitor(seq, &topic, raw, field).await;
            }
            action => run_single(self.shared, self.out, seq, action, &user, &self.root).await,
        }
    }

    /// `root`: `path` (already below the current root) becomes the root,
    /// if the user may read there; the reply is the entry, as `get_value`
    /// shows it.
    async fn change_root(&mut self, seq: u64, user: &User, path: Path) {
        if path.elems().iter().any(PathElem::is_nil) {
            let text = "Null path element: the root cannot be in the system subtree";
            return send_error(self.out, seq, text.into()).await;
        }
        let get = Action::GetValue {
            path: path.clone(),
            nchain: 2,
        };
        match actions::run(self.shared, get, user).await {
            Ok(Outcome::Reply(mut m)) => {
                self.root = path;
                m.push("path", Path::root().to_value());
                send_outcome(self.out, seq, Outcome::Reply(m), false).await;
            }
            Ok(outcome) => send_outcome(self.out, seq, outcome, false).await,
            Err(e) => send_error(self.out, seq, e.0).await,
        }
    }

    /// An auth action: its replies, in order.
    async fn authenticate(&mut self, seq: u64, a: AuthAction) {
        for reply in login::handle(self.shared, &mut self.session, a).await {
            if !self.out.send(seq, reply).await {
                break;
            }
        }
    }

    /// `stop`: cancels a running stream of this connection.
    async fn stop(&self, seq: u64, task: u64) {
        let found = lock_tasks(self.tasks).remove(&task);
        if let Some(t) = &found {
            t.cancel();
        }
        self.out
            .send(seq, MapBuilder::new().set("result", found.is_some()))
            .await;
    }

    /// `get_tree`: a stream task, if it may start.
    async fn start_get_tree(&self, seq: u64, user: Arc<User>, path: Path, walk: WalkParams) {
        if let Err(why) = may_stream_at(self.shared, self.tasks, &path) {
            return stream_error(self.out, seq, why).await;
        }
        let cancel = register(self.tasks, seq);
        let (shared, out, tasks) = (self.shared.clone(), self.out.clone(), self.tasks.clone());
        tokio::spawn(async move {
            streams::get_tree(shared, out, seq, path, walk, cancel, user).await;
            lock_tasks(&tasks).remove(&seq);
        });
    }

    /// `watch`: registers the watcher here, in request order, then
    /// streams from a task.
    async fn start_watch(&self, task: streams::WatchTask) {
        let seq = task.seq;
        if let Err(why) = may_stream_at(self.shared, self.tasks, &task.path) {
            return stream_error(self.out, seq, why).await;
        }
        let cancel = register(self.tasks, seq);
        let registered = streams::register_watch(self.shared, &task.path, &task.walk);
        let (shared, out, tasks) = (self.shared.clone(), self.out.clone(), self.tasks.clone());
        tokio::spawn(async move {
            streams::watch(shared, out, task, registered, cancel).await;
            lock_tasks(&tasks).remove(&seq);
        });
    }

    /// `msg_monitor`: subscribes to `topic` and streams from a task.
    async fn start_monitor(&self, seq: u64, topic: &str, raw: bool, field: &'static str) {
        if !room_for_stream(self.shared, self.tasks) {
            return stream_error(self.out, seq, TOO_MANY_STREAMS.into()).await;
        }
        let sub = match self.shared.network.gossip().subscribe(topic).await {
            Ok(s) => s,
            Err(e) => return stream_error(self.out, seq, e.to_string()).await,
        };
        let cancel = register(self.tasks, seq);
        let (out, tasks) = (self.out.clone(), self.tasks.clone());
        tokio::spawn(async move {
            streams::monitor(out, seq, sub, raw, field, cancel).await;
            lock_tasks(&tasks).remove(&seq);
        });
    }
}

/// Who a logged-in `user` acts as for `action`: `Err` is the text for
/// the client. Internal actions of a super-root user bound to an ACL run
/// without it.
fn acting_user(user: &Arc<User>, action: &Action, internal: bool) -> Result<Arc<User>, String> {
    permitted(user, action, internal)?;
    Ok(if internal && user.acl.is_some() {
        Arc::new(User {
            acl: None,
            ..(**user).clone()
        })
    } else {
        user.clone()
    })
}

/// `action` with its data path (if it has one) taken relative to `root`:
/// the data actions and `root` itself; actions by tick, on the servers'
/// bookkeeping, on files or messages are left alone.
fn below_root(root: &Path, action: Action) -> Action {
    if root.is_empty() {
        return action;
    }
    let under = |p: Path| {
        let mut full = Vec::with_capacity(root.len() + p.len());
        full.extend_from_slice(root.elems());
        full.extend(p.0);
        Path(full)
    };
    match action {
        Action::GetValue { path, nchain } => Action::GetValue {
            path: under(path),
            nchain,
        },
        Action::SetValue(s) => Action::SetValue(SetValue {
            path: under(s.path.clone()),
            ..s
        }),
        Action::DeleteTree { path, nchain } => Action::DeleteTree {
            path: under(path),
            nchain,
        },
        Action::GetTree { path, walk } => Action::GetTree {
            path: under(path),
            walk,
        },
        Action::Enumerate { path, empty } => Action::Enumerate {
            path: under(path),
            empty,
        },
        Action::Watch { path, fetch, walk } => Action::Watch {
            path: under(path),
            fetch,
            walk,
        },
        Action::TestAcl { path, mode, acl } => Action::TestAcl {
            path: under(path),
            mode,
            acl,
        },
        Action::Root { path } => Action::Root { path: under(path) },
        other => other,
    }
}

/// Replies (`delete_tree`'s deletions, `get_value` by event) with their
/// `path` fields relative to the connection's `root`; `Err` names a path
/// that is not below it.
fn relative_paths(items: Vec<MapBuilder>, root: &Path) -> Result<Vec<MapBuilder>, String> {
    let mut out = Vec::with_capacity(items.len());
    for m in items {
        let Value::Map(fields) = m.build() else {
            continue;
        };
        let mut item = MapBuilder::new();
        for (k, v) in fields {
            let Some(k) = k.as_str().map(str::to_owned) else {
                continue;
            };
            let v = match (k.as_str(), v) {
                ("path", v) => {
                    let full = Path::from_value(v).map_err(|e| e.to_string())?;
                    match full.elems().strip_prefix(root.elems()) {
                        Some(rest) => Path(rest.to_vec()).to_value(),
                        None => return Err(format!("{full} is not below this connection's root")),
                    }
                }
                (_, v) => v,
            };
            item.push(&k, v);
        }
        out.push(item);
    }
    Ok(out)
}

/// A single-reply action. Changes are acknowledged, with
/// `server.log_sync: always`, once they are on disk: without holding up
/// this connection's next requests (one disk sync then covers many
/// changes; see [`Replies::send_change_reply`]).
async fn run_single(
    shared: &Arc<Shared>,
    out: &Replies,
    seq: u64,
    action: Action,
    user: &User,
    root: &Path,
) {
    let changes = matches!(action, Action::SetValue(_) | Action::DeleteTree { .. });
    let rooted = !root.is_empty()
        && matches!(
            action,
            Action::DeleteTree { .. } | Action::GetByEvent { .. }
        );
    let outcome = match actions::run(shared, action, user).await {
        Ok(outcome) if rooted => match outcome {
            Outcome::Stream(items) => relative_paths(items, root).map(Outcome::Stream),
            Outcome::Reply(m) => relative_paths(vec![m], root)
                .map(|mut v| Outcome::Reply(v.pop().unwrap_or_default())),
        },
        Ok(outcome) => Ok(outcome),
        Err(e) => Err(e.0),
    };
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(text) => return send_error(out, seq, text).await,
    };
    send_outcome(out, seq, outcome, changes).await;
}

async fn send_error(out: &Replies, seq: u64, text: String) {
    out.send(seq, MapBuilder::new().set("error", text)).await;
}

/// Sends an action's replies; those to a change (`change`) once it is on
/// disk where `server.log_sync` asks for that.
async fn send_outcome(out: &Replies, seq: u64, outcome: Outcome, change: bool) {
    let send = |m: MapBuilder| async move {
        if change {
            out.send_change_reply(seq, m).await
        } else {
            out.send(seq, m).await
        }
    };
    match outcome {
        Outcome::Reply(m) => {
            send(m).await;
        }
        Outcome::Stream(items) => {
            send(MapBuilder::new().set("state", "start")).await;
            for m in items {
                send(m).await;
            }
            send(MapBuilder::new().set("state", "end")).await;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn user(super_root: bool, acl: Option<&str>) -> Arc<User> {
        Arc::new(User {
            method: Some("password".into()),
            ident: "joe".into(),
            super_root,
            acl: acl.map(str::to_owned),
            conv: None,
        })
    }

    fn get(words: &[&str]) -> Action {
        Action::GetValue {
            path: Path::from_strs(words),
            nchain: 0,
        }
    }

    fn system() -> Action {
        Action::GetValue {
            path: Path(vec![PathElem::Nil, PathElem::Str("auth".into())]),
            nchain: 0,
        }
    }

    #[test]
    fn plain_users_reach_data_but_not_the_system_subtree_or_internal_actions() {
        let joe = user(false, None);
        let acted = acting_user(&joe, &get(&["a"]), false).expect("data");
        assert!(Arc::ptr_eq(&acted, &joe));
        assert!(acting_user(&joe, &system(), false).is_err());
        assert!(acting_user(&joe, &get(&["a"]), true).is_err());
        assert!(acting_user(&joe, &Action::FetchTicks { nodes: vec![] }, false).is_err());
        let mark = Action::FakeInfo {
            deleted: false,
            nodes: vec![],
            send: false,
        };
        let err = acting_user(&joe, &mark, false);
        assert!(err.is_err_and(|t| t.contains("only super-root users")));
        let free = user(true, None);
        assert!(acting_user(&free, &mark, false).is_ok());
        let check = Action::CheckDeleted { nodes: vec![] };
        assert!(acting_user(&joe, &check, false).is_err());
        assert!(acting_user(&free, &check, false).is_ok());
    }

    #[test]
    fn node_actions_are_for_super_root_users_without_an_acl() {
        let kill = Action::KillNode { node: "x".into() };
        let list = Action::EnumNode {
            node: "x".into(),
            max: 0,
            current: true,
        };
        for a in [&kill, &list] {
            assert!(acting_user(&user(false, None), a, false).is_err());
            assert!(acting_user(&user(true, Some("ro")), a, false).is_err());
            assert!(acting_user(&user(true, None), a, false).is_ok());
        }
    }

    #[test]
    fn a_root_prefixes_data_paths_only() {
        let root = Path::from_strs(&["a", "b"]);
        assert_eq!(
            below_root(&root, get(&["c"])),
            Action::GetValue {
                path: Path::from_strs(&["a", "b", "c"]),
                nchain: 0
            }
        );
        let deeper = below_root(
            &root,
            Action::Root {
                path: Path::from_strs(&["c"]),
            },
        );
        assert_eq!(
            deeper,
            Action::Root {
                path: Path::from_strs(&["a", "b", "c"])
            }
        );
        let set = below_root(
            &root,
            Action::SetValue(SetValue::new(Path::root(), Some(Value::Int(1)))),
        );
        assert!(matches!(set, Action::SetValue(s) if s.path == root));
        let kill = Action::KillNode { node: "x".into() };
        assert_eq!(below_root(&root, kill.clone()), kill);
        assert_eq!(below_root(&Path::root(), get(&["c"])), get(&["c"]));
        // a system path below a root is no longer one: it has a null
        // element further in, which the actions refuse
        let sys = below_root(&root, system());
        assert!(matches!(sys, Action::GetValue { path, .. } if path.elems()[2].is_nil()));
    }

    #[test]
    fn reply_paths_lose_the_root() {
        let item = |words: &[&str]| {
            MapBuilder::new()
                .set("path", Path::from_strs(words).to_value())
                .set("value", 1)
        };
        let root = Path::from_strs(&["a", "b"]);
        let out = relative_paths(vec![item(&["a", "b", "c"])], &root).expect("below");
        assert_eq!(
            out.into_iter().map(MapBuilder::build).collect::<Vec<_>>(),
            vec![item(&["c"]).build()]
        );
        let err = relative_paths(vec![item(&["a", "x"])], &root).expect_err("outside");
        assert!(err.contains("not below"), "{err}");
    }

    #[test]
    fn super_root_users_run_internal_actions_without_their_acl() {
        let root = user(true, Some("ro"));
        // internal actions drop the ACL, for this request only
        let acted = acting_user(&root, &system(), true).expect("internal");
        assert_eq!(acted.acl, None);
        assert_eq!(root.acl.as_deref(), Some("ro"));
        // plain actions keep it
        let acted = acting_user(&root, &get(&["a"]), false).expect("data");
        assert_eq!(acted.acl.as_deref(), Some("ro"));
        // actions past the ACLs are not for users bound to one
        let err = acting_user(&root, &Action::FetchTicks { nodes: vec![] }, false);
        assert!(err.is_err_and(|t| t.contains("bound to an ACL")));
        let free = user(true, None);
        assert!(acting_user(&free, &Action::FetchTicks { nodes: vec![] }, false).is_ok());
    }

    #[test]
    fn a_pipelining_connection_reads_in_larger_chunks() {
        // idle or one request at a time: the small buffer stays
        let mut idle = bytes::BytesMut::with_capacity(512);
        pipelining_reads(&mut idle);
        assert!(idle.capacity() < PIPELINE_READ_BUFFER);
        // requests waiting behind the one decoded: grown, keeping them
        let mut busy = bytes::BytesMut::with_capacity(512);
        busy.extend_from_slice(b"next request");
        pipelining_reads(&mut busy);
        assert!(busy.capacity() >= PIPELINE_READ_BUFFER);
        assert_eq!(&busy[..], b"next request");
        // and only once
        let cap = busy.capacity();
        busy.extend_from_slice(&[0; 4096]);
        pipelining_reads(&mut busy);
        assert_eq!(busy.capacity(), cap);
    }
}
