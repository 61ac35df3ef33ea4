// A completion wakes a sleeping loop at once. A channel waits in Node's loop on an eventfd its ring signals; on a
// DEFER_TASKRUN ring the kernel signals it as it queues a completion's deferred task work — but a kernel found here
// (6.18.44, a Firecracker guest) signals it 14–35 ms later, leaving the loop asleep with a receive waiting (an echo
// server's p99 went from 2.5 to 15 ms). The addon probes for that once (native/ring.c, defer_wake) and sets such rings
// up without DEFER_TASKRUN.
//
// The measure is the event loop's own iterations, not time: one byte is written to a connection whose receive is
// armed, and a setImmediate chain keeps the loop polling with a zero timeout, so every iteration looks at the eventfd.
// Signalled by the time write(2) returned, the read event comes within a few iterations; signalled late, thousands
// pass first (each is a few µs; the bound below would need 280 µs per iteration to hide a 14 ms delay). The peer
// writes from this thread (its write is the ring owner's own system call) and from a worker thread (another task, as
// a remote client is); every byte is echoed back and checked. Fails on the commit before the probe on that kernel, and
// with MEGAPIPE_RING_SETUP=0 (DEFER_TASKRUN forced) there.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import { BACKENDS, skipFor, startEchoServer, uringSkip, waitFor } from './helpers.js';
import { native } from '../src/native.js';

const ROUNDS = 20;
/** Loop iterations allowed between the peer's write and the server's read event (a prompt wake-up takes 1–3). */
const ITERATIONS_MAX = 50;

/** Spins the loop with setImmediate until `done()`, or ITERATIONS_MAX + 1 iterations; returns the count. */
function iterationsUntil(done: () => boolean): Promise<number> {
  return new Promise((resolve) => {
    let n = 0;
    const spin = (): void => { if (done() || n > ITERATIONS_MAX) resolve(n); else { n++; setImmediate(spin); } };
    spin();
  });
}

const workerSource = `
const net = require('node:net');
const { parentPort, workerData } = require('node:worker_threads');
const sock = net.connect(workerData.port, '127.0.0.1');
const got = [];
sock.on('data', (d) => { for (const b of d) got.push(b); parentPort.postMessage({ echoed: got.length, bytes: got.slice() }); });
sock.on('error', (e) => parentPort.postMessage({ error: e.message }));
sock.on('connect', () => parentPort.postMessage({ connected: true }));
parentPort.on('message', (m) => {
  if (m === 'end') { sock.end(); return; }
  sock.write(Buffer.from([m]));      // into the kernel before write() returns (a fresh, empty socket)
  parentPort.postMessage({ wrote: m });
});
`;

for (const backend of BACKENDS) {
  describe(`a completion wakes the loop at once (${backend})`, { skip: skipFor(backend) }, () => {
    it('a peer in this thread: each byte is read within a few loop iterations, and echoed', async () => {
      let reads = 0;
      const server = await startEchoServer(backend, { tap: (ev) => { if (ev.type === 'read' && ev.result > 0) reads += ev.result; } });
      const sock = net.connect(server.port, '127.0.0.1');
      try {
        await once(sock, 'connect');
        const echoed: number[] = [];
        sock.on('data', (d: Buffer) => { for (const b of d) echoed.push(b); });
        const counts: number[] = [];
        for (let r = 0; r < ROUNDS; r++) {
          const before = reads;
          sock.write(Buffer.from([r]));
          counts.push(await iterationsUntil(() => reads > before));
          await waitFor(() => echoed.length > r, `the echo of byte ${r}`, { ms: 10000 });
        }
        assert.deepEqual(echoed, Array.from({ length: ROUNDS }, (_, i) => i), 'every byte echoed, in order');
        // the first round may find the receive not yet re-armed multishot; every round must be prompt all the same
        assert.ok(counts.every((n) => n <= ITERATIONS_MAX), `loop iterations from write to read event, per round: ${counts.join(' ')}`);
      } finally {
        sock.destroy();
        await server.close();
      }
    });

    it('a peer in a worker thread: each byte is read within a few loop iterations, and echoed', async () => {
      let reads = 0;
      const server = await startEchoServer(backend, { tap: (ev) => { if (ev.type === 'read' && ev.result > 0) reads += ev.result; } });
      const w = new Worker(workerSource, { eval: true, workerData: { port: server.port } });
      try {
        const messages: Array<{ connected?: boolean; wrote?: number; echoed?: number; bytes?: number[]; error?: string }> = [];
        w.on('message', (m) => messages.push(m));
        await waitFor(() => messages.some((m) => m.connected), 'the worker to connect', { ms: 10000 });
        const counts: number[] = [];
        for (let r = 0; r < ROUNDS; r++) {
          const before = reads;
          w.postMessage(r);
          // count from the moment this thread learns the byte is in the kernel
          await waitFor(() => messages.some((m) => m.wrote === r), `the worker to write byte ${r}`, { ms: 10000 });
          counts.push(await iterationsUntil(() => reads > before));
          await waitFor(() => messages.some((m) => (m.echoed ?? 0) > r), `the echo of byte ${r}`, { ms: 10000 });
        }
        assert.deepEqual(messages.filter((m) => m.error), [], 'no socket error in the worker');
        const last = messages.filter((m) => m.bytes).pop();
        assert.deepEqual(last?.bytes, Array.from({ length: ROUNDS }, (_, i) => i), 'every byte echoed, in order');
        assert.ok(counts.every((n) => n <= ITERATIONS_MAX), `loop iterations from write to read event, per round: ${counts.join(' ')}`);
      } finally {
        w.postMessage('end');
        await w.terminate();
        await server.close();
      }
    });
  });
}

describe('the DEFER_TASKRUN wake-up probe (native/ring.c, defer_wake)', { skip: uringSkip }, () => {
  it('channels use DEFER_TASKRUN only where its eventfd is signalled at once', () => {
    const p = native!.probe();
    if (process.env.MEGAPIPE_RING_SETUP !== undefined) return;   // a forced set-up step (channel-ring-setup)
    // no answer: DEFER_TASKRUN refused (before 6.1), so not used
    assert.equal(p.deferTaskrun, p.deferWakes ?? false,
      `DEFER_TASKRUN ${p.deferTaskrun ? 'used' : 'not used'}; the probe says its eventfd is signalled ${p.deferWakes === undefined ? '(no answer)' : p.deferWakes ? 'at once' : 'late'}`);
  });
});
