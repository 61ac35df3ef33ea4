#!/usr/bin/env node
// megapipe-echo-server: the benchmarks' echo/RPC server. Prints `listening on HOST:PORT` when ready; on SIGTERM or
// SIGINT stops and prints one JSON line of counters per worker, then exits 0. On SIGUSR2 it prints one line
// {"mem":{rss,heapUsed,heapTotal,external,arrayBuffers},"connections":N} (after a full GC when run with
// --expose-gc) and keeps serving: bench/idle.ts measures memory per idle connection with it. The heap figures are
// the main thread's isolate; with --workers > 1 the workers' heaps are not included and "connections" is null.
import { parseArgs } from 'node:util';
import { createChannel, currentCpu, listen, listenPortable, serve, version, MpCode, type BackendName, type ChannelStats, type Listener } from '../src/index.js';
import { startEcho } from './echo.js';

const usage = `usage: megapipe-echo-server --port P [--host H] [--workers N] [--backend uring|portable|auto]
                            [--no-lwsocket] [--no-partition] [--load-balance] [--batch N] [--cpu C]
  --port P          port to listen on (0: any; the chosen one is printed)
  --host H          address literal to bind (default 127.0.0.1)
  --workers N       worker threads, one channel each (default 1: the main thread serves)
  --backend B       uring, portable or auto (default auto; also MEGAPIPE_BACKEND)
  --no-lwsocket     accept regular fds instead of direct descriptors
  --no-partition    one shared accept queue for all workers instead of one per CPU
  --load-balance    idle workers take connections from other workers' backed-up accept queues (serve's loadBalance)
  --batch N         batch threshold (1 = no batching)
  --cpu C           pin the (single-worker) channel's thread to CPU C
  --version         print megapipe's version and exit`;

function fail(msg: string): never { process.stderr.write(`megapipe-echo-server: ${msg}\n${usage}\n`); process.exit(64); }

let args;
try {
  args = parseArgs({ options: {
    port: { type: 'string' }, host: { type: 'string', default: '127.0.0.1' }, workers: { type: 'string', default: '1' },
    backend: { type: 'string', default: process.env.MEGAPIPE_BACKEND ?? 'auto' }, 'no-lwsocket': { type: 'boolean', default: false },
    'no-partition': { type: 'boolean', default: false }, 'load-balance': { type: 'boolean', default: false }, batch: { type: 'string' }, cpu: { type: 'string' }, help: { type: 'boolean', short: 'h' }, version: { type: 'boolean', short: 'V' },
  } }).values;
} catch (e) { fail((e as Error).message); }
if (args.help) { process.stdout.write(usage + '\n'); process.exit(0); }
if (args.version) { process.stdout.write(`megapipe-echo-server ${version}\n`); process.exit(0); }
const int = (name: string, v: string | undefined, lo: number, hi: number): number | undefined => {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < lo || n > hi) fail(`--${name} must be an integer in ${lo}..${hi} (got ${v})`);
  return n;
};
if (args.port === undefined) fail('--port is required');
const port = int('port', args.port, 0, 65535)!;
const workers = int('workers', args.workers, 1, 256)!;
const batch = int('batch', args.batch, 1, 1024);
const cpu = int('cpu', args.cpu, 0, 1023);
const backend = args.backend as BackendName;
if (!['uring', 'portable', 'auto'].includes(backend)) fail(`--backend must be uring, portable or auto (got ${backend})`);
const lwsocket = !args['no-lwsocket'];

/** Prints the SIGUSR2 memory line; `connections` is the open connection count when one thread serves. */
function reportMemory(connections: number | null): void {
  (globalThis as { gc?: () => void }).gc?.();
  const m = process.memoryUsage();
  process.stdout.write(JSON.stringify({ mem: { rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers }, connections }) + '\n');
}

const line = (worker: number, cpuN: number, accepted: number, s: ChannelStats) =>
  JSON.stringify({ worker, cpu: cpuN, backend: s.backend, accepted, bytes: s.bytesRead, enters: s.enters, completions: s.completions, batches: s.batches, wakeups: s.wakeups, flushes: s.flushes });

/** A native listener where the addon is here (the portable backend serves one as well), node:net's elsewhere. */
async function listenAny(o: { host: string; port: number }): Promise<Listener> {
  try { return listen(o); } catch (e) {
    if ((e as { code?: string }).code === MpCode.BACKEND_UNAVAILABLE) return listenPortable(o);
    throw e;
  }
}

if (workers === 1) {
  const ch = createChannel({ backend, batch, cpu });
  const listener = await listenAny({ host: args.host, port });
  const server = startEcho(ch, listener, { lwsocket });
  process.stdout.write(`listening on ${listener.host}:${listener.port}\n`);
  const stop = async () => {
    await server.close(500);
    process.stdout.write(line(0, cpu ?? currentCpu(), server.accepted, ch.stats()) + '\n');
    ch.close(); listener.close();
    process.exit(0);
  };
  process.once('SIGTERM', stop); process.once('SIGINT', stop);
  process.on('SIGUSR2', () => reportMemory(server.connections));
} else {
  const server = await serve({
    module: new URL('./echo.js', import.meta.url), workers, host: args.host, port, backend, batch, lwsocket, partition: !args['no-partition'],
    loadBalance: args['load-balance'],
  });
  server.on('workerExit', (e) => process.stderr.write(`worker ${e.worker} exited (code ${e.code})${e.replaced ? ', replaced' : ''}\n`));
  process.stdout.write(`listening on ${server.host}:${server.port}\n`);
  const stop = async () => {
    const stats = await server.close(500);
    for (const s of stats) process.stdout.write(line(s.worker, s.cpu, s.accepted, s.channel) + '\n');
    process.exit(0);
  };
  process.once('SIGTERM', stop); process.once('SIGINT', stop);
  process.on('SIGUSR2', () => reportMemory(null));
}
