#!/bin/bash
# The batch threshold's default, chosen by measurement: server-core µs/txn and io_uring_enter calls per
# transaction of the megapipe echo server for thresholds 1…1024, interleaved, persistent and 1 txn/conn
# (64 B, 256 connections), 2 repetitions. Run it on a quiet machine: flock /tmp/megapipe-bench.lock bench/scripts/batch-threshold.sh
cd "$(dirname "$0")/../.."; port=9600
for rep in 1 2; do for txns in 0 1; do for b in 1 8 32 64 256 1024; do
  port=$((port+1))
  out=$(bench/scripts/one-run.sh . $port $txns node dist/bin/echo-server.js --backend uring --batch $b 2>&1)
  txn=$(echo "$out" | grep -o '"txns":[0-9]*' | head -1 | cut -d: -f2)
  ticks=$(echo "$out" | awk '/busy ticks/{print $7-$4}')
  en=$(echo "$out" | grep -o '"enters":[0-9]*' | cut -d: -f2)
  all=$(echo "$out" | grep -o '"all_txns":[0-9]*' | cut -d: -f2)
  echo "txns=$txns batch=$b rep=$rep tps=$(echo "$txn/5" | bc) us/txn=$(echo "scale=2; $ticks*10000/$txn" | bc) enters/txn=$(echo "scale=2; $en/$all" | bc)"
done; done; done
