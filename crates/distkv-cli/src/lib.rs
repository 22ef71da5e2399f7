//! The `distkv` and `distkv-server` command line front ends.
//!
//! Top of the distkv-rs stack: argument parsing, configuration files and
//! output formatting. The configuration layers (`config`), the Python
//! literal parser and repr, JSON and YAML are library modules; `app` is
//! what the two binaries run (each `main` is one call into it), which
//! hands over to `distkv-server` and `distkv-client`.

#[doc(hidden)]
pub mod app;
pub mod config;
pub use distkv_proto::json;
pub mod literal;
pub mod render;
pub mod repr;
pub mod yaml;
