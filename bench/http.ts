// The HTTP benchmark of issue 6: megapipe-http against nginx (one worker), node:http and Bun.serve, each pinned to
// the same core, under wrk (keep-alive, Connection: close, a realistic mix of file sizes) and h2load --h1
// (pipelining). For every run it reports requests/s and the server core's busy time per request (from /proc/stat,
// as the RPC harness does: user + system + softirq of the server's core, which a saturated client cannot hide),
// checks every file once byte for byte before loading it, and checks the load generator's counts (errors,
// non-2xx, bytes per response). Repetitions are interleaved (A B C D A B C D ...); medians and min–max.
//
//   node dist/bench/http.js --help
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { recordCpus, threadsOf } from './compat/perf.js';
import { httpGoal, httpSpeedGoal } from './lib/goals.js';
import {
  buildOf, checkRecordName, gitInfo, machineInfo, makeResultsDir, provenanceMarkdown, recordSummary, reproduceCommand, runsLine, runsMarkdown, summaryDir,
} from './lib/results.js';
import { refuseIfBusy, waitForIdle } from './lib/guard.js';
import { freePort, pinSelf, ROOT } from './lib/paths.js';
import { processTree, sample, windowCost, type Sample, type WindowCost } from './lib/procfs.js';
import { Progress } from './lib/progress.js';
import { parseCpuList } from './lib/run.js';
import { fmt, fmtSummary, type Summary } from './lib/stats.js';
import { formatTable, markdownTable, type Table } from './lib/table.js';
import {
  cleanSummary, disturbance, disturbed, FOREIGN_MAX_CORES, fmtRuns, MIN_CLEAN_RUNS, overall, rulesText, statusText, stateOf, STEAL_MAX, tally, verdictText,
  type RunState, type Tally, type Verdict,
} from './lib/verdict.js';
import {
  APT_PACKAGE, haveTool, LARGE_FILE, MIX_FILES, mixMeanBody, nginxConfig, probeSite, runH2load, runWrk, SMALL_FILE, startPinned,
  writeScripts, writeSite, type LoadReport,
} from './http/tools.js';
import { numberFlags } from './lib/flags.js';

const SCENARIOS = ['keepalive', 'pipelined', 'close', 'mix', 'large'] as const;
type ScenarioName = (typeof SCENARIOS)[number];
const SCENARIO_TITLE: Record<ScenarioName, string> = {
  keepalive: '1 KiB file, keep-alive (wrk)',
  pipelined: '1 KiB file, pipelined (h2load --h1)',
  close: '1 KiB file, Connection: close (wrk)',
  mix: 'mix of 10 files, 500 B–200 KiB, keep-alive (wrk)',
  large: '2 MiB file (not cached: read per request), keep-alive (wrk)',
};
/** The load tool each scenario needs. */
const SCENARIO_TOOL: Record<ScenarioName, 'wrk' | 'h2load'> = { keepalive: 'wrk', pipelined: 'h2load', close: 'wrk', mix: 'wrk', large: 'wrk' };
const SERVERS = ['megapipe-http', 'nginx', 'node:http', 'bun'] as const;
/** The scenarios issue 6's goal names; "large" is this benchmark's own extra (judged, but not in the overall line). */
const ISSUE_SCENARIOS: readonly ScenarioName[] = ['keepalive', 'pipelined', 'close', 'mix'];

