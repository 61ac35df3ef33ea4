// The echo servers the RPC experiment knows. Each is one entry: argv with {PORT}, {HOST}, {CPU} (the server's
// taskset CPU list) and {WORKERS} substituted, optional environment, and a file it needs (skipped with a note
// when that file is missing, e.g. before `npm run build`). Every server must print "listening on HOST:PORT"
// when ready and, on SIGTERM, one JSON line of counters per worker ({"accepted","bytes"} at least; "enters"
// makes the harness report io_uring_enter calls per transaction), then exit 0.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { ServerSpec } from '../lib/proc.js';

/**
 * `--variant NAME=PATH`: the megapipe echo server of another build (PATH: its compiled dist/bin/echo-server.js, e.g.
 * of a worktree at the commit before a change), run under NAME beside the others — a change measured side by side
 * with its baseline in one interleaved run. Returns an error message instead for a malformed spec or a missing file.
 */
export function variantServer(spec: string): ServerSpec | string {
  const eq = spec.indexOf('=');
  if (eq <= 0) return `--variant needs NAME=PATH/dist/bin/echo-server.js (got ${spec})`;
  const name = spec.slice(0, eq), path = resolve(spec.slice(eq + 1).trim());
  if (!existsSync(path)) return `--variant ${spec}: ${path} does not exist`;
  return {
    name, cmd: [process.execPath, path, '--port', '{PORT}', '--host', '{HOST}', '--backend', 'uring', '--workers', '{WORKERS}'],
    description: `megapipe echo server of another build (${path})`,
  };
}

