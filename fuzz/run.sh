#!/usr/bin/env bash
# Builds and runs every fuzz target for SECONDS each (default 60), printing
# the number of executions per target. Exits non-zero when a target finds
# a crash, a panic, an out-of-memory or a timeout (the input is saved under
# fuzz/artifacts/<target>/). Skips, saying so, when the nightly toolchain
# or cargo-fuzz is missing.
#
# FUZZ_SANITIZER picks cargo fuzz's sanitizer (default: address; "none"
# builds faster and runs about twice as fast, for short CI runs).
#
# Seeds: fuzz/seeds/<target>/ (committed) are read, as are the libFuzzer
# dictionaries fuzz/dicts/<target>.dict; new corpus entries go to
# fuzz/corpus/<target>/ (not committed).
set -uo pipefail
cd "$(dirname "$0")"

SECONDS_PER_TARGET="${1:-60}"
case "$SECONDS_PER_TARGET" in
    '' | *[!0-9]*) echo "usage: fuzz/run.sh [SECONDS]" >&2; exit 2 ;;
esac

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "fuzz: SKIPPED - no nightly Rust toolchain (cargo +nightly) available"
    exit 0
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: SKIPPED - cargo-fuzz is not installed (cargo install cargo-fuzz --locked)"
    exit 0
fi

TARGETS=$(cargo +nightly fuzz list) || { echo "fuzz: cannot list the targets" >&2; exit 1; }
SANITIZER="${FUZZ_SANITIZER:-address}"
if ! cargo +nightly fuzz build --sanitizer "$SANITIZER"; then
    echo "fuzz: the targets do not build" >&2
    exit 1
fi
# Run the built binaries directly: `cargo fuzz run` would check the build
# again for every target.
HOST=$(rustc +nightly -vV | sed -n 's/^host: //p')
BIN="target/$HOST/release"

failed=()
summary=()
for t in $TARGETS; do
    mkdir -p "corpus/$t" "artifacts/$t"
    seeds=()
    [ -d "seeds/$t" ] && seeds=("seeds/$t")
    dict=()
    [ -f "dicts/$t.dict" ] && dict=("-dict=dicts/$t.dict")
    log="artifacts/$t/last-run.log"
    echo "fuzz: running $t for ${SECONDS_PER_TARGET}s"
    "$BIN/$t" "corpus/$t" "${seeds[@]}" \
        -max_total_time="$SECONDS_PER_TARGET" -print_final_stats=1 \
        -rss_limit_mb=2048 -timeout=10 -max_len=4096 "${dict[@]}" \
        -artifact_prefix="artifacts/$t/" >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    if [ "$rc" -ne 0 ]; then
        failed+=("$t")
        summary+=("$t: FAILED (exit $rc) after ${execs:-?} executions")
        echo "fuzz: $t FAILED; from its log (fuzz/$log):"
        grep -E -A3 "panicked at|ERROR: libFuzzer|Test unit written" "$log" | head -n 30
        echo "fuzz: replay with: cargo +nightly fuzz run $t fuzz/artifacts/$t/<file>"
    else
        summary+=("$t: ${execs:-?} executions in ${SECONDS_PER_TARGET}s")
    fi
done

echo "fuzz: summary"
printf '  %s\n' "${summary[@]}"
if [ "${#failed[@]}" -ne 0 ]; then
    echo "fuzz: ${#failed[@]} target(s) failed: ${failed[*]}"
    exit 1
fi
echo "fuzz: all targets passed"
