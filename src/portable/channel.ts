// The portable backend: the same Channel API and events over node:net (used where io_uring is unavailable, and
// as a correctness oracle in the conformance tests). No lwsockets (features.lwsocket = false), no batching of
// system calls (libuv issues one per operation), no fd conversion.
import * as net from 'node:net';
import { ChannelCore, type BackendOptions } from '../channel-core.js';
import { Kind, St } from '../handle-table.js';
import { MegapipeError, MpCode, argError, rangeError, systemError } from '../errors.js';
import { FileQueue, preadAll, progressWatch } from './file-queue.js';
import type { Limits } from '../limits.js';
import type { Listener } from '../listener.js';
import { ENOSYS, acceptNow, closeFd, dupFd, socketIncomingCpu } from '../sockets.js';
import type { Channel, ChannelStats, Features, RegisterOptions, SocketAddress, SocketOption } from '../channel.js';

const FEATURES: Features = Object.freeze({
  lwsocket: false, batching: false, fixedFdInstall: false, splice: false, deferTaskrun: false, singleIssuer: false,
  registeredRing: false, bundles: false, receive: 'stream', sqEntries: 0, cqEntries: 0, setupFlags: 0,
});

/** A listener handle: its node:net server (its own over a native member's fd, or a portable Listener's), that fd (-1:
 * none), connections still to accept (Infinity: keep accepting), and those that arrived while none was asked for. */
interface ListenState { server: net.Server; own: boolean; fd: number; left: number; backlog: net.Socket[] }
export class PortableChannel extends ChannelCore implements Channel {
  readonly backend = 'portable' as const;
  readonly features = FEATURES;
  private batch: number;
  private token = 0;
  private readonly sockets: (net.Socket | undefined)[];
  /** setSocketOption's keepAlive and keepAliveDelay (ms) of a socket: node's setKeepAlive takes both at once. */
  private readonly keepAlives = new WeakMap<net.Socket, { on: boolean; delayMs: number }>();
  private readonly listeners: (ListenState | undefined)[];
  private readonly files: (FileQueue | undefined)[];   // per connection, once it has used sendFile
  // bytes handed to node:net whose write callback has not run yet: what write()'s return value and the 'write' events
  // count, as the io_uring backend counts bytes not yet sent (node:net may have written them to the kernel already;
  // the answer must not depend on that)
  private readonly pend: Float64Array;
  private readonly pauseReadsAboveHwm: boolean;
  private readonly keepAlive: NodeJS.Timeout;

  constructor(limits: Limits, options: BackendOptions = {}) {
    super(limits, options);
    this.batch = options.batch ?? limits.batch;
    this.pauseReadsAboveHwm = options.pauseReadsAboveHighWater ?? true;
    this.sockets = new Array(limits.maxHandles).fill(undefined);
    this.listeners = new Array(limits.maxHandles).fill(undefined);
    this.files = new Array(limits.maxHandles).fill(undefined);
    this.pend = new Float64Array(limits.maxHandles);
    // what keeps the event loop alive is the uring backend's rule (ChannelCore.loopUse: open handles, less those let
    // go — megapipe/net's unref()): this timer, ref'd while there is a reason. The node:net sockets and servers
    // underneath are unref'd (attach, register): a write still in progress keeps the loop alive by itself (libuv's
    // request), as node:net's own after unref()
    this.keepAlive = setInterval(() => {}, 1 << 30);
    this.keepAlive.unref();
  }

  /** The batch threshold (kept for the API; node:net issues each write at once). Same range as the uring backend. */
  get batchThreshold(): number { return this.batch; }
  set batchThreshold(n: number) {
    if (!Number.isInteger(n) || n < 1 || n > this.limits.requestRows) throw rangeError('batchThreshold', `an integer in 1..${this.limits.requestRows}`, n);
    this.batch = n;
  }

  protected setRef(on: boolean): void {
    if (on) this.keepAlive.ref(); else this.keepAlive.unref();
  }

