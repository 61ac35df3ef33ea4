// What both backends share: the handle table, cookies, event delivery (handler, dispatch, async iteration),
// counters and argument checking. Backends implement the operations (see channel.ts for the contracts).
import { isIP } from 'node:net';
import { MpEvent, type EventHandler, type EventType } from './event.js';
import { MegapipeError, MpCode, argError, errnoCode, rangeError } from './errors.js';
import type { Limits } from './limits.js';
import type { Listener } from './listener.js';
import type { ConnectOptions } from './channel.js';

export const enum Kind { Free = 0, Listener = 1, Direct = 2, Fd = 3 }

// per-handle state bits
export const enum St {
  Reading = 1 << 0,       // the application asked for reads (read())
  RecvArmed = 1 << 1,     // a receive request is in the kernel
  RecvCancel = 1 << 2,    // a cancel for it is in flight
  PausedUser = 1 << 3,    // pause() by the application
  PausedHwm = 1 << 4,     // queued send bytes above the high-water mark
  Eof = 1 << 5,           // the peer closed its side
  Closing = 1 << 6,       // disconnect/unregister requested: no new operations
  CloseAfterDrain = 1 << 7,
  CloseIssued = 1 << 8,
  Errored = 1 << 9,
  Connecting = 1 << 10,
  AcceptMulti = 1 << 11,  // a multishot accept is armed (listener)
  AcceptFdMode = 1 << 12, // listener accepts regular fds (direct table full, or lwsocket: false)
  KeepFd = 1 << 13,       // unregister: leave the fd open for its owner
  AboveHwm = 1 << 14,     // write() returned false; a 'write' event with drain follows
  Installing = 1 << 15,   // toFd() in progress
  AcceptCancel = 1 << 16, // a cancel of the listener's multishot accept is in flight (table nearly full)
  WriteEnded = 1 << 17,   // end(): no more writes; the write side shuts down once queued bytes are sent
  ShutdownPending = 1 << 18, // end() with bytes still queued (or connecting): the shutdown waits for them
  CloseLinked = 1 << 19,  // graceful close: the close is hard-linked behind the send in flight (io_uring)
  RecvSeen = 1 << 20,     // a receive was armed before: the first is single-shot, later ones multishot (io_uring)
  PausedQueue = 1 << 21,  // undispatched events passed limits.dispatchQueueMax: resumed when dispatch() drains them
  /** Any reason not to deliver reads now. */
  Paused = PausedUser | PausedHwm | PausedQueue,
}

/** ChannelCore.holdable once the read event's buffer was held. */
const HELD = -2;

/** readFile's largest result (one Buffer). */
export const READ_FILE_MAX = 1 << 30;

export interface ChannelStats {
  backend: 'uring' | 'portable';
  /** Operations requested by the application (accept, read, write, disconnect, connect…). */
  requests: number;
  /** Flushes of staged requests to the kernel (one io_uring_enter each, or one tick for the portable backend). */
  flushes: number;
  /** io_uring_enter system calls (0 for the portable backend). */
  enters: number;
  /** Submission entries the kernel accepted. */
  submitted: number;
  /** Completions received. */
  completions: number;
  /** Completion batches handed to JavaScript (one native→JS call each). */
  batches: number;
  /** eventfd wake-ups of the channel, and those that found nothing to do. */
  wakeups: number;
  emptyWakeups: number;
  /** Connections accepted. */
  accepted: number;
  bytesRead: number;
  bytesWritten: number;
  /** Receives re-armed after the buffer ring ran dry (-ENOBUFS). */
  enobufs: number;
  /** Completion-queue overflows the kernel held back and the channel flushed. */
  cqOverflows: number;
  /** Connections accepted as regular fds because the direct-descriptor table was full. */
  tableFullFallbacks: number;
  /** sendFile calls sent by splice (page-cache pages to the socket, no copy; io_uring), and those that wanted to but
   * found no pipe free (limits.splicePipes) and read into the send arena instead. */
  filesSpliced: number;
  spliceNoPipe: number;
  /** Writes sent from the caller's (or an overflow copy's) memory without a copy into the send arena (io_uring). */
  writesNoCopy: number;
  /** Open handles now. */
  handles: number;
  /** Flushes the kernel refused (io_uring_enter failed: memory or completion-queue pressure); their requests stayed
   * staged and were retried, or failed with the error (io_uring; 0 on the portable backend). */
  submitFailures: number;
  /** Requests the native side refused as malformed (completed with EINVAL; a bug if ever non-zero). */
  requestsRefused: number;
  /** Receive buffers returned twice or out of range, refused by the native side (a bug if ever non-zero). */
  recycleRefused: number;
  /** Requests in the kernel now (io_uring: submitted, final completion not yet drained). */
  inKernel: number;
}

