// One request's slot in its connection's pipeline: the `ResponseTarget` an HttpResponse writes through. Responses
// go out strictly in request order: the head-of-line exchange writes to the connection, any other keeps what its
// response produces (`pending`) until it becomes head-of-line (`activate`). It also decides whether the connection
// closes after its response, and when a `100 Continue` goes out.

import type { HttpConnection } from './connection.js';
import type { HttpRequest } from './request.js';
import { HttpResponse, type ResponseTarget } from './response.js';

/** Head and body up to this long go as one write (copied together). */
const COMBINE_MAX = 16 * 1024;
/** An immutable body at least this long goes as a write of its own, without a copy (Conn.writeNoCopy) */
const SHARE_MIN = 8 * 1024;

/** Where a request that expects `100 Continue` stands. */
export const enum Continue {
  /** not expected, or not asked for yet */
  None,
  /** the handler wants the body: sent when the exchange becomes head-of-line */
  Wanted,
  Sent,
}

export class Exchange implements ResponseTarget {
  readonly res: HttpResponse;
  /** bytes produced while not head-of-line: Latin-1 text, private copies and immutable (shared) bytes */
  pending: (Uint8Array | string)[] | null = null;
  finished = false;
  /** the connection closes once this response is sent */
  closeAfter = false;
  continueState = Continue.None;

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
      (!req.complete && this.continueState !== Continue.Sent && req.expectContinue);
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
    if (this.continueState === Continue.Wanted && !this.res.started) {
      this.continueState = Continue.Sent;
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
