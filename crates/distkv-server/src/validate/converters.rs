//! Codecs and converters: per-user translation of values
//! (code-and-runners.md §6).
//!
//! `None codec C1 … Cn` holds `{encode, decode, in, out}`: Rhai code that
//! turns a stored value into what the user sees (`encode`) and back
//! (`decode`), with example pairs that are checked when the codec is
//! stored. `None conv NAME P1 … Pk` holds `{codec: [C1, …]}` and applies
//! the codec to the paths matching the pattern for users bound to the
//! converter group NAME (aux `conv`). Server-to-server traffic is never
//! converted; nil values pass through.

use distkv_tree::{Path, PathElem, Tree, Value};

use crate::validate::type_check::Checker;

fn root(kind: &str) -> Path {
    Path(vec![PathElem::Nil, PathElem::Str(kind.into())])
}

/// The codec record for `path` in converter group `group`, if any.
pub fn codec_for(tree: &Tree, group: &str, path: &Path) -> Option<Value> {
    let conv_root = root("conv").child(PathElem::Str(group.into()));
    let record = distkv_acl::matching_record(tree, &conv_root, path)?;
    let codec_path = crate::validate::type_check::elems_of(record.get("codec")?)?;
    let mut p = root("codec");
    p.0.extend(codec_path);
    tree.get(&p)?.data().cloned()
}

/// Which way a value goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Stored → user (`encode`).
    Encode,
    /// User → stored (`decode`).
    Decode,
}

impl Direction {
    fn field(self) -> &'static str {
        match self {
            Direction::Encode => "encode",
            Direction::Decode => "decode",
        }
    }
}

/// Translates `v` with `codec` in direction `dir`; nil passes through, as
/// does a value when the codec has no code for that direction.
pub fn convert(
    checker: &Checker,
    codec: &Value,
    dir: Direction,
    v: &Value,
) -> Result<Value, String> {
    if v.is_nil() {
        return Ok(Value::Nil);
    }
    let Some(code) = codec.get(dir.field()).and_then(Value::as_str) else {
        return Ok(v.clone());
    };
    checker.run_value(dir.field(), code, v, codec)
}

/// Validates a codec record about to be stored: each direction with code
/// needs example pairs, and must turn each source into its destination.
pub fn validate(checker: &Checker, record: &Value) -> Result<(), String> {
    if !matches!(record, Value::Map(_)) {
        return Err("A codec record is a map".into());
    }
    for (dir, pairs, name) in [
        (Direction::Decode, "in", "decoding"),
        (Direction::Encode, "out", "encoding"),
    ] {
        if record.get(dir.field()).and_then(Value::as_str).is_none() {
            continue;
        }
        let pairs = record.get(pairs).and_then(Value::as_array).unwrap_or(&[]);
        if pairs.is_empty() {
            return Err(format!("Must have tests for {name}"));
        }
        for pair in pairs {
            let (Some(src), Some(dst)) = (
                pair.as_array().and_then(|p| p.first()),
                pair.as_array().and_then(|p| p.get(1)),
            ) else {
                return Err(format!("a test for {name} is a pair [source, result]"));
            };
            let got = convert(checker, record, dir, src).map_err(|e| {
                format!(
                    "failed {} on {src}: {e}",
                    &dir.field()[..dir.field().len() - 1]
                )
            })?;
            if &got != dst {
                let verb = if dir == Direction::Decode {
                    "Decoding"
                } else {
                    "Encoding"
                };
                return Err(format!("{verb} {src} got {got}, not {dst}"));
            }
        }
    }
    Ok(())
}
