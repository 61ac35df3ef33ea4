// Flow control against a peer that never reads (until it finally does):
// - a writer that keeps writing sees `write` return false above the high-water mark, and pendingBytes never exceeds
//   the high-water mark plus one write;
// - an echo server (which writes whatever it reads) stops receiving from that peer, so neither its queue nor the
//   process's memory grows with what the peer pushes, while another connection on the same channel keeps echoing;
// - when the peer reads at last, every byte arrives, in order.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { BACKENDS, connectSocket, echoClient, openListener, prng, randomBytes, rssBytes, skipFor, waitFor, withTimeout, closeListenerAndChannel } from './helpers.js';
import { createChannel } from '../src/index.js';

/** Reads everything `s` receives from now on, checking it against `expect` incrementally; resolves at EOF. */
function verifyStream(s: net.Socket, expect: Uint8Array, ms: number): Promise<number> {
  return withTimeout(new Promise((resolve, reject) => {
    let got = 0;
    s.on('data', (d: Buffer) => {
      if (got + d.byteLength > expect.byteLength || Buffer.compare(d, expect.subarray(got, got + d.byteLength)) !== 0) {
        s.destroy(); reject(new Error(`bytes differ or overrun at ${got}`)); return;
      }
      got += d.byteLength;
    });
    s.once('end', () => (got === expect.byteLength ? resolve(got) : reject(new Error(`EOF after ${got} of ${expect.byteLength} B`))));
    s.once('error', reject);
  }), ms, 'the slow reader to receive everything');
}

