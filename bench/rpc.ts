// The paper's RPC microbenchmark (MegaPipe §5.1): echo servers side by side under rpc-load, with
//   figure "conns": transactions per connection 1, 2, 4, ..., 128 and persistent (64 B messages), and
//   figure "size":  message sizes 64 B ... 16 KiB (10 transactions per connection).
// The server runs on one core and the load generator on the other; beside throughput it reports the server
// core's busy time per transaction (which a saturated client cannot hide), the server process's own CPU per
// transaction, context switches, io_uring_enter calls (servers that report "enters") and, with --syscalls,
// all system calls per transaction. Repetitions are interleaved (A B C A B C ...); medians and min–max.
//
//   node dist/bench/rpc.js --help
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { checkIdle, refuseIfBusy } from './lib/guard.js';
import { ensureCPrograms, pinSelf, RESULTS_DIR, ROOT } from './lib/paths.js';
import { Progress } from './lib/progress.js';
import type { ServerSpec } from './lib/proc.js';
import { runOnce } from './lib/run.js';
import { writeReport, type Point, type Row, type RpcResults } from './lib/rpc-report.js';
import { perfAvailable } from './lib/syscalls.js';
import { DEFAULT_SERVERS, ECHO_SERVERS } from './servers/registry.js';

const usage = `usage: node dist/bench/rpc.js [options]
Runs the MegaPipe RPC microbenchmark against echo servers, side by side, on pinned cores.

  --figure F        conns | size | all (default all)
                      conns: transactions per connection (--txns-list), --size bytes
                      size:  message sizes (--sizes), --size-txns transactions per connection
  --quick           the short side-by-side: figure conns with --txns-list 0,1,10, 1 repetition
  --servers LIST    comma-separated names (default: ${DEFAULT_SERVERS.join(',')}, those available)
  --list            list the registered servers and exit
  --txns-list LIST  transactions per connection for "conns" (default 1,2,4,8,16,32,64,128,0; 0 = persistent)
  --sizes LIST      message bytes for "size" (default 64,128,256,512,1024,2048,4096,8192,16384)
  --size N          message bytes for "conns" (default 64)
  --size-txns N     transactions per connection for "size" (default 10; 0 = persistent)
  --conns N         concurrent client connections (default 256)
  --pipeline D      requests outstanding per connection (default 1)
  --duration S      measured seconds per run (default 5)
  --warmup S        unmeasured seconds before each run (default 1)
  --reps N          repetitions, interleaved across servers (default 3)
  --server-cpu L    taskset CPU list of the server (default 0)
  --client-cpu L    taskset CPU list of rpc-load and this harness (default 1)
  --workers N       {WORKERS} for servers that take it (default 1)
  --src-ips K       client source addresses 127.0.0.2..K+1 (default 16)
  --rst-close       clients close with RST (no TIME_WAIT)
  --syscalls        count the servers' system calls with perf (adds tracepoint overhead to their CPU)
  --baseline NAME   server the "vs" column compares against (default node:net, else the first)
  --out DIR         results directory (default bench/results/rpc-<time>)
  --from FILE       redraw summary.md, charts and the table from a results.json, without measuring
  --retries N       re-runs of a run disturbed by other processes' CPU (> --foreign-max cores) (default 2)
  --foreign-max C   foreign CPU, in cores, that makes a run noisy (default 0.1)
  --force           run even if the machine is busy (otherwise exit 2)
  -h, --help        this text

Outputs results.json (every run), summary.md (Markdown table), one SVG chart per figure and metric, and a
terminal table. The command that reproduces the run is printed and stored with the results.`;

function die(msg: string, code = 64): never {
  process.stderr.write(`rpc: ${msg}\n`);
  process.exit(code);
}

