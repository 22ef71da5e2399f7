//! Sets of ticks as sorted, disjoint half-open ranges.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Bound;

/// A set of ticks, stored as sorted, disjoint, non-adjacent half-open
/// ranges `[start, end)`.
///
/// The ranges live in an ordered map from start to end, so adding or
/// removing ticks costs O(log n) in the number of ranges wherever they
/// fall: ticks that arrive far out of order (a state file written in tree
/// order, a peer repairing gaps) do not shift the rest of the set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RangeSet {
    /// start → end of each range.
    ranges: BTreeMap<u64, u64>,
}

impl RangeSet {
    /// The empty set.
    pub fn new() -> RangeSet {
        RangeSet::default()
    }

    /// The ranges as `(start, end)`, sorted.
    pub fn ranges(&self) -> impl DoubleEndedIterator<Item = (u64, u64)> + '_ {
        self.ranges.iter().map(|(&a, &b)| (a, b))
    }

    /// The first range.
    pub fn first(&self) -> Option<(u64, u64)> {
        self.ranges.first_key_value().map(|(&a, &b)| (a, b))
    }

    /// The last range.
    pub fn last(&self) -> Option<(u64, u64)> {
        self.ranges.last_key_value().map(|(&a, &b)| (a, b))
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Number of ticks in the set.
    pub fn len(&self) -> u64 {
        self.ranges
            .iter()
            .fold(0u64, |n, (a, b)| n.saturating_add(b - a))
    }

    /// Whether `t` is in the set.
    pub fn contains(&self, t: u64) -> bool {
        self.ranges
            .range(..=t)
            .next_back()
            .is_some_and(|(_, &end)| end > t)
    }

    /// Adds one tick.
    pub fn insert(&mut self, t: u64) {
        self.insert_range(t, t.saturating_add(1));
    }

    /// Adds the half-open range `[a, b)` (ignored if empty).
    pub fn insert_range(&mut self, a: u64, b: u64) {
        if a >= b {
            return;
        }
        // The common case, one search: the range at or before `a` reaches
        // it, and grows in place.
        let grown = match self.ranges.range_mut(..=a).next_back() {
            Some((&s, e)) if *e >= a => {
                if *e >= b {
                    return;
                }
                *e = b;
                Some(s)
            }
            _ => None,
        };
        let start = match grown {
            Some(s) => s,
            None => {
                self.ranges.insert(a, b);
                a
            }
        };
        // later ranges that the grown one now reaches merge into it
        let mut end = b;
        while let Some((&s, &e)) = self
            .ranges
            .range((Bound::Excluded(start), Bound::Included(end)))
            .next()
        {
            self.ranges.remove(&s);
            end = end.max(e);
        }
        if end > b {
            self.ranges.insert(start, end);
        }
    }

    /// Removes the half-open range `[a, b)`.
    pub fn remove_range(&mut self, a: u64, b: u64) {
        if a >= b {
            return;
        }
        // a range starting before `a` keeps its part before `a`, and its
        // part after `b` if it reaches past it
        if let Some((&s, &e)) = self.ranges.range(..a).next_back()
            && e > a
        {
            self.ranges.insert(s, a);
            if e > b {
                self.ranges.insert(b, e);
            }
        }
        while let Some((&s, &e)) = self.ranges.range(a..b).next() {
            self.ranges.remove(&s);
            if e > b {
                self.ranges.insert(b, e);
            }
        }
    }

    /// Removes one tick.
    pub fn remove(&mut self, t: u64) {
        self.remove_range(t, t.saturating_add(1));
    }

    /// Adds every tick of `other`.
    pub fn union_with(&mut self, other: &RangeSet) {
        for (a, b) in other.ranges() {
            self.insert_range(a, b);
        }
    }

    /// Removes every tick of `other`.
    pub fn subtract(&mut self, other: &RangeSet) {
        for (a, b) in other.ranges() {
            self.remove_range(a, b);
        }
    }

    /// The ticks in both sets.
    pub fn intersection(&self, other: &RangeSet) -> RangeSet {
        let mut out = RangeSet::new();
        let (mut mine, mut theirs) = (self.ranges().peekable(), other.ranges().peekable());
        while let (Some(&(a1, b1)), Some(&(a2, b2))) = (mine.peek(), theirs.peek()) {
            let (a, b) = (a1.max(a2), b1.min(b2));
            if a < b {
                // disjoint and sorted already: no merging needed
                out.ranges.insert(a, b);
            }
            if b1 < b2 {
                mine.next();
            } else {
                theirs.next();
            }
        }
        out
    }

    /// The ticks of `[a, b)` that are not in the set.
    pub fn missing_in(&self, a: u64, b: u64) -> RangeSet {
        let mut out = RangeSet::new();
        out.insert_range(a, b);
        out.subtract(self);
        out
    }

    /// Iterates over all ticks (beware of huge sets).
    pub fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        self.ranges().flat_map(|(a, b)| a..b)
    }
}

