//! Writing a typed request as the wire map the parser reads.
//!
//! Field rules: `action` comes first, then the action's fields, then
//! `state` (a client-streaming request) and `seq`. A field is written when
//! the parser needs it or when its value differs from what the parser
//! assumes for a missing field; a few fields that clients always send are
//! always written: `nchain` of `get_value`, `get_tree` and `watch`,
//! `fetch` of `watch` (and of `log` with a file), every flag of
//! `get_state` but `superseded` and `node_drop`, `kind: "user"` of `auth_list` / `auth_get` and `typ` of
//! `set_auth_typ`.

use distkv_tree::{Path, PathElem, Value};

use super::WalkParams;
use super::{Action, AuthAction, ChainCheck, MsgPayload, Request, SetValue, StateFlags};
use crate::msgpack;
use crate::value_map::MapBuilder;
use crate::wire::{self, ranges_to_value};

impl Request {
    /// The wire map of this request: what [`parse_request`] reads back
    /// as this request (see [`Action::to_map`] for the action's fields).
    /// An `internal` request is written in its `*_internal` form, see
    /// [`Action::to_internal_map`].
    ///
    /// ```
    /// use distkv_proto::request::{Action, Request, parse_request};
    /// use distkv_tree::Path;
    ///
    /// # fn main() -> Result<(), distkv_proto::request::RequestError> {
    /// let req = Request {
    ///     seq: 7,
    ///     action: Action::GetValue { path: Path::from_strs(&["a", "b"]), nchain: 0 },
    ///     streaming: false,
    ///     internal: false,
    /// };
    /// let wire = req.to_value();
    /// assert_eq!(
    ///     wire.to_string(),
    ///     r#"{"action": "get_value", "path": ["a", "b"], "nchain": 0, "seq": 7}"#
    /// );
    /// assert_eq!(parse_request(wire)?, req);
    /// # Ok(()) }
    /// ```
    ///
    /// [`parse_request`]: super::parse_request
    pub fn to_value(&self) -> Value {
        let mut m = if self.internal {
            self.action.to_internal_map()
        } else {
            self.action.to_map()
        };
        if self.streaming {
            m.push("state", "start");
        }
        m.push("seq", self.seq);
        m.build()
    }
}

impl Action {
    /// The action's wire map without `seq` (a connection adds it when it
    /// sends the request): `action` first, then the action's fields.
    ///
    /// Every action is written under its main name (`get_value`, not
    /// `get`; `msg_send`, not `serfsend`), except that a
    /// [`Action::MsgMonitor`] whose `field` is `type` is written as the
    /// original's `serfmon` with a `type` field (any other `field` as
    /// `msg_monitor` with `topic`). [`Action::Unknown`] keeps only its
    /// name: it is written as `{action: NAME}`, since the fields of an
    /// unknown action were not kept.
    pub fn to_map(&self) -> MapBuilder {
        encode(self, false)
    }

    /// The wire map of the `*_internal` form of this action: the name gets
    /// the `_internal` suffix and the path loses its leading
    /// [`PathElem::Nil`], since an internal action's path is relative to
    /// the system subtree (the parser adds the `Nil` back). A path without
    /// that leading `Nil` is written as it is.
    ///
    /// Only `get_value`, `set_value`, `delete_value`, `get_tree` and
    /// `enumerate` have an internal form; any other action is written
    /// with a `NAME_internal` name, which the parser reads as
    /// [`Action::Unknown`]. An [`Action::Unknown`] is written under its
    /// own name, unchanged.
    pub fn to_internal_map(&self) -> MapBuilder {
        encode(self, true)
    }

    /// Appends the msgpack encoding of the request map for this action
    /// with `seq` last: byte for byte what encoding
    /// `self.to_map().set("seq", seq)` gives.
    ///
    /// `get_value`, and `set_value` or `delete_value` without a
    /// precondition (what a busy client sends most), are written straight
    /// from the action, without building the map; any other action goes
    /// through [`Action::to_map`].
    ///
    /// ```
    /// use distkv_proto::msgpack;
    /// use distkv_proto::request::{Action, SetValue};
    /// use distkv_tree::{Path, Value};
    ///
    /// let set = Action::SetValue(SetValue::new(Path::from_strs(&["a"]), Some(Value::Int(1))));
    /// let mut direct = Vec::new();
    /// set.encode_with_seq(7, &mut direct);
    /// assert_eq!(direct, msgpack::to_vec(&set.to_map().set("seq", 7u64).build()));
    /// ```
    pub fn encode_with_seq(&self, seq: u64, out: &mut Vec<u8>) {
        let field = |out: &mut Vec<u8>, name: &str, v: &Value| {
            msgpack::write_str(out, name);
            msgpack::encode(v, out);
        };
        match self {
            Action::GetValue { path, nchain } => {
                msgpack::write_map_len(out, 4);
                msgpack::write_str(out, "action");
                msgpack::write_str(out, "get_value");
                msgpack::write_str(out, "path");
                wire::encode_path(path, out);
                field(out, "nchain", &Value::Int(*nchain));
            }
            Action::SetValue(s) if s.chain.is_none() && s.prev.is_none() => {
                let len =
                    3 + u32::from(s.value.is_some()) + u32::from(s.nchain != 1) + u32::from(s.idem);
                msgpack::write_map_len(out, len);
                msgpack::write_str(out, "action");
                msgpack::write_str(out, s.wire_name());
                msgpack::write_str(out, "path");
                wire::encode_path(&s.path, out);
                if let Some(v) = &s.value {
                    field(out, "value", v);
                }
                if s.nchain != 1 {
                    field(out, "nchain", &Value::Int(s.nchain));
                }
                if s.idem {
                    field(out, "idem", &Value::Bool(true));
                }
            }
            _ => {
                msgpack::encode(&self.to_map().set("seq", seq).build(), out);
                return;
            }
        }
        field(out, "seq", &Value::from_u64(seq));
    }

