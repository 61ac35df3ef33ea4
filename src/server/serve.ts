// serve(): the multi-core server in one call. One worker thread per core, each with its own channel pinned to its
// core and its own member of a partitioned listener; the user's module runs in every worker.
import { Worker } from 'node:worker_threads';
import { EventEmitter } from 'node:events';
import { availableParallelism } from 'node:os';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { listen, type Listener } from '../listener.js';
import { socketsAvailable } from '../sockets.js';
import type { Limits } from '../limits.js';
import { requestedBackend, selectBackend } from '../backend.js';
import type { BackendName } from '../channel.js';
import type { ChannelStats } from '../channel.js';
import type { Channel } from '../channel.js';
import type { SessionFactory } from './session.js';
import type { ChannelServer } from './serve-channel.js';
import type { BalanceOptions } from './balance.js';
import { argError, rangeError } from '../errors.js';
import { checkOptions, optionKeys } from '../options.js';
import { resolveLimits } from '../limits.js';

const SERVE_OPTIONS = optionKeys<ServeOptions>({
  module: true, workers: true, host: true, port: true, backlog: true, deferAccept: true, partition: true, lwsocket: true,
  batch: true, backend: true, limits: true, pin: true, restart: true, workerData: true, maxConnections: true,
  endTimeoutMs: true, loadBalance: true,
});

/** What a worker module's default export receives. */
export interface WorkerContext {
  /** This worker's index (0-based) and the number of workers. */
  worker: number;
  workers: number;
  /** The CPU this worker's thread is pinned to (-1: not pinned). */
  cpu: number;
  /** `serve({workerData})`, structured-cloned into the worker (SharedArrayBuffers are shared). */
  workerData: unknown;
  /** This worker's channel and listener member, for modules that drive the channel themselves. */
  channel: Channel;
  listener: Listener;
  member: number;
  lwsocket: boolean;
  /** Load balancing: listening sockets to take connections from when they back up (empty: off). */
  stealFrom: readonly number[];
  balance: BalanceOptions | undefined;
}

/**
 * A worker module's default export: returns a SessionFactory (served by `serveChannel`), or a ChannelServer it
 * started itself on `ctx.channel` (for modules that use the channel API directly).
 */
export type WorkerSetup = (ctx: WorkerContext) => SessionFactory | ChannelServer | Promise<SessionFactory | ChannelServer>;

export interface ServeOptions {
  /** Path or URL of the worker module (default export: WorkerSetup). */
  module: string | URL;
  /** Worker threads (default: available CPUs). */
  workers?: number;
  host?: string;
  port?: number;
  backlog?: number;
  /** TCP_DEFER_ACCEPT on the listener, seconds (default 0: off); see ListenOptions.deferAccept. */
  deferAccept?: number;
  /** Partitioned listener: each worker accepts the connections its CPU received (default true when workers ≤ CPUs;
   * always false without the addon: one accept queue for every worker). */
  partition?: boolean;
  /** lwsockets (direct descriptors) for accepted connections (default true). */
  lwsocket?: boolean;
  /** Batch threshold per channel (1 = no batching). */
  batch?: number;
  backend?: BackendName;
  limits?: Partial<Limits>;
  /** Pin worker i to CPU i mod CPUs (default true). */
  pin?: boolean;
  /** Replace a worker that crashes (default true). */
  restart?: boolean;
  /** Data for every worker (structured clone; SharedArrayBuffers are shared). */
  workerData?: unknown;
  /** Connections per worker (default: the channel's maxHandles). */
  maxConnections?: number;
  /** See ServeChannelOptions.endTimeoutMs (default 30,000 ms). */
  endTimeoutMs?: number;
  /**
   * Load balancing between partitions (default false: the paper's behaviour): an idle worker takes connections
   * from another worker's backed-up accept queue (see balance.ts). Also un-sticks a shared queue.
   */
  loadBalance?: boolean | BalanceOptions;
}

export interface WorkerStats {
  worker: number;
  cpu: number;
  accepted: number;
  /** Of those, connections taken from other partitions by the load balancer. */
  stolen?: number;
  connections: number;
  restarts: number;
  channel: ChannelStats;
}

