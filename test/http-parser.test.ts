// Unit tests of the incremental request parser: every split of the input gives the same events, and each fault
// maps to its status.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { feedAll, recorder, summary, type Summary } from './http-parser-harness.js';

const PIPELINE = Buffer.from(
  '\r\nGET /a?x=1 HTTP/1.1\r\nHost: example.com\r\nX-Multi: 1\r\nx-multi: 2\r\n\r\n' +
    'POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello' +
    'PUT /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n'.replace('gzip, ', '') +
    '3;ext=1\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nX-Trailer: yes\r\n\r\n' +
    'GET http://example.com/d/e?q HTTP/1.0\r\nConnection: keep-alive\r\n\r\n' +
    'OPTIONS * HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n',
  'latin1',
);

test('parser: a pipeline of requests gives the same events whatever the split', () => {
  const whole = summary(feedAll(PIPELINE, []));
  const expected = {
    heads: [
      { method: 'GET', target: '/a?x=1', minor: 1, cl: -1, chunked: false, keepAlive: true, expect: false,
        fields: [['host', 'example.com'], ['x-multi', '1'], ['x-multi', '2']] },
      { method: 'POST', target: '/b', minor: 1, cl: 5, chunked: false, keepAlive: true, expect: false,
        fields: [['host', 'h'], ['content-length', '5']] },
      { method: 'PUT', target: '/c', minor: 1, cl: -1, chunked: true, keepAlive: true, expect: false,
        fields: [['host', 'h'], ['transfer-encoding', 'chunked']] },
      { method: 'GET', target: 'http://example.com/d/e?q', minor: 0, cl: -1, chunked: false, keepAlive: true, expect: false,
        fields: [['connection', 'keep-alive']] },
      { method: 'OPTIONS', target: '*', minor: 1, cl: -1, chunked: false, keepAlive: false, expect: false,
        fields: [['host', 'h'], ['connection', 'close']] },
    ],
    bodies: ['', 'hello', 'abc0123456789abcdef', '', ''],
    trailers: [null, null, [['x-trailer', 'yes']], null, null],
    completes: 5,
    error: null,
  };
  assert.deepEqual(whole, expected);
  // every single split point, and byte by byte
  for (let i = 1; i < PIPELINE.length; i++) assert.deepEqual(summary(feedAll(PIPELINE, [i])), expected, `split at ${i}`);
  const bytewise = Array.from({ length: PIPELINE.length - 1 }, (_, i) => i + 1);
  assert.deepEqual(summary(feedAll(PIPELINE, bytewise)), expected);
});

test('parser: header access is case-insensitive and joins duplicates', () => {
  const r = feedAll(PIPELINE, []);
  const f = r.heads[0].fields;
  assert.equal(f.get('HOST'), 'example.com');
  assert.equal(f.get('x-MULTI'), '1, 2');
  assert.deepEqual(f.getAll('X-Multi'), ['1', '2']);
  assert.equal(f.has('content-length'), false);
  assert.equal(f.get('nope'), undefined);
  assert.deepEqual({ ...f.toObject() }, { host: 'example.com', 'x-multi': '1, 2' });
});

test('parser: keep-alive rules of HTTP/1.0 and 1.1', () => {
  const cases: [string, boolean][] = [
    ['GET / HTTP/1.1\r\nHost: a\r\n\r\n', true],
    ['GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n', false],
    ['GET / HTTP/1.1\r\nHost: a\r\nConnection: Keep-Alive, CLOSE\r\n\r\n', false],
    ['GET / HTTP/1.0\r\n\r\n', false],
    ['GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n', true],
    ['GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n', true],
    ['GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n', false],
    ['GET / HTTP/1.2\r\nHost: a\r\n\r\n', true],
  ];
  for (const [req, ka] of cases) {
    const r = feedAll(Buffer.from(req), []);
    assert.equal(r.error, null, req);
    assert.equal(r.heads[0].keepAlive, ka, req);
  }
});