export abstract class ChannelCore {
  readonly limits: Limits;
  abstract readonly backend: 'uring' | 'portable';
  /** The CPU the channel's thread is pinned to, or -1. */
  readonly cpu: number = -1;
  protected readonly kind: Uint8Array;
  protected readonly gen: Uint32Array;
  protected readonly state: Uint32Array;
  protected readonly cookies: unknown[];
  private readonly freeIds: Int32Array;
  private freeTop: number;
  protected open = 0;
  private loopUsers = 0;
  protected closed = false;
  protected handler: EventHandler | null = null;
  protected readonly ev = new MpEvent();
  // holdBuffer(): the token the read event being delivered can be held under (-1: none; HELD: it was held), and the
  // tokens held
  private holdable = -1;
  protected readonly heldBufs = new Set<number>();
  /** After emitRead returns (or throws): whether the handler kept the event's buffer (holdBuffer). */
  protected readHeld = false;
  private readonly evQueue: MpEvent[] = [];
  // connections paused because undispatched events passed dispatchQueueMax (St.PausedQueue)
  private readonly pausedByQueue = new Set<number>();
  private drainScheduled = false;
  private queueHead = 0;
  private waiters: { resolve: (e: MpEvent | null) => void; timer: NodeJS.Timeout | undefined }[] = [];
  protected readonly counters = { requests: 0, flushes: 0, accepted: 0, bytesRead: 0, bytesWritten: 0, enobufs: 0, tableFullFallbacks: 0, filesSpliced: 0, spliceNoPipe: 0, writesNoCopy: 0 };

  constructor(limits: Limits) {
    this.limits = limits;
    const n = limits.maxHandles;
    this.kind = new Uint8Array(n);
    this.gen = new Uint32Array(n);
    this.state = new Uint32Array(n);
    this.cookies = new Array(n).fill(undefined);
    this.freeIds = new Int32Array(n);
    for (let i = 0; i < n; i++) this.freeIds[i] = n - 1 - i;  // hand out low ids first
    this.freeTop = n;
  }

  // ---- handles ------------------------------------------------------------------------------------------
  /** Allocates a handle id, or -1 when maxHandles are open. */
  protected allocHandle(kind: Kind, cookie: unknown): number {
    if (this.freeTop === 0) return -1;
    const h = this.freeIds[--this.freeTop]!;
    this.kind[h] = kind;
    this.state[h] = 0;
    this.gen[h] = (this.gen[h]! + 1) & 0xffffff;
    this.cookies[h] = cookie;
    this.open++;
    this.loopUse(1);
    return h;
  }

  protected freeHandle(h: number): void {
    this.kind[h] = Kind.Free;
    this.state[h] = 0;
    this.cookies[h] = undefined;
    this.freeIds[this.freeTop++] = h;
    this.open--;
    this.loopUse(-1);
  }

  /**
   * One more (+1) or one fewer (-1) reason to keep the event loop alive: an open handle, or an operation not tied to a
   * handle (readFile). The channel holds the loop while there is any (and lets the process exit when none is left).
   */
  protected loopUse(delta: 1 | -1): void {
    this.loopUsers += delta;
    if (delta === 1 ? this.loopUsers === 1 : this.loopUsers === 0) this.setRef(delta === 1);
  }

