// Turns the RPC experiment's runs into its report: a terminal table, summary.md and SVG charts. Works from a
// results.json alone, so charts and tables can be redrawn without measuring again (rpc.js --from FILE).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { rpcGoal, type RunFigures } from './goals.js';
import { provenanceMarkdown, runsLine, runsMarkdown, type GitInfo } from './results.js';
import { parseCpuList, type RunRecord } from './run.js';
import { fmt, fmtSummary, summarize, type Summary } from './stats.js';
import { lineChart, type ChartSeries } from './svg.js';
import { formatTable, markdownTable, type Table } from './table.js';
import { FOREIGN_MAX_CORES, fmtRuns, MIN_CLEAN_RUNS, overall, rulesText, statusText, stateOf, STEAL_MAX, tally, verdictText, type RunState, type Tally, type Verdict } from './verdict.js';

/** One point of a figure: "conns" sweeps transactions per connection, "size" sweeps message size, "cores" sweeps
 *  server workers/cores, "breakdown" sweeps transactions per connection over the breakdown's configurations,
 *  "batch" sweeps transactions per connection over megapipe's batch thresholds (one server per threshold). */
export interface Point {
  figure: 'conns' | 'size' | 'cores' | 'breakdown' | 'batch';
  /** Position on the chart's x axis (persistent connections sit one doubling past the longest finite one). */
  x: number;
  label: string;
  /** Transactions per connection (0 = persistent) and message bytes. */
  txns: number;
  size: number;
  /** Placement of this point when it differs from the run's options (cores, breakdown). */
  workers?: number;
  serverCpu?: string;
  clientCpu?: string;
}

export interface Row extends RunRecord {
  figure: Point['figure'];
  x: number;
  label: string;
  rep: number;
  txnsPerConn: number;
  size: number;
  workers?: number;
  serverCpu?: string;
  clientCpu?: string;
}

export interface RpcResults {
  command: string;
  started: string;
  /** Absent in results written before the provenance was recorded. */
  finished?: string;
  git?: GitInfo;
  limits?: { foreignMaxCores: number; stealMax: number; retries: number };
  machine: { kernel: string; cpus: number; cpuModel: string; node: string };
  idleCheck: { message: string };
  baseline: string;
  options: { conns: number; pipeline: number; durationS: number; warmupS: number; reps: number; serverCpu: string; clientCpu: string; [k: string]: unknown };
  servers: { name: string; description?: string }[];
  runs: Row[];
}

interface Cell {
  tps: Summary; coreUs: Summary; procUs: Summary; softirqUs: Summary; p50: Summary; p99: Summary;
  enters: Summary; wakeups: Summary; crossings: Summary; syscalls: Summary; vcsw: Summary; srvBusy: Summary; cliBusy: Summary;
  /** Every core's busy time, the load generator's own CPU, and the difference (the server's share) per txn. */
  machineUs: Summary; cliProcUs: Summary; srvShareUs: Summary;
  /** Largest steal fraction of a server or client core over the clean runs. */
  stealMax: number;
  runs: Tally;
}

/** A run's state; results.json from before states were recorded counted connection errors as ok: not any more. */
export function rowState(r: Row): RunState {
  return r.state ?? stateOf({ ok: r.ok && (r.load?.errors ?? 0) === 0, noisy: r.noisy, stolen: r.stolen });
}

function cellOf(rows: Row[]): Cell {
  const ok = rows.filter((r) => rowState(r) === 'clean');
  const pick = (f: (r: Row) => number | undefined) => summarize(ok.map((r) => f(r) ?? NaN));
  return {
    tps: pick((r) => r.load?.tps), coreUs: pick((r) => r.cost?.coreUsPerTxn), procUs: pick((r) => r.cost?.procUsPerTxn),
    softirqUs: pick((r) => r.cost?.softirqUsPerTxn), p50: pick((r) => r.load?.p50_us), p99: pick((r) => r.load?.p99_us),
    enters: pick((r) => r.entersPerTxn), wakeups: pick((r) => r.wakeupsPerTxn), crossings: pick((r) => r.crossingsPerTxn), syscalls: pick((r) => r.syscallsPerTxn), vcsw: pick((r) => r.cost?.voluntaryPerTxn),
    srvBusy: pick((r) => (r.cost ? r.cost.serverCoreBusy * 100 : undefined)), cliBusy: pick((r) => (r.cost ? r.cost.clientCoreBusy * 100 : undefined)),
    machineUs: pick((r) => r.cost?.machineUsPerTxn), cliProcUs: pick((r) => r.cost?.clientProcUsPerTxn),
    srvShareUs: pick((r) => (r.cost ? (r.cost.machineUsPerTxn ?? NaN) - (r.cost.clientProcUsPerTxn ?? NaN) : undefined)),
    stealMax: Math.max(0, ...ok.map((r) => r.cost?.maxCoreSteal ?? 0)),
    runs: tally(rows.map(rowState)),
  };
}

