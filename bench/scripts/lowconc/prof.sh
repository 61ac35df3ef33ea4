#!/bin/bash
# ROOT: this checkout (default: three levels up from this script). Env: NOREC=1 (no perf record), NOSTAT=1 (no perf stat),
# EVENTS (perf stat events), STATARGS (default: the server threads). Writes NAME.{load,loaderr,data,stat,info} to OUTDIR.
ROOT=${ROOT:-$(cd "$(dirname "$0")/../../.." && pwd)}
# usage: prof.sh NAME SERVER(memcached|megapipe|base) OUTDIR [extra node flags]
# one run: server on CPU0, mc-load binary 4 conns depth1 on CPU1, perf record -C 0 over measured window, perf stat syscalls
set -u
name=$1; server=$2; out=$3; shift 3
mkdir -p $out
port=$((20000 + RANDOM % 10000))
case $server in
  memcached) taskset -c 0 /usr/bin/memcached -t 1 -p $port -l 127.0.0.1 -m 1024 -U 0 -c 4096 -u nobody & spid=$!;;
  megapipe) taskset -c 0 node --perf-basic-prof --interpreted-frames-native-stack "$@" $ROOT/dist/apps/memcached/cli.js -t 1 -p $port -l 127.0.0.1 -m 1024 -U 0 -c 4096 & spid=$!;;
  base) taskset -c 0 node --perf-basic-prof --interpreted-frames-native-stack "$@" ${BASE:-/work/wt-base}/dist/apps/memcached/cli.js -t 1 -p $port -l 127.0.0.1 -m 1024 -U 0 -c 4096 & spid=$!;;
  plain) taskset -c 0 node "$@" $ROOT/dist/apps/memcached/cli.js -t 1 -p $port -l 127.0.0.1 -m 1024 -U 0 -c 4096 & spid=$!;;
esac
for i in $(seq 1 100); do (echo > /dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
# mc-load: warmup 2, duration 5; record during seconds ~[populate+warm .. ]; we start perf once phase measure appears
taskset -c 1 $ROOT/bench/c/bin/mc-load --port $port --conns 4 --pipeline 1 --protocol binary --duration 5 --warmup 1 --seed 1 > $out/$name.load 2> $out/$name.loaderr &
lpid=$!
for i in $(seq 1 600); do grep -q "phase measure" $out/$name.loaderr 2>/dev/null && break; sleep 0.05; done
tids=$(ls /proc/$spid/task | tr '\n' ',' | sed 's/,$//')
[ -n "${NOREC:-}" ] || timeout -s INT 4 perf record -C 0 -F 1999 -g -o $out/$name.data > /dev/null 2>&1 &
ppid=$!
[ -n "${NOSTAT:-}" ] || timeout -s INT 4 perf stat -e "${EVENTS:-syscalls:sys_enter_io_uring_enter,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_epoll_pwait,syscalls:sys_enter_read,syscalls:sys_enter_sendmsg}" ${STATARGS:--t $tids} --per-thread -o $out/$name.stat > /dev/null 2>&1 &
spid2=$!
s0=$(awk '{print $14+$15}' /proc/$spid/stat); r0=$(cat /proc/$spid/task/*/schedstat | awk '{s+=$1} END {printf "%d", s}'); t0=$(date +%s%N); c0=$(awk '$1=="cpu0"{print $2+$3+$4+$7+$8}' /proc/stat); i0=$(awk '$1=="cpu0"{print $5+$6}' /proc/stat)
sleep 4; wait $ppid $spid2
s1=$(awk '{print $14+$15}' /proc/$spid/stat); r1=$(cat /proc/$spid/task/*/schedstat | awk '{s+=$1} END {printf "%d", s}'); t1=$(date +%s%N); c1=$(awk '$1=="cpu0"{print $2+$3+$4+$7+$8}' /proc/stat); i1=$(awk '$1=="cpu0"{print $5+$6}' /proc/stat)
wait $lpid
kill -TERM $spid; wait $spid 2>/dev/null
echo "$name ticks=$((s1-s0)) tids=$tids" > $out/$name.info
echo "spid=$spid cpu0busy=$((c1-c0)) cpu0idle=$((i1-i0)) run_ns=$((r1-r0)) wall_ns=$((t1-t0))" >> $out/$name.info
cat $out/$name.load
