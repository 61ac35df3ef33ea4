// Where a server's time goes, from a V8 CPU profile (`node --cpu-prof`): self time by category and by function.
// bench/compat.ts --profile runs its servers with --cpu-prof and puts these tables in its summary, so what BENCHMARKS.md
// says about where the time goes comes from a kept summary. Time in native code called from JavaScript (an addon
// call, a libuv write) is billed to that call; time in the event loop outside JavaScript (epoll, libuv's reads, and
// node's C++ HTTP parser when it consumes a socket itself) is "(program)".
import { readFileSync } from 'node:fs';

interface ProfileNode { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }
interface CpuProfile { nodes: ProfileNode[]; startTime: number; endTime: number; samples: number[]; timeDeltas: number[] }

/** Categories, tried in order on a frame's URL (or name, for V8's own entries). */
const CATEGORIES: { name: string; test: (url: string, fn: string) => boolean }[] = [
  { name: 'idle', test: (u, f) => u === '' && f === '(idle)' },
  { name: 'garbage collection', test: (u, f) => u === '' && f === '(garbage collector)' },
  { name: 'outside JavaScript (event loop, C++)', test: (u, f) => u === '' && f === '(program)' },
  { name: 'megapipe (JavaScript)', test: (u) => /\/dist\/src\//.test(u) },
  { name: 'native calls from JavaScript (addon, libuv, V8 builtins)', test: (u) => u === '' },
  { name: 'node:http', test: (u) => /^node:_http_|^node:internal\/http/.test(u) },
  { name: 'node streams and net', test: (u) => /^node:(net|stream|internal\/streams\/|internal\/stream_base_commons|internal\/net)/.test(u) },
  { name: 'node timers, events, process', test: (u) => /^node:(internal\/timers|timers|events|internal\/process\/|internal\/async_hooks)/.test(u) },
  { name: 'node (other)', test: (u) => u.startsWith('node:') },
  { name: 'Express', test: (u) => /node_modules\/(express|router|finalhandler|send|etag|fresh|content-type|mime|qs|parseurl|on-finished|statuses|depd|vary|type-is|accepts|negotiator|encodeurl|escape-html|proxy-addr|range-parser|cookie|merge-descriptors|debug|ms)\//.test(u) },
  { name: 'Fastify', test: (u) => /node_modules\/(fastify|@fastify|find-my-way|light-my-request|avvio|pino|fast-|abstract-logging|process-warning|rfdc|secure-json-parse|toad-cache|safe-regex2|ret)/.test(u) },
  { name: 'ws', test: (u) => /node_modules\/ws\//.test(u) },
  { name: 'the application', test: (u) => /\/bench\/servers\//.test(u) },
  { name: 'other', test: () => true },
];

export interface ProfileSummary {
  /** Milliseconds sampled, idle excluded. */
  busyMs: number;
  /** Self time by category, ms, largest first (idle left out). */
  categories: { name: string; ms: number }[];
  /** Self time by function, ms, largest first. */
  functions: { name: string; where: string; category: string; ms: number }[];
}

function categoryOf(url: string, fn: string): string {
  return CATEGORIES.find((c) => c.test(url, fn))!.name;
}

/** Where a URL points, short: a package and file, a node module, or a file of this repository. */
function shortWhere(url: string): string {
  if (url === '') return '';
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)\/(.*)$/.exec(url);
  if (nm) return `${nm[1]}/${nm[2]!.split('/').pop()}`;
  const repo = /\/(dist\/.*)$/.exec(url);
  if (repo) return repo[1]!;
  return url.replace(/^file:\/\//, '');
}

/** Self time by category and function of a .cpuprofile file. */
export function summarizeProfile(path: string): ProfileSummary {
  const p = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++) self.set(p.samples[i]!, (self.get(p.samples[i]!) ?? 0) + (p.timeDeltas[i] ?? 0) / 1000);
  const cats = new Map<string, number>();
  const fns = new Map<string, { name: string; where: string; category: string; ms: number }>();
  let busy = 0;
  for (const [id, ms] of self) {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
    const category = categoryOf(url, functionName);
    if (category === 'idle') continue;
    busy += ms;
    cats.set(category, (cats.get(category) ?? 0) + ms);
    const where = shortWhere(url) + (url ? `:${lineNumber + 1}` : '');
    const key = `${functionName}@${where}`;
    const f = fns.get(key) ?? { name: functionName || '(anonymous)', where, category, ms: 0 };
    f.ms += ms;
    fns.set(key, f);
  }
  return {
    busyMs: busy,
    categories: [...cats].map(([name, ms]) => ({ name, ms })).sort((a, b) => b.ms - a.ms),
    functions: [...fns.values()].sort((a, b) => b.ms - a.ms),
  };
}

if (process.argv[1] !== undefined && /compat\/profile\.js$/.test(process.argv[1])) {
  for (const f of process.argv.slice(2)) {
    const s = summarizeProfile(f);
    process.stdout.write(`${f}: ${s.busyMs.toFixed(0)} ms busy\n`);
    for (const c of s.categories) process.stdout.write(`  ${(100 * c.ms / s.busyMs).toFixed(1).padStart(5)}%  ${c.name}\n`);
    for (const fn of s.functions.slice(0, 25)) process.stdout.write(`    ${(100 * fn.ms / s.busyMs).toFixed(1).padStart(5)}%  ${fn.name}  ${fn.where}  [${fn.category}]\n`);
  }
}
