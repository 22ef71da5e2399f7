//! The single-reply actions.

use std::sync::Arc;

use distkv_proto::request::{Action, ChainCheck, MsgPayload, SetValue, StateFlags};
use distkv_proto::value_map::MapBuilder;
use distkv_proto::wire::{chain_to_value, ranges_to_value, update_to_value};
use distkv_tree::{NodeEvent, Path, Precondition, RangeSet, Value};

use crate::replication::{Broadcaster, Network};
use crate::service::access;
use crate::service::login::User;
use crate::service::snapshot::{entry_map, push_entry};
use crate::service::state::ServiceState;
use crate::state::{Shared, Store};
use crate::validate::converters;
use crate::validate::type_check::Checker;

/// Runs file work on the blocking pool, off the executor threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ActionError> + Send + 'static,
) -> Result<T, ActionError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ActionError(format!("internal error: {e}")))?
}

/// A failed action: the text goes to the client as `error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionError(pub String);

impl<E: std::fmt::Display> From<E> for ActionError {
    fn from(e: E) -> ActionError {
        ActionError(e.to_string())
    }
}

/// What a single-reply action produced: one reply map, or (for
/// `delete_tree` with chains) a list of stream items.
pub enum Outcome {
    /// One reply.
    Reply(MapBuilder),
    /// A `start`, items, `end` sequence.
    Stream(Vec<MapBuilder>),
}

/// `None` in a path: allowed only as the first element (the system
/// subtree); who may read or write there is checked by the caller.
pub fn check_read_path(path: &Path) -> Result<(), ActionError> {
    if path.elems().iter().skip(1).any(|e| e.is_nil()) {
        return Err(ActionError("Null path element".into()));
    }
    Ok(())
}

/// Runs a single-reply action.
pub async fn run(
    shared: &Arc<Shared>,
    action: Action,
    user: &User,
) -> Result<Outcome, ActionError> {
    let (store, svc) = (&shared.store, &shared.service);
    match action {
        Action::GetValue { path, nchain } => get_value(store, svc, user, path, nchain).await,
        Action::GetByEvent { event, nchain } => get_by_event(store, event, nchain),
        Action::SetValue(req) => Ok(Outcome::Reply(set_value(store, svc, req, user).await?)),
        Action::DeleteTree { path, nchain } => delete_tree(store, svc, user, path, nchain).await,
        Action::Enumerate { path, empty } => enumerate(store, user, path, empty),
        Action::GetState(flags) => Ok(Outcome::Reply(get_state(shared, &flags))),
        Action::GetTock => Ok(Outcome::Reply(MapBuilder::new())),
        Action::MsgSend { topic, payload } => msg_send(&shared.network, topic, payload).await,
        Action::FetchTicks { nodes } => fetch_ticks(store, nodes),
        Action::FakeInfo {
            deleted,
            nodes,
            send,
        } => fake_info(shared, deleted, nodes, send).await,
        Action::CheckDeleted { nodes } => check_deleted(shared, nodes).await,
        Action::EnumNode { node, max, current } => Ok(enum_node(store, &node, max, current)),
        Action::KillNode { node } => kill_node(shared, &node).await,
        Action::Log { path, fetch } => log(shared, path, fetch).await,
        Action::Save { path } => save(shared, path).await,
        Action::TestAcl { path, mode, acl } => test_acl(store, user, path, mode, acl),
        Action::Unknown(name) => Err(ActionError(format!("Unknown action: {name}"))),
        Action::GetTree { .. }
        | Action::Watch { .. }
        | Action::Stop { .. }
        | Action::Auth(_)
        | Action::Root { .. }
        | Action::MsgMonitor { .. } => Err(ActionError(
            "internal error: stream action dispatched as single".into(),
        )),
    }
}

