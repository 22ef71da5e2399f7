//! The errors subsystem (code-and-runners.md §7): problems of stored code,
//! runners and the like, recorded in the tree so that every node and every
//! operator sees them.
//!
//! A record lives at `.distkv error NODE TOCK` and describes one
//! `(subsystem, path)` pair: `{path, subsystem, severity, resolved,
//! created, count, last_seen, message}`. Each reporting node also writes
//! a detail record below it (`… NODE TOCK REPORTER`: `{seen, tock, str,
//! data}`).

use std::time::{SystemTime, UNIX_EPOCH};

use distkv_proto::request::Action;
use distkv_proto::value_map::MapBuilder;
use distkv_tree::{Path, PathElem, Value};

use crate::{Client, ClientError, TreeOptions, WriteOptions};

/// The default place of error records.
pub fn default_prefix() -> Path {
    Path::from_strs(&[".distkv", "error"])
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// One error record.
#[derive(Clone, Debug, PartialEq)]
pub struct ErrorRecord {
    /// Where the record is stored.
    pub at: Path,
    /// The record's fields.
    pub value: Value,
}

impl ErrorRecord {
    /// The subsystem (`compile`, `run`, …).
    pub fn subsystem(&self) -> &str {
        self.value
            .get("subsystem")
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    /// The path of the offending object.
    pub fn path(&self) -> Path {
        self.value
            .get("path")
            .cloned()
            .and_then(|p| Path::from_value(p).ok())
            .unwrap_or_default()
    }

    /// Whether it is still open.
    pub fn is_open(&self) -> bool {
        self.value
            .get("resolved")
            .is_none_or(|r| r.is_nil() || r == &Value::Bool(false))
    }

    /// The message.
    pub fn message(&self) -> &str {
        self.value
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    /// How often it happened.
    pub fn count(&self) -> u64 {
        self.value.get("count").and_then(Value::as_u64).unwrap_or(0)
    }
}

/// Which records [`ErrorLog::query`] returns.
#[derive(Clone, Debug, Default)]
pub struct ErrorQuery {
    /// Resolved ones too.
    pub all: bool,
    /// Only this subsystem's.
    pub subsystem: Option<String>,
    /// Only those this node reported (and only its detail record).
    pub node: Option<String>,
    /// Only those about paths at or below this one.
    pub below: Path,
}

/// A record with the detail records below it.
#[derive(Clone, Debug, PartialEq)]
pub struct ErrorReport {
    /// The record.
    pub record: ErrorRecord,
    /// The reporting nodes' details (`{seen, str, data}`), by node name.
    pub details: Vec<(String, Value)>,
}

/// Records and resolves errors as node `node`.
#[derive(Clone, Debug)]
pub struct ErrorLog {
    client: Client,
    node: String,
    prefix: Path,
}

impl ErrorLog {
    /// An error log writing as `node` below the default prefix.
    pub fn new(client: Client, node: impl Into<String>) -> ErrorLog {
        ErrorLog {
            client,
            node: node.into(),
            prefix: default_prefix(),
        }
    }

    /// All records (with `all`, also resolved ones).
    pub async fn list(&self, all: bool) -> Result<Vec<ErrorRecord>, ClientError> {
        let opts = TreeOptions {
            min_depth: Some(2),
            max_depth: Some(2),
            ..TreeOptions::default()
        };
        let mut s = match self.client.get_tree(&self.prefix, &opts).await {
            Ok(s) => s,
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        // no errors recorded yet: no subtree
        while let Some(item) = s.next_existing().await {
            let item = item?;
            if let Some(value) = item.value {
                let r = ErrorRecord {
                    at: item.path,
                    value,
                };
                if all || r.is_open() {
                    out.push(r);
                }
            }
        }
        Ok(out)
    }

    /// The records `q` selects, each with the detail records of the nodes
    /// that reported it (only `q.node`'s, if given), in the tree's order.
    pub async fn query(&self, q: &ErrorQuery) -> Result<Vec<ErrorReport>, ClientError> {
        let opts = TreeOptions {
            min_depth: Some(2),
            max_depth: Some(3),
            ..TreeOptions::default()
        };
        let mut s = self.client.get_tree(&self.prefix, &opts).await?;
        let mut out: Vec<ErrorReport> = Vec::new();
        let depth = self.prefix.len();
        while let Some(item) = s.next_existing().await {
            let item = item?;
            let Some(value) = item.value else { continue };
            match item.path.len().saturating_sub(depth) {
                2 => out.push(ErrorReport {
                    record: ErrorRecord {
                        at: item.path,
                        value,
                    },
                    details: Vec::new(),
                }),
                3 => {
                    let (Some(reporter), Some(last)) = (item.path.elems().last(), out.last_mut())
                    else {
                        continue;
                    };
                    if item.path.elems().get(..item.path.len() - 1) == Some(last.record.at.elems())
                    {
                        let name = reporter
                            .as_str()
                            .map_or_else(|| reporter.to_string(), str::to_owned);
                        last.details.push((name, value));
                    }
                }
                _ => {}
            }
        }
        out.retain_mut(|r| {
            if !(q.all || r.record.is_open()) {
                return false;
            }
            if q.subsystem
                .as_deref()
                .is_some_and(|s| s != r.record.subsystem())
            {
                return false;
            }
            if !r.record.path().starts_with(&q.below) {
                return false;
            }
            if let Some(node) = &q.node {
                r.details.retain(|(n, _)| n == node);
                return !r.details.is_empty();
            }
            true
        });
        Ok(out)
    }

    async fn find(&self, subsystem: &str, path: &Path) -> Result<Option<ErrorRecord>, ClientError> {
        let mut found: Vec<ErrorRecord> = self
            .list(true)
            .await?
            .into_iter()
            .filter(|r| r.subsystem() == subsystem && &r.path() == path)
            .collect();
        // prefer an open record, then the oldest (lowest tock, then node)
        found.sort_by(|a, b| {
            let key = |r: &ErrorRecord| {
                let tock = match r.at.elems().last() {
                    Some(PathElem::Int(t)) => *t,
                    _ => i64::MAX,
                };
                let node = r.at.elems().iter().rev().nth(1).map(ToString::to_string);
                (!r.is_open(), tock, node)
            };
            key(a).cmp(&key(b))
        });
        // records for the same pair made concurrently on other nodes are
        // merged into the kept one (their details go with them)
        for dup in found.iter().skip(1) {
            if let Err(e) = self.client.delete_tree(&dup.at).await {
                tracing::warn!(at = %dup.at, error = %e, "cannot remove a duplicate error record");
            }
        }
        Ok(found.into_iter().next())
    }

    /// Records that `subsystem` failed on `path` with `message`
    /// (severity 0 = worst … 7). Returns where the record is.
    pub async fn record(
        &self,
        subsystem: &str,
        path: &Path,
        message: &str,
        severity: u8,
        data: Value,
    ) -> Result<Path, ClientError> {
        let t = now();
        let (at, mut rec) = match self.find(subsystem, path).await? {
            Some(r) => (r.at, r.value),
            None => {
                let tock = self
                    .client
                    .send(&Action::GetTock)
                    .await?
                    .get("tock")
                    .and_then(Value::as_u64)
                    .unwrap_or(0);
                let at = self
                    .prefix
                    .child(PathElem::from(self.node.as_str()))
                    .child(PathElem::Int(i64::try_from(tock).unwrap_or(i64::MAX)));
                let rec = MapBuilder::new()
                    .set("path", path.to_value())
                    .set("subsystem", subsystem)
                    .set("severity", i64::from(severity))
                    .set("created", t)
                    .set("count", 0)
                    .build();
                (at, rec)
            }
        };
        let worse = rec
            .get("severity")
            .and_then(Value::as_i64)
            .is_some_and(|s| s < i64::from(severity));
        let count = rec.get("count").and_then(Value::as_u64).unwrap_or(0) + 1;
        if let Value::Map(m) = &mut rec {
            let mut set =
                |k: &str, v: Value| match m.iter_mut().find(|(key, _)| key.as_str() == Some(k)) {
                    Some(slot) => slot.1 = v,
                    None => m.push((Value::from(k), v)),
                };
            set("count", Value::from_u64(count));
            set("last_seen", Value::Float(t));
            set("resolved", Value::Bool(false));
            if !worse {
                set("severity", Value::Int(i64::from(severity)));
                set("message", Value::from(message));
            }
        }
        self.client.set(&at, rec).await?;
        let detail = MapBuilder::new()
            .set("seen", t)
            .set("str", message)
            .set("data", data)
            .build();
        self.client
            .set(&at.child(PathElem::from(self.node.as_str())), detail)
            .await?;
        Ok(at)
    }

    /// Marks the open record of `(subsystem, path)` resolved, if there is
    /// one. Returns whether there was.
    pub async fn working(&self, subsystem: &str, path: &Path) -> Result<bool, ClientError> {
        let Some(r) = self.find(subsystem, path).await? else {
            return Ok(false);
        };
        if !r.is_open() {
            return Ok(false);
        }
        self.resolve(&r).await?;
        Ok(true)
    }

    /// Marks `record` resolved.
    pub async fn resolve(&self, record: &ErrorRecord) -> Result<(), ClientError> {
        let mut v = record.value.clone();
        if let Value::Map(m) = &mut v {
            m.retain(|(k, _)| k.as_str() != Some("resolved"));
            m.push((Value::from("resolved"), Value::Float(now())));
        }
        self.client
            .set_with(&record.at, Some(v), &WriteOptions::default())
            .await?;
        Ok(())
    }
}
