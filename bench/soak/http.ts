// HTTP scenarios, for megapipe-http under serve() (the static files and the soak's handler, http-handler.ts) and for
// node-http (node-http.ts: node:http on megapipe/net, the same workload): every response's status, framing and body
// are checked; files and dynamic bodies are regenerated from the run's seed. node-http runs the same scenarios but
// one, half-close, where node:http's own behaviour differs (halfCloseCut).
import { ByteStream, FILES, dynBytes, fileBytes, type SoakFile } from './proto.js';
import { sleep } from './peer.js';
import { Failure, open, verify, type Lane, type Peer, type Scenario } from './lane.js';

const MIB = 1 << 20;

interface Req {
  bytes: Buffer;
  desc: string;
  head: boolean;
  status: number;
  /** The body it must have (null: not checked, only framed; HEAD: its Content-Length is checked against bodyLen). */
  body: Buffer | null;
  bodyLen?: number;
  contentRange?: string;
  close: boolean;
}

interface Resp {
  status: number;
  headers: Map<string, string>;
  body: Buffer;
  /** The server ended the connection inside this response (only read so with `cutOk`): `body` is what came of it. */
  cut: boolean;
}

/** The run's seed (files are regenerated from it), set by the client process. */
let runSeed = 0;
const fileCache = new Map<string, Buffer>();
export function setHttpSeed(seed: number): void { runSeed = seed; }
function content(f: SoakFile): Buffer {
  let b = fileCache.get(f.name);
  if (!b) { b = fileBytes(runSeed, f); fileCache.set(f.name, b); }
  return b;
}

function request(method: string, target: string, close: boolean, extra = '', body?: Buffer): Buffer {
  const head = `${method} ${target} HTTP/1.1\r\nHost: soak\r\nUser-Agent: megapipe-soak\r\n${close ? 'Connection: close\r\n' : ''}${extra}\r\n`;
  return body ? Buffer.concat([Buffer.from(head, 'latin1'), body]) : Buffer.from(head, 'latin1');
}

type ReqKind = 'file' | 'range' | 'head' | 'dyn' | 'post' | 'missing';

/** A random request (with `big`, one with a body of 1–4 MiB). */
function nextReq(lane: Lane, close = false, big = false, small = false): Req {
  const r = lane.rng;
  const kind: ReqKind = big ? r.pick<ReqKind>(['file', 'dyn']) : small ? r.pick<ReqKind>(['file', 'dyn', 'post', 'head']) : r.weighted<ReqKind>([['file', 40], ['range', 10], ['head', 5], ['dyn', 25], ['post', 15], ['missing', 5]]);
  const files = big ? FILES.filter((f) => f.size >= MIB) : small ? FILES.filter((f) => f.size < 20_000) : FILES;
  switch (kind) {
    case 'file': {
      const f = r.pick(files);
      return { bytes: request('GET', `/${f.name}`, close), desc: `GET /${f.name}`, head: false, status: 200, body: content(f), close };
    }
    case 'head': {
      const f = r.pick(files);
      return { bytes: request('HEAD', `/${f.name}`, close), desc: `HEAD /${f.name}`, head: true, status: 200, body: null, bodyLen: f.size, close };
    }
    case 'range': {
      const f = r.pick(FILES.filter((x) => x.size > 0));
      const a = r.int(0, f.size - 1), b = r.int(a, Math.min(f.size - 1, a + r.logInt(1, 2 * MIB)));
      return { bytes: request('GET', `/${f.name}`, close, `Range: bytes=${a}-${b}\r\n`), desc: `GET /${f.name} bytes=${a}-${b}`, head: false, status: 206, body: content(f).subarray(a, b + 1), contentRange: `bytes ${a}-${b}/${f.size}`, close };
    }
    case 'dyn': {
      const n = big ? r.int(MIB, 4 * MIB) : small ? r.int(0, 2000) : r.logInt(1, 2 * MIB) - 1;
      const s = r.int(0, 2 ** 31 - 1), chunked = r.chance(0.3), delay = !small && r.chance(0.1) ? r.int(1, 100) : 0;
      const target = `/dyn/${n}?s=${s}${chunked ? '&c=1' : ''}${delay ? `&d=${delay}` : ''}`;
      return { bytes: request('GET', target, close), desc: `GET ${target}`, head: false, status: 200, body: dynBytes(s, n), close };
    }
    case 'post': {
      const body = new ByteStream(r.seed()).next(small ? r.int(0, 300) : r.logInt(1, 256 * 1024) - 1);
      if (r.chance(0.3)) {
        const parts: Buffer[] = [];
        for (let off = 0; off < body.length;) {
          const k = Math.min(body.length - off, r.logInt(1, 64 * 1024));
          parts.push(Buffer.from(k.toString(16) + '\r\n'), body.subarray(off, off + k), Buffer.from('\r\n'));
          off += k;
        }
        parts.push(Buffer.from('0\r\n\r\n'));
        return { bytes: request('POST', '/echo', close, 'Transfer-Encoding: chunked\r\n', Buffer.concat(parts)), desc: `POST /echo chunked ${body.length}`, head: false, status: 200, body, close };
      }
      return { bytes: request('POST', '/echo', close, `Content-Length: ${body.length}\r\n`, body), desc: `POST /echo ${body.length}`, head: false, status: 200, body, close };
    }
    case 'missing': {
      const t = `/missing-${r.int(0, 1e9)}.bin`;
      return { bytes: request('GET', t, close), desc: `GET ${t}`, head: false, status: 404, body: null, close };
    }
  }
}

