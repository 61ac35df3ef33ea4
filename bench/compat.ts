// Legacy servers on megapipe (issue 17): the same unmodified applications (bench/servers/compat-app.ts) on node:net
// and on megapipe, side by side in one run, repetitions interleaved. The two processes are identical — both start
// with `--import megapipe/register`, the node:net one with MEGAPIPE_REGISTER=0 — and run pinned to the server CPU,
// the load generator to the other:
//   node:http, Express 5 and Fastify 5 hello world under wrk, keep-alive and `Connection: close` (wrk's threads sent
//     to 127.0.0.1..k, so short connections spread over several address pairs); every response checked by the wrk
//     script (status 200, body "hello world");
//   a ws echo of small messages over many connections under bench/c/ws-load (every echoed byte checked);
//   memory per idle ws connection at 15,000 connections (client processes on the other CPU, after GC);
//   and, on both cores unpinned, megapipe's serve() (serveServer + node:http in 2 worker threads) against node's
//     cluster (2 worker processes running the same server), under wrk keep-alive.
// The figure is work per server CPU-second: requests (messages) over the server processes' utime + stime
// (/proc/PID/stat, every thread and process), beside requests per second and the server core's busy time.
//
//   node dist/bench/compat.js --help          (npm run bench:compat)
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { compatCpuGoal, compatMemoryGoal, type RunFigures } from './lib/goals.js';
import { refuseIfBusy, waitForIdle } from './lib/guard.js';
import { haveTool } from './http/tools.js';
import { ensureCPrograms, pinSelf } from './lib/paths.js';
import { Progress } from './lib/progress.js';
import {
  checkRecordName, gitInfo, machineInfo, makeResultsDir, provenanceMarkdown, recordSummary, reproduceCommand, runsLine, runsMarkdown, summaryDir,
} from './lib/results.js';
import { parseCpuList } from './lib/run.js';
import { fmt, fmtSummary, summarize, type Summary } from './lib/stats.js';
import { formatTable, markdownTable, type Table } from './lib/table.js';
import {
  cleanSummary, disturbed, FOREIGN_MAX_CORES, fmtRuns, MIN_CLEAN_RUNS, overall, rulesText, statusText, STEAL_MAX, tally, verdictText, type Verdict,
} from './lib/verdict.js';
import { PERF_CATEGORIES, perfRecordAvailable } from './compat/perf.js';
import {
  appCommand, idleRun, MEGAPIPE, MULTI, NODE_NET, PROFILE_FLAGS, REQUIRED, writeWrkScripts, wrkRun, wsEchoRun, type App, type CompatRun, type Config, type Side,
} from './compat/runs.js';
import { numberFlags } from './lib/flags.js';

const HELLO = 'hello world';   // what compat-app.ts and compat-multi.ts answer

// ---- the points -------------------------------------------------------------------------------------------------

interface Point {
  name: string;
  kind: 'wrk' | 'ws-echo' | 'ws-idle' | 'multi';
  app?: App;
  close?: boolean;
  /** The issue's goal: megapipe's work per server CPU-second at least this many times node:net's. */
  goal?: number;
}

const POINTS: Point[] = [
  { name: 'http-keepalive', kind: 'wrk', app: 'http', close: false, goal: 1.3 },
  { name: 'http-close', kind: 'wrk', app: 'http', close: true, goal: 1.3 },
  { name: 'express-keepalive', kind: 'wrk', app: 'express', close: false, goal: 1.2 },
  { name: 'express-close', kind: 'wrk', app: 'express', close: true, goal: 1.2 },
  { name: 'fastify-keepalive', kind: 'wrk', app: 'fastify', close: false, goal: 1.3 },
  { name: 'fastify-close', kind: 'wrk', app: 'fastify', close: true, goal: 1.3 },
  { name: 'ws-echo', kind: 'ws-echo', app: 'ws', goal: 1.3 },
  { name: 'ws-idle', kind: 'ws-idle', app: 'ws' },
  { name: 'serve-cluster', kind: 'multi' },
];
const CLUSTER: Side = { name: 'node:cluster', register: false };
const SERVE: Side = { name: 'megapipe serve()', register: true };
/** --megapipe-base DIR: the same applications on the build of DIR (its dist/src/register.js), a third server. */
let BASE: Side | undefined;
const sidesOf = (p: Point): Side[] => (p.kind === 'multi' ? [CLUSTER, SERVE] : BASE ? [NODE_NET, MEGAPIPE, BASE] : [NODE_NET, MEGAPIPE]);

