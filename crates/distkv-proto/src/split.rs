//! Splitting gossip messages that are too large for one Serf user event,
//! and putting them back together (server-protocol §1.3).
//!
//! A message whose msgpack form is longer than [`SERF_MAXLEN`] bytes is cut
//! into chunks of `SERF_MAXLEN - SERF_LEN_DELTA - len(node)` bytes; chunk k
//! (1-based) travels as `{"_p0": [node, seq, k, chunk]}`, the last one with
//! `-k`. A message that itself has keys `_p0`, `_p1`, … gets them shifted up
//! by one and `_p0: ""` added, so that it cannot be mistaken for a fragment.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use distkv_tree::Value;

use crate::msgpack::{Limits, decode_one, to_vec};

/// The longest message sent in one piece.
pub const SERF_MAXLEN: usize = 450;
/// Room left for the fragment's own framing.
pub const SERF_LEN_DELTA: usize = 15;

/// Why a received message was dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SplitError {
    /// A fragment that does not have the `[node, seq, i, bytes]` form.
    #[error("malformed fragment")]
    Malformed,
    /// The reassembled message would be too large.
    #[error("reassembled message from {node} would exceed {max} bytes")]
    TooLarge {
        /// The sender.
        node: String,
        /// The limit.
        max: usize,
    },
    /// The reassembled bytes are not one msgpack map.
    #[error("reassembled message from {node} does not decode: {why}")]
    Undecodable {
        /// The sender.
        node: String,
        /// The decoder's complaint.
        why: String,
    },
}

fn part_key(i: usize) -> String {
    format!("_p{i}")
}

/// Renames `_p0`, `_p1`, … (consecutive from 0) to `_p1`, `_p2`, … and adds
/// `_p0: ""`, if the message has a `_p0` key.
fn escape(msg: &mut Value) {
    let Value::Map(m) = msg else { return };
    let has = |m: &Vec<(Value, Value)>, k: &str| m.iter().any(|(kk, _)| kk.as_str() == Some(k));
    if !has(m, "_p0") {
        return;
    }
    let mut n = 0;
    while has(m, &part_key(n)) {
        n += 1;
    }
    for i in (0..n).rev() {
        let from = part_key(i);
        let to = part_key(i + 1);
        for (k, _) in m.iter_mut() {
            if k.as_str() == Some(from.as_str()) {
                *k = Value::Str(to.as_str().into());
            }
        }
    }
    m.push((Value::Str("_p0".into()), Value::Str("".into())));
}

/// Undoes [`escape`] on a message whose `_p0` is `""`.
fn unescape(msg: &mut Value) {
    let Value::Map(m) = msg else { return };
    m.retain(|(k, _)| k.as_str() != Some("_p0"));
    let mut i = 1;
    loop {
        let from = part_key(i);
        let Some(slot) = m
            .iter_mut()
            .find(|(k, _)| k.as_str() == Some(from.as_str()))
        else {
            break;
        };
        slot.0 = Value::Str(part_key(i - 1).into());
        i += 1;
    }
}

/// Cuts outgoing messages into event-sized payloads.
#[derive(Debug)]
pub struct Splitter {
    node: String,
    counter: u64,
}

impl Splitter {
    /// A splitter for messages sent by `node`.
    pub fn new(node: impl Into<String>) -> Splitter {
        Splitter {
            node: node.into(),
            counter: 0,
        }
    }

    /// The payloads to send for `msg`: one, or the fragments.
    pub fn split(&mut self, mut msg: Value) -> Vec<Vec<u8>> {
        escape(&mut msg);
        let bytes = to_vec(&msg);
        if bytes.len() <= SERF_MAXLEN {
            return vec![bytes];
        }
        self.counter += 1;
        let part_len = SERF_MAXLEN
            .saturating_sub(SERF_LEN_DELTA + self.node.len())
            .max(16);
        let chunks: Vec<&[u8]> = bytes.chunks(part_len).collect();
        let last = chunks.len();
        chunks
            .into_iter()
            .enumerate()
            .map(|(i, c)| {
                let k = i as i64 + 1;
                let idx = if i + 1 == last { -k } else { k };
                let frag = Value::Array(vec![
                    Value::Str(self.node.as_str().into()),
                    Value::from_u64(self.counter),
                    Value::Int(idx),
                    Value::Bytes(c.to_vec()),
                ]);
                to_vec(&Value::Map(vec![(Value::Str("_p0".into()), frag)]))
            })
            .collect()
    }
}

#[derive(Debug)]
struct Partial {
    parts: HashMap<u64, Vec<u8>>,
    last: Option<u64>,
    bytes: usize,
    started: Instant,
}

