#!/bin/bash
# One measured run outside the harness, for quick A/B checks and profiling (bench/rpc.ts is the real experiment).
# usage: one-run.sh DIR PORT TXNS SERVER-CMD...
#   runs SERVER-CMD --port PORT --host 127.0.0.1 in DIR pinned to CPU 0, and rpc-load pinned to CPU 1 (256 conns,
#   64 B, TXNS transactions per connection, 1 s warm-up + 5 s); prints rpc-load's JSON, CPU 0's busy and idle
#   ticks (USER_HZ) at the start and end of the measured 5 s, and the server's exit counters.
#   PERF="perf record -C 0 -g -o FILE -- sleep 4" profiles CPU 0 during the measured window.
dir=$1; port=$2; txns=$3; shift 3
cd "$dir" || exit 2
out=$(mktemp); load=$(mktemp)
taskset -c 0 "$@" --port "$port" --host 127.0.0.1 > "$out" 2>&1 &
spid=$!
for _ in $(seq 50); do grep -q listening "$out" && break; sleep 0.1; done
taskset -c 1 bench/c/bin/rpc-load --port "$port" --conns 256 --txns "$txns" --size 64 --duration 5 --warmup 1 --src-ips 16 > "$load" &
lpid=$!
sleep 1
s0=$(awk '/^cpu0 /{print $2+$3+$4+$7+$8, $5+$6}' /proc/stat)
${PERF:+$PERF}
sleep 5
s1=$(awk '/^cpu0 /{print $2+$3+$4+$7+$8, $5+$6}' /proc/stat)
wait $lpid
kill -TERM $spid; wait $spid
cat "$load"
echo "cpu0 busy ticks: $s0 -> $s1"
tail -3 "$out"
rm -f "$out" "$load"
