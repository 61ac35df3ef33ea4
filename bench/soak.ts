#!/usr/bin/env node
// The soak: megapipe's three servers and a node:http server on megapipe/net, each under serve() (2 workers, io_uring
// channels — what the apps ship, and how a legacy server runs on every core), driven at once for --minutes by several
// client processes with hostile peers mixed in, every byte verified; memory sampled throughout. Exit 0 only if every
// criterion holds (see bench/README.md, "Soak"). `npm run soak -- --help`.
import { fork, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { formatTable } from './lib/table.js';
import { RESULTS_DIR } from './lib/paths.js';
import { memoryTrend, type MemoryLimits, type TrendResult } from './soak/criteria.js';
import { FILES, KINDS, addCounters, fileBytes, newCounters, type ClientInit, type ClientMessage, type Kind, type KindCounters, type ServerInit, type ServerMessage, type ServerSample } from './soak/proto.js';
import { NO_PROGRESS_MS } from './soak/peer.js';
import { KNOWN_BUGS } from './soak/known-bugs.js';

const USAGE = `usage: npm run soak -- [--minutes N] [--seed S] [options]
  --minutes N           load duration (default 30: shorter runs may fail megapipe-http's RSS slope while glibc's
                        arenas still grow to their plateau, about 9 minutes here; fractions allowed)
  --reload-minutes R    a second load after the first one's idle, judged against the first (default minutes/5; 0: none)
  --idle-s S            seconds sampled after each load once every connection has closed, 1 s apart (default 30)
  --seed S              seed of every random choice (default: from the clock; printed, and in the JSON)
  --clients N           client processes (default 3)
  --lanes E,M,H[,N]     concurrent scenario loops per client for echo, memcached, http, node-http (default 2,2,2,2;
                        without N, node-http takes http's)
  --kinds LIST          servers to run: echo,memcached,http,node-http (default all)
  --workers N           worker threads per server (default 2)
  --sample-s S          memory sampling period, seconds (default 10)
  --stall-max-s S       longest zero-window stall of a hostile client, seconds (default 6)
  --warmup F            warm-up share of the run; the memory trend is judged on the rest (default 0.3)
  --rss-slope-max X     RSS slope allowed after warm-up, MiB/min (default 1)
  --heap-slope-max X    V8 heap slope allowed after warm-up, MiB/min (default 0.25)
  --end-growth-max P    end and idle values allowed above the post-warm-up value, % (default 10)
  --end-growth-min M    ... or this many MiB, whichever is larger (default RSS 8, heap 2)
  --heap-per-conn-max B V8 heap growth allowed per accepted connection after warm-up, bytes (default 1024)
  --rss-per-conn-max B  RSS growth allowed per accepted connection, bytes (default: reported, not judged)
  --settle-s S          longest wait after the load for the servers' connections to close (default 60)
  --json PATH           where to write the JSON summary (default bench/results/soak-<time>.json)
  --leak-per-conn B     test of the memory criterion: each worker keeps B bytes per accepted connection
  --corrupt-every N     test of the verification: each worker flips a byte in every Nth write
  --drop-on-close       test of the verification: each worker's channel drops the bytes still queued when a
                        connection is closed (every disconnect made abortive: megapipe/net's destroy() before 5406892)
  --rejudge PATH        judge the memory of a saved run (its JSON summary) with these limits; runs nothing`;

const MIB = 1024 * 1024;
const here = dirname(fileURLToPath(import.meta.url));

function fail(msg: string): never { process.stderr.write(`soak: ${msg}\n${USAGE}\n`); process.exit(64); }
let a;
try {
  a = parseArgs({ options: {
    minutes: { type: 'string', default: '30' }, 'reload-minutes': { type: 'string' }, 'idle-s': { type: 'string', default: '30' }, seed: { type: 'string' }, clients: { type: 'string', default: '3' }, lanes: { type: 'string', default: '2,2,2,2' },
    kinds: { type: 'string', default: KINDS.join(',') }, workers: { type: 'string', default: '2' }, 'sample-s': { type: 'string', default: '10' },
    'stall-max-s': { type: 'string', default: '6' }, warmup: { type: 'string', default: '0.3' }, 'rss-slope-max': { type: 'string', default: '1' },
    'heap-slope-max': { type: 'string', default: '0.25' }, 'end-growth-max': { type: 'string', default: '10' }, 'end-growth-min': { type: 'string' },
    'heap-per-conn-max': { type: 'string', default: '1024' }, 'rss-per-conn-max': { type: 'string' },
    'settle-s': { type: 'string', default: '60' }, json: { type: 'string' }, 'leak-per-conn': { type: 'string', default: '0' }, 'corrupt-every': { type: 'string', default: '0' }, 'drop-on-close': { type: 'boolean', default: false }, rejudge: { type: 'string' }, help: { type: 'boolean', short: 'h' },
  } }).values;
} catch (e) { fail((e as Error).message); }
if (a.help) { process.stdout.write(USAGE + '\n'); process.exit(0); }
const num = (name: string, v: string, lo: number, hi: number): number => {
  const n = Number(v);
  if (!Number.isFinite(n) || n < lo || n > hi) fail(`--${name} must be a number in ${lo}..${hi} (got ${v})`);
  return n;
};
const minutes = num('minutes', a.minutes!, 0.1, 24 * 60);
const reloadMinutes = a['reload-minutes'] !== undefined ? num('reload-minutes', a['reload-minutes'], 0, 24 * 60) : minutes / 5;
const idleMs = num('idle-s', a['idle-s']!, 0, 600) * 1000;
const seed = a.seed !== undefined ? num('seed', a.seed, 0, 2 ** 32 - 1) >>> 0 : (Date.now() % 2 ** 32) >>> 0;
const clients = num('clients', a.clients!, 1, 32);
const laneList = a.lanes!.split(',').map((x) => num('lanes', x, 0, 64));
if (laneList.length === 3) laneList.push(laneList[2]!);
if (laneList.length !== 4) fail('--lanes takes three or four numbers: echo,memcached,http[,node-http]');
const kinds = a.kinds!.split(',').map((k) => k.trim()) as Kind[];
for (const k of kinds) if (!KINDS.includes(k)) fail(`--kinds: unknown ${k}`);
const workers = num('workers', a.workers!, 1, 64);
const sampleMs = num('sample-s', a['sample-s']!, 0.2, 600) * 1000;
const stallMaxS = num('stall-max-s', a['stall-max-s']!, 1, 25);
const settleMs = num('settle-s', a['settle-s']!, 1, 600) * 1000;
const leakPerConn = num('leak-per-conn', a['leak-per-conn']!, 0, 64 * MIB);
const corruptEvery = num('corrupt-every', a['corrupt-every']!, 0, 1e9);
const dropOnClose = a['drop-on-close'] === true;
const endMin = a['end-growth-min'] !== undefined ? num('end-growth-min', a['end-growth-min'], 0, 1e6) : undefined;
const rssLimits: MemoryLimits = {
  warmupFrac: num('warmup', a.warmup!, 0, 0.9), slopeMaxMiBPerMin: num('rss-slope-max', a['rss-slope-max']!, 0, 1e6), endGrowthMaxPct: num('end-growth-max', a['end-growth-max']!, 0, 1e6), endGrowthMinMiB: endMin ?? 8,
  perConnMaxBytes: a['rss-per-conn-max'] !== undefined ? num('rss-per-conn-max', a['rss-per-conn-max'], 0, 1e9) : undefined, idleAgainst: 'peak',
};
const heapLimits: MemoryLimits = { ...rssLimits, slopeMaxMiBPerMin: num('heap-slope-max', a['heap-slope-max']!, 0, 1e6), endGrowthMinMiB: endMin ?? 2, perConnMaxBytes: num('heap-per-conn-max', a['heap-per-conn-max']!, 0, 1e9), idleAgainst: 'post-warm-up' };
const durationMs = minutes * 60_000;
const startedAt = new Date();
const jsonPath = a.json ?? join(RESULTS_DIR, `soak-${startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
const HOST = '127.0.0.1';
const command = `npm run soak -- ${process.argv.slice(2).join(' ')}${a.seed === undefined ? ` --seed ${seed}` : ''}`.trim();

const log = (s: string) => process.stdout.write(s + '\n');
const mib = (b: number) => (b / MIB).toFixed(1);
const elapsed = (t0: number) => `${((Date.now() - t0) / 1000).toFixed(0)} s`;

/** What follows a load: samples while the connections close, then --idle-s of them once they have. */
interface AfterLoad {
  samples: ServerSample[];
  /** Index of the first sample with every connection closed (-1: they never all closed). */
  settledAt: number;
}

/** A server's memory over the run: the first load, what followed it, the second load (if any) and what followed it. */
interface MemoryRecord { samples: readonly ServerSample[]; after: readonly AfterLoad[]; reload: readonly ServerSample[] }

/** The idle samples after a load (without a settled one: the last sample). */
const idleOf = (x: AfterLoad | undefined): ServerSample[] => (!x ? [] : x.settledAt >= 0 ? x.samples.slice(x.settledAt) : x.samples.slice(-1));

/** One server's memory criterion: RSS (memcached's without its item memory) and the heap, with the idle samples and
 * the second load. */
function judgeMemory(m: MemoryRecord, loadMs: number): { rss: TrendResult; heap: TrendResult; ok: boolean; detail: string } {
  const { samples } = m;
  const t = samples.map((x) => x.t), accepted = samples.map((x) => x.serve.reduce((n, w) => n + w.accepted, 0));
  // a sample without the item figure counts all of RSS
  const rssOf = (x: ServerSample) => x.rss - (Number.isFinite(x.itemBytes) ? x.itemBytes! : 0);
  const max = (v: number[]) => (v.length ? Math.max(...v) : NaN);
  const idle = idleOf(m.after[0]), again = [...m.reload, ...idleOf(m.after[1])];
  const rss = memoryTrend(t, samples.map(rssOf), loadMs, rssLimits, accepted, max(idle.map(rssOf)), again.map(rssOf));
  const heap = memoryTrend(t, samples.map((x) => x.heapUsed), loadMs, heapLimits, accepted, max(idle.map((x) => x.heapUsed)), again.map((x) => x.heapUsed));
  const pct = (x: number, base: number) => { const p = (x - base) / base * 100; return `${p >= 0 ? '+' : ''}${p.toFixed(1)}%`; };
  const again2 = (r: TrendResult, base: number) => (Number.isNaN(r.reloadMax) ? '' : `, second load ${pct(r.reloadMax, base)}`);
  const detail = [rss.ok ? '' : `RSS: ${rss.why}`, heap.ok ? '' : `heap: ${heap.why}`].filter(Boolean).join('; ') ||
    `RSS slope ${rss.slopeMiBPerMin.toFixed(2)} MiB/min, end ${pct(rss.end, rss.postWarmup)}, peak ${pct(rss.peak, rss.postWarmup)}; against the peak: idle ${pct(rss.idle, rss.peak)}${again2(rss, rss.peak)}; ${rss.perConnBytes.toFixed(0)} B/conn; ` +
    `heap slope ${heap.slopeMiBPerMin.toFixed(2)} MiB/min, end ${pct(heap.end, heap.postWarmup)}, idle ${pct(heap.idle, heap.postWarmup)}${again2(heap, heap.postWarmup)}, ${heap.perConnBytes.toFixed(0)} B/conn`;
  return { rss, heap, ok: rss.ok && heap.ok, detail };
}

/** The memory table: the judged series at start, after warm-up, its peak, at the end, idle after the load (the highest
 * idle sample) and the highest value of the second load and its idle. */
function memoryTable(rows: { kind: string; pid: number; accepted: string; items: number | undefined; rss: TrendResult; heap: TrendResult }[]): string {
  const m = (x: number) => (Number.isNaN(x) ? '–' : mib(x));
  return formatTable({
    headers: ['server', 'pid', 'accepted', 'RSS start', 'post-warm-up', 'peak', 'end', 'idle', '2nd load', 'slope/min', 'items', 'heap start', 'post-warm-up', 'end', 'idle', '2nd load', 'slope/min', 'heap B/conn'],
    rows: rows.map((r) => [r.kind, String(r.pid), r.accepted, m(r.rss.start), m(r.rss.postWarmup), m(r.rss.peak), m(r.rss.end), m(r.rss.idle), m(r.rss.reloadMax), r.rss.slopeMiBPerMin.toFixed(2), r.items !== undefined ? mib(r.items) : '–',
      m(r.heap.start), m(r.heap.postWarmup), m(r.heap.end), m(r.heap.idle), m(r.heap.reloadMax), r.heap.slopeMiBPerMin.toFixed(2), r.heap.perConnBytes.toFixed(0)]),
  }).replace(/\n/, `  (MiB; slopes after the ${(rssLimits.warmupFrac * 100).toFixed(0)}% warm-up; memcached's RSS without its item memory; RSS after the load judged against its peak, the heap against post-warm-up)\n`);
}

if (a.rejudge !== undefined) {
  // a saved run judged again (other limits): its samples, the idle sample, memcached's item memory at the end
  // (a summary from before the second load and the idle samples has only `settle`, the last sample after the load)
  const saved = JSON.parse(readFileSync(a.rejudge, 'utf8')) as { loadMs: number; seed: number; memcachedStats: Record<string, string> | null; servers: { kind: string; pid: number; samples: ServerSample[]; after?: AfterLoad[]; reload?: ServerSample[]; settle?: ServerSample[] }[] };
  log(`memory of ${a.rejudge} (seed ${saved.seed}, load ${(saved.loadMs / 60_000).toFixed(2)} min), judged with RSS ${JSON.stringify(rssLimits)}, heap ${JSON.stringify(heapLimits)}`);
  const rows = [], verdicts: string[][] = [];
  for (const s of saved.servers) {
    const items = s.kind === 'memcached' ? Number(saved.memcachedStats?.total_malloced ?? 0) : undefined;
    const after = s.after ?? [{ samples: (s.settle ?? []).map((x) => ({ ...x, ...(items !== undefined ? { itemBytes: items } : {}) })), settledAt: 0 }];
    const j = judgeMemory({ samples: s.samples, after, reload: s.reload ?? [] }, saved.loadMs);
    rows.push({ kind: s.kind, pid: s.pid, accepted: String(after.at(-1)?.samples.at(-1)?.serve.reduce((n, w) => n + w.accepted, 0) ?? '?'), items: s.samples.at(-1)?.itemBytes, rss: j.rss, heap: j.heap });
    verdicts.push([`${s.kind}: memory flat after warm-up`, j.ok ? 'pass' : 'FAIL', j.detail]);
  }
  log(memoryTable(rows));
  log(formatTable({ headers: ['criterion', 'result', 'detail'], rows: verdicts, align: ['left', 'left', 'left'] }));
  process.exit(verdicts.every((v) => v[1] === 'pass') ? 0 : 1);
}

// ---- servers -------------------------------------------------------------------------------------------------

interface ServerProc {
  kind: Kind;
  child: ChildProcess;
  port: number;
  pid: number;
  /** Samples of the first load. */
  samples: ServerSample[];
  /** After each load: samples while its connections close, then the idle ones. */
  after: AfterLoad[];
  /** Samples of the second load. */
  reload: ServerSample[];
  workerExits: string[];
  stderr: string;
  exitCode: number | null;
  closed: { sample: ServerSample | null; error?: string } | null;
  pending: Map<number, (s: ServerSample | null) => void>;
}

let nextSampleId = 1;

async function startServer(kind: Kind, root: string): Promise<ServerProc> {
  const init: ServerInit = { kind, workers, host: HOST, httpRoot: root, httpHandler: join(here, 'soak', 'http-handler.js'), leakPerConn, corruptEvery, dropOnClose };
  const child = fork(join(here, 'soak', 'server.js'), [JSON.stringify(init)], { execArgv: ['--expose-gc'], stdio: ['ignore', 'inherit', 'pipe', 'ipc'] });
  const s: ServerProc = { kind, child, port: 0, pid: child.pid ?? -1, samples: [], after: [], reload: [], workerExits: [], stderr: '', exitCode: null, closed: null, pending: new Map() };
  child.stderr!.on('data', (b: Buffer) => { if (s.stderr.length < 64 * 1024) s.stderr += b.toString(); });
  const ready = new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${kind} server: not ready in 60 s`)), 60_000);
    child.on('message', (m: ServerMessage) => {
      if (m.type === 'ready') { s.port = m.port; s.pid = m.pid; clearTimeout(t); resolve(); }
      else if (m.type === 'sample') { s.pending.get(m.id)?.(m.sample); s.pending.delete(m.id); }
      else if (m.type === 'worker-exit') s.workerExits.push(`worker ${m.worker} exited with code ${m.code}${m.error ? `: ${m.error.split('\n')[0]}` : ''}`);
      else if (m.type === 'closed') s.closed = { sample: m.sample, error: m.error };
    });
    child.on('exit', (code, signal) => { s.exitCode = code ?? (signal ? -1 : null); clearTimeout(t); reject(new Error(`${kind} server exited (${code ?? signal}) before it was ready: ${s.stderr}`)); for (const r of s.pending.values()) r(null); s.pending.clear(); });
  });
  await ready;
  return s;
}

/** One sample of a server (null when it does not answer in 30 s or is gone). */
function sampleServer(s: ServerProc): Promise<ServerSample | null> {
  if (s.exitCode !== null || !s.child.connected) return Promise.resolve(null);
  const id = nextSampleId++;
  return new Promise((resolve) => {
    const t = setTimeout(() => { s.pending.delete(id); resolve(null); }, 30_000);
    s.pending.set(id, (x) => { clearTimeout(t); resolve(x); });
    s.child.send({ type: 'sample', id });
  });
}

async function closeServer(s: ServerProc): Promise<void> {
  if (s.exitCode !== null) return;
  const exited = new Promise<void>((resolve) => s.child.once('exit', () => resolve()));
  if (s.child.connected) s.child.send({ type: 'close' });
  const t = setTimeout(() => { s.child.kill('SIGKILL'); }, 30_000);
  await exited;
  clearTimeout(t);
}

// ---- clients -------------------------------------------------------------------------------------------------

interface ClientProc { index: number; child: ChildProcess; counters: Record<Kind, KindCounters> | null; final: boolean; exitCode: number | null; stderr: string }

function startClient(index: number, ports: Partial<Record<Kind, number>>, deadline: number): ClientProc {
  // (the second load's clients have indexes of their own: other random choices, the same seed and files)
  const lanes: Partial<Record<Kind, number>> = {};
  KINDS.forEach((k, i) => { if (ports[k] !== undefined) lanes[k] = laneList[i]!; });
  const init: ClientInit = { index, seed, deadline, host: HOST, ports, lanes, stallMaxS };
  const child = fork(join(here, 'soak', 'client.js'), [JSON.stringify(init)], { stdio: ['ignore', 'inherit', 'pipe', 'ipc'] });
  const c: ClientProc = { index, child, counters: null, final: false, exitCode: null, stderr: '' };
  child.stderr!.on('data', (b: Buffer) => { if (c.stderr.length < 64 * 1024) c.stderr += b.toString(); });
  child.on('message', (m: ClientMessage) => { c.counters = m.counters; if (m.type === 'final') c.final = true; });
  child.on('exit', (code, signal) => { c.exitCode = code ?? (signal ? -1 : null); });
  return c;
}

function totals(cs: ClientProc[]): Record<Kind, KindCounters> {
  const t = Object.fromEntries(KINDS.map((k) => [k, newCounters()])) as Record<Kind, KindCounters>;
  for (const c of cs) if (c.counters) for (const k of KINDS) addCounters(t[k], c.counters[k]);
  return t;
}

/** Memcached's own view, through its protocol: `stats` and `stats slabs` on a fresh connection (which counts itself). */
async function memcachedStats(port: number): Promise<Record<string, string> | null> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: HOST, port });
    let buf = '';
    const t = setTimeout(() => { sock.destroy(); resolve(null); }, 10_000);
    sock.on('error', () => { clearTimeout(t); resolve(null); });
    sock.on('connect', () => sock.write('stats\r\nstats slabs\r\n'));
    sock.on('data', (b: Buffer) => {
      buf += b.toString('latin1');
      if (buf.split('END\r\n').length < 3) return;
      clearTimeout(t);
      sock.end();
      const out: Record<string, string> = {};
      for (const line of buf.split('\r\n')) { const m = /^STAT (\S+) (.*)$/.exec(line); if (m) out[m[1]!] = m[2]!; }
      resolve(out);
    });
  });
}

// ---- the run -------------------------------------------------------------------------------------------------

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** One load: `clients` client processes (indexes from `indexBase`) until `ms` from now, every server sampled every
 * --sample-s (memcached with its item memory) into `into(server)` until they have all reported. */
async function load(name: string, ms: number, indexBase: number, into: (s: ServerProc) => ServerSample[], ports: Partial<Record<Kind, number>>): Promise<void> {
  const t0 = Date.now(), deadline = t0 + ms;
  const procs: ClientProc[] = [];
  for (let i = 0; i < clients; i++) procs.push(startClient(indexBase + i, ports, deadline));
  clientProcs.push(...procs);
  const hardEnd = deadline + 2 * NO_PROGRESS_MS + 30_000;
  let nextSample = t0 + sampleMs;
  while (!procs.every((c) => c.final || c.exitCode !== null)) {
    if (Date.now() > hardEnd) { notes.push(`${name}: clients still running 150 s after the deadline: killed`); for (const c of procs) if (c.exitCode === null) c.child.kill('SIGKILL'); break; }
    await sleep(Math.max(50, Math.min(500, nextSample - Date.now())));
    if (Date.now() < nextSample) continue;
    nextSample += sampleMs;
    const got = await Promise.all(servers.map(sampleServer));
    const mc = servers.find((s) => s.kind === 'memcached');
    const items = mc ? await memcachedStats(mc.port) : null;
    got.forEach((x, i) => {
      if (!x) return;
      const itemBytes = servers[i]!.kind === 'memcached' ? Number(items?.total_malloced ?? NaN) : undefined;
      into(servers[i]!).push({ ...x, t: x.t - loadStart, ...(itemBytes !== undefined ? { itemBytes } : {}) });
    });
    const t = totals(clientProcs);
    log(`  ${name === 'load' ? '' : `${name} `}${elapsed(loadStart).padStart(6)}  ${KINDS.filter((k) => ports[k]).map((k) => `${k} ${t[k].connections} conns ${mib(t[k].bytesVerified)} MiB ok${t[k].failures ? ` ${t[k].failures} FAILED` : ''}`).join(' | ')}  | rss ${servers.map((s) => `${s.kind} ${mib(into(s).at(-1)?.rss ?? 0)}`).join(' ')} MiB`);
  }
  await Promise.all(procs.map((c) => (c.exitCode !== null ? undefined : new Promise<void>((r) => { c.child.once('exit', () => r()); setTimeout(r, 10_000); }))));
}

/** After a load: the clients are gone; every connection must close, every worker's channel hold only its listener
 * (within --settle-s); then --idle-s of samples, 1 s apart, with nothing connected. memcached's samples get the item
 * memory of a `stats` taken at the end (none while connections are counted: the stats connection is one). */
async function afterLoad(): Promise<void> {
  mcStats = null;
  const phase = servers.map((s) => { const x: AfterLoad = { samples: [], settledAt: -1 }; s.after.push(x); return x; });
  const settleEnd = Date.now() + settleMs;
  for (;;) {
    const got = await Promise.all(servers.map(sampleServer));
    got.forEach((x, i) => { if (x) phase[i]!.samples.push({ ...x, t: x.t - loadStart }); });
    const settled = got.every((x) => x !== null && x.serve.every((w) => w.connections === 0 && w.handles === 1) && x.workers.every((w) => !w.appConnections));
    if (settled) { phase.forEach((p) => { p.settledAt = p.samples.length - 1; }); break; }
    if (Date.now() > settleEnd) return;
    await sleep(500);
  }
  for (let end = Date.now() + idleMs; Date.now() < end;) {
    await sleep(1000);
    const got = await Promise.all(servers.map(sampleServer));
    got.forEach((x, i) => { if (x) phase[i]!.samples.push({ ...x, t: x.t - loadStart }); });
  }
  const mc = servers.findIndex((s) => s.kind === 'memcached');
  if (mc >= 0) {
    mcStats = await memcachedStats(servers[mc]!.port);
    for (const x of phase[mc]!.samples) x.itemBytes = Number(mcStats?.total_malloced ?? NaN);
  }
}

const root = mkdtempSync(join(tmpdir(), 'megapipe-soak-'));
for (const f of FILES) { mkdirSync(dirname(join(root, f.name)), { recursive: true }); writeFileSync(join(root, f.name), fileBytes(seed, f)); }

log(`soak: ${minutes} min${reloadMinutes > 0 ? ` then a second load of ${reloadMinutes} min` : ''} (each followed by ${idleMs / 1000} s idle), seed ${seed}, ${clients} client processes × lanes ${laneList.join(',')} (echo,memcached,http,node-http), servers ${kinds.join(', ')} × ${workers} workers`);
log(`  reproduce: ${command}`);
const servers: ServerProc[] = [];
const clientProcs: ClientProc[] = [];
let interrupted = false;
process.once('SIGINT', () => { interrupted = true; log('soak: SIGINT — stopping the clients early'); for (const c of clientProcs) if (c.child.connected) c.child.send({ type: 'stop' }); });

const notes: string[] = [];
let loadStart = 0, loadEnd = 0;
/** memcached's `stats` at the end of the last idle (null: not taken). */
let mcStats: Record<string, string> | null = null;
try {
  for (const k of kinds) servers.push(await startServer(k, root));
  log(`  servers: ${servers.map((s) => `${s.kind} pid ${s.pid} port ${s.port}`).join(', ')}`);
  const ports = Object.fromEntries(servers.map((s) => [s.kind, s.port])) as Partial<Record<Kind, number>>;
  loadStart = Date.now();
  for (const s of servers) {
    const x = await sampleServer(s);
    const items = s.kind === 'memcached' ? await memcachedStats(s.port) : null;
    if (x) s.samples.push({ ...x, t: x.t - loadStart, ...(items ? { itemBytes: Number(items.total_malloced ?? NaN) } : {}) });
  }
  await load('load', durationMs, 0, (s) => s.samples, ports);
  loadEnd = Date.now();
  await afterLoad();
  if (reloadMinutes > 0 && !interrupted && notes.length === 0) {
    log(`  second load: ${reloadMinutes} min (memory judged against the first load's)`);
    await load('2nd load', reloadMinutes * 60_000, clients, (s) => s.reload, ports);
    await afterLoad();
  }
} catch (e) {
  notes.push(`soak error: ${(e as Error).stack ?? String(e)}`);
}

const mcServer = servers.find((s) => s.kind === 'memcached');
if (!mcStats && mcServer && mcServer.exitCode === null) mcStats = await memcachedStats(mcServer.port);
for (const c of clientProcs) if (c.exitCode === null) c.child.kill('SIGKILL');
await Promise.all(servers.map(closeServer));
rmSync(root, { recursive: true, force: true });
const finishedAt = new Date();

// ---- criteria ------------------------------------------------------------------------------------------------

/** `knownBugsOnly`: failed, and every failure matched a known bug (known-bugs.ts). */
interface Criterion { name: string; ok: boolean; detail: string; knownBugsOnly?: boolean }
const criteria: Criterion[] = [];
const crit = (name: string, ok: boolean, detail: string, knownBugsOnly = false) => criteria.push({ name, ok, detail, ...(knownBugsOnly ? { knownBugsOnly } : {}) });
const traffic = totals(clientProcs);
const loadMs = loadEnd > loadStart ? Math.min(durationMs, loadEnd - loadStart) : durationMs;

const loads = reloadMinutes > 0 ? 2 : 1;
crit('run completed', notes.length === 0 && !interrupted && clientProcs.length === clients * loads && clientProcs.every((c) => c.final),
  [...notes, interrupted ? 'interrupted' : '', ...clientProcs.filter((c) => !c.final).map((c) => `client ${c.index} did not report (exit ${c.exitCode}): ${c.stderr.slice(0, 300)}`)].filter(Boolean).join('; ') || `${clientProcs.length} clients reported`);
for (const k of kinds) {
  const t = traffic[k];
  const known = Object.values(t.knownBugs).reduce((n, v) => n + v, 0);
  const bugs = Object.entries(t.knownBugs).map(([id, n]) => { const b = KNOWN_BUGS.find((x) => x.id === id)!; return `${n} × known bug ${id} (${b.test}): ${b.summary}`; });
  crit(`${k}: no byte lost or corrupted`, t.failures === 0 && t.bytesVerified > 0,
    t.failures === 0 ? `${mib(t.bytesVerified)} MiB verified over ${t.connections} connections (${t.resets} reset, ${t.aborts} aborted by the client)` : `${t.failures} failures${known ? ` (${bugs.join('; ')})` : ''}: ${t.failureSamples.slice(0, 5).join(' || ')}`,
    t.failures > 0 && known === t.failures);
}
for (const s of servers) {
  // the state at the end of the last idle; and every load's connections closed within --settle-s
  const last = s.after.at(-1)?.samples.at(-1) ?? null;
  const unsettled = s.after.map((x, i) => (x.settledAt < 0 ? i + 1 : 0)).filter(Boolean);
  const conns = last ? last.serve.map((w) => w.connections) : [];
  const handles = last ? last.serve.map((w) => w.handles) : [];
  const app = last ? last.workers.map((w) => w.appConnections) : [];
  let ok = last !== null && s.after.length === loads && unsettled.length === 0 && conns.every((c) => c === 0) && handles.every((h) => h === 1) && app.every((c) => !c) && last.serve.length === workers && last.workers.length === workers;
  let detail = last ? `per worker: connections ${conns.join(',')}, handles ${handles.join(',')} (want 0 and 1: the listener), app connections ${app.map((x) => x ?? '–').join(',')}, requests in the kernel ${last.serve.map((w) => w.inKernel).join(',')}${unsettled.length ? `; connections still open ${settleMs / 1000} s after load ${unsettled.join(', ')}` : ''}` : 'no sample after the load';
  if (s.kind === 'memcached') {
    const cur = mcStats ? Number(mcStats.curr_connections) : NaN;
    if (cur !== 1) ok = false;
    detail += `; memcached curr_connections ${mcStats?.curr_connections ?? '?'} (want 1: the stats connection itself), evictions ${mcStats?.evictions ?? '?'}, slab pages ${mcStats?.total_malloced ? mib(Number(mcStats.total_malloced)) : '?'} MiB of ${mcStats?.limit_maxbytes ? mib(Number(mcStats.limit_maxbytes)) : '?'}`;
  }
  crit(`${s.kind}: every connection cleaned up`, ok, detail);
  const refused = last ? last.serve.reduce((n, w) => n + w.requestsRefused + w.recycleRefused, 0) : 0;
  crit(`${s.kind}: workers and channels healthy`, s.workerExits.length === 0 && refused === 0 && s.closed !== null && !s.closed.error && s.exitCode === 0,
    [s.workerExits.length ? s.workerExits.join('; ') : 'no worker exited', `requests/recycles refused by the native side ${refused}`, s.closed ? (s.closed.error ? `close failed: ${s.closed.error.split('\n')[0]}` : 'closed gracefully') : 'did not close', `exit code ${s.exitCode}`].join('; '));
}
const trends: Record<string, { rss: TrendResult; heap: TrendResult }> = {};
for (const s of servers) {
  const j = judgeMemory(s, loadMs);
  trends[s.kind] = { rss: j.rss, heap: j.heap };
  crit(`${s.kind}: memory flat after warm-up`, j.ok, j.detail);
}
const pass = criteria.every((c) => c.ok);

/** A process's error output grouped by message: lines that start a message (stack frames and the like left out). */
function stderrMessages(text: string): [string, number][] {
  const counts = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line.trim() || /^\s/.test(line) || /^[}\]]/.test(line)) continue;
    const key = line.replace(/connection \d+/g, 'connection N').slice(0, 160);
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts];
}

