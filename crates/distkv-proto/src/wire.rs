//! Wire forms of the data model: chains, update events, range sets, paths.

use distkv_tree::{Chain, NodeEvent, NodeName, Path, PathElem, RangeSet, UpdateEvent, Value};

use crate::msgpack;

use crate::value_map::{MapBuilder, MapExt};

/// A message field could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// A required field is missing.
    #[error("missing field '{0}'")]
    Missing(&'static str),
    /// A field has the wrong type or an invalid value.
    #[error("bad field '{field}': {why}")]
    Bad {
        /// The field.
        field: &'static str,
        /// What is wrong.
        why: String,
    },
}

fn bad(field: &'static str, why: impl Into<String>) -> WireError {
    WireError::Bad {
        field,
        why: why.into(),
    }
}

/// The most chain links read from the wire.
const MAX_WIRE_LINKS: usize = 64;

/// Encodes a chain as nested `{node, tick, prev}` maps with at most `n`
/// links (`n` < 0: all). Returns `None` for `n` = 0.
pub fn chain_to_value(chain: &Chain, n: i64) -> Option<Value> {
    if n == 0 {
        return None;
    }
    let links = chain.links();
    let count = if n < 0 {
        links.len()
    } else {
        links.len().min(usize::try_from(n).unwrap_or(usize::MAX))
    };
    let cut = count < links.len() || !chain.is_complete();
    let mut tail: Option<Value> = if cut { None } else { Some(Value::Nil) };
    for l in links[..count].iter().rev() {
        let mut m = MapBuilder::new()
            .set("node", l.node.as_ref())
            .set("tick", Value::from_u64(l.tick));
        if let Some(t) = tail.take() {
            m.push("prev", t);
        }
        tail = Some(m.build());
    }
    tail
}

/// The replication counters in the `stats` of a `get_state` reply, in the
/// order status displays show them.
pub const REPLICATION_COUNTERS: [&str; 6] = [
    "gossip_updates",
    "pulled",
    "pull_rounds",
    "broadcast",
    "not_broadcast",
    "gossip_rejected",
];

/// The server's figures in the `stats` of a `get_state` reply that status
/// displays show, in their order.
pub const STATUS_FIGURES: [&str; 6] = [
    "backend",
    "ready",
    "entries",
    "connections",
    "watchers",
    "state_log",
];

/// Appends the msgpack encoding of `path` as an array, byte for byte what
/// encoding [`Path::to_value`] gives.
pub fn encode_path(path: &Path, out: &mut Vec<u8>) {
    let elems = path.elems();
    let len = u32::try_from(elems.len()).unwrap_or(u32::MAX);
    msgpack::write_array_len(out, len);
    for e in elems.iter().take(len as usize) {
        match e {
            PathElem::Str(s) => msgpack::write_str(out, s),
            other => msgpack::encode(&other.to_value(), out),
        }
    }
}

/// Appends the msgpack encoding of a chain, byte for byte what encoding
/// [`chain_to_value`]`(chain, -1)` gives; `false` (nothing written) where
/// that is `None`.
fn encode_chain(chain: &Chain, out: &mut Vec<u8>) -> bool {
    let links = chain.links();
    let complete = chain.is_complete();
    if links.is_empty() {
        if complete {
            msgpack::write_nil(out);
        }
        return complete;
    }
    for (i, l) in links.iter().enumerate() {
        let last = i + 1 == links.len();
        msgpack::write_map_len(out, if last && !complete { 2 } else { 3 });
        msgpack::write_str(out, "node");
        msgpack::write_str(out, l.node.as_ref());
        msgpack::write_str(out, "tick");
        msgpack::write_u64(out, l.tick);
        if !last {
            msgpack::write_str(out, "prev");
        } else if complete {
            msgpack::write_str(out, "prev");
            msgpack::write_nil(out);
        }
    }
    true
}

/// Appends the msgpack map `{path, value?, chain?, tock}` of a change with
/// its whole chain: the state log's change record and a `get_tree` entry,
/// written without building a value first (byte for byte what encoding
/// the equivalent [`MapBuilder`] map gives).
pub fn encode_change(ev: &UpdateEvent, out: &mut Vec<u8>) {
    encode_entry(&ev.path, ev.value.as_ref(), &ev.chain, ev.tock, out);
}

