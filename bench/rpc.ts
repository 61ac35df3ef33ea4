// The paper's RPC microbenchmark (MegaPipe §5.1): echo servers side by side under rpc-load, with
//   figure "conns": transactions per connection 1, 2, 4, ..., 128 and persistent (64 B messages), and
//   figure "size":  message sizes 64 B ... 16 KiB (10 transactions per connection),
//   figure "cores": 1 ... all cores, megapipe --workers N against node:cluster and the C references, and
//   figure "breakdown": baseline, +partitioning, +lwsocket, +batching (megapipe configurations, 2 workers), and
//   figure "batch": megapipe's batch threshold (--batch N) at persistent and 1 transaction per connection.
// At "all cores" the load generator has to share the server's cores (2 here): those points report the whole
// machine's CPU per transaction and the load generator's own, beside throughput.
// The server runs on one core and the load generator on the other; beside throughput it reports the server
// core's busy time per transaction (which a saturated client cannot hide), the server process's own CPU per
// transaction, context switches, io_uring_enter calls (servers that report "enters") and, with --syscalls,
// all system calls per transaction. Repetitions are interleaved (A B C A B C ...); medians and min–max.
//
//   node dist/bench/rpc.js --help
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { checkRecordName, gitInfo, machineInfo, makeResultsDir, recordSummary, reproduceCommand, summaryDir } from './lib/results.js';
import { refuseIfBusy, waitForIdle } from './lib/guard.js';
import { ensureCPrograms, pinSelf, ROOT } from './lib/paths.js';
import { Progress } from './lib/progress.js';
import type { ServerSpec } from './lib/proc.js';
import { runOnce } from './lib/run.js';
import { rowState, writeReport, type Point, type Row, type RpcResults } from './lib/rpc-report.js';
import { perfAvailable } from './lib/syscalls.js';
import { disturbed, FOREIGN_MAX_CORES, STEAL_MAX } from './lib/verdict.js';
import { batchServers, BREAKDOWN_SERVERS, CORES_SERVERS, DEFAULT_SERVERS, ECHO_SERVERS, variantServer } from './servers/registry.js';
import { numberFlags } from './lib/flags.js';

