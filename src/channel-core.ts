// What both backends share: the handle table, event delivery (handler, dispatch, async iteration, the dispatch-queue
// bound), held receive buffers, counters, and every public operation's argument checks and state bits. A backend
// implements the primitives below (queue bytes, arm or stop reading, end writes, accept, connect, files) and the
// operations that are its own (register, disconnect, unregister, toFd, stats, close). The contracts are in channel.ts.
import { isIP } from 'node:net';
import { EventRecord, type EventHandler, type EventType, type MpEvent } from './event.js';
import { MegapipeError, MpCode, argError, errnoCode, rangeError } from './errors.js';
import { HandleTable, Kind, St } from './handle-table.js';
import { bounds, type Limits } from './limits.js';
import { checkOptions, optionKeys } from './options.js';
import type { Listener } from './listener.js';
import type { AcceptOptions, ChannelStats, ConnectOptions, Features, RegisterOptions, SocketAddress, SocketOption } from './channel.js';

const ACCEPT_OPTIONS = optionKeys<AcceptOptions>({ count: true, lwsocket: true });
const CONNECT_OPTIONS = optionKeys<ConnectOptions>({ localAddress: true, localPort: true });
const REGISTER_OPTIONS = optionKeys<RegisterOptions>({ cpuMask: true, member: true });

/** ChannelCore.holdable once the read event's buffer was held. */
const HELD = -2;

/** readFile's largest result (one Buffer). */

/** What a backend's constructor takes besides the limits. */
export interface BackendOptions {
  batch?: number;
  pauseReadsAboveHighWater?: boolean;
  /** The CPU the calling thread was pinned to (-1: none). */
  cpu?: number;
}

export abstract class ChannelCore {
  readonly limits: Limits;
  abstract readonly backend: 'uring' | 'portable';
  abstract readonly features: Features;
  /** The CPU the channel's thread is pinned to, or -1. */
  readonly cpu: number;
  /** @internal The handle table (per-handle kind, generation, state bits, cookie). */
  readonly table: HandleTable;
  protected readonly kind: Uint8Array;
  protected readonly gen: Uint32Array;
  protected readonly state: Uint32Array;
  protected readonly cookies: unknown[];
  protected closed = false;
  // the handlers onEvent added, in order, and what emit calls: the one handler itself, or a fan-out over all of them
  private handlers: readonly EventHandler[] = [];
  protected handler: EventHandler | null = null;
  protected readonly ev = new EventRecord();
  /** @internal Reasons to keep the event loop alive: open handles, and operations tied to none (readFile). */
  private loopUsers = 0;
  // holdBuffer(): the token the read event being delivered can be held under (-1: none; HELD: it was held), and the
  // tokens held
  private holdable = -1;
  protected readonly heldBufs = new Set<number>();
  /** @internal After emitRead returns (or throws): whether the handler kept the event's buffer (holdBuffer). */
  readHeld = false;
  private readonly evQueue: MpEvent[] = [];
  private queueHead = 0;
  // connections paused because undispatched events passed dispatchQueueMax (St.PausedQueue)
  private readonly pausedByQueue = new Set<number>();
  private drainScheduled = false;
  private waiters: { resolve: (e: MpEvent | null) => void; timer: NodeJS.Timeout | undefined }[] = [];
  /** @internal */
  readonly counters = { requests: 0, flushes: 0, accepted: 0, bytesRead: 0, bytesWritten: 0, enobufs: 0, tableFullFallbacks: 0, filesSpliced: 0, filesSentfile: 0, fileResidencyProbes: 0, spliceNoPipe: 0, writesNoCopy: 0 };

  constructor(limits: Limits, options: BackendOptions) {
    this.limits = limits;
    this.cpu = options.cpu ?? -1;
    this.table = new HandleTable(limits.maxHandles);
    this.kind = this.table.kind; this.gen = this.table.gen; this.state = this.table.state; this.cookies = this.table.cookies;
  }

