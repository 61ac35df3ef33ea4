// One wake-up, one call into JavaScript: the native loop calls JavaScript once per turn, and the turn's batches are
// taken one after another from within that call (Batch.onBatch → native.channelNext → loop.c's loop_next), each
// batch's rows flushed before the next is drained. Proven with batches smaller than the completions waiting (eventRows
// 4, 12 connections' bytes arriving while the loop is blocked): the wake-up delivers them in three batches, and no
// microtask runs between two of them — one JavaScript call per wake-up, not per batch (before: 'rrrrmmmm' three times). Every connection still gets its reply (the rows of the early batches were flushed in the turn).
import { it } from 'node:test';
import assert from 'node:assert/strict';
import type * as net from 'node:net';
import { closeListenerAndChannel, connectSocket, openListener, uringSkip, waitFor } from './helpers.js';
import { createChannel } from '../src/index.js';

const CONNS = 12;
const spin = (ms: number): void => { const end = Date.now() + ms; while (Date.now() < end) { /* busy */ } };

it('a turn of several batches is one JavaScript call: no microtask runs between its batches', { skip: uringSkip }, async () => {
  const ch = createChannel({ backend: 'uring', limits: { eventRows: 4 } });
  const listener = await openListener('uring');
  const lh = ch.register(listener, 'L');
  let listenerGone = false;
  const conns: number[] = [];
  // what happened, in order: 'r' a read event, 'm' a microtask queued by the read before it
  let log = '';
  ch.onEvent((ev) => {
    if (ev.handle === lh) { if (ev.type === 'disconnect') listenerGone = true; return; }
    if (ev.type === 'accept') { conns.push(ev.handle); ch.read(ev.handle); return; }
    if (ev.type !== 'read' || ev.result <= 0) return;
    log += 'r';
    queueMicrotask(() => { log += 'm'; });
    ch.write(ev.handle, Buffer.from([ev.buffer![ev.offset]! + 1]));
  });
  ch.accept(lh);
  const clients: net.Socket[] = [];
  const got: number[][] = [];
  try {
    for (let i = 0; i < CONNS; i++) {
      const s = await connectSocket(listener.port);
      const mine: number[] = [];
      got.push(mine);
      s.on('data', (d: Buffer) => { for (const b of d) mine.push(b); });
      clients.push(s);
    }
    await waitFor(() => conns.length === CONNS, 'every connection accepted');
    const before = ch.stats();
    // every client's byte arrives while this thread is busy: the next wake-up finds all twelve completions
    for (const [i, s] of clients.entries()) s.write(Buffer.from([i * 2]));
    spin(100);
    await waitFor(() => got.every((g) => g.length === 1), 'every reply');
    const batches = ch.stats().batches - before.batches;
    // the twelve reads came in batches of at most 4, and with no microtask between them: one call into JavaScript
    assert.ok(batches >= CONNS / 4, `at least ${CONNS / 4} batches: ${batches}`);
    assert.equal(log, 'r'.repeat(CONNS) + 'm'.repeat(CONNS), 'all reads of the wake-up, then their microtasks');
    for (const [i, g] of got.entries()) assert.deepEqual(g, [i * 2 + 1], `connection ${i}'s reply`);
  } finally {
    for (const s of clients) s.destroy();
    await closeListenerAndChannel(ch, lh, listener, () => listenerGone);
  }
});
