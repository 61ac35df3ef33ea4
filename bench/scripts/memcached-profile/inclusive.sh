#!/bin/bash
# Inclusive time of named kernel functions per operation in a run.mjs recording: the share of the server's samples
# whose call chain passes through each function, × the sampling period ÷ the run's operations.
#   bench/scripts/memcached-profile/inclusive.sh DIR NAME [FUNCTION…]   (DIR/NAME.data and DIR/NAME.json from run.mjs)
# Default functions: the receive and send paths of both servers, io_uring's task work and submit, epoll, Node-API.
set -euo pipefail
d=$1; n=$2; shift 2
fns=${*:-io_recv tcp_recvmsg io_send tcp_sendmsg tctx_task_work __io_arm_poll_handler __do_sys_io_uring_enter do_epoll_wait ksys_read napi_make_callback}
read -r pid ops hz < <(node -e "const r=JSON.parse(require('fs').readFileSync('$d/$n.json','utf8'));console.log(r.serverPid,r.load.txns,r.perfHz??1999)")
perf script -i "$d/$n.data" -F pid,ip,sym 2>/dev/null | awk -v name="$d/$n" -v pid="$pid" -v ops="$ops" -v hz="$hz" -v fns="$fns" '
BEGIN { split(fns, a, " "); for (i in a) want[a[i]] = 1 }
function flush() { if (inS) { total++; for (k in seen) cnt[k]++ } delete seen; inS = 0 }
/^[ \t]*[0-9]+[ \t]*$/ { flush(); if ($1 == pid) inS = 1; next }
/^$/ { flush(); next }
{ if (inS && ($2 in want)) seen[$2] = 1 }
END {
  flush(); us = 1e6 / hz
  printf "%s: %d server samples, %d operations, %.2f µs per operation\n", name, total, ops, total * us / ops
  for (k in want) printf "  %-28s %.3f µs/op\n", k, cnt[k] * us / ops
}'
