//! The children of an entry: a vector in creation order, plus a hash index
//! once there are more than a few.
//!
//! Compared with an `IndexMap` this stores no hash per child, builds no
//! index at all for small directories, and uses one process-wide (randomly
//! seeded) hasher instead of one per map. The index is an open-addressing
//! table whose slot holds a child's position together with a few bits of
//! its name's hash, in one word: looking a child up touches the slot's
//! cache line and then the child's, where a table with separate control
//! bytes (hashbrown's) touches three lines. In a large directory each of
//! those is a cache and TLB miss.

use std::hash::{BuildHasher, Hash, Hasher, RandomState};
use std::sync::OnceLock;

use crate::path::PathElem;
use crate::tree::Entry;

/// Up to this many children are searched linearly, without an index.
const SMALL: usize = 8;

/// The hasher shared by all indexes: seeded once per process, so that
/// clients cannot predict collisions.
fn hasher() -> &'static RandomState {
    static HASHER: OnceLock<RandomState> = OnceLock::new();
    HASHER.get_or_init(RandomState::new)
}

/// The hash of a child's name. A string or byte string (the names of
/// nearly all children) goes to the hasher in one piece, which costs a
/// third of hashing it the `Hash` way (its rank, its bytes, an end
/// marker). Equal names hash alike: the empty byte string, equal to the
/// empty string, hashes as that; a byte string and a string with the same
/// bytes hash alike too, though they differ, which only means they are
/// compared.
fn hash(name: &PathElem) -> u64 {
    let mut h = hasher().build_hasher();
    match name {
        PathElem::Str(s) => h.write(s.as_bytes()),
        PathElem::Bytes(b) => h.write(b),
        other => other.hash(&mut h),
    }
    h.finish()
}

/// Children in creation order, looked up by name.
///
/// Invariant: `index` is empty while `items.len() <= SMALL`; otherwise it
/// holds the position of every item, hashed by the item's name.
#[derive(Debug, Default)]
pub(crate) struct Children {
    items: Vec<(PathElem, Entry)>,
    index: Index,
}

/// One slot of a [`Table`]: empty, or a position with bits of the hash of
/// the name there.
trait Slot: Copy + Default + Eq + std::fmt::Debug {
    /// The highest position a slot holds.
    const MAX_POS: usize;
    /// The slot for position `pos` (at most [`Self::MAX_POS`]) of a name
    /// hashed `h`.
    fn new(h: u64, pos: usize) -> Self;
    /// Whether nothing is stored here.
    fn is_empty(self) -> bool {
        self == Self::default()
    }
    /// The position stored (of an occupied slot).
    fn pos(self) -> usize;
    /// Whether a name hashed `h` may be the one stored here.
    fn may_be(self, h: u64) -> bool;
    /// The same slot one position lower (of a slot holding at least 1).
    fn down(self) -> Self;
}

/// Eight bits of the hash and a position below 2^24 - 1 (the position
/// stored plus one, so that zero is free for "empty"): four bytes.
impl Slot for u32 {
    const MAX_POS: usize = (1 << 24) - 2;
    fn new(h: u64, pos: usize) -> u32 {
        debug_assert!(pos <= Self::MAX_POS);
        (((h >> 56) as u32) << 24) | (pos as u32 + 1)
    }
    fn pos(self) -> usize {
        (self & 0x00FF_FFFF) as usize - 1
    }
    fn may_be(self, h: u64) -> bool {
        self >> 24 == (h >> 56) as u32
    }
    fn down(self) -> u32 {
        self - 1
    }
}

/// Thirty-two bits of the hash and a position below 2^32 - 1: eight
/// bytes, for directories of more than 16 million children.
impl Slot for u64 {
    const MAX_POS: usize = u32::MAX as usize - 1;
    fn new(h: u64, pos: usize) -> u64 {
        debug_assert!(pos <= Self::MAX_POS);
        (h & 0xFFFF_FFFF_0000_0000) | (pos as u64 + 1)
    }
    fn pos(self) -> usize {
        (self & 0xFFFF_FFFF) as usize - 1
    }
    fn may_be(self, h: u64) -> bool {
        self >> 32 == h >> 32
    }
    fn down(self) -> u64 {
        self - 1
    }
}

/// An open-addressing hash table of positions, probed linearly from the
/// slot the low bits of a hash name. At most three quarters full, so every
/// probe ends at an empty slot; removal moves the slots after the hole
/// back instead of leaving tombstones.
#[derive(Debug, Default)]
struct Table<S> {
    /// A power of two of them, or none.
    slots: Box<[S]>,
    /// How many are occupied.
    len: usize,
}