const usage = `usage: node dist/bench/http.js [options]
HTTP/1.1 static files: megapipe-http vs nginx (1 worker), node:http and Bun.serve, each pinned to the server CPU,
the load generator pinned to the client CPU. Run it under the shared lock:
  flock /tmp/megapipe-bench.lock node dist/bench/http.js

  --quick           ≈ 4 min: 2 repetitions × 3 s (default: 3 × 5 s, ≈ 8 min; the run prints its own estimate)
  --servers LIST    of ${SERVERS.join(',')} (default all; those whose tool is missing are skipped)
  --variant N=CLI   also run a megapipe-http build from another compiled cli.js under the name N (repeatable),
                    e.g. to measure a change side by side with its baseline; "N=CLI --flag V" adds arguments
  --scenarios LIST  of ${SCENARIOS.join(',')} (default all)
                      keepalive  GET /index.html (1 KiB), keep-alive, wrk
                      pipelined  the same with --pipeline requests in flight per connection, h2load --h1 -m
                      close      the same with "Connection: close": one request per connection, wrk
                      mix        10 files of 500 B..200 KiB in a realistic proportion (mean 20 KiB), wrk + Lua
                      large      GET /large.bin (2 MiB, above the JavaScript servers' 1 MiB cache: read from the
                                 file per request), keep-alive, at most 16 connections, wrk
  --conns N         concurrent connections (default 64)
  --pipeline D      requests in flight per connection for "pipelined" (default 16)
  --duration S      measured seconds per run (default 5; --quick 3)
  --warmup S        load before each measured run, not measured (default 1)
  --reps N          repetitions, interleaved across servers (default 3; --quick 2)
  --server-cpu L    taskset CPU list of the servers (default 0)
  --client-cpu L    taskset CPU list of wrk/h2load and this harness (default 1)
  --bun PATH        the bun binary (default: bench/.cache/bun, installed there on demand with
                    npm install --no-save --prefix bench/.cache/bun @oven/bun-linux-x64)
  --no-install      do not install bun; skip it when it is not already there
  --out DIR         results directory (default bench/results/http-<time>)
  --retries N       re-runs of a run disturbed by other processes' CPU or by steal (default 2)
  --foreign-max C   foreign CPU, in cores, that makes a run disturbed (default ${FOREIGN_MAX_CORES})
  --steal-max F     steal of one server or client core, as a fraction of the window, that makes a run disturbed
                    (default ${STEAL_MAX}); steal never counts as busy
  --perf DIR        record every measured window with perf (perf record -C <server CPU> -g; node servers run with
                    --perf-basic-prof) into DIR/<server>-<scenario>-<rep>.data; the CPU figures then include perf's
                    cost. Where the time goes: node bench/scripts/http-profile/breakdown.mjs RESULTS_DIR
  --record NAME     also copy summary.md to bench/summaries/<date>-NAME/ (to commit)
  --force           run even if the machine is busy (otherwise exit 2)
  -h, --help        this text

Only clean runs enter the tables: a run with socket errors, non-2xx responses, failed requests, wrong body bytes
per response, a non-zero exit of the load generator, or a disturbed window (re-run first) is left out and
counted per server and scenario. The goal (ahead of Bun and node:http, ≥ nginx's requests per core) is judged
per scenario only when all four servers have ≥ ${MIN_CLEAN_RUNS} clean runs, else "not measured".

Needs wrk (apt-get install wrk), h2load (apt-get install nghttp2-client) and, for its column, nginx
(apt-get install nginx); a missing tool skips what needs it, with a note.
Outputs results.json (every run) and summary.md (one table per scenario) under the results directory.`;

function die(msg: string, code = 64): never {
  process.stderr.write(`http: ${msg}\n`);
  process.exit(code);
}

function parseOptions() {
  return parseArgs({
    options: {
      quick: { type: 'boolean', default: false }, servers: { type: 'string' }, scenarios: { type: 'string' },
      variant: { type: 'string', multiple: true, default: [] },
      conns: { type: 'string', default: '64' }, pipeline: { type: 'string', default: '16' },
      duration: { type: 'string' }, warmup: { type: 'string', default: '1' }, reps: { type: 'string' },
      'server-cpu': { type: 'string', default: '0' }, 'client-cpu': { type: 'string', default: '1' },
      bun: { type: 'string' }, 'no-install': { type: 'boolean', default: false }, out: { type: 'string' },
      retries: { type: 'string', default: '2' }, 'foreign-max': { type: 'string', default: String(FOREIGN_MAX_CORES) },
      'steal-max': { type: 'string', default: String(STEAL_MAX) }, record: { type: 'string' },
      perf: { type: 'string' }, force: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h', default: false },
    },
  }).values;
}
const values = (() => {
  try { return parseOptions(); } catch (e) { return die(`${(e as Error).message}\n${usage}`); }
})();
if (values.help) { process.stdout.write(usage + '\n'); process.exit(0); }

