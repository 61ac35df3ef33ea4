// One measured run of any echo server outside the experiments: quick A/B checks and profiles. The same guards as
// the harnesses (lib/run.ts): the server pinned to --server-cpu, rpc-load to --client-cpu, CPU sampled exactly at
// rpc-load's phase marks, rpc-load's exit code, errors and mismatches checked, the server's exit checked, every
// child bounded in time, foreign load and steal flagged. With --perf FILE, `perf record -C <server CPU> -g` runs
// over exactly the measured window. bench/scripts/one-run.sh calls this.
//
//   node dist/bench/one-run.js [options] -- SERVER-COMMAND...
import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { refuseIfBusy } from './lib/guard.js';
import { ensureCPrograms, pinSelf } from './lib/paths.js';
import { runOnce } from './lib/run.js';
import { fmt } from './lib/stats.js';
import { FOREIGN_MAX_CORES, STEAL_MAX } from './lib/verdict.js';

const usage = `usage: node dist/bench/one-run.js [options] -- SERVER-COMMAND...
One run of SERVER-COMMAND under rpc-load, with the harness's guards. The command gets "--port {PORT} --host {HOST}"
appended unless it names {PORT} itself; it must print "listening on HOST:PORT" when ready and, on SIGTERM, its JSON
counters (one line per worker; "enters" gives io_uring_enter calls per transaction), then exit 0.

  --cwd DIR         working directory of the server (default: the repository root), e.g. another build
  --txns N          transactions per connection, 0 = persistent (default 0)
  --conns N         connections (default 256)
  --size N          message bytes (default 64)
  --duration S      measured seconds (default 5)
  --warmup S        unmeasured seconds before (default 1)
  --server-cpu L    taskset CPU list of the server (default 0)
  --client-cpu L    taskset CPU list of rpc-load and this process (default 1)
  --perf FILE       perf record -C <server CPU> -F 1999 -g -o FILE over exactly the measured window (with --json:
                    the record adds serverPid and perfHz)
  --foreign-max C   foreign CPU, in cores, that makes the run disturbed (default ${FOREIGN_MAX_CORES})
  --steal-max F     steal of a server or client core, fraction of the window, that makes it disturbed (default ${STEAL_MAX})
  --json            print the whole run record as JSON
  --force           run even if the machine is busy
Exit code: 0 clean, 1 failed (errors, mismatches, a non-zero exit, no result), 3 disturbed (foreign load or steal), 64 usage.`;

function die(msg: string): never {
  process.stderr.write(`one-run: ${msg}\n`);
  process.exit(64);
}

let parsed;
try {
  parsed = parseArgs({
    allowPositionals: true,
    options: {
      cwd: { type: 'string' }, txns: { type: 'string', default: '0' }, conns: { type: 'string', default: '256' },
      size: { type: 'string', default: '64' }, duration: { type: 'string', default: '5' }, warmup: { type: 'string', default: '1' },
      'server-cpu': { type: 'string', default: '0' }, 'client-cpu': { type: 'string', default: '1' }, perf: { type: 'string' },
      'foreign-max': { type: 'string', default: String(FOREIGN_MAX_CORES) }, 'steal-max': { type: 'string', default: String(STEAL_MAX) },
      json: { type: 'boolean', default: false }, force: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h', default: false },
    },
  });
} catch (e) {
  die(`${(e as Error).message}\n${usage}`);
}
const v = parsed.values;
if (v.help) { process.stdout.write(usage + '\n'); process.exit(0); }
const cmd = parsed.positionals;
if (cmd.length === 0) die(`no server command\n${usage}`);
const num = (name: string, s: string, lo: number, hi: number) => {
  const n = Number(s);
  if (!Number.isFinite(n) || n < lo || n > hi) die(`--${name} must be a number in ${lo}..${hi} (got ${s})`);
  return n;
};
const txns = num('txns', v.txns!, 0, 1e9), conns = num('conns', v.conns!, 1, 15000), size = num('size', v.size!, 1, 1 << 20);
const durationS = num('duration', v.duration!, 0.1, 600), warmupS = num('warmup', v.warmup!, 0, 60);
const foreignMaxCores = num('foreign-max', v['foreign-max']!, 0, 64), stealMax = num('steal-max', v['steal-max']!, 0, 1);
const serverCpu = v['server-cpu']!, clientCpu = v['client-cpu']!;
const argv = cmd.some((a) => a.includes('{PORT}')) ? cmd : [...cmd, '--port', '{PORT}', '--host', '{HOST}'];

