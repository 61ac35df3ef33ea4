// Starting the memcached app: options like memcached's command line → shared store → workers serving it.
//
// `startServer` is the one place that chooses the transport: 'channels' (the default, what the CLI ships and the
// benchmarks measure) runs `serve()`: N worker threads, each on its own channel (io_uring), one store in shared
// memory; 'net' runs the same worker `setup()` in this thread over node:net (`serveNet`), the portable second
// transport the conformance tests also run on.
import { availableParallelism } from 'node:os';
import { MpCode, checkOptions, optionKeys, serve, serveNet, type BackendName } from '../../src/index.js';
import { createStoreShared, type StoreShared } from './store.js';
import type { McProtocol, McSettings, McWorkerData } from './app.js';
import setup from './worker.js';

export interface ServerOptions {
  /** TCP port (`-p`), default 11211; 0 picks a free port. */
  port?: number;
  /** Listen address (`-l`), default 127.0.0.1. */
  host?: string;
  /** Worker threads (`-t`), default 4, capped at the CPU count. */
  threads?: number;
  /** Item memory in megabytes (`-m`), default 64. */
  memoryMb?: number;
  /** Max simultaneous connections (`-c`), default 1024. */
  maxConns?: number;
  /** Max item size in bytes (`-I`), default 1 MiB. */
  itemSizeMax?: number;
  /** Slab growth factor (`-f`), default 1.25. */
  factor?: number;
  /** Minimum key+value+flags space in the smallest chunk (`-n`), default 48. */
  chunkSize?: number;
  /** 0, 1 (`-v`), 2 (`-vv`). */
  verbosity?: number;
  /** `-o idle_timeout`: close connections waiting for a command longer than this, seconds; default 0 (off). */
  idleTimeout?: number;
  /** `-B`: 'auto' (default: each connection by its first byte), 'ascii' or 'binary'. */
  protocol?: McProtocol;
  /** `-o track_sizes`: `stats sizes` reports the item size histogram. Default false. */
  trackSizes?: boolean;
  /** `-F` sets this false: flush_all is refused. Default true. */
  flushEnabled?: boolean;
  /** `-A`: the `shutdown` command stops the process (SIGINT to itself; for the CLI). Default false. */
  shutdownEnabled?: boolean;
  /** Use an existing store (tests: several servers over one keyspace). */
  store?: StoreShared;
  /** Transport (default 'channels'): `serve()`, one worker thread and channel per thread; 'net' = node:net in this thread. */
  transport?: 'channels' | 'net';
  /** 'channels' only: the channels' backend (default 'auto': io_uring when available; tests ask for 'uring'). */
  backend?: BackendName;
}

export interface ServerHandle {
  readonly host: string;
  readonly port: number;
  /** The shared store (main thread's view is created on demand by tests). */
  readonly store: StoreShared;
  readonly workers: number;
  close(): Promise<void>;
}

const SERVER_OPTIONS = optionKeys<ServerOptions>({
  port: true, host: true, threads: true, memoryMb: true, maxConns: true, itemSizeMax: true, factor: true,
  chunkSize: true, verbosity: true, idleTimeout: true, store: true, transport: true, backend: true,
  protocol: true, trackSizes: true, flushEnabled: true, shutdownEnabled: true,
});

/** Checks the options' keys and types (TypeError naming the option); the ranges are resolveOptions'. */
export function checkServerOptions(o: ServerOptions): void {
  checkOptions(o, SERVER_OPTIONS, 'memcached server options');
  const bad = (k: string, want: string): never => { throw Object.assign(new TypeError(`${k} must be ${want} (got ${JSON.stringify((o as Record<string, unknown>)[k])})`), { code: MpCode.INVALID_ARG }); };
  for (const k of ['trackSizes', 'flushEnabled', 'shutdownEnabled'] as const) {
    const v = o[k];
    if (v !== undefined && typeof v !== 'boolean') bad(k, 'a boolean');
  }
  for (const k of ['port', 'threads', 'memoryMb', 'maxConns', 'itemSizeMax', 'factor', 'chunkSize', 'verbosity', 'idleTimeout'] as const) {
    const v = o[k];
    if (v !== undefined && (typeof v !== 'number' || Number.isNaN(v))) bad(k, 'a number');
  }
  for (const k of ['port', 'threads', 'maxConns', 'itemSizeMax', 'chunkSize', 'verbosity'] as const) {
    const v = o[k];
    if (v !== undefined && (!Number.isInteger(v) || v < 0)) throw Object.assign(new RangeError(`${k} must be a non-negative integer (got ${v})`), { code: MpCode.OUT_OF_RANGE });
  }
  if (o.port !== undefined && o.port > 65535) throw Object.assign(new RangeError(`port must be in 0..65535 (got ${o.port})`), { code: MpCode.OUT_OF_RANGE });
  if (o.host !== undefined && typeof o.host !== 'string') bad('host', 'an address string');
  if (o.transport !== undefined && o.transport !== 'channels' && o.transport !== 'net') bad('transport', '"channels" or "net"');
}

