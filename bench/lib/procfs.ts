// CPU accounting from /proc: per-core busy time (/proc/stat) and a process tree's own CPU time and context
// switches (/proc/PID/stat, /proc/PID/task/TID/status). Linux only; every reader returns zeros elsewhere.
import { readFileSync, readdirSync } from 'node:fs';

/** Clock ticks per second of /proc/stat and /proc/PID/stat (USER_HZ: 100 on every Linux ABI that matters). */
export const USER_HZ = 100;

/** One core's counters from its `cpuN` line of /proc/stat, in ticks. */
export interface CoreTicks {
  /** Time the core ran something of this guest: user, nice, system, irq, softirq. Includes softirq work
   *  done on the core for any process, which a process's own CPU time misses. Excludes steal: on a VM the
   *  hypervisor ran another guest then, and that is neither the server's cost nor the machine's. */
  busy: number;
  /** Time the vCPU was runnable but the hypervisor ran something else (a disturbance, reported apart). */
  steal: number;
  softirq: number;
  irq: number;
  total: number;
}

/** Reads every `cpuN` line of /proc/stat; index N holds core N. */
export function readCoreTicks(): CoreTicks[] {
  let text: string;
  try { text = readFileSync('/proc/stat', 'utf8'); } catch { return []; }
  return parseCoreTicks(text);
}

/** The `cpuN` lines of a /proc/stat text; index N holds core N. */
export function parseCoreTicks(text: string): CoreTicks[] {
  const cores: CoreTicks[] = [];
  for (const line of text.split('\n')) {
    const m = /^cpu(\d+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const f = m[2]!.trim().split(/\s+/).map(Number);
    // user nice system idle iowait irq softirq steal guest guest_nice (guest time is already in user/nice)
    const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = f;
    const busy = user + nice + system + irq + softirq;
    cores[Number(m[1])] = { busy, steal, softirq, irq, total: busy + steal + idle + iowait };
  }
  return cores;
}

/** Busy fraction of each core between two readings (0 when a core has no ticks in between); steal excluded. */
export function busyFractions(a: CoreTicks[], b: CoreTicks[]): number[] {
  return fractions(a, b, (t) => t.busy);
}

/** Steal fraction of each core between two readings: the share of its time the hypervisor gave to others. */
export function stealFractions(a: CoreTicks[], b: CoreTicks[]): number[] {
  return fractions(a, b, (t) => t.steal);
}

function fractions(a: CoreTicks[], b: CoreTicks[], f: (t: CoreTicks) => number): number[] {
  return b.map((end, i) => {
    const start = a[i];
    if (!start) return 0;
    const total = end.total - start.total;
    return total > 0 ? (f(end) - f(start)) / total : 0;
  });
}

/** Sum of the given cores' counters. */
export function sumCores(ticks: CoreTicks[], cpus: number[]): CoreTicks {
  const s: CoreTicks = { busy: 0, steal: 0, softirq: 0, irq: 0, total: 0 };
  for (const c of cpus) {
    const t = ticks[c];
    if (!t) continue;
    s.busy += t.busy; s.steal += t.steal; s.softirq += t.softirq; s.irq += t.irq; s.total += t.total;
  }
  return s;
}

/** A process's own CPU (all its threads: /proc/PID/stat sums the thread group) and context switches. */
export interface ProcTicks {
  /** utime + stime, ticks. */
  cpu: number;
  /** Voluntary context switches (the thread went to sleep: a wake-up follows each). */
  voluntary: number;
  nonvoluntary: number;
}

function readStatFields(pid: number): string[] | undefined {
  let text: string;
  try { text = readFileSync(`/proc/${pid}/stat`, 'utf8'); } catch { return undefined; }
  const close = text.lastIndexOf(')'); // comm may contain spaces and parentheses
  return text.slice(close + 2).trim().split(' '); // fields from 3 (state) on
}

/** The pid and all its live descendants (children first found by scanning /proc for their ppid). */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  let entries: string[];
  try { entries = readdirSync('/proc'); } catch { return [root]; }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    const f = readStatFields(Number(e));
    if (!f) continue;
    const ppid = Number(f[1]);
    let list = children.get(ppid);
    if (!list) children.set(ppid, list = []);
    list.push(Number(e));
  }
  const out: number[] = [];
  const todo = [root];
  while (todo.length > 0) {
    const p = todo.pop()!;
    out.push(p);
    todo.push(...(children.get(p) ?? []));
  }
  return out;
}