    /// The name the action is written under (see [`Action::to_map`]).
    fn wire_name(&self) -> &str {
        match self {
            Action::GetValue { .. } | Action::GetByEvent { .. } => "get_value",
            Action::SetValue(s) => s.wire_name(),
            Action::MsgMonitor { field: "type", .. } => "serfmon",
            Action::Auth(a) => a.wire_name(),
            Action::Unknown(name) => name,
            other => other.name(),
        }
    }
}

/// `action` (with the `_internal` suffix for the internal form), then the
/// fields.
fn encode(action: &Action, internal: bool) -> MapBuilder {
    let name = action.wire_name();
    let mut m = match action {
        Action::Unknown(_) => return MapBuilder::new().set("action", name),
        _ if internal => MapBuilder::new().set("action", format!("{name}_internal")),
        _ => MapBuilder::new().set("action", name),
    };
    let path = |p: &Path| {
        if internal {
            relative_path(p)
        } else {
            p.to_value()
        }
    };
    if !write_entry_action(action, &mut m, path) {
        write_other_action(action, &mut m);
    }
    m
}

/// The wire form of an internal action's path: without the leading `Nil`.
fn relative_path(p: &Path) -> Value {
    match p.elems() {
        [PathElem::Nil, rest @ ..] => Value::Array(rest.iter().map(PathElem::to_value).collect()),
        _ => p.to_value(),
    }
}

/// The fields of the actions on entries (those with an internal form);
/// `false` for other actions.
fn write_entry_action(action: &Action, m: &mut MapBuilder, path: impl Fn(&Path) -> Value) -> bool {
    match action {
        Action::GetValue { path: p, nchain } => {
            m.push("path", path(p));
            m.push("nchain", *nchain);
        }
        Action::GetByEvent { event, nchain } => {
            m.push("node", event.node.as_ref());
            m.push("tick", event.tick);
            m.push("nchain", *nchain);
        }
        Action::SetValue(s) => {
            m.push("path", path(&s.path));
            s.write_fields(m);
        }
        Action::GetTree { path: p, walk } => {
            m.push("path", path(p));
            walk.write_fields(m);
        }
        Action::Enumerate { path: p, empty } => {
            m.push("path", path(p));
            if *empty {
                m.push("empty", true);
            }
        }
        _ => return false,
    }
    true
}

/// The fields of the actions without an internal form.
fn write_other_action(action: &Action, m: &mut MapBuilder) {
    match action {
        Action::DeleteTree { path, nchain } => {
            m.push("path", path.to_value());
            if *nchain != 0 {
                m.push("nchain", *nchain);
            }
        }
        Action::Watch { path, fetch, walk } => {
            m.push("path", path.to_value());
            walk.write_fields(m);
            m.push("fetch", *fetch);
        }
        Action::GetState(flags) => flags.write_fields(m),
        Action::Stop { task } => m.push("task", *task),
        Action::MsgSend { topic, payload } => {
            m.push("topic", topic.as_str());
            payload.write_fields(m);
        }
        Action::MsgMonitor { topic, raw, field } => {
            m.push(
                if *field == "type" { "type" } else { "topic" },
                topic.as_str(),
            );
            if *raw {
                m.push("raw", true);
            }
        }
        Action::FetchTicks { nodes } | Action::CheckDeleted { nodes } => {
            m.push("nodes", ticks_map(nodes))
        }
        Action::FakeInfo { deleted, nodes, .. } => {
            m.push(if *deleted { "deleted" } else { "known" }, ticks_map(nodes))
        }
        Action::Log { path, fetch } => {
            if let Some(p) = path {
                m.push("path", p.as_str());
            }
            if path.is_some() || *fetch {
                m.push("fetch", *fetch);
            }
        }
        Action::Save { path } => m.push("path", path.as_str()),
        Action::EnumNode { node, max, current } => {
            m.push("node", node.as_str());
            if *max != 0 {
                m.push("max", *max);
            }
            if *current {
                m.push("current", true);
            }
        }
        Action::KillNode { node } => m.push("node", node.as_str()),
        Action::Root { path } => m.push("path", path.to_value()),
        Action::Auth(a) => a.write_fields(m),
        Action::TestAcl { path, mode, acl } => {
            m.push("path", path.to_value());
            if *mode != 'x' {
                m.push("mode", mode.to_string());
            }
            if let Some(a) = acl {
                m.push("acl", a.as_str());
            }
        }
        Action::GetTock
        | Action::GetValue { .. }
        | Action::GetByEvent { .. }
        | Action::SetValue(_)
        | Action::GetTree { .. }
        | Action::Enumerate { .. }
        | Action::Unknown(_) => {}
    }
}

fn ticks_map(nodes: &[(String, distkv_tree::RangeSet)]) -> Value {
    Value::Map(
        nodes
            .iter()
            .map(|(n, r)| (Value::from(n.as_str()), ranges_to_value(r)))
            .collect(),
    )
}

