// Regression tests for the findings of an audit of apps/http: error statuses (HttpError, sendError), header injection
// through file Content-Types, the cost of reading a body of many tiny chunks, a keep-alive connection on node:net after
// a file body, chunk sizes with leading zeros, and what counts as an HTTP-date. Loopback, port 0; every wait is bounded
// (`bounded`, GUARD_MS) and no assertion is about speed.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, test } from 'node:test';
import { serveStatic } from '../apps/http/static.js';
import { HttpError } from '../apps/http/status.js';
import { formatHttpDate, parseHttpDate } from '../apps/http/date.js';
import { prng } from './helpers.js';
import { feedAll } from './http-parser-harness.js';
import { bounded, exchange, RawClient, skipTransport, startApp, TRANSPORTS } from './http-helpers.test.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'megapipe-http-audit-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
/** 100 KB: above serveNet's (and the channels') 64 KiB high-water mark. */
const MID = path.join(tmp, 'mid.bin');
fs.writeFileSync(MID, Buffer.alloc(100_000, 0x6d));
fs.writeFileSync(path.join(tmp, 'a.txt'), 'a\n');

const GET = (p: string, extra = '') => `GET ${p} HTTP/1.1\r\nHost: a\r\n${extra}\r\n`;

describe('B2: error statuses', () => {
  test('HttpError: a status that is not an integer 400..599 is a RangeError naming status', () => {
    for (const bad of [100, 101, 0, 99, 199, 200, 304, 399, 600, 1000, NaN, 404.5, -404, Infinity]) {
      assert.throws(() => new HttpError(bad, 'x'), (e: unknown) => e instanceof RangeError && /status/.test(e.message), `HttpError(${bad})`);
    }
    for (const ok of [400, 404, 408, 413, 431, 499, 500, 501, 505, 599]) assert.equal(new HttpError(ok).status, ok);
  });

  test('a handler throwing HttpError(100, a forged response) gets one 500, never a 1xx final response', async () => {
    const forged = 'HTTP/1.1 200 OK\r\nContent-Length: 7\r\nX-Injected: yes\r\n\r\nPWNED!\n';
    const srv = await startApp({ handler: () => { throw new HttpError(100, forged); } });
    try {
      const r = await bounded(exchange(srv.port, GET('/', 'Connection: close\r\n')), 'response');
      assert.equal(r.status, 500);
      assert.ok(!r.body.toString('latin1').includes('PWNED'), 'the message of a refused HttpError is not sent');
      const rest = await bounded(r.client.waitClose(), 'close');
      assert.equal(rest.length, 0, 'nothing after the one response');
    } finally { await srv.close(); }
  });

  test('sendError: an HttpError whose status was changed to 100 afterwards is answered 500, without its message', async () => {
    const srv = await startApp({
      handler: () => {
        const e = new HttpError(400, 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n');
        (e as { status: number }).status = 100;
        throw e;
      },
    });
    try {
      const r = await bounded(exchange(srv.port, GET('/', 'Connection: close\r\n')), 'response');
      assert.equal(r.status, 500);
      assert.equal(r.body.toString(), '500 Internal Server Error\n');
      r.client.destroy();
    } finally { await srv.close(); }
  });
});

describe('B3: Content-Types are header values', () => {
  test('res.file(path, { contentType }) with CR/LF rejects with a TypeError naming contentType; nothing is injected', async () => {
    let err: unknown = null;
    const srv = await startApp({
      handler: async (req, res) => {
        try {
          await res.file(path.join(tmp, 'a.txt'), { contentType: 'text/plain\r\nX-Injected: 1' });
        } catch (e) {
          err = e;
          throw e;
        }
      },
    });
    try {
      const r = await bounded(exchange(srv.port, GET('/', 'Connection: close\r\n')), 'response');
      assert.equal(r.headers['x-injected'], undefined);
      assert.equal(r.status, 500);
      assert.ok(err instanceof TypeError && /contentType/.test(err.message), String(err));
      r.client.destroy();
    } finally { await srv.close(); }
  });

  test('res.file(path, { contentType }) with a valid value sends it as given', async () => {
    const srv = await startApp({ handler: (req, res) => res.file(path.join(tmp, 'a.txt'), { contentType: 'text/x-$&; q=1' }) });
    try {
      const r = await bounded(exchange(srv.port, GET('/', 'Connection: close\r\n')), 'response');
      assert.equal(r.status, 200);
      assert.equal(r.headers['content-type'], 'text/x-$&; q=1');
      r.client.destroy();
    } finally { await srv.close(); }
  });

  test('serveStatic: a mimeTypes value with CR, LF or NUL is a TypeError naming mimeTypes', () => {
    for (const v of ['text/plain\r\nX: 1', 'text/plain\nX: 1', 'text/\0plain']) {
      assert.throws(() => serveStatic(tmp, { mimeTypes: { txt: v } }), (e: unknown) => e instanceof TypeError && /mimeTypes/.test(e.message), JSON.stringify(v));
    }
    serveStatic(tmp, { mimeTypes: { txt: 'text/plain; charset=utf-8' } });
  });
});

describe('M1: chunk-size = 1*HEXDIG (leading zeros)', () => {
  const POST = 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n';
  /** `input` whole and split byte by byte: the same events either way; returns the whole-input record. */
  function both(input: string): ReturnType<typeof feedAll> {
    const b = Buffer.from(input, 'latin1');
    const whole = feedAll(b, []);
    const split = feedAll(b, Array.from({ length: b.length - 1 }, (_, i) => i + 1));
    assert.deepEqual(split.error?.[0] ?? null, whole.error?.[0] ?? null, 'same verdict split');
    assert.equal(Buffer.concat(split.bodies).toString('latin1'), Buffer.concat(whole.bodies).toString('latin1'));
    return whole;
  }

  test('a size with leading zeros is its value: 20 zeros then 5, 1000 zeros then 0', () => {
    const a = both(POST + '00000000000000000005\r\nhello\r\n0\r\n\r\n');
    assert.equal(a.error, null);
    assert.equal(a.bodies[0].toString(), 'hello');
    const z = both(POST + '5\r\nhello\r\n' + '0'.repeat(1000) + '\r\n\r\n');
    assert.equal(z.error, null);
    assert.equal(z.completes, 1);
    assert.equal(z.bodies[0].toString(), 'hello');
    const f = both(POST + '0'.repeat(30) + '400\r\n' + 'x'.repeat(1024) + '\r\n0\r\n\r\n');
    assert.equal(f.error, null);
    assert.equal(f.bodies[0].length, 1024);
  });

  test('the value is bounded (413), and so is the line: endless leading zeros are refused (400)', () => {
    assert.equal(both(POST + '00000' + '1' + '0'.repeat(13) + '\r\n').error?.[0], 413);
    assert.equal(both(POST + '0'.repeat(1025)).error?.[0], 400);
    assert.equal(both(POST + '0'.repeat(100_000) + '\r\n').error?.[0], 400);
  });

  test('over a server: leading zeros in a chunk size are accepted like node:http does', async () => {
    const srv = await startApp({ handler: async (req, res) => res.send(await req.body()) });
    try {
      const r = await bounded(exchange(srv.port, POST.replace('\r\n\r\n', '\r\nConnection: close\r\n\r\n') + '00000000000000000005\r\nhello\r\n0\r\n\r\n'), 'response');
      assert.equal(r.status, 200);
      assert.equal(r.body.toString(), 'hello');
      r.client.destroy();
    } finally { await srv.close(); }
  });
});

describe('M2: only HTTP-dates are dates (RFC 9110 §5.6.7, §13.1.3)', () => {
  /** strings Date.parse takes for a date that are not HTTP-dates */
  const NOT_DATES = [
    '3000', '12/31/2099', '2099-12-31', '2099-12-31T00:00:00Z', 'Dec 31 2099', '31 Dec 2099',
    'Thu, 31 Dec 2099 00:00:00 +0000', 'Thu, 31 Dec 2099 00:00:00 UTC', 'Thu, 31 Dec 2099 00:00:00', 'thu, 31 dec 2099 00:00:00 gmt',
    'Thu,  31 Dec 2099 00:00:00 GMT', 'Thu, 1 Dec 2099 00:00:00 GMT', 'Thu, 31 Dec 99 00:00:00 GMT', 'Thursday, 31-Dec-2099 00:00:00 GMT',
    'Thu, 31 December 2099 00:00:00 GMT', 'Thu, 31 Dec 2099 00:00 GMT', 'Thu Dec 31 00:00:00 2099 GMT', ' Thu, 31 Dec 2099 00:00:00 GMT',
    'Thu, 30 Feb 2099 00:00:00 GMT', 'Thu, 31 Dec 2099 24:00:00 GMT', 'Thu, 31 Dec 2099 23:60:00 GMT', 'Thu, 32 Dec 2099 00:00:00 GMT',
  ];

  test('the three forms parse; what Date.parse takes besides them is NaN', () => {
    const t = Date.UTC(1994, 10, 6, 8, 49, 37);
    assert.equal(parseHttpDate('Sun, 06 Nov 1994 08:49:37 GMT'), t);
    assert.equal(parseHttpDate('Sunday, 06-Nov-94 08:49:37 GMT', Date.UTC(2026, 0, 1)), t);
    assert.equal(parseHttpDate('Sun Nov  6 08:49:37 1994'), t);
    // rfc850's two-digit year: not more than 50 years ahead
    assert.equal(parseHttpDate('Thursday, 01-Jan-76 00:00:00 GMT', Date.UTC(2026, 0, 1)), Date.UTC(2076, 0, 1));
    assert.equal(parseHttpDate('Friday, 01-Jan-77 00:00:00 GMT', Date.UTC(2026, 0, 1)), Date.UTC(1977, 0, 1));
    for (const v of NOT_DATES) {
      assert.ok(!Number.isNaN(Date.parse(v)) || /Feb|24:|:60|32 /.test(v), `Date.parse takes ${JSON.stringify(v)}`);
      assert.ok(Number.isNaN(parseHttpDate(v)), JSON.stringify(v));
    }
  });

  test('property: the server\'s own formatter round-trips through parseHttpDate; random strings are not dates', () => {
    const rand = prng(9110);
    const lo = Date.UTC(1000, 0, 1), hi = Date.UTC(9999, 11, 31, 23, 59, 59);
    for (let i = 0; i < 20_000; i++) {
      const ms = lo + Math.floor(rand() * (hi - lo));
      const s = formatHttpDate(ms);
      assert.equal(parseHttpDate(s), Math.floor(ms / 1000) * 1000, s);
    }
    const alphabet = '0123456789 ,:-+/TZGMTSunMonDecNov';
    for (let i = 0; i < 20_000; i++) {
      let s = '';
      const n = 1 + Math.floor(rand() * 32);
      for (let j = 0; j < n; j++) s += alphabet[Math.floor(rand() * alphabet.length)];
      assert.ok(Number.isNaN(parseHttpDate(s)), JSON.stringify(s));
    }
  });

  test('a static file: If-Modified-Since / If-Unmodified-Since / If-Range that are not HTTP-dates are ignored', async () => {
    const srv = await startApp({ handler: serveStatic(tmp) });
    try {
      const c = await RawClient.connect(srv.port);
      const ask = async (extra: string) => {
        c.send(GET('/a.txt', extra));
        return bounded(c.readResponse(), 'response');
      };
      const first = await ask('');
      assert.equal(first.status, 200);
      const lm = first.headers['last-modified'];
      for (const v of ['3000', '12/31/2099', 'Thu, 31 Dec 2099 00:00:00 +0000']) {
        assert.equal((await ask(`If-Modified-Since: ${v}\r\n`)).status, 200, `If-Modified-Since: ${v}`);
      }
      assert.equal((await ask('If-Unmodified-Since: 1970\r\n')).status, 200, 'If-Unmodified-Since: 1970');
      assert.equal((await ask(`Range: bytes=0-0\r\nIf-Range: ${new Date(Date.parse(lm)).toISOString()}\r\n`)).status, 200, 'If-Range: an ISO date');
      // HTTP-dates still work, in all three forms
      const t = Date.parse(lm) + 86_400_000;
      const d = new Date(t);
      const days = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
      const imf = formatHttpDate(t);
      const [, dd, mon, yyyy, time] = /^\w+, (\d\d) (\w+) (\d{4}) (\S+) GMT$/.exec(imf)!;
      const rfc850 = `${days[d.getUTCDay()]}, ${dd}-${mon}-${yyyy.slice(2)} ${time} GMT`;
      const asctime = `${imf.slice(0, 3)} ${mon} ${String(d.getUTCDate()).padStart(2, ' ')} ${time} ${yyyy}`;
      for (const v of [imf, rfc850, asctime]) assert.equal((await ask(`If-Modified-Since: ${v}\r\n`)).status, 304, v);
      assert.equal((await ask(`Range: bytes=0-0\r\nIf-Range: ${lm}\r\n`)).status, 206);
      c.destroy();
    } finally { await srv.close(); }
  });
});

for (const transport of TRANSPORTS) describe(`over ${transport}`, { skip: skipTransport(transport) }, () => {
  test('B4: a chunked body of 200,000 one-byte chunks is read in a few large reads, not one read per chunk', { timeout: 120_000 }, async () => {
    const N = 200_000;
    let reads = 0;
    const srv = await startApp({
      handler: async (req, res) => {
        let bytes = 0;
        for await (const c of req) {
          reads++;
          bytes += c.byteLength;
        }
        res.send(`${bytes}`);
      },
    }, transport);
    try {
      const c = await RawClient.connect(srv.port);
      c.send('POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n');
      c.send('1\r\nx\r\n'.repeat(N) + '0\r\n\r\n');
      // generous: before the fix this took tens of seconds on a fast machine (quadratic in the chunk count)
      const r = await bounded(c.readResponse(), 'response', 100_000);
      assert.equal(r.status, 200);
      assert.equal(r.body.toString(), String(N));
      // a read takes everything buffered: its cost is the bytes, not the count of chunks left behind it
      assert.ok(reads <= N / 100, `${reads} reads for ${N} chunks`);
      c.destroy();
    } finally { await srv.close(); }
  });

  test('B5: a client still sending a 20 MiB body after the 413 receives the whole 413 (lingering close)', async () => {
    const srv = await startApp({ handler: async (req, res) => res.send(await req.body()) }, transport);
    try {
      for (let attempt = 0; attempt < 4; attempt++) {
        const c = await RawClient.connect(srv.port);
        const total = 20 << 20;
        c.send(`POST / HTTP/1.1\r\nHost: a\r\nContent-Length: ${total}\r\n\r\n`);
        // the whole body, whatever the server answers meanwhile (as a client that does not read while it uploads)
        const sending = (async () => {
          const piece = Buffer.alloc(64 << 10, 0x78);
          for (let sent = 0; sent < total && !c.closed; sent += piece.length) {
            if (!c.socket.write(piece)) await new Promise((r) => { c.socket.once('drain', r); c.socket.once('close', r); });
          }
        })();
        const r = await bounded(c.readResponse(), `attempt ${attempt}: the 413`);
        assert.equal(r.status, 413);
        assert.equal(r.headers['connection'], 'close');
        assert.equal(r.body.toString(), '413 Content Too Large\n');
        await bounded(sending, 'the upload');
        c.socket.end();
        await bounded(c.waitClose(), 'the server closes after the client\'s EOF');
        assert.equal(c.error, null, `attempt ${attempt}: ${String(c.error)}`);
      }
    } finally { await srv.close(); }
  });

  test('B5: the lingering close half-closes first: the client reads the 413 and EOF while it still sends, and what it sends after the EOF is read, not reset', async () => {
    const srv = await startApp({ maxBodySize: 1024, handler: async (req, res) => res.send(await req.body()) }, transport);
    const s = net.connect({ port: srv.port, host: '127.0.0.1', allowHalfOpen: true });
    try {
      await bounded(new Promise((r, j) => { s.once('connect', r); s.once('error', j); }), 'connect');
      let got = Buffer.alloc(0), ended = false, closed = false, error: Error | null = null;
      s.on('data', (d: Buffer) => { got = Buffer.concat([got, d]); });
      s.on('end', () => { ended = true; });
      s.on('error', (e) => { error = e; });
      s.on('close', () => { closed = true; });
      s.write(`POST / HTTP/1.1\r\nHost: a\r\nContent-Length: ${1 << 20}\r\n\r\n`);
      // a client uploading without reading: a piece every 50 ms (never quiet for LINGER_QUIET_MS), until the EOF.
      // Before the half-close the EOF came only with the close, when the lingering ended (LINGER_MAX_MS)
      const piece = Buffer.alloc(1024, 0x78);
      for (let i = 0; i < 200 && !ended && !closed; i++) {
        s.write(piece);
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.ok(ended && !closed, 'the server\'s EOF arrived while the connection stayed open');
      const text = got.toString('latin1');
      assert.match(text, /^HTTP\/1\.1 413 /);
      assert.ok(text.endsWith('\r\n\r\n413 Content Too Large\n'), `the whole 413, then EOF: ${JSON.stringify(text)}`);
      // the server still reads and discards: more input after its EOF is not answered with a reset
      for (let i = 0; i < 10; i++) {
        s.write(piece);
        await new Promise((r) => setTimeout(r, 20));
      }
      s.end();
      await bounded(new Promise((r) => { if (closed) r(null); else s.once('close', r); }), 'the server closes after the client\'s EOF');
      assert.equal(error, null, `the client saw ${String(error)}`);
    } finally {
      s.destroy();
      await srv.close();
    }
  });

  test('B1: keep-alive goes on after a file body above the high-water mark (res.file of 100 KB, a Range of 65537 bytes)', async () => {
    const srv = await startApp({
      handler: (req, res) => {
        if (req.path === '/mid') return res.file(MID);
        res.send('second');
      },
    }, transport);
    try {
      const c = await RawClient.connect(srv.port);
      for (const [req, status, len] of [[GET('/mid'), 200, 100_000], [GET('/mid', 'Range: bytes=0-65536\r\n'), 206, 65_537]] as const) {
        c.send(req);
        const a = await bounded(c.readResponse(), 'file response');
        assert.equal(a.status, status);
        assert.equal(a.body.length, len);
        c.send(GET('/next'));
        // before the fix (node:net) no answer came until the send deadline (30 s) destroyed the connection
        const b = await bounded(c.readResponse(), 'the next response on the connection');
        assert.equal(b.status, 200);
        assert.equal(b.body.toString(), 'second');
      }
      c.destroy();
    } finally { await srv.close(); }
  });
});
