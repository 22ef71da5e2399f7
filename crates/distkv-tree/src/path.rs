//! Path elements and paths.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};

use lean_string::LeanString;
use thin_vec::ThinVec;

use crate::value::Value;

/// One element of a path: any hashable msgpack scalar.
///
/// Elements of different types are distinct (`1`, `1.0`, `True` and `"1"`
/// name four different children), with one exception: the empty byte string
/// and the empty text string are the same element, so an empty `Bytes` is
/// equal to, hashes like and orders like `Str("")`. Constructors normalise
/// it to `Str("")`.
///
/// The total order sorts by type first (nil, bool, integer, float, string,
/// bytes), then by value.
#[derive(Clone, Debug)]
pub enum PathElem {
    /// nil (`None`): as the first element it names the system subtree.
    Nil,
    /// A boolean.
    Bool(bool),
    /// A signed integer.
    Int(i64),
    /// An unsigned integer above `i64::MAX`.
    UInt(u64),
    /// A float (discouraged, but allowed).
    Float(f64),
    /// A text string: the normal case. Up to 16 bytes are stored inline,
    /// without an allocation of their own.
    Str(LeanString),
    /// A byte string (one pointer wide, so that a `PathElem` takes 16
    /// bytes).
    Bytes(ThinVec<u8>),
}

/// Why a value cannot be a path element.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// Arrays, maps and extension values are not path elements.
    #[error("not a valid path element: {0}")]
    NotScalar(String),
    /// The path is not an array.
    #[error("a path must be an array")]
    NotArray,
    /// A nil element where it is not allowed.
    #[error("Null path element")]
    NullElement,
}

impl PathElem {
    /// Builds a byte-string element (the empty one becomes `Str("")`).
    pub fn bytes(b: impl Into<ThinVec<u8>>) -> PathElem {
        let b = b.into();
        if b.is_empty() {
            PathElem::Str(LeanString::new())
        } else {
            PathElem::Bytes(b)
        }
    }

    fn rank(&self) -> u8 {
        match self {
            PathElem::Nil => 0,
            PathElem::Bool(_) => 1,
            PathElem::Int(_) | PathElem::UInt(_) => 2,
            PathElem::Float(_) => 3,
            PathElem::Str(_) => 4,
            PathElem::Bytes(b) if b.is_empty() => 4,
            PathElem::Bytes(_) => 5,
        }
    }

    /// Converts a scalar value into a path element.
    pub fn from_value(v: Value) -> Result<PathElem, PathError> {
        Ok(match v {
            Value::Nil => PathElem::Nil,
            Value::Bool(b) => PathElem::Bool(b),
            Value::Int(i) => PathElem::Int(i),
            Value::UInt(u) => PathElem::UInt(u),
            Value::Float(f) => PathElem::Float(f),
            Value::Str(s) => PathElem::Str(s),
            Value::Bytes(b) => PathElem::bytes(b),
            other => return Err(PathError::NotScalar(other.to_string())),
        })
    }

    /// Converts the element into a value.
    pub fn to_value(&self) -> Value {
        match self {
            PathElem::Nil => Value::Nil,
            PathElem::Bool(b) => Value::Bool(*b),
            PathElem::Int(i) => Value::Int(*i),
            PathElem::UInt(u) => Value::UInt(*u),
            PathElem::Float(f) => Value::Float(*f),
            PathElem::Str(s) => Value::Str(s.clone()),
            PathElem::Bytes(b) => Value::Bytes(b.clone()),
        }
    }

    /// The text, if this is a string element.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            PathElem::Str(s) => Some(s),
            PathElem::Bytes(b) if b.is_empty() => Some(""),
            _ => None,
        }
    }

    /// Whether this is the nil element.
    pub fn is_nil(&self) -> bool {
        matches!(self, PathElem::Nil)
    }
}

impl From<&str> for PathElem {
    fn from(s: &str) -> PathElem {
        PathElem::Str(s.into())
    }
}

impl From<String> for PathElem {
    fn from(s: String) -> PathElem {
        PathElem::Str(s.into())
    }
}

impl From<LeanString> for PathElem {
    fn from(s: LeanString) -> PathElem {
        PathElem::Str(s)
    }
}

impl From<i64> for PathElem {
    fn from(i: i64) -> PathElem {
        PathElem::Int(i)
    }
}