const usage = `usage: node dist/bench/compat.js [options]        (npm run bench:compat -- [options])
The same unmodified applications on node:net and on megapipe (\`--import megapipe/register\`; MEGAPIPE_REGISTER=0 on
the node:net side), side by side, repetitions interleaved; the servers pinned to --server-cpu, the load to
--client-cpu (the serve-cluster point runs unpinned on every CPU). Run it alone on the machine.

  --quick             smoke test, ≈ 1.5 min: 1 repetition × 1 s, 2,000 idle connections, no re-runs (verdicts
                      "not measured")
  --scenarios LIST    points or groups (default all): ${POINTS.map((p) => p.name).join(', ')};
                      a group is a name's first or last part: http, express, fastify, keepalive, close, ws, idle,
                      serve (= serve-cluster)
  --duration S        measured seconds per run, whole (default 4; --quick 1)
  --warmup S          load before each measured run, not measured, whole seconds (default 1)
  --reps N            repetitions, interleaved (default 3; --quick 1)
  --conns N           wrk connections (default 64)
  --close-threads N   wrk threads for Connection: close, thread k to 127.0.0.k (default 4)
  --ws-conns N        ws echo connections (default 256)
  --ws-size B         ws message payload bytes, 1..125 (default 64)
  --ws-pipeline D     ws messages in flight per connection (default 4)
  --idle-conns N      idle ws connections (default 15000; --quick 2000)
  --idle-clients N    client processes opening them (default 2)
  --workers N         workers of the serve-cluster point (default 2)
  --server-cpu L      taskset CPU list of the servers (default 0)
  --client-cpu L      taskset CPU list of the load generators and this harness (default 1)
  --retries N         re-runs of a run disturbed by foreign load or steal (default 2; --quick 0)
  --foreign-max C     foreign CPU, in cores, that makes a run disturbed (default ${FOREIGN_MAX_CORES})
  --steal-max F       steal of one core, as a fraction of the window, that makes a run disturbed (default ${STEAL_MAX})
  --megapipe-base DIR also run every point but serve-cluster on the megapipe build of checkout DIR (its compiled
                      dist/src/register.js, imported instead of this checkout's) as a third server, megapipe@base,
                      interleaved with the others: this build against another, side by side
  --profile           also record the server core with perf over every measured window (the servers run with
                      --perf-basic-prof --interpreted-frames-native-stack, both sides) and report where its time goes, per point; at the idle
                      point, heap snapshots (what each connection adds to the JavaScript heap). Not the
                      serve-cluster point. Both add overhead: quote a profile run's shares, a plain run's figures
  --out DIR           results directory (default bench/results/compat-<time>)
  --record NAME       also copy summary.md to bench/summaries/<date>-NAME/ (to commit)
  --force             run even if the machine is busy (otherwise exit 2)
  -h, --help          this text

A run with wrk socket errors, non-2xx or wrong responses, a ws-load mismatch or error, a failed idle connection or
echo, a server that did not go where its side says (file descriptors), or a disturbed window is left out of every
figure and counted. Goals (issue 17), judged only with ≥ ${MIN_CLEAN_RUNS} clean runs of both sides: ≥ 1.3× node:net's
requests (messages) per server CPU-second for node:http, Fastify and ws, ≥ 1.2× for Express; memory per idle ws
connection ≤ 0.5× node:net's. Needs wrk (apt-get install wrk) and bench/c/bin/ws-load (built with make -C bench/c).`;

function die(msg: string, code = 64): never {
  process.stderr.write(`compat: ${msg}\n`);
  process.exit(code);
}

const values = (() => {
  try {
    return parseArgs({
      options: {
        quick: { type: 'boolean', default: false }, scenarios: { type: 'string' }, duration: { type: 'string' }, warmup: { type: 'string' },
        reps: { type: 'string' }, conns: { type: 'string', default: '64' }, 'close-threads': { type: 'string', default: '4' },
        'ws-conns': { type: 'string', default: '256' }, 'ws-size': { type: 'string', default: '64' }, 'ws-pipeline': { type: 'string', default: '4' },
        'idle-conns': { type: 'string' }, 'idle-clients': { type: 'string', default: '2' }, workers: { type: 'string', default: '2' },
        'server-cpu': { type: 'string', default: '0' }, 'client-cpu': { type: 'string', default: '1' }, retries: { type: 'string' },
        'foreign-max': { type: 'string', default: String(FOREIGN_MAX_CORES) }, 'steal-max': { type: 'string', default: String(STEAL_MAX) },
        out: { type: 'string' }, record: { type: 'string' }, 'megapipe-base': { type: 'string' }, profile: { type: 'boolean', default: false }, force: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h', default: false },
      },
    }).values;
  } catch (e) { return die(`${(e as Error).message}\n${usage}`); }
})();
if (values.help) { process.stdout.write(usage + '\n'); process.exit(0); }

