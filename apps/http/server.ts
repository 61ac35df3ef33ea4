// megapipe-http's connection sessions: HTTP/1.1 over the library's connection-session interface (session.ts), so
// the same code runs on node:net (serveNet) and on io_uring channels (serve()).
//
// Per connection: one RequestParser fed by `data()`, a pipeline of exchanges (one per request, responses written
// strictly in request order), flow control (pause reading while the pipeline is full, while an unread request body
// is buffered beyond a bound, or while output is above the high-water mark), and deadlines checked by ONE coarse
// interval timer per server (idle keep-alive, whole-header-block, body, send, linger).

import type { Conn, Session, SessionFactory } from '../../src/index.js';
import { httpDate } from './date.js';
import { Fields } from './headers.js';
import { DEFAULT_LIMITS, RequestParser, type ParserEvents, type ParserLimits, type RequestHead } from './parser.js';
import { HttpRequest, type BodyHost } from './request.js';
import { HttpResponse, type ResponseTarget } from './response.js';
import { HttpError, reasonPhrase } from './status.js';

/**
 * A request handler. Respond with `res.send/json/stream/file`; return (or resolve) without responding to pass the
 * request to the next handler (e.g. serveStatic); throw an HttpError to answer with its status.
 */
export type Handler = (req: HttpRequest, res: HttpResponse) => void | Promise<void>;

export interface HttpServerOptions extends Partial<ParserLimits> {
  /** Handlers tried in order; the default answer is 404. */
  handler?: Handler | readonly Handler[];
  /** `Server` header value (default "megapipe-http"). */
  serverName?: string;
  /** Close a keep-alive connection idle this long, ms (default 5000). */
  keepAliveTimeout?: number;
  /** Deadline for a complete request header block from its first byte (and for the first request after accept),
   * ms (default 10000): slowloris protection — not reset by each byte received. */
  headerTimeout?: number;
  /**
   * Request body deadlines, ms (default 30000): 408 and close when a body makes no progress this long, and when the
   * whole body has not arrived within this long plus one second per `bodyMinRate` bytes received. Both count from
   * when the server starts reading the body, and neither counts time the server holds reading back (the body buffer
   * full, `100 Continue` not yet sent). The handler's body read fails with HttpError(408).
   */
  bodyTimeout?: number;
  /**
   * The slowest whole-body rate allowed, bytes/s (default 500, Apache mod_reqtimeout's MinRate): a client dripping
   * its body is cut off after about `bodyTimeout`, while an upload at least this fast is never cut off, whatever its
   * size. 0: the whole body must arrive within `bodyTimeout` (as node:http's requestTimeout). RangeError when
   * negative or not finite.
   */
  bodyMinRate?: number;
  /** Destroy when output stays above the high-water mark this long, ms (default 30000). */
  sendTimeout?: number;
  /** Simultaneous connections per server (worker); beyond it, 503 and close (default 10000). */
  maxConnections?: number;
  /** Requests parsed ahead of their responses per connection before reading pauses (default 32). */
  maxPipeline?: number;
  /** Close a connection after this many requests (default 0: unlimited). */
  maxRequestsPerConnection?: number;
  /** Unread request body buffered per request before reading pauses, bytes (default 256 KiB). */
  bodyBufferSize?: number;
  /** Period of the deadline timer, ms (default: a quarter of the smallest timeout, within 10..1000). */
  timerInterval?: number;
  /** Called with errors thrown by handlers (default: printed to stderr). */
  onError?: (err: unknown, req: HttpRequest | null) => void;
}

/** How many connections each deadline has cut off since the server started. */
export interface HttpTimeoutCounts {
  /** header block incomplete (headerTimeout), including connections that sent nothing */
  readonly header: number;
  /** request body stalled or slower than bodyMinRate (bodyTimeout) */
  readonly body: number;
  /** keep-alive connection idle (keepAliveTimeout) */
  readonly idle: number;
  /** output above the high-water mark, the peer not reading (sendTimeout): destroyed */
  readonly send: number;
  /** output not flushed after the connection was ended: destroyed */
  readonly linger: number;
}

