// megapipe-memcached against Debian's memcached 1.6, side by side (issue 5's benchmark).
//
// Both servers run with the same thread count pinned to the same core(s) (`taskset`), loaded by the same
// external client, `bench/c/mc-load` (C, epoll, pipelined, verifies every reply byte: every get must return its
// key's value, every set STORED), pinned to the other core: get/set 90/10, 100-byte values, a fixed key space
// set before measuring. Per run it reports operations/s and the server core's non-idle time per operation
// (/proc/stat: user + system + softirq of the server core over exactly mc-load's measured window), which is the
// figure that compares servers even when the client core saturates. Repetitions are interleaved (A B A B …);
// tables show median (min–max).
//
//   node dist/bench/memcached.js --help
import { existsSync, writeFileSync } from 'node:fs';
import { spawn, spawnSync } from 'node:child_process';
import { connect } from 'node:net';
import { cpus } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { memcachedGoal } from './lib/goals.js';
import {
  checkRecordName, gitInfo, machineInfo, makeResultsDir, provenanceMarkdown, recordSummary, reproduceCommand, runsLine, runsMarkdown, summaryDir,
} from './lib/results.js';
import { refuseIfBusy, waitForIdle } from './lib/guard.js';
import { C_BIN, ensureCPrograms, freePort, pinSelf, ROOT } from './lib/paths.js';
import { processTree, sample, windowCost, type Sample, type WindowCost } from './lib/procfs.js';
import { startServer, type ServerSpec } from './lib/proc.js';
import { Progress } from './lib/progress.js';
import { parseCpuList } from './lib/run.js';
import { fmt, fmtSummary, summarize, type Summary } from './lib/stats.js';
import { formatTable, markdownTable, type Table } from './lib/table.js';
import {
  disturbance, disturbed, fatalProblems, FOREIGN_MAX_CORES, SATURATED, fmtRuns, MIN_CLEAN_RUNS, overall, rulesText, statusText, stateOf, STEAL_MAX, tally, verdictText, type RunState, type Verdict,
} from './lib/verdict.js';
import { numberFlags } from './lib/flags.js';

const usage = `usage: node dist/bench/memcached.js [options]
megapipe-memcached against Debian's memcached 1.6: same threads, same core(s), same client (bench/c/mc-load),
get/set mix over a pre-populated key space; ops/s and server-core CPU µs per operation.

  --quick             ≈2 min: 2 repetitions of 2 s (default: 3 repetitions of 5 s, ≈6 min)
  --reps N            interleaved repetitions (default 3; --quick 2)
  --duration S        measured seconds per run (default 5; --quick 2)
  --warmup S          unmeasured seconds after populating (default 1)
  --conns LIST        client connections per point (default 4,64)
  --pipelines LIST    requests outstanding per connection (default 1,16)
  --threads2 LIST     pipelines for the -t 2 point (64 connections, servers on CPUs 0-1, client sharing them;
                      default 1,16; "none" skips it)
  --keys K            key space, all set before measuring (default 100000)
  --value-size V      value bytes (default 100)
  --set-ratio R       fraction of sets (default 0.1)
  --protocol P        text (default); binary: memcached's binary GET/SET packets, pipelined like the text
                      requests; binary-quiet: GETQ/SET with a NOOP ending each batch, as memjs pipelines
                      (pipelines of at least 2). Both servers detect the protocol by the first byte (-B auto)
  --memory MB         -m of both servers (default 1024)
  --servers LIST      memcached,megapipe (default both)
  --megapipe-baseline DIR
                      also run DIR/apps/memcached/cli.js as "megapipe@base" (a copy of an earlier build, for
                      measuring a change against its baseline in the same run)
  --server-cpu L      taskset CPU list of the servers for -t 1 (default 0)
  --client-cpu L      taskset CPU list of mc-load and this harness (default 1)
  --out DIR           results directory (default bench/results/memcached-<time>)
  --retries N         re-runs of a run disturbed by foreign CPU or steal (default 2)
  --foreign-max C     foreign CPU, in cores, that makes a run disturbed (default ${FOREIGN_MAX_CORES})
  --steal-max F       steal of one server or client core, as a fraction of the window, that makes a run
                      disturbed (default ${STEAL_MAX}); steal never counts as busy
  --record NAME       also copy summary.md to bench/summaries/<date>-NAME/ (to commit)
  --force             run even if the machine is busy (otherwise exit 2)
  -h, --help          this text

Only clean runs (no mismatch, no connection error, a zero exit, an undisturbed window) enter the table; the
others are counted per point and server. The goal (megapipe's server-core µs/op at most memcached's) is judged
per point only with ≥ ${MIN_CLEAN_RUNS} clean runs of both, else "not measured". Outputs results.json (every run, with
mc-load's raw JSON and the CPU window) and summary.md (tables, command, commit, machine, every run) in the results
directory, and a table on stdout. Exit 1 if any reply mismatched.`;