/// `get_value`: one entry, converted for the user.
async fn get_value(
    store: &Store,
    svc: &ServiceState,
    user: &User,
    path: Path,
    nchain: i64,
) -> Result<Outcome, ActionError> {
    check_read_path(&path)?;
    let (found, codec) = {
        let core = store.lock();
        access::check(&core.tree, user, &path, 'r', false).map_err(ActionError)?;
        let found = core
            .tree
            .get(&path)
            .map(|e| (e.data().cloned(), e.chain().cloned(), e.tock()));
        (found, converter(&core.tree, user, &path))
    };
    Ok(match found {
        Some((value, chain, tock)) => {
            let value = match (value, codec) {
                (Some(v), Some(c)) => {
                    Some(convert(&svc.checker, c, converters::Direction::Encode, v).await?)
                }
                (v, _) => v,
            };
            let mut m = MapBuilder::new();
            push_entry(&mut m, value.as_ref(), chain.as_ref(), tock, nchain);
            Outcome::Reply(m)
        }
        None if nchain != 0 => Outcome::Reply(MapBuilder::new().set("chain", Value::Nil)),
        None => Outcome::Reply(MapBuilder::new()),
    })
}

/// `get_value` by `(node, tick)`: the entry that change made.
fn get_by_event(store: &Store, event: NodeEvent, nchain: i64) -> Result<Outcome, ActionError> {
    let core = store.lock();
    let ev = NodeEvent::new(core.tree.intern(&event.node), event.tick);
    let (path, e) = core
        .tree
        .find_event(&ev)
        .ok_or_else(|| ActionError(ev.tick.to_string()))?;
    let mut m = entry_map(e, nchain);
    m.push("path", path.to_value());
    Ok(Outcome::Reply(m))
}

/// `delete_tree`: every value below and at `path`; with `nchain` the deletions as a stream.
async fn delete_tree(
    store: &Store,
    svc: &ServiceState,
    user: &User,
    path: Path,
    nchain: i64,
) -> Result<Outcome, ActionError> {
    let check = |tree: &distkv_tree::Tree| access::check_delete_tree(tree, user, &path);
    let changes = store.delete_tree_checked(&path, &check).await?;
    if nchain == 0 {
        return Ok(Outcome::Reply(
            MapBuilder::new().set("changed", changes.len()),
        ));
    }
    let links = usize::try_from(nchain).unwrap_or(usize::MAX);
    let mut items = Vec::with_capacity(changes.len());
    for c in changes {
        let mut m = MapBuilder::new();
        if let Value::Map(kv) = update_to_value(&c.event, links) {
            for (k, v) in kv {
                if let Some(k) = k.as_str() {
                    m.push(k, v);
                }
            }
        }
        if let Some(old) = c.old {
            let codec = converter(&store.lock().tree, user, &c.event.path);
            let old = match codec {
                Some(codec) => {
                    convert(&svc.checker, codec, converters::Direction::Encode, old).await?
                }
                None => old,
            };
            m.push("old_value", old);
        }
        items.push(m);
    }
    Ok(Outcome::Stream(items))
}

/// `enumerate`: the names of the children (with values, unless `empty`).
fn enumerate(store: &Store, user: &User, path: Path, empty: bool) -> Result<Outcome, ActionError> {
    check_read_path(&path)?;
    let core = store.lock();
    access::check(&core.tree, user, &path, 'e', false).map_err(ActionError)?;
    let names: Vec<Value> = core
        .tree
        .get(&path)
        .map(|e| {
            e.children()
                .filter(|(_, c)| empty || c.data().is_some())
                .filter(|(n, _)| {
                    access::view(&core.tree, user, &path, &path.child((*n).clone()))
                        != access::View::Skip
                })
                .map(|(n, _)| n.to_value())
                .collect()
        })
        .unwrap_or_default();
    Ok(Outcome::Reply(
        MapBuilder::new().set("result", Value::Array(names.into())),
    ))
}

