//! Typed server-to-server messages: what servers publish through their
//! transport (server-protocol §1.2, §2, §4).
//!
//! Every message is one msgpack map. Three topics carry them:
//! * `update`: one change ([`UpdateMessage::Change`]), a notice of a change
//!   too large for gossip that peers fetch directly
//!   ([`UpdateMessage::Notice`], `_fetch: true`), or several small changes
//!   in one message ([`UpdateMessage::Batch`], `_batch: [...]`, an
//!   extension of ours; the 2019 original reads only single changes);
//! * `info`: tick bookkeeping ([`Info`]);
//! * `ping`: the ping actor ([`Ping`]).
//!
//! Messages too large for one transport event are split into fragments by
//! [`crate::split`] before they are published; fragments are not messages
//! of their own here.
//!
//! Decoding is strict about the fields it needs and ignores fields it does
//! not know, so that later protocol versions can add some.

use distkv_tree::{NodeName, RangeSet, UpdateEvent, Value};

use crate::value_map::{MapBuilder, MapExt};
use crate::wire::{
    WireError, ranges_from_value, ranges_to_value, update_from_value, update_to_value,
};

/// The topic a message belongs to (its event name is `<root>.<topic>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Topic {
    /// Changes.
    Update,
    /// Tick bookkeeping: ticks, missing, known, deleted.
    Info,
    /// The ping actor.
    Ping,
}

impl Topic {
    /// Every topic, in a fixed order.
    pub const ALL: [Topic; 3] = [Topic::Update, Topic::Info, Topic::Ping];

    /// The last word of the topic's event name.
    pub fn suffix(self) -> &'static str {
        match self {
            Topic::Update => "update",
            Topic::Info => "info",
            Topic::Ping => "ping",
        }
    }
}

/// Per node, a set of ticks.
pub type NodeTicks = Vec<(String, RangeSet)>;

/// What travels on the `update` topic.
#[derive(Clone, Debug, PartialEq)]
pub enum UpdateMessage {
    /// One change, value included.
    Change(UpdateEvent),
    /// A change whose value is too large for gossip: the value is left
    /// out and peers fetch the entry from the change's origin.
    Notice(UpdateEvent),
    /// Several changes in one message.
    Batch(Vec<UpdateEvent>),
}

/// An `info` message: tick bookkeeping.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Info {
    /// The sender.
    pub node: String,
    /// The sender's own tick, if it has data.
    pub tick: Option<u64>,
    /// A fresh tock of the sender.
    pub tock: Option<u64>,
    /// Per node, the highest tick the sender knows of.
    pub ticks: Vec<(String, u64)>,
    /// Ticks the sender misses.
    pub missing: NodeTicks,
    /// Ticks that are superseded or were never live (nothing to fetch).
    pub known: NodeTicks,
    /// Ticks that were deletions.
    pub deleted: NodeTicks,
    /// Nodes retired with `kill_node` (the original's `node_drop`): each
    /// server drops them too, unless it still holds an entry last
    /// changed by one of them.
    pub node_drop: Vec<String>,
}

/// A ping.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ping {
    /// The sender.
    pub node: String,
    /// `(tock, tick)` of the sender; `None` while it has no data.
    pub value: Option<(u64, u64)>,
    /// Recently heard servers, the sender first.
    pub history: Vec<String>,
    /// Per node, the tick up to which the sender has seen everything
    /// (for purging tombstones).
    pub seen: Vec<(String, u64)>,
}

/// Any server-to-server message.
#[derive(Clone, Debug, PartialEq)]
pub enum GossipMessage {
    /// On the `update` topic.
    Update(UpdateMessage),
    /// On the `info` topic.
    Info(Info),
    /// On the `ping` topic.
    Ping(Ping),
}

impl GossipMessage {
    /// The topic the message is published on.
    pub fn topic(&self) -> Topic {
        match self {
            GossipMessage::Update(_) => Topic::Update,
            GossipMessage::Info(_) => Topic::Info,
            GossipMessage::Ping(_) => Topic::Ping,
        }
    }

