//! Path shortening for streamed replies of the client protocol.
//!
//! A reply that streams many entries below one prefix does not repeat the
//! full path of each entry. Instead it sends the path relative to the
//! prefix as `(depth, rest)`: keep the first `depth` elements of the
//! previous relative path, then append `rest`. With prefix `[a b]` the
//! paths `a b`, `a b c d`, `a b c e f`, `a b c e g h`, `a b c i`, `a b j`
//! travel as `(0, [])`, `(0, [c d])`, `(1, [e f])`, `(2, [g h])`,
//! `(1, [i])`, `(0, [j])`.
//!
//! [`PathShortener`] produces these pairs on the sending side and
//! [`PathLengthener`] restores the full paths on the receiving side.

use distkv_tree::{Path, PathElem, Value};

/// Why a shortened path cannot be restored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShortenError {
    /// The depth refers to more elements than the previous path had.
    #[error("path depth {depth} exceeds the previous path's length {max}")]
    BadDepth {
        /// The received depth.
        depth: usize,
        /// The largest acceptable depth (length of the previous relative path).
        max: usize,
    },
    /// A streamed item's `depth` or `path` field is malformed.
    #[error("bad item in a path stream: {0}")]
    BadItem(String),
}

/// Turns full paths below a prefix into `(depth, rest)` pairs.
#[derive(Debug, Clone)]
pub struct PathShortener {
    prefix: Path,
    /// The previous path, relative to the prefix.
    last: Vec<PathElem>,
}

impl PathShortener {
    /// A shortener for paths below `prefix`.
    pub fn new(prefix: &Path) -> PathShortener {
        PathShortener {
            prefix: prefix.clone(),
            last: Vec::new(),
        }
    }

    /// Shortens `full`, remembering it as the previous path.
    ///
    /// Returns `None` (and remembers nothing) if `full` is not below the
    /// prefix. Otherwise, with `q` the part of `full` after the prefix,
    /// returns the length `d` of the common prefix of `q` and the previous
    /// `q`, and the elements of `q` after the first `d`.
    pub fn shorten(&mut self, full: &Path) -> Option<(usize, Path)> {
        let rel = full.elems().strip_prefix(self.prefix.elems())?;
        let depth = rel
            .iter()
            .zip(&self.last)
            .take_while(|(a, b)| a == b)
            .count();
        let rest = rel.iter().skip(depth).cloned().collect();
        self.last.clear();
        self.last.extend_from_slice(rel);
        Some((depth, Path(rest)))
    }
}

/// Restores full paths from the `(depth, rest)` pairs of a
/// [`PathShortener`].
#[derive(Debug, Clone)]
pub struct PathLengthener {
    prefix_len: usize,
    /// The previous full path (initially the prefix).
    cur: Vec<PathElem>,
}

impl PathLengthener {
    /// A lengthener for paths below `prefix`.
    pub fn new(prefix: Path) -> PathLengthener {
        PathLengthener {
            prefix_len: prefix.len(),
            cur: prefix.0,
        }
    }

    /// Restores the full path: the prefix, the first `depth` elements of
    /// the previous relative path, then `rest`. The result becomes the
    /// previous path.
    ///
    /// Fails with [`ShortenError::BadDepth`] if the previous relative path
    /// has fewer than `depth` elements.
    pub fn lengthen(&mut self, depth: usize, rest: &Path) -> Result<Path, ShortenError> {
        let max = self.cur.len().saturating_sub(self.prefix_len);
        if depth > max {
            return Err(ShortenError::BadDepth { depth, max });
        }
        self.cur.truncate(self.prefix_len + depth);
        self.cur.extend_from_slice(rest.elems());
        Ok(Path(self.cur.clone()))
    }

