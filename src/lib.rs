//! The distkv-rs workspace root.
//!
//! This package only carries the end-to-end tests (`tests/`), the examples
//! (`examples/`) and the benchmarks (`benches/`) that span several crates.
//! The code lives in `crates/`; see `ARCHITECTURE.md`.
