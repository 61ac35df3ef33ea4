// Legacy servers on megapipe (issue 17), a first cut: the same unmodified node:http hello-world server on node:net and
// under `--import megapipe/register`, one core each (taskset), side by side in one run, loaded by keep-alive clients
// in this process on the other core. Reports requests per second and per server CPU-second (utime + stime of the
// server process, from /proc/PID/stat). Every response body is checked. Not yet: Express, Fastify, ws, Connection:
// close, memory per idle ws connection, serve() against cluster (see BENCHMARKS.md when they land).
//
//   node dist/bench/compat.js [--duration 5] [--conns 64] [--rounds 2]
import { spawn, type ChildProcess } from 'node:child_process';
import * as http from 'node:http';
import { readFileSync } from 'node:fs';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { duration: { type: 'string', default: '5' }, conns: { type: 'string', default: '64' }, rounds: { type: 'string', default: '2' } } });
const durationMs = Number(values.duration) * 1000, conns = Number(values.conns), rounds = Number(values.rounds);
const root = fileURLToPath(new URL('../../', import.meta.url));
const APP = `import http from 'node:http'; const s = http.createServer((q, r) => r.end('hello world')); s.listen(0, '127.0.0.1', () => console.log(s.address().port));`;

function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'latin1');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(rest[11]) + Number(rest[12])) / 100;   // utime, stime in clock ticks (USER_HZ 100)
}

async function start(register: boolean): Promise<{ proc: ChildProcess; port: number }> {
  const proc = spawn('taskset', ['-c', '0', process.execPath, '--import', 'megapipe/register', '--input-type=module', '-e', APP], {
    cwd: root, env: { ...process.env, MEGAPIPE_REGISTER: register ? '1' : '0' }, stdio: ['ignore', 'pipe', 'inherit'],
  });
  const [line] = await once(proc.stdout!, 'data') as [Buffer];
  return { proc, port: Number(line.toString().trim()) };
}

async function load(port: number): Promise<number> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: conns });
  const end = Date.now() + durationMs;
  let done = 0;
  const lane = async (): Promise<void> => {
    while (Date.now() < end) {
      await new Promise<void>((resolve, reject) => {
        http.get({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
          let body = '';
          res.setEncoding('latin1');
          res.on('data', (d: string) => { body += d; });
          res.on('end', () => { if (body !== 'hello world') reject(new Error(`bad body ${JSON.stringify(body)}`)); else { done++; resolve(); } });
        }).on('error', reject);
      });
    }
  };
  await Promise.all(Array.from({ length: conns }, lane));
  agent.destroy();
  return done;
}

const rows: string[] = [];
for (let r = 0; r < rounds; r++) {
  for (const [name, register] of [['node:net', false], ['megapipe', true]] as const) {
    const { proc, port } = await start(register);
    await load(port);   // warm-up run, not counted (JIT)
    const cpu0 = cpuSeconds(proc.pid!);
    const t0 = performance.now();
    const n = await load(port);
    const secs = (performance.now() - t0) / 1000, cpu = cpuSeconds(proc.pid!) - cpu0;
    proc.kill(); await once(proc, 'exit');
    rows.push(`${r}\t${name}\t${Math.round(n / secs)} req/s\t${cpu.toFixed(2)} CPU-s\t${Math.round(n / cpu)} req/CPU-s`);
    console.log(rows[rows.length - 1]);
  }
}
console.log(`# taskset -c 1 node dist/bench/compat.js --duration ${values.duration} --conns ${conns} --rounds ${rounds}   (server pinned to CPU 0, this client to CPU 1)`);