const num = numberFlags(die);
const quick = values.quick!;
// whole seconds: wrk takes no fractions
const durationS = num('duration', values.duration ?? (quick ? '1' : '4'), 1, 120);
const warmupS = num('warmup', values.warmup ?? '1', 0, 30);
const reps = num('reps', values.reps ?? (quick ? '1' : '3'), 1, 20);
const conns = num('conns', values.conns!, 1, 4000);
const closeThreads = num('close-threads', values['close-threads']!, 1, 64);
const wsConns = num('ws-conns', values['ws-conns']!, 1, 10000);
const wsSize = num('ws-size', values['ws-size']!, 1, 125);
const wsPipeline = num('ws-pipeline', values['ws-pipeline']!, 1, 256);
const idleConns = num('idle-conns', values['idle-conns'] ?? (quick ? '2000' : '15000'), 1, 19000);
const idleClients = num('idle-clients', values['idle-clients']!, 1, 16);
const workers = num('workers', values.workers!, 1, 64);
const retries = num('retries', values.retries ?? (quick ? '0' : '2'), 0, 10);
const foreignMax = num('foreign-max', values['foreign-max']!, 0, 64, false);
const stealMax = num('steal-max', values['steal-max']!, 0, 1, false);
const serverCpu = values['server-cpu']!, clientCpu = values['client-cpu']!;
let serverCpus: number[], clientCpus: number[];
try { serverCpus = parseCpuList(serverCpu); clientCpus = parseCpuList(clientCpu); } catch (e) { die((e as Error).message); }
const allCpus = [...new Set([...serverCpus, ...clientCpus])].sort((a, b) => a - b);
const recordDir = values.record === undefined ? undefined : summaryDir(values.record);
if (values.record !== undefined) {
  const bad = checkRecordName(values.record);
  if (bad) die(bad);
  if (existsSync(recordDir!)) die(`--record: ${relative(process.cwd(), recordDir!)} exists already; choose another name`);
}

/** The base build's checkout: its directory, commit and uncommitted changes (what megapipe@base ran). */
let baseInfo: { dir: string; commit: string; dirty: number } | undefined;
if (values['megapipe-base'] !== undefined) {
  const dir = resolve(values['megapipe-base']);
  const register = join(dir, 'dist', 'src', 'register.js');
  if (!existsSync(register)) die(`--megapipe-base: ${register} does not exist (build that checkout: npm install, or npx tsc -p tsconfig.json)`);
  BASE = { name: 'megapipe@base', register: true, registerModule: pathToFileURL(register).href };
  const git = (...args: string[]) => spawnSync('git', ['-C', dir, ...args], { encoding: 'utf8' });
  const head = git('rev-parse', 'HEAD');
  baseInfo = { dir, commit: head.status === 0 ? head.stdout.trim() : 'unknown (not a git checkout)', dirty: git('status', '--porcelain').stdout.split('\n').filter((l) => l.trim() !== '').length };
}

const profile = values.profile!;
const points = (() => {
  if (!values.scenarios) return profile ? POINTS.filter((p) => p.kind !== 'multi') : POINTS;
  const items = values.scenarios.split(',').map((s) => s.trim()).filter(Boolean);
  const match = (p: Point, i: string) => p.name === i || p.name.startsWith(i + '-') || p.name.endsWith('-' + i);
  for (const i of items) if (!POINTS.some((p) => match(p, i))) die(`--scenarios: ${i} names no point (${POINTS.map((p) => p.name).join(', ')})`);
  const chosen = POINTS.filter((p) => items.some((i) => match(p, i)));
  if (profile && chosen.some((p) => p.kind === 'multi')) die('--profile: the serve-cluster point is not profiled');
  return chosen;
})();
if (profile && !perfRecordAvailable()) die('--profile: perf record does not work here (apt-get install linux-perf; kernel.perf_event_paranoid)', 1);

for (const f of REQUIRED) if (!existsSync(f)) die(`${relative(process.cwd(), f)} is missing: npx tsc -p tsconfig.json`, 1);
if (!haveTool('taskset')) die('taskset is missing (apt-get install util-linux)', 1);
if (points.some((p) => p.kind === 'wrk' || p.kind === 'multi') && !haveTool('wrk')) die('wrk is missing (apt-get install wrk)', 1);
if (points.some((p) => p.kind === 'ws-echo')) {
  try { ensureCPrograms(['ws-load']); } catch (e) { die((e as Error).message, 1); }
}

// ---- run ----------------------------------------------------------------------------------------------------------

const command = reproduceCommand();
const outDir = makeResultsDir('compat', values.out);
const profileDir = profile ? join(outDir, 'perf') : undefined;
if (profileDir) mkdirSync(profileDir, { recursive: true });
const cfg: Config = { serverCpu, clientCpu, serverCpus, clientCpus, durationS, warmupS, limits: { foreignMaxCores: foreignMax, stealMax }, profileDir };
const work = mkdtempSync(join(tmpdir(), 'megapipe-compat-'));
process.on('exit', () => { try { rmSync(work, { recursive: true, force: true }); } catch { /* best effort */ } });
const scripts = writeWrkScripts(work, HELLO);