/// `msg_send`: a message to every server's monitors of `topic`.
async fn msg_send(
    net: &Network,
    topic: String,
    payload: MsgPayload,
) -> Result<Outcome, ActionError> {
    // The servers' own events are theirs alone: a client message
    // there would be taken for replication (unsigned, it would be
    // refused by signed networks; unsigned networks would apply it).
    let root = net.root.as_str();
    if topic == root || topic.strip_prefix(root).is_some_and(|r| r.starts_with('.')) {
        return Err(ActionError(format!(
            "the topic {topic} belongs to the servers (server.root {root})"
        )));
    }
    let bytes = match payload {
        MsgPayload::Raw(b) => b,
        MsgPayload::Data(v) => distkv_proto::msgpack::to_vec(&v),
    };
    net.gossip()
        .broadcast(&topic, bytes::Bytes::from(bytes))
        .await?;
    Ok(Outcome::Reply(MapBuilder::new()))
}

/// `fake_info` (`internal mark`): counts the ticks as known or deleted
/// here, as a trusted peer's state would (the state log records it), and
/// with `send` tells every server so through gossip. The reply says what
/// changed: per node, the ticks that were not known (or deleted) before.
async fn fake_info(
    shared: &Arc<Shared>,
    deleted: bool,
    nodes: Vec<(String, RangeSet)>,
    send: bool,
) -> Result<Outcome, ActionError> {
    let key = if deleted { "deleted" } else { "known" };
    let pick = |st: &distkv_tree::NodeState| {
        if deleted {
            st.deleted.clone()
        } else {
            st.known.clone()
        }
    };
    let before: Vec<RangeSet> = {
        let core = shared.store.lock();
        nodes
            .iter()
            .map(|(n, _)| core.tree.node(n).map(pick).unwrap_or_default())
            .collect()
    };
    let sets = Value::Map(
        nodes
            .iter()
            .map(|(n, r)| (Value::from(n.as_str()), ranges_to_value(r)))
            .collect(),
    );
    shared
        .store
        .merge_node_state(&MapBuilder::new().set(key, sets).build());
    tracing::warn!(kind = key, nodes = ?nodes, send, "tick bookkeeping changed by a client");
    let mut changed = MapBuilder::new();
    {
        let core = shared.store.lock();
        for ((n, _), old) in nodes.iter().zip(before) {
            let mut now = core.tree.node(n).map(pick).unwrap_or_default();
            now.subtract(&old);
            if !now.is_empty() {
                changed.push(n.as_str(), ranges_to_value(&now));
            }
        }
    }
    if send {
        let net = &shared.network;
        let mut info = distkv_proto::gossip::Info {
            node: net.name.clone(),
            ..Default::default()
        };
        if deleted {
            info.deleted = nodes;
        } else {
            info.known = nodes;
        }
        let out = Broadcaster::new(net.gossip().clone(), &net.root, &net.name)
            .with_keys(net.gossip_keys.clone());
        if !out
            .send(distkv_proto::gossip::Topic::Info, info.to_value())
            .await
        {
            return Err(ActionError(
                "changed here, but the other servers could not be told".into(),
            ));
        }
    }
    Ok(Outcome::Reply(
        MapBuilder::new()
            .set(key, changed.build())
            .set("sent", send),
    ))
}

/// `check_deleted`: of the given ticks, those that were deletions here;
/// broadcast as an `info` message's `deleted` when there are any.
async fn check_deleted(
    shared: &Arc<Shared>,
    nodes: Vec<(String, RangeSet)>,
) -> Result<Outcome, ActionError> {
    let deleted: Vec<(String, RangeSet)> = {
        let core = shared.store.lock();
        nodes
            .into_iter()
            .filter_map(|(n, r)| {
                let d = r.intersection(&core.tree.node(&n)?.deleted);
                (!d.is_empty()).then_some((n, d))
            })
            .collect()
    };
    let mut m = MapBuilder::new();
    for (n, r) in &deleted {
        m.push(n.as_str(), ranges_to_value(r));
    }
    let sent = !deleted.is_empty();
    if sent {
        let net = &shared.network;
        let info = distkv_proto::gossip::Info {
            node: net.name.clone(),
            deleted,
            ..Default::default()
        };
        let out = Broadcaster::new(net.gossip().clone(), &net.root, &net.name)
            .with_keys(net.gossip_keys.clone());
        if !out
            .send(distkv_proto::gossip::Topic::Info, info.to_value())
            .await
        {
            return Err(ActionError("the deletions could not be broadcast".into()));
        }
    }
    Ok(Outcome::Reply(
        MapBuilder::new()
            .set("deleted", m.build())
            .set("sent", sent),
    ))
}