  /** Keeps the event loop alive while handles are open (and lets the process exit when none are). */
  protected abstract setRef(on: boolean): void;

  /** Throws unless `h` names an open handle that accepts new operations. */
  protected check(h: number, what: string): void {
    if (this.closed) throw new MegapipeError(MpCode.CLOSED, `${what}: the channel is closed`);
    if (typeof h !== 'number' || !Number.isInteger(h)) throw argError('handle', 'an integer handle', h);
    if (h < 0 || h >= this.kind.length || this.kind[h] === Kind.Free) throw new MegapipeError(MpCode.BAD_HANDLE, `${what}: ${h} is not an open handle of this channel`);
    if (this.state[h]! & St.Closing) throw new MegapipeError(MpCode.CLOSED, `${what}: handle ${h} is closing`);
  }

  protected checkConn(h: number, what: string): void {
    this.check(h, what);
    if (this.kind[h] === Kind.Listener) throw new MegapipeError(MpCode.BAD_HANDLE, `${what}: handle ${h} is a listener, not a connection`);
  }

  /** checkConn, and the connection's write side must still be open (not end()ed). */
  protected checkWritable(h: number, what: string): void {
    this.checkConn(h, what);
    if (this.state[h]! & St.WriteEnded) throw new MegapipeError(MpCode.CLOSED, `${what}: handle ${h} was ended (end()): its write side is closed`);
  }

  /** The cookie registered with a handle (for accepted connections: undefined until setCookie). */
  cookie(h: number): unknown { return this.cookies[h]; }

  /** Sets the cookie every later event of `h` carries. */
  setCookie(h: number, cookie: unknown): void {
    this.check(h, 'setCookie');
    this.cookies[h] = cookie;
  }

  /** True when `h` names an open (possibly closing) handle. */
  isOpen(h: number): boolean { return (h >>> 0) === h && h < this.kind.length && this.kind[h] !== Kind.Free; }

  /** True when `h` is a direct descriptor (lwsocket). */
  isLwsocket(h: number): boolean { return this.kind[h] === Kind.Direct; }

  get handles(): number { return this.open; }

  // ---- events ------------------------------------------------------------------------------------------
  /**
   * Sets the function called for every event (replaces the previous one; `null` switches to dispatch/iteration).
   * The event object is reused: keep nothing from it after the call returns (see MpEvent).
   */
  onEvent(handler: EventHandler | null): this {
    if (handler !== null && typeof handler !== 'function') throw argError('handler', 'a function or null', handler);
    this.handler = handler;
    // events queued for dispatch() meanwhile go to the handler first, in order (from a microtask, not from this call)
    if (handler !== null && this.queueHead !== this.evQueue.length && !this.drainScheduled) {
      this.drainScheduled = true;
      queueMicrotask(() => this.drainToHandler());
    }
    return this;
  }

  // Delivers the events dispatch() did not take to the handler set since, oldest first; new events wait behind them.
  private drainToHandler(): void {
    this.drainScheduled = false;
    try {
      while (this.handler !== null && this.queueHead < this.evQueue.length && !this.closed) this.handler(this.evQueue[this.queueHead++]!);
    } finally {
      if (this.queueHead === this.evQueue.length) { this.evQueue.length = 0; this.queueHead = 0; }
      else if (this.handler !== null && !this.closed) { this.drainScheduled = true; queueMicrotask(() => this.drainToHandler()); }   // the handler threw
      if (this.pausedByQueue.size > 0) this.resumeQueuePaused();
    }
  }

  protected emit(type: EventType, h: number, result: number, buffer?: Uint8Array, offset = 0, cookieOf = h): void {
    if (this.closed) return;   // close() ends the events, also those of a batch being delivered
    const ev = this.ev;
    ev.type = type; ev.handle = h; ev.cookie = this.cookies[cookieOf]; ev.result = result;
    ev.code = result < 0 ? errnoCode(result) : undefined;
    ev.buffer = buffer; ev.offset = offset;
    if (this.handler !== null && this.queueHead === this.evQueue.length) { this.handler(ev); return; }
    this.enqueue(ev.copy());
  }

