//! ACLs: entries below `None acl NAME` whose values are flag strings,
//! read and written with the internal actions (super-root only). The
//! command line's `acl` commands are these calls.

use distkv_acl::{AclError, AclFlags};
use distkv_proto::request::{Action, ChainCheck, SetValue};
use distkv_proto::value_map::MapBuilder;
use distkv_proto::wire::event_from_value;
use distkv_tree::{Path, PathElem, Value};

use crate::{Client, ClientError};

/// How `acl set` changes the flags of an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlagChange {
    /// Exactly these flags.
    Set(AclFlags),
    /// These flags added to the old ones.
    Add(AclFlags),
    /// These flags taken from the old ones.
    Remove(AclFlags),
    /// The entry deleted.
    Delete,
}

impl FlagChange {
    /// `-` deletes, `+FLAGS` adds, `-FLAGS` removes, `FLAGS` sets.
    ///
    /// ```
    /// use distkv_client::acl::FlagChange;
    ///
    /// let add = FlagChange::parse("+w").expect("valid");
    /// assert_eq!(add.apply(Some("rx")).as_deref(), Some("rwx"));
    /// assert_eq!(FlagChange::parse("-").expect("valid").apply(Some("r")), None);
    /// assert!(FlagChange::parse("+?").is_err());
    /// ```
    pub fn parse(modes: &str) -> Result<FlagChange, AclError> {
        Ok(match modes {
            "-" => FlagChange::Delete,
            m if m.starts_with('+') => FlagChange::Add(AclFlags::parse(&m[1..])?),
            m if m.starts_with('-') => FlagChange::Remove(AclFlags::parse(&m[1..])?),
            m => FlagChange::Set(AclFlags::parse(m)?),
        })
    }

    /// The new flags given the old ones (unparsable old flags count as
    /// none); `None`: the entry goes.
    pub fn apply(&self, old: Option<&str>) -> Option<String> {
        let old = AclFlags::parse(old.unwrap_or("")).unwrap_or_default();
        match self {
            FlagChange::Delete => None,
            FlagChange::Set(f) => Some(f.to_string()),
            FlagChange::Add(f) => Some(old.union(*f).to_string()),
            FlagChange::Remove(f) => Some(old.without(*f).to_string()),
        }
    }
}

/// What [`Client::acl_update`] did.
#[derive(Clone, Debug, PartialEq)]
pub struct AclChange {
    /// The flags before.
    pub old: Option<String>,
    /// The flags after (`None`: deleted).
    pub new: Option<String>,
    /// The server's reply to the write (`chain`, `tock`).
    pub reply: Value,
}

/// `None acl NAME PATH…`.
fn acl_path(name: &str, path: &Path) -> Path {
    let mut p = vec![
        PathElem::Nil,
        PathElem::Str("acl".into()),
        PathElem::Str(name.into()),
    ];
    p.extend(path.elems().iter().cloned());
    Path(p)
}

/// The current entry at `path` in the system subtree, with `nchain`
/// chain links.
fn get_internal(path: Path, nchain: i64) -> MapBuilder {
    Action::GetValue { path, nchain }.to_internal_map()
}

impl Client {
    /// The names of the ACLs.
    pub async fn acl_names(&self) -> Result<Vec<Value>, ClientError> {
        let names = Action::Enumerate {
            path: Path(vec![PathElem::Nil, PathElem::Str("acl".into())]),
            empty: true,
        };
        let r = self.request(names.to_internal_map()).await?;
        Ok(r.get("result")
            .and_then(Value::as_array)
            .unwrap_or(&[])
            .to_vec())
    }

    /// The flags of ACL `name` at `path`, if the entry exists.
    pub async fn acl_get(&self, name: &str, path: &Path) -> Result<Option<String>, ClientError> {
        let r = self.request(get_internal(acl_path(name, path), 0)).await?;
        Ok(r.get("value").and_then(Value::as_str).map(str::to_owned))
    }

    /// The entries of ACL `name` at and below `path`: their paths
    /// (relative to `path`) and values.
    pub async fn acl_entries(
        &self,
        name: &str,
        path: &Path,
    ) -> Result<Vec<(Path, Value)>, ClientError> {
        self.internal_values(acl_path(name, path), Path::root(), false)
            .await
    }

    /// Changes the flags of ACL `name` at `path`: reads the entry, then
    /// writes the new flags on the condition that nobody changed it in
    /// between (its chain).
    pub async fn acl_update(
        &self,
        name: &str,
        path: &Path,
        change: &FlagChange,
    ) -> Result<AclChange, ClientError> {
        let p = acl_path(name, path);
        let cur = self.request(get_internal(p.clone(), 1)).await?;
        let old = cur.get("value").and_then(Value::as_str).map(str::to_owned);
        let new = change.apply(old.as_deref());
        let chain = match cur.get("chain") {
            Some(c @ Value::Map(_)) if old.is_some() => ChainCheck::Head(
                event_from_value(c).map_err(|e| ClientError::Protocol(e.to_string()))?,
            ),
            _ => ChainCheck::New,
        };
        let write = Action::SetValue(SetValue {
            chain: Some(chain),
            ..SetValue::new(p, new.as_deref().map(Value::from))
        });
        let reply = self.request(write.to_internal_map()).await?;
        Ok(AclChange { old, new, reply })
    }

    /// What the caller's ACL (or ACL `acl`) grants at `path`: the server's
    /// reply (`access`: the flags or whether `mode` is granted).
    pub async fn acl_test(
        &self,
        path: &Path,
        mode: Option<&str>,
        acl: Option<&str>,
    ) -> Result<Value, ClientError> {
        let mut chars = mode.unwrap_or("x").chars();
        let m = match (chars.next(), chars.next()) {
            (Some(letter), None) => Action::TestAcl {
                path: path.clone(),
                mode: letter,
                acl: acl.map(str::to_owned),
            }
            .to_map(),
            // not one letter: sent as given, for the server to refuse
            _ => MapBuilder::new()
                .set("action", "test_acl")
                .set("path", path.to_value())
                .set_opt("mode", mode)
                .set_opt("acl", acl),
        };
        let mut r = self.request(m).await?;
        if let Value::Map(kv) = &mut r {
            kv.retain(|(k, _)| k.as_str() != Some("seq"));
        }
        Ok(r)
    }
}
