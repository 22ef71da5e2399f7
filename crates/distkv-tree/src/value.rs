//! Stored values: any msgpack value.

use std::fmt;

use lean_string::LeanString;
use thin_vec::ThinVec;

/// A stored value: anything msgpack can carry.
///
/// Byte strings stay bytes (`Bytes`), text stays text (`Str`), maps keep
/// their insertion order and may have keys of any type. Equality is
/// structural; floats compare by bit pattern so that `Value` is `Eq`.
///
/// Byte strings, arrays, maps and extension data are [`ThinVec`]s, one
/// pointer wide, so that a `Value` (and an `Option<Value>`) takes 16 bytes:
/// an entry holds its value inline. Build them from a `Vec` with `into()`
/// or with the [`thin_vec!`](crate::thin_vec!) macro.
///
/// This crate does no I/O: the msgpack bytes of a value are written and
/// read by `distkv_proto::msgpack` (`to_vec`, `decode_one`).
///
/// # Example
///
/// ```
/// use distkv_tree::{Value, thin_vec};
///
/// // Rust values convert with `From`; integers pick `Int` or `UInt`.
/// assert_eq!(Value::from(42), Value::Int(42));
/// assert_eq!(Value::from(u64::MAX), Value::UInt(u64::MAX));
/// assert_eq!(Value::from("hi").as_str(), Some("hi"));
/// assert_eq!(Value::from(b"raw".to_vec()).as_bytes(), Some(&b"raw"[..]));
///
/// // Maps keep their order and may have keys of any type.
/// let reading = Value::Map(thin_vec![
///     ("temp".into(), 21.5.into()),
///     ("ok".into(), true.into()),
///     (Value::Int(1), Value::Nil),
/// ]);
/// assert_eq!(reading.get("ok").and_then(Value::as_bool), Some(true));
/// assert_eq!(reading.to_string(), r#"{"temp": 21.5, "ok": True, 1: None}"#);
///
/// // Equality is structural and exact: no numeric coercion between types,
/// // and floats compare by bit pattern.
/// assert_ne!(Value::Int(1), Value::Float(1.0));
/// assert_eq!(Value::Float(f64::NAN), Value::Float(f64::NAN));
/// assert_ne!(Value::Float(0.0), Value::Float(-0.0));
/// assert_ne!(Value::from("1"), Value::from(b"1".to_vec()));
/// ```
#[derive(Clone, Debug, Default)]
pub enum Value {
    /// msgpack nil (Python `None`).
    #[default]
    Nil,
    /// A boolean.
    Bool(bool),
    /// A signed integer (all msgpack integers that fit `i64`).
    Int(i64),
    /// An unsigned integer above `i64::MAX`.
    UInt(u64),
    /// A 64-bit float (32-bit floats are widened on input).
    Float(f64),
    /// A UTF-8 text string. Up to 16 bytes are stored inline, without an
    /// allocation of their own.
    Str(LeanString),
    /// A byte string.
    Bytes(ThinVec<u8>),
    /// An array (Python list or tuple).
    Array(ThinVec<Value>),
    /// A map with keys of any type, in insertion order.
    Map(ThinVec<(Value, Value)>),
    /// A msgpack extension value (type tag, payload). Boxed, as it is rare,
    /// so that a `Value` takes 16 bytes; build it with [`Value::ext`].
    Ext(Box<ExtValue>),
}

/// The type tag and payload of a msgpack extension value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtValue {
    /// The application-defined type (-128…127).
    pub tag: i8,
    /// The payload.
    pub data: ThinVec<u8>,
}

impl Value {
    /// Builds an extension value.
    ///
    /// ```
    /// use distkv_tree::Value;
    ///
    /// let v = Value::ext(3, vec![1, 2]);
    /// let Value::Ext(e) = &v else { unreachable!() };
    /// assert_eq!((e.tag, &e.data[..]), (3, &[1, 2][..]));
    /// ```
    pub fn ext(tag: i8, data: impl Into<ThinVec<u8>>) -> Value {
        Value::Ext(Box::new(ExtValue {
            tag,
            data: data.into(),
        }))
    }

    /// Builds an integer value, picking `Int` or `UInt` as needed.
    pub fn from_u64(v: u64) -> Value {
        match i64::try_from(v) {
            Ok(i) => Value::Int(i),
            Err(_) => Value::UInt(v),
        }
    }

