// The echo servers the RPC experiment knows. Each is one entry: argv with {PORT}, {HOST}, {CPU} (the server's
// taskset CPU list) and {WORKERS} substituted, optional environment, and a file it needs (skipped with a note
// when that file is missing, e.g. before `npm run build`). Every server must print "listening on HOST:PORT"
// when ready and, on SIGTERM, one JSON line of counters per worker ({"accepted","bytes"} at least; "enters"
// makes the harness report io_uring_enter calls per transaction), then exit 0.
import type { ServerSpec } from '../lib/proc.js';

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
];

/** Servers run when --servers is not given. */
export const DEFAULT_SERVERS = ['epoll-echo', 'uring-echo', 'node:net', 'megapipe'];
