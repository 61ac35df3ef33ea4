#!/bin/bash
# One measured run outside the experiments, for quick A/B checks and profiling, with the harness's guards
# (bench/one-run.ts: CPU sampled at rpc-load's phase marks, rpc-load's exit code, errors and mismatches checked,
# bounded, foreign load and steal flagged; exit 0 clean, 1 failed, 3 disturbed). Options as one-run.js --help:
#   bench/scripts/one-run.sh --txns 1 -- node dist/bin/echo-server.js --backend uring
#   bench/scripts/one-run.sh --cwd ../base --perf /tmp/perf.data -- node dist/bin/echo-server.js --backend uring
# (Run it under the shared lock on a quiet machine: flock /tmp/megapipe-bench.lock bench/scripts/one-run.sh …)
root="$(cd "$(dirname "$0")/../.." && pwd)"
[ -f "$root/dist/bench/one-run.js" ] || { echo "one-run.sh: $root/dist/bench/one-run.js is missing: npx tsc -p tsconfig.json" >&2; exit 64; }
exec node "$root/dist/bench/one-run.js" "$@"
