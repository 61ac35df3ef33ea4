// Shared helpers of the channel conformance suite: backends to loop over, an echo server on a channel, a verifying
// node:net client, seeded random bytes, fd counting and bounded waiting. Every wait here is bounded in turns and
// time; no helper asserts on timing.
import * as net from 'node:net';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setImmediate as immediate, setTimeout as sleep } from 'node:timers/promises';
import { createChannel, listen, listenPortable, uringAvailability, type Channel, type Limits, type Listener, type MpEvent } from '../src/index.js';
import { uringExpectation } from './uring-expected.js';
import { kernelProbe } from '../src/native.js';
import { recvMode, type RecvMode } from '../src/uring/receive.js';

export type BackendKind = 'uring' | 'portable';
export const BACKENDS: readonly BackendKind[] = ['uring', 'portable'];

const uring = uringAvailability();
const expectation = uringExpectation();
// io_uring must not skip silently: where the kernel has it, an addon that failed to load (or a ring that cannot be
// set up) fails every suite that uses these helpers, instead of letting the io_uring half of it skip
if (expectation.expected && !uring.ok) {
  throw new Error(`io_uring is expected here (${expectation.why}) but unavailable: ${uring.reason}. Build the addon (npm install), or set MEGAPIPE_EXPECT_URING=0 for a run meant without it.`);
}
/** Why the io_uring backend cannot run here, or false. */
export const uringSkip: string | false = uring.ok ? false : `io_uring unavailable: ${uring.reason}`;
/** Whether the running kernel is at least `major.minor` (false where io_uring could not be probed). */
export function kernelAtLeast(major: number, minor: number): boolean {
  const m = /^(\d+)\.(\d+)/.exec(kernelProbe()?.kernel ?? '');
  return m !== null && Number(m[1]) * 1000 + Number(m[2]) >= major * 1000 + minor;
}
/** Why a test cannot force a DEFER_TASKRUN ring here (the kernel refuses it, or the addon's wake-up probe had no
 * answer: native/ring.c, defer_wake), or false. */
export const deferRingSkip: string | false = uringSkip || (kernelProbe()?.deferWakes === undefined ? 'this kernel refuses DEFER_TASKRUN or could not be probed' : false);

/** The receive mode of a default io_uring channel here (src/uring/receive.ts): its ring's set-up, the kernel's
 * multishot cap and MEGAPIPE_RECV decide it. */
export const defaultRecvMode: RecvMode = recvMode(kernelProbe()?.deferTaskrun === true, kernelProbe()?.recvCap === true, process.env['MEGAPIPE_RECV']);
/** Why a test cannot ask for capped multishot receives here (MEGAPIPE_RECV=capped: no cap in the kernel, or the
 * default ring is a DEFER_TASKRUN ring, which receives uncapped multishot), or false. */
export const cappedRecvSkip: string | false = uringSkip || (kernelProbe()?.recvCap !== true ? 'no multishot receive cap in this kernel (Linux 6.17+)'
  : kernelProbe()?.deferTaskrun === true ? 'DEFER_TASKRUN rings receive uncapped multishot' : false);

/** Runs `f` with the environment variables `vars` set (the addon reads MEGAPIPE_RING_SETUP, the receive path
 * MEGAPIPE_RECV, as each channel sets up — worker threads' too), then puts each back as it was. */
export async function withEnv<T>(vars: Record<string, string>, f: () => Promise<T>): Promise<T> {
  const was = Object.keys(vars).map((k) => [k, process.env[k]] as const);
  Object.assign(process.env, vars);
  try { return await f(); } finally { for (const [k, v] of was) { if (v === undefined) delete process.env[k]; else process.env[k] = v; } }
}

/** Runs `f` with MEGAPIPE_RING_SETUP=`step` (withEnv). */
export function withRingSetup<T>(step: string, f: () => Promise<T>): Promise<T> { return withEnv({ MEGAPIPE_RING_SETUP: step }, f); }