/// [`encode_change`] of an entry's parts, for encoding from the tree
/// without cloning them into an event.
pub fn encode_entry(
    path: &Path,
    value: Option<&Value>,
    chain: &Chain,
    tock: u64,
    out: &mut Vec<u8>,
) {
    let start = out.len();
    // the map's length is known once the chain is: patched below
    msgpack::write_map_len(out, 4);
    let mut fields = 2;
    msgpack::write_str(out, "path");
    encode_path(path, out);
    if let Some(v) = value {
        msgpack::write_str(out, "value");
        msgpack::encode(v, out);
        fields += 1;
    }
    let key = out.len();
    msgpack::write_str(out, "chain");
    if encode_chain(chain, out) {
        fields += 1;
    } else {
        out.truncate(key);
    }
    msgpack::write_str(out, "tock");
    msgpack::write_u64(out, tock);
    // a fixmap header: one byte, 0x80 | fields (at most 4)
    if let Some(b) = out.get_mut(start) {
        *b = 0x80 | fields;
    }
}

/// Decodes a change record laid out as [`encode_change`] writes it
/// (`{path, value?, chain?, tock}`: a plain path of scalars, nested
/// `{node, tick, prev}` links), straight from its bytes, without building
/// the record as a value first. `max_depth` is the nesting limit the
/// record as a whole must keep.
///
/// `None` for anything else: another layout or other keys, a field that
/// is not what it should be, a record nested too deep. Such a record is
/// decoded the general way (the map, then [`update_from_value`]), which
/// agrees with this function wherever it answers; the state file loader
/// uses it as the fast way for its most common records.
///
/// ```
/// use distkv_proto::msgpack;
/// use distkv_proto::wire::{decode_change, encode_change, update_from_value};
/// use distkv_tree::{Chain, NodeEvent, NodeName, Path, UpdateEvent, Value};
///
/// let ev = UpdateEvent {
///     path: Path::from_strs(&["a", "b"]),
///     chain: Chain::single(NodeEvent::new("n1", 7)),
///     value: Some(Value::Int(42)),
///     tock: 9,
/// };
/// let mut bytes = Vec::new();
/// encode_change(&ev, &mut bytes);
/// let intern = |n: &str| NodeName::from(n);
/// assert_eq!(decode_change(&bytes, 64, &intern), Some(ev));
/// ```
pub fn decode_change(
    buf: &[u8],
    max_depth: usize,
    intern: &dyn Fn(&str) -> NodeName,
) -> Option<UpdateEvent> {
    use msgpack::Item;
    if max_depth < 2 {
        return None;
    }
    let mut p = msgpack::Pull::new(buf);
    let Ok(Item::Map(n)) = p.item() else {
        return None;
    };
    let (mut path, mut value, mut chain, mut tock) = (None, None, None, None);
    for _ in 0..n {
        let Ok(Item::Str(key)) = p.item() else {
            return None;
        };
        match key {
            "path" if path.is_none() => path = Some(pull_path(&mut p)?),
            "value" if value.is_none() => value = Some(p.value(max_depth - 1).ok()?),
            "chain" if chain.is_none() => chain = Some(pull_chain(&mut p, max_depth, intern)?),
            "tock" if tock.is_none() => match p.item() {
                Ok(Item::Scalar(v)) => tock = Some(v.as_u64()?),
                _ => return None,
            },
            _ => return None,
        }
    }
    if !p.is_done() {
        return None;
    }
    Some(UpdateEvent {
        path: path?,
        chain: chain?,
        value,
        tock: tock?,
    })
}

/// A path of scalars, as [`path_from_value`] reads it (not a packed
/// one, nor binary elements: `None`).
pub(crate) fn pull_path(p: &mut msgpack::Pull<'_>) -> Option<Path> {
    use msgpack::Item;
    let Ok(Item::Array(n)) = p.item() else {
        return None;
    };
    let mut elems = Vec::with_capacity(usize::try_from(n).ok()?.min(64));
    for _ in 0..n {
        elems.push(match p.item().ok()? {
            Item::Str(s) => PathElem::Str(s.into()),
            Item::Scalar(v) => PathElem::from_value(v).ok()?,
            _ => return None,
        });
    }
    Some(Path(elems))
}

