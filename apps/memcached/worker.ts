// Worker entry of the memcached app, in the shape `serve({ module, workers, workerData })` loads: the default export
// is `setup(ctx)`, called once per worker thread, returning that worker's connection-session factory. The store's
// shared memory arrives in `workerData` (created once by the main thread, see server.ts), so every worker serves
// the same keyspace.
import type { SessionFactory } from '../../src/index.js';
import { McApp, type McWorkerData } from './app.js';

export interface SetupContext {
  worker: number;
  workers: number;
  workerData: unknown;
  /** Under serve(): the listener (its port is the bound one, also when asked for port 0). */
  listener?: { port: number };
}

export default function setup(ctx: SetupContext): SessionFactory {
  const data = ctx.workerData as McWorkerData;
  if (!data || !data.store || !(data.store.arena instanceof SharedArrayBuffer)) {
    throw new TypeError('memcached worker: workerData must be { store: StoreShared, settings } from createWorkerData()');
  }
  if (ctx.listener) data.settings.port = ctx.listener.port;   // this worker's own copy of the settings
  return new McApp(data, ctx.worker, ctx.workers).factory();
}
