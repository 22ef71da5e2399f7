//! Storing stored procedures and modules (code-and-runners.md §2): the
//! records below `.distkv code proc` and `.distkv code module`, as an
//! administration tool writes and reads them. Running them is
//! [`code`](crate::code)'s job (with the `code` feature).
//!
//! ```no_run
//! # async fn demo(client: distkv_client::Client) -> Result<(), distkv_client::ClientError> {
//! use distkv_client::procedures::Procedure;
//! use distkv_tree::Path;
//!
//! let answer = Procedure::new("42").with_vars(["x"]);
//! client.proc_set(&Path::from_strs(&["the", "answer"]), &answer).await?;
//! assert!(client.proc_names().await?.contains(&Path::from_strs(&["the", "answer"])));
//! # Ok(()) }
//! ```

use distkv_proto::value_map::MapBuilder;
use distkv_tree::{Path, Value};
use futures_util::StreamExt;

use crate::{Client, ClientError, TreeOptions};

/// Where procedures are stored by default.
pub fn proc_prefix() -> Path {
    Path::from_strs(&[".distkv", "code", "proc"])
}

/// Where modules are stored by default.
pub fn module_prefix() -> Path {
    Path::from_strs(&[".distkv", "code", "module"])
}

fn below(prefix: Path, rel: &Path) -> Path {
    let mut p = prefix;
    p.0.extend(rel.elems().iter().cloned());
    p
}

/// A stored procedure's record: `{code, is_async, vars}`.
#[derive(Clone, Debug, PartialEq)]
pub struct Procedure {
    /// The Rhai function body.
    pub code: String,
    /// The names of its arguments.
    pub vars: Vec<String>,
    /// Whether it runs asynchronously (kept for the original's
    /// compatibility; written as `nil` when false, as the original does).
    pub is_async: bool,
}

impl Procedure {
    /// A procedure without arguments.
    pub fn new(code: impl Into<String>) -> Procedure {
        Procedure {
            code: code.into(),
            vars: Vec::new(),
            is_async: false,
        }
    }

    /// The same procedure taking these arguments.
    pub fn with_vars<I, S>(mut self, vars: I) -> Procedure
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.vars = vars.into_iter().map(Into::into).collect();
        self
    }

    /// The stored record.
    pub fn to_value(&self) -> Value {
        MapBuilder::new()
            .set("code", self.code.as_str())
            .set(
                "is_async",
                if self.is_async {
                    Value::Bool(true)
                } else {
                    Value::Nil
                },
            )
            .set(
                "vars",
                Value::Array(self.vars.iter().map(|v| Value::from(v.as_str())).collect()),
            )
            .build()
    }
}

impl Client {
    /// Stores procedure `proc` at `name` (below [`proc_prefix`]).
    pub async fn proc_set(&self, name: &Path, proc: &Procedure) -> Result<(), ClientError> {
        self.set(&below(proc_prefix(), name), proc.to_value())
            .await
            .map(drop)
    }

    /// The record stored at procedure `name`, if any.
    pub async fn proc_get(&self, name: &Path) -> Result<Option<Value>, ClientError> {
        self.get(&below(proc_prefix(), name)).await
    }

    /// Deletes procedure `name`.
    pub async fn proc_delete(&self, name: &Path) -> Result<(), ClientError> {
        self.delete(&below(proc_prefix(), name)).await.map(drop)
    }

    /// The names of the stored procedures (entries with `code`), relative
    /// to [`proc_prefix`], in tree order.
    pub async fn proc_names(&self) -> Result<Vec<Path>, ClientError> {
        let prefix = proc_prefix();
        let mut stream = self.get_tree(&prefix, &TreeOptions::default()).await?;
        let mut names = Vec::new();
        while let Some(item) = stream.next().await {
            let item = item?;
            if item.value.as_ref().and_then(|v| v.get("code")).is_some() {
                names.push(Path(item.path.elems()[prefix.len()..].to_vec()));
            }
        }
        Ok(names)
    }

    /// Stores module `code` at `name` (below [`module_prefix`]).
    pub async fn module_set(&self, name: &Path, code: &str) -> Result<(), ClientError> {
        let record = MapBuilder::new().set("code", code).build();
        self.set(&below(module_prefix(), name), record)
            .await
            .map(drop)
    }

    /// The record stored at module `name`, if any.
    pub async fn module_get(&self, name: &Path) -> Result<Option<Value>, ClientError> {
        self.get(&below(module_prefix(), name)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_procedure_record_is_written_as_the_original_writes_it() {
        let plain = Procedure::new("1 + 1").to_value();
        assert_eq!(plain.get("code").and_then(Value::as_str), Some("1 + 1"));
        assert_eq!(plain.get("is_async"), Some(&Value::Nil));
        assert_eq!(plain.get("vars"), Some(&Value::Array(Default::default())));
        let with = Procedure {
            is_async: true,
            ..Procedure::new("x * 2").with_vars(["x"])
        }
        .to_value();
        assert_eq!(with.get("is_async"), Some(&Value::Bool(true)));
        assert_eq!(
            with.get("vars"),
            Some(&Value::Array(vec![Value::from("x")].into()))
        );
    }

    #[test]
    fn names_are_placed_below_their_prefix() {
        let p = below(proc_prefix(), &Path::from_strs(&["a", "b"]));
        assert_eq!(p, Path::from_strs(&[".distkv", "code", "proc", "a", "b"]));
    }
}