function runPoint(p: Point, side: Side, rep: number): Promise<CompatRun> {
  switch (p.kind) {
    case 'wrk': {
      const c = appCommand(p.app!, side, '0.0.0.0', '{PORT}', profile ? PROFILE_FLAGS : []);
      return wrkRun(cfg, {
        point: p.name, server: side.name, argv: c.argv, env: c.env, side, serverCpu, serverCpus, clientCpu, clientCpus, conns,
        threads: p.close ? closeThreads : 1, script: p.close ? scripts.spread : scripts.keepalive, headers: p.close ? ['Connection: close'] : undefined,
      }, rep);
    }
    case 'ws-echo': return wsEchoRun(cfg, p.name, side, rep, { conns: wsConns, size: wsSize, pipeline: wsPipeline });
    case 'ws-idle': return idleRun(cfg, p.name, side, rep, { conns: idleConns, clients: idleClients, warmupConns: Math.min(1000, idleConns), timeoutMs: 120_000 });
    case 'multi': {
      const argv = [process.execPath, MULTI, '--mode', side === SERVE ? 'serve' : 'cluster', '--workers', String(workers), '--host', '127.0.0.1', '--port', '{PORT}'];
      const every = allCpus.join(',');
      return wrkRun(cfg, {
        point: p.name, server: side.name, argv, serverCpu: every, serverCpus: allCpus, clientCpu: every, clientCpus: allCpus, conns,
        threads: workers, script: scripts.keepalive,
      }, rep);
    }
  }
}

if (!values.force) await waitForIdle(60);
const idle = await refuseIfBusy(values.force!);
if (!pinSelf(clientCpu)) process.stderr.write(`compat: could not pin the harness to CPU ${clientCpu}\n`);
const total = reps * points.reduce((n, p) => n + sidesOf(p).length, 0);
process.stderr.write(`compat: ${points.length} points × ${BASE ? '2–3' : 2} servers × ${reps} reps, ${warmupS}+${durationS} s each; servers on CPU ${serverCpu}, load on CPU ${clientCpu}\n`);
const progress = new Progress(total);
const runs: CompatRun[] = [];
const meta = {
  command, started: new Date().toISOString(), git: gitInfo(), machine: machineInfo(), idleCheck: idle,
  megapipeBase: baseInfo,
  options: { profile, durationS, warmupS, reps, conns, closeThreads, wsConns, wsSize, wsPipeline, idleConns, idleClients, workers, serverCpu, clientCpu, retries, foreignMaxCores: foreignMax, stealMax },
};
const save = () => writeFileSync(join(outDir, 'results.json'), JSON.stringify({ ...meta, runs }, null, 1) + '\n');

for (let rep = 1; rep <= reps; rep++) {
  if (rep > 1 && !values.force) await waitForIdle(60);
  for (const p of points) {
    for (const side of sidesOf(p)) {
      progress.show(`rep ${rep} ${p.name} ${side.name}`);
      for (let attempt = 0; ; attempt++) {
        const rec = await runPoint(p, side, rep);
        runs.push(rec);
        save();
        const shown = rec.problems.filter((x) => !/^client core saturated/.test(x));
        if (shown.length > 0) progress.log(`compat: ${p.name} ${side.name} rep ${rep}: ${rec.state}: ${shown.join('; ')}`);
        if (!disturbed(rec.state) || attempt >= retries) break;
        progress.log(`compat: re-running it (attempt ${attempt + 2} of ${retries + 1}) once the machine is quiet`);
        await waitForIdle(60);
      }
      progress.tick();
    }
  }
}
progress.finish();

// ---- report -------------------------------------------------------------------------------------------------------

const of = (point: string, server: string) => runs.filter((r) => r.point === point && r.server === server);
const perCpuS = (r: CompatRun) => (r.procUs !== undefined && r.procUs > 0 ? 1e6 / r.procUs : undefined);
const k = (s: Summary): Summary => ({ median: s.median / 1000, min: s.min / 1000, max: s.max / 1000, n: s.n });
const errorsOf = (rs: CompatRun[]) => rs.reduce((n, r) => n + r.errors, 0);
const ratio = (a: number, b: number) => (Number.isFinite(a / b) ? `${fmt(a / b)}×` : '–');
const figures = (rs: CompatRun[]): RunFigures[] | undefined => (rs.length ? rs.map((r) => ({ state: r.state, us: r.procUs, rate: r.rate, bytes: r.mem?.rssPerConn })) : undefined);
const fdsText = (rs: CompatRun[]) => { const s = summarize(rs.filter((r) => r.state === 'clean').map((r) => r.serverFds ?? NaN)); return s.n ? String(Math.round(s.median)) : '–'; };