  // ---- backend primitives ---------------------------------------------------------------------------------------
  /** Keeps the event loop alive (on) while the channel has a reason to (see loopUse), and lets it go (off). */
  protected abstract setRef(on: boolean): void;
  /** Brings the reading of `h` (a receive request, a socket's flow) in line with its state bits. */
  protected abstract syncReading(h: number): void;
  /** Queues `len` bytes of `data` from `off` on connection `h` (checked, writable): copied, or sent from `data`
   * itself (`copy` false: writeNoCopy). Returns write()'s answer. */
  protected abstract queueBytes(h: number, data: Uint8Array, off: number, len: number, copy: boolean): boolean;
  /** Queues a Latin-1 string on connection `h` (checked, writable). Returns write()'s answer. */
  protected abstract queueAscii(h: number, text: string): boolean;
  /** end() was called on `h` (checked; WriteEnded set): shut the write side down once the queued bytes are sent. */
  protected abstract endWrites(h: number): void;
  /** Queues a file region on `h` (checked, non-empty). */
  protected abstract queueFile(h: number, fd: number, position: number, length: number): Promise<void>;
  /** Reads a file region (checked, non-empty). */
  protected abstract readFileBytes(fd: number, position: number, length: number): Promise<Buffer>;
  /** Accepts on listener `h` (checked): `count` connections (Infinity: keep accepting), lwsockets or fds. */
  protected abstract acceptOn(h: number, count: number, lwsocket: boolean): void;
  /** Opens a client connection (arguments checked): its new handle. */
  protected abstract openConnection(host: string, port: number, cookie: unknown, localAddress: string | undefined, localPort: number): number;
  /** A held buffer goes back to the receive ring. */
  protected abstract returnHeld(token: number): void;

  abstract register(target: Listener | number, cookie?: unknown, options?: RegisterOptions): number;
  abstract unregister(h: number): void;
  abstract disconnect(h: number, abort?: boolean): void;
  abstract pendingBytes(h: number): number;
  abstract toFd(h: number): Promise<number>;
  abstract incomingCpu(h: number): number;
  /** The address of one end of connection `h` (checked), or undefined. */
  protected abstract endAddress(h: number, peer: boolean): SocketAddress | undefined;
  abstract flush(): void;
  abstract stats(): ChannelStats;
  abstract close(): void;
  abstract get batchThreshold(): number;
  abstract set batchThreshold(n: number);
  /** @internal The connections waiting in listener `h`'s queue now, taken without waiting (it may be closing: its
   * queue stays): each becomes a regular-fd connection; their handles, oldest first. */
  abstract acceptQueued(h: number): number[];
  /** @internal A function telling, at each call, whether the peer of `h` took bytes since the previous call. */
  abstract watchProgress(h: number): () => boolean;

  // ---- handles ------------------------------------------------------------------------------------------------
  /** Allocates a handle, or -1 when maxHandles are open. */
  protected allocHandle(kind: Kind, cookie: unknown): number {
    const h = this.table.alloc(kind, cookie);
    if (h >= 0) this.loopUse(1);
    return h;
  }

  protected freeHandle(h: number): void {
    this.table.free(h);
    this.loopUse(-1);
  }

  /** @internal One more (+1) or one fewer (-1) reason to keep the event loop alive (see setRef). */
  loopUse(delta: 1 | -1): void {
    this.loopUsers += delta;
    if (delta === 1 ? this.loopUsers === 1 : this.loopUsers === 0) this.setRef(delta === 1);
  }

  /** @internal The channel has been closed. */
  get isClosed(): boolean { return this.closed; }

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

  // A connection `h` can be written to (else checkWritable says why). Inline checks: write is the hot path.
  protected writable(h: number): boolean {
    return !this.closed && (h >>> 0) === h && h < this.kind.length && this.kind[h] !== Kind.Free && this.kind[h] !== Kind.Listener && !(this.state[h]! & (St.Closing | St.WriteEnded));
  }

  cookie(h: number): unknown { return this.cookies[h]; }

  setCookie(h: number, cookie: unknown): void {
    this.check(h, 'setCookie');
    this.cookies[h] = cookie;
  }

  isOpen(h: number): boolean { return this.table.isOpen(h); }

  socketAddress(h: number, side: 'local' | 'remote'): SocketAddress | undefined {
    // a closing connection still has its socket (a session's close handler may log its peer): not check()'s rule
    if (this.closed) throw new MegapipeError(MpCode.CLOSED, 'socketAddress: the channel is closed');
    if (typeof h !== 'number' || !Number.isInteger(h)) throw argError('handle', 'an integer handle', h);
    if (h < 0 || h >= this.kind.length || this.kind[h] === Kind.Free || this.kind[h] === Kind.Listener) throw new MegapipeError(MpCode.BAD_HANDLE, `socketAddress: ${h} is not an open connection of this channel`);
    if (side !== 'local' && side !== 'remote') throw argError('side', '"local" or "remote"', side);
    return this.endAddress(h, side === 'remote');
  }