/** CPU ticks and context switches of the given processes, summed (over all threads of each). */
export function readProcTicks(pids: number[]): ProcTicks {
  const r: ProcTicks = { cpu: 0, voluntary: 0, nonvoluntary: 0 };
  for (const pid of pids) {
    const f = readStatFields(pid);
    if (!f) continue; // exited
    r.cpu += Number(f[11]) + Number(f[12]); // utime, stime (fields 14 and 15)
    let tids: string[] = [];
    try { tids = readdirSync(`/proc/${pid}/task`); } catch { /* exited */ }
    for (const tid of tids) {
      let status: string;
      try { status = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8'); } catch { continue; }
      const v = /^voluntary_ctxt_switches:\s+(\d+)/m.exec(status);
      const n = /^nonvoluntary_ctxt_switches:\s+(\d+)/m.exec(status);
      if (v) r.voluntary += Number(v[1]);
      if (n) r.nonvoluntary += Number(n[1]);
    }
  }
  return r;
}

/** CPU ticks of one process that is not ours, with its name. */
export interface ForeignProc { comm: string; ticks: number }

/**
 * CPU ticks of every visible user process that is not this harness or one of its descendants (the server,
 * rpc-load, perf) and not a kernel thread: other people's work sharing the machine. Counts utime+stime plus
 * cutime+cstime, so short-lived jobs (a compiler run) show up in their parent once reaped.
 */
export function readForeignTicks(self = process.pid): Map<number, ForeignProc> {
  const out = new Map<number, ForeignProc>();
  let entries: string[];
  try { entries = readdirSync('/proc'); } catch { return out; }
  const info = new Map<number, { ppid: number; comm: string; ticks: number }>();
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    let text: string;
    try { text = readFileSync(`/proc/${e}/stat`, 'utf8'); } catch { continue; }
    const open = text.indexOf('('), close = text.lastIndexOf(')');
    const f = text.slice(close + 2).trim().split(' '); // f[1] ppid, f[11..14] utime stime cutime cstime
    info.set(Number(e), { ppid: Number(f[1]), comm: text.slice(open + 1, close), ticks: Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]) });
  }
  const ours = (pid: number): boolean => {
    for (let p = pid, hops = 0; p > 1 && hops < 64; hops++) {
      if (p === self) return true;
      p = info.get(p)?.ppid ?? 0;
    }
    return false;
  };
  for (const [pid, { ppid, comm, ticks }] of info) {
    if (pid === 2 || ppid === 2 || ours(pid)) continue; // kernel threads, and our own tree
    out.set(pid, { comm, ticks });
  }
  return out;
}

/** Everything sampled at one instant for one server. */
export interface Sample {
  timeNs: bigint;
  cores: CoreTicks[];
  proc: ProcTicks;
  foreign: Map<number, ForeignProc>;
  /** The load generator's own CPU, when its pids were given. */
  client?: ProcTicks;
}

export function sample(pids: number[], clientPids?: number[]): Sample {
  const timeNs = process.hrtime.bigint();
  const cores = readCoreTicks();
  return { timeNs, cores, proc: readProcTicks(pids), foreign: readForeignTicks(), client: clientPids ? readProcTicks(clientPids) : undefined };
}

