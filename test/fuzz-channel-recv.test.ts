// Property-based test of receive buffers held past their read event, on both backends: tiny receive rings (8–16
// buffers of 256 B–4 KiB), several connections whose node:net peers send seeded bytes in random pieces, and a server
// that, at random, holds a read's buffer (ch.holdBuffer(), up to limits.heldBuffersMax — and at times one more, which
// must be refused with MP_ERR_LIMIT) or copies it, and echoes each connection's reads in order from the held views
// themselves: right away, later in the same handler (hold and release in one handler), from another connection's
// event, or from a timer; it also pauses and resumes connections at random. Checked:
//  - no held buffer's bytes change until it is released (every held view against a snapshot at every event);
//  - every byte is echoed back in order (so bytes echoed from a held view were intact when echoed), then EOF;
//  - heldBuffers counts exactly the buffers held; releasing a token twice throws RangeError;
//  - on io_uring, the native side refused nothing (recycleRefused === 0, requestsRefused === 0): no buffer went back to
//    the ring twice or out of range. With multishot receives (DEFER_TASKRUN rings; capped ones on newer kernels) the
//    ring runs dry (ENOBUFS) and is re-armed along the way.
// Bytes delivered while a connection was paused come, on io_uring, as private copies that cannot be held (holdBuffer
// throws MP_ERR_STATE): the test copies those, and checks that only such events refuse.
//
// The seed is fixed (MEGAPIPE_FUZZ_SEED overrides it) and printed with any failure; MEGAPIPE_FUZZ_RUNS sets the run
// count of each property for long runs.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import fc from 'fast-check';
import { createChannel, type Limits } from '../src/index.js';
import { BACKENDS, deferRingSkip, openListener, prng, randomBytes, skipFor, waitFor, withTimeout, type BackendKind, withEnv, cappedRecvSkip, defaultRecvMode } from './helpers.js';
import type { RecvMode } from '../src/uring/receive.js';
import { REPLAY, checkAsync } from './fixtures/fuzz-common.js';

const FILE = 'dist/test/fuzz-channel-recv.test.js';

interface Peer {
  /** bytes to send (seeded), in pieces of these sizes (cycled), with these gaps (ms, cycled) */
  size: number;
  pieces: number[];
  gaps: number[];
  seed: number;
}
interface Case {
  limits: Partial<Limits>;
  peers: Peer[];
  /** the server's choices come from this seed (they depend on how events interleave, which timing decides) */
  seed: number;
  /** probabilities (in 1/16) of holding a read's buffer, of echoing at once, of releasing from a timer, of pausing */
  hold: number;
  flushNow: number;
  timer: number;
  pause: number;
}

const caseArb: fc.Arbitrary<Case> = fc
  .record({
    recvBuffers: fc.constantFrom(8, 16),
    recvBufferSize: fc.constantFrom(256, 1024, 4096),
    heldFraction: fc.constantFrom(1, 2, 4, 8, 99), // heldBuffersMax = recvBuffers / 2 / this (at least 1)
    highWaterMark: fc.constantFrom(1024, 65536),
    batch: fc.constantFrom(1, 8, 64),
    peers: fc.array(fc.record({
      size: fc.oneof({ weight: 3, arbitrary: fc.integer({ min: 1, max: 20_000 }) }, { weight: 1, arbitrary: fc.integer({ min: 20_000, max: 200_000 }) }),
      pieces: fc.array(fc.integer({ min: 1, max: 9000 }), { minLength: 1, maxLength: 6 }),
      gaps: fc.array(fc.constantFrom(0, 0, 0, 1, 3), { minLength: 1, maxLength: 4 }),
      seed: fc.integer({ min: 0, max: 0x7fffffff }),
    }), { minLength: 1, maxLength: 4 }),
    seed: fc.integer({ min: 0, max: 0x7fffffff }),
    hold: fc.integer({ min: 0, max: 16 }),
    flushNow: fc.integer({ min: 0, max: 16 }),
    timer: fc.integer({ min: 0, max: 16 }),
    pause: fc.constantFrom(0, 0, 1, 3),
  })
  .map((r) => ({
    limits: {
      recvBuffers: r.recvBuffers, recvBufferSize: r.recvBufferSize, batch: r.batch,
      heldBuffersMax: Math.max(1, Math.floor(r.recvBuffers / 2 / r.heldFraction)),
      highWaterMark: r.highWaterMark, lowWaterMark: Math.floor(r.highWaterMark / 4),
      sendArenaBytes: 1024 * 1024,
    },
    peers: r.peers, seed: r.seed, hold: r.hold, flushNow: r.flushNow, timer: r.timer, pause: r.pause,
  }));