// ---- report --------------------------------------------------------------------------------------------------

log('');
log(`soak ${pass ? 'PASSED' : 'FAILED'}: ${startedAt.toISOString()} → ${finishedAt.toISOString()}, load ${(loadMs / 60_000).toFixed(2)} min, seed ${seed}`);
log('');
log(formatTable({
  headers: ['traffic', 'connections', 'clean', 'reset', 'aborted', 'ops', 'MiB sent', 'MiB verified', 'failures'],
  rows: kinds.map((k) => { const t = traffic[k]; return [k, String(t.connections), String(t.clean), String(t.resets), String(t.aborts), String(t.ops), mib(t.bytesSent), mib(t.bytesVerified), String(t.failures)]; }),
}));
for (const k of kinds) log(`  ${k} scenarios: ${Object.entries(traffic[k].scenarios).map(([n, v]) => `${n} ${v}`).join(', ')}`);
log('');
log(memoryTable(servers.map((s) => ({ kind: s.kind, pid: s.pid, accepted: String(s.after.at(-1)?.samples.at(-1)?.serve.reduce((n, w) => n + w.accepted, 0) ?? '?'), items: s.samples.at(-1)?.itemBytes, ...trends[s.kind]! }))));
log(formatTable({ headers: ['criterion', 'result', 'detail'], rows: criteria.map((c) => [c.name, c.ok ? 'pass' : c.knownBugsOnly ? 'FAIL (known bug)' : 'FAIL', c.detail]), align: ['left', 'left', 'left'] }));
for (const s of servers) {
  const m = stderrMessages(s.stderr);
  if (m.length) log(`${s.kind} server stderr, by message: ${m.map(([msg, n]) => `${n} × ${msg}`).join('; ')}`);
}

const summary = {
  command, seed, pass, startedAt: startedAt.toISOString(), finishedAt: finishedAt.toISOString(), loadMs,
  options: { minutes, reloadMinutes, idleMs, clients, lanes: laneList, kinds, workers, sampleMs, stallMaxS, settleMs, leakPerConn, corruptEvery, dropOnClose },
  limits: { rss: rssLimits, heap: heapLimits },
  criteria, traffic, trends, memcachedStats: mcStats,
  servers: servers.map((s) => ({ kind: s.kind, pid: s.pid, exitCode: s.exitCode, workerExits: s.workerExits, stderrMessages: stderrMessages(s.stderr), stderr: s.stderr.slice(0, 4000), samples: s.samples, after: s.after, reload: s.reload, closed: s.closed })),
};
mkdirSync(dirname(jsonPath), { recursive: true });
writeFileSync(jsonPath, JSON.stringify(summary, null, 1));
log(`JSON summary: ${jsonPath}`);
process.exit(pass ? 0 : 1);
