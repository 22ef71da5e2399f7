#!/usr/bin/env bash
# Measures state files: time to dump and to load N small entries, file
# size per entry, and write throughput with each `server.log_sync`
# setting (no log, never, 1 s, always). Servers run on loopback and are
# stopped by PID. Server RSS is printed in MiB and per entry (the memory
# target: at most 100 bytes per small entry at 1,000,000 entries).
#
#   benches/persist.sh [ENTRIES]      (default: 1000000)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000000}
cargo build -q --profile profiling -p distkv-cli --bin distkv
cargo build -q --profile profiling --example loadgen
BIN=target/profiling/distkv
LOAD=target/profiling/examples/loadgen
WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/distkv-persist-bench.XXXXXX")
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
PORT=$((21000 + RANDOM % 5000))

start() { # extra server args…
    "$BIN" -C server.bind_default.host=127.0.0.1 -C server.bind_default.port=$PORT "${CFG[@]}" \
        server --standalone "$@" one >"$WORK/out" 2>"$WORK/err" &
    PID=$!
    for _ in $(seq 60000); do grep -q Running. "$WORK/out" 2>/dev/null && return 0; sleep 0.005; done
    echo "server did not start"; cat "$WORK/err"; exit 1
}
stop() { kill "$PID"; wait "$PID" 2>/dev/null || true; PID=; }
now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc; }
rss() { local k; k=$(ps -o rss= -p "$PID"); echo "$((k / 1024)) MiB ($((k * 1024 / N)) bytes per entry)"; }

CFG=()
start -i Root
$LOAD --port $PORT --conns 4 --ops "$N" --keys "$N" --sets 100 --secs 600 >/dev/null
t0=$(now); "$BIN" client -p $PORT log save "$WORK/dump.state"; t1=$(now)
size=$(stat -c %s "$WORK/dump.state")
echo "dump of $N entries: $(secs "$t0" "$t1") s, $size bytes ($((size / N)) bytes per entry), server RSS $(rss)"
stop

t0=$(now); start -l "$WORK/dump.state"; t1=$(now)
echo "start with -l of $N entries until Running.: $(secs "$t0" "$t1") s, server RSS $(rss)"
n=$("$BIN" client -p $PORT data list load 7 | wc -l)
[ "$n" -eq $((N / 1000)) ] || { echo "loaded data is wrong: $n entries under load 7"; exit 1; }
stop

for sync in none never 1 always; do
    CFG=()
    args=(-i Root)
    if [ "$sync" != none ]; then CFG=(-C "server.log_sync=$sync"); args+=(-s "$WORK/log-$sync.state"); fi
    start "${args[@]}"
    for conns in 1 16; do
        ops=200000
        r=$($LOAD --port $PORT --conns $conns --ops "$ops" --keys 100000 --sets 100 --secs 120)
        echo "log_sync=$sync conns=$conns: $r"
    done
    stop
done