export interface HttpApp {
  /** The session factory to pass to serveNet / serve. */
  readonly factory: SessionFactory;
  /** Open (counted) connections. */
  readonly connections: number;
  /** Deadlines that fired so far, by kind (a snapshot). */
  readonly timeouts: HttpTimeoutCounts;
  readonly draining: boolean;
  /**
   * Graceful shutdown: idle connections close at once, in-flight requests finish (their responses carry
   * `Connection: close`), new connections are refused; whatever is left after `deadlineMs` is destroyed.
   * Resolves when no connection is left.
   */
  shutdown(deadlineMs?: number): Promise<void>;
  /** Stop the deadline timer (after shutdown). */
  close(): void;
}

const P_PIPELINE = 1;
const P_BODY = 2;
const P_OUTPUT = 4;

const K_NONE = 0;
const K_HEADERS = 1;
const K_BODY = 2;
const K_IDLE = 3;
const K_SEND = 4;
const K_LINGER = 5;

const LINGER_MS = 2000;
const COMBINE_MAX = 16 * 1024;
/** An immutable body at least this long goes as a write of its own, without a copy (Conn.writeNoCopy) */
const SHARE_MIN = 8 * 1024;
/** A zero-length write: asks the connection whether its queued bytes are above the high-water mark. */
const EMPTY = new Uint8Array(0);

interface AppState {
  readonly limits: ParserLimits;
  readonly handlers: readonly Handler[];
  readonly serverName: string;
  readonly keepAliveTimeout: number;
  readonly headerTimeout: number;
  readonly bodyTimeout: number;
  readonly bodyMinRate: number;
  readonly sendTimeout: number;
  readonly maxConnections: number;
  readonly maxPipeline: number;
  readonly maxRequests: number;
  readonly bodyBufferSize: number;
  readonly onError: (err: unknown, req: HttpRequest | null) => void;
  readonly conns: Set<HttpConnection>;
  readonly timeouts: { -readonly [K in keyof HttpTimeoutCounts]: number };
  active: number;
  draining: boolean;
  onEmpty: (() => void) | null;
}

/** A canned response (errors the parser or the server itself answer), always closing the connection. */
function canned(app: AppState, status: number, extra = ''): string {
  const body = `${status} ${reasonPhrase(status)}\n`;
  return (
    `HTTP/1.1 ${status} ${reasonPhrase(status)}\r\nServer: ${app.serverName}\r\nDate: ${httpDate()}\r\n` + extra +
    `Content-Type: text/plain; charset=utf-8\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`
  );
}

/** One request's slot in its connection's pipeline. */
class Exchange implements ResponseTarget {
  readonly res: HttpResponse;
  /** bytes produced while not head-of-line: Latin-1 text, private copies and immutable (shared) bytes */
  pending: (Uint8Array | string)[] | null = null;
  finished = false;
  closeAfter = false;
  /** 0: no 100 Continue needed/sent, 1: wanted (send when head-of-line), 2: sent */
  continueState = 0;

  constructor(readonly conn: HttpConnection, readonly req: HttpRequest) {
    this.res = new HttpResponse(this);
  }

  get headOnly(): boolean {
    return this.req.method === 'HEAD';
  }
  get aborted(): boolean {
    return this.conn.dead || this.conn.ended;
  }
  get serverName(): string {
    return this.conn.app.serverName;
  }
  get isHead(): boolean {
    return this.conn.queue[0] === this;
  }

  decideClose(closeDelimited: boolean): boolean {
    const c = this.conn;
    const req = this.req;
    const q = c.queue;
    const last = q[q.length - 1] === this;
    const close =
      closeDelimited || !req.keepAlive ||
      // no request will be read after this one (fault, EOF, request limit, shutdown) and none is queued behind it
      ((c.closing || c.app.draining || c.draining) && last && !c.faultPending) ||
      // the client may still be waiting for 100 Continue, or sending a body we cannot frame past
      (!req.complete && this.continueState !== 2 && req.expectContinue);
    if (close) {
      this.closeAfter = true;
      c.closing = true;
    }
    return close;
  }

  emit(data: string | Uint8Array): void {
    const c = this.conn;
    if (c.dead || c.ended) return;
    if (c.queue[0] === this) {
      c.write(data);
    } else {
      const copy = typeof data === 'string' ? data : Buffer.from(data);
      (this.pending ??= []).push(copy);
    }
  }

  emitShared(data: Uint8Array): void {
    const c = this.conn;
    if (c.dead || c.ended) return;
    if (c.queue[0] === this) c.writeShared(data);
    else (this.pending ??= []).push(data);   // immutable: kept as it is
  }