const usage = `usage: node dist/bench/rpc.js [options]
Runs the MegaPipe RPC microbenchmark against echo servers, side by side, on pinned cores.

  --figure F        conns | size | cores | breakdown | batch | all, or a comma-separated list (default all:
                    the first four)
                      conns: transactions per connection (--txns-list), --size bytes
                      size:  message sizes (--sizes), --size-txns transactions per connection
                      cores: server cores 1..all (--cores-list): N workers on CPUs 0..N-1, the client on
                             the other CPUs, or on all of them (shared) when N is every CPU; --cores-txns
                             transactions per connection; servers ${CORES_SERVERS.join(',')}
                             (the C references are single-threaded: they get N CPUs but use one)
                      breakdown: ${BREAKDOWN_SERVERS.join(' → ')} at --breakdown-txns,
                             --breakdown-workers workers placed as in "cores" (partitioning needs ≥ 2)
                      batch: the megapipe echo server with --batch N for N in --batch-list (servers
                             mp-batch-N) at --batch-txns, one worker (what bench/scripts/batch-threshold.sh runs)
  --quick           the short side-by-side: figure conns with --txns-list 0,1,10, 1 repetition
  --servers LIST    comma-separated names for every figure (default: ${DEFAULT_SERVERS.join(',')} for conns and
                    size, and the lists above for cores and breakdown; those available)
  --list            list the registered servers and exit
  --txns-list LIST  transactions per connection for "conns" (default 1,2,4,8,16,32,64,128,0; 0 = persistent)
  --sizes LIST      message bytes for "size" (default 64,128,256,512,1024,2048,4096,8192,16384)
  --size N          message bytes for "conns" (default 64)
  --size-txns N     transactions per connection for "size" (default 10; 0 = persistent)
  --cores-list LIST server cores for "cores" (default 1..number of CPUs)
  --cores-txns N    transactions per connection for "cores" (default 0 = persistent)
  --breakdown-txns LIST  transactions per connection for "breakdown" (default 1,10,0)
  --breakdown-workers N  workers (= server cores) for "breakdown" (default: number of CPUs)
  --batch-list LIST thresholds for "batch" (default 1,8,32,64,256,1024)
  --batch-txns LIST transactions per connection for "batch" (default 0,1)
  --conns N         concurrent client connections (default 256)
  --pipeline D      requests outstanding per connection (default 1)
  --duration S      measured seconds per run (default 5)
  --warmup S        unmeasured seconds before each run (default 1)
  --reps N          repetitions, interleaved across servers (default 3)
  --server-cpu L    taskset CPU list of the server for conns and size (default 0)
  --client-cpu L    taskset CPU list of rpc-load and this harness (default 1)
  --workers N       {WORKERS} for servers that take it, for conns and size (default 1)
  --src-ips K       client source addresses 127.0.0.2..K+1 (default 16)
  --rst-close       clients close with RST (no TIME_WAIT)
  --syscalls        count the servers' system calls with perf (adds tracepoint overhead to their CPU)
  --baseline NAME   server the "vs" column compares against (default node:net, else the first)
  --out DIR         results directory (default bench/results/rpc-<time>)
  --from FILE       redraw summary.md, charts and the table from a results.json, without measuring
  --retries N       re-runs of a run disturbed by other processes' CPU or by steal (default 2)
  --foreign-max C   foreign CPU, in cores, that makes a run disturbed (default ${FOREIGN_MAX_CORES})
  --steal-max F     steal of one server or client core, as a fraction of the window, that makes a run disturbed
                    (default ${STEAL_MAX}); steal never counts as busy
  --variant N=PATH  also run the megapipe echo server of another build (PATH: its dist/bin/echo-server.js) as N, in
                    every figure's server list (repeatable): a change side by side with its baseline
  --record NAME     also copy summary.md and the charts to bench/summaries/<date>-NAME/ (to commit; the figures in
                    BENCHMARKS.md link there)
  --force           run even if the machine is busy (otherwise exit 2)
  -h, --help        this text

Only clean runs (no error, no mismatch, undisturbed window) enter the tables; the others are counted per server
and point (runs clean/all). At the conns and size points, megapipe against uring-echo is judged (within 1.2×)
only with ≥ 3 clean runs of each, else "not measured". Outputs results.json (every run), summary.md (the tables,
the command, commit, machine, repetitions, every run with its steal and foreign load), one SVG chart per figure
and metric, and a terminal table.`;

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
      'cores-list': { type: 'string' }, 'cores-txns': { type: 'string', default: '0' },
      'breakdown-txns': { type: 'string', default: '1,10,0' }, 'breakdown-workers': { type: 'string' },
      'batch-list': { type: 'string', default: '1,8,32,64,256,1024' }, 'batch-txns': { type: 'string', default: '0,1' },
      'steal-max': { type: 'string', default: String(STEAL_MAX) }, record: { type: 'string' }, variant: { type: 'string', multiple: true, default: [] },
      conns: { type: 'string', default: '256' }, pipeline: { type: 'string', default: '1' },
      duration: { type: 'string', default: '5' }, warmup: { type: 'string', default: '1' }, reps: { type: 'string' },
      'server-cpu': { type: 'string', default: '0' }, 'client-cpu': { type: 'string', default: '1' },
      workers: { type: 'string', default: '1' }, 'src-ips': { type: 'string', default: '16' },
      'rst-close': { type: 'boolean', default: false }, syscalls: { type: 'boolean', default: false },
      baseline: { type: 'string' }, out: { type: 'string' }, force: { type: 'boolean', default: false },
      retries: { type: 'string', default: '2' }, 'foreign-max': { type: 'string', default: String(FOREIGN_MAX_CORES) }, from: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  }).values;
} catch (e) {
  die(`${(e as Error).message}\n${usage}`);
}
if (values.help) { process.stdout.write(usage + '\n'); process.exit(0); }