  setSocketOption(h: number, option: SocketOption, value: boolean | number): void {
    this.checkConn(h, 'setSocketOption');
    this.applySocketOption(h, option, socketOptionValue(option, value));
  }

  socketOption(h: number, option: SocketOption): number {
    this.checkConn(h, 'socketOption');
    if (!SOCKET_OPTIONS.has(option)) throw argError('option', '"noDelay", "keepAlive" or "keepAliveDelay"', option);
    return this.readSocketOption(h, option);
  }

  reset(h: number): void {
    this.checkConn(h, 'reset');
    this.resetConn(h);
  }

  /** Sets `option` (checked) on open connection `h`. */
  protected abstract applySocketOption(h: number, option: SocketOption, value: number): void;
  protected abstract readSocketOption(h: number, option: SocketOption): number;
  /** Closes open connection `h` with an RST. */
  protected abstract resetConn(h: number): void;

  isLwsocket(h: number): boolean { return this.kind[h] === Kind.Direct; }

  get handles(): number { return this.table.open; }

  // ---- operations: checks and state here, the work in the backend ---------------------------------------------
  accept(h: number, options: AcceptOptions = {}): void {
    this.check(h, 'accept');
    if (this.kind[h] !== Kind.Listener) throw new MegapipeError(MpCode.BAD_HANDLE, `accept: handle ${h} is not a listener`);
    checkOptions(options, ACCEPT_OPTIONS);
    const count = options.count ?? Infinity;
    if (count !== Infinity && (!Number.isInteger(count) || count < 1 || count > bounds.acceptCount)) throw rangeError('count', `Infinity or an integer in 1..${bounds.acceptCount}`, count);
    const lw = options.lwsocket ?? true;
    if (typeof lw !== 'boolean') throw argError('lwsocket', 'a boolean', lw);
    this.counters.requests++;
    this.acceptOn(h, count, lw);
  }

  read(h: number): void {
    this.checkConn(h, 'read');
    this.counters.requests++;
    this.state[h]! |= St.Reading;
    this.syncReading(h);
  }

  pause(h: number): void {
    this.checkConn(h, 'pause');
    this.state[h]! |= St.PausedUser;
    this.syncReading(h);
  }

  resume(h: number): void {
    this.checkConn(h, 'resume');
    this.state[h]! &= ~St.PausedUser;
    this.syncReading(h);
  }

  write(h: number, data: Uint8Array, offset?: number, length?: number): boolean {
    if (!this.writable(h)) this.checkWritable(h, 'write');
    return this.queueBytes(h, data, offset ?? 0, ChannelCore.bytesLength(data, offset, length), true);
  }

  writeNoCopy(h: number, data: Uint8Array, offset?: number, length?: number): boolean {
    if (!this.writable(h)) this.checkWritable(h, 'writeNoCopy');
    return this.queueBytes(h, data, offset ?? 0, ChannelCore.bytesLength(data, offset, length), false);
  }

  writev(h: number, chunks: readonly Uint8Array[]): boolean {
    ChannelCore.chunksArg(chunks);
    this.checkWritable(h, 'writev');
    let ok = this.pendingBytes(h) <= this.limits.highWaterMark;   // (no chunks: what a 0-byte write answers)
    for (const c of chunks) ok = this.write(h, c);
    return ok;
  }

  writeAscii(h: number, text: string): boolean {
    if (typeof text !== 'string') throw argError('text', 'a string', text);
    if (!this.writable(h)) this.checkWritable(h, 'writeAscii');
    return this.queueAscii(h, text);
  }

  end(h: number): void {
    this.checkConn(h, 'end');
    if (this.state[h]! & St.WriteEnded) return;
    this.counters.requests++;
    this.state[h]! |= St.WriteEnded;
    this.endWrites(h);
  }

  sendFile(h: number, fd: number, position: number, length: number): Promise<void> {
    try {
      this.checkWritable(h, 'sendFile');
      ChannelCore.fileArgs(fd, position, length);
    } catch (e) { return Promise.reject(e); }
    this.counters.requests++;
    if (this.state[h]! & St.Errored) return Promise.reject(new MegapipeError(MpCode.CLOSED, `sendFile: connection ${h} is closed or failed`));
    return length === 0 ? Promise.resolve() : this.queueFile(h, fd, position, length);
  }