/** A read kept for echoing: a view of a held receive buffer (token) or a private copy (token -1), and its snapshot. */
interface Entry { view: Uint8Array; snap: Buffer; token: number }
interface Conn { h: number; q: Entry[]; eof: boolean; gone: boolean; paused: boolean }

/** The peer: sends its bytes in pieces with gaps, then shuts down its write side; checks the echo; resolves at EOF. */
function runPeer(port: number, p: Peer, ms: number): { connected: Promise<void>; done: Promise<void> } {
  const data = randomBytes(prng(p.seed), p.size);
  const sock = net.connect({ port, host: '127.0.0.1', noDelay: true });
  const connected = new Promise<void>((resolve, reject) => { sock.once('connect', resolve); sock.once('error', reject); });
  const done = withTimeout(new Promise<void>((resolve, reject) => {
    let got = 0, failed = false;
    const fail = (why: string) => { if (!failed) { failed = true; sock.destroy(); reject(new Error(why)); } };
    sock.on('data', (d: Buffer) => {
      if (got + d.byteLength > data.length || Buffer.compare(d, data.subarray(got, got + d.byteLength)) !== 0) {
        let at = 0;
        while (at < d.byteLength && got + at < data.length && d[at] === data[got + at]) at++;
        fail(`peer: echoed byte ${got + at} of ${data.length} differs (or is one too many)`);
        return;
      }
      got += d.byteLength;
    });
    sock.once('end', () => { if (got === data.length) { sock.destroy(); resolve(); } else fail(`peer: EOF after ${got} of ${data.length} echoed bytes`); });
    sock.once('error', (e) => fail(`peer: socket error ${(e as NodeJS.ErrnoException).code}`));
    void (async () => {
      await connected;
      let sent = 0, i = 0;
      while (sent < data.length && !failed) {
        const n = Math.min(p.pieces[i % p.pieces.length]!, data.length - sent);
        const ok = sock.write(data.subarray(sent, sent + n));
        sent += n;
        const gap = p.gaps[i % p.gaps.length]!;
        i++;
        if (!ok) await new Promise((r) => sock.once('drain', r));
        else if (gap > 0) await new Promise((r) => setTimeout(r, gap));
      }
      sock.end();
    })();
  }), ms, `the peer's ${p.size} bytes to come back`);
  return { connected, done };
}

const seen = { cases: 0, conns: 0, bytes: 0, reads: 0, held: 0, heldAtOnceMax: 0, limitRefused: 0, copiesUnholdable: 0, sameHandler: 0, fromOther: 0, fromTimer: 0, afterClose: 0, pauses: 0, enobufs: 0 };