for (const backend of BACKENDS) {
  describe(`flow control (${backend})`, { skip: skipFor(backend) }, () => {
    it('a writer that keeps writing: write() returns false above the high-water mark; pendingBytes stays bounded', async (t) => {
      const TOTAL = 48 * 1024 * 1024, CHUNK = 40_000;
      const rand = prng(11);
      const data = randomBytes(rand, TOTAL);
      const ch = createChannel({ backend });
      const hwm = ch.limits.highWaterMark, lwm = ch.limits.lowWaterMark;
      const listener = await openListener(backend);
      const lh = ch.register(listener, 'L');
      let conn = -1, sent = 0, falses = 0, trues = 0, maxPending = 0, drains = 0, gone = false, listenerGone = false;
      const errors: string[] = [];
      const pump = () => {
        while (sent < TOTAL) {
          const n = Math.min(CHUNK, TOTAL - sent);
          const ok = ch.write(conn, data, sent, n);
          sent += n;
          maxPending = Math.max(maxPending, ch.pendingBytes(conn));
          if (!ok) { falses++; assert.ok(ch.pendingBytes(conn) > hwm, 'false only above the high-water mark'); return; }
          trues++;
        }
        ch.disconnect(conn);   // graceful: the queue drains first
      };
      ch.onEvent((ev) => {
        if (ev.handle === lh) { if (ev.type === 'disconnect') listenerGone = true; return; }
        if (ev.type === 'accept') { conn = ev.handle; pump(); }
        else if (ev.type === 'write') {
          maxPending = Math.max(maxPending, ch.pendingBytes(conn));
          if (sent < TOTAL && ch.pendingBytes(conn) <= lwm) { drains++; pump(); }
        } else if (ev.type === 'error') errors.push(ev.code!);
        else if (ev.type === 'disconnect') gone = true;
      });
      ch.accept(lh, { count: 1 });
      let s: net.Socket | undefined;
      try {
        s = await connectSocket(listener.port);
        s.pause();   // never reads (node:net fills its own buffer, then stops reading from the kernel)
        await waitFor(() => falses > 0, 'write() to return false');
        // the kernel's socket buffers absorb some more (autotuning); then the writer stalls with a bounded queue
        let stalledAt = -1;
        for (let i = 0; i < 100 && sent !== stalledAt; i++) { stalledAt = sent; await sleep(50); }
        assert.equal(sent, stalledAt, 'the writer stalls while the peer does not read');
        assert.ok(sent < TOTAL, `stalled after ${sent} of ${TOTAL} B`);
        assert.ok(ch.pendingBytes(conn) <= hwm + CHUNK, `pendingBytes ${ch.pendingBytes(conn)} ≤ hwm + one write`);
        const all = verifyStream(s, data, 60000);
        s.resume();
        assert.equal(await all, TOTAL);
        await waitFor(() => gone, 'the writer connection to close');
        assert.ok(maxPending <= hwm + CHUNK, `max pendingBytes ${maxPending} ≤ ${hwm} + ${CHUNK}`);
        t.diagnostic(`stalled after ${stalledAt} B queued; max pendingBytes ${maxPending} (hwm ${hwm} + write ${CHUNK})`);
        assert.ok(drains > 0 && falses > 1 && trues > 0);
        assert.deepEqual(errors, []);
      } finally {
        s?.destroy();
        await closeListenerAndChannel(ch, lh, listener, () => listenerGone);
      }
    });

    it('pause()/resume(): no read events while paused, then every byte and the EOF, in order, never inside resume()', async () => {
      const rand = prng(13);
      const data = randomBytes(rand, 4 * 1024 * 1024);
      const ch = createChannel({ backend });
      const listener = await openListener(backend);
      const lh = ch.register(listener, 'L');
      let conn = -1, paused = false, resumed = false, inResume = false, listenerGone = false, gone = false, eofAt = -1;
      const violations: string[] = [];
      const got: Buffer[] = [];
      let received = 0;
      ch.onEvent((ev) => {
        if (ev.handle === lh) { if (ev.type === 'disconnect') listenerGone = true; return; }
        if (ev.type === 'accept') { conn = ev.handle; ch.read(conn); return; }
        if (ev.type === 'disconnect') { gone = true; return; }
        if (ev.type !== 'read') return;
        if (paused) violations.push(`read event (${ev.result}) while paused`);
        if (inResume) violations.push('read event delivered inside resume()');
        if (ev.result === 0) { eofAt = received; ch.disconnect(conn); return; }
        got.push(Buffer.from(ev.buffer!.subarray(ev.offset, ev.offset + ev.result)));
        received += ev.result;
        if (received >= 100_000 && !paused && !resumed) { ch.pause(conn); paused = true; }
      });
      ch.accept(lh);
      let s: net.Socket | undefined;
      try {
        s = await connectSocket(listener.port);
        s.end(data);   // all of it, then FIN: both arrive while the handle is paused
        await waitFor(() => paused, 'the pause');
        // let the rest (and the FIN) reach the server while paused; nothing may be delivered meanwhile
        let last = -1;
        for (let i = 0; i < 40 && s.writableLength !== last; i++) { last = s.writableLength; await sleep(25); }
        await sleep(100);
        const whilePaused = received;
        assert.ok(whilePaused < data.byteLength, 'paused before the end');
        resumed = true;
        paused = false;
        inResume = true;
        ch.resume(conn);
        inResume = false;
        await waitFor(() => gone, 'the EOF and close after resume()');
        assert.deepEqual(violations, []);
        assert.equal(eofAt, data.byteLength, 'EOF after every byte');
        assert.ok(Buffer.concat(got).equals(data), 'every byte, in order');
      } finally {
        s?.destroy();
        await closeListenerAndChannel(ch, lh, listener, () => listenerGone);
      }
    });

    it('an echo peer that never reads: receiving pauses, memory stays bounded, others keep echoing, nothing is lost', async (t) => {
      const PUSH = 64 * 1024 * 1024;
      const rand = prng(12);
      const payload = randomBytes(rand, PUSH);
      // a 4 MiB receive pool and 8 MiB of send memory: the channel's fixed regions are mapped lazily, so RSS grows
      // by up to their size as they are first touched; keep that small beside what the peer pushes
      const ch = createChannel({ backend, limits: { recvBuffers: 256, sendArenaBytes: 8 * 1024 * 1024 } });
      const hwm = ch.limits.highWaterMark;
      const listener = await openListener(backend);
      const lh = ch.register(listener, 'L');
      const read = new Map<number, number>();   // bytes received per connection
      let maxPending = 0, maxRead = 0, listenerGone = false, falses = 0;
      const errors: string[] = [];
      ch.onEvent((ev) => {
        const h = ev.handle;
        if (h === lh) { if (ev.type === 'disconnect') listenerGone = true; return; }
        switch (ev.type) {
          case 'accept': read.set(h, 0); ch.read(h); break;
          case 'read':
            if (ev.result === 0) { ch.disconnect(h); break; }
            read.set(h, read.get(h)! + ev.result);
            maxRead = Math.max(maxRead, ev.result);
            if (!ch.write(h, ev.buffer!, ev.offset, ev.result)) falses++;   // keeps writing whatever it reads
            maxPending = Math.max(maxPending, ch.pendingBytes(h));
            break;
          case 'error': errors.push(ev.code!); break;
          case 'disconnect': read.delete(h); break;
          default: break;
        }
      });
      ch.accept(lh);
      let sink: net.Socket | undefined;
      try {
        // warm up (JIT, pools, socket buffers) with ordinary echo traffic, then take the baseline
        await withTimeout(Promise.all(Array.from({ length: 20 }, (_, i) => echoClient(listener.port, randomBytes(rand, 1000 + i * 50_000)))), 60000, 'warm-up clients');
        const rssBefore = rssBytes();
        sink = await connectSocket(listener.port);
        sink.pause();
        sink.write(payload);   // node:net keeps a reference, no copy
        await waitFor(() => falses > 0, 'the echo to exceed the high-water mark');
        // let the stall settle, then check that the server stopped taking bytes from the sink
        let last = -1, sinkBytes = 0;
        for (let i = 0; i < 50; i++) {
          await sleep(20);
          sinkBytes = [...read.values()][0] ?? 0;
          if (sinkBytes === last) break;
          last = sinkBytes;
        }
        assert.equal(sinkBytes, last, 'the server stopped receiving from the peer that does not read');
        assert.ok(sinkBytes < PUSH / 2, `server took ${sinkBytes} of ${PUSH} B`);
        assert.ok(sink.writableLength > 0, 'the peer\'s own writes back up (TCP flow control reached it)');
        assert.ok(maxPending <= hwm + maxRead, `max pendingBytes ${maxPending} ≤ ${hwm} + one write (${maxRead})`);
        // meanwhile another connection on the same channel is served normally
        const others = await withTimeout(Promise.all(Array.from({ length: 20 }, (_, i) => echoClient(listener.port, randomBytes(rand, 1000 + i * 20_000)))), 60000, 'other clients');
        assert.equal(others.length, 20);
        assert.equal([...read.values()][0], sinkBytes, 'still paused');
        const grew = rssBytes() - rssBefore;
        t.diagnostic(`server took ${sinkBytes} of ${PUSH} B before pausing; max pendingBytes ${maxPending} (hwm ${hwm} + read ${maxRead}); RSS +${(grew / 1048576).toFixed(1)} MiB`);
        assert.ok(grew < 24 * 1024 * 1024, `RSS grew by ${(grew / 1048576).toFixed(1)} MiB while ${PUSH >> 20} MiB were pushed`);
        // now the sink reads: everything comes back in order
        const all = verifyStream(sink, payload, 120000);
        sink.end();
        sink.resume();
        assert.equal(await all, PUSH);
        assert.ok(maxPending <= hwm + maxRead, `max pendingBytes ${maxPending} ≤ ${hwm} + one write (${maxRead})`);
        assert.deepEqual(errors, []);
        await waitFor(() => read.size === 0, 'connections to close');
      } finally {
        sink?.destroy();
        await closeListenerAndChannel(ch, lh, listener, () => listenerGone);
      }
    });
  });
}