const num = numberFlags(die);
const quick = values.quick!;
const conns = num('conns', values.conns!, 1, 10000);
const pipeline = num('pipeline', values.pipeline!, 1, 256);
const durationS = num('duration', values.duration ?? (quick ? '3' : '5'), 1, 120);
const warmupS = num('warmup', values.warmup!, 0, 30);
const reps = num('reps', values.reps ?? (quick ? '2' : '3'), 1, 20);
const retries = num('retries', values.retries!, 0, 10);
const foreignMax = num('foreign-max', values['foreign-max']!, 0, 64, false);
const stealMax = num('steal-max', values['steal-max']!, 0, 1, false);
const recordDir = values.record === undefined ? undefined : summaryDir(values.record);
if (values.record !== undefined) {
  const bad = checkRecordName(values.record);
  if (bad) die(bad);
  if (existsSync(recordDir!)) die(`--record: ${relative(process.cwd(), recordDir!)} exists already; choose another name`);
}
const serverCpu = values['server-cpu']!, clientCpu = values['client-cpu']!;
let serverCpus: number[], clientCpus: number[];
try { serverCpus = parseCpuList(serverCpu); clientCpus = parseCpuList(clientCpu); } catch (e) { die((e as Error).message); }
const host = '127.0.0.1';

const scenarios = (values.scenarios ? values.scenarios.split(',').map((s) => s.trim()) : [...SCENARIOS]) as ScenarioName[];
for (const s of scenarios) if (!SCENARIOS.includes(s)) die(`unknown scenario ${s} (${SCENARIOS.join(', ')})`);
const wantedServers = values.servers ? values.servers.split(',').map((s) => s.trim()) : [...SERVERS];
for (const s of wantedServers) if (!(SERVERS as readonly string[]).includes(s)) die(`unknown server ${s} (${SERVERS.join(', ')})`);

// ---- tools and servers ----------------------------------------------------------------------------------------

const notes: string[] = [];
const note = (s: string) => { notes.push(s); process.stderr.write(`http: ${s}\n`); };
if (!haveTool('taskset')) die('taskset is missing (apt-get install util-linux): servers and clients must be pinned', 1);
for (const tool of ['wrk', 'h2load'] as const) {
  if (haveTool(tool)) continue;
  const skipped = scenarios.filter((s) => SCENARIO_TOOL[s] === tool);
  note(`${tool} is missing (apt-get install ${APT_PACKAGE[tool]}): skipping ${skipped.join(', ') || 'nothing'}`);
  for (const s of skipped) scenarios.splice(scenarios.indexOf(s), 1);
}
if (scenarios.length === 0) die('no scenario left to run', 1);

/** --perf DIR: every measured window is recorded with perf (bench/scripts/http-profile/breakdown.mjs reads them); node
 *  servers get names for their JIT frames. */
const perfDir = values.perf === undefined ? undefined : resolve(values.perf);
if (perfDir !== undefined) mkdirSync(perfDir, { recursive: true });
const nodePerfFlags = perfDir === undefined ? [] : ['--perf-basic-prof', '--interpreted-frames-native-stack'];

interface ServerDef { name: string; argv: (docroot: string, port: number, dir: string) => string[]; description: string; version?: string }

function megapipeDef(name: string, cli: string, extra: string[] = []): ServerDef {
  return {
    name,
    // --shutdown-timeout: bounded stop (see the report: sessions whose peer vanished mid-pipeline linger until it)
    argv: (docroot, port) => [process.execPath, ...nodePerfFlags, cli, '--root', docroot, '--host', host, '--port', String(port), '--workers', '1', '--shutdown-timeout', '2000', ...extra],
    description: `megapipe-http (${relative(ROOT, cli) || cli}${extra.length ? ' ' + extra.join(' ') : ''}, --workers 1: one worker thread, io_uring channel; ${buildOf(cli).text})`,
  };
}

