// The request object handlers receive: method, target, lazily decoded headers and query, and the body
// (buffered with `body()`, or streamed with `for await (const chunk of req)`).

import type { Fields } from './headers.js';
import type { RequestHead } from './parser.js';
import { HttpError } from './status.js';

/** (Internal to megapipe-http.) What the connection provides to a request's body reader. */
export interface BodyHost {
  /** The handler starts reading the body (send `100 Continue` when it was expected). */
  bodyWanted(req: HttpRequest): void;
  /** Buffered body bytes were taken by the handler (flow control: the connection may resume reading). */
  bodyConsumed(req: HttpRequest): void;
  /** The client's address (Conn.remoteAddress). */
  readonly remoteAddress: string | undefined;
}

const BODY_UNREAD = 0;
const BODY_READING = 1;
const BODY_DISCARD = 2;

export class HttpRequest implements AsyncIterable<Uint8Array> {
  /** Request method, upper case (`GET`, `HEAD`, `POST`, ...). */
  readonly method: string;
  /** The request-target exactly as received, e.g. `/a%20b/c?x=1` (or an absolute URI, or `*`). */
  readonly target: string;
  /** The path part of the target, still percent-encoded (`/a%20b/c`); `*` for `OPTIONS *`. */
  readonly path: string;
  /** `'1.1'` or `'1.0'`. */
  readonly httpVersion: '1.0' | '1.1';
  /** Header fields: case-insensitive `get(name)`, `has`, `getAll`, iteration. */
  readonly headers: Fields;
  /** Trailer fields of a chunked body, once the body has been read completely (null when none). */
  trailers: Fields | null = null;
  /** Index of the worker thread serving the request (0 when single-threaded). */
  readonly worker: number;
  /**
   * The client's address (`'127.0.0.1'`, `'::1'`): the connection's peer, read at first use (Conn.remoteAddress).
   * Behind a proxy this is the proxy; undefined when the connection is already gone.
   */
  get ip(): string | undefined { return this.host.remoteAddress; }
  /** Declared body length (Content-Length), or -1 (none, or chunked). */
  readonly contentLength: number;
  /** The connection is to persist after this exchange, as the client asked. */
  readonly keepAlive: boolean;
  /** @internal */
  readonly expectContinue: boolean;
  /** @internal */
  readonly hasBody: boolean;

  private readonly queryStart: number;
  private queryParams: URLSearchParams | undefined;

  // body state, driven by the connection
  /** @internal */ _chunks: Buffer[] = [];
  /** @internal */ _buffered = 0;
  /** @internal */ _done: boolean;
  /** @internal */ _error: Error | null = null;
  /** @internal */ _mode = BODY_UNREAD;
  private waiter: (() => void) | null = null;

  /** @internal */
  constructor(head: RequestHead, private readonly host: BodyHost, worker: number, private readonly maxBody: number) {
    this.method = head.method;
    this.target = head.target;
    this.httpVersion = head.minor === 0 ? '1.0' : '1.1';
    this.headers = head.fields;
    this.worker = worker;
    this.contentLength = head.chunked ? -1 : head.contentLength;
    this.keepAlive = head.keepAlive;
    this.expectContinue = head.expectContinue;
    this.hasBody = head.hasBody;
    this._done = !head.hasBody;
    const t = head.target;
    let ps = 0;
    if (t.charCodeAt(0) !== 0x2f && t !== '*') {
      // absolute-form: skip "scheme://authority"
      const a = t.indexOf('//') + 2;
      const s = t.indexOf('/', a);
      const q = t.indexOf('?', a);
      ps = s < 0 || (q >= 0 && q < s) ? -1 : s;
      if (ps < 0) {
        this.queryStart = q;
        this.path = '/';
        return;
      }
    }
    const q = t.indexOf('?', ps);
    this.queryStart = q;
    this.path = t.slice(ps, q < 0 ? t.length : q);
  }

  /** The raw query string without `?` (percent-encoded), '' when none. */
  get rawQuery(): string {
    return this.queryStart < 0 ? '' : this.target.slice(this.queryStart + 1);
  }

