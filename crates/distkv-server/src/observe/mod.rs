//! What an operator sees of a running server: counters and latency
//! histograms ([`Metrics`]), its health, and the HTTP endpoint that serves
//! both (`server.http`): `GET /metrics` in the Prometheus text format and
//! `GET /health`.

mod health;
pub(crate) mod http;
mod metrics;

pub(crate) use health::health;
pub(crate) use http::serve as serve_http;
pub(crate) use metrics::{Metrics, render};