  emitHeadAndBody(head: string, body: Uint8Array | null, off: number, len: number, shared: boolean): void {
    if (body === null || len === 0) return this.emit(head);
    if (shared ? len < SHARE_MIN : len <= COMBINE_MAX) {
      const b = Buffer.allocUnsafe(head.length + len);
      b.write(head, 0, 'latin1');
      b.set(body.subarray(off, off + len), head.length);
      const c = this.conn;
      if (c.dead || c.ended) return;
      if (c.queue[0] === this) c.write(b);
      else (this.pending ??= []).push(b);
      return;
    }
    this.emit(head);
    const part = off === 0 && len === body.byteLength ? body : body.subarray(off, off + len);
    if (shared) this.emitShared(part);
    else this.emit(part);
  }

  whenWritable(): Promise<void> | null {
    const c = this.conn;
    if (c.dead || c.ended) return null;
    if (c.queue[0] === this && !c.blocked) return null;
    return new Promise<void>((resolve) => c.writers.push(resolve));
  }

  emitFile(fd: number, position: number, length: number): Promise<void> {
    return this.conn.sendFile(fd, position, length);
  }

  readFile(fd: number, position: number, length: number): Promise<Buffer> {
    return this.conn.conn.readFile(fd, position, length);
  }

  finish(): void {
    this.finished = true;
    const req = this.req;
    if (!req.complete && !req._discarding) req._discard();
    if (this.conn.queue[0] === this) this.conn.advance();
  }

  abort(): void {
    this.finished = true;
    this.conn.destroy();
  }

  /** Became head-of-line: send what was produced meanwhile. */
  activate(): void {
    const c = this.conn;
    if (this.continueState === 1 && !this.res.started) {
      this.continueState = 2;
      c.write('HTTP/1.1 100 Continue\r\n\r\n');
    }
    const p = this.pending;
    if (p !== null) {
      this.pending = null;
      for (let i = 0; i < p.length; i++) {
        const d = p[i]!;
        if (typeof d === 'string') c.write(d);
        else c.writeShared(d);   // never changed after being queued here: no copy needed
      }
    }
  }
}

class HttpConnection implements Session, ParserEvents, BodyHost {
  readonly parser: RequestParser;
  readonly queue: Exchange[] = [];
  current: Exchange | null = null;
  private readonly fresh: Exchange[] = [];
  requests = 0;
  /** this connection is being shut down (Session.shutdown), like app.draining for all */
  draining = false;
  /** status of a parser fault to answer once the requests before it are answered (0: none) */
  private errorStatus = 0;
  get faultPending(): boolean {
    return this.errorStatus !== 0;
  }
  /** the peer's EOF arrived while unparsed input was held back */
  private eofPending = false;
  closing = false;
  ended = false;
  dead = false;
  blocked = false;
  writers: (() => void)[] = [];
  private pauses = 0;
  private stash: Buffer | null = null;
  private resumeScheduled = false;
  // deadlines
  deadline = 0;
  private kind = K_NONE;
  private headStart = 0;
  private headTimed = false;
  // the current body's clocks: last progress, its start and bytes since (moved on by the time reading was held back),
  // and when reading was last held back (0: it is not)
  private lastBodyAt = 0;
  private bodyStart = 0;
  private bodyReceived = 0;
  private bodyHeldAt = 0;
  private idleSince: number;
  private blockedSince = 0;
  private readonly counted: boolean;

  constructor(readonly app: AppState, readonly conn: Conn, reject: boolean) {
    this.parser = new RequestParser(app.limits, this);
    this.idleSince = Date.now();
    this.counted = !reject;
    app.conns.add(this);
    if (reject) {
      // over the connection limit, or shutting down: 503 and close
      this.closing = true;
      this.parser.kill();
      this.write(canned(app, 503, 'Retry-After: 1\r\n'));
      this.closeAfterFlush();
    } else {
      app.active++;
      this.updateDeadline(this.idleSince);
    }
  }

  // ---- Session ----

  data(buf: Uint8Array, offset: number, length: number): void {
    if (this.dead || this.parser.dead) return;
    if (this.stash !== null) {
      // input delivered while holding unparsed bytes (pause not yet effective): keep order
      const s = Buffer.allocUnsafe(this.stash.length + length);
      this.stash.copy(s, 0);
      s.set(buf.subarray(offset, offset + length), this.stash.length);
      this.stash = s;
      return;
    }
    this.feed(buf, offset, length);
  }