impl PartialEq for PathElem {
    fn eq(&self, other: &PathElem) -> bool {
        match (self, other) {
            // The common cases, compared for equality alone (lengths
            // first) rather than ordered.
            (PathElem::Str(a), PathElem::Str(b)) => a.as_bytes() == b.as_bytes(),
            (PathElem::Int(a), PathElem::Int(b)) => a == b,
            _ => self.cmp(other) == Ordering::Equal,
        }
    }
}

impl Eq for PathElem {}

impl PartialOrd for PathElem {
    fn partial_cmp(&self, other: &PathElem) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for PathElem {
    fn cmp(&self, other: &PathElem) -> Ordering {
        use PathElem::*;
        match self.rank().cmp(&other.rank()) {
            Ordering::Equal => {}
            o => return o,
        }
        match (self, other) {
            (Bool(a), Bool(b)) => a.cmp(b),
            (Int(a), Int(b)) => a.cmp(b),
            (UInt(a), UInt(b)) => a.cmp(b),
            // An `Int` is always below `i64::MAX + 1`, the smallest `UInt`.
            (Int(_), UInt(_)) => Ordering::Less,
            (UInt(_), Int(_)) => Ordering::Greater,
            (Float(a), Float(b)) => a.total_cmp(b),
            (Bytes(a), Bytes(b)) => a.cmp(b),
            _ => {
                // Same rank: nil, or strings (possibly the empty byte string).
                let a = self.as_str().unwrap_or("");
                let b = other.as_str().unwrap_or("");
                a.cmp(b)
            }
        }
    }
}

impl Hash for PathElem {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.rank().hash(state);
        match self {
            PathElem::Nil => {}
            PathElem::Bool(b) => b.hash(state),
            PathElem::Int(i) => i.hash(state),
            PathElem::UInt(u) => u.hash(state),
            PathElem::Float(f) => f.to_bits().hash(state),
            PathElem::Str(s) => s.hash(state),
            PathElem::Bytes(b) if b.is_empty() => "".hash(state),
            PathElem::Bytes(b) => b.hash(state),
        }
    }
}

impl fmt::Display for PathElem {
    /// Python `repr` style: `'one'`, `1`, `None`, `b'x'`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathElem::Nil => f.write_str("None"),
            PathElem::Bool(true) => f.write_str("True"),
            PathElem::Bool(false) => f.write_str("False"),
            PathElem::Int(i) => write!(f, "{i}"),
            PathElem::UInt(u) => write!(f, "{u}"),
            PathElem::Float(x) => write!(f, "{x:?}"),
            PathElem::Str(s) => write_py_str(f, s),
            PathElem::Bytes(b) if b.is_empty() => f.write_str("''"),
            PathElem::Bytes(b) => write!(f, "{}", Value::Bytes(b[..].into())),
        }
    }
}

