// Static files: index, MIME, redirects, path-traversal defence (many encodings, symlinks), conditional requests,
// ranges (cached and streamed files), the in-memory cache and its invalidation, res.file and handler fall-through;
// over io_uring channels and over node:net.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { decodePath, parseRange, serveStatic } from '../apps/http/static.js';
import type { Handler } from '../apps/http/handlers.js';
import { delay, exchange, RawClient, SHIPPED_TRANSPORTS, skipTransport, startApp, type RawResponse, type TestServer } from './http-helpers.test.js';
import { prng, randomBytes } from './helpers.js';

const SECRET = 'TOP-SECRET-OUTSIDE-THE-ROOT';

/** `n` seeded pseudo-random bytes. */
const rnd = (n: number, seed: number): Buffer => randomBytes(prng(seed), n);
const BIG = rnd(300_000, 11);
const PNG = rnd(2000, 5);

test('decodePath and parseRange units', () => {
  assert.equal(decodePath('/'), '/');
  assert.equal(decodePath('/a/b'), '/a/b');
  assert.equal(decodePath('/a//b/./c/'), '/a/b/c/');
  assert.equal(decodePath('/a%20b'), '/a b');
  assert.equal(decodePath('/a/..'), 404);
  assert.equal(decodePath('/%2e%2e/x'), 404);
  assert.equal(decodePath('/a%2fb'), 404);
  assert.equal(decodePath('/a%5cb'), 404);
  assert.equal(decodePath('/a\\b'), 404);
  assert.equal(decodePath('/a%00'), 404);
  assert.equal(decodePath('/%zz'), 400);
  assert.equal(decodePath('/.env'), 404);
  assert.equal(decodePath('/.env', 'allow'), '/.env');
  assert.equal(decodePath('/.well-known/x'), '/.well-known/x');
  assert.deepEqual(parseRange('bytes=0-9', 100), { kind: 1, start: 0, end: 9 });
  assert.deepEqual(parseRange('bytes=-10', 100), { kind: 1, start: 90, end: 99 });
  assert.deepEqual(parseRange('bytes=90-', 100), { kind: 1, start: 90, end: 99 });
  assert.deepEqual(parseRange('bytes=90-1000', 100), { kind: 1, start: 90, end: 99 });
  assert.deepEqual(parseRange('bytes=-1000', 100), { kind: 1, start: 0, end: 99 });
  assert.equal(parseRange('bytes=100-', 100).kind, 2);
  assert.equal(parseRange('bytes=-0', 100).kind, 2);
  assert.equal(parseRange('bytes=5-2', 100).kind, 0);
  assert.equal(parseRange('bytes=0-1,5-6', 100).kind, 0);
  assert.equal(parseRange('items=0-1', 100).kind, 0);
  assert.equal(parseRange('bytes=a-b', 100).kind, 0);
});

// Every file path (cached, streamed, spliced, read into send memory) over io_uring channels — the transport that is
// shipped and benchmarked — and over node:net.
for (const transport of SHIPPED_TRANSPORTS) describe(`over ${transport}`, { skip: skipTransport(transport) }, () => {
let tmp: string;
let root: string;
let srv: TestServer;

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'megapipe-http-static-'));
  root = path.join(tmp, 'www');
  const outside = path.join(tmp, 'outside');
  fs.mkdirSync(path.join(root, 'sub'), { recursive: true });
  fs.mkdirSync(path.join(root, 'empty'));
  fs.mkdirSync(path.join(root, '.well-known'));
  fs.mkdirSync(outside);
  fs.writeFileSync(path.join(outside, 'outside.txt'), SECRET);
  fs.writeFileSync(path.join(tmp, 'outside.txt'), SECRET);
  fs.writeFileSync(path.join(root, 'index.html'), '<!doctype html><title>root</title>');
  fs.writeFileSync(path.join(root, 'style.css'), 'body { color: rgb(1, 2, 3); }\n');
  fs.writeFileSync(path.join(root, 'app.js'), 'console.log(1);\n');
  fs.writeFileSync(path.join(root, 'data.json'), '{"a":1}');
  fs.writeFileSync(path.join(root, 'img.png'), PNG);
  fs.writeFileSync(path.join(root, 'noext'), 'plain');
  fs.writeFileSync(path.join(root, 'a b.txt'), 'spaced');
  fs.writeFileSync(path.join(root, 'é.txt'), 'accent');
  fs.writeFileSync(path.join(root, 'big.bin'), BIG);
  fs.writeFileSync(path.join(root, '.secret'), SECRET);
  fs.writeFileSync(path.join(root, '.well-known', 'security.txt'), 'contact');
  fs.writeFileSync(path.join(root, 'sub', 'index.html'), '<p>sub</p>');
  fs.writeFileSync(path.join(root, 'sub', 'a.txt'), 'sub-a');
  fs.symlinkSync(path.join(outside, 'outside.txt'), path.join(root, 'link-out'));
  fs.symlinkSync(outside, path.join(root, 'dirlink'));
  fs.symlinkSync('style.css', path.join(root, 'link-in'));
  const api: Handler = (req, res) => {
    if (req.path === '/api/hello') return res.json({ hello: 'world' });
    if (req.path === '/download') return res.file(path.join(root, 'big.bin'));
    if (req.path === '/download-missing') return res.file(path.join(root, 'nope.bin'));
    // anything else falls through to the files
  };
  // big.bin (300 kB) stays above the content cache's limit, so its requests exercise the streamed path
  srv = await startApp({ handler: [api, serveStatic(root, { revalidateInterval: 50, maxCachedFileSize: 64 * 1024 })] }, transport);
});

