// per-connection heap by owner: each object is charged to the nearest owner (Socket, WebSocket, Receiver, Sender)
// found up its retainers (strong edges, first retainer, up to 6 levels); key = owner + the edge path
import { readFileSync } from 'node:fs';
const [file, nStr] = process.argv.slice(2); const N = +nStr;
const s = JSON.parse(readFileSync(file, 'utf8'));
const m = s.snapshot.meta, nf = m.node_fields, ef = m.edge_fields, nt = m.node_types[0], et = m.edge_types[0];
const W = nf.length, EW = ef.length;
const iT = nf.indexOf('type'), iN = nf.indexOf('name'), iS = nf.indexOf('self_size'), iE = nf.indexOf('edge_count');
const eT = ef.indexOf('type'), eN = ef.indexOf('name_or_index'), eTo = ef.indexOf('to_node');
const nodes = s.nodes, edges = s.edges, str = s.strings, n = nodes.length / W;
const firstRet = new Int32Array(n).fill(-1), retEdge = new Int32Array(n).fill(-1);
let e = 0;
for (let i = 0; i < n; i++) {
  const ec = nodes[i * W + iE];
  for (let k = 0; k < ec; k++, e += EW) {
    const type = et[edges[e + eT]];
    if (type === 'weak' || type === 'shortcut') continue;
    const to = edges[e + eTo] / W;
    if (firstRet[to] === -1) { firstRet[to] = i; retEdge[to] = e; }
  }
}
const OWN = new Set(['Socket', 'WebSocket', 'Receiver', 'Sender']);
const name = (i) => str[nodes[i * W + iN]], type = (i) => nt[nodes[i * W + iT]];
const ename = (e) => { const t = et[edges[e + eT]]; const v = edges[e + eN]; return t === 'element' || t === 'hidden' ? `[${t}]` : String(str[v]); };
const out = new Map(); let tot = 0;
for (let i = 0; i < n; i++) {
  const t = type(i); const sz = nodes[i * W + iS]; if (sz === 0) continue;
  let key;
  if (t === 'object' && OWN.has(name(i))) key = `${name(i)} (itself)`;
  else {
    let cur = i, path = []; key = null;
    for (let d = 0; d < 6 && firstRet[cur] !== -1; d++) {
      path.unshift(ename(retEdge[cur]));
      cur = firstRet[cur];
      if (type(cur) === 'object' && OWN.has(name(cur))) { key = `${name(cur)}.${path.join('.')} <${t === 'object' || t === 'closure' ? name(i) || t : t}>`; break; }
    }
    if (key === null) key = `? <${t}:${(name(i) || '').slice(0, 30)}>`;
  }
  const o = out.get(key) ?? [0, 0]; o[0]++; o[1] += sz; out.set(key, o);
}
const rows = [...out].filter(([, v]) => v[0] >= N * 0.5).sort((a, b) => b[1][1] - a[1][1]);
let sum = 0; const byOwner = new Map();
for (const [k, v] of rows) { sum += v[1]; const ow = k.split(/[. ]/)[0]; byOwner.set(ow, (byOwner.get(ow) ?? 0) + v[1]); console.log((v[1] / N).toFixed(0).padStart(6), (v[0] / N).toFixed(2).padStart(5), k); }
console.log('sum of per-connection rows', (sum / N).toFixed(0)); for (const [k, v] of byOwner) console.log('  owner', k, (v / N).toFixed(0));
