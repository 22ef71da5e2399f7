//! Initial sync: a server without data copies the whole tree and the node
//! state from a peer over the client protocol.

use std::sync::Arc;
use std::time::Duration;

use distkv_connect::{ConnectError, Target};
use distkv_proto::request::RequestErrorKind;
use distkv_proto::value_map::MapBuilder;
use distkv_proto::wire::{update_at_path, update_from_value};
use distkv_proto::{Limits, MsgpackCodec, PathLengthener};
use distkv_tree::{NodeName, Path, UpdateEvent, Value};
use futures_util::{SinkExt, StreamExt};
use tokio_util::codec::Framed;

use crate::replication::Network;
use crate::state::{Shared, Store};
use distkv_auth::{AuthChannel, AuthError, ClientAuth};

/// Why a sync attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The connection could not be opened (connecting, TLS, the
    /// greeting).
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The peer sent garbage.
    #[error("bad data from the peer: {0}")]
    Protocol(String),
    /// The peer reported an error.
    #[error("the peer said: {0}")]
    Remote(String),
    /// Logging in to the peer failed.
    #[error("cannot log in to the peer: {0}")]
    Login(String),
    /// The peer took too long.
    #[error("the peer did not answer in time")]
    Timeout,
    /// The server at the peer's address is another one.
    #[error("the server at this address is {found:?}, not {expected:?}")]
    WrongPeer {
        /// The name looked for.
        expected: String,
        /// The name in its greeting.
        found: String,
    },
}

impl From<distkv_proto::CodecError> for SyncError {
    fn from(e: distkv_proto::CodecError) -> SyncError {
        SyncError::Protocol(e.to_string())
    }
}

impl From<RequestErrorKind> for SyncError {
    fn from(e: RequestErrorKind) -> SyncError {
        SyncError::Protocol(e.to_string())
    }
}

/// A connection to a peer: TCP, or TLS over TCP.
type Conn = Framed<distkv_connect::Stream, MsgpackCodec>;

/// Time allowed for connecting to a peer, the TLS handshake and its
/// greeting.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

async fn next(conn: &mut Conn) -> Result<Value, SyncError> {
    let v = tokio::time::timeout(Duration::from_secs(30), conn.next())
        .await
        .map_err(|_| SyncError::Timeout)?
        .ok_or_else(|| SyncError::Protocol("connection closed".into()))??;
    if let Some(e) = v.get("error") {
        return Err(SyncError::Remote(e.to_string()));
    }
    Ok(v)
}

/// A peer connection as the login flow uses it.
struct PeerChannel<'a> {
    conn: &'a mut Conn,
    seq: &'a mut u64,
}

#[async_trait::async_trait]
impl AuthChannel for PeerChannel<'_> {
    async fn call(&mut self, request: Value) -> Result<Vec<Value>, AuthError> {
        *self.seq += 1;
        let mut request = request;
        if let Value::Map(m) = &mut request {
            m.push((Value::from("seq"), Value::from_u64(*self.seq)));
        }
        let proto = |e: SyncError| AuthError::Protocol(e.to_string());
        SinkExt::<Value>::send(self.conn, request)
            .await
            .map_err(|e| proto(e.into()))?;
        let mut items = Vec::new();
        let mut streaming = false;
        loop {
            let v = match next(self.conn).await {
                Ok(v) => v,
                Err(SyncError::Remote(text)) => return Err(AuthError::Server(text)),
                Err(e) => return Err(proto(e)),
            };
            match v.get("state").and_then(Value::as_str) {
                Some("start") => streaming = true,
                Some("end") => return Ok(items),
                _ if streaming => items.push(v),
                _ => return Ok(vec![v]),
            }
        }
    }
}

