// Kernel faults forced for real (issue 14, "Trust II"): tiny rings, full tables, refused system calls and a full process
// fd table — made to happen in the kernel, not simulated in code. In each: no crash, no byte lost or corrupted on the
// connections that stay, every handle accounted for (ch.handles back to what it should be, one disconnect event per
// connection, ch.stats() consistent with what the clients saw).
//   1. receive-buffer ring exhaustion (-ENOBUFS) with a ring of 2 buffers and 64 connections;
//   2. completion-queue overflow: a 4-entry CQ and a burst (200 connections, and their bytes, queued in the kernel
//      while the server's thread is blocked, then accepted and received in one go), as lwsockets and as regular fds;
//      and closing a channel whose completions are not all delivered; an lwsocket's address read in the middle of
//      that burst (its fd install's completion overflowed), and the channel closed while such an install is pending;
//   3. the direct-descriptor table full (MP_ERR_TABLE_FULL, regular fds, back to lwsockets), twice in a row; and a
//      burst into a multishot direct accept;
//   4. submission back-pressure: a 2-entry SQ and 2 request rows, one handler staging hundreds of writes, no-copy
//      writes, spliced sendFiles and graceful closes; and a refused submission that leaves the SQ part-full under a
//      send with a close linked behind it;
//   5. RLIMIT_NOFILE exhausted (the server in a child under prlimit): accept fails with EMFILE; lwsockets beyond the
//      fd limit; a table larger than the limit (todo: two bugs, see there);
//   6. io_uring refused at start (seccomp: io_uring_setup fails with EPERM or ENOSYS): 'auto' falls back and says so
//      once, 'uring' throws; serve() with workers and the megapipe-echo-server bin run on the fallback (todo: the
//      warning comes once per worker).
// A fault that found a bug is a test marked `todo` naming it: it fails until the bug is fixed, the suite stays green.
// Other forced faults live beside this file: test/channel-limits.test.ts (4 × 64 B receive ring, 8/16-entry rings,
// send-memory exhaustion, maxHandles, an 8-slot table) and test/channel-submit-faults.test.ts (io_uring_enter refused).
import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { Channel, ChannelStats, SocketAddress } from '../src/index.js';
import { createChannel, listen, serveChannel } from '../src/index.js';
import { connectSocket, echoClient, fdCount, prng, randomBytes, readAll, startEchoServer, uringSkip, waitFor, withTimeout, type EchoServer } from './helpers.js';

const here = fileURLToPath(new URL('.', import.meta.url));

// ---- accounting ----------------------------------------------------------------------------------------------------
/**
 * Once the clients are done: every connection the server accepted has had its disconnect event, only the listener is
 * left, and the counters agree with what the clients sent and got back (`bytes` each way).
 */
async function accountFor(server: Pick<EchoServer, 'ch' | 'conns' | 'errors'> & { counts: { accepted: number; disconnected: number } }, conns: number, bytes: number): Promise<ChannelStats> {
  await waitFor(() => server.conns.size === 0, 'every connection to close');
  assert.equal(server.counts.accepted, conns, 'accept events');
  assert.equal(server.counts.disconnected, conns, 'one disconnect event per connection');
  assert.equal(server.ch.handles, 1, 'only the listener handle is left');
  const st = server.ch.stats();
  assert.equal(st.handles, 1);
  assert.equal(st.accepted, conns, 'stats().accepted');
  assert.equal(st.bytesRead, bytes, 'stats().bytesRead');
  assert.equal(st.bytesWritten, bytes, 'stats().bytesWritten');
  assert.equal(st.requestsRefused, 0, 'no request refused as malformed');
  assert.equal(st.recycleRefused, 0, 'no receive buffer returned twice');
  assert.deepEqual(server.errors, [], 'no error event');
  return st;
}

/** The figures of a fault run, printed with the test's results (RELIABILITY.md collects them). */
function figures(t: TestContext, st: ChannelStats, extra: Record<string, unknown> = {}): void {
  const { accepted, bytesRead, enobufs, cqOverflows, tableFullFallbacks, enters, completions, batches, submitFailures } = st;
  t.diagnostic(JSON.stringify({ ...extra, accepted, bytesRead, enobufs, cqOverflows, tableFullFallbacks, enters, completions, batches, submitFailures }));
}

/** Closes the server and checks that the channel let go of every handle, the listener's too. */
async function closeAndCount(server: EchoServer): Promise<void> {
  await server.close();
  assert.equal(server.ch.handles, 0, 'no handle left after close');
}

interface BurstResult { blocked: string; verified: number; failures: string[]; endings: Record<string, number>; ports: number[] }

/**
 * Blocks this thread (its event loop, and so the server's channel) until `conns` node:net clients in a worker thread
 * (fixtures/faults-burst-clients) have connected and written `bytes` each, so that all of it waits in the kernel and
 * reaches the channel as one burst. Resolves with the clients' verdict once they are done (`blocked`: 'ok' when the
 * burst was whole before this thread woke up).
 */
async function burst(port: number, conns: number, bytes: number, seed: number): Promise<BurstResult> {
  const flag = new Int32Array(new SharedArrayBuffer(4));
  const w = new Worker(new URL('./fixtures/faults-burst-clients.js', import.meta.url), { workerData: { port, conns, bytes, seed, flag } });
  const result = new Promise<Omit<BurstResult, 'blocked'>>((resolve, reject) => { w.once('message', resolve); w.once('error', reject); });
  const blocked = Atomics.wait(flag, 0, 0, 30_000);   // 'ok': every client connected and wrote while this thread slept
  const r = await withTimeout(result, 90_000, 'the burst clients');
  await w.terminate();
  return { blocked, ...r };
}

// ---- child processes ---------------------------------------------------------------------------------------------
/** Builds test/fixtures/seccomp-run.c into a temporary directory; a reason to skip when this machine cannot. */
function buildLauncher(): { bin: string; skip: string | false } {
  const dir = mkdtempSync(path.join(tmpdir(), 'megapipe-faults-'));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  const bin = path.join(dir, 'seccomp-run');
  const cc = spawnSync('cc', ['-O2', '-o', bin, path.resolve(here, '../../test/fixtures/seccomp-run.c')], { encoding: 'utf8' });
  if (cc.error || cc.status !== 0) return { bin, skip: `no C compiler to build the seccomp launcher (${cc.error?.message ?? cc.stderr})` };
  const probe = spawnSync(bin, ['--deny', 'io_uring_setup=EPERM', '--', 'true'], { encoding: 'utf8' });
  if (probe.status !== 0) return { bin, skip: `seccomp filters are not available here: ${probe.stderr}` };
  return { bin, skip: false };
}
const launcher = uringSkip ? { bin: '', skip: uringSkip } : buildLauncher();
const prlimitSkip: string | false = uringSkip || (spawnSync('prlimit', ['--nofile=64:64', '--', 'true']).status === 0 ? false : 'prlimit (util-linux) is not available');

/** A fixtures/faults-server child: its port, and a way to send it a command and read its one-line JSON answer. */
interface ServerChild {
  port: number;
  backend: string;
  ask(cmd: string): Promise<Record<string, unknown>>;
  /** What the child wrote on stderr so far. */
  stderr(): string;
  /** Ends the child (stops it if it does not exit by itself within 15 s); resolves with its exit code. */
  close(): Promise<number | null>;
}