  end(): void {
    // the peer will send nothing more: answer what is complete, then close
    if (this.stash !== null) {
      this.eofPending = true; // finish parsing what is held back first
      return;
    }
    this.closing = true;
    const cur = this.current;
    if (cur !== null && !cur.req.complete) {
      cur.req._fail(new HttpError(400, 'request body incomplete'));
      this.current = null;
    }
    this.stash = null;
    this.parser.kill();
    if (this.queue.length === 0) this.closeAfterFlush();
  }

  /** The server is stopping gracefully (serveNet/serveChannel close): finish what is in flight, then end. */
  shutdown(): void {
    this.draining = true;
    this.drainNow();
  }

  drain(): void {
    if (!this.blocked) return;
    this.blocked = false;
    this.setPause(P_OUTPUT, false);
    this.wakeWriters();
    this.updateDeadline(Date.now());
  }

  close(err?: Error & { code?: string }): void {
    if (this.dead) return;
    this.dead = true;
    this.deadline = 0;
    this.app.conns.delete(this);
    if (this.counted) this.app.active--;
    this.parser.kill();
    this.stash = null;
    const cur = this.current;
    if (cur !== null) cur.req._fail(err ?? new Error('connection closed'));
    this.current = null;
    for (const ex of this.queue) if (!ex.req.complete) ex.req._fail(err ?? new Error('connection closed'));
    this.queue.length = 0;
    this.wakeWriters();
    if (this.app.conns.size === 0 && this.app.onEmpty) this.app.onEmpty();
  }

  // ---- output ----

  write(data: string | Uint8Array): void {
    const ok = typeof data === 'string' ? this.conn.writeAscii(data) : this.conn.write(data);
    if (!ok) this.outputBlocked();
  }

  /** Bytes that never change (see Conn.writeNoCopy). */
  writeShared(data: Uint8Array): void {
    if (!this.conn.writeNoCopy(data)) this.outputBlocked();
  }

  /** Queue a file's bytes (head-of-line only). They count against the high-water mark like written bytes. */
  sendFile(fd: number, position: number, length: number): Promise<void> {
    const p = this.conn.sendFile(fd, position, length);
    if (!this.conn.write(EMPTY)) this.outputBlocked();
    return p;
  }

  private outputBlocked(): void {
    if (!this.blocked && !this.ended && !this.dead) {
      this.blocked = true;
      this.blockedSince = Date.now();
      this.setPause(P_OUTPUT, true);
      this.updateDeadline(this.blockedSince);
    }
  }

  private wakeWriters(): void {
    if (this.writers.length === 0) return;
    const w = this.writers;
    this.writers = [];
    for (let i = 0; i < w.length; i++) w[i]();
  }

  destroy(): void {
    if (!this.dead) this.conn.destroy();
  }

  /** Close gracefully once queued output is sent. */
  closeAfterFlush(): void {
    if (this.ended || this.dead) return;
    this.ended = true;
    this.closing = true;
    this.parser.kill();
    this.stash = null;
    this.conn.end();
    this.wakeWriters();
    if (!this.dead) {
      this.kind = K_LINGER;
      this.deadline = Date.now() + Math.max(LINGER_MS, this.app.sendTimeout);
    }
  }

  // ---- input ----

  private feed(buf: Uint8Array, off: number, len: number): void {
    const n = this.parser.execute(buf, off, len);
    if (n < len && !this.parser.dead && !this.dead) {
      const s = Buffer.allocUnsafe(len - n);
      s.set(buf.subarray(off + n, off + len));
      this.stash = s;
      this.setPause(P_PIPELINE, true);
    }
    const now = Date.now();
    if (this.parser.inHead) {
      if (!this.headTimed) {
        this.headTimed = true;
        this.headStart = now;
      }
    } else {
      this.headTimed = false;
    }
    // run the handlers of the requests parsed from this input, in order
    const fresh = this.fresh;
    for (let i = 0; i < fresh.length; i++) if (!this.dead && !this.ended) dispatch(this.app, fresh[i]);
    fresh.length = 0;
    if (this.eofPending && this.stash === null) {
      this.eofPending = false;
      this.end();
    }
    this.updateDeadline(now);
  }

