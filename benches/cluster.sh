#!/usr/bin/env bash
# Starts three distkv servers on loopback, on Serf agents and then on one
# mosquitto broker, and measures each backend side by side with
# examples/cluster_bench.rs: the transport's own delivery time,
# propagation of single writes, sustained write rates, a burst of
# pipelined writes, and how soon a new server serves a large network.
# Everything is stopped by PID at the end.
#
#   benches/cluster.sh [ENTRIES…]        (default: 1000000; entries for the join test)
#   BACKENDS="mqtt" benches/cluster.sh   one backend only (default: "serf mqtt")
#   PROP_N=1000 benches/cluster.sh       more samples of the delivery times (default 200)
#   RATES="1000 5000" benches/cluster.sh  sustained rates, 5 s each (default: 1000 5000 20000)
#   BURST=100000                          pipelined writes of the burst (0: none)
#   JOIN_ONLY=1                           only the join test
#   NO_JOIN=1                             no join test
#   GOSSIP_KEY=1                          servers sign their gossip (a fresh server.gossip_key)
#   GOSSIP_KEY=encrypt                    … and encrypt it (server.gossip_encrypt)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q --profile profiling -p distkv-cli --bin distkv
cargo build -q --profile profiling --example cluster_bench
BIN=target/profiling/distkv
BENCH=target/profiling/examples/cluster_bench
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; [ -n "${KEEP:-}" ] && echo "logs in $WORK" || rm -rf "$WORK"; }
trap cleanup EXIT
stop_all() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; PIDS=(); }

base=$((21000 + RANDOM % 5000))
KEYOPTS=()
if [ -n "${GOSSIP_KEY:-}" ]; then
    KEYOPTS=(-C "server.gossip_key=$("$BIN" gossip-key)")
    [ "$GOSSIP_KEY" = encrypt ] && KEYOPTS+=(-C server.gossip_encrypt=True)
    if [ "$GOSSIP_KEY" = encrypt ]; then echo "gossip signed and encrypted"; else echo "gossip signed"; fi
fi
MOSQUITTO=$(command -v mosquitto || echo /usr/sbin/mosquitto)
agent() { # name index [join-index]
    local join=()
    [ $# -ge 3 ] && join=(-join=127.0.0.1:$((base + $3 * 10)))
    serf agent -node="$1" -bind=127.0.0.1:$((base + $2 * 10)) -rpc-addr=127.0.0.1:$((base + $2 * 10 + 1)) \
        -log-level=warn "${join[@]}" >"$WORK/serf-$1.log" 2>&1 &
    PIDS+=($!)
    sleep 0.5
}
broker() {
    printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 100000\n' \
        $((base + 50)) >"$WORK/mosquitto.conf"
    "$MOSQUITTO" -c "$WORK/mosquitto.conf" >"$WORK/mosquitto.log" 2>&1 &
    PIDS+=($!)
    sleep 0.5
}
server() { # name agent-index client-port [init]
    local init=() transport
    [ $# -ge 4 ] && init=(-i "$4")
    if [ "$backend" = mqtt ]; then
        transport=(-C server.backend=mqtt -C server.mqtt.host=127.0.0.1 -C server.mqtt.port=$((base + 50)))
    else
        transport=(-C server.serf.host=127.0.0.1 -C server.serf.port=$((base + $2 * 10 + 1)))
    fi
    "$BIN" ${VERBOSE:-} "${transport[@]}" ${KEYOPTS[@]+"${KEYOPTS[@]}"} \
        -C server.bind_default.host=127.0.0.1 -C server.bind_default.port="$3" -C server.ping.cycle=1 \
        server "${init[@]}" "$1" >"$WORK/$1.out" 2>"$WORK/$1.err" &
    PIDS+=($!)
    for _ in $(seq 12000); do grep -q Running. "$WORK/$1.out" 2>/dev/null && return 0; sleep 0.01; done
    echo "server $1 did not start"; cat "$WORK/$1.err"; exit 1
}

network() { # starts the transport and servers one (with -i), two, three
    if [ "$backend" = mqtt ]; then
        broker
    else
        agent a 0; agent b 1 0; agent c 2 0
    fi
    server one 0 $pa Root
    server two 1 $pb
    server three 2 $pc
}

pa=$((base + 100)); pb=$((base + 101)); pc=$((base + 102))
for backend in ${BACKENDS:-serf mqtt}; do
    echo "== backend: $backend"
    if [ -z "${JOIN_ONLY:-}" ]; then
    network
    if [ "$backend" = mqtt ]; then
        $BENCH mqtt $((base + 50)) "${PROP_N:-200}"
    else
        $BENCH serf $((base + 1)) $((base + 11)) "${PROP_N:-200}"
    fi
    $BENCH propagation $pa $pb "${PROP_N:-200}"
    for rate in ${RATES:-1000 5000 20000}; do
        $BENCH sustained "$rate" 5 $pa $pb $pc
    done
    [ "${BURST:-100000}" -gt 0 ] && $BENCH burst "${BURST:-100000}" $pa $pb $pc
    [ "$backend" = serf ] && echo "serf agents dropped events: $(cat "$WORK"/serf-*.log | grep -c 'Dropping event' || true)"
    stop_all
    fi

    # a new server joins a fresh network of M entries
    [ -n "${NO_JOIN:-}" ] && continue
    for m in "${@:-1000000}"; do
        network
        [ "$backend" = serf ] && agent "j$m" 3 0
        $BENCH fill $pa "$m"
        $BENCH settle $pa $pb $pc
        start=$(date +%s.%N)
        server "join$m" 3 $((base + 103))
        end=$(date +%s.%N)
        echo "a new server serves a network of $m entries after $(echo "$end - $start" | bc) s"
        [ -n "${VERBOSE:-}" ] && grep -E "copying|copied|running" "$WORK/join$m.err" | cut -c1-140
        stop_all
        sleep 0.5
    done
done