after(async () => {
  await srv.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

const req = (p: string, extra = '', method = 'GET') => `${method} ${p} HTTP/1.1\r\nHost: x\r\n${extra}\r\n`;
async function get(p: string, extra = '', method = 'GET'): Promise<RawResponse> {
  const r = await exchange(srv.port, req(p, extra, method), { head: method === 'HEAD' });
  r.client.destroy();
  return r;
}

test('index.html, MIME types and exact content', async () => {
  const cases: [string, string, Buffer | string][] = [
    ['/', 'text/html; charset=utf-8', '<!doctype html><title>root</title>'],
    ['/index.html', 'text/html; charset=utf-8', '<!doctype html><title>root</title>'],
    ['/style.css', 'text/css; charset=utf-8', 'body { color: rgb(1, 2, 3); }\n'],
    ['/app.js', 'text/javascript; charset=utf-8', 'console.log(1);\n'],
    ['/data.json', 'application/json; charset=utf-8', '{"a":1}'],
    ['/img.png', 'image/png', PNG],
    ['/noext', 'application/octet-stream', 'plain'],
    ['/a%20b.txt', 'text/plain; charset=utf-8', 'spaced'],
    ['/%C3%A9.txt', 'text/plain; charset=utf-8', 'accent'],
    ['/sub/', 'text/html; charset=utf-8', '<p>sub</p>'],
    ['/sub/a.txt', 'text/plain; charset=utf-8', 'sub-a'],
    ['/link-in', 'text/css; charset=utf-8', 'body { color: rgb(1, 2, 3); }\n'],
    ['/.well-known/security.txt', 'text/plain; charset=utf-8', 'contact'],
    ['/big.bin', 'application/octet-stream', BIG],
  ];
  for (let round = 0; round < 2; round++) {
    // the second round is served from the cache
    for (const [p, type, body] of cases) {
      const r = await get(p);
      assert.equal(r.status, 200, p);
      assert.equal(r.headers['content-type'], type, p);
      assert.ok(r.body.equals(Buffer.from(body)), p);
      assert.equal(r.headers['content-length'], String(Buffer.byteLength(body)), p);
      assert.equal(r.headers['accept-ranges'], 'bytes');
      assert.match(r.headers['etag'], /^"[0-9a-f]+-[0-9a-f]+"$/);
      assert.ok(!Number.isNaN(Date.parse(r.headers['last-modified'])));
    }
  }
});

test('HEAD on files: headers only', async () => {
  for (const p of ['/style.css', '/big.bin']) {
    const g = await get(p);
    const c = await RawClient.connect(srv.port);
    c.send(req(p, '', 'HEAD') + req('/data.json'));
    const h = await c.readResponse({ head: true });
    assert.equal(h.status, 200);
    assert.equal(h.headers['content-length'], g.headers['content-length']);
    assert.equal(h.headers['etag'], g.headers['etag']);
    assert.equal((await c.readResponse()).body.toString(), '{"a":1}');
    c.destroy();
  }
});

test('directories: 301 to the slash form (query kept), 403 without index', async () => {
  const r = await get('/sub');
  assert.equal(r.status, 301);
  assert.equal(r.headers['location'], '/sub/');
  assert.equal((await get('/sub?x=1&y')).headers['location'], '/sub/?x=1&y');
  // no open redirect through a leading "//"
  const o = await get('//sub');
  assert.equal(o.headers['location'], '/sub/');
  assert.equal((await get('/empty/')).status, 403);
  assert.equal((await get('/empty')).status, 301);
  assert.equal((await get('/missing.txt')).status, 404);
  assert.equal((await get('/style.css/')).status, 404);
  const post = await get('/style.css', 'Content-Length: 0\r\n', 'POST');
  assert.equal(post.status, 405);
  assert.equal(post.headers['allow'], 'GET, HEAD');
});

test('path traversal: no encoding escapes the root', async () => {
  const attempts = [
    '/../outside.txt', '/../../outside.txt', '/..%2foutside.txt', '/%2e%2e/outside.txt', '/%2e%2e%2foutside.txt',
    '/%2E%2E%2Foutside.txt', '/.%2e/outside.txt', '/%2e./outside.txt', '/sub/../../outside.txt',
    '/sub/%2e%2e/%2e%2e/outside.txt', '/sub/..%2f..%2foutside.txt', '/..\\outside.txt', '/%5c..%5coutside.txt',
    '/..%5coutside.txt', '/sub%5c..%5c..%5coutside.txt', '/style.css%00.html', '/%00', '/%00/../outside.txt',
    '/%c0%ae%c0%ae/outside.txt', '/%c0%af..%c0%afoutside.txt', '/%252e%252e/outside.txt', '/./../outside.txt',
    '/link-out', '/dirlink/outside.txt', '/dirlink/', '/.secret', '/sub/../.secret', '/%2esecret', '/.%73ecret',
    '/%2e%2e', '/..', '/outside/../../outside.txt', '/%2F..%2F..%2Foutside.txt', '/..;/outside.txt',
    `/${'../'.repeat(20)}etc/passwd`, `/${'%2e%2e%2f'.repeat(20)}etc/passwd`, '/%u002e%u002e/outside.txt',
  ];
  for (const a of attempts) {
    const r = await get(a);
    assert.ok([400, 403, 404].includes(r.status), `${a} → ${r.status}`);
    assert.ok(!r.body.toString('latin1').includes(SECRET), `${a} leaked the secret`);
    assert.ok(!r.body.toString('latin1').includes('root:'), `${a} leaked /etc/passwd`);
  }
  assert.equal((await get('/link-out')).status, 403);
  assert.equal((await get('/dirlink/outside.txt')).status, 403);
});

test('conditional requests: If-None-Match, If-Modified-Since, If-Match, If-Unmodified-Since', async () => {
  for (const p of ['/style.css', '/big.bin']) {
    const g = await get(p);
    const etag = g.headers['etag'];
    const lm = g.headers['last-modified'];
    const nm = await get(p, `If-None-Match: ${etag}\r\n`);
    assert.equal(nm.status, 304, p);
    assert.equal(nm.body.length, 0);
    assert.equal(nm.headers['etag'], etag);
    assert.equal(nm.headers['last-modified'], lm);
    assert.equal(nm.headers['content-length'], undefined);
    assert.equal((await get(p, `If-None-Match: "nope", W/${etag}\r\n`)).status, 304, 'weak comparison');
    assert.equal((await get(p, 'If-None-Match: *\r\n')).status, 304);
    assert.equal((await get(p, 'If-None-Match: "nope"\r\n')).status, 200);
    assert.equal((await get(p, `If-Modified-Since: ${lm}\r\n`)).status, 304);
    assert.equal((await get(p, `If-Modified-Since: ${new Date(Date.parse(lm) + 3600_000).toUTCString()}\r\n`)).status, 304);
    assert.equal((await get(p, 'If-Modified-Since: Sat, 01 Jan 2000 00:00:00 GMT\r\n')).status, 200);
    assert.equal((await get(p, 'If-Modified-Since: garbage\r\n')).status, 200);
    // If-None-Match takes precedence over If-Modified-Since
    assert.equal((await get(p, `If-None-Match: "nope"\r\nIf-Modified-Since: ${lm}\r\n`)).status, 200);
    assert.equal((await get(p, `If-Match: ${etag}\r\n`)).status, 200);
    assert.equal((await get(p, 'If-Match: "nope"\r\n')).status, 412);
    assert.equal((await get(p, `If-Match: W/${etag}\r\n`)).status, 412, 'If-Match uses strong comparison');
    assert.equal((await get(p, 'If-Unmodified-Since: Sat, 01 Jan 2000 00:00:00 GMT\r\n')).status, 412);
    assert.equal((await get(p, `If-Unmodified-Since: ${lm}\r\n`)).status, 200);
    const head304 = await get(p, `If-None-Match: ${etag}\r\n`, 'HEAD');
    assert.equal(head304.status, 304);
  }
});

test('ranges: 206 with Content-Range, 416 unsatisfiable, multi-range and If-Range mismatch → 200', async () => {
  const css = Buffer.from('body { color: rgb(1, 2, 3); }\n');
  for (const [p, full] of [['/style.css', css], ['/big.bin', BIG]] as const) {
    const size = full.length;
    const etag = (await get(p)).headers['etag'];
    const check = async (range: string, start: number, end: number, extra = '') => {
      const r = await get(p, `Range: ${range}\r\n${extra}`);
      assert.equal(r.status, 206, `${p} ${range}`);
      assert.equal(r.headers['content-range'], `bytes ${start}-${end}/${size}`);
      assert.equal(r.headers['content-length'], String(end - start + 1));
      assert.ok(r.body.equals(full.subarray(start, end + 1)), `${p} ${range} body`);
    };
    await check('bytes=0-9', 0, 9);
    await check('bytes=5-5', 5, 5);
    await check('bytes=-7', size - 7, size - 1);
    await check('bytes=10-', 10, size - 1);
    await check(`bytes=3-${size + 100}`, 3, size - 1);
    await check('bytes=0-3', 0, 3, `If-Range: ${etag}\r\n`);
    if (p === '/big.bin') await check('bytes=65000-200000', 65000, 200000);
    const u = await get(p, `Range: bytes=${size}-\r\n`);
    assert.equal(u.status, 416);
    assert.equal(u.headers['content-range'], `bytes */${size}`);
    for (const ignored of ['bytes=0-1,4-5', 'bytes=5-2', 'pages=1-2', 'bytes=x']) {
      const r = await get(p, `Range: ${ignored}\r\n`);
      assert.equal(r.status, 200, `${p} ${ignored}`);
      assert.ok(r.body.equals(full));
    }
    const ir = await get(p, 'Range: bytes=0-3\r\nIf-Range: "stale"\r\n');
    assert.equal(ir.status, 200);
    assert.ok(ir.body.equals(full));
  }
});

test('res.file and fall-through composition', async () => {
  const api = await get('/api/hello');
  assert.deepEqual(JSON.parse(api.body.toString()), { hello: 'world' });
  const d = await get('/download');
  assert.ok(d.body.equals(BIG));
  assert.equal(d.headers['content-type'], 'application/octet-stream');
  const dr = await get('/download', 'Range: bytes=100-199\r\n');
  assert.equal(dr.status, 206);
  assert.ok(dr.body.equals(BIG.subarray(100, 200)));
  assert.equal((await get('/download', `If-None-Match: ${d.headers['etag']}\r\n`)).status, 304);
  assert.equal((await get('/download-missing')).status, 404);
  assert.equal((await get('/api/other')).status, 404);
});

async function pollUntil(p: string, srvPort: number, pred: (r: RawResponse) => boolean): Promise<RawResponse> {
  let r: RawResponse | null = null;
  for (let i = 0; i < 100; i++) {
    const x = await exchange(srvPort, req(p));
    x.client.destroy();
    r = x;
    if (pred(r)) return r;
    await delay(30);
  }
  assert.fail(`condition never met for ${p}: last ${r?.status} ${r?.body.toString()}`);
}

test('cache: a changed, deleted or swapped file is noticed (stat revalidation)', async () => {
  const f = path.join(root, 'changing.txt');
  fs.writeFileSync(f, 'version-1');
  const a = await get('/changing.txt');
  assert.equal(a.body.toString(), 'version-1');
  // same size, new content and mtime
  fs.writeFileSync(f, 'version-2');
  fs.utimesSync(f, new Date(), new Date(Date.now() + 5000));
  const b = await pollUntil('/changing.txt', srv.port, (r) => r.body.toString() === 'version-2');
  assert.notEqual(b.headers['etag'], a.headers['etag']);
  // the old validator no longer matches
  assert.equal((await get('/changing.txt', `If-None-Match: ${a.headers['etag']}\r\n`)).status, 200);
  // different size
  fs.writeFileSync(f, 'version-three');
  await pollUntil('/changing.txt', srv.port, (r) => r.body.toString() === 'version-three');
  // swapped for a symlink to outside the root
  fs.rmSync(f);
  fs.symlinkSync(path.join(tmp, 'outside.txt'), f);
  const s = await pollUntil('/changing.txt', srv.port, (r) => r.status === 403);
  assert.ok(!s.body.toString().includes(SECRET));
  // deleted
  fs.rmSync(f);
  await pollUntil('/changing.txt', srv.port, (r) => r.status === 404);
  // index.html of a directory
  fs.writeFileSync(path.join(root, 'sub', 'index.html'), '<p>sub v2</p>');
  await pollUntil('/sub/', srv.port, (r) => r.body.toString() === '<p>sub v2</p>');
});

test('cache: hot files are served from memory between revalidations', async () => {
  const dir = fs.mkdtempSync(path.join(tmp, 'hot-'));
  fs.writeFileSync(path.join(dir, 'hot.txt'), 'cached');
  const s2 = await startApp({ handler: serveStatic(dir, { revalidateInterval: 3600_000 }) }, transport);
  try {
    const a = await exchange(s2.port, req('/hot.txt'));
    a.client.destroy();
    assert.equal(a.body.toString(), 'cached');
    fs.writeFileSync(path.join(dir, 'hot.txt'), 'CHANGED');
    for (let i = 0; i < 3; i++) {
      const b = await exchange(s2.port, req('/hot.txt'));
      b.client.destroy();
      assert.equal(b.body.toString(), 'cached', 'served from the cache, no file access');
    }
  } finally {
    await s2.close();
  }
});

test('cache: bounded by total size (files evicted, still served correctly)', async () => {
  const dir = fs.mkdtempSync(path.join(tmp, 'bound-'));
  const bodies: Buffer[] = [];
  for (let i = 0; i < 12; i++) {
    bodies.push(rnd(10_000, 100 + i));
    fs.writeFileSync(path.join(dir, `f${i}.bin`), bodies[i]);
  }
  const statics = serveStatic(dir, { maxCacheSize: 70_000, maxCacheEntries: 5 });
  const s3 = await startApp({ handler: statics }, transport);
  try {
    let peak = 0;
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 12; i++) {
        const r = await exchange(s3.port, req(`/f${i}.bin`));
        r.client.destroy();
        assert.ok(r.body.equals(bodies[i]), `f${i} round ${round}`);
        const st = statics.cacheStats();
        assert.ok(st.bytes <= 70_000, `cache bytes ${st.bytes} within the bound`);
        assert.ok(st.paths <= 5, `cache paths ${st.paths} within the bound`);
        peak = Math.max(peak, st.files);
      }
    }
    // each 10 kB file costs its body and two prepared 200 responses (keep-alive and close): two fit, a third does not
    assert.equal(peak, 2, 'the prepared responses count against maxCacheSize');
  } finally {
    await s3.close();
  }
});

