// The clock of one synchronous run (src/clock.ts): read once per synchronous run, fresh after every microtask checkpoint
// and in every completion batch of a channel.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { timeNow } from '../src/clock.js';
import { createChannel } from '../src/index.js';
import { closeListenerAndChannel, connectSocket, openListener, uringSkip, waitFor } from './helpers.js';

const spin = (ms: number): void => { const end = Date.now() + ms; while (Date.now() < end) { /* busy */ } };

test('within one synchronous run the clock does not move', () => {
  const a = timeNow();
  spin(15);
  assert.equal(timeNow(), a);
});

test('after a microtask checkpoint (an await) it is read again', async () => {
  const a = timeNow();
  spin(15);
  await null;
  const b = timeNow();
  assert.ok(b >= a + 15, `${b} should be at least ${a} + 15`);
  const before = Date.now();
  await new Promise((r) => setTimeout(r, 5));
  const c = timeNow();
  assert.ok(c >= before, `a new run (a timer) reads the clock: ${c} >= ${before}`);
  assert.ok(c <= Date.now());
});

test('a run that starts with the clock expired reads Date.now(), not a value from an earlier run', async () => {
  for (let i = 0; i < 20; i++) {
    await new Promise((r) => setImmediate(r));
    const d = Date.now();
    const t = timeNow();
    assert.ok(t >= d && t <= Date.now(), `${t} within [${d}, now]`);
  }
});

// A channel's completion batch is a run of its own (src/uring/batch.ts calls turnBegin/turnEnd around it): the clock
// is read afresh in each batch, expires when the batch ends, and costs no microtask per batch.
test('inside a channel batch: read afresh, no microtask queued, expired when the batch ends', { skip: uringSkip }, async () => {
  const ch = createChannel({ backend: 'uring' });
  const listener = await openListener('uring');
  const lh = ch.register(listener, 'L');
  let listenerGone = false;
  const seen: { before: number; t: number; stable: boolean; queued: number; after: number }[] = [];
  const inMicrotask: { t: number; d: number }[] = [];
  // counts the queueMicrotask calls timeNow makes (it calls the global at each use)
  const real = globalThis.queueMicrotask;
  let queued = 0;
  globalThis.queueMicrotask = (f) => { queued++; real(f); };
  try {
    ch.onEvent((ev) => {
      if (ev.handle === lh) { if (ev.type === 'disconnect') listenerGone = true; return; }
      if (ev.type === 'accept') { ch.read(ev.handle); return; }
      if (ev.type !== 'read' || ev.result <= 0) return;
      const q0 = queued, before = Date.now();
      const t = timeNow();
      spin(15);
      const stable = timeNow() === t;
      seen.push({ before, t, stable, queued: queued - q0, after: Date.now() });
      real(() => { inMicrotask.push({ t: timeNow(), d: Date.now() }); });
      ch.write(ev.handle, Buffer.from('k'));
    });
    ch.accept(lh);
    const s = await connectSocket(listener.port);
    let got = 0;
    s.on('data', (d: Buffer) => { got += d.byteLength; });
    for (let i = 0; i < 3; i++) {
      s.write('x');
      await waitFor(() => got === i + 1, `reply ${i + 1}`);
    }
    s.destroy();
    assert.equal(seen.length, 3);
    for (const [i, r] of seen.entries()) {
      assert.ok(r.t >= r.before && r.t <= r.after, `batch ${i}: read in the batch (${r.t} in [${r.before}, ${r.after}])`);
      assert.ok(r.stable, `batch ${i}: the clock does not move within the batch`);
      assert.equal(r.queued, 0, `batch ${i}: timeNow queued no microtask inside a batch`);
      if (i > 0) assert.ok(r.t >= seen[i - 1]!.t + 15, `batch ${i} read the clock again (not batch ${i - 1}'s ${seen[i - 1]!.t})`);
    }
    // a microtask queued in the batch runs after it: a run of its own, not the batch's (15 ms stale) value
    assert.equal(inMicrotask.length, 3);
    for (const [i, m] of inMicrotask.entries()) assert.ok(m.t >= seen[i]!.t + 15 && m.t <= m.d, `microtask ${i}: ${m.t} read afresh`);
    // after the batches, runs outside any batch expire the clock by a microtask again (a batch count left above zero
    // would freeze the clock for every later run)
    await new Promise((r) => setTimeout(r, 0));
    const q1 = queued, t1 = timeNow();
    assert.equal(queued - q1, 1, 'outside a batch timeNow queues its expiry again');
    spin(15);
    await new Promise((r) => setTimeout(r, 0));
    assert.ok(timeNow() >= t1 + 15, 'a later run reads the clock afresh');
  } finally {
    globalThis.queueMicrotask = real;
    await closeListenerAndChannel(ch, lh, listener, () => listenerGone);
  }
});
