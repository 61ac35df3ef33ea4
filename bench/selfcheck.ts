// A self-check of the harnesses' bookkeeping, without measuring anything: which runs count, when a goal may be
// judged, and how steal is accounted. Runs in well under a second:
//
//   node dist/bench/selfcheck.js
//
// It lives here and not in test/ because it checks the benchmarks, not the library.
import assert from 'node:assert/strict';
import { compatCpuGoal, compatMemoryGoal, headlineGoal, httpGoal, httpSpeedGoal, memcachedGoal, rpcGoal, type RunFigures } from './lib/goals.js';
import { parseCoreTicks, windowCost, type Sample } from './lib/procfs.js';
import {
  disturbance, fatalProblems, fmtRuns, judge, overall, SATURATED, stateOf, STEAL_MAX, tally, verdictText, type RunState,
} from './lib/verdict.js';

let checks = 0;
function check(name: string, f: () => void): void {
  try {
    f();
    checks++;
  } catch (e) {
    process.stderr.write(`selfcheck: FAILED: ${name}\n${(e as Error).stack ?? e}\n`);
    process.exit(1);
  }
}

const clean = (us: number, rate: number): RunFigures => ({ state: 'clean', us, rate });
const three = (us: number, rate: number) => [clean(us, rate), clean(us, rate), clean(us, rate)];
/** All four HTTP servers with three clean runs each; megapipe-http ahead of everyone. */
const http = () => ({
  'megapipe-http': three(8, 110_000), nginx: three(11, 90_000), 'node:http': three(17, 58_000), bun: three(10, 90_000),
} as Record<string, RunFigures[] | undefined>);

// ---- verdicts from clean runs only ------------------------------------------------------------------------------

check('all four servers with 3 clean runs each, megapipe-http ahead: goal met', () => {
  assert.equal(httpGoal(http()).status, 'met');
});

check('a server missing from the run: not measured, never met (the comparison is not vacuously true)', () => {
  const runs = http();
  delete runs.bun;
  const v = httpGoal(runs);
  assert.equal(v.status, 'not measured');
  assert.match(v.reason, /bun not in the run/);
  assert.match(verdictText(v), /^not measured/);
});

check('a server present with no runs at all: not measured', () => {
  assert.equal(httpGoal({ ...http(), 'node:http': [] }).status, 'not measured');
});

check('runs with errors are left out: Bun failing every Connection: close run makes the scenario not measured', () => {
  const runs = http();
  runs.bun = [{ state: 'failed', us: 30, rate: 20_000 }, { state: 'failed', us: 30, rate: 20_000 }, { state: 'failed', us: 30, rate: 20_000 }];
  const v = httpGoal(runs);
  assert.equal(v.status, 'not measured');
  assert.match(v.reason, /bun has 0 clean runs of 3 \(3 failed\), needs 3/);
});

check('a failed run does not move a median: its figures are ignored', () => {
  const runs = http();
  // a failed nginx run that, if counted, would put nginx below megapipe-http's CPU per request
  runs.nginx = [...three(11, 90_000), { state: 'failed', us: 1, rate: 1e6 }, { state: 'failed', us: 1, rate: 1e6 }, { state: 'failed', us: 1, rate: 1e6 }, { state: 'failed', us: 1, rate: 1e6 }];
  assert.equal(httpGoal(runs).status, 'met');
  // and the same for the subject: failed runs that would have made it look better are not used either
  const worse = http();
  worse['megapipe-http'] = [...three(12, 110_000), { state: 'failed', us: 1, rate: 1e6 }, { state: 'failed', us: 1, rate: 1e6 }, { state: 'failed', us: 1, rate: 1e6 }, { state: 'failed', us: 1, rate: 1e6 }];
  assert.equal(httpGoal(worse).status, 'missed');
});

check('fewer than 3 clean runs (two clean, one disturbed by steal): not measured, with the count', () => {
  const runs = http();
  runs.nginx = [clean(11, 90_000), clean(11, 90_000), { state: 'steal', us: 9, rate: 80_000 }];
  const v = httpGoal(runs);
  assert.equal(v.status, 'not measured');
  assert.match(v.reason, /nginx has 2 clean runs of 3 \(1 steal\)/);
});

check('measured and behind: goal missed', () => {
  const runs = http();
  runs.nginx = three(7, 90_000); // nginx cheaper per request than megapipe-http (8)
  assert.equal(httpGoal(runs).status, 'missed');
  const slower = http();
  slower.bun = three(10, 120_000); // Bun more req/s
  assert.equal(httpGoal(slower).status, 'missed');
});

