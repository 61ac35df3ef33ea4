// The paper's loop style: `await ch.dispatch(ms)` returns the next event or null on timeout; `for await (const ev of
// ch)` iterates events until the channel closes. Events from dispatch own their data (kept events stay intact), and a
// consumer that falls behind does not lose bytes (the channel stops reading until the queue drains).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { BACKENDS, echoClient, openListener, prng, randomBytes, skipFor, withTimeout } from './helpers.js';
import { createChannel, type Channel, type MpEvent } from '../src/index.js';

let connIds = 0;

/** One step of an echo server driven by events it pulls; returns false once the listener is gone. `kept` collects every
 * read event's data per connection (keyed by a cookie: handle numbers are reused). */
function echoStep(ch: Channel, lh: number, ev: MpEvent, kept?: Map<number, Uint8Array[]>): boolean {
  const h = ev.handle;
  switch (ev.type) {
    case 'accept': ch.setCookie(h, ++connIds); ch.read(h); break;
    case 'read':
      if (ev.result > 0) {
        assert.ok(ev.data !== null && ev.data.byteLength === ev.result);
        if (kept) { const id = ev.cookie as number; const parts = kept.get(id); if (parts) parts.push(ev.data!); else kept.set(id, [ev.data!]); }
        ch.write(h, ev.buffer!, ev.offset, ev.result);
      } else ch.disconnect(h);
      break;
    case 'disconnect': if (h === lh) return false; break;
    default: break;
  }
  return true;
}

for (const backend of BACKENDS) {
  describe(`dispatch and async iteration (${backend})`, { skip: skipFor(backend) }, () => {
    it('await ch.dispatch(ms): events in a loop, null on timeout', async () => {
      const ch = createChannel({ backend });
      const listener = await openListener(backend);
      const lh = ch.register(listener, 'L');
      ch.accept(lh);
      assert.equal(await ch.dispatch(0), null, 'nothing pending: dispatch(0) is null at once');
      assert.equal(await ch.dispatch(20), null, 'nothing within 20 ms: null');
      const kept = new Map<number, Uint8Array[]>();
      let timeouts = 0, events = 0, stop = false;
      const loop = (async () => {
        for (let turns = 0; turns < 1_000_000; turns++) {
          const ev = await ch.dispatch(25);
          if (ev === null) { timeouts++; if (stop) { ch.unregister(lh); stop = false; } continue; }
          events++;
          if (!echoStep(ch, lh, ev, kept)) return;
        }
        throw new Error('dispatch loop did not end');
      })();
      try {
        const rand = prng(61);
        const payloads = Array.from({ length: 30 }, (_, i) => randomBytes(rand, 1 + i * 20_000));
        await withTimeout(Promise.all(payloads.map((p) => echoClient(listener.port, p))), 60000, 'echo clients');
        stop = true;
        await withTimeout(loop, 20000, 'the dispatch loop to end');
        assert.ok(timeouts >= 1, 'dispatch timed out (null) at least once');
        assert.ok(events >= 30 * 3);
        // events own their data: what was kept is exactly what was sent, whatever came after
        const keptTotal = [...kept.values()].map((parts) => Buffer.concat(parts)).sort(Buffer.compare);
        const sent = payloads.map((p) => Buffer.from(p)).sort(Buffer.compare);
        assert.equal(keptTotal.length, sent.length, 'one kept stream per connection');
        keptTotal.forEach((k, i) => assert.ok(k.equals(sent[i]!), `kept stream ${i} equals what its client sent`));
        assert.equal(ch.handles, 0);
      } finally { listener.close(); ch.close(); }
      assert.equal(await ch.dispatch(), null, 'a closed channel dispatches null');
    });

    it('for await (const ev of ch): iterates until the channel closes', async () => {
      const ch = createChannel({ backend });
      const listener = await openListener(backend);
      const lh = ch.register(listener, 'L');
      ch.accept(lh);
      const seen: Record<string, number> = {};
      const loop = (async () => {
        for await (const ev of ch) {
          seen[ev.type] = (seen[ev.type] ?? 0) + 1;
          echoStep(ch, lh, ev);
        }
      })();
      try {
        const rand = prng(62);
        const sizes = Array.from({ length: 40 }, (_, i) => 1 + ((i * 31_337) % 300_000));
        await withTimeout(Promise.all(sizes.map((n) => echoClient(listener.port, randomBytes(rand, n)))), 60000, 'echo clients');
      } finally {
        listener.close();
        ch.close();   // ends the iteration
      }
      await withTimeout(loop, 10000, 'the iteration to end after close()');
      assert.equal(seen.accept, 40);
      assert.equal(seen.disconnect, 40);
    });

    it('a consumer that falls behind loses nothing (bounded queue, reading pauses)', async () => {
      const ch = createChannel({ backend, limits: { dispatchQueueMax: 32 } });
      const listener = await openListener(backend);
      const lh = ch.register(listener, 'L');
      ch.accept(lh);
      const rand = prng(63);
      const payloads = Array.from({ length: 6 }, () => randomBytes(rand, 3 * 1024 * 1024));
      try {
        const clients = payloads.map((p) => echoClient(listener.port, p, { timeoutMs: 90000 }));
        await sleep(300);   // nobody dispatches meanwhile: events pile up to the bound, then reading stops
        let running = true;
        const loop = (async () => {
          for (let turns = 0; running && turns < 1_000_000; turns++) {
            const ev = await ch.dispatch(25);
            if (ev !== null) echoStep(ch, lh, ev);
          }
        })();
        try {
          await withTimeout(Promise.all(clients), 90000, 'echo clients after the late start');
        } finally {
          running = false;
          await loop;
        }
      } finally { listener.close(); ch.close(); }
    });
  });
}
