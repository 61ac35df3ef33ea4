// megapipe-http's deadlines: at most one per connection at a time — the one that applies to what it is waiting for
// (a header block, a request body, the next request, the peer reading its output, the flush of its last output) —
// checked by ONE coarse interval timer per server, not a timer per connection. A connection's clocks are updated
// by the connection as events happen (`Deadlines`); `update` recomputes which deadline applies and when it passes;
// the server's timer calls `expire` once it has passed.

import type { AppState } from './app.js';
import type { HttpConnection } from './connection.js';
import { Continue } from './exchange.js';
import { cannedResponse } from './response.js';
import { HttpError } from './status.js';
import { timeNow } from '../../src/index.js';

/** The least time given to a connection's last output after it was ended, ms (sendTimeout if longer). */
const LINGER_MS = 2000;

/** Which deadline a connection is under. */
export const enum Deadline {
  None,
  /** a header block incomplete since its first byte (or nothing received since accept): headerTimeout */
  Headers,
  /** a request body stalled, or slower than bodyMinRate: bodyTimeout */
  Body,
  /** keep-alive, no request in flight: keepAliveTimeout */
  Idle,
  /** output above the high-water mark, the peer not reading: sendTimeout */
  Send,
  /** ended, its last output not yet flushed: max(LINGER_MS, sendTimeout) */
  Linger,
}

/** One connection's clocks (ms since the epoch) and the deadline that applies now. */
export class Deadlines {
  /** When the deadline passes; 0: none. */
  at = 0;
  kind = Deadline.None;
  /** The current header block's first byte (valid while headTimed). */
  private headStart = 0;
  private headTimed = false;
  // the current body's clocks: last progress, its start and bytes since (moved on by the time reading was held back),
  // and when reading was last held back (0: it is not)
  private lastBodyAt = 0;
  private bodyStart = 0;
  private bodyReceived = 0;
  private bodyHeldAt = 0;
  /** When the pipeline last emptied (or the connection opened). */
  private idleSince: number;
  /** When output went above the high-water mark. */
  private blockedSince = 0;

  constructor(now: number) {
    this.idleSince = now;
  }

  /** Input was parsed: a header block in progress (`inHead`) is timed from the first input that started it. */
  headerInput(inHead: boolean, now: number): void {
    if (inHead) {
      if (!this.headTimed) {
        this.headTimed = true;
        this.headStart = now;
      }
    } else {
      this.headTimed = false;
    }
  }
  /** A request with a body was parsed: its body clocks start. */
  bodyStarted(now: number): void {
    this.lastBodyAt = this.bodyStart = now;
    this.bodyReceived = 0;
    this.bodyHeldAt = 0;
  }
  /** `length` bytes of the current body arrived. */
  bodyInput(length: number, now: number): void {
    this.lastBodyAt = now;
    this.bodyReceived += length;
  }
  /** Output went above the high-water mark. */
  outputBlocked(now: number): void { this.blockedSince = now; }
  /** The pipeline emptied: the keep-alive clock starts. */
  idle(now: number): void { this.idleSince = now; }
  /** The connection was ended: its output must be flushed in time. */
  linger(now: number, sendTimeout: number): void {
    this.kind = Deadline.Linger;
    this.at = now + Math.max(LINGER_MS, sendTimeout);
  }
  /** No deadline (the connection is closed, or one already acted on it). */
  clear(): void { this.at = 0; }

  /** Recompute which deadline applies to `c` and when it passes (call after anything it depends on changed). */
  update(c: HttpConnection, now: number): void {
    if (c.dead || c.ended) return;
    const app = c.app;
    let kind = Deadline.None;
    let at = 0;
    const cur = c.current;
    // the body's clocks stop while the server holds its reading back (buffer full, 100 Continue not sent yet)
    const bodyHeld = cur !== null && (
      c.bodyPaused || (cur.req.expectContinue && cur.continueState !== Continue.Sent && !cur.req._discarding)
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
    if (c.blocked) {
      kind = Deadline.Send;
      at = this.blockedSince + app.sendTimeout;
    } else if (c.parser.inHead) {
      kind = Deadline.Headers;
      at = this.headStart + app.headerTimeout;
    } else if (cur !== null && !bodyHeld) {
      // no progress for bodyTimeout, or the whole body slower than bodyMinRate (after a bodyTimeout allowance)
      kind = Deadline.Body;
      const allowance = app.bodyMinRate > 0 ? (this.bodyReceived * 1000) / app.bodyMinRate : 0;
      at = Math.min(this.lastBodyAt + app.bodyTimeout, this.bodyStart + app.bodyTimeout + allowance);
    } else if (c.queue.length === 0) {
      if (c.requests === 0) {
        kind = Deadline.Headers; // nothing received since accept
        at = this.idleSince + app.headerTimeout;
      } else {
        kind = Deadline.Idle;
        at = this.idleSince + app.keepAliveTimeout;
      }
    }
    this.kind = kind;
    this.at = at;
  }
}

/** Starts the server's one deadline timer: every `intervalMs`, each connection whose deadline has passed expires. */
export function startDeadlineTimer(app: AppState, intervalMs: number): NodeJS.Timeout {
  const timer = setInterval(() => {
    if (app.conns.size === 0) return;
    const now = timeNow();
    for (const c of app.conns) if (c.deadlines.at !== 0 && now >= c.deadlines.at) expire(c);
  }, intervalMs);
  timer.unref();
  return timer;
}

/** `c`'s deadline has passed: what each deadline does, counted in the server's timeouts. */
function expire(c: HttpConnection): void {
  const d = c.deadlines, counts = c.app.timeouts;
  switch (d.kind) {
    case Deadline.Idle:
      counts.idle++;
      c.closeAfterFlush();
      break;
    case Deadline.Headers: {
      counts.header++;
      // a partial request gets 408; a connection that never sent anything is closed silently
      const partial = !c.parser.idle;
      c.closing = true;
      c.parser.kill();
      c.heldInput = null;
      if (c.queue.length === 0) {
        if (partial) c.write(cannedResponse(c.app.serverName, 408));
        c.closeAfterFlush();
      } else {
        d.clear();
      }
      break;
    }
    case Deadline.Body: {
      counts.body++;
      c.closing = true;
      const cur = c.current;
      c.current = null;
      c.parser.kill();
      if (cur !== null) cur.req._fail(new HttpError(408, 'request body timeout'));
      if (c.queue.length === 0) c.closeAfterFlush();
      else d.clear();
      break;
    }
    case Deadline.Send:
    case Deadline.Linger:
    default:
      if (d.kind === Deadline.Send) counts.send++;
      else if (d.kind === Deadline.Linger) counts.linger++;
      d.clear();
      c.conn.destroy();
      break;
  }
}