test('files above the content cache stay open between requests (maxOpenFiles), reopened when replaced', async () => {
  const dir = fs.mkdtempSync(path.join(tmp, 'open-'));
  const file = path.join(dir, 'large.bin');
  const v1 = rnd(200_000, 301), v2 = rnd(150_000, 302);
  fs.writeFileSync(file, v1);
  /** This process's descriptors open on `file`: [live, deleted]. */
  const fdsOn = (): [number, number] => {
    let live = 0, gone = 0;
    for (const d of fs.readdirSync('/proc/self/fd')) {
      let to = '';
      try { to = fs.readlinkSync(`/proc/self/fd/${d}`); } catch { continue; }
      if (to === file) live++; else if (to === `${file} (deleted)`) gone++;
    }
    return [live, gone];
  };
  const until = async (cond: () => boolean, what: string) => {
    for (let i = 0; i < 500 && !cond(); i++) await delay(10);
    assert.ok(cond(), what);
  };
  const statics = serveStatic(dir, { maxCachedFileSize: 64 * 1024, revalidateInterval: 0 });
  const s4 = await startApp({ handler: statics }, transport);
  try {
    for (let i = 0; i < 5; i++) {
      const r = await exchange(s4.port, req('/large.bin'));
      r.client.destroy();
      assert.ok(r.body.equals(v1), `request ${i}: the file`);
    }
    assert.equal(statics.cacheStats().openFiles, 1);
    assert.deepEqual(fdsOn(), [1, 0], 'one descriptor, shared by every request');
    // replaced (a new inode under the same name): revalidation retires the old descriptor
    fs.writeFileSync(`${file}.new`, v2);
    fs.renameSync(`${file}.new`, file);
    const r = await exchange(s4.port, req('/large.bin'));
    r.client.destroy();
    assert.ok(r.body.equals(v2), 'the new content');
    await until(() => fdsOn()[1] === 0, 'the replaced file\'s descriptor is closed');
    assert.deepEqual(fdsOn(), [1, 0]);
    assert.equal(statics.cacheStats().openFiles, 1);
    // removed: 404, and nothing left open
    fs.rmSync(file);
    const gone = await exchange(s4.port, req('/large.bin'));
    gone.client.destroy();
    assert.equal(gone.status, 404);
    await until(() => fdsOn()[1] === 0, 'the removed file\'s descriptor is closed');
    assert.equal(statics.cacheStats().openFiles, 0);
  } finally {
    await s4.close();
  }
  // maxOpenFiles 0: opened and closed per request
  fs.writeFileSync(file, v1);
  const perRequest = serveStatic(dir, { maxCachedFileSize: 64 * 1024, maxOpenFiles: 0 });
  const s5 = await startApp({ handler: perRequest }, transport);
  try {
    const r = await exchange(s5.port, req('/large.bin'));
    r.client.destroy();
    assert.ok(r.body.equals(v1));
    await until(() => fdsOn()[0] === 0, 'no descriptor kept');
    assert.equal(perRequest.cacheStats().openFiles, 0);
  } finally {
    await s5.close();
  }
  assert.throws(() => serveStatic(dir, { maxOpenFiles: -1 }), /options\.maxOpenFiles must be a non-negative integer/);
  assert.throws(() => serveStatic(dir, { maxCacheSize: 1.5 }), /options\.maxCacheSize/);
});

