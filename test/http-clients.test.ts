// Real clients against megapipe-http (started with startServer, as the CLI does): Node's fetch (undici) and curl.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { startServer, type RunningServer } from '../apps/http/cli.js';
import { prng, randomBytes } from './helpers.js';

const CURL = '/usr/bin/curl';
const haveCurl = fs.existsSync(CURL);

let tmp: string;
let root: string;
let server: RunningServer;
let base: string;

/** `n` seeded pseudo-random bytes. */
const rnd = (n: number, seed: number): Buffer => randomBytes(prng(seed), n);
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const BIG = rnd(1_500_000, 42);
const SMALL = 'small file\n';

const HANDLER = `
import { createHash } from 'node:crypto';
export default async function handler(req, res) {
  if (req.path === '/api/echo') {
    const body = await req.body();
    res.setHeader('X-Len', body.length);
    res.setHeader('X-Sha', createHash('sha256').update(body).digest('hex'));
    res.setHeader('X-Chunked', String(req.contentLength < 0));
    return res.send(body);
  }
  if (req.path === '/api/json') return res.json({ method: req.method, q: Object.fromEntries(req.query), ua: req.headers.get('user-agent') ?? null });
  if (req.path === '/api/stream') {
    return res.stream((async function* () {
      for (let i = 0; i < 50; i++) { yield 'line ' + i + '\\n'; if (i % 10 === 0) await new Promise((r) => setTimeout(r, 2)); }
    })());
  }
}
`;

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'megapipe-http-clients-'));
  root = path.join(tmp, 'www');
  fs.mkdirSync(root);
  fs.writeFileSync(path.join(root, 'small.txt'), SMALL);
  fs.writeFileSync(path.join(root, 'big.bin'), BIG);
  fs.writeFileSync(path.join(root, 'index.html'), '<!doctype html><p>hi</p>');
  fs.writeFileSync(path.join(tmp, 'handler.mjs'), HANDLER);
  server = await startServer({
    root,
    handlerModule: path.join(tmp, 'handler.mjs'),
    port: 0,
    options: { maxBodySize: 8 * 1024 * 1024 },
  });
  base = `http://127.0.0.1:${server.port}`;
});

after(async () => {
  await server.close(1000);
  fs.rmSync(tmp, { recursive: true, force: true });
});

// ---- fetch ----

test('fetch: files, index, JSON API, 404', async () => {
  const s = await fetch(`${base}/small.txt`);
  assert.equal(s.status, 200);
  assert.equal(s.headers.get('content-type'), 'text/plain; charset=utf-8');
  assert.equal(await s.text(), SMALL);
  const b = await fetch(`${base}/big.bin`);
  assert.equal(sha(new Uint8Array(await b.arrayBuffer())), sha(BIG));
  const i = await fetch(`${base}/`);
  assert.equal(await i.text(), '<!doctype html><p>hi</p>');
  const j = await fetch(`${base}/api/json?a=1&b=two`, { method: 'DELETE' });
  assert.deepEqual(await j.json(), { method: 'DELETE', q: { a: '1', b: 'two' }, ua: 'node' });
  const n = await fetch(`${base}/nothing-here`);
  assert.equal(n.status, 404);
  await n.arrayBuffer();
});

test('fetch: conditional request and range', async () => {
  const first = await fetch(`${base}/big.bin`, { method: 'HEAD' });
  const etag = first.headers.get('etag')!;
  assert.equal(first.headers.get('content-length'), String(BIG.length));
  const c = await fetch(`${base}/big.bin`, { headers: { 'if-none-match': etag } });
  assert.equal(c.status, 304);
  const r = await fetch(`${base}/big.bin`, { headers: { range: 'bytes=1000-1999' } });
  assert.equal(r.status, 206);
  assert.equal(r.headers.get('content-range'), `bytes 1000-1999/${BIG.length}`);
  assert.ok(Buffer.from(await r.arrayBuffer()).equals(BIG.subarray(1000, 2000)));
});

test('fetch: uploads (fixed length and streamed chunked) echoed intact; streamed response', async () => {
  const up = await fetch(`${base}/api/echo`, { method: 'POST', body: BIG });
  assert.equal(up.headers.get('x-len'), String(BIG.length));
  assert.equal(up.headers.get('x-sha'), sha(BIG));
  assert.equal(up.headers.get('x-chunked'), 'false');
  assert.equal(sha(new Uint8Array(await up.arrayBuffer())), sha(BIG));
  const parts = [BIG.subarray(0, 100_000), BIG.subarray(100_000, 900_000), BIG.subarray(900_000)];
  const stream = new ReadableStream<Uint8Array>({
    start(ctrl) {
      for (const p of parts) ctrl.enqueue(new Uint8Array(p));
      ctrl.close();
    },
  });
  const ch = await fetch(`${base}/api/echo`, { method: 'PUT', body: stream, duplex: 'half' } as RequestInit);
  assert.equal(ch.headers.get('x-chunked'), 'true');
  assert.equal(ch.headers.get('x-sha'), sha(BIG));
  assert.equal(sha(new Uint8Array(await ch.arrayBuffer())), sha(BIG));
  const s = await fetch(`${base}/api/stream`);
  const expected = Array.from({ length: 50 }, (_, i) => `line ${i}\n`).join('');
  assert.equal(await s.text(), expected);
});

