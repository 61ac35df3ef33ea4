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
import { machineInfo, makeResultsDir, reproduceCommand } from './lib/results.js';
import { refuseIfBusy, waitForIdle } from './lib/guard.js';
import { C_BIN, ensureCPrograms, freePort, pinSelf, ROOT } from './lib/paths.js';
import { processTree, sample, windowCost, type Sample, type WindowCost } from './lib/procfs.js';
import { startServer, type ServerSpec } from './lib/proc.js';
import { Progress } from './lib/progress.js';
import { parseCpuList } from './lib/run.js';
import { fmt, fmtSummary, summarize, type Summary } from './lib/stats.js';
import { formatTable, markdownTable, type Table } from './lib/table.js';

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
  --memory MB         -m of both servers (default 1024)
  --servers LIST      memcached,megapipe (default both)
  --megapipe-baseline DIR
                      also run DIR/apps/memcached/cli.js as "megapipe@base" (a copy of an earlier build, for
                      measuring a change against its baseline in the same run)
  --server-cpu L      taskset CPU list of the servers for -t 1 (default 0)
  --client-cpu L      taskset CPU list of mc-load and this harness (default 1)
  --out DIR           results directory (default bench/results/memcached-<time>)
  --retries N         re-runs of a run disturbed by foreign CPU (> --foreign-max cores) (default 2)
  --foreign-max C     foreign CPU, in cores, that makes a run noisy (default 0.1)
  --force             run even if the machine is busy (otherwise exit 2)
  -h, --help          this text

Outputs results.json (every run, with mc-load's raw JSON and the CPU window) and summary.md in the results
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
      'set-ratio': { type: 'string', default: '0.1' }, memory: { type: 'string', default: '1024' },
      servers: { type: 'string', default: 'memcached,megapipe' }, 'megapipe-baseline': { type: 'string' },
      'server-cpu': { type: 'string', default: '0' }, 'client-cpu': { type: 'string', default: '1' },
      out: { type: 'string' }, retries: { type: 'string', default: '2' }, 'foreign-max': { type: 'string', default: '0.1' },
      force: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h', default: false },
    },
  }).values;
} catch (e) {
  die(`${(e as Error).message}\n${usage}`);
}
if (values.help) { process.stdout.write(usage + '\n'); process.exit(0); }

const num = (name: string, v: string, lo: number, hi: number, integer = true): number => {
  const n = Number(v);
  if (!Number.isFinite(n) || (integer && !Number.isInteger(n)) || n < lo || n > hi) die(`--${name} must be ${integer ? 'an integer' : 'a number'} in ${lo}..${hi} (got ${v})`);
  return n;
};
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
const memoryMb = num('memory', values.memory!, 64, 65536);
const retries = num('retries', values.retries!, 0, 10);
const foreignMaxCores = num('foreign-max', values['foreign-max']!, 0, 64, false);
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
  ok: boolean; noisy: boolean; problems: string[];
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
    serverArgv: [], loadArgv: [], ok: false, noisy: false, problems: [] };
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
    '--duration', String(durationS), '--warmup', String(warmupS), '--seed', String(rep)];
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
    if (p.threads === 1 && cost.clientCoreBusy > 0.95) rec.problems.push('client core saturated (>95% busy): ops/s is client-bound; compare µs/op');
    if (cost.foreignCores > foreignMaxCores) {
      rec.noisy = true;
      rec.problems.push(`foreign load: other processes used ${(cost.foreignCores * 100).toFixed(0)}% of a core (${cost.foreignTop.join(', ')})`);
    }
  } else if (load.result) rec.problems.push('no CPU window sampled (phase marks missing)');
  const fatal = rec.problems.some((q) => !/client core saturated|connection errors|foreign load/.test(q));
  rec.ok = !fatal && !rec.noisy && rec.cost !== undefined;
  return rec;
}

// ---- report -----------------------------------------------------------------------------------------------