  register(target: Listener | number, cookie?: unknown, options: RegisterOptions = {}): number {
    if (this.closed) throw new MegapipeError(MpCode.CLOSED, 'register: the channel is closed');
    ChannelCore.registerOptionsArg(options);
    if (typeof target === 'number') {
      if (!Number.isInteger(target) || target < 0) throw argError('target', 'a Listener or a socket fd (non-negative integer)', target);
      const h = this.allocHandle(Kind.Fd, cookie);
      if (h < 0) throw new MegapipeError(MpCode.LIMIT, `register: maxHandles (${this.limits.maxHandles}) handles are open`);
      this.attach(h, new net.Socket({ fd: target, readable: true, writable: true, allowHalfOpen: true }));
      return h;
    }
    const l = ChannelCore.listenerArg(target);
    if (l.closed) throw new MegapipeError(MpCode.CLOSED, 'register: the listener is closed');
    let server: net.Server, own: boolean, fd = -1;
    if (l.server) { server = l.server; own = false; }
    else {
      const member = options.member ?? l.memberFor(options.cpuMask);
      if (!Number.isInteger(member) || member < 0 || member >= l.fds.length) throw rangeError('member', `an integer in 0..${l.fds.length - 1}`, member);
      server = net.createServer({ pauseOnConnect: true, allowHalfOpen: true, noDelay: true } as net.ServerOpts);
      fd = l.fds[member]!;
      // listen() without the addon: this thread's first registration listens on the bound socket's own handle
      const bound = l.takeHandle();
      if (bound !== undefined) server.listen(bound.handle, bound.backlog);
      else {
        // node's server closes the descriptor it listens on: with the addon each server gets its own duplicate, so
        // that closing one channel neither stops the others nor closes a number the listener (or anything) reuses
        const copy = dupFd(fd);
        if (copy === ENOSYS) server.listen({ fd });   // no addon: one shared descriptor (README: the fallback's limits)
        else if (copy < 0) throw systemError(copy, 'dup');   // EMFILE: like the io_uring channel's register
        else {
          server.listen({ fd: copy });
          fd = copy;   // acceptQueued takes from this channel's descriptor too: the member's number may be closed, reused
        }
      }
      own = true;
    }
    const h = this.allocHandle(Kind.Listener, cookie);
    if (h < 0) { if (own) server.close(); throw new MegapipeError(MpCode.LIMIT, `register: maxHandles (${this.limits.maxHandles}) handles are open`); }
    const ls: ListenState = { server, own, fd, left: 0, backlog: [] };
    this.listeners[h] = ls;
    // the handle keeps the loop alive (see the constructor); a listenPortable() Listener's server is its owner's: its
    // ref state is left as they set it
    if (own) server.unref();
    server.on('connection', (s: net.Socket) => {
      if (this.kind[h] !== Kind.Listener || (this.state[h]! & St.Closing)) { s.destroy(); return; }
      if (ls.left === 0) { ls.backlog.push(s); return; }
      if (ls.left !== Infinity) ls.left--;
      this.acceptSocket(h, s);
    });
    server.on('error', (e: NodeJS.ErrnoException) => { if (this.isOpen(h)) this.emitCode('listener-error', h, e.errno ?? -5, e.code ?? 'EIO'); });
    return h;
  }

  private acceptSocket(lh: number, s: net.Socket): void {
    const nh = this.allocHandle(Kind.Fd, undefined);
    if (nh < 0) { s.destroy(); this.emitCode('listener-error', lh, -24, MpCode.LIMIT); return; }
    s.setNoDelay(true);
    this.attach(nh, s);
    this.counters.accepted++;
    this.emit('accept', nh, lh, undefined, 0, lh);
  }

  // node:net hands over a fresh Buffer per read: holding it costs nothing; the token only keeps the accounting
  private nextToken(): number { this.token = (this.token + 1) & 0x3fffffff; return this.token; }
  protected returnHeld(): void { /* the Buffer is the application's; nothing to return */ }

