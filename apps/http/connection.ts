// An HTTP/1.1 connection as a library `Session`, so the same code runs on node:net (serveNet) and on io_uring
// channels (serve()). One RequestParser fed by `data()`; a pipeline of exchanges (one per request: handlers run
// as requests arrive, responses are written strictly in request order, head-of-line first); flow control (reading
// pauses while the pipeline is full, while an unread request body is buffered beyond a bound, or while output is
// above the high-water mark); its deadlines (deadlines.ts) updated as it goes.

import { timeNow, type Conn, type Session } from '../../src/index.js';
import type { AppState } from './app.js';
import { Deadlines } from './deadlines.js';
import { Continue, Exchange } from './exchange.js';
import { dispatch } from './handlers.js';
import type { Fields } from './headers.js';
import { RequestParser, type ParserEvents, type RequestHead } from './parser.js';
import { HttpRequest, type BodyHost } from './request.js';
import { cannedResponse } from './response.js';
import { HttpError } from './status.js';

/** Why reading is paused: any bit set pauses the transport. */
const enum Pause {
  /** the pipeline is full (maxPipeline) or the parser stopped: input is held back */
  Pipeline = 1,
  /** the current request's unread body is above bodyBufferSize */
  Body = 2,
  /** output is above the high-water mark */
  Output = 4,
}

/** A zero-length write: asks the connection whether its queued bytes are above the high-water mark. */
const EMPTY = new Uint8Array(0);

// Lingering close (RFC 9112 §9.6): a connection closed after a fault while the client may still be sending a body
// (413, 417, a fault inside a body) half-closes — the response, then a FIN: the client reads the response to its end
// — and reads and discards its input until the client's EOF, LINGER_QUIET_MS with no input, LINGER_MAX_MS in all or
// LINGER_MAX_BYTES, and only then closes: closing with unread input makes the kernel send a reset, which can destroy
// the error response before the client reads it (nginx's lingering close: shutdown(SHUT_WR), then read and discard).
/** The lingering ends once this long passes without input, ms (checked every LINGER_QUIET_MS). */
export const LINGER_QUIET_MS = 500;
/** The lingering ends after this long in all, ms. */
export const LINGER_MAX_MS = 5000;
/** The lingering ends after discarding this many bytes. */
export const LINGER_MAX_BYTES = 64 * 1024 * 1024;

export class HttpConnection implements Session, ParserEvents, BodyHost {
  readonly parser: RequestParser;
  /** the pipeline: exchanges in request order, the head-of-line one first */
  readonly queue: Exchange[] = [];
  /** the exchange whose request body is being parsed */
  current: Exchange | null = null;
  /** exchanges parsed from the current input, their handlers not yet run */
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
  /** the peer's EOF arrived */
  private peerEnded = false;
  /** a fault left the client maybe still sending a request body: linger before closing (see LINGER_QUIET_MS) */
  private lingerWanted = false;
  /** lingering: the timer checking for quiet, the bytes discarded since its last check and in all, when it ends */
  private lingerTimer: NodeJS.Timeout | null = null;
  private lingerRecent = 0;
  private lingerTotal = 0;
  private lingerUntil = 0;
  /** no request will be read after the ones parsed */
  closing = false;
  /** ended by this side: the last output is being flushed */
  ended = false;
  dead = false;
  /** output is above the high-water mark */
  blocked = false;
  /** responses waiting for the connection to be writable (and head-of-line) */
  writers: (() => void)[] = [];
  /** Pause bits */
  private pauses = 0;
  /** input received and not parsed yet (the parser stopped: pipeline full), parsed when reading resumes */
  heldInput: Buffer | null = null;
  private resumeScheduled = false;
  readonly deadlines: Deadlines;
  private readonly counted: boolean;

  /** BodyHost: the client's address. */
  get remoteAddress(): string | undefined { return this.conn.remoteAddress; }

  constructor(readonly app: AppState, readonly conn: Conn, reject: boolean) {
    this.parser = new RequestParser(app.limits, this);
    const now = timeNow();
    this.deadlines = new Deadlines(now);
    this.counted = !reject;
    app.conns.add(this);
    if (reject) {
      // over the connection limit, or shutting down: 503 and close
      this.closing = true;
      this.parser.kill();
      this.write(cannedResponse(app.serverName, 503, 'Retry-After: 1\r\n'));
      this.closeAfterFlush();
    } else {
      app.active++;
      this.deadlines.update(this, now);
    }
  }

