//! The Prometheus exposition of the service's request metrics together
//! with the server's state.

use std::sync::atomic::Ordering::Relaxed;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use crate::state::{Shared, Stats, Store};

/// The Prometheus (OpenMetrics) text of the server's metrics.
pub fn render(shared: &Shared) -> String {
    let mut reg = Registry::with_prefix("distkv");
    shared.service.metrics.register(&mut reg);
    register_tree(
        &mut reg,
        &shared.store,
        shared.service.metrics.connections(),
    );
    register_replication(&mut reg, &shared.store.stats);
    let mut out = String::new();
    // writing into a String does not fail
    let _ = encode(&mut out, &reg);
    out
}

fn gauge(reg: &mut Registry, name: &str, help: &str, v: i64) {
    reg.register(name, help, ConstGauge::new(v));
}

fn counter(reg: &mut Registry, name: &str, help: &str, v: u64) {
    reg.register(name, help, ConstCounter::new(v));
}

/// The gauges of the tree, its watchers and the open connections.
fn register_tree(reg: &mut Registry, store: &Store, connections: i64) {
    let (entries, watchers, missing, nodes, own_tick) = {
        let core = store.lock();
        let missing: u64 = core.tree.nodes().map(|(_, n)| n.missing().len()).sum();
        (
            core.tree.len() as i64,
            core.watchers.len() as i64,
            missing,
            core.tree.nodes().count() as i64,
            core.tree.own_tick(),
        )
    };
    gauge(reg, "entries", "Entries that hold data", entries);
    gauge(reg, "watchers", "Registered watches", watchers);
    gauge(reg, "connections", "Open client connections", connections);
    gauge(reg, "nodes", "Servers this one knows of", nodes);
    gauge(
        reg,
        "missing_ticks",
        "Changes of other servers known to exist and not yet seen",
        i64::try_from(missing).unwrap_or(i64::MAX),
    );
    gauge(
        reg,
        "ready",
        "1 once this server has data and serves",
        i64::from(own_tick.is_some()),
    );
}

/// The counters of what came from and went to the peers.
fn register_replication(reg: &mut Registry, st: &Stats) {
    counter(
        reg,
        "gossip_updates_received",
        "Changes of other servers received through the transport",
        st.gossip_updates.load(Relaxed),
    );
    counter(
        reg,
        "updates_pulled",
        "Changes fetched directly from peers to fill gaps",
        st.pulled.load(Relaxed),
    );
    counter(
        reg,
        "pull_rounds",
        "Rounds of pulls started to fill gaps",
        st.pull_rounds.load(Relaxed),
    );
    counter(
        reg,
        "updates_broadcast",
        "Local changes handed to the transport",
        st.broadcast.load(Relaxed),
    );
    counter(
        reg,
        "updates_not_broadcast",
        "Local changes not handed to the transport (queue full or rate limit)",
        st.not_broadcast.load(Relaxed),
    );
    counter(
        reg,
        "gossip_rejected",
        "Messages from the transport refused (unsigned, bad signature, wrong key)",
        st.gossip_rejected.load(Relaxed),
    );
}
