// Batching (MegaPipe's flush rules plus the microtask rule), proven by counting what the channel hands the kernel
// (stats(): flushes, io_uring_enter calls, submission entries accepted), never by timing:
// - threshold N: requests are staged; the N-th staged one flushes all N (one enter), and so on;
// - threshold 1 (no batching): every request is its own flush and its own enter;
// - requests made outside a completion batch (after an await, from a timer) and short of the threshold are flushed
//   together once the current microtask checkpoint is reached: before, nothing was submitted; after, all in one enter;
// - requests made inside a completion batch (in an onEvent handler) go to the kernel in one flush when the batch ends;
// - flush() submits what is staged at once.
// The subject of each case is a set of connections with nothing in flight, each given one 1-byte write: one submission
// entry per write (a send), so the counts are exact. The portable backend does not batch (libuv issues each write
// at once): it is held to that contract instead.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type * as net from 'node:net';
import { BACKENDS, connectSocket, echoClient, openListener, prng, randomBytes, skipFor, waitFor, withTimeout, closeListenerAndChannel } from './helpers.js';
import { createChannel, type Channel, type ChannelStats, type Listener, type MpEvent } from '../src/index.js';

const CONNS = 20;
const ONE = Buffer.from('x');

interface Rig {
  ch: Channel;
  listener: Listener;
  lh: number;
  conns: number[];
  clients: net.Socket[];
  /** 'write' events seen per connection handle, and the bytes each client received. */
  writes: Map<number, number>;
  received: () => number;
  /** Called for each event after the rig's own bookkeeping (the event object is reused: keep nothing). */
  tap: ((ev: MpEvent) => void) | null;
  close(): Promise<void>;
}

/** A channel with CONNS accepted connections that read nothing and have nothing in flight. */
async function rig(backend: 'uring' | 'portable', batch: number): Promise<Rig> {
  const ch = createChannel({ backend, batch });
  const listener = await openListener(backend);
  const lh = ch.register(listener, 'L');
  const conns: number[] = [], writes = new Map<number, number>();
  let listenerGone = false;
  const r: Rig = {
    ch, listener, lh, conns, clients: [], writes, tap: null,
    received: () => 0,
    async close() {
      for (const s of r.clients) s.destroy();
      await closeListenerAndChannel(ch, lh, listener, () => listenerGone);
    },
  };
  ch.onEvent((ev) => {
    if (ev.handle === lh) { if (ev.type === 'disconnect') listenerGone = true; return; }
    if (ev.type === 'accept') conns.push(ev.handle);
    else if (ev.type === 'write') writes.set(ev.handle, (writes.get(ev.handle) ?? 0) + ev.result);
    r.tap?.(ev);
  });
  ch.accept(lh);
  let got = 0;
  for (let i = 0; i < CONNS; i++) {
    const s = await connectSocket(listener.port);
    s.on('data', (d: Buffer) => { got += d.byteLength; });
    r.clients.push(s);
  }
  r.received = () => got;
  await waitFor(() => conns.length === CONNS, 'every connection accepted');
  return r;
}

/** Counters that move when the channel hands requests to the kernel. */
function counts(ch: Channel): Pick<ChannelStats, 'flushes' | 'enters' | 'submitted' | 'requests'> {
  const s = ch.stats();
  return { flushes: s.flushes, enters: s.enters, submitted: s.submitted, requests: s.requests };
}

function delta(ch: Channel, from: ReturnType<typeof counts>): ReturnType<typeof counts> {
  const now = counts(ch);
  return { flushes: now.flushes - from.flushes, enters: now.enters - from.enters, submitted: now.submitted - from.submitted, requests: now.requests - from.requests };
}

/** Waits until every connection's writes so far have completed ('write' events) and every client has the bytes. */
async function settled(r: Rig, perConn: number): Promise<void> {
  await waitFor(() => r.conns.every((h) => r.writes.get(h) === perConn) && r.received() === perConn * CONNS, `${perConn} B written on every connection`);
}