/// A chain of nested `{node, tick, prev}` maps, `prev` last, as
/// [`chain_from_value`] reads it; the first map is nested in the record.
fn pull_chain(
    p: &mut msgpack::Pull<'_>,
    max_depth: usize,
    intern: &dyn Fn(&str) -> NodeName,
) -> Option<Chain> {
    use msgpack::Item;
    let Ok(Item::Map(mut n)) = p.item() else {
        return None;
    };
    let mut links = Vec::new();
    loop {
        // this link's map is nested one deeper than the last one
        if links.len() + 1 >= max_depth || links.len() >= MAX_WIRE_LINKS {
            return None;
        }
        let (mut node, mut tick, mut next) = (None, None, None);
        for i in 0..n {
            let Ok(Item::Str(key)) = p.item() else {
                return None;
            };
            match (key, p.item().ok()?) {
                ("node", Item::Str(s)) if node.is_none() => node = Some(intern(s)),
                ("tick", Item::Scalar(v)) if tick.is_none() => tick = Some(v.as_u64()?),
                ("prev", Item::Scalar(Value::Nil)) if i + 1 == n => next = Some(None),
                ("prev", Item::Map(m)) if i + 1 == n => next = Some(Some(m)),
                _ => return None,
            }
        }
        links.push(NodeEvent {
            node: node?,
            tick: tick?,
        });
        match next {
            // no `prev`: cut short
            None => return Chain::new(links, false).ok(),
            Some(None) => return Chain::new(links, true).ok(),
            Some(Some(m)) => n = m,
        }
    }
}

/// Reads one `{node, tick}` link.
pub fn event_from_value(v: &Value) -> Result<NodeEvent, WireError> {
    let (node, tick) = event_fields(v)?;
    Ok(NodeEvent::new(node, tick))
}

/// The node name and tick of one `{node, tick}` link, borrowed.
fn event_fields(v: &Value) -> Result<(&str, u64), WireError> {
    let node = v
        .field("node")
        .ok_or(WireError::Missing("node"))?
        .as_str()
        .ok_or_else(|| bad("node", "not a string"))?;
    let tick = v
        .field("tick")
        .ok_or(WireError::Missing("tick"))?
        .as_u64()
        .ok_or_else(|| bad("tick", "not a non-negative integer"))?;
    Ok((node, tick))
}

/// Reads a chain from nested `{node, tick, prev}` maps; `v` may also be an
/// update message with the chain flattened into it. Node names are passed
/// through `intern` so that equal names share one allocation.
pub fn chain_from_value(v: &Value, intern: &dyn Fn(&str) -> NodeName) -> Result<Chain, WireError> {
    let mut links = Vec::new();
    let mut cur = v;
    let complete = loop {
        // the name is allocated once, by `intern`
        let (node, tick) = event_fields(cur)?;
        links.push(NodeEvent {
            node: intern(node),
            tick,
        });
        if links.len() > MAX_WIRE_LINKS {
            return Err(bad("chain", "too many links"));
        }
        match cur.field("prev") {
            None => break false,
            Some(Value::Nil) => break true,
            Some(p @ Value::Map(_)) => cur = p,
            Some(_) => return Err(bad("prev", "not a map")),
        }
    };
    Chain::new(links, complete).map_err(|e| bad("chain", e.to_string()))
}

/// Reads a `path` value: an array of scalars (or an ext-3 packed path).
pub fn path_from_value(v: Value) -> Result<Path, WireError> {
    match v {
        Value::Ext(e) if e.tag == 3 => {
            let data = e.data;
            let limits = crate::msgpack::Limits::default();
            let mut elems = distkv_tree::ThinVec::new();
            let mut rest = &data[..];
            while !rest.is_empty() {
                let (item, used) = crate::msgpack::decode(rest, &limits)
                    .map_err(|e| bad("path", e.to_string()))?
                    .ok_or_else(|| bad("path", "truncated packed path"))?;
                elems.push(item);
                rest = rest.get(used..).unwrap_or(&[]);
            }
            Path::from_value(Value::Array(elems)).map_err(|e| bad("path", e.to_string()))
        }
        v => Path::from_value(v).map_err(|e| bad("path", e.to_string())),
    }
}