function die(msg: string, code = 64): never {
  process.stderr.write(`memcached-bench: ${msg}\n`);
  process.exit(code);
}

let values;
try {
  values = parseArgs({
    options: {
      quick: { type: 'boolean', default: false }, reps: { type: 'string' }, duration: { type: 'string' },
      warmup: { type: 'string', default: '1' }, conns: { type: 'string', default: '4,64' },
      pipelines: { type: 'string', default: '1,16' }, threads2: { type: 'string', default: '1,16' },
      keys: { type: 'string', default: '100000' }, 'value-size': { type: 'string', default: '100' },
      'set-ratio': { type: 'string', default: '0.1' }, protocol: { type: 'string', default: 'text' }, memory: { type: 'string', default: '1024' },
      servers: { type: 'string', default: 'memcached,megapipe' }, 'megapipe-baseline': { type: 'string' },
      'server-cpu': { type: 'string', default: '0' }, 'client-cpu': { type: 'string', default: '1' },
      out: { type: 'string' }, retries: { type: 'string', default: '2' }, 'foreign-max': { type: 'string', default: String(FOREIGN_MAX_CORES) },
      'steal-max': { type: 'string', default: String(STEAL_MAX) }, record: { type: 'string' },
      force: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h', default: false },
    },
  }).values;
} catch (e) {
  die(`${(e as Error).message}\n${usage}`);
}
if (values.help) { process.stdout.write(usage + '\n'); process.exit(0); }

const num = numberFlags(die);
const numList = (name: string, v: string, lo: number, hi: number) => v.split(',').map((s) => num(name, s.trim(), lo, hi));

const quick = values.quick!;
const reps = num('reps', values.reps ?? (quick ? '2' : '3'), 1, 20);
const durationS = num('duration', values.duration ?? (quick ? '2' : '5'), 0.5, 60, false);
const warmupS = num('warmup', values.warmup!, 0, 30, false);
const connsList = numList('conns', values.conns!, 1, 4096);
const pipelines = numList('pipelines', values.pipelines!, 1, 256);
const t2Pipelines = values.threads2 === 'none' ? [] : numList('threads2', values.threads2!, 1, 256);
const keys = num('keys', values.keys!, 1, 10_000_000);
const valueSize = num('value-size', values['value-size']!, 1, 16384);
const setRatio = num('set-ratio', values['set-ratio']!, 0, 1, false);
const protocol = values.protocol!;
if (protocol !== 'text' && protocol !== 'binary' && protocol !== 'binary-quiet') die(`--protocol must be text, binary or binary-quiet (got ${protocol})`);
if (protocol === 'binary-quiet' && Math.min(...pipelines, ...t2Pipelines) < 2) die('--protocol binary-quiet needs pipelines of at least 2 (one slot is the NOOP)');
const memoryMb = num('memory', values.memory!, 64, 65536);
const retries = num('retries', values.retries!, 0, 10);
const foreignMaxCores = num('foreign-max', values['foreign-max']!, 0, 64, false);
const stealMax = num('steal-max', values['steal-max']!, 0, 1, false);
const recordDir = values.record === undefined ? undefined : summaryDir(values.record);
if (values.record !== undefined) {
  const bad = checkRecordName(values.record);
  if (bad) die(bad);
  if (existsSync(recordDir!)) die(`--record: ${relative(process.cwd(), recordDir!)} exists already; choose another name`);
}
const serverCpu1 = values['server-cpu']!, clientCpu1 = values['client-cpu']!;
parseCpuList(serverCpu1); parseCpuList(clientCpu1);

// ---- servers ---------------------------------------------------------------------------------------------

