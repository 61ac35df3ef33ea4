// Child processes of a benchmark: a server pinned with taskset (wait for its "listening on HOST:PORT" line,
// stop it with SIGTERM, collect its final JSON lines) and the rpc-load generator pinned to the other core.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { C_BIN, ROOT } from './paths.js';

/** A server the harness can run: argv with {PORT}, {HOST}, {CPU} and {WORKERS} substituted. */
export interface ServerSpec {
  /** Short name used in flags, tables and charts. */
  name: string;
  cmd: string[];
  env?: Record<string, string>;
  /** A file (relative to the repository root) that must exist, e.g. a compiled script; else it is skipped. */
  requires?: string;
  /** One line on what it is, for --help and the report. */
  description?: string;
  /** Working directory (default: the repository root). */
  cwd?: string;
}

export interface Substitutions {
  PORT: number;
  HOST: string;
  CPU: string;
  WORKERS: number;
}

export function substitute(argv: string[], s: Substitutions): string[] {
  return argv.map((a) => a.replace(/\{(PORT|HOST|CPU|WORKERS)\}/g, (_, k: keyof Substitutions) => String(s[k])));
}

export interface StopResult {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  /** JSON objects the server printed on stdout after its listening line (one per worker for megapipe). */
  json: Record<string, unknown>[];
  stderrTail: string;
  /** True when it did not exit within the grace period and was killed. */
  killed: boolean;
}

export interface RunningServer {
  spec: ServerSpec;
  pid: number;
  host: string;
  port: number;
  argv: string[];
  /** The JSON lines printed so far (growing while it runs), e.g. replies to a signal. */
  readonly json: readonly Record<string, unknown>[];
  /** Sends SIGTERM, waits up to `graceMs` for the exit (then SIGKILL), and returns what it printed. */
  stop(graceMs?: number): Promise<StopResult>;
}

/** Keeps the last `max` characters of a stream. */
class Tail {
  text = '';
  constructor(private readonly max = 4000) {}
  push(s: string) { this.text = (this.text + s).slice(-this.max); }
}

function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((res) => child.once('exit', () => res()));
}

/** Starts `spec` under `taskset -c cpu` and resolves once it prints its listening line. */
export async function startServer(spec: ServerSpec, opts: { cpu: string; host: string; port: number; workers?: number; startTimeoutMs?: number }): Promise<RunningServer> {
  const argv = substitute(spec.cmd, { PORT: opts.port, HOST: opts.host, CPU: opts.cpu, WORKERS: opts.workers ?? 1 });
  const child = spawn('taskset', ['-c', opts.cpu, ...argv], {
    cwd: spec.cwd ?? ROOT,
    env: { ...process.env, ...spec.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stderr = new Tail();
  child.stderr!.setEncoding('utf8').on('data', (d: string) => stderr.push(d));
  const json: Record<string, unknown>[] = [];
  let listening: { host: string; port: number } | undefined;
  let onListening: (() => void) | undefined;
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const m = /listening on (\S+):(\d+)/.exec(line);
    if (m && !listening) {
      listening = { host: m[1]!, port: Number(m[2]) };
      onListening?.();
      return;
    }
    const t = line.trim();
    if (t.startsWith('{')) {
      try { json.push(JSON.parse(t) as Record<string, unknown>); } catch { /* not JSON: ignore */ }
    }
  });
  const stdoutClosed = new Promise<void>((res) => child.stdout!.once('close', () => res()));

  await new Promise<void>((res, rej) => {
    const timer = setTimeout(() => fail(`did not print "listening on HOST:PORT" within ${opts.startTimeoutMs ?? 10000} ms`), opts.startTimeoutMs ?? 10000);
    const fail = (why: string) => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      rej(new Error(`server ${spec.name} (${argv.join(' ')}) ${why}\n${stderr.text}`));
    };
    child.once('error', (e) => fail(`could not start: ${e.message}`));
    child.once('exit', (code, sig) => { if (!listening) fail(`exited (${code ?? sig}) before listening`); });
    onListening = () => { clearTimeout(timer); res(); };
    if (listening) onListening();
  });

  return {
    spec,
    pid: child.pid!,
    host: listening!.host,
    port: listening!.port,
    argv,
    json,
    async stop(graceMs = 5000): Promise<StopResult> {
      let killed = false;
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => { killed = true; child.kill('SIGKILL'); }, graceMs);
        await exited(child);
        clearTimeout(timer);
      }
      await stdoutClosed;
      return { exitCode: child.exitCode, signal: child.signalCode, json, stderrTail: stderr.text, killed };
    },
  };
}

