//! Node events and change chains.

use std::fmt;
use std::sync::Arc;

/// A server's name, as the originator of changes. Cheap to clone.
pub type NodeName = Arc<str>;

/// One change: the `tick`-th change originated by `node`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NodeEvent {
    /// The originating node.
    pub node: NodeName,
    /// That node's change counter (starts at 1).
    pub tick: u64,
}

impl NodeEvent {
    /// Builds a node event.
    pub fn new(node: impl Into<NodeName>, tick: u64) -> NodeEvent {
        NodeEvent {
            node: node.into(),
            tick,
        }
    }
}

impl fmt::Display for NodeEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<NodeEvent:{} @{}>", self.node, self.tick)
    }
}

/// Why a chain could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    /// A chain needs at least one link.
    #[error("empty chain")]
    Empty,
    /// A node appears twice.
    #[error("node {0} appears twice in a chain")]
    DuplicateNode(String),
    /// A tick of zero is not a change.
    #[error("tick 0 in a chain")]
    ZeroTick,
}

/// The links of a chain. The common case, an entry last changed by one
/// node only, needs no allocation; longer chains are boxed slices (no
/// capacity slack). 24 bytes either way.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Links {
    /// Exactly one link.
    One(NodeEvent),
    /// Two links or more.
    Many(Box<[NodeEvent]>),
}

impl Links {
    /// `links` must not be empty.
    fn from_vec(links: Vec<NodeEvent>) -> Links {
        match <[NodeEvent; 1]>::try_from(links) {
            Ok([one]) => Links::One(one),
            Err(links) => Links::Many(links.into_boxed_slice()),
        }
    }

    fn as_slice(&self) -> &[NodeEvent] {
        match self {
            Links::One(l) => std::slice::from_ref(l),
            Links::Many(ls) => ls,
        }
    }
}

/// The change history of an entry: most recent change first, each node at
/// most once, at most [`Chain::MAX_LINKS`] links.
///
/// `complete` is true when the chain reaches back to the entry's creation
/// (on the wire: the last link has `prev: null`); a chain cut short by a
/// length limit is not complete.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chain {
    /// Never empty.
    links: Links,
    complete: bool,
}

impl Chain {
    /// The most links kept in memory.
    pub const MAX_LINKS: usize = 16;

    /// Builds a chain from its links (most recent first). Longer chains are
    /// cut to [`Chain::MAX_LINKS`] (and marked incomplete).
    pub fn new(mut links: Vec<NodeEvent>, complete: bool) -> Result<Chain, ChainError> {
        if links.is_empty() {
            return Err(ChainError::Empty);
        }
        for (i, l) in links.iter().enumerate() {
            if l.tick == 0 {
                return Err(ChainError::ZeroTick);
            }
            if links[..i].iter().any(|m| m.node == l.node) {
                return Err(ChainError::DuplicateNode(l.node.to_string()));
            }
        }
        let mut complete = complete;
        if links.len() > Self::MAX_LINKS {
            links.truncate(Self::MAX_LINKS);
            complete = false;
        }
        Ok(Chain {
            links: Links::from_vec(links),
            complete,
        })
    }

    /// A chain of one link: the creation of an entry.
    pub fn single(ev: NodeEvent) -> Chain {
        Chain {
            links: Links::One(ev),
            complete: true,
        }
    }

    /// The most recent change.
    pub fn head(&self) -> &NodeEvent {
        // `links` is never empty: every constructor guarantees it.
        &self.links()[0]
    }

    /// All links, most recent first.
    pub fn links(&self) -> &[NodeEvent] {
        self.links.as_slice()
    }

    /// Whether the chain reaches back to the entry's creation.
    pub fn is_complete(&self) -> bool {
        self.complete
    }

    /// The tick of `node` in this chain, if it appears.
    pub fn tick_of(&self, node: &str) -> Option<u64> {
        self.links()
            .iter()
            .find(|l| &*l.node == node)
            .map(|l| l.tick)
    }

    /// Whether `(node, tick)` is a link of this chain.
    pub fn contains(&self, ev: &NodeEvent) -> bool {
        self.tick_of(&ev.node) == Some(ev.tick)
    }

    /// Only the heads are compared (spec: `C == D`).
    pub fn same_head(&self, other: &Chain) -> bool {
        self.head() == other.head()
    }

    /// `self > other`: `self` is based on (newer than) `other`, i.e. the
    /// heads differ and `self` holds `other`'s head node with a tick at
    /// least as high. (`>=`, not `>`: a chain that still carries `other`'s
    /// head link unchanged was built on top of it.)
    pub fn is_newer_than(&self, other: &Chain) -> bool {
        if self.same_head(other) {
            return false;
        }
        let h = other.head();
        matches!(self.tick_of(&h.node), Some(t) if t >= h.tick)
    }

    /// `self < other`: `other` is based on (newer than) `self`.
    pub fn is_older_than(&self, other: &Chain) -> bool {
        other.is_newer_than(self)
    }

