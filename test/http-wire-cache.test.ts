// The prepared-response path of cached static files (HttpResponse.sendCached): a cached file's complete 200
// response is kept ready and rebuilt when the Date second changes; closing, HEAD, HTTP/1.0, pipelining and headers
// set by an earlier handler must give exactly what the general path gives.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Handler } from '../apps/http/handlers.js';
import { serveStatic } from '../apps/http/static.js';
import { httpDate } from '../apps/http/date.js';
import { datedResponse, RawClient, SHIPPED_TRANSPORTS, skipTransport, startApp, until, type TestServer } from './http-helpers.test.js';

const TEXT = 'x'.repeat(3000) + '\n';

// over io_uring channels (shipped and benchmarked: the prepared bytes go out without a copy) and over node:net
for (const transport of SHIPPED_TRANSPORTS) describe(`over ${transport}`, { skip: skipTransport(transport) }, () => {
let tmp: string;
let srv: TestServer;

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'megapipe-http-wire-'));
  fs.writeFileSync(path.join(tmp, 'a.txt'), TEXT);
  const tag: Handler = (req, res) => {
    if (req.query.get('tag') === '1') res.setHeader('X-Tag', 'yes'); // then falls through to the files
  };
  srv = await startApp({ handler: [tag, serveStatic(tmp)] }, transport);
});

after(async () => {
  await srv.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

const get = (p: string, extra = '', method = 'GET', version = '1.1') => `${method} ${p} HTTP/${version}\r\nHost: x\r\n${extra}\r\n`;

test('keep-alive: repeated and pipelined requests get complete, identical responses', async () => {
  const c = await RawClient.connect(srv.port);
  try {
    for (let i = 0; i < 3; i++) {
      c.send(get('/a.txt'));
      const r = await c.readResponse();
      assert.equal(r.status, 200);
      assert.equal(r.body.toString(), TEXT);
      assert.equal(r.headers['content-length'], String(TEXT.length));
      assert.equal(r.headers['content-type'], 'text/plain; charset=utf-8');
      assert.equal(r.headers.connection, undefined);
      assert.ok(r.headers.date && r.headers.etag && r.headers['last-modified']);
    }
    c.send(get('/a.txt') + get('/a.txt') + get('/a.txt'));
    for (let i = 0; i < 3; i++) assert.equal((await c.readResponse()).body.toString(), TEXT);
  } finally {
    c.socket.destroy();
  }
});

test('the Date header is an IMF-fixdate from the server\'s date source; the prepared response follows it', async () => {
  const c = await RawClient.connect(srv.port);
  try {
    c.send(get('/a.txt')); // cached by now (or by this request): the next ones take the prepared response
    await c.readResponse();
    const d1 = (await datedResponse(c, () => c.send(get('/a.txt')))).headers.date;
    // the event a sleep of a second stood for: the server's date source moves on to the next second
    await until(() => httpDate() !== d1, 'the date source moved to the next second', 5000);
    const d2 = (await datedResponse(c, () => c.send(get('/a.txt')))).headers.date;
    assert.notEqual(d2, d1, 'the prepared response was rebuilt with the new Date');
  } finally {
    c.socket.destroy();
  }
});

test('Connection: close gets Connection: close and the connection closes; the next keep-alive one does not', async () => {
  const c = await RawClient.connect(srv.port);
  c.send(get('/a.txt', 'Connection: close\r\n'));
  const r = await c.readResponse();
  assert.equal(r.headers.connection, 'close');
  assert.equal(r.body.toString(), TEXT);
  await c.waitClose();
  const k = await RawClient.connect(srv.port);
  try {
    k.send(get('/a.txt'));
    const r2 = await k.readResponse();
    assert.equal(r2.headers.connection, undefined);
    assert.equal(r2.body.toString(), TEXT);
  } finally {
    k.socket.destroy();
  }
});

test('HEAD, HTTP/1.0 and headers set by an earlier handler take the general path', async () => {
  const c = await RawClient.connect(srv.port);
  try {
    c.send(get('/a.txt', '', 'HEAD'));
    const h = await c.readResponse({ head: true });
    assert.equal(h.status, 200);
    assert.equal(h.headers['content-length'], String(TEXT.length));
    assert.equal(h.body.length, 0);
    c.send(get('/a.txt?tag=1'));
    const t = await c.readResponse();
    assert.equal(t.headers['x-tag'], 'yes');
    assert.equal(t.body.toString(), TEXT);
    c.send(get('/a.txt'));
    assert.equal((await c.readResponse()).headers['x-tag'], undefined);
  } finally {
    c.socket.destroy();
  }
  const old = await RawClient.connect(srv.port);
  try {
    old.send(get('/a.txt', 'Connection: keep-alive\r\n', 'GET', '1.0'));
    const r = await old.readResponse();
    assert.equal(r.headers.connection, 'keep-alive');
    assert.equal(r.body.toString(), TEXT);
  } finally {
    old.socket.destroy();
  }
});
});
