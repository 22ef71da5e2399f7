//! Client requests: parsing a received map into a typed [`Request`]
//! ([`parse_request`]), and writing one as the map the parser reads
//! ([`Request::to_value`], [`Action::to_map`]).

use distkv_tree::{NodeEvent, Path, Value};

use crate::value_map::MapExt;
use crate::wire::WireError;

mod encode;
mod parse;

/// Precondition on the current chain of an entry, as a client sends it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChainCheck {
    /// `chain: null`: the entry must not have data.
    New,
    /// `chain: {node, tick}`: the entry's chain head must be this.
    Head(NodeEvent),
}

/// Options of a tree walk (`get_tree`, `watch`).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct WalkParams {
    /// Chain links per entry (0 = none, negative = all).
    pub nchain: i64,
    /// Skip entries less deep than this.
    pub min_depth: usize,
    /// Do not descend deeper than this (`None` = unlimited).
    pub max_depth: Option<usize>,
    /// Also report entries without data.
    pub empty: bool,
}

/// Which sets `get_state` returns.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct StateFlags {
    /// Each node's last tick.
    pub nodes: bool,
    /// The ticks seen, per node.
    pub known: bool,
    /// The original's superseded ticks (answered with `known`).
    pub superseded: bool,
    /// The ticks of deletions, per node.
    pub deleted: bool,
    /// The ticks missing here, per node.
    pub missing: bool,
    /// The ticks other servers reported missing, per node.
    pub remote_missing: bool,
    /// This server's counters.
    pub stats: bool,
    /// The nodes retired with `kill_node` (the original's `node_drop`).
    pub node_drop: bool,
}

/// `set_value` / `delete_value`: write (or, with `value: None`, delete)
/// one entry.
#[derive(Clone, Debug, PartialEq)]
pub struct SetValue {
    /// Where.
    pub path: Path,
    /// The new value; `None` deletes.
    pub value: Option<Value>,
    /// Chain precondition.
    pub chain: Option<ChainCheck>,
    /// Previous-value precondition.
    pub prev: Option<Value>,
    /// Chain links wanted in the reply.
    pub nchain: i64,
    /// Do nothing if the value is unchanged.
    pub idem: bool,
}

impl SetValue {
    /// A plain write of `value` at `path` (or, with `None`, a delete):
    /// no precondition, the reply's chain one link long.
    pub fn new(path: Path, value: Option<Value>) -> SetValue {
        SetValue {
            path,
            value,
            chain: None,
            prev: None,
            nchain: 1,
            idem: false,
        }
    }
}