ensureCPrograms(['rpc-load']);
await refuseIfBusy(v.force!);
pinSelf(clientCpu);

let perf: ChildProcess | undefined;
let perfExit: Promise<string | undefined> | undefined;
let serverPid: number | undefined;
/** perf's sampling frequency: a sample stands for 1e6 / PERF_HZ µs of a CPU (bench/scripts/rpc-profile). */
const PERF_HZ = 1999;
const rec = await runOnce({ name: 'server', cmd: argv, cwd: v.cwd ? resolve(v.cwd) : undefined }, {
  serverCpu, clientCpu, host: '127.0.0.1', workers: 1, syscalls: false, foreignMaxCores, stealMax,
  load: { conns, txns, size, durationS, warmupS, srcIps: 16, pipeline: 1, rstClose: false },
  onMeasureStart: v.perf ? (pid) => {
    serverPid = pid;
    perf = spawn('taskset', ['-c', clientCpu, 'perf', 'record', '-C', serverCpu, '-F', String(PERF_HZ), '-g', '-o', v.perf!], { stdio: ['ignore', 'ignore', 'inherit'] });
    // perf stops on SIGINT (exit 0, or killed by it); anything else is worth a line
    perfExit = new Promise((res) => {
      perf!.once('error', (e) => res(`perf could not start: ${e.message}`));
      perf!.once('exit', (code, sig) => res(code === 0 || sig === 'SIGINT' ? undefined : `perf record exit ${code ?? sig}`));
    });
  } : undefined,
  onMeasureEnd: () => { perf?.kill('SIGINT'); },
});
if (perf) {
  perf.kill('SIGINT'); // in case the window never closed
  const bound = setTimeout(() => perf!.kill('SIGKILL'), 30000);
  const problem = await perfExit;
  clearTimeout(bound);
  if (problem) process.stderr.write(`one-run: ${problem} (the profile in ${v.perf} may be incomplete)\n`);
}

if (v.json) process.stdout.write(JSON.stringify(v.perf ? { ...rec, serverPid, perfHz: PERF_HZ } : rec, null, 1) + '\n');
else {
  const c = rec.cost, l = rec.load;
  process.stdout.write(`server: ${rec.serverArgv.join(' ')}${v.cwd ? ` (in ${v.cwd})` : ''}\nload:   ${rec.loadArgv.join(' ')}\n`);
  if (l) process.stdout.write(`rpc-load: ${JSON.stringify(l)}\n`);
  if (c && l) {
    process.stdout.write(`txn/s ${fmt(l.tps)}; server-core µs/txn ${fmt(c.coreUsPerTxn)} (busy ${fmt(c.serverCoreBusy * 100, 2)}%, steal excluded); ` +
      `proc µs/txn ${fmt(c.procUsPerTxn)}; enters/txn ${fmt(rec.entersPerTxn)}; wake-ups/txn ${fmt(rec.wakeupsPerTxn)}; crossings/txn ${fmt(rec.crossingsPerTxn)}; client busy ${fmt(c.clientCoreBusy * 100, 2)}%\n` +
      `steal: server cores ${fmt(c.serverCoreSteal * 100, 2)}%, client cores ${fmt(c.clientCoreSteal * 100, 2)}%; foreign load ${fmt(c.foreignCores, 2)} cores\n`);
  }
  process.stdout.write(`server counters: ${JSON.stringify(rec.serverCounters)}\n`);
  process.stdout.write(`state: ${rec.state}${rec.problems.length ? ` — ${rec.problems.join('; ')}` : ''}\n`);
}
process.exit(rec.state === 'clean' ? 0 : rec.state === 'failed' ? 1 : 3);
