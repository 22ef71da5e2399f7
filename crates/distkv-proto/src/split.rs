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
/// The most incomplete messages a [`Reassembler`] holds; the oldest is
/// dropped beyond that. A sender has few split messages in flight.
pub const MAX_INCOMPLETE: usize = 256;
/// Bytes of bookkeeping charged per held fragment against the memory
/// budget, besides its data.
const FRAGMENT_COST: usize = 64;

/// Why a message could not be sent, or a received message was dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SplitError {
    /// An outgoing message whose `_p0`, `_p1`, … keys the escaping cannot
    /// carry: keys after a gap in the run (`_p0` and `_p2` without `_p1`)
    /// or repeated keys would be renamed wrongly by the receiver.
    #[error("the message's _p0, _p1, ... keys cannot be escaped unambiguously")]
    Unescapable,
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
    let has = |m: &[(Value, Value)], k: &str| m.iter().any(|(kk, _)| kk.as_str() == Some(k));
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
    max_len: usize,
}

impl Splitter {
    /// A splitter for messages sent by `node`, numbering split messages
    /// from 1.
    pub fn new(node: impl Into<String>) -> Splitter {
        Splitter::starting_after(node, 0)
    }

    /// A splitter whose first split message gets number `counter + 1`.
    /// Receivers put fragments together by `(node, seq)`: a server that
    /// restarts must not reuse the numbers of its previous run, or its new
    /// fragments are mixed with incomplete messages of the old one.
    pub fn starting_after(node: impl Into<String>, counter: u64) -> Splitter {
        Splitter {
            node: node.into(),
            counter,
            max_len: SERF_MAXLEN,
        }
    }

    /// Sends messages of up to `max_len` bytes unsplit (at least 64;
    /// [`SERF_MAXLEN`] unless set), for transports that carry more than
    /// Serf's default event limit.
    pub fn with_max_len(mut self, max_len: usize) -> Splitter {
        self.max_len = max_len.max(64);
        self
    }

    /// The payloads to send for `msg`: one, or the fragments.
    ///
    /// Fails with [`SplitError::Unescapable`] for a message with a `_p0`
    /// key that the receiver could not restore exactly (see `escape`).
    pub fn split(&mut self, mut msg: Value) -> Result<Vec<Vec<u8>>, SplitError> {
        if msg.get("_p0").is_some() {
            let original = msg.clone();
            escape(&mut msg);
            let mut restored = msg.clone();
            unescape(&mut restored);
            if restored != original {
                return Err(SplitError::Unescapable);
            }
        }
        let bytes = to_vec(&msg);
        if bytes.len() <= self.max_len {
            return Ok(vec![bytes]);
        }
        self.counter += 1;
        let part_len = self
            .max_len
            .saturating_sub(SERF_LEN_DELTA + self.node.len())
            .max(16);
        let chunks: Vec<&[u8]> = bytes.chunks(part_len).collect();
        let last = chunks.len();
        Ok(chunks
            .into_iter()
            .enumerate()
            .map(|(i, c)| {
                let k = i as i64 + 1;
                let idx = if i + 1 == last { -k } else { k };
                let frag = Value::Array(
                    vec![
                        Value::Str(self.node.as_str().into()),
                        Value::from_u64(self.counter),
                        Value::Int(idx),
                        Value::Bytes(c.into()),
                    ]
                    .into(),
                );
                to_vec(&Value::Map(vec![(Value::Str("_p0".into()), frag)].into()))
            })
            .collect())
    }
}

#[derive(Debug)]
struct Partial {
    parts: HashMap<u64, Vec<u8>>,
    last: Option<u64>,
    /// The highest fragment index held.
    max_slot: u64,
    /// Data bytes held.
    bytes: usize,
    /// What the message counts against the memory budget.
    cost: usize,
    started: Instant,
}