/// Encodes an update event in the flattened form
/// `{path, value?, node, tick, prev, tock}` (at most `max_links` links).
pub fn update_to_value(ev: &UpdateEvent, max_links: usize) -> Value {
    let mut m = MapBuilder::new().set("path", ev.path.to_value());
    if let Some(v) = &ev.value {
        m.push("value", v.clone());
    }
    let n = i64::try_from(max_links).unwrap_or(i64::MAX);
    if let Some(Value::Map(chain)) = chain_to_value(&ev.chain, n) {
        for (k, v) in chain {
            if let Some(k) = k.as_str() {
                m.push(k, v);
            }
        }
    }
    m.set("tock", Value::from_u64(ev.tock)).build()
}

/// Reads an update event in either form (`chain` key or flattened).
pub fn update_from_value(
    mut v: Value,
    intern: &dyn Fn(&str) -> NodeName,
) -> Result<UpdateEvent, WireError> {
    let path = path_from_value(v.take_field("path").ok_or(WireError::Missing("path"))?)?;
    update_at_path(v, path, intern)
}

/// Reads an update event whose path is known already (a tree stream
/// sends it shortened); a `path` field is ignored.
pub fn update_at_path(
    mut v: Value,
    path: Path,
    intern: &dyn Fn(&str) -> NodeName,
) -> Result<UpdateEvent, WireError> {
    let chain = match v.field("chain") {
        Some(c) => chain_from_value(c, intern)?,
        None => chain_from_value(&v, intern)?,
    };
    let tock = v
        .field("tock")
        .ok_or(WireError::Missing("tock"))?
        .as_u64()
        .ok_or_else(|| bad("tock", "not a non-negative integer"))?;
    Ok(UpdateEvent {
        path,
        chain,
        value: v.take_field("value"),
        tock,
    })
}

/// Encodes a range set: ints for single ticks, `[a, b]` for ranges.
pub fn ranges_to_value(r: &RangeSet) -> Value {
    Value::Array(
        r.ranges()
            .map(|(a, b)| {
                if b - a == 1 {
                    Value::from_u64(a)
                } else {
                    Value::Array(vec![Value::from_u64(a), Value::from_u64(b)].into())
                }
            })
            .collect(),
    )
}

/// Reads a range set in either item form.
pub fn ranges_from_value(v: &Value) -> Result<RangeSet, WireError> {
    let items = v.as_array().ok_or_else(|| bad("ranges", "not an array"))?;
    let mut r = RangeSet::new();
    for it in items {
        match it {
            Value::Array(ab) => match ab.as_slice() {
                [a, b] => {
                    let a = a.as_u64().ok_or_else(|| bad("ranges", "bad start"))?;
                    let b = b.as_u64().ok_or_else(|| bad("ranges", "bad end"))?;
                    r.insert_range(a, b);
                }
                _ => return Err(bad("ranges", "a range needs two items")),
            },
            t => r.insert(t.as_u64().ok_or_else(|| bad("ranges", "bad tick"))?),
        }
    }
    Ok(r)
}

/// Where the deleter group is stored: `None actor del`, a record
/// `{nodes: [NAME, …]}` naming the servers that must all have seen a
/// deletion before its tombstone is purged.
pub fn deleter_path() -> Path {
    Path(vec![
        distkv_tree::PathElem::Nil,
        "actor".into(),
        "del".into(),
    ])
}