/** Starts fixtures/faults-server.js under `wrapper` (e.g. ['prlimit', '--nofile=64:64', '--']) with `opts`. */
async function serverChild(wrapper: string[], opts: object): Promise<ServerChild> {
  const argv = [...wrapper, process.execPath, path.join(here, 'fixtures/faults-server.js'), JSON.stringify(opts)];
  const child = spawn(argv[0]!, argv.slice(1), { cwd: here, stdio: ['pipe', 'pipe', 'pipe'] }) as ChildProcessWithoutNullStreams;
  let err = '';
  child.stderr.on('data', (d) => { err += String(d); });
  const lines: string[] = [];
  let waiter: ((l: string | null) => void) | null = null;
  let ended = false;
  createInterface({ input: child.stdout }).on('line', (l) => { if (waiter) { const w = waiter; waiter = null; w(l); } else lines.push(l); });
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => { ended = true; waiter?.(null); resolve(code); }));
  const next = (what: string) => withTimeout(new Promise<string | null>((resolve) => {
    if (lines.length > 0) resolve(lines.shift()!); else if (ended) resolve(null); else waiter = resolve;
  }), 30_000, what).then((l) => {
    if (l === null) throw new Error(`the server child exited (${what}): ${err}`);
    return JSON.parse(l) as Record<string, unknown>;
  });
  const ready = await next('the server child to start');
  return {
    port: ready.port as number,
    backend: ready.backend as string,
    ask: (cmd) => { child.stdin.write(cmd + '\n'); return next(`the answer to ${cmd}`); },
    stderr: () => err,
    close: async () => {
      const t = setTimeout(() => stop(child), 15_000);
      if (!ended) child.stdin.write('close\n');
      const code = await exited;
      clearTimeout(t);
      return code;
    },
  };
}

/**
 * Ends `child`: SIGTERM first (seccomp-run forwards it to the program it runs; a SIGKILL would orphan that program),
 * SIGKILL if it is still there 5 s later.
 */
function stop(child: { kill(sig: NodeJS.Signals): boolean; exitCode: number | null; signalCode: string | null }): void {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  setTimeout(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); }, 5_000).unref();
}

/** Runs `argv` to completion (bounded: stopped after `ms`); its exit code and output. */
function run(argv: string[], ms = 60_000): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(argv[0]!, argv.slice(1), { cwd: here, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    child.stdout.on('data', (d) => { out += String(d); });
    child.stderr.on('data', (d) => { err += String(d); });
    const t = setTimeout(() => stop(child), ms);
    child.on('close', (code) => { clearTimeout(t); resolve({ code, out, err }); });
  });
}

/** `n` echo clients of `size(i)` seeded bytes each, at most `width` at a time; resolves with the bytes verified. */
async function echoMany(port: number, n: number, size: (i: number) => number, seed: number, width = n): Promise<number> {
  const rand = prng(seed);
  const payloads = Array.from({ length: n }, (_, i) => randomBytes(rand, size(i)));
  let next = 0, total = 0;
  await withTimeout(Promise.all(Array.from({ length: Math.min(width, n) }, async () => {
    while (next < n) { const got = await echoClient(port, payloads[next++]!, { timeoutMs: 60_000 }); total += got; }
  })), 120_000, `${n} echo clients`);
  return total;
}

// ---- 1. receive-buffer ring exhaustion ----------------------------------------------------------------------------
describe('fault: the receive-buffer ring runs dry (ENOBUFS), uring', { skip: uringSkip }, () => {
  it('a ring of 2 buffers × 1 KiB, 64 connections sending up to 100 KB each: every byte verified, enobufs > 0', async (t) => {
    const server = await startEchoServer('uring', { limits: { recvBuffers: 2, recvBufferSize: 1024 } });
    try {
      const sizes = Array.from({ length: 64 }, (_, i) => 1 + ((i * 15_485_863) % 100_000));
      const total = await echoMany(server.port, 64, (i) => sizes[i]!, 141);
      assert.equal(total, sizes.reduce((a, b) => a + b, 0));
      assert.ok(server.ch.stats().enobufs > 0, `stats().enobufs ${server.ch.stats().enobufs} > 0`);
      figures(t, await accountFor(server, 64, total), { connections: 64, bytesVerified: 2 * total });
    } finally { await closeAndCount(server); }
  });

  it('a ring of 2 buffers, one of them held past its handler (holdBuffer), 64 connections: every byte verified in order', async (t) => {
    // this echo answers each read from a later macrotask, in order: it keeps the bytes in the receive buffer itself
    // when it may hold one (heldBuffersMax 1: one of the two) and copies them otherwise; EOF waits its turn too
    const ch = createChannel({ backend: 'uring', limits: { recvBuffers: 2, recvBufferSize: 1024, heldBuffersMax: 1 } });
    const listener = listen({ host: '127.0.0.1', port: 0 });
    const lh = ch.register(listener, 'L');
    const server = { ch, conns: new Set<number>(), counts: { accepted: 0, disconnected: 0 }, errors: [] as string[] };
    const later = new Map<number, [Uint8Array | null, number, number, number | undefined][]>();
    let holds = 0, listenerGone = false;
    const answer = (h: number) => {
      const q = later.get(h)!;
      later.delete(h);
      for (const [b, off, n, token] of q) {
        if (ch.isOpen(h)) { if (b === null) ch.disconnect(h); else ch.write(h, b, off, n); }
        if (token !== undefined) ch.releaseBuffer(token);
      }
    };
    ch.onEvent((ev) => {
      const h = ev.handle;
      switch (ev.type) {
        case 'accept': server.counts.accepted++; server.conns.add(h); ch.read(h); break;
        case 'read': {
          let q = later.get(h);
          if (q === undefined) { later.set(h, q = []); setImmediate(answer, h); }
          if (ev.result === 0) q.push([null, 0, 0, undefined]);
          else if (ch.heldBuffers < 1) { holds++; q.push([ev.buffer, ev.offset, ev.result, ch.holdBuffer()]); }
          else q.push([Buffer.from(ev.buffer.subarray(ev.offset, ev.offset + ev.result)), 0, ev.result, undefined]);
          break;
        }
        case 'error': server.errors.push(ev.code!); if (ch.isOpen(h)) ch.disconnect(h, true); break;
        case 'disconnect': if (h === lh) listenerGone = true; else if (server.conns.delete(h)) server.counts.disconnected++; break;
        default: break;
      }
    });
    ch.accept(lh);
    try {
      const total = await echoMany(listener.port, 64, (i) => 1 + ((i * 15_485_863) % 60_000), 144);
      assert.ok(holds > 0 && ch.stats().enobufs > 0, `holds ${holds}, enobufs ${ch.stats().enobufs}`);
      assert.equal(ch.heldBuffers, 0);
      figures(t, await accountFor(server, 64, total), { connections: 64, bytesVerified: 2 * total, holds });
    } finally {
      if (ch.isOpen(lh)) ch.unregister(lh);
      await waitFor(() => listenerGone, 'the listener handle to go').catch(() => undefined);
      listener.close();
      ch.close();
    }
  });
});