/// A parsed client action.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Read one entry.
    GetValue {
        /// Where.
        path: Path,
        /// Chain links wanted.
        nchain: i64,
    },
    /// Read the entry whose chain holds `event`.
    GetByEvent {
        /// The change to look for.
        event: NodeEvent,
        /// Chain links wanted.
        nchain: i64,
    },
    /// Write (or, with `value: None`, delete) one entry.
    SetValue(SetValue),
    /// Delete every value below (and at) `path`.
    DeleteTree {
        /// Where.
        path: Path,
        /// Chain links per deleted entry; non-zero streams the deletions.
        nchain: i64,
    },
    /// Stream the subtree.
    GetTree {
        /// Where.
        path: Path,
        /// Walk options.
        walk: WalkParams,
    },
    /// Child names with data.
    Enumerate {
        /// Where.
        path: Path,
        /// Also names without data.
        empty: bool,
    },
    /// Stream changes below `path`.
    Watch {
        /// Where.
        path: Path,
        /// Send the current subtree first.
        fetch: bool,
        /// Walk options.
        walk: WalkParams,
    },
    /// Tick bookkeeping.
    GetState(StateFlags),
    /// A fresh tock.
    GetTock,
    /// Cancel the request with seq `task`.
    Stop {
        /// The seq to cancel.
        task: u64,
    },
    /// Broadcast a message to every server's monitors (`serfsend` /
    /// `msg_send`).
    MsgSend {
        /// The event name.
        topic: String,
        /// The payload: a value (msgpack-encoded) or raw bytes.
        payload: MsgPayload,
    },
    /// Stream the messages sent to a topic (`serfmon` / `msg_monitor`).
    MsgMonitor {
        /// The event name.
        topic: String,
        /// Deliver the raw bytes instead of decoding them.
        raw: bool,
        /// The reply field naming the topic: `type` (a) or `topic` (b).
        field: &'static str,
    },
    /// Server to server: the entries holding these ticks, and which of the
    /// others are superseded or deleted (a distkv-rs extension used to
    /// repair lost updates in bulk).
    FetchTicks {
        /// Per node, the ticks wanted.
        nodes: Vec<(String, distkv_tree::RangeSet)>,
    },
    /// `fake_info` / `fake_info_send`: repair the tick bookkeeping by
    /// counting these ticks of these nodes as known (superseded, nothing
    /// to fetch) or as deletions, on this server or (`send`) on every
    /// server. Super-root users only.
    FakeInfo {
        /// Deletions (`deleted`) rather than known ticks (`known`).
        deleted: bool,
        /// Per node, the ticks.
        nodes: Vec<(String, distkv_tree::RangeSet)>,
        /// Broadcast to every server (`fake_info_send`).
        send: bool,
    },
    /// `check_deleted`: which of these ticks were deletions here; they are
    /// also broadcast (as an `info` message's `deleted`), so that servers
    /// still holding what was deleted learn it. Super-root users only.
    CheckDeleted {
        /// Per node, the ticks to check.
        nodes: Vec<(String, distkv_tree::RangeSet)>,
    },
    /// `enum_node`: the ticks of `node` whose changes are still in some
    /// entry's chain (tombstones included), ascending; with `current`
    /// only those of entries whose last change is `node`'s. Super-root
    /// users only.
    EnumNode {
        /// The node.
        node: String,
        /// At most this many ticks (0: all).
        max: u64,
        /// Only entries last changed by `node`.
        current: bool,
    },
    /// `kill_node`: retire a node that is gone for good: its links are
    /// filtered out of every chain and its tick bookkeeping is dropped,
    /// here and (through an `info` message's `node_drop`) on every
    /// server. Refused while an entry's last change is the node's.
    /// Super-root users only.
    KillNode {
        /// The node.
        node: String,
    },
    /// `root`: from now on, this connection's data actions take their
    /// paths relative to `path` (itself relative to the current root).
    Root {
        /// The new root, below the current one.
        path: Path,
    },
    /// Start a state log at `path` (a full dump first with `fetch`), or
    /// stop logging (`path: None`).
    Log {
        /// The file on the server.
        path: Option<String>,
        /// Write a full dump first.
        fetch: bool,
    },
    /// Write a one-shot full dump to `path` on the server.
    Save {
        /// The file on the server.
        path: String,
    },
    /// Authentication: key exchange, login, user management.
    Auth(AuthAction),
    /// `test_acl`: what the caller's ACL, or ACL `acl`, grants at `path`.
    TestAcl {
        /// The path.
        path: Path,
        /// The flag letter to check (default `x`).
        mode: char,
        /// Test this ACL instead of the caller's own.
        acl: Option<String>,
    },
    /// An action this server does not know (or does not implement yet).
    Unknown(String),
}

impl Action {
    /// The action's wire name (`get_value`, `set_value`, …), for metrics
    /// and logs; `unknown` for an action this server does not know.
    pub fn name(&self) -> &'static str {
        match self {
            Action::GetValue { .. } => "get_value",
            Action::GetByEvent { .. } => "get_value",
            Action::SetValue(_) => "set_value",
            Action::DeleteTree { .. } => "delete_tree",
            Action::GetTree { .. } => "get_tree",
            Action::Enumerate { .. } => "enumerate",
            Action::Watch { .. } => "watch",
            Action::GetState(_) => "get_state",
            Action::GetTock => "get_tock",
            Action::Stop { .. } => "stop",
            Action::MsgSend { .. } => "msg_send",
            Action::MsgMonitor { .. } => "msg_monitor",
            Action::FetchTicks { .. } => "fetch_ticks",
            Action::FakeInfo { send: false, .. } => "fake_info",
            Action::FakeInfo { send: true, .. } => "fake_info_send",
            Action::CheckDeleted { .. } => "check_deleted",
            Action::EnumNode { .. } => "enum_node",
            Action::KillNode { .. } => "kill_node",
            Action::Root { .. } => "root",
            Action::Log { .. } => "log",
            Action::Save { .. } => "save",
            Action::Auth(_) => "auth",
            Action::TestAcl { .. } => "test_acl",
            Action::Unknown(_) => "unknown",
        }
    }
}