  readFile(fd: number, position: number, length: number): Promise<Buffer> {
    try {
      if (this.closed) throw new MegapipeError(MpCode.CLOSED, 'readFile: the channel is closed');
      ChannelCore.fileArgs(fd, position, length, bounds.readFileBytes);
    } catch (e) { return Promise.reject(e); }
    this.counters.requests++;
    return length === 0 ? Promise.resolve(Buffer.alloc(0)) : this.readFileBytes(fd, position, length);
  }

  connect(host: string, port: number, cookie?: unknown, options: ConnectOptions = {}): number {
    if (this.closed) throw new MegapipeError(MpCode.CLOSED, 'connect: the channel is closed');
    const [h, p, local, localPort] = ChannelCore.connectArgs(host, port, options);
    this.counters.requests++;
    return this.openConnection(h, p, cookie, local, localPort);
  }

  // ---- events ---------------------------------------------------------------------------------------------------
  onEvent(handler: EventHandler | null): this {
    if (handler !== null && typeof handler !== 'function') throw argError('handler', 'a function or null', handler);
    if (handler === null) this.setHandlers([]);
    else if (!this.handlers.includes(handler)) this.setHandlers([...this.handlers, handler]);
    // events queued for dispatch() meanwhile go to the handler first, in order (from a microtask, not from this call)
    if (handler !== null && this.queueHead !== this.evQueue.length && !this.drainScheduled) {
      this.drainScheduled = true;
      queueMicrotask(() => this.drainToHandler());
    }
    return this;
  }

  offEvent(handler: EventHandler): this {
    if (typeof handler !== 'function') throw argError('handler', 'a function', handler);
    this.setHandlers(this.handlers.filter((h) => h !== handler));
    return this;
  }