// ---- 2. completion-queue overflow ---------------------------------------------------------------------------------
describe('fault: the completion queue overflows, uring', { skip: uringSkip }, () => {
  for (const lwsocket of [true, false]) {
    it(`a 4-entry CQ (2 SQ entries, 4 event rows) and 200 connections (${lwsocket ? 'lwsockets' : 'regular fds'}) with their bytes queued at once: nothing lost`, async (t) => {
      const limits = { sqEntries: 2, cqEntries: 4, requestRows: 2, eventRows: 4, recvBufferSize: 256 };
      const server = await startEchoServer('uring', { limits, lwsocket });
      try {
        assert.equal(server.ch.features.cqEntries, 4);
        await new Promise((r) => setImmediate(r));   // the multishot accept is in the kernel
        // while this thread sleeps, 200 connections are made and each writes 20,000 B: the accept and then the
        // receives (multishot, 256 B buffers: ~80 completions per connection) post far more completions than 4
        const r = await burst(server.port, 200, 20_000, 142);
        assert.equal(r.blocked, 'ok', 'every client connected and wrote while the server was blocked');
        assert.deepEqual(r.failures, []);
        assert.equal(r.verified, 200);
        const st = server.ch.stats();
        assert.ok(st.cqOverflows > 0, `stats().cqOverflows ${st.cqOverflows} > 0`);
        figures(t, await accountFor(server, 200, 200 * 20_000), { connections: 200, bytesVerified: 2 * 200 * 20_000, lwsocket });
      } finally { await closeAndCount(server); }
    });
  }
});

describe('closing a channel with completions not yet delivered, uring', { skip: uringSkip }, () => {
  // Found by closing a channel in the middle of the overflowed burst above (regular-fd accepts): one client hung until
  // its own timeout. Reduced: a completion that carries a new process fd (an accept into a regular fd, an fd install)
  // sits in the CQ, not yet delivered, when close() runs (it completed inline, during the flush that submitted it).
  /** How `s` ends within 5 s after the server side is gone: 'EOF', an error code, or 'hung'. */
  const ending = (s: net.Socket) => new Promise<string>((resolve) => {
    const t = setTimeout(() => resolve('hung'), 5_000);
    s.once('end', () => { clearTimeout(t); resolve('EOF'); });
    s.once('error', (e: NodeJS.ErrnoException) => { clearTimeout(t); resolve(e.code ?? 'error'); });
    s.resume();
  });
  // (regression tests: close() discarded completions not yet delivered, and the fd of an accept into a regular fd, or of
  // an fd install, that had completed was never closed; its peer hung until the process exited)

  it('an accept into a regular fd that completed but was not delivered: close() closes that connection', async () => {
    const ch = createChannel({ backend: 'uring' });
    const listener = listen({ host: '127.0.0.1', port: 0 });
    const lh = ch.register(listener, 'L');
    const c = await connectSocket(listener.port);   // queued in the listener: the accept below completes at once
    try {
      ch.accept(lh, { lwsocket: false, count: 1 });
      for (let i = 0; i < 3; i++) await Promise.resolve();   // the microtask flush has submitted it
      assert.equal(ch.stats().inKernel, 0, 'the accept has completed (its completion waits in the CQ)');
      ch.close();
      assert.notEqual(await ending(c), 'hung', 'the accepted connection was closed');
    } finally { c.destroy(); listener.close(); }
  });

  it('an fd install (toFd) that completed but was not delivered: close() closes the new fd', async () => {
    let h = -1;
    const ch = createChannel({ backend: 'uring' });
    const listener = listen({ host: '127.0.0.1', port: 0 });
    const lh = ch.register(listener, 'L');
    ch.onEvent((ev) => { if (ev.type === 'accept') h = ev.handle; });
    ch.accept(lh);
    const c = await connectSocket(listener.port);
    try {
      await waitFor(() => h >= 0, 'the accept');
      const installed = ch.toFd(h).then((fd) => `fd ${fd}`, (e: { code: string }) => e.code);
      for (let i = 0; i < 3; i++) await Promise.resolve();
      ch.close();
      assert.equal(await installed, 'MP_ERR_CLOSED');
      assert.notEqual(await ending(c), 'hung', 'the connection was closed');
    } finally { c.destroy(); listener.close(); }
  });
});

