// The node:net baseline scaled the Node.js way: `cluster`, N worker processes sharing one port.
//   node dist/bench/servers/net-cluster-echo.js --port P [--host H] [--workers N]
// NODE_CLUSTER_SCHED_POLICY is respected: "rr" (the default on Linux: the primary accepts and hands each
// connection to a worker) or "none" (the workers share the listening socket and the kernel picks).
// Prints "listening on H:P" once every worker listens; on SIGTERM/SIGINT prints one JSON line per worker
// {"worker":i,"accepted":N,"bytes":N} and exits 0.
import cluster from 'node:cluster';
import { parseArgs } from 'node:util';
import { startNetEcho } from './net-echo.js';

const usage = 'usage: net-cluster-echo --port P [--host H] [--workers N]\n';

type Stats = { worker: number; accepted: number; bytes: number };

if (cluster.isPrimary) {
  const { values } = parseArgs({ options: { port: { type: 'string', default: '9000' }, host: { type: 'string', default: '127.0.0.1' }, workers: { type: 'string', default: '1' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help) { process.stdout.write(usage); process.exit(0); }
  const port = Number(values.port), workers = Number(values.workers);
  if (!Number.isInteger(port) || port < 0 || port > 65535 || !Number.isInteger(workers) || workers < 1 || workers > 256) {
    process.stderr.write(usage); process.exit(64);
  }
  // Port 0 would give each worker its own port under SCHED_NONE; pick one in the primary first.
  let chosen = port;
  if (chosen === 0) {
    const { server } = await startNetEcho(values.host!, 0);
    const a = server.address();
    chosen = typeof a === 'object' && a ? a.port : 0;
    await new Promise((r) => server.close(r));
  }
  let listening = 0;
  const stats: Stats[] = [];
  for (let i = 0; i < workers; i++) {
    const w = cluster.fork({ ECHO_WORKER: String(i), ECHO_HOST: values.host, ECHO_PORT: String(chosen) });
    w.on('message', (m: { listening?: boolean; stats?: Stats }) => {
      if (m.listening && ++listening === workers) process.stdout.write(`listening on ${values.host}:${chosen}\n`);
      if (m.stats) stats.push(m.stats);
    });
  }
  const stop = async () => {
    for (const w of Object.values(cluster.workers ?? {})) w?.send({ stop: true });
    const deadline = Date.now() + 3000;
    while (stats.length < workers && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    for (const s of stats.sort((a, b) => a.worker - b.worker)) process.stdout.write(JSON.stringify(s) + '\n');
    for (const w of Object.values(cluster.workers ?? {})) w?.kill('SIGKILL');
    process.exit(stats.length === workers ? 0 : 1);
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
} else {
  const worker = Number(process.env.ECHO_WORKER);
  // Only the primary decides when to stop; a SIGTERM sent to the process group must not kill workers early.
  process.on('SIGTERM', () => {});
  process.on('SIGINT', () => {});
  const { counters } = await startNetEcho(process.env.ECHO_HOST!, Number(process.env.ECHO_PORT), { exclusive: false });
  process.send!({ listening: true });
  process.on('message', (m: { stop?: boolean }) => {
    if (m.stop) process.send!({ stats: { worker, ...counters } });
  });
}
