# Sourced by wakeups.sh and floor.sh: one server at a time pinned to CPU 0, bench/c/mc-load pinned to CPU 1.
mp_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mp_root=$(cd "$mp_here/../../.." && pwd)

# start_server memcached|megapipe|floor: one worker on 127.0.0.1, on a port below the ephemeral range (no clash with
# the clients' ports); sets $port and $pid (taskset execs: the server's own pid) and returns once it accepts.
start_server() {
  port=$((20000 + RANDOM % 9000))
  case $1 in
    memcached) taskset -c 0 memcached -t 1 -p "$port" -l 127.0.0.1 -m 1024 -U 0 -c 4096 -u root & pid=$! ;;
    megapipe) taskset -c 0 node "$mp_root/dist/apps/memcached/cli.js" -t 1 -p "$port" -l 127.0.0.1 -m 1024 -U 0 -c 4096 >/dev/null & pid=$! ;;
    floor) taskset -c 0 node "$mp_here/floor/cli.mjs" "$port" & pid=$! ;;
    *) echo "start_server: unknown server $1" >&2; return 64 ;;
  esac
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0; sleep 0.05; done
  echo "start_server: $1 does not accept on $port" >&2; return 1
}

# start_load CONNS PIPELINE PROTOCOL OUT: mc-load against $port (1 s warm-up after populating, 4 s measured), its JSON
# line in OUT.json, its stderr in OUT.err; sets $lp. The caller sleeps 1.2 s to be 0.2 s into the measured window.
start_load() {
  taskset -c 1 "$mp_root/bench/c/bin/mc-load" --port "$port" --conns "$1" --pipeline "$2" --duration 4 --warmup 1 \
    --protocol "$3" >"$4.json" 2>"$4.err" & lp=$!
}

# stop_server: the server started last.
stop_server() { kill "$pid"; wait "$pid" 2>/dev/null || true; }

# load_rate OUT: the measured window's operations per second from OUT.json.
load_rate() { python3 -c "import json,sys; print(json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])['ops_per_s'])" "$1.json"; }