let values;
try {
  values = parseArgs({
    options: {
      figure: { type: 'string', default: 'all' }, quick: { type: 'boolean', default: false },
      servers: { type: 'string' }, list: { type: 'boolean', default: false },
      'txns-list': { type: 'string' }, sizes: { type: 'string', default: '64,128,256,512,1024,2048,4096,8192,16384' },
      size: { type: 'string', default: '64' }, 'size-txns': { type: 'string', default: '10' },
      conns: { type: 'string', default: '256' }, pipeline: { type: 'string', default: '1' },
      duration: { type: 'string', default: '5' }, warmup: { type: 'string', default: '1' }, reps: { type: 'string' },
      'server-cpu': { type: 'string', default: '0' }, 'client-cpu': { type: 'string', default: '1' },
      workers: { type: 'string', default: '1' }, 'src-ips': { type: 'string', default: '16' },
      'rst-close': { type: 'boolean', default: false }, syscalls: { type: 'boolean', default: false },
      baseline: { type: 'string' }, out: { type: 'string' }, force: { type: 'boolean', default: false },
      retries: { type: 'string', default: '2' }, 'foreign-max': { type: 'string', default: '0.1' }, from: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  }).values;
} catch (e) {
  die(`${(e as Error).message}\n${usage}`);
}
if (values.help) { process.stdout.write(usage + '\n'); process.exit(0); }

if (values.from) {
  // Redraw the report of an earlier run without measuring again.
  const res = JSON.parse(readFileSync(values.from, 'utf8')) as RpcResults;
  const dir = values.out ?? dirname(values.from);
  mkdirSync(dir, { recursive: true });
  const report = writeReport(res, dir);
  process.stdout.write(report.text + `\nReport redrawn in ${dir}/ (summary.md, ${report.charts.length} SVG charts). Measured with: ${res.command}\n`);
  process.exit(0);
}

const available = (s: ServerSpec) => !s.requires || existsSync(join(ROOT, s.requires));
if (values.list) {
  for (const s of ECHO_SERVERS) process.stdout.write(`${s.name.padEnd(18)} ${available(s) ? '' : '(missing ' + s.requires + ') '}${s.description ?? ''}\n`);
  process.exit(0);
}

const num = (name: string, v: string, lo: number, hi: number, integer = true): number => {
  const n = Number(v);
  if (!Number.isFinite(n) || (integer && !Number.isInteger(n)) || n < lo || n > hi) die(`--${name} must be ${integer ? 'an integer' : 'a number'} in ${lo}..${hi} (got ${v})`);
  return n;
};
const numList = (name: string, v: string, lo: number, hi: number) => v.split(',').map((s) => num(name, s.trim(), lo, hi));

const quick = values.quick;
const figureArg = quick ? 'conns' : values.figure!;
if (!['conns', 'size', 'all'].includes(figureArg)) die('--figure must be conns, size or all');
const txnsList = numList('txns-list', values['txns-list'] ?? (quick ? '0,1,10' : '1,2,4,8,16,32,64,128,0'), 0, 1e9);
const sizes = numList('sizes', values.sizes!, 1, 1 << 20);
const size = num('size', values.size!, 1, 1 << 20);
const sizeTxns = num('size-txns', values['size-txns']!, 0, 1e9);
const conns = num('conns', values.conns!, 1, 15000);
const pipeline = num('pipeline', values.pipeline!, 1, 1024);
const durationS = num('duration', values.duration!, 0.1, 600, false);
const warmupS = num('warmup', values.warmup!, 0, 60, false);
const reps = num('reps', values.reps ?? (quick ? '1' : '3'), 1, 100);
const workers = num('workers', values.workers!, 1, 256);
const srcIps = num('src-ips', values['src-ips']!, 0, 254);
const serverCpu = values['server-cpu']!, clientCpu = values['client-cpu']!;
const retries = num('retries', values.retries!, 0, 10);
const foreignMaxCores = num('foreign-max', values['foreign-max']!, 0, 64, false);

const wanted = values.servers ? values.servers.split(',').map((s) => s.trim()) : DEFAULT_SERVERS;
const servers: ServerSpec[] = [];
for (const name of wanted) {
  const spec = ECHO_SERVERS.find((s) => s.name === name);
  if (!spec) die(`unknown server ${name} (try --list)`);
  if (!available(spec)) {
    if (values.servers) die(`server ${name} needs ${spec.requires}: build it first (make -C bench/c, npx tsc -p tsconfig.json)`);
    process.stderr.write(`rpc: skipping ${name}: ${spec.requires} is missing\n`);
    continue;
  }
  servers.push(spec);
}
if (servers.length === 0) die('no server to run');
const baseline = values.baseline ?? (servers.some((s) => s.name === 'node:net') ? 'node:net' : servers[0]!.name);
if (values.syscalls && !perfAvailable()) die('--syscalls needs perf with the raw_syscalls tracepoint (apt-get install linux-perf)');

// ---- the experiment plan ---------------------------------------------------------------------------------

const points: Point[] = [];
const persistentX = (list: number[]) => 2 * Math.max(1, ...list.filter((t) => t > 0));
if (figureArg !== 'size') {
  for (const t of txnsList) points.push({ figure: 'conns', x: t === 0 ? persistentX(txnsList) : t, label: t === 0 ? 'persistent' : `${t} txn/conn`, txns: t, size });
}
if (figureArg !== 'conns') {
  for (const s of sizes) points.push({ figure: 'size', x: s, label: `${s} B`, txns: sizeTxns, size: s });
}

const command = ['node', relative(process.cwd(), process.argv[1]!) || process.argv[1]!, ...process.argv.slice(2)].join(' ');
const stamp = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19);
const outDir = values.out ?? join(RESULTS_DIR, `rpc-${stamp}`);
mkdirSync(outDir, { recursive: true });

