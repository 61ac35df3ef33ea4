// The response object handlers write to. Whatever the handler does, bytes reach the connection strictly in
// request order: a response whose predecessors are still in progress is buffered (whole bodies) or waits before
// pulling its next chunk (streams, files) until it is at the head of the connection's pipeline.

import { httpDate } from './date.js';
import type { HttpRequest } from './request.js';
import { HttpError, isErrorStatus, reasonPhrase } from './status.js';

/** (Internal to megapipe-http.) The exchange (one request's slot in its connection's pipeline) a response writes through. */
export interface ResponseTarget {
  readonly req: HttpRequest;
  readonly headOnly: boolean;
  /** The connection is gone: stop producing. */
  readonly aborted: boolean;
  readonly serverName: string;
  /** Decide (once, when rendering the head) whether the connection closes after this response. */
  decideClose(closeDelimited: boolean): boolean;
  /** Queue bytes in order (copied). A string is written as Latin-1. */
  emit(data: string | Uint8Array): void;
  /** Queue immutable bytes in order (a cached response or body): sent from `data` itself where the transport can. */
  emitShared(data: Uint8Array): void;
  /** Head and body in one write where cheap; `shared`: the body is immutable (see emitShared). */
  emitHeadAndBody(head: string, body: Uint8Array | null, off: number, len: number, shared: boolean): void;
  /** Null when more may be written now; otherwise resolves once this response is head-of-line and the
   * connection is below its high-water mark (or aborted). */
  whenWritable(): Promise<void> | null;
  /**
   * Queue `length` bytes of the open file `fd` from `position` (only when head-of-line: after whenWritable() returned
   * null). Through the connection's ring on io_uring. Resolves once read; `fd` must stay open until then.
   */
  emitFile(fd: number, position: number, length: number): Promise<void>;
  /** Read (part of) a file through the connection's worker — its ring on io_uring. Shorter at the end of the file. */
  readFile(fd: number, position: number, length: number): Promise<Buffer>;
  /** The response is complete. */
  finish(): void;
  /** Destroy the connection (a response cannot be completed). */
  abort(): void;
}

/**
 * @internal A response the server answers itself, without a handler (a parser fault, a timeout, over the connection
 * limit): a short text body, always closing the connection. `extra`: more header lines, each ending in CRLF.
 */
export function cannedResponse(serverName: string, status: number, extra = ''): string {
  const body = `${status} ${reasonPhrase(status)}\n`;
  return (
    `HTTP/1.1 ${status} ${reasonPhrase(status)}\r\nServer: ${serverName}\r\nDate: ${httpDate()}\r\n` + extra +
    `Content-Type: text/plain; charset=utf-8\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`
  );
}

/** Options for `res.file()`. */
export interface FileOptions {
  /** Content-Type; default from the file's extension. A valid header value (as setHeader checks), else a TypeError. */
  contentType?: string;
  /** Honour Range / conditional headers (default true). */
  conditional?: boolean;
}

/**
 * @internal A cached entity's complete keep-alive 200 response (head + body), valid for the Date value and the
 * server name it was rendered with; see `HttpResponse.sendCached`. Start with `{ wire: null, closeWire: null, date: '', server: '' }`.
 */
export interface WireSlot {
  wire: Buffer | null;
  /** the same ending with `Connection: close` (the connection closes after it) */
  closeWire: Buffer | null;
  date: string;
  server: string;
}

