// The node:net baseline: a plain net.createServer echo server, the way a Node.js user writes one.
//   node dist/bench/servers/net-echo.js --port P [--host H]
// Prints "listening on H:P" when ready; on SIGTERM/SIGINT prints {"accepted":N,"bytes":N} and exits 0. On SIGUSR2
// (program only) prints {"mem":{rss,heapUsed,heapTotal,external,arrayBuffers},"connections":N} after a full GC when
// run with --expose-gc, and keeps serving (bench/idle.ts).
import { createServer, type Socket } from 'node:net';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const usage = 'usage: net-echo --port P [--host H]\nnode:net echo server (TCP_NODELAY). Prints "listening on H:P"; on SIGTERM prints {"accepted":N,"bytes":N}.\n';

/** Starts an echo server; resolves with it and its counters once it listens. */
export function startNetEcho(host: string, port: number, opts: { exclusive?: boolean } = {}) {
  const counters = { accepted: 0, bytes: 0 };
  const server = createServer({ noDelay: true }, (sock: Socket) => {
    counters.accepted++;
    sock.on('data', (d: Buffer) => {
      counters.bytes += d.length;
      if (!sock.write(d)) sock.pause(); // the peer is not reading: stop reading until the write drains
    });
    sock.on('drain', () => sock.resume());
    sock.on('error', () => { /* resets are part of the workload */ });
  });
  return new Promise<{ server: typeof server; counters: typeof counters }>((res, rej) => {
    server.once('error', rej);
    server.listen({ host, port, backlog: 4096, exclusive: opts.exclusive ?? true }, () => res({ server, counters }));
  });
}

async function main() {
  const { values } = parseArgs({ options: { port: { type: 'string', default: '9000' }, host: { type: 'string', default: '127.0.0.1' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help) { process.stdout.write(usage); return; }
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) { process.stderr.write(`--port must be 0..65535\n${usage}`); process.exit(64); }
  const { server, counters } = await startNetEcho(values.host!, port);
  const addr = server.address();
  process.stdout.write(`listening on ${values.host}:${typeof addr === 'object' && addr ? addr.port : port}\n`);
  const stop = () => {
    process.stdout.write(JSON.stringify(counters) + '\n', () => process.exit(0));
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  // (server.getConnections counts open sockets without a per-socket listener that would add to their memory)
  process.on('SIGUSR2', () => server.getConnections((_err, connections) => {
    (globalThis as { gc?: () => void }).gc?.();
    const m = process.memoryUsage();
    process.stdout.write(JSON.stringify({ mem: { rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers }, connections }) + '\n');
  }));
}

// Run only as a program, not when imported (the cluster variant reuses startNetEcho).
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
