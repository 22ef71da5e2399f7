#!/usr/bin/env bash
# Builds distkv-rs and the comparison driver (the `profiling` profile: release with line tables) and runs the
# side-by-side benchmark: distkv-rs standalone, with a state log, three
# servers on Serf and three on one MQTT broker; etcd, Redis and the Python
# DistKV 0.7.1 when installed (apt-get install etcd-server redis-server;
# tests/interop/setup.sh).
# Results: target/compare/results.md and results.json.
#
#   benches/compare/run.sh [--smoke] [--keys N] [--ops N] [--only distkv-rs,etcd,…]
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build -q --profile profiling -p distkv-cli --bin distkv
CARGO_TARGET_DIR=target/compare-build cargo build -q --release --manifest-path benches/compare/Cargo.toml
exec target/compare-build/release/distkv-compare "$@"
