// One measured run of each kind bench/compat.ts makes, each ending in one record with its state (bench/lib/verdict.ts):
//   wrkRun   an HTTP app (node:http, Express, Fastify) or the multi-core server under wrk, every response checked by
//            the wrk script (status 200, body "hello world"); server CPU sampled around the measured wrk run;
//   wsEchoRun  the ws echo app under bench/c/ws-load (every echoed byte checked), through bench/lib/run.ts;
//   idleRun  memory of the ws app holding N idle WebSocket connections opened by client processes (ws-client.ts).
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { runWrk, startPinned, type LoadReport } from '../http/tools.js';
import { freePort, ROOT } from '../lib/paths.js';
import { startServer, type RunningServer } from '../lib/proc.js';
import { processTree, sample, windowCost, type WindowCost } from '../lib/procfs.js';
import { runOnce } from '../lib/run.js';
import { disturbance, fatalProblems, SATURATED, stateOf, type Limits, type RunState } from '../lib/verdict.js';
import { heapCensus, perConnection, type PerConnection } from './heap.js';
import { cleanPerfMap, perfBreakdown, recordCpus, threadsOf, type PerfBreakdown, type PerfRecording } from './perf.js';
import type { ClientCmd, ClientReply } from './ws-client.js';

const APP = join(ROOT, 'dist', 'bench', 'servers', 'compat-app.js');
const HOOK = pathToFileURL(join(ROOT, 'dist', 'bench', 'servers', 'compat-hook.js')).href;
export const MULTI = join(ROOT, 'dist', 'bench', 'servers', 'compat-multi.js');
const WS_CLIENT = fileURLToPath(new URL('./ws-client.js', import.meta.url));
/** The files a run needs (compiled): the harness checks them before starting. */
export const REQUIRED = [APP, MULTI, WS_CLIENT, fileURLToPath(HOOK)];

export type App = 'http' | 'express' | 'fastify' | 'ws';

/** Node flags of a profiled server (both sides): perf sees JIT-compiled and interpreted JavaScript by name and source. */
export const PROFILE_FLAGS = ['--perf-basic-prof', '--interpreted-frames-native-stack'];

/**
 * A single-process server: the application on node:net or on megapipe (the only difference: MEGAPIPE_REGISTER).
 * `registerModule`: megapipe/register of another build (--megapipe-base: DIR/dist/src/register.js, as a file URL)
 * imported instead of this checkout's, so two builds of megapipe run the same application side by side.
 */
export interface Side { name: string; register: boolean; registerModule?: string }
export const NODE_NET: Side = { name: 'node:net', register: false };
export const MEGAPIPE: Side = { name: 'megapipe', register: true };

/** The application's command line: identical for both sides, `--import megapipe/register` included (another build's
 * for a side with `registerModule`). */
export function appCommand(app: App, side: Side, host: string, port: number | string, nodeFlags: string[] = []): { argv: string[]; env: Record<string, string> } {
  return {
    argv: [process.execPath, ...nodeFlags, '--import', side.registerModule ?? 'megapipe/register', '--import', HOOK, APP, '--app', app, '--host', host, '--port', String(port)],
    env: { MEGAPIPE_REGISTER: side.register ? '1' : '0' },
  };
}

export interface Config {
  serverCpu: string;
  clientCpu: string;
  serverCpus: number[];
  clientCpus: number[];
  durationS: number;
  warmupS: number;
  limits: Limits;
  /** Record the server core with perf over each measured window into this directory (single-process servers). */
  profileDir?: string;
}

export interface Mem { rss: number; heapUsed: number; external: number; arrayBuffers: number }

/** The idle point's figures: memory after GC before the connections and with all of them open. */
export interface IdleMemory {
  conns: number;
  before: Mem;
  at: Mem;
  rssPerConn: number;
  heapPerConn: number;
  /** external: memory of Buffers and other native allocations V8 is told about (arrayBuffers included) */
  externalPerConn: number;
  fds: number;
  openMs: number;
}

