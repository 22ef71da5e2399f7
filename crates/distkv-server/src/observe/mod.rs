//! What an operator sees of a running server: the service's counters and
//! latency histograms with the tree's and the replication's figures
//! (`render`), its health, and the HTTP endpoint that serves both (`server.http`): `GET /metrics` in the Prometheus text format and
//! `GET /health`.

mod health;
pub(crate) mod http;
mod metrics;

pub(crate) use health::health;
pub(crate) use http::serve as serve_http;
pub(crate) use metrics::render;