test('fetch: many concurrent requests over keep-alive connections', async () => {
  const rs = await Promise.all(Array.from({ length: 40 }, (_, i) => fetch(`${base}/api/json?i=${i}`).then((r) => r.json())));
  rs.forEach((r, i) => assert.deepEqual((r as { q: unknown }).q, { i: String(i) }));
});

// ---- curl ----

function curl(args: string[], input?: Buffer): Promise<{ stdout: Buffer; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = execFile(CURL, ['-sS', '--max-time', '20', ...args], { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`curl ${args.join(' ')}: ${err.message} ${stderr.toString()}`));
      else resolve({ stdout, stderr: stderr.toString() });
    });
    if (input) p.stdin!.end(input);
  });
}

function headersOf(dump: string): Record<string, string>[] {
  // curl -D - output: one block per response (interim ones included)
  return dump.split('\r\n\r\n').filter((b) => b.startsWith('HTTP/')).map((b) => {
    const [status, ...lines] = b.split('\r\n');
    const h: Record<string, string> = { ':status': status.split(' ')[1] };
    for (const l of lines) {
      const c = l.indexOf(':');
      h[l.slice(0, c).toLowerCase()] = l.slice(c + 1).trim();
    }
    return h;
  });
}

test('curl: download, HEAD, range, conditional', { skip: !haveCurl && 'curl not installed' }, async () => {
  const out = path.join(tmp, 'curl-big.bin');
  const d = await curl(['-D', '-', '-o', out, `${base}/big.bin`]);
  assert.equal(headersOf(d.stdout.toString('latin1'))[0][':status'], '200');
  assert.equal(sha(fs.readFileSync(out)), sha(BIG));
  const h = headersOf((await curl(['-I', `${base}/big.bin`])).stdout.toString('latin1'))[0];
  assert.equal(h['content-length'], String(BIG.length));
  const r = await curl(['-r', '10-19', `${base}/big.bin`]);
  assert.ok(r.stdout.equals(BIG.subarray(10, 20)));
  const c = await curl(['-D', '-', '-o', '/dev/null', '-H', `If-None-Match: ${h['etag']}`, `${base}/big.bin`]);
  assert.equal(headersOf(c.stdout.toString('latin1'))[0][':status'], '304');
  // -z: If-Modified-Since from a date
  const z = await curl(['-D', '-', '-o', '/dev/null', '-z', h['last-modified'], `${base}/big.bin`]);
  assert.equal(headersOf(z.stdout.toString('latin1'))[0][':status'], '304');
});

test('curl: several URLs reuse one keep-alive connection', { skip: !haveCurl && 'curl not installed' }, async () => {
  const r = await curl(['-w', '%{num_connects}\\n', '-o', '/dev/null', '-o', '/dev/null', '-o', '/dev/null',
    `${base}/small.txt`, `${base}/api/json`, `${base}/big.bin`]);
  assert.deepEqual(r.stdout.toString().trim().split('\n'), ['1', '0', '0']);
});

test('curl: uploads with Expect: 100-continue and chunked; HTTP/1.0', { skip: !haveCurl && 'curl not installed' }, async () => {
  const file = path.join(tmp, 'upload.bin');
  fs.writeFileSync(file, BIG);
  const e = await curl(['-D', path.join(tmp, 'h1'), '-H', 'Expect: 100-continue', '--data-binary', `@${file}`, `${base}/api/echo`]);
  const hs = headersOf(fs.readFileSync(path.join(tmp, 'h1'), 'latin1'));
  assert.equal(hs[0][':status'], '100');
  assert.equal(hs[1][':status'], '200');
  assert.equal(hs[1]['x-sha'], sha(BIG));
  assert.ok(e.stdout.equals(BIG));
  const ch = await curl(['-D', path.join(tmp, 'h2'), '-H', 'Transfer-Encoding: chunked', '--data-binary', '@-', `${base}/api/echo`], BIG);
  const h2 = headersOf(fs.readFileSync(path.join(tmp, 'h2'), 'latin1')).at(-1)!;
  assert.equal(h2['x-chunked'], 'true');
  assert.equal(h2['x-sha'], sha(BIG));
  assert.ok(ch.stdout.equals(BIG));
  const old = await curl(['-0', '-D', '-', `${base}/small.txt`]);
  const text = old.stdout.toString('latin1');
  assert.match(text, /^HTTP\/1\.1 200 OK\r\n/);
  assert.match(text, /\r\nConnection: close\r\n/);
  assert.ok(text.endsWith('\r\n\r\n' + SMALL));
  const st = await curl(['-0', `${base}/api/stream`]);
  assert.equal(st.stdout.toString(), Array.from({ length: 50 }, (_, i) => `line ${i}\n`).join(''));
});

test('curl: path traversal with --path-as-is is refused', { skip: !haveCurl && 'curl not installed' }, async () => {
  fs.writeFileSync(path.join(tmp, 'secret.txt'), 'SECRET');
  for (const p of ['/../secret.txt', '/%2e%2e/secret.txt', '/..%2fsecret.txt']) {
    const r = await curl(['--path-as-is', '-o', '/dev/null', '-w', '%{http_code}', `${base}${p}`]);
    assert.ok(['400', '403', '404'].includes(r.stdout.toString()), `${p} → ${r.stdout.toString()}`);
  }
});
