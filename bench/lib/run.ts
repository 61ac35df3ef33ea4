// One measured run: start a pinned server, drive it with a pinned rpc-load, sample the server cores and the
// server processes exactly over rpc-load's measured window, stop the server, and put it all in one record.
import { freePort } from './paths.js';
import { processTree, sample, windowCost, type Sample, type WindowCost } from './procfs.js';
import { runLoad, startServer, type LoadOptions, type LoadResult, type ServerSpec } from './proc.js';
import { countSyscalls, type SyscallCounter } from './syscalls.js';
import { disturbance, fatalProblems, FOREIGN_MAX_CORES, SATURATED, stateOf, STEAL_MAX, type RunState } from './verdict.js';

export interface RunOptions {
  /** taskset CPU lists; the cost is charged to the server cores. */
  serverCpu: string;
  clientCpu: string;
  host: string;
  workers: number;
  /** Count the server's system calls with perf (slightly inflates its CPU figures). */
  syscalls: boolean;
  /** Foreign CPU (in cores) during the window above which a run is marked noisy (default 0.1). */
  foreignMaxCores?: number;
  /** Steal of any server or client core (fraction of its time) above which a run is marked stolen (default 0.05). */
  stealMax?: number;
  load: Omit<LoadOptions, 'host' | 'port' | 'cpu'>;
  /** Called at rpc-load's phase marks, after the CPU sample, with the server's pid (e.g. to start and stop a
   *  profiler, or to look at the server while it is loaded). */
  onMeasureStart?: (serverPid: number) => void;
  onMeasureEnd?: (serverPid: number) => void;
}

export interface RunRecord {
  server: string;
  serverArgv: string[];
  loadArgv: string[];
  /** Clean: no problem but client saturation, an undisturbed window. Only clean runs enter tables and verdicts. */
  ok: boolean;
  state: RunState;
  /** Why the run is not ok (or warnings about it). */
  problems: string[];
  /** Other processes used more than `foreignMaxCores` during the window: the figures are suspect, re-run. */
  noisy: boolean;
  /** The hypervisor stole more than `stealMax` of a server or client core during the window: re-run. */
  stolen: boolean;
  load?: LoadResult;
  cost?: WindowCost;
  /** Server's own counters summed over its JSON lines (accepted, bytes, enters, completions, ...). */
  serverCounters: Record<string, number>;
  serverJson: Record<string, unknown>[];
  /** io_uring_enter calls per transaction, when the server reports `enters`. */
  entersPerTxn?: number;
  /** Event-loop wake-ups of the channels (eventfd readiness) per transaction, when the server reports `wakeups`. */
  wakeupsPerTxn?: number;
  /** Calls from the addon into JavaScript (completion batches) per transaction, when the server reports `batches`. */
  crossingsPerTxn?: number;
  /** All system calls per transaction (perf), when counted. */
  syscallsPerTxn?: number;
}

/** Expands a taskset CPU list ("0", "0-1", "0,2") into CPU numbers. */
export function parseCpuList(list: string): number[] {
  const out: number[] = [];
  for (const part of list.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) throw new RangeError(`not a CPU list: ${list}`);
    for (let c = Number(m[1]); c <= Number(m[2] ?? m[1]); c++) out.push(c);
  }
  return out;
}

function sumCounters(json: Record<string, unknown>[]): Record<string, number> {
  const sums: Record<string, number> = {};
  for (const line of json) {
    for (const [k, v] of Object.entries(line)) {
      if (typeof v === 'number' && k !== 'worker' && k !== 'cpu') sums[k] = (sums[k] ?? 0) + v;
    }
  }
  return sums;
}