  private attach(h: number, s: net.Socket): void {
    this.sockets[h] = s;
    this.pend[h] = 0;
    // half-close is the channel's contract (EOF is a read event; the handle may still write until disconnect), also
    // for sockets of a node:net server created without allowHalfOpen (listenPortable), which would end on EOF
    s.allowHalfOpen = true;
    s.pause();
    s.unref();   // the handle keeps the loop alive (see the constructor)
    s.on('data', (b: Buffer) => {
      this.counters.bytesRead += b.byteLength;
      if (!(this.state[h]! & St.Closing)) this.emitRead(h, b.byteLength, b, 0, this.nextToken());
    });
    s.on('end', () => {
      this.state[h]! |= St.Eof;
      if (!(this.state[h]! & St.Closing)) this.emit('read', h, 0);
    });
    s.on('error', (e: NodeJS.ErrnoException) => {
      this.state[h]! |= St.Errored;
      if (!(this.state[h]! & St.Closing)) this.emitCode('error', h, e.errno ?? -5, e.code ?? 'EIO');
    });
    s.on('close', () => this.release(h));
  }

  private release(h: number): void {
    if (this.kind[h] === Kind.Free || this.sockets[h] === undefined) return;
    this.sockets[h] = undefined;
    this.files[h] = undefined;   // a sendFile still running sees its socket destroyed and rejects
    this.state[h]! |= St.Closing;
    try { this.emit('disconnect', h, 0); } finally { this.freeHandle(h); }
  }

  protected acceptOn(h: number, count: number): void {
    const ls = this.listeners[h]!;
    ls.left = count === Infinity ? Infinity : ls.left + count;
    // connections that arrived while not accepting are delivered now (asynchronously, as completions are)
    setImmediate(() => {
      while (ls.backlog.length > 0 && ls.left > 0 && this.isOpen(h) && !(this.state[h]! & St.Closing)) {
        if (ls.left !== Infinity) ls.left--;
        this.acceptSocket(h, ls.backlog.shift()!);
      }
    });
  }

  protected syncReading(h: number): void { this.syncRead(h); }

  private syncRead(h: number): void {
    const s = this.sockets[h];
    if (!s) return;
    const st = this.state[h]!;
    const want = (st & St.Reading) !== 0 && (st & (St.Paused | St.Closing | St.Connecting)) === 0;
    if (want) s.resume(); else s.pause();
  }

  /** @internal The peer's progress on `h` (serveChannel's endTimeoutMs): pendingBytes moves too coarsely here (per
   * node:net write request, which coalesces megabytes). */
  watchProgress(h: number): () => boolean {
    const s = this.sockets[h];
    return s ? progressWatch(s, () => this.files[h]?.bytes ?? 0) : () => false;
  }

  pendingBytes(h: number): number { return this.sockets[h] !== undefined ? this.pend[h]! + (this.files[h]?.bytes ?? 0) : 0; }

  // write (`copy`) and writeNoCopy (a view, unless shorter than limits.noCopyMinBytes): arguments checked, writable.
  protected queueBytes(h: number, data: Uint8Array, off: number, len: number, copy: boolean): boolean {
    this.counters.requests++;
    const s = this.sockets[h]!;
    if ((this.state[h]! & St.Errored) || s.destroyed || s.writableEnded) return false;
    if (len === 0) return this.pendingBytes(h) <= this.limits.highWaterMark;
    let b: Buffer;
    if (copy || len < this.limits.noCopyMinBytes) {
      b = Buffer.allocUnsafe(len);
      b.set(data.subarray(off, off + len));
    } else {
      b = Buffer.from(data.buffer, data.byteOffset + off, len);
    }
    return this.queue(h, s, b, len);
  }

  protected queueAscii(h: number, text: string): boolean {
    this.counters.requests++;
    const s = this.sockets[h]!;
    if ((this.state[h]! & St.Errored) || s.destroyed || s.writableEnded) return false;
    return this.queue(h, s, Buffer.from(text, 'latin1'), text.length);
  }

  private queue(h: number, s: net.Socket, b: Buffer, len: number, ungated = false): boolean {
    const fq = this.files[h];
    if (fq !== undefined && fq.active && !ungated) { fq.hold(b); return this.pendingBytes(h) <= this.limits.highWaterMark; }
    this.counters.flushes++;
    this.pend[h]! += len;
    const g = this.gen[h]!;
    s.write(b, (err) => {
      if (err || this.gen[h] !== g || this.sockets[h] !== s) return;
      this.pend[h]! -= len;
      this.counters.bytesWritten += len;
      if ((this.state[h]! & St.AboveHwm) && this.pendingBytes(h) <= this.limits.lowWaterMark) {
        this.state[h]! &= ~(St.AboveHwm | St.PausedHwm);
        this.syncRead(h);
      }
      if (!(this.state[h]! & St.Closing)) this.emit('write', h, len);
    });
    if (this.pendingBytes(h) > this.limits.highWaterMark) { this.aboveHwm(h); return false; }
    return true;
  }