/// Writes `s` as a Python string literal (`repr` style, single quotes
/// unless the text contains a single quote and no double quote).
pub fn write_py_str(f: &mut impl fmt::Write, s: &str) -> fmt::Result {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    f.write_char(quote)?;
    for c in s.chars() {
        match c {
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            c if c == quote => {
                f.write_char('\\')?;
                f.write_char(c)?;
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => write!(f, "\\x{:02x}", c as u32)?,
            c => f.write_char(c)?,
        }
    }
    f.write_char(quote)
}

/// A path from the root: a sequence of elements. The root is the empty path.
///
/// It displays as a Python tuple, and travels as an array value.
///
/// # Example
///
/// ```
/// use distkv_tree::{Path, PathElem, Value};
///
/// # fn main() -> Result<(), distkv_tree::PathError> {
/// let sensors = Path::from_strs(&["home", "sensors"]);
/// // Elements are any msgpack scalar, not only text.
/// let third = sensors.child(PathElem::Int(3));
/// assert_eq!(third.to_string(), "('home', 'sensors', 3)");
/// assert_eq!(third.len(), 3);
/// assert!(third.starts_with(&sensors));
///
/// // The same path, element by element.
/// let built = Path::from(vec![PathElem::from("home"), "sensors".into(), 3.into()]);
/// assert_eq!(built, third);
///
/// // On the wire a path is an array.
/// let wire = third.to_value();
/// assert_eq!(wire, Value::Array(vec!["home".into(), "sensors".into(), Value::Int(3)].into()));
/// assert_eq!(Path::from_value(wire)?, third);
///
/// // nil as the first element names the system subtree.
/// let system = Path(vec![PathElem::Nil, "auth".into()]);
/// assert!(system.has_nil());
/// assert_eq!(system.to_string(), "(None, 'auth')");
/// assert_eq!(Path::root().to_string(), "()");
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Path(pub Vec<PathElem>);

impl Path {
    /// The root path.
    pub fn root() -> Path {
        Path(Vec::new())
    }

    /// A path of string elements.
    pub fn from_strs<S: AsRef<str>>(words: &[S]) -> Path {
        Path(
            words
                .iter()
                .map(|w| PathElem::Str(w.as_ref().into()))
                .collect(),
        )
    }

    /// Parses a path from an array value.
    pub fn from_value(v: Value) -> Result<Path, PathError> {
        match v {
            Value::Array(items) => items
                .into_iter()
                .map(PathElem::from_value)
                .collect::<Result<Vec<_>, _>>()
                .map(Path),
            _ => Err(PathError::NotArray),
        }
    }

    /// The path as an array value.
    pub fn to_value(&self) -> Value {
        Value::Array(self.0.iter().map(PathElem::to_value).collect())
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether this is the root path.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The elements.
    pub fn elems(&self) -> &[PathElem] {
        &self.0
    }

    /// Whether `self` starts with `prefix`.
    pub fn starts_with(&self, prefix: &Path) -> bool {
        self.0.starts_with(&prefix.0)
    }

    /// Whether the path contains a nil element.
    pub fn has_nil(&self) -> bool {
        self.0.iter().any(PathElem::is_nil)
    }

    /// A new path with `elem` appended.
    pub fn child(&self, elem: PathElem) -> Path {
        let mut v = self.0.clone();
        v.push(elem);
        Path(v)
    }
}

impl From<Vec<PathElem>> for Path {
    fn from(v: Vec<PathElem>) -> Path {
        Path(v)
    }
}

impl fmt::Display for Path {
    /// Python tuple `repr`: `('one', 'two')`, `('one',)`, `()`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(")?;
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{e}")?;
        }
        if self.0.len() == 1 {
            f.write_str(",")?;
        }
        f.write_str(")")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn equality_agrees_with_the_order() {
        let elems = [
            PathElem::Nil,
            PathElem::Bool(false),
            PathElem::Int(-1),
            PathElem::Int(7),
            PathElem::UInt(u64::MAX),
            PathElem::Float(7.0),
            PathElem::Str("".into()),
            PathElem::Str("a".into()),
            PathElem::Str("a name longer than sixteen bytes".into()),
            PathElem::Bytes(ThinVec::new()),
            PathElem::bytes(b"a".to_vec()),
        ];
        for a in &elems {
            for b in &elems {
                let same = a.cmp(b) == Ordering::Equal;
                assert_eq!(a == b, same, "{a:?} vs {b:?}");
                assert_eq!(a == &b.clone(), same);
            }
        }
    }

    #[test]
    fn empty_bytes_is_empty_str() {
        let a = PathElem::Str("".into());
        let b = PathElem::Bytes(ThinVec::new());
        assert_eq!(a, b);
        let mut set = HashSet::new();
        set.insert(a);
        assert!(set.contains(&b));
        assert_eq!(PathElem::bytes(vec![]), PathElem::Str("".into()));
        assert_ne!(PathElem::bytes(b"x".to_vec()), PathElem::Str("x".into()));
        let read = PathElem::from_value(Value::Bytes(ThinVec::new())).expect("a scalar");
        assert!(matches!(read, PathElem::Str(ref s) if s.is_empty()));
        assert_eq!(read.to_value(), Value::from(""));
    }

    #[test]
    fn types_are_distinct_and_ordered() {
        let elems = [
            PathElem::Nil,
            PathElem::Bool(false),
            PathElem::Bool(true),
            PathElem::Int(-3),
            PathElem::Int(1),
            PathElem::UInt(u64::MAX),
            PathElem::Float(1.0),
            PathElem::Str("1".into()),
            PathElem::Bytes(b"1".as_slice().into()),
        ];
        for w in elems.windows(2) {
            assert!(w[0] < w[1], "{:?} < {:?}", w[0], w[1]);
        }
    }

    #[test]
    fn display_is_python_repr() {
        let p = Path::from_strs(&["one", "two"]);
        assert_eq!(p.to_string(), "('one', 'two')");
        assert_eq!(Path::from_strs(&["x"]).to_string(), "('x',)");
        assert_eq!(Path::root().to_string(), "()");
        assert_eq!(PathElem::Str("it's".into()).to_string(), "\"it's\"");
    }

    #[test]
    fn from_value_rejects_containers() {
        assert!(PathElem::from_value(Value::Array(Default::default())).is_err());
        assert_eq!(Path::from_value(Value::Nil), Err(PathError::NotArray));
    }
}
