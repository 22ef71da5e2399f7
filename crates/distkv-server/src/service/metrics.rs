//! The request counters and latencies the service keeps as it runs
//! (`/metrics` renders them, in `observe`).

use std::sync::atomic::{AtomicI64, Ordering::Relaxed};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

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

    /// Registers the request counts, their latencies and the error count.
    pub fn register(&self, reg: &mut Registry) {
        reg.register(
            "requests",
            "Client requests by action",
            self.requests.clone(),
        );
        reg.register(
            "request_duration_seconds",
            "Time to handle a client request (streams: to start it), by action",
            self.latency.clone(),
        );
        reg.register("errors", "Error replies to clients", self.errors.clone());
    }
}
