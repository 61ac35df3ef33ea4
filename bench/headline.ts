// `npm start`: the headline comparison in about a minute — megapipe (io_uring backend) against node:net, echo RPC
// with 64 B messages, persistent connections and one transaction per connection, server on one core and the load
// generator (bench/c/rpc-load) on the other; 3 interleaved repetitions; medians with min–max.
// The full suite: `npm run bench -- --help`.
import { parseArgs } from 'node:util';
import { refuseIfBusy } from './lib/guard.js';
import { ensureCPrograms, pinSelf } from './lib/paths.js';
import { Progress } from './lib/progress.js';
import { runOnce, type RunRecord } from './lib/run.js';
import { fmt, fmtSummary, summarize } from './lib/stats.js';
import { formatTable } from './lib/table.js';
import { ECHO_SERVERS } from './servers/registry.js';

const usage = `usage: npm start [-- --reps N --duration S --conns C --force]
  megapipe against node:net: 64 B echo RPC, persistent and 1 transaction per connection, one server core.
  --reps N       interleaved repetitions (default 3)
  --duration S   measured seconds per run (default 4)
  --conns C      client connections (default 256)
  --force        run even when other load is on the machine (figures will be noisy)`;

const { values: a } = parseArgs({ options: {
  reps: { type: 'string', default: '3' }, duration: { type: 'string', default: '4' }, conns: { type: 'string', default: '256' },
  force: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' },
} });
if (a.help) { process.stdout.write(usage + '\n'); process.exit(0); }
const reps = Number(a.reps), duration = Number(a.duration), conns = Number(a.conns);
for (const [k, v] of [['reps', reps], ['duration', duration], ['conns', conns]] as const) {
  if (!Number.isInteger(v) || v < 1) { process.stderr.write(`--${k} must be a positive integer\n`); process.exit(64); }
}

const servers = ['node:net', 'megapipe'].map((n) => ECHO_SERVERS.find((s) => s.name === n)!);
const points = [{ label: 'persistent', txns: 0 }, { label: '1 txn/conn', txns: 1 }];
ensureCPrograms();
pinSelf('1');
await refuseIfBusy(a.force);

const runs: { server: string; point: string; rec: RunRecord }[] = [];
const progress = new Progress(reps * points.length * servers.length);
for (let r = 0; r < reps; r++) {
  for (const p of points) {
    for (const s of servers) {
      progress.show(`${s.name}, ${p.label}, rep ${r + 1}/${reps}`);
      const rec = await runOnce(s, {
        serverCpu: '0', clientCpu: '1', host: '127.0.0.1', workers: 1, syscalls: false,
        load: { conns, txns: p.txns, size: 64, durationS: duration, warmupS: 1, srcIps: 16, pipeline: 1, rstClose: false },
      });
      if (!rec.ok) progress.log(`${s.name} (${p.label}): ${rec.problems.join('; ')}`);
      runs.push({ server: s.name, point: p.label, rec });
      progress.tick();
    }
  }
}
progress.finish();

const rows: string[][] = [];
for (const p of points) {
  const pick = (server: string, f: (r: RunRecord) => number | undefined) =>
    summarize(runs.filter((x) => x.server === server && x.point === p.label && x.rec.ok).map((x) => f(x.rec) ?? NaN));
  const us = (s: string) => pick(s, (r) => r.cost?.coreUsPerTxn);
  const base = us('node:net').median;
  for (const s of servers) {
    const u = us(s.name);
    rows.push([
      p.label, s.name,
      fmtSummary(pick(s.name, (r) => r.load?.tps), 3),
      fmtSummary(u, 3),
      fmt(pick(s.name, (r) => r.load?.p99_us).median, 3),
      fmt(pick(s.name, (r) => r.entersPerTxn).median, 2),
      fmt(pick(s.name, (r) => r.cost?.clientCoreBusy).median * 100, 2) + '%',
      s.name === 'node:net' ? '1.00×' : `${fmt(base / u.median, 3)}×`,
    ]);
  }
}
process.stdout.write('\nmegapipe vs node:net — 64 B echo RPC, ' + `${conns} connections, server on CPU 0, rpc-load on CPU 1, ${reps} reps × ${duration} s (median, min–max)\n\n`);
process.stdout.write(formatTable({
  headers: ['connections', 'server', 'transactions/s', 'server-core µs/txn', 'p99 µs', 'enters/txn', 'client core busy', 'CPU saving vs node:net'],
  rows,
}));
process.stdout.write(`
server-core µs/txn: the server core's non-idle time (user, system, softirq) per transaction — the honest figure
when the client core saturates first. "CPU saving" = node:net's µs/txn ÷ the server's. Reproduce: npm start;
the full suite (C references, figures, charts): npm run bench -- --help. Figures and analysis: BENCHMARKS.md.
`);
const failed = runs.filter((x) => !x.rec.ok);
if (failed.length === runs.length) process.exit(1);