/** A module specifier ending so names megapipe/net on the portable backend (childNetEnv: MEGAPIPE_BACKEND=portable).
 * There its client sockets are the portable channel's; a server's listen() falls back to node:net's own (server.ts). */
const PORTABLE_SUFFIX = '?portable';
const mnetUrl = new URL('../src/net/index.js', import.meta.url).href;
/** The net modules a child process imports to run a case on each implementation: [name, specifier, skip]. */
export const CHILD_NET_IMPLS = [
  ['node:net', 'node:net', false],
  ['megapipe/net', mnetUrl, uringSkip],
  ['megapipe/net, portable backend (client sockets on the portable channel, servers node:net\'s)', `${mnetUrl}${PORTABLE_SUFFIX}`, false],
] as const;
/** The environment of a child that imports `mod` (one of CHILD_NET_IMPLS's specifiers). */
export function childNetEnv(mod: string): NodeJS.ProcessEnv {
  return mod.endsWith(PORTABLE_SUFFIX) ? { ...process.env, MEGAPIPE_BACKEND: 'portable' } : process.env;
}

/** `describe` skip option for a backend (false = run). Prints the reason through node:test when skipping. */
export function skipFor(backend: BackendKind): string | false {
  return backend === 'uring' ? uringSkip : false;
}

/** A listening address for a backend: a native listener for uring, a node:net one for portable (the pure path). */
export async function openListener(backend: BackendKind): Promise<Listener> {
  return backend === 'uring' ? listen({ host: '127.0.0.1', port: 0 }) : listenPortable({ host: '127.0.0.1', port: 0 });
}

// ---- seeded randomness -------------------------------------------------------------------------------------
/** mulberry32: a small seeded PRNG; returns floats in [0, 1). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `n` pseudo-random bytes from `rand`. */
export function randomBytes(rand: () => number, n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  let i = 0;
  for (; i + 4 <= n; i += 4) b.writeUInt32LE((rand() * 4294967296) >>> 0, i);
  for (; i < n; i++) b[i] = (rand() * 256) | 0;
  return b;
}

/** A log-uniform integer in [lo, hi]. */
export function logUniform(rand: () => number, lo: number, hi: number): number {
  return Math.min(hi, Math.floor(Math.exp(Math.log(lo) + rand() * (Math.log(hi + 1) - Math.log(lo)))));
}

// ---- process state -------------------------------------------------------------------------------------------
/** Open descriptors of this process (the directory handle readdir uses is counted, consistently). */
export function fdCount(): number {
  return readdirSync('/proc/self/fd').length;
}

/** Resident set size of this process, bytes. */
export function rssBytes(): number {
  const pages = Number(readFileSync('/proc/self/statm', 'latin1').split(' ')[1]);
  return pages * 4096;
}

// ---- bounded waiting ------------------------------------------------------------------------------------------
/**
 * Waits until `cond()` is true, yielding to the event loop between checks: at most `turns` checks and `ms`
 * milliseconds (whichever ends first), then throws naming `what`.
 */
export async function waitFor(cond: () => boolean, what: string, opts: { ms?: number; turns?: number } = {}): Promise<void> {
  const ms = opts.ms ?? 20000, turns = opts.turns ?? 200000;
  const end = Date.now() + ms;
  for (let i = 0; i < turns; i++) {
    if (cond()) return;
    if (Date.now() > end) break;
    if (i < 2000) await immediate(); else await sleep(2);
  }
  if (cond()) return;
  throw new Error(`timed out waiting for ${what}`);
}

/** `p`, or a rejection naming `what` after `ms`. */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms); });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