    /// The full path of one item of a streamed reply (`get_tree`,
    /// `watch`): its `depth` (0 when absent) and its `path`, the rest
    /// (the root when absent). The one decoder of shortened paths, for
    /// the client, the server's peer copy and the command line.
    pub fn lengthen_item(&mut self, item: &Value) -> Result<Path, ShortenError> {
        let depth = match item.get("depth") {
            None => 0,
            Some(d) => d
                .as_u64()
                .and_then(|d| usize::try_from(d).ok())
                .ok_or_else(|| ShortenError::BadItem(format!("depth {d} is not a count")))?,
        };
        let rest = match item.get("path") {
            None => Path::root(),
            Some(p) => {
                Path::from_value(p.clone()).map_err(|e| ShortenError::BadItem(e.to_string()))?
            }
        };
        self.lengthen(depth, &rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Path {
        Path::from_strs(&s.split_whitespace().collect::<Vec<_>>())
    }

    const SPEC: [(&str, usize, &str); 6] = [
        ("a b", 0, ""),
        ("a b c d", 0, "c d"),
        ("a b c e f", 1, "e f"),
        ("a b c e g h", 2, "g h"),
        ("a b c i", 1, "i"),
        ("a b j", 0, "j"),
    ];

    #[test]
    fn spec_example_shortens() {
        let mut s = PathShortener::new(&p("a b"));
        for (full, depth, rest) in SPEC {
            assert_eq!(s.shorten(&p(full)), Some((depth, p(rest))), "{full}");
        }
    }

    #[test]
    fn spec_example_lengthens() {
        let mut l = PathLengthener::new(p("a b"));
        for (full, depth, rest) in SPEC {
            assert_eq!(l.lengthen(depth, &p(rest)), Ok(p(full)), "{full}");
        }
    }

    #[test]
    fn paths_outside_the_prefix_are_skipped() {
        let mut s = PathShortener::new(&p("a b"));
        assert_eq!(s.shorten(&p("a b c")), Some((0, p("c"))));
        assert_eq!(s.shorten(&p("a")), None);
        assert_eq!(s.shorten(&p("a x c")), None);
        // The skipped paths did not replace the previous one.
        assert_eq!(s.shorten(&p("a b c d")), Some((1, p("d"))));
    }

    #[test]
    fn repeated_and_shorter_paths() {
        let mut s = PathShortener::new(&Path::root());
        let mut l = PathLengthener::new(Path::root());
        for full in ["x y", "x y", "x", "x y z", ""] {
            let (depth, rest) = s.shorten(&p(full)).unwrap_or_default();
            assert_eq!(l.lengthen(depth, &rest), Ok(p(full)), "{full}");
        }
    }

    #[test]
    fn bad_depth_is_rejected() {
        let mut l = PathLengthener::new(p("a"));
        assert_eq!(
            l.lengthen(1, &p("b")),
            Err(ShortenError::BadDepth { depth: 1, max: 0 })
        );
        assert_eq!(l.lengthen(0, &p("b c")), Ok(p("a b c")));
        assert_eq!(
            l.lengthen(3, &Path::root()),
            Err(ShortenError::BadDepth { depth: 3, max: 2 })
        );
        assert_eq!(l.lengthen(2, &Path::root()), Ok(p("a b c")));
    }

    #[test]
    fn items_carry_their_shortened_paths() {
        let prefix = Path::from_strs(&["a"]);
        let mut l = PathLengthener::new(prefix.clone());
        let item = |depth: Option<Value>, path: Option<Value>| {
            let mut m = Vec::new();
            if let Some(d) = depth {
                m.push((Value::from("depth"), d));
            }
            if let Some(p) = path {
                m.push((Value::from("path"), p));
            }
            Value::Map(m.into())
        };
        assert_eq!(l.lengthen_item(&item(None, None)).expect("root"), prefix);
        let bc = Value::Array(vec![Value::from("b"), Value::from("c")].into());
        assert_eq!(
            l.lengthen_item(&item(None, Some(bc))).expect("below"),
            Path::from_strs(&["a", "b", "c"])
        );
        let d = Value::Array(vec![Value::from("d")].into());
        assert_eq!(
            l.lengthen_item(&item(Some(Value::Int(1)), Some(d)))
                .expect("sibling"),
            Path::from_strs(&["a", "b", "d"])
        );
        for bad in [
            item(Some(Value::from("x")), None),
            item(Some(Value::Int(-1)), None),
            item(Some(Value::Int(9)), None),
            item(None, Some(Value::from("not a list"))),
        ] {
            assert!(l.lengthen_item(&bad).is_err(), "{bad:?}");
        }
    }
}
