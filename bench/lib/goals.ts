// The issues' goals as functions of the runs at one point: each harness maps its records to RunFigures and asks
// here. Pure (no I/O), so bench/selfcheck.ts can check them; every figure comes from clean runs only (verdict.ts).
import { fmt } from './stats.js';
import { cleanSummary, judge, type RunState, type Verdict } from './verdict.js';

/** What a goal reads from one run: its state, the server-core CPU per transaction/request/operation, and its rate. */
export interface RunFigures { state: RunState; us?: number; rate?: number }

/** The runs of each server at one point; a server absent from the run is absent (or undefined) here. */
export type RunsByServer = Readonly<Record<string, readonly RunFigures[] | undefined>>;

const side = (runs: RunsByServer, name: string) => ({ name, states: runs[name]?.map((r) => r.state) });
const us = (runs: RunsByServer, name: string) => cleanSummary(runs[name] ?? [], (r) => r.us).median;
const rate = (runs: RunsByServer, name: string) => cleanSummary(runs[name] ?? [], (r) => r.rate).median;

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