/// Collects fragments until a message is complete. Memory is bounded:
/// at most `max_message` bytes per message, `max_pending` bytes in all
/// (counting `FRAGMENT_COST` per fragment besides its data) and
/// [`MAX_INCOMPLETE`] incomplete messages (the oldest is dropped first);
/// incomplete messages are dropped after `timeout`.
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
        // The splitter never sends an empty chunk.
        if idx == 0 || data.is_empty() {
            return Err(SplitError::Malformed);
        }
        let slot = idx.unsigned_abs();
        let key = (node.to_owned(), seq);
        let entry = self.partial.entry(key.clone()).or_insert_with(|| Partial {
            parts: HashMap::new(),
            last: None,
            max_slot: 0,
            bytes: 0,
            cost: 0,
            started: now,
        });
        if idx < 0 {
            entry.last = Some(slot);
        }
        if !entry.parts.contains_key(&slot) {
            let cost = data.len().saturating_add(FRAGMENT_COST);
            entry.bytes = entry.bytes.saturating_add(data.len());
            entry.cost = entry.cost.saturating_add(cost);
            entry.max_slot = entry.max_slot.max(slot);
            self.pending_bytes = self.pending_bytes.saturating_add(cost);
            entry.parts.insert(slot, data.to_vec());
        }
        if entry.bytes > self.max_message || entry.last.is_some_and(|l| entry.max_slot > l) {
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
        self.pending_bytes = self.pending_bytes.saturating_sub(p.cost);
        Some(p)
    }

    /// Drops the oldest incomplete messages while over the memory budget
    /// or the message count, sparing `keep` if possible.
    fn enforce_budget(&mut self, keep: &(String, u64)) {
        while self.pending_bytes > self.max_pending || self.partial.len() > MAX_INCOMPLETE {
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
        let parts = s.split(m.clone()).expect("splits");
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
            .set("path", Value::Array(vec!["big".into()].into()))
            .build();
        let mut parts = s.split(m.clone()).expect("splits");
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
        let parts = s.split(m.clone()).expect("splits");
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

    /// Found by fuzzing: `{_p0: "", _p2: 3}` came back as `{_p0: "",
    /// _p1: 3}`, because the receiver renames every key of the run that
    /// starts at `_p1`.
    #[test]
    fn keys_after_a_gap_are_refused_not_renamed() {
        let mut s = Splitter::new("one");
        let gap = MapBuilder::new().set("_p0", "").set("_p2", 3).build();
        assert_eq!(s.split(gap), Err(SplitError::Unescapable));
        let dup = Value::Map(
            vec![
                (Value::Str("_p0".into()), Value::Int(1)),
                (Value::Str("_p0".into()), Value::Int(2)),
            ]
            .into(),
        );
        assert_eq!(s.split(dup), Err(SplitError::Unescapable));
        // A gap that the receiver's run does not reach is fine.
        let far = MapBuilder::new().set("_p0", 1).set("_p3", 2).build();
        let parts = s.split(far.clone()).expect("splits");
        let got = reasm()
            .receive(decode(&parts[0]), Instant::now())
            .expect("ok")
            .expect("whole");
        let mut want = far.as_map().expect("map").to_vec();
        want.sort_by_key(|(k, _)| k.to_string());
        let mut got = got.as_map().expect("map").to_vec();
        got.sort_by_key(|(k, _)| k.to_string());
        assert_eq!(got, want);
    }

    #[test]
    fn incomplete_messages_expire_and_budget_holds() {
        let mut s = Splitter::new("one");
        let m = MapBuilder::new()
            .set("v", Value::Bytes(vec![7; 3000].into()))
            .build();
        let parts = s.split(m).expect("splits");
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

    fn fragment(node: &str, seq: u64, idx: i64, data: &[u8]) -> Value {
        MapBuilder::new()
            .set(
                "_p0",
                Value::Array(
                    vec![
                        node.into(),
                        Value::from_u64(seq),
                        idx.into(),
                        Value::Bytes(data[..].into()),
                    ]
                    .into(),
                ),
            )
            .build()
    }

    /// Empty fragments cost no bytes, so a peer could make the reassembler
    /// hold any number of incomplete messages (each `receive` then scans
    /// all of them) or of parts of one message: they are refused, every
    /// held fragment is charged its bookkeeping, and the count of
    /// incomplete messages is capped.
    #[test]
    fn fragment_floods_stay_bounded() {
        let mut r = reasm();
        let now = Instant::now();
        assert_eq!(
            r.receive(fragment("n", 1, 1, b""), now),
            Err(SplitError::Malformed)
        );
        assert_eq!(r.pending(), 0);
        for seq in 0..10 * MAX_INCOMPLETE as u64 {
            assert_eq!(r.receive(fragment("n", seq, 1, b"x"), now), Ok(None));
        }
        assert_eq!(r.pending(), MAX_INCOMPLETE);
        assert_eq!(r.dropped(), 9 * MAX_INCOMPLETE as u64);
        // Many one-byte parts of one message count their bookkeeping.
        let mut small = Reassembler::new(1 << 20, 100 * FRAGMENT_COST, Duration::from_secs(5));
        for idx in 1..1000 {
            let _ = small.receive(fragment("n", 1, idx, b"x"), now);
        }
        // 999 fragments of 65 bytes each: the message is dropped whenever
        // it passes the 6400-byte budget.
        assert!(small.pending() <= 1);
        assert!(small.dropped() >= 9, "dropped {}", small.dropped());
    }

    #[test]
    fn hostile_fragments_are_errors() {
        let mut r = reasm();
        let now = Instant::now();
        for bad in [
            MapBuilder::new().set("_p0", 5).build(),
            MapBuilder::new()
                .set("_p0", Value::Array(Default::default()))
                .build(),
            MapBuilder::new()
                .set(
                    "_p0",
                    Value::Array(
                        vec!["n".into(), 1.into(), 0.into(), Value::Bytes(vec![1].into())].into(),
                    ),
                )
                .build(),
            MapBuilder::new()
                .set(
                    "_p0",
                    Value::Array(
                        vec![
                            "n".into(),
                            1.into(),
                            (-1).into(),
                            Value::Bytes(vec![0xc1].into()),
                        ]
                        .into(),
                    ),
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
                    Value::Array(
                        vec!["n".into(), 2.into(), i.into(), Value::Bytes(vec![1].into())].into(),
                    ),
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
                Value::Array(
                    vec![
                        "n".into(),
                        3.into(),
                        1.into(),
                        Value::Bytes(vec![0; 20].into()),
                    ]
                    .into(),
                ),
            )
            .build();
        assert!(matches!(
            small.receive(big, now),
            Err(SplitError::TooLarge { .. })
        ));
    }
}