  /** The query, parsed on first use. */
  get query(): URLSearchParams {
    return (this.queryParams ??= new URLSearchParams(this.rawQuery));
  }

  /** The whole body has arrived (true at once when there is none). */
  get complete(): boolean {
    return this._done;
  }

  /**
   * The whole body, buffered. Rejects with HttpError(413) above `limit` (default: the server's maxBodySize) and
   * with HttpError(400/408) when the body is malformed or stalls. Can be called once (or iterate instead).
   */
  async body(limit: number = this.maxBody): Promise<Uint8Array> {
    if (this.contentLength > limit) throw new HttpError(413);
    const parts: Buffer[] = [];
    let total = 0;
    for await (const chunk of this) {
      total += chunk.byteLength;
      if (total > limit) {
        this._discard();
        throw new HttpError(413);
      }
      parts.push(chunk as Buffer);
    }
    return parts.length === 1 ? parts[0] : Buffer.concat(parts, total);
  }

  /** The body decoded as UTF-8. */
  async text(limit?: number): Promise<string> {
    const b = await this.body(limit);
    return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('utf8');
  }

  /** The body parsed as JSON; HttpError(400) when it is not JSON. */
  async json<T = unknown>(limit?: number): Promise<T> {
    const s = await this.text(limit);
    try {
      return JSON.parse(s) as T;
    } catch {
      throw new HttpError(400, 'invalid JSON body');
    }
  }

  /**
   * Stream the body: each chunk is a fresh buffer the handler may keep, holding everything received since the previous
   * one (chunk boundaries are not the client's chunked-coding boundaries nor its writes).
   */
  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    if (this._mode !== BODY_UNREAD) {
      const err = new Error('request body already read');
      return { next: () => Promise.reject(err) };
    }
    this._mode = BODY_READING;
    if (!this._done) this.host.bodyWanted(this);
    return {
      next: () => this.read(),
      return: () => {
        this._discard();
        return Promise.resolve({ done: true, value: undefined });
      },
    };
  }

  private read(): Promise<IteratorResult<Uint8Array>> {
    for (;;) {
      if (this._chunks.length > 0) {
        // everything buffered, as one chunk: a read costs O(bytes buffered), whatever the count of pieces (a body of
        // many 1-byte chunks once cost O(pieces²) through shift() on an array of up to bodyBufferSize buffers)
        const cs = this._chunks;
        const c = cs.length === 1 ? cs[0] : Buffer.concat(cs);
        this._chunks = [];
        this._buffered -= c.byteLength;
        this.host.bodyConsumed(this);
        return Promise.resolve({ done: false, value: c });
      }
      if (this._error) return Promise.reject(this._error);
      if (this._done || this._mode === BODY_DISCARD) return Promise.resolve({ done: true, value: undefined });
      return new Promise<void>((resolve) => { this.waiter = resolve; }).then(() => this.read());
    }
  }

  private wake(): void {
    const w = this.waiter;
    if (w) {
      this.waiter = null;
      w();
    }
  }

  /** @internal body bytes from the parser (a view: copied here) */
  _push(buf: Uint8Array, off: number, len: number): void {
    if (this._mode === BODY_DISCARD || len === 0) return;
    const c = Buffer.allocUnsafe(len);
    c.set(buf.subarray(off, off + len));
    this._chunks.push(c);
    this._buffered += len;
    this.wake();
  }

  /** @internal the body is complete */
  _end(trailers: Fields | null): void {
    this._done = true;
    this.trailers = trailers;
    this.wake();
  }

  /** @internal the body failed (framing error, timeout, connection lost) */
  _fail(err: Error): void {
    if (this._done) return;
    this._error = err;
    this.wake();
  }

  /** @internal drop buffered and further body bytes (the response is done, or the reader gave up) */
  _discard(): void {
    this._mode = BODY_DISCARD;
    this._chunks.length = 0;
    if (this._buffered !== 0) {
      this._buffered = 0;
      this.host.bodyConsumed(this);
    }
    this.wake();
  }

  /** @internal */
  get _discarding(): boolean {
    return this._mode === BODY_DISCARD;
  }
  /** @internal */
  get _reading(): boolean {
    return this._mode === BODY_READING;
  }
}
