// Where each HTTP server's core time goes per request, from `node dist/bench/http.js --perf DIR` (perf record on the
// server's CPU over every measured window):
//   node bench/scripts/http-profile/breakdown.mjs RESULTS_DIR [SCENARIO…]
// RESULTS_DIR is the harness's results directory (results.json names each run's recording and the server's threads).
// A category's µs per request = its share of the core's busy samples × the run's server-core µs/req (/proc/stat, the
// same window), so the columns add up to the measured figure; medians over the clean runs of a server and scenario.
// perf's own cost is in those figures: compare servers within one profiled run, not with unprofiled runs.
import { readFileSync } from 'node:fs';
import { cleanPerfMap, perfBreakdown, PERF_CATEGORIES } from '../../../dist/bench/compat/perf.js';

const [dir, ...wanted] = process.argv.slice(2);
if (!dir) { console.error('usage: breakdown.mjs RESULTS_DIR [SCENARIO…]'); process.exit(64); }
const { runs } = JSON.parse(readFileSync(`${dir}/results.json`, 'utf8'));
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const n = s.length; return n === 0 ? NaN : n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2; };
const f = (x) => (Number.isFinite(x) ? x.toFixed(2) : '–');

const scenarios = wanted.length ? wanted : [...new Set(runs.map((r) => r.scenario))];
for (const sc of scenarios) {
  const cols = [];
  for (const server of [...new Set(runs.map((r) => r.server))]) {
    const mine = runs.filter((r) => r.scenario === sc && r.server === server && r.state === 'clean' && r.perf);
    if (mine.length === 0) continue;
    const per = [];
    const leaves = new Map();
    for (const r of mine) {
      for (const pid of r.perf.pids) cleanPerfMap(`/tmp/perf-${pid}.map`);
      const b = perfBreakdown(r.perf.file, r.perf.tids);
      if (!b || b.busySamples === 0) continue;
      const us = r.coreUsPerReq / b.busySamples;   // µs per request that one busy sample stands for
      const row = { _total: r.coreUsPerReq, _server: b.serverSamples * us, _other: b.otherSamples * us };
      for (const c of PERF_CATEGORIES) row[c] = (b.categories[c] ?? 0) * us;
      per.push(row);
      for (const t of b.top) { const k = `${t.dso} ${t.sym}`; leaves.set(k, (leaves.get(k) ?? 0) + t.samples * us / mine.length); }
    }
    cols.push({ server, n: per.length, per, leaves });
  }
  if (cols.length === 0) continue;
  console.log(`\n## ${sc}: µs per request, median of ${cols.map((c) => `${c.server} ${c.n}`).join(', ')} profiled clean runs\n`);
  console.log(`| category | ${cols.map((c) => c.server).join(' | ')} |`);
  console.log(`|:---|${cols.map(() => '---:').join('|')}|`);
  for (const cat of PERF_CATEGORIES) {
    const vals = cols.map((c) => median(c.per.map((p) => p[cat])));
    if (vals.every((v) => !(v >= 0.005))) continue;
    console.log(`| ${cat} | ${vals.map(f).join(' | ')} |`);
  }
  console.log(`| **the server's threads** | ${cols.map((c) => f(median(c.per.map((p) => p._server)))).join(' | ')} |`);
  console.log(`| other work on the server's core (softirq of the idle task, kernel threads) | ${cols.map((c) => f(median(c.per.map((p) => p._other)))).join(' | ')} |`);
  console.log(`| **server core, measured** | ${cols.map((c) => f(median(c.per.map((p) => p._total)))).join(' | ')} |`);
  for (const c of cols) {
    console.log(`\n${c.server}: most sampled leaf functions (µs per request, mean of the runs)`);
    for (const [k, v] of [...c.leaves].sort((a, b) => b[1] - a[1]).slice(0, 15)) console.log(`  ${v.toFixed(3)} ${k}`);
  }
}
