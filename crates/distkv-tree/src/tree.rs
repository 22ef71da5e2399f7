//! The entry tree: local changes, remote updates with the merge rules,
//! and walks.

use std::collections::{HashMap, VecDeque};

use indexmap::IndexMap;

use crate::chain::{Chain, NodeEvent, NodeName};
use crate::children::Children;
use crate::clock::TockClock;
use crate::node::{MAX_TICK, NodeState};
use crate::path::{Path, PathElem};
use crate::range::RangeSet;
use crate::value::Value;

/// The longest path the tree accepts. Bounds recursion in walks and drops.
pub const MAX_PATH_LEN: usize = 256;

/// One position in the tree.
#[derive(Debug)]
pub struct Entry {
    data: Option<Value>,
    /// [`Chain::absent`] while never written (an `Option<Chain>` would
    /// take 8 bytes more).
    chain: Chain,
    tock: u64,
    children: Option<Box<Children>>,
}

impl Default for Entry {
    fn default() -> Entry {
        Entry {
            data: None,
            chain: Chain::absent(),
            tock: 0,
            children: None,
        }
    }
}

impl Entry {
    /// The stored value; `None` for interior entries and tombstones.
    pub fn data(&self) -> Option<&Value> {
        self.data.as_ref()
    }

    /// The chain of the last change; `None` if never written.
    pub fn chain(&self) -> Option<&Chain> {
        (!self.chain.is_absent()).then_some(&self.chain)
    }

    /// The tock of the last change.
    pub fn tock(&self) -> u64 {
        self.tock
    }

    /// The children in creation order.
    pub fn children(&self) -> impl Iterator<Item = (&PathElem, &Entry)> {
        self.children.iter().flat_map(|c| c.iter())
    }

    /// The child named `name`.
    pub fn child(&self, name: &PathElem) -> Option<&Entry> {
        self.children.as_ref()?.get(name)
    }

    /// Number of children.
    pub fn child_count(&self) -> usize {
        self.children.as_ref().map_or(0, |c| c.len())
    }

    /// Writes an accepted change into this entry; returns the old value.
    fn put(&mut self, value: Option<Value>, chain: Chain, tock: u64) -> Option<Value> {
        self.chain = chain;
        self.tock = tock;
        std::mem::replace(&mut self.data, value)
    }

    fn child_mut_or_create(&mut self, name: &PathElem) -> &mut Entry {
        let tock = self.tock;
        self.children
            .get_or_insert_with(Default::default)
            .get_or_insert_with(name, || Entry {
                tock,
                ..Entry::default()
            })
    }
}

/// The chain of an entry after its own node's change `ev`.
fn next_chain(current: Option<&Chain>, ev: NodeEvent, max_links: usize) -> Chain {
    match current {
        Some(c) => c.advance(ev, max_links).0,
        None => Chain::single(ev),
    }
}

/// A change as it is broadcast, logged and replayed: the entry at `path`
/// was set to `value` (or deleted, if `None`) by `chain` at `tock`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpdateEvent {
    /// Where.
    pub path: Path,
    /// Who: the new chain of the entry.
    pub chain: Chain,
    /// The new value; `None` for a deletion.
    pub value: Option<Value>,
    /// When.
    pub tock: u64,
}

/// Preconditions of a client write.
#[derive(Clone, Debug, Default)]
pub struct Precondition {
    /// `Some(None)`: the entry must not have data. `Some(Some(ev))`: the
    /// entry must have data and its chain head must be `ev`.
    pub chain: Option<Option<NodeEvent>>,
    /// The current value must equal this.
    pub prev: Option<Value>,
}

/// Why a local change was refused. The texts are part of the protocol.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChangeError {
    /// `chain: null` given, but the entry has data.
    #[error("This entry already exists")]
    Exists,
    /// A chain given, but the entry has no data.
    #[error("This entry is new")]
    New,
    /// The chain head differs.
    #[error("Chain is {0}")]
    Chain(String),
    /// The current value differs from `prev`.
    #[error("Data is {0}")]
    Data(String),
    /// The server has no data yet (its own tick is unknown).
    #[error("This server is not yet ready")]
    NotReady,
    /// Too many path elements.
    #[error("Path too long: {0} elements (at most {MAX_PATH_LEN})")]
    PathTooLong(usize),
    /// `delete_tree` on the root.
    #[error("You can't delete the root node")]
    DeleteRoot,
}

/// The result of a successful local change.
#[derive(Clone, Debug)]
pub struct LocalChange {
    /// The event to broadcast.
    pub event: UpdateEvent,
    /// The value before the change.
    pub old: Option<Value>,
}

impl LocalChange {
    /// Whether the value changed (`old != new`).
    pub fn changed(&self) -> bool {
        self.old != self.event.value
    }
}

/// What applying a remote update did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApplyOutcome {
    /// The update was applied; `conflict` is true if it won against a
    /// concurrent change (the "inconsistency" case).
    Applied {
        /// The value before.
        old: Option<Value>,
        /// Whether a concurrent change was overwritten.
        conflict: bool,
    },
    /// The entry already has exactly this change.
    Duplicate,
    /// The entry has a newer change.
    Stale,
    /// A concurrent change with a higher tock is kept.
    ConflictLost,
    /// The path is unusable (too long) or a tick is beyond [`MAX_TICK`]; a
    /// server also refuses updates whose value fails its type
    /// (`server.paranoia`).
    Rejected,
}

/// Where a chunked walk stopped: the child indices leading to the next
/// entry to visit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalkCursor(Vec<usize>);

/// Why a walk could not start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WalkError {
    /// The start entry does not exist.
    #[error("no such entry")]
    NotFound,
}

/// What to send in answer to reported missing ticks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resend {
    /// Entries to re-broadcast as updates.
    pub updates: Vec<UpdateEvent>,
    /// Per node: reported ticks known here but no longer in any chain.
    pub known: Vec<(NodeName, RangeSet)>,
    /// Per node: reported ticks that were deletions.
    pub deleted: Vec<(NodeName, RangeSet)>,
}

/// Why a node could not be dropped ([`Tree::drop_node`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DropError {
    /// The server's own node.
    #[error("{0} is this server's own node")]
    OwnNode(String),
    /// An entry's last change is still the node's.
    #[error("Node {node} has entry {tick} at {path}")]
    Current {
        /// The node.
        node: String,
        /// The tick of that change.
        tick: u64,
        /// The entry.
        path: Path,
    },
}

/// What [`Tree::drop_node`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeDropped {
    /// Entries whose chains lost the node's link.
    pub filtered: usize,
    /// The node's bookkeeping as it was (`None`: there was none).
    pub state: Option<NodeState>,
}

/// Options of a walk.
#[derive(Clone, Copy, Debug, Default)]
pub struct WalkOpts {
    /// Skip entries less deep than this (0 = include the start entry).
    pub min_depth: usize,
    /// Do not go deeper than this (`None` = unlimited; 0 = only the start).
    pub max_depth: Option<usize>,
}

/// The whole replicated state of one server: the entry tree plus the tick
/// bookkeeping of every node.
///
/// # Example
///
/// A server writes through [`Tree::local_change`]; the
/// [`UpdateEvent`] it returns is what other servers get, and they merge
/// it with [`Tree::apply_remote`].
///
/// ```
/// use distkv_tree::{ApplyOutcome, Path, Precondition, TockClock, Tree, Value};
///
/// # fn main() -> Result<(), distkv_tree::ChangeError> {
/// let clock = TockClock::default();
/// let mut tree = Tree::new("one", 5);
/// tree.mark_ready(); // this server starts a new network: it has data now
///
/// let path = Path::from_strs(&["sensors", "kitchen", "temp"]);
/// let any = Precondition::default();
/// let change = tree.local_change(&path, Some(Value::Float(21.5)), &any, &clock)?;
/// let event = change.expect("a set is never a no-op").event;
/// assert_eq!(tree.get(&path).and_then(|e| e.data()), Some(&Value::Float(21.5)));
/// assert_eq!(event.chain.head().tick, 1); // the first change of "one"
///
/// // Another server merges the change.
/// let mut other = Tree::new("two", 5);
/// let outcome = other.apply_remote(&event, &TockClock::default());
/// assert!(matches!(outcome, ApplyOutcome::Applied { old: None, conflict: false }));
///
/// // Deleting is a change to `None`.
/// tree.local_change(&path, None, &any, &clock)?;
/// assert_eq!(tree.get(&path).and_then(|e| e.data()), None);
/// assert!(tree.is_empty());
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Tree {
    root: Entry,
    nodes: IndexMap<NodeName, NodeState>,
    /// Nodes retired with [`Tree::drop_node`]: claims about them (ticks,
    /// known, missing, deleted) are ignored until a change of theirs
    /// arrives.
    dropped: Vec<NodeName>,
    own: NodeName,
    max_chain: usize,
    entries: usize,
    /// Where this server's latest changes were made, by tick, oldest first
    /// (at most [`RECENT_OWN`]; kept only if asked for with
    /// [`Tree::keep_recent_changes`]): peers pull the changes they missed,
    /// nearly always recent ones of the server they ask, and those are
    /// looked up here instead of in a walk of the whole tree.
    recent: VecDeque<(u64, Path)>,
    keep_recent: bool,
}