const TITLES: Record<string, string> = {
  'http-keepalive': 'node:http, keep-alive', 'http-close': 'node:http, Connection: close',
  'express-keepalive': 'Express 5, keep-alive', 'express-close': 'Express 5, Connection: close',
  'fastify-keepalive': 'Fastify 5, keep-alive', 'fastify-close': 'Fastify 5, Connection: close',
  'ws-echo': `ws echo, ${wsConns} conns, ${wsSize} B, ${wsPipeline} in flight`,
};

const verdicts: { what: string; v: Verdict }[] = [];
let text = '', md = '';

const pinned = points.filter((p) => p.kind === 'wrk' || p.kind === 'ws-echo');
if (pinned.length) {
  const t: Table = {
    headers: ['point', 'server', 'runs clean/all', 'k req/s', 'req/s vs node:net', 'k req per server CPU-s', 'per CPU-s vs node:net', 'server CPU µs/req',
      'server-core µs/req', 'client busy', 'server fds', 'errors (all runs)'],
    rows: [],
  };
  for (const p of pinned) {
    const base = cleanSummary(of(p.name, NODE_NET.name), perCpuS).median;
    const baseRate = cleanSummary(of(p.name, NODE_NET.name), (r) => r.rate).median;
    for (const side of sidesOf(p)) {
      const rs = of(p.name, side.name);
      const per = cleanSummary(rs, perCpuS), rate = cleanSummary(rs, (r) => r.rate);
      const client = cleanSummary(rs, (r) => r.cost?.clientCoreBusy);
      t.rows.push([
        TITLES[p.name] ?? p.name, side === MEGAPIPE ? `**${side.name}**` : side.name, fmtRuns(tally(rs.map((r) => r.state))),
        fmtSummary(k(rate)), ratio(rate.median, baseRate), fmtSummary(k(per)), ratio(per.median, base),
        fmtSummary(cleanSummary(rs, (r) => r.procUs)), fmtSummary(cleanSummary(rs, (r) => r.coreUs)),
        client.n ? `${fmt(client.median * 100, 2)}%${client.median > 0.95 ? '*' : ''}` : '–', fdsText(rs), String(errorsOf(rs)),
      ]);
    }
    if (p.goal !== undefined) {
      verdicts.push({ what: `${TITLES[p.name]} (≥ ${p.goal}×)`, v: compatCpuGoal({ 'node:net': figures(of(p.name, NODE_NET.name)), megapipe: figures(of(p.name, MEGAPIPE.name)) }, p.goal) });
    }
  }
  const title = `One server core (server on CPU ${serverCpu}, load on CPU ${clientCpu}); "req" is a message for ws`;
  text += `\n${title}\n${formatTable(t)}`;
  md += `## ${title}\n\n${markdownTable(t)}\n` +
    `"k req per server CPU-s" = requests (messages) per second of the server process's own CPU (utime + stime); "per CPU-s vs node:net" its ` +
    `ratio, the goal's figure. "server-core µs/req": the server core's busy time (softirq included) per request. \`*\`: client core > 95% busy ` +
    `(req/s then measures the load generator). "server fds": descriptors the server held while loaded (megapipe's lwsockets are none).\n\n`;
}

if (BASE && baseInfo && pinned.length) {
  // this build against the base build, point by point: the same figures, and their ratio
  const t: Table = {
    headers: ['point', 'megapipe server CPU µs/req', 'megapipe@base server CPU µs/req', 'megapipe ÷ base (CPU per req)', 'megapipe per CPU-s vs node:net', 'megapipe@base per CPU-s vs node:net'],
    rows: [],
  };
  for (const p of pinned) {
    const base = cleanSummary(of(p.name, NODE_NET.name), perCpuS).median;
    const cur = cleanSummary(of(p.name, MEGAPIPE.name), (r) => r.procUs), old = cleanSummary(of(p.name, BASE.name), (r) => r.procUs);
    t.rows.push([TITLES[p.name] ?? p.name, fmtSummary(cur), fmtSummary(old), ratio(cur.median, old.median),
      ratio(cleanSummary(of(p.name, MEGAPIPE.name), perCpuS).median, base), ratio(cleanSummary(of(p.name, BASE.name), perCpuS).median, base)]);
  }
  const title = `This build against megapipe@base (${baseInfo.commit.slice(0, 12)}${baseInfo.dirty ? `, ${baseInfo.dirty} files changed` : ''}, ${baseInfo.dir})`;
  text += `\n${title}\n${formatTable(t)}`;
  md += `## ${title}\n\n${markdownTable(t)}\n` +
    `megapipe@base: the same application and harness, with \`--import\` of that checkout's dist/src/register.js instead of this one's; ` +
    `its runs interleaved with the other two servers'. "megapipe ÷ base" < 1: this build spends less server CPU per request.\n\n`;
}