describe('fault: an lwsocket\'s address read while the completion queue overflows, uring', { skip: uringSkip }, () => {
  // (regression tests: the address of an lwsocket is read through a temporary fd, installed by a request that completes
  // inline; its result was looked for only in the CQ right after that enter. With the CQ full the completion went to
  // the overflow list, the read gave up (undefined), and the new fd the completion carried, delivered later to nobody,
  // was never closed: the process's fds leaked and the peer never saw its connection close.)
  const limits = { sqEntries: 2, cqEntries: 4, requestRows: 2, eventRows: 4, recvBufferSize: 256 };
  /** One end's address of `h`, or why it was not read: the error's code ('undefined': no error, no address). */
  function readEnd(ch: Channel, h: number, side: 'local' | 'remote'): SocketAddress | string {
    try { return ch.socketAddress(h, side) ?? 'undefined'; } catch (e) { return String((e as { code?: unknown }).code ?? e); }
  }
  /** Waits (bounded) until this process has no more fds open than `before`; returns how many more it has. */
  async function fdsAbove(before: number): Promise<number> {
    await waitFor(() => fdCount() <= before, 'the fds to return to the baseline', { ms: 5_000 }).catch(() => undefined);
    return fdCount() - before;
  }

  it('a 4-entry CQ, 100 connections and their bytes at once, every connection\'s addresses read from its handlers until known: each read is right or fails with EAGAIN; no fd left behind', async (t) => {
    const N = 100;
    const before = fdCount();
    // per connection (numbered in accept order): the addresses once read; every read's outcome
    const connOf = new Map<number, number>();
    const remote: (SocketAddress | undefined)[] = [], local: (SocketAddress | undefined)[] = [];
    const outcomes = new Map<string, number>();
    let accepted = 0;
    const tap = (ev: { type: string; handle: number }, ch: Channel) => {
      if (ev.type === 'accept') connOf.set(ev.handle, accepted++);
      if (ev.type !== 'accept' && ev.type !== 'read') return;
      const c = connOf.get(ev.handle);
      if (c === undefined || (remote[c] && local[c])) return;
      for (const side of ['remote', 'local'] as const) {
        if ((side === 'remote' ? remote : local)[c]) continue;
        const r = readEnd(ch, ev.handle, side);
        const key = typeof r === 'string' ? r : 'read';
        outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
        if (typeof r !== 'string') { if (side === 'remote') remote[c] = r; else local[c] = r; }
      }
    };
    const server = await startEchoServer('uring', { limits, lwsocket: true, tap });
    let r: BurstResult, cqOverflows = 0;
    try {
      assert.equal(server.ch.features.cqEntries, 4);
      await new Promise((res) => setImmediate(res));   // the multishot accept is in the kernel
      r = await burst(server.port, N, 8_000, 143);
      cqOverflows = server.ch.stats().cqOverflows;
    } finally { await closeAndCount(server); }
    const left = await fdsAbove(before);
    const seen = Object.fromEntries(outcomes);
    t.diagnostic(JSON.stringify({ connections: N, reads: seen, fdsLeft: left, cqOverflows }));
    assert.equal(left, 0, `fds left open after every connection and the channel closed (reads: ${JSON.stringify(seen)})`);
    assert.equal(r.blocked, 'ok', 'every client connected and wrote while the server was blocked');
    assert.deepEqual(r.failures, [], 'every client got its bytes back and saw its connection close');
    assert.equal(r.verified, N);
    // the fault was forced: some installs did not complete within their enter
    assert.ok((outcomes.get('EAGAIN') ?? 0) > 0, `some reads found the completion queue overflowing: ${JSON.stringify(seen)}`);
    for (const k of outcomes.keys()) assert.ok(k === 'read' || k === 'EAGAIN', `a read either gives the address or fails with EAGAIN: ${JSON.stringify(seen)}`);
    // every address read is the one its connection has: a client's own port (each for one connection only), the server's
    const ports = new Set(r.ports);
    const owner = new Map<number, number>();
    for (let c = 0; c < accepted; c++) {
      const a = remote[c], b = local[c];
      if (a) {
        assert.equal(a.address, '127.0.0.1'); assert.equal(a.family, 'IPv4');
        assert.ok(ports.has(a.port), `connection ${c}: remote port ${a.port} is a client's`);
        assert.equal(owner.get(a.port) ?? c, c, `remote port ${a.port} read for connections ${owner.get(a.port)} and ${c}`);
        owner.set(a.port, c);
      }
      if (b) { assert.equal(b.address, '127.0.0.1'); assert.equal(b.port, server.port); }
    }
    assert.ok(owner.size > 0, 'some addresses were read');
  });

  it('serveChannel: Conn.remoteAddress/remotePort/localPort read in every data() until known: each value right, or undefined for that read only; no fd left behind', async (t) => {
    const N = 100;
    const before = fdCount();
    const listener = listen({ host: '127.0.0.1', port: 0 });
    const ch = createChannel({ backend: 'uring', limits });
    // per connection: its values once read; reads that left one undefined; whether one was read after such a miss
    const got: { address?: string; port?: number; localPort?: number; misses: number; readAfterMiss: boolean }[] = [];
    let r: BurstResult;
    try {
      const srv = serveChannel(ch, listener, (conn) => {
        const seen: (typeof got)[number] = { misses: 0, readAfterMiss: false };
        got.push(seen);
        return {
          data(buf, offset, length) {
            const missing = [seen.address, seen.port, seen.localPort].filter((v) => v === undefined).length;
            if (seen.address === undefined) seen.address = conn.remoteAddress;
            if (seen.port === undefined) seen.port = conn.remotePort;
            if (seen.localPort === undefined) seen.localPort = conn.localPort;
            const still = [seen.address, seen.port, seen.localPort].filter((v) => v === undefined).length;
            if (seen.misses > 0 && still < missing) seen.readAfterMiss = true;
            if (still > 0) seen.misses++;
            conn.write(buf, offset, length);
          },
        };
      }, { lwsocket: true });
      await new Promise((res) => setImmediate(res));
      r = await burst(listener.port, N, 8_000, 145);
      await srv.close(2_000);
    } finally { ch.close(); listener.close(); }
    const left = await fdsAbove(before);
    const known = got.filter((g) => g.address !== undefined && g.port !== undefined && g.localPort !== undefined).length;
    const missed = got.filter((g) => g.misses > 0).length;
    t.diagnostic(JSON.stringify({ connections: got.length, addressesKnown: known, connectionsWithMisses: missed, readAfterAMiss: got.filter((g) => g.readAfterMiss).length, fdsLeft: left }));
    assert.equal(left, 0, 'fds left open after every connection and the channel closed');
    assert.equal(r.blocked, 'ok');
    assert.deepEqual(r.failures, [], 'every client got its bytes back and saw its connection close');
    assert.equal(got.length, N);
    assert.ok(missed > 0, 'some reads found the completion queue overflowing');
    const ports = new Set(r.ports), owners = new Set<number>();
    for (const g of got) {
      if (g.address !== undefined) assert.equal(g.address, '127.0.0.1');
      if (g.localPort !== undefined) assert.equal(g.localPort, listener.port);
      if (g.port === undefined) continue;
      assert.ok(ports.has(g.port) && !owners.has(g.port), `remote port ${g.port}: a client's, and one connection's only`);
      owners.add(g.port);
    }
  });

  it('the channel closed in a handler right after a read that could not be made (its install still pending): no fd left behind', async (t) => {
    const N = 60;
    const before = fdCount();
    const listener = listen({ host: '127.0.0.1', port: 0 });
    const ch = createChannel({ backend: 'uring', limits });
    const outcomes: string[] = [];
    let r: BurstResult;
    try {
      const lh = ch.register(listener);
      ch.onEvent((ev) => {
        if (ev.type !== 'accept' || outcomes.length > 0) return;
        ch.read(ev.handle);
        // read until a read cannot be made (each read made keeps its completion in the 4-entry CQ until the next
        // drain: a few reads fill it), then close with that install's completion still to come
        for (let i = 0; i < 64; i++) {
          const a = readEnd(ch, ev.handle, 'remote');
          if (typeof a === 'string') { outcomes.push(a); ch.close(); listener.close(); return; }   // (the backlog too)
        }
        outcomes.push('every read made');
      });
      ch.accept(lh);
      await new Promise((res) => setImmediate(res));
      r = await burst(listener.port, N, 8_000, 144);
    } finally { ch.close(); listener.close(); }
    const left = await fdsAbove(before);
    t.diagnostic(JSON.stringify({ outcomes, fdsLeft: left, clientEndings: r.endings }));
    assert.equal(left, 0, `fds left open after close() (the read: ${outcomes.join()})`);
    assert.deepEqual(outcomes, ['EAGAIN'], 'a read could not be made, and said so');
    assert.ok(!Object.keys(r.endings).some((e) => e.startsWith('timed out')), `no client was left hanging: ${JSON.stringify(r.endings)}`);
  });
});

