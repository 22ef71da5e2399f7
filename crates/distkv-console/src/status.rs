//! `GET /api/status`: the server's state as the network page shows it,
//! from one `get_state` (the data of `distkv client status`).

use std::collections::BTreeMap;

use distkv_client::{Client, StateQuery, StateReply};
use distkv_tree::RangeSet;
use serde_json::{Value as Json, json};

use crate::ConsoleError;
use crate::json;

/// Ranges of ticks listed per node and set; the count covers all.
pub const MAX_RANGES: usize = 50;

/// A set of ticks: how many, and the first [`MAX_RANGES`] ranges as
/// `[first, last]` (both included), `more` when there are others.
pub(crate) fn ticks(set: &RangeSet) -> Json {
    let ranges: Vec<Json> = set
        .ranges()
        .take(MAX_RANGES)
        .map(|(a, b)| json!([a, b.saturating_sub(1)]))
        .collect();
    json!({
        "count": set.len(),
        "ranges": ranges,
        "more": set.ranges().nth(MAX_RANGES).is_some(),
    })
}

/// The answer, from a state reply: `server`, the figures, `nodes` (each
/// known server's `name`, last `tick`, the ticks of it this server
/// `missing` and those others reported missing), `replication`.
pub(crate) fn from_state(st: &StateReply) -> Json {
    let stats = st.raw.get("stats");
    let stat = |k: &str| stats.and_then(|s| s.get(k)).map_or(Json::Null, json::value);
    let empty = RangeSet::new();
    let mut names: BTreeMap<&str, Option<u64>> =
        st.nodes.iter().map(|(n, t)| (n.as_str(), *t)).collect();
    for n in st.missing.keys().chain(st.remote_missing.keys()) {
        names.entry(n.as_str()).or_insert(None);
    }
    let nodes: Vec<Json> = names
        .into_iter()
        .map(|(name, tick)| {
            json!({
                "name": name,
                "tick": tick,
                "missing": ticks(st.missing.get(name).unwrap_or(&empty)),
                "remote_missing": ticks(st.remote_missing.get(name).unwrap_or(&empty)),
            })
        })
        .collect();
    let mut out = serde_json::Map::new();
    out.insert("server".into(), Json::from(st.node.as_str()));
    for k in distkv_proto::wire::STATUS_FIGURES {
        out.insert(k.into(), stat(k));
    }
    out.insert("nodes".into(), Json::Array(nodes));
    let replication: serde_json::Map<String, Json> = distkv_proto::wire::REPLICATION_COUNTERS
        .iter()
        .map(|k| ((*k).to_owned(), stat(k)))
        .collect();
    out.insert("replication".into(), Json::Object(replication));
    Json::Object(out)
}

/// `GET /api/status`.
pub(crate) async fn status(c: &Client) -> Result<Json, ConsoleError> {
    let flags = StateQuery {
        nodes: true,
        missing: true,
        remote_missing: true,
        stats: true,
        ..StateQuery::default()
    };
    let st = c
        .get_state(&flags)
        .await
        .map_err(|e| ConsoleError::from_client(&e))?;
    Ok(from_state(&st))
}

#[cfg(test)]
mod tests {
    use super::*;
    use distkv_tree::Value;

    #[test]
    fn ticks_are_counted_and_listed_with_a_bound() {
        let mut s = RangeSet::new();
        s.insert_range(3, 6);
        s.insert(10);
        assert_eq!(
            ticks(&s),
            json!({"count": 4, "ranges": [[3, 5], [10, 10]], "more": false})
        );
        let mut big = RangeSet::new();
        for i in 0..(MAX_RANGES as u64 + 5) {
            big.insert(i * 2);
        }
        let j = ticks(&big);
        assert_eq!(j["ranges"].as_array().map(Vec::len), Some(MAX_RANGES));
        assert_eq!(j["more"], json!(true));
        assert_eq!(j["count"], json!(MAX_RANGES + 5));
    }

    #[test]
    fn nodes_missing_ticks_are_listed_even_without_a_tick() {
        let mut st = StateReply {
            node: "one".into(),
            raw: Value::Map(
                vec![(
                    Value::from("stats"),
                    Value::Map(
                        vec![
                            (Value::from("entries"), Value::Int(7)),
                            (Value::from("ready"), Value::Bool(true)),
                            (Value::from("pulled"), Value::Int(2)),
                        ]
                        .into(),
                    ),
                )]
                .into(),
            ),
            ..StateReply::default()
        };
        st.nodes.insert("one".into(), Some(12));
        let mut gap = RangeSet::new();
        gap.insert_range(4, 6);
        st.missing.insert("two".into(), gap);
        let j = from_state(&st);
        assert_eq!(j["server"], json!("one"));
        assert_eq!(j["entries"], json!(7));
        assert_eq!(j["ready"], json!(true));
        assert_eq!(j["replication"]["pulled"], json!(2));
        assert_eq!(j["replication"]["broadcast"], Json::Null);
        let nodes = j["nodes"].as_array().expect("nodes");
        assert_eq!(nodes.len(), 2);
        assert_eq!(nodes[0]["name"], json!("one"));
        assert_eq!(nodes[0]["tick"], json!(12));
        assert_eq!(nodes[0]["missing"]["count"], json!(0));
        assert_eq!(nodes[1]["name"], json!("two"));
        assert_eq!(nodes[1]["tick"], Json::Null);
        assert_eq!(nodes[1]["missing"]["ranges"], json!([[4, 5]]));
    }
}
