//! What the replication core works on: a tree with its tick bookkeeping
//! and a tock clock, as a server holds it (with its state log and
//! watchers) or as the simulation holds it.

use distkv_proto::gossip::NodeTicks;
use distkv_tree::{ApplyOutcome, RangeSet, Resend, TockClock, Tree, UpdateEvent};

/// The replicated state, seen by the core.
///
/// Implementors give access to their tree and clock and say what else
/// happens when a change from another server is applied or a deletion is
/// reported (logging, telling watchers); everything else has a default in
/// terms of the tree.
pub(crate) trait Replica {
    /// The tree.
    fn tree(&self) -> &Tree;

    /// The tree to change and the clock.
    fn parts(&mut self) -> (&mut Tree, &TockClock);

    /// Applies a change from another server.
    fn apply(&mut self, ev: &UpdateEvent) -> ApplyOutcome;

    /// Another server says these ticks of `node` were deletions.
    fn report_deleted(&mut self, node: &str, ticks: &RangeSet);

    /// Another server retired `node`: drop it here too, unless an entry's
    /// last change is still the node's.
    fn drop_node(&mut self, node: &str) {
        if let Err(e) = self.parts().0.drop_node(node) {
            tracing::debug!(error = %e, "a node drop from another server is not applied");
        }
    }

    /// The nodes retired here (sent along with the node ticks).
    fn dropped(&self) -> Vec<String> {
        self.tree().dropped().map(|n| n.to_string()).collect()
    }

    /// This server's own tick; `None` while it has no data.
    fn own_tick(&self) -> Option<u64> {
        self.tree().own_tick()
    }

    /// Whether this server already holds the change (or a newer one).
    fn holds(&self, ev: &UpdateEvent) -> bool {
        self.tree()
            .get(&ev.path)
            .and_then(|e| e.chain())
            .is_some_and(|c| c.same_head(&ev.chain) || c.is_newer_than(&ev.chain))
    }

    /// Raises the clock to a tock seen elsewhere.
    fn seen_tock(&mut self, tock: u64) {
        self.parts().1.seen(tock);
    }

    /// A fresh tock.
    fn next_tock(&mut self) -> u64 {
        self.parts().1.next()
    }

    /// Raises a node's known tick.
    fn raise_tick(&mut self, node: &str, tick: u64) {
        self.parts().0.raise_tick(node, tick);
    }

    /// Another server misses these ticks of `node`.
    fn report_missing(&mut self, node: &str, ticks: &RangeSet) {
        self.parts().0.report_missing(node, ticks);
    }

    /// Another server says these ticks of `node` are superseded.
    fn report_known(&mut self, node: &str, ticks: &RangeSet) {
        self.parts().0.report_known(node, ticks);
    }

    /// The ticks this server misses, per node.
    fn missing(&self) -> NodeTicks {
        self.tree()
            .nodes()
            .map(|(n, st)| (n.to_string(), st.missing()))
            .filter(|(_, r)| !r.is_empty())
            .collect()
    }

    /// Per node, the highest tick known.
    fn node_ticks(&self) -> Vec<(String, u64)> {
        self.tree()
            .nodes()
            .filter_map(|(n, st)| Some((n.to_string(), st.tick?)))
            .collect()
    }

    /// Per node, the tick up to which everything has been seen.
    fn watermarks(&self) -> Vec<(String, u64)> {
        self.tree()
            .watermarks()
            .into_iter()
            .map(|(n, w)| (n.to_string(), w))
            .collect()
    }

    /// What to send in answer to the ticks others reported missing.
    fn take_resend(&mut self) -> Resend {
        self.parts().0.take_resend()
    }

    /// The deleter group (`None actor del` = `{nodes: [...]}`).
    fn deleters(&self) -> Vec<String> {
        let path = distkv_proto::wire::deleter_path();
        distkv_proto::wire::deleter_nodes(self.tree().get(&path).and_then(|e| e.data()))
    }

    /// Purges the tombstones below `limit(node)`; returns how many.
    fn purge(&mut self, limit: &dyn Fn(&str) -> u64) -> usize {
        self.parts().0.purge_tombstones(limit)
    }
}
