// The Bun baseline of bench/http.ts, run by the bun binary (not compiled by tsc, not run by Node):
//
//   bun bench/servers/http-bun.js --root DIR [--port P] [--host H] [--cache-max BYTES]
//
// Bun.serve answering GET/HEAD of regular files under --root ("/" → index.html) the way Bun's documentation
// recommends, at its reasonable best: files up to --cache-max (default 1 MiB, as megapipe-http) from an in-memory cache with
// prepared headers, revalidated by stat at most once a second; larger files as `new Response(Bun.file(path))`,
// which Bun sends with sendfile(2). Headers: Content-Type, Content-Length, Last-Modified, ETag (Date by Bun), and
// Connection: close when the request asked for it.
// Prints "listening on HOST:PORT" when ready; exits 0 on SIGTERM/SIGINT.
import { statSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { extname, join, resolve, sep } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    root: { type: 'string' }, port: { type: 'string', default: '8080' }, host: { type: 'string', default: '127.0.0.1' },
    'cache-max': { type: 'string', default: String(1024 * 1024) },
  },
});
if (!values.root) {
  process.stderr.write('usage: bun bench/servers/http-bun.js --root DIR [--port P] [--host H]\n');
  process.exit(64);
}
const root = resolve(values.root);
statSync(root); // fail early on a missing root
const cacheMax = Number(values['cache-max']);
const REVALIDATE_MS = 1000;

const TYPES = {
  '.html': 'text/html; charset=utf-8', '.css': 'text/css; charset=utf-8', '.js': 'text/javascript; charset=utf-8',
  '.svg': 'image/svg+xml', '.jpg': 'image/jpeg', '.png': 'image/png', '.ico': 'image/x-icon', '.txt': 'text/plain; charset=utf-8',
};

/** url → { file, headers, body (Uint8Array | null), checkedAt } */
const cache = new Map();

function fileFor(url) {
  let p;
  try { p = decodeURIComponent(new URL(url).pathname); } catch { return null; }
  if (p.includes('\0')) return null;
  if (p.endsWith('/')) p += 'index.html';
  const abs = resolve(join(root, p));
  return abs.startsWith(root + sep) ? abs : null;
}

async function load(url) {
  const file = fileFor(url);
  if (file === null) return null;
  let st;
  try { st = await stat(file); } catch { return null; }
  if (!st.isFile()) return null;
  const headers = {
    'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream',
    'Last-Modified': new Date(Math.floor(st.mtimeMs / 1000) * 1000).toUTCString(),
    ETag: `"${Math.floor(st.mtimeMs * 1000).toString(16)}-${st.size.toString(16)}"`,
  };
  const body = st.size <= cacheMax ? new Uint8Array(await Bun.file(file).arrayBuffer()) : null;
  const e = { file, headers, body, checkedAt: Date.now() };
  cache.set(url, e);
  return e;
}

// A request with "Connection: close" gets "Connection: close" back (RFC 9112 §9.6: the server SHOULD announce the
// close), as nginx, node:http and megapipe-http do. Bun closes such a connection after the response but does not say
// so itself, and wrk then counts every close as a read error (one per request): those runs could not be told apart
// from broken ones and were left out of every figure.
const wantsClose = (req) => /(?:^|,)\s*close\s*(?:,|$)/i.test(req.headers.get('connection') ?? '');

function respond(req, e) {
  const headers = wantsClose(req) ? { ...e.headers, Connection: 'close' } : e.headers;
  if (req.method === 'HEAD') return new Response(null, { headers });
  return new Response(e.body ?? Bun.file(e.file), { headers });
}

const server = Bun.serve({
  hostname: values.host,
  port: Number(values.port),
  idleTimeout: 10,
  fetch(req) {
    if (req.method !== 'GET' && req.method !== 'HEAD') return new Response(null, { status: 405, headers: { Allow: 'GET, HEAD' } });
    const e = cache.get(req.url);
    if (e !== undefined && Date.now() - e.checkedAt < REVALIDATE_MS) return respond(req, e);
    cache.delete(req.url);
    return load(req.url).then((f) => (f === null ? new Response('404 Not Found\n', { status: 404 }) : respond(req, f)));
  },
});
process.stdout.write(`listening on ${values.host}:${server.port}\n`);
const stop = () => { server.stop(true); process.exit(0); };
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
