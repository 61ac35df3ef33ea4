// The soak's dynamic HTTP routes, for both HTTP servers: megapipe-http loads this module as its --handler (the default
// export, tried before the static files); the node:http server (node-http.ts) answers the same routes through
// soakRoute() and dynParts().
//   GET /dyn/<n>?s=<seed>[&c=1][&d=<ms>]  n bytes of dynBytes(seed, n); c=1: streamed in chunks (chunked coding);
//                                         d: the handler answers after d ms (a client may leave meanwhile)
//   POST /echo                            the request body, as received (Content-Length or chunked)
// Anything else falls through to the static files.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Handler } from '../../apps/http/index.js';
import { dynBytes, mixSeed, Rng } from './proto.js';

const DYN_MAX = 4 << 20;
const DELAY_MAX_MS = 5000;

/** What a request asks of the dynamic routes: a generated body, its echo, a bad request (400), or null: not theirs. */
export type SoakRoute =
  | { type: 'dyn'; n: number; seed: number; chunked: boolean; delayMs: number }
  | { type: 'echo' }
  | { type: 'bad' };

/** The route of `method path?query` (path decoded, without the query). */
export function soakRoute(method: string, path: string, query: URLSearchParams): SoakRoute | null {
  if (path.startsWith('/dyn/')) {
    const n = Number(path.slice(5));
    const seed = Number(query.get('s') ?? '0');
    if (!Number.isInteger(n) || n < 0 || n > DYN_MAX || !Number.isInteger(seed)) return { type: 'bad' };
    const delay = Number(query.get('d') ?? '0');
    return { type: 'dyn', n, seed, chunked: query.get('c') === '1', delayMs: delay > 0 ? Math.min(delay, DELAY_MAX_MS) : 0 };
  }
  if (path === '/echo' && method === 'POST') return { type: 'echo' };
  return null;
}

/** A /dyn/ body: whole, and (chunked) the parts to stream it in — varied sizes, the same for the same request. */
export function dynParts(r: { n: number; seed: number; chunked: boolean }): { body: Buffer; parts: Buffer[] | null } {
  const body = dynBytes(r.seed, r.n);
  if (!r.chunked) return { body, parts: null };
  const rng = new Rng(mixSeed(r.seed, r.n, 'chunks'));
  const parts: Buffer[] = [];
  for (let off = 0; off < r.n;) { const len = Math.min(r.n - off, rng.logInt(1, 256 * 1024)); parts.push(body.subarray(off, off + len)); off += len; }
  return { body, parts };
}

/** megapipe-http's handler. */
const handler: Handler = async (req, res) => {
  const r = soakRoute(req.method, req.path, req.query);
  if (r === null) return;
  switch (r.type) {
    case 'bad': res.sendError(400); return;
    case 'echo': res.send(await req.body()); return;
    case 'dyn': {
      if (r.delayMs > 0) await sleep(r.delayMs);
      if (res.aborted) return;
      const { body, parts } = dynParts(r);
      if (parts === null) res.send(body); else await res.stream(parts);
    }
  }
};
export default handler;