/// `enum_node`: the ticks of `node` still in some entry's chain, or
/// (`current`) of entries it changed last; at most `max` (0: all).
fn enum_node(store: &Store, node: &str, max: u64, current: bool) -> Outcome {
    let max = usize::try_from(max).unwrap_or(usize::MAX);
    let ticks = store.lock().tree.node_ticks(node, max, current);
    let ticks = ticks.into_iter().map(|(t, _)| Value::from_u64(t)).collect();
    Outcome::Reply(MapBuilder::new().set("result", Value::Array(ticks)))
}

/// `kill_node`: retires `node` here (refused while an entry's last
/// change is the node's) and tells every server through an `info`
/// message's `node_drop`. The reply says how many chains lost the
/// node's link and what was known of the node.
async fn kill_node(shared: &Arc<Shared>, node: &str) -> Result<Outcome, ActionError> {
    let done = shared.store.lock().drop_node(node)?;
    let net = &shared.network;
    let info = distkv_proto::gossip::Info {
        node: net.name.clone(),
        node_drop: vec![node.to_owned()],
        ..Default::default()
    };
    let out = Broadcaster::new(net.gossip().clone(), &net.root, &net.name)
        .with_keys(net.gossip_keys.clone());
    let sent = out
        .send(distkv_proto::gossip::Topic::Info, info.to_value())
        .await;
    let state = done.state.unwrap_or_default();
    Ok(Outcome::Reply(
        MapBuilder::new()
            .set("node", node)
            .set("filtered", done.filtered)
            .set("tick", state.tick.map_or(Value::Nil, Value::from_u64))
            .set("known", ranges_to_value(&state.known))
            .set("sent", sent),
    ))
}

/// `fetch_ticks`: the changes of the given ticks, then what is known and
/// deleted, and the highest tick of each node asked about (`nodes`): a
/// server pulling from a busy peer learns there of the changes made since
/// it asked, and pulls again, without waiting for gossip to tell it.
fn fetch_ticks(store: &Store, nodes: Vec<(String, RangeSet)>) -> Result<Outcome, ActionError> {
    let (r, ticks) = {
        let core = store.lock();
        let wanted: Vec<_> = nodes
            .iter()
            .map(|(n, r)| (core.tree.intern(n), r.clone()))
            .collect();
        let mut ticks = MapBuilder::new();
        for (n, _) in &nodes {
            if let Some(t) = core.tree.node(n).and_then(|s| s.tick) {
                ticks.push(n, t);
            }
        }
        (core.tree.lookup_ticks(&wanted), ticks)
    };
    let mut items: Vec<MapBuilder> = r
        .updates
        .iter()
        .map(|u| {
            let mut m = MapBuilder::new().set("path", u.path.to_value());
            push_entry(&mut m, u.value.as_ref(), Some(&u.chain), u.tock, -1);
            m
        })
        .collect();
    let sets = |v: &[(distkv_tree::NodeName, RangeSet)]| {
        let mut m = MapBuilder::new();
        for (n, r) in v {
            m.push(n, ranges_to_value(r));
        }
        m.build()
    };
    items.push(
        MapBuilder::new()
            .set("known", sets(&r.known))
            .set("deleted", sets(&r.deleted))
            .set("nodes", ticks.build()),
    );
    Ok(Outcome::Stream(items))
}