/// How many of this server's latest changes [`Tree::lookup_ticks`] finds
/// without walking the tree (about 100 bytes each).
const RECENT_OWN: usize = 16_384;

impl Tree {
    /// An empty tree for the server named `own`, writing chains of at most
    /// `max_chain` links (the spec's `server.change.length`, default 5).
    pub fn new(own: impl Into<NodeName>, max_chain: usize) -> Tree {
        let own = own.into();
        let mut nodes = IndexMap::new();
        nodes.insert(own.clone(), NodeState::default());
        Tree {
            root: Entry::default(),
            nodes,
            dropped: Vec::new(),
            own,
            max_chain: max_chain.max(1),
            entries: 0,
            recent: VecDeque::new(),
            keep_recent: false,
        }
    }

    /// Whether to remember where this server's latest changes were made
    /// (a path and a tick each, for the last 16,384), so that
    /// [`Tree::lookup_ticks`] answers a pull of recent own changes without
    /// walking the tree. A server with peers wants this; it costs a copy
    /// of each change's path, which a server without peers can save.
    pub fn keep_recent_changes(&mut self, keep: bool) {
        self.keep_recent = keep;
        if !keep {
            self.recent = VecDeque::new();
        }
    }

    /// This server's node name.
    pub fn own_name(&self) -> &NodeName {
        &self.own
    }

    /// This server's current tick (`None` until it has data).
    pub fn own_tick(&self) -> Option<u64> {
        self.nodes.get(&self.own).and_then(|n| n.tick)
    }

    /// Marks this server as having data (own tick becomes 0 if unknown).
    pub fn mark_ready(&mut self) {
        let n = self.node_mut(&self.own.clone());
        if n.tick.is_none() {
            n.tick = Some(0);
        }
    }

    /// The root entry.
    pub fn root(&self) -> &Entry {
        &self.root
    }

    /// Number of entries that hold data.
    pub fn len(&self) -> usize {
        self.entries
    }

    /// Whether no entry holds data.
    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// The entry at `path`, if it exists.
    pub fn get(&self, path: &Path) -> Option<&Entry> {
        let mut e = &self.root;
        for p in path.elems() {
            e = e.child(p)?;
        }
        Some(e)
    }

    fn get_mut_or_create(&mut self, path: &Path) -> &mut Entry {
        let mut e = &mut self.root;
        for p in path.elems() {
            e = e.child_mut_or_create(p);
        }
        e
    }

    /// Creates the entry at `path` (and its ancestors) if missing, as `watch`
    /// does.
    pub fn ensure(&mut self, path: &Path) -> Result<(), ChangeError> {
        check_len(path)?;
        self.get_mut_or_create(path);
        Ok(())
    }

    /// All nodes with their bookkeeping, in the order they were first seen.
    pub fn nodes(&self) -> impl Iterator<Item = (&NodeName, &NodeState)> {
        self.nodes.iter()
    }

    /// One node's bookkeeping.
    pub fn node(&self, name: &str) -> Option<&NodeState> {
        self.nodes.get(name)
    }

    fn node_mut(&mut self, name: &NodeName) -> &mut NodeState {
        if !self.nodes.contains_key(name) {
            self.nodes.insert(name.clone(), NodeState::default());
        }
        // Just inserted if it was missing.
        self.nodes.entry(name.clone()).or_default()
    }

    /// Interns a node name: returns the shared name if known.
    pub fn intern(&self, name: &str) -> NodeName {
        match self.nodes.get_key_value(name) {
            Some((k, _)) => k.clone(),
            None => NodeName::from(name),
        }
    }

    fn record_chain(&mut self, chain: &Chain) {
        for l in chain.links() {
            if !self.is_dropped(&l.node) {
                self.node_mut(&l.node).seen(l.tick);
            }
        }
    }

    /// Whether `node` was dropped (and has not come back since).
    fn is_dropped(&self, node: &str) -> bool {
        self.dropped.iter().any(|d| &**d == node)
    }

    /// The nodes dropped with [`Tree::drop_node`] that have not come
    /// back (no change of theirs arrived since).
    pub fn dropped(&self) -> impl Iterator<Item = &NodeName> {
        self.dropped.iter()
    }

    /// The ticks of `node` that are still in some entry's chain
    /// (tombstones included), with their entries, ascending by tick; with
    /// `current` only those of entries whose last change is `node`'s (the
    /// original's `Node.enumerate`). At most `max` of them, the first
    /// found in walk order, when `max` is not 0.
    pub fn node_ticks(&self, node: &str, max: usize, current: bool) -> Vec<(u64, Path)> {
        let mut found = Vec::new();
        self.walk(&Path::root(), WalkOpts::default(), &mut |p, _, e| {
            if max != 0 && found.len() >= max {
                return;
            }
            let Some(c) = e.chain() else { return };
            let tick = if current {
                let h = c.head();
                (&*h.node == node).then_some(h.tick)
            } else {
                c.tick_of(node)
            };
            if let Some(t) = tick {
                found.push((t, p.clone()));
            }
        });
        found.sort_by_key(|(t, _)| *t);
        found
    }

    /// Retires `node` (the original's `kill_this_node`): its link is
    /// filtered out of every chain, and its bookkeeping (tick, known,
    /// deleted and reported ticks) is dropped; claims about it are ignored
    /// from now on, until a change of its own arrives. Refused for this
    /// server's own node and while an entry's last change (tombstones
    /// included) is the node's.
    pub fn drop_node(&mut self, node: &str) -> Result<NodeDropped, DropError> {
        if node == &*self.own {
            return Err(DropError::OwnNode(node.to_owned()));
        }
        if let Some((tick, path)) = self.node_ticks(node, 1, true).into_iter().next() {
            return Err(DropError::Current {
                node: node.to_owned(),
                tick,
                path,
            });
        }
        let mut holders = Vec::new();
        self.walk(&Path::root(), WalkOpts::default(), &mut |p, _, e| {
            if e.chain().is_some_and(|c| c.tick_of(node).is_some()) {
                holders.push(p.clone());
            }
        });
        let mut filtered = 0;
        for p in &holders {
            if let Some(e) = self.get_mut(p) {
                // the head is another node's, so a link is left
                if let Some(c) = e.chain().and_then(|c| c.without(node)) {
                    e.chain = c;
                    filtered += 1;
                }
            }
        }
        let state = self.nodes.shift_remove(node);
        if !self.is_dropped(node) {
            self.dropped.push(self.intern(node));
        }
        Ok(NodeDropped { filtered, state })
    }

    /// Applies a change originated here: checks `pre`, allocates the next own
    /// tick and tock, builds the new chain and stores `value` (`None`
    /// deletes). Deleting an entry without data is a no-op (no tick used);
    /// it returns `Ok(None)`.
    pub fn local_change(
        &mut self,
        path: &Path,
        value: Option<Value>,
        pre: &Precondition,
        clock: &TockClock,
    ) -> Result<Option<LocalChange>, ChangeError> {
        check_len(path)?;
        let tick = self.own_tick().ok_or(ChangeError::NotReady)?;
        if value.is_some() && pre.prev.is_none() && pre.chain.is_none() {
            // The common case, a plain set: it stores whatever is there,
            // so one lookup (creating the entry) serves both reading the
            // old chain and storing.
            return Ok(Some(self.plain_set(path, value, tick + 1, clock)));
        }
        self.checked_change(path, value, pre, tick, clock)
    }