/// The servers a deleter group record names; none for anything that is
/// not such a record.
///
/// ```
/// use distkv_proto::wire::deleter_nodes;
/// use distkv_tree::Value;
/// let record = Value::Map(vec![(
///     Value::from("nodes"),
///     Value::Array(vec![Value::from("one"), Value::Int(2)].into()),
/// )].into());
/// assert_eq!(deleter_nodes(Some(&record)), ["one"]);
/// assert!(deleter_nodes(None).is_empty());
/// ```
pub fn deleter_nodes(record: Option<&Value>) -> Vec<String> {
    record
        .and_then(|v| v.get("nodes"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|n| n.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn intern(s: &str) -> NodeName {
        NodeName::from(s)
    }

    #[test]
    fn chain_names_are_made_by_intern_once_each() {
        let c =
            Chain::new(vec![NodeEvent::new("a", 5), NodeEvent::new("b", 9)], true).expect("chain");
        let v = chain_to_value(&c, -1).expect("some");
        let made = std::cell::RefCell::new(Vec::new());
        let read = chain_from_value(&v, &|n| {
            let name = NodeName::from(n);
            made.borrow_mut().push(name.clone());
            name
        })
        .expect("chain");
        assert_eq!(read, c);
        let made = made.borrow();
        assert_eq!(made.len(), 2, "one name per link");
        for (link, name) in read.links().iter().zip(made.iter()) {
            // the chain holds the very names `intern` made
            assert_eq!(link.node.as_str().as_ptr(), name.as_str().as_ptr());
        }
    }

    #[test]
    fn chain_wire_forms() {
        let c =
            Chain::new(vec![NodeEvent::new("a", 5), NodeEvent::new("b", 9)], true).expect("chain");
        let full = chain_to_value(&c, -1).expect("some");
        assert_eq!(
            full.to_string(),
            r#"{"node": "a", "tick": 5, "prev": {"node": "b", "tick": 9, "prev": None}}"#
        );
        assert_eq!(chain_from_value(&full, &intern).expect("parse"), c);
        let one = chain_to_value(&c, 1).expect("some");
        assert_eq!(one.to_string(), r#"{"node": "a", "tick": 5}"#);
        let back = chain_from_value(&one, &intern).expect("parse");
        assert!(!back.is_complete());
        assert!(chain_to_value(&c, 0).is_none());
    }

    #[test]
    fn update_round_trip() {
        let ev = UpdateEvent {
            path: Path::from_strs(&["x", "y"]),
            chain: Chain::single(NodeEvent::new("a", 1)),
            value: Some(Value::Int(3)),
            tock: 12,
        };
        let v = update_to_value(&ev, 5);
        assert_eq!(update_from_value(v, &intern).expect("parse"), ev);
        let del = UpdateEvent { value: None, ..ev };
        let v = update_to_value(&del, 5);
        assert!(v.get("value").is_none());
        assert_eq!(update_from_value(v, &intern).expect("parse"), del);
    }

    #[test]
    fn ranges_round_trip() {
        let r: RangeSet = [1, 2, 3, 7].into_iter().collect();
        let v = ranges_to_value(&r);
        assert_eq!(v.to_string(), "[[1, 4], 7]");
        assert_eq!(ranges_from_value(&v).expect("parse"), r);
        assert!(ranges_from_value(&Value::Int(3)).is_err());
    }

    #[test]
    fn hostile_chains_are_errors() {
        let mut v = Value::Nil;
        for i in 0..100 {
            v = MapBuilder::new()
                .set("node", format!("n{i}"))
                .set("tick", 1)
                .set("prev", v)
                .build();
        }
        assert!(chain_from_value(&v, &intern).is_err());
        let dup = MapBuilder::new()
            .set("node", "a")
            .set("tick", 1)
            .set(
                "prev",
                MapBuilder::new().set("node", "a").set("tick", 2).build(),
            )
            .build();
        assert!(chain_from_value(&dup, &intern).is_err());
        assert!(chain_from_value(&Value::Str("x".into()), &intern).is_err());
    }

    /// The change record as the map it is meant to equal.
    fn change_value(ev: &UpdateEvent) -> Value {
        let mut m = MapBuilder::new().set("path", ev.path.to_value());
        if let Some(v) = &ev.value {
            m.push("value", v.clone());
        }
        if let Some(c) = chain_to_value(&ev.chain, -1) {
            m.push("chain", c);
        }
        m.set("tock", Value::from_u64(ev.tock)).build()
    }

    proptest! {
        #[test]
        fn a_change_encodes_as_its_map_does(
            elems in proptest::collection::vec(prop_oneof![
                "[a-z]{0,30}".prop_map(Value::from),
                any::<i64>().prop_map(Value::Int),
                any::<u64>().prop_map(Value::from_u64),
                any::<f64>().prop_map(Value::Float),
                any::<bool>().prop_map(Value::Bool),
                proptest::collection::vec(any::<u8>(), 0..4).prop_map(|x| Value::Bytes(x.into())),
                Just(Value::Nil),
            ], 0..6),
            value in proptest::option::of(prop_oneof![
                "[a-z]{0,40}".prop_map(Value::from),
                any::<i64>().prop_map(Value::Int),
                proptest::collection::vec(any::<i64>().prop_map(Value::Int), 0..20)
                    .prop_map(|x| Value::Array(x.into())),
            ]),
            ticks in proptest::collection::vec(1..u64::MAX, 1..20),
            complete in any::<bool>(),
            tock in any::<u64>(),
        ) {
            let links = ticks
                .iter()
                .enumerate()
                .map(|(i, t)| NodeEvent::new(format!("n{i}").as_str(), *t))
                .collect();
            let path = Path(
                elems
                    .into_iter()
                    .filter_map(|v| PathElem::from_value(v).ok())
                    .collect(),
            );
            let ev = UpdateEvent {
                path,
                chain: Chain::new(links, complete).expect("chain"),
                value,
                tock,
            };
            let mut direct = Vec::new();
            encode_change(&ev, &mut direct);
            prop_assert_eq!(&direct, &msgpack::to_vec(&change_value(&ev)));
            // and decodes straight back, as the general way does (binary
            // path elements are left to the general way)
            let general = msgpack::decode_exact(&direct, &msgpack::Limits::default())
                .map_err(|e| e.to_string())
                .and_then(|v| update_from_value(v, &intern).map_err(|e| e.to_string()));
            prop_assert_eq!(general.as_ref(), Ok(&ev));
            let fast = decode_change(&direct, msgpack::Limits::default().max_depth, &intern);
            if ev.path.elems().iter().any(|e| matches!(e, PathElem::Bytes(_))) {
                prop_assert_eq!(fast, None);
            } else {
                prop_assert_eq!(fast, Some(ev));
            }
        }

        /// Wherever the fast way answers, even for damaged or unusual
        /// records, the general way gives the same event.
        #[test]
        fn the_fast_way_agrees_with_the_general_way(
            ticks in proptest::collection::vec(1..50u64, 1..4),
            complete in any::<bool>(),
            value in proptest::option::of(any::<i64>().prop_map(Value::Int)),
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
            cut in any::<prop::sample::Index>(),
            cut_it in any::<bool>(),
            max_depth in 0usize..6,
        ) {
            let links = ticks
                .iter()
                .enumerate()
                .map(|(i, t)| NodeEvent::new(format!("n{i}").as_str(), *t))
                .collect();
            let ev = UpdateEvent {
                path: Path::from_strs(&["a", "b"]),
                chain: Chain::new(links, complete).expect("chain"),
                value,
                tock: 5,
            };
            let mut bytes = Vec::new();
            encode_change(&ev, &mut bytes);
            for (at, b) in &edits {
                let i = at.index(bytes.len());
                bytes[i] = *b;
            }
            if cut_it {
                bytes.truncate(cut.index(bytes.len()));
            }
            let limits = msgpack::Limits { max_depth, ..msgpack::Limits::default() };
            if let Some(fast) = decode_change(&bytes, max_depth, &intern) {
                let v = msgpack::decode_exact(&bytes, &limits);
                prop_assert!(v.is_ok(), "{:?}", v);
                let general = v.ok().map(|v| update_from_value(v, &intern));
                prop_assert_eq!(general.and_then(Result::ok), Some(fast));
            }
        }
    }

    #[test]
    fn other_layouts_are_left_to_the_general_way() {
        let intern = |n: &str| NodeName::from(n);
        let chain = MapBuilder::new().set("node", "a").set("tick", 1).build();
        let base = || {
            MapBuilder::new()
                .set("path", Value::Array(vec![Value::from("x")].into()))
                .set("chain", chain.clone())
                .set("tock", 3)
        };
        let ok = msgpack::to_vec(&base().build());
        assert!(decode_change(&ok, 64, &intern).is_some());
        for odd in [
            base().set("depth", 1).build(),
            base().set("node", "a").build(),
            MapBuilder::new()
                .set("path", Value::Array(vec![Value::from("x")].into()))
                .set("node", "a")
                .set("tick", 1)
                .set("tock", 3)
                .build(),
            MapBuilder::new()
                .set("nodes", Value::Map(Default::default()))
                .build(),
            MapBuilder::new()
                .set("path", Value::ext(3, vec![0xa1, b'x']))
                .set("chain", chain.clone())
                .set("tock", 3)
                .build(),
        ] {
            assert_eq!(
                decode_change(&msgpack::to_vec(&odd), 64, &intern),
                None,
                "{odd}"
            );
        }
        // trailing bytes
        let mut more = ok.clone();
        more.push(0xc0);
        assert_eq!(decode_change(&more, 64, &intern), None);
    }
}