    /// The message as a msgpack map; changes carry at most `max_links`
    /// chain links.
    pub fn to_value(&self, max_links: usize) -> Value {
        match self {
            GossipMessage::Update(u) => u.to_value(max_links),
            GossipMessage::Info(i) => i.to_value(),
            GossipMessage::Ping(p) => p.to_value(),
        }
    }

    /// Reads a message received on `topic`; `intern` shares node names.
    pub fn from_value(
        topic: Topic,
        v: Value,
        intern: &dyn Fn(&str) -> NodeName,
    ) -> Result<GossipMessage, WireError> {
        Ok(match topic {
            Topic::Update => GossipMessage::Update(UpdateMessage::from_value(v, intern)?),
            Topic::Info => GossipMessage::Info(Info::from_value(&v)?),
            Topic::Ping => GossipMessage::Ping(Ping::from_value(&v)?),
        })
    }
}

fn bad(field: &'static str, why: &str) -> WireError {
    WireError::Bad {
        field,
        why: why.to_owned(),
    }
}

/// The most changes one batch may hold when read.
pub const MAX_BATCH: usize = 4096;

impl UpdateMessage {
    /// The message as a msgpack map.
    pub fn to_value(&self, max_links: usize) -> Value {
        match self {
            UpdateMessage::Change(ev) => update_to_value(ev, max_links),
            UpdateMessage::Notice(ev) => {
                let mut v = update_to_value(ev, max_links);
                if let Value::Map(m) = &mut v {
                    m.retain(|(k, _)| k.as_str() != Some("value"));
                    m.push((Value::Str("_fetch".into()), Value::Bool(true)));
                }
                v
            }
            UpdateMessage::Batch(evs) => {
                batch_value(evs.iter().map(|e| update_to_value(e, max_links)).collect())
            }
        }
    }

    /// Reads an `update` message.
    pub fn from_value(
        v: Value,
        intern: &dyn Fn(&str) -> NodeName,
    ) -> Result<UpdateMessage, WireError> {
        if let Some(items) = v.field("_batch") {
            let items = items
                .as_array()
                .ok_or_else(|| bad("_batch", "not an array"))?;
            if items.len() > MAX_BATCH {
                return Err(bad("_batch", "too many changes"));
            }
            let mut out = Vec::with_capacity(items.len());
            for it in items {
                out.push(update_from_value(it.clone(), intern)?);
            }
            return Ok(UpdateMessage::Batch(out));
        }
        let notice = v.field("_fetch").and_then(Value::as_bool) == Some(true);
        let ev = update_from_value(v, intern)?;
        Ok(if notice {
            UpdateMessage::Notice(UpdateEvent { value: None, ..ev })
        } else {
            UpdateMessage::Change(ev)
        })
    }
}

/// A batch of changes already in their wire form (see
/// [`UpdateMessage::Batch`]).
pub fn batch_value(changes: Vec<Value>) -> Value {
    MapBuilder::new()
        .set("_batch", Value::Array(changes.into()))
        .build()
}

fn node_ticks_to_value(sets: &[(String, RangeSet)]) -> Value {
    let mut m = MapBuilder::new();
    for (n, r) in sets {
        m.push(n, ranges_to_value(r));
    }
    m.build()
}

/// Reads `{node: ranges}`; entries that are not of that form are skipped.
fn node_ticks_from_value(v: Option<&Value>) -> NodeTicks {
    let Some(m) = v.and_then(Value::as_map) else {
        return Vec::new();
    };
    m.iter()
        .filter_map(|(k, r)| Some((k.as_str()?.to_owned(), ranges_from_value(r).ok()?)))
        .collect()
}

fn node_numbers_to_value(items: &[(String, u64)]) -> Value {
    let mut m = MapBuilder::new();
    for (n, t) in items {
        m.push(n, Value::from_u64(*t));
    }
    m.build()
}

