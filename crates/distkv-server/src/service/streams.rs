//! The streaming actions: `get_tree` and `watch`.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use distkv_proto::PathShortener;
use distkv_proto::request::WalkParams;
use distkv_proto::value_map::MapBuilder;
use distkv_tree::{Path, Value, WalkCursor, WalkOpts};
use tokio_util::sync::CancellationToken;

use crate::service::access;
use crate::service::login::User;
use crate::service::replies::Replies;
use crate::service::snapshot::push_entry;
use crate::service::watchers::{WatchEvent, WatchHandle};
use crate::state::{Shared, Store};

fn opts(w: &WalkParams) -> WalkOpts {
    WalkOpts {
        min_depth: w.min_depth,
        max_depth: w.max_depth,
    }
}

/// One walked entry, copied out of the tree.
struct Item {
    path: Path,
    value: Option<Value>,
    chain: Option<distkv_tree::Chain>,
    tock: u64,
}

/// Copies the next chunk of a walk out of the tree (under the lock).
/// `Err(())`: the start entry does not exist.
fn next_chunk(
    shared: &Shared,
    path: &Path,
    walk: &WalkParams,
    cursor: Option<WalkCursor>,
    keep: &dyn Fn(&distkv_tree::Entry) -> bool,
    user: &User,
) -> Result<(Vec<Item>, Option<WalkCursor>), ()> {
    let mut items = Vec::new();
    let core = shared.store.lock();
    let tree = &core.tree;
    let next = tree
        .walk_chunk(
            path,
            opts(walk),
            cursor,
            shared.service.walk_chunk,
            &mut |p, _, e| {
                if !keep(e) {
                    return;
                }
                let value = match access::view(tree, user, path, p) {
                    access::View::Skip => return,
                    access::View::Hide => None,
                    access::View::Show => e.data().cloned(),
                };
                items.push(Item {
                    path: p.clone(),
                    value,
                    chain: e.chain().cloned(),
                    tock: e.tock(),
                });
            },
        )
        .map_err(|_| ())?;
    Ok((items, next))
}

/// Encodes the values of `items` for a user with a converter.
async fn encode_items(shared: &Shared, user: &User, items: &mut [Item]) {
    if user.conv.is_none() {
        return;
    }
    let jobs: Vec<(usize, Value)> = {
        let core = shared.store.lock();
        items
            .iter()
            .enumerate()
            .filter(|(_, it)| it.value.is_some())
            .filter_map(|(i, it)| {
                crate::service::actions::converter(&core.tree, user, &it.path).map(|c| (i, c))
            })
            .collect()
    };
    for (i, codec) in jobs {
        let Some(v) = items[i].value.take() else {
            continue;
        };
        match crate::service::actions::convert(
            &shared.service.checker,
            codec,
            crate::validate::converters::Direction::Encode,
            v,
        )
        .await
        {
            Ok(v) => items[i].value = Some(v),
            Err(e) => {
                tracing::warn!(path = %items[i].path, error = %e.0, "encoding a value failed; it is left out");
            }
        }
    }
}

/// What `user` may see of a change in a watch on `start`.
fn visible(store: &Store, user: &User, start: &Path, mut item: Item) -> Option<Item> {
    if user.acl.is_none() {
        return user.may_access(&item.path).then_some(item);
    }
    match access::view(&store.lock().tree, user, start, &item.path) {
        access::View::Skip => None,
        access::View::Hide => {
            item.value = None;
            Some(item)
        }
        access::View::Show => Some(item),
    }
}

/// Sends one entry with its path shortened relative to the request;
/// entries `user` may not see are skipped.
async fn send_item(
    out: &Replies,
    seq: u64,
    short: &mut PathShortener,
    item: Item,
    nchain: i64,
    user: &User,
) -> bool {
    if !user.may_access(&item.path) {
        return true;
    }
    let Some((depth, rest)) = short.shorten(&item.path) else {
        return true;
    };
    let mut m = MapBuilder::new();
    // the value moves into the reply: a dump copies each value once
    if let Some(v) = item.value {
        m.push("value", v);
    }
    push_entry(&mut m, None, item.chain.as_ref(), item.tock, nchain);
    m.push("path", rest.to_value());
    m.push("depth", depth);
    out.send(seq, m).await
}

/// `get_tree`: streams the subtree, a chunk per lock hold.
pub async fn get_tree(
    shared: Arc<Shared>,
    out: Replies,
    seq: u64,
    path: Path,
    walk: WalkParams,
    cancel: CancellationToken,
    user: Arc<User>,
) {
    out.send(seq, MapBuilder::new().set("state", "start")).await;
    let mut short = PathShortener::new(&path);
    let mut cursor = None;
    let keep = |e: &distkv_tree::Entry| walk.empty || e.data().is_some();
    loop {
        let (mut items, next) = match next_chunk(&shared, &path, &walk, cursor, &keep, &user) {
            Ok(x) => x,
            Err(()) => {
                let text = distkv_proto::ErrorClass::Key.call(&path);
                out.send(seq, MapBuilder::new().set("error", text)).await;
                break;
            }
        };
        encode_items(&shared, &user, &mut items).await;
        for it in items {
            if cancel.is_cancelled()
                || !send_item(&out, seq, &mut short, it, walk.nchain, &user).await
            {
                break;
            }
        }
        cursor = next;
        if cursor.is_none() || cancel.is_cancelled() {
            break;
        }
    }
    out.send(seq, MapBuilder::new().set("state", "end")).await;
}

