// The node:http baseline of bench/http.ts: a static-file server written the way a careful Node.js programmer would
// (one process, node:http, an in-memory cache of files with prepared headers revalidated by stat at most once
// a second, larger files streamed from disk with fs.createReadStream), so that megapipe-http is compared with
// node:http at its reasonable best rather than with a naive server.
//
//   node dist/bench/servers/http-node.js --root DIR [--port P] [--host H] [--cache-max BYTES]
//
// Prints "listening on HOST:PORT" when it accepts connections; exits 0 on SIGTERM/SIGINT.
// Answers GET/HEAD of regular files under --root ("/" → index.html) with 200, Content-Type, Content-Length,
// Last-Modified and ETag; anything else 404/405. No ranges or conditional requests (the benchmark sends none).
import { createReadStream, promises as fsp } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { extname, join, resolve, sep } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    root: { type: 'string' }, port: { type: 'string', default: '8080' }, host: { type: 'string', default: '127.0.0.1' },
    'cache-max': { type: 'string', default: String(1024 * 1024) },
  },
});
if (!values.root) {
  process.stderr.write('usage: node dist/bench/servers/http-node.js --root DIR [--port P] [--host H] [--cache-max BYTES]\n');
  process.exit(64);
}
const root = resolve(values.root);
const cacheMax = Number(values['cache-max']);
const REVALIDATE_MS = 1000;

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.css': 'text/css; charset=utf-8', '.js': 'text/javascript; charset=utf-8',
  '.svg': 'image/svg+xml', '.jpg': 'image/jpeg', '.png': 'image/png', '.ico': 'image/x-icon', '.txt': 'text/plain; charset=utf-8',
};

interface Entry {
  file: string;
  size: number;
  mtimeMs: number;
  headers: Record<string, string | number>;
  /** content when size <= cacheMax */
  body: Buffer | null;
  checkedAt: number;
}

const cache = new Map<string, Entry>();

/** Request path → absolute file inside root, or null (404). */
function fileFor(url: string): string | null {
  const q = url.indexOf('?');
  let p = q < 0 ? url : url.slice(0, q);
  try { p = decodeURIComponent(p); } catch { return null; }
  if (p.includes('\0')) return null;
  if (p.endsWith('/')) p += 'index.html';
  const abs = resolve(join(root, p));
  return abs.startsWith(root + sep) ? abs : null;
}

async function load(url: string, file: string): Promise<Entry | null> {
  let st;
  try { st = await fsp.stat(file); } catch { return null; }
  if (!st.isFile()) return null;
  const headers = {
    'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream',
    'Content-Length': st.size,
    'Last-Modified': new Date(Math.floor(st.mtimeMs / 1000) * 1000).toUTCString(),
    ETag: `"${Math.floor(st.mtimeMs * 1000).toString(16)}-${st.size.toString(16)}"`,
  };
  const body = st.size <= cacheMax ? await fsp.readFile(file) : null;
  const e: Entry = { file, size: st.size, mtimeMs: st.mtimeMs, headers, body, checkedAt: Date.now() };
  cache.set(url, e);
  return e;
}

function send(req: IncomingMessage, res: ServerResponse, e: Entry): void {
  res.writeHead(200, e.headers);
  if (req.method === 'HEAD') { res.end(); return; }
  if (e.body !== null) { res.end(e.body); return; }
  const s = createReadStream(e.file, { start: 0, end: e.size - 1, highWaterMark: 64 * 1024 });
  s.on('error', () => res.destroy());
  s.pipe(res);
}

async function slow(req: IncomingMessage, res: ServerResponse, url: string): Promise<void> {
  const file = fileFor(url);
  const e = file === null ? null : await load(url, file);
  if (e === null) { res.writeHead(404, { 'Content-Type': 'text/plain' }).end('404 Not Found\n'); return; }
  send(req, res, e);
}

const server = createServer((req, res) => {
  if (req.method !== 'GET' && req.method !== 'HEAD') { res.writeHead(405, { Allow: 'GET, HEAD' }).end(); return; }
  const url = req.url ?? '/';
  const e = cache.get(url);
  if (e !== undefined && Date.now() - e.checkedAt < REVALIDATE_MS) return send(req, res, e);
  cache.delete(url);
  slow(req, res, url).catch(() => { if (!res.headersSent) res.writeHead(500).end(); else res.destroy(); });
});
server.keepAliveTimeout = 5000;
server.listen(Number(values.port), values.host, () => {
  const a = server.address();
  process.stdout.write(`listening on ${values.host}:${typeof a === 'object' && a ? a.port : values.port}\n`);
});
const stop = () => { server.close(() => process.exit(0)); server.closeAllConnections(); setTimeout(() => process.exit(0), 2000).unref(); };
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
