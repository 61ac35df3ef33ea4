// Property-based differential test of the request parser: the fast path (a whole head in one input) and the
// byte-by-byte state machine (the same bytes split anywhere) must give every input the same verdict — the same
// status, and the same parsed fields and bodies when accepted — and nothing accepted may carry a CR, LF or NUL.
//
// Inputs: valid requests (methods, targets, versions, fields, Content-Length and chunked bodies with extensions and
// trailers, pipelined), and the same with mutations inserted at random bytes or line starts (CR, LF, NUL, space, tab,
// obs-fold, a second Content-Length, Content-Length with Transfer-Encoding, chunk-extension fragments, ...).
//
// The seed is fixed (MEGAPIPE_FUZZ_SEED overrides it) and printed with any failure; MEGAPIPE_FUZZ_RUNS raises the run
// count for long runs (default 3000, a few seconds).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { ParserLimits } from '../apps/http/parser.js';
import { feedAll, summary, type Summary } from './http-parser-harness.js';

const SEED = Number(process.env.MEGAPIPE_FUZZ_SEED ?? 0x13_2026);
const RUNS = Number(process.env.MEGAPIPE_FUZZ_RUNS ?? 3000);

const CRLF = '\r\n';
const KNOWN_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH'];

// ---- valid requests, with what the parser must report for them ----

interface Message {
  wire: string;
  /** what the parser reports for this message when the whole input is valid */
  head: Summary['heads'][number];
  body: string;
  trailers: [string, string][] | null;
}