function bunBinary(): string | undefined {
  if (values.bun) return existsSync(values.bun) ? values.bun : (note(`--bun ${values.bun} does not exist: skipping Bun`), undefined);
  const prefix = join(ROOT, 'bench', '.cache', 'bun');
  const bin = join(prefix, 'node_modules', '@oven', 'bun-linux-x64', 'bin', 'bun');
  if (existsSync(bin)) return bin;
  if (values['no-install']) { note(`bun is not installed in ${relative(ROOT, prefix)} and --no-install was given: skipping Bun`); return undefined; }
  process.stderr.write(`http: installing bun into ${relative(ROOT, prefix)} (npm install --no-save --prefix … @oven/bun-linux-x64)\n`);
  mkdirSync(prefix, { recursive: true });
  const r = spawnSync('npm', ['install', '--no-save', '--no-audit', '--no-fund', '--prefix', prefix, '@oven/bun-linux-x64'], { encoding: 'utf8', timeout: 180_000 });
  if (r.status !== 0 || !existsSync(bin)) {
    note(`could not install bun (npm exit ${r.status ?? r.error?.message}): skipping Bun. ${(r.stderr ?? '').trim().split('\n').slice(-3).join(' ')}`);
    return undefined;
  }
  return bin;
}

const servers: ServerDef[] = [];
for (const name of wantedServers) {
  if (name === 'megapipe-http') {
    const cli = join(ROOT, 'dist', 'apps', 'http', 'cli.js');
    if (!existsSync(cli)) die('dist/apps/http/cli.js is missing: npx tsc -p tsconfig.json', 1);
    servers.push(megapipeDef(name, cli));
  } else if (name === 'nginx') {
    if (!haveTool('nginx')) { note('nginx is missing (apt-get install nginx): skipping nginx'); continue; }
    const v = spawnSync('nginx', ['-v'], { encoding: 'utf8' });
    servers.push({
      name,
      argv: (docroot, port, dir) => {
        const conf = join(dir, `nginx-${port}.conf`);
        writeFileSync(conf, nginxConfig(dir, docroot, host, port, process.getuid?.() === 0));
        return ['nginx', '-e', join(dir, 'nginx-error.log'), '-p', dir, '-c', conf];
      },
      description: 'nginx, master + 1 worker, sendfile, open_file_cache, no access log',
      version: (v.stderr || v.stdout).trim(),
    });
  } else if (name === 'node:http') {
    const js = join(ROOT, 'dist', 'bench', 'servers', 'http-node.js');
    if (!existsSync(js)) die('dist/bench/servers/http-node.js is missing: npx tsc -p tsconfig.json', 1);
    servers.push({
      name,
      argv: (docroot, port) => [process.execPath, ...nodePerfFlags, js, '--root', docroot, '--host', host, '--port', String(port)],
      description: 'node:http static server (bench/servers/http-node.ts): files ≤ 1 MiB cached, larger streamed',
      version: process.version,
    });
  } else if (name === 'bun') {
    const bin = bunBinary();
    if (!bin) continue;
    const v = spawnSync(bin, ['--version'], { encoding: 'utf8' });
    if (v.status !== 0) { note(`bun at ${bin} does not run (${(v.stderr ?? '').trim() || v.error?.message}): skipping Bun`); continue; }
    const js = join(ROOT, 'bench', 'servers', 'http-bun.js');
    servers.push({
      name,
      argv: (docroot, port) => [bin, js, '--root', docroot, '--host', host, '--port', String(port)],
      description: 'Bun.serve (bench/servers/http-bun.js): files ≤ 1 MiB cached, larger as Bun.file (sendfile)',
      version: `bun ${v.stdout.trim()}`,
    });
  }
}
for (const spec of values.variant ?? []) {
  const eq = spec.indexOf('=');
  if (eq <= 0) die(`--variant needs NAME=PATH/cli.js (got ${spec})`);
  const [path, ...extra] = spec.slice(eq + 1).trim().split(/\s+/);
  const cli = resolve(path!);   // relative to the working directory, or absolute
  if (!existsSync(cli)) die(`--variant ${spec}: ${cli} does not exist`);
  servers.push(megapipeDef(spec.slice(0, eq), cli, extra));
}
if (servers.length === 0) die('no server to run', 1);

// ---- the site ---------------------------------------------------------------------------------------------------

