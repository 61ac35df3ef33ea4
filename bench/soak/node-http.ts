// The soak's node:http server (kind node-http): a plain node:http request listener, as a legacy application writes
// one, serving megapipe-http's soak workload — the static files of the soak's root (GET, HEAD, one byte range, 404)
// and the dynamic routes of http-handler.ts (generated bodies with Content-Length or chunked, delayed answers,
// POST /echo) — with node:http's defaults (keep-alive timeout, half-open handling, answers to bad requests). The soak's
// worker runs it on megapipe/net (serveServer: one server per worker thread). Errors of a response whose client left
// are expected (the client resets or leaves on purpose); any other is counted and written to stderr.
import * as http from 'node:http';
import { createReadStream, promises as fsp } from 'node:fs';
import { join, normalize, sep } from 'node:path';
import { Readable, pipeline } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { dynParts, soakRoute } from './http-handler.js';

/** What the server counts (reported in the soak's worker samples). */
export interface NodeHttpCounts { requests: number; handlerErrors: number }

/** node:http's server for `root` (not listening), with its counts. */
export function createNodeHttpServer(root: string): http.Server & { counts: NodeHttpCounts } {
  const counts: NodeHttpCounts = { requests: 0, handlerErrors: 0 };
  const server = http.createServer((req, res) => {
    counts.requests++;
    // a request that asks for Connection: close is answered as some applications do it: the connection destroyed
    // once the response is written ('finish'), beside node:http's own end — node:net leaves the bytes written to the
    // kernel, which sends them; megapipe/net sends what its channel still holds (src/net/linger.ts)
    if (req.headers.connection === 'close') res.once('finish', () => req.socket.destroy());
    handle(root, req, res).catch((e: unknown) => failed(counts, req, res, e));
  });
  return Object.assign(server, { counts });
}

/** A response that failed: nothing to report when its client left; otherwise counted, reported, the response cut. */
function failed(counts: NodeHttpCounts, req: http.IncomingMessage, res: http.ServerResponse, e: unknown): void {
  if (req.socket.destroyed) return;
  counts.handlerErrors++;
  process.stderr.write(`node-http: ${req.method} ${req.url}: ${(e as Error)?.stack ?? String(e)}\n`);
  res.destroy();
}

/** Sends `body` with its length (a status other than 200: a short text). */
function reply(res: http.ServerResponse, status: number, body: Buffer | string): void {
  res.statusCode = status;
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.end(body);
}

async function handle(root: string, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://soak');
  let path: string;
  try { path = decodeURIComponent(url.pathname); } catch { reply(res, 400, 'bad request\n'); return; }
  const r = soakRoute(req.method ?? '', path, url.searchParams);
  if (r === null) { await serveFile(root, req, res, path); return; }
  switch (r.type) {
    case 'bad': reply(res, 400, 'bad request\n'); return;
    case 'echo': {
      const parts: Buffer[] = [];
      for await (const c of req) parts.push(c as Buffer);   // throws when the client leaves mid-body
      reply(res, 200, Buffer.concat(parts));
      return;
    }
    case 'dyn': {
      if (r.delayMs > 0) await sleep(r.delayMs);
      if (req.socket.destroyed) return;
      const { body, parts } = dynParts(r);
      if (parts === null) { reply(res, 200, body); return; }
      // no Content-Length: node:http frames the parts with the chunked coding, one chunk each
      await streamTo(Readable.from(parts), res);
    }
  }
}

/** A static file of `root`: GET or HEAD, whole or one range (`bytes=a-b`, `bytes=a-`); 404 for anything else. */
async function serveFile(root: string, req: http.IncomingMessage, res: http.ServerResponse, path: string): Promise<void> {
  const file = join(root, normalize(path));
  const st = (req.method === 'GET' || req.method === 'HEAD') && file.startsWith(root + sep) ? await fsp.stat(file).catch(() => null) : null;
  if (st === null || !st.isFile()) { reply(res, 404, 'not found\n'); return; }
  let start = 0, end = st.size - 1;
  const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
  if (range !== null) {
    start = Number(range[1]);
    end = range[2] !== '' ? Math.min(Number(range[2]), st.size - 1) : st.size - 1;
    if (start > end) { res.setHeader('Content-Range', `bytes */${st.size}`); reply(res, 416, 'range not satisfiable\n'); return; }
    res.statusCode = 206;
    res.setHeader('Content-Range', `bytes ${start}-${end}/${st.size}`);
  }
  res.setHeader('Content-Length', end - start + 1);
  res.setHeader('Accept-Ranges', 'bytes');
  if (req.method === 'HEAD' || end < start) { res.end(); return; }
  await streamTo(createReadStream(file, { start, end }), res);
}

/** Pipes `from` into the response (back-pressure by write()'s answer and 'drain'); settles when both are done. */
function streamTo(from: Readable, res: http.ServerResponse): Promise<void> {
  return new Promise((resolve, reject) => pipeline(from, res, (err) => (err ? reject(err) : resolve())));
}