/** Runs `spec` once under the given load and returns the record (never throws for a failed run). */
export async function runOnce(spec: ServerSpec, o: RunOptions): Promise<RunRecord> {
  const rec: RunRecord = { server: spec.name, serverArgv: [], loadArgv: [], ok: false, state: 'failed', problems: [], noisy: false, stolen: false, serverCounters: {}, serverJson: [] };
  let server;
  try {
    server = await startServer(spec, { cpu: o.serverCpu, host: o.host, port: await freePort(o.host), workers: o.workers });
  } catch (e) {
    rec.problems.push((e as Error).message);
    return rec;
  }
  rec.serverArgv = server.argv;
  const pids = processTree(server.pid);
  let counter: SyscallCounter | undefined;
  if (o.syscalls) counter = await countSyscalls(pids);
  let a: Sample | undefined, b: Sample | undefined;
  let loadPids: number[] | undefined;
  const load = await runLoad({ ...o.load, host: server.host, port: server.port, cpu: o.clientCpu }, {
    onSpawn: (pid) => { loadPids = [pid]; },
    onMeasureStart: () => { a = sample(pids, loadPids); o.onMeasureStart?.(server.pid); },
    onMeasureEnd: () => { b = sample(pids, loadPids); o.onMeasureEnd?.(server.pid); },
  });
  const syscalls = counter ? await counter.stop() : undefined;
  const stopped = await server.stop();
  rec.loadArgv = load.argv;
  rec.load = load.result;
  rec.serverJson = stopped.json;
  rec.serverCounters = sumCounters(stopped.json);

  if (!load.result) rec.problems.push(`rpc-load printed no result (exit ${load.exitCode}): ${load.stderrTail.trim()}`);
  else {
    if (load.result.mismatches > 0) rec.problems.push(`${load.result.mismatches} response mismatches: ${load.stderrTail.trim()}`);
    if (load.result.errors > 0) rec.problems.push(`${load.result.errors} connection errors`);
    if (load.result.txns === 0) rec.problems.push('no transactions completed');
  }
  if (load.exitCode !== 0) rec.problems.push(`rpc-load exit code ${load.exitCode}`);
  if (stopped.killed) rec.problems.push('server ignored SIGTERM and was killed');
  else if (stopped.exitCode !== 0) rec.problems.push(`server exit ${stopped.exitCode ?? stopped.signal}: ${stopped.stderrTail.trim().slice(-500)}`);
  if (stopped.json.length === 0) rec.problems.push('server printed no JSON counters on SIGTERM');

  if (load.result && a && b) {
    const txns = load.result.txns;
    rec.cost = windowCost(a, b, txns, parseCpuList(o.serverCpu), parseCpuList(o.clientCpu));
    const all = load.result.all_txns;
    if (rec.serverCounters.enters !== undefined && all > 0) rec.entersPerTxn = rec.serverCounters.enters / all;
    if (rec.serverCounters.wakeups !== undefined && all > 0) rec.wakeupsPerTxn = rec.serverCounters.wakeups / all;
    if (rec.serverCounters.batches !== undefined && all > 0) rec.crossingsPerTxn = rec.serverCounters.batches / all;
    if (syscalls !== undefined && all > 0) rec.syscallsPerTxn = syscalls / all;
    if (rec.cost.clientCoreBusy > 0.95) rec.problems.push(SATURATED);
    const d = disturbance(rec.cost, { foreignMaxCores: o.foreignMaxCores ?? FOREIGN_MAX_CORES, stealMax: o.stealMax ?? STEAL_MAX });
    rec.noisy = d.foreign;
    rec.stolen = d.steal;
    rec.problems.push(...d.problems);
  } else if (load.result) {
    rec.problems.push('no CPU window sampled (phase marks missing)');
  }
  // Every problem but client saturation (a property of the point, shown in the table) makes the run unusable:
  // connection errors included — a run that dropped connections did different work from its neighbours.
  const fatal = fatalProblems(rec.problems).length > 0;
  rec.ok = !fatal && !rec.noisy && !rec.stolen && rec.load !== undefined && rec.cost !== undefined;
  rec.state = stateOf(rec);
  return rec;
}
