// Shared helpers for the megapipe-http tests: a server on loopback port 0 (node:net or a channel) and a raw-socket
// client that parses responses byte-exactly. Imported by the other http-*.test files; its own self-tests run only when
// this file is the one executed.

import assert from 'node:assert/strict';
import * as net from 'node:net';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { createChannel, listen, listenPortable, serveChannel, serveNet, uringAvailability } from '../src/index.js';
import { httpDate } from '../apps/http/date.js';
import { createHttpApp, type HttpApp, type HttpServerOptions } from '../apps/http/app.js';

/** The transports the app runs on: node:net (serveNet) and the library's channels (serveChannel) on both backends. */
export type Transport = 'net' | 'uring' | 'portable';
const ALL_TRANSPORTS: readonly Transport[] = ['net', 'uring', 'portable'];
/** MEGAPIPE_HTTP_TRANSPORTS=net,uring restricts the suites to some transports. */
export const TRANSPORTS: readonly Transport[] = process.env.MEGAPIPE_HTTP_TRANSPORTS
  ? ALL_TRANSPORTS.filter((t) => process.env.MEGAPIPE_HTTP_TRANSPORTS!.split(',').includes(t))
  : ALL_TRANSPORTS;
/**
 * The transports of the suites that must hold where megapipe-http is shipped and benchmarked: io_uring channels first
 * (what `megapipe-http` serves on), node:net second (the baseline). Restricted by MEGAPIPE_HTTP_TRANSPORTS too.
 */
export const SHIPPED_TRANSPORTS: readonly Transport[] = (['uring', 'net'] as const).filter((t) => TRANSPORTS.includes(t));
const uring = uringAvailability();
/** node:test skip value for a transport. */
export function skipTransport(t: Transport): string | false {
  return t === 'uring' && !uring.ok ? `io_uring unavailable: ${uring.reason}` : false;
}

/** Guard against a hung test: a bound on waiting, not a timing assertion. */
export const GUARD_MS = 15_000;

export interface TestServer {
  port: number;
  app: HttpApp;
  /** Stop accepting and close every connection gracefully (Session.shutdown), within `deadlineMs`. */
  stop(deadlineMs: number): Promise<void>;
  close(): Promise<void>;
}

export async function startApp(options: HttpServerOptions, transport: Transport = 'net'): Promise<TestServer> {
  const app = createHttpApp({ onError: () => {}, ...options });
  if (transport === 'net') {
    const handle = await serveNet(app.factory, { host: '127.0.0.1', port: 0, maxConnections: 100_000 });
    let stopped: Promise<void> | null = null;
    const stop = (d: number) => (stopped ??= handle.close(d));
    return {
      port: handle.port,
      app,
      stop,
      async close() {
        await stop(200);
        app.close();
      },
    };
  }
  const channel = createChannel({ backend: transport });
  const listener = transport === 'uring' ? listen({ host: '127.0.0.1', port: 0 }) : await listenPortable({ host: '127.0.0.1', port: 0 });
  const server = serveChannel(channel, listener, app.factory);
  let stopped: Promise<void> | null = null;
  const stop = (d: number) => (stopped ??= server.close(d));
  return {
    port: listener.port,
    app,
    stop,
    async close() {
      // bounded: a transport whose graceful close hangs must not hang the suite (the tests that need a clean close
      // check it themselves)
      const done = await Promise.race([stop(200).then(() => true), delay(3000).then(() => false)]);
      if (!done) process.stderr.write(`megapipe-http tests: ${transport} close did not finish; forcing the channel closed\n`);
      app.close();
      listener.close();
      channel.close();
    },
  };
}

export interface RawResponse {
  status: number;
  reason: string;
  version: string;
  /** lower-case names; duplicates joined with ", " */
  headers: Record<string, string>;
  /** header lines as received, in order ([name as sent, value]) */
  lines: [string, string][];
  body: Buffer;
  trailers: Record<string, string>;
  chunked: boolean;
}