const work = mkdtempSync(join(tmpdir(), 'megapipe-http-bench-'));
chmodSync(work, 0o755); // nginx's worker runs as nobody when we are root: it must reach the docroot
const docroot = join(work, 'site');
mkdirSync(docroot, { mode: 0o755 });
writeSite(docroot);
const scripts = writeScripts(work);
const cleanup = () => { try { rmSync(work, { recursive: true, force: true }); } catch { /* best effort */ } };
process.on('exit', cleanup);

// ---- one run ----------------------------------------------------------------------------------------------------

interface RunRecord {
  server: string;
  scenario: ScenarioName;
  rep: number;
  /** Clean: only clean runs enter the tables and the verdicts. */
  ok: boolean;
  state: RunState;
  noisy: boolean;
  stolen: boolean;
  problems: string[];
  serverArgv: string[];
  load?: LoadReport;
  cost?: WindowCost;
  /** expected and measured body bytes per response (the check that every response was complete) */
  expectedBody?: number;
  measuredBody?: number;
  rps?: number;
  coreUsPerReq?: number;
  /** --perf: the recording of the measured window and the server's processes and threads then */
  perf?: { file: string; pids: number[]; tids: number[] };
}

/** Runs the scenario's load generator once (the warm-up or the measured run). */
function load(s: ScenarioName, port: number, seconds: number): Promise<LoadReport> {
  const base = `http://${host}:${port}`;
  switch (s) {
    case 'keepalive': return runWrk({ url: base + SMALL_FILE.path, conns, threads: 1, durationS: seconds, script: scripts.plain, cpu: clientCpu });
    case 'close': return runWrk({ url: base + SMALL_FILE.path, conns, threads: 1, durationS: seconds, script: scripts.plain, headers: ['Connection: close'], cpu: clientCpu });
    case 'mix': return runWrk({ url: base + '/', conns, threads: 1, durationS: seconds, script: scripts.mix, cpu: clientCpu });
    case 'large': return runWrk({ url: base + LARGE_FILE.path, conns: Math.min(conns, 16), threads: 1, durationS: seconds, script: scripts.plain, cpu: clientCpu });
    case 'pipelined': return runH2load({ url: base + SMALL_FILE.path, conns, pipeline, durationS: seconds, warmupS: 0, cpu: clientCpu });
  }
}

