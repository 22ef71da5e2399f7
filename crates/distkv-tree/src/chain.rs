//! Node events and change chains.

use std::fmt;

pub use crate::node_name::NodeName;

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

/// The links of a chain, and whether it is complete, in 16 bytes. The
/// common case, a complete chain of one link (an entry last changed by one
/// node only, since its creation), needs no allocation; any other chain is
/// boxed. An entry that was never written holds the empty form (see
/// [`Chain::absent`]), which no constructor returns.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Links {
    /// Exactly one link, complete.
    One(NodeEvent),
    /// Several links, or one that is not complete; `None`: no chain.
    Boxed(Option<Box<Boxed>>),
}

/// A chain that is not one complete link.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Boxed {
    /// Never empty.
    links: Box<[NodeEvent]>,
    complete: bool,
}

impl Links {
    /// `links` must not be empty.
    fn new(links: Vec<NodeEvent>, complete: bool) -> Links {
        match <[NodeEvent; 1]>::try_from(links) {
            Ok([one]) if complete => Links::One(one),
            Ok(one) => Links::boxed(Box::new(one), complete),
            Err(links) => Links::boxed(links.into_boxed_slice(), complete),
        }
    }

    fn boxed(links: Box<[NodeEvent]>, complete: bool) -> Links {
        Links::Boxed(Some(Box::new(Boxed { links, complete })))
    }

    fn as_slice(&self) -> &[NodeEvent] {
        match self {
            Links::One(l) => std::slice::from_ref(l),
            Links::Boxed(Some(b)) => &b.links,
            Links::Boxed(None) => &[],
        }
    }

    fn is_complete(&self) -> bool {
        match self {
            Links::One(_) => true,
            Links::Boxed(b) => b.as_ref().is_some_and(|b| b.complete),
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
    /// Never empty, except in [`Chain::absent`].
    links: Links,
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
            links: Links::new(links, complete),
        })
    }

    /// A chain of one link: the creation of an entry.
    pub fn single(ev: NodeEvent) -> Chain {
        Chain {
            links: Links::One(ev),
        }
    }

    /// What an entry that was never written holds instead of a chain:
    /// no links. Never handed out (see [`crate::Entry::chain`]).
    pub(crate) fn absent() -> Chain {
        Chain {
            links: Links::Boxed(None),
        }
    }

    /// Whether this is [`Chain::absent`].
    pub(crate) fn is_absent(&self) -> bool {
        matches!(self.links, Links::Boxed(None))
    }

    /// The most recent change.
    pub fn head(&self) -> &NodeEvent {
        // `links` is never empty outside an entry: every constructor
        // guarantees it.
        &self.links()[0]
    }

    /// All links, most recent first.
    pub fn links(&self) -> &[NodeEvent] {
        self.links.as_slice()
    }

    /// Whether the chain reaches back to the entry's creation.
    pub fn is_complete(&self) -> bool {
        self.links.is_complete()
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
        let mut complete = self.is_complete();
        if links.len() > limit {
            links.truncate(limit);
            complete = false;
        }
        let links = Links::new(links, complete);
        (Chain { links }, superseded)
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
            links: Links::new(links, self.is_complete()),
        })
    }

    /// A copy with at most `n` links (`n` = 0 is treated as 1).
    pub fn truncated(&self, n: usize) -> Chain {
        let links = self.links();
        if n >= links.len() {
            return self.clone();
        }
        Chain {
            links: Links::new(links[..n.max(1)].to_vec(), false),
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

    #[test]
    fn one_link_chains_keep_their_completeness() {
        let a = NodeEvent::new("a", 1);
        let cut = Chain::new(vec![a.clone()], false).expect("chain");
        assert!(!cut.is_complete());
        assert_eq!(cut.links(), std::slice::from_ref(&a));
        assert_eq!(cut.head(), &a);
        // the same node again, another node, a filter: still cut short
        let (again, superseded) = cut.advance(NodeEvent::new("a", 2), 16);
        assert!(!again.is_complete());
        assert_eq!(superseded, Some(a.clone()));
        let (other, _) = cut.advance(NodeEvent::new("b", 1), 16);
        assert!(!other.is_complete());
        assert_eq!(other.links().len(), 2);
        assert!(!other.without("b").expect("a left").is_complete());
        // a complete one stays complete, and the two differ
        let whole = Chain::single(a.clone());
        assert!(whole.is_complete());
        assert!(whole.advance(NodeEvent::new("a", 2), 16).0.is_complete());
        assert!(whole.truncated(1).is_complete());
        assert_ne!(whole, cut);
        assert!(!whole.is_absent() && !cut.is_absent() && Chain::absent().is_absent());
    }
}
