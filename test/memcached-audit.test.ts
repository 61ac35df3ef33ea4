// Regression tests from an audit of the memcached app against Debian's memcached 1.6.18.
//
// Meta's b flag (base64 keys): memcached's decoder is lenient — it skips bytes outside the alphabet, needs a
// non-zero multiple of 4 of the bytes it keeps, and stops at the first block holding a '='. A property compares
// base64Decode with a reference written from memcached's base64.c (random byte strings, junk and '=' included), and
// a few hundred generated keys go to /usr/bin/memcached and to this server through ms/ma/mg/md (replies byte for byte,
// CAS values included: a store one server accepted and the other refused would move their CAS counters apart).
//
// Page moves under memory pressure: values still arriving (allocated, not linked yet) keep their class's pages busy.
// A class whose every chunk is owned by such a value does not take another class's page (memcached fails that value),
// so stalled large sets neither evict a small class's only page nor make later small stores fail; a class with no
// page at all tries every other class, most pages first, for a page none of whose chunks is owned.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { base64Decode } from '../apps/memcached/base64.js';
import { ALLOC_NO_MEMORY, S, Store, StoreCmd, StoreResult, createStoreShared } from '../apps/memcached/store.js';
import { RawClient, exchange, show } from './memcached-testkit.js';
import { TRANSPORTS, referencePair, startOn, transportLabel, transportSkip } from './memcached-transports.js';
import { SEED, check } from './fixtures/fuzz-common.js';

const FILE = 'dist/test/memcached-audit.test.js';

// ---- meta's b flag: memcached's base64 decoder ----------------------------------------------------------------

/** The value of base64 byte `c` in memcached's decode table; '=' decodes as 0; 0x80: not in the table (skipped). */
function refValue(c: number): number {
  if (c >= 65 && c <= 90) return c - 65; // A-Z
  if (c >= 97 && c <= 122) return c - 97 + 26; // a-z
  if (c >= 48 && c <= 57) return c - 48 + 52; // 0-9
  if (c === 43) return 62; // +
  if (c === 47) return 63; // /
  if (c === 61) return 0; // =
  return 0x80;
}

/**
 * Reference: memcached 1.6.18's base64_decode (base64.c) step by step — count the bytes in the table, fail unless a
 * non-zero multiple of 4, then decode blocks of 4, counting '=' (pad); after the first block with a pad: 1 drops a
 * byte, 2 drop two, more fail; decoding stops there. Returns the decoded bytes, or null where memcached returns 0.
 */
function referenceDecode(src: Uint8Array): Uint8Array | null {
  let count = 0;
  for (const c of src) if (refValue(c) !== 0x80) count++;
  if (count === 0 || count % 4 !== 0) return null;
  const out: number[] = [];
  const block = [0, 0, 0, 0];
  let pad = 0;
  count = 0;
  for (const c of src) {
    const tmp = refValue(c);
    if (tmp === 0x80) continue;
    if (c === 61) pad++;
    block[count++] = tmp;
    if (count === 4) {
      out.push(((block[0] << 2) | (block[1] >> 4)) & 0xff, ((block[1] << 4) | (block[2] >> 2)) & 0xff, ((block[2] << 6) | block[3]) & 0xff);
      count = 0;
      if (pad) {
        if (pad === 1) out.pop();
        else if (pad === 2) out.splice(-2);
        else return null;
        break;
      }
    }
  }
  return out.length === 0 ? null : Uint8Array.from(out);
}