    /// A local change with preconditions, or a deletion.
    fn checked_change(
        &mut self,
        path: &Path,
        value: Option<Value>,
        pre: &Precondition,
        tick: u64,
        clock: &TockClock,
    ) -> Result<Option<LocalChange>, ChangeError> {
        let current = self.get(path);
        let (cur_data, cur_chain) = match current {
            Some(e) => (e.data.as_ref(), e.chain()),
            None => (None, None),
        };
        if let Some(prev) = &pre.prev {
            if cur_data != Some(prev) {
                let shown = cur_data.map_or_else(|| "None".to_owned(), |d| d.to_string());
                return Err(ChangeError::Data(shown));
            }
        }
        match &pre.chain {
            None => {}
            Some(None) if cur_data.is_some() => return Err(ChangeError::Exists),
            Some(None) => {}
            Some(Some(head)) => {
                if cur_data.is_none() {
                    return Err(ChangeError::New);
                }
                match cur_chain {
                    Some(c) if c.head() == head => {}
                    Some(c) => return Err(ChangeError::Chain(c.to_string())),
                    None => return Err(ChangeError::Chain("None".to_owned())),
                }
            }
        }
        if value.is_none() && cur_data.is_none() {
            return Ok(None);
        }
        let tick = tick + 1;
        let ev = NodeEvent::new(self.own.clone(), tick);
        let chain = next_chain(cur_chain, ev, self.max_chain);
        let tock = clock.next();
        let event = UpdateEvent {
            path: path.clone(),
            chain,
            value,
            tock,
        };
        let old = self.store(&event);
        Ok(Some(self.finish_local(event, old, clock)))
    }

    /// A local set without preconditions: the same result as the general
    /// path of [`Tree::local_change`] with a single walk down the tree.
    fn plain_set(
        &mut self,
        path: &Path,
        value: Option<Value>,
        tick: u64,
        clock: &TockClock,
    ) -> LocalChange {
        let ev = NodeEvent::new(self.own.clone(), tick);
        let max_chain = self.max_chain;
        let tock = clock.next();
        let e = self.get_mut_or_create(path);
        let chain = next_chain(e.chain(), ev, max_chain);
        let old = e.put(value.clone(), chain.clone(), tock);
        self.count_change(old.is_some(), value.is_some());
        let event = UpdateEvent {
            path: path.clone(),
            chain,
            value,
            tock,
        };
        self.finish_local(event, old, clock)
    }

    /// Completes a stored local change, on both paths alike: its chain's
    /// ticks count as seen, and the tock after the change's own is used up.
    fn finish_local(
        &mut self,
        event: UpdateEvent,
        old: Option<Value>,
        clock: &TockClock,
    ) -> LocalChange {
        self.record_chain(&event.chain);
        clock.next();
        let head = event.chain.head();
        if self.keep_recent && head.node == self.own {
            if self.recent.len() >= RECENT_OWN {
                self.recent.pop_front();
            }
            self.recent.push_back((head.tick, event.path.clone()));
        }
        LocalChange { event, old }
    }

    /// Stores an accepted update; returns the old value.
    fn store(&mut self, ev: &UpdateEvent) -> Option<Value> {
        if ev.value.is_none() {
            for l in ev.chain.links() {
                if !self.is_dropped(&l.node) {
                    self.node_mut(&l.node).deleted.insert(l.tick);
                }
            }
        }
        let e = self.get_mut_or_create(&ev.path);
        let old = e.put(ev.value.clone(), ev.chain.clone(), ev.tock);
        self.count_change(old.is_some(), ev.value.is_some());
        old
    }

    /// Keeps the count of entries with data up to date after a change.
    fn count_change(&mut self, had_data: bool, has_data: bool) {
        match (had_data, has_data) {
            (false, true) => self.entries += 1,
            (true, false) => self.entries -= 1,
            _ => {}
        }
    }

    /// Applies an update from another server with the merge rules of the
    /// data model (§4): duplicates and stale updates are ignored; for
    /// concurrent changes the higher tock wins (ties: see `incoming_wins`).
    pub fn apply_remote(&mut self, ev: &UpdateEvent, clock: &TockClock) -> ApplyOutcome {
        if check_len(&ev.path).is_err() || ev.chain.links().iter().any(|l| l.tick > MAX_TICK) {
            return ApplyOutcome::Rejected;
        }
        clock.seen(ev.tock);
        let head = ev.chain.head();
        // One lookup decides: what the entry holds now, against the change.
        let verdict = match self.get(&ev.path).and_then(|e| Some((e.tock, e.chain()?))) {
            None => {
                let head_seen = self
                    .nodes
                    .get(&head.node)
                    .is_some_and(|n| n.known.contains(head.tick));
                if head_seen {
                    // This change was seen before, and its entry has been
                    // purged since: a late duplicate must not bring it back.
                    return ApplyOutcome::Stale;
                }
                Ok(false)
            }
            Some((_, c)) if c.same_head(&ev.chain) => Err(ApplyOutcome::Duplicate),
            Some((_, c)) if c.is_newer_than(&ev.chain) => Err(ApplyOutcome::Stale),
            // Concurrent changes. Tombstones take part too (the original
            // only resolved conflicts against live data, which lets the
            // arrival order decide between a delete and a concurrent set).
            Some((tock, c)) if !c.is_older_than(&ev.chain) => {
                if incoming_wins(tock, c, ev.tock, &ev.chain) {
                    Ok(true)
                } else {
                    Err(ApplyOutcome::ConflictLost)
                }
            }
            Some(_) => Ok(false),
        };
        self.record_chain(&ev.chain);
        let conflict = match verdict {
            Ok(conflict) => conflict,
            Err(outcome) => return outcome,
        };
        if self.is_dropped(&head.node) {
            // a new change of a dropped node: it is back
            self.dropped.retain(|d| *d != head.node);
            self.record_chain(&ev.chain);
        }
        let old = self.store(ev);
        ApplyOutcome::Applied { old, conflict }
    }

    /// Walks the subtree at `start` depth-first, pre-order, children in
    /// creation order, calling `visit(full_path, depth, entry)` for every
    /// entry within the depth window (with or without data). Returns false
    /// if `start` does not exist.
    pub fn walk(
        &self,
        start: &Path,
        opts: WalkOpts,
        visit: &mut dyn FnMut(&Path, usize, &Entry),
    ) -> bool {
        let Some(e) = self.get(start) else {
            return false;
        };
        let mut path = start.clone();
        walk_rec(e, &mut path, 0, opts, visit);
        true
    }

    /// Walks like [`Tree::walk`], but stops after `limit` visited entries and
    /// returns a cursor to resume from, so that a long walk can release the
    /// lock between chunks. Pass `None` to start; `Ok(None)` means the walk
    /// is complete. Entries added meanwhile may or may not be seen.
    pub fn walk_chunk(
        &self,
        start: &Path,
        opts: WalkOpts,
        cursor: Option<WalkCursor>,
        limit: usize,
        visit: &mut dyn FnMut(&Path, usize, &Entry),
    ) -> Result<Option<WalkCursor>, WalkError> {
        let first = self.get(start).ok_or(WalkError::NotFound)?;
        let limit = limit.max(1);
        let mut path = start.clone();
        let base = start.len();
        // `ents[k]` is the entry at depth k along the current position;
        // `idx[k]` the index of `ents[k + 1]` among the children of `ents[k]`.
        let mut ents: Vec<&Entry> = vec![first];
        let mut idx: Vec<usize> = Vec::new();
        if let Some(c) = cursor {
            for &i in &c.0 {
                let Some(parent) = ents.last() else { break };
                match parent.children.as_ref().and_then(|ch| ch.get_index(i)) {
                    Some((name, child)) => {
                        path.0.push(name.clone());
                        ents.push(child);
                        idx.push(i);
                    }
                    // The tree changed under the cursor: continue after it.
                    None => {
                        idx.push(i);
                        if !advance(&mut ents, &mut idx, &mut path, base) {
                            return Ok(None);
                        }
                        break;
                    }
                }
            }
        }
        let mut visited = 0;
        loop {
            let depth = idx.len();
            let Some(&cur) = ents.last() else {
                return Ok(None);
            };
            if depth >= opts.min_depth {
                visit(&path, depth, cur);
                visited += 1;
            }
            let may_descend = opts.max_depth.is_none_or(|m| depth < m);
            let first_child = cur.children.as_ref().and_then(|ch| ch.get_index(0));
            match first_child {
                Some((name, child)) if may_descend => {
                    path.0.push(name.clone());
                    ents.push(child);
                    idx.push(0);
                }
                _ => {
                    if !advance(&mut ents, &mut idx, &mut path, base) {
                        return Ok(None);
                    }
                }
            }
            if visited >= limit {
                return Ok(Some(WalkCursor(idx)));
            }
        }
    }