/** What one measured window cost, per transaction, on the server's cores and in the server process. */
export interface WindowCost {
  seconds: number;
  /** Busy fraction of the server cores and of the client cores over the window. */
  serverCoreBusy: number;
  clientCoreBusy: number;
  /** Steal fraction of the server cores and of the client cores over the window (a VM's hypervisor ran
   *  another guest while these vCPUs wanted to run): not in any busy figure, reported beside them. */
  serverCoreSteal: number;
  clientCoreSteal: number;
  /** The largest steal fraction of any one server or client core: what decides whether the run was disturbed. */
  maxCoreSteal: number;
  /** Server cores' busy time per transaction, µs (includes softirq work for the server's sockets; no steal). */
  coreUsPerTxn: number;
  /** Server processes' utime+stime per transaction, µs. */
  procUsPerTxn: number;
  /** Server core's softirq+irq time per transaction, µs (network work outside any process's own time). */
  softirqUsPerTxn: number;
  /** Context switches of the server processes per transaction. */
  voluntaryPerTxn: number;
  nonvoluntaryPerTxn: number;
  /** Every core's busy time per transaction, µs: server, client and kernel together (the figure that stays
   *  honest when server and client share cores). */
  machineUsPerTxn: number;
  /** The load generator's utime+stime per transaction, µs (NaN when it was not sampled). */
  clientProcUsPerTxn: number;
  /** CPU used by other people's processes during the window, in cores (0.1 = a tenth of one core). */
  foreignCores: number;
  /** The biggest of them, e.g. "cc1(4242) 35%". */
  foreignTop: string[];
}

export function windowCost(a: Sample, b: Sample, txns: number, serverCpus: number[], clientCpus: number[]): WindowCost {
  const s0 = sumCores(a.cores, serverCpus), s1 = sumCores(b.cores, serverCpus);
  const c0 = sumCores(a.cores, clientCpus), c1 = sumCores(b.cores, clientCpus);
  const usPerTick = 1e6 / USER_HZ;
  const per = (v: number) => (txns > 0 ? v / txns : NaN);
  const frac = (num: number, den: number) => (den > 0 ? num / den : 0);
  const seconds = Number(b.timeNs - a.timeNs) / 1e9;
  const allCores = b.cores.map((_, i) => i);
  const machineBusy = sumCores(b.cores, allCores).busy - sumCores(a.cores, allCores).busy;
  // What other processes can have used in the window is bounded by the machine's busy time less our own processes':
  // a parent's cutime+cstime jumps when it reaps a child, by all the CPU that child ever used — maybe long before
  // this window (a half-hour test run reaped by its shell once showed as 40,000% of a core).
  const ours = (b.proc.cpu - a.proc.cpu) + (a.client && b.client ? b.client.cpu - a.client.cpu : 0);
  const room = Math.max(0, machineBusy - ours);
  const foreign: { name: string; ticks: number }[] = [];
  for (const [pid, p] of b.foreign) {
    const d = Math.min(room, p.ticks - (a.foreign.get(pid)?.ticks ?? 0)); // a process born in the window counts from zero
    if (d > 0) foreign.push({ name: `${p.comm}(${pid})`, ticks: d });
  }
  foreign.sort((x, y) => y.ticks - x.ticks);
  const foreignTicks = Math.min(room, foreign.reduce((sum, f) => sum + f.ticks, 0));
  const cores = (ticks: number) => (seconds > 0 ? ticks / USER_HZ / seconds : 0);
  return {
    seconds,
    serverCoreBusy: frac(s1.busy - s0.busy, s1.total - s0.total),
    clientCoreBusy: frac(c1.busy - c0.busy, c1.total - c0.total),
    serverCoreSteal: frac(s1.steal - s0.steal, s1.total - s0.total),
    clientCoreSteal: frac(c1.steal - c0.steal, c1.total - c0.total),
    maxCoreSteal: Math.max(0, ...[...new Set([...serverCpus, ...clientCpus])].map((c) => {
      const x = a.cores[c], y = b.cores[c];
      return x && y ? frac(y.steal - x.steal, y.total - x.total) : 0;
    })),
    coreUsPerTxn: per((s1.busy - s0.busy) * usPerTick),
    procUsPerTxn: per((b.proc.cpu - a.proc.cpu) * usPerTick),
    softirqUsPerTxn: per((s1.softirq + s1.irq - s0.softirq - s0.irq) * usPerTick),
    machineUsPerTxn: per(machineBusy * usPerTick),
    clientProcUsPerTxn: a.client && b.client ? per((b.client.cpu - a.client.cpu) * usPerTick) : NaN,
    voluntaryPerTxn: per(b.proc.voluntary - a.proc.voluntary),
    nonvoluntaryPerTxn: per(b.proc.nonvoluntary - a.proc.nonvoluntary),
    foreignCores: cores(foreignTicks),
    foreignTop: foreign.slice(0, 3).map((f) => `${f.name} ${(cores(f.ticks) * 100).toFixed(0)}%`),
  };
}