const recordDir = values.record === undefined ? undefined : summaryDir(values.record);
if (values.record !== undefined) {
  const bad = checkRecordName(values.record);
  if (bad) die(bad);
  if (existsSync(recordDir!)) die(`--record: ${relative(process.cwd(), recordDir!)} exists already; choose another name`);
}

if (values.from) {
  // Redraw the report of an earlier run without measuring again.
  const res = JSON.parse(readFileSync(values.from, 'utf8')) as RpcResults;
  const dir = values.out ?? dirname(values.from);
  mkdirSync(dir, { recursive: true });
  const report = writeReport(res, dir);
  process.stdout.write(report.text + `\nReport redrawn in ${dir}/ (summary.md, ${report.charts.length} SVG charts). Measured with: ${res.command}\n`);
  if (recordDir) process.stdout.write(`Summary recorded in ${recordSummary(recordDir, dir, report.charts)}/ (commit it)\n`);
  process.exit(0);
}

const available = (s: ServerSpec) => !s.requires || existsSync(join(ROOT, s.requires));
if (values.list) {
  for (const s of ECHO_SERVERS) process.stdout.write(`${s.name.padEnd(18)} ${available(s) ? '' : '(missing ' + s.requires + ') '}${s.description ?? ''}\n`);
  process.exit(0);
}

const num = numberFlags(die);
const numList = (name: string, v: string, lo: number, hi: number) => v.split(',').map((s) => num(name, s.trim(), lo, hi));

const quick = values.quick;
const FIGURES = ['conns', 'size', 'cores', 'breakdown', 'batch'] as const;
type Figure = (typeof FIGURES)[number];
const figureArg = quick ? 'conns' : values.figure!;
const figures = new Set<Figure>();
for (const f of figureArg.split(',').map((x) => x.trim())) {
  if (f === 'all') FIGURES.filter((g) => g !== 'batch').forEach((g) => figures.add(g));
  else if ((FIGURES as readonly string[]).includes(f)) figures.add(f as Figure);
  else die(`--figure must be ${FIGURES.join(', ')} or all, or a comma-separated list (got ${f})`);
}
const ncpu = cpus().length;
const txnsList = numList('txns-list', values['txns-list'] ?? (quick ? '0,1,10' : '1,2,4,8,16,32,64,128,0'), 0, 1e9);
const sizes = numList('sizes', values.sizes!, 1, 1 << 20);
const size = num('size', values.size!, 1, 1 << 20);
const sizeTxns = num('size-txns', values['size-txns']!, 0, 1e9);
const coresList = numList('cores-list', values['cores-list'] ?? Array.from({ length: ncpu }, (_, i) => i + 1).join(','), 1, ncpu);
const coresTxns = num('cores-txns', values['cores-txns']!, 0, 1e9);
const breakdownTxns = numList('breakdown-txns', values['breakdown-txns']!, 0, 1e9);
const breakdownWorkers = num('breakdown-workers', values['breakdown-workers'] ?? String(ncpu), 1, ncpu);
const batchList = numList('batch-list', values['batch-list']!, 1, 1 << 20);
const batchTxns = numList('batch-txns', values['batch-txns']!, 0, 1e9);
const BATCH_SERVERS = batchServers(batchList);
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
const stealMax = num('steal-max', values['steal-max']!, 0, 1, false);