  /**
   * Delivers a read event whose bytes the handler may keep with holdBuffer() under `token` (a backend's buffer id).
   * After it returns (or throws), `this.readHeld` tells the backend whether the handler kept the buffer: if so, it is
   * returned by releaseBuffer (also when the handler released it before returning), never by the backend.
   */
  protected emitRead(h: number, result: number, buffer: Uint8Array, offset: number, token: number): void {
    const prev = this.holdable;
    // dispatch()/iteration (and a handler with queued events before it) get owned copies: nothing to hold
    this.holdable = this.handler !== null && this.queueHead === this.evQueue.length ? token : -1;
    try { this.emit('read', h, result, buffer, offset); }
    finally { this.readHeld = this.holdable === HELD; this.holdable = prev; }
  }

  /**
   * Keeps the receive buffer of the read event being handled valid after the handler returns (zero-copy; the
   * event's `buffer[offset, offset + result)` is not reused) until `releaseBuffer(token)`. Only inside an
   * `onEvent` handler, during a read event that carries bytes (else MP_ERR_STATE). At most
   * `limits.heldBuffersMax` at once (RangeError, MP_ERR_LIMIT): a held buffer is out of the receive ring.
   * Closing the channel releases every held buffer (the memory stays valid while views of it are reachable).
   */
  holdBuffer(): number {
    const t = this.holdable;
    if (t < 0) throw new MegapipeError(MpCode.STATE, 'holdBuffer() is only valid inside the onEvent handler of a read event that carries bytes');
    if (this.heldBufs.size >= this.limits.heldBuffersMax) throw new MegapipeError(MpCode.LIMIT, `holdBuffer(): ${this.heldBufs.size} buffers held, the most limits.heldBuffersMax allows`);
    this.heldBufs.add(t);
    this.holdable = HELD;
    return t;
  }

  /** Returns a buffer kept with holdBuffer() to the receive ring. A token not held throws RangeError; after close(), no-op. */
  releaseBuffer(token: number): void {
    if (this.closed) return;
    if (!this.heldBufs.delete(token)) throw rangeError('token', 'a token from holdBuffer() that is still held', token);
    this.returnHeld(token);
  }

  /** Backend hook: a held buffer goes back to the receive ring. */
  protected abstract returnHeld(token: number): void;

  /** Buffers held with holdBuffer() now. */
  get heldBuffers(): number { return this.heldBufs.size; }

  protected emitCode(type: EventType, h: number, result: number, code: string, cookieOf = h): void {
    if (this.closed) return;
    const ev = this.ev;
    ev.type = type; ev.handle = h; ev.cookie = this.cookies[cookieOf]; ev.result = result; ev.code = code;
    ev.buffer = undefined; ev.offset = 0;
    if (this.handler !== null && this.queueHead === this.evQueue.length) { this.handler(ev); return; }
    this.enqueue(ev.copy());
  }

  private enqueue(e: MpEvent): void {
    const w = this.waiters.shift();
    if (w) { if (w.timer) clearTimeout(w.timer); w.resolve(e); return; }
    this.evQueue.push(e);
    // bounded: pause the connection whose reads are piling up (resumed once dispatch() has drained half the bound)
    if (this.evQueue.length - this.queueHead > this.limits.dispatchQueueMax && e.type === 'read' && this.isOpen(e.handle)) {
      const st = this.state[e.handle]!;
      if (!(st & (St.PausedQueue | St.Closing))) {
        this.state[e.handle] = st | St.PausedQueue;
        this.pausedByQueue.add(e.handle);
        this.syncReading(e.handle);
      }
    }
  }