    /// Whether this is nil.
    pub fn is_nil(&self) -> bool {
        matches!(self, Value::Nil)
    }

    /// The text, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s.as_str()),
            _ => None,
        }
    }

    /// The bytes, if this is a byte string.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The boolean, if this is one.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The integer as `i64`, if it is an integer that fits.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The integer as `u64`, if it is a non-negative integer.
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Value::Int(i) => u64::try_from(*i).ok(),
            Value::UInt(u) => Some(*u),
            _ => None,
        }
    }

    /// The entries, if this is a map.
    pub fn as_map(&self) -> Option<&[(Value, Value)]> {
        match self {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The items, if this is an array.
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    /// Looks up a string key in a map value (first match).
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }

    /// An approximation of the heap bytes this value owns (for accounting).
    pub fn heap_size(&self) -> usize {
        match self {
            Value::Str(s) if s.is_heap_allocated() => s.capacity(),
            Value::Bytes(b) => b.capacity(),
            Value::Ext(e) => std::mem::size_of::<ExtValue>() + e.data.capacity(),
            Value::Array(a) => {
                a.capacity() * std::mem::size_of::<Value>()
                    + a.iter().map(Value::heap_size).sum::<usize>()
            }
            Value::Map(m) => {
                m.capacity() * std::mem::size_of::<(Value, Value)>()
                    + m.iter()
                        .map(|(k, v)| k.heap_size() + v.heap_size())
                        .sum::<usize>()
            }
            _ => 0,
        }
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Value) -> bool {
        use Value::*;
        match (self, other) {
            (Nil, Nil) => true,
            (Bool(a), Bool(b)) => a == b,
            (Int(a), Int(b)) => a == b,
            (UInt(a), UInt(b)) => a == b,
            (Float(a), Float(b)) => a.to_bits() == b.to_bits(),
            (Str(a), Str(b)) => a == b,
            (Bytes(a), Bytes(b)) => a == b,
            (Array(a), Array(b)) => a == b,
            (Map(a), Map(b)) => a == b,
            (Ext(a), Ext(b)) => a == b,
            _ => false,
        }
    }
}

impl Eq for Value {}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Str(s.into())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::Str(s.into())
    }
}

impl From<LeanString> for Value {
    fn from(s: LeanString) -> Value {
        Value::Str(s)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Value {
        Value::Int(i)
    }
}

impl From<i32> for Value {
    fn from(i: i32) -> Value {
        Value::Int(i64::from(i))
    }
}

impl From<u64> for Value {
    fn from(u: u64) -> Value {
        Value::from_u64(u)
    }
}

impl From<usize> for Value {
    fn from(u: usize) -> Value {
        Value::from_u64(u as u64)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

impl From<f64> for Value {
    fn from(f: f64) -> Value {
        Value::Float(f)
    }
}

impl From<Vec<u8>> for Value {
    fn from(b: Vec<u8>) -> Value {
        Value::Bytes(b.into())
    }
}

impl From<&[u8]> for Value {
    fn from(b: &[u8]) -> Value {
        Value::Bytes(b.into())
    }
}

impl fmt::Display for Value {
    /// A compact, Python-like rendering used in error texts and logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Nil => f.write_str("None"),
            Value::Bool(true) => f.write_str("True"),
            Value::Bool(false) => f.write_str("False"),
            Value::Int(i) => write!(f, "{i}"),
            Value::UInt(u) => write!(f, "{u}"),
            Value::Float(x) => write!(f, "{x:?}"),
            Value::Str(s) => write!(f, "{s:?}"),
            Value::Bytes(b) => {
                f.write_str("b'")?;
                for &c in b {
                    match c {
                        b'\\' => f.write_str("\\\\")?,
                        b'\'' => f.write_str("\\'")?,
                        0x20..=0x7e => write!(f, "{}", c as char)?,
                        _ => write!(f, "\\x{c:02x}")?,
                    }
                }
                f.write_str("'")
            }
            Value::Array(a) => {
                f.write_str("[")?;
                for (i, v) in a.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_str("]")
            }
            Value::Map(m) => {
                f.write_str("{")?;
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k}: {v}")?;
                }
                f.write_str("}")
            }
            Value::Ext(e) => write!(f, "ExtType({}, {} bytes)", e.tag, e.data.len()),
        }
    }
}