async function runOnce(def: ServerDef, s: ScenarioName, rep: number): Promise<RunRecord> {
  const rec: RunRecord = { server: def.name, scenario: s, rep, ok: false, state: 'failed', noisy: false, stolen: false, problems: [], serverArgv: [] };
  const port = await freePort(host);
  rec.serverArgv = def.argv(docroot, port, work);
  let server;
  try {
    server = await startPinned(rec.serverArgv, serverCpu, host, port);
  } catch (e) {
    rec.problems.push((e as Error).message.slice(0, 2000));
    return rec;
  }
  try {
    const probe = await probeSite(host, port);
    if (probe.problems.length > 0) rec.problems.push(`wrong responses: ${probe.problems.join('; ')}`);
    if (warmupS > 0) await load(s, port, warmupS);
    const pids = processTree(server.pid);
    const perfFile = perfDir === undefined ? undefined : join(perfDir, `${def.name.replace(/[^\w.-]/g, '_')}-${s}-${rep}.data`);
    const recording = perfFile === undefined ? undefined : recordCpus(serverCpu, perfFile);
    const a: Sample = sample(pids);
    const r = await load(s, port, durationS);
    const b: Sample = sample(pids);
    if (recording !== undefined) {
      if (!(await recording.stop())) rec.problems.push('perf record failed');
      rec.perf = { file: perfFile!, pids, tids: pids.flatMap(threadsOf) };
    }
    rec.load = r;
    if (r.exitCode !== 0) rec.problems.push(`${r.tool} exit code ${r.exitCode ?? 'none (killed: it overran its time limit)'}`);
    if (r.requests === 0) rec.problems.push(`${r.tool} completed no request (exit ${r.exitCode}): ${r.stderrTail.trim().slice(-500)}`);
    else {
      rec.rps = r.rps;
      rec.cost = windowCost(a, b, r.requests, serverCpus, clientCpus);
      rec.coreUsPerReq = rec.cost.coreUsPerTxn;
      if (r.socketErrors > 0) rec.problems.push(`${r.socketErrors} socket errors`);
      if (r.badStatus > 0) rec.problems.push(`${r.badStatus} responses not 2xx/3xx`);
      if (r.failed > 0) rec.problems.push(`${r.failed} requests failed`);
      // every response complete: body bytes per response as expected (head sizes from the probe)
      const heads = Object.values(probe.headBytes);
      const head = s === 'mix'
        ? MIX_FILES.reduce((sum, f) => sum + (probe.headBytes[f.path] ?? 0) * f.weight, 0) / MIX_FILES.reduce((sum, f) => sum + f.weight, 0)
        : probe.headBytes[s === 'large' ? LARGE_FILE.path : SMALL_FILE.path] ?? (heads.length ? heads[0]! : 0);
      rec.expectedBody = s === 'mix' ? mixMeanBody() : s === 'large' ? LARGE_FILE.size : SMALL_FILE.size;
      rec.measuredBody = r.dataBytes !== undefined ? r.dataBytes / r.requests : r.bytes / r.requests - head;
      // wrk's byte count includes partly read responses at the end, and "Connection: close" adds a header line
      // (and with 2 MiB bodies a response cut off by the end of the run weighs: up to one per connection)
      const slack = Math.max(40, rec.expectedBody * (s === 'mix' ? 0.03 : 0.01)) + (s === 'large' ? (16 * LARGE_FILE.size) / r.requests : 0);
      if (Math.abs(rec.measuredBody - rec.expectedBody) > slack) {
        rec.problems.push(`body bytes per response ${rec.measuredBody.toFixed(0)}, expected ${rec.expectedBody.toFixed(0)}: responses incomplete or wrong`);
      }
      const d = disturbance(rec.cost, { foreignMaxCores: foreignMax, stealMax });
      rec.noisy = d.foreign;
      rec.stolen = d.steal;
      rec.problems.push(...d.problems);
    }
  } finally {
    const st = await server.stop();
    if (st.killed) rec.problems.push('server ignored SIGTERM and was killed');
  }
  rec.ok = !rec.noisy && !rec.stolen && rec.rps !== undefined && rec.problems.length === 0;
  rec.state = stateOf(rec);
  return rec;
}

// ---- run --------------------------------------------------------------------------------------------------------



const command = reproduceCommand();
const outDir = makeResultsDir('http', values.out);

// others share this machine: wait up to a minute for a quiet second before refusing
if (!values.force) await waitForIdle(60);
const idle = await refuseIfBusy(values.force!);
if (!pinSelf(clientCpu)) process.stderr.write(`http: could not pin the harness to CPU ${clientCpu}\n`);
const total = scenarios.length * servers.length * reps;
process.stderr.write(`http: ${scenarios.length} scenarios × ${servers.length} servers × ${reps} reps, ${warmupS}+${durationS} s each ≈ ` +
  `${Math.ceil((total * (durationS + warmupS + 1.5)) / 60)} min; servers on CPU ${serverCpu}, load on CPU ${clientCpu}\n`);
const progress = new Progress(total);
const runs: RunRecord[] = [];
const meta = {
  command, started: new Date().toISOString(), git: gitInfo(), machine: machineInfo(), idleCheck: idle, notes,
  options: { conns, pipeline, durationS, warmupS, reps, serverCpu, clientCpu, threads: 1, retries, foreignMaxCores: foreignMax, stealMax },
  servers: servers.map((s) => ({ name: s.name, description: s.description, version: s.version })),
  site: { small: SMALL_FILE, mix: MIX_FILES, mixMeanBody: mixMeanBody() },
};
const save = () => writeFileSync(join(outDir, 'results.json'), JSON.stringify({ ...meta, runs }, null, 1) + '\n');

