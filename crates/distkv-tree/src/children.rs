//! The children of an entry: a vector in creation order, plus a hash index
//! once there are more than a few.
//!
//! Compared with an `IndexMap` this stores no hash per child, indexes with
//! `u32` positions, builds no index at all for small directories, and uses
//! one process-wide (randomly seeded) hasher instead of one per map.

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
    index: HashTable<u32>,
}

/// A position as stored in the index. A directory cannot come near
/// `u32::MAX` children: that many entries would need hundreds of GiB.
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
        self.index
            .find(hash(name), |&i| items[i as usize].0 == *name)
            .map(|&i| i as usize)
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
                if i == SMALL {
                    // Just outgrew the linear search: index everything.
                    self.index
                        .reserve(items.len(), |&j| hash(&items[j as usize].0));
                    for (j, (k, _)) in items.iter().enumerate() {
                        self.index
                            .insert_unique(hash(k), pos32(j), |&j| hash(&items[j as usize].0));
                    }
                } else if i > SMALL {
                    self.index
                        .insert_unique(hash(name), pos32(i), |&j| hash(&items[j as usize].0));
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
            self.index = HashTable::new();
        } else {
            let p = pos32(i);
            if let Ok(slot) = self.index.find_entry(hash(name), |&j| j == p) {
                slot.remove();
            }
            for j in self.index.iter_mut() {
                if *j > p {
                    *j -= 1;
                }
            }
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
            assert!(c.get(&PathElem::Bytes(Box::default())).is_some());
            assert!(c.get(&PathElem::Str("x".into())).is_none());
            assert_eq!(c.len(), fill + 1);
        }
    }
}
