// What the soak's processes share: the four kinds of traffic, the counters a client reports, the messages between
// the orchestrator (bench/soak.ts), the server processes (server.ts) and the client processes (client.ts), and the
// seeded randomness both ends regenerate (so a client verifies bytes without keeping a copy of what it sent).

/** echo, megapipe-memcached and megapipe-http on megapipe's own API; node-http: a plain node:http server on megapipe/net. */
export type Kind = 'echo' | 'memcached' | 'http' | 'node-http';
export const KINDS: readonly Kind[] = ['echo', 'memcached', 'http', 'node-http'];

/** What one client process counts for one kind of traffic. */
export interface KindCounters {
  /** Connections opened. */
  connections: number;
  /** Connections that ran their whole scenario, every byte verified, closed as the protocol says. */
  clean: number;
  /** Connections the client reset on purpose (socket.resetAndDestroy()). */
  resets: number;
  /** Connections the client closed early on purpose without a reset (destroy mid-request or mid-response). */
  aborts: number;
  /** Echo messages, memcached replies, HTTP responses verified. */
  ops: number;
  bytesSent: number;
  /** Payload bytes compared with what they must be (echoed bytes, memcached values, HTTP bodies). */
  bytesVerified: number;
  /** Faults of the server seen by the client: corruption, loss, an unexpected reset or EOF, no progress. */
  failures: number;
  failureSamples: string[];
  /** Of the failures, those that match a known bug (known-bugs.ts), by its id. */
  knownBugs: Record<string, number>;
  /** Connections per scenario. */
  scenarios: Record<string, number>;
}

export function newCounters(): KindCounters {
  return { connections: 0, clean: 0, resets: 0, aborts: 0, ops: 0, bytesSent: 0, bytesVerified: 0, failures: 0, failureSamples: [], knownBugs: {}, scenarios: {} };
}

export const FAILURE_SAMPLES_MAX = 20;

/** Adds `b` into `a` (failure samples: the first FAILURE_SAMPLES_MAX). */
export function addCounters(a: KindCounters, b: KindCounters): void {
  a.connections += b.connections; a.clean += b.clean; a.resets += b.resets; a.aborts += b.aborts; a.ops += b.ops;
  a.bytesSent += b.bytesSent; a.bytesVerified += b.bytesVerified; a.failures += b.failures;
  for (const s of b.failureSamples) if (a.failureSamples.length < FAILURE_SAMPLES_MAX) a.failureSamples.push(s);
  for (const [k, v] of Object.entries(b.scenarios)) a.scenarios[k] = (a.scenarios[k] ?? 0) + v;
  for (const [k, v] of Object.entries(b.knownBugs)) a.knownBugs[k] = (a.knownBugs[k] ?? 0) + v;
}

/** A static file of the HTTP server: name under the root and size; its bytes are fileBytes(seed, name, size). */
export interface SoakFile { name: string; size: number }

/** The static files: empty, tiny, below and above the send chunk (64 KiB), the splice threshold (128 KiB), the cache
 * limit (1 MiB), a nested path. */
export const FILES: readonly SoakFile[] = [
  { name: 'empty.bin', size: 0 }, { name: 'one.txt', size: 1 }, { name: 'small.html', size: 137 },
  { name: 'k4.bin', size: 4096 }, { name: 'k16.bin', size: 16391 }, { name: 'k64.bin', size: 65536 },
  { name: 'k200.bin', size: 200_000 }, { name: 'm1.bin', size: 1 << 20 }, { name: 'm3.bin', size: 3 * (1 << 20) + 5 },
  { name: 'dir/nested.bin', size: 30_000 },
];

/** Orchestrator → client process (argv[2], JSON). */
export interface ClientInit {
  index: number;
  seed: number;
  /** Start no new scenario after this time (ms since the epoch). */
  deadline: number;
  host: string;
  ports: Partial<Record<Kind, number>>;
  /** Concurrent scenario loops per kind. */
  lanes: Partial<Record<Kind, number>>;
  /** Seconds a deliberate zero-window stall lasts, at most. */
  stallMaxS: number;
}

export type ClientMessage =
  | { type: 'progress'; counters: Record<Kind, KindCounters> }
  | { type: 'final'; counters: Record<Kind, KindCounters> };

/** Orchestrator → server process (argv[2], JSON). */
export interface ServerInit {
  kind: Kind;
  workers: number;
  host: string;
  /** HTTP (both kinds): the static root; megapipe-http: the dynamic handler module (node-http imports it itself). */
  httpRoot?: string;
  httpHandler?: string;
  /** Test of the memory criterion: bytes each worker keeps per accepted connection (0: none). */
  leakPerConn: number;
  /** Test of the verification: every Nth write of a worker has a byte flipped (0: none). */
  corruptEvery: number;
  /** Test of the verification: every disconnect of a worker's channel is abortive (the bytes still queued dropped). */
  dropOnClose: boolean;
}

