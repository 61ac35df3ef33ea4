// The byte-copy helpers under every write and every stashed receive (src/uring/copy.ts): a loop below a size, a native
// copy above it. Both paths and the boundary between them must copy exactly src[off, off + len) to dst[at, at + len) and
// nothing else, from a Buffer or a plain Uint8Array, at any offsets (generated cases).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { copyInto, copyOf } from '../src/uring/copy.js';

const bytes = (n: number, seed: number): Uint8Array => { const u = new Uint8Array(n); for (let i = 0; i < n; i++) u[i] = (i * 131 + seed * 7 + 1) & 0xff; return u; };

describe('copy helpers', () => {
  it('copyInto copies exactly the run, from a Buffer or a Uint8Array, at every length around the loop/native boundary', () => {
    fc.assert(fc.property(
      fc.integer({ min: 0, max: 600 }), fc.integer({ min: 0, max: 64 }), fc.integer({ min: 0, max: 64 }), fc.boolean(), fc.integer({ min: 0, max: 255 }),
      (len, off, at, asBuffer, seed) => {
        const raw = bytes(off + len + 3, seed);
        const src = asBuffer ? Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength) : raw;
        const dst = Buffer.alloc(at + len + 5, 0xee);
        copyInto(dst, at, src, off, len);
        assert.deepEqual([...dst.subarray(at, at + len)], [...raw.subarray(off, off + len)]);
        assert.ok(dst.subarray(0, at).every((b) => b === 0xee), 'bytes before the run untouched');
        assert.ok(dst.subarray(at + len).every((b) => b === 0xee), 'bytes after the run untouched');
      }), { numRuns: 2000 });
  });

  it('copyOf returns a private copy of the run', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 600 }), fc.integer({ min: 0, max: 64 }), fc.boolean(), (len, off, asBuffer) => {
      const raw = bytes(off + len, len);
      const src = asBuffer ? Buffer.from(raw) : raw;
      const want = [...raw.subarray(off, off + len)];
      const c = copyOf(src, off, len);
      assert.deepEqual([...c], want);
      src.fill(0);   // the source reused: the copy keeps its bytes
      assert.deepEqual([...c], want);
    }), { numRuns: 1000 });
  });
});
