// Review of `stats sizes_enable` across worker threads (issue 18): the store-wide switch goes 0 -> 2 (being turned on)
// -> 1; a second thread's sizes_enable meeting 2 answered "enabled" at once, and its next `stats sizes` / `stats
// settings` (still 2) said the histogram was off although nobody had turned it off.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { createStoreShared } from '../apps/memcached/store.js';
import { withTimeout } from './helpers.js';

test('two threads turning the size histogram on at once: each reads it on right after its own sizes_enable', async () => {
  const shared = createStoreShared({ maxBytes: 2 << 20, maxWorkers: 4 });
  const sync = new SharedArrayBuffer(16);
  const rounds = 5000;
  const url = new URL('./fixtures/review-sizes-race-worker.js', import.meta.url);
  const workers = [0, 1].map((worker) => new Worker(url, { workerData: { shared, sync, worker, rounds } }));
  try {
    const res = await withTimeout(Promise.all(workers.map((w) => new Promise<{ worker: number; offAfterEnable: number }>((resolve, reject) => {
      w.once('message', resolve);
      w.once('error', reject);
    }))), 60_000, 'the two threads');
    const off = res.reduce((n, r) => n + r.offAfterEnable, 0);
    assert.equal(off, 0, `rounds where sizes_enable answered "enabled" and the histogram then read off: ${JSON.stringify(res)} of ${rounds}`);
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
});