  // Resumes the connections the dispatch-queue bound paused, once the queue has drained to half the bound.
  private resumeQueuePaused(): void {
    if (this.evQueue.length - this.queueHead > this.limits.dispatchQueueMax >>> 1) return;
    const paused = [...this.pausedByQueue];   // (a resume may pause again: that one stays in the set)
    this.pausedByQueue.clear();
    for (const h of paused) {
      if (!this.isOpen(h) || !(this.state[h]! & St.PausedQueue)) continue;
      this.state[h]! &= ~St.PausedQueue;
      if (!(this.state[h]! & St.Closing)) this.syncReading(h);
    }
  }

  /** Backend primitive: brings the kernel's (or socket's) reading of `h` in line with its state bits. */
  protected abstract syncReading(h: number): void;

  /** Stops `read` events for connection `h` until `resume(h)` (the kernel's receive buffer then fills: TCP flow control). */
  pause(h: number): void {
    this.checkConn(h, 'pause');
    this.state[h]! |= St.PausedUser;
    this.syncReading(h);
  }

  /** Undoes `pause(h)`: reads (and bytes held back meanwhile, in order) are delivered again. */
  resume(h: number): void {
    this.checkConn(h, 'resume');
    this.state[h]! &= ~St.PausedUser;
    this.syncReading(h);
  }

  /**
   * mp_dispatch: the next event, waiting up to `timeoutMs` (default: forever); null on timeout or when the channel
   * closes. Only while no handler is set. Events returned own their data.
   */
  dispatch(timeoutMs = -1): Promise<MpEvent | null> {
    if (this.handler !== null) return Promise.reject(new MegapipeError(MpCode.LIMIT, 'dispatch() is unavailable while an onEvent handler is set'));
    if (typeof timeoutMs !== 'number' || Number.isNaN(timeoutMs)) return Promise.reject(argError('timeoutMs', 'a number', timeoutMs));
    if (this.queueHead < this.evQueue.length) {
      const e = this.evQueue[this.queueHead++]!;
      if (this.queueHead > 1024 && this.queueHead * 2 > this.evQueue.length) { this.evQueue.splice(0, this.queueHead); this.queueHead = 0; }
      if (this.pausedByQueue.size > 0) this.resumeQueuePaused();
      return Promise.resolve(e);
    }
    if (this.closed || timeoutMs === 0) return Promise.resolve(null);
    return new Promise((resolve) => {
      const w = { resolve, timer: undefined as NodeJS.Timeout | undefined };
      if (timeoutMs > 0) w.timer = setTimeout(() => { this.waiters.splice(this.waiters.indexOf(w), 1); resolve(null); }, timeoutMs);
      this.waiters.push(w);
    });
  }

  /** Events as an async iterator (ends when the channel closes). Events own their data. */
  async *[Symbol.asyncIterator](): AsyncGenerator<MpEvent> {
    for (;;) {
      const e = await this.dispatch();
      if (e === null) return;
      yield e;
    }
  }

  protected endDispatch(): void {
    for (const w of this.waiters.splice(0)) { if (w.timer) clearTimeout(w.timer); w.resolve(null); }
  }

  // ---- argument checks shared by both backends ------------------------------------------------------------
  protected static bytesArgs(data: unknown, offset: number | undefined, length: number | undefined): [Uint8Array, number, number] {
    if (!(data instanceof Uint8Array)) throw argError('data', 'a Uint8Array or Buffer', data);
    const off = offset ?? 0;
    if (!Number.isInteger(off) || off < 0 || off > data.byteLength) throw rangeError('offset', `an integer in 0..${data.byteLength}`, offset);
    const len = length ?? data.byteLength - off;
    if (!Number.isInteger(len) || len < 0 || off + len > data.byteLength) throw rangeError('length', `an integer in 0..${data.byteLength - off}`, length);
    return [data, off, len];
  }