export interface WorkerExit { worker: number; code: number; error?: Error; replaced: boolean }

interface Slot { index: number; cpu: number; member: number; worker: Worker | null; restarts: number; last: WorkerStats | null }

/** The events of a Server and their arguments. */
export type ServerEvents = {
  /** A worker died unexpectedly (and is replaced, unless `restart: false`). */
  workerExit: [exit: WorkerExit];
  /** A replacement worker failed to start. */
  error: [error: Error];
};

/** A running multi-worker server. Events (typed: ServerEvents): 'workerExit' when a worker dies unexpectedly, 'error'
 * when its replacement fails to start. */
export class Server extends EventEmitter<ServerEvents> {
  readonly host: string;
  readonly port: number;
  readonly listener: Listener;
  readonly partitioned: boolean;
  #slots: Slot[];
  #opts: ServeOptions;
  #closing = false;
  #nextReq = 1;
  #pending = new Map<number, (s: WorkerStats) => void>();

  /** @internal */
  constructor(listener: Listener, partitioned: boolean, slots: Slot[], opts: ServeOptions) {
    super();
    this.listener = listener; this.host = listener.host; this.port = listener.port;
    this.partitioned = partitioned; this.#slots = slots; this.#opts = opts;
  }

  get workers(): number { return this.#slots.length; }

  /** @internal */
  async start(): Promise<void> { await Promise.all(this.#slots.map((s) => this.#spawn(s))); }

  #spawn(slot: Slot): Promise<void> {
    const o = this.#opts;
    const init = {
      index: slot.index, workers: this.#slots.length, cpu: slot.cpu, member: slot.member,
      host: this.listener.host, port: this.listener.port, fds: [...this.listener.fds], partitions: this.listener.partitions.map((p) => [...p]),
      module: String(o.module instanceof URL ? o.module.href : pathToFileURL(String(o.module)).href),
      backend: o.backend, limits: o.limits, batch: o.batch, lwsocket: o.lwsocket ?? true,
      maxConnections: o.maxConnections, endTimeoutMs: o.endTimeoutMs, userData: o.workerData,
      // partitioned: watch the other members; shared: watch the one queue everybody accepts from
      stealFrom: o.loadBalance ? (this.partitioned ? this.listener.fds.filter((_, i) => i !== slot.member) : [...this.listener.fds]) : [],
      balance: typeof o.loadBalance === 'object' ? o.loadBalance : undefined,
    };
    const w = new Worker(fileURLToPath(new URL('./serve-worker.js', import.meta.url)), { workerData: init });
    slot.worker = w;
    return new Promise((resolve, reject) => {
      let ready = false;
      w.on('message', (m: { type: string; id?: number; stats?: WorkerStats }) => {
        if (m.type === 'ready') { ready = true; resolve(); }
        else if (m.type === 'stats' && m.id !== undefined) { const r = this.#pending.get(m.id); this.#pending.delete(m.id); r?.({ ...m.stats!, restarts: slot.restarts }); }
        else if (m.type === 'final') slot.last = { ...m.stats!, restarts: slot.restarts };
      });
      let error: Error | undefined;
      w.on('error', (e) => { error = e; if (!ready) reject(e); });
      w.on('exit', (code) => {
        if (slot.worker === w) slot.worker = null;
        if (this.#closing || !ready) return;
        const replace = this.#opts.restart ?? true;
        this.emit('workerExit', { worker: slot.index, code, error, replaced: replace });
        if (replace) { slot.restarts++; this.#spawn(slot).catch((e: Error) => this.emit('error', e)); }
      });
    });
  }

  /** Counters of every worker (and its channel), gathered from the worker threads. */
  stats(): Promise<WorkerStats[]> {
    return Promise.all(this.#slots.map((s) => {
      const w = s.worker;
      if (!w) return Promise.resolve(s.last ?? { worker: s.index, cpu: s.cpu, accepted: 0, connections: 0, restarts: s.restarts, channel: null as unknown as ChannelStats });
      const id = this.#nextReq++;
      return new Promise<WorkerStats>((resolve) => { this.#pending.set(id, resolve); w.postMessage({ type: 'stats', id }); });
    }));
  }

  /**
   * Graceful shutdown: every worker stops accepting and drains what is already queued on its listener member, lets
   * open connections finish (queued bytes sent) for up to `deadlineMs` (default 5 s), then closes. Resolves with each
   * worker's final counters; the listener is closed last.
   */
  async close(deadlineMs = 5000): Promise<WorkerStats[]> {
    this.#closing = true;
    await Promise.all(this.#slots.map((s) => new Promise<void>((resolve) => {
      const w = s.worker;
      if (!w) { resolve(); return; }
      w.once('exit', () => resolve());
      w.postMessage({ type: 'close', deadlineMs });
    })));
    this.listener.close();
    return this.#slots.map((s) => s.last ?? { worker: s.index, cpu: s.cpu, accepted: 0, connections: 0, restarts: s.restarts, channel: null as unknown as ChannelStats });
  }
}

/** Starts a multi-worker server (see ServeOptions). Resolves once every worker is accepting. */
export async function serve(options: ServeOptions): Promise<Server> {
  if (typeof options !== 'object' || options === null) throw argError('options', 'an object', options);
  checkOptions(options, SERVE_OPTIONS);
  for (const k of ['partition', 'lwsocket', 'pin', 'restart'] as const) {
    if (options[k] !== undefined && typeof options[k] !== 'boolean') throw argError(k, 'a boolean', options[k]);
  }
  if (options.loadBalance !== undefined && typeof options.loadBalance !== 'boolean' && (typeof options.loadBalance !== 'object' || options.loadBalance === null)) throw argError('loadBalance', 'a boolean or BalanceOptions', options.loadBalance);
  if (options.batch !== undefined && (!Number.isInteger(options.batch) || options.batch < 1)) throw rangeError('batch', 'a positive integer', options.batch);
  if (options.maxConnections !== undefined && (!Number.isInteger(options.maxConnections) || options.maxConnections < 1)) throw rangeError('maxConnections', 'a positive integer', options.maxConnections);
  if (options.endTimeoutMs !== undefined && (!Number.isInteger(options.endTimeoutMs) || options.endTimeoutMs < 0)) throw rangeError('endTimeoutMs', 'a non-negative integer (ms)', options.endTimeoutMs);
  if (options.backend !== undefined) requestedBackend(options.backend);
  if (options.limits !== undefined) resolveLimits(options.limits);
  if (typeof options.module !== 'string' && !(options.module instanceof URL)) throw argError('module', 'a path or URL of the worker module', options.module);
  const cpus = availableParallelism();
  const workers = options.workers ?? cpus;
  if (!Number.isInteger(workers) || workers < 1 || workers > 256) throw rangeError('workers', 'an integer in 1..256', workers);
  const pin = options.pin ?? true;
  // without the addon the listener has one member (node's TCP handle): every worker accepts from it
  const partitioned = (options.partition ?? workers <= cpus) && workers > 1 && socketsAvailable;
  if (partitioned && workers > cpus) throw rangeError('workers', `at most the CPU count (${cpus}) with partition: true`, workers);
  const cpuOf = (i: number) => (pin ? i % cpus : -1);
  // partitioned: one member per worker, steered by CPU; shared: one member (one accept queue) for all workers
  const listener = listen({
    host: options.host, port: options.port, backlog: options.backlog, deferAccept: options.deferAccept,
    partitions: partitioned ? Array.from({ length: workers }, (_, i) => [i % cpus]) : undefined,
  });
  const slots: Slot[] = Array.from({ length: workers }, (_, i) => ({ index: i, cpu: cpuOf(i), member: partitioned ? i : 0, worker: null, restarts: 0, last: null }));
  // the backend is chosen here, once for the process: a fallback is reported once (here), not once per worker
  let backend: BackendName | undefined = options.backend;
  try { if (selectBackend(backend) === 'portable') backend = 'portable'; } catch (e) { listener.close(); throw e; }
  const server = new Server(listener, partitioned, slots, { ...options, backend });
  try { await server.start(); } catch (e) { await server.close(0).catch(() => {}); throw e; }
  return server;
}
