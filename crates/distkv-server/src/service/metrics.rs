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

/// The counter and latency histogram of one action, taken from the
/// families once and then used without looking them up.
#[derive(Debug, Clone)]
pub struct ActionMetrics {
    requests: Counter,
    latency: Histogram,
}

impl ActionMetrics {
    /// Counts a request that took `seconds` to dispatch.
    pub fn request(&self, seconds: f64) {
        self.requests.inc();
        self.latency.observe(seconds);
    }
}

/// A connection's handles to the metrics of the actions it ran: a few
/// actions each, found by their (static) names without hashing or locks.
#[derive(Debug, Default)]
pub struct ActionMetricsCache(Vec<(&'static str, ActionMetrics)>);

impl ActionMetricsCache {
    /// The metrics of `action`, taken from `metrics` the first time.
    pub fn get(&mut self, metrics: &Metrics, action: &'static str) -> &ActionMetrics {
        let i = match self.0.iter().position(|(a, _)| *a == action) {
            Some(i) => i,
            None => {
                self.0.push((action, metrics.action(action)));
                self.0.len() - 1
            }
        };
        &self.0[i].1
    }
}

impl Metrics {
    /// The counter and histogram of `action` (created if new).
    pub fn action(&self, action: &'static str) -> ActionMetrics {
        let labels = vec![("action", action)];
        ActionMetrics {
            requests: self.requests.get_or_create(&labels).clone(),
            latency: self.latency.get_or_create(&labels).clone(),
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_handles_count_into_the_registered_families() {
        let m = Metrics::default();
        let mut cache = ActionMetricsCache::default();
        cache.get(&m, "set_value").request(0.001);
        cache.get(&m, "set_value").request(0.002);
        cache.get(&m, "get_value").request(0.001);
        m.action("set_value").request(0.003);
        assert_eq!(cache.0.len(), 2);
        let mut reg = Registry::default();
        m.register(&mut reg);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &reg).expect("encode");
        assert!(
            text.contains("requests_total{action=\"set_value\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("requests_total{action=\"get_value\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("request_duration_seconds_count{action=\"set_value\"} 3"),
            "{text}"
        );
    }
}