impl<S: Slot> Table<S> {
    fn mask(&self) -> usize {
        self.slots.len().wrapping_sub(1)
    }

    /// The position whose item satisfies `is`, among those hashed `h`.
    fn find(&self, h: u64, is: impl Fn(usize) -> bool) -> Option<usize> {
        let mask = self.mask();
        let mut i = h as usize & mask;
        loop {
            let s = *self.slots.get(i)?;
            if s.is_empty() {
                return None;
            }
            if s.may_be(h) && is(s.pos()) {
                return Some(s.pos());
            }
            i = (i + 1) & mask;
        }
    }

    /// Adds position `pos` (not stored yet), hashed `h`; `rehash` gives
    /// the hash of the name at any stored position (to grow the table).
    fn insert(&mut self, h: u64, pos: usize, rehash: impl Fn(usize) -> u64) {
        if (self.len + 1) * 4 > self.slots.len() * 3 {
            let mut grown = Table {
                slots: vec![S::default(); (self.slots.len() * 2).max(16)].into_boxed_slice(),
                len: 0,
            };
            for &s in self.slots.iter().filter(|s| !s.is_empty()) {
                let h = rehash(s.pos());
                grown.put(S::new(h, s.pos()), h);
            }
            *self = grown;
        }
        self.put(S::new(h, pos), h);
    }

    /// Stores `slot` in the first free slot from `h`'s (there is one).
    fn put(&mut self, slot: S, h: u64) {
        let mask = self.mask();
        let mut i = h as usize & mask;
        while let Some(s) = self.slots.get_mut(i) {
            if s.is_empty() {
                *s = slot;
                self.len += 1;
                return;
            }
            i = (i + 1) & mask;
        }
    }

    /// Removes position `pos`, hashed `h`; `rehash` as for [`Self::insert`].
    fn remove(&mut self, h: u64, pos: usize, rehash: impl Fn(usize) -> u64) {
        let mask = self.mask();
        let mut i = h as usize & mask;
        let mut hole = loop {
            match self.slots.get(i) {
                Some(s) if s.is_empty() => return,
                Some(s) if s.pos() == pos => break i,
                Some(_) => i = (i + 1) & mask,
                None => return,
            }
        };
        // Move back every slot after the hole that may go there: one
        // whose probe starts at or before the hole, seen from the slot.
        let mut j = (hole + 1) & mask;
        loop {
            let s = self.slots[j];
            if s.is_empty() {
                break;
            }
            let home = rehash(s.pos()) as usize & mask;
            if j.wrapping_sub(home) & mask >= j.wrapping_sub(hole) & mask {
                self.slots[hole] = s;
                hole = j;
            }
            j = (j + 1) & mask;
        }
        self.slots[hole] = S::default();
        self.len -= 1;
    }

    /// Moves every position above `pos` down by one.
    fn shift_down_above(&mut self, pos: usize) {
        for s in self.slots.iter_mut() {
            if !s.is_empty() && s.pos() > pos {
                *s = s.down();
            }
        }
    }

    /// The positions stored.
    fn positions(&self) -> impl Iterator<Item = usize> + '_ {
        self.slots.iter().filter(|s| !s.is_empty()).map(|s| s.pos())
    }
}

/// The positions of the children, by the hash of their names: four bytes
/// a slot up to 16 million children, eight beyond. A directory cannot come
/// near `u32::MAX` children: that many entries would need hundreds of GiB.
#[derive(Debug)]
enum Index {
    Compact(Table<u32>),
    Wide(Table<u64>),
}

impl Default for Index {
    fn default() -> Index {
        Index::Compact(Table::default())
    }
}

impl Index {
    /// The position whose item satisfies `is`, among those hashed `h`.
    fn find(&self, h: u64, is: impl Fn(usize) -> bool) -> Option<usize> {
        match self {
            Index::Compact(t) => t.find(h, is),
            Index::Wide(t) => t.find(h, is),
        }
    }

    /// Adds position `pos`, hashed `h`; `rehash` gives the hash of the
    /// name at any position (to grow the table).
    fn insert(&mut self, h: u64, pos: usize, rehash: impl Fn(usize) -> u64) {
        if let Index::Compact(t) = self {
            if pos <= compact_max() {
                t.insert(h, pos, rehash);
                return;
            }
            // outgrew four bytes: every position in eight
            let mut wide = Table::<u64>::default();
            for i in t.positions() {
                wide.insert(rehash(i), i, &rehash);
            }
            *self = Index::Wide(wide);
        }
        if let Index::Wide(t) = self {
            t.insert(h, pos, rehash);
        }
    }