/// `log`: start (or stop, without a path) the state log.
async fn log(
    shared: &Arc<Shared>,
    path: Option<String>,
    fetch: bool,
) -> Result<Outcome, ActionError> {
    match path {
        None => crate::storage::persist::stop_log(&shared.store)?,
        Some(p) => {
            let shared = shared.clone();
            blocking(move || {
                let file = std::path::Path::new(&p);
                crate::storage::persist::start_log(&shared.store, &shared.storage, file, fetch)
                    .map_err(|e| ActionError(e.to_string()))
            })
            .await?;
        }
    }
    Ok(Outcome::Reply(MapBuilder::new().set("result", true)))
}

/// `save`: a one-shot dump to `path`.
async fn save(shared: &Arc<Shared>, path: String) -> Result<Outcome, ActionError> {
    let shared = shared.clone();
    blocking(move || {
        let file = std::path::Path::new(&path);
        crate::storage::persist::save(&shared.store, &shared.storage, file)
            .map_err(|e| ActionError(e.to_string()))
    })
    .await?;
    Ok(Outcome::Reply(MapBuilder::new().set("result", true)))
}

/// `test_acl`: what access the user (or ACL `acl`) has at `path`.
fn test_acl(
    store: &Store,
    user: &User,
    path: Path,
    mode: char,
    acl: Option<String>,
) -> Result<Outcome, ActionError> {
    let core = store.lock();
    let access =
        access::test(&core.tree, user, &path, mode, acl.as_deref()).map_err(ActionError)?;
    Ok(Outcome::Reply(MapBuilder::new().set("access", access)))
}

/// `set_value` / `delete_value`: type checks, conversion for the user, the
/// preconditions, then the change.
async fn set_value(
    store: &Store,
    svc: &ServiceState,
    req: SetValue,
    user: &User,
) -> Result<MapBuilder, ActionError> {
    let SetValue {
        path,
        mut value,
        chain,
        prev,
        nchain,
        idem,
    } = req;
    // values in the user's form become the stored form
    let codec = converter(&store.lock().tree, user, &path);
    let checker = &svc.checker;
    let mut prev = prev;
    if let Some(c) = &codec {
        if let Some(v) = value.take() {
            value = Some(convert(checker, c.clone(), converters::Direction::Decode, v).await?);
        }
        if let Some(p) = prev.take() {
            prev = Some(convert(checker, c.clone(), converters::Direction::Decode, p).await?);
        }
    }
    if let Some(v) = &value {
        check_type(store, checker, &path, v).await?;
    }
    // a write where the entry has data, a create where not; a delete
    // writes
    let letter = if value.is_some() { 'W' } else { 'D' };
    let create = value.is_some();
    let check = |tree: &distkv_tree::Tree| access::check(tree, user, &path, letter, create);
    let had_precondition = chain.is_some() || prev.is_some();
    if idem {
        let core = store.lock();
        check(&core.tree).map_err(ActionError)?;
        if let Some(e) = core.tree.get(&path) {
            if e.data().is_some() && e.data() == value.as_ref() {
                let mut m = MapBuilder::new().set("changed", false);
                if let Some(c) = e.chain().and_then(|c| chain_to_value(c, nchain)) {
                    m.push("chain", c);
                }
                return Ok(m);
            }
        }
    }
    let pre = Precondition {
        chain: chain.map(|c| match c {
            ChainCheck::New => None,
            ChainCheck::Head(ev) => Some(ev),
        }),
        prev,
    };
    let change = store
        .local_change_checked(&path, value, &pre, &check)
        .await?;
    let mut m = MapBuilder::new();
    match change {
        None => m.push("changed", false),
        Some(c) => {
            m.push("changed", c.changed());
            if !had_precondition {
                if let Some(old) = &c.old {
                    let old = match &codec {
                        Some(cd) => {
                            convert(
                                checker,
                                cd.clone(),
                                converters::Direction::Encode,
                                old.clone(),
                            )
                            .await?
                        }
                        None => old.clone(),
                    };
                    m.push("prev", old);
                }
            }
            push_entry(&mut m, None, Some(&c.event.chain), c.event.tock, nchain);
        }
    }
    Ok(m)
}