  /**
   * What both backends' sendFile do before queueing: checks (a rejected promise for a bad argument or a closed or
   * failed connection), counting, and the empty file. Null: go on and queue it.
   */
  protected sendFileStart(h: number, fd: number, position: number, length: number, failed: boolean): Promise<void> | null {
    try {
      this.checkWritable(h, 'sendFile');
      ChannelCore.fileArgs(fd, position, length);
    } catch (e) { return Promise.reject(e); }
    this.counters.requests++;
    if (failed || (this.state[h]! & St.Errored)) return Promise.reject(new MegapipeError(MpCode.CLOSED, `sendFile: connection ${h} is closed or failed`));
    return length === 0 ? Promise.resolve() : null;
  }

  /** readFile's checks and counting, shared by both backends: a rejected promise for a bad call, else null. */
  protected readFileStart(fd: number, position: number, length: number): Promise<never> | null {
    try {
      if (this.closed) throw new MegapipeError(MpCode.CLOSED, 'readFile: the channel is closed');
      ChannelCore.fileArgs(fd, position, length, READ_FILE_MAX);
    } catch (e) { return Promise.reject(e); }
    this.counters.requests++;
    return null;
  }

  /**
   * sendFile/readFile's arguments: a file descriptor, a byte position and a length (integers; position + length
   * within 2^53, the file positions a row can carry). readFile's result is one Buffer: `maxLength` bounds it.
   */
  protected static fileArgs(fd: unknown, position: unknown, length: unknown, maxLength = Number.MAX_SAFE_INTEGER): void {
    if (!Number.isInteger(fd) || (fd as number) < 0 || (fd as number) > 0x7fffffff) throw argError('fd', 'a file descriptor (non-negative integer)', fd);
    if (!Number.isInteger(position) || (position as number) < 0) throw rangeError('position', 'a non-negative integer', position);
    if (!Number.isInteger(length) || (length as number) < 0 || (length as number) > maxLength) throw rangeError('length', `an integer in 0..${maxLength}`, length);
    if ((position as number) + (length as number) > Number.MAX_SAFE_INTEGER) throw rangeError('position + length', `at most ${Number.MAX_SAFE_INTEGER}`, (position as number) + (length as number));
  }

  /** writev's chunks, every one checked before any is queued (a bad chunk must not leave the others half-written). */
  protected static chunksArg(chunks: unknown): readonly Uint8Array[] {
    if (!Array.isArray(chunks)) throw argError('chunks', 'an array of Uint8Array', chunks);
    for (let i = 0; i < chunks.length; i++) if (!(chunks[i] instanceof Uint8Array)) throw argError(`chunks[${i}]`, 'a Uint8Array or Buffer', chunks[i]);
    return chunks as readonly Uint8Array[];
  }

  protected static abortArg(abort: unknown): boolean {
    if (typeof abort !== 'boolean') throw argError('abort', 'a boolean', abort);
    return abort;
  }

  /** connect's arguments: an address literal (or "localhost"), a port in 1..65535, a source address literal. */
  protected static connectArgs(host: unknown, port: unknown, options: unknown): [string, number, string | undefined] {
    if (typeof host !== 'string') throw argError('host', 'a string', host);
    if (host === 'localhost') host = '127.0.0.1';
    if (isIP(host as string) === 0) throw argError('host', 'an IPv4 or IPv6 address literal or "localhost"', host);
    if (!Number.isInteger(port) || (port as number) < 1 || (port as number) > 65535) throw rangeError('port', 'an integer in 1..65535', port);
    if (options === null || typeof options !== 'object') throw argError('options', 'an object', options);
    const la = (options as ConnectOptions).localAddress;
    if (la !== undefined && (typeof la !== 'string' || isIP(la) === 0)) throw argError('localAddress', 'an IPv4 or IPv6 address literal', la);
    return [host as string, port as number, la];
  }

  protected static listenerArg(target: unknown): Listener {
    if (target === null || typeof target !== 'object' || !('fds' in target) || !('memberFor' in target)) throw argError('target', 'a Listener (from listen()) or a socket fd number', target);
    return target as Listener;
  }
}