/** Reads one response (status line, fields, body by its framing). With `cutOk`, an EOF anywhere in it is not a
 * failure: the response is returned `cut`, with the part of its body that came (a line cut short is dropped; null
 * status: cut before the status line). */
async function readResponse(p: Peer, req: Req, cutOk = false): Promise<Resp> {
  const what = `http ${req.desc}`;
  let status = NaN;
  const headers = new Map<string, string>();
  const parts: Buffer[] = [];
  const cut = async (): Promise<Resp> => {
    // what is left of a line cut short cannot be checked
    while (await p.readSome(1 << 20, what) !== null);
    return { status, headers, body: Buffer.concat(parts), cut: true };
  };
  // a line, or null: the server ended the connection in it (with cutOk)
  const line = async (): Promise<string | null> => {
    try { return await p.readLine(what); } catch (e) {
      if (cutOk && e instanceof Failure && (p.eof || p.closed) && p.error === null) return null;
      throw e;
    }
  };
  // n bytes pushed into `into`; false: the server ended the connection first (with cutOk)
  const bytes = async (n: number, into: Buffer[]): Promise<boolean> => {
    if (!cutOk) { into.push(await p.read(n, what)); return true; }
    for (let got = 0; got < n;) {
      const b = await p.readSome(n - got, what);
      if (b === null) return false;
      into.push(b);
      got += b.length;
    }
    return true;
  };
  const first = await line();
  if (first === null) return cut();
  const m = /^HTTP\/1\.1 (\d{3}) /.exec(first);
  if (!m) throw new Failure(`${what}: status line ${JSON.stringify(first.slice(0, 80))}`);
  status = Number(m[1]);
  for (let n = 0; ; n++) {
    const h = await line();
    if (h === null) return cut();
    if (h === '') break;
    if (n > 100) throw new Failure(`${what}: more than 100 header fields`);
    const i = h.indexOf(':');
    if (i <= 0) throw new Failure(`${what}: header line ${JSON.stringify(h.slice(0, 80))}`);
    const name = h.slice(0, i).toLowerCase(), value = h.slice(i + 1).trim();
    headers.set(name, headers.has(name) ? `${headers.get(name)}, ${value}` : value);
  }
  const te = headers.get('transfer-encoding'), cl = headers.get('content-length');
  if (req.head || status === 204 || status === 304) { /* no body */ }
  else if (te !== undefined) {
    if (te.toLowerCase() !== 'chunked') throw new Failure(`${what}: Transfer-Encoding ${te}`);
    for (;;) {
      const sl = await line();
      if (sl === null) return cut();
      const sm = /^([0-9a-fA-F]+)(;.*)?$/.exec(sl);
      if (!sm) throw new Failure(`${what}: chunk size line ${JSON.stringify(sl.slice(0, 40))}`);
      const n = parseInt(sm[1]!, 16);
      if (n === 0) {
        for (let t = await line(); t !== ''; t = await line()) if (t === null) return cut();
        break;
      }
      const crlf: Buffer[] = [];
      if (!(await bytes(n, parts)) || !(await bytes(2, crlf))) return cut();
      const end = Buffer.concat(crlf);
      if (end[0] !== 13 || end[1] !== 10) throw new Failure(`${what}: chunk of ${n} bytes not followed by CRLF`);
    }
  } else if (cl !== undefined) {
    if (!/^\d+$/.test(cl)) throw new Failure(`${what}: Content-Length ${cl}`);
    if (!(await bytes(Number(cl), parts))) return cut();
  } else throw new Failure(`${what}: a response without framing (no Content-Length, no chunked coding)`);
  return { status, headers, body: parts.length === 1 ? parts[0]! : Buffer.concat(parts), cut: false };
}

