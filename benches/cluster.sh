#!/usr/bin/env bash
# Starts Serf agents and distkv servers on loopback and measures
# propagation delay, catch-up time and sustained replication with
# examples/cluster_bench.rs. Everything is stopped by PID at the end.
#
#   benches/cluster.sh [ENTRIES…]     (default: 100000 1000000)
#   PROP_N=1000 benches/cluster.sh    more samples of the delivery times (default 200)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q --release -p distkv-cli --bin distkv
cargo build -q --release --example cluster_bench
BIN=target/release/distkv
BENCH=target/release/examples/cluster_bench
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; [ -n "${KEEP:-}" ] && echo "logs in $WORK" || rm -rf "$WORK"; }
trap cleanup EXIT

base=$((21000 + RANDOM % 5000))
agent() { # name index [join-index]
    local join=()
    [ $# -ge 3 ] && join=(-join=127.0.0.1:$((base + $3 * 10)))
    serf agent -node="$1" -bind=127.0.0.1:$((base + $2 * 10)) -rpc-addr=127.0.0.1:$((base + $2 * 10 + 1)) \
        -log-level=warn "${join[@]}" >"$WORK/serf-$1.log" 2>&1 &
    PIDS+=($!)
    sleep 0.5
}
server() { # name agent-index client-port [init]
    local init=()
    [ $# -ge 4 ] && init=(-i "$4")
    "$BIN" ${VERBOSE:-} -C server.serf.host=127.0.0.1 -C server.serf.port=$((base + $2 * 10 + 1)) \
        -C server.bind_default.host=127.0.0.1 -C server.bind_default.port="$3" -C server.ping.cycle=1 \
        server "${init[@]}" "$1" >"$WORK/$1.out" 2>"$WORK/$1.err" &
    PIDS+=($!)
    local pid=$!
    for _ in $(seq 12000); do grep -q Running. "$WORK/$1.out" 2>/dev/null && return 0; sleep 0.01; done
    echo "server $1 did not start"; cat "$WORK/$1.err"; exit 1
}

agent a 0; agent b 1 0; agent c 2 0
pa=$((base + 100)); pb=$((base + 101)); pc=$((base + 102))
server one 0 $pa Root
server two 1 $pb
server three 2 $pc
# one event at a time: each takes a gossip round or so
$BENCH serf $((base + 1)) $((base + 11)) "${PROP_N:-200}"
$BENCH propagation $pa $pb "${PROP_N:-200}"
$BENCH sustained 500 10 $pa $pb $pc
$BENCH sustained 2000 10 $pa $pb $pc
echo "serf agents dropped events: $(cat "$WORK"/serf-*.log | grep -c 'Dropping event' || true)"

for n in "${@:-100000 1000000}"; do
    for m in $n; do
        agent "j$m" 3 0 2>/dev/null || true
        $BENCH fill $pa "$m"
        $BENCH settle $pa $pb $pc
        start=$(date +%s.%N)
        server "join$m" 3 $((base + 103))
        end=$(date +%s.%N)
        echo "a new server caught up with ~$m entries in $(echo "$end - $start" | bc) s"
        [ -n "${VERBOSE:-}" ] && grep -E "copying|copied|running" "$WORK/join$m.err" | cut -c1-140
        kill "${PIDS[-1]}"; unset 'PIDS[-1]'
        kill "${PIDS[-1]}"; unset 'PIDS[-1]'
        sleep 0.5
    done
done
