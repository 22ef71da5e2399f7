//! Types, matches, codecs and converters: the records below `None type`,
//! `None match`, `None codec` and `None conv` that make servers check
//! and convert values, written with the internal actions (super-root
//! only). The command line's `type` and `codec` commands are these calls.

use distkv_proto::request::{Action, SetValue};
use distkv_proto::value_map::MapBuilder;
use distkv_tree::{Path, PathElem, Value};

use crate::{Client, ClientError};

/// A type (`None type PATH…`): values that must pass and fail, and the
/// checks (a Rhai script, a JSON schema).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TypeRecord {
    /// Values of the type (each must pass).
    pub good: Vec<Value>,
    /// Values not of the type (each must fail).
    pub bad: Vec<Value>,
    /// Rhai code checking `value` (throws to reject).
    pub code: Option<String>,
    /// A JSON schema (`Value::Nil`: none).
    pub schema: Value,
}

/// A codec (`None codec PATH…`): scripts converting values between the
/// stored form and a user's, with examples both ways.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CodecRecord {
    /// Rhai code from the user's form to the stored one.
    pub encode: Option<String>,
    /// Rhai code from the stored form to the user's.
    pub decode: Option<String>,
    /// Examples `(user's value, stored value)` for decoding checks.
    pub input: Vec<(Value, Value)>,
    /// Examples `(stored value, user's value)` for encoding checks.
    pub output: Vec<(Value, Value)>,
}

/// `None KIND WORDS…`.
fn system_path(kind: &str, path: &Path) -> Path {
    let mut p = vec![PathElem::Nil, PathElem::Str(kind.into())];
    p.extend(path.elems().iter().cloned());
    Path(p)
}

fn pairs(items: &[(Value, Value)]) -> Value {
    Value::Array(
        items
            .iter()
            .map(|(a, b)| Value::Array(vec![a.clone(), b.clone()].into()))
            .collect(),
    )
}

fn text(code: &Option<String>) -> Value {
    code.as_deref().map_or(Value::Nil, Value::from)
}

impl Client {
    /// Writes (or, without a value, deletes) the system entry `path`.
    async fn write_internal(&self, path: Path, value: Option<Value>) -> Result<(), ClientError> {
        let write = Action::SetValue(SetValue::new(path, value));
        self.request(write.to_internal_map()).await.map(|_| ())
    }

    async fn set_internal(&self, path: Path, value: Value) -> Result<(), ClientError> {
        self.write_internal(path, Some(value)).await
    }

    async fn delete_internal(&self, path: Path) -> Result<(), ClientError> {
        self.write_internal(path, None).await
    }

    /// The record `None KIND PATH…` (`type`, `codec`, `match`, `conv`, …);
    /// `Value::Nil` when there is none.
    pub async fn system_record(&self, kind: &str, path: &Path) -> Result<Value, ClientError> {
        let get = Action::GetValue {
            path: system_path(kind, path),
            nchain: 0,
        };
        Ok(self
            .request(get.to_internal_map())
            .await?
            .get("value")
            .cloned()
            .unwrap_or(Value::Nil))
    }

    /// The records `None KIND PATH…` at and below `below` (`type`,
    /// `codec`, `match`, `conv`), in tree order: their paths relative to
    /// `None KIND` and their values; none when there are none.
    ///
    /// ```no_run
    /// # async fn demo(client: distkv_client::Client) -> Result<(), distkv_client::ClientError> {
    /// use distkv_tree::Path;
    ///
    /// for (path, _record) in client.system_records("type", &Path::root()).await? {
    ///     println!("{path}");
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn system_records(
        &self,
        kind: &str,
        below: &Path,
    ) -> Result<Vec<(Path, Value)>, ClientError> {
        self.internal_values(system_path(kind, below), below.clone(), true)
            .await
    }