  /** Reading is held back while the current request's body buffer drains. */
  get bodyPaused(): boolean {
    return (this.pauses & Pause.Body) !== 0;
  }

  // ---- Session ----

  data(buf: Uint8Array, offset: number, length: number): void {
    if (this.lingerTimer !== null) {
      // lingering: discarded
      this.lingerRecent += length;
      this.lingerTotal += length;
      if (this.lingerTotal > LINGER_MAX_BYTES) this.endLinger();
      return;
    }
    if (this.dead || this.parser.dead) return;
    if (this.heldInput !== null) {
      // input delivered while holding unparsed bytes (pause not yet effective): keep order
      const s = Buffer.allocUnsafe(this.heldInput.length + length);
      this.heldInput.copy(s, 0);
      s.set(buf.subarray(offset, offset + length), this.heldInput.length);
      this.heldInput = s;
      return;
    }
    this.feed(buf, offset, length);
  }

  end(): void {
    // the peer will send nothing more: answer what is complete, then close
    this.peerEnded = true;
    if (this.lingerTimer !== null) return this.endLinger();
    if (this.heldInput !== null) {
      this.eofPending = true; // finish parsing what is held back first
      return;
    }
    this.closing = true;
    const cur = this.current;
    if (cur !== null && !cur.req.complete) {
      cur.req._fail(new HttpError(400, 'request body incomplete'));
      this.current = null;
    }
    this.heldInput = null;
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
    this.setPause(Pause.Output, false);
    this.wakeWriters();
    this.deadlines.update(this, Date.now());   // after writers (application code) ran: a fresh reading
  }

