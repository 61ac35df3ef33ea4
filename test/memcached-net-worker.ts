// A worker_threads entry for memcached-threads.test.ts: serves the memcached app over node:net on a port of its own,
// over the store passed in workerData, so the test can choose which thread each connection talks to (serve()'s
// workers share one port).
import { parentPort, workerData } from 'node:worker_threads';
import { serveNet } from '../src/index.js';
import type { McWorkerData } from '../apps/memcached/app.js';
import setup from '../apps/memcached/worker.js';

interface NetWorkerData { data: McWorkerData; worker: number; workers: number; host?: string }

const wd = workerData as NetWorkerData;
const factory = await setup({ worker: wd.worker, workers: wd.workers, workerData: wd.data });
const handle = await serveNet(factory, { host: wd.host ?? '127.0.0.1', port: 0 });
parentPort!.postMessage({ port: handle.port });
parentPort!.on('message', (m: unknown) => {
  if (m === 'close') void handle.close(500).then(() => parentPort!.close());
});