/// The auth actions (auth-acl.md §3; secrets are sealed, see
/// `distkv-auth`).
#[derive(Clone, Debug, PartialEq)]
pub enum AuthAction {
    /// `key_exchange`: the client's ephemeral X25519 public key.
    KeyExchange {
        /// 32 bytes.
        pubkey: Vec<u8>,
    },
    /// `auth`: log in with method `typ`; `request` holds `ident`, `data`
    /// and `secrets`.
    Login {
        /// The method.
        typ: String,
        /// The rest of the request.
        request: Value,
    },
    /// `auth_set`: create (`new`) or modify a user.
    SetUser {
        /// The method.
        typ: String,
        /// The rest of the request (`ident`, `data`, `secrets`, `aux`).
        request: Value,
        /// Create a user (fails if it exists) rather than modify one.
        new: bool,
    },
    /// `auth_list`: the users of a method, or one of them.
    ListUsers {
        /// The method.
        typ: String,
        /// Just this user.
        ident: Option<String>,
    },
    /// `auth_get`: what is known of one user.
    GetUser {
        /// The method.
        typ: String,
        /// The user.
        ident: String,
    },
    /// `set_auth_typ`: switch the active method (`None`: auth off).
    SetMethod {
        /// The method.
        typ: Option<String>,
    },
}

/// What a client broadcasts with `msg_send`.
#[derive(Clone, Debug, PartialEq)]
pub enum MsgPayload {
    /// Any value, sent msgpack-encoded.
    Data(Value),
    /// Bytes, sent as they are.
    Raw(Vec<u8>),
}

/// A parsed request.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    /// The request number.
    pub seq: u64,
    /// What to do.
    pub action: Action,
    /// The message carried `state: "start"` (client-streaming form).
    pub streaming: bool,
    /// An `*_internal` action: its path is relative to the system subtree
    /// (already prefixed with `None`).
    pub internal: bool,
}

/// A request that could not be parsed. `seq` is set when it could be read,
/// so that the error can be answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error}")]
pub struct RequestError {
    /// The request number, if readable.
    pub seq: Option<u64>,
    /// What is wrong.
    pub error: RequestErrorKind,
}

/// What is wrong with a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestErrorKind {
    /// Not a map.
    #[error("a request must be a map")]
    NotAMap,
    /// No usable `seq`.
    #[error("a request needs a positive integer 'seq'")]
    NoSeq,
    /// A message without `action` that continues no stream.
    #[error("no action given")]
    NoAction,
    /// A field is missing or malformed.
    #[error(transparent)]
    Field(#[from] WireError),
    /// `set_value` without a value.
    #[error("Call 'delete_value' if you want to clear the value")]
    NoValue,
    /// `delete_value` with a value.
    #[error("A deleted entry can't have a value")]
    ValueOnDelete,
    /// A message topic in the servers' own namespace.
    #[error("Types may not start with a colon")]
    ColonTopic,
}

/// The action name without its `_internal` suffix, for an `*_internal`
/// action.
fn internal_suffix(name: &str) -> Option<&str> {
    name.strip_suffix("_internal")
}