export interface CompatRun {
  point: string;
  server: string;
  rep: number;
  ok: boolean;
  state: RunState;
  noisy: boolean;
  stolen: boolean;
  problems: string[];
  serverArgv: string[];
  loadArgv: string[];
  /** Requests or messages completed in the measured window, and per second. */
  units?: number;
  rate?: number;
  /** The server processes' own CPU (utime + stime, every thread and process) per unit, µs. */
  procUs?: number;
  /** The server core's busy time per unit, µs (softirq included; steal excluded). */
  coreUs?: number;
  cost?: WindowCost;
  /** The load generator's errors, wrong responses included, over the warm-up and the measured run. */
  errors: number;
  /** The server's open file descriptors while loaded, the most seen (lwsockets are not descriptors). */
  serverFds?: number;
  mem?: IdleMemory;
  /** With --profile: the server core's samples by category. */
  perf?: PerfBreakdown;
  /** With --profile, at the idle point: what each connection added to the JavaScript heap, by constructor or kind. */
  heap?: PerConnection[];
  /** Multi-worker servers that say so: the connections each worker accepted (warm-up included). */
  accepted?: number[];
}

function record(point: string, server: string, rep: number): CompatRun {
  return { point, server, rep, ok: false, state: 'failed', noisy: false, stolen: false, problems: [], serverArgv: [], loadArgv: [], errors: 0 };
}

/** Sets ok and state from the problems (client saturation is not one) and the disturbance flags. */
function finish(rec: CompatRun): CompatRun {
  rec.ok = fatalProblems(rec.problems).length === 0 && !rec.noisy && !rec.stolen && rec.units !== undefined && rec.units > 0;
  rec.state = stateOf(rec);
  return rec;
}

function fdCount(pid: number): number | undefined {
  try { return readdirSync(`/proc/${pid}/fd`).length; } catch { return undefined; }
}

/**
 * Whether the server's descriptors say its connections went where its side says: node:net holds one per connection,
 * megapipe's lwsockets hold none. `base`: its descriptors with no connection open.
 */
function fdProblem(side: Side | undefined, fds: number | undefined, base: number, conns: number): string | undefined {
  if (side === undefined || fds === undefined) return undefined;
  const extra = fds - base;
  if (side.register && extra >= conns / 2) return `the server held ${fds} descriptors under ${conns} connections (${base} idle): megapipe/register did not take effect`;
  if (!side.register && extra < conns / 2) return `the server held only ${fds} descriptors under ${conns} connections (${base} idle): not node:net's sockets`;
  return undefined;
}

/** perf on the server's core from now until stop(), whose breakdown goes into `rec.perf` (--profile). */
function startProfile(cfg: Config, rec: CompatRun, pid: number, cpus: string): { stop(): Promise<void> } {
  const tids = threadsOf(pid);
  const file = join(cfg.profileDir!, `${rec.point}-${rec.server.replace(/\W+/g, '_')}-${rec.rep}.perf.data`);
  const recording: PerfRecording = recordCpus(cpus, file);
  return {
    async stop() {
      if (!(await recording.stop())) { rec.problems.push('perf record failed'); return; }
      cleanPerfMap(`/tmp/perf-${pid}.map`);
      rec.perf = perfBreakdown(file, tids);
      if (rec.perf === undefined) rec.problems.push('perf report failed');
      rmSync(file, { force: true });
      rmSync(`/tmp/perf-${pid}.map`, { force: true });
    },
  };
}

// ---- wrk -----------------------------------------------------------------------------------------------------

/**
 * The wrk script: counts every response that is not status 200 with the body "hello world" ("bad"), and with
 * `spread`, sends thread k's connections to 127.0.0.k (k = 1..threads) — several destination addresses, so short
 * connections do not reuse one address pair's ports. Prints the totals as one WRKJSON line (bench/http/tools.ts).
 */