const idlePoint = points.find((p) => p.kind === 'ws-idle');
if (idlePoint) {
  const t: Table = { headers: ['server', 'runs ok/all', 'RSS before → at N, MiB', 'RSS B/conn', 'vs node:net', 'JS heap B/conn', 'external B/conn', 'server fds at N', 'open s'], rows: [] };
  const base = cleanSummary(of(idlePoint.name, NODE_NET.name), (r) => r.mem?.rssPerConn).median;
  const mib = (v: number) => fmt(v / 1048576);
  for (const side of sidesOf(idlePoint)) {
    const rs = of(idlePoint.name, side.name);
    const clean = rs.filter((r) => r.state === 'clean' && r.mem);
    const rss = cleanSummary(rs, (r) => r.mem?.rssPerConn);
    const mid = clean.length ? clean[Math.floor(clean.length / 2)]!.mem! : undefined;
    t.rows.push([
      side === MEGAPIPE ? `**${side.name}**` : side.name, fmtRuns(tally(rs.map((r) => r.state))),
      mid ? `${mib(cleanSummary(rs, (r) => r.mem?.before.rss).median)} → ${mib(cleanSummary(rs, (r) => r.mem?.at.rss).median)}` : '–',
      fmtSummary(rss), ratio(rss.median, base), fmtSummary(cleanSummary(rs, (r) => r.mem?.heapPerConn)), fmtSummary(cleanSummary(rs, (r) => r.mem?.externalPerConn)),
      fdsText(rs.map((r) => ({ ...r, serverFds: r.mem?.fds }))), fmt(cleanSummary(rs, (r) => (r.mem ? r.mem.openMs / 1000 : undefined)).median),
    ]);
  }
  verdicts.push({ what: 'memory per idle ws connection (≤ 0.5×)', v: compatMemoryGoal({ 'node:net': figures(of(idlePoint.name, NODE_NET.name)), megapipe: figures(of(idlePoint.name, MEGAPIPE.name)) }, 0.5) });
  const title = `Memory per idle ws connection, ${idleConns.toLocaleString('en-US')} connections (server on CPU ${serverCpu}, ${idleClients} client processes on CPU ${clientCpu})`;
  text += `\n${title}\n${formatTable(t)}`;
  md += `## ${title}\n\n${markdownTable(t)}\n` +
    `Memory after two full GCs (\`--expose-gc\`, both sides), before any connection (after a warm-up of ${Math.min(1000, idleConns)} connections opened, ` +
    `echoed and closed) and with all ${idleConns.toLocaleString('en-US')} open; per connection = the difference / N. Then one message echoed and checked on ` +
    `every connection. RSS leaves out kernel socket memory, the same for both.${profile ? ' **In a --profile run the heap snapshots taken at both points ' +
    'add their own memory: these figures are not comparable with a plain run\'s.**' : ''}\n\n`;
}

const multi = points.find((p) => p.kind === 'multi');
if (multi) {
  const t: Table = {
    headers: ['server', 'runs clean/all', 'k req/s', 'req/s vs node:cluster', 'server CPU µs/req (all processes)', 'k req per server CPU-s', 'per CPU-s vs node:cluster',
      'machine µs/req', 'accepted per worker, each clean run', 'errors (all runs)'],
    rows: [],
  };
  const base = cleanSummary(of(multi.name, CLUSTER.name), perCpuS).median;
  const baseRate = cleanSummary(of(multi.name, CLUSTER.name), (r) => r.rate).median;
  for (const side of sidesOf(multi)) {
    const rs = of(multi.name, side.name);
    const per = cleanSummary(rs, perCpuS), rate = cleanSummary(rs, (r) => r.rate);
    t.rows.push([
      side === SERVE ? `**${side.name}**` : side.name, fmtRuns(tally(rs.map((r) => r.state))), fmtSummary(k(rate)), ratio(rate.median, baseRate),
      fmtSummary(cleanSummary(rs, (r) => r.procUs)), fmtSummary(k(per)), ratio(per.median, base),
      fmtSummary(cleanSummary(rs, (r) => r.cost?.machineUsPerTxn)),
      rs.filter((r) => r.state === 'clean').map((r) => r.accepted?.join('/') ?? '–').join(', '), String(errorsOf(rs)),
    ]);
  }
  const title = `node:http on ${workers} cores: serve() + serveServer against cluster (${workers} workers each, unpinned; wrk keep-alive, ${workers} threads)`;
  text += `\n${title}\n${formatTable(t)}`;
  md += `## ${title}\n\n${markdownTable(t)}\n` +
    `"server CPU": utime + stime of every server process and thread (cluster: the primary and its workers; serve(): one process, its worker ` +
    `threads). "machine µs/req": every core's busy time per request, wrk included (server and client share the ${allCpus.length} cores). ` +
    `"accepted per worker": connections each serve() worker accepted over the warm-up and the measured run (${conns} each; the partitioned ` +
    `listener gives a connection to the worker of the CPU that processed its SYN; cluster's primary hands them out round-robin).\n\n`;
}