/** The servers of one figure: --servers, or the figure's default list (missing ones skipped with a note). */
const skipped = new Set<string>();
const variants: ServerSpec[] = [];
for (const spec of values.variant ?? []) {
  const v = variantServer(spec);
  if (typeof v === 'string') die(v);
  if ([...ECHO_SERVERS, ...variants].some((s) => s.name === v.name)) die(`--variant ${spec}: the name ${v.name} is taken`);
  variants.push(v);
}
const serversOpt: string | undefined = values.servers;
function serversFor(fig: Figure): ServerSpec[] {
  const wanted = fig === 'batch' ? BATCH_SERVERS.map((x) => x.name) : serversOpt ? serversOpt.split(',').map((x) => x.trim())
    : fig === 'cores' ? CORES_SERVERS : fig === 'breakdown' ? BREAKDOWN_SERVERS : DEFAULT_SERVERS;
  const out: ServerSpec[] = [];
  for (const name of [...wanted, ...variants.map((v) => v.name)]) {
    const spec = [...ECHO_SERVERS, ...BATCH_SERVERS, ...variants].find((x) => x.name === name);
    if (!spec) die(`unknown server ${name} (try --list)`);
    if (!available(spec)) {
      if (serversOpt) die(`server ${name} needs ${spec.requires}: build it first (make -C bench/c, npx tsc -p tsconfig.json)`);
      if (!skipped.has(name)) process.stderr.write(`rpc: skipping ${name}: ${spec.requires} is missing\n`);
      skipped.add(name);
      continue;
    }
    out.push(spec);
  }
  return out;
}
const byFigure = new Map<Figure, ServerSpec[]>([...figures].map((f) => [f, serversFor(f)]));
const servers: ServerSpec[] = [];
for (const list of byFigure.values()) for (const x of list) if (!servers.includes(x)) servers.push(x);
if (servers.length === 0) die('no server to run');
const baseline = values.baseline ?? (servers.some((x) => x.name === 'node:net') ? 'node:net' : servers[0]!.name);
if (values.syscalls && !perfAvailable()) die('--syscalls needs perf with the raw_syscalls tracepoint (apt-get install linux-perf)');

// ---- the experiment plan ---------------------------------------------------------------------------------

const points: Point[] = [];
const persistentX = (list: number[]) => 2 * Math.max(1, ...list.filter((t) => t > 0));
const txnLabel = (t: number) => (t === 0 ? 'persistent' : `${t} txn/conn`);
/** N server cores: CPUs 0..N-1 for the server; the client on the rest, or on every CPU (shared) if none is left. */
const cpuRange = (lo: number, hi: number) => (lo === hi ? String(lo) : `${lo}-${hi}`);
const placement = (n: number) => ({ workers: n, serverCpu: cpuRange(0, n - 1), clientCpu: n < ncpu ? cpuRange(n, ncpu - 1) : cpuRange(0, ncpu - 1) });
if (figures.has('conns')) {
  for (const t of txnsList) points.push({ figure: 'conns', x: t === 0 ? persistentX(txnsList) : t, label: txnLabel(t), txns: t, size });
}
if (figures.has('size')) {
  for (const s of sizes) points.push({ figure: 'size', x: s, label: `${s} B`, txns: sizeTxns, size: s });
}
if (figures.has('cores')) {
  for (const n of coresList) points.push({ figure: 'cores', x: n, label: `${n} core${n > 1 ? 's' : ''}, ${txnLabel(coresTxns)}`, txns: coresTxns, size, ...placement(n) });
}
if (figures.has('breakdown')) {
  for (const t of breakdownTxns) {
    points.push({ figure: 'breakdown', x: t === 0 ? persistentX(breakdownTxns) : t, label: `${txnLabel(t)}, ${breakdownWorkers} worker${breakdownWorkers > 1 ? 's' : ''}`, txns: t, size, ...placement(breakdownWorkers) });
  }
}
if (figures.has('batch')) {
  for (const t of batchTxns) points.push({ figure: 'batch', x: t === 0 ? persistentX(batchTxns) : t, label: txnLabel(t), txns: t, size });
}
const runsTotal = points.reduce((n, p) => n + byFigure.get(p.figure)!.length, 0) * reps;

const command = reproduceCommand();
const outDir = makeResultsDir('rpc', values.out);


// ---- run ---------------------------------------------------------------------------------------------------


try { ensureCPrograms(); } catch (e) { die((e as Error).message, 1); }
const idle = await refuseIfBusy(values.force!);
if (!pinSelf(clientCpu)) process.stderr.write(`rpc: could not pin the harness to CPU ${clientCpu} (taskset missing?)\n`);

