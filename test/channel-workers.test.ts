// Channels in several worker threads at once: 4 workers, each with its own channel (its own io_uring, created on its
// own thread) and its own listener, all echoing at the same time; the main thread verifies every byte, each worker
// accounts for exactly the connections and bytes sent to it, and every worker thread ends by itself (exit code 0).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { BACKENDS, echoClient, logUniform, prng, randomBytes, skipFor, withTimeout } from './helpers.js';

const WORKERS = 4;
const CLIENTS_PER_WORKER = 60;

interface Ready { type: 'ready'; port: number; threadId: number; backend: string }
interface Stopped { type: 'stopped'; accepted: number; bytes: number; conns: number; errors: string[]; statsAccepted: number; statsBytes: number }

function nextMessage<T>(w: Worker, type: string, ms: number): Promise<T> {
  return withTimeout(new Promise<T>((resolve, reject) => {
    const onMsg = (m: { type: string }) => { if (m.type === type) { w.off('message', onMsg); resolve(m as T); } };
    w.on('message', onMsg);
    w.once('error', reject);
    w.once('exit', (code) => reject(new Error(`worker exited (${code}) before "${type}"`)));
  }), ms, `worker message "${type}"`);
}

for (const backend of BACKENDS) {
  describe(`${WORKERS} worker threads, one channel each (${backend})`, { skip: skipFor(backend) }, () => {
    it('every worker echoes its own clients, verified from the main thread', async () => {
      const url = new URL('./fixtures/echo-worker.js', import.meta.url);
      const workers = Array.from({ length: WORKERS }, () => new Worker(url, { workerData: { backend } }));
      try {
        const ready = await Promise.all(workers.map((w) => nextMessage<Ready>(w, 'ready', 20000)));
        assert.equal(new Set(ready.map((r) => r.threadId)).size, WORKERS);
        assert.equal(new Set(ready.map((r) => r.port)).size, WORKERS, 'one listener per worker');
        for (const r of ready) assert.equal(r.backend, backend);
        const rand = prng(77);
        const sent = ready.map(() => 0);
        // all workers busy at once: the clients of every worker are interleaved
        const clients: Promise<number>[] = [];
        for (let i = 0; i < CLIENTS_PER_WORKER; i++) {
          for (let w = 0; w < WORKERS; w++) {
            const n = logUniform(rand, 1, 512 * 1024);
            sent[w]! += n;
            clients.push(echoClient(ready[w]!.port, randomBytes(rand, n), { timeoutMs: 60000 }));
          }
        }
        await withTimeout(Promise.all(clients), 90000, 'all echo clients');
        const exits = workers.map((w) => withTimeout(new Promise<number>((resolve) => w.once('exit', resolve)), 20000, 'worker exit'));
        const stopped = workers.map((w) => nextMessage<Stopped>(w, 'stopped', 20000));
        for (const w of workers) w.postMessage('stop');
        const stats = await Promise.all(stopped);
        stats.forEach((s, w) => {
          assert.equal(s.accepted, CLIENTS_PER_WORKER, `worker ${w} accepted its clients`);
          assert.equal(s.statsAccepted, CLIENTS_PER_WORKER);
          assert.equal(s.bytes, sent[w], `worker ${w} read exactly what was sent to it`);
          assert.equal(s.statsBytes, sent[w]);
          assert.equal(s.conns, 0);
          assert.deepEqual(s.errors, []);
        });
        assert.deepEqual(await Promise.all(exits), workers.map(() => 0), 'every worker thread ends by itself');
      } finally {
        await Promise.all(workers.map((w) => w.terminate()));
      }
    });
  });
}