  private setPause(bit: number, on: boolean): void {
    const before = this.pauses;
    this.pauses = on ? before | bit : before & ~bit;
    if (this.dead || this.ended) return;
    if (before === 0 && this.pauses !== 0) this.conn.pause();
    else if (before !== 0 && this.pauses === 0) {
      // nothing held back: resume at once (resume never calls back synchronously); otherwise parse the held-back
      // bytes first, outside the current call stack (no re-entry into the parser or into handlers)
      if (this.stash === null) this.conn.resume();
      else this.scheduleResume();
    }
  }

  private scheduleResume(): void {
    if (this.resumeScheduled) return;
    this.resumeScheduled = true;
    // setImmediate rather than a microtask: after the transport's current batch of events
    setImmediate(() => {
      this.resumeScheduled = false;
      if (this.dead || this.ended || this.pauses !== 0) return;
      const s = this.stash;
      if (s !== null) {
        this.stash = null;
        this.feed(s, 0, s.length);
        if (this.dead || this.ended || this.pauses !== 0) return;
      }
      this.conn.resume();
    });
  }

  // ---- parser events ----

  onHead(head: RequestHead): void {
    if (this.closing) {
      // a request behind one that closes the connection: not served
      this.parser.kill();
      return;
    }
    this.requests++;
    const req = new HttpRequest(head, this, this.conn.worker, this.app.limits.maxBodySize);
    const ex = new Exchange(this, req);
    this.queue.push(ex);
    if (head.hasBody) {
      this.current = ex;
      this.lastBodyAt = this.bodyStart = Date.now();
      this.bodyReceived = 0;
      this.bodyHeldAt = 0;
    }
    if (this.app.draining || this.draining || (this.app.maxRequests > 0 && this.requests >= this.app.maxRequests)) this.closing = true;
    this.fresh.push(ex);
  }

  onBody(buf: Uint8Array, offset: number, length: number): void {
    const cur = this.current;
    if (cur === null) return;
    this.lastBodyAt = Date.now();
    this.bodyReceived += length;
    const req = cur.req;
    if (req._discarding) return;
    req._push(buf, offset, length);
    if (req._buffered > this.app.bodyBufferSize) this.setPause(P_BODY, true);
  }

  onComplete(trailers: Fields | null): void {
    const cur = this.current;
    if (cur !== null) {
      this.current = null;
      cur.req._end(trailers);
      if (this.pauses & P_BODY) this.setPause(P_BODY, false);
    }
    if (this.closing) this.parser.pause();
    else if (this.queue.length >= this.app.maxPipeline) this.parser.pause();
  }

  onError(status: number, reason: string): void {
    this.closing = true;
    this.stash = null;
    const cur = this.current;
    if (cur !== null) {
      // fault inside a body: the handler's body read fails with this status; the connection closes after it
      this.current = null;
      cur.req._fail(new HttpError(status, reason));
      if (this.pauses & P_BODY) this.setPause(P_BODY, false);
      if (this.queue.length === 0) this.closeAfterFlush();
      return;
    }
    // answered in pipeline order, after the responses to the requests before it
    this.errorStatus = status;
    if (this.queue.length === 0) this.advance();
  }

  // ---- BodyHost ----

  bodyWanted(req: HttpRequest): void {
    if (!req.expectContinue) return;
    const ex = this.queue.find((e) => e.req === req);
    if (ex === undefined || ex.continueState !== 0 || ex.res.started) return;
    if (this.queue[0] === ex) {
      ex.continueState = 2;
      this.write('HTTP/1.1 100 Continue\r\n\r\n');
    } else {
      ex.continueState = 1;
    }
    this.updateDeadline(Date.now());
  }

  bodyConsumed(req: HttpRequest): void {
    if ((this.pauses & P_BODY) !== 0 && req._buffered <= this.app.bodyBufferSize / 2) {
      this.setPause(P_BODY, false);
      this.updateDeadline(Date.now()); // the body deadline runs again
    }
  }

  // ---- pipeline ----

