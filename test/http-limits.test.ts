// Deadlines and limits: slowloris (a deadline for the whole header block), idle keep-alive, stalled and dripped bodies,
// stalled readers, the connection limit, the per-connection request limit, and graceful shutdown. The deadlines are
// small configured values; tests assert behaviour (closed, status, which deadline fired), never durations, and wait
// for events (a handler started, a connection released), not for time to pass.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { HttpRequest } from '../apps/http/request.js';
import type { HttpResponse } from '../apps/http/response.js';
import type { Handler } from '../apps/http/handlers.js';
import type { HttpError } from '../apps/http/status.js';
import { bounded, deferred, delay, RawClient, skipTransport, startApp, TRANSPORTS, until, type Deferred } from './http-helpers.test.js';

/** How the body read of the last '/outcome' request ended: 'read N' or 'failed STATUS' (the handler did not hang). */
let outcome: Deferred<string> = deferred();
/** The last '/late' request, whose handler reads its body only once `release` resolves. */
let late: { req: HttpRequest; release: Deferred<void> } | null = null;

/** Read the body, record how that ended in `outcome`, answer 200 (or the read's error status). */
async function readBody(req: HttpRequest, res: HttpResponse): Promise<void> {
  const o = outcome;
  try {
    const b = await req.body();
    o.resolve(`read ${b.length}`);
    res.send('read');
  } catch (e) {
    o.resolve(`failed ${(e as HttpError).status}`);
    throw e;
  }
}

/** The last '/held' request: `started` when its handler runs, which answers 'held done' once `release` resolves. */
let held: { started: Deferred<void>; release: Deferred<void> } = { started: deferred(), release: deferred() };
/** Resolved when a '/flood' handler starts its endless response. */
let flooding: Deferred<void> = deferred();

const handler: Handler = async (req, res) => {
  if (req.path === '/outcome') return readBody(req, res);
  if (req.path === '/held') {
    const h = held;
    h.started.resolve();
    await h.release.promise;
    return res.send('held done');
  }
  if (req.path === '/late') {
    const l = (late = { req, release: deferred() });
    await l.release.promise;
    return readBody(req, res);
  }
  if (req.path === '/echo') return res.send(await req.body());
  if (req.path === '/block') {
    // a handler that holds the loop (synchronous work) before it answers
    const end = Date.now() + 1500;
    while (Date.now() < end) { /* busy */ }
    return res.send('blocked');
  }
  if (req.path === '/flood') {
    flooding.resolve();
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    return res.stream((function* () {
      for (let i = 0; i < 4096; i++) yield chunk; // 256 MiB if anyone read it all
    })());
  }
  res.send('ok');
};

const GET = (p: string, extra = '') => `GET ${p} HTTP/1.1\r\nHost: a\r\n${extra}\r\n`;

