//! The name of a server, as the originator of changes.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;

use arcstr::ArcStr;

/// A server's name, as the originator of changes. Cheap to clone.
///
/// One pointer wide (an [`ArcStr`]: the count, the length and the text in
/// one allocation), so that a [`NodeEvent`](crate::NodeEvent) takes 16
/// bytes and the common chain of one link fits an entry without an
/// allocation. It compares, hashes and orders as its text, and borrows as
/// `str`, so maps keyed by names can be searched with a `&str`.
///
/// ```
/// use distkv_tree::NodeName;
///
/// let a = NodeName::from("one");
/// assert_eq!(&*a, "one");
/// assert_eq!(a, NodeName::from(String::from("one")));
/// assert_eq!(std::mem::size_of::<NodeName>(), std::mem::size_of::<usize>());
/// ```
#[derive(Clone)]
pub struct NodeName(ArcStr);

impl NodeName {
    /// The text of the name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Deref for NodeName {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for NodeName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for NodeName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl From<&str> for NodeName {
    fn from(s: &str) -> NodeName {
        NodeName(ArcStr::from(s))
    }
}

impl From<String> for NodeName {
    fn from(s: String) -> NodeName {
        NodeName(ArcStr::from(s))
    }
}

impl From<&String> for NodeName {
    fn from(s: &String) -> NodeName {
        NodeName::from(s.as_str())
    }
}

impl From<Box<str>> for NodeName {
    fn from(s: Box<str>) -> NodeName {
        NodeName(ArcStr::from(&*s))
    }
}

impl From<&NodeName> for NodeName {
    fn from(s: &NodeName) -> NodeName {
        s.clone()
    }
}

impl PartialEq for NodeName {
    fn eq(&self, other: &NodeName) -> bool {
        // Names are usually interned: the same allocation is the same name.
        ArcStr::ptr_eq(&self.0, &other.0) || self.0 == other.0
    }
}

impl Eq for NodeName {}

impl PartialEq<str> for NodeName {
    fn eq(&self, other: &str) -> bool {
        *self.0 == *other
    }
}

impl PartialEq<&str> for NodeName {
    fn eq(&self, other: &&str) -> bool {
        *self.0 == **other
    }
}

impl PartialOrd for NodeName {
    fn partial_cmp(&self, other: &NodeName) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for NodeName {
    fn cmp(&self, other: &NodeName) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl Hash for NodeName {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // As `str` hashes, so that `Borrow<str>` lookups find the name.
        self.as_str().hash(state)
    }
}

impl fmt::Display for NodeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self)
    }
}

impl fmt::Debug for NodeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn names_compare_hash_and_print_as_their_text() {
        let a = NodeName::from("a");
        let a2 = NodeName::from(String::from("a"));
        let b = NodeName::from("b");
        assert_eq!(a, a2);
        assert_ne!(a, b);
        assert!(a < b);
        assert_eq!(a, "a");
        assert_eq!(format!("{a} {a:?}"), "a \"a\"");
        let mut m = HashMap::new();
        m.insert(a2, 1);
        assert_eq!(m.get("a"), Some(&1));
        assert_eq!(m.get(&a), Some(&1));
        assert_eq!(m.get("b"), None);
    }
}
