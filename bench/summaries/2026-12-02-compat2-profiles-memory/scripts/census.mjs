import { heapCensus, perConnection } from '/work/wt-compat2/dist/bench/compat/heap.js';
const [a, b, n] = process.argv.slice(2);
const rows = perConnection(heapCensus(a), heapCensus(b), +n);
let tot = 0; for (const r of rows) tot += r.bytes;
console.log('total', tot.toFixed(0));
for (const r of rows.slice(0, 40)) console.log(r.bytes.toFixed(1).padStart(8), r.count.toFixed(2).padStart(6), r.key);
