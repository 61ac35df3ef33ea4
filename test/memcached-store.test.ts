// The shared store's hash table grows per lock stripe (like memcached's hash expansion): lookups stay correct
// across splits, the consistency check holds, and a table at its cap keeps working (longer chains) while memory
// pressure is handled by eviction, as memcached does.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createStoreShared, hashKey, S, Store, StoreCmd, StoreResult } from '../apps/memcached/store.js';

const enc = new TextEncoder();

function set(st: Store, key: string, value: string): StoreResult {
  const k = enc.encode(key), v = enc.encode(value + '\r\n');
  const ref = st.alloc(k, 0, k.length, 0, 0, v.length);
  assert.ok(ref >= 0, `alloc ${key}: ${ref}`);
  st.writeData(ref, 0, v, 0, v.length);
  return st.storeItem(ref, StoreCmd.SET, false);
}

function get(st: Store, key: string): string | null {
  const k = enc.encode(key);
  const hv = hashKey(k, 0, k.length);
  st.lockKey(hv);
  try {
    const ref = st.find(hv, k, 0, k.length);
    if (ref === -1) return null;
    const d = st.dataOffset(ref);
    return Buffer.from(st.mem.subarray(d, d + st.nbytes(ref) - 2)).toString('latin1');
  } finally {
    st.unlockKey(hv);
  }
}

describe('memcached store hash table', () => {
  it('starts at 4096 buckets and grows with the items, every key still found', () => {
    const st = new Store(createStoreShared({ maxBytes: 64 * 1024 * 1024 }));
    assert.equal(st.hashBuckets(), 4096);
    const n = 60_000;
    for (let i = 0; i < n; i++) assert.equal(set(st, `key:${i}`, `value-${i}`), StoreResult.STORED);
    const buckets = st.hashBuckets();
    assert.ok(buckets >= n / 2 && buckets <= 4 * n, `buckets ${buckets} for ${n} items`);
    for (let i = 0; i < n; i += 7) assert.equal(get(st, `key:${i}`), `value-${i}`);
    assert.equal(get(st, 'key:absent'), null);
    // overwrite and delete half: counts stay exact
    for (let i = 0; i < n; i += 2) assert.equal(set(st, `key:${i}`, `new-${i}`), StoreResult.STORED);
    for (let i = 1; i < n; i += 2) {
      const k = enc.encode(`key:${i}`), hv = hashKey(k, 0, k.length);
      st.lockKey(hv);
      const ref = st.find(hv, k, 0, k.length);
      assert.notEqual(ref, -1);
      st.unlink(ref, hv);
      st.unlockKey(hv);
    }
    for (let i = 0; i < n; i += 5) assert.equal(get(st, `key:${i}`), i % 2 === 0 ? `new-${i}` : null);
    assert.deepEqual(st.check(), []);
  });

  it('at its cap (small -m) chains lengthen and memory pressure evicts, as memcached', () => {
    // 2 MiB: the table may grow to 32768 buckets; far more sets than fit in memory
    const st = new Store(createStoreShared({ maxBytes: 2 * 1024 * 1024 }));
    for (let i = 0; i < 100_000; i++) assert.equal(set(st, `k${i}`, 'x'.repeat(20)), StoreResult.STORED);
    assert.ok(st.hashBuckets() <= 32768);
    assert.ok(st.statTotal(S.evictions) > 0, 'evicted under memory pressure');
    assert.ok(st.statTotal(S.bytes) <= 2 * 1024 * 1024);
    assert.equal(get(st, 'k99999'), 'x'.repeat(20)); // the newest survives
    assert.deepEqual(st.check(), []);
  });
});
