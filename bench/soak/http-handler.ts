// The soak's dynamic HTTP handler (megapipe-http --handler): tried before the static files.
//   GET /dyn/<n>?s=<seed>[&c=1][&d=<ms>]  n bytes of dynBytes(seed, n); c=1: streamed in chunks (chunked coding);
//                                         d: the handler answers after d ms (a client may leave meanwhile)
//   POST /echo                            the request body, as received (Content-Length or chunked)
// Anything else falls through to the static files.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Handler } from '../../apps/http/index.js';
import { dynBytes, mixSeed, Rng } from './proto.js';

const DYN_MAX = 4 << 20;

const handler: Handler = async (req, res) => {
  if (req.path.startsWith('/dyn/')) {
    const n = Number(req.path.slice(5));
    const q = req.query;
    const seed = Number(q.get('s') ?? '0');
    if (!Number.isInteger(n) || n < 0 || n > DYN_MAX || !Number.isInteger(seed)) { res.sendError(400); return; }
    const delay = Number(q.get('d') ?? '0');
    if (delay > 0) await sleep(Math.min(delay, 5000));
    if (res.aborted) return;
    const body = dynBytes(seed, n);
    if (q.get('c') !== '1') { res.send(body); return; }
    // chunks of varied sizes, the same for the same request
    const rng = new Rng(mixSeed(seed, n, 'chunks'));
    const parts: Uint8Array[] = [];
    for (let off = 0; off < n;) { const len = Math.min(n - off, rng.logInt(1, 256 * 1024)); parts.push(body.subarray(off, off + len)); off += len; }
    await res.stream(parts);
    return;
  }
  if (req.path === '/echo' && req.method === 'POST') {
    const body = await req.body();
    res.send(body);
  }
};
export default handler;