const B64_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
/** Key bytes for the b flag: mostly the alphabet, some '=', some junk (never SP, CR, LF, NUL: they end a key token). */
const junkByte = fc.constantFrom('.', '-', '_', '*', '!', ':', '\x01', '\x7f', '\x80', '\xff', '~');
const keyByte = fc.oneof(
  { weight: 12, arbitrary: fc.constantFrom(...B64_ALPHABET) },
  { weight: 3, arbitrary: fc.constant('=') },
  { weight: 2, arbitrary: junkByte },
);
/** Any mix of those bytes, or blocks of 4 (alphabet or '=') with junk between them: most of these decode. */
const b64KeyArb = fc.oneof(
  fc.array(keyByte, { minLength: 1, maxLength: 24 }).map((a) => a.join('')),
  fc.array(fc.tuple(
    fc.array(fc.oneof({ weight: 10, arbitrary: fc.constantFrom(...B64_ALPHABET) }, { weight: 1, arbitrary: fc.constant('=') }), { minLength: 4, maxLength: 4 }),
    fc.array(junkByte, { maxLength: 1 }),
  ), { minLength: 1, maxLength: 6 }).map((blocks) => blocks.map(([b, j]) => b.join('') + j.join('')).join('')),
);

describe('meta b flag: base64 keys decoded as memcached 1.6.18 decodes them', () => {
  it('the examples: junk skipped, stop at the first padded block, padding anywhere in it', () => {
    const dec = (k: string): string | null => {
      const dst = new Uint8Array(k.length);
      const n = base64Decode(Buffer.from(k, 'latin1'), 0, k.length, dst);
      return n === 0 ? null : Buffer.from(dst.subarray(0, n)).toString('latin1');
    };
    assert.equal(dec('Zm9v'), 'foo');
    assert.equal(dec('Zm.9v'), 'foo', 'a byte outside the alphabet is skipped');
    assert.equal(dec('Zm9\xffv'), 'foo');
    assert.equal(dec('Zg==Zm9v'), 'f', 'decoding stops after the first padded block');
    assert.equal(dec('Z=g='), 'd', "'=' anywhere in a block counts as padding (and as 0)");
    assert.equal(dec('Zg=A'), 'f\0');
    assert.equal(dec('=Zg='), '\x01');
    assert.equal(dec('A==='), null, 'three pads fail');
    assert.equal(dec('===='), null);
    assert.equal(dec('Zm9'), null, 'not a multiple of 4');
    assert.equal(dec('...'), null, 'nothing in the alphabet');
  });

  it('property: base64Decode equals the reference decoder for any byte string (junk, =, any length)', () => {
    const anyBytes = fc.uint8Array({ maxLength: 40 });
    const b64ish = fc.array(fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...B64_ALPHABET.split('').map((c) => c.charCodeAt(0))) }, { weight: 2, arbitrary: fc.constant(61) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 255 }) }), { maxLength: 40 }).map((a) => Uint8Array.from(a));
    check(FILE, 'base64 decode = reference', fc.property(fc.oneof(anyBytes, b64ish), fc.nat(8), (src, off) => {
      // the input inside a larger buffer at an offset, as keys are (a token of a command line)
      const buf = new Uint8Array(off + src.length + 3).fill(65);
      buf.set(src, off);
      const dst = new Uint8Array(src.length + 4);
      const n = base64Decode(buf, off, off + src.length, dst);
      const want = referenceDecode(src);
      if (want === null) assert.equal(n, 0, `decoded ${show(Buffer.from(src))} although memcached fails`);
      else assert.deepEqual(Buffer.from(dst.subarray(0, n)), Buffer.from(want), `decoding ${show(Buffer.from(src))}`);
    }), { runs: 5000 });
  });
});

/** Commands per generated key: a store, an arithmetic on it, a read with CAS, a quiet delete, a read that misses. */
function keyScript(k: string): string {
  return `ms ${k} 2 b k c\r\n10\r\nma ${k} b v\r\nmg ${k} b k v c f\r\nmd ${k} b q\r\nmg ${k} b k\r\n`;
}