/** Implemented by static.ts; injected to keep this module free of file-system code. */
export type FileSender = (req: HttpRequest, res: HttpResponse, path: string, options?: FileOptions) => Promise<void>;
let fileSender: FileSender | null = null;
/** @internal */
export function setFileSender(f: FileSender): void {
  fileSender = f;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
/** A header field value a response may carry: tab, visible ASCII, space and obs-text only (no CR, LF, NUL or other
 * controls, which would end the line or inject another). The one check for every header value the server sends. */
export function isFieldValue(v: string): boolean {
  return FIELD_VALUE.test(v);
}
/** header names the server computes itself (framing and connection management) */
const RESERVED = new Set(['content-length', 'transfer-encoding', 'connection', 'date', 'keep-alive']);

const BODY_NONE = -3; // 1xx/204/304, or a HEAD response without known length
const BODY_CLOSE = -2; // close-delimited (HTTP/1.0 client, unknown length)
const BODY_CHUNKED = -1;

export class HttpResponse {
  /** Status to send (default 200). */
  statusCode = 200;
  private readonly names: string[] = [];
  private readonly lnames: string[] = [];
  private readonly values: string[] = [];
  private startedFlag = false;
  private finishedFlag = false;

  /** @internal */
  constructor(private readonly ex: ResponseTarget) {}

  /** The head has been produced (headers can no longer change). */
  get headersSent(): boolean {
    return this.startedFlag;
  }
  /** The handler has started responding (send/json/stream/file called). */
  get started(): boolean {
    return this.startedFlag;
  }
  /** The response is complete. */
  get finished(): boolean {
    return this.finishedFlag;
  }
  /** The connection is gone (a streaming handler can stop). */
  get aborted(): boolean {
    return this.ex.aborted;
  }

  /** Set the status code (200-599). */
  status(code: number): this {
    if (!Number.isInteger(code) || code < 200 || code > 599) throw new RangeError(`invalid status ${code}`);
    this.statusCode = code;
    return this;
  }

  /** Set a header, replacing any of that name. An array sends several lines (e.g. Set-Cookie). */
  setHeader(name: string, value: string | number | readonly string[]): this {
    this.removeHeader(name);
    if (Array.isArray(value)) for (const v of value) this.appendHeader(name, v);
    else this.appendHeader(name, value as string | number);
    return this;
  }

  /** Add a header line, keeping others of that name. */
  appendHeader(name: string, value: string | number): this {
    if (this.startedFlag) throw new Error('headers already sent');
    if (!TOKEN.test(name)) throw new TypeError(`invalid header name ${JSON.stringify(name)}`);
    const v = String(value);
    if (!isFieldValue(v)) throw new TypeError(`invalid value for header ${name}`);
    const l = name.toLowerCase();
    if (RESERVED.has(l) && l !== 'content-length') throw new TypeError(`header ${name} is managed by the server`);
    this.names.push(name);
    this.lnames.push(l);
    this.values.push(v.trim());
    return this;
  }

  getHeader(name: string): string | undefined {
    const i = this.lnames.indexOf(name.toLowerCase());
    return i < 0 ? undefined : this.values[i];
  }

  hasHeader(name: string): boolean {
    return this.lnames.indexOf(name.toLowerCase()) >= 0;
  }

  removeHeader(name: string): this {
    if (this.startedFlag) throw new Error('headers already sent');
    const l = name.toLowerCase();
    for (let i = this.lnames.length - 1; i >= 0; i--) {
      if (this.lnames[i] === l) {
        this.names.splice(i, 1);
        this.lnames.splice(i, 1);
        this.values.splice(i, 1);
      }
    }
    return this;
  }

  /**
   * Send the whole response. A string is sent as UTF-8 (default Content-Type text/plain; charset=utf-8), bytes as
   * they are (default application/octet-stream). Content-Length is computed; HEAD requests get the headers only.
   */
  send(body?: string | Uint8Array): void {
    this.start();
    let bytes: Uint8Array | null = null;
    let type: string | null = null;
    if (typeof body === 'string') {
      bytes = Buffer.from(body, 'utf8');
      type = 'text/plain; charset=utf-8';
    } else if (body !== undefined && body !== null) {
      bytes = body;
      type = 'application/octet-stream';
    }
    const s = this.statusCode;
    const noBody = s === 204 || s === 304;
    const len = bytes === null ? 0 : bytes.byteLength;
    let extra = '';
    if (type !== null && !noBody && !this.hasHeader('content-type')) extra = 'Content-Type: ' + type + '\r\n';
    const head = this.renderHead(s, extra, noBody ? BODY_NONE : len);
    this.ex.emitHeadAndBody(head, noBody || this.ex.headOnly ? null : bytes, 0, len, false);
    this.end();
  }

  /** Send `value` as JSON (Content-Type application/json unless set). */
  json(value: unknown): void {
    if (!this.hasHeader('content-type')) this.setHeader('Content-Type', 'application/json; charset=utf-8');
    this.send(JSON.stringify(value) ?? 'null');
  }

  /** Redirect to `location` (default 302). */
  redirect(location: string, status = 302): void {
    this.status(status);
    this.setHeader('Location', encodeURI(decodeURIComponentSafe(location)));
    this.send(`${status} ${reasonPhrase(status)}: ${location}\n`);
  }

  /**
   * Stream a body from an (async) iterable of byte arrays or strings (UTF-8): chunked transfer coding for HTTP/1.1
   * clients (or exactly `Content-Length` bytes when that header was set), close-delimited for HTTP/1.0 clients.
   * Chunks are pulled only when the connection can take them (pipelining order and backpressure). Resolves when the
   * last chunk is queued; rejects (after destroying the connection) if the source throws mid-way.
   */
  async stream(source: AsyncIterable<Uint8Array | string> | Iterable<Uint8Array | string>): Promise<void> {
    const declared = this.getHeader('content-length');
    if (declared !== undefined && !/^\d+$/.test(declared)) throw new TypeError('invalid Content-Length');
    this.start();
    const s = this.statusCode;
    const known = declared === undefined ? -1 : Number(declared);
    const noBody = s === 204 || s === 304;
    const ex = this.ex;
    let mode: number;
    if (noBody) mode = BODY_NONE;
    else if (known >= 0) mode = known;
    else if (ex.headOnly) mode = BODY_NONE;
    else mode = ex.req.httpVersion === '1.1' ? BODY_CHUNKED : BODY_CLOSE;
    let extra = '';
    if (!noBody && !this.hasHeader('content-type')) extra = 'Content-Type: application/octet-stream\r\n';
    ex.emit(this.renderHead(s, extra, mode));
    if (ex.headOnly || noBody) {
      this.end();
      return;
    }
    const it: Iterator<Uint8Array | string> | AsyncIterator<Uint8Array | string> =
      Symbol.asyncIterator in source
        ? (source as AsyncIterable<Uint8Array | string>)[Symbol.asyncIterator]()
        : (source as Iterable<Uint8Array | string>)[Symbol.iterator]();
    let sent = 0;
    try {
      for (;;) {
        let w: Promise<void> | null;
        while ((w = ex.whenWritable()) !== null) await w;
        if (ex.aborted) {
          await it.return?.();
          return;
        }
        const r = await it.next();
        if (r.done) break;
        const chunk = typeof r.value === 'string' ? Buffer.from(r.value, 'utf8') : r.value;
        const n = chunk.byteLength;
        if (n === 0) continue;
        sent += n;
        if (mode === BODY_CHUNKED) {
          const size = n.toString(16) + '\r\n';
          const framed = Buffer.allocUnsafe(size.length + n + 2);
          framed.write(size, 0, 'latin1');
          framed.set(chunk, size.length);
          framed[size.length + n] = 13;
          framed[size.length + n + 1] = 10;
          ex.emit(framed);
        } else {
          if (mode >= 0 && sent > mode) throw new Error('stream longer than its Content-Length');
          ex.emit(chunk);
        }
      }
    } catch (e) {
      this.finishedFlag = true;
      ex.abort();
      throw e;
    }
    if (mode >= 0 && sent !== mode) {
      this.finishedFlag = true;
      ex.abort();
      throw new Error('stream shorter than its Content-Length');
    }
    if (mode === BODY_CHUNKED) ex.emit('0\r\n\r\n');
    this.end();
  }

  /**
   * Send a file (any path: no root confinement here — use serveStatic for that), with Content-Type from its
   * extension, ETag/Last-Modified, conditional requests and single ranges. 404 when it is not a regular file.
   */
  file(path: string, options?: FileOptions): Promise<void> {
    if (fileSender === null) throw new Error('file sending is not available (import static.js)');
    return fileSender(this.ex.req, this, path, options);
  }

  // ---- internal, used by the server and the static file handler ----

  private start(): void {
    if (this.startedFlag) throw new Error('response already started');
    this.startedFlag = true;
  }

  private end(): void {
    this.finishedFlag = true;
    this.ex.finish();
  }

  /** @internal Render the head. `body`: length, or BODY_CHUNKED / BODY_CLOSE / BODY_NONE. */
  renderHead(status: number, extra: string, body: number): string {
    return this.renderHeadAs(status, extra, body, this.ex.decideClose(body === BODY_CLOSE));
  }

  /** The head, with the connection's fate (`close`) already decided. */
  private renderHeadAs(status: number, extra: string, body: number, close: boolean): string {
    let h = 'HTTP/1.1 ' + status + ' ' + reasonPhrase(status) + '\r\n';
    if (!this.hasHeader('server')) h += 'Server: ' + this.ex.serverName + '\r\n';
    h += 'Date: ' + httpDate() + '\r\n';
    for (let i = 0; i < this.names.length; i++) {
      if (this.lnames[i] === 'content-length') continue;
      h += this.names[i] + ': ' + this.values[i] + '\r\n';
    }
    h += extra;
    if (body >= 0) h += 'Content-Length: ' + body + '\r\n';
    else if (body === BODY_CHUNKED) h += 'Transfer-Encoding: chunked\r\n';
    if (close) h += 'Connection: close\r\n';
    else if (this.ex.req.httpVersion === '1.0') h += 'Connection: keep-alive\r\n';
    return h + '\r\n';
  }

  /**
   * @internal Send a prepared entity: `extra` holds trusted, pre-rendered header lines (e.g. a cached file's
   * Content-Type/ETag/Last-Modified); `body[off, off+len)` is the payload (null: none, e.g. 304), immutable (a cached
   * body, sent without a copy where the transport can).
   */
  sendPrepared(status: number, extra: string, body: Uint8Array | null, off: number, len: number): void {
    this.start();
    this.statusCode = status;
    const noBody = status === 204 || status === 304;
    const head = this.renderHead(status, extra, noBody ? BODY_NONE : len);
    this.ex.emitHeadAndBody(head, noBody || this.ex.headOnly ? null : body, off, len, true);
    this.end();
  }

  /**
   * @internal Send a cached entity's full 200 response (`extra`: its prepared header lines, `body`: all of it)
   * from `slot`, which keeps the complete wire form (head + body) and is rebuilt only when the Date second or the
   * server name changes: the common request (HTTP/1.1 GET, keep-alive or closing, no header set by a handler) is
   * then one write of prepared bytes (sent without a copy where the transport can) — no head rendering, no
   * allocation. Anything else (HEAD, HTTP/1.0, headers or status set by a handler) is answered exactly like
   * `sendPrepared`.
   */
  sendCached(slot: WireSlot, extra: string, body: Uint8Array): void {
    const ex = this.ex;
    const len = body.byteLength;
    if (this.names.length !== 0 || this.statusCode !== 200 || ex.headOnly || ex.req.httpVersion !== '1.1') {
      return this.sendPrepared(200, extra, body, 0, len);
    }
    this.start();
    const close = ex.decideClose(false);
    const date = httpDate();
    const server = ex.serverName;
    if (slot.date !== date || slot.server !== server) {
      slot.wire = slot.closeWire = null;
      slot.date = date;
      slot.server = server;
    }
    let wire = close ? slot.closeWire : slot.wire;
    if (wire === null) {
      const head = this.renderHeadAs(200, extra, len, close);
      wire = Buffer.allocUnsafeSlow(head.length + len);
      wire.write(head, 0, 'latin1');
      wire.set(body, head.length);
      if (close) slot.closeWire = wire;
      else slot.wire = wire;
    }
    ex.emitShared(wire);
    this.end();
  }

  /**
   * @internal Send `length` bytes of the open file `fd` from `position` as the body: the head, then — once this
   * response is head-of-line and the connection below its high-water mark — the file through the connection
   * (read by the worker's ring into send memory on io_uring). Resolves when the file has been read (the caller may
   * close `fd` then). A file that ends early or fails to read destroys the connection (its framing is broken).
   */
  async sendPreparedFile(status: number, extra: string, fd: number, position: number, length: number): Promise<void> {
    this.start();
    this.statusCode = status;
    const ex = this.ex;
    ex.emit(this.renderHead(status, extra, length));
    if (ex.headOnly || length === 0) {
      this.end();
      return;
    }
    try {
      let w: Promise<void> | null;
      while ((w = ex.whenWritable()) !== null) await w;
      if (ex.aborted) return;
      await ex.emitFile(fd, position, length);
    } catch (e) {
      this.finishedFlag = true;
      // the connection went away meanwhile: nothing to report (the file's promise may settle before the session hears
      // of the close: then its error says so)
      if (ex.aborted || connectionGone(e)) return;
      ex.abort();
      throw e;
    }
    this.end();
  }

  /** @internal Read a file through the connection's worker (see ResponseTarget.readFile). */
  readFile(fd: number, position: number, length: number): Promise<Buffer> {
    return this.ex.readFile(fd, position, length);
  }

  /** @internal Answer with an error status, discarding headers the handler set: `message` as the body (text/plain),
   * or `404 Not Found` and a newline. A `status` that is not an error status (an integer 400..599) is answered as
   * 500 without the message: no path can send a 1xx, 2xx or malformed status line as an error. */
  sendError(status: number, message?: string): void {
    if (!isErrorStatus(status)) {
      status = 500;
      message = undefined;
    }
    this.names.length = 0;
    this.lnames.length = 0;
    this.values.length = 0;
    this.statusCode = status;
    this.send(message ?? `${status} ${reasonPhrase(status)}\n`);
  }
}

/** Errors of a sendFile that mean the connection went away (the peer left, or it was closed), not the file's. */
const GONE = new Set(['ECONNRESET', 'EPIPE', 'ENOTCONN', 'ECONNABORTED', 'MP_ERR_CLOSED']);
function connectionGone(e: unknown): boolean {
  return GONE.has((e as { code?: string } | null)?.code ?? '');
}

function decodeURIComponentSafe(s: string): string {
  try {
    return decodeURI(s);
  } catch {
    return s;
  }
}

export { HttpError };
