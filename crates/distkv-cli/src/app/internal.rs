//! `distkv client internal`: the server's tick bookkeeping and its system
//! subtree, as the original's `internal state` and `internal dump` show
//! them.

use distkv_client::deleter::DeleterChange;
use distkv_client::{Client, ConnectOptions, StateQuery};
use distkv_tree::{Path, PathElem, RangeSet, Value};

use crate::app::Failure;
use crate::app::args::InternalCommand;
use crate::app::data::client_failure;
use crate::app::output;

/// Runs an internal command.
pub async fn run(opts: ConnectOptions, cmd: InternalCommand) -> Result<(), Failure> {
    let client = Client::connect_with(&opts)
        .await
        .map_err(|e| client_failure(e, &opts))?;
    let fail = |e| client_failure(e, &opts);
    match cmd {
        InternalCommand::State {
            nodes,
            deleted,
            missing,
            remote_missing,
            known,
        } => {
            let query = StateQuery {
                nodes,
                deleted,
                missing,
                remote_missing,
                known,
                ..StateQuery::default()
            };
            let mut st = client.get_state(&query).await.map_err(fail)?.raw;
            if let Value::Map(m) = &mut st {
                m.retain(|(k, _)| k.as_str() != Some("seq"));
            }
            output::print_yaml(&st);
        }
        InternalCommand::Deleter { delete, nodes } => {
            let change = match (delete, nodes.is_empty()) {
                (false, true) => None,
                (false, false) => Some(DeleterChange::Add(nodes)),
                (true, false) => Some(DeleterChange::Remove(nodes)),
                (true, true) => Some(DeleterChange::Clear),
            };
            let group = match change {
                None => client.deleters().await,
                Some(c) => client.deleters_update(&c).await,
            }
            .map_err(fail)?;
            let list = group.iter().map(|n| Value::from(n.as_str())).collect();
            output::print_yaml(&Value::Array(list));
        }
        InternalCommand::Mark {
            deleted,
            source: _,
            broadcast,
            node,
            ticks,
        } => {
            let nodes = mark_sets(&client, &node, &ticks, &fail).await?;
            let changed = client
                .mark_ticks(deleted, nodes, broadcast)
                .await
                .map_err(fail)?;
            let key = if deleted { "deleted" } else { "known" };
            let out = Value::Map(
                vec![
                    (Value::from(key), node_sets_value(&changed)),
                    (Value::from("sent"), Value::Bool(broadcast)),
                ]
                .into(),
            );
            output::print_yaml(&out);
        }
        InternalCommand::CheckDeleted { node, ticks } => {
            let nodes = mark_sets(&client, &node, &ticks, &fail).await?;
            let deleted = client.check_deleted(nodes).await.map_err(fail)?;
            let sent = !deleted.is_empty();
            let out = Value::Map(
                vec![
                    (Value::from("deleted"), node_sets_value(&deleted)),
                    (Value::from("sent"), Value::Bool(sent)),
                ]
                .into(),
            );
            output::print_yaml(&out);
        }
        InternalCommand::Enum {
            num,
            current,
            path,
            node,
        } => {
            let ticks = client
                .enum_node(&node, num.unwrap_or(0), current)
                .await
                .map_err(fail)?;
            for t in ticks {
                if path {
                    let (p, _) = client.entry_by_event(&node, t, 0).await.map_err(fail)?;
                    output::print_line(&format!("{t} {p}"));
                } else {
                    output::print_line(&t.to_string());
                }
            }
        }
        InternalCommand::Kill { node } => {
            let mut done = client.kill_node(&node).await.map_err(fail)?.raw;
            if let Value::Map(m) = &mut done {
                m.retain(|(k, _)| k.as_str() != Some("seq"));
            }
            output::print_yaml(&done);
        }
        InternalCommand::Dump { path } => {
            let path = Path(path.iter().map(|w| PathElem::from(w.as_str())).collect());
            let entries = client.internal_tree(&path).await.map_err(fail)?;
            output::print_yaml(&nested(entries));
        }
    }
    Ok(())
}

/// Per node, tick sets, as the server writes them.
fn node_sets_value(sets: &std::collections::BTreeMap<String, RangeSet>) -> Value {
    Value::Map(
        sets.iter()
            .map(|(n, r)| {
                (
                    Value::from(n.as_str()),
                    distkv_proto::wire::ranges_to_value(r),
                )
            })
            .collect(),
    )
}

/// What `internal mark NODE TICK…` marks: the TICKs of NODE, or without
/// TICKs what the server misses of NODE (of every node for ''); `fail`
/// turns the client's errors into the command's.
async fn mark_sets(
    client: &Client,
    node: &str,
    ticks: &[u64],
    fail: &dyn Fn(distkv_client::ClientError) -> Failure,
) -> Result<Vec<(String, RangeSet)>, Failure> {
    if !ticks.is_empty() {
        if node.is_empty() {
            return Err(Failure::usage(
                "give a node name with ticks ('' only marks everything missing)",
            ));
        }
        if ticks.contains(&0) {
            return Err(Failure::usage("ticks start at 1"));
        }
        let mut r = RangeSet::new();
        for t in ticks {
            r.insert(*t);
        }
        return Ok(vec![(node.to_owned(), r)]);
    }
    let query = StateQuery {
        missing: true,
        ..StateQuery::default()
    };
    let missing = client.get_state(&query).await.map_err(fail)?.missing;
    Ok(missing
        .into_iter()
        .filter(|(n, _)| node.is_empty() || n == node)
        .collect())
}

/// Entries as one nested map: each path element a key, each value under
/// `_` (the original's `internal dump` form).
fn nested(entries: Vec<(Path, Value)>) -> Value {
    let mut root = Value::Map(Default::default());
    for (path, value) in entries {
        let mut at = &mut root;
        for elem in path.elems() {
            let key = elem.to_value();
            let Value::Map(m) = at else { break };
            let i = match m.iter().position(|(k, _)| *k == key) {
                Some(i) => i,
                None => {
                    m.push((key, Value::Map(Default::default())));
                    m.len() - 1
                }
            };
            at = &mut m[i].1;
        }
        if let Value::Map(m) = at {
            m.push((Value::from("_"), value));
        }
    }
    root
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_nest_by_path_with_values_under_underscore() {
        let v = nested(vec![
            (Path::root(), Value::from("top")),
            (Path::from_strs(&["a"]), Value::Int(1)),
            (Path::from_strs(&["a", "b"]), Value::Int(2)),
            (Path::from_strs(&["c", "d"]), Value::Int(3)),
        ]);
        let want = Value::Map(
            vec![
                (Value::from("_"), Value::from("top")),
                (
                    Value::from("a"),
                    Value::Map(
                        vec![
                            (Value::from("_"), Value::Int(1)),
                            (
                                Value::from("b"),
                                Value::Map(vec![(Value::from("_"), Value::Int(2))].into()),
                            ),
                        ]
                        .into(),
                    ),
                ),
                (
                    Value::from("c"),
                    Value::Map(
                        vec![(
                            Value::from("d"),
                            Value::Map(vec![(Value::from("_"), Value::Int(3))].into()),
                        )]
                        .into(),
                    ),
                ),
            ]
            .into(),
        );
        assert_eq!(v, want);
    }
}
