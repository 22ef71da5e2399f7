//! Request counters and latencies, kept as the server runs, and the
//! Prometheus exposition of them together with the server's state.

use std::sync::atomic::{AtomicI64, Ordering::Relaxed};

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::state::Shared;

type Labels = Vec<(&'static str, &'static str)>;

fn latency_histogram() -> Histogram {
    // 10 µs to about 2.6 s
    Histogram::new(exponential_buckets(0.000_01, 4.0, 10))
}

/// The counters a server keeps for its metrics.
#[derive(Debug)]
pub struct Metrics {
    requests: Family<Labels, Counter>,
    errors: Counter,
    latency: Family<Labels, Histogram, fn() -> Histogram>,
    connections: AtomicI64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            requests: Family::default(),
            errors: Counter::default(),
            latency: Family::new_with_constructor(latency_histogram),
            connections: AtomicI64::new(0),
        }
    }
}

impl Metrics {
    /// Counts a request of `action` that took `seconds` to dispatch.
    pub fn request(&self, action: &'static str, seconds: f64) {
        let labels = vec![("action", action)];
        self.requests.get_or_create(&labels).inc();
        self.latency.get_or_create(&labels).observe(seconds);
    }

    /// Counts an error reply.
    pub fn error(&self) {
        self.errors.inc();
    }

    /// Open client connections.
    pub fn connections(&self) -> i64 {
        self.connections.load(Relaxed)
    }

    /// A client connection opened (`true`) or closed.
    pub fn connection(&self, open: bool) {
        self.connections
            .fetch_add(if open { 1 } else { -1 }, Relaxed);
    }
}

/// The Prometheus (OpenMetrics) text of the server's metrics.
pub fn render(shared: &Shared) -> String {
    let m = &shared.metrics;
    let st = &shared.stats;
    let mut reg = Registry::with_prefix("distkv");
    reg.register("requests", "Client requests by action", m.requests.clone());
    reg.register(
        "request_duration_seconds",
        "Time to handle a client request (streams: to start it), by action",
        m.latency.clone(),
    );
    reg.register("errors", "Error replies to clients", m.errors.clone());
    let (entries, watchers, missing, nodes, own_tick) = {
        let core = shared.lock();
        let missing: u64 = core.tree.nodes().map(|(_, n)| n.missing().len()).sum();
        (
            core.tree.len() as i64,
            core.watchers.len() as i64,
            missing,
            core.tree.nodes().count() as i64,
            core.tree.own_tick(),
        )
    };
    let gauge = |reg: &mut Registry, name: &str, help: &str, v: i64| {
        reg.register(name, help, ConstGauge::new(v));
    };
    gauge(&mut reg, "entries", "Entries that hold data", entries);
    gauge(&mut reg, "watchers", "Registered watches", watchers);
    gauge(
        &mut reg,
        "connections",
        "Open client connections",
        m.connections.load(Relaxed),
    );
    gauge(&mut reg, "nodes", "Servers this one knows of", nodes);
    gauge(
        &mut reg,
        "missing_ticks",
        "Changes of other servers known to exist and not yet seen",
        i64::try_from(missing).unwrap_or(i64::MAX),
    );
    gauge(
        &mut reg,
        "ready",
        "1 once this server has data and serves",
        i64::from(own_tick.is_some()),
    );
    let counter = |reg: &mut Registry, name: &str, help: &str, v: u64| {
        reg.register(name, help, ConstCounter::new(v));
    };
    counter(
        &mut reg,
        "gossip_updates_received",
        "Changes of other servers received through the transport",
        st.gossip_updates.load(Relaxed),
    );
    counter(
        &mut reg,
        "updates_pulled",
        "Changes fetched directly from peers to fill gaps",
        st.pulled.load(Relaxed),
    );
    counter(
        &mut reg,
        "pull_rounds",
        "Rounds of pulls started to fill gaps",
        st.pull_rounds.load(Relaxed),
    );
    counter(
        &mut reg,
        "updates_broadcast",
        "Local changes handed to the transport",
        st.broadcast.load(Relaxed),
    );
    counter(
        &mut reg,
        "updates_not_broadcast",
        "Local changes not handed to the transport (queue full or rate limit)",
        st.not_broadcast.load(Relaxed),
    );
    counter(
        &mut reg,
        "gossip_rejected",
        "Messages from the transport refused (unsigned, bad signature, wrong key)",
        st.gossip_rejected.load(Relaxed),
    );
    let mut out = String::new();
    // writing into a String does not fail
    let _ = encode(&mut out, &reg);
    out
}