/** Reads and checks the response to `req`. With `cutOk` the server may end the connection inside it: the status and
 * the part of the body that came are checked; returns false when it did. */
async function check(lane: Lane, p: Peer, req: Req, cutOk = false): Promise<boolean> {
  const what = `http ${req.desc}`;
  const res = await readResponse(p, req, cutOk);
  if (res.cut) {
    if (!Number.isNaN(res.status) && res.status !== req.status) throw new Failure(`${what}: status ${res.status}, want ${req.status}`);
    if (req.body !== null) verify(lane, res.body, req.body.subarray(0, res.body.length), `${what} (cut by the server)`);
    return false;
  }
  if (res.status !== req.status) throw new Failure(`${what}: status ${res.status}, want ${req.status}`);
  if (req.head && Number(res.headers.get('content-length')) !== req.bodyLen) throw new Failure(`${what}: Content-Length ${res.headers.get('content-length')}, want ${req.bodyLen}`);
  if (req.contentRange !== undefined && res.headers.get('content-range') !== req.contentRange) throw new Failure(`${what}: Content-Range ${res.headers.get('content-range')}, want ${req.contentRange}`);
  if (req.body !== null) verify(lane, res.body, req.body, what);
  if (req.close && !/\bclose\b/i.test(res.headers.get('connection') ?? '')) throw new Failure(`${what}: no Connection: close in the response to a request that asked for it`);
  lane.c.ops++;
  return true;
}

async function send(lane: Lane, p: Peer, reqs: Req[], wait = true): Promise<void> {
  const bytes = Buffer.concat(reqs.map((r) => r.bytes));
  await p.write(bytes, 'http send', wait);
  lane.c.bytesSent += bytes.length;
}

async function finish(lane: Lane, p: Peer): Promise<void> {
  p.end();
  await p.expectEof('http close');
  lane.c.clean++;
}

/** Keep-alive: 1–20 requests one after another on one connection. */
const keepAlive: Scenario = async (lane) => {
  const p = await open(lane);
  for (let n = lane.rng.int(1, 20); n > 0; n--) { const req = nextReq(lane); await send(lane, p, [req]); await check(lane, p, req); }
  await finish(lane, p);
};

/** Pipelined: batches of 2–16 requests in one write. */
const pipelined: Scenario = async (lane) => {
  const p = await open(lane);
  for (let b = lane.rng.int(1, 4); b > 0; b--) {
    const reqs = Array.from({ length: lane.rng.int(2, 16) }, () => nextReq(lane));
    await send(lane, p, reqs);
    for (const req of reqs) await check(lane, p, req);
  }
  await finish(lane, p);
};

/** Connection: close: one request per connection; the server closes after the response. */
const close: Scenario = async (lane) => {
  for (let n = lane.rng.int(1, 3); n > 0; n--) {
    const p = await open(lane);
    const req = nextReq(lane, true);
    await send(lane, p, [req]);
    await check(lane, p, req);
    await p.expectEof('http after Connection: close');
    lane.c.clean++;
  }
};

/** The client leaves mid-request: inside the header block, inside a body, or while the handler is still working. */
const abortRequest: Scenario = async (lane) => {
  const p = await open(lane);
  const mode = lane.rng.int(0, 2);
  if (mode === 0) {
    const req = nextReq(lane);
    const end = req.bytes.indexOf('\r\n\r\n');
    await p.write(req.bytes.subarray(0, lane.rng.int(1, end + 3)), 'http send');
  } else if (mode === 1) {
    const body = new ByteStream(lane.rng.seed()).next(lane.rng.int(2, 200_000));
    const bytes = request('POST', '/echo', false, `Content-Length: ${body.length}\r\n`, body);
    await p.write(bytes.subarray(0, bytes.length - lane.rng.int(1, body.length)), 'http send');
  } else {
    const n = lane.rng.int(0, 2 * MIB);
    await p.write(request('GET', `/dyn/${n}?s=1&d=${lane.rng.int(20, 300)}`, false), 'http send');
  }
  await sleep(lane.rng.int(0, 100));
  if (lane.rng.chance(0.5)) { p.reset(); lane.c.resets++; } else { p.destroy(); lane.c.aborts++; }
};