async function runCase(backend: BackendKind, c: Case): Promise<void> {
  const ch = createChannel({ backend, limits: c.limits });
  assert.equal(ch.backend, backend);
  const L = ch.limits;
  const rand = prng(c.seed);
  const chance = (sixteenths: number) => rand() * 16 < sixteenths;
  const listener = await openListener(backend);
  const lh = ch.register(listener, 'L');
  const failures: string[] = [];
  const fail = (why: string) => { if (failures.length < 10) failures.push(why); };
  const conns = new Map<number, Conn>(); // open connections by handle (a handle is reused once its connection is gone)
  const all: Conn[] = [];
  const held = new Map<number, Entry>(); // token -> entry
  let listenerGone = false;
  const timers = new Set<NodeJS.Timeout>();

  // io_uring: bytes that arrived while the connection was paused come as a private copy (not a view of the pool)
  const isCopy = (b: Uint8Array, offset: number, n: number) => backend === 'uring' && offset === 0 && b.byteLength === n;
  /** Every held view still has its bytes. */
  const checkHeld = () => {
    for (const [t, e] of held) if (Buffer.compare(e.view, e.snap) !== 0) fail(`held buffer ${t} changed before its release`);
    if (ch.heldBuffers !== held.size) fail(`heldBuffers ${ch.heldBuffers}, ${held.size} held`);
  };
  const release = (e: Entry) => {
    if (Buffer.compare(e.view, e.snap) !== 0) fail(`held buffer ${e.token} changed before its release`);
    held.delete(e.token);
    ch.releaseBuffer(e.token);
    if (rand() < 0.05) assert.throws(() => ch.releaseBuffer(e.token), RangeError, 'a token released twice');
  };
  /**
   * Echoes up to `n` of connection k's kept reads, oldest first, releasing held buffers (`deferred`: echoed now, but
   * released from a timer, after the connection may have closed).
   */
  const flush = (k: Conn, n: number, deferred = false) => {
    while (n-- > 0 && k.q.length > 0) {
      const e = k.q.shift()!;
      if (Buffer.compare(e.view, e.snap) !== 0) fail(`conn ${k.h}: a kept read changed before it was echoed`);
      if (ch.isOpen(k.h)) ch.write(k.h, e.view);
      if (e.token < 0) continue;
      if (deferred) { seen.afterClose++; later(() => release(e), Math.floor(rand() * 6)); } else release(e);
    }
    if (k.eof && k.q.length === 0 && ch.isOpen(k.h)) ch.disconnect(k.h);
  };
  const flushSomeone = () => {
    const ks = [...conns.values()].filter((k) => k.q.length > 0);
    if (ks.length > 0) flush(ks[Math.floor(rand() * ks.length)]!, 1 + Math.floor(rand() * 4));
  };
  const later = (fn: () => void, ms: number) => {
    const t = setTimeout(() => { timers.delete(t); try { fn(); } catch (e) { fail(`timer: ${String(e)}`); } }, ms);
    timers.add(t);
  };

  ch.onEvent((ev) => {
    const h = ev.handle;
    if (h === lh) { if (ev.type === 'disconnect') listenerGone = true; return; }
    if (ev.type === 'accept') {
      const k: Conn = { h, q: [], eof: false, gone: false, paused: false };
      conns.set(h, k); all.push(k);
      ch.read(h);
      return;
    }
    const k = conns.get(h);
    if (k === undefined) return;
    checkHeld();
    switch (ev.type) {
      case 'read': {
        if (ev.result === 0) { k.eof = true; flush(k, Infinity, chance(6)); return; }
        seen.reads++;
        const view = ev.buffer.subarray(ev.offset, ev.offset + ev.result);
        let token = -1;
        if (chance(c.hold)) {
          if (held.size >= L.heldBuffersMax) {
            // one more than the limit allows: refused, nothing held
            try { ch.holdBuffer(); fail('a hold beyond heldBuffersMax succeeded'); }
            catch (e) {
              const code = (e as { code?: string }).code;
              if (code === 'MP_ERR_LIMIT') seen.limitRefused++;
              else if (!(code === 'MP_ERR_STATE' && isCopy(ev.buffer, ev.offset, ev.result))) fail(`beyond the limit: ${String(e)}`);
            }
          } else {
            try { token = ch.holdBuffer(); }
            catch (e) {
              // io_uring: bytes that arrived while the connection was paused come as a private copy (not the pool)
              if ((e as { code?: string }).code === 'MP_ERR_STATE' && isCopy(ev.buffer, ev.offset, ev.result)) seen.copiesUnholdable++;
              else fail(`holdBuffer: ${String(e)}`);
            }
          }
        }
        if (token >= 0) {
          if (held.has(token)) fail(`token ${token} handed out while held`);
          const e: Entry = { view, snap: Buffer.from(view), token };
          held.set(token, e);
          k.q.push(e);
          seen.held++;
          seen.heldAtOnceMax = Math.max(seen.heldAtOnceMax, held.size);
        } else {
          const copy = Buffer.from(view);
          k.q.push({ view: copy, snap: Buffer.from(copy), token: -1 });
        }
        // echo: this connection's reads now (a hold released in its own handler), another's, or from a timer
        if (chance(c.flushNow)) { if (token >= 0) seen.sameHandler++; flush(k, Infinity); }
        if (chance(4)) { seen.fromOther++; flushSomeone(); }
        if (chance(c.timer)) { seen.fromTimer++; later(flushSomeone, Math.floor(rand() * 4)); }
        // a full set of held buffers must not stall everything: release from a timer
        if (held.size >= L.heldBuffersMax) later(flushSomeone, 1);
        if (chance(c.pause) && !k.paused) {
          seen.pauses++;
          k.paused = true;
          ch.pause(h);
          later(() => { k.paused = false; if (ch.isOpen(h) && !k.gone && !(k.eof && k.q.length === 0)) ch.resume(h); }, Math.floor(rand() * 5));
        }
        break;
      }
      case 'write': if (chance(2)) flushSomeone(); break;
      case 'error': fail(`conn ${h}: error ${ev.code}`); if (ch.isOpen(h)) ch.disconnect(h, true); break;
      case 'disconnect': k.gone = true; conns.delete(h); break;
      default: break;
    }
  });
  ch.accept(lh);
  // a safety net: anything kept is echoed eventually (every 20 ms)
  const sweeper = setInterval(() => { for (const k of conns.values()) if (k.q.length > 0) flush(k, Infinity); }, 20);
  try {
    const peers = c.peers.map((p) => runPeer(listener.port, p, 20_000));
    const state = () => JSON.stringify(all.map((k) => ({ h: k.h, kept: k.q.length, eof: k.eof, gone: k.gone, paused: k.paused, pending: ch.isOpen(k.h) ? ch.pendingBytes(k.h) : -1 }))) +
      ` held ${held.size}/${ch.heldBuffers}; failures ${JSON.stringify(failures)}`;
    try {
      await Promise.all(peers.map((p) => p.connected));
      await Promise.all(peers.map((p) => p.done));
      await waitFor(() => all.length === c.peers.length && all.every((k) => k.gone), 'every connection to close', { ms: 5_000 });
      await waitFor(() => held.size === 0, 'every held buffer to be released', { ms: 5_000 });
    } catch (e) {
      throw new Error(`${(e as Error).message}; connections: ${state()}`);
    }
    checkHeld();
    assert.deepEqual(failures, []);
    assert.equal(held.size, 0);
    assert.equal(ch.heldBuffers, 0);
    const st = ch.stats();
    assert.equal(st.recycleRefused, 0, 'a receive buffer was returned twice or out of range');
    assert.equal(st.requestsRefused, 0, 'requests refused by the native side');
    seen.cases++; seen.conns += c.peers.length; seen.bytes += c.peers.reduce((a, p) => a + p.size, 0); seen.enobufs += st.enobufs;
  } finally {
    clearInterval(sweeper);
    for (const t of timers) clearTimeout(t);
    try {
      if (ch.isOpen(lh)) ch.unregister(lh);
      await waitFor(() => listenerGone, 'the listener handle to go', { ms: 10_000 });
    } finally {
      listener.close();
      ch.close();
    }
  }
}

