// The legacy-server benchmark (bench/compat.ts) checks what it measures: these tests give its three verifiers wrong
// answers and assert they are caught — ws-load (bench/c/ws-load.c) a flipped byte of an echoed message, a wrong
// handshake and a frame nobody asked for; the idle client (bench/compat/ws-client.ts) a wrong echo and a wrong
// handshake; the wrk script a wrong body and a wrong status. Then the harness itself, --quick on three points: every
// run completes without an error, and the megapipe side's connections are lwsockets (its descriptors do not grow with
// them) while the node:net side's are descriptors. Nothing here depends on speed.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as http from 'node:http';
import * as net from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { once } from 'node:events';
import { WebSocketServer } from 'ws';
import { ensureCPrograms } from '../bench/lib/paths.js';
import { runLoad } from '../bench/lib/proc.js';
import { runWrk } from '../bench/http/tools.js';
import { writeWrkScripts, type CompatRun } from '../bench/compat/runs.js';
import type { ClientCmd, ClientReply } from '../bench/compat/ws-client.js';
import { uringSkip, withTimeout } from './helpers.js';

const ALL_CPUS = `0-${cpus().length - 1}`;
const WS_CLIENT = fileURLToPath(new URL('../bench/compat/ws-client.js', import.meta.url));
const COMPAT = fileURLToPath(new URL('../bench/compat.js', import.meta.url));
const haveWrk = spawnSync('sh', ['-c', 'command -v wrk'], { stdio: 'ignore' }).status === 0;
const tmp = mkdtempSync(join(tmpdir(), 'mp-bench-compat-test-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** A ws echo server that answers every message with `mangle(message)`. */
async function wsServer(mangle: (b: Buffer) => Buffer): Promise<{ port: number; close(): Promise<void> }> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await once(wss, 'listening');
  wss.on('connection', (ws) => ws.on('message', (d: Buffer) => ws.send(mangle(Buffer.from(d)), { binary: true })));
  return { port: (wss.address() as net.AddressInfo).port, close: () => new Promise((r) => { for (const c of wss.clients) c.terminate(); wss.close(() => r()); }) };
}

/** A server that answers the handshake with a 101 carrying a wrong Sec-WebSocket-Accept, then echoes nothing. */
async function wrongAcceptServer(): Promise<{ port: number; close(): Promise<void> }> {
  const socks = new Set<net.Socket>();
  const s = net.createServer((c) => {
    socks.add(c);
    c.once('data', () => c.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      `Sec-WebSocket-Accept: ${createHash('sha1').update('wrong').digest('base64')}\r\n\r\n`));
    c.on('error', () => {});
  });
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  return { port: (s.address() as net.AddressInfo).port, close: () => new Promise((r) => { for (const c of socks) c.destroy(); s.close(() => r()); }) };
}

const flipOne = (every: number) => { let n = 0; return (b: Buffer) => { if (++n % every === 0) b[b.length >> 1] ^= 0x20; return b; }; };

function wsLoad(port: number) {
  return runLoad({ host: '127.0.0.1', port, conns: 8, txns: 0, size: 64, durationS: 1, warmupS: 0, pipeline: 4, cpu: ALL_CPUS, program: 'ws-load' });
}

describe('ws-load (bench/c/ws-load.c) checks every byte', () => {
  ensureCPrograms(['ws-load']);

  it('a correct echo server: messages counted, no mismatch, exit 0', async () => {
    const s = await wsServer((b) => b);
    try {
      const r = await withTimeout(wsLoad(s.port), 30_000, 'ws-load');
      assert.equal(r.exitCode, 0, r.stderrTail);
      assert.equal(r.result?.mismatches, 0);
      assert.equal(r.result?.errors, 0);
      assert.ok((r.result?.txns ?? 0) > 0);
    } finally { await s.close(); }
  });

  it('one byte flipped in every 1000th echo: a mismatch, exit 1', async () => {
    const s = await wsServer(flipOne(1000));
    try {
      const r = await withTimeout(wsLoad(s.port), 30_000, 'ws-load');
      assert.equal(r.exitCode, 1);
      assert.ok((r.result?.mismatches ?? 0) > 0);
      assert.match(r.stderrTail, /MISMATCH .* payload at byte/);
    } finally { await s.close(); }
  });

  it('a message echoed as text instead of binary (another frame header): a mismatch', async () => {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await once(wss, 'listening');
    wss.on('connection', (ws) => ws.on('message', (d: Buffer) => ws.send(Buffer.from(d), { binary: false })));
    try {
      const r = await withTimeout(wsLoad((wss.address() as net.AddressInfo).port), 30_000, 'ws-load');
      assert.equal(r.exitCode, 1);
      assert.match(r.stderrTail, /MISMATCH .* frame header at byte 0: expected 0x82 got 0x81/);
    } finally { for (const c of wss.clients) c.terminate(); wss.close(); }
  });

  it('a wrong Sec-WebSocket-Accept: the handshake is refused, exit 1', async () => {
    const s = await wrongAcceptServer();
    try {
      const r = await withTimeout(wsLoad(s.port), 30_000, 'ws-load');
      assert.notEqual(r.exitCode, 0);
      assert.ok((r.result?.mismatches ?? 0) > 0);
      assert.match(r.stderrTail, /handshake refused or malformed/);
    } finally { await s.close(); }
  });
});

