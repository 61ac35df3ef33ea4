// Deadlines and limits: slowloris (a deadline for the whole header block), idle keep-alive, stalled bodies, stalled
// readers, the connection limit, the per-connection request limit, and graceful shutdown. The deadlines are small
// configured values; tests assert behaviour (closed, status), never durations.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Handler } from '../apps/http/server.js';
import { bounded, delay, RawClient, skipTransport, startApp, TRANSPORTS } from './http-helpers.test.js';

const handler: Handler = async (req, res) => {
  if (req.path === '/slow') {
    await delay(Number(req.query.get('ms') ?? 100));
    return res.send('slow done');
  }
  if (req.path === '/echo') return res.send(await req.body());
  if (req.path === '/flood') {
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
  } finally {
    await srv.close();
  }
});

test('slowloris: many connections sending nothing are all closed', async () => {
  const srv = await startApp({ handler, headerTimeout: 300, timerInterval: 50 }, transport);
  try {
    const cs = await Promise.all(Array.from({ length: 20 }, () => RawClient.connect(srv.port)));
    for (const c of cs) assert.equal((await c.waitClose()).length, 0, 'closed silently: nothing was requested');
    for (let i = 0; i < 200 && srv.app.connections > 0; i++) await delay(10);
    assert.equal(srv.app.connections, 0);
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
  } finally {
    await srv.close();
  }
});

test('a client that never reads a large response is cut off (send deadline)', async () => {
  const srv = await startApp({ handler, sendTimeout: 300, timerInterval: 50 }, transport);
  try {
    const c = await RawClient.connect(srv.port);
    c.socket.pause();
    c.send(GET('/flood'));
    for (let i = 0; i < 300 && !c.closed; i++) {
      await delay(20);
      if (srv.app.connections === 0) break;
    }
    assert.equal(srv.app.connections, 0, 'the server dropped the connection');
    c.destroy();
  } finally {
    await srv.close();
  }
});

test('connection limit: beyond it, 503 and close; room again once a connection leaves', async () => {
  const srv = await startApp({ handler, maxConnections: 3 }, transport);
  try {
    const held: RawClient[] = [];
    for (let i = 0; i < 3; i++) {
      const c = await RawClient.connect(srv.port);
      c.send(GET('/x'));
      assert.equal((await c.readResponse()).status, 200); // registered by the server
      held.push(c);
    }
    const over = await RawClient.connect(srv.port);
    over.send(GET('/x'));
    const r = await over.readResponse();
    assert.equal(r.status, 503);
    assert.equal(r.headers['connection'], 'close');
    assert.equal(r.headers['retry-after'], '1');
    await over.waitClose();
    assert.equal(srv.app.connections, 3);
    held[0].destroy();
    let ok = false;
    for (let i = 0; i < 100 && !ok; i++) {
      await delay(10);
      if (srv.app.connections < 3) ok = true;
    }
    assert.ok(ok);
    const again = await RawClient.connect(srv.port);
    again.send(GET('/x'));
    assert.equal((await again.readResponse()).status, 200);
    again.destroy();
    for (const c of held) c.destroy();
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
  busy.send(GET('/slow?ms=300'));
  await delay(50);
  const closing = srv.app.shutdown(5000);
  assert.equal((await idle.waitClose()).length, 0);
  const late = await RawClient.connect(srv.port);
  late.send(GET('/x'));
  const lr = await late.readResponse();
  assert.equal(lr.status, 503);
  const r = await busy.readResponse();
  assert.equal(r.status, 200);
  assert.equal(r.body.toString(), 'slow done');
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
  busy.send(GET('/slow?ms=300'));
  await delay(50);
  const stopping = srv.stop(5000);
  assert.equal((await idle.waitClose()).length, 0);
  const r = await busy.readResponse();
  assert.equal(r.body.toString(), 'slow done');
  assert.equal(r.headers['connection'], 'close');
  await busy.waitClose();
  await bounded(stopping, 'transport close');
  for (let i = 0; i < 200 && srv.app.connections > 0; i++) await delay(10);
  assert.equal(srv.app.connections, 0);
  await srv.close();
});
});