impl ChainCheck {
    /// The `chain` field: nil for [`ChainCheck::New`], `{node, tick}` for
    /// [`ChainCheck::Head`].
    pub fn to_value(&self) -> Value {
        match self {
            ChainCheck::New => Value::Nil,
            ChainCheck::Head(ev) => MapBuilder::new()
                .set("node", ev.node.as_ref())
                .set("tick", ev.tick)
                .build(),
        }
    }
}

impl SetValue {
    /// `set_value`, or `delete_value` when there is no value.
    fn wire_name(&self) -> &'static str {
        if self.value.is_some() {
            "set_value"
        } else {
            "delete_value"
        }
    }

    /// Adds the fields after `path`: `value` (if any), `nchain` (unless
    /// the default 1), `chain` and `prev` (if set), `idem` (if set).
    pub fn write_fields(&self, m: &mut MapBuilder) {
        if let Some(v) = &self.value {
            m.push("value", v.clone());
        }
        if self.nchain != 1 {
            m.push("nchain", self.nchain);
        }
        if let Some(c) = &self.chain {
            m.push("chain", c.to_value());
        }
        if let Some(p) = &self.prev {
            m.push("prev", p.clone());
        }
        if self.idem {
            m.push("idem", true);
        }
    }
}

impl WalkParams {
    /// Adds `nchain`, then `min_depth` (unless 0), `max_depth` (if
    /// limited) and `empty` (if set).
    pub fn write_fields(&self, m: &mut MapBuilder) {
        m.push("nchain", self.nchain);
        if self.min_depth != 0 {
            m.push("min_depth", self.min_depth);
        }
        if let Some(d) = self.max_depth {
            m.push("max_depth", d);
        }
        if self.empty {
            m.push("empty", true);
        }
    }
}

impl StateFlags {
    /// Adds every flag, in declaration order, except that `superseded`
    /// (which only repeats `known`) and `node_drop` (which the original
    /// 0.7.1 does not know) are written only when set.
    pub fn write_fields(&self, m: &mut MapBuilder) {
        m.push("nodes", self.nodes);
        m.push("known", self.known);
        if self.superseded {
            m.push("superseded", true);
        }
        m.push("deleted", self.deleted);
        m.push("missing", self.missing);
        m.push("remote_missing", self.remote_missing);
        m.push("stats", self.stats);
        if self.node_drop {
            m.push("node_drop", true);
        }
    }
}

impl MsgPayload {
    /// Adds `data` (a value) or `raw` (bytes).
    pub fn write_fields(&self, m: &mut MapBuilder) {
        match self {
            MsgPayload::Data(v) => m.push("data", v.clone()),
            MsgPayload::Raw(b) => m.push("raw", Value::Bytes(b[..].into())),
        }
    }
}

impl AuthAction {
    fn wire_name(&self) -> &'static str {
        match self {
            AuthAction::KeyExchange { .. } => "key_exchange",
            AuthAction::Login { .. } => "auth",
            AuthAction::SetUser { .. } => "auth_set",
            AuthAction::ListUsers { .. } => "auth_list",
            AuthAction::GetUser { .. } => "auth_get",
            AuthAction::SetMethod { .. } => "set_auth_typ",
        }
    }

    /// Adds the fields after `action`.
    ///
    /// `auth` and `auth_set` write the string-keyed fields of `request` as
    /// they are, except `action`, `seq` and `state` (the request's own fields supply
    /// those); `typ` (and `new` of `auth_set`) are set to the typed
    /// fields' values, in their place in `request` or, when `request`
    /// lacks them, first. `auth_list` and `auth_get` always say
    /// `kind: "user"`.
    pub fn write_fields(&self, m: &mut MapBuilder) {
        match self {
            AuthAction::KeyExchange { pubkey } => m.push("pubkey", Value::Bytes(pubkey[..].into())),
            AuthAction::Login { typ, request } => write_auth_request(m, typ, None, request),
            AuthAction::SetUser { typ, request, new } => {
                write_auth_request(m, typ, Some(*new), request);
            }
            AuthAction::ListUsers { typ, ident } => {
                m.push("typ", typ.as_str());
                m.push("kind", "user");
                if let Some(i) = ident {
                    m.push("ident", i.as_str());
                }
            }
            AuthAction::GetUser { typ, ident } => {
                m.push("typ", typ.as_str());
                m.push("kind", "user");
                m.push("ident", ident.as_str());
            }
            AuthAction::SetMethod { typ } => {
                m.push("typ", typ.as_deref().map_or(Value::Nil, Value::from));
            }
        }
    }
}

/// Whether a `new` field reads as set (as the parser reads it).
fn reads_true(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::Int(i)) => *i != 0,
        _ => false,
    }
}

