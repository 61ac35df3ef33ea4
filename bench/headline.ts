// `npm start`: the headline comparison in about a minute — megapipe (io_uring backend) against node:net, echo RPC
// with 64 B messages, persistent connections and one transaction per connection, server on one core and the load
// generator (bench/c/rpc-load) on the other; 3 interleaved repetitions; medians with min–max of clean runs.
// The full suite: `npm run bench -- --help`.
import { existsSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { headlineGoal } from './lib/goals.js';
import { refuseIfBusy, waitForIdle } from './lib/guard.js';
import { ensureCPrograms, pinSelf } from './lib/paths.js';
import { Progress } from './lib/progress.js';
import {
  checkRecordName, gitInfo, machineInfo, makeResultsDir, provenanceMarkdown, recordSummary, reproduceCommand, runsLine, runsMarkdown, summaryDir,
} from './lib/results.js';
import { runOnce, type RunRecord } from './lib/run.js';
import { fmt, fmtSummary } from './lib/stats.js';
import { formatTable, markdownTable } from './lib/table.js';
import { cleanSummary, disturbed, FOREIGN_MAX_CORES, fmtRuns, MIN_CLEAN_RUNS, rulesText, STEAL_MAX, tally, verdictText } from './lib/verdict.js';
import { ECHO_SERVERS, variantServer } from './servers/registry.js';

const usage = `usage: npm start [-- --reps N --duration S --conns C --force]
  megapipe against node:net: 64 B echo RPC, persistent and 1 transaction per connection, one server core.
  --reps N         interleaved repetitions (default 3)
  --duration S     measured seconds per run (default 4)
  --conns C        client connections (default 256)
  --retries N      re-runs of a run disturbed by foreign CPU or steal (default 2)
  --foreign-max C  foreign CPU, in cores, that makes a run disturbed (default ${FOREIGN_MAX_CORES})
  --steal-max F    steal of the server or client core, as a fraction of the window, that makes a run disturbed
                   (default ${STEAL_MAX})
  --record NAME    also copy summary.md to bench/summaries/<date>-NAME/ (to commit)
  --variant N=PATH also run the megapipe echo server of another build (PATH: its dist/bin/echo-server.js) as N,
                   interleaved with the others (repeatable): a change side by side with its baseline
  --force          run even when other load is on the machine (figures will be noisy)
Only clean runs (no error, undisturbed window) enter the table; the CPU saving is stated only with ≥ ${MIN_CLEAN_RUNS}
clean runs of both servers, else "not measured". Results: bench/results/headline-<time>/ (results.json, summary.md).`;

function die(msg: string): never {
  process.stderr.write(`headline: ${msg}\n`);
  process.exit(64);
}

let a;
try {
  a = parseArgs({ options: {
    reps: { type: 'string', default: '3' }, duration: { type: 'string', default: '4' }, conns: { type: 'string', default: '256' },
    retries: { type: 'string', default: '2' }, 'foreign-max': { type: 'string', default: String(FOREIGN_MAX_CORES) },
    'steal-max': { type: 'string', default: String(STEAL_MAX) }, record: { type: 'string' }, variant: { type: 'string', multiple: true, default: [] },
    force: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' },
  } }).values;
} catch (e) {
  die(`${(e as Error).message}\n${usage}`);
}
if (a.help) { process.stdout.write(usage + '\n'); process.exit(0); }
const reps = Number(a.reps), duration = Number(a.duration), conns = Number(a.conns), retries = Number(a.retries);
for (const [k, v] of [['reps', reps], ['duration', duration], ['conns', conns]] as const) {
  if (!Number.isInteger(v) || v < 1) die(`--${k} must be a positive integer`);
}
if (!Number.isInteger(retries) || retries < 0 || retries > 10) die('--retries must be an integer in 0..10');
const foreignMaxCores = Number(a['foreign-max']), stealMax = Number(a['steal-max']);
if (!(foreignMaxCores >= 0)) die('--foreign-max must be a number ≥ 0');
if (!(stealMax >= 0 && stealMax <= 1)) die('--steal-max must be a fraction in 0..1');
const recordDir = a.record === undefined ? undefined : summaryDir(a.record);
if (a.record !== undefined) {
  const bad = checkRecordName(a.record);
  if (bad) die(bad);
  if (existsSync(recordDir!)) die(`--record: ${relative(process.cwd(), recordDir!)} exists already; choose another name`);
}

const servers = ['node:net', 'megapipe'].map((n) => ECHO_SERVERS.find((s) => s.name === n)!);
for (const spec of a.variant ?? []) {
  const v = variantServer(spec);
  if (typeof v === 'string') die(v);
  if (servers.some((s) => s.name === v.name)) die(`--variant ${spec}: the name ${v.name} is taken`);
  servers.push(v);
}
const points = [{ label: 'persistent', txns: 0 }, { label: '1 txn/conn', txns: 1 }];
ensureCPrograms();
pinSelf('1');
const idle = await refuseIfBusy(a.force!);
const command = reproduceCommand();
const outDir = makeResultsDir('headline');
const started = new Date().toISOString();

const runs: { server: string; point: string; rep: number; rec: RunRecord }[] = [];
const save = () => writeFileSync(join(outDir, 'results.json'), JSON.stringify({ command, started, git: gitInfo(), machine: machineInfo(),
  idleCheck: idle.message, options: { reps, duration, conns, retries, foreignMaxCores, stealMax },
  runs: runs.map((r) => ({ ...r.rec, point: r.point, rep: r.rep })) }, null, 1) + '\n');
const progress = new Progress(reps * points.length * servers.length);
for (let r = 0; r < reps; r++) {
  if (r > 0 && !a.force) await waitForIdle(60);
  for (const p of points) {
    for (const s of servers) {
      progress.show(`${s.name}, ${p.label}, rep ${r + 1}/${reps}`);
      for (let attempt = 0; ; attempt++) {
        const rec = await runOnce(s, {
          serverCpu: '0', clientCpu: '1', host: '127.0.0.1', workers: 1, syscalls: false, foreignMaxCores, stealMax,
          load: { conns, txns: p.txns, size: 64, durationS: duration, warmupS: 1, srcIps: 16, pipeline: 1, rstClose: false },
        });
        runs.push({ server: s.name, point: p.label, rep: r + 1, rec });
        save();
        const notes = rec.problems.filter((q) => !/^client core saturated/.test(q));
        if (notes.length > 0) progress.log(`${s.name} (${p.label}) rep ${r + 1}: ${rec.state}: ${notes.join('; ')}`);
        if (!disturbed(rec.state) || attempt >= retries) break;
        progress.log('re-running it once the machine is quiet');
        await waitForIdle(60);
      }
      progress.tick();
    }
  }
}
progress.finish();

const rows: string[][] = [];
const verdicts: string[] = [];
for (const p of points) {
  const at = (server: string) => runs.filter((x) => x.server === server && x.point === p.label).map((x) => x.rec);
  const pick = (server: string, f: (r: RunRecord) => number | undefined) => cleanSummary(at(server), f);
  const v = headlineGoal(Object.fromEntries(servers.map((s) => [s.name, at(s.name).map((r) => ({ state: r.state, us: r.cost?.coreUsPerTxn, rate: r.load?.tps }))])));
  verdicts.push(`${p.label}: ${verdictText(v)}`);
  const base = pick('node:net', (r) => r.cost?.coreUsPerTxn).median;
  for (const s of servers) {
    const u = pick(s.name, (r) => r.cost?.coreUsPerTxn);
    rows.push([
      p.label, s.name, fmtRuns(tally(at(s.name).map((r) => r.state))),
      fmtSummary(pick(s.name, (r) => r.load?.tps), 3),
      fmtSummary(u, 3),
      fmt(pick(s.name, (r) => r.load?.p99_us).median, 3),
      fmt(pick(s.name, (r) => r.entersPerTxn).median, 2),
      fmt(pick(s.name, (r) => r.wakeupsPerTxn).median, 2),
      fmt(pick(s.name, (r) => r.crossingsPerTxn).median, 2),
      u.n ? fmt(pick(s.name, (r) => r.cost?.clientCoreBusy).median * 100, 2) + '%' : '–',
      u.n ? `${fmt(Math.max(...at(s.name).filter((r) => r.state === 'clean').map((r) => r.cost?.maxCoreSteal ?? 0)) * 100, 2)}%` : '–',
      s.name === 'node:net' ? '1.00×' : v.status === 'not measured' ? 'not measured' : `${fmt(base / u.median, 3)}×`,
    ]);
  }
}
const table = {
  headers: ['connections', 'server', 'runs clean/all', 'transactions/s', 'server-core µs/txn', 'p99 µs', 'enters/txn', 'wake-ups/txn', 'crossings/txn', 'client core busy', 'steal max', 'CPU saving vs node:net'],
  rows,
};
const title = `megapipe vs node:net — 64 B echo RPC, ${conns} connections, server on CPU 0, rpc-load on CPU 1, ${reps} reps × ${duration} s (median, min–max of clean runs)`;
const explain = `server-core µs/txn: the server core's busy time (user, system, softirq; steal excluded) per transaction — the honest
figure when the client core saturates first. "CPU saving" = node:net's µs/txn ÷ the server's, stated only with ≥ ${MIN_CLEAN_RUNS} clean
runs of both. "runs clean/all": runs left out (errors, or a window disturbed by other processes or by steal) are counted there.
enters / wake-ups / crossings per txn: the server's io_uring_enter calls, its channels' event-loop wake-ups and its calls
from the addon into JavaScript (completion batches), over its lifetime ÷ all transactions including warm-up (– : node:net).`;
const states = runs.map((x) => x.rec.state);
process.stdout.write(`\n${title}\n\n${formatTable(table)}\n${verdicts.join('\n')}\n\n${explain}\n`);
process.stdout.write(`${runsLine(states)}.\nResults: ${relative(process.cwd(), outDir) || outDir}/. Reproduce: npm start${process.argv.length > 2 ? ' -- ' + process.argv.slice(2).join(' ') : ''}; ` +
  `the full suite (C references, figures, charts): npm run bench -- --help. Figures and analysis: BENCHMARKS.md.\n`);

const md = [
  `# Headline: megapipe vs node:net, ${started}`, '',
  provenanceMarkdown({ command: `npm start${process.argv.length > 2 ? ' -- ' + process.argv.slice(2).join(' ') : ''} (= ${command})`, started,
    finished: new Date().toISOString(), git: gitInfo(), machine: machineInfo(),
    repetitions: `${reps} requested per server and point, interleaved; disturbed runs re-run up to ${retries} times`,
    runs: runsLine(states), idleCheck: idle.message, extra: [rulesText({ foreignMaxCores, stealMax })] }),
  title, '', markdownTable(table), '', ...verdicts.map((v) => `- ${v}`), '', explain.replace(/\n/g, ' '), '',
  '## Every run', '',
  runsMarkdown(runs.map((x) => ({ rep: x.rep, point: x.point, server: x.server, state: x.rec.state, us: x.rec.cost?.coreUsPerTxn, rate: x.rec.load?.tps,
    cost: x.rec.cost, problems: x.rec.problems })), 'core µs/txn', 'txn/s'),
].join('\n');
writeFileSync(join(outDir, 'summary.md'), md);
if (recordDir) process.stdout.write(`Summary recorded in ${recordSummary(recordDir, outDir)}/ (commit it)\n`);
if (states.every((s) => s !== 'clean')) process.exit(1);
