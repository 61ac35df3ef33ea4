import { perfBreakdown, cleanPerfMap, PERF_CATEGORIES } from '../../../dist/bench/compat/perf.js';
import { readFileSync } from 'node:fs';
const [dir, ...names] = process.argv.slice(2);
const cols = [];
for (const n of names) {
  const info = readFileSync(`${dir}/${n}.info`, 'utf8');
  const tids = /tids=(\S+)/.exec(info)[1].split(',').map(Number);
  const spid = Number(/spid=(\d+)/.exec(info)[1]);
  cleanPerfMap(`/tmp/perf-${spid}.map`);
  const load = JSON.parse(readFileSync(`${dir}/${n}.load`, 'utf8').trim().split('\n').pop());
  const b = perfBreakdown(`${dir}/${n}.data`, tids);
  const window = 3.99; const ops = load.ops_per_s * window;
  const usPerSample = 1e6 / 1999;
  cols.push({ n, b, ops, usPerSample });
}
const f = (x) => x.toFixed(2);
console.log(['category', ...cols.map((c) => c.n)].join(' | '));
for (const cat of PERF_CATEGORIES) console.log([cat, ...cols.map((c) => f((c.b.categories[cat] ?? 0) * c.usPerSample / c.ops))].join(' | '));
console.log(['server total', ...cols.map((c) => f(c.b.serverSamples * c.usPerSample / c.ops))].join(' | '));
console.log(['other on core', ...cols.map((c) => f(c.b.otherSamples * c.usPerSample / c.ops))].join(' | '));
console.log(['busy on core', ...cols.map((c) => f(c.b.busySamples * c.usPerSample / c.ops))].join(' | '));
for (const c of cols) { console.log(`\n${c.n} top (share of server samples):`); for (const t of c.b.top) console.log(`${(100 * t.samples / c.b.serverSamples).toFixed(1)}% ${t.dso} ${t.sym}`); }