/** The kernel's send and receive queues (bytes) of the IPv4 TCP socket with these local and remote ports (loopback). */
export function tcpQueues(localPort: number, remotePort: number): { tx: number; rx: number } | undefined {
  const hex = (p: number) => `:${p.toString(16).toUpperCase().padStart(4, '0')}`;
  const lp = hex(localPort), rp = hex(remotePort);
  for (const line of readFileSync('/proc/net/tcp', 'latin1').split('\n')) {
    if (!line.includes(lp) || !line.includes(rp)) continue;   // (a shared machine may list thousands of sockets)
    const f = line.trim().split(/\s+/);
    if (f.length > 4 && f[1]!.endsWith(lp) && f[2]!.endsWith(rp)) {
      const [tx, rx] = f[4]!.split(':').map((x) => parseInt(x, 16)) as [number, number];
      return { tx, rx };
    }
  }
  return undefined;
}

/** Everything `s` receives (it may be paused now: resumed here) until it closes, by EOF or by an error (a reset);
 * rejects only after `ms`. */
export function receiveUntilClosed(s: net.Socket, ms: number): Promise<Buffer> {
  return withTimeout(new Promise((resolve) => {
    const parts: Buffer[] = [];
    s.on('data', (d: Buffer) => parts.push(d));
    s.on('error', () => { /* a reset: the close follows */ });
    s.once('close', () => resolve(Buffer.concat(parts)));
    s.resume();
  }), ms, 'the connection to close');
}

/** Runs `fn(i)` for i in [0, count) with at most `concurrency` in flight; rejects on the first failure. */
export async function runPool(count: number, concurrency: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0, failed: unknown = undefined;
  const lane = async () => {
    while (failed === undefined && next < count) {
      const i = next++;
      try { await fn(i); } catch (e) { if (failed === undefined) failed = e; }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, lane));
  if (failed !== undefined) throw failed;
}

// ---- an echo server on a channel ----------------------------------------------------------------------------------
export interface EchoServer {
  readonly ch: Channel;
  readonly listener: Listener;
  readonly lh: number;
  readonly port: number;
  /** Connections accepted, connections gone (disconnect events of connections), error codes seen. */
  readonly counts: { accepted: number; disconnected: number; eofs: number; bytes: number; maxPending: number };
  readonly errors: string[];
  /** Listener-handle error codes (e.g. MP_ERR_TABLE_FULL). */
  readonly listenerErrors: string[];
  /** Open connection handles. */
  readonly conns: Set<number>;
  /** Unregisters the listener, waits for every connection to go, closes the listener and the channel. */
  close(): Promise<void>;
}

export interface EchoOptions {
  limits?: Partial<Limits>;
  batch?: number;
  lwsocket?: boolean;
  /** Called for every event before the echo logic (the event object is reused: keep nothing). */
  tap?: (ev: MpEvent, ch: Channel) => void;
}

/**
 * An echo server: accepts (multishot), echoes every byte, and on EOF disconnects gracefully (queued bytes are sent
 * first). Errors are recorded and the connection aborted.
 */
export async function startEchoServer(backend: BackendKind, opts: EchoOptions = {}): Promise<EchoServer> {
  const ch = createChannel({ backend, limits: opts.limits, batch: opts.batch });
  const listener = await openListener(backend);
  const lh = ch.register(listener, 'echo-listener');
  const counts = { accepted: 0, disconnected: 0, eofs: 0, bytes: 0, maxPending: 0 };
  const errors: string[] = [], listenerErrors: string[] = [];
  const conns = new Set<number>();
  let listenerGone = false;
  ch.onEvent((ev) => {
    opts.tap?.(ev, ch);
    const h = ev.handle;
    switch (ev.type) {
      case 'accept':
        counts.accepted++;
        conns.add(h);
        ch.read(h);
        break;
      case 'read':
        if (ev.result > 0) {
          counts.bytes += ev.result;
          ch.write(h, ev.buffer, ev.offset, ev.result);
          const p = ch.pendingBytes(h);
          if (p > counts.maxPending) counts.maxPending = p;
        } else {
          counts.eofs++;
          ch.disconnect(h);
        }
        break;
      case 'listener-error':
        assert.equal(h, lh, 'listener-error names the listener');
        listenerErrors.push(ev.code);
        break;
      case 'error':
        assert.notEqual(h, lh, 'error events are for connections only');
        errors.push(ev.code);
        try { ch.disconnect(h, true); } catch { /* already closing */ }
        break;
      case 'disconnect':
        if (h === lh) listenerGone = true;
        else if (conns.delete(h)) counts.disconnected++;
        break;
      default:
        break;
    }
  });
  ch.accept(lh, { lwsocket: opts.lwsocket ?? true });
  return {
    ch, listener, lh, port: listener.port, counts, errors, listenerErrors, conns,
    async close() {
      try {
        if (ch.isOpen(lh)) ch.unregister(lh);
        await waitFor(() => listenerGone, 'the listener handle to go', { ms: 10000 });
        for (const h of conns) { try { ch.disconnect(h, true); } catch { /* closing */ } }
        await waitFor(() => conns.size === 0, 'every connection to go', { ms: 10000 });
      } finally {
        listener.close();
        ch.close();
      }
    },
  };
}