  /** The head-of-line exchange finished (or changed): flush finished responses in order, activate the next. */
  advance(): void {
    const q = this.queue;
    while (q.length > 0) {
      const head = q[0];
      head.activate();
      if (!head.finished) break;
      q.shift();
      if (head.closeAfter) {
        // requests behind it are dropped: the connection closes
        for (const ex of q) if (!ex.req.complete) ex.req._fail(new Error('connection closing'));
        q.length = 0;
        this.closeAfterFlush();
        return;
      }
      if (q.length > 0) this.wakeWriters();
    }
    if (this.dead || this.ended) return;
    if (q.length === 0 && this.errorStatus !== 0) {
      this.write(canned(this.app, this.errorStatus));
      return this.closeAfterFlush();
    }
    this.wakeWriters();
    if (q.length < this.app.maxPipeline && this.parser.paused && !this.closing) {
      this.parser.resume();
      if (this.stash !== null) this.setPause(P_PIPELINE, false);
    }
    const now = Date.now();
    if (q.length === 0) {
      this.idleSince = now;
      if (this.closing || this.app.draining || this.draining) {
        if (this.parser.idle || this.parser.dead) return this.closeAfterFlush();
      }
    }
    this.updateDeadline(now);
  }

  // ---- deadlines ----

  updateDeadline(now: number): void {
    if (this.dead || this.ended) return;
    const app = this.app;
    let kind = K_NONE;
    let at = 0;
    const cur = this.current;
    // the body's clocks stop while the server holds its reading back (buffer full, 100 Continue not sent yet)
    const bodyHeld = cur !== null && (
      (this.pauses & P_BODY) !== 0 || (cur.req.expectContinue && cur.continueState !== 2 && !cur.req._discarding)
    );
    if (cur !== null) {
      if (bodyHeld) {
        if (this.bodyHeldAt === 0) this.bodyHeldAt = now;
      } else if (this.bodyHeldAt !== 0) {
        const held = now - this.bodyHeldAt;
        this.bodyStart += held;
        this.lastBodyAt += held;
        this.bodyHeldAt = 0;
      }
    }
    if (this.blocked) {
      kind = K_SEND;
      at = this.blockedSince + app.sendTimeout;
    } else if (this.parser.inHead) {
      kind = K_HEADERS;
      at = this.headStart + app.headerTimeout;
    } else if (cur !== null && !bodyHeld) {
      // no progress for bodyTimeout, or the whole body slower than bodyMinRate (after a bodyTimeout allowance)
      kind = K_BODY;
      const allowance = app.bodyMinRate > 0 ? (this.bodyReceived * 1000) / app.bodyMinRate : 0;
      at = Math.min(this.lastBodyAt + app.bodyTimeout, this.bodyStart + app.bodyTimeout + allowance);
    } else if (this.queue.length === 0) {
      if (this.requests === 0) {
        kind = K_HEADERS; // nothing received since accept
        at = this.idleSince + app.headerTimeout;
      } else {
        kind = K_IDLE;
        at = this.idleSince + app.keepAliveTimeout;
      }
    }
    this.kind = kind;
    this.deadline = at;
  }

  /** Called by the server's timer when the deadline has passed. */
  timeout(): void {
    const counts = this.app.timeouts;
    switch (this.kind) {
      case K_IDLE:
        counts.idle++;
        this.closeAfterFlush();
        break;
      case K_HEADERS: {
        counts.header++;
        // a partial request gets 408; a connection that never sent anything is closed silently
        const partial = !this.parser.idle;
        this.closing = true;
        this.parser.kill();
        this.stash = null;
        if (this.queue.length === 0) {
          if (partial) this.write(canned(this.app, 408));
          this.closeAfterFlush();
        } else {
          this.deadline = 0;
        }
        break;
      }
      case K_BODY: {
        counts.body++;
        this.closing = true;
        const cur = this.current;
        this.current = null;
        this.parser.kill();
        if (cur !== null) cur.req._fail(new HttpError(408, 'request body timeout'));
        if (this.queue.length === 0) this.closeAfterFlush();
        else this.deadline = 0;
        break;
      }
      case K_SEND:
      case K_LINGER:
      default:
        if (this.kind === K_SEND) counts.send++;
        else if (this.kind === K_LINGER) counts.linger++;
        this.deadline = 0;
        this.conn.destroy();
        break;
    }
  }

  /** Graceful shutdown: close now if nothing is in flight (in-flight responses will carry Connection: close). */
  drainNow(): void {
    if (this.dead || this.ended) return;
    if (this.queue.length === 0 && this.parser.idle) this.closeAfterFlush();
    else if (!this.parser.inHead) this.closing = true; // in flight: no request after the current ones
    // (a head arriving now is still served: onHead marks it the last one)
  }
}

// ---- dispatch ----

function dispatch(app: AppState, ex: Exchange): void {
  run(app, ex, 0);
}