for (const transport of TRANSPORTS) describe(`meta b flag, Debian memcached vs ours (${transportLabel(transport)})`, { skip: transportSkip(transport) }, () => {
  const pair = referencePair(transport, ['-m', '64'], { port: 0, memoryMb: 64, threads: 1 });

  const END = 'EN O__end__\r\n';
  const until = (b: Buffer) => b.length >= END.length && b.subarray(b.length - END.length).toString('latin1') === END;
  async function compare(script: string): Promise<void> {
    const chunks = [script + 'mg __sentinel__ O__end__\r\n'];
    const [a, b] = await Promise.all([exchange(pair.ref!.port, chunks, { until, idleMs: 5000 }), exchange(pair.ours.port, chunks, { until, idleMs: 5000 })]);
    // (me's slab class and size depend on each server's slab sizes, its last access on the clock)
    const norm = (x: Buffer) => x.toString('latin1').replace(/ cls=\d+ size=\d+/g, ' cls=? size=?').replace(/ la=\d+/g, ' la=?');
    const ra = norm(a.out), rb = norm(b.out);
    if (ra !== rb) {
      let i = 0;
      while (i < ra.length && ra[i] === rb[i]) i++;
      const from = Math.max(0, ra.lastIndexOf('\n', i - 200));
      assert.fail(`reply differs at byte ${i}\n memcached: …${show(ra.slice(from, i + 200))}\n      ours: …${show(rb.slice(from, i + 200))}`);
    }
    assert.ok(until(b.out), `no sentinel reply: ${show(rb)}`);
  }

  it('the audit\'s keys: junk skipped, the first padded block ends the key, misplaced =', async (t) => {
    if (!pair.ref) { t.skip('no /usr/bin/memcached'); return; }
    await compare(['Zm.9v', 'Zg==Zm9v', 'Z=g=', 'Zg=A', '=Zg=', 'A===', '====', 'Zm9vY', '*Zm9v*', 'Zm9vYg=\xff='].map(keyScript).join('') +
      'ms Zm.9v 1 b k\r\nx\r\nmg Zm.9v b k v\r\nme Zm.9v b\r\nme Zm.9 b\r\nmg foo v\r\n');
  });

  it('300 generated keys (base64 bytes, = and junk): the same replies, CAS counters in step', async (t) => {
    if (!pair.ref) { t.skip('no /usr/bin/memcached'); return; }
    const keys = fc.sample(b64KeyArb, { seed: SEED, numRuns: 300 });
    for (let i = 0; i < keys.length; i += 60) await compare(keys.slice(i, i + 60).map(keyScript).join(''));
  });
});

// ---- page moves: values still arriving keep their pages --------------------------------------------------------

const MB = 1024 * 1024;

/** Chunks owned by connections (allocated, not linked, not free) over every class. */
function ownedChunks(st: Store): number {
  let n = 0;
  for (let id = 1; id <= st.nclasses; id++) {
    const ci = st.classInfo(id);
    n += ci.pages * ci.perPage - ci.free - ci.items;
  }
  return n;
}

/** An item of `len` value bytes for `key`, allocated and filled, not stored yet (a value still arriving). */
function allocFilled(st: Store, key: string, len: number): number {
  const k = Buffer.from(key, 'latin1');
  const ref = st.alloc(k, 0, k.length, 0, 0, len + 2);
  if (ref >= 0) { const v = Buffer.alloc(len + 2, 0x76); v[len] = 13; v[len + 1] = 10; st.writeData(ref, 0, v, 0, v.length); }
  return ref;
}

