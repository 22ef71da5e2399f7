//! Reading a request map: one small parser per action (or group of
//! actions), and the field readers they share.

use distkv_tree::{Path, PathElem, Value};

use super::{Action, AuthAction, ChainCheck, MsgPayload, RequestErrorKind, SetValue, StateFlags};
use super::{WalkParams, internal_suffix};
use crate::value_map::MapExt;
use crate::wire::{WireError, event_from_value, path_from_value, ranges_from_value};

type Parsed = Result<Action, RequestErrorKind>;

/// The action named `name`, with its fields read from `m` (which has lost
/// its `action` field). A name no parser knows is [`Action::Unknown`].
pub(super) fn parse_action(name: &str, m: &mut Value) -> Parsed {
    let action = match internal_suffix(name) {
        Some(base) => parse_data_action(base, m, true)?,
        None => match parse_data_action(name, m, false)? {
            Some(a) => Some(a),
            None => parse_plain_action(name, m)?,
        },
    };
    Ok(action.unwrap_or_else(|| Action::Unknown(name.to_owned())))
}

/// The actions on entries, which also have an `*_internal` form that
/// works below the system subtree.
fn parse_data_action(
    base: &str,
    m: &mut Value,
    is_internal: bool,
) -> Result<Option<Action>, RequestErrorKind> {
    let path = |m: &mut Value| -> Result<Path, WireError> {
        let p = path_field(m)?;
        Ok(if is_internal { system(p) } else { p })
    };
    Ok(Some(match base {
        "get_value" | "get" => parse_get_value(m, path)?,
        "set_value" | "set" => parse_set_value(m, path)?,
        "delete_value" | "delete" => parse_delete_value(m, path)?,
        "get_tree" => Action::GetTree {
            path: path(m)?,
            walk: walk_params(m)?,
        },
        "enumerate" | "enum" => Action::Enumerate {
            path: path(m)?,
            empty: bool_field(m, "empty"),
        },
        _ => return Ok(None),
    }))
}

/// The actions without an `*_internal` form.
fn parse_plain_action(name: &str, m: &mut Value) -> Result<Option<Action>, RequestErrorKind> {
    Ok(Some(match name {
        "delete_tree" => Action::DeleteTree {
            path: path_field(m)?,
            nchain: int_field(m, "nchain", 0)?,
        },
        "watch" => Action::Watch {
            path: path_field(m)?,
            fetch: bool_field(m, "fetch"),
            walk: walk_params(m)?,
        },
        "get_state" => Action::GetState(state_flags(m)),
        "get_tock" => Action::GetTock,
        "test_acl" => parse_test_acl(m)?,
        "stop" => Action::Stop {
            task: m
                .field("task")
                .and_then(Value::as_u64)
                .ok_or(WireError::Missing("task"))?,
        },
        "serfsend" | "msg_send" => parse_msg_send(m)?,
        "serfmon" | "msg_monitor" => parse_msg_monitor(m)?,
        "log" => parse_log(m)?,
        "save" => parse_save(m)?,
        "fetch_ticks" => parse_fetch_ticks(m)?,
        "fake_info" => parse_fake_info(m, false)?,
        "fake_info_send" => parse_fake_info(m, true)?,
        "check_deleted" => match parse_fetch_ticks(m)? {
            Action::FetchTicks { nodes } => Action::CheckDeleted { nodes },
            other => other,
        },
        "enum_node" => Action::EnumNode {
            node: node_field(m)?,
            max: match m.field("max") {
                None | Some(Value::Nil) => 0,
                Some(v) => v.as_u64().ok_or_else(|| bad("max", "not a count"))?,
            },
            current: bool_field(m, "current"),
        },
        "kill_node" => Action::KillNode {
            node: node_field(m)?,
        },
        "root" => Action::Root {
            path: path_field(m)?,
        },
        _ => return Ok(parse_auth(name, m)?.map(Action::Auth)),
    }))
}

/// The `*_internal` actions work below the system subtree (`None`).
fn system(path: Path) -> Path {
    let mut v = Vec::with_capacity(path.len() + 1);
    v.push(PathElem::Nil);
    v.extend(path.0);
    Path(v)
}

/// `path`: missing or nil is the root.
fn path_field(m: &mut Value) -> Result<Path, WireError> {
    match m.take_field("path") {
        None | Some(Value::Nil) => Ok(Path::root()),
        Some(v) => path_from_value(v),
    }
}

