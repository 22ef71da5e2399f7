//! Client requests: parsing a received map into a typed [`Request`].

use distkv_tree::{NodeEvent, Path, PathElem, Value};

use crate::value_map::MapExt;
use crate::wire::{WireError, event_from_value, path_from_value};

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
#[allow(missing_docs)]
pub struct StateFlags {
    pub nodes: bool,
    pub known: bool,
    pub superseded: bool,
    pub deleted: bool,
    pub missing: bool,
    pub remote_missing: bool,
    pub stats: bool,
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

/// The `*_internal` actions work below the system subtree (`None`).
fn internal(path: Path) -> Path {
    let mut v = Vec::with_capacity(path.len() + 1);
    v.push(PathElem::Nil);
    v.extend(path.0);
    Path(v)
}

fn path_field(m: &mut Value, required: bool) -> Result<Path, WireError> {
    match m.take_field("path") {
        Some(Value::Nil) if !required => Ok(Path::root()),
        Some(v) => path_from_value(v),
        None if required => Err(WireError::Missing("path")),
        None => Ok(Path::root()),
    }
}

fn int_field(m: &Value, key: &'static str, default: i64) -> Result<i64, WireError> {
    match m.field(key) {
        None | Some(Value::Nil) => Ok(default),
        Some(Value::Int(i)) => Ok(*i),
        Some(Value::Bool(b)) => Ok(i64::from(*b)),
        Some(_) => Err(WireError::Bad {
            field: key,
            why: "not an integer".into(),
        }),
    }
}

fn depth_field(m: &Value, key: &'static str) -> Result<Option<usize>, WireError> {
    let v = int_field(m, key, -1)?;
    Ok(usize::try_from(v).ok())
}

fn bool_field(m: &Value, key: &str) -> bool {
    match m.field(key) {
        Some(Value::Bool(b)) => *b,
        Some(Value::Int(i)) => *i != 0,
        _ => false,
    }
}

fn chain_check(m: &Value) -> Result<Option<ChainCheck>, WireError> {
    match m.field("chain") {
        None => Ok(None),
        Some(Value::Nil) => Ok(Some(ChainCheck::New)),
        Some(c) => Ok(Some(ChainCheck::Head(event_from_value(c)?))),
    }
}

/// The topic of `msg_send` / `msg_monitor`: `type` (a string) or `topic`
/// (a string, or a path whose elements are joined with `.`).
fn topic_field(m: &Value) -> Result<(String, &'static str), RequestErrorKind> {
    let (v, field) = match (m.field("topic"), m.field("type")) {
        (Some(t), _) => (t, "topic"),
        (None, Some(t)) => (t, "type"),
        (None, None) => return Err(WireError::Missing("type").into()),
    };
    let topic = match v {
        Value::Str(s) => s.to_string(),
        Value::Array(parts) => {
            let words: Option<Vec<&str>> = parts.iter().map(Value::as_str).collect();
            words
                .ok_or(WireError::Bad {
                    field: "topic",
                    why: "not a list of strings".into(),
                })?
                .join(".")
        }
        _ => {
            return Err(WireError::Bad {
                field: "topic",
                why: "not a string".into(),
            }
            .into());
        }
    };
    if topic.is_empty() || topic.len() > 128 {
        return Err(WireError::Bad {
            field: "topic",
            why: "must have 1 to 128 bytes".into(),
        }
        .into());
    }
    if topic.starts_with(':') {
        return Err(RequestErrorKind::ColonTopic);
    }
    Ok((topic, field))
}

fn walk_params(m: &Value) -> Result<WalkParams, WireError> {
    Ok(WalkParams {
        nchain: int_field(m, "nchain", 0)?,
        min_depth: depth_field(m, "min_depth")?.unwrap_or(0),
        max_depth: depth_field(m, "max_depth")?,
        empty: bool_field(m, "empty"),
    })
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
    let action = parse_action(&name, &mut m).map_err(err)?;
    Ok(Request {
        seq,
        action,
        streaming,
        internal: name.ends_with("_internal"),
    })
}

fn auth_typ(m: &Value) -> Result<String, RequestErrorKind> {
    match m.field("typ") {
        Some(Value::Str(s)) => Ok(s.to_string()),
        _ => Err(RequestErrorKind::Field(WireError::Bad {
            field: "typ",
            why: "a method name expected".into(),
        })),
    }
}

/// Only users can be managed (the original's `kind` field).
fn user_kind(m: &Value) -> Result<(), RequestErrorKind> {
    match m.field("kind") {
        None | Some(Value::Nil) => Ok(()),
        Some(Value::Str(k)) if k == "user" => Ok(()),
        Some(_) => Err(RequestErrorKind::Field(WireError::Bad {
            field: "kind",
            why: "only 'user' is supported".into(),
        })),
    }
}

fn parse_action(name: &str, m: &mut Value) -> Result<Action, RequestErrorKind> {
    let (base, is_internal) = match name.strip_suffix("_internal") {
        Some(b) => (b, true),
        None => (name, false),
    };
    let wrap = |p: Path| if is_internal { internal(p) } else { p };
    Ok(match base {
        "get_value" | "get" => {
            let nchain = int_field(m, "nchain", 0)?;
            if m.field("path").is_none() && m.field("node").is_some() {
                Action::GetByEvent {
                    event: event_from_value(m)?,
                    nchain,
                }
            } else {
                Action::GetValue {
                    path: wrap(path_field(m, false)?),
                    nchain,
                }
            }
        }
        "set_value" | "set" => {
            let value = m.take_field("value").ok_or(RequestErrorKind::NoValue)?;
            Action::SetValue(SetValue {
                path: wrap(path_field(m, false)?),
                value: Some(value),
                chain: chain_check(m)?,
                prev: m.take_field("prev"),
                nchain: int_field(m, "nchain", 1)?,
                idem: bool_field(m, "idem"),
            })
        }
        "delete_value" | "delete" => {
            if m.field("value").is_some() {
                return Err(RequestErrorKind::ValueOnDelete);
            }
            Action::SetValue(SetValue {
                path: wrap(path_field(m, false)?),
                value: None,
                chain: chain_check(m)?,
                prev: m.take_field("prev"),
                nchain: int_field(m, "nchain", 1)?,
                idem: false,
            })
        }
        "delete_tree" if !is_internal => Action::DeleteTree {
            path: path_field(m, false)?,
            nchain: int_field(m, "nchain", 0)?,
        },
        "get_tree" => Action::GetTree {
            path: wrap(path_field(m, false)?),
            walk: walk_params(m)?,
        },
        "enumerate" | "enum" => Action::Enumerate {
            path: wrap(path_field(m, false)?),
            empty: bool_field(m, "empty"),
        },
        "watch" if !is_internal => Action::Watch {
            path: path_field(m, false)?,
            fetch: bool_field(m, "fetch"),
            walk: walk_params(m)?,
        },
        "get_state" if !is_internal => Action::GetState(StateFlags {
            nodes: bool_field(m, "nodes"),
            known: bool_field(m, "known"),
            superseded: bool_field(m, "superseded"),
            deleted: bool_field(m, "deleted"),
            missing: bool_field(m, "missing"),
            remote_missing: bool_field(m, "remote_missing"),
            stats: bool_field(m, "stats"),
        }),
        "get_tock" if !is_internal => Action::GetTock,
        "key_exchange" if !is_internal => Action::Auth(AuthAction::KeyExchange {
            pubkey: match m.take_field("pubkey") {
                Some(Value::Bytes(b)) => b,
                _ => {
                    return Err(RequestErrorKind::Field(WireError::Bad {
                        field: "pubkey",
                        why: "32 bytes expected".into(),
                    }));
                }
            },
        }),
        "auth" if !is_internal => Action::Auth(AuthAction::Login {
            typ: auth_typ(m)?,
            request: m.clone(),
        }),
        "auth_set" if !is_internal => {
            user_kind(m)?;
            Action::Auth(AuthAction::SetUser {
                typ: auth_typ(m)?,
                new: bool_field(m, "new"),
                request: m.clone(),
            })
        }
        "auth_list" if !is_internal => {
            user_kind(m)?;
            Action::Auth(AuthAction::ListUsers {
                typ: auth_typ(m)?,
                ident: match m.field("ident") {
                    None | Some(Value::Nil) => None,
                    Some(Value::Str(s)) => Some(s.to_string()),
                    Some(_) => {
                        return Err(RequestErrorKind::Field(WireError::Bad {
                            field: "ident",
                            why: "a string expected".into(),
                        }));
                    }
                },
            })
        }
        "auth_get" if !is_internal => {
            user_kind(m)?;
            Action::Auth(AuthAction::GetUser {
                typ: auth_typ(m)?,
                ident: m
                    .field("ident")
                    .and_then(Value::as_str)
                    .ok_or(RequestErrorKind::Field(WireError::Bad {
                        field: "ident",
                        why: "a string expected".into(),
                    }))?
                    .to_owned(),
            })
        }
        "test_acl" if !is_internal => Action::TestAcl {
            path: path_field(m, false)?,
            mode: match m.field("mode") {
                None | Some(Value::Nil) => 'x',
                Some(Value::Str(s)) if s.chars().count() == 1 => s.chars().next().unwrap_or('x'),
                Some(_) => {
                    return Err(RequestErrorKind::Field(WireError::Bad {
                        field: "mode",
                        why: "one flag letter expected".into(),
                    }));
                }
            },
            acl: match m.field("acl") {
                None | Some(Value::Nil) => None,
                Some(Value::Str(s)) => Some(s.to_string()),
                Some(_) => {
                    return Err(RequestErrorKind::Field(WireError::Bad {
                        field: "acl",
                        why: "an ACL name expected".into(),
                    }));
                }
            },
        },
        "set_auth_typ" if !is_internal => Action::Auth(AuthAction::SetMethod {
            typ: match m.field("typ") {
                None | Some(Value::Nil) => None,
                Some(Value::Str(s)) => Some(s.to_string()),
                Some(_) => {
                    return Err(RequestErrorKind::Field(WireError::Bad {
                        field: "typ",
                        why: "a method name expected".into(),
                    }));
                }
            },
        }),
        "stop" if !is_internal => Action::Stop {
            task: m
                .field("task")
                .and_then(Value::as_u64)
                .ok_or(WireError::Missing("task"))?,
        },
        "serfsend" | "msg_send" if !is_internal => {
            let (topic, _) = topic_field(m)?;
            let payload = match (m.take_field("raw"), m.take_field("data")) {
                (Some(Value::Bytes(b)), _) => MsgPayload::Raw(b),
                (Some(Value::Str(s)), _) => MsgPayload::Raw(s.into_string().into_bytes()),
                (Some(_), _) => {
                    return Err(WireError::Bad {
                        field: "raw",
                        why: "not bytes".into(),
                    }
                    .into());
                }
                (None, Some(d)) => MsgPayload::Data(d),
                (None, None) => return Err(WireError::Missing("data").into()),
            };
            Action::MsgSend { topic, payload }
        }
        "serfmon" | "msg_monitor" if !is_internal => {
            let (topic, field) = topic_field(m)?;
            Action::MsgMonitor {
                topic,
                raw: bool_field(m, "raw"),
                field,
            }
        }
        "log" if !is_internal => Action::Log {
            path: match m.take_field("path") {
                None | Some(Value::Nil) => None,
                Some(Value::Str(p)) => Some(p.into()),
                Some(_) => {
                    return Err(WireError::Bad {
                        field: "path",
                        why: "not a file name".into(),
                    }
                    .into());
                }
            },
            fetch: bool_field(m, "fetch"),
        },
        "save" if !is_internal => Action::Save {
            path: match m.take_field("path") {
                Some(Value::Str(p)) => p.into(),
                _ => return Err(WireError::Missing("path").into()),
            },
        },
        "fetch_ticks" if !is_internal => {
            let mut nodes = Vec::new();
            let sets = m
                .field("nodes")
                .and_then(Value::as_map)
                .ok_or(WireError::Missing("nodes"))?;
            for (k, v) in sets {
                let name = k.as_str().ok_or(WireError::Bad {
                    field: "nodes",
                    why: "a node name is not a string".into(),
                })?;
                nodes.push((name.to_owned(), crate::wire::ranges_from_value(v)?));
            }
            Action::FetchTicks { nodes }
        }
        _ => Action::Unknown(name.to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value_map::MapBuilder;

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