  // Queued bytes passed the high-water mark: a 'write' event with room follows; reading pauses (by default) until then.
  private aboveHwm(h: number): void {
    if (this.state[h]! & St.AboveHwm) return;
    this.state[h]! |= St.AboveHwm;
    if (this.pauseReadsAboveHwm) { this.state[h]! |= St.PausedHwm; this.syncRead(h); }
  }

  // sendFile: read through node:fs in 64 KiB pieces (file-queue.ts); writes behind it wait
  protected queueFile(h: number, fd: number, position: number, length: number): Promise<void> {
    const sock = this.sockets[h];
    if (sock === undefined || sock.destroyed || sock.writableEnded) return Promise.reject(new MegapipeError(MpCode.CLOSED, `sendFile: connection ${h} is closed or failed`));
    const fq = this.files[h] ??= new FileQueue(sock, this.limits.highWaterMark, (b) => this.queue(h, sock, b, b.byteLength, true), (e) => {
      this.state[h]! |= St.Errored;
      if (!(this.state[h]! & St.Closing)) this.emitCode('error', h, e.errno ?? -5, e.code);
      sock.destroy();
    });
    const p = fq.send(fd, position, length);
    if (this.pendingBytes(h) > this.limits.highWaterMark) this.aboveHwm(h);
    return p;
  }

  // readFile: node:fs reads (libuv's thread pool)
  protected readFileBytes(fd: number, position: number, length: number): Promise<Buffer> { return preadAll(fd, position, length); }

  // end(): node:net's socket.end() sends what is queued, then FIN; reading goes on
  protected endWrites(h: number): void {
    const s = this.sockets[h]!;
    this.afterFiles(h, () => { if (!(this.state[h]! & St.Errored) && !s.destroyed) s.end(); });
  }

  // Runs `fn` once the bytes of sendFiles in progress (and the writes behind them) are queued on the socket.
  private afterFiles(h: number, fn: () => void): void {
    const fq = this.files[h];
    if (fq === undefined) fn(); else fq.after(fn);
  }

  disconnect(h: number, abort = false): void {
    ChannelCore.abortArg(abort);
    if (abort && this.isOpen(h) && (this.state[h]! & St.Closing) && this.sockets[h]) { this.sockets[h]!.destroy(); return; }
    this.checkConn(h, 'disconnect');
    this.counters.requests++;
    this.state[h]! |= St.Closing;
    const s = this.sockets[h]!;
    if (abort || (this.state[h]! & St.Errored)) s.destroy();
    else { s.pause(); this.afterFiles(h, () => s.end(() => s.destroy())); }
  }

  unregister(h: number): void {
    this.check(h, 'unregister');
    this.counters.requests++;
    this.state[h]! |= St.Closing;
    const ls = this.listeners[h];
    if (ls) {
      this.listeners[h] = undefined;
      for (const s of ls.backlog) s.destroy();
      if (ls.own) ls.server.close();
      ls.server.removeAllListeners('connection');
      setImmediate(() => { try { this.emit('disconnect', h, 0); } finally { this.freeHandle(h); } });
      return;
    }
    this.sockets[h]!.destroy();
  }

  protected openConnection(host: string, port: number, cookie: unknown, localAddress: string | undefined, localPort: number): number {
    const h = this.allocHandle(Kind.Fd, cookie);
    if (h < 0) throw new MegapipeError(MpCode.LIMIT, `connect: maxHandles (${this.limits.maxHandles}) handles are open`);
    const s = net.connect({ host, port, localAddress, localPort: localPort || undefined, noDelay: true, allowHalfOpen: true });
    this.state[h]! |= St.Connecting;
    this.attach(h, s);
    s.once('connect', () => {
      this.state[h]! &= ~St.Connecting;
      if (!(this.state[h]! & St.Closing)) this.emit('connect', h, 0);
      this.syncRead(h);
    });
    return h;
  }

