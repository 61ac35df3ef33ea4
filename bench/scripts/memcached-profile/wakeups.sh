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
root=$(cd "$(dirname "$0")/../../.." && pwd)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for rep in $(seq 1 "$reps"); do
  for server in memcached megapipe; do
    port=$((30000 + RANDOM % 20000))
    if [ "$server" = memcached ]; then
      taskset -c 0 memcached -t 1 -p "$port" -l 127.0.0.1 -m 1024 -U 0 -c 4096 -u root & pid=$!
    else
      taskset -c 0 node "$root/dist/apps/memcached/cli.js" -t 1 -p "$port" -l 127.0.0.1 -m 1024 -U 0 -c 4096 >/dev/null & pid=$!
    fi
    for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
    # the load: 1 s warm-up, 4 s measured; perf counts 3 s from 0.2 s into the measured window
    taskset -c 1 "$root/bench/c/bin/mc-load" --port "$port" --conns "$conns" --pipeline "$pipeline" --duration 4 --warmup 1 \
      --protocol "$protocol" >"$out/load.json" 2>"$out/load.err" & lp=$!
    sleep 1.2
    perf stat -a -A -x, -o "$out/stat.csv" \
      -e irq_vectors:call_function_single_entry,power:cpu_idle,sched:sched_wakeup -- sleep 3
    wait "$lp"
    kill "$pid"; wait "$pid" 2>/dev/null || true
    # ops in perf's 3 s: the measured window's rate
    rate=$(python3 -c "import json,sys; print(json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])['ops_per_s'])" "$out/load.json")
    echo "$server rep $rep: $(printf '%.0f' "$rate") ops/s"
    awk -F, -v ops="$rate" '$1 ~ /^CPU/ { printf "  %s %-40s %.3f per op\n", $1, $4, $2 / (ops * 3) }' "$out/stat.csv"
  done
done