export function wrkScript(spread: boolean, body: string): string {
  return `-- generated by bench/compat.ts
local spread = ${spread}
local threads = {}
setup = function(thread)
  table.insert(threads, thread)
  if spread then thread.addr = wrk.lookup("127.0.0." .. #threads, tostring(wrk.port))[1] end
end
bad = 0
response = function(status, headers, body)
  if status ~= 200 or body ~= ${JSON.stringify(body)} then bad = bad + 1 end
end
done = function(summary, latency, requests)
  local b = 0
  for _, t in ipairs(threads) do b = b + t:get("bad") end
  io.write(string.format('WRKJSON {"requests":%d,"bytes":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"p50_us":%d,"p99_us":%d,"bad":%d}\\n',
    summary.requests, summary.bytes, summary.duration, summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.status, summary.errors.timeout, latency:percentile(50), latency:percentile(99), b))
end
`;
}

/** Writes the two scripts into `dir`. */
export function writeWrkScripts(dir: string, body: string): { keepalive: string; spread: string } {
  const keepalive = join(dir, 'compat-keepalive.lua'), spread = join(dir, 'compat-spread.lua');
  writeFileSync(keepalive, wrkScript(false, body));
  writeFileSync(spread, wrkScript(true, body));
  return { keepalive, spread };
}

/** The problems a wrk report shows; adds its errors and wrong responses to `rec.errors`. */
function wrkProblems(rec: CompatRun, r: LoadReport, what: string): void {
  const bad = r.json?.bad;
  if (r.exitCode !== 0) rec.problems.push(`${what}: wrk exit code ${r.exitCode ?? 'none (killed: it overran its time limit)'}`);
  if (r.requests === 0) rec.problems.push(`${what}: wrk completed no request: ${r.stderrTail.trim().slice(-300)}`);
  if (bad === undefined) rec.problems.push(`${what}: the wrk script reported no count of wrong responses`);
  rec.errors += r.socketErrors + r.badStatus + (bad ?? 0);
  if (r.socketErrors > 0) rec.problems.push(`${what}: ${r.socketErrors} socket errors (connect ${r.json?.connect}, read ${r.json?.read}, write ${r.json?.write}, timeout ${r.json?.timeout})`);
  if (r.badStatus > 0) rec.problems.push(`${what}: ${r.badStatus} responses not 2xx/3xx`);
  if (bad !== undefined && bad > 0) rec.problems.push(`${what}: ${bad} responses not "200 hello world"`);
}

export interface WrkTarget {
  point: string;
  server: string;
  argv: string[];
  env?: Record<string, string>;
  /** Single-process sides: checked by their descriptors while loaded. */
  side?: Side;
  serverCpu: string;
  serverCpus: number[];
  clientCpu: string;
  clientCpus: number[];
  conns: number;
  threads: number;
  script: string;
  headers?: string[];
}

