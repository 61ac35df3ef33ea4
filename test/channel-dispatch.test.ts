// The paper's loop style: `await ch.dispatch(ms)` returns the next event or null on timeout; `for await (const ev of
// ch)` iterates events until the channel closes. Events from dispatch own their data (kept events stay intact), and a
// consumer that falls behind loses nothing: once more than limits.dispatchQueueMax events wait, the connection stops
// being read (the kernel's socket buffers fill, TCP holds the peer back) until dispatch() has drained half of them.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { closeSync, openSync } from 'node:fs';
import { setImmediate as immediate } from 'node:timers/promises';
import { BACKENDS, connectSocket, echoClient, openListener, prng, randomBytes, skipFor, tcpQueues, withTimeout } from './helpers.js';
import { createChannel, type Channel, type MpEvent } from '../src/index.js';

const selfFd = openSync(new URL(import.meta.url), 'r');   // readFile's round trips through a channel
after(() => closeSync(selfFd));

/** Checks everything `s` receives against `expect`, incrementally; resolves with the count at EOF. */
function verifyEcho(s: net.Socket, expect: Uint8Array, ms: number): Promise<number> {
  return withTimeout(new Promise((resolve, reject) => {
    let got = 0;
    s.on('data', (d: Buffer) => {
      if (got + d.byteLength > expect.byteLength || Buffer.compare(d, expect.subarray(got, got + d.byteLength)) !== 0) { reject(new Error(`echo differs or overruns at ${got}`)); s.destroy(); return; }
      got += d.byteLength;
    });
    s.once('end', () => (got === expect.byteLength ? resolve(got) : reject(new Error(`EOF after ${got} of ${expect.byteLength} B`))));
    s.once('error', reject);
  }), ms, 'the echo of every byte');
}

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
        ch.write(h, ev.buffer, ev.offset, ev.result);
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
      let events = 0, stop = false;
      const loop = (async () => {
        for (let turns = 0; turns < 1_000_000; turns++) {
          const ev = await ch.dispatch(25);
          if (ev === null) { if (stop) { ch.unregister(lh); stop = false; } continue; }   // (null on timeout: asserted above)
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

    it('a consumer that falls behind: events pile up to dispatchQueueMax, reading stops, and resumes once dispatch() drains half', async (t) => {
      const N = 32;   // dispatchQueueMax
      // the subject is the queue bound: the high-water mark must not pause reading here
      const ch = createChannel({ backend, limits: { dispatchQueueMax: N }, pauseReadsAboveHighWater: false });
      const listener = await openListener(backend);
      const lh = ch.register(listener, 'L');
      ch.accept(lh);
      // far more than the socket buffers of both ends hold (tcp_rmem's maximum here is tens of MiB)
      const payload = randomBytes(prng(63), 32 * 1024 * 1024);
      let client: net.Socket | undefined, loop: Promise<void> | undefined, stop = false;
      try {
        client = await connectSocket(listener.port);
        const echoed = verifyEcho(client, payload, 60000);
        echoed.catch(() => undefined);   // awaited below; a failure before that must not surface as unhandled
        const acc = await withTimeout(ch.dispatch(), 10000, 'the accept event');
        assert.equal(acc?.type, 'accept');
        const h = acc!.handle;
        ch.read(h);
        client.end(payload);   // node:net keeps a reference: it writes what the kernel takes
        // nobody dispatches: reading stops. Evidence from the kernel, not from a quiet window: over several round trips
        // through the channel (each one a chance to read: its ring on io_uring, libuv's poll phase on node:net), the
        // channel's count of bytes read stays put while the server socket's receive queue holds bytes it does not take
        // and the client cannot hand the rest of its payload to its kernel
        let last = -1, same = 0;
        for (let i = 0; i < 5000 && same < 5; i++) {
          await ch.readFile(selfFd, 0, 1);
          const now = ch.stats().bytesRead;
          const srv = tcpQueues(listener.port, client.localPort!), cli = tcpQueues(client.localPort!, listener.port);
          same = now === last && srv !== undefined && srv.rx > 0 && cli !== undefined && cli.tx > 0 ? same + 1 : 0;
          last = now;
        }
        assert.equal(same, 5, 'reading stopped: the server socket keeps bytes the channel does not take');
        const read0 = ch.stats().bytesRead;
        t.diagnostic(`paused after ${read0} B; server socket ${JSON.stringify(tcpQueues(listener.port, client.localPort!))}, client socket ${JSON.stringify(tcpQueues(client.localPort!, listener.port))}`);
        assert.ok(read0 < payload.byteLength / 2, `the channel took ${read0} of ${payload.byteLength} B while nobody dispatched`);
        // fewer than half the bound dispatched: still paused, even once the loop has turned and the ring answered
        let got = 0;
        const held: Uint8Array[] = [];   // echoed once the queue is drained (a write would queue 'write' events meanwhile)
        const take = (ev: MpEvent | null): void => {
          assert.ok(ev !== null && ev.handle === h && ev.type === 'read' && ev.result > 0, `a queued read event (${ev?.type} ${ev?.result})`);
          assert.ok(Buffer.from(ev.data!).equals(payload.subarray(got, got + ev.result)), `bytes [${got}, +${ev.result}) in order`);
          got += ev.result;
          held.push(ev.data!);
        };
        for (let i = 0; i < N / 2 - 1; i++) take(await ch.dispatch(0));
        await ch.readFile(selfFd, 0, 1);   // a round trip through the channel (its ring on io_uring)
        for (let i = 0; i < 5; i++) await immediate();
        assert.equal(ch.stats().bytesRead, read0, 'no reading while more than half the bound is queued');
        // what was queued (and, on io_uring, held back after the pause) is everything read so far, and at least the bound
        let queued = N / 2 - 1;
        for (;;) {
          const ev = await ch.dispatch(0);
          if (ev === null) break;
          take(ev);
          queued++;
        }
        assert.equal(got, read0, 'the queued events carry every byte read, in order, and nothing else');
        assert.ok(queued >= N + 1, `${queued} events were queued: the pause came once the queue passed the bound (${N})`);
        if (backend === 'portable') assert.equal(queued, N + 1, 'node:net stops at once: exactly the bound plus the event that passed it');
        t.diagnostic(`${queued} events queued`);
        // dispatching again: reading has resumed and everything flows, echoed byte for byte
        for (const b of held.splice(0)) ch.write(h, b);
        loop = (async () => {
          for (let turns = 0; turns < 1_000_000 && !stop; turns++) {
            const ev = await ch.dispatch(25);
            if (ev === null) { if (!ch.isOpen(h)) return; continue; }
            if (ev.handle === h && ev.type === 'read' && ev.result > 0) { take(ev); ch.write(h, held.pop()!); }
            else if (ev.handle === h && ev.type === 'read') ch.disconnect(h);
            else if (ev.handle === h && ev.type === 'disconnect') return;
          }
          if (!stop) throw new Error('dispatch loop did not end');
        })();
        assert.equal(await echoed, payload.byteLength, 'every byte echoed');
        await withTimeout(loop, 20000, 'the connection to close');
        assert.equal(got, payload.byteLength);
        assert.equal(ch.stats().bytesRead, payload.byteLength);
      } finally {
        stop = true;
        client?.destroy(); listener.close(); ch.close();
        await loop?.catch(() => undefined);
      }
    });
  });
}