fn int_field(m: &Value, key: &'static str, default: i64) -> Result<i64, WireError> {
    match m.field(key) {
        None | Some(Value::Nil) => Ok(default),
        Some(Value::Int(i)) => Ok(*i),
        Some(Value::Bool(b)) => Ok(i64::from(*b)),
        Some(_) => Err(bad(key, "not an integer")),
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

/// An optional string: missing or nil is `None`, anything but a string is
/// an error saying `why`.
fn opt_str_field(
    m: &Value,
    key: &'static str,
    why: &'static str,
) -> Result<Option<String>, WireError> {
    match m.field(key) {
        None | Some(Value::Nil) => Ok(None),
        Some(Value::Str(s)) => Ok(Some(s.to_string())),
        Some(_) => Err(bad(key, why)),
    }
}

fn bad(field: &'static str, why: &str) -> WireError {
    WireError::Bad {
        field,
        why: why.into(),
    }
}

fn chain_check(m: &Value) -> Result<Option<ChainCheck>, WireError> {
    match m.field("chain") {
        None => Ok(None),
        Some(Value::Nil) => Ok(Some(ChainCheck::New)),
        Some(c) => Ok(Some(ChainCheck::Head(event_from_value(c)?))),
    }
}

fn walk_params(m: &Value) -> Result<WalkParams, WireError> {
    Ok(WalkParams {
        nchain: int_field(m, "nchain", 0)?,
        min_depth: depth_field(m, "min_depth")?.unwrap_or(0),
        max_depth: depth_field(m, "max_depth")?,
        empty: bool_field(m, "empty"),
    })
}

fn state_flags(m: &Value) -> StateFlags {
    StateFlags {
        nodes: bool_field(m, "nodes"),
        known: bool_field(m, "known"),
        superseded: bool_field(m, "superseded"),
        deleted: bool_field(m, "deleted"),
        missing: bool_field(m, "missing"),
        remote_missing: bool_field(m, "remote_missing"),
        stats: bool_field(m, "stats"),
        node_drop: bool_field(m, "node_drop"),
    }
}

/// `get_value`: by path, or (with `node` and no `path`) by change event.
fn parse_get_value(
    m: &mut Value,
    path: impl FnOnce(&mut Value) -> Result<Path, WireError>,
) -> Parsed {
    let nchain = int_field(m, "nchain", 0)?;
    Ok(if m.field("path").is_none() && m.field("node").is_some() {
        Action::GetByEvent {
            event: event_from_value(m)?,
            nchain,
        }
    } else {
        Action::GetValue {
            path: path(m)?,
            nchain,
        }
    })
}

fn parse_set_value(
    m: &mut Value,
    path: impl FnOnce(&mut Value) -> Result<Path, WireError>,
) -> Parsed {
    let value = m.take_field("value").ok_or(RequestErrorKind::NoValue)?;
    Ok(Action::SetValue(SetValue {
        path: path(m)?,
        value: Some(value),
        chain: chain_check(m)?,
        prev: m.take_field("prev"),
        nchain: int_field(m, "nchain", 1)?,
        idem: bool_field(m, "idem"),
    }))
}

fn parse_delete_value(
    m: &mut Value,
    path: impl FnOnce(&mut Value) -> Result<Path, WireError>,
) -> Parsed {
    if m.field("value").is_some() {
        return Err(RequestErrorKind::ValueOnDelete);
    }
    Ok(Action::SetValue(SetValue {
        path: path(m)?,
        value: None,
        chain: chain_check(m)?,
        prev: m.take_field("prev"),
        nchain: int_field(m, "nchain", 1)?,
        idem: false,
    }))
}

fn parse_test_acl(m: &mut Value) -> Parsed {
    Ok(Action::TestAcl {
        path: path_field(m)?,
        mode: match m.field("mode") {
            None | Some(Value::Nil) => 'x',
            Some(Value::Str(s)) if s.chars().count() == 1 => s.chars().next().unwrap_or('x'),
            Some(_) => return Err(bad("mode", "one flag letter expected").into()),
        },
        acl: opt_str_field(m, "acl", "an ACL name expected")?,
    })
}

/// The topic of `msg_send` / `msg_monitor`: `type` (a string) or `topic`
/// (a string, or a path whose elements are joined with `.`), and which of
/// the two fields named it.
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
                .ok_or_else(|| bad("topic", "not a list of strings"))?
                .join(".")
        }
        _ => return Err(bad("topic", "not a string").into()),
    };
    if topic.is_empty() || topic.len() > 128 {
        return Err(bad("topic", "must have 1 to 128 bytes").into());
    }
    if topic.starts_with(':') {
        return Err(RequestErrorKind::ColonTopic);
    }
    Ok((topic, field))
}

fn parse_msg_send(m: &mut Value) -> Parsed {
    let (topic, _) = topic_field(m)?;
    let payload = match (m.take_field("raw"), m.take_field("data")) {
        (Some(Value::Bytes(b)), _) => MsgPayload::Raw(b.into()),
        (Some(Value::Str(s)), _) => MsgPayload::Raw(s.as_bytes().to_vec()),
        (Some(_), _) => return Err(bad("raw", "not bytes").into()),
        (None, Some(d)) => MsgPayload::Data(d),
        (None, None) => return Err(WireError::Missing("data").into()),
    };
    Ok(Action::MsgSend { topic, payload })
}