// ---- verifying node:net clients -------------------------------------------------------------------------------------
export interface ClientOptions {
  localAddress?: string;
  /** Rejects after this long (default 30 s). */
  timeoutMs?: number;
  /** Shut down the write side after sending (default true): the echo server then closes. */
  end?: boolean;
}

/**
 * Connects to `port`, sends `payload`, shuts its write side and checks that exactly `payload` comes back before the
 * server closes. Compares incrementally (no concatenation). Resolves with the bytes received.
 */
export function echoClient(port: number, payload: Uint8Array, opts: ClientOptions = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: '127.0.0.1', localAddress: opts.localAddress, noDelay: true });
    let got = 0, done = false;
    const fail = (why: string) => {
      if (done) return;
      done = true; clearTimeout(timer); s.destroy();
      reject(new Error(`echo client (${payload.byteLength} B): ${why}`));
    };
    const timer = setTimeout(() => fail(`timed out with ${got} B back`), opts.timeoutMs ?? 30000);
    s.on('connect', () => { s.write(payload); if (opts.end ?? true) s.end(); });
    s.on('data', (d: Buffer) => {
      if (got + d.byteLength > payload.byteLength) return fail(`too many bytes: ${got + d.byteLength}`);
      if (Buffer.compare(d, payload.subarray(got, got + d.byteLength)) !== 0) return fail(`bytes differ in [${got}, ${got + d.byteLength})`);
      got += d.byteLength;
    });
    s.on('end', () => {
      if (got !== payload.byteLength) return fail(`EOF after ${got} B`);
      if (done) return;
      done = true; clearTimeout(timer); s.destroy(); resolve(got);
    });
    s.on('error', (e) => fail(`socket error ${(e as NodeJS.ErrnoException).code}`));
  });
}

/** A channel server started by startChannelServer: error codes and closed handles recorded per connection. */
export interface ChannelServer {
  ch: Channel;
  listener: Listener;
  lh: number;
  errors: Map<number, string[]>;
  closed: Set<number>;
  stop(): Promise<void>;
}

/**
 * A channel server whose `onConn(ch, h)` runs for each accepted connection (after reading starts); an `error` event
 * is recorded and aborts its connection.
 */
