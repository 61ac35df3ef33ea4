// The soak's serve() worker module: runs the application's own worker setup unchanged (bin/echo.ts's startEcho, the
// memcached app's worker, megapipe-http's worker; node-http: a node:http server through megapipe/net's serveServer,
// as a legacy application's worker module is written) and adds a side channel, a BroadcastChannel the server process
// asks for samples on: this worker's V8 heap (after a full GC when run with --expose-gc) and the application's own
// connection count. With `leakPerConn` it also keeps that many bytes per accepted connection: a deliberate leak,
// to show the memory criterion catches one; with `corruptEvery` it flips a byte in every Nth write, and with
// `dropOnClose` its channel drops the bytes still queued when a connection is closed (megapipe/net's destroy() did,
// 5406892), to show the clients' verification catches that (test/soak.test.ts, `npm run soak -- --leak-per-conn N
// --corrupt-every N`, `--drop-on-close`).
import { BroadcastChannel } from 'node:worker_threads';
import { getHeapStatistics } from 'node:v8';
import type { Channel, ChannelServer, Conn, MpEvent, SessionFactory, WorkerContext } from '../../src/index.js';
import type { HttpSessionFactory } from '../../apps/http/worker.js';
import type { Kind, WorkerSample } from './proto.js';

/** serve({workerData}) of the soak's servers. */
export interface SoakWorkerData {
  kind: Kind;
  /** The application's own workerData (memcached: store and settings; HTTP: root, handler, options). */
  app: unknown;
  /** Name of the BroadcastChannel samples are asked for on. */
  sampleChannel: string;
  leakPerConn: number;
  corruptEvery: number;
  dropOnClose: boolean;
}

const leaked: unknown[] = [];
function leak(bytes: number): void {
  // half in external memory (RSS), half in the V8 heap (a packed array of doubles)
  leaked.push(Buffer.alloc(bytes >> 1, 1), new Array<number>(Math.max(1, bytes >> 4)).fill(0.5));
}

let writes = 0;
/** The bytes to write: every `every`th time a copy with one byte flipped. */
function maybeCorrupt(every: number, data: Uint8Array, offset = 0, length = data.byteLength - offset): [Uint8Array, number, number] {
  if (every <= 0 || length === 0 || ++writes % every !== 0) return [data, offset, length];
  const copy = Buffer.from(data.subarray(offset, offset + length));
  copy[(writes * 7919) % length] ^= 0x20;
  return [copy, 0, length];
}

/** A Conn whose writes go through maybeCorrupt. */
function corruptingConn(conn: Conn, every: number): Conn {
  return {
    get id() { return conn.id; }, get worker() { return conn.worker; }, get pendingBytes() { return conn.pendingBytes; },
    get remoteAddress() { return conn.remoteAddress; }, get remotePort() { return conn.remotePort; }, get remoteFamily() { return conn.remoteFamily; },
    get localAddress() { return conn.localAddress; }, get localPort() { return conn.localPort; },
    write: (d: Uint8Array | string, o?: number, l?: number) => conn.write(...maybeCorrupt(every, typeof d === 'string' ? Buffer.from(d, 'utf8') : d, o, l)),
    writeNoCopy: (d, o, l) => conn.write(...maybeCorrupt(every, d, o, l)),
    writeAscii: (t) => conn.write(...maybeCorrupt(every, Buffer.from(t, 'latin1'))),
    sendFile: (fd, pos, len) => conn.sendFile(fd, pos, len), readFile: (fd, pos, len) => conn.readFile(fd, pos, len),
    pause: () => conn.pause(), resume: () => conn.resume(), halfClose: () => conn.halfClose(), end: () => conn.end(), destroy: () => conn.destroy(),
  };
}