if (profile) {
  // per category: the server core's busy µs per request times the category's share of the core's busy samples
  let section = '';
  for (const p of pinned) {
    const t: Table = { headers: ['where the server core\'s time goes', ...sidesOf(p).map((x) => `${x.name} µs/req`), 'megapipe − node:net'], rows: [], align: ['left', ...sidesOf(p).map(() => 'right' as const), 'right'] };
    const usOf = (side: Side, cat: string | null) => cleanSummary(of(p.name, side.name), (r) => {
      if (!r.perf || !r.coreUs || r.perf.busySamples === 0) return undefined;
      const n = cat === null ? r.perf.otherSamples : r.perf.categories[cat as keyof typeof r.perf.categories] ?? 0;
      return (r.coreUs * n) / r.perf.busySamples;
    }).median;
    for (const cat of [...PERF_CATEGORIES, null]) {
      const v = sidesOf(p).map((x) => usOf(x, cat));
      if (v.every((x) => !(x >= 0.005))) continue;
      t.rows.push([cat ?? 'other work on the core (softirq in idle, kernel threads)', ...v.map((x) => fmt(x)), fmt(v[1]! - v[0]!)]);
    }
    t.rows.push(['total (server-core µs/req)', ...sidesOf(p).map((x) => fmt(cleanSummary(of(p.name, x.name), (r) => (r.perf ? r.coreUs : undefined)).median)), '']);
    section += `### ${TITLES[p.name]}\n\n${markdownTable(t)}\n`;
    text += `\nWhere the time goes: ${TITLES[p.name]} (perf, medians of clean runs)\n${formatTable(t)}`;
    for (const side of sidesOf(p)) {
      const last = of(p.name, side.name).filter((r) => r.state === 'clean' && r.perf).pop();
      if (!last?.perf) continue;
      section += `Most sampled symbols, ${side.name} (rep ${last.rep}, ${last.perf.serverSamples} of ${last.perf.busySamples} busy samples were the server's):\n\n` +
        last.perf.top.slice(0, 10).map((x) => `- ${(100 * x.samples / last.perf!.busySamples).toFixed(1)}% \`${x.sym.slice(0, 120)}\` (${x.dso})`).join('\n') + '\n\n';
    }
  }
  md += `## Where the server core's time goes (perf, --profile)\n\n` +
    `\`perf record -C ${serverCpu} -F 1999 -g\` over each measured window; the servers ran with ${PROFILE_FLAGS.join(' ')} (both sides). ` +
    `Each category: the server core's busy µs per request (as measured in that run) times the category's share of the core's busy samples. ` +
    `The server's threads' samples (softirq work that interrupted them included) go by their stacks (bench/compat/perf.ts): kernel samples by ` +
    `the kernel part (any network function: TCP/IP, which on loopback includes delivering the packet to the peer; else io_uring; else epoll ` +
    `and wake-ups), garbage collection and compilation by the leaf, the rest — V8's builtins and runtime, libc — to the first owner up the ` +
    `stack: a JavaScript function by its source, node's C++, or megapipe's addon. **perf and the flags add overhead: the totals here are ` +
    `above a plain run's; compare shares and differences.**\n\n${section}`;
}

if (profile && idlePoint) {
  let section = '';
  for (const side of sidesOf(idlePoint)) {
    const last = of(idlePoint.name, side.name).filter((r) => r.state === 'clean' && r.heap).pop();
    if (!last?.heap) continue;
    const t: Table = { headers: ['heap objects', 'per connection', 'bytes per connection'], rows: last.heap.filter((h) => Math.abs(h.bytes) >= 8).slice(0, 14).map((h) => [h.key, fmt(h.count), fmt(h.bytes)]) };
    section += `### ${side.name} (rep ${last.rep}; JS heap ${fmt(last.mem?.heapPerConn)} B per connection by heapUsed)\n\n${markdownTable(t)}\n`;
    text += `\nWhat each idle ws connection adds to the JavaScript heap: ${side.name}\n${formatTable(t)}`;
  }
  md += `## What each idle ws connection adds to the JavaScript heap (heap snapshots, --profile)\n\n` +
    `Two heap snapshots after GC, with no connection and with all ${idleConns.toLocaleString('en-US')} open; their difference by constructor (objects, ` +
    `closures) or kind, divided by the connections. Self sizes (what the objects themselves take, not what they keep alive).\n\n${section}`;
}

