//! What a server knows about each node's ticks.

use crate::range::RangeSet;

/// The highest tick a server accepts (2^53: a server making a million
/// changes a second reaches it in 285 years). Higher ticks in another
/// server's messages are bogus: counting from them would overflow, or
/// leave a server missing more ticks than it could ever fetch.
pub const MAX_TICK: u64 = 1 << 53;

/// Tick bookkeeping for one node (data-model §5).
///
/// `known` holds every tick this server has seen in a chain (present or
/// superseded since) plus ticks others reported as superseded; `deleted`
/// the ticks of not yet purged deletions; `reported` the ticks other
/// servers said they miss.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeState {
    /// Highest tick seen for this node; `None` while unknown.
    pub tick: Option<u64>,
    /// Ticks seen (present in a chain, superseded, or reported known).
    pub known: RangeSet,
    /// Ticks of deletions not yet purged.
    pub deleted: RangeSet,
    /// Ticks other servers reported as missing.
    pub reported: RangeSet,
}

impl NodeState {
    /// Records that tick `t` was seen in a chain (ignored beyond
    /// [`MAX_TICK`]).
    pub fn seen(&mut self, t: u64) {
        if t > MAX_TICK {
            return;
        }
        self.raise_tick(t);
        self.known.insert(t);
        self.reported.remove(t);
    }

    /// Raises `tick` to at least `t` (ignored beyond [`MAX_TICK`]).
    pub fn raise_tick(&mut self, t: u64) {
        if t > MAX_TICK {
            return;
        }
        self.tick = Some(self.tick.map_or(t, |old| old.max(t)));
    }

    /// Ticks in `1..=tick` that were never seen (known or deleted).
    pub fn missing(&self) -> RangeSet {
        match self.tick {
            Some(t) if t > 0 => {
                let mut m = self.known.missing_in(1, t + 1);
                m.subtract(&self.deleted);
                m
            }
            _ => RangeSet::new(),
        }
    }
}
