//! Typed replies and request options.

use std::collections::BTreeMap;

use distkv_proto::wire::{chain_from_value, ranges_from_value};
use distkv_tree::{Chain, NodeEvent, NodeName, Path, RangeSet, Value};

use crate::error::ClientError;

pub(crate) fn chain_of(v: &Value) -> Result<Option<Chain>, ClientError> {
    match v.get("chain") {
        None | Some(Value::Nil) => Ok(None),
        Some(c) => chain_from_value(c, &|n| NodeName::from(n))
            .map(Some)
            .map_err(|e| ClientError::Protocol(e.to_string())),
    }
}

pub(crate) fn tock_of(v: &Value) -> u64 {
    v.get("tock").and_then(Value::as_u64).unwrap_or(0)
}

/// The server's greeting (parsed by `distkv-connect`).
pub use distkv_connect::Greeting;

/// One entry as the server shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct EntryReply {
    /// The value; `None` if the entry has none (or does not exist).
    pub value: Option<Value>,
    /// The chain, if requested and present.
    pub chain: Option<Chain>,
    /// The tock of the entry's last change (or a fresh tock if missing).
    pub tock: u64,
    /// The reply as the server sent it (`seq` included), for showing it.
    pub raw: Value,
}

impl EntryReply {
    pub(crate) fn from_reply(v: Value) -> Result<EntryReply, ClientError> {
        Ok(EntryReply {
            value: v.get("value").cloned(),
            chain: chain_of(&v)?,
            tock: tock_of(&v),
            raw: v,
        })
    }
}

/// The answer to a write or delete.
#[derive(Clone, Debug, PartialEq)]
pub struct WriteReply {
    /// Whether the value changed.
    pub changed: bool,
    /// The previous value (only without preconditions).
    pub prev: Option<Value>,
    /// The entry's new chain (if requested).
    pub chain: Option<Chain>,
    /// The tock of the change.
    pub tock: u64,
    /// The reply as the server sent it (`seq` included), for showing it.
    pub raw: Value,
}

impl WriteReply {
    pub(crate) fn from_reply(v: Value) -> Result<WriteReply, ClientError> {
        Ok(WriteReply {
            changed: v.get("changed").and_then(Value::as_bool).unwrap_or(false),
            prev: v.get("prev").cloned(),
            chain: chain_of(&v)?,
            tock: tock_of(&v),
            raw: v,
        })
    }
}

/// Preconditions and options of a write.
#[derive(Clone, Debug, Default)]
pub struct WriteOptions {
    /// `Some(None)`: the entry must be new. `Some(Some(ev))`: its chain
    /// head must be `ev`.
    pub chain: Option<Option<NodeEvent>>,
    /// The current value must equal this.
    pub prev: Option<Value>,
    /// Chain links wanted in the reply (the server's default is 1).
    pub nchain: Option<i64>,
    /// Skip the write if the value is unchanged.
    pub idem: bool,
}

/// Options of `get_tree` and `watch`.
#[derive(Clone, Debug, Default)]
pub struct TreeOptions {
    /// Chain links per entry.
    pub nchain: i64,
    /// Skip entries less deep than this.
    pub min_depth: Option<usize>,
    /// Do not go deeper than this.
    pub max_depth: Option<usize>,
    /// Also entries without data.
    pub empty: bool,
}

/// One entry of a `get_tree` or `watch` stream, with its full path.
#[derive(Clone, Debug, PartialEq)]
pub struct TreeItem {
    /// The full path (the request's path plus the relative one).
    pub path: Path,
    /// The value (`None`: deleted, or no data).
    pub value: Option<Value>,
    /// The chain, if requested.
    pub chain: Option<Chain>,
    /// The tock of the entry's last change.
    pub tock: u64,
    /// The whole message as received (minus `seq`), for verbose output.
    pub raw: Value,
}

/// A message of a watch stream.
#[derive(Clone, Debug, PartialEq)]
pub enum WatchItem {
    /// An entry (from the initial dump or a change).
    Entry(TreeItem),
    /// The initial dump is complete.
    UpToDate,
}

/// What `get_state` returned.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StateReply {
    /// The server's name.
    pub node: String,
    /// Every known node and its tick.
    pub nodes: BTreeMap<String, Option<u64>>,
    /// Seen ticks per node.
    pub known: BTreeMap<String, RangeSet>,
    /// Deleted (not purged) ticks per node.
    pub deleted: BTreeMap<String, RangeSet>,
    /// Ticks never seen per node.
    pub missing: BTreeMap<String, RangeSet>,
    /// Ticks others reported missing.
    pub remote_missing: BTreeMap<String, RangeSet>,
    /// The nodes retired with `kill_node` (asked for with `node_drop`).
    pub node_drop: Vec<String>,
    /// The whole reply.
    pub raw: Value,
}

/// The answer to `kill_node`.
#[derive(Clone, Debug, PartialEq)]
pub struct KillReply {
    /// Entries whose chains lost the node's link.
    pub filtered: u64,
    /// The node's last tick as this server knew it.
    pub tick: Option<u64>,
    /// The node's ticks this server had seen.
    pub known: RangeSet,
    /// Whether the other servers were told.
    pub sent: bool,
    /// The reply as the server sent it, for showing it.
    pub raw: Value,
}

impl KillReply {
    pub(crate) fn from_reply(v: Value) -> Result<KillReply, ClientError> {
        let known = match v.get("known") {
            None | Some(Value::Nil) => RangeSet::new(),
            Some(r) => ranges_from_value(r).map_err(|e| ClientError::Protocol(e.to_string()))?,
        };
        Ok(KillReply {
            filtered: v.get("filtered").and_then(Value::as_u64).unwrap_or(0),
            tick: v.get("tick").and_then(Value::as_u64),
            known,
            sent: v.get("sent").and_then(Value::as_bool).unwrap_or(false),
            raw: v,
        })
    }
}

pub(crate) fn node_sets(v: Option<&Value>) -> Result<BTreeMap<String, RangeSet>, ClientError> {
    let mut out = BTreeMap::new();
    for (k, r) in v.and_then(Value::as_map).unwrap_or(&[]) {
        let name = k
            .as_str()
            .ok_or_else(|| ClientError::Protocol("node name".into()))?;
        let set = ranges_from_value(r).map_err(|e| ClientError::Protocol(e.to_string()))?;
        out.insert(name.to_owned(), set);
    }
    Ok(out)
}

impl StateReply {
    pub(crate) fn from_reply(v: Value) -> Result<StateReply, ClientError> {
        let mut nodes = BTreeMap::new();
        for (k, t) in v.get("nodes").and_then(Value::as_map).unwrap_or(&[]) {
            if let Some(name) = k.as_str() {
                nodes.insert(name.to_owned(), t.as_u64());
            }
        }
        Ok(StateReply {
            node: v
                .get("node")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
            nodes,
            known: node_sets(v.get("known"))?,
            deleted: node_sets(v.get("deleted"))?,
            missing: node_sets(v.get("missing"))?,
            remote_missing: node_sets(v.get("remote_missing"))?,
            node_drop: v
                .get("node_drop")
                .and_then(Value::as_array)
                .unwrap_or(&[])
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            raw: v,
        })
    }
}