const MEMCACHED = '/usr/bin/memcached';
// memcached refuses to run as root without -u; the user only matters for that check.
const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const memcachedSpec: ServerSpec = {
  name: 'memcached',
  description: `Debian's memcached (${MEMCACHED}), C, libevent, one thread per -t`,
  // memcached prints nothing when it is up: announce the port, then the harness polls it until it connects.
  cmd: ['sh', '-c', `echo "listening on {HOST}:{PORT}"; exec ${MEMCACHED} -t {WORKERS} -p {PORT} -l {HOST} -m ${memoryMb} -U 0 -c 4096${asRoot ? ' -u nobody' : ''}`],
};
const megapipeSpec = (name: string, cli: string): ServerSpec => ({
  name,
  description: `megapipe-memcached (${relative(ROOT, cli) || cli}): serve(), one io_uring channel per worker thread`,
  cmd: ['node', cli, '-t', '{WORKERS}', '-p', '{PORT}', '-l', '{HOST}', '-m', String(memoryMb), '-U', '0', '-c', '4096'],
});

const servers: ServerSpec[] = [];
for (const name of values.servers!.split(',').map((s) => s.trim())) {
  if (name === 'memcached') {
    if (!existsSync(MEMCACHED)) die(`${MEMCACHED} is missing (apt-get install memcached)`);
    servers.push(memcachedSpec);
  } else if (name === 'megapipe') {
    const cli = join(ROOT, 'dist', 'apps', 'memcached', 'cli.js');
    if (!existsSync(cli)) die(`${cli} is missing: npx tsc -p tsconfig.json`);
    servers.push(megapipeSpec('megapipe', cli));
  } else die(`unknown server ${name} (memcached, megapipe)`);
}
if (values['megapipe-baseline']) {
  const cli = join(resolve(values['megapipe-baseline']), 'apps', 'memcached', 'cli.js');
  if (!existsSync(cli)) die(`--megapipe-baseline: ${cli} is missing`);
  servers.push(megapipeSpec('megapipe@base', cli));
}
if (servers.length === 0) die('no server to run');

// ---- plan -------------------------------------------------------------------------------------------------

interface Point { label: string; threads: number; conns: number; pipeline: number; serverCpu: string; clientCpu: string }
const points: Point[] = [];
for (const pipeline of pipelines) {
  for (const conns of connsList) points.push({ label: `t1 c${conns} p${pipeline}`, threads: 1, conns, pipeline, serverCpu: serverCpu1, clientCpu: clientCpu1 });
}
for (const pipeline of t2Pipelines) points.push({ label: `t2 c64 p${pipeline}`, threads: 2, conns: 64, pipeline, serverCpu: '0-1', clientCpu: '0-1' });

/** mc-load's JSON line. */
interface McLoadResult {
  ops: number; seconds: number; ops_per_s: number; gets: number; sets: number;
  p50_us: number; p90_us: number; p99_us: number; p999_us: number; max_us: number; mean_us: number;
  connects: number; errors: number; mismatches: number; all_ops: number; populated: number;
}

interface RunRecord {
  point: string; threads: number; conns: number; pipeline: number; server: string; rep: number;
  serverArgv: string[]; loadArgv: string[];
  /** Clean: only clean runs enter the table and the verdict. */
  ok: boolean; state: RunState; noisy: boolean; stolen: boolean; problems: string[];
  load?: McLoadResult; cost?: WindowCost;
  /** Server cores' busy µs per operation (for t2 the client shares these cores and is included). */
  coreUsPerOp?: number;
}

