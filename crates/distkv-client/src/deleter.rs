//! The deleter group (`None actor del` = `{nodes: […]}`): the servers that
//! must all have seen a deletion before any server purges its tombstone.
//! There should be one in every part the network may split into, and
//! every server that keeps state on disk should be one.
//!
//! ```no_run
//! # async fn demo(client: distkv_client::Client) -> Result<(), distkv_client::ClientError> {
//! use distkv_client::deleter::DeleterChange;
//!
//! let nodes = client
//!     .deleters_update(&DeleterChange::Add(vec!["one".into(), "two".into()]))
//!     .await?;
//! assert_eq!(client.deleters().await?, nodes);
//! # Ok(()) }
//! ```

use distkv_proto::request::{Action, ChainCheck, SetValue};
use distkv_proto::wire::{deleter_nodes, deleter_path, event_from_value};
use distkv_tree::Value;

use crate::{Client, ClientError};

/// How to change the deleter group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeleterChange {
    /// Add these servers.
    Add(Vec<String>),
    /// Remove these servers.
    Remove(Vec<String>),
    /// Remove every server: tombstones are then never purged.
    Clear,
}

impl DeleterChange {
    /// The group after this change to `nodes`, in order, without
    /// duplicates.
    pub fn apply(&self, nodes: &[String]) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut keep = |n: &String| {
            if !out.contains(n) {
                out.push(n.clone());
            }
        };
        match self {
            DeleterChange::Add(add) => nodes.iter().chain(add).for_each(&mut keep),
            DeleterChange::Remove(gone) => nodes
                .iter()
                .filter(|n| !gone.contains(n))
                .for_each(&mut keep),
            DeleterChange::Clear => {}
        }
        out
    }
}

impl Client {
    /// The servers of the deleter group.
    pub async fn deleters(&self) -> Result<Vec<String>, ClientError> {
        let get = Action::GetValue {
            path: deleter_path(),
            nchain: 0,
        };
        let r = self.request(get.to_internal_map()).await?;
        Ok(deleter_nodes(r.get("value")))
    }

    /// Changes the deleter group: reads it, then writes the new group on
    /// the condition that nobody changed it in between (its chain), keeping
    /// the record's other fields. Returns the new group.
    pub async fn deleters_update(
        &self,
        change: &DeleterChange,
    ) -> Result<Vec<String>, ClientError> {
        let get = Action::GetValue {
            path: deleter_path(),
            nchain: 1,
        };
        let cur = self.request(get.to_internal_map()).await?;
        let old = cur.get("value");
        let nodes = change.apply(&deleter_nodes(old));
        let chain = match (cur.get("chain"), old) {
            (Some(c @ Value::Map(_)), Some(_)) => ChainCheck::Head(
                event_from_value(c).map_err(|e| ClientError::Protocol(e.to_string()))?,
            ),
            _ => ChainCheck::New,
        };
        let mut record = match old {
            Some(Value::Map(m)) => m.clone(),
            _ => Default::default(),
        };
        record.retain(|(k, _)| k.as_str() != Some("nodes"));
        record.push((
            Value::from("nodes"),
            Value::Array(nodes.iter().map(|n| Value::from(n.as_str())).collect()),
        ));
        let write = Action::SetValue(SetValue {
            chain: Some(chain),
            ..SetValue::new(deleter_path(), Some(Value::Map(record)))
        });
        self.request(write.to_internal_map()).await?;
        Ok(nodes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn changes_keep_order_and_drop_duplicates() {
        let now = names(&["a", "b"]);
        assert_eq!(
            DeleterChange::Add(names(&["c", "a"])).apply(&now),
            names(&["a", "b", "c"])
        );
        assert_eq!(
            DeleterChange::Remove(names(&["a", "x"])).apply(&now),
            names(&["b"])
        );
        assert!(DeleterChange::Clear.apply(&now).is_empty());
    }
}