  // One handler is called directly (the hot path); several through a fan-out over a snapshot of the list, so a
  // handler that adds or removes handlers changes the next event's list, not this one's.
  private setHandlers(list: readonly EventHandler[]): void {
    this.handlers = list;
    if (list.length === 0) this.handler = null;
    else if (list.length === 1) this.handler = list[0]!;
    else this.handler = (ev: MpEvent): void => { for (let i = 0; i < list.length; i++) list[i]!(ev); };
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

  /** @internal Delivers an event (nothing once the channel is closed: also not for a batch being delivered). */
  emit(type: EventType, h: number, result: number, buffer?: Uint8Array, offset = 0, cookieOf = h): void {
    if (this.closed) return;
    const ev = this.ev.set(type, h, this.cookies[cookieOf], result, result < 0 ? errnoCode(result) : undefined, buffer, offset);
    if (this.handler !== null && this.queueHead === this.evQueue.length) { this.handler(ev); return; }
    this.enqueue(ev.copy());
  }

  /** @internal An event whose code is not the errno's name (MP_ERR_*). */
  emitCode(type: EventType, h: number, result: number, code: string, cookieOf = h): void {
    if (this.closed) return;
    const ev = this.ev.set(type, h, this.cookies[cookieOf], result, code, undefined, 0);
    if (this.handler !== null && this.queueHead === this.evQueue.length) { this.handler(ev); return; }
    this.enqueue(ev.copy());
  }

  /**
   * @internal Delivers a read event whose bytes the handler may keep with holdBuffer() under `token` (a backend's
   * buffer id). After it returns (or throws), `readHeld` tells the backend whether the handler kept the buffer: if so,
   * it is returned by releaseBuffer (also when the handler released it before returning), never by the backend.
   */
  emitRead(h: number, result: number, buffer: Uint8Array, offset: number, token: number): void {
    const prev = this.holdable;
    // dispatch()/iteration (and a handler with queued events before it) get owned copies: nothing to hold
    this.holdable = this.handler !== null && this.queueHead === this.evQueue.length ? token : -1;
    try { this.emit('read', h, result, buffer, offset); }
    finally { this.readHeld = this.holdable === HELD; this.holdable = prev; }
  }

  holdBuffer(): number {
    const t = this.holdable;
    if (t < 0) throw new MegapipeError(MpCode.STATE, 'holdBuffer() is only valid inside the onEvent handler of a read event that carries bytes');
    if (this.heldBufs.size >= this.limits.heldBuffersMax) throw new MegapipeError(MpCode.LIMIT, `holdBuffer(): ${this.heldBufs.size} buffers held, the most limits.heldBuffersMax allows`);
    this.heldBufs.add(t);
    this.holdable = HELD;
    return t;
  }

  releaseBuffer(token: number): void {
    if (this.closed) return;
    if (!this.heldBufs.delete(token)) throw rangeError('token', 'a token from holdBuffer() that is still held', token);
    this.returnHeld(token);
  }

  get heldBuffers(): number { return this.heldBufs.size; }

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

  dispatch(timeoutMs = -1): Promise<MpEvent | null> {
    if (this.handler !== null) return Promise.reject(new MegapipeError(MpCode.STATE, 'dispatch() is unavailable while an onEvent handler is set'));
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

  // ---- argument checks --------------------------------------------------------------------------------------------
  /** A write's bytes arguments checked without allocating (the hot path); the length. Throws naming the bad one. */
  protected static bytesLength(data: Uint8Array, offset: number | undefined, length: number | undefined): number {
    if (!(data instanceof Uint8Array)) ChannelCore.bytesArgs(data, offset, length);
    const off = offset ?? 0;
    const len = length ?? data.byteLength - off;
    if (!(off >= 0 && len >= 0 && off + len <= data.byteLength) || !Number.isInteger(off) || !Number.isInteger(len)) ChannelCore.bytesArgs(data, offset, length);
    return len;
  }

  protected static bytesArgs(data: unknown, offset: number | undefined, length: number | undefined): [Uint8Array, number, number] {
    if (!(data instanceof Uint8Array)) throw argError('data', 'a Uint8Array or Buffer', data);
    const off = offset ?? 0;
    if (!Number.isInteger(off) || off < 0 || off > data.byteLength) throw rangeError('offset', `an integer in 0..${data.byteLength}`, offset);
    const len = length ?? data.byteLength - off;
    if (!Number.isInteger(len) || len < 0 || off + len > data.byteLength) throw rangeError('length', `an integer in 0..${data.byteLength - off}`, length);
    return [data, off, len];
  }

  /**
   * sendFile/readFile's arguments: a file descriptor, a byte position and a length (integers; position + length within
   * 2^53, the file positions a row can carry). readFile's result is one Buffer: `maxLength` bounds it.
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

  /** connect's arguments: an address literal (or "localhost"), a port in 1..65535, a source address literal and port. */
  protected static connectArgs(host: unknown, port: unknown, options: unknown): [string, number, string | undefined, number] {
    if (typeof host !== 'string') throw argError('host', 'a string', host);
    if (host === 'localhost') host = '127.0.0.1';
    if (isIP(host as string) === 0) throw argError('host', 'an IPv4 or IPv6 address literal or "localhost"', host);
    if (!Number.isInteger(port) || (port as number) < 1 || (port as number) > 65535) throw rangeError('port', 'an integer in 1..65535', port);
    checkOptions(options as ConnectOptions, CONNECT_OPTIONS);
    const la = (options as ConnectOptions).localAddress;
    if (la !== undefined && (typeof la !== 'string' || isIP(la) === 0)) throw argError('localAddress', 'an IPv4 or IPv6 address literal', la);
    const lp = (options as ConnectOptions).localPort ?? 0;
    if (!Number.isInteger(lp) || lp < 0 || lp > 65535) throw rangeError('localPort', 'an integer in 0..65535', lp);
    return [host as string, port as number, la, lp];
  }

  /** register's options: known keys only (the values are checked where the target is known). */
  protected static registerOptionsArg(options: unknown): void {
    checkOptions(options as RegisterOptions, REGISTER_OPTIONS);
  }

  protected static listenerArg(target: unknown): Listener {
    if (target === null || typeof target !== 'object' || !('fds' in target) || !('memberFor' in target)) throw argError('target', 'a Listener (from listen()) or a socket fd number', target);
    return target as Listener;
  }
}

const SOCKET_OPTIONS = new Set<string>(['noDelay', 'keepAlive', 'keepAliveDelay']);

/** setSocketOption's value for `option`, checked: 0/1 for the switches, whole seconds 1..32767 for keepAliveDelay. */
function socketOptionValue(option: SocketOption, value: boolean | number): number {
  if (option === 'noDelay' || option === 'keepAlive') {
    if (typeof value !== 'boolean') throw argError(option, 'a boolean', value);
    return value ? 1 : 0;
  }
  if (option === 'keepAliveDelay') {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 32767) throw rangeError('keepAliveDelay', 'an integer number of seconds in 1..32767', value);
    return value;
  }
  throw argError('option', '"noDelay", "keepAlive" or "keepAliveDelay"', option);
}