fn node_sets(store: &Store, pick: impl Fn(&distkv_tree::NodeState) -> RangeSet) -> Value {
    let core = store.lock();
    let mut m = MapBuilder::new();
    for (name, st) in core.tree.nodes() {
        let r = pick(st);
        if !r.is_empty() {
            m.push(name, ranges_to_value(&r));
        }
    }
    m.build()
}

fn get_state(shared: &Shared, f: &StateFlags) -> MapBuilder {
    let store = &shared.store;
    let mut m = MapBuilder::new();
    if f.nodes {
        let core = store.lock();
        let mut n = MapBuilder::new();
        for (name, st) in core.tree.nodes() {
            n.push(name, st.tick.map_or(Value::Nil, Value::from_u64));
        }
        m.push("nodes", n.build());
    }
    if f.known || f.superseded {
        m.push("known", node_sets(store, |s| s.known.clone()));
    }
    if f.deleted {
        m.push("deleted", node_sets(store, |s| s.deleted.clone()));
    }
    if f.missing {
        m.push("missing", node_sets(store, |s| s.missing()));
    }
    if f.remote_missing {
        m.push("remote_missing", node_sets(store, |s| s.reported.clone()));
    }
    if f.node_drop {
        let core = store.lock();
        let names = core.tree.dropped().map(|n| Value::from(&**n)).collect();
        m.push("node_drop", Value::Array(names));
    }
    if f.stats {
        use std::sync::atomic::Ordering::Relaxed;
        let st = &store.stats;
        let core = store.lock();
        m.push(
            "stats",
            MapBuilder::new()
                .set("gossip_updates", st.gossip_updates.load(Relaxed))
                .set("pulled", st.pulled.load(Relaxed))
                .set("not_broadcast", st.not_broadcast.load(Relaxed))
                .set("broadcast", st.broadcast.load(Relaxed))
                .set("pull_rounds", st.pull_rounds.load(Relaxed))
                .set("gossip_rejected", st.gossip_rejected.load(Relaxed))
                .set("entries", core.tree.len())
                .set("watchers", core.watchers.len())
                .set("connections", shared.service.metrics.connections())
                .set("backend", shared.network.gossip().kind())
                .set(
                    "state_log",
                    core.log.path().map_or(Value::Nil, |p| {
                        Value::from(p.display().to_string().as_str())
                    }),
                )
                .set("ready", core.tree.own_tick().is_some())
                .build(),
        );
    }
    m.push("node", shared.service.name.as_str());
    m
}

/// The codec that converts values at `path` for `user`, if any.
pub fn converter(tree: &distkv_tree::Tree, user: &User, path: &Path) -> Option<Value> {
    let group = user.conv.as_deref()?;
    if crate::service::login::is_system(path) {
        return None;
    }
    converters::codec_for(tree, group, path)
}

/// Runs a codec on the blocking pool.
pub async fn convert(
    checker: &Arc<Checker>,
    codec: Value,
    dir: converters::Direction,
    v: Value,
) -> Result<Value, ActionError> {
    let checker = checker.clone();
    blocking(move || converters::convert(&checker, &codec, dir, &v).map_err(ActionError)).await
}