/** Validate and fill in defaults (throws TypeError naming the option, RangeError with memcached's messages). */
export function resolveOptions(o: ServerOptions): Required<Omit<ServerOptions, 'store' | 'transport' | 'backend'>> & { store?: StoreShared } {
  checkServerOptions(o);
  const memoryMb = o.memoryMb ?? 64;
  const itemSizeMax = o.itemSizeMax ?? 1024 * 1024;
  const threads = Math.max(1, Math.min(o.threads ?? 4, availableParallelism()));
  if (!(memoryMb > 0)) throw new RangeError('memory limit (-m) must be greater than 0');
  if (itemSizeMax < 1024) throw new RangeError('Item max size cannot be less than 1024 bytes.');
  if (itemSizeMax > 1024 * 1024 * 1024) throw new RangeError('Cannot set item size limit higher than 1 GB.');
  if (itemSizeMax > (memoryMb * 1024 * 1024) / 2) throw new RangeError('Cannot set item size limit higher than 1/2 of memory max.');
  const idleTimeout = o.idleTimeout ?? 0;
  if (!Number.isInteger(idleTimeout) || idleTimeout < 0 || idleTimeout > 0xffffffff) {
    throw new RangeError(`idle_timeout must be an integer number of seconds in 0..4294967295, got ${idleTimeout}`);
  }
  const protocol = o.protocol ?? 'auto';
  if (protocol !== 'auto' && protocol !== 'ascii' && protocol !== 'binary') {
    throw new RangeError(`protocol (-B) must be auto, ascii or binary, got ${String(protocol)}`);
  }
  return {
    protocol, flushEnabled: o.flushEnabled ?? true, trackSizes: o.trackSizes ?? false, shutdownEnabled: o.shutdownEnabled ?? false,
    port: o.port ?? 11211, host: o.host ?? '127.0.0.1', threads, memoryMb, maxConns: o.maxConns ?? 1024,
    itemSizeMax, factor: o.factor ?? 1.25, chunkSize: o.chunkSize ?? 48, verbosity: o.verbosity ?? 0, idleTimeout,
    store: o.store,
  };
}

/** The store and settings every worker receives. */
export function createWorkerData(o: ReturnType<typeof resolveOptions>, port: number): McWorkerData {
  const store = o.store ?? createStoreShared({
    maxBytes: o.memoryMb * 1024 * 1024, itemSizeMax: o.itemSizeMax, factor: o.factor, chunkSize: o.chunkSize,
  });
  const settings: McSettings = {
    host: o.host, port, maxConns: o.maxConns, threads: o.threads, verbosity: o.verbosity, idleTimeout: o.idleTimeout,
    protocol: o.protocol, flushEnabled: o.flushEnabled, trackSizes: o.trackSizes, shutdownEnabled: o.shutdownEnabled, startedAt: Date.now(),
  };
  return { store, settings };
}

/** Start the cache server; resolves once listening. */
export async function startServer(options: ServerOptions = {}): Promise<ServerHandle> {
  checkServerOptions(options);
  const { transport = 'channels', ...rest } = options;
  return transport === 'channels' ? startWithServe(rest) : startWithServeNet(rest);
}

/** megapipe's serve(): `threads` worker threads, each with its own channel, one keyspace in shared memory. */
async function startWithServe(options: ServerOptions): Promise<ServerHandle> {
  const { backend, ...rest } = options;
  const o = resolveOptions(rest);
  const data = createWorkerData(o, o.port);
  const h = await serve({ module: new URL('./worker.js', import.meta.url), workers: o.threads, host: o.host, port: o.port, workerData: data, backend });
  data.settings.port = h.port;
  return { host: o.host, port: h.port, store: data.store, workers: o.threads, close: async () => { await h.close(2000); } };
}

/** The portable transport: the worker's setup() in this thread, over node:net (one worker). */
async function startWithServeNet(options: ServerOptions): Promise<ServerHandle> {
  const { backend: _b, ...rest } = options;
  const o = resolveOptions(rest);
  const data = createWorkerData(o, o.port);
  const factory = await setup({ worker: 0, workers: 1, workerData: data });
  // connection limit is enforced by the sessions (memcached's "ERROR Too many open connections"); leave room here
  const h = await serveNet(factory, { host: o.host, port: o.port, maxConnections: o.maxConns + 64 });
  data.settings.port = h.port;
  return { host: o.host, port: h.port, store: data.store, workers: 1, close: () => h.close(2000) };
}


