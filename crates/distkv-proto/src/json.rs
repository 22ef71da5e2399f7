//! Values and paths as JSON, both ways (the `json` feature): the form of
//! `distkv client -o json` and of the web console's API, for front ends
//! and applications that hand stored data to JSON tools.
//!
//! | msgpack value | JSON |
//! |---|---|
//! | nil, booleans, integers, strings | themselves |
//! | floats | numbers; NaN and ±infinity as `{"$float": "nan"}`, `"inf"`, `"-inf"` |
//! | arrays (lists, tuples) | arrays |
//! | maps with only string keys | objects (in stored order) |
//! | other maps | `{"$map": [[key, value], …]}` |
//! | byte strings | `{"$bytes": "BASE64"}` |
//! | extension types | `{"$ext": [TYPE, "BASE64"]}` |
//!
//! A string-keyed map whose only key is `$bytes`, `$ext`, `$float` or
//! `$map` is written in the `$map` form, so that reading it back gives
//! the map and not the value the key names. A path is an array of its
//! elements (strings, numbers, `null`, `{"$bytes": …}`).
//!
//! ```
//! use distkv_proto::json;
//! use distkv_tree::Value;
//! let v = Value::Map(vec![(Value::Int(1), Value::Bytes(b"hi"[..].into()))].into());
//! let j = json::value(&v);
//! assert_eq!(j.to_string(), r#"{"$map":[[1,{"$bytes":"aGk="}]]}"#);
//! assert_eq!(json::to_value(&j).unwrap(), v);
//! ```

use base64::Engine as _;
use distkv_tree::tree::MAX_PATH_LEN;
use distkv_tree::{Path, PathElem, ThinVec, Value};
use serde_json::{Map, Value as Json, json};

/// JSON that does not describe a value or a path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonError {
    /// A `$`-form with a malformed body.
    #[error("bad {0} form: {1}")]
    Form(&'static str, String),
    /// A number that is neither an integer nor a float.
    #[error("unusable number {0}")]
    Number(String),
    /// Deeper than [`MAX_DEPTH`].
    #[error("nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
    /// A path that is not an array of scalars.
    #[error("{0}")]
    Path(String),
}

/// How deep a value read from JSON may nest.
pub const MAX_DEPTH: usize = 64;

const FORMS: [&str; 4] = ["$bytes", "$ext", "$float", "$map"];

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// The JSON form of a stored value (see the module's table).
pub fn value(v: &Value) -> Json {
    match v {
        Value::Nil => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(i) => json!(i),
        Value::UInt(u) => json!(u),
        Value::Float(f) => match serde_json::Number::from_f64(*f) {
            Some(n) => Json::Number(n),
            None if f.is_nan() => json!({"$float": "nan"}),
            None if *f > 0.0 => json!({"$float": "inf"}),
            None => json!({"$float": "-inf"}),
        },
        Value::Str(s) => Json::String(s.to_string()),
        Value::Bytes(b) => json!({ "$bytes": b64(b) }),
        Value::Ext(e) => json!({ "$ext": [e.tag, b64(&e.data)] }),
        Value::Array(a) => Json::Array(a.iter().map(value).collect()),
        Value::Map(m) => {
            let all_str = m.iter().all(|(k, _)| matches!(k, Value::Str(_)));
            let looks_like_form = m.len() == 1
                && m.first()
                    .and_then(|(k, _)| k.as_str())
                    .is_some_and(|k| FORMS.contains(&k));
            if all_str && !looks_like_form {
                let mut o = Map::new();
                for (k, v) in m {
                    if let Value::Str(k) = k {
                        o.insert(k.to_string(), value(v));
                    }
                }
                Json::Object(o)
            } else {
                let pairs = m
                    .iter()
                    .map(|(k, v)| Json::Array(vec![value(k), value(v)]))
                    .collect();
                json!({ "$map": Json::Array(pairs) })
            }
        }
    }
}

/// The JSON form of a path: an array of its elements.
pub fn path(p: &Path) -> Json {
    value(&p.to_value())
}

/// The JSON form of one path element.
pub fn elem(e: &PathElem) -> Json {
    value(&e.to_value())
}

/// The value a JSON form describes (the inverse of [`value`]).
pub fn to_value(j: &Json) -> Result<Value, JsonError> {
    to_value_at(j, 0)
}

fn unb64(form: &'static str, s: &Json) -> Result<Vec<u8>, JsonError> {
    let s = s
        .as_str()
        .ok_or_else(|| JsonError::Form(form, "base64 text expected".into()))?;
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|e| JsonError::Form(form, e.to_string()))
}