describe('batching (uring)', { skip: skipFor('uring') }, () => {
  it('threshold N: nothing is submitted until N requests are staged, then all N in one enter; batch 1: one enter per request', async () => {
    const T = 8;
    const r = await rig('uring', T);
    const { ch } = r;
    try {
      // 20 writes with threshold 8: flushes after the 8th and the 16th, each of 8 entries in one enter, all synchronous
      const before = counts(ch);
      r.conns.forEach((h, i) => {
        ch.write(h, ONE);
        const full = Math.floor((i + 1) / T);
        assert.deepEqual(delta(ch, before), { flushes: full, enters: full, submitted: full * T, requests: i + 1 }, `after write ${i + 1}`);
      });
      await null;   // the microtask rule sends the last 4
      assert.deepEqual(delta(ch, before), { flushes: 3, enters: 3, submitted: CONNS, requests: CONNS });
      await settled(r, 1);

      // the threshold changed on the live channel: 1 = no batching, each write is its own flush and enter at once
      ch.batchThreshold = 1;
      const one = counts(ch);
      r.conns.forEach((h, i) => {
        ch.write(h, ONE);
        assert.deepEqual(delta(ch, one), { flushes: i + 1, enters: i + 1, submitted: i + 1, requests: i + 1 }, `batch 1, after write ${i + 1}`);
      });
      await settled(r, 2);
    } finally { await r.close(); }
  });

  for (const when of ['after an await', 'from a timer'] as const) {
    it(`requests made ${when}, short of the threshold, are flushed together at the microtask checkpoint`, async () => {
      const r = await rig('uring', 1024);
      const { ch } = r;
      try {
        if (when === 'from a timer') await new Promise((resolve) => setTimeout(resolve, 1));
        const before = counts(ch);
        let inside: ReturnType<typeof counts> | undefined;
        const stage = (): void => {
          for (const h of r.conns) ch.write(h, ONE);
          inside = delta(ch, before);
        };
        if (when === 'from a timer') {
          // the timer callback returns before its microtasks run: look from the same timer, then from a later macrotask
          let afterMicro: ReturnType<typeof counts> | undefined;
          await new Promise<void>((resolve) => setTimeout(() => { stage(); queueMicrotask(() => queueMicrotask(() => { afterMicro = delta(ch, before); resolve(); })); }, 1));
          assert.deepEqual(inside, { flushes: 0, enters: 0, submitted: 0, requests: CONNS }, 'staged, nothing submitted yet');
          assert.deepEqual(afterMicro, { flushes: 1, enters: 1, submitted: CONNS, requests: CONNS }, 'all in one flush at the checkpoint');
        } else {
          stage();
          assert.deepEqual(inside, { flushes: 0, enters: 0, submitted: 0, requests: CONNS }, 'staged, nothing submitted yet');
          await null;
          assert.deepEqual(delta(ch, before), { flushes: 1, enters: 1, submitted: CONNS, requests: CONNS }, 'all in one flush at the checkpoint');
        }
        await settled(r, 1);
      } finally { await r.close(); }
    });
  }

  it('requests made inside a completion batch go to the kernel in one flush when the batch ends', async () => {
    const r = await rig('uring', 1024);
    const { ch } = r;
    try {
      const [first, ...rest] = r.conns as [number, ...number[]];
      ch.write(first, ONE);
      await null;   // flushed (microtask rule); its completion comes in a batch of its own: nothing else is in flight
      const before = counts(ch);
      let inside: ReturnType<typeof counts> | undefined;
      r.tap = (ev) => {
        if (ev.type !== 'write' || ev.handle !== first || inside !== undefined) return;
        for (const h of rest) ch.write(h, ONE);   // in the handler: staged, not submitted
        inside = delta(ch, before);
      };
      await waitFor(() => inside !== undefined, 'the write event of the first connection');
      // (enters moved: the turn that delivered this batch entered the kernel to reap it)
      assert.deepEqual({ ...inside, enters: 0 }, { flushes: 0, enters: 0, submitted: 0, requests: rest.length }, 'staged in the handler, nothing submitted during the batch');
      await waitFor(() => delta(ch, before).submitted >= rest.length, 'the batch-end flush');
      const d = delta(ch, before);
      assert.equal(d.flushes, 1, 'one flush for the whole batch');
      assert.equal(d.submitted, rest.length);
      r.writes.set(first, 1);
      await settled(r, 1);
    } finally { await r.close(); }
  });

  it('flush() submits what is staged at once', async () => {
    const r = await rig('uring', 1024);
    const { ch } = r;
    try {
      const before = counts(ch);
      for (const h of r.conns.slice(0, 5)) ch.write(h, ONE);
      assert.deepEqual(delta(ch, before), { flushes: 0, enters: 0, submitted: 0, requests: 5 });
      ch.flush();
      assert.deepEqual(delta(ch, before), { flushes: 1, enters: 1, submitted: 5, requests: 5 }, 'submitted by flush()');
      ch.flush();
      assert.deepEqual(delta(ch, before), { flushes: 1, enters: 1, submitted: 5, requests: 5 }, 'nothing staged: no flush');
      for (const h of r.conns.slice(5)) ch.write(h, ONE);
      ch.flush();
      await null;
      assert.deepEqual(delta(ch, before), { flushes: 2, enters: 2, submitted: CONNS, requests: CONNS }, 'the microtask finds nothing left');
      await settled(r, 1);
    } finally { await r.close(); }
  });
});