/// Connects to the client port of peer `node`, reads its greeting, checks
/// that the server there is `node` (data is taken from the peer that
/// gossip named, never from whoever answers at its address), and logs in
/// if the peer requires it (with `connect.auth`). Returns the
/// connection and the last request number used.
async fn open(net: &Network, node: &str, host: &str, port: u16) -> Result<(Conn, u64), SyncError> {
    let mut target = Target::new(host, port);
    target.timeout = CONNECT_TIMEOUT;
    target.limits = Limits {
        max_frame: net.max_frame.max(64 << 20),
        ..Limits::default()
    };
    target.tls.clone_from(&net.peer_tls);
    let (conn, greeting) = distkv_connect::connect(&target).await?;
    if greeting.node != node {
        let found = if greeting.node.is_empty() {
            "(none)"
        } else {
            greeting.node.as_str()
        };
        return Err(SyncError::WrongPeer {
            expected: node.chars().take(64).collect(),
            found: found.chars().take(64).collect(),
        });
    }
    let mut conn = conn.into_framed();
    let creds = net.peer_login.as_ref();
    let mut seq = 0;
    match greeting.login_needed(creds) {
        Ok(false) => {}
        Ok(true) => {
            let creds = creds.ok_or_else(|| SyncError::Login("no credentials".into()))?;
            let mut chan = PeerChannel {
                conn: &mut conn,
                seq: &mut seq,
            };
            ClientAuth::default()
                .login(&mut chan, creds)
                .await
                .map_err(|e| SyncError::Login(e.to_string()))?;
        }
        Err(e @ AuthError::Required(_)) => {
            return Err(SyncError::Login(format!("{e} (set connect.auth)")));
        }
        Err(e) => return Err(SyncError::Login(e.to_string())),
    }
    Ok((conn, seq))
}

/// Entries decoded before they are handed to the tree in one lock hold.
const APPLY_BATCH: usize = 1000;

/// Copies everything from peer `node` at `host:port`. Returns the number
/// of entries received.
///
/// Reading and decoding the stream (this task) and applying the entries
/// to the tree (a blocking thread) overlap: batches pass between them
/// through a short bounded channel, so neither waits for the other and the
/// memory held in flight stays bounded.
pub async fn sync_from(
    shared: &Arc<Shared>,
    node: &str,
    host: &str,
    port: u16,
) -> Result<u64, SyncError> {
    let (store, net) = (&shared.store, &shared.network);
    let (mut conn, seq) = open(net, node, host, port).await?;
    // The node state first: every tick in it belongs to a change made
    // before the walk, which the walk then delivers (or its successor).
    // Merged after the walk, it cannot hide entries the walk did not see.
    let state_req = MapBuilder::new()
        .set("seq", seq + 1)
        .set("action", "get_state")
        .set("nodes", true)
        .set("known", true)
        .set("deleted", true)
        .build();
    SinkExt::<Value>::send(&mut conn, state_req).await?;
    let st = next(&mut conn).await?;
    let own = net.name.as_str();
    let tree_req = MapBuilder::new()
        .set("seq", seq + 2)
        .set("action", "get_tree")
        .set("path", Value::Array(Default::default()))
        .set("nchain", -1)
        .set("empty", true)
        .set("from_server", own)
        .build();
    SinkExt::<Value>::send(&mut conn, tree_req).await?;

    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<UpdateEvent>>(16);
    let applier = {
        let shared = shared.clone();
        tokio::task::spawn_blocking(move || -> Result<u64, SyncError> {
            let mut count = 0;
            while let Some(batch) = rx.blocking_recv() {
                let store = &shared.store;
                let mut core = store.lock();
                for ev in &batch {
                    core.apply_remote(ev, &store.clock);
                }
                count += batch.len() as u64;
                drop(core);
                // the batch is freed here, outside the lock
            }
            Ok(count)
        })
    };
    let read = read_tree(store, &mut conn, &tx).await;
    drop(tx);
    // The applier's error (bad data in an entry) explains a closed
    // channel better than the reader's.
    let count = applier
        .await
        .map_err(|e| SyncError::Protocol(format!("applying the copy failed: {e}")))??;
    read?;
    store.merge_node_state(&st);
    Ok(count)
}

/// An entry as received: the message, and its full path if the message
/// does not carry one.
type Received = (Value, Option<Path>);

/// Node names seen in a copy, interned once: the reader converts entries
/// without taking the tree's lock for each of them.
struct NameCache<'a> {
    store: &'a Store,
    names: std::sync::Mutex<std::collections::HashMap<String, NodeName>>,
}

impl NameCache<'_> {
    /// At most this many names are kept (a hostile peer could send more).
    const MAX: usize = 4096;

    fn intern(&self, name: &str) -> NodeName {
        let mut names = self.names.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = names.get(name) {
            return n.clone();
        }
        let n = self.store.lock().tree.intern(name);
        if names.len() < Self::MAX {
            names.insert(name.to_owned(), n.clone());
        }
        n
    }
}