const scaled = (s: Summary, k: number): Summary => ({ ...s, median: s.median * k, min: s.min * k, max: s.max * k });

/** Points in plan order, recovered from the runs. */
export function pointsOf(runs: Row[]): Point[] {
  const seen = new Map<string, Point>();
  for (const r of runs) {
    const key = `${r.figure}:${r.x}`;
    if (!seen.has(key)) seen.set(key, { figure: r.figure, x: r.x, label: r.label, txns: r.txnsPerConn, size: r.size, workers: r.workers, serverCpu: r.serverCpu, clientCpu: r.clientCpu });
  }
  return [...seen.values()];
}

const overlaps = (a: string, b: string) => { const x = new Set(parseCpuList(a)); return parseCpuList(b).some((c) => x.has(c)); };
const txnsLabel = (t: number) => (t === 0 ? 'persistent connections' : `${t} transaction${t === 1 ? '' : 's'} per connection`);

/** Writes summary.md and the charts into `outDir`; returns the terminal table and the chart file names. */
export function writeReport(res: RpcResults, outDir: string): { text: string; charts: string[] } {
  const points = pointsOf(res.runs);
  const o = res.options;
  const allServers = res.servers.map((s) => s.name);
  const serversAt = (p: Point) => allServers.filter((n) => res.runs.some((r) => r.figure === p.figure && r.x === p.x && r.server === n));
  const cell = (p: Point, server: string) => cellOf(res.runs.filter((r) => r.figure === p.figure && r.x === p.x && r.server === server));
  const base = res.baseline;
  const srvCpu = (p: Point) => p.serverCpu ?? o.serverCpu, cliCpu = (p: Point) => p.clientCpu ?? o.clientCpu;
  /** Server and client share cores: the server-core figure is then the whole machine's (client included). */
  const shared = (p: Point) => overlaps(srvCpu(p), cliCpu(p));
  const placed = points.some((p) => p.figure === 'cores' || p.figure === 'breakdown');

  const table: Table = {
    headers: ['point', 'server', 'runs clean/all', 'k txn/s', 'core µs/txn', `vs ${base}`, 'proc µs/txn', 'p50 µs', 'p99 µs', 'enters/txn', 'wake-ups/txn', 'crossings/txn', 'syscalls/txn', 'vcsw/txn', 'srv busy%', 'cli busy%', 'steal% max',
      ...(placed ? ['workers @ server/client CPUs', 'machine µs/txn', 'client µs/txn', 'machine − client µs/txn'] : [])],
    rows: [],
  };
  for (const p of points) {
    const baseUs = cell(p, base).coreUs.median;
    for (const name of serversAt(p)) {
      const c = cell(p, name);
      const ratio = c.coreUs.median / baseUs;
      table.rows.push([
        `${p.figure}: ${p.label}`,
        name,
        fmtRuns(c.runs),
        fmtSummary(scaled(c.tps, 1e-3)), fmtSummary(c.coreUs), Number.isFinite(ratio) ? `${fmt(ratio, 2)}×` : '–', fmtSummary(c.procUs),
        fmt(c.p50.median), fmt(c.p99.median), fmt(c.enters.median), fmt(c.wakeups.median, 3), fmt(c.crossings.median, 3), fmt(c.syscalls.median), fmt(c.vcsw.median),
        fmt(c.srvBusy.median, 2), fmt(c.cliBusy.median, 2) + (c.cliBusy.median > 95 ? '*' : ''), c.runs.clean ? fmt(c.stealMax * 100, 2) : '–',
        ...(placed ? [`${p.workers ?? o.workers ?? 1} @ ${srvCpu(p)}/${cliCpu(p)}`, fmtSummary(c.machineUs), fmtSummary(c.cliProcUs), fmtSummary(c.srvShareUs)] : []),
      ]);
    }
  }

  // The breakdown as the paper tabulates it: each configuration against the one before it and the baseline.
  const steps: Table = { headers: ['point', 'configuration', 'runs clean/all', 'k txn/s', 'µs/txn', 'µs/txn vs previous', 'txn/s vs previous', 'µs/txn vs baseline'], rows: [] };
  for (const p of points.filter((q) => q.figure === 'breakdown')) {
    const names = serversAt(p);
    const us = (c: Cell) => (shared(p) ? c.srvShareUs : c.coreUs);
    const pct = (a: number, b: number) => (Number.isFinite(a / b) ? `${a >= b ? '+' : ''}${fmt((a / b - 1) * 100, 2)}%` : '–');
    names.forEach((name, i) => {
      const c = cell(p, name), prev = i > 0 ? cell(p, names[i - 1]!) : undefined, first = cell(p, names[0]!);
      steps.rows.push([p.label, name, fmtRuns(c.runs), fmtSummary(scaled(c.tps, 1e-3)), fmtSummary(us(c)),
        prev ? pct(us(c).median, us(prev).median) : '–', prev ? pct(c.tps.median, prev.tps.median) : '–', i > 0 ? pct(us(c).median, us(first).median) : '–']);
    });
  }

  // The goal at the one-core points (conns and size): megapipe within 1.2× of the C io_uring reference's core
  // µs/txn, judged only with MIN_CLEAN_RUNS clean runs of both. Cores and breakdown share cores: no goal there.
  const verdicts: { point: Point; v: Verdict }[] = [];
  if (allServers.includes('megapipe')) {
    for (const p of points.filter((q) => q.figure === 'conns' || q.figure === 'size')) {
      const runsAt = (n: string): RunFigures[] | undefined => {
        const rs = res.runs.filter((r) => r.figure === p.figure && r.x === p.x && r.server === n);
        return rs.length ? rs.map((r) => ({ state: rowState(r), us: r.cost?.coreUsPerTxn, rate: r.load?.tps })) : undefined;
      };
      verdicts.push({ point: p, v: rpcGoal({ megapipe: runsAt('megapipe'), 'uring-echo': runsAt('uring-echo') }) });
    }
  }
  const verdictLines = verdicts.map(({ point, v }) => `${point.figure}: ${point.label}: ${verdictText(v)}`);
  const verdictAll = verdicts.length ? `Within 1.2× of uring-echo at every point: ${statusText(overall(verdicts.map((x) => x.v)))}` : '';

  const charts: string[] = [];
  for (const fig of [...new Set(points.map((p) => p.figure))]) {
    const pts = points.filter((p) => p.figure === fig);
    const servers = allServers.filter((n) => pts.some((p) => serversAt(p).includes(n)));
    const anyShared = pts.some(shared);
    const xTicks = pts.map((p) => ({
      value: p.x,
      label: fig === 'cores' ? String(p.x) : fig === 'size' ? (p.size >= 1024 ? `${p.size / 1024}K` : String(p.size)) : p.txns === 0 ? 'pers.' : String(p.txns),
    }));
    const xLabel = fig === 'conns' ? `transactions per connection (${pts[0]!.size} B messages)`
      : fig === 'size' ? `message size, bytes (${pts[0]!.txns || 'persistent'} transactions per connection)`
      : fig === 'cores' ? `server cores = workers (${pts[0]!.size} B, ${txnsLabel(pts[0]!.txns)}${anyShared ? '; at all cores the client shares them' : ''})`
      : `transactions per connection (${pts[0]!.size} B, ${pts[0]!.workers ?? o.workers} workers on CPU ${srvCpu(pts[0]!)}, client on CPU ${cliCpu(pts[0]!)})`;
    type Metric = { key: string; title: string; yLabel: string; get: (c: Cell) => Summary };
    const tps: Metric = { key: 'tps', title: 'throughput', yLabel: 'k transactions/s', get: (c) => scaled(c.tps, 1e-3) };
    const core: Metric = { key: 'core-us', title: 'server core CPU per transaction', yLabel: 'µs of server core per transaction', get: (c) => c.coreUs };
    const capacity: Metric = {
      key: 'capacity', title: 'throughput per fully busy server core', yLabel: 'k transactions/s per server core',
      get: (c) => ({ median: 1e3 / c.coreUs.median, min: 1e3 / c.coreUs.max, max: 1e3 / c.coreUs.min, n: c.coreUs.n }),
    };
    const machine: Metric = { key: 'machine-us', title: 'whole-machine CPU per transaction (server + client)', yLabel: 'µs of all cores per transaction', get: (c) => c.machineUs };
    const share: Metric = { key: 'server-share-us', title: 'machine CPU minus the client\'s own, per transaction', yLabel: 'µs per transaction', get: (c) => c.srvShareUs };
    // (batch: one server per threshold over a few points; the table says it all)
    const metrics: Metric[] = fig === 'batch' ? [] : fig === 'cores' ? [tps, machine, share] : fig === 'breakdown' ? (anyShared ? [tps, machine, share] : [tps, core]) : [tps, core, capacity];
    for (const m of metrics) {
      const series: ChartSeries[] = servers.map((name) => ({
        name,
        points: pts.map((p) => { const v = m.get(cell(p, name)); return { x: p.x, y: v.median, yMin: v.min, yMax: v.max }; }),
      }));
      const file = `${fig}-${m.key}.svg`;
      writeFileSync(join(outDir, file), lineChart({ title: `RPC echo, ${o.conns} connections: ${m.title}`, xLabel, yLabel: m.yLabel, xScale: fig === 'cores' ? 'linear' : 'log2', xTicks, series }));
      charts.push(file);
    }
  }

  const mc = res.machine;
  const limits = res.limits ?? { foreignMaxCores: FOREIGN_MAX_CORES, stealMax: STEAL_MAX, retries: 0 };
  const md = [
    `# RPC microbenchmark (MegaPipe §5.1), ${res.started}`,
    '',
    provenanceMarkdown({
      command: res.command, started: res.started, finished: res.finished ?? '(not recorded)',
      git: res.git ?? { commit: '(not recorded)', branch: '', dirty: [] }, machine: mc,
      repetitions: `${o.reps} requested per server and point, interleaved (A B C … A B C …); disturbed runs re-run up to ${limits.retries} times`,
      runs: runsLine(res.runs.map(rowState)), idleCheck: res.idleCheck.message,
      extra: [rulesText(limits)],
    }),
    (points.some((p) => !p.serverCpu) ? `Server on CPU ${o.serverCpu}, rpc-load on CPU ${o.clientCpu}${placed ? ' (conns and size)' : ''}; ` : '') +
      (placed ? 'Cores and breakdown: workers and CPUs per point as in the *workers @ server/client CPUs* column (where they overlap, the client shares the server\'s cores); ' : '') +
      `${o.conns} connections, pipeline ${o.pipeline}, ${o.warmupS} s warm-up + ${o.durationS} s measured.`,
    '',
    'Cells are median (min–max) over the clean runs (*runs clean/all*; what was left out, and why, is listed there and under *Every run*). ' +
      '*core µs/txn*: busy time of the server core per transaction (/proc/stat: user, nice, system, irq and softirq — the softirq work done ' +
      'there is included, steal is not). ' +
      `*vs ${base}*: core µs/txn relative to ${base}; lower is better. *proc µs/txn*: utime+stime of the server processes. ` +
      '*enters/txn*: io_uring_enter calls the server reports over its lifetime / all transactions including warm-up; *wake-ups/txn*: its channels\' event-loop wake-ups, counted the same way; *crossings/txn*: its calls from the addon into JavaScript (completion batches), counted the same way. *syscalls/txn*: ' +
      'with --syscalls, counted by perf. *vcsw/txn*: voluntary context switches (sleeps, so wake-ups) of the server. *cli busy%* is marked * ' +
      'when the client core was saturated: throughput is then client-bound and only the per-transaction CPU compares the servers. ' +
      '*steal% max*: the largest share of a server or client core the hypervisor took during a clean run\'s window.',
    '',
    markdownTable(table),
    ...(steps.rows.length ? ['## Breakdown', '', 'Each configuration adds one technique to the one above it. *µs/txn*: server core µs per transaction, or, when ' +
      'server and client share the cores, the whole machine\'s busy time minus the load generator\'s own CPU (an estimate of the server\'s share: ' +
      'softirq work the client\'s sends cause is not charged to the client on every kernel).', '', markdownTable(steps)] : []),
    ...(verdicts.length ? ['## Against the goal (megapipe within 1.2× of the C io_uring reference, server-core µs/txn)', '',
      ...verdictLines.map((l) => `- ${l}`), '', `${verdictAll}.`, ''] : []),
    ...charts.map((c) => `![${c}](${c})`),
    '',
    '## Every run', '',
    runsMarkdown(res.runs.map((r) => ({ rep: r.rep, point: `${r.figure}: ${r.label}`, server: r.server, state: rowState(r), us: r.cost?.coreUsPerTxn,
      rate: r.load?.tps, cost: r.cost, problems: r.problems })), 'core µs/txn', 'txn/s'),
  ].join('\n');
  writeFileSync(join(outDir, 'summary.md'), md);
  const text = formatTable(table) + (steps.rows.length ? '\nBreakdown (each configuration adds one technique):\n' + formatTable(steps) : '') +
    (verdicts.length ? `\nAgainst the goal (megapipe within 1.2× of uring-echo, server-core µs/txn; ≥ ${MIN_CLEAN_RUNS} clean runs each):\n${verdictLines.join('\n')}\n${verdictAll}\n` : '');
  return { text, charts };
}
