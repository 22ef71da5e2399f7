//! Types and matches: server-side validation of written values
//! (code-and-runners.md §5).
//!
//! `None type T1 … Tn` holds `{good, bad, code, schema}`: a value of type
//! `T1 … Tn` passes every supertype (`T1`, `T1 T2`, …) and then this type's
//! JSON schema and Rhai `code` (which must `throw` to reject; it sees
//! `value` and `data`, the type record). `None match P1 … Pk` holds
//! `{type: [T1, …]}` and binds a type to the paths matching the pattern
//! (`+` and `#` as in ACLs). Writes of user data to a matched path are
//! checked; the scripts run on a blocking thread with small limits.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use distkv_code::{CodeError, Engine, Limits, Script};
use distkv_tree::{Path, PathElem, Tree, Value};

/// What a type check needs, copied out of the tree: per level (supertypes
/// first) the type's path and record.
pub type TypeChain = Vec<(Path, Value)>;

/// Compiles and runs type-check code, caching compiled scripts.
pub struct Checker {
    engine: Engine,
    cache: Mutex<HashMap<String, Script>>,
}

impl std::fmt::Debug for Checker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checker").finish_non_exhaustive()
    }
}

impl Default for Checker {
    fn default() -> Checker {
        Checker {
            engine: Engine::new(Limits {
                max_operations: 100_000,
                max_call_levels: 16,
                max_string_size: 64 << 10,
                max_array_size: 10_000,
                max_map_size: 10_000,
                max_time: Duration::from_millis(100),
                max_source: 64 << 10,
            }),
            cache: Mutex::new(HashMap::new()),
        }
    }
}

fn type_root() -> Path {
    Path(vec![PathElem::Nil, PathElem::Str("type".into())])
}

fn match_root() -> Path {
    Path(vec![PathElem::Nil, PathElem::Str("match".into())])
}

/// `ValueError('…')`, as the original shows a rejected value.
fn value_error(msg: &str) -> String {
    distkv_proto::ErrorClass::Value.call(PathElem::from(msg))
}

impl Checker {
    fn script(&self, name: &str, code: &str) -> Result<Script, String> {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = cache.get(code) {
            return Ok(s.clone());
        }
        let s = self
            .engine
            .compile(name, code, &["value"])
            .map_err(|e| distkv_proto::ErrorClass::Syntax.call(PathElem::from(e.to_string())))?;
        if cache.len() >= 1000 {
            cache.clear();
        }
        cache.insert(code.to_owned(), s.clone());
        Ok(s)
    }

    /// Checks `v` against one type level (`record` at `path`).
    fn check_level(&self, path: &Path, record: &Value, v: &Value) -> Result<(), String> {
        if let Some(schema) = record.get("schema").filter(|s| !s.is_nil()) {
            crate::validate::schema::validate(schema, v)
                .map_err(|e| distkv_proto::ErrorClass::Validation.call(PathElem::from(e)))?;
        }
        if let Some(code) = record.get("code").and_then(Value::as_str) {
            let script = self.script(&path.to_string(), code)?;
            match self.engine.run_with(
                &script,
                std::slice::from_ref(v),
                &[("data", record.clone())],
            ) {
                Ok(_) => {}
                Err(CodeError::Run(msg)) => return Err(value_error(&msg)),
                Err(e) => return Err(value_error(&e.to_string())),
            }
        }
        Ok(())
    }

    /// Runs `code` (a body using `value` and `data`) on `v`; returns its
    /// result (codecs).
    pub fn run_value(
        &self,
        name: &str,
        code: &str,
        v: &Value,
        data: &Value,
    ) -> Result<Value, String> {
        let script = self.script(name, code)?;
        self.engine
            .run_with(&script, std::slice::from_ref(v), &[("data", data.clone())])
            .map_err(|e| match e {
                CodeError::Run(msg) => value_error(&msg),
                e => value_error(&e.to_string()),
            })
    }

    /// Checks `v` against a type and all its supertypes.
    pub fn check(&self, chain: &TypeChain, v: &Value) -> Result<(), String> {
        for (path, record) in chain {
            self.check_level(path, record, v)?;
        }
        Ok(())
    }