/** Options of one rpc-load run (see bench/c/rpc-load.c --help). */
export interface LoadOptions {
  host: string;
  port: number;
  conns: number;
  /** Transactions per connection; 0 = persistent connections. */
  txns: number;
  size: number;
  durationS: number;
  warmupS: number;
  pipeline?: number;
  srcIps?: number;
  rstClose?: boolean;
  maxTxns?: number;
  /** taskset CPU list for the load generator. */
  cpu: string;
  /** The load generator in bench/c/bin/ (default rpc-load; ws-load takes the same flags and prints the same JSON). */
  program?: 'rpc-load' | 'ws-load';
}

/** rpc-load's JSON line. */
export interface LoadResult {
  txns: number;
  seconds: number;
  tps: number;
  p50_us: number;
  p90_us: number;
  p99_us: number;
  p999_us: number;
  max_us: number;
  mean_us: number;
  connects: number;
  errors: number;
  mismatches: number;
  /** Including warm-up: the denominator for lifetime counters such as a server's `enters`. */
  all_txns: number;
  bytes_in: number;
}

export interface LoadRun {
  result?: LoadResult;
  exitCode: number | null;
  argv: string[];
  stderrTail: string;
}

export function loadArgv(o: LoadOptions): string[] {
  const a = [join(C_BIN, o.program ?? 'rpc-load'), '--host', o.host, '--port', String(o.port), '--conns', String(o.conns),
    '--txns', String(o.txns), '--size', String(o.size), '--duration', String(o.durationS), '--warmup', String(o.warmupS),
    '--pipeline', String(o.pipeline ?? 1)];
  if (o.srcIps) a.push('--src-ips', String(o.srcIps));
  if (o.rstClose) a.push('--rst-close');
  if (o.maxTxns) a.push('--max-txns', String(o.maxTxns));
  return a;
}

/** Runs rpc-load pinned to `o.cpu`; calls the hooks when it starts (with its pid) and when its measured window opens and closes. */
export async function runLoad(o: LoadOptions, hooks: { onMeasureStart?: () => void; onMeasureEnd?: () => void; onSpawn?: (pid: number) => void } = {}): Promise<LoadRun> {
  const argv = loadArgv(o);
  const child = spawn('taskset', ['-c', o.cpu, ...argv], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  // (taskset execs rpc-load, so this pid is rpc-load's: its own CPU can be sampled beside the server's)
  if (child.pid !== undefined) hooks.onSpawn?.(child.pid);
  const stderr = new Tail();
  let stdout = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
  createInterface({ input: child.stderr! }).on('line', (line) => {
    if (line === 'rpc-load: phase measure') hooks.onMeasureStart?.();
    else if (line === 'rpc-load: phase end') hooks.onMeasureEnd?.();
    else stderr.push(line + '\n');
  });
  // rpc-load stops itself; this only guards against a wedged process.
  const limitMs = (o.durationS + o.warmupS) * 1000 + 15000;
  const timer = setTimeout(() => child.kill('SIGKILL'), limitMs);
  const stdoutClosed = new Promise<void>((res) => child.stdout!.once('close', () => res()));
  const stderrClosed = new Promise<void>((res) => child.stderr!.once('close', () => res()));
  const exitCode = await new Promise<number | null>((res) => {
    child.once('error', (e) => { stderr.push(String(e) + '\n'); res(null); });
    child.once('exit', (code) => res(code));
  });
  clearTimeout(timer);
  await Promise.all([stdoutClosed, stderrClosed]);
  let result: LoadResult | undefined;
  const last = stdout.trim().split('\n').pop() ?? '';
  try { result = JSON.parse(last) as LoadResult; } catch { /* reported through exitCode/stderr */ }
  return { result, exitCode, argv, stderrTail: stderr.text };
}