describe('the idle client (bench/compat/ws-client.ts) checks handshakes and echoes', () => {
  async function withClient<T>(f: (ask: (c: ClientCmd) => Promise<ClientReply>) => Promise<T>): Promise<T> {
    const child = spawn(process.execPath, [WS_CLIENT, '--client'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const ask = (c: ClientCmd) => new Promise<ClientReply>((r) => { child.once('message', (m: ClientReply) => r(m)); child.send(c); });
    try { return await f(ask); } finally { child.disconnect(); await once(child, 'exit'); }
  }
  const open = (port: number): ClientCmd => ({ cmd: 'open', host: '127.0.0.1', port, total: 50, srcFirst: 2, srcIps: 2, concurrency: 16, timeoutMs: 10_000 });

  it('a correct server: 50 connections open, every echo right', async () => {
    const s = await wsServer((b) => b);
    try {
      await withClient(async (ask) => {
        const o = await ask(open(s.port));
        assert.equal(o.ok, true, o.message);
        assert.equal(o.open, 50);
        const e = await ask({ cmd: 'echo', concurrency: 16, timeoutMs: 10_000 });
        assert.equal(e.ok, true, e.message);
        assert.equal(e.done, 50);
        await ask({ cmd: 'close', timeoutMs: 5000 });
      });
    } finally { await s.close(); }
  });

  it('every 7th echo with a flipped byte: not ok, each counted, one shown', async () => {
    const s = await wsServer(flipOne(7));
    try {
      await withClient(async (ask) => {
        assert.equal((await ask(open(s.port))).ok, true);
        const e = await ask({ cmd: 'echo', concurrency: 16, timeoutMs: 10_000 });
        assert.equal(e.ok, false);
        assert.equal(e.mismatches, 7);
        assert.match(e.message ?? '', /7 mismatches.*got 8210.*, expected 8210/);
        await ask({ cmd: 'close', timeoutMs: 5000 });
      });
    } finally { await s.close(); }
  });

  it('a wrong Sec-WebSocket-Accept: the connections do not count as open', async () => {
    const s = await wrongAcceptServer();
    try {
      await withClient(async (ask) => {
        const o = await ask(open(s.port));
        assert.equal(o.ok, false);
        assert.equal(o.open, 0);
        assert.ok(o.mismatches > 0);
        assert.match(o.message ?? '', /wrong Sec-WebSocket-Accept/i);
        await ask({ cmd: 'close', timeoutMs: 5000 });
      });
    } finally { await s.close(); }
  });
});

describe('the wrk script of bench/compat.ts checks every response', { skip: haveWrk ? false : 'wrk is not installed' }, () => {
  const scripts = writeWrkScripts(tmp, 'hello world');
  async function against(handler: http.RequestListener) {
    const s = http.createServer(handler);
    s.listen(0, '127.0.0.1');
    await once(s, 'listening');
    try {
      return await runWrk({ url: `http://127.0.0.1:${(s.address() as net.AddressInfo).port}/`, conns: 4, threads: 1, durationS: 1, script: scripts.keepalive, cpu: ALL_CPUS });
    } finally { s.closeAllConnections(); s.close(); }
  }

  it('right answers: none counted bad', async () => {
    const r = await against((_q, res) => res.end('hello world'));
    assert.ok(r.requests > 0);
    assert.equal(r.json?.bad, 0);
  });

  it('one body in 100 wrong by one byte: counted', async () => {
    let n = 0;
    const r = await against((_q, res) => res.end(++n % 100 === 0 ? 'hello worle' : 'hello world'));
    assert.ok(r.requests > 100);
    assert.ok((r.json?.bad ?? 0) > 0 && r.json!.bad! <= Math.ceil(r.requests / 100) + 4, `bad ${r.json?.bad} of ${r.requests}`);
  });

  it('a 201 with the right body: counted bad (the check wants 200)', async () => {
    const r = await against((_q, res) => { res.statusCode = 201; res.end('hello world'); });
    assert.equal(r.json?.bad, r.requests);
  });
});

describe('bench:compat --quick', { skip: uringSkip || (haveWrk ? false : 'wrk is not installed') }, () => {
  it('runs without an error; megapipe\'s connections are lwsockets, node:net\'s descriptors', { timeout: 240_000 }, async () => {
    const out = join(tmp, 'quick');
    // disturbance limits lifted: a busy machine makes runs noisy, never wrong; this checks behaviour only
    const child = spawn(process.execPath, [COMPAT, '--quick', '--force', '--foreign-max', '64', '--steal-max', '1',
      '--scenarios', 'http-keepalive,http-close,ws-echo,ws-idle', '--idle-conns', '500', '--out', out], { stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    child.stdout.on('data', (d: Buffer) => { text += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { text += d.toString(); });
    const [code] = await withTimeout(once(child, 'exit'), 220_000, 'bench:compat --quick') as [number];
    assert.equal(code, 0, text);
    const { runs } = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as { runs: CompatRun[] };
    assert.equal(runs.length, 8);
    for (const r of runs) {
      // a run disturbed by other processes ('foreign', 'steal') is about the machine, not the behaviour: only a run
      // that failed (errors, mismatches, a non-zero exit) fails the test
      assert.ok(r.state !== 'failed', `${r.point} ${r.server}: ${r.problems.join('; ')}`);
      assert.equal(r.errors, 0);
      assert.ok((r.units ?? 0) > 0);
    }
    const fds = (point: string, server: string) => runs.find((r) => r.point === point && r.server === server)!;
    assert.ok(fds('http-keepalive', 'megapipe').serverFds! < 40, 'megapipe: 64 connections, no descriptor each');
    assert.ok(fds('http-keepalive', 'node:net').serverFds! >= 64, 'node:net: a descriptor per connection');
    assert.ok(fds('ws-idle', 'megapipe').mem!.fds < 40);
    assert.ok(fds('ws-idle', 'node:net').mem!.fds >= 500);
    assert.match(readFileSync(join(out, 'summary.md'), 'utf8'), /## Against the goals/);
  });
});

// --megapipe-base DIR: a third server runs the same application on another checkout's build. Here the base is this
// checkout itself (a built checkout is all the flag needs): its runs must be megapipe's (lwsockets), reported apart.
describe('bench:compat --megapipe-base', { skip: uringSkip || (haveWrk ? false : 'wrk is not installed') }, () => {
  const ROOT = fileURLToPath(new URL('../../', import.meta.url));

  it('runs megapipe@base as a third server whose connections are lwsockets, and reports it against this build', { timeout: 120_000 }, async () => {
    const out = join(tmp, 'base');
    const child = spawn(process.execPath, [COMPAT, '--quick', '--force', '--foreign-max', '64', '--steal-max', '1',
      '--scenarios', 'http-keepalive', '--megapipe-base', ROOT, '--out', out], { stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    child.stdout.on('data', (d: Buffer) => { text += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { text += d.toString(); });
    const [code] = await withTimeout(once(child, 'exit'), 100_000, 'bench:compat --megapipe-base') as [number];
    assert.equal(code, 0, text);
    const { runs, megapipeBase } = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as { runs: CompatRun[]; megapipeBase: { dir: string } };
    assert.deepEqual(runs.map((r) => r.server).sort(), ['megapipe', 'megapipe@base', 'node:net']);
    const base = runs.find((r) => r.server === 'megapipe@base')!;
    assert.ok(base.state !== 'failed', base.problems.join('; '));
    assert.equal(base.errors, 0);
    assert.ok(base.serverFds! < 40, 'megapipe@base: 64 connections, no descriptor each (its register took effect)');
    assert.ok(base.serverArgv.some((a) => a.startsWith('file://') && a.endsWith('/dist/src/register.js')), base.serverArgv.join(' '));
    assert.equal(megapipeBase.dir, ROOT.replace(/\/$/, ''));
    assert.match(readFileSync(join(out, 'summary.md'), 'utf8'), /## This build against megapipe@base/);
  });

  it('refuses a directory without a build', () => {
    const r = spawnSync(process.execPath, [COMPAT, '--megapipe-base', join(tmp, 'nothing-here')], { encoding: 'utf8' });
    assert.equal(r.status, 64);
    assert.match(r.stderr, /--megapipe-base: .*dist\/src\/register\.js does not exist/);
  });
});
