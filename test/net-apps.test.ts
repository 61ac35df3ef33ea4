// Unmodified node:net applications on megapipe, each driven by its own ecosystem's client: node:http through
// fetch and http.Agent (keep-alive, chunked responses, a 10 MiB upload verified), Express 5 and Fastify 5 (routing,
// JSON bodies, streaming), ws (echo, 1,000 clients, broadcast, close codes), https with a certificate made here.
// Three ways: in this process through megapipe/net's attach(); in a child under `--import megapipe/register`, whose
// connections must be lwsockets (its fd table does not grow with them); the same child with MEGAPIPE_REGISTER=0,
// the control that shows the fd check would see node:net's sockets.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import * as https from 'node:https';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { once } from 'node:events';
import { WebSocket } from 'ws';
import * as mnet from '../src/net/index.js';
import { build, chunkedBody } from './fixtures/net-apps.js';
import { prng, randomBytes, runPool, uringSkip, withTimeout } from './helpers.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const fixture = fileURLToPath(new URL('./fixtures/net-apps.js', import.meta.url));
const T = 60_000;

interface Ports { http: number; express: number; fastify: number; ws: number; https: number }

// a certificate for 127.0.0.1 made with openssl, or why https is skipped
const tlsDir = mkdtempSync(join(tmpdir(), 'megapipe-net-apps-'));
const openssl = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
  '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', join(tlsDir, 'key.pem'), '-out', join(tlsDir, 'cert.pem')], { encoding: 'utf8' });
const tlsSkip: string | false = openssl.status === 0 ? false : `openssl could not make a certificate: ${openssl.error?.message ?? openssl.stderr}`;
after(() => rmSync(tlsDir, { recursive: true, force: true }));
const tls = tlsSkip === false ? { key: readFileSync(join(tlsDir, 'key.pem'), 'utf8'), cert: readFileSync(join(tlsDir, 'cert.pem'), 'utf8') } : undefined;

function get(port: number, path: string, agent?: http.Agent): Promise<{ body: Buffer; reused: boolean; res: http.IncomingMessage }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => resolve({ body: Buffer.concat(parts), reused: req.reusedSocket, res }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

async function exerciseHttp(port: number): Promise<void> {
  assert.equal(await (await fetch(`http://127.0.0.1:${port}/hello`)).text(), 'hello');
  // keep-alive: one socket, reused by every later request
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  for (let i = 0; i < 10; i++) {
    const r = await get(port, '/hello', agent);
    assert.equal(r.body.toString(), 'hello');
    assert.equal(r.reused, i > 0, `request ${i} reused the connection`);
  }
  agent.destroy();
  const chunked = await fetch(`http://127.0.0.1:${port}/chunked`);
  assert.equal(chunked.headers.get('transfer-encoding'), 'chunked');
  assert.ok(Buffer.from(await chunked.arrayBuffer()).equals(chunkedBody()));
  const upload = randomBytes(prng(5), 10 * 1024 * 1024);
  const r = await fetch(`http://127.0.0.1:${port}/upload`, { method: 'POST', body: upload });
  assert.deepEqual(await r.json(), { bytes: upload.length, sha256: createHash('sha256').update(upload).digest('hex') });
}

async function exerciseExpress(port: number): Promise<void> {
  const u = await (await fetch(`http://127.0.0.1:${port}/users/42`)).json() as { id: string; ip: string };
  assert.equal(u.id, '42');
  assert.match(u.ip, /^(::ffff:)?127\.0\.0\.1$/);
  const e = await fetch(`http://127.0.0.1:${port}/echo`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ a: [1, 2, 3], s: 'é' }) });
  assert.deepEqual(await e.json(), { got: { a: [1, 2, 3], s: 'é' } });
  const s = await (await fetch(`http://127.0.0.1:${port}/stream`)).text();
  assert.equal(s, Array.from({ length: 50 }, (_, i) => `line ${i}\n`).join(''));
}

