// A worker_threads entry that serves the memcached app over node:net on its own port, sharing the store passed in
// workerData. Used by tests (one keyspace seen from several threads) until the library's serve() runs the workers.
import { parentPort, workerData } from 'node:worker_threads';
import { serveNet } from '../../src/serve-net.js';
import type { McWorkerData } from './app.js';
import setup from './worker.js';

interface NetWorkerData { data: McWorkerData; worker: number; workers: number; host?: string }

const wd = workerData as NetWorkerData;
const factory = await setup({ worker: wd.worker, workers: wd.workers, workerData: wd.data });
const handle = await serveNet(factory, { host: wd.host ?? '127.0.0.1', port: 0 });
parentPort!.postMessage({ port: handle.port });
parentPort!.on('message', (m: unknown) => {
  if (m === 'close') void handle.close(500).then(() => parentPort!.close());
});