    /// Deletes every value in the subtree at `path` (the root excluded) as
    /// local changes. Returns the changes made, in walk order.
    pub fn delete_tree(
        &mut self,
        path: &Path,
        clock: &TockClock,
    ) -> Result<Vec<LocalChange>, ChangeError> {
        if path.is_empty() {
            return Err(ChangeError::DeleteRoot);
        }
        let mut targets = Vec::new();
        self.walk(path, WalkOpts::default(), &mut |p, _, e| {
            if e.data.is_some() {
                targets.push(p.clone());
            }
        });
        let mut out = Vec::with_capacity(targets.len());
        for p in targets {
            if let Some(ch) = self.local_change(&p, None, &Precondition::default(), clock)? {
                out.push(ch);
            }
        }
        Ok(out)
    }

    /// The entry whose current chain contains `ev`, with its path.
    pub fn find_event(&self, ev: &NodeEvent) -> Option<(Path, &Entry)> {
        let mut found: Option<Path> = None;
        self.walk(&Path::root(), WalkOpts::default(), &mut |p, _, e| {
            if found.is_none() && e.chain().is_some_and(|c| c.contains(ev)) {
                found = Some(p.clone());
            }
        });
        let p = found?;
        let e = self.get(&p)?;
        Some((p, e))
    }

    /// Raises a node's known tick (from pings and `info` messages). Claims
    /// about this server's own tick are ignored: only chains (its own past
    /// changes, as a restarted server learns them) move it.
    pub fn raise_tick(&mut self, node: &str, tick: u64) {
        if node == &*self.own || self.is_dropped(node) {
            return;
        }
        let name = self.intern(node);
        self.node_mut(&name).raise_tick(tick);
    }

    /// Restores this server's own tick from its saved state (never lowers
    /// it), so that a restarted server does not reuse ticks.
    pub fn restore_own_tick(&mut self, tick: u64) {
        let own = self.own.clone();
        self.node_mut(&own).raise_tick(tick);
    }

    /// A node's tick as another server's state tells it (a state record,
    /// a pull's answer): this server's own tick is restored
    /// ([`Tree::restore_own_tick`]), another node's raised
    /// ([`Tree::raise_tick`]).
    pub fn merge_tick(&mut self, node: &str, tick: u64) {
        if node == &*self.own {
            self.restore_own_tick(tick);
        } else {
            self.raise_tick(node, tick);
        }
    }

    /// Raises `node`'s tick to the end of `ticks` (not for the own node).
    fn raise_to_end(&mut self, name: &NodeName, ticks: &RangeSet) {
        if *name == self.own {
            return;
        }
        if let Some((_, end)) = ticks.last() {
            self.node_mut(name).raise_tick(end.saturating_sub(1));
        }
    }

    /// Another server says these ticks of `node` are superseded or were
    /// never live: they are no longer missing here.
    pub fn report_known(&mut self, node: &str, ticks: &RangeSet) {
        if self.is_dropped(node) {
            return;
        }
        let name = self.intern(node);
        self.raise_to_end(&name, ticks);
        let n = self.node_mut(&name);
        n.known.union_with(ticks);
        n.reported.subtract(ticks);
    }

    /// Another server misses these ticks of `node`: candidates for
    /// re-sending.
    pub fn report_missing(&mut self, node: &str, ticks: &RangeSet) {
        // Not a claim that these ticks exist: the node's tick stays.
        if self.is_dropped(node) {
            return;
        }
        let name = self.intern(node);
        self.node_mut(&name).reported.union_with(ticks);
    }

    /// Another server says these ticks of `node` were deletions: they count
    /// as seen, and a live entry still holding one of them loses its value
    /// (it becomes a tombstone). Returns the paths that changed.
    pub fn report_deleted(&mut self, node: &str, ticks: &RangeSet) -> Vec<Path> {
        if self.is_dropped(node) {
            return Vec::new();
        }
        let name = self.intern(node);
        self.raise_to_end(&name, ticks);
        {
            let n = self.node_mut(&name);
            n.deleted.union_with(ticks);
            n.known.union_with(ticks);
            n.reported.subtract(ticks);
        }
        let mut hit = Vec::new();
        self.walk(&Path::root(), WalkOpts::default(), &mut |p, _, e| {
            // Only an entry whose latest change is the deletion loses its
            // value; a later change on top of it stands.
            let head = e.chain().map(Chain::head);
            if e.data.is_some() && head.is_some_and(|h| h.node == name && ticks.contains(h.tick)) {
                hit.push(p.clone());
            }
        });
        for p in &hit {
            let e = self.get_mut_or_create(p);
            if e.data.take().is_some() {
                self.entries -= 1;
            }
        }
        hit
    }

    /// Answers the ticks other servers reported missing (see
    /// [`Tree::lookup_ticks`]) and clears the reports.
    pub fn take_resend(&mut self) -> Resend {
        let wanted: Vec<(NodeName, RangeSet)> = self
            .nodes
            .iter()
            .filter(|(_, n)| !n.reported.is_empty())
            .map(|(k, n)| (k.clone(), n.reported.clone()))
            .collect();
        for (name, _) in &wanted {
            self.node_mut(name).reported = RangeSet::new();
        }
        self.lookup_ticks(&wanted)
    }

    /// What this server can say about the ticks in `wanted`: the entries
    /// (live or tombstones) whose chains hold one of them, and per node the
    /// other ticks that are known here but in no chain any more
    /// (superseded) or that were deletions. Ticks never seen here are left
    /// out. One walk of the tree, whatever the number of ticks.
    ///
    /// When only this server's own recent ticks are wanted (the usual pull
    /// of a peer that missed some of its changes), the entries are looked
    /// up by the paths of those changes instead.
    pub fn lookup_ticks(&self, wanted: &[(NodeName, RangeSet)]) -> Resend {
        let mut out = Resend::default();
        if wanted.is_empty() {
            return out;
        }
        let mut found: HashMap<NodeName, RangeSet> = HashMap::new();
        if let Some(own_ticks) = self.recent_only(wanted) {
            self.lookup_recent(own_ticks, &mut found, &mut out);
        } else {
            self.lookup_by_walk(wanted, &mut found, &mut out);
        }
        for (name, r) in wanted {
            let Some(n) = self.nodes.get(name) else {
                continue;
            };
            let mut r = r.clone();
            if let Some(f) = found.get(name) {
                r.subtract(f);
            }
            let deleted = r.intersection(&n.deleted);
            r.subtract(&deleted);
            let known = r.intersection(&n.known);
            if !deleted.is_empty() {
                out.deleted.push((name.clone(), deleted));
            }
            if !known.is_empty() {
                out.known.push((name.clone(), known));
            }
        }
        out
    }

