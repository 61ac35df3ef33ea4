// node drv.mjs ROOT register(1|0) N [snapdir]
import { spawn } from 'node:child_process';
const [root, reg, nStr, snapdir] = process.argv.slice(2);
const N = +nStr;
const env = { ...process.env, MEGAPIPE_REGISTER: reg };
if (snapdir) env.MEM_SNAP = snapdir;
const srv = spawn('taskset', ['-c', '0', process.execPath, '--expose-gc', '--import', 'megapipe/register', '--import', '/tmp/compat2-mem/memhook.mjs', `${root}/dist/bench/servers/compat-app.js`, '--app', 'ws', '--port', '0'], { cwd: root, env, stdio: ['ignore', 'pipe', 'inherit'] });
let buf = ''; const lines = []; let waiters = [];
srv.stdout.on('data', (d) => { buf += d; let i; while ((i = buf.indexOf('\n')) >= 0) { lines.push(buf.slice(0, i)); buf = buf.slice(i + 1); waiters.forEach((w) => w()); } });
const waitLine = (pred) => new Promise((res) => { const chk = () => { const l = lines.find(pred); if (l) { lines.splice(lines.indexOf(l), 1); waiters = waiters.filter((w) => w !== chk); res(l); } }; waiters.push(chk); chk(); });
const port = +(await waitLine((l) => l.startsWith('listening'))).split(':').pop();
const clients = [0, 1].map(() => spawn('taskset', ['-c', '1', process.execPath, `${root}/dist/bench/compat/ws-client.js`, '--client'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
const ask = (c, cmd) => new Promise((res) => { c.once('message', res); c.send(cmd); });
const mem = async () => { process.kill(srv.pid, 'SIGUSR2'); return JSON.parse(await waitLine((l) => l.startsWith('{"mem"'))).mem; };
const open = (c, k, total) => ask(c, { cmd: 'open', host: '127.0.0.1', port, total, srcFirst: 2 + 4 * k, srcIps: 4, concurrency: 64, timeoutMs: 120000 });
console.log('warm', JSON.stringify(await open(clients[0], 0, 1000)).slice(0, 80));
await ask(clients[0], { cmd: 'echo', concurrency: 64, timeoutMs: 60000 });
await ask(clients[0], { cmd: 'close', timeoutMs: 60000 });
await new Promise((r) => setTimeout(r, 1000));
const a = await mem();
const rs = await Promise.all(clients.map((c, k) => open(c, k, N / 2)));
console.log('open', rs.map((r) => r.ok));
await new Promise((r) => setTimeout(r, 1000));
const b = await mem();
const per = (x, y) => ((y - x) / N).toFixed(0);
console.log(`rss ${per(a.rss, b.rss)} heapUsed ${per(a.heapUsed, b.heapUsed)} heapTotal ${per(a.heapTotal, b.heapTotal)} phys ${per(a.v8.total_physical_size, b.v8.total_physical_size)} malloced ${per(a.v8.malloced_memory, b.v8.malloced_memory)} external ${per(a.external, b.external)} ab ${per(a.arrayBuffers, b.arrayBuffers)}`);
for (const s of b.spaces) { const s0 = a.spaces.find((x) => x[0] === s[0]); console.log(' ', s[0], 'used', per(s0[1], s[1]), 'phys', per(s0[2], s[2])); }
// maps: by name, and anon by start
const key = (m) => m.name === '[anon]' ? `anon@${m.start}` : m.name;
const A = new Map(a.maps.map((m) => [key(m), m]));
const diffs = [];
for (const m of b.maps) { const o = A.get(key(m)); const d = m.rss - (o ? o.rss : 0); if (Math.abs(d) > 64 * 1024) diffs.push([key(m), m.size, d]); }
for (const m of a.maps) if (!b.maps.find((x) => key(x) === key(m)) && m.rss > 64 * 1024) diffs.push([key(m) + ' (gone)', m.size, -m.rss]);
diffs.sort((x, y) => y[2] - x[2]);
let tot = 0; for (const d of diffs) { tot += d[2]; console.log('  map', d[0], 'size', (d[1] / 1024).toFixed(0) + 'K', 'drss/conn', (d[2] / N).toFixed(0)); }
console.log('sum listed', (tot / N).toFixed(0), 'snaps', a.snap, b.snap);
await Promise.all(clients.map((c) => ask(c, { cmd: 'close', timeoutMs: 60000 })));
clients.forEach((c) => c.disconnect());
srv.kill('SIGTERM');
