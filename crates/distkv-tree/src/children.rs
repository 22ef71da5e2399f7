//! The children of an entry: a vector in creation order, plus a hash index
//! once there are more than a few.
//!
//! Compared with an `IndexMap` this stores no hash per child, indexes with
//! `u16` positions (`u32` beyond 65,536 children), builds no index at all
//! for small directories, and uses one process-wide (randomly seeded)
//! hasher instead of one per map.

use std::hash::{BuildHasher, RandomState};
use std::sync::OnceLock;

use hashbrown::HashTable;

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

fn hash(name: &PathElem) -> u64 {
    hasher().hash_one(name)
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

/// The positions of the children, by the hash of their names: two bytes
/// each while they fit (three with the table's control byte, against
/// five), four beyond. A directory cannot come near `u32::MAX` children:
/// that many entries would need hundreds of GiB.
#[derive(Debug)]
enum Index {
    Narrow(HashTable<u16>),
    Wide(HashTable<u32>),
}

impl Default for Index {
    fn default() -> Index {
        Index::Narrow(HashTable::new())
    }
}

impl Index {
    /// The position whose item satisfies `is`, among those hashed `h`.
    fn find(&self, h: u64, is: impl Fn(usize) -> bool) -> Option<usize> {
        match self {
            Index::Narrow(t) => t.find(h, |&i| is(usize::from(i))).map(|&i| usize::from(i)),
            Index::Wide(t) => t.find(h, |&i| is(i as usize)).map(|&i| i as usize),
        }
    }

    /// Adds position `pos`, hashed `h`; `rehash` gives the hash of the
    /// name at any position (to grow the table).
    fn insert(&mut self, h: u64, pos: usize, rehash: impl Fn(usize) -> u64) {
        if let Index::Narrow(t) = self {
            match u16::try_from(pos) {
                Ok(p) => {
                    t.insert_unique(h, p, |&i| rehash(usize::from(i)));
                    return;
                }
                Err(_) => {
                    // outgrew two bytes: every position in four
                    let mut wide = HashTable::with_capacity(t.len() + 1);
                    for &i in t.iter() {
                        let i = usize::from(i);
                        wide.insert_unique(rehash(i), pos32(i), |&j| rehash(j as usize));
                    }
                    *self = Index::Wide(wide);
                }
            }
        }
        if let Index::Wide(t) = self {
            t.insert_unique(h, pos32(pos), |&i| rehash(i as usize));
        }
    }

    /// Removes position `pos`, hashed `h`, and moves the positions after
    /// it down by one.
    fn remove_shifting(&mut self, h: u64, pos: usize) {
        match self {
            Index::Narrow(t) => {
                if let Ok(slot) = t.find_entry(h, |&j| usize::from(j) == pos) {
                    slot.remove();
                }
                for j in t.iter_mut() {
                    if usize::from(*j) > pos {
                        *j -= 1;
                    }
                }
            }
            Index::Wide(t) => {
                if let Ok(slot) = t.find_entry(h, |&j| j as usize == pos) {
                    slot.remove();
                }
                for j in t.iter_mut() {
                    if *j as usize > pos {
                        *j -= 1;
                    }
                }
            }
        }
    }
}

/// A position as stored in a wide index.
fn pos32(i: usize) -> u32 {
    debug_assert!(u32::try_from(i).is_ok());
    i as u32
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
        let (_, e) = self.items.remove(i);
        if self.items.len() <= SMALL {
            self.index = Index::default();
        } else {
            self.index.remove_shifting(hash(name), i);
        }
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
    fn the_index_widens_past_two_byte_positions() {
        let mut c = Children::default();
        let n = i64::from(u16::MAX) + 100;
        for i in 0..n {
            c.get_or_insert_with(&PathElem::Int(i), Entry::default);
        }
        assert!(matches!(c.index, Index::Wide(_)));
        assert_eq!(c.len(), n as usize);
        for i in [0, 1, 65_535, 65_536, n - 1] {
            assert!(c.get(&PathElem::Int(i)).is_some(), "{i}");
        }
        assert!(c.get(&PathElem::Int(n)).is_none());
        // removing near the front moves every later position down
        assert!(c.shift_remove(&PathElem::Int(3)).is_some());
        for i in [0, 2, 4, 65_536, n - 1] {
            let pos = c.position(&PathElem::Int(i)).expect("found");
            assert_eq!(
                c.get_index(pos).map(|(k, _)| k.clone()),
                Some(PathElem::Int(i))
            );
        }
        assert!(c.get(&PathElem::Int(3)).is_none());
    }
}