process.stderr.write(`rpc: ${runsTotal} runs (${points.length} points, ${reps} reps), ${warmupS}+${durationS} s each ≈ ` +
  `${Math.ceil((runsTotal * (durationS + warmupS + 1)) / 60)} min; server on CPU ${serverCpu}, client on CPU ${clientCpu}` +
  `${figures.has('cores') || figures.has('breakdown') ? ' (cores and breakdown: as placed per point)' : ''}\n`);
const progress = new Progress(runsTotal);
const rows: Row[] = [];
const meta: Omit<RpcResults, 'runs'> = { command, started: new Date().toISOString(), git: gitInfo(), machine: machineInfo(), idleCheck: idle, baseline,
  limits: { foreignMaxCores, stealMax, retries },
  options: { conns, pipeline, durationS, warmupS, reps, serverCpu, clientCpu, workers, srcIps, rstClose: values['rst-close'], syscalls: values.syscalls },
  servers: servers.map((s) => ({ name: s.name, cmd: s.cmd, env: s.env, description: s.description })) };
const save = () => writeFileSync(join(outDir, 'results.json'), JSON.stringify({ ...meta, runs: rows }, null, 1) + '\n');

for (let rep = 1; rep <= reps; rep++) {
  if (rep > 1 && !values.force) await waitForIdle(60);
  for (const p of points) {
    for (const spec of byFigure.get(p.figure)!) {
      progress.show(`rep ${rep} ${p.figure} ${p.label} ${spec.name}`);
      for (let attempt = 0; ; attempt++) {
        const rec = await runOnce(spec, {
          serverCpu: p.serverCpu ?? serverCpu, clientCpu: p.clientCpu ?? clientCpu, host: '127.0.0.1', workers: p.workers ?? workers,
          syscalls: values.syscalls!, foreignMaxCores, stealMax,
          load: { conns, txns: p.txns, size: p.size, durationS, warmupS, pipeline, srcIps, rstClose: values['rst-close'] },
        });
        rows.push({ ...rec, figure: p.figure, x: p.x, label: p.label, rep, txnsPerConn: p.txns, size: p.size, workers: p.workers, serverCpu: p.serverCpu, clientCpu: p.clientCpu });
        save();
        // Client saturation is shown in the table (cli busy% *); everything else is worth a line now.
        const notes = rec.problems.filter((q) => !/client core saturated/.test(q));
        if (notes.length > 0) progress.log(`rpc: ${spec.name} ${p.label} rep ${rep}: ${notes.join('; ')}`);
        if (!disturbed(rec.state) || attempt >= retries) break;
        progress.log(`rpc: re-running it (attempt ${attempt + 2} of ${retries + 1}) once the machine is quiet`);
        await waitForIdle(60);
      }
      progress.tick();
    }
  }
}
progress.finish();

// ---- report -----------------------------------------------------------------------------------------------

const results: RpcResults = { ...meta, finished: new Date().toISOString(), runs: rows };
writeFileSync(join(outDir, 'results.json'), JSON.stringify(results, null, 1) + '\n');
const report = writeReport(results, outDir);
process.stdout.write('\n' + report.text);
const count = (s: string) => rows.filter((r) => rowState(r) === s).length;
process.stdout.write(`\n${rows.length} runs: ${count('clean')} clean, ${count('failed')} failed, ${count('foreign')} disturbed by foreign load, ` +
  `${count('steal')} by steal (only clean runs are in the tables). Results: ` +
  `${relative(process.cwd(), outDir) || outDir}/ (results.json, summary.md, ${report.charts.length} SVG charts)\n`);
if (recordDir) process.stdout.write(`Summary recorded in ${recordSummary(recordDir, outDir, report.charts)}/ (commit it)\n`);
process.stdout.write(`Reproduce: ${command}\n`);
process.exit(rows.some((r) => (r.load?.mismatches ?? 0) > 0) ? 1 : 0);