    /// Stores type `path`; the server checks the examples first.
    pub async fn type_set(&self, path: &Path, t: &TypeRecord) -> Result<(), ClientError> {
        let record = MapBuilder::new()
            .set("good", Value::Array(t.good[..].into()))
            .set("bad", Value::Array(t.bad[..].into()))
            .set("code", text(&t.code))
            .set("schema", t.schema.clone())
            .build();
        self.set_internal(system_path("type", path), record).await
    }

    /// The type bound to the paths matching `path` (`+`, `#` wildcards),
    /// as its path; empty when none is.
    pub async fn type_match(&self, path: &Path) -> Result<Vec<Value>, ClientError> {
        let r = self.system_record("match", path).await?;
        Ok(r.get("type")
            .and_then(Value::as_array)
            .unwrap_or(&[])
            .to_vec())
    }

    /// Binds type `type_path` to the paths matching `path`.
    pub async fn type_match_set(&self, path: &Path, type_path: &Path) -> Result<(), ClientError> {
        let record = MapBuilder::new().set("type", type_path.to_value()).build();
        self.set_internal(system_path("match", path), record).await
    }

    /// Removes the binding at `path`.
    pub async fn type_match_delete(&self, path: &Path) -> Result<(), ClientError> {
        self.delete_internal(system_path("match", path)).await
    }

    /// Stores codec `path`; the server checks the examples first.
    pub async fn codec_set(&self, path: &Path, c: &CodecRecord) -> Result<(), ClientError> {
        let record = MapBuilder::new()
            .set("encode", text(&c.encode))
            .set("decode", text(&c.decode))
            .set("in", pairs(&c.input))
            .set("out", pairs(&c.output))
            .build();
        self.set_internal(system_path("codec", path), record).await
    }

    /// Makes converter `name` use codec `codec` for the paths matching
    /// `path`.
    pub async fn converter_set(
        &self,
        name: &str,
        path: &Path,
        codec: &Path,
    ) -> Result<(), ClientError> {
        let record = MapBuilder::new().set("codec", codec.to_value()).build();
        self.set_internal(system_path("conv", &converter_path(name, path)), record)
            .await
    }

    /// Removes the binding of converter `name` at `path`.
    pub async fn converter_delete(&self, name: &str, path: &Path) -> Result<(), ClientError> {
        self.delete_internal(system_path("conv", &converter_path(name, path)))
            .await
    }
}

/// One binding of a converter group: the paths matching `path` are
/// translated with codec `codec` for the group's users.
#[derive(Clone, Debug, PartialEq)]
pub struct Converter {
    /// The converter group (a user's `conv` aux data).
    pub group: String,
    /// The path pattern (`+`, `#` wildcards).
    pub path: Path,
    /// The codec's path; empty if the record names none.
    pub codec: Path,
}

impl Client {
    /// The bindings of converter group `group` (every group's, without
    /// one) at and below `below`, in tree order.
    pub async fn converters(
        &self,
        group: Option<&str>,
        below: &Path,
    ) -> Result<Vec<Converter>, ClientError> {
        let start = match group {
            Some(g) => converter_path(g, below),
            None if below.is_empty() => Path::root(),
            None => {
                return Err(ClientError::Protocol(
                    "converters below a path need the group's name".into(),
                ));
            }
        };
        let mut out = Vec::new();
        for (path, record) in self.system_records("conv", &start).await? {
            let Some((first, rest)) = path.elems().split_first() else {
                continue;
            };
            let codec = record
                .get("codec")
                .cloned()
                .and_then(|c| Path::from_value(c).ok())
                .unwrap_or_default();
            out.push(Converter {
                group: first
                    .as_str()
                    .map_or_else(|| first.to_string(), str::to_owned),
                path: Path(rest.to_vec()),
                codec,
            });
        }
        Ok(out)
    }
}

/// `NAME PATH…` below `None conv`.
fn converter_path(name: &str, path: &Path) -> Path {
    let mut p = vec![PathElem::Str(name.into())];
    p.extend(path.elems().iter().cloned());
    Path(p)
}