for (let rep = 1; rep <= reps; rep++) {
  if (rep > 1 && !values.force) await waitForIdle(60);
  for (const s of scenarios) {
    for (const def of servers) {
      progress.show(`rep ${rep} ${s} ${def.name}`);
      for (let attempt = 0; ; attempt++) {
        const rec = await runOnce(def, s, rep);
        runs.push(rec);
        save();
        if (rec.problems.length > 0) progress.log(`http: ${def.name} ${s} rep ${rep}: ${rec.state}: ${rec.problems.join('; ')}`);
        if (!disturbed(rec.state) || attempt >= retries) break;
        progress.log(`http: re-running it (attempt ${attempt + 2} of ${retries + 1}) once the machine is quiet`);
        await waitForIdle(60);
      }
      progress.tick();
    }
  }
}
progress.finish();

// ---- report -----------------------------------------------------------------------------------------------------

interface Cell { rps: Summary; us: Summary; client: Summary; runs: Tally; errors: number; stealMax: number }

/** One server in one scenario, from its clean runs only; `errors` adds up every run's, the dropped ones included. */
function cell(server: string, s: ScenarioName): Cell {
  const all = runs.filter((r) => r.server === server && r.scenario === s);
  const clean = all.filter((r) => r.state === 'clean');
  return {
    rps: cleanSummary(all, (r) => r.rps),
    us: cleanSummary(all, (r) => r.coreUsPerReq),
    client: cleanSummary(all, (r) => r.cost?.clientCoreBusy),
    runs: tally(all.map((r) => r.state)),
    errors: all.reduce((n, r) => n + (r.load ? r.load.socketErrors + r.load.badStatus + r.load.failed : 0), 0),
    stealMax: Math.max(0, ...clean.map((r) => r.cost?.maxCoreSteal ?? 0)),
  };
}

const ref = servers.some((s) => s.name === 'nginx') ? 'nginx' : servers[0]!.name;
const mp = servers.find((s) => s.name === 'megapipe-http')?.name;
const finished = new Date().toISOString();
const states = runs.map((r) => r.state);
let md = `# HTTP benchmark, ${meta.started}\n\n` +
  provenanceMarkdown({ command, started: meta.started, finished, git: meta.git, machine: meta.machine,
    repetitions: `${reps} requested per server and scenario, interleaved; disturbed runs re-run up to ${retries} times`,
    runs: runsLine(states), idleCheck: idle.message, extra: [rulesText({ foreignMaxCores: foreignMax, stealMax })] }) + '\n' +
  `Servers on CPU ${serverCpu}, load generator on CPU ${clientCpu}; ${conns} connections, 1 client thread; ${warmupS} s warm-up + ${durationS} s measured; ` +
  `median (min–max) of clean runs.\n\n`;
let text = '';
const verdicts: string[] = [];
const judged: Verdict[] = [];
// issue 19's goal 2: ≥ 1.2× the best of nginx and Bun in requests per server CPU-second, every scenario
const speedVerdicts: string[] = [];
const speedJudged: Verdict[] = [];
for (const s of scenarios) {
  const refCell = cell(ref, s);
  const t: Table = { headers: ['server', 'runs clean/all', 'k req/s', 'server-core µs/req', 'k req/s per core', `µs vs ${ref}`, 'client busy', 'steal max', 'errors (all runs)'], rows: [] };
  for (const def of servers) {
    const c = cell(def.name, s);
    const sat = c.client.median > 0.95 ? '*' : '';
    t.rows.push([
      def.name === mp ? `**${def.name}**` : def.name,
      fmtRuns(c.runs),
      fmtSummary({ median: c.rps.median / 1000, min: c.rps.min / 1000, max: c.rps.max / 1000, n: c.rps.n }),
      fmtSummary(c.us),
      fmt(1000 / c.us.median),
      Number.isFinite(c.us.median / refCell.us.median) ? `${fmt(c.us.median / refCell.us.median)}×` : '–',
      c.runs.clean ? `${fmt(c.client.median * 100, 2)}%${sat}` : '–',
      c.runs.clean ? `${fmt(c.stealMax * 100, 2)}%` : '–',
      String(c.errors),
    ]);
  }
  text += `\n${SCENARIO_TITLE[s]}${s === 'pipelined' ? ` (-m ${pipeline})` : ''}\n` + formatTable(t);
  md += `## ${SCENARIO_TITLE[s]}${s === 'pipelined' ? ` (-m ${pipeline})` : ''}\n\n` + markdownTable(t) + '\n';
  if (mp) {
    const figs = (name: string) => {
      const rs = runs.filter((r) => r.server === name && r.scenario === s);
      return rs.length ? rs.map((r) => ({ state: r.state, us: r.coreUsPerReq, rate: r.rps })) : undefined;
    };
    const byServer = Object.fromEntries(['megapipe-http', 'nginx', 'node:http', 'bun'].map((n) => [n, figs(n)]));
    const v = httpGoal(byServer);
    if (ISSUE_SCENARIOS.includes(s)) judged.push(v);
    verdicts.push(`${s}${ISSUE_SCENARIOS.includes(s) ? '' : ' (not one of the issue\'s scenarios)'}: ${verdictText(v)}`);
    const v19 = httpSpeedGoal(byServer);
    speedJudged.push(v19);
    speedVerdicts.push(`${s}: ${verdictText(v19)}`);
  }
}
const all = overall(judged);
const verdictAll = judged.length ? `The issue's scenarios run here (${scenarios.filter((x) => ISSUE_SCENARIOS.includes(x)).join(', ')}): ${statusText(all)}` : '';
md += `\`*\`: client core > 95% busy (req/s then measures wrk/h2load, compare µs/req). "k req/s per core" = 1000 / µs per request. ` +
  `"runs clean/all": runs with socket errors, non-2xx responses, failed requests, wrong byte counts or a non-zero exit (failed), or a window ` +
  `disturbed by other processes (foreign load) or by steal, are left out of every figure; "errors" adds up the load generator's errors over all runs.\n`;