const FAULTS: [string, number][] = [
  // malformed request line
  ['GET\r\nHost: a\r\n\r\n', 400],
  ['GET  / HTTP/1.1\r\nHost: a\r\n\r\n', 400],
  ['GET / HTTP/1.1 \r\nHost: a\r\n\r\n', 400],
  ['GET / http/1.1\r\nHost: a\r\n\r\n', 400],
  ['GET / HTTP/1\r\nHost: a\r\n\r\n', 400],
  ['GET / HTTP/1.x\r\nHost: a\r\n\r\n', 400],
  ['G(T / HTTP/1.1\r\nHost: a\r\n\r\n', 400],
  ['GET /a\x7fb HTTP/1.1\r\nHost: a\r\n\r\n', 400],
  ['GET /\xe9 HTTP/1.1\r\nHost: a\r\n\r\n', 400],
  ['GET a/b HTTP/1.1\r\nHost: a\r\n\r\n', 400],
  ['GET * HTTP/1.1\r\nHost: a\r\n\r\n', 400],
  ['GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n', 400],
  // line endings
  ['GET / HTTP/1.1\nHost: a\r\n\r\n', 400],
  ['GET / HTTP/1.1\r\nHost: a\n\n', 400],
  ['GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n', 400],
  ['GET / HTTP/1.1\r\nHost: a\r\nX: b\rc\r\n\r\n', 400],
  ['GET / HTTP/1.1\r\r\nHost: a\r\n\r\n', 400],
  ['GET / HTTP/1.1\r\nHost: a\r\nX: b\r\r\n\r\n', 400],
  ['GET / HTTP/1.1\r\nHost: a\r\nX: b\n\r\n\r\n', 400],
  ['GET / HTTP/1.1\r\nHost: a\r\n\n\r\n\r\n', 400],
  ['GET / HTTP/1.1\r\nHost: a\r\nX\n: b\r\n\r\n', 400],
  ['GET /\n HTTP/1.1\r\nHost: a\r\n\r\n', 400],
  // field syntax
  ['GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n  folded\r\n\r\n', 400],
  ['GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n\tfolded\r\n\r\n', 400],
  ['GET / HTTP/1.1\r\n Host: a\r\n\r\n', 400],
  ['GET / HTTP/1.1\r\nHost : a\r\n\r\n', 400],
  ['GET / HTTP/1.1\r\nHost\t: a\r\n\r\n', 400],
  ['GET / HTTP/1.1\r\nHost: a\r\nNo colon\r\n\r\n', 400],
  ['GET / HTTP/1.1\r\nHost: a\r\n: empty name\r\n\r\n', 400],
  ['GET / HTTP/1.1\r\nHost: a\r\nX-Nul: a\x00b\r\n\r\n', 400],
  ['GET / HTTP/1.1\r\nHost: a\r\nX-Ctl: a\x01b\r\n\r\n', 400],
  ['GET / HTTP/1.1\r\nHost: a\r\nX-Del: a\x7fb\r\n\r\n', 400],
  ['GET / HTTP/1.1\r\nHo(st: a\r\n\r\n', 400],
  // Host
  ['GET / HTTP/1.1\r\n\r\n', 400],
  ['GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n', 400],
  ['GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n', 400],
  ['GET / HTTP/1.1\r\nHost: a b\r\n\r\n', 400],
  ['GET / HTTP/1.1\r\nHost: a/b\r\n\r\n', 400],
  // Content-Length
  ['POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx', 400],
  ['POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx', 400],
  ['POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 1\r\n\r\nx', 400],
  ['POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n', 400],
  ['POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\nx', 400],
  ['POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n', 400],
  ['POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n', 400],
  ['POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 2\r\n\r\n', 400],
  // Transfer-Encoding
  ['POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400],
  ['POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n', 400],
  ['POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n', 400],
  ['POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n', 400],
  ['POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n', 400],
  ['POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n', 400],
  ['POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n', 400],
  ['POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n', 400],
  ['POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400],
  ['POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n', 501],
  ['POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: foo\r\nTransfer-Encoding: chunked\r\n\r\n', 501],
  // chunked body faults
  ['POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', 400],
  ['POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n\r\n', 400],
  ['POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n', 400],
  ['POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n', 400],
  ['POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\n0\r\n\r\n', 400],
  ['POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n-3\r\nabc\r\n', 400],
  ['POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nBad Trailer\r\n\r\n', 400],
  ['POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\n', 413],
  // methods and versions
  ['FOO / HTTP/1.1\r\nHost: a\r\n\r\n', 501],
  ['get / HTTP/1.1\r\nHost: a\r\n\r\n', 501],
  ['CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n', 501],
  ['GET / HTTP/2.0\r\nHost: a\r\n\r\n', 505],
  ['GET / HTTP/0.9\r\nHost: a\r\n\r\n', 505],
  ['GET / HTTP/3.1\r\nHost: a\r\n\r\n', 505],
  // expectations
  ['POST / HTTP/1.1\r\nHost: a\r\nExpect: something\r\nContent-Length: 1\r\n\r\nx', 417],
  // too many empty lines before the request
  ['\r\n\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n', 400],
];

test('parser: each fault maps to its status, whole or split byte by byte', () => {
  for (const [input, status] of FAULTS) {
    const b = Buffer.from(input, 'latin1');
    const whole = feedAll(b, []);
    assert.equal(whole.error?.[0], status, `${JSON.stringify(input)} → ${whole.error?.[0]} (${whole.error?.[1]})`);
    const split = feedAll(b, Array.from({ length: b.length - 1 }, (_, i) => i + 1));
    assert.equal(split.error?.[0], status, `bytewise ${JSON.stringify(input)}`);
  }
});

test('parser: limits → 413, 414, 431', () => {
  const lim = { maxHeaderSize: 1024, maxUriLength: 256, maxHeaders: 10, maxBodySize: 100, maxTrailerSize: 64 };
  const long = '/' + 'a'.repeat(300);
  assert.equal(feedAll(Buffer.from(`GET ${long} HTTP/1.1\r\nHost: a\r\n\r\n`), [], lim).error?.[0], 414);
  // a request line over its limit in a complete head (a long method, a short target): 414 whole and split alike
  const longLine = Buffer.from(`${'A'.repeat(400)} / HTTP/1.1\r\nHost: a\r\n\r\n`);
  assert.equal(feedAll(longLine, [], lim).error?.[0], 414);
  assert.equal(feedAll(longLine, [200], lim).error?.[0], 414);
  // heads around maxHeaderSize in one piece and split: the same verdict (the final CRLF CRLF is not counted)
  const pad = (n: number) => Buffer.from(`GET / HTTP/1.1\r\nHost: a\r\nX: ${'v'.repeat(n)}\r\n\r\n`);
  const fits = 1024 - pad(0).length;
  for (const [n, want] of [[fits, null], [fits + 4, null], [fits + 5, 431]] as const) {
    assert.equal(feedAll(pad(n), [], lim).error?.[0] ?? null, want, `${pad(n).length}-byte head, whole`);
    assert.equal(feedAll(pad(n), [500], lim).error?.[0] ?? null, want, `${pad(n).length}-byte head, split`);
  }
  // an endless request line is refused before it ends
  assert.equal(feedAll(Buffer.from(`GET /${'b'.repeat(5000)}`), [], lim).error?.[0], 414);
  assert.equal(feedAll(Buffer.from(`GET / HTTP/1.1\r\nHost: a\r\nX: ${'v'.repeat(2000)}\r\n\r\n`), [], lim).error?.[0], 431);
  assert.equal(feedAll(Buffer.from(`GET / HTTP/1.1\r\nHost: a\r\nX: ${'v'.repeat(2000)}`), [7, 30], lim).error?.[0], 431);
  const many = Array.from({ length: 11 }, (_, i) => `X-${i}: ${i}\r\n`).join('');
  assert.equal(feedAll(Buffer.from(`GET / HTTP/1.1\r\nHost: a\r\n${many}\r\n`), [], lim).error?.[0], 431);
  const nine = Array.from({ length: 9 }, (_, i) => `X-${i}: ${i}\r\n`).join('');
  assert.equal(feedAll(Buffer.from(`GET / HTTP/1.1\r\nHost: a\r\n${nine}\r\n`), [], lim).error, null);
  assert.equal(feedAll(Buffer.from('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 101\r\n\r\n'), [], lim).error?.[0], 413);
  assert.equal(feedAll(Buffer.from('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n'), [], lim).error?.[0], 413);
  assert.equal(feedAll(Buffer.from('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n'), [], lim).error, null);
  const chunks = 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n32\r\n' + 'x'.repeat(50) + '\r\n33\r\n';
  assert.equal(feedAll(Buffer.from(chunks), [], lim).error?.[0], 413);
  const trailer = 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: ' + 'y'.repeat(100) + '\r\n\r\n';
  assert.equal(feedAll(Buffer.from(trailer), [], lim).error?.[0], 431);
});

test('parser: pause stops at a message boundary only', () => {
  const { p, r } = recorder();
  const input = Buffer.from(
    'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcGET /2 HTTP/1.1\r\nHost: a\r\n\r\nGET /3 HTTP/1.1\r\nHost: a\r\n\r\n',
  );
  const first = 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc'.length;
  assert.equal(p.execute(input, 0, first - 2), first - 2); // inside the body
  p.pause();
  assert.equal(p.execute(input, first - 2, input.length - first + 2), 2); // up to the end of that message
  assert.equal(r.completes, 1);
  assert.equal(p.idle, true);
  p.resume();
  assert.equal(p.execute(input, first, input.length - first), input.length - first);
  assert.equal(r.completes, 3);
  assert.deepEqual(r.heads.map((h) => h.target), ['/', '/2', '/3']);
});

test('parser: Expect: 100-continue and state flags', () => {
  const { p, r } = recorder();
  const head = Buffer.from('PUT /x HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 4\r\n\r\n');
  assert.equal(p.idle, true);
  p.execute(head, 0, 5);
  assert.equal(p.inHead, true);
  p.execute(head, 5, head.length - 5);
  assert.equal(r.heads[0].expectContinue, true);
  assert.equal(p.inBody, true);
  p.execute(Buffer.from('data'), 0, 4);
  assert.equal(r.completes, 1);
  assert.equal(p.idle, true);
  assert.equal(r.bodies[0].toString(), 'data');
});

/** The verdict on `input` fed whole, split once at every offset, and byte by byte: each equals `expect`. */
function everySplit(input: Buffer, expect: (s: Summary, how: string) => void): void {
  expect(summary(feedAll(input, [])), 'whole');
  for (let i = 1; i < input.length; i++) expect(summary(feedAll(input, [i])), `split at ${i}`);
  expect(summary(feedAll(input, Array.from({ length: input.length - 1 }, (_, i) => i + 1))), 'byte by byte');
}

// Regression (outside review, issue 13): a whole head in one read took the fast path, and a field line starting with a
// bare CR ended the head there: the Content-Length after it was dropped and the body served as a second request
// (request smuggling); split across reads, the same bytes were a 400.
test('regression: a bare CR at the start of a field line is a 400 whatever the split (no smuggled request)', () => {
  const smuggled = 'GET /admin HTTP/1.1\r\nHost: x\r\n\r\n';
  assert.equal(smuggled.length, 32);
  const cases = [
    `POST / HTTP/1.1\r\nHost: x\r\n\rContent-Length: 32\r\n\r\n${smuggled}`,
    `GET / HTTP/1.1\r\nHost: x\r\n\rContent-Length: 32\r\n\r\n${smuggled}`,
    `POST / HTTP/1.0\r\n\rContent-Length: 32\r\n\r\n${smuggled}`,
    `GET / HTTP/1.1\r\nHost: x\r\n\rX: y\r\n\r\n`,
    `GET / HTTP/1.1\r\nHost: x\r\n\r\r\n\r\n`,
    `GET / HTTP/1.1\r\nHost: x\r\nA: b\r\n\r \r\n\r\n`,
  ];
  for (const c of cases) {
    everySplit(Buffer.from(c, 'latin1'), (s, how) => {
      assert.deepEqual(s, { heads: [], bodies: [], trailers: [], completes: 0, error: 400 }, `${how}: ${JSON.stringify(c)}`);
    });
  }
});

const CHUNKED = 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n';

// RFC 9112 §7.1.1: chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] ),
// chunk-ext-val = token / quoted-string. Anything else on a chunk-size line is a framing fault (400).
test('chunk extensions: the RFC 9112 grammar is accepted, anything else is a 400, whatever the split', () => {
  const good = ['2;a', '2;a=b', '2 ;a', '2\t; a', '2; a = b', '2;a=b;c', '2;a="x y";b', '2;a="q\\"\\\\"', '2;a=b ;c=d',
    '2;!#$%&\'*+-.^_`|~=1', '2;a="\x80\xff"'];
  for (const ext of good) {
    const input = Buffer.from(`${CHUNKED}${ext}\r\nab\r\n0\r\n\r\n`, 'latin1');
    everySplit(input, (r, how) => {
      assert.equal(r.error, null, `${how}: ${JSON.stringify(ext)} accepted`);
      assert.deepEqual(r.bodies, ['ab'], `${how}: ${JSON.stringify(ext)}`);
    });
  }
  const bad = ['2 junk', '2;', '2; ', '2 ', '2\t', '2;a=', '2;a= ', '2;=b', '2;a b', '2;a=b c', '2;a="x', '2;a="x"y',
    '2;a=b"', '2;a="\x01"', '2;a="\x7f"', '2;a\x00', '2 ;', '2;a;', '2;a=b;', '2;a=(b)', '2,a', '2;a="\\\x01"', '2;;a'];
  for (const ext of bad) {
    const input = Buffer.from(`${CHUNKED}${ext}\r\nab\r\n0\r\n\r\n`, 'latin1');
    everySplit(input, (r, how) => {
      assert.equal(r.error, 400, `${how}: ${JSON.stringify(ext)} rejected`);
      assert.equal(r.completes, 0, `${how}: ${JSON.stringify(ext)} not completed`);
    });
  }
});