/// Collects fragments until a message is complete. Memory is bounded:
/// at most `max_message` bytes per message and `max_pending` bytes in all
/// (the oldest incomplete message is dropped first); incomplete messages
/// are dropped after `timeout`.
#[derive(Debug)]
pub struct Reassembler {
    partial: HashMap<(String, u64), Partial>,
    pending_bytes: usize,
    max_message: usize,
    max_pending: usize,
    timeout: Duration,
    dropped: u64,
}

impl Reassembler {
    /// A reassembler with the given bounds.
    pub fn new(max_message: usize, max_pending: usize, timeout: Duration) -> Reassembler {
        Reassembler {
            partial: HashMap::new(),
            pending_bytes: 0,
            max_message,
            max_pending,
            timeout,
            dropped: 0,
        }
    }

    /// Incomplete messages dropped so far (timeout or memory bound).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Incomplete messages held now.
    pub fn pending(&self) -> usize {
        self.partial.len()
    }

    /// Processes one received message: returns the complete message, or
    /// `None` while fragments are missing.
    pub fn receive(&mut self, mut msg: Value, now: Instant) -> Result<Option<Value>, SplitError> {
        self.expire(now);
        let frag = match msg.get("_p0") {
            None => return Ok(Some(msg)),
            Some(Value::Str(s)) if s.is_empty() => {
                unescape(&mut msg);
                return Ok(Some(msg));
            }
            Some(Value::Array(f)) => f.clone(),
            Some(_) => return Err(SplitError::Malformed),
        };
        let [node, seq, idx, data] = frag.as_slice() else {
            return Err(SplitError::Malformed);
        };
        let (Some(node), Some(seq), Some(idx), Value::Bytes(data)) =
            (node.as_str(), seq.as_u64(), idx.as_i64(), data)
        else {
            return Err(SplitError::Malformed);
        };
        if idx == 0 {
            return Err(SplitError::Malformed);
        }
        let slot = idx.unsigned_abs();
        let key = (node.to_owned(), seq);
        let entry = self.partial.entry(key.clone()).or_insert_with(|| Partial {
            parts: HashMap::new(),
            last: None,
            bytes: 0,
            started: now,
        });
        if idx < 0 {
            entry.last = Some(slot);
        }
        if !entry.parts.contains_key(&slot) {
            entry.bytes += data.len();
            self.pending_bytes += data.len();
            entry.parts.insert(slot, data.clone());
        }
        if entry.bytes > self.max_message
            || entry
                .last
                .is_some_and(|l| entry.parts.keys().any(|&k| k > l))
        {
            self.remove(&key);
            self.dropped += 1;
            return Err(SplitError::TooLarge {
                node: node.to_owned(),
                max: self.max_message,
            });
        }
        let complete = entry.last.is_some_and(|l| entry.parts.len() as u64 == l);
        if !complete {
            self.enforce_budget(&key);
            return Ok(None);
        }
        let Some(mut p) = self.remove(&key) else {
            return Ok(None);
        };
        let mut bytes = Vec::with_capacity(p.bytes);
        for k in 1..=p.parts.len() as u64 {
            if let Some(d) = p.parts.remove(&k) {
                bytes.extend_from_slice(&d);
            }
        }
        let limits = Limits {
            max_frame: self.max_message,
            ..Limits::default()
        };
        let mut whole = decode_one(&bytes, &limits).map_err(|e| SplitError::Undecodable {
            node: node.to_owned(),
            why: e.to_string(),
        })?;
        if !matches!(whole, Value::Map(_)) {
            return Err(SplitError::Undecodable {
                node: node.to_owned(),
                why: "not a map".into(),
            });
        }
        if whole.get("_p0").is_some() {
            unescape(&mut whole);
        }
        Ok(Some(whole))
    }

    fn remove(&mut self, key: &(String, u64)) -> Option<Partial> {
        let p = self.partial.remove(key)?;
        self.pending_bytes = self.pending_bytes.saturating_sub(p.bytes);
        Some(p)
    }

    /// Drops the oldest incomplete messages while over the memory budget,
    /// sparing `keep` if possible.
    fn enforce_budget(&mut self, keep: &(String, u64)) {
        while self.pending_bytes > self.max_pending {
            let oldest = self
                .partial
                .iter()
                .filter(|(k, _)| *k != keep)
                .min_by_key(|(_, p)| p.started)
                .map(|(k, _)| k.clone());
            let victim = oldest.unwrap_or_else(|| keep.clone());
            self.remove(&victim);
            self.dropped += 1;
            if &victim == keep {
                break;
            }
        }
    }

