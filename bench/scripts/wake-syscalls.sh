#!/bin/bash
# System calls per operation of megapipe-memcached, by call, for each way a channel is woken (native/loop.c): counted
# by perf tracepoints attached to the server over exactly mc-load's measured window (its "phase measure" … "phase
# end" marks), one worker on CPU 0, mc-load on CPU 1, memcached's binary protocol, 4 connections, no pipelining (the
# point where each wake-up carries about one request). Counts only: the tracepoints cost CPU, so no CPU figure comes
# from here (bench/memcached.ts measures CPU without them).
#   bench/scripts/wake-syscalls.sh [NAME=DIST[:WAKE] ...]   e.g. base=/work/wt-base/dist eventfd=dist:eventfd ringfd=dist:ringfd
# Each argument: a build's dist/ directory and the MEGAPIPE_WAKE to run it with (none: its default). Run it on a quiet
# machine (/work/quiet, or flock /tmp/megapipe-bench.lock).
set -u
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root" || exit 64
[ -x bench/c/bin/mc-load ] || { echo "wake-syscalls.sh: bench/c/bin/mc-load is missing: make -C bench/c" >&2; exit 64; }
[ $# -gt 0 ] || set -- eventfd=dist:eventfd ringfd=dist:ringfd
secs=${WAKE_SYSCALLS_SECONDS:-3}
events=raw_syscalls:sys_enter,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_epoll_pwait,syscalls:sys_enter_read,syscalls:sys_enter_write,syscalls:sys_enter_io_uring_enter
port=18411
printf '%-10s %10s %8s %8s %8s %8s %8s %8s %8s\n' server ops syscalls epoll+p eintr read write enter other
for spec in "$@"; do
  name=${spec%%=*}; rest=${spec#*=}; dist=${rest%%:*}; wake=""; [ "$rest" != "$dist" ] && wake=${rest#*:}
  port=$((port + 1))
  out=$(mktemp); perfout=$(mktemp)
  MEGAPIPE_WAKE=$wake taskset -c 0 node "$dist/apps/memcached/cli.js" -t 1 -p $port -l 127.0.0.1 -m 256 -U 0 -c 4096 >/dev/null 2>&1 &
  srv=$!
  for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
  perf_pid=""
  while IFS= read -r line; do
    case "$line" in
      "mc-load: phase measure")
        perf stat -x, -e "$events" -e 'syscalls:sys_exit_epoll_pwait' --filter 'ret == -4' -p "$srv" -o "$perfout" & perf_pid=$! ;;
      "mc-load: phase end") [ -n "$perf_pid" ] && kill -INT "$perf_pid" ;;
      "{"*) echo "$line" > "$out" ;;
    esac
  done < <(taskset -c 1 bench/c/bin/mc-load --port $port --conns 4 --pipeline 1 --protocol binary --keys 10000 --duration "$secs" --warmup 1 2>&1)
  [ -n "$perf_pid" ] && wait "$perf_pid"
  kill "$srv"; wait "$srv" 2>/dev/null
  ops=$(sed -n 's/.*"ops":\([0-9]*\).*/\1/p' "$out")
  get() { awk -F, -v e="$1" '$3 == e { print $1 }' "$perfout"; }
  total=$(get raw_syscalls:sys_enter); ew=$(get syscalls:sys_enter_epoll_wait); ep=$(get syscalls:sys_enter_epoll_pwait)
  eintr=$(get syscalls:sys_exit_epoll_pwait); rd=$(get syscalls:sys_enter_read); wr=$(get syscalls:sys_enter_write); en=$(get syscalls:sys_enter_io_uring_enter)
  awk -v n="$name" -v ops="$ops" -v t="$total" -v ew="$ew" -v ep="$ep" -v ei="$eintr" -v rd="$rd" -v wr="$wr" -v en="$en" 'BEGIN {
    e = ew + ep; printf "%-10s %10d %8.3f %8.3f %8.3f %8.3f %8.3f %8.3f %8.3f\n", n, ops, t/ops, e/ops, ei/ops, rd/ops, wr/ops, en/ops, (t-e-rd-wr-en)/ops }'
  rm -f "$out" "$perfout"
done
echo "(per operation, over mc-load's measured window; eintr: epoll_pwait calls that returned EINTR)"