test('large files (sendfile on io_uring when resident, else spliced or read) replaced while many downloads are in flight: every response is one version, whole', async () => {
  const dir = fs.mkdtempSync(path.join(tmp, 'swap-'));
  const file = path.join(dir, 'big.bin');
  const v1 = rnd(600_000, 401), v2 = rnd(450_000, 402);
  fs.writeFileSync(file, v1);
  const statics = serveStatic(dir, { maxCachedFileSize: 64 * 1024, revalidateInterval: 0 });
  const s6 = await startApp({ handler: statics }, transport);
  try {
    const get = async (extra = '') => {
      const r = await exchange(s6.port, req('/big.bin', extra));
      r.client.destroy();
      return r;
    };
    const wave = (n: number) => Promise.all(Array.from({ length: n }, (_, k) => get(k % 5 === 4 ? 'Range: bytes=1000-299999\r\n' : '')));
    const first = wave(24);
    await delay(1);
    fs.writeFileSync(`${file}.new`, v2);
    fs.renameSync(`${file}.new`, file);   // a new inode: downloads of the old one go on from their descriptor
    const all = [...(await first), ...(await wave(24))];
    let newer = 0;
    for (const r of all) {
      const v = Number(r.headers['content-range']?.split('/')[1] ?? r.headers['content-length']) === v2.length ? v2 : v1;
      if (v === v2) newer++;
      if (r.status === 206) {
        assert.equal(r.headers['content-range'], `bytes 1000-299999/${v.length}`);
        assert.ok(r.body.equals(v.subarray(1000, 300_000)), 'a range of one version');
      } else {
        assert.equal(r.status, 200);
        assert.ok(r.body.equals(v), 'one version, whole');
      }
    }
    assert.ok(newer >= 24, 'the requests after the swap get the new file');
  } finally {
    await s6.close();
  }
});
});