    /// The ticks wanted, if they are all this server's own and none is
    /// older than the oldest recent change (so that every change among
    /// them is in `recent`).
    fn recent_only<'a>(&self, wanted: &'a [(NodeName, RangeSet)]) -> Option<&'a RangeSet> {
        let [(name, ticks)] = wanted else {
            return None;
        };
        let (oldest, _) = self.recent.front()?;
        let (lo, _) = ticks.first()?;
        (*name == self.own && lo >= *oldest).then_some(ticks)
    }

    /// [`Tree::lookup_ticks`] for recent own ticks: the entry of each
    /// change, if its chain still holds the change.
    fn lookup_recent(
        &self,
        ticks: &RangeSet,
        found: &mut HashMap<NodeName, RangeSet>,
        out: &mut Resend,
    ) {
        for (a, b) in ticks.ranges() {
            let from = self.recent.partition_point(|(t, _)| *t < a);
            for (tick, path) in self.recent.range(from..) {
                if *tick >= b {
                    break;
                }
                let Some(e) = self.get(path) else { continue };
                let Some(c) = e.chain() else { continue };
                // a chain holds each node at most once: this change, or a
                // later one of this server's on the same entry
                if c.links()
                    .iter()
                    .any(|l| l.node == self.own && l.tick == *tick)
                {
                    found.entry(self.own.clone()).or_default().insert(*tick);
                    out.updates.push(UpdateEvent {
                        path: path.clone(),
                        chain: c.clone(),
                        value: e.data.clone(),
                        tock: e.tock,
                    });
                }
            }
        }
    }

    /// [`Tree::lookup_ticks`] by one walk of the whole tree.
    fn lookup_by_walk(
        &self,
        wanted: &[(NodeName, RangeSet)],
        found: &mut HashMap<NodeName, RangeSet>,
        out: &mut Resend,
    ) {
        self.walk(&Path::root(), WalkOpts::default(), &mut |p, _, e| {
            let Some(c) = e.chain() else { return };
            let mut hit = false;
            for l in c.links() {
                if let Some((_, r)) = wanted.iter().find(|(n, _)| *n == l.node) {
                    if r.contains(l.tick) {
                        found.entry(l.node.clone()).or_default().insert(l.tick);
                        hit = true;
                    }
                }
            }
            if hit {
                out.updates.push(UpdateEvent {
                    path: p.clone(),
                    chain: c.clone(),
                    value: e.data.clone(),
                    tock: e.tock,
                });
            }
        });
    }

    /// Per node, the highest tick up to which every tick has been seen here
    /// (present, superseded or deleted): nothing at or below it is missing.
    pub fn watermarks(&self) -> Vec<(NodeName, u64)> {
        self.nodes
            .iter()
            .map(|(name, n)| {
                let mut seen = n.known.clone();
                seen.union_with(&n.deleted);
                let wm = match seen.first() {
                    Some((1, end)) => end - 1,
                    _ => 0,
                };
                (name.clone(), wm)
            })
            .filter(|(_, wm)| *wm > 0)
            .collect()
    }

    /// Removes the tombstones whose deletion every deleter has seen:
    /// `limit(node)` is the lowest watermark of that node among the
    /// deleters. The deletion ticks stay recorded as deleted, so a late copy
    /// of an older change cannot bring a purged entry back. Entries left
    /// without value, history and children are removed too (never the root
    /// or the system subtree). Returns the number of tombstones purged.
    pub fn purge_tombstones(&mut self, limit: &dyn Fn(&str) -> u64) -> usize {
        let mut victims: Vec<Path> = Vec::new();
        self.walk(&Path::root(), WalkOpts::default(), &mut |p, _, e| {
            if e.data.is_none() && !p.is_empty() {
                if let Some(c) = e.chain() {
                    let h = c.head();
                    if h.tick <= limit(&h.node) {
                        victims.push(p.clone());
                    }
                }
            }
        });
        for p in &victims {
            if let Some(e) = self.get_mut(p) {
                e.chain = Chain::absent();
            }
        }
        let purged = victims.len();
        // Prune bare entries bottom-up (longest paths first), then their
        // ancestors if they became bare.
        let mut todo = victims;
        todo.sort_by_key(|p| std::cmp::Reverse(p.len()));
        let mut i = 0;
        while i < todo.len() {
            let p = todo[i].clone();
            i += 1;
            if self.prune_if_bare(&p) && p.len() > 1 {
                todo.push(Path(p.0[..p.len() - 1].to_vec()));
            }
        }
        purged
    }

    fn get_mut(&mut self, path: &Path) -> Option<&mut Entry> {
        let mut e = &mut self.root;
        for p in path.elems() {
            e = e.children.as_mut()?.get_mut(p)?;
        }
        Some(e)
    }

    /// Removes the entry at `path` if it has no value, chain or children.
    fn prune_if_bare(&mut self, path: &Path) -> bool {
        let Some((last, parent)) = path.0.split_last() else {
            return false;
        };
        if parent.is_empty() && last.is_nil() {
            return false;
        }
        let Some(pe) = self.get_mut(&Path(parent.to_vec())) else {
            return false;
        };
        let Some(children) = pe.children.as_mut() else {
            return false;
        };
        let bare = children
            .get(last)
            .is_some_and(|e| e.data.is_none() && e.chain.is_absent() && e.child_count() == 0);
        if bare {
            children.shift_remove(last);
            if children.is_empty() {
                pe.children = None;
            }
        }
        bare
    }

    /// Counts, per node, how many live chain links point at it (diagnostics).
    pub fn chain_census(&self) -> HashMap<NodeName, usize> {
        let mut m = HashMap::new();
        self.walk(&Path::root(), WalkOpts::default(), &mut |_, _, e| {
            if let Some(c) = e.chain() {
                for l in c.links() {
                    *m.entry(l.node.clone()).or_insert(0) += 1;
                }
            }
        });
        m
    }
}

/// Moves to the next sibling of the current position, or of the nearest
/// ancestor that has one. `path` is the start path (`base` elements) plus
/// one element per index in `idx`. Returns false when the walk is complete.
fn advance(ents: &mut Vec<&Entry>, idx: &mut Vec<usize>, path: &mut Path, base: usize) -> bool {
    loop {
        let Some(i) = idx.pop() else {
            return false;
        };
        ents.truncate(idx.len() + 1);
        path.0.truncate(base + idx.len());
        let Some(&parent) = ents.last() else {
            return false;
        };
        if let Some((name, child)) = parent.children.as_ref().and_then(|c| c.get_index(i + 1)) {
            path.0.push(name.clone());
            ents.push(child);
            idx.push(i + 1);
            return true;
        }
    }
}

/// The conflict rule for concurrent changes: the higher tock wins. On a
/// tie the chain head with the greater (node, tick) wins, so that every
/// server picks the same winner whatever the arrival order (the original
/// let the incoming change win, which is order dependent).
fn incoming_wins(cur_tock: u64, cur: &Chain, new_tock: u64, new: &Chain) -> bool {
    match new_tock.cmp(&cur_tock) {
        std::cmp::Ordering::Greater => true,
        std::cmp::Ordering::Less => false,
        std::cmp::Ordering::Equal => {
            let (a, b) = (new.head(), cur.head());
            (&*a.node, a.tick) > (&*b.node, b.tick)
        }
    }
}

fn check_len(path: &Path) -> Result<(), ChangeError> {
    if path.len() > MAX_PATH_LEN {
        Err(ChangeError::PathTooLong(path.len()))
    } else {
        Ok(())
    }
}

