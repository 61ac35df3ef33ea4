// The issues' goals as functions of the runs at one point: each harness maps its records to RunFigures and asks
// here. Pure (no I/O), so bench/selfcheck.ts can check them; every figure comes from clean runs only (verdict.ts).
import { fmt } from './stats.js';
import { cleanSummary, judge, type RunState, type Verdict } from './verdict.js';

/** What a goal reads from one run: its state, the server-core CPU per transaction/request/operation, and its rate
 *  (and, for a memory goal, the bytes per connection). */
export interface RunFigures { state: RunState; us?: number; rate?: number; bytes?: number }

/** The runs of each server at one point; a server absent from the run is absent (or undefined) here. */
export type RunsByServer = Readonly<Record<string, readonly RunFigures[] | undefined>>;

const side = (runs: RunsByServer, name: string) => ({ name, states: runs[name]?.map((r) => r.state) });
const us = (runs: RunsByServer, name: string) => cleanSummary(runs[name] ?? [], (r) => r.us).median;
const rate = (runs: RunsByServer, name: string) => cleanSummary(runs[name] ?? [], (r) => r.rate).median;
const bytes = (runs: RunsByServer, name: string) => cleanSummary(runs[name] ?? [], (r) => r.bytes).median;

/** HTTP (issue 6): ahead of Bun and node:http (more req/s and less server-core CPU per request) and at least
 *  nginx's requests per core (server-core µs/req at most nginx's). Needs all four servers. */
export function httpGoal(runs: RunsByServer, subject = 'megapipe-http', minClean?: number): Verdict {
  const others = ['bun', 'node:http'];
  return judge([subject, 'nginx', ...others].map((n) => side(runs, n)), () => {
    const m = { us: us(runs, subject), rate: rate(runs, subject) };
    const parts: string[] = [];
    let met = true;
    for (const o of others) {
      const x = { us: us(runs, o), rate: rate(runs, o) };
      const ahead = m.rate > x.rate && m.us < x.us;
      met &&= ahead;
      parts.push(`${fmt(m.rate / x.rate)}× the req/s and ${fmt(x.us / m.us)}× less CPU/req than ${o}${ahead ? '' : ' (not ahead)'}`);
    }
    const ng = us(runs, 'nginx');
    met &&= m.us <= ng;
    parts.push(`${fmt(ng / m.us)}× nginx's requests per core`);
    return { met, reason: parts.join(', ') };
  }, minClean);
}

/** HTTP (issue 19, goal 2): at least `factor` (1.2) × the requests per server CPU-second of the best of nginx and Bun,
 *  i.e. the lower of their server-core µs/req over megapipe-http's. Needs both. */
export function httpSpeedGoal(runs: RunsByServer, subject = 'megapipe-http', factor = 1.2, minClean?: number): Verdict {
  return judge([subject, 'nginx', 'bun'].map((n) => side(runs, n)), () => {
    const ng = us(runs, 'nginx'), bun = us(runs, 'bun');
    const best = ng <= bun ? 'nginx' : 'bun';
    const ratio = Math.min(ng, bun) / us(runs, subject);
    return { met: ratio >= factor, reason: `${fmt(ratio)}× ${best}'s requests per server CPU-second (${fmt(us(runs, subject))} against ${fmt(Math.min(ng, bun))} µs/req; goal ≥ ${factor}×)` };
  }, minClean);
}

/** memcached (issue 5): at least memcached's throughput per core, i.e. server-core µs/op at most memcached's. */
export function memcachedGoal(runs: RunsByServer, subject = 'megapipe', minClean?: number): Verdict {
  return judge([side(runs, subject), side(runs, 'memcached')], () => {
    const ratio = us(runs, subject) / us(runs, 'memcached');
    return { met: ratio <= 1, reason: `${fmt(ratio)}× memcached's server-core µs/op (${fmt(us(runs, subject))} against ${fmt(us(runs, 'memcached'))})` };
  }, minClean);
}

/** RPC: server-core µs/txn within `factor` (1.2) of the C io_uring reference at the point. */
export function rpcGoal(runs: RunsByServer, subject = 'megapipe', reference = 'uring-echo', factor = 1.2, minClean?: number): Verdict {
  return judge([side(runs, subject), side(runs, reference)], () => {
    const ratio = us(runs, subject) / us(runs, reference);
    return { met: ratio <= factor, reason: `${fmt(ratio)}× ${reference}'s server-core µs/txn (${fmt(us(runs, subject))} against ${fmt(us(runs, reference))}; limit ${factor}×)` };
  }, minClean);
}

/** npm start: less server-core CPU per transaction than node:net; the reason gives the saving. */
export function headlineGoal(runs: RunsByServer, subject = 'megapipe', baseline = 'node:net', minClean?: number): Verdict {
  return judge([side(runs, subject), side(runs, baseline)], () => {
    const saving = us(runs, baseline) / us(runs, subject);
    return { met: saving > 1, reason: `${fmt(saving)}× less server-core CPU per transaction than ${baseline} (${fmt(us(runs, subject))} against ${fmt(us(runs, baseline))} µs)` };
  }, minClean);
}

/** Legacy servers (issue 17): the same application on megapipe does at least `factor` × node:net's work per server
 *  CPU-second. `us` is the server process's CPU (utime + stime) per request or message, so the ratio is node:net's
 *  µs over megapipe's. */
export function compatCpuGoal(runs: RunsByServer, factor: number, subject = 'megapipe', baseline = 'node:net', minClean?: number): Verdict {
  return judge([side(runs, subject), side(runs, baseline)], () => {
    const ratio = us(runs, baseline) / us(runs, subject);
    return { met: ratio >= factor, reason: `${fmt(ratio)}× ${baseline}'s work per server CPU-second (${fmt(us(runs, subject))} against ${fmt(us(runs, baseline))} µs of server CPU each; goal ≥ ${factor}×)` };
  }, minClean);
}

/** Legacy servers (issue 17): memory per idle connection (`bytes`) at most `factor` × node:net's. */
export function compatMemoryGoal(runs: RunsByServer, factor = 0.5, subject = 'megapipe', baseline = 'node:net', minClean?: number): Verdict {
  return judge([side(runs, subject), side(runs, baseline)], () => {
    const ratio = bytes(runs, subject) / bytes(runs, baseline);
    return { met: ratio <= factor, reason: `${fmt(ratio)}× ${baseline}'s memory per idle connection (${fmt(bytes(runs, subject))} against ${fmt(bytes(runs, baseline))} B; goal ≤ ${factor}×)` };
  }, minClean);
}