/** Starts the server, warms it up with wrk, then samples its CPU around one measured wrk run. */
export async function wrkRun(cfg: Config, t: WrkTarget, rep: number): Promise<CompatRun> {
  const rec = record(t.point, t.server, rep);
  const port = await freePort('0.0.0.0');
  rec.serverArgv = t.argv.map((a) => a.replace('{PORT}', String(port)));
  let server;
  try {
    server = await startPinned(rec.serverArgv, t.serverCpu, '127.0.0.1', port, t.env);
  } catch (e) {
    rec.problems.push((e as Error).message.slice(0, 1000));
    return finish(rec);
  }
  try {
    const baseFds = fdCount(server.pid) ?? 0;
    const wrk = (seconds: number) => runWrk({ url: `http://127.0.0.1:${port}/`, conns: t.conns, threads: t.threads, durationS: seconds, script: t.script, headers: t.headers, cpu: t.clientCpu });
    if (cfg.warmupS > 0) wrkProblems(rec, await wrk(cfg.warmupS), 'warm-up');
    const pids = processTree(server.pid);
    // the most descriptors seen while loaded (sampled every 100 ms)
    const fdTimer = setInterval(() => { rec.serverFds = Math.max(rec.serverFds ?? 0, fdCount(server.pid) ?? 0); }, 100);
    const profile = cfg.profileDir !== undefined && t.side !== undefined ? startProfile(cfg, rec, server.pid, t.serverCpu) : undefined;
    const a = sample(pids);
    const r = await wrk(cfg.durationS);
    const b = sample(pids);
    if (profile) await profile.stop();
    clearInterval(fdTimer);
    rec.loadArgv = r.argv;
    wrkProblems(rec, r, 'measured run');
    // (short connections are mostly opening or closing: only persistent ones show in the count reliably)
    const fp = t.headers?.some((h) => /^connection:\s*close/i.test(h)) ? undefined : fdProblem(t.side, rec.serverFds, baseFds, t.conns);
    if (fp !== undefined) rec.problems.push(fp);
    if (r.requests > 0) {
      rec.units = r.requests;
      rec.rate = r.rps;
      rec.cost = windowCost(a, b, r.requests, t.serverCpus, t.clientCpus);
      rec.procUs = rec.cost.procUsPerTxn;
      rec.coreUs = rec.cost.coreUsPerTxn;
      if (rec.cost.clientCoreBusy > 0.95 && t.serverCpus.every((c) => !t.clientCpus.includes(c))) rec.problems.push(SATURATED);
      const d = disturbance(rec.cost, cfg.limits);
      rec.noisy = d.foreign;
      rec.stolen = d.steal;
      rec.problems.push(...d.problems);
    }
  } finally {
    const st = await server.stop();
    if (st.killed) rec.problems.push('server ignored SIGTERM and was killed');
    else if (st.exitCode !== 0) rec.problems.push(`server exit ${st.exitCode ?? st.signal}: ${st.stderrTail.trim().slice(-300)}`);
    if (/stays on node:net/.test(st.stderrTail) && t.side?.register) rec.problems.push(`megapipe/register fell back: ${st.stderrTail.trim().slice(-200)}`);
    const perWorker = [...st.stdoutTail.matchAll(/^\{"worker":(\d+),.*"accepted":(\d+)\}$/gm)];
    if (perWorker.length > 0) rec.accepted = perWorker.map((m) => Number(m[2]));
  }
  return finish(rec);
}

// ---- ws echo ---------------------------------------------------------------------------------------------------

export interface WsEchoOptions { conns: number; size: number; pipeline: number }

/** The ws echo app under ws-load, through bench/lib/run.ts (CPU sampled at ws-load's phase marks). */
export async function wsEchoRun(cfg: Config, point: string, side: Side, rep: number, o: WsEchoOptions): Promise<CompatRun> {
  const rec = record(point, side.name, rep);
  const cmd = appCommand('ws', side, '{HOST}', '{PORT}', cfg.profileDir !== undefined ? PROFILE_FLAGS : []);
  // the most descriptors seen over the measured window (sampled every 100 ms, as for HTTP): one sample at its start
  // found connections still opening on a loaded machine (140 of 256, twice in a day of CI runs here)
  let fds: number | undefined;
  let fdTimer: NodeJS.Timeout | undefined;
  let profile: { stop(): Promise<void> } | undefined, stopped: Promise<void> | undefined;
  const r = await runOnce({ name: side.name, cmd: cmd.argv, env: cmd.env }, {
    serverCpu: cfg.serverCpu, clientCpu: cfg.clientCpu, host: '127.0.0.1', workers: 1, syscalls: false,
    foreignMaxCores: cfg.limits.foreignMaxCores, stealMax: cfg.limits.stealMax,
    load: { conns: o.conns, txns: 0, size: o.size, durationS: cfg.durationS, warmupS: cfg.warmupS, pipeline: o.pipeline, program: 'ws-load' },
    onMeasureStart: (pid) => {
      const peak = () => { fds = Math.max(fds ?? 0, fdCount(pid) ?? 0); };
      peak();
      fdTimer = setInterval(peak, 100);
      if (cfg.profileDir !== undefined) profile = startProfile(cfg, rec, pid, cfg.serverCpu);
    },
    onMeasureEnd: () => { clearInterval(fdTimer); stopped = profile?.stop(); },
  });
  clearInterval(fdTimer);
  await stopped;
  rec.serverArgv = r.serverArgv;
  rec.loadArgv = r.loadArgv;
  rec.problems.push(...r.problems);
  rec.noisy = r.noisy;
  rec.stolen = r.stolen;
  rec.serverFds = fds;
  rec.errors = (r.load?.errors ?? 0) + (r.load?.mismatches ?? 0);
  // the idle ws app holds about 20 descriptors: with `conns` connections open, node:net holds that many more
  const fp = fdProblem(side, fds, 20, o.conns);
  if (fp !== undefined) rec.problems.push(fp);
  if (r.load && r.cost) {
    rec.units = r.load.txns;
    rec.rate = r.load.tps;
    rec.cost = r.cost;
    rec.procUs = r.cost.procUsPerTxn;
    rec.coreUs = r.cost.coreUsPerTxn;
  }
  return finish(rec);
}