// ---- 3. the direct-descriptor table full --------------------------------------------------------------------------
describe('fault: the direct-descriptor table is full, uring', { skip: uringSkip }, () => {
  /** Opens `n` connections and waits until the server has accepted all of them (they stay open). */
  async function hold(server: EchoServer, n: number): Promise<net.Socket[]> {
    const before = server.counts.accepted;
    const socks: net.Socket[] = [];
    for (let i = 0; i < n; i++) socks.push(await connectSocket(server.port));
    await waitFor(() => server.counts.accepted === before + n, `${n} accepts`);
    return socks;
  }
  /** Each socket sends its own seeded bytes and checks the echo, then ends; resolves with the bytes verified. */
  async function echoOn(socks: net.Socket[], seed: number): Promise<number> {
    const rand = prng(seed);
    const got = await withTimeout(Promise.all(socks.map((s, i) => {
      const p = randomBytes(rand, 500 + i * 1500);
      const back = new Promise<number>((resolve, reject) => {
        let n = 0;
        s.on('data', (d: Buffer) => {
          if (!d.equals(p.subarray(n, n + d.length))) reject(new Error(`connection ${i}: bytes differ in [${n}, ${n + d.length})`));
          n += d.length;
        });
        s.once('end', () => (n === p.length ? resolve(n) : reject(new Error(`connection ${i}: EOF after ${n} B`))));
        s.once('error', reject);
      });
      s.end(p);
      return back;
    })), 60_000, 'the echoes');
    return got.reduce((a, b) => a + b, 0);
  }
  const lw = (server: EchoServer) => [...server.conns].filter((h) => server.ch.isLwsocket(h)).length;

  it('8 slots, filled twice (16 connections each time): MP_ERR_TABLE_FULL once per episode, all served, back to lwsockets', async (t) => {
    const server = await startEchoServer('uring', { limits: { files: 8 } });
    const socks: net.Socket[] = [];
    try {
      let bytes = 0;
      for (let round = 0; round < 2; round++) {
        const held = await hold(server, 16);
        socks.push(...held);
        assert.equal(lw(server), 8, `round ${round}: the table is used first`);
        assert.equal(server.conns.size - lw(server), 8, `round ${round}: the rest are regular fds`);
        assert.deepEqual(server.listenerErrors, Array(round + 1).fill('MP_ERR_TABLE_FULL'), 'reported once per time the table fills');
        assert.equal(server.ch.stats().tableFullFallbacks, 8 * (round + 1));
        bytes += await echoOn(held, 143 + round);
        await waitFor(() => server.conns.size === 0, 'the 16 connections to close');
        // the table is free again: the next connection is an lwsocket
        const probe = await hold(server, 1);
        socks.push(...probe);
        assert.equal(lw(server), 1, `round ${round}: back to lwsockets once slots are free`);
        bytes += await echoOn(probe, 145 + round);
      }
      figures(t, await accountFor(server, 34, bytes), { connections: 34, bytesVerified: 2 * bytes });
    } finally { for (const s of socks) s.destroy(); await closeAndCount(server); }
  });

  it('8 slots, churn across the boundary (120 short connections, 12 at a time): every one served, the counts agree', async (t) => {
    // connections close while others arrive: slots free while the listener accepts regular fds (its fd accept is
    // cancelled and a direct one armed) and fill again, over and over
    const server = await startEchoServer('uring', { limits: { files: 8 } });
    try {
      const total = await echoMany(server.port, 120, (i) => 100 + ((i * 7_919) % 30_000), 146, 12);
      const st = server.ch.stats();
      assert.ok(st.tableFullFallbacks > 0, 'some connections were regular fds');
      assert.ok(server.listenerErrors.length > 0 && server.listenerErrors.every((c) => c === 'MP_ERR_TABLE_FULL'), `listener errors: ${server.listenerErrors}`);
      figures(t, await accountFor(server, 120, total), { connections: 120, bytesVerified: 2 * total, listenerErrors: server.listenerErrors.length });
    } finally { await closeAndCount(server); }
  });

  it('a burst into a multishot direct accept (4,200 slots, 200 connections queued at once): all lwsockets, none lost', async (t) => {
    // with more slots free than an accept queue holds (somaxconn + 64), the listener's direct accept is multishot: the
    // kernel takes a slot for every connection queued, in one go, before the channel sees any of them
    // accept events delivered in one go (one completion batch): more than files - burstSlots (40) means the kernel
    // took more slots under the multishot accept than the channel lets it arm for
    let lwAccepted = 0, run = 0, longestRun = 0;
    const server = await startEchoServer('uring', {
      limits: { files: 4200 },
      tap(ev, ch) {
        if (ev.type !== 'accept') return;
        if (ch.isLwsocket(ev.handle)) lwAccepted++;
        if (run++ === 0) queueMicrotask(() => { longestRun = Math.max(longestRun, run); run = 0; });
      },
    });
    try {
      await new Promise((r) => setImmediate(r));   // the multishot accept is in the kernel
      const r = await burst(server.port, 200, 2_000, 147);
      assert.equal(r.blocked, 'ok', 'every client connected and wrote while the server was blocked');
      assert.deepEqual(r.failures, []);
      assert.equal(r.verified, 200);
      assert.deepEqual(server.listenerErrors, [], 'the table never filled');
      assert.equal(lwAccepted, 200, 'every connection was an lwsocket');
      assert.ok(longestRun > 40, `the multishot accept took ${longestRun} slots in one go (more than the 40 it is armed for)`);
      assert.equal(server.ch.stats().tableFullFallbacks, 0, 'no connection fell back to a regular fd');
      figures(t, await accountFor(server, 200, 200 * 2_000), { connections: 200, bytesVerified: 2 * 200 * 2_000, longestAcceptRun: longestRun });
    } finally { await closeAndCount(server); }
  });
});

