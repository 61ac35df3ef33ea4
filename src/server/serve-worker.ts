// The worker side of serve(): one pinned channel, one listener member, the user's module.
import { parentPort, workerData } from 'node:worker_threads';
import { createChannel } from '../backend.js';
import { Listener } from '../listener.js';
import { serveChannel, type ChannelServer } from './serve-channel.js';
import type { WorkerSetup } from './serve.js';
import type { Limits } from '../limits.js';
import type { BackendName } from '../channel.js';
import type { BalanceOptions } from './balance.js';

const d = workerData as {
  index: number; workers: number; cpu: number; member: number; host: string; port: number; fds: number[]; partitions: number[][];
  module: string; backend?: BackendName; limits?: Partial<Limits>; batch?: number; lwsocket: boolean; maxConnections?: number; endTimeoutMs?: number; userData: unknown; stealFrom: number[]; balance?: BalanceOptions;
};

const channel = createChannel({ backend: d.backend, limits: d.limits, batch: d.batch, cpu: d.cpu >= 0 ? d.cpu : undefined });
// The main thread owns the listener's sockets: this view never closes them.
const listener = new Listener(d.host, d.port, d.fds, d.partitions);
const mod = (await import(d.module)) as { default?: WorkerSetup };
if (typeof mod.default !== 'function') throw new TypeError(`${d.module}: the default export must be a setup function (ctx) => SessionFactory | ChannelServer`);
const made = await mod.default({ worker: d.index, workers: d.workers, cpu: d.cpu, workerData: d.userData, channel, listener, member: d.member, lwsocket: d.lwsocket, stealFrom: d.stealFrom, balance: d.balance });
const server: ChannelServer = typeof made === 'function'
  ? serveChannel(channel, listener, made, { worker: d.index, member: d.member, lwsocket: d.lwsocket, maxConnections: d.maxConnections, endTimeoutMs: d.endTimeoutMs, stealFrom: d.stealFrom, balance: d.balance })
  : made;

const snapshot = () => ({ worker: d.index, cpu: d.cpu, accepted: server.accepted, stolen: server.stolen ?? 0, connections: server.connections, restarts: 0, channel: channel.stats() });
parentPort!.on('message', async (m: { type: string; id?: number; deadlineMs?: number }) => {
  if (m.type === 'stats') parentPort!.postMessage({ type: 'stats', id: m.id, stats: snapshot() });
  else if (m.type === 'close') {
    await server.close(m.deadlineMs);
    parentPort!.postMessage({ type: 'final', stats: snapshot() });
    channel.close();
    parentPort!.close();
  }
});
parentPort!.postMessage({ type: 'ready' });
