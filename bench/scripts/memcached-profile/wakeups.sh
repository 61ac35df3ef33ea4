#!/usr/bin/env bash
# How often the load generator's core sleeps and is woken, per operation, under memcached and megapipe-memcached (one
# worker): the server on CPU 0, bench/c/mc-load on CPU 1 (binary or text, CONNS connections, PIPELINE deep), and
# `perf stat -a -A` over 3 s of mc-load's measured window counting, per CPU, the wake-up IPIs
# (irq_vectors:call_function_single_entry), the idle entries (power:cpu_idle) and the task wake-ups
# (sched:sched_wakeup), divided by the operations of that window. In a guest, waking a sleeping vCPU costs the waker
# an exit: a server whose replies leave the client idle more often pays more per operation in its send path.
#   bench/scripts/memcached-profile/wakeups.sh [REPS=2] [CONNS=4] [PIPELINE=1] [PROTOCOL=binary]
# Run it on a quiet machine (under the benchmarks' lock); nothing here judges.
set -euo pipefail
reps=${1:-2} conns=${2:-4} pipeline=${3:-1} protocol=${4:-binary}
source "$(dirname "$0")/common.sh"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for rep in $(seq 1 "$reps"); do
  for server in memcached megapipe; do
    start_server "$server"
    # perf counts 3 s from 0.2 s into the measured window
    start_load "$conns" "$pipeline" "$protocol" "$out/load"
    sleep 1.2
    perf stat -a -A -x, -o "$out/stat.csv" \
      -e irq_vectors:call_function_single_entry,power:cpu_idle,sched:sched_wakeup -- sleep 3
    wait "$lp"
    stop_server
    rate=$(load_rate "$out/load")
    echo "$server rep $rep: $(printf '%.0f' "$rate") ops/s"
    awk -F, -v ops="$rate" '$1 ~ /^CPU/ { printf "  %s %-40s %.3f per op\n", $1, $4, $2 / (ops * 3) }' "$out/stat.csv"
  done
done
