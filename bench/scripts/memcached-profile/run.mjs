// Profiles memcached and megapipe-memcached at one point of bench:memcached (one worker, text or binary protocol):
// for each repetition and server, the server pinned to CPU 0, bench/c/mc-load on CPU 1, and `perf record -C 0 -F 1999
// -g` over exactly mc-load's measured window (its phase marks), kept as OUTDIR/<server>-<rep>.{data,json} in the form
// bench/scripts/rpc-profile/breakdown.mjs reads (µs per operation then appear as "per transaction").
//   node bench/scripts/memcached-profile/run.mjs OUTDIR [CONNS=4] [PIPELINE=1] [REPS=2] [PROTOCOL=text]
// megapipe runs under node --perf-basic-prof (JIT frames named). Run it on a quiet machine; nothing here judges.
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(fileURLToPath(new URL('../../..', import.meta.url)));
const [out, conns = '4', pipeline = '1', reps = '2', protocol = 'text'] = process.argv.slice(2);
if (!out) { console.error('usage: run.mjs OUTDIR [CONNS] [PIPELINE] [REPS] [PROTOCOL]'); process.exit(64); }
mkdirSync(out, { recursive: true });
const HZ = 1999;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitPort(port) {
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise((res) => { const s = connect(port, '127.0.0.1'); s.on('connect', () => { s.destroy(); res(true); }); s.on('error', () => res(false)); });
    if (ok) return;
    await sleep(50);
  }
  throw new Error(`nothing listens on ${port}`);
}

const servers = {
  memcached: (port) => ['taskset', '-c', '0', 'memcached', '-t', '1', '-p', String(port), '-l', '127.0.0.1', '-m', '1024', '-U', '0', '-c', '4096', '-u', 'root'],
  megapipe: (port) => ['taskset', '-c', '0', process.execPath, '--perf-basic-prof', join(root, 'dist/apps/memcached/cli.js'), '-t', '1', '-p', String(port), '-l', '127.0.0.1', '-m', '1024', '-U', '0', '-c', '4096'],
};

let port = 21000 + Math.floor(Math.random() * 20000);
for (let rep = 1; rep <= Number(reps); rep++) {
  for (const [name, argv] of Object.entries(servers)) {
    const p = port++;
    const a = argv(p);
    const server = spawn(a[0], a.slice(1), { stdio: 'ignore' });
    await waitPort(p);
    const data = join(out, `${name}-${rep}.data`);
    const load = spawn('taskset', ['-c', '1', join(root, 'bench/c/bin/mc-load'), '--port', String(p), '--conns', conns, '--pipeline', pipeline,
      '--duration', '5', '--warmup', '1', '--protocol', protocol, '--seed', String(rep)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let perf, stdout = '';
    load.stdout.on('data', (d) => { stdout += d; });
    load.stderr.setEncoding('utf8');
    load.stderr.on('data', (d) => {
      if (d.includes('phase measure')) perf = spawn('perf', ['record', '-C', '0', '-F', String(HZ), '-g', '-o', data], { stdio: 'ignore' });
      if (d.includes('phase end') && perf) perf.kill('SIGINT');
    });
    const code = await new Promise((r) => load.on('exit', r));
    if (perf && perf.exitCode === null) await new Promise((r) => perf.on('exit', r));
    server.kill('SIGTERM');
    await new Promise((r) => server.on('exit', r));
    // taskset execs the server: its pid is the server's
    const res = JSON.parse(stdout.trim().split('\n').pop());
    writeFileSync(join(out, `${name}-${rep}.json`), JSON.stringify({ serverPid: server.pid, perfHz: HZ, load: { txns: res.ops }, mcload: res, exit: code }));
    console.log(`${name} rep ${rep}: exit ${code}, ${Math.round(res.ops_per_s)} ops/s`);
  }
}
