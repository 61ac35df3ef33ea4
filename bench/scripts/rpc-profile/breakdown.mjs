// Where a server's CPU goes per transaction, from one-run's `--perf` recordings (perf record -C <server CPU> -g over
// exactly the measured window) — bench/scripts/rpc-profile/run.sh makes them.
//   node bench/scripts/rpc-profile/breakdown.mjs DIR NAME…   (reads DIR/NAME.data and DIR/NAME.json, one-run's --json)
// The server's threads are those of the process whose command line one-run recorded (its pid, from NAME.json).
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { perfBreakdown, cleanPerfMap, PERF_CATEGORIES } from '../../../dist/bench/compat/perf.js';

const [dir, ...names] = process.argv.slice(2);
if (!dir || names.length === 0) { console.error('usage: breakdown.mjs DIR NAME…'); process.exit(64); }
const cols = [];
for (const n of names) {
  const run = JSON.parse(readFileSync(`${dir}/${n}.json`, 'utf8'));
  const pid = run.serverPid;
  const r = spawnSync('perf', ['script', '-i', `${dir}/${n}.data`, '-F', 'pid,tid'], { encoding: 'utf8', maxBuffer: 1 << 30 });
  const tids = new Set();
  for (const line of r.stdout.split('\n')) { const m = /^\s*(\d+)\/(\d+)/.exec(line); if (m && Number(m[1]) === pid) tids.add(Number(m[2])); }
  cleanPerfMap(`/tmp/perf-${pid}.map`);
  const b = perfBreakdown(`${dir}/${n}.data`, [...tids]);
  const hz = Number(run.perfHz ?? 1999);
  cols.push({ n, b, txns: run.load.txns, us: 1e6 / hz });
}
const f = (x) => x.toFixed(3);
console.log(['µs per transaction', ...cols.map((c) => c.n)].join(' | '));
for (const cat of PERF_CATEGORIES) console.log([cat, ...cols.map((c) => f((c.b.categories[cat] ?? 0) * c.us / c.txns))].join(' | '));
console.log(['server total', ...cols.map((c) => f(c.b.serverSamples * c.us / c.txns))].join(' | '));
console.log(['other tasks on the server core', ...cols.map((c) => f(c.b.otherSamples * c.us / c.txns))].join(' | '));
for (const c of cols) { console.log(`\n${c.n}: top leaf functions (share of the server's samples)`); for (const t of c.b.top) console.log(`${(100 * t.samples / c.b.serverSamples).toFixed(1)}% ${t.dso} ${t.sym}`); }
