//! JSON output (`distkv client -o json …`): stored values and paths as
//! JSON, for scripts.
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
//! A path is an array of its elements (strings, numbers, `null`, …), so a
//! path element with a space in it stays one element.
//!
//! ```
//! use distkv_tree::{Path, Value};
//! let v = Value::Map(vec![(Value::from("a"), Value::Bytes(b"hi".to_vec()))]);
//! assert_eq!(distkv_cli::json::value(&v).to_string(), r#"{"a":{"$bytes":"aGk="}}"#);
//! let p = Path::from_strs(&["one two", "three"]);
//! assert_eq!(distkv_cli::json::path(&p).to_string(), r#"["one two","three"]"#);
//! ```

use base64::Engine as _;
use distkv_tree::{Path, Value};
use serde_json::{Map, Value as Json, json};

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
        Value::Ext(t, b) => json!({ "$ext": [t, b64(b)] }),
        Value::Array(a) => Json::Array(a.iter().map(value).collect()),
        Value::Map(m) => {
            if m.iter().all(|(k, _)| matches!(k, Value::Str(_))) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_of_value_has_a_form() {
        let v = Value::Array(vec![
            Value::Nil,
            Value::Bool(true),
            Value::Int(-3),
            Value::UInt(u64::MAX),
            Value::Float(1.5),
            Value::Float(f64::NAN),
            Value::Float(f64::NEG_INFINITY),
            Value::from("s"),
            Value::Bytes(vec![0, 255]),
            Value::Ext(3, vec![1]),
            Value::Map(vec![(Value::Int(1), Value::from("one"))]),
        ]);
        assert_eq!(
            value(&v).to_string(),
            r#"[null,true,-3,18446744073709551615,1.5,{"$float":"nan"},{"$float":"-inf"},"s",{"$bytes":"AP8="},{"$ext":[3,"AQ=="]},{"$map":[[1,"one"]]}]"#
        );
    }

    #[test]
    fn string_keyed_maps_keep_their_order() {
        let v = Value::Map(vec![
            (Value::from("z"), Value::Int(1)),
            (Value::from("a"), Value::Int(2)),
        ]);
        assert_eq!(value(&v).to_string(), r#"{"z":1,"a":2}"#);
    }
}