const verdictLines = verdicts.map((x) => `${x.what}: ${verdictText(x.v)}`);
const byApp = (prefix: string) => overall(verdicts.filter((x) => x.what.startsWith(prefix)).map((x) => x.v));
const appLine = ['node:http', 'Express', 'Fastify', 'ws echo', 'memory'].filter((a) => verdicts.some((x) => x.what.startsWith(a)))
  .map((a) => `${a}: ${statusText(byApp(a))}`).join('; ');
const finished = new Date().toISOString();
const states = runs.map((r) => r.state);
const head = `# Legacy servers on megapipe (issue 17), ${meta.started}\n\n` +
  provenanceMarkdown({ command, started: meta.started, finished, git: meta.git, machine: meta.machine,
    repetitions: `${reps} requested per point and server, interleaved; disturbed runs re-run up to ${retries} times`,
    runs: runsLine(states), idleCheck: idle.message, extra: [rulesText({ foreignMaxCores: foreignMax, stealMax })] }) + '\n' +
  `The applications: bench/servers/compat-app.ts (node:http, Express 5, Fastify 5 answering "hello world"; a ws echo server), started as ` +
  `\`node --import megapipe/register --import ./dist/bench/servers/compat-hook.js dist/bench/servers/compat-app.js --app APP --host HOST --port PORT\` ` +
  `with MEGAPIPE_REGISTER=1 (megapipe) or 0 (node:net). wrk: ${conns} connections, 1 thread for keep-alive, ${closeThreads} for Connection: close ` +
  `(thread k to 127.0.0.k, the servers listening on 0.0.0.0); a Lua check of every response. ws-load (bench/c/ws-load.c): ${wsConns} connections, ` +
  `${wsSize}-byte binary messages, ${wsPipeline} in flight per connection, every byte checked. ${warmupS} s warm-up + ${durationS} s measured; ` +
  `median (min–max) of clean runs.` +
  (baseInfo ? ` A third server, megapipe@base, ran every point but serve-cluster with \`--import ${join(baseInfo.dir, 'dist', 'src', 'register.js')}\` ` +
    `(the build of ${baseInfo.commit}${baseInfo.dirty ? `, ${baseInfo.dirty} files changed` : ''}) instead of this checkout's megapipe/register.` : '') + `\n\n`;
md = head + md;
if (verdictLines.length) md += `## Against the goals (≥ ${MIN_CLEAN_RUNS} clean runs of both sides)\n\n${verdictLines.map((v) => `- ${v}`).join('\n')}\n\n${appLine ? `By application: ${appLine}.\n` : ''}`;
md += `\n## Every run\n\n` + runsMarkdown(runs.filter((r) => r.mem === undefined && r.point !== 'ws-idle').map((r) => ({
  rep: r.rep, point: r.point, server: r.server, state: r.state, us: r.procUs, rate: r.rate, cost: r.cost, problems: r.problems,
})), 'server CPU µs/req', 'req/s');
const idleRuns = runs.filter((r) => r.point === 'ws-idle');
if (idleRuns.length) {
  md += `\nIdle connections:\n\n| rep | server | state | RSS before, B | RSS at N, B | RSS B/conn | heap B/conn | external B/conn | fds | open ms | problems |\n|---:|:---|:---|---:|---:|---:|---:|---:|---:|---:|:---|\n` +
    idleRuns.map((r) => `| ${r.rep} | ${r.server} | ${r.state} | ${r.mem?.before.rss ?? '–'} | ${r.mem?.at.rss ?? '–'} | ${fmt(r.mem?.rssPerConn)} | ${fmt(r.mem?.heapPerConn)} | ` +
      `${fmt(r.mem?.externalPerConn)} | ${r.mem?.fds ?? '–'} | ${r.mem?.openMs ?? '–'} | ${r.problems.join('; ').replace(/\|/g, '\\|').slice(0, 300)} |`).join('\n') + '\n';
}
writeFileSync(join(outDir, 'summary.md'), md);
writeFileSync(join(outDir, 'results.json'), JSON.stringify({ ...meta, finished, runs }, null, 1) + '\n');
process.stdout.write(text + (verdictLines.length ? `\nAgainst the goals (≥ ${MIN_CLEAN_RUNS} clean runs of both sides):\n${verdictLines.join('\n')}\n${appLine ? `By application: ${appLine}\n` : ''}` : ''));
process.stdout.write(`\n${runsLine(states)}. Results: ${relative(process.cwd(), outDir) || outDir}/ (results.json, summary.md)\n`);
if (recordDir) process.stdout.write(`Summary recorded in ${recordSummary(recordDir, outDir)}/ (commit it)\n`);
process.stdout.write(`Reproduce: ${command}\n`);
process.exit(states.includes('failed') ? 1 : 0);
