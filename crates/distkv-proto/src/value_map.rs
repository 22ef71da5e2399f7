//! Building and reading msgpack maps with string keys.

use distkv_tree::{ThinVec, Value};

/// Builds a protocol map (string keys, insertion order kept).
#[derive(Clone, Debug, Default)]
pub struct MapBuilder(ThinVec<(Value, Value)>);

impl MapBuilder {
    /// An empty map.
    pub fn new() -> MapBuilder {
        MapBuilder(ThinVec::with_capacity(6))
    }

    /// Adds `key: value`.
    pub fn set(mut self, key: &str, value: impl Into<Value>) -> MapBuilder {
        self.0.push((Value::Str(key.into()), value.into()));
        self
    }

    /// Adds `key: value` if `value` is `Some`.
    pub fn set_opt(self, key: &str, value: Option<impl Into<Value>>) -> MapBuilder {
        match value {
            Some(v) => self.set(key, v),
            None => self,
        }
    }

    /// Adds `key: value` in place.
    pub fn push(&mut self, key: &str, value: impl Into<Value>) {
        self.0.push((Value::Str(key.into()), value.into()));
    }

    /// Whether `key` is present.
    pub fn has(&self, key: &str) -> bool {
        self.0.iter().any(|(k, _)| k.as_str() == Some(key))
    }

    /// The finished map.
    pub fn build(self) -> Value {
        Value::Map(self.0)
    }
}

/// Read access to a protocol map's string-keyed fields.
pub trait MapExt {
    /// The field `key`, if present (nil counts as present).
    fn field(&self, key: &str) -> Option<&Value>;
    /// Removes and returns the field `key`.
    fn take_field(&mut self, key: &str) -> Option<Value>;
}

impl MapExt for Value {
    fn field(&self, key: &str) -> Option<&Value> {
        self.get(key)
    }

    fn take_field(&mut self, key: &str) -> Option<Value> {
        match self {
            Value::Map(m) => {
                let i = m.iter().position(|(k, _)| k.as_str() == Some(key))?;
                Some(m.remove(i).1)
            }
            _ => None,
        }
    }
}
