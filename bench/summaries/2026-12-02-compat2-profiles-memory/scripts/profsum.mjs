// self time by function and by url from a .cpuprofile
import { readFileSync } from 'node:fs';
const p = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const byId = new Map(p.nodes.map((n) => [n.id, n]));
const self = new Map(); const total = p.samples.length;
for (const s of p.samples) self.set(s, (self.get(s) ?? 0) + 1);
const byFn = new Map(), byUrl = new Map();
for (const [id, c] of self) { const n = byId.get(id); const f = n.callFrame; const k = `${f.functionName || '(anon)'} ${f.url.replace(/.*\/(dist|node_modules)\//, '$1/')}:${f.lineNumber}`; byFn.set(k, (byFn.get(k) ?? 0) + c); const u = f.url.replace(/.*\/(dist|node_modules)\//, '$1/') || f.functionName; byUrl.set(u, (byUrl.get(u) ?? 0) + c); }
const pr = (m, n) => [...m].sort((a, b) => b[1] - a[1]).slice(0, n).forEach(([k, c]) => console.log((100 * c / total).toFixed(2).padStart(6) + '%', k));
console.log('samples', total); pr(byUrl, 25); console.log('---'); pr(byFn, 40);
