#!/bin/bash
# The batch threshold's default, chosen by measurement: server-core µs/txn and io_uring_enter calls per
# transaction of the megapipe echo server for thresholds 1…1024 (servers mp-batch-N), interleaved, persistent and
# 1 txn/conn (64 B, 256 connections), through the RPC harness (bench/rpc.ts --figure batch): errors, exit codes,
# foreign load and steal checked, only clean runs in the table, summary.md with the command and commit.
# 36 runs of 1 s + 5 s by default (3 repetitions), ≈ 4 min. Extra arguments go to rpc.js, e.g. --record batch-threshold.
# Run it on a quiet machine: flock /tmp/megapipe-bench.lock bench/scripts/batch-threshold.sh
root="$(cd "$(dirname "$0")/../.." && pwd)"
[ -f "$root/dist/bench/rpc.js" ] || { echo "batch-threshold.sh: $root/dist/bench/rpc.js is missing: npx tsc -p tsconfig.json" >&2; exit 64; }
exec node "$root/dist/bench/rpc.js" --figure batch --reps 3 --duration 5 --warmup 1 "$@"