async function exerciseFastify(port: number): Promise<void> {
  assert.deepEqual(await (await fetch(`http://127.0.0.1:${port}/json`)).json(), { hello: 'fastify' });
  const r = await fetch(`http://127.0.0.1:${port}/sum`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ a: 40, b: 2 }) });
  assert.deepEqual(await r.json(), { sum: 42 });
  assert.equal(await (await fetch(`http://127.0.0.1:${port}/stream`)).text(), Array.from({ length: 50 }, (_, i) => `part ${i}\n`).join(''));
}

function openWs(port: number): Promise<WebSocket> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
  return new Promise((resolve, reject) => { ws.once('open', () => resolve(ws)); ws.once('error', reject); });
}

function nextMessage(ws: WebSocket): Promise<{ data: Buffer; binary: boolean }> {
  return new Promise((resolve) => ws.once('message', (data: Buffer, binary: boolean) => resolve({ data, binary })));
}

async function exerciseWs(port: number): Promise<void> {
  const clients: WebSocket[] = new Array(1000);
  // 1,000 clients, 100 connecting at a time, each echoing a text and a binary message verified byte for byte
  await runPool(1000, 100, async (i) => {
    const ws = await openWs(port);
    clients[i] = ws;
    const text = nextMessage(ws);
    ws.send(`hello ${i}`);
    const t = await text;
    assert.equal(t.binary, false);
    assert.equal(t.data.toString(), `hello ${i}`);
    const bytes = randomBytes(prng(i), 1 + (i * 37) % 5000);
    const bin = nextMessage(ws);
    ws.send(bytes);
    const b = await bin;
    assert.equal(b.binary, true);
    assert.ok(b.data.equals(bytes));
  });
  // broadcast: one message reaches all 1,000
  const all = clients.map((ws) => nextMessage(ws));
  clients[0]!.send('broadcast:everyone');
  for (const m of await Promise.all(all)) assert.equal(m.data.toString(), 'broadcast:everyone');
  // close codes: the server's (4001 'bye') and the client's (1000, echoed)
  const [code, reason] = await new Promise<[number, Buffer]>((resolve) => { clients[1]!.once('close', (c: number, r: Buffer) => resolve([c, r])); clients[1]!.send('close:4001'); });
  assert.equal(code, 4001);
  assert.equal(reason.toString(), 'bye');
  const closed = clients.slice(2).map((ws) => new Promise<number>((resolve) => ws.once('close', (c: number) => resolve(c))));
  for (const ws of clients.slice(2)) ws.close(1000, 'done');
  for (const c of await Promise.all(closed)) assert.equal(c, 1000);
  clients[0]!.close();
  await once(clients[0]!, 'close');
}

async function exerciseHttps(port: number): Promise<void> {
  const body = await new Promise<string>((resolve, reject) => {
    https.get({ host: '127.0.0.1', port, path: '/tls', ca: tls!.cert }, (res) => {
      let s = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => { s += d; });
      res.on('end', () => resolve(s));
    }).on('error', reject);
  });
  assert.equal(body, 'secure /tls');
}

/** Descriptors the app's process has open with `n` idle keep-alive connections to its http server, minus with none. */
async function fdGrowth(port: number, n: number): Promise<number> {
  const before = Number((await get(port, '/fds')).body.toString());
  const agent = new http.Agent({ keepAlive: true, maxSockets: n });
  await Promise.all(Array.from({ length: n }, () => get(port, '/hello', agent)));
  const sockets = Object.values(agent.freeSockets).flat().length;
  assert.equal(sockets, n, 'idle keep-alive connections');
  const withConns = Number((await get(port, '/fds')).body.toString());
  agent.destroy();
  return withConns - before;
}

function exerciseAll(ports: () => Ports): void {
  it('node:http: fetch, keep-alive, chunked, a 10 MiB upload verified', () => withTimeout(exerciseHttp(ports().http), T, 'http'));
  it('Express 5: routing, JSON bodies, streaming', () => withTimeout(exerciseExpress(ports().express), T, 'express'));
  it('Fastify 5: routing, JSON bodies, streaming', () => withTimeout(exerciseFastify(ports().fastify), T, 'fastify'));
  it('ws: 1,000 clients echo text and binary, a broadcast, close codes', () => withTimeout(exerciseWs(ports().ws), 120_000, 'ws'));
  it('https with a certificate made in the test', { skip: tlsSkip }, () => withTimeout(exerciseHttps(ports().https), T, 'https'));
}

