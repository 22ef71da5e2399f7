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
        server --standalone "$@" one >"$WORK/out-$PORT" 2>"$WORK/err-$PORT" &
    PID=$!
    for _ in $(seq 60000); do grep -q Running. "$WORK/out-$PORT" 2>/dev/null && return 0; sleep 0.005; done
    echo "server did not start"; cat "$WORK/err-$PORT"; exit 1
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

# Write rates per `server.log_sync`. One server per setting runs for the
# whole measurement, and the settings take turns, ROUNDS times over:
# every setting sees the same moments of the machine, so a slow minute
# does not land on one setting alone. Each setting's median is reported,
# with its ratio to the server without a log.
ROUNDS=${ROUNDS:-3}
SYNCS=(none never 1 always)
declare -A SPORT SPID
for sync in "${SYNCS[@]}"; do
    CFG=()
    args=(-i Root)
    if [ "$sync" != none ]; then CFG=(-C "server.log_sync=$sync"); args+=(-s "$WORK/log-$sync.state"); fi
    PORT=$((21000 + RANDOM % 5000))
    start "${args[@]}"
    SPORT[$sync]=$PORT
    SPID[$sync]=$PID
done
PID=
stop_all() { for p in "${SPID[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap 'stop_all; rm -rf "$WORK"' EXIT
declare -A RATES
for round in $(seq "$ROUNDS"); do
    for sync in "${SYNCS[@]}"; do
        for conns in 1 16; do
            r=$($LOAD --port "${SPORT[$sync]}" --conns $conns --ops 200000 --keys 100000 --sets 100 --secs 120)
            echo "round $round log_sync=$sync conns=$conns: $r"
            rate=$(sed -n 's/.*ops\/s=\([0-9]*\).*/\1/p' <<<"$r")
            RATES[$sync,$conns]+="$rate "
        done
    done
done
median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
for conns in 1 16; do
    base=$(median <<<"${RATES[none,$conns]}")
    for sync in "${SYNCS[@]}"; do
        m=$(median <<<"${RATES[$sync,$conns]}")
        echo "median of $ROUNDS: log_sync=$sync conns=$conns: $m sets/s ($(echo "scale=2; $m / $base" | bc)× no log; runs: ${RATES[$sync,$conns]% })"
    done
done
