//! distkv values to and from Rhai values.

use distkv_tree::Value;
use rhai::{Array, Blob, Dynamic, Map};

/// A distkv value as a Rhai value. Map keys that are not strings become
/// their Python-literal text; extension values become `()`.
pub fn to_dynamic(v: &Value) -> Dynamic {
    match v {
        Value::Nil | Value::Ext(..) => Dynamic::UNIT,
        Value::Bool(b) => Dynamic::from_bool(*b),
        Value::Int(i) => Dynamic::from_int(*i),
        Value::UInt(u) => match i64::try_from(*u) {
            Ok(i) => Dynamic::from_int(i),
            Err(_) => Dynamic::from_float(*u as f64),
        },
        Value::Float(f) => Dynamic::from_float(*f),
        Value::Str(s) => Dynamic::from(s.to_string()),
        Value::Bytes(b) => Dynamic::from_blob(Blob::from(b.clone())),
        Value::Array(a) => Dynamic::from_array(a.iter().map(to_dynamic).collect::<Array>()),
        Value::Map(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                let key = match k {
                    Value::Str(s) => s.to_string(),
                    other => other.to_string(),
                };
                out.insert(key.into(), to_dynamic(v));
            }
            Dynamic::from_map(out)
        }
    }
}

/// A Rhai value as a distkv value; values of other types become their text.
pub fn from_dynamic(d: &Dynamic) -> Value {
    if d.is_unit() {
        return Value::Nil;
    }
    if let Ok(b) = d.as_bool() {
        return Value::Bool(b);
    }
    if let Ok(i) = d.as_int() {
        return Value::Int(i);
    }
    if let Ok(f) = d.as_float() {
        return Value::Float(f);
    }
    if d.is_string() || d.is_char() {
        return Value::Str(d.to_string().into());
    }
    if d.is_blob() {
        return Value::Bytes(d.clone().cast::<Blob>().into());
    }
    if d.is_array() {
        let a = d.clone().cast::<Array>();
        return Value::Array(a.iter().map(from_dynamic).collect());
    }
    if d.is_map() {
        let m = d.clone().cast::<Map>();
        return Value::Map(
            m.iter()
                .map(|(k, v)| (Value::Str(k.as_str().into()), from_dynamic(v)))
                .collect(),
        );
    }
    Value::Str(d.to_string().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let v = Value::Map(
            vec![
                (Value::from("a"), Value::Int(1)),
                (
                    Value::from("b"),
                    Value::Array(vec![Value::Nil, Value::Bool(true), Value::Float(1.5)].into()),
                ),
                (Value::from("c"), Value::Bytes(vec![1, 2].into())),
                (Value::from("d"), Value::from("text")),
            ]
            .into(),
        );
        assert_eq!(from_dynamic(&to_dynamic(&v)), v);
        // non-string keys become text
        let m = Value::Map(vec![(Value::Int(1), Value::Int(2))].into());
        assert_eq!(
            from_dynamic(&to_dynamic(&m)),
            Value::Map(vec![(Value::from("1"), Value::Int(2))].into())
        );
    }
}