describe('net apps: in this process through megapipe/net attach()', { skip: uringSkip }, () => {
  const apps = build(tls);
  const sockets: unknown[] = [];
  let ports: Ports;
  before(async () => {
    await apps.fastify.ready();
    const servers = { http: apps.http, express: apps.express, ws: apps.ws, fastify: apps.fastify.server, https: apps.https };
    const p: Record<string, number> = { https: 0 };
    for (const [name, s] of Object.entries(servers)) {
      if (s === undefined) continue;
      s.on('connection', (socket: unknown) => sockets.push(socket));
      mnet.attach(s, { host: '127.0.0.1', port: 0 });
      await once(s, 'listening');
      p[name] = (s.address() as { port: number }).port;
    }
    ports = p as unknown as Ports;
  });
  after(async () => {
    await apps.fastify.close();
    for (const s of [apps.http, apps.express, apps.ws, apps.https, apps.fastify.server]) { if (s?.listening) { s.closeAllConnections(); s.close(); } }
  });
  exerciseAll(() => ports);
  it('every connection the servers saw was a megapipe lwsocket', () => {
    assert.ok(sockets.length > 1000, `${sockets.length} connections`);
    for (const s of sockets) {
      // https wraps its transport in a TLSSocket: the megapipe Socket is underneath
      const raw = (s instanceof mnet.Socket ? s : (s as { _parent?: unknown })._parent) as mnet.Socket | undefined;
      assert.ok(raw instanceof mnet.Socket, 'a megapipe Socket');
    }
  });
});

function child(register: boolean): { ports: () => Ports; start(): Promise<void>; stop(): Promise<void> } {
  let proc: ChildProcess | undefined;
  let ports: Ports | undefined;
  return {
    ports: () => ports!,
    async start() {
      const env: NodeJS.ProcessEnv = { ...process.env, MEGAPIPE_REGISTER: register ? '1' : '0' };
      if (tls) { env.NET_APPS_KEY = join(tlsDir, 'key.pem'); env.NET_APPS_CERT = join(tlsDir, 'cert.pem'); }
      proc = spawn(process.execPath, ['--import', 'megapipe/register', fixture], { cwd: root, env, stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      proc.stdout!.setEncoding('utf8');
      ports = await withTimeout(new Promise<Ports>((resolve, reject) => {
        proc!.stdout!.on('data', (d: string) => { out += d; const nl = out.indexOf('\n'); if (nl >= 0) resolve(JSON.parse(out.slice(0, nl)) as Ports); });
        proc!.once('exit', (code) => reject(new Error(`the app exited (${code}) before listening`)));
      }), T, 'the app listening');
    },
    async stop() {
      if (proc && proc.exitCode === null) { proc.kill('SIGTERM'); await once(proc, 'exit'); }
    },
  };
}

describe('net apps: unmodified, under node --import megapipe/register', { skip: uringSkip }, () => {
  const app = child(true);
  before(() => app.start());
  after(() => app.stop());
  exerciseAll(app.ports);
  it('its connections are lwsockets: 200 open connections add (almost) nothing to its fd table', async () => {
    const grown = await withTimeout(fdGrowth(app.ports().http, 200), T, 'fd count');
    assert.ok(grown < 20, `the fd table grew by ${grown} with 200 connections`);
  });
});

describe('net apps: the control, MEGAPIPE_REGISTER=0 (node:net)', () => {
  const app = child(false);
  before(() => app.start());
  after(() => app.stop());
  it('node:net\'s connections are in the fd table: 200 connections add 200 descriptors', async () => {
    const grown = await withTimeout(fdGrowth(app.ports().http, 200), T, 'fd count');
    assert.ok(grown >= 200, `the fd table grew by ${grown} with 200 connections`);
  });
  it('node:http still works with the hook off', () => withTimeout(exerciseHttp(app.ports().http), T, 'http'));
});
