// One Node-API callback scope per wake-up (native/loop.c, run_turn): the completion batches of one turn — typically
// the receives, then the sends the turn's own flush completed inline — run inside a single callback scope, so a turn
// pays one scope set-up and one nextTick/microtask checkpoint, not one per batch. Proven by counting, never by timing:
// async_hooks' `before` fires once per callback scope entered for the channel's async resource ("megapipe.channel"),
// and the channel counts its wake-ups and batches. A ping-pong echo over one connection drains two batches in most
// turns, so before the change the `before` count equalled the batch count, above the wake-up count.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHook } from 'node:async_hooks';
import { connectSocket, openListener, skipFor, withTimeout, closeListenerAndChannel } from './helpers.js';
import { createChannel, type MpEvent } from '../src/index.js';

const ROUND_TRIPS = 50;

describe('callback scope per turn (uring)', { skip: skipFor('uring') }, () => {
  it('the batches of one wake-up enter JavaScript through one callback scope', async () => {
    const channelIds = new Set<number>();
    let befores = 0;
    const hook = createHook({
      init(id, type) { if (type === 'megapipe.channel') channelIds.add(id); },
      before(id) { if (channelIds.has(id)) befores++; },
    }).enable();
    const ch = createChannel({ backend: 'uring' });
    const listener = await openListener('uring');
    const lh = ch.register(listener, 'L');
    let listenerGone = false, ticks = 0, microtasks = 0;
    ch.onEvent((ev: MpEvent) => {
      const h = ev.handle;
      if (h === lh) { if (ev.type === 'disconnect') listenerGone = true; return; }
      if (ev.type === 'accept') ch.read(h);
      else if (ev.type === 'read' && ev.result > 0) {
        ch.write(h, Buffer.from(ev.buffer.subarray(ev.offset, ev.offset + ev.result)));
        // what a handler defers still runs before the next wake-up is waited for (when the turn's scope closes)
        process.nextTick(() => { ticks++; });
        queueMicrotask(() => { microtasks++; });
      }
    });
    ch.accept(lh);
    const s = await connectSocket(listener.port);
    try {
      assert.equal(channelIds.size, 1, 'the channel made one async resource');
      // the connection is accepted and armed before counting
      s.write('a');
      await withTimeout(new Promise<void>((r) => s.once('data', () => r())), 10000, 'first echo');
      const a = ch.stats(), b0 = befores;
      for (let i = 0; i < ROUND_TRIPS; i++) {
        const echoed = new Promise<void>((r) => s.once('data', () => r()));
        s.write('x');
        await withTimeout(echoed, 10000, `echo ${i}`);
      }
      const z = ch.stats();
      const wakeups = z.wakeups - a.wakeups, batches = z.batches - a.batches, scopes = befores - b0;
      assert.ok(batches > wakeups, `the echo drains more than one batch in some turns (${batches} batches, ${wakeups} wake-ups)`);
      assert.ok(scopes <= wakeups, `one callback scope per wake-up at most (${scopes} scopes, ${batches} batches, ${wakeups} wake-ups)`);
      assert.ok(scopes >= 1);
      assert.equal(ticks, ROUND_TRIPS + 1);
      assert.equal(microtasks, ROUND_TRIPS + 1);
    } finally {
      hook.disable();
      s.destroy();
      await closeListenerAndChannel(ch, lh, listener, () => listenerGone);
    }
  });
});