fn write_auth_request(m: &mut MapBuilder, typ: &str, new: Option<bool>, request: &Value) {
    let fields = request.as_map().unwrap_or(&[]);
    let has = |k: &str| fields.iter().any(|(key, _)| key.as_str() == Some(k));
    if !has("typ") {
        m.push("typ", typ);
    }
    let new_field = fields
        .iter()
        .find(|(k, _)| k.as_str() == Some("new"))
        .map(|(_, v)| v);
    let fix_new = new.filter(|n| *n != reads_true(new_field));
    if let (Some(n), false) = (fix_new, has("new")) {
        m.push("new", n);
    }
    for (k, v) in fields {
        match k.as_str() {
            Some("action" | "seq" | "state") | None => {}
            Some("typ") => m.push("typ", typ),
            Some("new") => match fix_new {
                Some(n) => m.push("new", n),
                None => m.push("new", v.clone()),
            },
            Some(key) => m.push(key, v.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use distkv_tree::{NodeEvent, RangeSet};
    use proptest::prelude::*;

    use super::*;
    use crate::request::parse_request;

    fn p(words: &[&str]) -> Path {
        Path::from_strs(words)
    }

    /// `Nil WORDS…`: a path in the system subtree.
    fn sys(words: &[&str]) -> Path {
        system(p(words))
    }

    fn req(seq: u64, action: Action) -> Request {
        Request {
            seq,
            action,
            streaming: false,
            internal: false,
        }
    }

    fn internal(seq: u64, action: Action) -> Request {
        Request {
            internal: true,
            ..req(seq, action)
        }
    }

    fn map(fields: &[(&str, Value)]) -> Value {
        Value::Map(
            fields
                .iter()
                .map(|(k, v)| (Value::from(*k), v.clone()))
                .collect(),
        )
    }

    fn set(path: Path, value: Option<Value>) -> SetValue {
        SetValue::new(path, value)
    }

    /// Which variant (`Action` and `AuthAction` together): a new variant
    /// does not compile here until it is counted, and then fails
    /// `every_variant_round_trips` until the table has an example.
    fn variant(a: &Action) -> usize {
        match a {
            Action::GetValue { .. } => 0,
            Action::GetByEvent { .. } => 1,
            Action::SetValue(_) => 2,
            Action::DeleteTree { .. } => 3,
            Action::GetTree { .. } => 4,
            Action::Enumerate { .. } => 5,
            Action::Watch { .. } => 6,
            Action::GetState(_) => 7,
            Action::GetTock => 8,
            Action::Stop { .. } => 9,
            Action::MsgSend { .. } => 10,
            Action::MsgMonitor { .. } => 11,
            Action::FetchTicks { .. } => 12,
            Action::Log { .. } => 13,
            Action::Save { .. } => 14,
            Action::TestAcl { .. } => 15,
            Action::Unknown(_) => 16,
            Action::Auth(a) => match a {
                AuthAction::KeyExchange { .. } => 17,
                AuthAction::Login { .. } => 18,
                AuthAction::SetUser { .. } => 19,
                AuthAction::ListUsers { .. } => 20,
                AuthAction::GetUser { .. } => 21,
                AuthAction::SetMethod { .. } => 22,
            },
            Action::FakeInfo { .. } => 23,
            Action::CheckDeleted { .. } => 24,
            Action::EnumNode { .. } => 25,
            Action::KillNode { .. } => 26,
            Action::Root { .. } => 27,
        }
    }
    const VARIANTS: usize = 28;

    fn examples() -> Vec<Request> {
        let event = NodeEvent::new("n1", 12);
        let walk = WalkParams {
            nchain: -1,
            min_depth: 1,
            max_depth: Some(3),
            empty: true,
        };
        vec![
            req(
                1,
                Action::GetValue {
                    path: p(&["a", "b"]),
                    nchain: 0,
                },
            ),
            req(
                2,
                Action::GetValue {
                    path: Path::root(),
                    nchain: 2,
                },
            ),
            internal(
                3,
                Action::GetValue {
                    path: sys(&["acl", "one"]),
                    nchain: 1,
                },
            ),
            req(
                4,
                Action::GetByEvent {
                    event: event.clone(),
                    nchain: 0,
                },
            ),
            internal(
                5,
                Action::GetByEvent {
                    event: event.clone(),
                    nchain: 3,
                },
            ),
            req(6, Action::SetValue(set(p(&["a"]), Some(Value::Int(42))))),
            req(
                7,
                Action::SetValue(SetValue {
                    chain: Some(ChainCheck::Head(event.clone())),
                    prev: Some(Value::Nil),
                    nchain: 0,
                    idem: true,
                    ..set(p(&["a"]), Some(Value::from("x")))
                }),
            ),
            req(
                8,
                Action::SetValue(SetValue {
                    chain: Some(ChainCheck::New),
                    ..set(p(&["a"]), None)
                }),
            ),
            internal(
                9,
                Action::SetValue(set(sys(&["type", "int"]), Some(Value::Nil))),
            ),
            internal(10, Action::SetValue(set(sys(&["match", "x"]), None))),
            req(
                11,
                Action::DeleteTree {
                    path: p(&["a"]),
                    nchain: 0,
                },
            ),
            req(
                12,
                Action::DeleteTree {
                    path: p(&["a"]),
                    nchain: -1,
                },
            ),
            req(
                13,
                Action::GetTree {
                    path: p(&["a"]),
                    walk: WalkParams::default(),
                },
            ),
            internal(
                14,
                Action::GetTree {
                    path: sys(&["acl"]),
                    walk: walk.clone(),
                },
            ),
            req(
                15,
                Action::Enumerate {
                    path: p(&["a"]),
                    empty: false,
                },
            ),
            internal(
                16,
                Action::Enumerate {
                    path: sys(&["acl"]),
                    empty: true,
                },
            ),
            req(
                17,
                Action::Watch {
                    path: p(&["a"]),
                    fetch: true,
                    walk,
                },
            ),
            req(
                18,
                Action::Watch {
                    path: p(&[]),
                    fetch: false,
                    walk: WalkParams::default(),
                },
            ),
            req(19, Action::GetState(StateFlags::default())),
            req(
                20,
                Action::GetState(StateFlags {
                    nodes: true,
                    superseded: true,
                    remote_missing: true,
                    node_drop: true,
                    ..StateFlags::default()
                }),
            ),
            req(21, Action::GetTock),
            req(22, Action::Stop { task: 21 }),
            req(
                23,
                Action::MsgSend {
                    topic: "run.any".into(),
                    payload: MsgPayload::Data(Value::Int(1)),
                },
            ),
            req(
                24,
                Action::MsgSend {
                    topic: "t".into(),
                    payload: MsgPayload::Raw(vec![0, 255]),
                },
            ),
            req(
                25,
                Action::MsgMonitor {
                    topic: "t".into(),
                    raw: false,
                    field: "topic",
                },
            ),
            req(
                26,
                Action::MsgMonitor {
                    topic: "t".into(),
                    raw: true,
                    field: "type",
                },
            ),
            req(
                27,
                Action::FetchTicks {
                    nodes: vec![
                        ("a".into(), [1, 2, 3, 9].into_iter().collect()),
                        ("b".into(), RangeSet::new()),
                    ],
                },
            ),
            req(
                27,
                Action::FakeInfo {
                    deleted: false,
                    nodes: vec![("a".into(), [1, 2, 5].into_iter().collect())],
                    send: false,
                },
            ),
            req(
                27,
                Action::FakeInfo {
                    deleted: true,
                    nodes: vec![("b".into(), [7].into_iter().collect())],
                    send: true,
                },
            ),
            req(
                27,
                Action::CheckDeleted {
                    nodes: vec![("a".into(), [3, 4].into_iter().collect())],
                },
            ),
            req(
                27,
                Action::EnumNode {
                    node: "a".into(),
                    max: 0,
                    current: false,
                },
            ),
            req(
                27,
                Action::EnumNode {
                    node: "b".into(),
                    max: 10,
                    current: true,
                },
            ),
            req(
                27,
                Action::KillNode {
                    node: "gone".into(),
                },
            ),
            req(
                27,
                Action::Root {
                    path: p(&["a", "b"]),
                },
            ),
            req(27, Action::Root { path: p(&[]) }),
            req(
                28,
                Action::Log {
                    path: Some("/tmp/log".into()),
                    fetch: false,
                },
            ),
            req(
                29,
                Action::Log {
                    path: None,
                    fetch: false,
                },
            ),
            req(
                30,
                Action::Save {
                    path: "/tmp/save".into(),
                },
            ),
            req(
                31,
                Action::TestAcl {
                    path: p(&["a"]),
                    mode: 'x',
                    acl: None,
                },
            ),
            req(
                32,
                Action::TestAcl {
                    path: p(&["a"]),
                    mode: 'r',
                    acl: Some("one".into()),
                },
            ),
            req(33, Action::Unknown("frobnicate".into())),
            internal(34, Action::Unknown("watch_internal".into())),
            req(
                35,
                Action::Auth(AuthAction::KeyExchange {
                    pubkey: vec![7; 32],
                }),
            ),
            Request {
                streaming: true,
                ..req(
                    36,
                    Action::Auth(AuthAction::Login {
                        typ: "password".into(),
                        request: map(&[
                            ("typ", Value::from("password")),
                            ("ident", Value::from("joe")),
                            (
                                "data",
                                map(&[("password", Value::Bytes(vec![1; 8].into()))]),
                            ),
                            ("state", Value::from("start")),
                            ("seq", Value::Int(36)),
                        ]),
                    }),
                )
            },
            req(
                37,
                Action::Auth(AuthAction::SetUser {
                    typ: "password".into(),
                    new: true,
                    request: map(&[
                        ("typ", Value::from("password")),
                        ("kind", Value::from("user")),
                        ("ident", Value::from("joe")),
                        ("new", Value::Bool(true)),
                        ("aux", map(&[("acl", Value::from("one"))])),
                        ("seq", Value::Int(37)),
                    ]),
                }),
            ),
            req(
                38,
                Action::Auth(AuthAction::ListUsers {
                    typ: "password".into(),
                    ident: None,
                }),
            ),
            req(
                39,
                Action::Auth(AuthAction::ListUsers {
                    typ: "password".into(),
                    ident: Some("joe".into()),
                }),
            ),
            req(
                40,
                Action::Auth(AuthAction::GetUser {
                    typ: "password".into(),
                    ident: "joe".into(),
                }),
            ),
            req(41, Action::Auth(AuthAction::SetMethod { typ: None })),
            req(
                42,
                Action::Auth(AuthAction::SetMethod {
                    typ: Some("password".into()),
                }),
            ),
            Request {
                streaming: true,
                ..req(43, Action::GetTock)
            },
        ]
    }

    #[test]
    fn every_variant_round_trips() {
        let mut seen = [false; VARIANTS];
        for r in examples() {
            seen[variant(&r.action)] = true;
            let wire = r.to_value();
            assert_eq!(parse_request(wire.clone()), Ok(r.clone()), "{wire}");
        }
        let missing: Vec<usize> = (0..VARIANTS).filter(|i| !seen[*i]).collect();
        assert!(
            missing.is_empty(),
            "variants without an example: {missing:?}"
        );
    }

    #[test]
    fn literal_wire_maps() {
        let cases: Vec<(Request, &str)> = vec![
            (
                req(1, Action::SetValue(set(p(&["a"]), Some(Value::Int(3))))),
                r#"{"action": "set_value", "path": ["a"], "value": 3, "seq": 1}"#,
            ),
            (
                internal(2, Action::SetValue(set(sys(&["acl", "x"]), None))),
                r#"{"action": "delete_value_internal", "path": ["acl", "x"], "seq": 2}"#,
            ),
            (
                req(
                    3,
                    Action::Watch {
                        path: p(&["a"]),
                        fetch: true,
                        walk: WalkParams {
                            max_depth: Some(0),
                            ..WalkParams::default()
                        },
                    },
                ),
                r#"{"action": "watch", "path": ["a"], "nchain": 0, "max_depth": 0, "fetch": True, "seq": 3}"#,
            ),
            (
                Request {
                    streaming: true,
                    ..req(4, Action::GetTock)
                },
                r#"{"action": "get_tock", "state": "start", "seq": 4}"#,
            ),
            (
                internal(5, Action::Unknown("frob_internal".into())),
                r#"{"action": "frob_internal", "seq": 5}"#,
            ),
            (
                internal(
                    6,
                    Action::Watch {
                        path: sys(&["x"]),
                        fetch: false,
                        walk: WalkParams::default(),
                    },
                ),
                r#"{"action": "watch_internal", "path": [None, "x"], "nchain": 0, "fetch": False, "seq": 6}"#,
            ),
        ];
        let flags = StateFlags {
            nodes: true,
            stats: true,
            ..StateFlags::default()
        };
        let state = req(7, Action::GetState(flags));
        assert_eq!(
            state.to_value().to_string(),
            r#"{"action": "get_state", "nodes": True, "known": False, "deleted": False, "missing": False, "remote_missing": False, "stats": True, "seq": 7}"#
        );
        for (r, text) in cases {
            assert_eq!(r.to_value().to_string(), text);
        }
    }

    /// Whether two maps have the same fields, in any order.
    fn same_fields(a: &Value, b: &Value) -> bool {
        let (Some(a), Some(b)) = (a.as_map(), b.as_map()) else {
            return false;
        };
        a.len() == b.len() && a.iter().all(|f| b.contains(f))
    }

    /// Requests as DistKV 0.7.1's client sends them (its `client.py` and
    /// `commands/`): the encoding has the same fields, and reads back as
    /// the same request.
    #[test]
    fn python_client_maps() {
        let cases: Vec<(Request, Value)> = vec![
            // client.get("foo", "bar", nchain=2)
            (
                req(
                    5,
                    Action::GetValue {
                        path: p(&["foo", "bar"]),
                        nchain: 2,
                    },
                ),
                map(&[
                    ("path", p(&["foo", "bar"]).to_value()),
                    ("nchain", Value::Int(2)),
                    ("action", Value::from("get_value")),
                    ("seq", Value::Int(5)),
                ]),
            ),
            // client.set("foo", value=42, chain=None)
            (
                req(
                    6,
                    Action::SetValue(SetValue {
                        chain: Some(ChainCheck::New),
                        nchain: 0,
                        ..set(p(&["foo"]), Some(Value::Int(42)))
                    }),
                ),
                map(&[
                    ("path", p(&["foo"]).to_value()),
                    ("value", Value::Int(42)),
                    ("nchain", Value::Int(0)),
                    ("chain", Value::Nil),
                    ("action", Value::from("set_value")),
                    ("seq", Value::Int(6)),
                ]),
            ),
            // client.delete("foo")
            (
                req(
                    7,
                    Action::SetValue(SetValue {
                        nchain: 0,
                        ..set(p(&["foo"]), None)
                    }),
                ),
                map(&[
                    ("path", p(&["foo"]).to_value()),
                    ("nchain", Value::Int(0)),
                    ("action", Value::from("delete_value")),
                    ("seq", Value::Int(7)),
                ]),
            ),
            // client.delete_tree("foo", nchain=3)
            (
                req(
                    8,
                    Action::DeleteTree {
                        path: p(&["foo"]),
                        nchain: 3,
                    },
                ),
                map(&[
                    ("path", p(&["foo"]).to_value()),
                    ("nchain", Value::Int(3)),
                    ("action", Value::from("delete_tree")),
                    ("seq", Value::Int(8)),
                ]),
            ),
            // client.stop(5)
            (
                req(9, Action::Stop { task: 5 }),
                map(&[
                    ("task", Value::Int(5)),
                    ("action", Value::from("stop")),
                    ("seq", Value::Int(9)),
                ]),
            ),
            // client.get_tock()
            (
                req(10, Action::GetTock),
                map(&[("action", Value::from("get_tock")), ("seq", Value::Int(10))]),
            ),
            // client.serf_mon("test", raw=True)
            (
                req(
                    11,
                    Action::MsgMonitor {
                        topic: "test".into(),
                        raw: true,
                        field: "type",
                    },
                ),
                map(&[
                    ("seq", Value::Int(11)),
                    ("action", Value::from("serfmon")),
                    ("type", Value::from("test")),
                    ("raw", Value::Bool(true)),
                ]),
            ),
            // distkv client log dest /tmp/x
            (
                req(
                    12,
                    Action::Log {
                        path: Some("/tmp/x".into()),
                        fetch: true,
                    },
                ),
                map(&[
                    ("path", Value::from("/tmp/x")),
                    ("fetch", Value::Bool(true)),
                    ("action", Value::from("log")),
                    ("seq", Value::Int(12)),
                ]),
            ),
            // distkv client log stop
            (
                req(
                    13,
                    Action::Log {
                        path: None,
                        fetch: false,
                    },
                ),
                map(&[("action", Value::from("log")), ("seq", Value::Int(13))]),
            ),
            // BaseClientAuth.recv: auth_get
            (
                req(
                    14,
                    Action::Auth(AuthAction::GetUser {
                        typ: "password".into(),
                        ident: "joe".into(),
                    }),
                ),
                map(&[
                    ("typ", Value::from("password")),
                    ("kind", Value::from("user")),
                    ("ident", Value::from("joe")),
                    ("action", Value::from("auth_get")),
                    ("seq", Value::Int(14)),
                ]),
            ),
            // distkv client auth init
            (
                req(
                    15,
                    Action::Auth(AuthAction::SetMethod {
                        typ: Some("password".into()),
                    }),
                ),
                map(&[
                    ("typ", Value::from("password")),
                    ("action", Value::from("set_auth_typ")),
                    ("seq", Value::Int(15)),
                ]),
            ),
        ];
        for (r, python) in cases {
            let ours = r.to_value();
            assert!(same_fields(&ours, &python), "{ours} vs {python}");
            assert_eq!(parse_request(python), Ok(r));
        }
    }

    #[test]
    fn auth_requests_take_their_typed_fields() {
        // typed fields the request lacks are added, first
        let a = Action::Auth(AuthAction::SetUser {
            typ: "password".into(),
            new: true,
            request: map(&[("ident", Value::from("joe"))]),
        });
        assert_eq!(
            a.to_map().build().to_string(),
            r#"{"action": "auth_set", "typ": "password", "new": True, "ident": "joe"}"#
        );
        // and replace what it says, in place
        let a = Action::Auth(AuthAction::SetUser {
            typ: "password".into(),
            new: false,
            request: map(&[
                ("new", Value::Int(1)),
                ("typ", Value::from("other")),
                ("seq", Value::Int(3)),
            ]),
        });
        assert_eq!(
            a.to_map().build().to_string(),
            r#"{"action": "auth_set", "new": False, "typ": "password"}"#
        );
    }

    fn arb_elem() -> impl Strategy<Value = PathElem> {
        prop_oneof![
            Just(Value::Nil),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::Int),
            (i64::MAX as u64 + 1..=u64::MAX).prop_map(Value::UInt),
            "[a-z]{0,6}".prop_map(Value::from),
            proptest::collection::vec(any::<u8>(), 0..4).prop_map(|x| Value::Bytes(x.into())),
        ]
        .prop_map(|v| PathElem::from_value(v).unwrap_or(PathElem::Nil))
    }

    fn arb_path() -> impl Strategy<Value = Path> {
        proptest::collection::vec(arb_elem(), 0..5).prop_map(Path)
    }

    fn arb_value() -> impl Strategy<Value = Value> {
        let scalar = prop_oneof![
            Just(Value::Nil),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::Int),
            any::<f64>().prop_map(Value::Float),
            any::<String>().prop_map(Value::from),
            proptest::collection::vec(any::<u8>(), 0..8).prop_map(|x| Value::Bytes(x.into())),
        ];
        scalar.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(|x| Value::Array(x.into())),
                proptest::collection::vec(("[a-z]{1,4}", inner), 0..4).prop_map(|kv| {
                    Value::Map(kv.into_iter().map(|(k, v)| (Value::from(k), v)).collect())
                }),
            ]
        })
    }

    fn arb_event() -> impl Strategy<Value = NodeEvent> {
        ("[a-z]{1,6}", any::<u64>()).prop_map(|(n, t)| NodeEvent::new(n.as_str(), t))
    }

    fn arb_walk() -> impl Strategy<Value = WalkParams> {
        (
            any::<i64>(),
            0..100usize,
            proptest::option::of(0..100usize),
            any::<bool>(),
        )
            .prop_map(|(nchain, min_depth, max_depth, empty)| WalkParams {
                nchain,
                min_depth,
                max_depth,
                empty,
            })
    }

    fn arb_set_value() -> impl Strategy<Value = SetValue> {
        (
            arb_path(),
            proptest::option::of(arb_value()),
            proptest::option::of(prop_oneof![
                Just(ChainCheck::New),
                arb_event().prop_map(ChainCheck::Head)
            ]),
            proptest::option::of(arb_value()),
            prop_oneof![Just(1i64), any::<i64>()],
            any::<bool>(),
        )
            .prop_map(|(path, value, chain, prev, nchain, idem)| SetValue {
                idem: idem && value.is_some(),
                path,
                value,
                chain,
                prev,
                nchain,
            })
    }

    /// The actions on entries, which may also be internal.
    fn arb_entry_action() -> impl Strategy<Value = Action> {
        prop_oneof![
            (arb_path(), any::<i64>()).prop_map(|(path, nchain)| Action::GetValue { path, nchain }),
            (arb_event(), any::<i64>())
                .prop_map(|(event, nchain)| Action::GetByEvent { event, nchain }),
            arb_set_value().prop_map(Action::SetValue),
            (arb_path(), arb_walk()).prop_map(|(path, walk)| Action::GetTree { path, walk }),
            (arb_path(), any::<bool>()).prop_map(|(path, empty)| Action::Enumerate { path, empty }),
        ]
    }

    fn arb_topic() -> impl Strategy<Value = String> {
        "[a-z.-][a-z:.-]{0,20}"
    }

    fn arb_other_action() -> impl Strategy<Value = Action> {
        prop_oneof![
            (arb_path(), any::<i64>())
                .prop_map(|(path, nchain)| Action::DeleteTree { path, nchain }),
            (arb_path(), any::<bool>(), arb_walk()).prop_map(|(path, fetch, walk)| Action::Watch {
                path,
                fetch,
                walk
            }),
            proptest::collection::vec(any::<bool>(), 8).prop_map(|f| Action::GetState(
                StateFlags {
                    nodes: f[0],
                    known: f[1],
                    superseded: f[2],
                    deleted: f[3],
                    missing: f[4],
                    remote_missing: f[5],
                    stats: f[6],
                    node_drop: f[7],
                }
            )),
            Just(Action::GetTock),
            any::<u64>().prop_map(|task| Action::Stop { task }),
            (
                arb_topic(),
                prop_oneof![
                    arb_value().prop_map(MsgPayload::Data),
                    proptest::collection::vec(any::<u8>(), 0..8).prop_map(MsgPayload::Raw)
                ]
            )
                .prop_map(|(topic, payload)| Action::MsgSend { topic, payload }),
            (
                arb_topic(),
                any::<bool>(),
                prop_oneof![Just("type"), Just("topic")]
            )
                .prop_map(|(topic, raw, field)| Action::MsgMonitor {
                    topic,
                    raw,
                    field
                }),
            proptest::collection::vec(
                (
                    "[a-z]{1,4}",
                    proptest::collection::btree_set(0..50u64, 0..6)
                ),
                0..3
            )
            .prop_map(|nodes| Action::FetchTicks {
                nodes: nodes
                    .into_iter()
                    .map(|(n, t)| (n, t.into_iter().collect()))
                    .collect()
            }),
            ("[a-z]{1,6}", any::<u64>(), any::<bool>())
                .prop_map(|(node, max, current)| { Action::EnumNode { node, max, current } }),
            "[a-z]{1,6}".prop_map(|node| Action::KillNode { node }),
            arb_path().prop_map(|path| Action::Root { path }),
            (proptest::option::of(any::<String>()), any::<bool>())
                .prop_map(|(path, fetch)| Action::Log { path, fetch }),
            any::<String>().prop_map(|path| Action::Save { path }),
            (
                arb_path(),
                any::<char>(),
                proptest::option::of(any::<String>())
            )
                .prop_map(|(path, mode, acl)| Action::TestAcl { path, mode, acl }),
            "[a-z_]{1,12}".prop_map(Action::Unknown),
        ]
    }

    fn arb_auth_action() -> impl Strategy<Value = AuthAction> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..40)
                .prop_map(|pubkey| AuthAction::KeyExchange { pubkey }),
            ("[a-z]{1,8}", proptest::option::of("[a-z]{1,8}"))
                .prop_map(|(typ, ident)| AuthAction::ListUsers { typ, ident }),
            ("[a-z]{1,8}", "[a-z]{1,8}")
                .prop_map(|(typ, ident)| AuthAction::GetUser { typ, ident }),
            proptest::option::of("[a-z]{1,8}").prop_map(|typ| AuthAction::SetMethod { typ }),
        ]
    }

    proptest! {
        #[test]
        fn prop_direct_encoding_matches_the_map(
            action in prop_oneof![arb_entry_action(), arb_other_action()],
            seq in prop_oneof![0..=300u64, any::<u64>()],
        ) {
            let mut direct = vec![0xc0];
            action.encode_with_seq(seq, &mut direct);
            let mut general = vec![0xc0];
            crate::msgpack::encode(&action.to_map().set("seq", seq).build(), &mut general);
            prop_assert_eq!(direct, general);
        }

        #[test]
        fn prop_entry_actions_round_trip(
            action in arb_entry_action(),
            seq in 1..=u64::MAX,
            is_internal in any::<bool>(),
            streaming in any::<bool>(),
        ) {
            let action = if is_internal {
                // an internal action's path is in the system subtree
                match action {
                    Action::GetValue { path, nchain } => Action::GetValue { path: system(path), nchain },
                    Action::SetValue(s) => Action::SetValue(SetValue { path: system(s.path.clone()), ..s }),
                    Action::GetTree { path, walk } => Action::GetTree { path: system(path), walk },
                    Action::Enumerate { path, empty } => Action::Enumerate { path: system(path), empty },
                    other => other,
                }
            } else {
                action
            };
            let r = Request { seq, action, streaming, internal: is_internal };
            prop_assert_eq!(parse_request(r.to_value()), Ok(r));
        }

        #[test]
        fn prop_other_actions_round_trip(
            action in prop_oneof![arb_other_action(), arb_auth_action().prop_map(Action::Auth)],
            seq in 1..=u64::MAX,
            streaming in any::<bool>(),
        ) {
            // topics starting with ':' are refused, and names ending in
            // `_internal` are internal
            let valid = match &action {
                Action::MsgSend { topic, .. } | Action::MsgMonitor { topic, .. } => !topic.starts_with(':'),
                Action::Unknown(n) => !n.ends_with("_internal") && crate::request::parse_request(
                    map(&[("action", Value::from(n.as_str())), ("seq", Value::Int(1))])
                ).is_ok_and(|r| r.action == action),
                _ => true,
            };
            prop_assume!(valid);
            let r = Request { seq, action, streaming, internal: false };
            prop_assert_eq!(parse_request(r.to_value()), Ok(r));
        }
    }

    /// `path` below the system subtree.
    fn system(path: Path) -> Path {
        let mut v = vec![PathElem::Nil];
        v.extend(path.0);
        Path(v)
    }
}
