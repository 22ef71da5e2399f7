#!/usr/bin/env bash
# The whole benchmark suite, one command: the side-by-side comparison
# (benches/compare), distkv-rs's own figures (state files, cluster:
# propagation, catch-up) and the criterion micro-benchmarks. Every part
# writes to target/bench-report/; BENCHMARKS.md says what each measures.
#
#   benches/all.sh            full counts (about 20 minutes on 2 cores)
#   benches/all.sh --smoke    tiny counts, to check that everything runs
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=target/bench-report
mkdir -p "$OUT"
if [ "${1:-}" = --smoke ]; then
    benches/compare/run.sh --smoke --out "$OUT/compare" | tee "$OUT/compare.md"
    benches/persist.sh 10000 | tee "$OUT/persist.txt"
    benches/cluster.sh 10000 | tee "$OUT/cluster.txt"
    cargo bench -q --bench tree --bench codec -- --quick | tee "$OUT/criterion.txt"
else
    benches/compare/run.sh --out "$OUT/compare" | tee "$OUT/compare.md"
    benches/persist.sh 1000000 | tee "$OUT/persist.txt"
    benches/cluster.sh 1000000 | tee "$OUT/cluster.txt"
    cargo bench -q --bench tree --bench codec | tee "$OUT/criterion.txt"
fi
echo "reports in $OUT/"