/** One worker's own view (through the soak's side channel: it runs in the worker thread). */
export interface WorkerSample {
  worker: number;
  /** V8 heap of the worker's isolate, after a full GC when the server runs with --expose-gc. */
  heapUsed: number;
  heapTotal: number;
  external: number;
  /** The application's own count of open connections (HTTP: HttpApp.connections; node-http: the net.Server's count,
   * which megapipe/net keeps as node:net does; memcached: curr_connections, for the whole store; echo: the channel
   * server's). */
  appConnections: number | null;
  /** Anything else the application counts (HTTP: deadlines that fired; node-http: requests, client errors). */
  app?: Record<string, number>;
}

/** One sample of a server process. */
export interface ServerSample {
  t: number;
  rss: number;
  /** memcached: its item memory (`stats slabs` total_malloced: slab pages handed out, bounded by -m), sampled by the
   * orchestrator; the memory criterion judges RSS without it — a cache filling up to its limit is not a leak. */
  itemBytes?: number;
  /** Main thread and workers together (the main thread only runs serve()'s bookkeeping). */
  heapUsed: number;
  mainHeapUsed: number;
  workers: WorkerSample[];
  /** serve()'s per-worker counters: connections (the channel server's), accepted, the channel's stats. */
  serve: { worker: number; connections: number; accepted: number; restarts: number; handles: number; inKernel: number; requestsRefused: number; recycleRefused: number; submitFailures: number; enobufs: number; cqOverflows: number; bytesRead: number; bytesWritten: number }[];
}

export type ServerMessage =
  | { type: 'ready'; port: number; pid: number }
  | { type: 'sample'; id: number; sample: ServerSample }
  | { type: 'worker-exit'; worker: number; code: number; error?: string }
  | { type: 'closed'; sample: ServerSample | null; error?: string };

export type ServerCommand = { type: 'sample'; id: number } | { type: 'close' };

// ---- seeded randomness ---------------------------------------------------------------------------------------

/** A small seeded PRNG (mulberry32) with the helpers the scenarios use. */
export class Rng {
  private a: number;
  constructor(seed: number) { this.a = seed >>> 0; }
  /** [0, 1) */
  next(): number {
    this.a = (this.a + 0x6d2b79f5) >>> 0;
    let t = this.a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** An integer in [lo, hi]. */
  int(lo: number, hi: number): number { return lo + Math.floor(this.next() * (hi - lo + 1)); }
  /** A log-uniform integer in [lo, hi] (lo ≥ 1): as many 1–10 B sizes as 100 KiB–1 MiB ones. */
  logInt(lo: number, hi: number): number {
    return Math.min(hi, Math.floor(Math.exp(Math.log(lo) + this.next() * (Math.log(hi + 1) - Math.log(lo)))));
  }
  chance(p: number): boolean { return this.next() < p; }
  pick<T>(xs: readonly T[]): T { return xs[Math.floor(this.next() * xs.length)]!; }
  /** Picks by weight: [[item, weight], …]. */
  weighted<T>(xs: readonly (readonly [T, number])[]): T {
    let total = 0;
    for (const [, w] of xs) total += w;
    let r = this.next() * total;
    for (const [x, w] of xs) { if ((r -= w) < 0) return x; }
    return xs[xs.length - 1]![0];
  }
  /** A 32-bit seed for a sub-stream. */
  seed(): number { return (this.next() * 4294967296) >>> 0; }
}

/** Mixes numbers into a 32-bit seed (FNV-1a over their decimal text). */
export function mixSeed(...parts: (number | string)[]): number {
  let h = 0x811c9dc5;
  for (const c of parts.join('/')) { h ^= c.charCodeAt(0); h = Math.imul(h, 0x01000193); }
  return h >>> 0;
}

/**
 * A deterministic byte stream (xorshift32 words, little-endian): `next(n)` returns its next n bytes. The sender and
 * the verifier each run one from the same seed; it never repeats within 16 GiB, so a lost, duplicated or misplaced
 * segment cannot compare equal.
 */
export class ByteStream {
  private s: number;
  private carry = 0;
  private carryLen = 0;
  constructor(seed: number) { this.s = seed >>> 0 || 0x9e3779b9; }
  next(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    let i = 0;
    while (i < n && this.carryLen > 0) { out[i++] = this.carry & 0xff; this.carry >>>= 8; this.carryLen--; }
    let s = this.s;
    for (; i + 4 <= n; i += 4) {
      s ^= s << 13; s ^= s >>> 17; s ^= s << 5;
      const w = s >>> 0;
      out[i] = w & 0xff; out[i + 1] = (w >>> 8) & 0xff; out[i + 2] = (w >>> 16) & 0xff; out[i + 3] = w >>> 24;
    }
    if (i < n) {
      s ^= s << 13; s ^= s >>> 17; s ^= s << 5;
      let w = s >>> 0, left = 4;
      while (i < n) { out[i++] = w & 0xff; w >>>= 8; left--; }
      this.carry = w; this.carryLen = left;
    }
    this.s = s;
    return out;
  }
}

/** The bytes of a static file (the orchestrator writes them, clients regenerate them to verify). */
export function fileBytes(seed: number, file: SoakFile): Buffer {
  return new ByteStream(mixSeed(seed, 'file', file.name)).next(file.size);
}

/** The body of the dynamic handler's GET /dyn/<n>?s=<seed>. */
export function dynBytes(seed: number, n: number): Buffer {
  return new ByteStream(mixSeed(seed, 'dyn')).next(n);
}