if (verdicts.length) {
  md += `\n## Against the goal (ahead of Bun and node:http, ≥ nginx's requests per core; ≥ ${MIN_CLEAN_RUNS} clean runs of all four)\n\n` +
    `${verdicts.map((v) => `- ${v}`).join('\n')}\n\n${verdictAll}.\n`;
}
if (speedVerdicts.length) {
  md += `\n## Against issue 19's goal (≥ 1.2× the best of nginx and Bun in requests per server CPU-second, every scenario; ≥ ${MIN_CLEAN_RUNS} clean runs of each)\n\n` +
    `${speedVerdicts.map((v) => `- ${v}`).join('\n')}\n\nAll scenarios run here: ${statusText(overall(speedJudged))}.\n`;
}
if (notes.length) md += `\n## Notes\n\n${notes.map((n) => `- ${n}`).join('\n')}\n`;
md += `\nServers:\n${servers.map((s) => `- ${s.name}: ${s.description}${s.version ? ` (${s.version})` : ''}`).join('\n')}\n`;
md += `\n## Every run\n\n` + runsMarkdown(runs.map((r) => ({ rep: r.rep, point: r.scenario, server: r.server, state: r.state, us: r.coreUsPerReq,
  rate: r.rps, cost: r.cost, problems: r.problems })), 'core µs/req', 'req/s');
writeFileSync(join(outDir, 'summary.md'), md);
writeFileSync(join(outDir, 'results.json'), JSON.stringify({ ...meta, finished, runs }, null, 1) + '\n');
process.stdout.write(text + (verdicts.length ? `\nAgainst the goal (≥ ${MIN_CLEAN_RUNS} clean runs of all four servers per scenario):\n${verdicts.join('\n')}\n${verdictAll}\n` : '') +
  (speedVerdicts.length ? `\nAgainst issue 19's goal (≥ 1.2× the best of nginx and Bun in requests per server CPU-second):\n${speedVerdicts.join('\n')}\nAll scenarios run here: ${statusText(overall(speedJudged))}\n` : ''));
const failed = states.filter((x) => x === 'failed').length;
process.stdout.write(`\n${runsLine(states)}. Results: ${relative(process.cwd(), outDir) || outDir}/ (results.json, summary.md)\n`);
if (recordDir) process.stdout.write(`Summary recorded in ${recordSummary(recordDir, outDir)}/ (commit it)\n`);
process.stdout.write(`Reproduce: ${command}\n`);
process.exit(failed > 0 ? 1 : 0);