    /// Validates a type record about to be stored at `path` (`chain`: its
    /// supertypes): the good values must pass and the bad ones fail.
    pub fn validate_type(
        &self,
        path: &Path,
        chain: &TypeChain,
        record: &Value,
    ) -> Result<(), String> {
        if !matches!(record, Value::Map(_)) {
            return Err("A type record is a map".into());
        }
        let has_check = record.get("code").is_some_and(|c| !c.is_nil())
            || record.get("schema").is_some_and(|s| !s.is_nil());
        let list = |k: &str| -> Vec<Value> {
            record
                .get(k)
                .and_then(Value::as_array)
                .map(<[Value]>::to_vec)
                .unwrap_or_default()
        };
        let (good, bad) = (list("good"), list("bad"));
        if has_check {
            if good.len() < 2 {
                return Err("Must have check-good values".into());
            }
            if bad.is_empty() {
                return Err("Must have check-bad values".into());
            }
        }
        // every example must be of the supertypes
        for v in good.iter().chain(&bad) {
            self.check(chain, v)
                .map_err(|e| format!("supertype failed on {v} with {e}"))?;
        }
        for v in &good {
            self.check_level(path, record, v)
                .map_err(|e| format!("failed on {v} with {e}"))?;
        }
        if has_check {
            for v in &bad {
                if self.check_level(path, record, v).is_ok() {
                    return Err(format!("did not fail on {v}"));
                }
            }
        }
        Ok(())
    }
}

/// The records of the type at `type_path` (below `None type`) and its
/// supertypes, top first; `None` if the type does not exist.
pub fn type_chain(tree: &Tree, type_path: &[PathElem]) -> Option<TypeChain> {
    let mut chain = Vec::new();
    let mut path = type_root();
    for e in type_path {
        path = path.child(e.clone());
        let entry = tree.get(&path)?;
        if let Some(rec) = entry.data() {
            chain.push((path.clone(), rec.clone()));
        }
    }
    Some(chain)
}

/// The type bound to data path `path` by the match tree, if any.
pub fn matched_type(tree: &Tree, path: &Path) -> Option<TypeChain> {
    // no match: no check
    let record = distkv_acl::matching_record(tree, &match_root(), path)?;
    let elems = type_path_of(record)?;
    type_chain(tree, &elems)
}

/// The type path of a match record (`{type: [T1, …]}` or `{type: T1}`).
pub fn type_path_of(record: &Value) -> Option<Vec<PathElem>> {
    record.get("type").and_then(elems_of)
}

/// Path elements given as a list, or one name as a string.
pub fn elems_of(v: &Value) -> Option<Vec<PathElem>> {
    match v {
        Value::Str(s) => Some(vec![PathElem::Str(s.clone())]),
        Value::Array(a) => a
            .iter()
            .map(|v| PathElem::from_value(v.clone()).ok())
            .collect(),
        _ => None,
    }
}

/// Whether the system entry `None KIND ELEMS…` holds a record.
pub fn system_record_exists(tree: &Tree, kind: &str, elems: Vec<PathElem>) -> bool {
    let mut p = Path(vec![PathElem::Nil, PathElem::Str(kind.into())]);
    p.0.extend(elems);
    tree.get(&p).and_then(|e| e.data()).is_some()
}

/// What kind of system entry a path is, for validation on write.
pub enum SystemEntry<'a> {
    /// `None type T1 … Tn`.
    Type(&'a [PathElem]),
    /// `None match P1 … Pk`.
    Match,
    /// `None codec C1 … Cn`.
    Codec,
    /// `None conv NAME P1 … Pk`.
    Conv,
    /// Anything else.
    Other,
}

/// Classifies `path`.
pub fn system_entry(path: &Path) -> SystemEntry<'_> {
    match path.elems() {
        [PathElem::Nil, PathElem::Str(k), rest @ ..] if k == "type" && !rest.is_empty() => {
            SystemEntry::Type(rest)
        }
        [PathElem::Nil, PathElem::Str(k), rest @ ..] if k == "match" && !rest.is_empty() => {
            SystemEntry::Match
        }
        [PathElem::Nil, PathElem::Str(k), rest @ ..] if k == "codec" && !rest.is_empty() => {
            SystemEntry::Codec
        }
        [PathElem::Nil, PathElem::Str(k), _, rest @ ..] if k == "conv" && !rest.is_empty() => {
            SystemEntry::Conv
        }
        _ => SystemEntry::Other,
    }
}
