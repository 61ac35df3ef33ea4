// One soak server process: an application under serve() with the shipped defaults (io_uring channels, partitioned
// listener, lwsockets), on `workers` worker threads (node-http: a node:http server on megapipe/net, the same way). It
// answers the orchestrator over IPC: samples of its memory (this process's RSS, each worker's V8 heap through
// worker.ts's side channel) and of serve()'s counters, and a graceful close. argv[2]: ServerInit (JSON).
import { BroadcastChannel } from 'node:worker_threads';
import { getHeapStatistics } from 'node:v8';
import { serve, type Server, type ServeOptions } from '../../src/index.js';
import { HTTP_CHANNEL_LIMITS, HTTP_DEFER_ACCEPT } from '../../apps/http/cli.js';
import { createWorkerData, resolveOptions } from '../../apps/memcached/server.js';
import type { HttpWorkerData } from '../../apps/http/worker.js';
import type { ServerCommand, ServerInit, ServerMessage, ServerSample, WorkerSample } from './proto.js';
import type { SoakWorkerData } from './worker.js';

/** Item memory of the memcached server: well above the clients' working set, so nothing is ever evicted (an
 * eviction would read as a lost value). */
export const MEMCACHED_MEMORY_MB = 256;

const init = JSON.parse(process.argv[2]!) as ServerInit;
const send = (m: ServerMessage) => process.send!(m);
const sampleChannel = `megapipe-soak-${process.pid}`;

function options(): ServeOptions {
  const base = { module: new URL('./worker.js', import.meta.url), workers: init.workers, host: init.host, port: 0 };
  const wd = (app: unknown): SoakWorkerData => ({ kind: init.kind, app, sampleChannel, leakPerConn: init.leakPerConn, corruptEvery: init.corruptEvery, dropOnClose: init.dropOnClose });
  switch (init.kind) {
    case 'echo': return { ...base, workerData: wd(null) };
    case 'memcached': {
      // what startServer() does (apps/memcached/server.ts), keeping the Server for its counters
      const o = resolveOptions({ threads: init.workers, host: init.host, port: 0, memoryMb: MEMCACHED_MEMORY_MB });
      return { ...base, workers: o.threads, workerData: wd(createWorkerData(o, 0)) };
    }
    case 'http': {
      // what startServer() does (apps/http/cli.ts), keeping the Server for its counters
      const app: HttpWorkerData = { root: init.httpRoot, handlerModule: init.httpHandler };
      return { ...base, workerData: wd(app), limits: { ...HTTP_CHANNEL_LIMITS }, deferAccept: HTTP_DEFER_ACCEPT };
    }
    // a legacy server as README's "Legacy servers" runs one on every core: serve() with its defaults, the worker
    // module's default export serveServer(() => http.createServer(...)) (worker.ts)
    case 'node-http': return { ...base, workerData: wd({ root: init.httpRoot }) };
  }
}

const server: Server = await serve(options());
server.on('workerExit', (e: { worker: number; code: number; error?: Error }) => send({ type: 'worker-exit', worker: e.worker, code: e.code, error: e.error?.stack ?? e.error?.message }));

const bc = new BroadcastChannel(sampleChannel);
bc.unref();
const waiting = new Map<number, { got: WorkerSample[]; done: () => void }>();
bc.onmessage = (e: unknown) => {
  const m = (e as { data: { type: string; id: number; sample: WorkerSample } }).data;
  const w = waiting.get(m.id);
  if (m.type === 'worker-sample' && w) { w.got.push(m.sample); if (w.got.length === server.workers) w.done(); }
};
let nextId = 1;

/** Workers' samples (bounded wait: a worker that does not answer in 10 s is left out, and the sample says so). */
async function sample(): Promise<ServerSample> {
  const id = nextId++;
  const got: WorkerSample[] = [];
  await new Promise<void>((resolve) => {
    const t = setTimeout(resolve, 10_000);
    waiting.set(id, { got, done: () => { clearTimeout(t); resolve(); } });
    bc.postMessage({ type: 'sample', id });
  });
  waiting.delete(id);
  const stats = await server.stats();
  (globalThis as { gc?: () => void }).gc?.();
  const main = getHeapStatistics().used_heap_size;
  got.sort((a, b) => a.worker - b.worker);
  return {
    t: Date.now(), rss: process.memoryUsage.rss(), mainHeapUsed: main, heapUsed: main + got.reduce((s, w) => s + w.heapUsed, 0), workers: got,
    serve: stats.map((s) => ({
      worker: s.worker, connections: s.connections, accepted: s.accepted, restarts: s.restarts,
      handles: s.channel?.handles ?? -1, inKernel: s.channel?.inKernel ?? -1, requestsRefused: s.channel?.requestsRefused ?? 0,
      recycleRefused: s.channel?.recycleRefused ?? 0, submitFailures: s.channel?.submitFailures ?? 0, enobufs: s.channel?.enobufs ?? 0,
      cqOverflows: s.channel?.cqOverflows ?? 0, bytesRead: s.channel?.bytesRead ?? 0, bytesWritten: s.channel?.bytesWritten ?? 0,
    })),
  };
}

process.on('message', (m: ServerCommand) => {
  if (m.type === 'sample') sample().then((s) => send({ type: 'sample', id: m.id, sample: s }), (e: Error) => send({ type: 'closed', sample: null, error: e.stack }));
  else if (m.type === 'close') {
    void (async () => {
      let last: ServerSample | null = null, error: string | undefined;
      try { last = await sample(); await server.close(5000); } catch (e) { error = (e as Error).stack; }
      bc.close();
      send({ type: 'closed', sample: last, error });
      process.disconnect();
    })();
  }
});
// the orchestrator gone: do not outlive it
process.on('disconnect', () => { setTimeout(() => process.exit(0), 100).unref(); });
send({ type: 'ready', port: server.port, pid: process.pid });
