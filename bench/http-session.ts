// megapipe-http's per-request JavaScript alone: nanoseconds per keep-alive `GET /index.html` (1 KiB, cached) through
// one connection's session — parser, dispatch, the static handler, the prepared response — over a transport that
// only counts what it is given (no I/O, no channel). Each build runs in a process of its own, the builds interleaved;
// `--baseline DIR` (another build's dist directory) measures a change side by side with its baseline:
//   node dist/bench/http-session.js [--baseline /path/to/other/dist] [--rounds 5]
// The input is copied into a receive-pool-like buffer first and the loop yields to microtasks every 8 requests and to
// the event loop every 4096 (the file cache's revalidation runs there), as a server's turns would.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { fmtSummary, summarize } from './lib/stats.js';

const REQUESTS = 300_000;

function usage(): never {
  process.stdout.write('usage: node dist/bench/http-session.js [--baseline DIST_DIR] [--rounds N]\n');
  process.exit(2);
}

/** In a child: one build's ns per request, measured `reps` times after a warm-up; prints a JSON array. */
async function child(dist: string, root: string): Promise<void> {
  const { createHttpApp } = await import(pathToFileURL(path.join(dist, 'apps/http/app.js')).href) as typeof import('../apps/http/app.js');
  const { serveStatic } = await import(pathToFileURL(path.join(dist, 'apps/http/static.js')).href) as typeof import('../apps/http/static.js');
  const app = createHttpApp({ handler: [serveStatic(root)] });
  let bytes = 0, paused = false;
  const count = (d: { length: number }): boolean => { bytes += d.length; return true; };
  const conn = {
    id: 1, worker: 0, remoteAddress: '127.0.0.1', remotePort: 1, remoteFamily: 'IPv4' as const, localAddress: '127.0.0.1', localPort: 2,
    write: count, writeAscii: count, writeNoCopy: count, pendingBytes: 0,
    sendFile: () => Promise.resolve(),
    readFile: (fd: number, pos: number, len: number) => { const b = Buffer.alloc(len); return Promise.resolve(b.subarray(0, readSync(fd, b, 0, len, pos))); },
    pause() { paused = true; }, resume() { paused = false; }, halfClose() {}, end() {}, destroy() {},
  };
  const session = app.factory(conn);
  const req = Buffer.from('GET /index.html HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n');
  const pool = Buffer.alloc(65536);
  const one = () => { req.copy(pool, 128); session.data(pool, 128, req.length); };
  one();
  await new Promise((r) => setTimeout(r, 200));   // the file is read and cached
  const out: number[] = [];
  for (let round = 0; round < 4; round++) {
    const before = bytes;
    const t = process.hrtime.bigint();
    for (let i = 0; i < REQUESTS; i++) {
      one();
      if ((i & 7) === 7) await null;
      if ((i & 4095) === 4095) await new Promise((r) => setImmediate(r));
      while (paused) await new Promise((r) => setTimeout(r, 1));
    }
    const ns = Number(process.hrtime.bigint() - t) / REQUESTS;
    if ((bytes - before) / REQUESTS < 1024) throw new Error(`${(bytes - before) / REQUESTS} bytes per response: responses missing`);
    if (round > 0) out.push(ns);   // the first is the warm-up
  }
  process.stdout.write(JSON.stringify(out) + '\n');
  process.exit(0);
}

async function main(): Promise<void> {
  const a = process.argv.slice(2);
  if (a[0] === '--child') return child(a[1]!, a[2]!);
  let baseline: string | null = null, rounds = 5;
  for (let i = 0; i < a.length; i++) {
    if (a[i] === '--baseline' && a[i + 1]) baseline = path.resolve(a[++i]!);
    else if (a[i] === '--rounds' && a[i + 1]) { rounds = Number(a[++i]); if (!Number.isInteger(rounds) || rounds < 1 || rounds > 50) usage(); }
    else usage();
  }
  const here = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
  const builds = [{ name: 'this build', dist: here }, ...(baseline ? [{ name: 'baseline', dist: baseline }] : [])];
  const root = mkdtempSync(path.join(tmpdir(), 'megapipe-http-session-'));
  writeFileSync(path.join(root, 'index.html'), Buffer.alloc(1024, 'x'));
  const res = builds.map(() => [] as number[]);
  try {
    for (let r = 0; r < rounds; r++) {
      builds.forEach((b, k) => {
        const c = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--child', b.dist, root], { encoding: 'utf8', timeout: 300_000 });
        if (c.status !== 0) throw new Error(`${b.name}: exit ${c.status}: ${c.stderr}`);
        res[k]!.push(...(JSON.parse(c.stdout.trim().split('\n').pop()!) as number[]));
      });
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  process.stdout.write(`megapipe-http session, ns per keep-alive GET, median (min–max) of ${rounds} processes × 3 measurements, interleaved\n`);
  builds.forEach((b, k) => process.stdout.write(`  ${b.name.padEnd(10)} ${fmtSummary(summarize(res[k]!))}\n`));
}

await main();