/** Resolves once host:port accepts a TCP connection (memcached announces nothing), or rejects after `ms`. */
async function waitForPort(host: string, port: number, ms: number): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((res) => {
      const s = connect({ host, port }, () => { s.destroy(); res(true); });
      s.once('error', () => res(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`nothing accepts connections on ${host}:${port} after ${ms} ms`);
    await sleep(20);
  }
}

/** Runs mc-load pinned to `cpu`; samples at its phase marks. Bounded: killed after populate + warm-up + duration + 30 s. */
async function runLoad(argv: string[], cpu: string, hooks: { start: () => void; end: () => void }): Promise<{ result?: McLoadResult; exitCode: number | null; stderr: string }> {
  const child = spawn('taskset', ['-c', cpu, ...argv], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '', stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
  createInterface({ input: child.stderr! }).on('line', (line) => {
    if (line === 'mc-load: phase measure') hooks.start();
    else if (line === 'mc-load: phase end') hooks.end();
    else stderr = (stderr + line + '\n').slice(-4000);
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), (warmupS + durationS + 60) * 1000);
  const closed = Promise.all([new Promise((r) => child.stdout!.once('close', r)), new Promise((r) => child.stderr!.once('close', r))]);
  const exitCode = await new Promise<number | null>((res) => {
    child.once('error', (e) => { stderr += String(e); res(null); });
    child.once('exit', (code) => res(code));
  });
  clearTimeout(timer);
  await closed;
  let result: McLoadResult | undefined;
  try { result = JSON.parse(stdout.trim().split('\n').pop() ?? '') as McLoadResult; } catch { /* reported via exitCode */ }
  return { result, exitCode, stderr };
}

async function runOnce(spec: ServerSpec, p: Point, rep: number): Promise<RunRecord> {
  const rec: RunRecord = { point: p.label, threads: p.threads, conns: p.conns, pipeline: p.pipeline, server: spec.name, rep,
    serverArgv: [], loadArgv: [], ok: false, state: 'failed', noisy: false, stolen: false, problems: [] };
  const host = '127.0.0.1';
  let server;
  try {
    server = await startServer(spec, { cpu: p.serverCpu, host, port: await freePort(host), workers: p.threads, startTimeoutMs: 15000 });
    await waitForPort(host, server.port, 10000);
  } catch (e) {
    rec.problems.push((e as Error).message);
    if (server) await server.stop();
    return rec;
  }
  rec.serverArgv = server.argv;
  const pids = processTree(server.pid);
  const argv = [join(C_BIN, 'mc-load'), '--host', host, '--port', String(server.port), '--conns', String(p.conns),
    '--pipeline', String(p.pipeline), '--keys', String(keys), '--value-size', String(valueSize), '--set-ratio', String(setRatio),
    '--duration', String(durationS), '--warmup', String(warmupS), '--seed', String(rep), '--protocol', protocol];
  rec.loadArgv = argv;
  let a: Sample | undefined, b: Sample | undefined;
  const load = await runLoad(argv, p.clientCpu, { start: () => { a = sample(pids); }, end: () => { b = sample(pids); } });
  const stopped = await server.stop(5000);
  rec.load = load.result;
  if (!load.result) rec.problems.push(`mc-load printed no result (exit ${load.exitCode}): ${load.stderr.trim()}`);
  else {
    if (load.result.mismatches > 0) rec.problems.push(`${load.result.mismatches} reply mismatches: ${load.stderr.trim()}`);
    if (load.result.errors > 0) rec.problems.push(`${load.result.errors} connection errors`);
    if (load.result.ops === 0) rec.problems.push('no operations completed');
  }
  if (load.exitCode !== 0) rec.problems.push(`mc-load exit code ${load.exitCode}`);
  if (stopped.killed) rec.problems.push('server ignored SIGTERM and was killed');
  if (load.result && a && b) {
    const cost = windowCost(a, b, load.result.ops, parseCpuList(p.serverCpu), parseCpuList(p.clientCpu));
    rec.cost = cost;
    rec.coreUsPerOp = cost.coreUsPerTxn;
    if (p.threads === 1 && cost.clientCoreBusy > 0.95) rec.problems.push(SATURATED);
    const d = disturbance(cost, { foreignMaxCores, stealMax });
    rec.noisy = d.foreign;
    rec.stolen = d.steal;
    rec.problems.push(...d.problems);
  } else if (load.result) rec.problems.push('no CPU window sampled (phase marks missing)');
  // every problem but client saturation makes the run unusable, connection errors included
  const fatal = fatalProblems(rec.problems).length > 0;
  rec.ok = !fatal && !rec.noisy && !rec.stolen && rec.cost !== undefined;
  rec.state = stateOf(rec);
  return rec;
}

// ---- report -----------------------------------------------------------------------------------------------

function report(rows: RunRecord[]): { table: Table; text: string; verdicts: string[]; verdictAll: string } {
  // ratios are against memcached, or against the first server when memcached is not in the run
  const baseName = servers.some((s) => s.name === 'memcached') ? 'memcached' : servers[0]!.name;
  const table: Table = { headers: ['point', 'server', 'runs clean/all', 'k ops/s', 'server-core µs/op', `ops/s vs ${baseName}`, `µs/op vs ${baseName}`,
    'server busy', 'client busy', 'steal max', 'p50 µs', 'p99 µs', 'proc µs/op'], rows: [] };
  const at = (pt: string, sv: string) => rows.filter((r) => r.point === pt && r.server === sv);
  const pick = (pt: string, sv: string) => at(pt, sv).filter((r) => r.state === 'clean');
  const sum = (rs: RunRecord[], f: (r: RunRecord) => number | undefined): Summary => summarize(rs.map((r) => f(r) ?? NaN));
  const verdicts: string[] = [];
  const judged: Verdict[] = [];
  const ratio = (x: number) => (Number.isFinite(x) ? `${fmt(x, 3)}×` : '–');
  for (const p of points) {
    const base = pick(p.label, baseName);
    const baseOps = sum(base, (r) => r.load?.ops_per_s).median, baseUs = sum(base, (r) => r.coreUsPerOp).median;
    for (const s of servers) {
      const rs = pick(p.label, s.name);
      const ops = sum(rs, (r) => r.load ? r.load.ops_per_s / 1000 : undefined);
      const us = sum(rs, (r) => r.coreUsPerOp);
      const cli = sum(rs, (r) => r.cost?.clientCoreBusy).median;
      const srv = sum(rs, (r) => r.cost?.serverCoreBusy).median;
      const sat = p.threads === 1 && cli > 0.95 ? '*' : '';
      table.rows.push([
        p.label, s.name, fmtRuns(tally(at(p.label, s.name).map((r) => r.state))), fmtSummary(ops), fmtSummary(us),
        ratio(s.name === baseName ? 1 : (ops.median * 1000) / baseOps),
        ratio(s.name === baseName ? 1 : us.median / baseUs),
        rs.length ? `${fmt(srv * 100, 2)}%` : '–', rs.length ? `${fmt(cli * 100, 2)}%${sat}` : '–',
        rs.length ? `${fmt(Math.max(...rs.map((r) => r.cost?.maxCoreSteal ?? 0)) * 100, 2)}%` : '–',
        fmt(sum(rs, (r) => r.load?.p50_us).median), fmt(sum(rs, (r) => r.load?.p99_us).median),
        fmt(sum(rs, (r) => r.cost?.procUsPerTxn).median),
      ]);
    }
    if (servers.some((s) => s.name === 'megapipe')) {
      const figs = (sv: string) => { const rs = at(p.label, sv); return rs.length ? rs.map((r) => ({ state: r.state, us: r.coreUsPerOp, rate: r.load?.ops_per_s })) : undefined; };
      const v = memcachedGoal({ megapipe: figs('megapipe'), memcached: figs('memcached') });
      judged.push(v);
      verdicts.push(`${p.label}: ${verdictText(v)}`);
    }
  }
  const all = overall(judged);
  const verdictAll = judged.length ? `At least memcached's operations per core at every point: ${statusText(all)}` : '';
  return { table, text: formatTable(table), verdicts, verdictAll };
}

// ---- run --------------------------------------------------------------------------------------------------


function machine() {
  let memcachedVersion = '';
  const v = spawnSync(MEMCACHED, ['-V'], { encoding: 'utf8' });
  if (v.status === 0) memcachedVersion = v.stdout.trim().replace(/^memcached\s*/, '');
  return { ...machineInfo(), memcachedVersion };
}

try { ensureCPrograms(['mc-load']); } catch (e) { die((e as Error).message, 1); }
const command = reproduceCommand();
const outDir = makeResultsDir('memcached', values.out);
const idle = await refuseIfBusy(values.force!);
if (!pinSelf(clientCpu1)) process.stderr.write(`memcached-bench: could not pin the harness to CPU ${clientCpu1}\n`);

const perRun = warmupS + durationS + 2.5;
process.stderr.write(`memcached-bench: ${points.length} points × ${servers.length} servers × ${reps} reps ≈ ` +
  `${Math.ceil((points.length * servers.length * reps * perRun) / 60)} min\n`);
const meta = { command, started: new Date().toISOString(), git: gitInfo(), machine: machine(), idleCheck: idle,
  options: { reps, durationS, warmupS, keys, valueSize, setRatio, protocol, memoryMb, connsList, pipelines, t2Pipelines, serverCpu1, clientCpu1, retries, foreignMaxCores, stealMax },
  servers: servers.map((s) => ({ name: s.name, cmd: s.cmd, description: s.description })), points };
const rows: RunRecord[] = [];
const save = () => writeFileSync(join(outDir, 'results.json'), JSON.stringify({ ...meta, runs: rows }, null, 1) + '\n');
const progress = new Progress(points.length * servers.length * reps);
for (let rep = 1; rep <= reps; rep++) {
  if (rep > 1 && !values.force) await waitForIdle(30);
  for (const p of points) {
    // alternate the order inside a point from one repetition to the next, so neither server always runs first
    const order = rep % 2 === 1 ? servers : [...servers].reverse();
    for (const spec of order) {
      progress.show(`rep ${rep} ${p.label} ${spec.name}`);
      for (let attempt = 0; ; attempt++) {
        const rec = await runOnce(spec, p, rep);
        rows.push(rec);
        save();
        const notes = rec.problems.filter((q) => !/client core saturated/.test(q));
        if (notes.length > 0) progress.log(`memcached-bench: ${spec.name} ${p.label} rep ${rep}: ${notes.join('; ')}`);
        if (!disturbed(rec.state) || attempt >= retries) break;
        progress.log(`memcached-bench: re-running it (attempt ${attempt + 2} of ${retries + 1}) once the machine is quiet`);
        await waitForIdle(30);
      }
      progress.tick();
    }
  }
}
progress.finish();

const r = report(rows);
const finished = new Date().toISOString();
const states = rows.map((x) => x.state);
const md = `# megapipe-memcached vs memcached, ${meta.started}\n\n` +
  provenanceMarkdown({ command, started: meta.started, finished, git: meta.git, machine: meta.machine,
    repetitions: `${reps} requested per server and point, interleaved (order alternating per repetition); disturbed runs re-run up to ${retries} times`,
    runs: runsLine(states), idleCheck: idle.message,
    extra: [`memcached ${meta.machine.memcachedVersion}`, rulesText({ foreignMaxCores, stealMax })] }) + '\n' +
  `${protocol} protocol, ${keys} keys, ${valueSize} B values, ${Math.round(setRatio * 100)}% sets, ${warmupS}+${durationS} s per run. ` +
  `t1: servers on CPU ${serverCpu1}, mc-load on CPU ${clientCpu1}; t2: servers and mc-load share CPUs 0-1 ` +
  `(server-core µs/op then counts both cores, client included). Cells: median (min–max) of clean runs; steal is never counted as busy.\n\n` +
  markdownTable(r.table) +
  `\n(\`*\` client core saturated; *runs clean/all*: what was left out, and why.)\n` +
  (r.verdicts.length ? `\n## Against the goal (server-core µs/op at most memcached's; ≥ ${MIN_CLEAN_RUNS} clean runs of both)\n\n${r.verdicts.map((v) => `- ${v}`).join('\n')}\n\n${r.verdictAll}.\n` : '') +
  `\n## Every run\n\n` +
  runsMarkdown(rows.map((x) => ({ rep: x.rep, point: x.point, server: x.server, state: x.state, us: x.coreUsPerOp, rate: x.load?.ops_per_s, cost: x.cost, problems: x.problems })), 'core µs/op', 'ops/s');
writeFileSync(join(outDir, 'results.json'), JSON.stringify({ ...meta, finished, runs: rows }, null, 1) + '\n');
writeFileSync(join(outDir, 'summary.md'), md);
process.stdout.write('\n' + r.text);
if (r.verdicts.length) process.stdout.write(`\nAgainst the goal (≥ ${MIN_CLEAN_RUNS} clean runs of both servers per point):\n${r.verdicts.join('\n')}\n${r.verdictAll}\n`);
process.stdout.write(`\n${runsLine(states)}. Results: ${relative(process.cwd(), outDir) || outDir}/\n`);
if (recordDir) process.stdout.write(`Summary recorded in ${recordSummary(recordDir, outDir)}/ (commit it)\n`);
process.stdout.write(`Reproduce: ${command}\n`);
process.exit(rows.some((x) => (x.load?.mismatches ?? 0) > 0) ? 1 : 0);