fn to_value_at(j: &Json, depth: usize) -> Result<Value, JsonError> {
    if depth > MAX_DEPTH {
        return Err(JsonError::TooDeep);
    }
    Ok(match j {
        Json::Null => Value::Nil,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::Int(i)
            } else if let Some(u) = n.as_u64() {
                Value::UInt(u)
            } else if let Some(f) = n.as_f64() {
                Value::Float(f)
            } else {
                return Err(JsonError::Number(n.to_string()));
            }
        }
        Json::String(s) => Value::from(s.as_str()),
        Json::Array(a) => Value::Array(
            a.iter()
                .map(|x| to_value_at(x, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        Json::Object(o) => {
            if o.len() == 1 {
                if let Some((k, body)) = o.iter().next() {
                    if let Some(v) = form(k, body, depth)? {
                        return Ok(v);
                    }
                }
            }
            Value::Map(
                o.iter()
                    .map(|(k, v)| Ok((Value::from(k.as_str()), to_value_at(v, depth + 1)?)))
                    .collect::<Result<_, JsonError>>()?,
            )
        }
    })
}

/// A `$`-form, or `None` when `key` names none.
fn form(key: &str, body: &Json, depth: usize) -> Result<Option<Value>, JsonError> {
    Ok(Some(match key {
        "$bytes" => Value::Bytes(unb64("$bytes", body)?.into()),
        "$float" => match body.as_str() {
            Some("nan") => Value::Float(f64::NAN),
            Some("inf") => Value::Float(f64::INFINITY),
            Some("-inf") => Value::Float(f64::NEG_INFINITY),
            _ => return Err(JsonError::Form("$float", "nan, inf or -inf".into())),
        },
        "$ext" => {
            let (Some(t), Some(b)) = (body.get(0), body.get(1)) else {
                return Err(JsonError::Form("$ext", "[TYPE, BASE64] expected".into()));
            };
            let t = t
                .as_i64()
                .and_then(|t| i8::try_from(t).ok())
                .ok_or_else(|| JsonError::Form("$ext", "the type is -128…127".into()))?;
            Value::ext(t, unb64("$ext", b)?)
        }
        "$map" => {
            let pairs = body
                .as_array()
                .ok_or_else(|| JsonError::Form("$map", "[[key, value], …] expected".into()))?;
            let mut m = ThinVec::with_capacity(pairs.len());
            for p in pairs {
                let (Some(k), Some(v), 2) = (p.get(0), p.get(1), p.as_array().map_or(0, Vec::len))
                else {
                    return Err(JsonError::Form("$map", "pairs of [key, value]".into()));
                };
                m.push((to_value_at(k, depth + 1)?, to_value_at(v, depth + 1)?));
            }
            Value::Map(m)
        }
        _ => return Ok(None),
    }))
}

/// The path a JSON array describes.
pub fn to_path(j: &Json) -> Result<Path, JsonError> {
    let a = j
        .as_array()
        .ok_or_else(|| JsonError::Path("a path is a JSON array of its elements".into()))?;
    if a.len() > MAX_PATH_LEN {
        return Err(JsonError::Path(format!(
            "a path has at most {MAX_PATH_LEN} elements"
        )));
    }
    let v = to_value(j)?;
    Path::from_value(v).map_err(|e| JsonError::Path(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_of_value_goes_there_and_back() {
        let v = Value::Array(
            vec![
                Value::Nil,
                Value::Bool(true),
                Value::Int(-3),
                Value::UInt(u64::MAX),
                Value::Float(1.5),
                Value::Float(f64::NEG_INFINITY),
                Value::from("s"),
                Value::Bytes(vec![0, 255].into()),
                Value::ext(3, vec![1]),
                Value::Map(vec![(Value::Int(1), Value::from("one"))].into()),
                Value::Map(vec![(Value::from("z"), Value::Int(1))].into()),
                Value::Map(vec![(Value::from("$bytes"), Value::from("not base64"))].into()),
            ]
            .into(),
        );
        let j = value(&v);
        assert_eq!(
            j.to_string(),
            r#"[null,true,-3,18446744073709551615,1.5,{"$float":"-inf"},"s",{"$bytes":"AP8="},{"$ext":[3,"AQ=="]},{"$map":[[1,"one"]]},{"z":1},{"$map":[["$bytes","not base64"]]}]"#
        );
        assert_eq!(to_value(&j), Ok(v));
    }

    #[test]
    fn bad_forms_and_depth_are_errors() {
        for bad in [
            r#"{"$bytes": 3}"#,
            r#"{"$float": "big"}"#,
            r#"{"$ext": [300, ""]}"#,
            r#"{"$map": [[1]]}"#,
        ] {
            let j: Json = serde_json::from_str(bad).unwrap_or_default();
            assert!(to_value(&j).is_err(), "{bad}");
        }
        let deep: Json = serde_json::from_str(&format!("{}{}", "[".repeat(100), "]".repeat(100)))
            .unwrap_or_default();
        assert_eq!(to_value(&deep), Err(JsonError::TooDeep));
    }

    #[test]
    fn paths_are_arrays_of_scalars() {
        let j: Json =
            serde_json::from_str(r#"["a b", 1, null, {"$bytes": "AA=="}]"#).unwrap_or_default();
        let p = to_path(&j);
        assert!(p.is_ok(), "{p:?}");
        if let Ok(p) = p {
            assert_eq!(path(&p), j);
        }
        for bad in [r#""a/b""#, r#"[[1]]"#, r#"[{"a": 1}]"#] {
            let j: Json = serde_json::from_str(bad).unwrap_or_default();
            assert!(to_path(&j).is_err(), "{bad}");
        }
    }
}
