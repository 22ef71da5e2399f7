//! Sets of ticks as sorted, disjoint half-open ranges.

use std::fmt;

/// A set of ticks, stored as sorted, disjoint, non-adjacent half-open
/// ranges `[start, end)`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RangeSet {
    ranges: Vec<(u64, u64)>,
}

impl RangeSet {
    /// The empty set.
    pub fn new() -> RangeSet {
        RangeSet::default()
    }

    /// The ranges, sorted.
    pub fn ranges(&self) -> &[(u64, u64)] {
        &self.ranges
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Number of ticks in the set.
    pub fn len(&self) -> u64 {
        self.ranges.iter().map(|(a, b)| b - a).sum()
    }

    /// Whether `t` is in the set.
    pub fn contains(&self, t: u64) -> bool {
        match self.ranges.binary_search_by(|&(a, _)| a.cmp(&t)) {
            Ok(_) => true,
            Err(0) => false,
            Err(i) => self.ranges[i - 1].1 > t,
        }
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
        // Fast path: appending at the end (ticks mostly arrive in order).
        if let Some(last) = self.ranges.last_mut() {
            if a >= last.0 && a <= last.1 {
                if b > last.1 {
                    last.1 = b;
                }
                return;
            }
            if a > last.1 {
                self.ranges.push((a, b));
                return;
            }
        } else {
            self.ranges.push((a, b));
            return;
        }
        // First range whose end reaches a, last range whose start is <= b.
        let lo = self.ranges.partition_point(|&(_, e)| e < a);
        let hi = self.ranges.partition_point(|&(s, _)| s <= b);
        if lo >= hi {
            self.ranges.insert(lo, (a, b));
            return;
        }
        let start = a.min(self.ranges[lo].0);
        let end = b.max(self.ranges[hi - 1].1);
        self.ranges.splice(lo..hi, [(start, end)]);
    }

    /// Removes the half-open range `[a, b)`.
    pub fn remove_range(&mut self, a: u64, b: u64) {
        if a >= b {
            return;
        }
        let mut out = Vec::with_capacity(self.ranges.len() + 1);
        for &(s, e) in &self.ranges {
            if e <= a || s >= b {
                out.push((s, e));
                continue;
            }
            if s < a {
                out.push((s, a));
            }
            if e > b {
                out.push((b, e));
            }
        }
        self.ranges = out;
    }

    /// Removes one tick.
    pub fn remove(&mut self, t: u64) {
        self.remove_range(t, t.saturating_add(1));
    }

    /// Adds every tick of `other`.
    pub fn union_with(&mut self, other: &RangeSet) {
        for &(a, b) in &other.ranges {
            self.insert_range(a, b);
        }
    }

    /// Removes every tick of `other`.
    pub fn subtract(&mut self, other: &RangeSet) {
        for &(a, b) in &other.ranges {
            self.remove_range(a, b);
        }
    }

    /// The ticks in both sets.
    pub fn intersection(&self, other: &RangeSet) -> RangeSet {
        let mut out = RangeSet::new();
        let (mut i, mut j) = (0, 0);
        while i < self.ranges.len() && j < other.ranges.len() {
            let (a1, b1) = self.ranges[i];
            let (a2, b2) = other.ranges[j];
            let (a, b) = (a1.max(a2), b1.min(b2));
            if a < b {
                out.ranges.push((a, b));
            }
            if b1 < b2 {
                i += 1;
            } else {
                j += 1;
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
        self.ranges.iter().flat_map(|&(a, b)| a..b)
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
        for (i, (a, b)) in self.ranges.iter().enumerate() {
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
        for w in s.ranges().windows(2) {
            assert!(
                w[0].1 < w[1].0,
                "ranges must be disjoint and non-adjacent: {s:?}"
            );
        }
        for &(a, b) in s.ranges() {
            assert!(a < b);
        }
    }

    #[test]
    fn basic() {
        let mut s = RangeSet::new();
        s.insert(1);
        s.insert(2);
        s.insert(5);
        assert_eq!(s.ranges(), &[(1, 3), (5, 6)]);
        s.insert(3);
        s.insert(4);
        assert_eq!(s.ranges(), &[(1, 6)]);
        s.remove(3);
        assert_eq!(s.ranges(), &[(1, 3), (4, 6)]);
        assert_eq!(s.missing_in(1, 8).ranges(), &[(3, 4), (6, 8)]);
        assert_eq!(s.to_string(), "[[1, 3], [4, 6]]");
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