fn walk_rec(
    e: &Entry,
    path: &mut Path,
    depth: usize,
    opts: WalkOpts,
    visit: &mut dyn FnMut(&Path, usize, &Entry),
) {
    if depth >= opts.min_depth {
        visit(path, depth, e);
    }
    if opts.max_depth.is_some_and(|m| depth >= m) {
        return;
    }
    for (name, child) in e.children() {
        path.0.push(name.clone());
        walk_rec(child, path, depth + 1, opts, visit);
        path.0.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(words: &[&str]) -> Path {
        Path::from_strs(words)
    }

    fn ready(name: &str) -> (Tree, TockClock) {
        let mut t = Tree::new(name, 5);
        t.mark_ready();
        (t, TockClock::default())
    }

    fn set(t: &mut Tree, c: &TockClock, path: &Path, v: i64) -> LocalChange {
        t.local_change(path, Some(Value::Int(v)), &Precondition::default(), c)
            .expect("change accepted")
            .expect("a change")
    }

    fn snapshot(t: &Tree) -> Vec<(Path, Option<Value>, Option<Chain>, u64)> {
        let mut out = Vec::new();
        t.walk(&Path::root(), WalkOpts::default(), &mut |p, _, e| {
            out.push((p.clone(), e.data.clone(), e.chain().cloned(), e.tock));
        });
        out
    }

    proptest! {
        /// A plain set takes a shortcut through the tree; it must leave
        /// exactly what the general path leaves.
        #[test]
        fn plain_sets_match_the_general_path(ops in prop::collection::vec((0u8..6, 0u8..3, any::<bool>()), 1..60)) {
            let (mut fast, c1) = ready("a");
            let (mut slow, c2) = ready("a");
            for (i, (k, depth, delete)) in ops.into_iter().enumerate() {
                let words: Vec<String> = (0..=depth).map(|d| format!("k{}", (k + d) % 6)).collect();
                let refs: Vec<&str> = words.iter().map(String::as_str).collect();
                let path = p(&refs);
                let value = (!delete).then(|| Value::Int(i as i64));
                let a = fast.local_change(&path, value.clone(), &Precondition::default(), &c1);
                let tick = slow.own_tick().expect("ready");
                let b = slow.checked_change(&path, value, &Precondition::default(), tick, &c2);
                prop_assert_eq!(a.map(|x| x.map(|x| (x.event, x.old))), b.map(|x| x.map(|x| (x.event, x.old))));
            }
            prop_assert_eq!(snapshot(&fast), snapshot(&slow));
            prop_assert_eq!(fast.len(), slow.len());
            prop_assert_eq!(c1.current(), c2.current());
            prop_assert_eq!(fast.own_tick(), slow.own_tick());
        }
    }

    #[test]
    fn local_changes_tick_and_chain() {
        let (mut t, c) = ready("a");
        assert_eq!(t.own_tick(), Some(0));
        let ch = set(&mut t, &c, &p(&["x"]), 1);
        assert!(ch.changed());
        assert_eq!(ch.event.chain.head(), &NodeEvent::new("a", 1));
        assert_eq!(ch.event.tock, 1);
        assert_eq!(c.current(), 2);
        let ch = set(&mut t, &c, &p(&["x"]), 1);
        assert!(!ch.changed());
        assert_eq!(ch.old, Some(Value::Int(1)));
        assert_eq!(ch.event.chain.links().len(), 1);
        assert_eq!(t.own_tick(), Some(2));
        assert_eq!(t.len(), 1);
        // tick 1 is superseded but still known: nothing is missing
        assert!(t.node("a").expect("own node").missing().is_empty());
    }

    #[test]
    fn node_ticks_and_dropping_a_node() {
        // "b" creates x and y; "a" overwrites x; "b" also deletes z
        let (mut b, cb) = ready("b");
        let x = set(&mut b, &cb, &p(&["x"]), 1).event;
        let y = set(&mut b, &cb, &p(&["y"]), 2).event;
        let z = set(&mut b, &cb, &p(&["z"]), 3).event;
        let z_del = b
            .local_change(&p(&["z"]), None, &Precondition::default(), &cb)
            .expect("deleted")
            .expect("a change")
            .event;
        let (mut a, ca) = ready("a");
        for ev in [&x, &y, &z, &z_del] {
            a.apply_remote(ev, &ca);
        }
        let x2 = set(&mut a, &ca, &p(&["x"]), 10).event;
        assert_eq!(
            a.node_ticks("b", 0, false),
            vec![(1, p(&["x"])), (2, p(&["y"])), (4, p(&["z"]))]
        );
        assert_eq!(a.node_ticks("b", 1, false).len(), 1);
        assert_eq!(
            a.node_ticks("b", 0, true),
            vec![(2, p(&["y"])), (4, p(&["z"]))]
        );
        assert!(a.node_ticks("nobody", 0, false).is_empty());
        // refused: the own node, and while "b" made the last change of y
        // (and of the tombstone z)
        assert_eq!(a.drop_node("a"), Err(DropError::OwnNode("a".into())));
        let err = a.drop_node("b").expect_err("y is b's");
        assert!(matches!(&err, DropError::Current { tick: 2, .. }));
        assert_eq!(err.to_string(), "Node b has entry 2 at ('y',)");
        set(&mut a, &ca, &p(&["y"]), 20);
        set(&mut a, &ca, &p(&["z"]), 30);
        let done = a.drop_node("b").expect("nothing of b is current");
        assert_eq!(done.filtered, 3);
        assert_eq!(done.state.and_then(|s| s.tick), Some(4));
        assert!(a.node("b").is_none());
        assert!(a.node_ticks("b", 0, false).is_empty());
        let chain = a.get(&p(&["x"])).and_then(Entry::chain).expect("a chain");
        assert_eq!(chain.links(), &[NodeEvent::new("a", 1)]);
        assert_eq!(
            a.get(&p(&["x"])).and_then(Entry::data),
            Some(&Value::Int(10))
        );
        assert_eq!(a.dropped().count(), 1);
        // claims about it are ignored now, and so is a stale copy
        let mut r = RangeSet::new();
        r.insert_range(1, 9);
        a.raise_tick("b", 8);
        a.report_known("b", &r);
        a.report_missing("b", &r);
        assert!(a.report_deleted("b", &r).is_empty());
        a.apply_remote(&x, &ca);
        assert!(a.node("b").is_none());
        assert_eq!(
            a.get(&p(&["x"])).and_then(Entry::data),
            Some(&Value::Int(10))
        );
        // a new change of its own brings it back
        let back = set(&mut b, &cb, &p(&["w"]), 5).event;
        assert!(matches!(
            a.apply_remote(&back, &ca),
            ApplyOutcome::Applied { .. }
        ));
        assert_eq!(a.node("b").and_then(|s| s.tick), Some(5));
        assert_eq!(a.dropped().count(), 0);
        drop(x2);
    }

    #[test]
    fn not_ready_refuses() {
        let mut t = Tree::new("a", 5);
        let c = TockClock::default();
        let r = t.local_change(&p(&["x"]), Some(Value::Nil), &Precondition::default(), &c);
        assert_eq!(r.err(), Some(ChangeError::NotReady));
    }

    #[test]
    fn preconditions() {
        let (mut t, c) = ready("a");
        let new_only = Precondition {
            chain: Some(None),
            prev: None,
        };
        let x = p(&["x"]);
        let first = t
            .local_change(&x, Some(Value::Int(1)), &new_only, &c)
            .expect("new entry")
            .expect("change");
        assert_eq!(
            t.local_change(&x, Some(Value::Int(2)), &new_only, &c).err(),
            Some(ChangeError::Exists)
        );
        let on_head = Precondition {
            chain: Some(Some(first.event.chain.head().clone())),
            prev: None,
        };
        assert_eq!(
            t.local_change(&p(&["y"]), Some(Value::Int(2)), &on_head, &c)
                .err(),
            Some(ChangeError::New)
        );
        t.local_change(&x, Some(Value::Int(2)), &on_head, &c)
            .expect("head matches");
        assert!(matches!(
            t.local_change(&x, Some(Value::Int(3)), &on_head, &c),
            Err(ChangeError::Chain(_))
        ));
        let prev = Precondition {
            chain: None,
            prev: Some(Value::Int(7)),
        };
        assert_eq!(
            t.local_change(&x, Some(Value::Int(3)), &prev, &c).err(),
            Some(ChangeError::Data("2".into()))
        );
    }

    #[test]
    fn delete_keeps_tombstone_and_children() {
        let (mut t, c) = ready("a");
        set(&mut t, &c, &p(&["x"]), 1);
        set(&mut t, &c, &p(&["x", "y"]), 2);
        let d = t
            .local_change(&p(&["x"]), None, &Precondition::default(), &c)
            .expect("ok")
            .expect("a change");
        assert!(d.changed());
        let e = t.get(&p(&["x"])).expect("tombstone");
        assert!(e.data().is_none() && e.chain().is_some());
        assert_eq!(
            t.get(&p(&["x", "y"])).and_then(Entry::data),
            Some(&Value::Int(2))
        );
        assert!(t.node("a").expect("own").deleted.contains(3));
        // deleting again is a no-op without a tick
        let again = t.local_change(&p(&["x"]), None, &Precondition::default(), &c);
        assert!(matches!(again, Ok(None)));
        assert_eq!(t.own_tick(), Some(3));
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn delete_tree_and_root() {
        let (mut t, c) = ready("a");
        set(&mut t, &c, &p(&["x"]), 1);
        set(&mut t, &c, &p(&["x", "y", "z"]), 2);
        set(&mut t, &c, &p(&["w"]), 3);
        assert_eq!(
            t.delete_tree(&Path::root(), &c).err(),
            Some(ChangeError::DeleteRoot)
        );
        let d = t.delete_tree(&p(&["x"]), &c).expect("deleted");
        assert_eq!(d.len(), 2);
        assert_eq!(t.len(), 1);
        assert!(t.delete_tree(&p(&["nope"]), &c).expect("ok").is_empty());
    }

    #[test]
    fn walk_order_and_depth() {
        let (mut t, c) = ready("a");
        for (path, v) in [
            (&["t"][..], 1),
            (&["t", "foo"][..], 2),
            (&["t", "foo", "bap"][..], 3),
            (&["t", "foo", "bar", "baz"][..], 4),
            (&["t", "abc"][..], 5),
        ] {
            set(&mut t, &c, &p(path), v);
        }
        let mut seen = Vec::new();
        t.walk(&p(&["t"]), WalkOpts::default(), &mut |path, d, e| {
            seen.push((path.to_string(), d, e.data().cloned()))
        });
        let names: Vec<_> = seen.iter().map(|(s, _, _)| s.as_str()).collect();
        assert_eq!(
            names,
            [
                "('t',)",
                "('t', 'foo')",
                "('t', 'foo', 'bap')",
                "('t', 'foo', 'bar')",
                "('t', 'foo', 'bar', 'baz')",
                "('t', 'abc')"
            ]
        );
        let mut n = 0;
        let opts = WalkOpts {
            min_depth: 1,
            max_depth: Some(1),
        };
        assert!(t.walk(&p(&["t"]), opts, &mut |_, d, _| {
            assert_eq!(d, 1);
            n += 1
        }));
        assert_eq!(n, 2);
        assert!(!t.walk(&p(&["missing"]), opts, &mut |_, _, _| {}));
    }

    #[test]
    fn chunked_walk_matches_full_walk() {
        let (mut t, c) = ready("a");
        let mut n = 0;
        for a in 0..4 {
            set(&mut t, &c, &p(&["r", &format!("a{a}")]), n);
            n += 1;
            for b in 0..3 {
                set(
                    &mut t,
                    &c,
                    &p(&["r", &format!("a{a}"), &format!("b{b}")]),
                    n,
                );
                n += 1;
            }
        }
        for opts in [
            WalkOpts::default(),
            WalkOpts {
                min_depth: 1,
                max_depth: Some(1),
            },
            WalkOpts {
                min_depth: 2,
                max_depth: None,
            },
        ] {
            let mut full = Vec::new();
            t.walk(&p(&["r"]), opts, &mut |path, d, _| {
                full.push((path.clone(), d))
            });
            for limit in [1, 2, 3, 7, 100] {
                let mut chunked = Vec::new();
                let mut cursor = None;
                loop {
                    cursor = t
                        .walk_chunk(&p(&["r"]), opts, cursor, limit, &mut |path, d, _| {
                            chunked.push((path.clone(), d))
                        })
                        .expect("start exists");
                    if cursor.is_none() {
                        break;
                    }
                }
                assert_eq!(chunked, full, "limit {limit} {opts:?}");
            }
        }
        assert_eq!(
            t.walk_chunk(
                &p(&["nope"]),
                WalkOpts::default(),
                None,
                5,
                &mut |_, _, _| {}
            ),
            Err(WalkError::NotFound)
        );
    }

    #[test]
    fn remote_rules() {
        let (mut a, ca) = ready("a");
        let (mut b, cb) = ready("b");
        let x = p(&["x"]);
        let u1 = set(&mut a, &ca, &x, 1).event;
        assert!(matches!(
            b.apply_remote(&u1, &cb),
            ApplyOutcome::Applied {
                conflict: false,
                ..
            }
        ));
        assert_eq!(b.apply_remote(&u1, &cb), ApplyOutcome::Duplicate);
        let u2 = set(&mut b, &cb, &x, 2).event;
        assert_eq!(u2.chain.links().len(), 2);
        assert!(cb.current() > u1.tock, "tock_seen raised the clock");
        assert!(matches!(
            a.apply_remote(&u2, &ca),
            ApplyOutcome::Applied { .. }
        ));
        assert_eq!(a.apply_remote(&u1, &ca), ApplyOutcome::Stale);
        // concurrent: both change on top of u2
        let ua = set(&mut a, &ca, &x, 10).event;
        let ub = set(&mut b, &cb, &x, 20).event;
        let ra = a.apply_remote(&ub, &ca);
        let rb = b.apply_remote(&ua, &cb);
        let va = a.get(&x).and_then(Entry::data).cloned();
        let vb = b.get(&x).and_then(Entry::data).cloned();
        assert_eq!(va, vb, "conflict resolved the same way: {ra:?} {rb:?}");
        // a chain mentioned in an update raises node ticks and fills known
        assert_eq!(a.node("b").and_then(|n| n.tick), b.own_tick());
    }

    #[test]
    fn missing_ticks_are_reported() {
        let (mut a, ca) = ready("a");
        let (mut b, cb) = ready("b");
        let evs: Vec<_> = (0..5)
            .map(|i| set(&mut a, &ca, &p(&[&format!("k{i}")]), i).event)
            .collect();
        for (i, e) in evs.iter().enumerate() {
            if i != 2 {
                b.apply_remote(e, &cb);
            }
        }
        assert_eq!(
            b.node("a").expect("a known").missing().first(),
            Some((3, 4))
        );
    }

    /// A resend with its updates in a fixed order (the walk gives tree
    /// order, the recent changes tick order).
    fn sorted(mut r: Resend) -> Resend {
        r.updates.sort_by(|x, y| x.path.cmp(&y.path));
        r
    }

    proptest! {
        /// Own recent ticks are answered from the recent changes exactly as
        /// a walk of the tree answers them: overwritten, deleted, purged
        /// and remotely superseded entries included.
        #[test]
        fn recent_own_ticks_are_looked_up_as_a_walk_finds_them(
            ops in proptest::collection::vec((0u8..4, 0u8..12), 1..80),
            from in 0u64..90,
            len in 1u64..90,
        ) {
            let (mut a, ca) = ready("a");
            a.keep_recent_changes(true);
            let (mut b, cb) = ready("b");
            for (op, k) in ops {
                let path = p(&["d", &k.to_string()]);
                match op {
                    0 | 1 => {
                        set(&mut a, &ca, &path, i64::from(k));
                    }
                    2 => {
                        let _ = a.local_change(&path, None, &Precondition::default(), &ca);
                    }
                    _ => {
                        // b changes the entry on top of a's change
                        let current = a.get(&path).map(|e| (e.chain().cloned(), e.data.clone()));
                        if let Some((Some(chain), Some(v))) = current {
                            let mut b_on_top = b.local_change(&path, Some(v), &Precondition::default(), &cb)
                                .expect("b's change")
                                .expect("a change")
                                .event;
                            b_on_top.chain = next_chain(Some(&chain), NodeEvent::new("b", b_on_top.chain.head().tick), 5);
                            b_on_top.tock = ca.next() + 1000;
                            a.apply_remote(&b_on_top, &ca);
                        }
                    }
                }
            }
            prop_assume!(!a.recent.is_empty());
            let first_recent = a.recent.front().map_or(1, |(t, _)| *t);
            let mut ticks = RangeSet::new();
            ticks.insert_range(first_recent + from, first_recent + from + len);
            let wanted = vec![(a.own_name().clone(), ticks)];
            prop_assert!(a.recent_only(&wanted).is_some());
            let mut by_walk = Resend::default();
            let mut walk_found = HashMap::new();
            a.lookup_by_walk(&wanted, &mut walk_found, &mut by_walk);
            let mut recent_found = HashMap::new();
            a.lookup_recent(&wanted[0].1, &mut recent_found, &mut Resend::default());
            prop_assert_eq!(walk_found, recent_found);
            // and the whole answer, known and deleted ticks included
            let answer = sorted(a.lookup_ticks(&wanted));
            prop_assert_eq!(&answer.updates, &sorted(by_walk).updates);
        }
    }

    #[test]
    fn old_or_foreign_ticks_are_looked_up_by_walking() {
        let (mut a, ca) = ready("a");
        a.keep_recent_changes(true);
        for i in 0..(RECENT_OWN as i64 + 10) {
            set(&mut a, &ca, &p(&["k", &(i % 100).to_string()]), i);
        }
        assert_eq!(a.recent.len(), RECENT_OWN);
        let own = a.own_name().clone();
        let range = |lo: u64, hi: u64| {
            let mut r = RangeSet::new();
            r.insert_range(lo, hi);
            r
        };
        let newest = a.own_tick().expect("a tick");
        assert!(
            a.recent_only(&[(own.clone(), range(newest - 50, newest + 1))])
                .is_some()
        );
        // older than the recent changes: walked
        assert!(
            a.recent_only(&[(own.clone(), range(5, newest + 1))])
                .is_none()
        );
        // another node's ticks: walked
        assert!(
            a.recent_only(&[(NodeName::from("b"), range(newest - 5, newest))])
                .is_none()
        );
        // the same answer either way: the last 100 changes are the current
        // ones of the 100 entries
        let r = a.lookup_ticks(&[(own.clone(), range(newest - 99, newest + 1))]);
        assert_eq!(r.updates.len(), 100);
        let all = a.lookup_ticks(&[(own, range(1, newest + 1))]);
        assert_eq!(sorted(all).updates, sorted(r).updates);
    }

    #[test]
    fn ticks_beyond_the_limit_are_refused_and_ignored() {
        let (mut a, ca) = ready("a");
        let bogus = |node: &str, path: &str| UpdateEvent {
            path: p(&[path]),
            chain: Chain::single(NodeEvent::new(node, u64::MAX)),
            value: Some(Value::Int(1)),
            tock: 5,
        };
        // another server's change, and one claiming to be this server's
        assert_eq!(
            a.apply_remote(&bogus("b", "x"), &ca),
            ApplyOutcome::Rejected
        );
        assert_eq!(
            a.apply_remote(&bogus("a", "y"), &ca),
            ApplyOutcome::Rejected
        );
        assert!(a.get(&p(&["x"])).is_none());
        // claims of a node's tick beyond it are ignored
        a.raise_tick("b", MAX_TICK + 1);
        a.restore_own_tick(u64::MAX);
        assert_eq!(a.node("b").and_then(|n| n.tick), None);
        assert_eq!(a.own_tick(), Some(0));
        // up to it, all is well: the missing ticks are counted, not listed
        a.raise_tick("b", MAX_TICK);
        let missing = a.node("b").expect("b").missing();
        assert_eq!(missing.len(), MAX_TICK);
        set(&mut a, &ca, &p(&["z"]), 2);
        assert_eq!(a.own_tick(), Some(1));
    }

    #[test]
    fn missing_ticks_are_healed_by_resend() {
        let (mut a, ca) = ready("a");
        let (mut b, cb) = ready("b");
        set(&mut a, &ca, &p(&["x"]), 1); // a1, superseded by a2
        set(&mut a, &ca, &p(&["x"]), 2); // a2
        set(&mut a, &ca, &p(&["y"]), 3); // a3
        a.local_change(&p(&["y"]), None, &Precondition::default(), &ca)
            .expect("delete"); // a4 deletes y
        set(&mut a, &ca, &p(&["z"]), 5); // a5, the only one b receives
        let z = a
            .get(&p(&["z"]))
            .and_then(Entry::chain)
            .cloned()
            .expect("chain");
        b.apply_remote(
            &UpdateEvent {
                path: p(&["z"]),
                chain: z,
                value: Some(Value::Int(5)),
                tock: 100,
            },
            &cb,
        );
        let missing = b.node("a").expect("a").missing();
        assert_eq!(missing.ranges().collect::<Vec<_>>(), [(1, 5)]);
        a.report_missing("a", &missing);
        let r = a.take_resend();
        assert!(a.node("a").expect("a").reported.is_empty());
        assert_eq!(r.updates.len(), 2, "x (a2) and the tombstone y (a4)");
        for u in &r.updates {
            b.apply_remote(u, &cb);
        }
        for (n, k) in &r.known {
            b.report_known(n, k);
        }
        for (n, d) in &r.deleted {
            b.report_deleted(n, d);
        }
        assert!(
            b.node("a").expect("a").missing().is_empty(),
            "{:?}",
            b.node("a")
        );
        assert_eq!(
            b.get(&p(&["x"])).and_then(Entry::data),
            Some(&Value::Int(2))
        );
        assert_eq!(b.get(&p(&["y"])).and_then(Entry::data), None);
    }

    #[test]
    fn reported_deletions_remove_live_values() {
        let (mut a, ca) = ready("a");
        let (mut b, cb) = ready("b");
        let ev = set(&mut a, &ca, &p(&["x"]), 1).event;
        b.apply_remote(&ev, &cb);
        // a's tick 1 is reported as a deletion: b drops the value
        let changed = b.report_deleted("a", &[1].into_iter().collect());
        assert_eq!(changed, vec![p(&["x"])]);
        assert_eq!(b.get(&p(&["x"])).and_then(Entry::data), None);
        assert_eq!(b.len(), 0);
        // but not when a later change stands on top of it
        let ev = set(&mut a, &ca, &p(&["w"]), 1).event;
        b.apply_remote(&ev, &cb);
        set(&mut b, &cb, &p(&["w"]), 2);
        assert!(b.report_deleted("a", &[2].into_iter().collect()).is_empty());
        assert_eq!(
            b.get(&p(&["w"])).and_then(Entry::data),
            Some(&Value::Int(2))
        );
    }

    #[test]
    fn tombstones_are_purged_below_the_watermark() {
        let (mut a, ca) = ready("a");
        set(&mut a, &ca, &p(&["keep"]), 1); // a1
        set(&mut a, &ca, &p(&["gone", "deep", "x"]), 2); // a2
        set(&mut a, &ca, &p(&["parent"]), 3); // a3
        set(&mut a, &ca, &p(&["parent", "child"]), 4); // a4
        for path in [&["gone", "deep", "x"][..], &["parent"][..]] {
            a.local_change(&p(path), None, &Precondition::default(), &ca)
                .expect("delete"); // a5, a6
        }
        assert_eq!(a.watermarks(), vec![(NodeName::from("a"), 6)]);
        // a deleter has only seen up to a5: the a6 tombstone stays
        assert_eq!(a.purge_tombstones(&|n| if n == "a" { 5 } else { 0 }), 1);
        assert!(a.get(&p(&["gone"])).is_none(), "bare ancestors are pruned");
        assert!(a.get(&p(&["parent"])).and_then(Entry::chain).is_some());
        assert_eq!(a.purge_tombstones(&|_| 6), 1);
        let parent = a.get(&p(&["parent"])).expect("kept for its child");
        assert!(parent.chain().is_none() && parent.data().is_none());
        assert_eq!(
            a.get(&p(&["parent", "child"])).and_then(Entry::data),
            Some(&Value::Int(4))
        );
        assert!(a.node("a").expect("a").deleted.contains(5));

        // a late copy of the purged entry's creation does not resurrect it
        let (mut b, cb) = ready("b");
        let old = UpdateEvent {
            path: p(&["gone", "deep", "x"]),
            chain: Chain::single(NodeEvent::new("a", 2)),
            value: Some(Value::Int(2)),
            tock: 3,
        };
        assert!(matches!(
            b.apply_remote(&old, &cb),
            ApplyOutcome::Applied { .. }
        ));
        assert_eq!(a.apply_remote(&old, &ca), ApplyOutcome::Stale);
        assert!(a.get(&p(&["gone"])).is_none());
    }

    #[test]
    fn claims_do_not_move_the_own_tick() {
        let (mut a, ca) = ready("a");
        set(&mut a, &ca, &p(&["x"]), 1);
        let big: RangeSet = [1u64 << 50].into_iter().collect();
        a.raise_tick("a", 1 << 50);
        a.report_missing("a", &big);
        a.report_known("a", &big);
        assert_eq!(a.own_tick(), Some(1));
        a.raise_tick("b", 7);
        assert_eq!(a.node("b").and_then(|n| n.tick), Some(7));
    }

    #[test]
    fn long_paths_are_refused() {
        let (mut t, c) = ready("a");
        let long = Path((0..=MAX_PATH_LEN as i64).map(PathElem::Int).collect());
        assert!(matches!(
            t.local_change(&long, Some(Value::Nil), &Precondition::default(), &c),
            Err(ChangeError::PathTooLong(_))
        ));
    }

    /// A random history: (node index, key index, value, which earlier events
    /// that node has received before making its change).
    fn history() -> impl Strategy<Value = Vec<(usize, usize, i64, Vec<bool>)>> {
        proptest::collection::vec(
            (
                0usize..3,
                0usize..3,
                any::<i64>(),
                proptest::collection::vec(any::<bool>(), 24),
            ),
            1..24,
        )
    }

    fn final_state(t: &Tree) -> Vec<(String, Option<Value>, Option<NodeEvent>)> {
        let mut out = Vec::new();
        t.walk(&Path::root(), WalkOpts::default(), &mut |p, _, e| {
            out.push((
                p.to_string(),
                e.data().cloned(),
                e.chain().map(|c| c.head().clone()),
            ))
        });
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    proptest! {
        /// Every server that receives the same set of updates ends up with
        /// the same tree, whatever the order they arrive in.
        #[test]
        fn merge_is_order_independent(hist in history(), seed in any::<u64>()) {
            let names = ["a", "b", "c"];
            let mut trees: Vec<(Tree, TockClock)> = names.iter().map(|n| ready(n)).collect();
            let mut events: Vec<UpdateEvent> = Vec::new();
            for (node, key, v, recv) in hist {
                let (t, c) = &mut trees[node];
                for (i, e) in events.iter().enumerate() {
                    if recv.get(i).copied().unwrap_or(true) {
                        t.apply_remote(e, c);
                    }
                }
                let path = Path::from_strs(&[format!("k{key}")]);
                let value = if v % 5 == 0 { None } else { Some(Value::Int(v)) };
                if let Ok(Some(ch)) = t.local_change(&path, value, &Precondition::default(), c) {
                    events.push(ch.event);
                }
            }
            // Deliver everything to fresh observers in two different orders.
            let mut order: Vec<usize> = (0..events.len()).collect();
            let mut reversed = order.clone();
            reversed.reverse();
            let mut s = seed;
            for i in (1..order.len()).rev() {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                order.swap(i, (s >> 33) as usize % (i + 1));
            }
            let mut results = Vec::new();
            for ord in [order, reversed] {
                let (mut obs, c) = ready("obs");
                for i in ord {
                    obs.apply_remote(&events[i], &c);
                }
                results.push(final_state(&obs));
            }
            // And to the writers themselves, which converge too.
            for (t, c) in &mut trees {
                for e in &events {
                    t.apply_remote(e, c);
                }
                results.push(final_state(t));
            }
            for r in &results[1..] {
                prop_assert_eq!(&results[0], r);
            }
        }
    }
}