  acceptQueued(h: number): number[] {
    // a listener on a native member (listen()): its queue can be taken at once; a node:net server's cannot
    const ls = this.listeners[h];
    const out: number[] = [];
    if (ls === undefined || ls.fd < 0) return out;
    for (let i = 0; i < this.limits.maxHandles; i++) {
      const fd = acceptNow(ls.fd);
      if (fd < 0) break;
      const nh = this.allocHandle(Kind.Fd, undefined);
      if (nh < 0) { closeFd(fd); break; }   // taken from the queue with nowhere to go: closed, as the io_uring channel does
      this.attach(nh, new net.Socket({ fd, readable: true, writable: true, allowHalfOpen: true }));
      this.counters.accepted++;
      out.push(nh);
    }
    return out;
  }

  toFd(h: number): Promise<number> {
    try { this.checkConn(h, 'toFd'); } catch (e) { return Promise.reject(e); }
    return Promise.reject(new MegapipeError(MpCode.UNSUPPORTED, 'toFd: the portable backend has no lwsockets to convert (its sockets are node:net sockets already)'));
  }

  protected endAddress(h: number, peer: boolean): SocketAddress | undefined {
    const s = this.sockets[h];
    if (s === undefined) return undefined;
    const address = peer ? s.remoteAddress : s.localAddress;
    const port = peer ? s.remotePort : s.localPort;
    const family = peer ? s.remoteFamily : net.isIPv6(address ?? '') ? 'IPv6' : 'IPv4';
    return address === undefined || port === undefined ? undefined : { address, port, family: family === 'IPv6' ? 'IPv6' : 'IPv4' };
  }

  protected applySocketOption(h: number, option: SocketOption, value: number): void {
    const s = this.sockets[h];
    if (s === undefined) return;
    if (option === 'noDelay') { s.setNoDelay(value === 1); return; }
    const ka = this.keepAlives.get(s) ?? { on: false, delayMs: 0 };
    this.keepAlives.set(s, ka);
    if (option === 'keepAlive') ka.on = value === 1; else ka.delayMs = value * 1000;
    if (option === 'keepAlive' || ka.on) s.setKeepAlive(ka.on, ka.delayMs);
  }

  protected readSocketOption(_h: number, option: SocketOption): number {
    throw new MegapipeError(MpCode.UNSUPPORTED, `socketOption(${option}): node:net cannot read socket options back (portable backend)`);
  }

  protected resetConn(h: number): void {
    const s = this.sockets[h];
    if (s !== undefined && typeof s.resetAndDestroy === 'function' && !s.destroyed) s.resetAndDestroy();
    this.disconnect(h, true);
  }

  incomingCpu(h: number): number {
    this.checkConn(h, 'incomingCpu');
    const fd = (this.sockets[h] as unknown as { _handle?: { fd?: number } })?._handle?.fd;
    return fd === undefined || fd < 0 ? -1 : socketIncomingCpu(fd);
  }

  flush(): void { /* node:net writes go to libuv at once */ }

  stats(): ChannelStats {
    const c = this.counters;
    return {
      backend: 'portable', requests: c.requests, flushes: c.flushes, enters: 0, submitted: 0, completions: 0, batches: 0,
      wakeups: 0, emptyWakeups: 0, accepted: c.accepted, bytesRead: c.bytesRead, bytesWritten: c.bytesWritten, enobufs: 0,
      cqOverflows: 0, tableFullFallbacks: 0, filesSpliced: 0, filesSentfile: 0, fileResidencyProbes: 0, spliceNoPipe: 0, writesNoCopy: 0, handles: this.table.open,
      submitFailures: 0, requestsRefused: 0, recycleRefused: 0, inKernel: 0,
    };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.heldBufs.clear();
    for (let h = 0; h < this.kind.length; h++) {
      const ls = this.listeners[h];
      if (ls) { for (const s of ls.backlog) s.destroy(); if (ls.own) ls.server.close(); ls.server.removeAllListeners('connection'); this.listeners[h] = undefined; }
      const s = this.sockets[h];
      if (s) { this.sockets[h] = undefined; s.removeAllListeners('close'); s.destroy(); }
    }
    clearInterval(this.keepAlive);
    this.endDispatch();
  }
}