function machine() {
  let cpuModel = cpus()[0]?.model ?? 'unknown';
  try { cpuModel = /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? cpuModel; } catch { /* not Linux */ }
  return { kernel: release(), cpus: cpus().length, cpuModel, node: process.version };
}

// ---- run ---------------------------------------------------------------------------------------------------

/** Waits (up to `maxS` seconds) for a second in which no core is more than 15% busy. */
async function waitForIdle(maxS: number): Promise<void> {
  const until = Date.now() + maxS * 1000;
  while (Date.now() < until) if ((await checkIdle()).ok) return;
}

try { ensureCPrograms(); } catch (e) { die((e as Error).message, 1); }
const idle = await refuseIfBusy(values.force!);
if (!pinSelf(clientCpu)) process.stderr.write(`rpc: could not pin the harness to CPU ${clientCpu} (taskset missing?)\n`);

process.stderr.write(`rpc: ${points.length} points × ${servers.length} servers × ${reps} reps, ${warmupS}+${durationS} s each ≈ ` +
  `${Math.ceil((points.length * servers.length * reps * (durationS + warmupS + 1)) / 60)} min; server on CPU ${serverCpu}, client on CPU ${clientCpu}\n`);
const progress = new Progress(points.length * servers.length * reps);
const rows: Row[] = [];
const meta: Omit<RpcResults, 'runs'> = { command, started: new Date().toISOString(), machine: machine(), idleCheck: idle, baseline,
  options: { conns, pipeline, durationS, warmupS, reps, serverCpu, clientCpu, workers, srcIps, rstClose: values['rst-close'], syscalls: values.syscalls },
  servers: servers.map((s) => ({ name: s.name, cmd: s.cmd, env: s.env, description: s.description })) };
const save = () => writeFileSync(join(outDir, 'results.json'), JSON.stringify({ ...meta, runs: rows }, null, 1) + '\n');

for (let rep = 1; rep <= reps; rep++) {
  if (rep > 1 && !values.force) await waitForIdle(60);
  for (const p of points) {
    for (const spec of servers) {
      progress.show(`rep ${rep} ${p.figure} ${p.label} ${spec.name}`);
      for (let attempt = 0; ; attempt++) {
        const rec = await runOnce(spec, {
          serverCpu, clientCpu, host: '127.0.0.1', workers, syscalls: values.syscalls!, foreignMaxCores,
          load: { conns, txns: p.txns, size: p.size, durationS, warmupS, pipeline, srcIps, rstClose: values['rst-close'] },
        });
        rows.push({ ...rec, figure: p.figure, x: p.x, label: p.label, rep, txnsPerConn: p.txns, size: p.size });
        save();
        // Client saturation is shown in the table (cli busy% *); everything else is worth a line now.
        const notes = rec.problems.filter((q) => !/client core saturated/.test(q));
        if (notes.length > 0) progress.log(`rpc: ${spec.name} ${p.label} rep ${rep}: ${notes.join('; ')}`);
        if (!rec.noisy || attempt >= retries) break;
        progress.log(`rpc: re-running it (attempt ${attempt + 2} of ${retries + 1}) once the machine is quiet`);
        await waitForIdle(60);
      }
      progress.tick();
    }
  }
}
progress.finish();

// ---- report -----------------------------------------------------------------------------------------------

const results: RpcResults = { ...meta, runs: rows };
const report = writeReport(results, outDir);
process.stdout.write('\n' + report.text);
const failed = rows.filter((r) => !r.ok && !r.noisy).length, noisy = rows.filter((r) => r.noisy).length;
process.stdout.write(`\n${rows.length} runs: ${failed} failed, ${noisy} disturbed by foreign load (left out). Results: ` +
  `${relative(process.cwd(), outDir) || outDir}/ (results.json, summary.md, ${report.charts.length} SVG charts)\n`);
process.stdout.write(`Reproduce: ${command}\n`);
process.exit(rows.some((r) => (r.load?.mismatches ?? 0) > 0) ? 1 : 0);