    /// The chain after `ev` changes the entry: `ev`'s node's old link is
    /// removed (returned as superseded) and `ev` becomes the head. The result
    /// is cut to `max_len` links (at least one).
    pub fn advance(&self, ev: NodeEvent, max_len: usize) -> (Chain, Option<NodeEvent>) {
        if let Links::One(l) = &self.links {
            if l.node == ev.node {
                // The common case: the same node changes the entry again.
                let chain = Chain {
                    links: Links::One(ev),
                    complete: self.complete,
                };
                return (chain, Some(l.clone()));
            }
        }
        let mut superseded = None;
        let mut links = Vec::with_capacity(self.links().len() + 1);
        links.push(ev);
        for l in self.links() {
            if l.node == links[0].node {
                superseded = Some(l.clone());
            } else {
                links.push(l.clone());
            }
        }
        let limit = max_len.clamp(1, Self::MAX_LINKS);
        let mut complete = self.complete;
        if links.len() > limit {
            links.truncate(limit);
            complete = false;
        }
        let links = Links::from_vec(links);
        (Chain { links, complete }, superseded)
    }

    /// The chain without `node`'s link (the original's `filter`): `None`
    /// if that link was the only one. A chain without such a link comes
    /// back unchanged. Completeness stays as it was: the remaining links
    /// keep their order.
    pub fn without(&self, node: &str) -> Option<Chain> {
        let links: Vec<NodeEvent> = self
            .links()
            .iter()
            .filter(|l| &*l.node != node)
            .cloned()
            .collect();
        if links.is_empty() {
            return None;
        }
        Some(Chain {
            links: Links::from_vec(links),
            complete: self.complete,
        })
    }

    /// A copy with at most `n` links (`n` = 0 is treated as 1).
    pub fn truncated(&self, n: usize) -> Chain {
        let links = self.links();
        if n >= links.len() {
            return self.clone();
        }
        Chain {
            links: Links::from_vec(links[..n.max(1)].to_vec()),
            complete: false,
        }
    }
}

impl fmt::Display for Chain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<")?;
        for (i, l) in self.links().iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{}:{}", l.node, l.tick)?;
        }
        f.write_str(">")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ch(links: &[(&str, u64)]) -> Chain {
        Chain::new(
            links.iter().map(|(n, t)| NodeEvent::new(*n, *t)).collect(),
            true,
        )
        .expect("valid chain")
    }

    #[test]
    fn rejects_bad_chains() {
        assert_eq!(Chain::new(vec![], true), Err(ChainError::Empty));
        assert!(matches!(
            Chain::new(vec![NodeEvent::new("a", 1), NodeEvent::new("a", 2)], true),
            Err(ChainError::DuplicateNode(_))
        ));
        assert_eq!(
            Chain::new(vec![NodeEvent::new("a", 0)], true),
            Err(ChainError::ZeroTick)
        );
    }

    #[test]
    fn ordering() {
        let a1 = ch(&[("a", 1)]);
        let b1a1 = ch(&[("b", 1), ("a", 1)]);
        let a2b1 = ch(&[("a", 2), ("b", 1)]);
        let c1 = ch(&[("c", 1)]);
        assert!(b1a1.is_newer_than(&a1));
        assert!(a1.is_older_than(&b1a1));
        assert!(a2b1.is_newer_than(&b1a1));
        assert!(!a1.is_newer_than(&a1));
        // concurrent
        assert!(!c1.is_newer_than(&a1) && !c1.is_older_than(&a1));
        let b2a1 = ch(&[("b", 2), ("a", 1)]);
        let c1a1 = ch(&[("c", 1), ("a", 1)]);
        assert!(!b2a1.is_newer_than(&c1a1) && !b2a1.is_older_than(&c1a1));
    }

    #[test]
    fn without_filters_one_node() {
        let c = ch(&[("b", 3), ("a", 1), ("c", 2)]);
        assert_eq!(c.without("a"), Some(ch(&[("b", 3), ("c", 2)])));
        assert_eq!(c.without("x"), Some(c.clone()));
        let one = ch(&[("a", 1)]);
        assert_eq!(one.without("a"), None);
        let two = ch(&[("b", 3), ("a", 1)]).without("b").expect("a link left");
        assert_eq!(two, ch(&[("a", 1)]));
        assert_eq!(two.links().len(), 1);
    }

    #[test]
    fn advance_supersedes_own_link() {
        let c = ch(&[("b", 3), ("a", 1)]);
        let (n, sup) = c.advance(NodeEvent::new("a", 2), 5);
        assert_eq!(sup, Some(NodeEvent::new("a", 1)));
        assert_eq!(n, ch(&[("a", 2), ("b", 3)]));
        let (n, sup) = n.advance(NodeEvent::new("c", 1), 2);
        assert_eq!(sup, None);
        assert_eq!(n.links().len(), 2);
        assert!(!n.is_complete());
    }
}