/// Reads a `get_tree` stream to its end, passing batches of update events
/// to `tx`. The messages are decoded and converted here, so that what
/// they leave behind is freed on this thread, not the applier's.
async fn read_tree(
    store: &Store,
    conn: &mut Conn,
    tx: &tokio::sync::mpsc::Sender<Vec<UpdateEvent>>,
) -> Result<(), SyncError> {
    let mut len = PathLengthener::new(Path::root());
    let mut batch = Vec::with_capacity(APPLY_BATCH);
    let names = NameCache {
        store,
        names: Default::default(),
    };
    let intern = |n: &str| names.intern(n);
    let closed = |_| SyncError::Protocol("the copy stopped being applied".into());
    loop {
        let msg = next(conn).await?;
        match msg.get("state").and_then(Value::as_str) {
            Some("start") => continue,
            Some("end") => {
                if let Some(t) = msg.get("tock").and_then(Value::as_u64) {
                    store.clock.seen(t);
                }
                break;
            }
            _ => {}
        }
        let full = len
            .lengthen_item(&msg)
            .map_err(|e| SyncError::Protocol(e.to_string()))?;
        if msg.get("chain").is_none() {
            // an interior entry without data or history
            continue;
        }
        let ev =
            update_at_path(msg, full, &intern).map_err(|e| SyncError::Protocol(e.to_string()))?;
        batch.push(ev);
        if batch.len() >= APPLY_BATCH {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(APPLY_BATCH));
            tx.send(full).await.map_err(closed)?;
        }
    }
    if !batch.is_empty() {
        tx.send(batch).await.map_err(closed)?;
    }
    Ok(())
}

/// Applies received entries under one lock: each with its full path, or
/// with the path in its `path` field.
fn apply(store: &Store, batch: &mut Vec<Received>) -> Result<u64, SyncError> {
    let mut n = 0;
    let mut core = store.lock();
    for (m, path) in batch.drain(..) {
        let ev = {
            let tree = &core.tree;
            let intern = |x: &str| tree.intern(x);
            match path {
                Some(p) => update_at_path(m, p, &intern),
                None => update_from_value(m, &intern),
            }
        }
        .map_err(|e| SyncError::Protocol(e.to_string()))?;
        core.apply_remote(&ev, &store.clock);
        n += 1;
    }
    Ok(n)
}

/// Fetches the entry whose current chain holds `(node, tick)` from the
/// server at `host:port`: the reply carries `value`, `chain`, `tock` and
/// `path`, the form of an update.
pub async fn fetch_event(
    net: &Network,
    host: &str,
    port: u16,
    node: &str,
    tick: u64,
) -> Result<Value, SyncError> {
    let (mut conn, seq) = open(net, node, host, port).await?;
    let req = MapBuilder::new()
        .set("seq", seq + 1)
        .set("action", "get_value")
        .set("node", node)
        .set("tick", tick)
        .set("nchain", -1)
        .build();
    SinkExt::<Value>::send(&mut conn, req).await?;
    next(&mut conn).await
}

/// Asks peer `peer` at `host:port` for the entries holding the `missing`
/// ticks (the `fetch_ticks` action) and applies what it sends: entries,
/// and the ticks it knows as superseded or deleted. Returns the number of
/// entries received.
pub async fn pull_ticks(
    store: &Store,
    net: &Network,
    peer: &str,
    host: &str,
    port: u16,
    missing: &[(String, distkv_tree::RangeSet)],
) -> Result<u64, SyncError> {
    let (mut conn, seq) = open(net, peer, host, port).await?;
    let mut sets = MapBuilder::new();
    for (n, r) in missing {
        sets.push(n, distkv_proto::wire::ranges_to_value(r));
    }
    let req = MapBuilder::new()
        .set("seq", seq + 1)
        .set("action", "fetch_ticks")
        .set("nodes", sets.build())
        .set("from_server", net.name.as_str())
        .build();
    SinkExt::<Value>::send(&mut conn, req).await?;
    let mut batch = Vec::new();
    let mut count = 0;
    loop {
        let msg = next(&mut conn).await?;
        match msg.get("state").and_then(Value::as_str) {
            Some("start") => continue,
            Some("end") => break,
            _ => {}
        }
        if msg.get("path").is_some() {
            batch.push((msg, None));
            if batch.len() >= 1000 {
                count += apply(store, &mut batch)?;
            }
            continue;
        }
        count += apply(store, &mut batch)?;
        store.merge_node_state(&msg);
    }
    count += apply(store, &mut batch)?;
    Ok(count)
}