    /// Drops incomplete messages older than the timeout.
    pub fn expire(&mut self, now: Instant) {
        let timeout = self.timeout;
        let old: Vec<_> = self
            .partial
            .iter()
            .filter(|(_, p)| now.duration_since(p.started) > timeout)
            .map(|(k, _)| k.clone())
            .collect();
        for k in old {
            self.remove(&k);
            self.dropped += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msgpack::decode_one;
    use crate::value_map::MapBuilder;

    fn reasm() -> Reassembler {
        Reassembler::new(1 << 20, 4 << 20, Duration::from_secs(30))
    }

    fn decode(b: &[u8]) -> Value {
        decode_one(b, &Limits::default()).expect("decodes")
    }

    #[test]
    fn small_messages_pass_unchanged() {
        let mut s = Splitter::new("one");
        let m = MapBuilder::new().set("node", "one").set("tick", 3).build();
        let parts = s.split(m.clone());
        assert_eq!(parts.len(), 1);
        let mut r = reasm();
        assert_eq!(r.receive(decode(&parts[0]), Instant::now()), Ok(Some(m)));
    }

    #[test]
    fn large_messages_round_trip_in_any_order() {
        let mut s = Splitter::new("one");
        let m = MapBuilder::new()
            .set(
                "value",
                Value::Bytes((0..5000u32).map(|i| i as u8).collect()),
            )
            .set("path", Value::Array(vec!["big".into()]))
            .build();
        let mut parts = s.split(m.clone());
        assert!(parts.len() > 10);
        assert!(parts.iter().all(|p| p.len() <= SERF_MAXLEN + 30));
        parts.reverse();
        parts.swap(1, 5);
        let mut r = reasm();
        let now = Instant::now();
        let mut out = None;
        for (i, p) in parts.iter().enumerate() {
            let got = r.receive(decode(p), now).expect("fragment");
            if i + 1 < parts.len() {
                assert_eq!(got, None);
            } else {
                out = got;
            }
        }
        assert_eq!(out, Some(m));
        assert_eq!(r.pending(), 0);
    }

    #[test]
    fn escaped_keys_survive() {
        let mut s = Splitter::new("one");
        let m = MapBuilder::new()
            .set("_p0", "a")
            .set("_p1", "b")
            .set("x", 1)
            .build();
        let parts = s.split(m.clone());
        let got = reasm()
            .receive(decode(&parts[0]), Instant::now())
            .expect("ok")
            .expect("whole");
        let mut want = m.as_map().expect("map").to_vec();
        want.sort_by_key(|(k, _)| k.to_string());
        let mut got = got.as_map().expect("map").to_vec();
        got.sort_by_key(|(k, _)| k.to_string());
        assert_eq!(got, want);
    }

    #[test]
    fn incomplete_messages_expire_and_budget_holds() {
        let mut s = Splitter::new("one");
        let m = MapBuilder::new()
            .set("v", Value::Bytes(vec![7; 3000]))
            .build();
        let parts = s.split(m);
        let mut r = Reassembler::new(1 << 20, 2000, Duration::from_secs(5));
        let t0 = Instant::now();
        r.receive(decode(&parts[0]), t0).expect("first");
        assert_eq!(r.pending(), 1);
        r.expire(t0 + Duration::from_secs(6));
        assert_eq!(r.pending(), 0);
        assert_eq!(r.dropped(), 1);
        // budget: 2000 bytes of fragments at most
        for p in &parts[..parts.len() - 1] {
            let _ = r.receive(decode(p), t0);
        }
        assert!(r.pending() <= 1);
        assert!(r.dropped() >= 2);
    }

    #[test]
    fn hostile_fragments_are_errors() {
        let mut r = reasm();
        let now = Instant::now();
        for bad in [
            MapBuilder::new().set("_p0", 5).build(),
            MapBuilder::new().set("_p0", Value::Array(vec![])).build(),
            MapBuilder::new()
                .set(
                    "_p0",
                    Value::Array(vec!["n".into(), 1.into(), 0.into(), Value::Bytes(vec![1])]),
                )
                .build(),
            MapBuilder::new()
                .set(
                    "_p0",
                    Value::Array(vec![
                        "n".into(),
                        1.into(),
                        (-1).into(),
                        Value::Bytes(vec![0xc1]),
                    ]),
                )
                .build(),
        ] {
            assert!(r.receive(bad, now).is_err());
        }
        // a fragment index beyond the announced last one
        let f = |i: i64| {
            MapBuilder::new()
                .set(
                    "_p0",
                    Value::Array(vec!["n".into(), 2.into(), i.into(), Value::Bytes(vec![1])]),
                )
                .build()
        };
        assert_eq!(r.receive(f(-2), now), Ok(None));
        assert!(r.receive(f(5), now).is_err());
        // too large
        let mut small = Reassembler::new(10, 100, Duration::from_secs(5));
        let big = MapBuilder::new()
            .set(
                "_p0",
                Value::Array(vec![
                    "n".into(),
                    3.into(),
                    1.into(),
                    Value::Bytes(vec![0; 20]),
                ]),
            )
            .build();
        assert!(matches!(
            small.receive(big, now),
            Err(SplitError::TooLarge { .. })
        ));
    }
}