/// Parses a received message into a request.
pub fn parse_request(mut m: Value) -> Result<Request, RequestError> {
    if !matches!(m, Value::Map(_)) {
        return Err(RequestError {
            seq: None,
            error: RequestErrorKind::NotAMap,
        });
    }
    let seq = match m.field("seq").and_then(Value::as_u64) {
        Some(s) if s > 0 => s,
        _ => {
            return Err(RequestError {
                seq: None,
                error: RequestErrorKind::NoSeq,
            });
        }
    };
    let err = |error: RequestErrorKind| RequestError {
        seq: Some(seq),
        error,
    };
    let streaming = m.field("state").and_then(Value::as_str) == Some("start");
    let name = match m.take_field("action") {
        Some(Value::Str(a)) => a,
        _ => return Err(err(RequestErrorKind::NoAction)),
    };
    let action = parse::parse_action(&name, &mut m).map_err(err)?;
    Ok(Request {
        seq,
        action,
        streaming,
        internal: internal_suffix(&name).is_some(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value_map::MapBuilder;
    use distkv_tree::PathElem;

    fn req(m: MapBuilder) -> Result<Request, RequestError> {
        parse_request(m.build())
    }

    #[test]
    fn set_value_defaults_and_preconditions() {
        let r = req(MapBuilder::new()
            .set("seq", 2)
            .set("action", "set_value")
            .set("path", Path::from_strs(&["test"]).to_value())
            .set("value", 1234)
            .set("chain", Value::Nil))
        .expect("parses");
        assert_eq!(r.seq, 2);
        match r.action {
            Action::SetValue(SetValue {
                value,
                chain,
                nchain,
                ..
            }) => {
                assert_eq!(value, Some(Value::Int(1234)));
                assert_eq!(chain, Some(ChainCheck::New));
                assert_eq!(nchain, 1);
            }
            other => panic!("wrong action {other:?}"),
        }
    }

    #[test]
    fn errors_carry_seq() {
        let e =
            req(MapBuilder::new().set("seq", 3).set("action", "set_value")).expect_err("no value");
        assert_eq!(e.seq, Some(3));
        assert_eq!(
            e.to_string(),
            "Call 'delete_value' if you want to clear the value"
        );
        let e = req(MapBuilder::new()
            .set("seq", 4)
            .set("action", "delete_value")
            .set("value", 1))
        .expect_err("value on delete");
        assert_eq!(e.to_string(), "A deleted entry can't have a value");
        assert_eq!(
            parse_request(Value::Int(3)).expect_err("not a map").seq,
            None
        );
        assert_eq!(
            req(MapBuilder::new().set("action", "get_value"))
                .expect_err("no seq")
                .error,
            RequestErrorKind::NoSeq
        );
        let e = req(MapBuilder::new()
            .set("seq", 5)
            .set("action", "get_value")
            .set("path", Value::Array(vec![Value::Map(vec![])])))
        .expect_err("bad path");
        assert_eq!(e.seq, Some(5));
    }

    #[test]
    fn node_actions_read_the_originals_fields() {
        // `internal enum` without -n sends `max: None`
        let r = req(MapBuilder::new()
            .set("seq", 1)
            .set("action", "enum_node")
            .set("node", "one")
            .set("max", Value::Nil)
            .set("current", false))
        .expect("parses");
        assert_eq!(
            r.action,
            Action::EnumNode {
                node: "one".into(),
                max: 0,
                current: false
            }
        );
        let e =
            req(MapBuilder::new().set("seq", 2).set("action", "kill_node")).expect_err("no node");
        assert_eq!(e.seq, Some(2));
        let e = req(MapBuilder::new()
            .set("seq", 3)
            .set("action", "enum_node")
            .set("node", "one")
            .set("max", -1))
        .expect_err("negative max");
        assert_eq!(e.seq, Some(3));
        let r = req(MapBuilder::new().set("seq", 4).set("action", "root")).expect("parses");
        assert_eq!(r.action, Action::Root { path: Path::root() });
    }

    #[test]
    fn internal_actions_prefix_none() {
        let r = req(MapBuilder::new()
            .set("seq", 1)
            .set("action", "get_internal")
            .set("path", Path::from_strs(&["auth"]).to_value()))
        .expect("parses");
        assert_eq!(
            r.action,
            Action::GetValue {
                path: Path(vec![PathElem::Nil, PathElem::Str("auth".into())]),
                nchain: 0
            }
        );
        let r = req(MapBuilder::new().set("seq", 1).set("action", "frobnicate")).expect("parses");
        assert_eq!(r.action, Action::Unknown("frobnicate".into()));
    }
}
