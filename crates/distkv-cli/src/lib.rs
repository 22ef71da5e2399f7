//! The `distkv` command line front end.
//!
//! Top of the distkv-rs stack: argument parsing, configuration files and
//! output formatting. It owns no protocol or storage logic; the binary
//! (`src/main.rs`) calls `distkv-server` and `distkv-client`.

pub mod config;
pub mod json;
pub mod literal;
pub mod render;
pub mod repr;
pub mod yaml;