  close(err?: Error & { code?: string }): void {
    if (this.dead) return;
    this.dead = true;
    this.deadlines.clear();
    if (this.lingerTimer !== null) {
      clearInterval(this.lingerTimer);
      this.lingerTimer = null;
    }
    this.app.conns.delete(this);
    if (this.counted) this.app.active--;
    this.parser.kill();
    this.heldInput = null;
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
      const now = Date.now();   // a write, maybe after application code: the send deadline starts now
      this.deadlines.outputBlocked(now);
      this.setPause(Pause.Output, true);
      this.deadlines.update(this, now);
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

  /**
   * Close gracefully once queued output is sent. After a fault that may leave the client sending a body (and before
   * its EOF), linger first: read and discard input until EOF, quiet or a bound (see LINGER_QUIET_MS), then end.
   */
  closeAfterFlush(): void {
    if (this.ended || this.dead) return;
    this.ended = true;
    this.closing = true;
    this.parser.kill();
    this.heldInput = null;
    const cur = this.current;
    const linger = !this.peerEnded && (this.lingerWanted || (cur !== null && !cur.req.complete));
    if (linger) this.conn.halfClose(); else this.conn.end();
    this.wakeWriters();
    if (this.dead) return;
    if (linger) this.startLinger();
    else this.deadlines.linger(Date.now(), this.app.sendTimeout);   // starts now, whatever ran before
  }

  /** Lingering close: the write side is half-closed; input is read (reading resumes, whatever held it back) and
   * discarded by `data`. */
  private startLinger(): void {
    this.deadlines.clear();   // the lingering has bounds of its own; the flush deadline starts when it ends
    this.lingerUntil = Date.now() + LINGER_MAX_MS;
    if (this.pauses !== 0) {
      this.pauses = 0;
      this.conn.resume();
    }
    const t = setInterval(() => {
      if (this.lingerRecent === 0 || Date.now() >= this.lingerUntil) this.endLinger();
      else this.lingerRecent = 0;
    }, LINGER_QUIET_MS);
    t.unref();
    this.lingerTimer = t;
  }

  /** The lingering is over: close the connection once its output is sent (the write side is half-closed already),
   * under the flush deadline. */
  private endLinger(): void {
    if (this.lingerTimer === null) return;
    clearInterval(this.lingerTimer);
    this.lingerTimer = null;
    if (this.dead) return;
    this.conn.end();
    if (!this.dead) this.deadlines.linger(Date.now(), this.app.sendTimeout);
  }

  // ---- input ----

  private feed(buf: Uint8Array, off: number, len: number): void {
    const n = this.parser.execute(buf, off, len);
    if (n < len && !this.parser.dead && !this.dead) {
      const s = Buffer.allocUnsafe(len - n);
      s.set(buf.subarray(off + n, off + len));
      this.heldInput = s;
      this.setPause(Pause.Pipeline, true);
    }
    const now = timeNow();
    this.deadlines.headerInput(this.parser.inHead, now);
    // run the handlers of the requests parsed from this input, in order
    const fresh = this.fresh;
    for (let i = 0; i < fresh.length; i++) if (!this.dead && !this.ended) dispatch(this.app, fresh[i]);
    fresh.length = 0;
    if (this.eofPending && this.heldInput === null) {
      this.eofPending = false;
      this.end();
    }
    this.deadlines.update(this, now);
  }

  private setPause(bit: Pause, on: boolean): void {
    const before = this.pauses;
    this.pauses = on ? before | bit : before & ~bit;
    if (this.dead || this.ended) return;
    if (before === 0 && this.pauses !== 0) this.conn.pause();
    else if (before !== 0 && this.pauses === 0) {
      // nothing held back: resume at once (resume never calls back synchronously); otherwise parse the held-back
      // bytes first, outside the current call stack (no re-entry into the parser or into handlers)
      if (this.heldInput === null) this.conn.resume();
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
      const s = this.heldInput;
      if (s !== null) {
        this.heldInput = null;
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
      this.deadlines.bodyStarted(timeNow());
    }
    if (this.app.draining || this.draining || (this.app.maxRequests > 0 && this.requests >= this.app.maxRequests)) this.closing = true;
    this.fresh.push(ex);
  }

  onBody(buf: Uint8Array, offset: number, length: number): void {
    const cur = this.current;
    if (cur === null) return;
    this.deadlines.bodyInput(length, timeNow());
    const req = cur.req;
    if (req._discarding) return;
    req._push(buf, offset, length);
    if (req._buffered > this.app.bodyBufferSize) this.setPause(Pause.Body, true);
  }

  onComplete(trailers: Fields | null): void {
    const cur = this.current;
    if (cur !== null) {
      this.current = null;
      cur.req._end(trailers);
      if (this.pauses & Pause.Body) this.setPause(Pause.Body, false);
    }
    if (this.closing) this.parser.pause();
    else if (this.queue.length >= this.app.maxPipeline) this.parser.pause();
  }

  onError(status: number, reason: string): void {
    this.closing = true;
    this.heldInput = null;
    const cur = this.current;
    // a body may be on its way: inside one, over the limit (413 at the head) or behind an unknown expectation (417)
    if (cur !== null || status === 413 || status === 417) this.lingerWanted = true;
    if (cur !== null) {
      // fault inside a body: the handler's body read fails with this status; the connection closes after it
      this.current = null;
      cur.req._fail(new HttpError(status, reason));
      if (this.pauses & Pause.Body) this.setPause(Pause.Body, false);
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
    if (ex === undefined || ex.continueState !== Continue.None || ex.res.started) return;
    if (this.queue[0] === ex) {
      ex.continueState = Continue.Sent;
      this.write('HTTP/1.1 100 Continue\r\n\r\n');
    } else {
      ex.continueState = Continue.Wanted;
    }
    this.deadlines.update(this, Date.now());   // called by the handler: a fresh reading
  }

  bodyConsumed(req: HttpRequest): void {
    if ((this.pauses & Pause.Body) !== 0 && req._buffered <= this.app.bodyBufferSize / 2) {
      this.setPause(Pause.Body, false);
      this.deadlines.update(this, Date.now()); // the body deadline runs again (called by the handler: a fresh reading)
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
      this.write(cannedResponse(this.app.serverName, this.errorStatus));
      return this.closeAfterFlush();
    }
    this.wakeWriters();
    if (q.length < this.app.maxPipeline && this.parser.paused && !this.closing) {
      this.parser.resume();
      if (this.heldInput !== null) this.setPause(Pause.Pipeline, false);
    }
    // a response just finished, after its handler ran in this same run maybe for long: the keep-alive clock starts now
    const now = Date.now();
    if (q.length === 0) {
      this.deadlines.idle(now);
      if (this.closing || this.app.draining || this.draining) {
        if (this.parser.idle || this.parser.dead) return this.closeAfterFlush();
      }
    }
    this.deadlines.update(this, now);
  }

  /** Graceful shutdown: close now if nothing is in flight (in-flight responses will carry Connection: close). */
  drainNow(): void {
    if (this.dead || this.ended) return;
    if (this.queue.length === 0 && this.parser.idle) this.closeAfterFlush();
    else if (!this.parser.inHead) this.closing = true; // in flight: no request after the current ones
    // (a head arriving now is still served: onHead marks it the last one)
  }
}
