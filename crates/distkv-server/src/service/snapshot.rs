//! Entry snapshots: how an entry is shown in replies.

use distkv_proto::value_map::MapBuilder;
use distkv_proto::wire::chain_to_value;
use distkv_tree::{Chain, Entry, Value};

/// Adds `value` (if any), `chain` (if `nchain` ≠ 0 and there is one) and
/// `tock` to a reply.
pub fn push_entry(
    m: &mut MapBuilder,
    data: Option<&Value>,
    chain: Option<&Chain>,
    tock: u64,
    nchain: i64,
) {
    if let Some(v) = data {
        m.push("value", v.clone());
    }
    if let Some(c) = chain.and_then(|c| chain_to_value(c, nchain)) {
        m.push("chain", c);
    }
    m.push("tock", Value::from_u64(tock));
}

/// The snapshot of one entry.
pub fn entry_map(e: &Entry, nchain: i64) -> MapBuilder {
    let mut m = MapBuilder::new();
    push_entry(&mut m, e.data(), e.chain(), e.tock(), nchain);
    m
}
