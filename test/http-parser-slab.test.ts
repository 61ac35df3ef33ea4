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

/** The property's seed: fixed (MEGAPIPE_FUZZ_SEED overrides it; fast-check prints it with any failure), and its run
 *  count (MEGAPIPE_FUZZ_RUNS: the long-run mode, RELIABILITY.md). */
const SEED = Number(process.env.MEGAPIPE_FUZZ_SEED ?? 0x51ab);
const RUNS = Number(process.env.MEGAPIPE_FUZZ_RUNS ?? 200);

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

test('heads for several parsers, interleaved, split anywhere, failures and re-entrant parses between: every kept head reads what was received (property)', () => {
  // Each parser gets its own heads (random field counts and sizes around the 2 KiB own-buffer line), fed in random
  // pieces in a random global order; the input buffers are overwritten after each call; between pieces, fresh parsers
  // take heads that fail after their fields were parsed; and onHead sometimes feeds another parser's next piece before
  // returning (a handler parsing synchronously). Every head is kept and checked at the end.
  const failing = [
    'POST /f HTTP/1.1\r\nHost: a\r\nX-A: 1\r\nX-B: 2\r\nContent-Length: 99999999999\r\n\r\n',   // 413 after all fields
    'GET /f HTTP/1.1\r\nX-A: 1\r\nX-B: 2\r\n\r\n',                                               // no Host
    'GET /f HTTP/1.1\r\nHost: a\r\nX-A: 1\r\nBad Name: x\r\n\r\n',                               // fails within the fields
  ].map((t) => Buffer.from(t));
  const spec = fc.record({
    parsers: fc.array(fc.array(fc.record({ n: fc.integer({ min: 1, max: 40 }), pad: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 2500 })) }), { minLength: 1, maxLength: 8 }), { minLength: 1, maxLength: 4 }),
    cuts: fc.array(fc.nat(), { maxLength: 40 }),
    order: fc.array(fc.nat(), { maxLength: 200 }),
    reenter: fc.array(fc.boolean(), { maxLength: 40 }),
    fail: fc.array(fc.option(fc.nat({ max: failing.length - 1 }), { nil: null }), { maxLength: 60 }),
  });
  fc.assert(fc.property(spec, (sc) => {
    const errors: string[] = [];
    const states = sc.parsers.map((msgs, pi) => {
      const sent = msgs.map((m, k) => head(pi * 1000 + k, m.n, m.pad));
      const wire = Buffer.concat(sent.map((x) => x.wire));
      const cuts = [...new Set(sc.cuts.map((c) => c % (wire.length + 1)))].sort((a, b) => a - b);
      const pieces: Buffer[] = [];
      let prev = 0;
      for (const c of [...cuts, wire.length]) { if (c > prev) pieces.push(wire.subarray(prev, c)); prev = c; }
      return { sent, pieces, next: 0, busy: false, heads: [] as RequestHead[], p: null as RequestParser | null };
    });
    let reentries = 0;
    /** Feeds parser `pi` its next piece from a scratch copy that is overwritten afterwards (as a receive buffer). */
    const feed = (pi: number): void => {
      const st = states[pi]!;
      const piece = st.pieces[st.next++]!;
      const scratch = Buffer.from(piece);
      st.busy = true;
      st.p!.execute(scratch, 0, scratch.length);
      st.busy = false;
      scratch.fill(0x23);
    };
    states.forEach((st, pi) => {
      st.p = new RequestParser(DEFAULT_LIMITS, {
        onHead(h) {
          st.heads.push(h);
          // re-entrancy: parse another parser's next piece before returning (one not parsing already: a parser is
          // never fed from inside its own execute)
          if (sc.reenter[reentries++ % Math.max(1, sc.reenter.length)] === true) {
            const other = states.findIndex((o, j) => j !== pi && !o.busy && o.next < o.pieces.length);
            if (other >= 0) feed(other);
          }
        },
        onBody() {}, onComplete() {},
        onError(status, reason) { errors.push(`parser ${pi}: ${status} ${reason}`); },
      });
    });
    let step = 0;
    for (;;) {
      const live = states.map((st, i) => (st.next < st.pieces.length ? i : -1)).filter((i) => i >= 0);
      if (live.length === 0) break;
      feed(live[(sc.order[step] ?? step) % live.length]!);
      const f = sc.fail[step % Math.max(1, sc.fail.length)];
      if (f !== null && f !== undefined) parserOf([], []).execute(failing[f]!, 0, failing[f]!.length);
      step++;
    }
    assert.deepEqual(errors, []);
    for (const st of states) {
      assert.equal(st.heads.length, st.sent.length);
      st.heads.forEach((h, k) => {
        assert.equal(h.target, st.sent[k]!.target);
        assert.deepEqual(fieldsOf(h), st.sent[k]!.fields);
      });
    }
  }), { numRuns: RUNS, seed: SEED });
});

test('heads with more fields than a quarter of a slab holds (maxHeaders raised): their offsets get a table of their own', () => {
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