export default async function setup(ctx: WorkerContext): Promise<SessionFactory | ChannelServer> {
  const wd = ctx.workerData as SoakWorkerData;
  let made: SessionFactory | ChannelServer;
  let appConnections: () => number | null = () => null;
  let appStats: () => Record<string, number> | undefined = () => undefined;
  if (wd.dropOnClose) {
    const ch: Channel = ctx.channel, disconnect = ch.disconnect.bind(ch);
    ch.disconnect = (h: number) => disconnect(h, true);
  }
  switch (wd.kind) {
    case 'echo': {
      if (wd.corruptEvery > 0) {
        const ch: Channel = ctx.channel, write = ch.write.bind(ch);
        ch.write = (h: number, d: Uint8Array, o?: number, l?: number) => write(h, ...maybeCorrupt(wd.corruptEvery, d, o, l));
      }
      if (wd.leakPerConn > 0) {
        // startEcho sets the channel's handler: keep a leak per accept in front of it
        const ch = ctx.channel, onEvent = ch.onEvent.bind(ch);
        ch.onEvent = (fn: (ev: MpEvent) => void) => onEvent((ev: MpEvent) => { if (ev.type === 'accept') leak(wd.leakPerConn); fn(ev); });
      }
      const echo = await import('../../bin/echo.js');
      const server = echo.default(ctx);
      appConnections = () => server.connections;
      made = server;
      break;
    }
    case 'memcached': {
      const mc = await import('../../apps/memcached/worker.js');
      made = mc.default({ worker: ctx.worker, workers: ctx.workers, workerData: wd.app, listener: ctx.listener });
      break;
    }
    case 'node-http': {
      // megapipe/net writes through the channel's write (Buffers) and writeAscii (node:http's heads, as strings)
      if (wd.corruptEvery > 0) {
        const ch: Channel = ctx.channel, write = ch.write.bind(ch), writeAscii = ch.writeAscii.bind(ch);
        ch.write = (h: number, d: Uint8Array, o?: number, l?: number) => write(h, ...maybeCorrupt(wd.corruptEvery, d, o, l));
        ch.writeAscii = (h: number, t: string) => {
          const b = Buffer.from(t, 'latin1'), [d, o, l] = maybeCorrupt(wd.corruptEvery, b);
          return d === b ? writeAscii(h, t) : write(h, d, o, l);
        };
      }
      const { serveServer } = await import('../../src/net/index.js');
      const { createNodeHttpServer } = await import('./node-http.js');
      const server = createNodeHttpServer((wd.app as { root: string }).root);
      if (wd.leakPerConn > 0) server.on('connection', () => leak(wd.leakPerConn));
      made = await serveServer(() => server)(ctx);
      // node's own count of the server's connections (what getConnections() reports), which megapipe/net keeps
      appConnections = () => (server as unknown as { _connections: number })._connections;
      appStats = () => ({ ...server.counts });
      break;
    }
    case 'http': {
      const http = await import('../../apps/http/worker.js');
      const factory: HttpSessionFactory = await http.default({ worker: ctx.worker, workers: ctx.workers, workerData: wd.app });
      appConnections = () => factory.app.connections;
      appStats = () => ({ ...factory.app.timeouts });
      made = factory;
      break;
    }
    default: throw new TypeError(`soak worker: unknown kind ${String(wd.kind)}`);
  }
  if ((wd.leakPerConn > 0 || wd.corruptEvery > 0) && typeof made === 'function') {
    const inner = made;
    made = Object.assign((conn: Conn) => {
      if (wd.leakPerConn > 0) leak(wd.leakPerConn);
      return inner(wd.corruptEvery > 0 ? corruptingConn(conn, wd.corruptEvery) : conn);
    }, inner);
  }

  const bc = new BroadcastChannel(wd.sampleChannel);
  bc.unref();   // never what keeps the worker alive
  bc.onmessage = (e: unknown) => {
    const m = (e as { data: { type: string; id: number } }).data;
    if (m.type !== 'sample') return;
    (globalThis as { gc?: () => void }).gc?.();
    const h = getHeapStatistics();
    const sample: WorkerSample = { worker: ctx.worker, heapUsed: h.used_heap_size, heapTotal: h.total_heap_size, external: h.external_memory, appConnections: appConnections(), app: appStats() };
    bc.postMessage({ type: 'worker-sample', id: m.id, sample });
  };
  return made;
}