function report(rows: RunRecord[]): { table: Table; text: string } {
  // ratios are against memcached, or against the first server when memcached is not in the run
  const baseName = servers.some((s) => s.name === 'memcached') ? 'memcached' : servers[0]!.name;
  const table: Table = { headers: ['point', 'server', 'k ops/s', 'server-core µs/op', `ops/s vs ${baseName}`, `µs/op vs ${baseName}`,
    'server busy', 'client busy', 'p50 µs', 'p99 µs', 'proc µs/op', 'runs'], rows: [] };
  const pick = (pt: string, sv: string) => rows.filter((r) => r.ok && r.point === pt && r.server === sv);
  const sum = (rs: RunRecord[], f: (r: RunRecord) => number | undefined): Summary => summarize(rs.map((r) => f(r) ?? NaN));
  for (const p of points) {
    const base = pick(p.label, baseName);
    const baseOps = sum(base, (r) => r.load?.ops_per_s).median, baseUs = sum(base, (r) => r.coreUsPerOp).median;
    for (const s of servers) {
      const rs = pick(p.label, s.name);
      const all = rows.filter((r) => r.point === p.label && r.server === s.name);
      const ops = sum(rs, (r) => r.load ? r.load.ops_per_s / 1000 : undefined);
      const us = sum(rs, (r) => r.coreUsPerOp);
      const cli = sum(rs, (r) => r.cost?.clientCoreBusy).median;
      const srv = sum(rs, (r) => r.cost?.serverCoreBusy).median;
      const sat = p.threads === 1 && cli > 0.95 ? '*' : '';
      table.rows.push([
        p.label, s.name, fmtSummary(ops), fmtSummary(us),
        s.name === baseName ? '1.00×' : `${fmt((ops.median * 1000) / baseOps, 3)}×`,
        s.name === baseName ? '1.00×' : `${fmt(us.median / baseUs, 3)}×`,
        `${fmt(srv * 100, 2)}%`, `${fmt(cli * 100, 2)}%${sat}`,
        fmt(sum(rs, (r) => r.load?.p50_us).median), fmt(sum(rs, (r) => r.load?.p99_us).median),
        fmt(sum(rs, (r) => r.cost?.procUsPerTxn).median), `${rs.length}/${all.length}`,
      ]);
    }
  }
  return { table, text: formatTable(table) };
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
const meta = { command, started: new Date().toISOString(), machine: machine(), idleCheck: idle,
  options: { reps, durationS, warmupS, keys, valueSize, setRatio, memoryMb, connsList, pipelines, t2Pipelines, serverCpu1, clientCpu1 },
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
        if (!rec.noisy || attempt >= retries) break;
        progress.log(`memcached-bench: re-running it (attempt ${attempt + 2} of ${retries + 1}) once the machine is quiet`);
        await waitForIdle(30);
      }
      progress.tick();
    }
  }
}
progress.finish();

const r = report(rows);
const failed = rows.filter((x) => !x.ok && !x.noisy).length, noisy = rows.filter((x) => x.noisy).length;
const md = `# megapipe-memcached vs memcached\n\n\`${command}\`\n\n${meta.started}, ${meta.machine.cpuModel}, ${meta.machine.cpus} CPUs, ` +
  `Linux ${meta.machine.kernel}, Node ${meta.machine.node}, memcached ${meta.machine.memcachedVersion}. ` +
  `${keys} keys, ${valueSize} B values, ${Math.round(setRatio * 100)}% sets, ${warmupS}+${durationS} s per run, ${reps} interleaved reps. ` +
  `t1: servers on CPU ${serverCpu1}, mc-load on CPU ${clientCpu1}; t2: servers and mc-load share CPUs 0-1 ` +
  `(server-core µs/op then counts both cores, client included).\n\n` + markdownTable(r.table) +
  `\n(\`*\` client core saturated; runs: ok/all; ${rows.length} runs, ${failed} failed, ${noisy} disturbed by foreign load.)\n`;
writeFileSync(join(outDir, 'summary.md'), md);
process.stdout.write('\n' + r.text);
process.stdout.write(`\n${rows.length} runs: ${failed} failed, ${noisy} disturbed by foreign load (left out). Results: ${relative(process.cwd(), outDir) || outDir}/\n`);
process.stdout.write(`Reproduce: ${command}\n`);
process.exit(rows.some((x) => (x.load?.mismatches ?? 0) > 0) ? 1 : 0);