function run(app: AppState, ex: Exchange, from: number): void {
  const { req, res } = ex;
  const hs = app.handlers;
  for (let i = from; i < hs.length; i++) {
    let r: void | Promise<void>;
    try {
      r = hs[i](req, res);
    } catch (e) {
      return failed(app, ex, e);
    }
    if (r !== undefined && r !== null && typeof (r as Promise<void>).then === 'function') {
      (r as Promise<void>).then(
        () => {
          if (!res.started) run(app, ex, i + 1);
        },
        (e: unknown) => failed(app, ex, e),
      );
      return;
    }
    if (res.started) return;
  }
  if (!res.started && !ex.aborted) res.sendError(404);
}

function failed(app: AppState, ex: Exchange, e: unknown): void {
  const res = ex.res;
  if (ex.aborted) return;
  if (!res.started) {
    const status = e instanceof HttpError ? e.status : 500;
    if (status >= 500 && !(e instanceof HttpError)) app.onError(e, ex.req);
    res.sendError(status);
    return;
  }
  app.onError(e, ex.req);
  if (!res.finished) ex.abort();
}

// ---- the server ----

export function createHttpApp(options: HttpServerOptions = {}): HttpApp {
  if (options.bodyMinRate !== undefined && !(options.bodyMinRate >= 0 && Number.isFinite(options.bodyMinRate))) {
    throw new RangeError(`options.bodyMinRate must be a finite number of bytes per second >= 0 (got ${options.bodyMinRate})`);
  }
  const limits: ParserLimits = {
    maxHeaderSize: options.maxHeaderSize ?? DEFAULT_LIMITS.maxHeaderSize,
    maxUriLength: options.maxUriLength ?? DEFAULT_LIMITS.maxUriLength,
    maxHeaders: options.maxHeaders ?? DEFAULT_LIMITS.maxHeaders,
    maxBodySize: options.maxBodySize ?? DEFAULT_LIMITS.maxBodySize,
    maxTrailerSize: options.maxTrailerSize ?? DEFAULT_LIMITS.maxTrailerSize,
    extraMethods: options.extraMethods,
  };
  const h = options.handler;
  const app: AppState = {
    limits,
    handlers: h === undefined ? [] : typeof h === 'function' ? [h] : [...h],
    serverName: options.serverName ?? 'megapipe-http',
    keepAliveTimeout: options.keepAliveTimeout ?? 5000,
    headerTimeout: options.headerTimeout ?? 10_000,
    bodyTimeout: options.bodyTimeout ?? 30_000,
    bodyMinRate: options.bodyMinRate ?? 500,
    sendTimeout: options.sendTimeout ?? 30_000,
    maxConnections: options.maxConnections ?? 10_000,
    maxPipeline: Math.max(1, options.maxPipeline ?? 32),
    maxRequests: options.maxRequestsPerConnection ?? 0,
    bodyBufferSize: options.bodyBufferSize ?? 256 * 1024,
    onError: options.onError ?? ((err) => console.error('megapipe-http: handler error:', err)),
    conns: new Set(),
    timeouts: { header: 0, body: 0, idle: 0, send: 0, linger: 0 },
    active: 0,
    draining: false,
    onEmpty: null,
  };
  const smallest = Math.min(app.keepAliveTimeout, app.headerTimeout, app.bodyTimeout, app.sendTimeout);
  const interval = options.timerInterval ?? Math.min(1000, Math.max(10, Math.floor(smallest / 4)));
  // the one timer of this server: scans connections for passed deadlines
  const timer = setInterval(() => {
    if (app.conns.size === 0) return;
    const now = Date.now();
    for (const c of app.conns) if (c.deadline !== 0 && now >= c.deadline) c.timeout();
  }, interval);
  timer.unref();

  const factory: SessionFactory = (conn: Conn) =>
    new HttpConnection(app, conn, app.draining || app.active >= app.maxConnections);

  return {
    factory,
    get connections() {
      return app.active;
    },
    get timeouts() {
      return { ...app.timeouts };
    },
    get draining() {
      return app.draining;
    },
    shutdown(deadlineMs = 10_000): Promise<void> {
      app.draining = true;
      for (const c of [...app.conns]) c.drainNow();
      if (app.conns.size === 0) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          for (const c of [...app.conns]) c.destroy();
        }, deadlineMs);
        app.onEmpty = () => {
          clearTimeout(t);
          app.onEmpty = null;
          resolve();
        };
      });
    },
    close() {
      clearInterval(timer);
    },
  };
}