// ---- idle connections --------------------------------------------------------------------------------------------

export interface IdleOptions { conns: number; clients: number; warmupConns: number; timeoutMs: number }

/** A client process (ws-client.ts) pinned to the client CPU, driven over IPC. */
class Client {
  readonly child: ChildProcess;
  #exited = false;
  constructor(cpu: string) {
    this.child = spawn('taskset', ['-c', cpu, process.execPath, WS_CLIENT, '--client'], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.child.once('exit', () => { this.#exited = true; });
  }
  ask(cmd: ClientCmd): Promise<ClientReply> {
    return new Promise((resolve) => {
      if (this.#exited) { resolve({ ok: false, open: 0, done: 0, errors: 1, mismatches: 0, ms: 0, message: 'client process exited' }); return; }
      const timer = setTimeout(() => { cleanup(); resolve({ ok: false, open: 0, done: 0, errors: 1, mismatches: 0, ms: 0, message: 'client did not answer' }); }, cmd.timeoutMs + 10_000);
      const onMessage = (m: ClientReply) => { cleanup(); resolve(m); };
      const onExit = () => { cleanup(); resolve({ ok: false, open: 0, done: 0, errors: 1, mismatches: 0, ms: 0, message: 'client process exited' }); };
      const cleanup = () => { clearTimeout(timer); this.child.off('message', onMessage); this.child.off('exit', onExit); };
      this.child.once('message', onMessage);
      this.child.once('exit', onExit);
      this.child.send(cmd);
    });
  }
  async stop(): Promise<void> {
    if (this.#exited) return;
    this.child.disconnect();
    const t = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await new Promise<void>((r) => { if (this.#exited) r(); else this.child.once('exit', () => r()); });
    clearTimeout(t);
  }
}

/** Asks the server (compat-hook.ts) for its memory after two full GCs (and a heap snapshot, when it writes them). */
async function memoryOf(server: RunningServer): Promise<{ mem?: Mem; snapshot?: string }> {
  const seen = server.json.length;
  process.kill(server.pid, 'SIGUSR2');
  for (const until = Date.now() + 60_000; Date.now() < until;) {
    for (let i = seen; i < server.json.length; i++) {
      const m = server.json[i]!.mem as (Mem & { gc?: boolean }) | undefined;
      if (m !== undefined) return { mem: m.gc ? m : undefined, snapshot: server.json[i]!.snapshot as string | undefined };
    }
    await sleep(20);
  }
  return {};
}

/**
 * The ws app holding `o.conns` idle WebSocket connections: after a warm-up (connections opened, echoed, closed, so
 * lazily made state is not billed to connections), memory after GC with none open, then with all open (opened by
 * `o.clients` client processes from 127.0.0.2.. addresses), then one echo on every connection, checked.
 */
export async function idleRun(cfg: Config, point: string, side: Side, rep: number, o: IdleOptions): Promise<CompatRun> {
  const rec = record(point, side.name, rep);
  const cmd = appCommand('ws', side, '{HOST}', '{PORT}', ['--expose-gc']);
  let server: RunningServer;
  try {
    const env = cfg.profileDir !== undefined ? { ...cmd.env, COMPAT_HEAP_DIR: cfg.profileDir } : cmd.env;
    server = await startServer({ name: side.name, cmd: cmd.argv, env }, { cpu: cfg.serverCpu, host: '127.0.0.1', port: await freePort('127.0.0.1') });
  } catch (e) {
    rec.problems.push((e as Error).message.slice(0, 1000));
    return finish(rec);
  }
  rec.serverArgv = server.argv;
  const clients = Array.from({ length: o.clients }, () => new Client(cfg.clientCpu));
  const perClient = Math.ceil(o.conns / o.clients);
  const check = (what: string, r: ClientReply): boolean => {
    rec.errors += r.errors + r.mismatches;
    if (!r.ok) rec.problems.push(`${what}: ${r.message ?? 'failed'}`);
    return r.ok;
  };
  try {
    const open = (c: Client, k: number, total: number) =>
      c.ask({ cmd: 'open', host: server.host, port: server.port, total, srcFirst: 2 + 4 * k, srcIps: 4, concurrency: 64, timeoutMs: o.timeoutMs });
    if (o.warmupConns > 0) {
      const ok = check('warm-up open', await open(clients[0]!, 0, o.warmupConns))
        && check('warm-up echo', await clients[0]!.ask({ cmd: 'echo', concurrency: 64, timeoutMs: o.timeoutMs }));
      await clients[0]!.ask({ cmd: 'close', timeoutMs: o.timeoutMs });
      if (!ok) return finish(rec);
      await sleep(1000);
    }
    const { mem: before, snapshot: snapBefore } = await memoryOf(server);
    const t0 = Date.now();
    const opened = await Promise.all(clients.map((c, k) => open(c, k, Math.min(perClient, o.conns - k * perClient))));
    const openMs = Date.now() - t0;
    if (!opened.map((r, k) => check(`open (client ${k})`, r)).every(Boolean)) return finish(rec);
    await sleep(1000);
    const { mem: at, snapshot: snapAt } = await memoryOf(server);
    const fds = fdCount(server.pid) ?? NaN;
    if (snapBefore !== undefined && snapAt !== undefined) {
      rec.heap = perConnection(heapCensus(snapBefore), heapCensus(snapAt), o.conns).slice(0, 20);
      rmSync(snapBefore, { force: true });
      rmSync(snapAt, { force: true });
    }
    const fp = fdProblem(side, fds, 20, o.conns);
    if (fp !== undefined) rec.problems.push(fp);
    const echoed = await Promise.all(clients.map((c) => c.ask({ cmd: 'echo', concurrency: 256, timeoutMs: o.timeoutMs })));
    echoed.forEach((r, k) => check(`echo (client ${k})`, r));
    await Promise.all(clients.map((c) => c.ask({ cmd: 'close', timeoutMs: o.timeoutMs })));
    if (before === undefined || at === undefined) rec.problems.push('the server did not report its memory after GC (SIGUSR2, --expose-gc)');
    else {
      const per = (f: (m: Mem) => number) => (f(at) - f(before)) / o.conns;
      rec.mem = {
        conns: o.conns, before, at, fds, openMs,
        rssPerConn: per((m) => m.rss), heapPerConn: per((m) => m.heapUsed), externalPerConn: per((m) => m.external),
      };
      rec.units = o.conns;
      rec.rate = o.conns / (openMs / 1000);
    }
  } finally {
    await Promise.all(clients.map((c) => c.stop()));
    const st = await server.stop();
    if (st.killed) rec.problems.push('server ignored SIGTERM and was killed');
    else if (st.exitCode !== 0) rec.problems.push(`server exit ${st.exitCode ?? st.signal}: ${st.stderrTail.trim().slice(-300)}`);
  }
  return finish(rec);
}