/** The client leaves mid-response: a large body partly read (the prefix verified), then close or reset. */
const abortResponse: Scenario = async (lane) => {
  const p = await open(lane);
  const req = nextReq(lane, false, true);
  await send(lane, p, [req]);
  // the header block, then part of the body
  const what = `http ${req.desc}`;
  const line = await p.readLine(what);
  if (!line.startsWith('HTTP/1.1 200 ')) throw new Failure(`${what}: status line ${JSON.stringify(line.slice(0, 80))}`);
  let chunked = false;
  for (let h = await p.readLine(what); h !== ''; h = await p.readLine(what)) if (/^transfer-encoding:\s*chunked/i.test(h)) chunked = true;
  if (!chunked) {
    const want = req.body!, k = lane.rng.int(0, want.length - 1);
    let off = 0;
    while (off < k) { const got = await p.readSome(k - off, what); if (got === null) throw new Failure(`${what}: EOF at body byte ${off}`); verify(lane, got, want.subarray(off, off + got.length), what, off); off += got.length; }
  } else await sleep(lane.rng.int(0, 50));
  if (lane.rng.chance(0.5)) { p.reset(); lane.c.resets++; } else { p.destroy(); lane.c.aborts++; }
};

/** Zero window: 3–10 pipelined large responses, reading stopped for seconds; then all verified. */
const stall: Scenario = async (lane) => {
  const p = await open(lane);
  const reqs = Array.from({ length: lane.rng.int(3, 10) }, () => nextReq(lane, false, lane.rng.chance(0.7)));
  p.pause();
  await send(lane, p, reqs, false);
  await sleep(lane.rng.int(1000, lane.stallMaxS * 1000));
  p.resume();
  for (const req of reqs) await check(lane, p, req);
  await finish(lane, p);
};

/** Half-close: 1–8 pipelined requests and end() at once; every response, then the server's EOF. */
const halfClose: Scenario = async (lane) => {
  const p = await open(lane);
  const reqs = Array.from({ length: lane.rng.int(1, 8) }, () => nextReq(lane));
  await send(lane, p, reqs, false);
  p.end();
  for (const req of reqs) await check(lane, p, req);
  await p.expectEof('http half-close');
  lane.c.clean++;
};

/** Slow drip: 1–2 small requests, one byte per write, 0–8 ms apart. */
const drip: Scenario = async (lane) => {
  const p = await open(lane);
  const reqs = Array.from({ length: lane.rng.int(1, 2) }, () => nextReq(lane, false, false, true));
  const bytes = Buffer.concat(reqs.map((r) => r.bytes));
  for (let i = 0; i < bytes.length; i++) { await p.write(bytes.subarray(i, i + 1), 'http drip'); await sleep(lane.rng.int(0, 8)); }
  lane.c.bytesSent += bytes.length;
  for (const req of reqs) await check(lane, p, req);
  await finish(lane, p);
};

/** A reset after some of a pipelined batch's responses. */
const reset: Scenario = async (lane) => {
  const p = await open(lane);
  const reqs = Array.from({ length: lane.rng.int(2, 10) }, () => nextReq(lane));
  await send(lane, p, reqs, false);
  try {
    for (let i = 0, n = lane.rng.int(0, reqs.length - 1); i < n; i++) await check(lane, p, reqs[i]!);
    await sleep(lane.rng.int(0, 20));
  } finally { p.reset(); lane.c.resets++; }
};

export const HTTP_SCENARIOS: readonly (readonly [string, Scenario, number])[] = [
  ['keep-alive', keepAlive, 25], ['pipelined', pipelined, 20], ['close', close, 12], ['abort-request', abortRequest, 8],
  ['abort-response', abortResponse, 8], ['stall', stall, 6], ['half-close', halfClose, 10], ['drip', drip, 6], ['reset', reset, 8],
];

/**
 * Half-close on node:http: it answers a client's FIN by ending its own side (its default, `httpAllowHalfOpen` false:
 * a half-closed client is taken for one that left), so responses not yet written when the FIN is read are never sent,
 * and one being written is cut — on node:net as on megapipe/net. 1–8 pipelined requests and end() at once; the
 * responses that come are checked, the last one up to where the server's EOF cut it (every byte that came verified),
 * then nothing more may come.
 */
const halfCloseCut: Scenario = async (lane) => {
  const p = await open(lane);
  const reqs = Array.from({ length: lane.rng.int(1, 8) }, () => nextReq(lane));
  await send(lane, p, reqs, false);
  p.end();
  for (const req of reqs) if (!(await check(lane, p, req, true))) break;
  await p.expectEof('http half-close');
  lane.c.clean++;
};

/** node-http's scenarios: megapipe-http's, with node:http's half-close. */
export const NODE_HTTP_SCENARIOS: readonly (readonly [string, Scenario, number])[] = HTTP_SCENARIOS.map(([name, sc, w]) => [name, name === 'half-close' ? halfCloseCut : sc, w] as const);