    /// Removes position `pos`, hashed `h`, and moves the positions after
    /// it down by one. `rehash` gives the hash of the name at any position
    /// as it was before the removal.
    fn remove_shifting(&mut self, h: u64, pos: usize, rehash: impl Fn(usize) -> u64) {
        match self {
            Index::Compact(t) => {
                t.remove(h, pos, rehash);
                t.shift_down_above(pos);
            }
            Index::Wide(t) => {
                t.remove(h, pos, rehash);
                t.shift_down_above(pos);
            }
        }
    }
}

/// The highest position a compact index holds (lower in tests, so that
/// they reach the wide one).
fn compact_max() -> usize {
    if cfg!(test) {
        1_000
    } else {
        <u32 as Slot>::MAX_POS
    }
}

impl Children {
    /// Number of children.
    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether there are no children.
    pub(crate) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The children in creation order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&PathElem, &Entry)> {
        self.items.iter().map(|(k, v)| (k, v))
    }

    /// The `i`-th child in creation order.
    pub(crate) fn get_index(&self, i: usize) -> Option<(&PathElem, &Entry)> {
        self.items.get(i).map(|(k, v)| (k, v))
    }

    /// The position of the child named `name`.
    fn position(&self, name: &PathElem) -> Option<usize> {
        if self.items.len() <= SMALL {
            return self.items.iter().position(|(k, _)| k == name);
        }
        let items = &self.items;
        self.index.find(hash(name), |i| items[i].0 == *name)
    }

    /// The child named `name`.
    pub(crate) fn get(&self, name: &PathElem) -> Option<&Entry> {
        let i = self.position(name)?;
        self.items.get(i).map(|(_, e)| e)
    }

    /// The child named `name`, mutably.
    pub(crate) fn get_mut(&mut self, name: &PathElem) -> Option<&mut Entry> {
        let i = self.position(name)?;
        self.items.get_mut(i).map(|(_, e)| e)
    }

    /// The child named `name`; created with `make` (and a copy of `name`)
    /// if missing.
    pub(crate) fn get_or_insert_with(
        &mut self,
        name: &PathElem,
        make: impl FnOnce() -> Entry,
    ) -> &mut Entry {
        let i = match self.position(name) {
            Some(i) => i,
            None => {
                let i = self.items.len();
                self.items.push((name.clone(), make()));
                let items = &self.items;
                let rehash = |j: usize| hash(&items[j].0);
                if i == SMALL {
                    // Just outgrew the linear search: index everything.
                    for (j, (k, _)) in items.iter().enumerate() {
                        self.index.insert(hash(k), j, rehash);
                    }
                } else if i > SMALL {
                    self.index.insert(hash(name), i, rehash);
                }
                i
            }
        };
        &mut self.items[i].1
    }

    /// Removes the child named `name`, keeping the order of the others.
    pub(crate) fn shift_remove(&mut self, name: &PathElem) -> Option<Entry> {
        let i = self.position(name)?;
        if self.items.len() - 1 <= SMALL {
            self.index = Index::default();
        } else {
            let items = &self.items;
            self.index
                .remove_shifting(hash(name), i, |j| hash(&items[j].0));
        }
        let (_, e) = self.items.remove(i);
        Some(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(c: &Children) -> Vec<PathElem> {
        c.iter().map(|(k, _)| k.clone()).collect()
    }

    #[test]
    fn order_lookup_and_removal_across_the_index_threshold() {
        let mut c = Children::default();
        let n = 3 * SMALL as i64;
        for i in (0..n).rev() {
            c.get_or_insert_with(&PathElem::Int(i), Entry::default);
            // Every name stays findable while the index is built and grown.
            for j in i..n {
                assert!(c.get(&PathElem::Int(j)).is_some(), "{j} after {i}");
            }
        }
        assert_eq!(c.len(), n as usize);
        assert_eq!(
            names(&c),
            (0..n).rev().map(PathElem::Int).collect::<Vec<_>>()
        );
        // Looking up an existing name does not add it again.
        c.get_or_insert_with(&PathElem::Int(5), Entry::default);
        assert_eq!(c.len(), n as usize);
        // Remove from the middle until the index is dropped, and beyond.
        for i in (0..n).filter(|i| i % 2 == 0) {
            assert!(c.shift_remove(&PathElem::Int(i)).is_some());
            assert!(c.get(&PathElem::Int(i)).is_none());
            assert!(c.shift_remove(&PathElem::Int(i)).is_none());
        }
        let odd: Vec<PathElem> = (0..n)
            .rev()
            .filter(|i| i % 2 == 1)
            .map(PathElem::Int)
            .collect();
        assert_eq!(names(&c), odd);
        for k in &odd {
            assert!(c.get(k).is_some());
        }
        assert_eq!(c.get_index(0).map(|(k, _)| k.clone()), odd.first().cloned());
    }

    #[test]
    fn empty_bytes_finds_empty_string_with_and_without_index() {
        for fill in [0, 2 * SMALL] {
            let mut c = Children::default();
            for i in 0..fill {
                c.get_or_insert_with(&PathElem::Int(i as i64), Entry::default);
            }
            c.get_or_insert_with(&PathElem::Str("".into()), Entry::default);
            assert!(c.get(&PathElem::Bytes(thin_vec::ThinVec::new())).is_some());
            assert!(c.get(&PathElem::Str("x".into())).is_none());
            assert_eq!(c.len(), fill + 1);
        }
    }

    #[test]
    fn the_index_widens_past_the_compact_positions() {
        let mut c = Children::default();
        let n = compact_max() as i64 + 100;
        for i in 0..n {
            c.get_or_insert_with(&PathElem::Int(i), Entry::default);
            if i as usize == compact_max() {
                assert!(matches!(c.index, Index::Compact(_)), "{i}");
            }
        }
        assert!(matches!(c.index, Index::Wide(_)));
        assert_eq!(c.len(), n as usize);
        for i in 0..n {
            assert_eq!(c.position(&PathElem::Int(i)), Some(i as usize), "{i}");
        }
        assert!(c.get(&PathElem::Int(n)).is_none());
        // removing near the front moves every later position down
        assert!(c.shift_remove(&PathElem::Int(3)).is_some());
        for i in (0..n).filter(|&i| i != 3) {
            let pos = c.position(&PathElem::Int(i)).expect("found");
            assert_eq!(pos, if i < 3 { i } else { i - 1 } as usize);
        }
        assert!(c.get(&PathElem::Int(3)).is_none());
    }

    /// A slot of each position keeps it and the hash bits it stores, which
    /// `flipped` (a bit among them) changes; one position lower, too.
    fn check_slots<S: Slot>(positions: &[usize], flipped: u32) {
        let h = 0xABCD_EF01_2345_6789_u64;
        for &pos in positions {
            let s = S::new(h, pos);
            assert!(!s.is_empty());
            assert_eq!(s.pos(), pos);
            assert!(s.may_be(h));
            assert!(!s.may_be(h ^ (1 << flipped)));
            if pos > 0 {
                assert_eq!(s.down().pos(), pos - 1);
                assert!(s.down().may_be(h));
            }
        }
    }

    #[test]
    fn slots_keep_the_highest_positions_and_their_hash_bits() {
        check_slots::<u32>(&[0, 1, 65_535, 65_536, <u32 as Slot>::MAX_POS], 60);
        check_slots::<u64>(&[0, 1, 1 << 24, <u64 as Slot>::MAX_POS], 40);
    }

    /// A table whose hashes collide a lot (few distinct low bits), checked
    /// against a list after every insertion and removal.
    fn table_against_a_list<S: Slot>(ops: &[(bool, u16)]) {
        // the "name" at a position is a key; its hash puts many keys on
        // the same few home slots, so probes run long and wrap around
        let hash_of =
            |k: u16| (u64::from(k) % 7).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u64::from(k) << 40;
        let mut keys: Vec<u16> = Vec::new();
        let mut t = Table::<S>::default();
        for &(add, k) in ops {
            let h = hash_of(k);
            let found = t.find(h, |p| keys[p] == k);
            assert_eq!(found, keys.iter().position(|&x| x == k), "find {k}");
            match (add, found) {
                (true, None) => {
                    keys.push(k);
                    let snapshot = keys.clone();
                    t.insert(h, keys.len() - 1, |p| hash_of(snapshot[p]));
                }
                (false, Some(p)) => {
                    let snapshot = keys.clone();
                    t.remove(h, p, |q| hash_of(snapshot[q]));
                    t.shift_down_above(p);
                    keys.remove(p);
                }
                _ => {}
            }
            assert_eq!(t.len, keys.len());
            assert!(t.len * 4 <= t.slots.len() * 3);
            for (p, &x) in keys.iter().enumerate() {
                assert_eq!(t.find(hash_of(x), |q| keys[q] == x), Some(p), "{x}");
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn tables_agree_with_a_list(ops in proptest::collection::vec((proptest::bool::weighted(0.6), 0u16..200), 0..400)) {
            table_against_a_list::<u32>(&ops);
            table_against_a_list::<u64>(&ops);
        }
    }
}