describe('batching (portable)', () => {
  it('does not batch: each write goes to libuv at once (one flush each), flush() is a no-op, no io_uring_enter', async () => {
    const r = await rig('portable', 1024);
    const { ch } = r;
    try {
      assert.equal(ch.features.batching, false);
      const before = counts(ch);
      r.conns.forEach((h, i) => {
        ch.write(h, ONE);
        assert.deepEqual(delta(ch, before), { flushes: i + 1, enters: 0, submitted: 0, requests: i + 1 }, `after write ${i + 1}`);
      });
      ch.flush();
      assert.equal(delta(ch, before).flushes, CONNS);
      await settled(r, 1);
    } finally { await r.close(); }
  });
});

for (const backend of BACKENDS) {
  describe(`batching end to end (${backend})`, { skip: skipFor(backend) }, () => {
    for (const when of ['setTimeout', 'promise'] as const) {
      it(`an echo server answering from ${when === 'setTimeout' ? 'a timer' : 'a resolved promise'} with a threshold it never reaches echoes every byte`, async () => {
        const ch = createChannel({ backend, batch: 1024 });
        const listener = await openListener(backend);
        const lh = ch.register(listener, 'L');
        let listenerGone = false, open = 0;
        const later = (fn: () => void) => (when === 'setTimeout' ? setTimeout(fn, 1) : void Promise.resolve().then(fn));
        ch.onEvent((ev: MpEvent) => {
          const h = ev.handle;
          if (h === lh) { if (ev.type === 'disconnect') listenerGone = true; return; }
          if (ev.type === 'accept') { open++; later(() => ch.read(h)); }
          else if (ev.type === 'read') {
            if (ev.result === 0) { later(() => ch.disconnect(h)); return; }
            const copy = Buffer.from(ev.buffer.subarray(ev.offset, ev.offset + ev.result));
            later(() => { if (ch.isOpen(h)) ch.write(h, copy); });
          } else if (ev.type === 'disconnect') open--;
        });
        ch.accept(lh);
        try {
          const rand = prng(3);
          await withTimeout(Promise.all(Array.from({ length: 40 }, () => echoClient(listener.port, randomBytes(rand, 30_000)))), 60000, 'echo clients');
          await waitFor(() => open === 0, 'connections to close');
        } finally {
          await closeListenerAndChannel(ch, lh, listener, () => listenerGone);
        }
      });
    }
  });
}
