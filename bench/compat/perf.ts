// Where the server core's time goes, from `perf record` on that core over a run's measured window (bench/compat.ts
// --profile). The servers run with --perf-basic-prof --interpreted-frames-native-stack, so JavaScript — compiled or
// interpreted — has names and source locations; every sample of the server's threads (softirq work that interrupted
// them included) goes into one category by its stack (perfCategory). Unlike a V8 CPU profile, this sees the kernel and the native code an event loop runs outside JavaScript
// (a V8 profile counts the latter as idle).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';

/** perf record and report work here (installed, permitted). */
export function perfRecordAvailable(): boolean {
  const r = spawnSync('perf', ['record', '-o', '/dev/null', '-F', '99', '--', 'true'], { encoding: 'utf8' });
  return r.status === 0;
}

/** The thread ids of process `pid` now. */
export function threadsOf(pid: number): number[] {
  try { return readdirSync(`/proc/${pid}/task`).map(Number); } catch { return [pid]; }
}

export interface PerfRecording { stop(): Promise<boolean> }

/** Samples every CPU of `cpus` (a taskset list) at `hz`, with call stacks, into `file` until stop(). */
export function recordCpus(cpus: string, file: string, hz = 1999): PerfRecording {
  const child: ChildProcess = spawn('perf', ['record', '-C', cpus, '-F', String(hz), '-g', '-o', file], { stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr!.resume();
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return {
    async stop() {
      child.kill('SIGINT');
      const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
      const code = await exited;
      clearTimeout(t);
      return code === 0 || code === null;
    },
  };
}

/** The categories, in the order a table lists them. */
export const PERF_CATEGORIES = [
  'kernel: TCP/IP (send, receive, loopback delivery)',
  'kernel: io_uring',
  'kernel: epoll, eventfd, wake-ups',
  'kernel: other (syscall entry, scheduling, memory, timers)',
  'megapipe addon (C)',
  'JS: megapipe',
  'JS: node:http',
  'JS: node streams, net, events, timers',
  'JS: framework (Express, Fastify, ws)',
  'JS: the application, other',
  'node C++ (llhttp, libuv, stream bindings)',
  'V8: garbage collection',
  'V8: compiler',
  'V8: runtime outside any JavaScript frame',
  'other',
] as const;
export type PerfCategory = (typeof PERF_CATEGORIES)[number];

const NET = /tcp|^ip_|^__ip|inet|skb|^sk_|^__sk_|sock|net_|netif|napi|loopback|process_backlog|datagram|dev_|^__dev|^validate_xmit|bbr_|^nf_|^__nf|^dst_|^fib_|^ipv4|^lock_sock|^release_sock|csum/;
const URING = /^(__)?io_|io_uring/;
const WAKE = /^ep_|epoll|eventfd|wake|^__wake|poll_wait|^do_poll/;
const GC = /Heap::|Heap[A-Z]|Scaveng|Marking|MarkCompact|Sweep|Evacuat|Compactor|GCTracer|RememberedSet|SlotSet|MinorMS|ConcurrentMark|IncrementalMark|WriteBarrier|RecordWrite/;
const COMPILER = /compiler::|maglev::|Maglev|baseline::|Parser::|Scanner::|Compiler::|Compile|BytecodeGenerator|interpreter::BytecodeArrayBuilder|turboshaft/;

const isJit = (dso: string) => dso.startsWith('[JIT]') || /perf-\d+\.map$/.test(dso);
const isNode = (dso: string) => dso === 'node' || dso.endsWith('/node');

/** The owner of a JIT-compiled (or, with --interpreted-frames-native-stack, interpreted) function, from its source URL. */
function jsOwner(sym: string): PerfCategory {
  const url = /^\w+:[*~^+]?\S* (\S+?)(?::\d+){0,2}$/.exec(sym)?.[1] ?? '';
  if (/\/dist\/src\//.test(url)) return 'JS: megapipe';
  if (/^node:(_http_|internal\/http)/.test(url)) return 'JS: node:http';
  if (/^node:(net|stream|events|timers|buffer|internal\/(streams|stream_base_commons|net|timers|process|async_hooks|buffer|event_target))/.test(url)) return 'JS: node streams, net, events, timers';
  if (/node_modules\//.test(url)) return 'JS: framework (Express, Fastify, ws)';
  return 'JS: the application, other';
}

/**
 * The category of one sample from its stack (leaf first: [dso, symbol] pairs). Kernel samples go by the kernel part
 * of the stack: network work anywhere in it is TCP/IP (e.g. the softirq delivering a loopback packet to the peer
 * under a send), else io_uring, else epoll and wake-ups. Garbage collection and compilation go by the leaf. Anything
 * else in user space — V8's builtins and runtime (inline caches, calls, allocation), libc — goes to the first frame
 * up the stack that names an owner: a JavaScript function (by its source), node's C++ (llhttp, libuv, the stream
 * bindings) or megapipe's addon.
 */
export function perfCategory(stack: readonly (readonly [string, string])[]): PerfCategory {
  const [dso, sym] = stack[0] ?? ['', ''];
  if (dso === '[kernel.kallsyms]') {
    const kernel: string[] = [];
    for (const [d, s] of stack) { if (d !== '[kernel.kallsyms]') break; kernel.push(s); }
    if (kernel.some((s) => NET.test(s))) return 'kernel: TCP/IP (send, receive, loopback delivery)';
    if (kernel.some((s) => URING.test(s))) return 'kernel: io_uring';
    if (kernel.some((s) => WAKE.test(s))) return 'kernel: epoll, eventfd, wake-ups';
    return 'kernel: other (syscall entry, scheduling, memory, timers)';
  }
  if (isNode(dso) && GC.test(sym)) return 'V8: garbage collection';
  if (isNode(dso) && COMPILER.test(sym)) return 'V8: compiler';
  for (const [d, s] of stack) {
    if (/(^|\/)megapipe\.node$/.test(d)) return 'megapipe addon (C)';
    if (isJit(d)) return jsOwner(s);
    if (isNode(d) && /^(node::|uv_|uv__|llhttp|non-virtual thunk to node::)/.test(s)) return 'node C++ (llhttp, libuv, stream bindings)';
    if (d === '[kernel.kallsyms]') break;
  }
  if (isNode(dso) || /libc\.so|libstdc\+\+|libm\.so|ld-linux|\[vdso\]|libpthread/.test(dso)) return 'V8: runtime outside any JavaScript frame';
  return 'other';
}

export interface PerfBreakdown {
  /** Samples on the core that were not idle: the server's threads plus everything else that ran there. */
  busySamples: number;
  /** Of them, the server's threads' (interrupt work that landed on them included), by category. */
  serverSamples: number;
  categories: Partial<Record<PerfCategory, number>>;
  /** Samples of other contexts on the core (softirq run by the idle task, kernel workers, other processes). */
  otherSamples: number;
  /** The server's most sampled leaf symbols. */
  top: { dso: string; sym: string; samples: number }[];
}

/**
 * Keeps, of the entries of a perf map (/tmp/perf-PID.map: "start size name" per line, in the order V8 made the code)
 * that overlap, only the latest. V8 frees code (a module's top-level function runs once) and reuses its addresses; perf
 * would name a sample at a reused address after whichever entry it picks, often the first. A profile is taken at the
 * end of a run, so the latest code at an address is the code that ran there. Returns the entries dropped.
 */
export function cleanPerfMap(path: string): number {
  let text: string;
  try { text = readFileSync(path, 'utf8'); } catch { return 0; }
  const entries = text.split('\n').filter((l) => l !== '').map((line) => {
    const m = /^([0-9a-f]+) ([0-9a-f]+) (.*)$/i.exec(line);
    return m ? { start: parseInt(m[1]!, 16), end: parseInt(m[1]!, 16) + parseInt(m[2]!, 16), line } : undefined;
  });
  // latest first; an entry survives if no later entry overlaps it (kept: disjoint intervals sorted by start)
  const kept: { start: number; end: number; line: string }[] = [];
  const overlaps = (a: { start: number; end: number }): boolean => {
    let lo = 0, hi = kept.length;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (kept[mid]!.end <= a.start) lo = mid + 1; else hi = mid; }
    return lo < kept.length && kept[lo]!.start < a.end;
  };
  let dropped = 0;
  for (let i = entries.length - 1; i >= 0; i--) {
    const e = entries[i];
    if (e === undefined || e.end <= e.start) continue;
    if (overlaps(e)) { dropped++; continue; }
    let lo = 0, hi = kept.length;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (kept[mid]!.start < e.start) lo = mid + 1; else hi = mid; }
    kept.splice(lo, 0, e);
  }
  writeFileSync(path, kept.map((e) => e.line).join('\n') + '\n');
  return dropped;
}

const IDLE = /safe_halt|cpu_idle|default_idle|mwait|do_idle|poll_idle|cpuidle/;

/** Reads `file` (recorded with call stacks) with perf script and sorts the samples of threads `tids` (the server). */
export function perfBreakdown(file: string, tids: readonly number[]): PerfBreakdown | undefined {
  const r = spawnSync('perf', ['script', '-i', file, '-F', 'tid,ip,sym,dso'], { encoding: 'utf8', maxBuffer: 1024 * 1024 * 1024 });
  if (r.status !== 0) return undefined;
  const mine = new Set(tids);
  const out: PerfBreakdown = { busySamples: 0, serverSamples: 0, categories: {}, otherSamples: 0, top: [] };
  const leaves = new Map<string, { dso: string; sym: string; samples: number }>();
  let tid = -1;
  let stack: [string, string][] = [];
  const flush = (): void => {
    if (tid < 0) return;
    const [dso, sym] = stack[0] ?? ['', ''];
    if (!(tid === 0 && IDLE.test(sym))) {   // the idle task halting is idle time; its softirq work is not
      out.busySamples++;
      if (!mine.has(tid)) out.otherSamples++;
      else {
        out.serverSamples++;
        const c = perfCategory(stack);
        out.categories[c] = (out.categories[c] ?? 0) + 1;
        const key = `${dso}\t${sym}`;
        const l = leaves.get(key) ?? { dso: dso.replace(/^.*\//, '').replace(/^perf-\d+\.map$/, 'JIT'), sym, samples: 0 };
        l.samples++;
        leaves.set(key, l);
      }
    }
    tid = -1;
    stack = [];
  };
  for (const line of r.stdout.split('\n')) {
    const frame = /^\s+[0-9a-f]+ (.*) \((.*)\)$/.exec(line);
    if (frame) { stack.push([frame[2]!, frame[1]!]); continue; }
    const head = /^\s*(\d+)\s*$/.exec(line);
    if (head) { flush(); tid = Number(head[1]); }
  }
  flush();
  out.top = [...leaves.values()].sort((a, b) => b.samples - a.samples).slice(0, 15);
  return out;
}