fn node_numbers_from_value(v: Option<&Value>) -> Vec<(String, u64)> {
    v.and_then(Value::as_map)
        .unwrap_or(&[])
        .iter()
        .filter_map(|(k, t)| Some((k.as_str()?.to_owned(), t.as_u64()?)))
        .collect()
}

fn sender(v: &Value) -> Result<String, WireError> {
    match v.field("node") {
        Some(Value::Str(s)) if !s.is_empty() => Ok(s.to_string()),
        Some(_) => Err(bad("node", "not a name")),
        None => Err(WireError::Missing("node")),
    }
}

impl Info {
    /// The message as a msgpack map. Empty sets are left out.
    pub fn to_value(&self) -> Value {
        let mut m = MapBuilder::new();
        if !self.ticks.is_empty() {
            m.push("ticks", node_numbers_to_value(&self.ticks));
        }
        if !self.missing.is_empty() {
            m.push("missing", node_ticks_to_value(&self.missing));
        }
        if !self.known.is_empty() {
            m.push("known", node_ticks_to_value(&self.known));
        }
        if !self.deleted.is_empty() {
            m.push("deleted", node_ticks_to_value(&self.deleted));
        }
        if !self.node_drop.is_empty() {
            let names = self.node_drop.iter().map(|n| Value::from(n.as_str()));
            m.push("node_drop", Value::Array(names.collect()));
        }
        m.set("node", self.node.as_str())
            .set("tick", self.tick.map_or(Value::Nil, Value::from_u64))
            .set_opt("tock", self.tock.map(Value::from_u64))
            .build()
    }

    /// Reads an `info` message (`superseded` is read as `known`).
    pub fn from_value(v: &Value) -> Result<Info, WireError> {
        Ok(Info {
            node: sender(v)?,
            tick: v.field("tick").and_then(Value::as_u64),
            tock: v.field("tock").and_then(Value::as_u64),
            ticks: node_numbers_from_value(v.field("ticks")),
            missing: node_ticks_from_value(v.field("missing")),
            known: node_ticks_from_value(v.field("superseded").or_else(|| v.field("known"))),
            deleted: node_ticks_from_value(v.field("deleted")),
            node_drop: v
                .field("node_drop")
                .and_then(Value::as_array)
                .unwrap_or(&[])
                .iter()
                .filter_map(Value::as_str)
                .filter(|n| !n.is_empty())
                .map(str::to_owned)
                .collect(),
        })
    }
}

impl Ping {
    /// The message as a msgpack map.
    pub fn to_value(&self) -> Value {
        let value = self.value.map_or(Value::Nil, |(tock, tick)| {
            Value::Array(vec![Value::from_u64(tock), Value::from_u64(tick)].into())
        });
        MapBuilder::new()
            .set("node", self.node.as_str())
            .set("value", value)
            .set(
                "history",
                Value::Array(
                    self.history
                        .iter()
                        .map(|n| Value::from(n.as_str()))
                        .collect(),
                ),
            )
            .set("seen", node_numbers_to_value(&self.seen))
            .build()
    }