/// Checks a value about to be written: user data against the type its
/// path matches, type and match records for consistency.
async fn check_type(
    store: &Store,
    checker: &Arc<Checker>,
    path: &Path,
    value: &Value,
) -> Result<(), ActionError> {
    use crate::validate::type_check::{
        SystemEntry, elems_of, matched_type, system_entry, system_record_exists, type_chain,
        type_path_of,
    };
    enum Job {
        Value(crate::validate::type_check::TypeChain),
        Type(crate::validate::type_check::TypeChain),
        Codec,
    }
    let job = {
        let core = store.lock();
        let tree = &core.tree;
        if path.elems().first() != Some(&distkv_tree::PathElem::Nil) {
            match matched_type(tree, path) {
                Some(chain) => Job::Value(chain),
                None => return Ok(()),
            }
        } else {
            match system_entry(path) {
                SystemEntry::Type(tp) => {
                    let supers = &tp[..tp.len() - 1];
                    Job::Type(type_chain(tree, supers).unwrap_or_default())
                }
                SystemEntry::Match => {
                    let exists = type_path_of(value)
                        .is_some_and(|tp| system_record_exists(tree, "type", tp));
                    return if exists {
                        Ok(())
                    } else {
                        Err(ActionError("This type does not exist".into()))
                    };
                }
                SystemEntry::Codec => Job::Codec,
                SystemEntry::Conv => {
                    let exists = value
                        .get("codec")
                        .and_then(elems_of)
                        .is_some_and(|cp| system_record_exists(tree, "codec", cp));
                    return if exists {
                        Ok(())
                    } else {
                        Err(ActionError("This codec does not exist".into()))
                    };
                }
                SystemEntry::Other => return Ok(()),
            }
        }
    };
    let checker = checker.clone();
    let (path, value) = (path.clone(), value.clone());
    blocking(move || {
        match job {
            Job::Value(chain) => checker.check(&chain, &value),
            Job::Type(chain) => checker.validate_type(&path, &chain, &value),
            Job::Codec => converters::validate(&checker, &value),
        }
        .map_err(ActionError)
    })
    .await
}

#[cfg(test)]
mod tests {
    use distkv_proto::request::{ChainCheck, parse_request};
    use distkv_proto::value_map::MapBuilder;

    use super::*;

    /// A server's state without listeners or transport.
    fn shared() -> Arc<Shared> {
        let sh = Shared::new(
            &crate::ServerConfig::new("one"),
            Arc::new(distkv_proto::transport::local::LocalGossip::default()),
            None,
        );
        sh.store.lock().tree.mark_ready();
        Arc::new(sh)
    }

    /// Parses a request as the connection does, then runs it.
    async fn request(sh: &Arc<Shared>, m: MapBuilder) -> Result<Outcome, ActionError> {
        let req = parse_request(m.set("seq", 1).build()).expect("a valid request");
        run(sh, req.action, &User::superuser()).await
    }

    fn reply(o: Outcome) -> Value {
        match o {
            Outcome::Reply(m) => m.build(),
            Outcome::Stream(_) => panic!("a single reply"),
        }
    }

    fn at(words: &[&str]) -> Value {
        Path::from_strs(words).to_value()
    }

    /// The single reply to `action` at `words`.
    async fn ask(sh: &Arc<Shared>, action: &str, words: &[&str]) -> Value {
        let m = MapBuilder::new()
            .set("action", action)
            .set("path", at(words));
        reply(request(sh, m).await.expect(action))
    }

    #[tokio::test]
    async fn set_get_enumerate_and_delete_without_a_process() {
        let sh = shared();
        let set = |w: &[&str], v: i64| {
            MapBuilder::new()
                .set("action", "set_value")
                .set("path", at(w))
                .set("value", v)
        };
        request(&sh, set(&["a", "b"], 1)).await.expect("set");
        request(&sh, set(&["a", "c"], 2)).await.expect("set");
        let got = ask(&sh, "get_value", &["a", "b"]).await;
        assert_eq!(got.get("value"), Some(&Value::Int(1)));
        let names = ask(&sh, "enumerate", &["a"]).await;
        assert_eq!(
            names.get("result"),
            Some(&Value::Array(
                vec![Value::from("b"), Value::from("c")].into()
            ))
        );
        // a precondition that does not hold is refused, nothing changes
        let stale = set(&["a", "b"], 9).set("prev", 7);
        assert!(request(&sh, stale).await.is_err());
        let gone = ask(&sh, "delete_tree", &["a"]).await;
        assert_eq!(gone.get("changed"), Some(&Value::Int(2)));
        assert!(
            sh.store
                .lock()
                .tree
                .get(&Path::from_strs(&["a", "b"]))
                .and_then(|e| e.data().cloned())
                .is_none()
        );
    }