check('http, issue 19: ≥ 1.2× the best of nginx and Bun; node:http not needed; either absent is not measured', () => {
  const runs = http();   // megapipe-http 8 µs, nginx 11, Bun 10: 1.25× Bun's
  const v = httpSpeedGoal(runs);
  assert.equal(v.status, 'met');
  assert.match(v.reason, /1\.25× bun's/);
  assert.equal(httpSpeedGoal({ ...runs, 'node:http': undefined }).status, 'met');
  assert.equal(httpSpeedGoal({ ...runs, bun: three(9, 90_000) }).status, 'missed');   // 1.125× Bun's
  assert.equal(httpSpeedGoal({ ...runs, nginx: three(9.5, 90_000), bun: three(20, 1) }).status, 'missed');   // nginx is the best
  assert.equal(httpSpeedGoal({ ...runs, bun: undefined }).status, 'not measured');
});

check('memcached: ≤ memcached µs/op is met, above is missed, memcached absent is not measured', () => {
  assert.equal(memcachedGoal({ megapipe: three(7.9, 1), memcached: three(8.0, 1) }).status, 'met');
  assert.equal(memcachedGoal({ megapipe: three(8.1, 1), memcached: three(8.0, 1) }).status, 'missed');
  assert.equal(memcachedGoal({ megapipe: three(7.9, 1) }).status, 'not measured');
});

check('rpc: within 1.2× of uring-echo is met, 1.25× missed, 2 repetitions not measured', () => {
  assert.equal(rpcGoal({ megapipe: three(6.0, 1), 'uring-echo': three(5.0, 1) }).status, 'met');
  assert.equal(rpcGoal({ megapipe: three(6.25, 1), 'uring-echo': three(5.0, 1) }).status, 'missed');
  assert.equal(rpcGoal({ megapipe: three(6.0, 1).slice(0, 2), 'uring-echo': three(5.0, 1).slice(0, 2) }).status, 'not measured');
});

check('headline: a saving is stated only from 3 clean runs of both servers', () => {
  assert.equal(headlineGoal({ megapipe: three(5.8, 1), 'node:net': three(9.5, 1) }).status, 'met');
  assert.equal(headlineGoal({ megapipe: three(5.8, 1), 'node:net': [clean(9.5, 1), clean(9.5, 1), { state: 'foreign', us: 20, rate: 1 }] }).status, 'not measured');
});

check('over several points: met only if every point is measured and met; a measured miss is a miss', () => {
  const met = { status: 'met', reason: '' } as const, missed = { status: 'missed', reason: '' } as const, nm = { status: 'not measured', reason: '' } as const;
  assert.equal(overall([met, met]), 'met');
  assert.equal(overall([met, nm]), 'not measured');
  assert.equal(overall([met, nm, missed]), 'missed');
  assert.equal(overall([]), 'not measured');
});

check('judge never calls decide() when a side is short of clean runs', () => {
  let called = false;
  judge([{ name: 'a', states: ['clean', 'clean'] }], () => { called = true; return { met: true, reason: '' }; });
  assert.equal(called, false);
});

// ---- run states ---------------------------------------------------------------------------------------------------

check('run states: ok is clean; steal before foreign load before failed', () => {
  assert.equal(stateOf({ ok: true }), 'clean');
  assert.equal(stateOf({ ok: false, noisy: true, stolen: true }), 'steal');
  assert.equal(stateOf({ ok: false, noisy: true }), 'foreign');
  assert.equal(stateOf({ ok: false }), 'failed');
});

check('connection errors make a run failed; client saturation does not; disturbances have their own state', () => {
  assert.deepEqual(fatalProblems(['3 connection errors']), ['3 connection errors']);
  assert.deepEqual(fatalProblems([SATURATED, 'foreign load: …', 'steal: …']), []);
});

check('tallies and the runs cell', () => {
  const s: RunState[] = ['clean', 'clean', 'failed', 'steal', 'foreign', 'clean'];
  assert.deepEqual(tally(s), { runs: 6, clean: 3, failed: 1, foreign: 1, steal: 1 });
  assert.equal(fmtRuns(tally(s)), '3/6 (1 failed, 1 foreign load, 1 steal)');
  assert.equal(fmtRuns(tally(['clean', 'clean', 'clean'])), '3/3');
});

// ---- steal accounting ---------------------------------------------------------------------------------------------

/** A /proc/stat text for two cores: user nice system idle iowait irq softirq steal. */
const stat = (c0: number[], c1: number[]) => `cpu  0 0 0 0 0 0 0 0 0 0\ncpu0 ${c0.join(' ')} 0 0\ncpu1 ${c1.join(' ')} 0 0\nintr 0\n`;
const sampleOf = (text: string, seconds: number): Sample => ({
  timeNs: BigInt(Math.round(seconds * 1e9)), cores: parseCoreTicks(text), proc: { cpu: 0, voluntary: 0, nonvoluntary: 0 }, foreign: new Map(),
});

check('steal is not busy: /proc/stat parsing keeps it apart, and the total still counts it', () => {
  const [c0] = parseCoreTicks(stat([100, 0, 50, 300, 0, 0, 20, 30], [0, 0, 0, 0, 0, 0, 0, 0]));
  assert.deepEqual(c0, { busy: 170, steal: 30, softirq: 20, irq: 0, total: 500 });
});

check('windowCost: µs/txn from busy ticks without steal; steal reported per side and as the worst core', () => {
  // 5 s window, 500 ticks per core: server core 300 busy + 50 steal, client core 400 busy + 10 steal; 1000 transactions
  const a = sampleOf(stat([0, 0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0, 0]), 0);
  const b = sampleOf(stat([200, 0, 80, 150, 0, 0, 20, 50], [300, 0, 100, 90, 0, 0, 0, 10]), 5);
  const c = windowCost(a, b, 1000, [0], [1]);
  assert.equal(c.coreUsPerTxn, (300 * 10_000) / 1000); // 300 ticks × 10 ms, not 350
  assert.equal(c.serverCoreBusy, 300 / 500);
  assert.equal(c.serverCoreSteal, 50 / 500);
  assert.equal(c.clientCoreSteal, 10 / 500);
  assert.equal(c.maxCoreSteal, 50 / 500);
  assert.equal(c.machineUsPerTxn, ((300 + 400) * 10_000) / 1000);
  const d = disturbance(c, { foreignMaxCores: 0.1, stealMax: STEAL_MAX });
  assert.equal(d.steal, true); // 10% > 5%
  assert.equal(d.foreign, false);
  assert.match(d.problems[0]!, /^steal: the hypervisor took 10\.0% of a core/);
});

check('steal below the limit on every core: not disturbed', () => {
  const a = sampleOf(stat([0, 0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0, 0]), 0);
  const b = sampleOf(stat([200, 0, 80, 200, 0, 0, 0, 20], [300, 0, 100, 100, 0, 0, 0, 0]), 5);
  const c = windowCost(a, b, 1000, [0], [1]);
  assert.equal(c.maxCoreSteal, 0.04);
  assert.equal(disturbance(c, { foreignMaxCores: 0.1, stealMax: STEAL_MAX }).steal, false);
});

check('foreign load is bounded by the machine\'s busy time less our own: a reaped child\'s old CPU is not this window\'s', () => {
  // 5 s, 2 cores (1000 ticks): 700 busy; the server used 300, the client 350 → others can have used 50 ticks at most
  const a = { ...sampleOf(stat([0, 0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0, 0]), 0), client: { cpu: 0, voluntary: 0, nonvoluntary: 0 } };
  const b = { ...sampleOf(stat([300, 0, 0, 200, 0, 0, 0, 0], [400, 0, 0, 100, 0, 0, 0, 0]), 5), client: { cpu: 350, voluntary: 0, nonvoluntary: 0 } };
  b.proc = { cpu: 300, voluntary: 0, nonvoluntary: 0 };
  a.foreign = new Map([[42, { comm: 'sh', ticks: 10 }]]);
  b.foreign = new Map([[42, { comm: 'sh', ticks: 200_010 }], [43, { comm: 'cc1', ticks: 30 }]]);   // sh reaped a child
  const c = windowCost(a, b, 1000, [0], [1]);
  assert.equal(c.foreignCores, 50 / 100 / 5);            // 50 ticks: 0.1 of a core, not 400
  assert.deepEqual(c.foreignTop, ['sh(42) 10%', 'cc1(43) 6%']);
  assert.equal(disturbance(c, { foreignMaxCores: 0.05, stealMax: STEAL_MAX }).foreign, true);   // still a disturbance
  // a machine with nothing else running: no room, no foreign load, whatever the counters say
  b.proc = { cpu: 350, voluntary: 0, nonvoluntary: 0 };
  assert.equal(windowCost(a, b, 1000, [0], [1]).foreignCores, 0);
});

// ---- the legacy-server goals (issue 17): ratios of server CPU per request, and of memory per connection ----------

check('compat CPU goal: node:net 13 µs/req, megapipe 10 → 1.30× the work per CPU-second: met at 1.3, missed at 1.35', () => {
  const runs = { 'node:net': three(13, 70_000), megapipe: three(10, 90_000) };
  assert.equal(compatCpuGoal(runs, 1.3).status, 'met');
  assert.equal(compatCpuGoal(runs, 1.35).status, 'missed');
  assert.match(compatCpuGoal(runs, 1.3).reason, /^1\.30× node:net's work per server CPU-second/);
});

check('compat CPU goal: a failed megapipe run (errors) is not counted; two clean runs are not enough', () => {
  const runs = { 'node:net': three(13, 70_000), megapipe: [clean(10, 90_000), clean(10, 90_000), { state: 'failed', us: 5, rate: 200_000 } as RunFigures] };
  const v = compatCpuGoal(runs, 1.3);
  assert.equal(v.status, 'not measured');
  assert.match(v.reason, /megapipe has 2 clean runs of 3 \(1 failed\)/);
});

check('compat memory goal: at most half of node:net\'s bytes per idle connection', () => {
  const mem = (bytes: number): RunFigures[] => [0, 1, 2].map(() => ({ state: 'clean', bytes }));
  assert.equal(compatMemoryGoal({ 'node:net': mem(4000), megapipe: mem(2000) }).status, 'met');
  assert.equal(compatMemoryGoal({ 'node:net': mem(4000), megapipe: mem(2100) }).status, 'missed');
  assert.equal(compatMemoryGoal({ 'node:net': mem(4000) }).status, 'not measured');
});

process.stdout.write(`selfcheck: ${checks} checks passed (verdicts from clean runs only, run states, steal accounting)\n`);