for (const transport of TRANSPORTS) describe(`over ${transport}`, { skip: skipTransport(transport) }, () => {
test('slowloris: headers trickled past the header deadline → 408 and close', async () => {
  const srv = await startApp({ handler, headerTimeout: 300, keepAliveTimeout: 5000, timerInterval: 50 }, transport);
  try {
    const c = await RawClient.connect(srv.port);
    c.send('GET / HTTP/1.1\r\nHost: a\r\n');
    let sent = 0;
    // one header line every 50 ms for up to 6 s: a per-byte (or per-line) timeout would never fire
    for (; sent < 120 && !c.closed; sent++) {
      c.send(`X-Trickle-${sent}: ${'v'.repeat(10)}\r\n`);
      await delay(50);
    }
    assert.equal(c.closed, true, 'the server closed the connection while headers were still trickling');
    assert.ok(sent < 120);
    const r = await c.readResponse();
    assert.equal(r.status, 408);
    assert.equal(r.headers['connection'], 'close');
    assert.equal(srv.app.timeouts.header, 1, 'the header deadline fired');
  } finally {
    await srv.close();
  }
});

test('slowloris: many connections sending nothing are all closed', async () => {
  const srv = await startApp({ handler, headerTimeout: 300, timerInterval: 50 }, transport);
  try {
    const cs = await Promise.all(Array.from({ length: 20 }, () => RawClient.connect(srv.port)));
    for (const c of cs) assert.equal((await c.waitClose()).length, 0, 'closed silently: nothing was requested');
    await until(() => srv.app.connections === 0, 'every connection released');
    assert.equal(srv.app.timeouts.header, 20);
  } finally {
    await srv.close();
  }
});

test('a request whose headers arrive in pieces within the deadline is served', async () => {
  const srv = await startApp({ handler, headerTimeout: 10_000 }, transport);
  try {
    const c = await RawClient.connect(srv.port);
    await c.sendBytewise(GET('/x', 'X-A: 1\r\n'), 3);
    assert.equal((await c.readResponse()).body.toString(), 'ok');
    c.destroy();
  } finally {
    await srv.close();
  }
});

test('idle keep-alive connections are closed after the keep-alive timeout', async () => {
  const srv = await startApp({ handler, keepAliveTimeout: 200, timerInterval: 50 }, transport);
  try {
    const c = await RawClient.connect(srv.port);
    c.send(GET('/x'));
    assert.equal((await c.readResponse()).body.toString(), 'ok');
    assert.equal((await c.waitClose()).length, 0);
    assert.deepEqual(srv.app.timeouts, { header: 0, body: 0, idle: 1, send: 0, linger: 0 }, 'the keep-alive deadline closed it');
  } finally {
    await srv.close();
  }
});

test('the keep-alive clock starts when a response finishes, after a handler that held the loop', async () => {
  // keepAliveTimeout 1000 ms, a handler that blocks for 1500 ms: the next request, sent as soon as the response is
  // read, is served. (Reading the time once per run, the keep-alive clock started when the run began — before the
  // handler — and the connection was closed at once: idle 1, no second response.)
  const srv = await startApp({ handler, keepAliveTimeout: 1000, timerInterval: 20 }, transport);
  try {
    const c = await RawClient.connect(srv.port);
    c.send(GET('/block'));
    assert.equal((await c.readResponse()).body.toString(), 'blocked');
    c.send(GET('/x'));
    assert.equal((await c.readResponse()).body.toString(), 'ok');
    assert.equal(srv.app.timeouts.idle, 0);
    c.destroy();
  } finally {
    await srv.close();
  }
});

test('a stalled request body → 408 and close', async () => {
  const srv = await startApp({ handler, bodyTimeout: 300, timerInterval: 50 }, transport);
  try {
    const c = await RawClient.connect(srv.port);
    c.send('POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc');
    const r = await c.readResponse();
    assert.equal(r.status, 408);
    assert.equal(r.headers['connection'], 'close');
    await c.waitClose();
    assert.equal(srv.app.timeouts.body, 1, 'the body deadline fired');
  } finally {
    await srv.close();
  }
});

test('a body dripped one byte at a time is cut off by the whole-body deadline: 408, close, the handler\'s read fails', async () => {
  // bodyMinRate 0: the whole body within bodyTimeout. A drip of a byte every 50 ms would keep a per-byte (idle)
  // deadline from ever firing: the drip runs for up to 100 bytes (5 s), the deadline is 300 ms from the head.
  for (const bodyMinRate of [0, 500]) {
    outcome = deferred();
    const srv = await startApp({ handler, bodyTimeout: 300, bodyMinRate, timerInterval: 50 }, transport);
    try {
      const c = await RawClient.connect(srv.port);
      c.send('POST /outcome HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n');
      let sent = 0;
      for (; sent < 100 && !c.closed; sent++) {
        c.send('x');
        await delay(50);
      }
      assert.equal(c.closed, true, `bodyMinRate ${bodyMinRate}: the server closed the connection while the body was still dripping`);
      assert.ok(sent < 100);
      const r = await c.readResponse();
      assert.equal(r.status, 408);
      assert.equal(r.headers['connection'], 'close');
      assert.equal(await bounded(outcome.promise, 'the handler\'s body read'), 'failed 408');
      assert.equal(srv.app.timeouts.body, 1, 'the body deadline fired');
      await until(() => srv.app.connections === 0, 'the connection released');
    } finally {
      await srv.close();
    }
  }
});

test('a body that stalls after the server paused and resumed reading it → 408 (the deadline is rearmed on resume)', async () => {
  outcome = deferred();
  late = null;
  const srv = await startApp({ handler, bodyTimeout: 300, bodyBufferSize: 1024, timerInterval: 50 }, transport);
  try {
    const c = await RawClient.connect(srv.port);
    c.send(`POST /late HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n${'y'.repeat(8192)}`);
    // the handler holds off reading until the server has buffered more than bodyBufferSize: reading is paused then
    await until(() => late !== null && late.req._buffered > 1024, 'the server buffered the body past bodyBufferSize');
    late!.release.resolve();
    // the handler now reads everything buffered (reading resumes) and waits for more, which never comes
    const r = await c.readResponse();
    assert.equal(r.status, 408);
    assert.equal(await bounded(outcome.promise, 'the handler\'s body read'), 'failed 408');
    await c.waitClose();
  } finally {
    await srv.close();
  }
});

test('Expect: 100-continue read late by the handler: the body deadlines start with the 100 Continue', async () => {
  outcome = deferred();
  late = null;
  const srv = await startApp({ handler, bodyTimeout: 500, timerInterval: 50 }, transport);
  try {
    const c = await RawClient.connect(srv.port);
    c.send('POST /late HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n');
    await until(() => late !== null, 'the handler got the request');
    await delay(1000); // the handler is busy for twice bodyTimeout before it reads the body: the client is not to blame
    late!.release.resolve();
    assert.equal((await c.readResponse()).status, 100);
    await delay(150); // then the client takes less than a third of bodyTimeout to send it
    c.send('hello');
    const r = await c.readResponse();
    assert.equal(r.status, 200);
    assert.equal(await bounded(outcome.promise, 'the handler\'s body read'), 'read 5');
    c.destroy();
  } finally {
    await srv.close();
  }
});

test('a slow body within bodyMinRate is read whole (the deadline grows with the bytes received)', async () => {
  outcome = deferred();
  // 40 pieces of 400 bytes every 30 ms (about 13 kB/s, far above 1000 bytes/s): longer than bodyTimeout in all
  const srv = await startApp({ handler, bodyTimeout: 1000, bodyMinRate: 1000, timerInterval: 50 }, transport);
  try {
    const c = await RawClient.connect(srv.port);
    c.send('POST /outcome HTTP/1.1\r\nHost: a\r\nContent-Length: 16000\r\n\r\n');
    const start = Date.now();
    for (let i = 0; i < 40; i++) {
      await delay(30);
      c.send('z'.repeat(400));
    }
    assert.ok(Date.now() - start > 1000, 'the body took longer than bodyTimeout'); // else the test proves nothing
    assert.equal((await c.readResponse()).status, 200);
    assert.equal(await bounded(outcome.promise, 'the handler\'s body read'), 'read 16000');
    c.destroy();
  } finally {
    await srv.close();
  }
});

test('a client that never reads a large response is cut off (send deadline)', async () => {
  flooding = deferred();
  const srv = await startApp({ handler, sendTimeout: 300, timerInterval: 50 }, transport);
  try {
    const c = await RawClient.connect(srv.port);
    c.socket.pause();
    c.send(GET('/flood'));
    await bounded(flooding.promise, 'the flood handler started');
    assert.equal(srv.app.connections, 1, 'the connection is counted');
    assert.deepEqual(srv.app.timeouts, { header: 0, body: 0, idle: 0, send: 0, linger: 0 });
    // the peer reads nothing: output stays above the high-water mark until the send deadline destroys the connection
    await until(() => srv.app.connections === 0, 'the server dropped the connection');
    assert.deepEqual(srv.app.timeouts, { header: 0, body: 0, idle: 0, send: 1, linger: 0 }, 'the send deadline did it');
    // and the peer sees its connection end before the (256 MiB) response did
    c.socket.resume();
    await bounded(new Promise((r) => (c.closed ? r(null) : c.socket.once('close', r))), 'the client\'s close');
    assert.ok(c.pending.length < 4096 * 64 * 1024, `cut off after ${c.pending.length} bytes`);
  } finally {
    await srv.close();
  }
});

test('connection limit: beyond it, 503 and close; room again once a connection leaves', async () => {
  const srv = await startApp({ handler, maxConnections: 3 }, transport);
  try {
    const open: RawClient[] = [];
    for (let i = 0; i < 3; i++) {
      const c = await RawClient.connect(srv.port);
      c.send(GET('/x'));
      assert.equal((await c.readResponse()).status, 200); // registered by the server
      open.push(c);
    }
    const over = await RawClient.connect(srv.port);
    over.send(GET('/x'));
    const r = await over.readResponse();
    assert.equal(r.status, 503);
    assert.equal(r.headers['connection'], 'close');
    assert.equal(r.headers['retry-after'], '1');
    await over.waitClose();
    assert.equal(srv.app.connections, 3);
    open[0].destroy();
    await until(() => srv.app.connections < 3, 'the closed connection released');
    const again = await RawClient.connect(srv.port);
    again.send(GET('/x'));
    assert.equal((await again.readResponse()).status, 200);
    again.destroy();
    for (const c of open) c.destroy();
  } finally {
    await srv.close();
  }
});

test('maxRequestsPerConnection: the last allowed response says Connection: close', async () => {
  const srv = await startApp({ handler, maxRequestsPerConnection: 3 }, transport);
  try {
    const c = await RawClient.connect(srv.port);
    c.send(GET('/1') + GET('/2') + GET('/3') + GET('/4'));
    assert.equal((await c.readResponse()).headers['connection'], undefined);
    assert.equal((await c.readResponse()).headers['connection'], undefined);
    assert.equal((await c.readResponse()).headers['connection'], 'close');
    assert.equal((await c.waitClose()).length, 0);
  } finally {
    await srv.close();
  }
});

test('graceful shutdown: idle connections close, in-flight responses complete with Connection: close, new ones refused', async () => {
  const srv = await startApp({ handler }, transport);
  const idle = await RawClient.connect(srv.port);
  idle.send(GET('/x'));
  await idle.readResponse();
  const busy = await RawClient.connect(srv.port);
  held = { started: deferred(), release: deferred() };
  busy.send(GET('/held'));
  await bounded(held.started.promise, 'the request reached its handler');
  const closing = srv.app.shutdown(5000);
  assert.equal((await idle.waitClose()).length, 0);
  const late = await RawClient.connect(srv.port);
  late.send(GET('/x'));
  const lr = await late.readResponse();
  assert.equal(lr.status, 503);
  held.release.resolve(); // the in-flight response completes only now, well inside the shutdown
  const r = await busy.readResponse();
  assert.equal(r.status, 200);
  assert.equal(r.body.toString(), 'held done');
  assert.equal(r.headers['connection'], 'close');
  await busy.waitClose();
  await bounded(closing, 'app.shutdown');
  assert.equal(srv.app.connections, 0);
  await srv.close();
});

test('transport close (Session.shutdown): idle connections close, the in-flight response completes', async () => {
  const srv = await startApp({ handler }, transport);
  const idle = await RawClient.connect(srv.port);
  idle.send(GET('/x'));
  await idle.readResponse();
  const busy = await RawClient.connect(srv.port);
  held = { started: deferred(), release: deferred() };
  busy.send(GET('/held'));
  await bounded(held.started.promise, 'the request reached its handler');
  const stopping = srv.stop(5000);
  assert.equal((await idle.waitClose()).length, 0);
  held.release.resolve();
  const r = await busy.readResponse();
  assert.equal(r.body.toString(), 'held done');
  assert.equal(r.headers['connection'], 'close');
  await busy.waitClose();
  await bounded(stopping, 'transport close');
  await until(() => srv.app.connections === 0, 'every connection released');
  await srv.close();
});
});