const token = fc.stringMatching(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,10}$/);
/** field names that are not framing or connection fields (those are generated on purpose below) */
const plainName = token.filter((n) => !['host', 'content-length', 'transfer-encoding', 'connection', 'expect', 'te', 'trailer'].includes(n.toLowerCase()));
/** a field value: visible ASCII and obs-text, inner spaces and tabs; no leading or trailing whitespace */
const fieldValue = fc.oneof(
  fc.constant(''),
  fc.stringMatching(/^[\x21-\x7e\x80-\xff]([\x20-\x7e\t\x80-\xff]{0,16}[\x21-\x7e\x80-\xff])?$/),
);
const ows = fc.constantFrom('', ' ', '\t', '  ', ' \t');
const field = fc.tuple(plainName, ows, fieldValue, ows);
const hostValue = fc.stringMatching(/^[a-z0-9.-]{1,12}(:[0-9]{1,5})?$/);
const target = fc.oneof(
  fc.stringMatching(/^\/[A-Za-z0-9._~!$&'()*+,;=:@%\/-]{0,20}(\?[A-Za-z0-9=&%+-]{0,12})?$/),
  fc.stringMatching(/^https?:\/\/[a-z0-9.-]{1,10}(\/[a-z0-9]{0,6})?$/),
);
const chunkExt = fc.constantFrom('', ';a', ';a=b', ' ;a', '\t; a = b', ';a="x y"', ';a="q\\"z";b', ';n=v;m');
const bodyText = fc.stringMatching(/^[\x00-\xff]{0,40}$/);

const message: fc.Arbitrary<Message> = fc
  .record({
    method: fc.constantFrom(...KNOWN_METHODS),
    target,
    minor: fc.constantFrom(0, 1),
    host: hostValue,
    fields: fc.array(field, { maxLength: 5 }),
    hostAt: fc.nat(5),
    framing: fc.constantFrom('none', 'length', 'chunked'),
    body: bodyText,
    pieces: fc.array(fc.tuple(fc.integer({ min: 1, max: 12 }), fc.nat(3), chunkExt), { minLength: 1, maxLength: 4 }),
    lastExt: chunkExt,
    trailers: fc.array(field, { maxLength: 2 }),
    conn: fc.constantFrom('', 'close', 'keep-alive'),
  })
  .map((m) => {
    const target = m.method === 'OPTIONS' && m.target === '/' ? '*' : m.target;
    const framing = m.minor === 0 && m.framing === 'chunked' ? 'length' : m.framing;
    const fieldLines = m.fields.map(([n, a, v, b]) => `${n}:${a}${v}${b}`);
    const fieldEntries: [string, string][] = m.fields.map(([n, , v]) => [n.toLowerCase(), v]);
    const hostAt = Math.min(m.hostAt, fieldLines.length);
    fieldLines.splice(hostAt, 0, `Host: ${m.host}`);
    fieldEntries.splice(hostAt, 0, ['host', m.host]);
    if (m.conn !== '') {
      fieldLines.push(`Connection: ${m.conn}`);
      fieldEntries.push(['connection', m.conn]);
    }
    let body = '';
    let bodyWire = '';
    let trailers: [string, string][] | null = null;
    let cl = -1;
    if (framing === 'length') {
      body = m.body;
      cl = body.length;
      bodyWire = body;
      fieldLines.push(`Content-Length: ${cl}`);
      fieldEntries.push(['content-length', String(cl)]);
    } else if (framing === 'chunked') {
      fieldLines.push('Transfer-Encoding: chunked');
      fieldEntries.push(['transfer-encoding', 'chunked']);
      let at = 0;
      for (const [n, form, ext] of m.pieces) {
        const data = m.body.slice(at, at + n);
        at += n;
        if (data.length === 0) break;
        // (1*HEXDIG: leading zeros too, past the 13 digits the largest chunk size has)
        const size = [data.length.toString(16), data.length.toString(16).toUpperCase(), '0' + data.length.toString(16), '0'.repeat(16) + data.length.toString(16)][form];
        bodyWire += `${size}${ext}${CRLF}${data}${CRLF}`;
        body += data;
      }
      bodyWire += `0${m.lastExt}${CRLF}`;
      for (const [n, a, v, b] of m.trailers) bodyWire += `${n}:${a}${v}${b}${CRLF}`;
      bodyWire += CRLF;
      trailers = m.trailers.length > 0 ? m.trailers.map(([n, , v]) => [n.toLowerCase(), v]) : null;
    }
    const wire = `${m.method} ${target} HTTP/1.${m.minor}${CRLF}${fieldLines.map((l) => l + CRLF).join('')}${CRLF}${bodyWire}`;
    const keepAlive = m.minor === 1 ? m.conn !== 'close' : m.conn === 'keep-alive';
    return {
      wire,
      head: { method: m.method, target, minor: m.minor, cl, chunked: framing === 'chunked', keepAlive, expect: false, fields: fieldEntries },
      body,
      trailers,
    };
  });

/** Valid messages pipelined (the parser reports each; which the server serves is not its concern). */
const pipeline = fc.array(message, { minLength: 1, maxLength: 3 });

function expected(ms: Message[]): Summary {
  return {
    heads: ms.map((m) => m.head),
    bodies: ms.map((m) => m.body),
    trailers: ms.map((m) => m.trailers),
    completes: ms.length,
    error: null,
  };
}

// ---- mutations ----

const INSERTS = [
  '\r', '\n', '\0', ' ', '\t', '\r\n', '\r\n\r', '\n\r', '\r\r\n',
  '\r\n ', '\r\n\t', ' folded\r\n', '\tfolded\r\n', // obs-fold
  'Content-Length: 3\r\n', 'Content-Length: 0\r\n', 'content-length: 3\r\n', 'Content-Length: 3, 3\r\n',
  'Transfer-Encoding: chunked\r\n', 'Transfer-Encoding: gzip, chunked\r\n', 'Host: y\r\n', '\rContent-Length: 3\r\n',
  '\rTransfer-Encoding: chunked\r\n', 'X: a\rb\r\n', 'X : y\r\n', ': y\r\n', 'Expect: 100-continue\r\n',
  ';', ';a', '=', '"', ' junk', ';a=', '; ', '\\', '\x7f', '\xff', '\x01', 'z', '0', 'abc',
  'Expect: nope\r\n', // 417
];
/** faults with a status of their own (501, 505), to meet the byte-level faults above in one input */
const METHOD_SWAPS = ['FOO', 'get', 'CONNECT', 'G@T'];
const VERSION_SWAPS = ['HTTP/2.0', 'HTTP/0.9', 'HTTP/1.9', 'HTTP/1.1 '];
interface Mutation {
  /** insert at a random byte, or at the start of a line (after the n-th CRLF) */
  where: 'byte' | 'line';
  n: number;
  /** method/version: swap the n-th request's method or HTTP version for an unimplemented one */
  op: 'insert' | 'delete' | 'replace' | 'method' | 'version';
  text: string;
}
const mutation: fc.Arbitrary<Mutation> = fc.record({
  where: fc.constantFrom('byte', 'line'),
  n: fc.nat(400),
  op: fc.constantFrom('insert', 'insert', 'insert', 'insert', 'delete', 'replace', 'method', 'version'),
  text: fc.constantFrom(...INSERTS),
});

function mutate(wire: string, muts: Mutation[]): string {
  let s = wire;
  for (const m of muts) {
    if (m.op === 'method' || m.op === 'version') {
      const re = m.op === 'method' ? /(^|\r\n\r\n)([A-Z]+) /g : /HTTP\/1\.[01]\r\n/g;
      const hits = [...s.matchAll(re)];
      if (hits.length === 0) continue;
      const h = hits[m.n % hits.length];
      const swaps = m.op === 'method' ? METHOD_SWAPS : VERSION_SWAPS;
      const text = m.op === 'method' ? `${h[1]}${swaps[m.n % swaps.length]} ` : `${swaps[m.n % swaps.length]}\r\n`;
      s = s.slice(0, h.index) + text + s.slice(h.index! + h[0].length);
      continue;
    }
    let at: number;
    if (m.where === 'line') {
      const starts = [0];
      for (let i = s.indexOf(CRLF); i >= 0; i = s.indexOf(CRLF, i + 2)) starts.push(i + 2);
      at = starts[m.n % starts.length];
    } else {
      at = m.n % (s.length + 1);
    }
    if (m.op === 'insert') s = s.slice(0, at) + m.text + s.slice(at);
    else if (m.op === 'delete') s = s.slice(0, at) + s.slice(at + 1);
    else s = s.slice(0, at) + m.text + s.slice(at + m.text.length);
  }
  return s;
}

const splitPoints = (len: number) =>
  fc.uniqueArray(fc.integer({ min: 1, max: Math.max(1, len - 1) }), { maxLength: 6 }).map((a) => a.filter((x) => x < len).sort((x, y) => x - y));

// ---- properties ----

const BAD_CHAR = /[\r\n\0]/;

/** Every accepted head is clean and framed unambiguously. */
function checkAccepted(s: Summary): void {
  for (const h of s.heads) {
    assert.ok(!BAD_CHAR.test(h.method) && !BAD_CHAR.test(h.target), `CR/LF/NUL in the request line ${JSON.stringify(h.target)}`);
    for (const [n, v] of h.fields) assert.ok(!BAD_CHAR.test(n) && !BAD_CHAR.test(v), `CR/LF/NUL in field ${JSON.stringify([n, v])}`);
    const names = h.fields.map(([n]) => n);
    const count = (x: string) => names.filter((n) => n === x).length;
    assert.ok(count('content-length') <= 1, 'several Content-Length fields accepted');
    assert.ok(count('content-length') === 0 || count('transfer-encoding') === 0, 'Content-Length with Transfer-Encoding accepted');
    if (h.minor === 1) assert.equal(count('host'), 1, 'an HTTP/1.1 request without exactly one Host accepted');
  }
  for (const t of s.trailers) for (const [n, v] of t ?? []) assert.ok(!BAD_CHAR.test(n) && !BAD_CHAR.test(v), 'CR/LF/NUL in a trailer');
}

/**
 * The offset of the first stray CR or LF (a CR not followed by LF, an LF not after a CR) inside the first head of
 * `b`, or -1 (none there, or the head is not complete). Leading empty lines are skipped as the parser does.
 */
function strayInFirstHead(b: Buffer): number {
  let i = 0;
  while (b[i] === 13 && b[i + 1] === 10) i += 2;
  let lineStart = i;
  for (; i < b.length; i++) {
    if (b[i] === 10) return i;
    if (b[i] === 13) {
      if (i + 1 >= b.length) return -1;
      if (b[i + 1] !== 10) return i;
      if (i === lineStart) return -1; // the empty line ending the head
      lineStart = i + 2;
      i++;
    }
  }
  return -1;
}

/**
 * The verdict on `b` whole, at `splits`, and byte by byte: all equal, and consistent with the rules above. With
 * `limits` (small ones), a limit may be met before a stray CR/LF: that rule is not checked then.
 */
function differential(b: Buffer, splits: number[], limits?: Partial<ParserLimits>): Summary {
  const whole = summary(feedAll(b, [], limits));
  const label = (how: string) => `${how} differs from whole for ${JSON.stringify(b.toString('latin1'))} ${JSON.stringify(limits ?? {})}`;
  assert.deepEqual(summary(feedAll(b, splits, limits)), whole, label(`split at ${splits}`));
  assert.deepEqual(summary(feedAll(b, Array.from({ length: b.length - 1 }, (_, i) => i + 1), limits)), whole, label('byte by byte'));
  // the first byte alone: the first head through the state machine, the rest of the input whole
  if (b.length > 1) assert.deepEqual(summary(feedAll(b, [1], limits)), whole, label('split at 1'));
  checkAccepted(whole);
  const stray = limits === undefined ? strayInFirstHead(b) : -1;
  if (stray >= 0) {
    assert.equal(whole.error, 400, `stray CR/LF at ${stray} of ${JSON.stringify(b.toString('latin1'))}: 400`);
    assert.equal(whole.heads.length, 0, 'no head accepted before it');
  }
  return whole;
}

function run<T>(name: string, prop: fc.IProperty<T>, runs = RUNS): void {
  try {
    fc.assert(prop, { seed: SEED, numRuns: runs });
  } catch (e) {
    // fast-check's report carries the seed and the shrunk counterexample; say how to replay it
    process.stderr.write(`${name}: failed with MEGAPIPE_FUZZ_SEED=${SEED} (MEGAPIPE_FUZZ_RUNS=${runs})\n`);
    throw e;
  }
}

test('differential: valid pipelines are accepted as generated, the same whatever the split', () => {
  run('valid pipelines', fc.property(
    pipeline.chain((ms) => {
      const wire = ms.map((m) => m.wire).join('');
      return fc.tuple(fc.constant(ms), splitPoints(wire.length));
    }),
    ([ms, splits]) => {
      const b = Buffer.from(ms.map((m) => m.wire).join(''), 'latin1');
      assert.deepEqual(differential(b, splits), expected(ms));
    },
  ));
});

test('differential: mutated requests get one verdict from the fast path and the state machine, whatever the split', () => {
  let accepted = 0;
  let rejected = 0;
  run('mutated requests', fc.property(
    fc.tuple(pipeline, fc.array(mutation, { minLength: 1, maxLength: 3 })).chain(([ms, muts]) => {
      const wire = mutate(ms.map((m) => m.wire).join(''), muts);
      return fc.tuple(fc.constant(wire), splitPoints(wire.length));
    }),
    ([wire, splits]) => {
      const s = differential(Buffer.from(wire, 'latin1'), splits);
      if (s.error === null) accepted++;
      else rejected++;
    },
  ));
  // not hollow: the mutations produce both verdicts in bulk
  assert.ok(accepted > RUNS / 20 && rejected > RUNS / 4, `accepted ${accepted}, rejected ${rejected}`);
});

test('differential: a bare CR or LF inserted anywhere in a head is a 400, whatever the split', () => {
  run('stray CR/LF', fc.property(
    message.chain((m) => {
      const headLen = m.wire.indexOf('\r\n\r\n') + 2;
      return fc.tuple(fc.constant(m), fc.integer({ min: 1, max: headLen }), fc.constantFrom('\r', '\n', '\r\r', '\n\n'));
    }).chain(([m, at, text]) => {
      const wire = m.wire.slice(0, at) + text + m.wire.slice(at);
      return fc.tuple(fc.constant(wire), splitPoints(wire.length));
    }),
    ([wire, splits]) => {
      const b = Buffer.from(wire, 'latin1');
      const s = differential(b, splits);
      assert.equal(s.error, 400, JSON.stringify(wire));
      assert.equal(s.heads.length, 0);
    },
  ), Math.max(500, RUNS / 4));
});

test('differential: near small limits (413, 414, 431) the fast path and the state machine still agree', () => {
  const limits = fc.record({
    maxHeaderSize: fc.integer({ min: 16, max: 200 }),
    maxUriLength: fc.integer({ min: 1, max: 40 }),
    maxHeaders: fc.integer({ min: 0, max: 6 }),
    maxBodySize: fc.integer({ min: 0, max: 40 }),
    maxTrailerSize: fc.integer({ min: 2, max: 40 }),
  });
  run('small limits', fc.property(
    fc.tuple(pipeline, fc.array(mutation, { maxLength: 2 }), limits).chain(([ms, muts, lim]) => {
      const wire = mutate(ms.map((m) => m.wire).join(''), muts);
      return fc.tuple(fc.constant(wire), splitPoints(wire.length), fc.constant(lim));
    }),
    ([wire, splits, lim]) => {
      differential(Buffer.from(wire, 'latin1'), splits, lim);
    },
  ), Math.max(500, RUNS / 2));
});