impl FromIterator<u64> for RangeSet {
    fn from_iter<I: IntoIterator<Item = u64>>(iter: I) -> RangeSet {
        let mut s = RangeSet::new();
        for t in iter {
            s.insert(t);
        }
        s
    }
}

impl fmt::Display for RangeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, (a, b)) in self.ranges().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            if b - a == 1 {
                write!(f, "{a}")?;
            } else {
                write!(f, "[{a}, {b}]")?;
            }
        }
        f.write_str("]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn invariant(s: &RangeSet) {
        let all: Vec<_> = s.ranges().collect();
        for w in all.windows(2) {
            assert!(
                w[0].1 < w[1].0,
                "ranges must be disjoint and non-adjacent: {s:?}"
            );
        }
        for (a, b) in s.ranges() {
            assert!(a < b);
        }
    }

    #[test]
    fn basic() {
        let mut s = RangeSet::new();
        s.insert(1);
        s.insert(2);
        s.insert(5);
        assert_eq!(s.ranges().collect::<Vec<_>>(), [(1, 3), (5, 6)]);
        s.insert(3);
        s.insert(4);
        assert_eq!(s.ranges().collect::<Vec<_>>(), [(1, 6)]);
        s.remove(3);
        assert_eq!(s.ranges().collect::<Vec<_>>(), [(1, 3), (4, 6)]);
        assert_eq!(
            s.missing_in(1, 8).ranges().collect::<Vec<_>>(),
            [(3, 4), (6, 8)]
        );
        assert_eq!(s.to_string(), "[[1, 3], [4, 6]]");
    }

    #[test]
    fn ticks_in_strided_order_end_as_one_range() {
        // the order of a state file written in tree order
        let mut s = RangeSet::new();
        for col in 0..100 {
            for row in 0..100 {
                s.insert(row * 100 + col);
            }
            assert_eq!(s.ranges().count(), if col == 99 { 1 } else { 100 });
            invariant(&s);
        }
        assert_eq!(s.ranges().collect::<Vec<_>>(), [(0, 10_000)]);
    }

    proptest! {
        #[test]
        fn matches_btreeset(ops in proptest::collection::vec((any::<bool>(), 0u64..60, 0u64..8), 0..80)) {
            let mut s = RangeSet::new();
            let mut model = BTreeSet::new();
            for (add, a, len) in ops {
                if add {
                    s.insert_range(a, a + len);
                    model.extend(a..a + len);
                } else {
                    s.remove_range(a, a + len);
                    for t in a..a + len { model.remove(&t); }
                }
                invariant(&s);
            }
            prop_assert_eq!(s.iter().collect::<Vec<_>>(), model.iter().copied().collect::<Vec<_>>());
            for t in 0..70 {
                prop_assert_eq!(s.contains(t), model.contains(&t));
            }
            prop_assert_eq!(s.len(), model.len() as u64);
            let other: RangeSet = (0..70).filter(|t| t % 3 != 0).collect();
            let both: Vec<u64> = s.intersection(&other).iter().collect();
            let want: Vec<u64> = model.iter().copied().filter(|t| t % 3 != 0).collect();
            prop_assert_eq!(both, want);
        }
    }
}