export async function startChannelServer(backend: BackendKind, onConn: (ch: Channel, h: number) => void, limits: Partial<Limits> = {}): Promise<ChannelServer> {
  const ch = createChannel({ backend, limits });
  if (ch.backend !== backend) throw new Error(`asked for ${backend}, got ${ch.backend}`);
  const listener = await openListener(backend);
  const lh = ch.register(listener, 'L');
  const errors = new Map<number, string[]>();
  const closed = new Set<number>();
  let listenerGone = false;
  ch.onEvent((ev) => {
    if (ev.handle === lh) { if (ev.type === 'disconnect') listenerGone = true; return; }
    switch (ev.type) {
      case 'accept': ch.read(ev.handle); onConn(ch, ev.handle); break;
      case 'error': {
        const l = errors.get(ev.handle) ?? [];
        l.push(ev.code);
        errors.set(ev.handle, l);
        if (ch.isOpen(ev.handle)) ch.disconnect(ev.handle, true);
        break;
      }
      case 'disconnect': closed.add(ev.handle); break;
      default: break;
    }
  });
  ch.accept(lh);
  return { ch, listener, lh, errors, closed, stop: () => closeListenerAndChannel(ch, lh, listener, () => listenerGone) };
}

/** Unregisters the listener handle `lh`, waits for its final event (`gone()`), then closes the listener and the channel. */
export async function closeListenerAndChannel(ch: Channel, lh: number, listener: Listener, gone: () => boolean): Promise<void> {
  ch.unregister(lh);
  await waitFor(gone, 'the listener handle to go');
  listener.close();
  ch.close();
}

/** Connects and resolves with the socket once connected (rejects on error or after `ms`). */
export function connectSocket(port: number, ms = 10000, host = '127.0.0.1'): Promise<net.Socket> {
  return withTimeout(new Promise((resolve, reject) => {
    const s = net.connect({ port, host, noDelay: true });
    s.once('connect', () => { s.off('error', reject); resolve(s); });
    s.once('error', reject);
  }), ms, `connect to ${port}`);
}

/** Collects everything a socket receives until EOF (bounded by `ms`). */
export function readAll(s: net.Socket, ms = 30000): Promise<Buffer> {
  return withTimeout(new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    s.on('data', (d: Buffer) => parts.push(d));
    s.once('end', () => resolve(Buffer.concat(parts)));
    s.once('error', reject);
  }), ms, 'read to EOF');
}

/** A node:net echo server (the reference peer for client tests). */
export function netEchoServer(): Promise<{ port: number; server: net.Server; close(): Promise<void> }> {
  return new Promise((resolve) => {
    const sockets = new Set<net.Socket>();
    const server = net.createServer({ allowHalfOpen: true }, (s) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => { /* peer went away */ });
      s.pipe(s);
    });
    server.listen(0, '127.0.0.1', () => resolve({
      port: (server.address() as net.AddressInfo).port,
      server,
      close: () => new Promise<void>((r) => { for (const s of sockets) s.destroy(); server.close(() => r()); }),
    }));
  });
}

let launcherBuilt: { bin: string; skip: string | false } | undefined;
/**
 * seccomp-run (test/fixtures/seccomp-run.c: runs a command under a seccomp filter that answers chosen syscalls with an
 * errno), built once per process into a temporary directory removed at exit; `skip` is why a test cannot use it here
 * (no io_uring, no C compiler, no seccomp filters).
 */
export function seccompLauncher(): { bin: string; skip: string | false } {
  if (launcherBuilt !== undefined) return launcherBuilt;
  if (uringSkip) return (launcherBuilt = { bin: '', skip: uringSkip });
  const dir = mkdtempSync(path.join(tmpdir(), 'megapipe-seccomp-'));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  const bin = path.join(dir, 'seccomp-run');
  const source = fileURLToPath(new URL('../../test/fixtures/seccomp-run.c', import.meta.url));
  const cc = spawnSync('cc', ['-O2', '-o', bin, source], { encoding: 'utf8' });
  if (cc.error || cc.status !== 0) return (launcherBuilt = { bin, skip: `no C compiler to build the seccomp launcher (${cc.error?.message ?? cc.stderr})` });
  const probe = spawnSync(bin, ['--deny', 'io_uring_setup=EPERM', '--', 'true'], { encoding: 'utf8' });
  if (probe.status !== 0) return (launcherBuilt = { bin, skip: `seccomp filters are not available here: ${probe.stderr}` });
  return (launcherBuilt = { bin, skip: false });
}