describe('memcached store: page moves', () => {
  it('a class with no page tries every other class when the one with most pages has only busy pages', () => {
    const st = new Store(createStoreShared({ maxBytes: 4 * MB }));
    assert.equal(st.shared.totalPages, 4);
    for (const [key, len] of [['small', 5], ['medium', 5000]] as const) {
      assert.equal(st.storeItem(allocFilled(st, key, len), StoreCmd.SET, false), StoreResult.STORED);
    }
    // two large values arriving: the two remaining pages, both busy
    const big = [allocFilled(st, 'big1', 900_000), allocFilled(st, 'big2', 900_000)];
    assert.ok(big.every((r) => r >= 0), `large allocations: ${big}`);
    // a class with no page: the large values' class has the most pages but none can move; another class gives one
    const ref = allocFilled(st, 'mid', 50_000);
    assert.ok(ref >= 0, `allocation with no page left: ${ref}`);
    assert.equal(st.statTotal(S.slabs_moved), 1);
    assert.equal(st.storeItem(ref, StoreCmd.SET, false), StoreResult.STORED);
    for (const r of big) st.free(r);
    assert.deepEqual(st.check(), []);
  });

  it('a class whose chunks are all owned by arriving values fails the next one instead of taking a page', () => {
    const st = new Store(createStoreShared({ maxBytes: 4 * MB }));
    assert.equal(st.storeItem(allocFilled(st, 'small', 5), StoreCmd.SET, false), StoreResult.STORED);
    const big = [1, 2, 3].map((i) => allocFilled(st, `big${i}`, 900_000));
    assert.ok(big.every((r) => r >= 0), `large allocations: ${big}`);
    assert.equal(allocFilled(st, 'big4', 900_000), ALLOC_NO_MEMORY, 'the fourth large value has no memory');
    assert.equal(st.statTotal(S.slabs_moved), 0, 'no page moved');
    assert.equal(st.statTotal(S.evictions), 0, 'nothing evicted');
    const x = allocFilled(st, 'x', 1);
    assert.ok(x >= 0);
    assert.equal(st.storeItem(x, StoreCmd.SET, false), StoreResult.STORED);
    for (const r of big) st.free(r);
    assert.deepEqual(st.check(), []);
  });
});

for (const transport of TRANSPORTS) describe(`memcached -m 8: stalled large sets (${transportLabel(transport)})`, { skip: transportSkip(transport) }, () => {
  it('8 connections stalled inside 900 KB values: a later small set is stored, an existing small item is kept', async () => {
    const srv = await startOn(transport, { port: 0, memoryMb: 8, threads: 1 });
    const stalled: RawClient[] = [];
    try {
      const st = new Store(srv.store, 62);
      const c = await RawClient.connect(srv.port);
      assert.equal(await c.call('set small 0 0 5\r\nhello\r\n'), 'STORED\r\n');
      const K = 8;
      for (let i = 0; i < K; i++) {
        const s = await RawClient.connect(srv.port);
        s.send(`set big${i} 0 0 900000\r\nabc`);
        stalled.push(s);
      }
      // wait (bounded) until the server has taken every one: each either owns a chunk or was refused memory
      for (let i = 0; ownedChunks(st) + st.statTotal(S.store_no_memory) < K; i++) {
        assert.ok(i < 500, `stalled sets not all seen: ${ownedChunks(st)} owned, ${st.statTotal(S.store_no_memory)} refused`);
        await new Promise((r) => setTimeout(r, 10));
      }
      assert.equal(await c.call('set x 0 0 1\r\n1\r\n'), 'STORED\r\n');
      assert.equal(await c.call('get small\r\n', 'END\r\n'), 'VALUE small 0 5\r\nhello\r\nEND\r\n');
      assert.equal(await c.call('get x\r\n', 'END\r\n'), 'VALUE x 0 1\r\n1\r\nEND\r\n');
      // seven own a page each; the eighth found no memory (its value is swallowed), nothing was moved or evicted
      assert.equal(ownedChunks(st), K - 1);
      assert.equal(st.statTotal(S.store_no_memory), 1);
      assert.equal(st.statTotal(S.slabs_moved), 0);
      assert.equal(st.statTotal(S.evictions), 0);
      for (const s of stalled) s.close();
      for (let i = 0; ownedChunks(st) > 0; i++) {
        assert.ok(i < 500, `chunks still owned after the connections closed: ${ownedChunks(st)}`);
        await new Promise((r) => setTimeout(r, 10));
      }
      assert.deepEqual(st.check(), []);
      c.close();
    } finally {
      for (const s of stalled) s.close();
      await srv.close();
    }
  });
});