    #[tokio::test]
    async fn enum_node_and_kill_node() {
        let sh = shared();
        let from_two = |key: &str, tick: u64| distkv_tree::UpdateEvent {
            path: Path::from_strs(&["k", key]),
            chain: distkv_tree::Chain::single(NodeEvent::new("two", tick)),
            value: Some(Value::Int(tick as i64)),
            tock: 100 + tick,
        };
        sh.store.apply_remote(&from_two("x", 1));
        sh.store.apply_remote(&from_two("y", 2));
        let enum_node = |current: bool| {
            MapBuilder::new()
                .set("action", "enum_node")
                .set("node", "two")
                .set("current", current)
        };
        let ticks = reply(request(&sh, enum_node(false)).await.expect("enum"));
        let both = Value::Array(vec![Value::Int(1), Value::Int(2)].into());
        assert_eq!(ticks.get("result"), Some(&both));
        let kill = || {
            MapBuilder::new()
                .set("action", "kill_node")
                .set("node", "two")
        };
        let refused = request(&sh, kill()).await.err().expect("refused");
        assert!(refused.0.contains("Node two has entry 1"), "{}", refused.0);
        let own = MapBuilder::new()
            .set("action", "kill_node")
            .set("node", "one");
        assert!(request(&sh, own).await.is_err());
        // this server overwrites both: two's changes stay in the chains
        for key in ["x", "y"] {
            let set = MapBuilder::new()
                .set("action", "set_value")
                .set("path", at(&["k", key]))
                .set("value", 0);
            request(&sh, set).await.expect("set");
        }
        let ticks = reply(request(&sh, enum_node(true)).await.expect("enum"));
        assert_eq!(ticks.get("result"), Some(&Value::Array(Default::default())));
        let done = reply(request(&sh, kill()).await.expect("killed"));
        assert_eq!(done.get("filtered"), Some(&Value::Int(2)));
        assert_eq!(done.get("tick"), Some(&Value::Int(2)));
        assert!(sh.store.lock().tree.node("two").is_none());
        let state = MapBuilder::new()
            .set("action", "get_state")
            .set("node_drop", true);
        let state = reply(request(&sh, state).await.expect("state"));
        let dropped = Value::Array(vec![Value::from("two")].into());
        assert_eq!(state.get("node_drop"), Some(&dropped));
        let ticks = reply(request(&sh, enum_node(false)).await.expect("enum"));
        assert_eq!(ticks.get("result"), Some(&Value::Array(Default::default())));
    }

    #[tokio::test]
    async fn null_path_elements_and_unknown_actions_are_refused() {
        let sh = shared();
        let bad_path = Value::Array(vec![Value::from("a"), Value::Nil].into());
        let r = request(
            &sh,
            MapBuilder::new()
                .set("action", "get_value")
                .set("path", bad_path),
        )
        .await;
        assert!(matches!(r, Err(ActionError(t)) if t.contains("Null path element")));
        let r = request(&sh, MapBuilder::new().set("action", "frobnicate")).await;
        assert!(matches!(r, Err(ActionError(t)) if t.contains("Unknown action")),);
        // the new-entry precondition parses into the shared request type
        let req = parse_request(
            MapBuilder::new()
                .set("action", "set_value")
                .set("path", at(&["n"]))
                .set("value", 1)
                .set("chain", Value::Nil)
                .set("seq", 2)
                .build(),
        )
        .expect("valid");
        assert!(matches!(
            req.action,
            Action::SetValue(SetValue {
                chain: Some(ChainCheck::New),
                ..
            })
        ));
    }
}
