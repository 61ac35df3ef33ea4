#!/bin/bash
# Profiles the RPC echo servers at one point of the transactions-per-connection figure: for each repetition and each
# server, one bench/one-run.js run with `--perf` (perf record on the server's CPU over exactly the measured window) and
# `--json`, kept as OUTDIR/<server>-<rep>.{data,json}. Then: node bench/scripts/rpc-profile/breakdown.mjs OUTDIR NAMES…
#   bench/scripts/rpc-profile/run.sh OUTDIR [TXNS=1] [REPS=2] [SIZE=64] [CONNS=256]   (SIZE: message bytes)
# Servers: uring-echo (C, bench/c) and megapipe (dist/bin/echo-server.js, node with --perf-basic-prof so that JIT frames
# have names). Run it on a quiet machine (the harness's guards apply: a disturbed run exits 3 and is kept, marked).
set -u
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
out=${1:?usage: run.sh OUTDIR [TXNS] [REPS] [SIZE] [CONNS]}; txns=${2:-1}; reps=${3:-2}; size=${4:-64}; conns=${5:-256}
mkdir -p "$out"
cd "$ROOT"
for rep in $(seq 1 "$reps"); do
  for s in uring-echo megapipe; do
    case $s in
      uring-echo) cmd=(bench/c/bin/uring-echo);;
      megapipe) cmd=(node --perf-basic-prof dist/bin/echo-server.js);;
    esac
    node dist/bench/one-run.js --txns "$txns" --size "$size" --conns "$conns" --duration 5 --perf "$out/$s-$rep.data" --json -- "${cmd[@]}" > "$out/$s-$rep.json"
    echo "$s rep $rep: exit $? $(node -e 'const r=JSON.parse(require("fs").readFileSync(process.argv[1]));console.log(r.state, "core µs/txn", r.cost?.coreUsPerTxn?.toFixed(2), "proc µs/txn", r.cost?.procUsPerTxn?.toFixed(2), "enters/txn", r.entersPerTxn?.toFixed(3))' "$out/$s-$rep.json")"
  done
done
