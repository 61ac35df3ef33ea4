// The multi-core point of the legacy-server benchmark (bench/compat.ts, issue 17): the same node:http hello-world
// server on N cores, the two ways. `--mode serve`: megapipe's serve() with N worker threads (one io_uring channel
// each, a partitioned listener), the server built in every worker by megapipe/net's serveServer. `--mode cluster`:
// node's cluster, N worker processes, each calling listen() (the primary accepts and hands connections round-robin,
// node's default on Linux; NODE_CLUSTER_SCHED_POLICY is respected). Prints "listening on HOST:PORT" once every
// worker serves; exits 0 on SIGTERM (serve: after one line {"worker","cpu","accepted"} per worker).
//
//   node dist/bench/servers/compat-multi.js --mode serve|cluster [--workers N] [--host H] [--port P]
import cluster from 'node:cluster';
import * as http from 'node:http';
import { parseArgs } from 'node:util';
import { isMainThread } from 'node:worker_threads';
import { serve } from '../../src/index.js';
import { serveServer } from '../../src/net/index.js';

const HELLO = 'hello world';
const hello = (): http.Server => http.createServer((_req, res) => { res.end(HELLO); });

/** serve()'s worker module is this file too: its default export builds the worker's server. */
export default serveServer(hello);

if (!isMainThread) {
  // a serve() worker thread: the default export above is all it needs
} else if (cluster.isWorker) {
  const server = hello();
  server.listen(Number(process.env.COMPAT_PORT), process.env.COMPAT_HOST, () => process.send!({ listening: true }));
  process.on('SIGTERM', () => {});   // the primary decides when to stop
} else {
  const { values } = parseArgs({ options: { mode: { type: 'string' }, workers: { type: 'string', default: '2' }, host: { type: 'string', default: '127.0.0.1' }, port: { type: 'string', default: '0' } } });
  const workers = Number(values.workers), host = values.host!, port = Number(values.port);
  if ((values.mode !== 'serve' && values.mode !== 'cluster') || !Number.isInteger(workers) || workers < 1 || workers > 64) {
    process.stderr.write('usage: compat-multi --mode serve|cluster [--workers N] [--host H] [--port P]\n');
    process.exit(64);
  }
  if (values.mode === 'serve') {
    const server = await serve({ module: new URL(import.meta.url), workers, host, port });
    process.stdout.write(`listening on ${host}:${server.port}\n`);
    // each worker's accepted connections, one JSON line each (how the partitioned listener spread them)
    process.once('SIGTERM', () => {
      void server.close(2000).then((stats) => {
        for (const w of stats) process.stdout.write(JSON.stringify({ worker: w.worker, cpu: w.cpu, accepted: w.accepted }) + '\n');
        process.exit(0);
      });
    });
  } else {
    if (port === 0) { process.stderr.write('compat-multi: --mode cluster needs a port (workers listen on it)\n'); process.exit(64); }
    let listening = 0;
    for (let i = 0; i < workers; i++) {
      cluster.fork({ COMPAT_HOST: host, COMPAT_PORT: String(port) }).on('message', (m: { listening?: boolean }) => {
        if (m.listening && ++listening === workers) process.stdout.write(`listening on ${host}:${port}\n`);
      });
    }
    // the workers are reaped here before the primary exits (orphans reaped by init would bill their CPU to init, which
    // the next run's foreign-load check would see)
    process.once('SIGTERM', () => {
      const ws = Object.values(cluster.workers ?? {}).filter((w) => w !== undefined);
      let left = ws.length;
      if (left === 0) process.exit(0);
      for (const w of ws) { w.once('exit', () => { if (--left === 0) process.exit(0); }); w.process.kill('SIGKILL'); }
    });
  }
}