fn event_item(ev: WatchEvent) -> Item {
    Item {
        path: ev.path,
        value: ev.value,
        chain: ev.chain,
        tock: ev.tock,
    }
}

/// Registers a watcher for `path` (creating the path) and returns it with
/// the tock that separates the initial dump from live changes. Called in
/// the connection's reader, before later requests run, so that a change
/// requested after the watch is always seen by it.
pub fn register_watch(
    shared: &Shared,
    path: &Path,
    walk: &WalkParams,
) -> Result<(WatchHandle, u64), distkv_tree::ChangeError> {
    let mut core = shared.store.lock();
    core.tree.ensure(path)?;
    let h = core.watchers.add(
        path.clone(),
        walk.min_depth,
        walk.max_depth,
        shared.service.watch_limits,
    );
    Ok((h, shared.store.clock.next()))
}

/// The arguments of a running watch.
pub struct WatchTask {
    /// Who watches.
    pub user: Arc<User>,
    /// The request's seq.
    pub seq: u64,
    /// The watched path.
    pub path: Path,
    /// Send the current subtree first.
    pub fetch: bool,
    /// Walk options.
    pub walk: WalkParams,
}

/// `watch`: optionally dumps the current subtree, then streams every change
/// until cancelled.
pub async fn watch(
    shared: Arc<Shared>,
    out: Replies,
    task: WatchTask,
    registered: Result<(WatchHandle, u64), distkv_tree::ChangeError>,
    cancel: CancellationToken,
) {
    let WatchTask {
        user,
        seq,
        path,
        fetch,
        walk,
    } = task;
    out.send(seq, MapBuilder::new().set("state", "start")).await;
    let (mut handle, t0) = match registered {
        Ok(x) => x,
        Err(e) => {
            out.send(seq, MapBuilder::new().set("error", e.to_string()))
                .await;
            out.send(seq, MapBuilder::new().set("state", "end")).await;
            return;
        }
    };
    let mut short = PathShortener::new(&path);
    let mut alive = true;
    if fetch {
        let mut cursor = None;
        let keep = |e: &distkv_tree::Entry| e.tock() < t0 && (walk.empty || e.data().is_some());
        while let Ok((mut items, next)) = next_chunk(&shared, &path, &walk, cursor, &keep, &user) {
            encode_items(&shared, &user, &mut items).await;
            for it in items {
                alive = alive && send_item(&out, seq, &mut short, it, walk.nchain, &user).await;
            }
            // Changes made meanwhile go out between chunks, so that the
            // watcher's queue does not fill during a long dump.
            while let Some(ev) = handle.try_recv() {
                if let Some(mut it) = visible(&shared.store, &user, &path, event_item(ev)) {
                    encode_items(&shared, &user, std::slice::from_mut(&mut it)).await;
                    alive = alive && send_item(&out, seq, &mut short, it, walk.nchain, &user).await;
                }
            }
            cursor = next;
            if cursor.is_none() || !alive || cancel.is_cancelled() {
                break;
            }
        }
        if alive {
            alive = out
                .send(seq, MapBuilder::new().set("state", "uptodate"))
                .await;
        }
    }
    while alive {
        tokio::select! {
            _ = cancel.cancelled() => break,
            ev = handle.recv() => match ev {
                Some(ev) => {
                    if let Some(mut it) = visible(&shared.store, &user, &path, event_item(ev)) {
                        encode_items(&shared, &user, std::slice::from_mut(&mut it)).await;
                        alive = send_item(&out, seq, &mut short, it, walk.nchain, &user).await;
                    }
                }
                None => {
                    if handle.overflowed.load(Ordering::Acquire) {
                        let text = distkv_proto::ErrorClass::WatchOverflow.message("the client fell behind; changes were lost, resync");
                        out.send(seq, MapBuilder::new().set("error", text)).await;
                    }
                    break;
                }
            },
        }
    }
    shared.store.lock().watchers.remove(handle.id);
    out.send(seq, MapBuilder::new().set("state", "end")).await;
}

/// `msg_monitor`: streams the messages sent to a topic until cancelled.
pub async fn monitor(
    out: Replies,
    seq: u64,
    mut sub: distkv_proto::transport::Subscription,
    raw: bool,
    field: &'static str,
    cancel: CancellationToken,
) {
    out.send(seq, MapBuilder::new().set("state", "start")).await;
    let limits = distkv_proto::Limits::default();
    loop {
        let ev = tokio::select! {
            _ = cancel.cancelled() => break,
            ev = sub.recv() => ev,
        };
        let Some(ev) = ev else { break };
        let mut m = MapBuilder::new().set(field, ev.name.as_str());
        if raw {
            m.push("raw", Value::Bytes(ev.payload[..].into()));
        } else {
            match distkv_proto::msgpack::decode_one(&ev.payload, &limits) {
                Ok(v) => m.push("data", v),
                // Reported in the item as `decode_error`: an `error` field
                // would end the client's stream.
                Err(e) => {
                    m.push("raw", Value::Bytes(ev.payload[..].into()));
                    m.push("decode_error", format!("{e:?}"));
                }
            }
        }
        if !out.send(seq, m).await {
            break;
        }
    }
    out.send(seq, MapBuilder::new().set("state", "end")).await;
}
