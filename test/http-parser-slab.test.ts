// The parser keeps request heads and their field offsets in slabs shared by every parser of the thread (parser.ts):
// appended to, never rewritten. A request whose headers are still referenced after thousands of later heads — other
// connections', large ones, ones that fail — must read exactly what it received, and every head size and field count
// takes a path that keeps it so (slab, a fresh slab, a buffer of its own, a scratch table copied).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import fc from 'fast-check';
import { DEFAULT_LIMITS, RequestParser, type RequestHead } from '../apps/http/parser.js';

function parserOf(heads: RequestHead[], errors: string[], limits = DEFAULT_LIMITS): RequestParser {
  return new RequestParser(limits, {
    onHead(h) { heads.push(h); }, onBody() {}, onComplete() {},
    onError(status, reason) { errors.push(`${status} ${reason}`); },
  });
}

/** A request head with `n` fields whose names and values are derived from `seed` (so each head differs). */
function head(seed: number, n: number, pad = 0): { wire: Buffer; target: string; fields: [string, string][] } {
  const target = `/r/${seed}?p=${'x'.repeat(pad)}`;
  const fields: [string, string][] = [['host', `h${seed}.example`]];
  for (let i = 1; i < n; i++) fields.push([`x-f${i}-${seed % 97}`, `v${seed}-${i}`]);
  const wire = Buffer.from(`GET ${target} HTTP/1.1\r\n${fields.map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`, 'latin1');
  return { wire, target, fields };
}

const fieldsOf = (h: RequestHead) => [...h.fields];

test('heads kept across many later heads (slab rollovers, large heads, failed heads, other parsers) read what was received', () => {
  const keptHeads: RequestHead[] = [], keptErr: string[] = [];
  const kept = parserOf(keptHeads, keptErr);
  const expected: ReturnType<typeof head>[] = [];
  for (let i = 0; i < 40; i++) {
    const h = head(i, 1 + (i % 9), i % 5 === 0 ? 3000 : 0);   // every fifth one above the slab's own-buffer size
    expected.push(h);
    kept.execute(h.wire, 0, h.wire.length);
    // between two kept heads: 300 heads on other parsers (>= 8 KiB of bytes, > 2048 offsets: several rollovers),
    // some that fail after their fields were parsed (413: their bytes and offsets were written, then given up)
    for (let j = 0; j < 300; j++) {
      const other: RequestHead[] = [], err: string[] = [];
      const p = parserOf(other, err);
      const o = j % 50 === 0
        ? Buffer.from(`POST /x HTTP/1.1\r\nHost: a\r\nX-Junk-${j}: ${'j'.repeat(j % 40)}\r\nContent-Length: 99999999999\r\n\r\n`)
        : head(100_000 + i * 1000 + j, 1 + (j % 13)).wire;
      p.execute(o, 0, o.length);
    }
  }
  assert.deepEqual(keptErr, []);
  assert.equal(keptHeads.length, expected.length);
  keptHeads.forEach((h, k) => {
    assert.equal(h.target, expected[k]!.target, `head ${k}: target`);
    assert.deepEqual(fieldsOf(h), expected[k]!.fields, `head ${k}: fields`);
    assert.equal(h.fields.get('HOST'), `h${k}.example`);
  });
});

test('any mix of head sizes, field counts and splits: every kept head reads what was received (property)', () => {
  fc.assert(fc.property(
    fc.array(fc.record({ n: fc.integer({ min: 1, max: 40 }), pad: fc.integer({ min: 0, max: 2500 }), split: fc.nat() }), { minLength: 1, maxLength: 60 }),
    (specs) => {
      const heads: RequestHead[] = [], errors: string[] = [];
      const p = parserOf(heads, errors);
      const sent = specs.map((s, k) => head(k, s.n, s.pad));
      specs.forEach((s, k) => {
        const w = sent[k]!.wire;
        const cut = s.split % (w.length + 1);   // 0 or the length: whole; else split in two
        if (cut === 0 || cut === w.length) p.execute(w, 0, w.length);
        else { p.execute(w, 0, cut); p.execute(w, cut, w.length - cut); }
      });
      assert.deepEqual(errors, []);
      assert.equal(heads.length, sent.length);
      heads.forEach((h, k) => {
        assert.equal(h.target, sent[k]!.target);
        assert.deepEqual(fieldsOf(h), sent[k]!.fields);
      });
    },
  ), { numRuns: 150 });
});

test('maxHeaders above what the offset slab holds: offsets go to the scratch table and are copied', () => {
  const limits = { ...DEFAULT_LIMITS, maxHeaders: 1000 };
  const heads: RequestHead[] = [], errors: string[] = [];
  const p = parserOf(heads, errors, limits);
  const a = head(1, 600), b = head(2, 700);
  p.execute(a.wire, 0, a.wire.length);
  p.execute(b.wire, 0, b.wire.length);
  assert.deepEqual(errors, []);
  assert.deepEqual(fieldsOf(heads[0]!), a.fields);
  assert.deepEqual(fieldsOf(heads[1]!), b.fields);
});

test('memory a long-lived request keeps alive: one slab (8 KiB), as with the Buffer pool before; any maxHeaders', () => {
  // One head kept in every 121, the others dropped, 2,000 kept: after a full GC the ArrayBuffers still alive are the
  // slabs the kept heads point into. (With the offsets in a slab of their own a kept head held 14–15 KiB; with room for
  // maxHeaders reserved per head, maxHeaders 512 took a fresh table for every head.)
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  for (const maxHeaders of [100, 512]) {
    const limits = { ...DEFAULT_LIMITS, maxHeaders };
    const kept: RequestHead[] = [];
    const wire = (i: number) => Buffer.from(`GET /r/${i} HTTP/1.1\r\nHost: a\r\nUser-Agent: x\r\nAccept: */*\r\n\r\n`);
    gc(); gc();
    const before = process.memoryUsage().arrayBuffers;
    const K = 2000;
    for (let k = 0; k < K; k++) {
      const w = wire(k);
      parserOf(kept, [], limits).execute(w, 0, w.length);
      for (let j = 0; j < 120; j++) { const o = wire(j); parserOf([], [], limits).execute(o, 0, o.length); }
    }
    gc(); gc();
    const perHead = (process.memoryUsage().arrayBuffers - before) / K;
    assert.equal(kept.length, K);
    assert.ok(perHead <= 9 * 1024, `maxHeaders ${maxHeaders}: ${(perHead / 1024).toFixed(1)} KiB kept alive per long-lived head`);
    assert.equal(kept[K - 1]!.target, `/r/${K - 1}`);
  }
});