    /// Reads a ping. A value that is not `[tock, tick]` counts as none.
    pub fn from_value(v: &Value) -> Result<Ping, WireError> {
        let value = match v.field("value").and_then(Value::as_array) {
            Some([tock, tick]) => tock.as_u64().zip(tick.as_u64()),
            _ => None,
        };
        let history = v
            .field("history")
            .and_then(Value::as_array)
            .unwrap_or(&[])
            .iter()
            .filter_map(|n| n.as_str().map(str::to_owned))
            .take(64)
            .collect();
        Ok(Ping {
            node: sender(v)?,
            value,
            history,
            seen: node_numbers_from_value(v.field("seen")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use distkv_tree::{Chain, NodeEvent, Path};

    fn intern(s: &str) -> NodeName {
        NodeName::from(s)
    }

    fn ev(node: &str, tick: u64, key: &str, value: Option<Value>) -> UpdateEvent {
        UpdateEvent {
            path: Path::from_strs(&["a", key]),
            chain: Chain::single(NodeEvent::new(intern(node), tick)),
            value,
            tock: 40 + tick,
        }
    }

    fn round_trip(m: &GossipMessage) -> GossipMessage {
        let bytes = crate::msgpack::to_vec(&m.to_value(5));
        let v = crate::msgpack::decode_one(&bytes, &crate::Limits::default()).expect("decodes");
        GossipMessage::from_value(m.topic(), v, &intern).expect("reads")
    }

    #[test]
    fn every_message_survives_a_round_trip() {
        let mut r = RangeSet::new();
        r.insert_range(3, 9);
        r.insert(12);
        let msgs = [
            GossipMessage::Update(UpdateMessage::Change(ev("a", 1, "x", Some(Value::Int(7))))),
            GossipMessage::Update(UpdateMessage::Change(ev("a", 2, "x", None))),
            GossipMessage::Update(UpdateMessage::Notice(ev("b", 3, "y", None))),
            GossipMessage::Update(UpdateMessage::Batch(vec![
                ev("a", 4, "x", Some(Value::from("v"))),
                ev("a", 5, "z", None),
            ])),
            GossipMessage::Info(Info {
                node: "a".into(),
                tick: Some(5),
                tock: Some(99),
                ticks: vec![("a".into(), 5), ("b".into(), 3)],
                missing: vec![("b".into(), r.clone())],
                known: vec![("c".into(), r.clone())],
                deleted: vec![("a".into(), r)],
                node_drop: vec!["gone".into()],
            }),
            GossipMessage::Info(Info {
                node: "b".into(),
                ..Info::default()
            }),
            GossipMessage::Ping(Ping {
                node: "a".into(),
                value: Some((10, 4)),
                history: vec!["a".into(), "b".into()],
                seen: vec![("a".into(), 4)],
            }),
            GossipMessage::Ping(Ping {
                node: "c".into(),
                ..Ping::default()
            }),
        ];
        for m in &msgs {
            assert_eq!(&round_trip(m), m);
        }
    }

    #[test]
    fn a_notice_drops_its_value() {
        let m = UpdateMessage::Notice(ev("a", 1, "x", Some(Value::from("big"))));
        let v = m.to_value(5);
        assert!(v.field("value").is_none());
        assert_eq!(v.field("_fetch"), Some(&Value::Bool(true)));
    }

    #[test]
    fn garbage_is_refused_or_ignored_without_panics() {
        let limits = crate::Limits::default();
        for bytes in [
            &b"\x80"[..],                              // {}
            b"\x81\xa6_batch\x05",                     // {_batch: 5}
            b"\x81\xa6_batch\x91\x05",                 // {_batch: [5]}
            b"\x81\xa4node\x05",                       // {node: 5}
            b"\x82\xa4node\xa1a\xa5value\x92\xc0\xc0", // value [nil, nil]
        ] {
            let v = crate::msgpack::decode_one(bytes, &limits).expect("decodes");
            for t in Topic::ALL {
                let _ = GossipMessage::from_value(t, v.clone(), &intern);
            }
        }
        let v = crate::msgpack::decode_one(b"\x81\xa4node\x05", &limits).expect("decodes");
        assert!(Info::from_value(&v).is_err());
        let v = crate::msgpack::decode_one(b"\x82\xa4node\xa1a\xa5value\x92\xc0\xc0", &limits)
            .expect("decodes");
        assert_eq!(Ping::from_value(&v).expect("reads").value, None);
    }

    #[test]
    fn the_original_info_spelling_is_read() {
        let v = MapBuilder::new()
            .set("node", "x")
            .set(
                "superseded",
                MapBuilder::new()
                    .set("y", Value::Array(vec![Value::Int(3)].into()))
                    .build(),
            )
            .build();
        let i = Info::from_value(&v).expect("reads");
        assert_eq!(i.known.len(), 1);
        assert!(i.known[0].1.contains(3));
    }
}
