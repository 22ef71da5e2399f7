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

/// Reads the request at the start of `buf` straight from its bytes, for
/// the common plain forms: `get_value` and `set_value` with `seq`, `path`,
/// `value` and `nchain` only, each at most once. Returns the request and
/// the bytes it took, or `None` for anything else (another action or
/// field, a field of another type, bytes that are not a whole frame):
/// then decoding the message ([`crate::msgpack::decode`]) and
/// [`parse_request`] give the answer, which for any request this reads is
/// the same.
pub fn parse_request_bytes(buf: &[u8], max_depth: usize) -> Option<(Request, usize)> {
    use crate::msgpack::{Item, Pull};
    if max_depth < 2 {
        return None;
    }
    let mut p = Pull::new(buf);
    let Ok(Item::Map(n)) = p.item() else {
        return None;
    };
    let (mut seq, mut get, mut path, mut value, mut nchain) = (None, None, None, None, None);
    for _ in 0..n {
        let Ok(Item::Str(key)) = p.item() else {
            return None;
        };
        match key {
            "seq" if seq.is_none() => match p.item() {
                Ok(Item::Scalar(v)) => seq = Some(v.as_u64().filter(|&s| s > 0)?),
                _ => return None,
            },
            "action" if get.is_none() => match p.item() {
                Ok(Item::Str("get_value")) => get = Some(true),
                Ok(Item::Str("set_value")) => get = Some(false),
                _ => return None,
            },
            "path" if path.is_none() => path = Some(crate::wire::pull_path(&mut p)?),
            "value" if value.is_none() => value = Some(p.value(max_depth - 1).ok()?),
            "nchain" if nchain.is_none() => match p.item() {
                Ok(Item::Scalar(Value::Int(i))) => nchain = Some(i),
                _ => return None,
            },
            _ => return None,
        }
    }
    let used = buf.len() - p.rest_len();
    let path = path.unwrap_or_default();
    let action = match get? {
        // a get with a value is the general parser's to judge
        true if value.is_none() => Action::GetValue {
            path,
            nchain: nchain.unwrap_or(0),
        },
        true => return None,
        false => Action::SetValue(SetValue {
            path,
            value: Some(value?),
            chain: None,
            prev: None,
            nchain: nchain.unwrap_or(1),
            idem: false,
        }),
    };
    Some((
        Request {
            seq: seq?,
            action,
            streaming: false,
            internal: false,
        },
        used,
    ))
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
            .set(
                "path",
                Value::Array(vec![Value::Map(Default::default())].into()),
            ))
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

    #[test]
    fn the_common_requests_are_read_straight_from_their_bytes() {
        use crate::msgpack;
        let path = Path::from_strs(&["load", "12"]);
        for action in [
            Action::SetValue(SetValue::new(path.clone(), Some(Value::from("x")))),
            Action::GetValue {
                path: path.clone(),
                nchain: 0,
            },
            Action::GetValue { path, nchain: 2 },
        ] {
            let bytes = msgpack::to_vec(&action.to_map().set("seq", 7).build());
            let (fast, used) = parse_request_bytes(&bytes, 64).expect("the fast path reads it");
            assert_eq!(used, bytes.len());
            let (v, _) = msgpack::decode_first(&bytes, 64).expect("msgpack");
            assert_eq!(Ok(fast.clone()), parse_request(v));
            assert_eq!(fast.seq, 7);
            assert_eq!(fast.action, action);
        }
        // anything else is left to the general parser
        let chained = MapBuilder::new()
            .set("seq", 1)
            .set("action", "set_value")
            .set("value", 1)
            .set("chain", Value::Nil)
            .build();
        assert!(parse_request_bytes(&msgpack::to_vec(&chained), 64).is_none());
        // a frame that is not all there
        let whole = msgpack::to_vec(
            &MapBuilder::new()
                .set("seq", 1)
                .set("action", "get_value")
                .build(),
        );
        assert!(parse_request_bytes(&whole[..whole.len() - 1], 64).is_none());
    }

    mod fast_path {
        use super::*;
        use crate::msgpack;
        use proptest::prelude::*;

        fn scalar() -> impl Strategy<Value = Value> {
            prop_oneof![
                Just(Value::Nil),
                any::<bool>().prop_map(Value::Bool),
                (-3i64..5).prop_map(Value::Int),
                Just(Value::UInt(u64::MAX)),
                Just(Value::Float(1.5)),
                "[a-z_]{0,10}".prop_map(|s| Value::from(s.as_str())),
                proptest::collection::vec(any::<u8>(), 0..3).prop_map(|x| Value::Bytes(x.into())),
            ]
        }

        fn any_value() -> impl Strategy<Value = Value> {
            scalar().prop_recursive(3, 12, 3, |inner| {
                prop_oneof![
                    proptest::collection::vec(inner.clone(), 0..3)
                        .prop_map(|x| Value::Array(x.into())),
                    proptest::collection::vec(("[a-z]{1,3}", inner), 0..3).prop_map(|kv| {
                        Value::Map(
                            kv.into_iter()
                                .map(|(k, v)| (Value::from(k.as_str()), v))
                                .collect(),
                        )
                    }),
                ]
            })
        }

        fn field() -> impl Strategy<Value = (Value, Value)> {
            let key = prop_oneof![
                Just("seq"),
                Just("action"),
                Just("path"),
                Just("value"),
                Just("nchain"),
                Just("chain"),
                Just("idem"),
                Just("state"),
                Just("node"),
                Just("other"),
            ];
            let action = prop_oneof![
                Just(Value::from("get_value")),
                Just(Value::from("set_value")),
                Just(Value::from("set")),
                Just(Value::from("get_value_internal")),
                scalar(),
            ];
            let path = prop_oneof![
                proptest::collection::vec(scalar(), 0..4).prop_map(|x| Value::Array(x.into())),
                any_value(),
            ];
            (key, action, path, any_value()).prop_map(|(k, action, path, other)| {
                let v = match k {
                    "action" => action,
                    "path" => path,
                    _ => other,
                };
                (Value::from(k), v)
            })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]

            #[test]
            fn the_fast_path_agrees_with_the_general_one(
                fields in proptest::collection::vec(field(), 0..7),
                non_string_key in any::<bool>(),
                depth in 1usize..6,
                cut in any::<prop::sample::Index>(),
            ) {
                let mut fields = fields;
                if non_string_key {
                    fields.push((Value::Int(1), Value::Int(1)));
                }
                let bytes = msgpack::to_vec(&Value::Map(fields.into()));
                if let Some((fast, used)) = parse_request_bytes(&bytes, depth) {
                    prop_assert_eq!(used, bytes.len());
                    let (v, n) = msgpack::decode_first(&bytes, depth).expect("the general decoder reads it too");
                    prop_assert_eq!(n, bytes.len());
                    prop_assert_eq!(Ok(fast), parse_request(v));
                }
                // a cut frame is never read
                let short = cut.index(bytes.len().max(1));
                prop_assert!(short >= bytes.len() || parse_request_bytes(&bytes[..short], depth).is_none());
            }
        }
    }
}