// ---- 4. submission back-pressure ----------------------------------------------------------------------------------
describe('fault: a 2-entry submission queue under a burst of requests, uring', { skip: uringSkip }, () => {
  it('one handler stages, for 40 connections, 50 writes, a no-copy write, two sendFiles (spliced and read) and a close each: every stream whole and in order', async (t) => {
    // a 2-entry SQ and 2 request rows: every second request is its own io_uring_enter, a splice chain (3 requests)
    // never fits one flush, and a close linked behind its send must still go with it
    const N = 40;
    const dir = mkdtempSync(path.join(tmpdir(), 'megapipe-faults-file-'));
    const rand = prng(148);
    const file = randomBytes(rand, 300_000);
    writeFileSync(path.join(dir, 'f'), file);
    const fd = openSync(path.join(dir, 'f'), 'r');
    const big = Array.from({ length: N }, () => randomBytes(rand, 16_384));
    const pieces = (i: number) => Array.from({ length: 50 }, (_, k) => Buffer.from(k === 0 ? `conn ${i}\n` : `piece ${k} of connection ${i};`));
    const expected = (i: number) => Buffer.concat([...pieces(i), big[i]!, file, Buffer.from(`trailer ${i}\n`), file.subarray(1000, 6000)]);
    const ch = createChannel({ backend: 'uring', limits: { sqEntries: 2, requestRows: 2 } });
    const listener = listen({ host: '127.0.0.1', port: 0 });
    const lh = ch.register(listener, 'L');
    const conns: number[] = [], errors: string[] = [], fileErrors: string[] = [];
    let disconnects = 0, listenerGone = false;
    ch.onEvent((ev) => {
      switch (ev.type) {
        case 'accept':
          conns.push(ev.handle);
          if (conns.length < N) break;
          for (const [i, h] of conns.entries()) {
            for (const p of pieces(i)) ch.write(h, p);
            ch.writeNoCopy(h, big[i]!);
            ch.sendFile(h, fd, 0, file.length).catch((e: { code: string }) => fileErrors.push(e.code));
            ch.writeAscii(h, `trailer ${i}\n`);
            ch.sendFile(h, fd, 1000, 5000).catch((e: { code: string }) => fileErrors.push(e.code));
            ch.disconnect(h);   // graceful: after every byte above
          }
          break;
        case 'error': errors.push(ev.code!); if (ch.isOpen(ev.handle)) ch.disconnect(ev.handle, true); break;
        case 'disconnect': if (ev.handle === lh) listenerGone = true; else disconnects++; break;
        default: break;
      }
    });
    ch.accept(lh);
    try {
      const got = await withTimeout(Promise.all(Array.from({ length: N }, async () => {
        const s = await connectSocket(listener.port);
        return readAll(s, 60_000);
      })), 90_000, 'every stream');
      const seen = new Set<number>();
      for (const b of got) {
        const i = Number(/^conn (\d+)\n/.exec(b.subarray(0, 16).toString('latin1'))?.[1]);
        assert.ok(Number.isInteger(i) && !seen.has(i), 'each stream starts with its own header');
        seen.add(i);
        assert.ok(b.equals(expected(i)), `connection ${i}: ${b.length} B, ${expected(i).length} B expected, in order`);
      }
      await waitFor(() => disconnects === N, 'a disconnect event per connection');
      assert.deepEqual(errors, []);
      assert.deepEqual(fileErrors, []);
      assert.equal(ch.handles, 1, 'only the listener handle is left');
      const st = ch.stats();
      assert.equal(st.requestsRefused, 0);
      assert.equal(st.bytesWritten, got.reduce((a, b) => a + b.length, 0));
      assert.ok(st.filesSpliced > 0, 'some sendFiles were spliced (3-request chains)');
      assert.equal(ch.features.sqEntries, 2);
      figures(t, st, { connections: N, bytesVerified: st.bytesWritten, flushes: st.flushes, submitted: st.submitted, filesSpliced: st.filesSpliced, spliceNoPipe: st.spliceNoPipe });
    } finally {
      if (ch.isOpen(lh)) ch.unregister(lh);
      await waitFor(() => listenerGone, 'the listener handle to go').catch(() => undefined);
      listener.close();
      ch.close();
      closeSync(fd);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('fault: a transient refusal leaves the submission queue part-full, then a send and the close linked behind it (seccomp)', { skip: launcher.skip }, () => {
  // Found with the lead's echo load (test/fixtures/echo-load) under every third submitting io_uring_enter refused
  // (EBUSY) with 8 SQ entries, 8 request rows, 2 receive buffers and an 8-slot table: now and then a client read a
  // clean EOF with the last bytes of its echo missing, and no error event. Reduced (fixtures/faults-split-link): the
  // refused flush's 7 requests stay in the 8-entry SQ; the next flush puts a send in the last entry and must submit
  // before the close hard-linked behind it fits, so the link is cut: the kernel punts the lone link head (the send) to
  // io-wq, which looks its descriptor up only when it runs; the close runs at once, in the next submission. The send
  // then finds the descriptor gone (EBADF: dropped silently, the connection being closed) — or, once the slot or fd
  // number was reused by the next accept, sends its bytes to that other connection.
  type Split = { rounds: number; short: number; got: number[]; foreign: number; errors: string[] };
  const split = async (wrapper: string[], kind: string): Promise<Split> => {
    const r = await run([...wrapper, process.execPath, path.join(here, 'fixtures/faults-split-link.js'), kind, '20']);
    assert.equal(r.code, 0, r.err);
    return JSON.parse(r.out.split('\n').find((l) => l.startsWith('{'))!) as Split;
  };
  const whole = (r: Split) => ({ short: r.short, foreign: r.foreign, errors: r.errors });

  it('without the refusal (the fixture\'s control): 20 sends with a close linked behind each arrive whole, each on its own connection', async () => {
    for (const kind of ['lw', 'fd']) assert.deepEqual(whole(await split([], kind)), { short: 0, foreign: 0, errors: [] }, kind);
  });

  it('with every other io_uring_enter(to_submit = 7) refused (EBUSY): every send with a close linked behind it arrives whole, on its own connection (lwsockets and regular fds)', async () => {
    for (const kind of ['lw', 'fd']) {
      const r = await split([launcher.bin, '--flaky', 'io_uring_enter:ARG1=7=EBUSY/2', '--'], kind);
      assert.deepEqual(whole(r), { short: 0, foreign: 0, errors: [] }, `${kind}: ${r.short} of ${r.rounds} closed connections did not get their last send (bytes read before EOF: ${r.got}); ${r.foreign} bytes went to another connection`);
    }
  });
});

// ---- 5. RLIMIT_NOFILE exhausted -----------------------------------------------------------------------------------
/** Asks the child for its state until `cond` holds (bounded); the last state. */
async function stateWhen(c: ServerChild, cond: (s: Record<string, unknown>) => boolean, what: string): Promise<Record<string, unknown>> {
  const end = Date.now() + 30_000;
  for (;;) {
    const s = await c.ask('state');
    if (cond(s)) return s;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(s)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The child's final state once every connection is gone: only the listener left, a disconnect per accept. */
function accountForChild(s: Record<string, unknown>, conns: number, bytes: number): void {
  const st = s.stats as ChannelStats;
  assert.equal(s.conns, 0, 'no connection left open');
  assert.equal(s.accepted, conns, 'accept events');
  assert.equal(s.disconnects, conns, 'one disconnect event per connection');
  assert.equal(s.handles, 1, 'only the listener handle is left');
  assert.equal(st.accepted, conns, 'stats().accepted');
  assert.equal(st.bytesRead, bytes, 'stats().bytesRead');
  assert.equal(st.bytesWritten, bytes, 'stats().bytesWritten');
  assert.deepEqual(s.errors, {}, 'no error event');
}

describe('fault: the process fd table is full (RLIMIT_NOFILE, prlimit)', { skip: prlimitSkip }, () => {
  // the server runs in a child under `prlimit --nofile=64:64` (Node raises a soft limit to the hard one at start, so
  // both are lowered); the clients are in this process
  const limited = ['prlimit', '--nofile=64:64', '--'];

  it('regular fds (lwsocket: false), 150 clients at once: accept fails with EMFILE, the listener says so and accepts again as its connections close; all served', async (t) => {
    const c = await serverChild(limited, { backend: 'uring', lwsocket: false, limits: { files: 32 } });
    try {
      assert.equal(c.backend, 'uring');
      const total = await echoMany(c.port, 150, (i) => 1 + ((i * 7_919) % 20_000), 151);
      const s = await stateWhen(c, (x) => x.conns === 0, 'every connection to close');
      const le = s.listenerErrors as Record<string, number>;
      assert.deepEqual(Object.keys(le), ['EMFILE'], `listener errors: ${JSON.stringify(le)}`);
      accountForChild(s, 150, total);
      figures(t, s.stats as ChannelStats, { connections: 150, bytesVerified: 2 * total, emfile: le.EMFILE });
    } finally { assert.equal(await c.close(), 0, c.stderr()); }
  });

  // A documented divergence (README, Backends), not a bug megapipe can fix: node:net's libuv answers EMFILE by accepting
  // and closing every queued connection (uv__emfile_trick) and reports nothing, so the portable backend can neither
  // keep them waiting nor say so. What it must still do: stay up, serve every connection it did accept whole, lose
  // track of nothing, and serve new connections once descriptors are free.
  it('the portable backend (the fallback), 150 clients at once: the clients libuv closed see a reset (the documented divergence); every accepted one is served whole; new ones are served after', async (t) => {
    const c = await serverChild(limited, { backend: 'portable' });
    try {
      assert.equal(c.backend, 'portable');
      const rand = prng(154);
      const payloads = Array.from({ length: 150 }, (_, i) => randomBytes(rand, 1 + ((i * 7_919) % 20_000)));
      const outcomes = await withTimeout(Promise.all(payloads.map((p) => echoClient(c.port, p, { timeoutMs: 60_000 }).then(
        (n) => ({ ok: true as const, n }), (e: Error) => ({ ok: false as const, why: e.message })))), 120_000, '150 echo clients');
      const served = outcomes.filter((o) => o.ok), refused = outcomes.filter((o) => !o.ok);
      // a client either got every byte back, or was closed by libuv before the server read anything (a reset or an
      // EOF with nothing back): never a partial or corrupted echo
      for (const o of refused) assert.match(o.why, /socket error (ECONNRESET|EPIPE)|EOF after 0 B/, o.why);
      assert.ok(served.length >= 1, 'some clients are served');
      t.diagnostic(`served ${served.length}, closed by libuv ${refused.length}`);
      const after = await echoClient(c.port, randomBytes(rand, 4096), { timeoutMs: 30_000 });
      assert.equal(after, 4096, 'a connection made after the burst is served');
      const s = await stateWhen(c, (x) => x.conns === 0, 'every connection to close');
      const total = served.reduce((a, o) => a + (o.ok ? o.n : 0), 0) + 4096;
      accountForChild(s, served.length + 1, total);
      assert.deepEqual(Object.keys(s.listenerErrors as object), [], 'libuv reports nothing (the divergence)');
    } finally { await c.close(); }
  });

  it('regular fds: once fds that the channel does not own are freed, the listener accepts again', async () => {
    const c = await serverChild(limited, { backend: 'uring', lwsocket: false, limits: { files: 32 } });
    try {
      const filled = await c.ask('fill');
      assert.equal(filled.code, 'EMFILE');
      const first = echoClient(c.port, Buffer.from('queued while the fd table is full'), { timeoutMs: 5_000 });
      await stateWhen(c, (x) => (x.listenerErrors as Record<string, number>).EMFILE === 1, 'the EMFILE listener-error');
      await c.ask('free');
      // the connection queued meanwhile, and a new one, are accepted and echoed
      assert.equal(await first, 33);
      assert.equal(await echoClient(c.port, Buffer.from('after the fds were freed'), { timeoutMs: 5_000 }), 24);
      accountForChild(await stateWhen(c, (x) => x.conns === 0, 'every connection to close'), 2, 57);
    } finally { await c.close(); }
  });

  it('lwsockets (a 48-slot table): connections beyond the fd limit are lwsockets; past the table, fds until EMFILE; all served', async (t) => {
    const c = await serverChild(limited, { backend: 'uring', lwsocket: true, limits: { files: 48 } });
    const socks: net.Socket[] = [];
    try {
      for (let i = 0; i < 110; i++) socks.push(await connectSocket(c.port));
      // more connections open at once than the process may have fds: 48 lwsockets, then regular fds until EMFILE
      const s = await stateWhen(c, (x) => (x.listenerErrors as Record<string, number>).EMFILE !== undefined, 'accepting to hit EMFILE');
      assert.ok((s.conns as number) > 64, `${s.conns} connections open in a process limited to 64 fds`);
      assert.equal(s.lwsockets, 48);
      assert.equal((s.listenerErrors as Record<string, number>).MP_ERR_TABLE_FULL, 1);
      const rand = prng(152);
      const got = await withTimeout(Promise.all(socks.map((sock) => {
        const p = randomBytes(rand, 3000);
        const back = readAll(sock, 60_000);
        sock.end(p);
        return back.then((b) => { assert.ok(b.equals(p), 'echoed intact'); return b.length; });
      })), 90_000, 'every echo');
      const total = got.reduce((a, b) => a + b, 0);
      const end = await stateWhen(c, (x) => x.conns === 0, 'every connection to close');
      accountForChild(end, 110, total);
      figures(t, end.stats as ChannelStats, { connections: 110, bytesVerified: 2 * total, openAtOnce: s.conns, listenerErrors: end.listenerErrors, lwsockets: end.lwsockets });
    } finally { for (const x of socks) x.destroy(); assert.equal(await c.close(), 0, c.stderr()); }
  });

  it('toFd with the fd table full: rejects with EMFILE, the lwsocket stays and echoes; converts once fds are free', async () => {
    const c = await serverChild(limited, { backend: 'uring', lwsocket: true, limits: { files: 16 } });
    const s = await connectSocket(c.port);
    try {
      const rand = prng(153);
      const roundTrip = async (n: number) => {
        const p = randomBytes(rand, n);
        const back = withTimeout(new Promise<Buffer>((resolve, reject) => {
          const parts: Buffer[] = [];
          let got = 0;
          const onData = (d: Buffer) => { parts.push(d); got += d.length; if (got >= n) { s.off('data', onData); resolve(Buffer.concat(parts)); } };
          s.on('data', onData);
          s.once('error', reject);
        }), 10_000, 'the echo');
        s.write(p);
        assert.ok((await back).equals(p), 'echoed intact');
        return n;
      };
      let bytes = await roundTrip(5_000);
      assert.equal((await c.ask('fill')).code, 'EMFILE');
      assert.deepEqual(await c.ask('tofd'), { tofd: 'EMFILE', open: true });
      bytes += await roundTrip(7_000);   // reading was stopped for the conversion: it resumed
      await c.ask('free');
      assert.deepEqual(await c.ask('tofd'), { tofd: 'ok', open: true });   // left the channel; its fd was closed
      assert.equal((await readAll(s, 10_000)).length, 0, 'then EOF');
      const end = await stateWhen(c, (x) => x.conns === 0, 'the converted connection to leave the channel');
      accountForChild(end, 1, bytes);
      assert.deepEqual(end.listenerErrors, {});
    } finally { s.destroy(); assert.equal(await c.close(), 0, c.stderr()); }
  });

  // What happens when the lwsocket table is larger than the fd limit allows: the kernel sizes a fixed-file table against
  // the soft RLIMIT_NOFILE (io_uring_register FILES2: EMFILE), limits.files is checked against the hard one
  const createScript = (backends: string[], limits: object, lower?: string) => `
    import { execFileSync } from 'node:child_process';
    ${lower ? `execFileSync('prlimit', ['--pid', String(process.pid), '${lower}']);` : ''}
    const warnings = [];
    process.on('warning', (w) => warnings.push(w.message));
    const m = await import('./../src/index.js');
    const out = {};
    for (const b of ${JSON.stringify(backends)}) {
      try { const ch = m.createChannel({ backend: b, limits: ${JSON.stringify(limits)} }); out[b] = ch.backend; ch.close(); }
      catch (e) { out[b] = e.code + ': ' + e.message; }
    }
    setImmediate(() => console.log(JSON.stringify({ out, warnings })));`;

  it('a table larger than the soft limit (lowered after start: 100 of 20,000): auto falls back saying why, uring throws EMFILE as node would', async () => {
    const r = await run([process.execPath, '--input-type=module', '-e', createScript(['uring', 'auto'], { files: 1000 }, '--nofile=100:20000')]);
    const res = JSON.parse(r.out) as { out: Record<string, string>; warnings: string[] };
    assert.match(res.out.uring!, /^EMFILE: register sparse file table EMFILE: too many open files$/);
    assert.equal(res.out.auto, 'portable');
    assert.equal(res.warnings.length, 1);
    assert.match(res.warnings[0]!, /portable backend.*register sparse file table EMFILE: too many open files/);
  });

  it('the default limits under a hard limit below 16,384 (prlimit --nofile=1024:1024): a channel is created on every backend', async () => {
    const r = await run(['prlimit', '--nofile=1024:1024', '--', process.execPath, '--input-type=module', '-e', createScript(['auto', 'uring', 'portable'], {})]);
    const res = JSON.parse(r.out) as { out: Record<string, string> };
    assert.deepEqual(res.out, { auto: 'uring', uring: 'uring', portable: 'portable' });
  });
});

// ---- 6. io_uring refused at start -----------------------------------------------------------------------------------
describe('fault: io_uring refused when the process starts (seccomp: io_uring_setup fails)', { skip: launcher.skip }, () => {
  const script = `
    const warnings = [];
    process.on('warning', (w) => warnings.push(w.message));
    const m = await import('./../src/index.js');
    const out = [];
    for (const b of ['auto', 'auto', 'auto', 'uring']) {
      try { const ch = m.createChannel({ backend: b }); out.push(ch.backend); ch.close(); }
      catch (e) { out.push(e.code + ': ' + e.message); }
    }
    setImmediate(() => console.log(JSON.stringify({ out, warnings })));`;

  for (const [errno, why] of [['EPERM', /io_uring_setup refused \(EPERM\)/], ['ENOSYS', /io_uring_setup not available \(ENOSYS\)/]] as const) {
    it(`${errno}: three 'auto' channels are portable and the warning comes once; 'uring' throws MP_ERR_BACKEND_UNAVAILABLE`, async () => {
      const r = await run([launcher.bin, '--deny', `io_uring_setup=${errno}`, '--', process.execPath, '--input-type=module', '-e', script]);
      assert.equal(r.code, 0, r.err);
      const res = JSON.parse(r.out) as { out: string[]; warnings: string[] };
      assert.deepEqual(res.out.slice(0, 3), ['portable', 'portable', 'portable']);
      assert.match(res.out[3]!, /^MP_ERR_BACKEND_UNAVAILABLE: io_uring backend requested but unavailable: /);
      assert.match(res.out[3]!, why);
      assert.equal(res.warnings.length, 1, `one warning: ${JSON.stringify(res.warnings)}`);
      assert.match(res.warnings[0]!, /using the portable backend \(node:net\)/);
      assert.match(res.warnings[0]!, why);
    });
  }

  it('a server on the fallback (a channel with a native listener, 120 echo clients): all served, every handle accounted for', async (t) => {
    const c = await serverChild([launcher.bin, '--deny', 'io_uring_setup=ENOSYS', '--'], { backend: 'auto' });
    try {
      assert.equal(c.backend, 'portable');
      const total = await echoMany(c.port, 120, (i) => 1 + ((i * 104_729) % 50_000), 161, 40);
      const s = await stateWhen(c, (x) => x.conns === 0, 'every connection to close');
      accountForChild(s, 120, total);
      assert.equal((s.warnings as string[]).length, 1);
      figures(t, s.stats as ChannelStats, { connections: 120, bytesVerified: 2 * total, backend: s.backend });
    } finally { assert.equal(await c.close(), 0, c.stderr()); }
  });

  /** Runs megapipe-echo-server under seccomp-run with `args`; echoes `n` clients through it; stops it with SIGTERM. */
  async function echoServerBin(args: string[], n: number, seed: number): Promise<{ total: number; lines: Record<string, unknown>[]; warnings: number; code: number | null }> {
    const child = spawn(launcher.bin, ['--deny', 'io_uring_setup=EPERM', '--', process.execPath, path.join(here, '../bin/echo-server.js'), '--port', '0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    child.stdout.on('data', (d) => { out += String(d); });
    child.stderr.on('data', (d) => { err += String(d); });
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    const kill = setTimeout(() => stop(child), 120_000);
    try {
      await waitFor(() => /listening on .*:(\d+)\n/.test(out) || child.exitCode !== null, 'the server to listen', { ms: 30_000 });
      const port = Number(/listening on .*:(\d+)\n/.exec(out)?.[1]);
      assert.ok(port > 0, `the server did not start: ${out} ${err}`);
      const total = await echoMany(port, n, (i) => 1 + ((i * 7_919) % 40_000), seed, 25);
      stop(child);   // SIGTERM: the server prints its counters and exits
      const code = await exited;
      const lines = out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
      return { total, lines, warnings: err.split('using the portable backend').length - 1, code };
    } finally { clearTimeout(kill); stop(child); }
  }

  it('megapipe-echo-server (one channel on the main thread) on the fallback: echo verified, the counters say portable', async (t) => {
    const r = await echoServerBin([], 100, 162);
    assert.equal(r.code, 0);
    assert.equal(r.lines.length, 1);
    assert.equal(r.lines[0]!.backend, 'portable');
    assert.equal(r.lines[0]!.accepted, 100);
    assert.equal(r.lines[0]!.bytes, r.total);
    assert.equal(r.warnings, 1);
    t.diagnostic(JSON.stringify({ connections: 100, bytesVerified: 2 * r.total, lines: r.lines }));
  });

  it('megapipe-echo-server --workers 2 (serve()) on the fallback: echo verified, every worker portable', async (t) => {
    const r = await echoServerBin(['--workers', '2'], 100, 163);
    assert.equal(r.code, 0);
    assert.equal(r.lines.length, 2);
    for (const l of r.lines) assert.equal(l.backend, 'portable');
    assert.equal(r.lines.reduce((a, l) => a + (l.accepted as number), 0), 100);
    assert.equal(r.lines.reduce((a, l) => a + (l.bytes as number), 0), r.total);
    t.diagnostic(JSON.stringify({ connections: 100, bytesVerified: 2 * r.total, warnings: r.warnings, lines: r.lines }));
  });

  for (const workers of ['1', '2']) {
    it(`megapipe-echo-server --backend uring --workers ${workers} with io_uring refused: exits 1 naming MP_ERR_BACKEND_UNAVAILABLE (no fallback, no restart loop)`, async () => {
      const r = await run([launcher.bin, '--deny', 'io_uring_setup=EPERM', '--', process.execPath, path.join(here, '../bin/echo-server.js'), '--port', '0', '--backend', 'uring', '--workers', workers], 30_000);
      assert.equal(r.code, 1, r.out + r.err);
      assert.match(r.err, /MP_ERR_BACKEND_UNAVAILABLE/);
      assert.match(r.err, /io_uring backend requested but unavailable: io_uring_setup refused \(EPERM\)/);
      assert.doesNotMatch(r.out, /listening on/);
    });
  }

  it('serve() with 2 workers on the fallback says so once', async () => {
    const r = await echoServerBin(['--workers', '2'], 4, 164);
    assert.equal(r.warnings, 1);
  });
});