export const ECHO_SERVERS: ServerSpec[] = [
  {
    name: 'epoll-echo',
    cmd: ['bench/c/bin/epoll-echo', '--port', '{PORT}', '--host', '{HOST}'],
    requires: 'bench/c/bin/epoll-echo',
    description: 'C, epoll, read()/write() per event: the paper\'s "baseline Linux"',
  },
  {
    name: 'uring-echo',
    cmd: ['bench/c/bin/uring-echo', '--port', '{PORT}', '--host', '{HOST}'],
    requires: 'bench/c/bin/uring-echo',
    description: 'C, io_uring: direct descriptors, multishot accept/recv, buffer ring — one core at its best',
  },
  {
    name: 'node:net',
    cmd: [process.execPath, 'dist/bench/servers/net-echo.js', '--port', '{PORT}', '--host', '{HOST}'],
    requires: 'dist/bench/servers/net-echo.js',
    description: 'Node.js net.createServer echo (the baseline megapipe must beat)',
  },
  {
    name: 'node:cluster',
    cmd: [process.execPath, 'dist/bench/servers/net-cluster-echo.js', '--port', '{PORT}', '--host', '{HOST}', '--workers', '{WORKERS}'],
    requires: 'dist/bench/servers/net-cluster-echo.js',
    description: 'node:net under cluster (NODE_CLUSTER_SCHED_POLICY respected; default rr)',
  },
  {
    name: 'node:cluster-none',
    cmd: [process.execPath, 'dist/bench/servers/net-cluster-echo.js', '--port', '{PORT}', '--host', '{HOST}', '--workers', '{WORKERS}'],
    env: { NODE_CLUSTER_SCHED_POLICY: 'none' },
    requires: 'dist/bench/servers/net-cluster-echo.js',
    description: 'node:net under cluster with SCHED_NONE: workers share the listening socket',
  },
  {
    name: 'megapipe',
    cmd: [process.execPath, 'dist/bin/echo-server.js', '--port', '{PORT}', '--host', '{HOST}', '--backend', 'uring', '--workers', '{WORKERS}'],
    requires: 'dist/bin/echo-server.js',
    description: 'megapipe echo server, io_uring backend, lwsockets',
  },
  {
    name: 'megapipe-lb',
    cmd: [process.execPath, 'dist/bin/echo-server.js', '--port', '{PORT}', '--host', '{HOST}', '--backend', 'uring', '--workers', '{WORKERS}', '--load-balance'],
    requires: 'dist/bin/echo-server.js',
    description: 'megapipe echo server with load balancing between partitions (serve loadBalance; ≥ 2 workers)',
  },
  {
    name: 'megapipe-shared',
    cmd: [process.execPath, 'dist/bin/echo-server.js', '--port', '{PORT}', '--host', '{HOST}', '--backend', 'uring', '--workers', '{WORKERS}', '--no-partition'],
    requires: 'dist/bin/echo-server.js',
    description: 'megapipe echo server, one accept queue shared by the workers (no partitioning; ≥ 2 workers)',
  },
  {
    name: 'megapipe-fd',
    cmd: [process.execPath, 'dist/bin/echo-server.js', '--port', '{PORT}', '--host', '{HOST}', '--backend', 'uring', '--no-lwsocket', '--workers', '{WORKERS}'],
    requires: 'dist/bin/echo-server.js',
    description: 'megapipe echo server, io_uring backend, regular fds instead of lwsockets',
  },
  {
    name: 'megapipe-portable',
    cmd: [process.execPath, 'dist/bin/echo-server.js', '--port', '{PORT}', '--host', '{HOST}', '--backend', 'portable', '--workers', '{WORKERS}'],
    requires: 'dist/bin/echo-server.js',
    description: 'megapipe echo server, portable backend over node:net',
  },
  // The paper's breakdown (MegaPipe §5.1, Table 3): the baseline, then each of MegaPipe's techniques enabled in
  // turn, cumulatively, all on megapipe's io_uring channel. Partitioning changes nothing with one worker: run these
  // with --workers 2 (rpc.js --figure breakdown does) to see it.
  {
    name: 'mp-baseline',
    cmd: [process.execPath, 'dist/bin/echo-server.js', '--port', '{PORT}', '--host', '{HOST}', '--backend', 'uring', '--workers', '{WORKERS}', '--no-partition', '--no-lwsocket', '--batch', '1'],
    requires: 'dist/bin/echo-server.js',
    description: 'breakdown baseline: one shared accept queue, regular fds, one io_uring_enter per request',
  },
  {
    name: 'mp+partition',
    cmd: [process.execPath, 'dist/bin/echo-server.js', '--port', '{PORT}', '--host', '{HOST}', '--backend', 'uring', '--workers', '{WORKERS}', '--no-lwsocket', '--batch', '1'],
    requires: 'dist/bin/echo-server.js',
    description: 'breakdown: + partitioned listener (one accept queue per worker, by receiving CPU)',
  },
  {
    name: 'mp+lwsocket',
    cmd: [process.execPath, 'dist/bin/echo-server.js', '--port', '{PORT}', '--host', '{HOST}', '--backend', 'uring', '--workers', '{WORKERS}', '--batch', '1'],
    requires: 'dist/bin/echo-server.js',
    description: 'breakdown: + lwsockets (direct descriptors, no process fd)',
  },
  {
    name: 'mp+batching',
    cmd: [process.execPath, 'dist/bin/echo-server.js', '--port', '{PORT}', '--host', '{HOST}', '--backend', 'uring', '--workers', '{WORKERS}'],
    requires: 'dist/bin/echo-server.js',
    description: 'breakdown: + batching (default threshold): all of MegaPipe, the same as "megapipe"',
  },
];

/** Servers run when --servers is not given. */
export const DEFAULT_SERVERS = ['epoll-echo', 'uring-echo', 'node:net', 'megapipe'];
/** The breakdown's configurations, in order (each adds one technique to the previous). */
export const BREAKDOWN_SERVERS = ['mp-baseline', 'mp+partition', 'mp+lwsocket', 'mp+batching'];
/** The core-scaling figure: megapipe's workers against node:cluster, with the (single-threaded) C references. */
export const CORES_SERVERS = ['epoll-echo', 'uring-echo', 'node:cluster', 'megapipe'];

/** The batch-threshold figure's servers: the megapipe echo server with `--batch N` (flush rule i), named mp-batch-N. */
export function batchServers(thresholds: number[]): ServerSpec[] {
  return thresholds.map((n) => ({
    name: `mp-batch-${n}`,
    cmd: [process.execPath, 'dist/bin/echo-server.js', '--port', '{PORT}', '--host', '{HOST}', '--backend', 'uring', '--workers', '{WORKERS}', '--batch', String(n)],
    requires: 'dist/bin/echo-server.js',
    description: `megapipe echo server with batch threshold ${n}${n === 1 ? ' (no batching: one io_uring_enter per request)' : ''}`,
  }));
}