fn parse_msg_monitor(m: &mut Value) -> Parsed {
    let (topic, field) = topic_field(m)?;
    Ok(Action::MsgMonitor {
        topic,
        raw: bool_field(m, "raw"),
        field,
    })
}

fn parse_log(m: &mut Value) -> Parsed {
    Ok(Action::Log {
        path: match m.take_field("path") {
            None | Some(Value::Nil) => None,
            Some(Value::Str(p)) => Some(p.into()),
            Some(_) => return Err(bad("path", "not a file name").into()),
        },
        fetch: bool_field(m, "fetch"),
    })
}

fn parse_save(m: &mut Value) -> Parsed {
    Ok(Action::Save {
        path: match m.take_field("path") {
            Some(Value::Str(p)) => p.into(),
            _ => return Err(WireError::Missing("path").into()),
        },
    })
}

/// `node`: a node name, not empty.
fn node_field(m: &Value) -> Result<String, WireError> {
    match m.field("node") {
        Some(Value::Str(s)) if !s.is_empty() => Ok(s.to_string()),
        None | Some(Value::Nil) => Err(WireError::Missing("node")),
        Some(_) => Err(bad("node", "a node name expected")),
    }
}

/// A map of node names to tick ranges (the field `field`).
fn node_sets(
    sets: &[(Value, Value)],
    field: &'static str,
) -> Result<Vec<(String, distkv_tree::RangeSet)>, WireError> {
    let mut nodes = Vec::with_capacity(sets.len());
    for (k, v) in sets {
        let name = k
            .as_str()
            .ok_or_else(|| bad(field, "a node name is not a string"))?;
        nodes.push((name.to_owned(), ranges_from_value(v)?));
    }
    Ok(nodes)
}

fn parse_fetch_ticks(m: &mut Value) -> Parsed {
    let sets = m
        .field("nodes")
        .and_then(Value::as_map)
        .ok_or(WireError::Missing("nodes"))?;
    Ok(Action::FetchTicks {
        nodes: node_sets(sets, "nodes")?,
    })
}

fn parse_fake_info(m: &mut Value, send: bool) -> Parsed {
    let (deleted, sets) = match (m.field("deleted"), m.field("known")) {
        (Some(d), None) => (true, d),
        (None, Some(k)) => (false, k),
        (None, None) => return Err(WireError::Missing("known").into()),
        (Some(_), Some(_)) => return Err(bad("known", "either known or deleted, not both").into()),
    };
    let field = if deleted { "deleted" } else { "known" };
    let sets = sets.as_map().ok_or_else(|| bad(field, "a map expected"))?;
    let nodes = node_sets(sets, field)?;
    Ok(Action::FakeInfo {
        deleted,
        nodes,
        send,
    })
}

/// The auth actions; `None` for other names.
fn parse_auth(name: &str, m: &mut Value) -> Result<Option<AuthAction>, RequestErrorKind> {
    Ok(Some(match name {
        "key_exchange" => AuthAction::KeyExchange {
            pubkey: match m.take_field("pubkey") {
                Some(Value::Bytes(b)) => b.into(),
                _ => return Err(bad("pubkey", "32 bytes expected").into()),
            },
        },
        "auth" => AuthAction::Login {
            typ: auth_typ(m)?,
            request: m.clone(),
        },
        "auth_set" => {
            user_kind(m)?;
            AuthAction::SetUser {
                typ: auth_typ(m)?,
                new: bool_field(m, "new"),
                request: m.clone(),
            }
        }
        "auth_list" => {
            user_kind(m)?;
            AuthAction::ListUsers {
                typ: auth_typ(m)?,
                ident: opt_str_field(m, "ident", "a string expected")?,
            }
        }
        "auth_get" => {
            user_kind(m)?;
            AuthAction::GetUser {
                typ: auth_typ(m)?,
                ident: m
                    .field("ident")
                    .and_then(Value::as_str)
                    .ok_or_else(|| bad("ident", "a string expected"))?
                    .to_owned(),
            }
        }
        "set_auth_typ" => AuthAction::SetMethod {
            typ: opt_str_field(m, "typ", "a method name expected")?,
        },
        _ => return Ok(None),
    }))
}

fn auth_typ(m: &Value) -> Result<String, WireError> {
    match m.field("typ") {
        Some(Value::Str(s)) => Ok(s.to_string()),
        _ => Err(bad("typ", "a method name expected")),
    }
}

/// Only users can be managed (the original's `kind` field).
fn user_kind(m: &Value) -> Result<(), WireError> {
    match m.field("kind") {
        None | Some(Value::Nil) => Ok(()),
        Some(Value::Str(k)) if k == "user" => Ok(()),
        Some(_) => Err(bad("kind", "only 'user' is supported")),
    }
}
