#!/usr/bin/env bash
# Process CPU per operation of memcached, megapipe-memcached and floor/ (a minimal binary GET/SET server on megapipe's
# serve(), see floor/worker.mjs), one worker each on CPU 0, under bench/c/mc-load on CPU 1 (binary, CONNS connections,
# PIPELINE deep, every reply verified: an mc-load exit other than 0 is printed). The server process's utime + stime
# from /proc over 3 s of the measured window, divided by the operations of that window, and the steal time of CPUs 0
# and 1 over that window (a run with more than 5% is marked "disturbed": leave it out). Interleaved, REPS rounds.
#   bench/scripts/memcached-profile/floor.sh [REPS=3] [CONNS=4] [PIPELINE=1]
# Run it on a quiet machine (under the benchmarks' lock); nothing here judges.
set -euo pipefail
reps=${1:-3} conns=${2:-4} pipeline=${3:-1}
source "$(dirname "$0")/common.sh"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
hz=$(getconf CLK_TCK)
steal() { awk '$1 == "cpu0" || $1 == "cpu1" { printf "%s ", $9 }' /proc/stat; }   # steal ticks of CPUs 0 and 1
for rep in $(seq 1 "$reps"); do
  for server in memcached megapipe floor; do
    start_server "$server"
    start_load "$conns" "$pipeline" binary "$out/load"
    sleep 1.2   # 1 s warm-up (after populating), then 0.2 s into the measured window
    t0=$(awk '{print $14 + $15}' "/proc/$pid/stat"); s0=$(date +%s.%N); st0=$(steal)
    sleep 3
    t1=$(awk '{print $14 + $15}' "/proc/$pid/stat"); s1=$(date +%s.%N); st1=$(steal)
    rc=0; wait "$lp" || rc=$?
    stop_server
    python3 - "$(load_rate "$out/load")" "$server" "$rep" "$t0" "$t1" "$s0" "$s1" "$hz" "$rc" "$st0" "$st1" <<'PY'
import sys
rate, server, rep, t0, t1, s0, s1, hz, rc, st0, st1 = sys.argv[1:]
rate = float(rate)
secs = float(s1) - float(s0)
cpu_us = (float(t1) - float(t0)) / float(hz) * 1e6
steal = max(int(b) - int(a) for a, b in zip(st0.split(), st1.split())) / float(hz) / secs
print(f'{server} rep {rep}: {rate:.0f} ops/s, process CPU {cpu_us / (rate * secs):.2f} µs per operation, steal {100 * steal:.1f}%'
      + (' (disturbed)' if steal > 0.05 else '') + ('' if rc == '0' else f', mc-load exit {rc}'))
PY
  done
done
