// Batching (MegaPipe's three flush rules plus the microtask rule), seen through stats():
// - threshold 1 (no batching): at least one io_uring_enter per submission entry;
// - a large threshold with many connections busy: far fewer enters than submission entries;
// - requests issued outside a completion batch (from a timer, after an await) are flushed by the microtask rule:
//   an echo server that answers from setTimeout or after a promise still works with a threshold it never reaches;
// - flush() submits staged requests at once.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BACKENDS, echoClient, prng, randomBytes, skipFor, startEchoServer, waitFor, withTimeout, closeListenerAndChannel } from './helpers.js';
import { createChannel, type MpEvent } from '../src/index.js';
import { openListener } from './helpers.js';

const noEnters = 'the portable backend makes no io_uring_enter calls (libuv issues one system call per operation)';

async function load(port: number, clients: number, size: number, seed: number): Promise<void> {
  const rand = prng(seed);
  await withTimeout(Promise.all(Array.from({ length: clients }, () => echoClient(port, randomBytes(rand, size)))), 60000, 'echo clients');
}

for (const backend of BACKENDS) {
  describe(`batching (${backend})`, { skip: skipFor(backend) }, () => {
    it('threshold 1: at least one enter per submitted request', async (t) => {
      const server = await startEchoServer(backend, { batch: 1 });
      try {
        assert.equal(server.ch.batchThreshold, 1);
        await load(server.port, 50, 20_000, 1);
        const st = server.ch.stats();
        if (backend === 'portable') { t.diagnostic(noEnters); return; }
        assert.ok(st.submitted > 50, `submitted ${st.submitted}`);
        assert.ok(st.enters >= st.submitted, `enters ${st.enters} ≥ submitted ${st.submitted}`);
      } finally { await server.close(); }
    });

    it('a large threshold: fewer enters than submitted requests', async (t) => {
      const server = await startEchoServer(backend, { batch: 512 });
      try {
        await load(server.port, 300, 2_000, 2);
        const st = server.ch.stats();
        if (backend === 'portable') { t.diagnostic(noEnters); return; }
        assert.ok(st.submitted > 600, `submitted ${st.submitted}`);
        assert.ok(st.enters < st.submitted, `enters ${st.enters} < submitted ${st.submitted}`);
        assert.ok(st.completions >= st.batches && st.batches > 0, 'completions arrive in batches');
      } finally { await server.close(); }
    });

    for (const when of ['setTimeout', 'promise'] as const) {
      it(`requests issued from ${when === 'setTimeout' ? 'a timer' : 'a resolved promise'} are flushed (microtask rule)`, async () => {
        // the threshold is never reached: only the microtask flush can send these writes
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
            const copy = Buffer.from(ev.buffer!.subarray(ev.offset, ev.offset + ev.result));
            later(() => { if (ch.isOpen(h)) ch.write(h, copy); });
          } else if (ev.type === 'disconnect') open--;
        });
        ch.accept(lh);
        try {
          await load(listener.port, 40, 30_000, 3);
          await waitFor(() => open === 0, 'connections to close');
        } finally {
          await closeListenerAndChannel(ch, lh, listener, () => listenerGone);
        }
      });
    }

    it('flush() submits staged requests at once', async (t) => {
      const ch = createChannel({ backend, batch: 1024 });
      const listener = await openListener(backend);
      const lh = ch.register(listener, 'L');
      let conn = -1, listenerGone = false, checked = false, gone = false;
      const failures: string[] = [];
      ch.onEvent((ev) => {
        if (ev.handle === lh) { if (ev.type === 'disconnect') listenerGone = true; return; }
        if (ev.type === 'accept') { conn = ev.handle; ch.read(conn); }
        else if (ev.type === 'read' && ev.result > 0) {
          const copy = Buffer.from(ev.buffer!.subarray(ev.offset, ev.offset + ev.result));
          setTimeout(() => {   // outside any completion batch
            const before = ch.stats().submitted;
            ch.write(conn, copy);
            if (backend === 'uring' && ch.stats().submitted !== before) failures.push('write submitted before flush()');
            ch.flush();
            if (backend === 'uring' && ch.stats().submitted <= before) failures.push('flush() submitted nothing');
            checked = true;
          }, 1);
        } else if (ev.type === 'read') { const h = ev.handle; setTimeout(() => ch.disconnect(h), 1); }   // after the write's timer
        else if (ev.type === 'disconnect') gone = true;
      });
      ch.accept(lh);
      try {
        const payload = randomBytes(prng(4), 1000);
        await echoClient(listener.port, payload);
        await waitFor(() => checked && gone, 'the flush check');
        assert.deepEqual(failures, []);
        if (backend === 'portable') t.diagnostic('flush() is a no-op on the portable backend (node:net writes go to libuv at once); the echo still completes');
      } finally {
        await closeListenerAndChannel(ch, lh, listener, () => listenerGone);
      }
    });

    it('batchThreshold can be changed on a live channel', async () => {
      const server = await startEchoServer(backend, { batch: 4 });
      try {
        server.ch.batchThreshold = 1;
        await load(server.port, 10, 5_000, 5);
        server.ch.batchThreshold = 256;
        await load(server.port, 10, 5_000, 6);
        assert.equal(server.ch.batchThreshold, 256);
      } finally { await server.close(); }
    });
  });
}