/** `p`, or a rejection naming `what` after GUARD_MS (a hang guard, not a timing assertion). */
export function bounded<T>(p: Promise<T>, what: string, ms = GUARD_MS): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<T>((_, reject) => {
      t = setTimeout(() => reject(new Error(`${what}: not done within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(t));
}

/** IMF-fixdate (RFC 9110 §5.6.7), the form of every HTTP date megapipe-http sends. */
export const IMF_FIXDATE = /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d GMT$/;

/**
 * Run `request` (which sends one request on `c`), read the response, and check its Date header: an IMF-fixdate (with
 * the right weekday) that the server's own date source (httpDate, the same module in this process) gave during the
 * exchange — between its values just before sending and just after the response was read. Returns the response.
 */
export async function datedResponse(c: RawClient, request: () => void): Promise<RawResponse> {
  const before = Date.parse(httpDate());
  request();
  const r = await c.readResponse();
  const after = Date.parse(httpDate());
  const d = r.headers['date'];
  assert.match(d ?? '', IMF_FIXDATE);
  assert.equal(new Date(Date.parse(d)).toUTCString(), d, 'a real date, weekday included');
  const t = Date.parse(d);
  assert.ok(before <= t && t <= after, `Date ${d} is the server's date during the exchange (${httpDate(before)} .. ${httpDate(after)})`);
  return r;
}

/** Wait until `cond()` holds, checking every 10 ms; throws naming `what` after `ms` (a hang guard). */
export async function until(cond: () => boolean, what: string, ms = GUARD_MS): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`${what}: not so within ${ms} ms`);
    await delay(10);
  }
}

export interface Deferred<T> {
  promise: Promise<T>;
  resolve(v: T): void;
}

/** A promise with its resolve function: an event a test waits for. */
export function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

export function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A raw TCP client that accumulates everything the server sends and parses responses out of it. */
export class RawClient {
  private buf: Buffer = Buffer.alloc(0);
  closed = false;
  error: Error | null = null;
  private wake: (() => void) | null = null;

  constructor(readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf = this.buf.length === 0 ? d : Buffer.concat([this.buf, d]);
      this.notify();
    });
    socket.on('error', (e) => {
      this.error = e;
    });
    socket.on('close', () => {
      this.closed = true;
      this.notify();
    });
  }

  static connect(port: number): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ port, host: '127.0.0.1', noDelay: true }, () => resolve(new RawClient(s)));
      s.once('error', reject);
    });
  }

  private notify(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  /** Wait for more input (or close); throws after GUARD_MS. */
  private more(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no data from server within ${GUARD_MS} ms`)), GUARD_MS);
      this.wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  send(data: string | Uint8Array): void {
    this.socket.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data);
  }

  /** Send byte by byte, yielding to the event loop between bytes (so that the server sees each in its own read). */
  async sendBytewise(data: string | Uint8Array, every = 1): Promise<void> {
    const b = typeof data === 'string' ? Buffer.from(data, 'latin1') : Buffer.from(data);
    for (let i = 0; i < b.length; i += every) {
      this.socket.write(b.subarray(i, i + every));
      await new Promise<void>((r) => setImmediate(r));
      await delay(0);
    }
  }

  /** Bytes received and not yet parsed. */
  get pending(): Buffer {
    return this.buf;
  }

  private async need(n: number): Promise<void> {
    while (this.buf.length < n) {
      if (this.closed) throw new Error(`connection closed with ${this.buf.length} of ${n} bytes`);
      await this.more();
    }
  }

  private async line(from: number): Promise<number> {
    for (;;) {
      const i = this.buf.indexOf('\r\n', from);
      if (i >= 0) return i;
      if (this.closed) throw new Error('connection closed inside a line: ' + JSON.stringify(this.buf.toString('latin1')));
      await this.more();
    }
  }

  private take(n: number): Buffer {
    const b = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return b;
  }

  /** Parse the next response (for a HEAD request pass head: true). */
  async readResponse(opts: { head?: boolean } = {}): Promise<RawResponse> {
    const end = await (async () => {
      for (;;) {
        const i = this.buf.indexOf('\r\n\r\n');
        if (i >= 0) return i;
        if (this.closed) throw new Error('connection closed before a response head: ' + JSON.stringify(this.buf.toString('latin1')));
        await this.more();
      }
    })();
    const head = this.take(end + 4).toString('latin1');
    const [statusLine, ...rest] = head.slice(0, -4).split('\r\n');
    const m = /^(HTTP\/\d\.\d) (\d{3}) (.*)$/.exec(statusLine);
    assert.ok(m, `bad status line ${JSON.stringify(statusLine)}`);
    const headers: Record<string, string> = {};
    const lines: [string, string][] = [];
    for (const l of rest) {
      const c = l.indexOf(':');
      assert.ok(c > 0, `bad header line ${JSON.stringify(l)}`);
      const k = l.slice(0, c);
      const v = l.slice(c + 1).trim();
      lines.push([k, v]);
      const lk = k.toLowerCase();
      headers[lk] = lk in headers ? headers[lk] + ', ' + v : v;
    }
    const status = Number(m[2]);
    const r: RawResponse = { status, reason: m[3], version: m[1], headers, lines, body: Buffer.alloc(0), trailers: {}, chunked: false };
    if (opts.head || status < 200 || status === 204 || status === 304) return r;
    if (headers['transfer-encoding'] !== undefined) {
      assert.equal(headers['transfer-encoding'], 'chunked');
      assert.equal(headers['content-length'], undefined, 'both Content-Length and Transfer-Encoding');
      r.chunked = true;
      const parts: Buffer[] = [];
      for (;;) {
        const i = await this.line(0);
        const sizeLine = this.take(i + 2).toString('latin1');
        const size = parseInt(sizeLine, 16);
        assert.ok(/^[0-9a-f]+\r\n$/i.test(sizeLine), `bad chunk size line ${JSON.stringify(sizeLine)}`);
        if (size === 0) break;
        await this.need(size + 2);
        parts.push(Buffer.from(this.take(size)));
        assert.equal(this.take(2).toString('latin1'), '\r\n');
      }
      for (;;) {
        const i = await this.line(0);
        const l = this.take(i + 2).toString('latin1');
        if (l === '\r\n') break;
        const c = l.indexOf(':');
        r.trailers[l.slice(0, c).toLowerCase()] = l.slice(c + 1).trim();
      }
      r.body = Buffer.concat(parts);
    } else if (headers['content-length'] !== undefined) {
      const n = Number(headers['content-length']);
      await this.need(n);
      r.body = Buffer.from(this.take(n));
    } else {
      // close-delimited
      while (!this.closed) await this.more();
      r.body = Buffer.from(this.take(this.buf.length));
    }
    return r;
  }

  /** Wait until the server closes the connection; returns the bytes received meanwhile (unparsed). */
  async waitClose(): Promise<Buffer> {
    while (!this.closed) await this.more();
    return this.take(this.buf.length);
  }

  /** Resolves true if the server closed the connection; false if it is still open after sending `probe`. */
  destroy(): void {
    this.socket.destroy();
  }
}

/** One request on a fresh connection, response parsed. */
export async function exchange(port: number, request: string | Uint8Array, opts: { head?: boolean } = {}): Promise<RawResponse & { client: RawClient }> {
  const c = await RawClient.connect(port);
  c.send(request);
  const r = await c.readResponse(opts);
  return { ...r, client: c };
}

/** Send a request that the server must reject with `status` and then close the connection. */
export async function expectRejected(port: number, request: string | Uint8Array, status: number): Promise<RawResponse> {
  const c = await RawClient.connect(port);
  try {
    c.send(request);
    const r = await c.readResponse();
    assert.equal(r.status, status, `expected ${status} for ${JSON.stringify(Buffer.from(request).toString('latin1').slice(0, 200))}, got ${r.status}`);
    assert.equal(r.headers['connection'], 'close');
    const rest = await c.waitClose();
    assert.equal(rest.length, 0, `bytes after the error response: ${JSON.stringify(rest.toString('latin1'))}`);
    return r;
  } finally {
    c.destroy();
  }
}

// ---- self-tests (only when this file is run itself) ----
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  test('RawClient parses content-length, chunked and close-delimited responses', async () => {
    const srv = net.createServer((s) => {
      s.end(
        'HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc' +
          'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nde\r\n1\r\nf\r\n0\r\nX-T: 1\r\n\r\n' +
          'HTTP/1.0 200 OK\r\n\r\nrest',
      );
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as net.AddressInfo).port;
    const c = await RawClient.connect(port);
    assert.equal((await c.readResponse()).body.toString(), 'abc');
    const r2 = await c.readResponse();
    assert.equal(r2.body.toString(), 'def');
    assert.deepEqual(r2.trailers, { 'x-t': '1' });
    assert.equal((await c.readResponse()).body.toString(), 'rest');
    c.destroy();
    await new Promise((r) => srv.close(r));
  });
}