// On io_uring the property runs in each receive mode (src/uring/receive.ts): on the default ring, with single-shot
// receives forced (MEGAPIPE_RECV=single), with capped multishot receives asked for (MEGAPIPE_RECV=capped, where the
// kernel has the cap and the default ring has no DEFER_TASKRUN), and on a DEFER_TASKRUN ring (forced:
// MEGAPIPE_RING_SETUP=0), each read at channel creation; a forced mode the default ring already has is skipped.
// Multishot receives, capped or not, run these tiny rings dry (ENOBUFS), which those runs must show; single-shot ones
// take one buffer per connection at a time.
const rings: { name: string; env?: Record<string, string>; mode: RecvMode; skip?: string | false }[] = [
  { name: '', mode: defaultRecvMode },
  { name: ', single-shot receives', env: { MEGAPIPE_RECV: 'single' }, mode: 'single', skip: defaultRecvMode === 'single' && 'the default ring receives single-shot already' },
  { name: ', capped multishot receives', env: { MEGAPIPE_RECV: 'capped' }, mode: 'capped', skip: cappedRecvSkip },
  { name: ', DEFER_TASKRUN ring', env: { MEGAPIPE_RING_SETUP: '0' }, mode: 'multishot', skip: deferRingSkip || (defaultRecvMode === 'multishot' && 'the default ring is a DEFER_TASKRUN ring already') },
];
for (const backend of BACKENDS) {
  for (const ring of backend === 'uring' ? rings : [{ name: '', mode: 'single' as RecvMode }]) {
  describe(`receive buffers held past their read event (${backend}${ring.name})`, { skip: skipFor(backend) }, () => {
    it('held bytes never change until released; every byte echoed in order; the ring stays whole', { skip: ring.skip ?? false }, async () => {
      for (const key of Object.keys(seen) as (keyof typeof seen)[]) seen[key] = 0;
      const property = () => checkAsync(FILE, `receive buffers (${backend}${ring.name})`, fc.asyncProperty(caseArb, (c) => runCase(backend, c)), { runs: 150, timeLimitMs: 25_000 });
      await (ring.env !== undefined ? withEnv(ring.env, property) : property());
      const multishot = backend === 'uring' && ring.mode !== 'single';
      process.stderr.write(`receive buffers (${backend}${ring.name}): ${JSON.stringify(seen)}\n`);
      if (REPLAY) return;
      // not hollow: buffers held in bulk, up to the limit and beyond it (refused), released every way
      assert.ok(seen.held > seen.cases * 3 && seen.limitRefused > 0 && seen.sameHandler > 0 && seen.fromOther > 0 && seen.fromTimer > 0, JSON.stringify(seen));
      if (multishot) assert.ok(seen.enobufs > 0, `the ring ran dry at times: ${JSON.stringify(seen)}`);
    });
  });
  }
}
