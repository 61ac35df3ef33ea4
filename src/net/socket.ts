// megapipe/net's Socket: node:net's socket API as a stream.Duplex over one connection (an lwsocket) of a channel.
// Received bytes are copied once out of the channel's receive-buffer pool into the Buffer pushed (the pool's bytes
// are valid only during the event); written bytes are copied once into the channel's send arena (a Latin-1 or ASCII
// string straight from the string, as node:net writes strings without a Buffer in between), and every write of one
// event-loop turn goes out in the channel's batch. Back-pressure: the channel's high-water mark holds a write's
// callback (so write() returns false and 'drain' follows), a full Readable pauses the connection (TCP flow control).
import { Duplex } from 'node:stream';
import { lookup } from 'node:dns';
import { isIP } from 'node:net';
import type * as net from 'node:net';
import type { Channel, SocketAddress, SocketOption } from '../channel.js';
import { MegapipeError, MpCode } from '../errors.js';
import type { MpEvent } from '../event.js';
import { copyInto } from '../uring/copy.js';
import { connectArgs, functionArg, kMpEvent, loopUse, netError, stringAsBuffer, syscallOf, threadChannel, timerDuration, type Endpoint } from './link.js';
import { lingerClose } from './linger.js';
import { Rare, closedBeforeConnection, endedByPeer } from './rare.js';

export type { TcpConnectOptions } from './link.js';

export interface SocketOptions {
  /** Keep the writable side open after the peer's FIN (default false, as node:net). */
  allowHalfOpen?: boolean;
  /** The Readable's and Writable's high-water marks (node's defaults). */
  readableHighWaterMark?: number;
  writableHighWaterMark?: number;
  highWaterMark?: number;
  /** SO_KEEPALIVE once connected, TCP_KEEPIDLE from keepAliveInitialDelay (ms, whole seconds kept), as node:net's. */
  keepAlive?: boolean;
  keepAliveInitialDelay?: number;
}

// #flags: the socket's switches in one field (a Socket per connection: its size is the connection's memory)
const NO_DELAY = 1;          // TCP_NODELAY as set by setNoDelay (megapipe's sockets start with it on)
const KEEP_ALIVE = 2;        // SO_KEEPALIVE as set by setKeepAlive
const READ_PAUSED = 4;       // the connection is paused because the Readable is full (push returned false); _read resumes it
const TIMEOUT_SET = 8;       // setTimeout was called (the timeout property is defined)
const UNREFD = 16;           // unref() (ref() clears it): the socket is not to keep the event loop alive once connected (and its writes are sent)
const COUNTED_OUT = 32;      // the server's connection count has been decremented for this socket
const LET_GO = 64;           // the channel counts this socket's connection out of what keeps the event loop alive (see #syncLoopUse)
const RESET = 128;           // resetAndDestroy(): the connection is closing with a reset (its queued bytes dropped)

/** A zero-length write (node:http ends a response with one): the channel's answer without bytes. */
const EMPTY = Buffer.alloc(0);

function emitClose(s: Socket, hadError: boolean): void { s.emit('close', hadError); }

/** A TCP connection over a channel, with node:net.Socket's API. Events: connect, ready, data, end, drain, timeout, error, close(hadError). */
export class Socket extends Duplex implements Endpoint {
  /** True from connect() until the connection is established. */
  connecting = false;
  /** Bytes received. */
  bytesRead = 0;
  /** The server that accepted this socket (node:net sets both names). */
  server: net.Server | undefined = undefined;
  _server: net.Server | undefined = undefined;
  #ch: Channel | null = null;
  #h = -1;
  #flags = NO_DELAY;
  // bytes handed to the channel
  #written = 0;
  // what few connections use (an idle connection's memory is mostly its Socket): made at first need
  #x: Rare | null = null;

  /** `duplex` (internal): `options` are the Duplex's options already (an accepted connection's). */
  constructor(options: SocketOptions = {}, duplex = false) {
    // emitClose: false — 'close' carries hadError and comes after the channel has let go of the handle (as node:net)
    // (Duplex ends the writable side after the readable one unless allowHalfOpen, as node:net does); decodeStrings:
    // false — strings reach _write as they are (as node:net's), so that their bytes are written without a Buffer
    super(duplex ? options : { ...options, allowHalfOpen: Boolean(options.allowHalfOpen), emitClose: false, autoDestroy: true, decodeStrings: false });
    // Bytes are pushed as they arrive, not pulled: _read only resumes a connection paused by a full buffer, and
    // Readable calls it whenever its buffer drains below the high-water mark (read(), flow, resume). Its read-ahead
    // after each push — a process.nextTick and a read(0) per received chunk, for a source that has nothing more to
    // give until the kernel does — is turned off by marking it as always running.
    (this as unknown as { _readableState: { readingMore: boolean } })._readableState.readingMore = true;
    if (!duplex && options.keepAlive) this.setKeepAlive(true, options.keepAliveInitialDelay);
  }

  // the rare state, made now if it was not
  #rare(): Rare { return this.#x ??= new Rare(); }

  /** @internal Adopts accepted connection `handle` of `channel` and starts receiving. */
  static accepted(channel: Channel, handle: number, allowHalfOpen: boolean, pauseOnConnect: boolean, highWaterMark: number | undefined, server: net.Server): Socket {
    const s = new Socket({ allowHalfOpen, highWaterMark, emitClose: false, autoDestroy: true, decodeStrings: false } as SocketOptions, true);
    s.#ch = channel; s.#h = handle;
    s.server = s._server = server;
    channel.setCookie(handle, s);
    channel.read(handle);
    if (pauseOnConnect) { channel.pause(handle); s.#flags |= READ_PAUSED; s.pause(); }
    return s;
  }

  // ---- the channel's events ----------------------------------------------------------------------------------
  /** @internal */
  [kMpEvent](ev: MpEvent): void {
    switch (ev.type) {
      case 'read': {
        // a destroyed socket reads nothing more (as node:net's, whose handle is closed by then): no 'data', no 'end'
        if (this.destroyed) return;
        const n = ev.result;
        // read(0): 'end' even when nothing consumes the stream, once its buffer is empty (as node:net)
        if (n === 0) { this.push(null); this.read(0); return; }
        // the pool's bytes are valid only now: one copy into the Buffer the stream keeps
        const b = Buffer.allocUnsafe(n);
        copyInto(b, 0, ev.buffer!, ev.offset, n);
        this.bytesRead += n;
        this.#touch();
        if (!this.push(b) && !(this.#flags & READ_PAUSED) && this.#h >= 0) { this.#flags |= READ_PAUSED; this.#ch!.pause(this.#h); }
        return;
      }
      case 'write': {
        const x = this.#x;
        if (x !== null) {
          this.#touch();
          const ch = this.#ch!;
          if (x.heldWrite !== null && ch.pendingBytes(this.#h) <= ch.limits.lowWaterMark) {
            const cb = x.heldWrite; x.heldWrite = null; cb();
          }
          if (x.finalCb !== null && ch.pendingBytes(this.#h) === 0) { const cb = x.finalCb; x.finalCb = null; cb(); }
        }
        // an unref'd socket whose queue the kernel has now taken whole lets the loop go (after the callbacks' writes)
        if (this.#flags & UNREFD) this.#syncLoopUse();
        return;
      }
      case 'connect': this.#connected(); return;
      case 'error': {
        const code = ev.code ?? 'EIO';
        const syscall = syscallOf(code);
        const x = this.#rare(), to = x.connectTo;
        x.error ??= syscall === 'connect' && to !== null
          ? netError(code, 'connect', { errno: ev.result < 0 ? ev.result : undefined, address: to.address, port: to.port })
          : netError(code, syscall, { errno: ev.result < 0 ? ev.result : undefined });
        this.destroy(x.error);
        return;
      }
      case 'disconnect': this.#gone(); return;
      default:
    }
  }

  #connected(): void {
    this.connecting = false;
    const h = this.#h, ch = this.#ch!;
    // options set while connecting (megapipe's client sockets start with TCP_NODELAY on)
    if (!(this.#flags & NO_DELAY)) this.#sockOpt('noDelay', false);
    const secs = this.#x?.keepAliveSecs ?? 0;
    if (secs > 0 && (this.#flags & KEEP_ALIVE)) this.#sockOpt('keepAliveDelay', secs);
    if (this.#flags & KEEP_ALIVE) this.#sockOpt('keepAlive', true);
    ch.read(h);
    if (!(this.#flags & READ_PAUSED) && this.isPaused()) { this.#flags |= READ_PAUSED; ch.pause(h); }
    this.#touch();
    // an unref() made before: the connection no longer keeps the event loop alive (once its writes are sent)
    this.#syncLoopUse();
    // writes and an end made while connecting go now, from the 'connect' listeners they added (#hold)
    this.emit('connect');
    this.emit('ready');
  }

  // The handle is gone (its final event): nothing more is sent or received; a pending destroy completes.
  #gone(): void {
    const ch = this.#ch!;
    this.#h = -1;
    // (a later connect() makes a connection that keeps the loop alive, as node's new handle)
    this.#flags &= ~UNREFD;
    this.#syncLoopUse();
    const x = this.#x;
    if (x !== null) {
      const held = x.heldWrite ?? x.finalCb;
      x.heldWrite = x.finalCb = null;
      if (held !== null) held(x.error ?? netError('EPIPE', 'write'));
      if (x.destroyCb !== null) { const cb = x.destroyCb; x.destroyCb = null; this.#closed(cb, x.destroyErr); return; }
    }
    // closed under us (the channel closed it after an error, or is closing): node's socket is destroyed too
    if (!this.destroyed) this.destroy(x?.error ?? undefined);
  }

  #closed(cb: (err: Error | null) => void, err: Error | null): void {
    this.#clearTimer();
    const server = this._server as (net.Server & { _connections: number; _emitCloseIfDrained?(): void }) | undefined;
    if (server !== undefined && !(this.#flags & COUNTED_OUT)) {
      this.#flags |= COUNTED_OUT;
      server._connections--;
      server._emitCloseIfDrained?.();
    }
    cb(err);
    // after 'error' (which cb(err) emits on the next tick), as node:net
    process.nextTick(emitClose, this, err !== null);
  }

  // ---- stream.Duplex -------------------------------------------------------------------------------------------
  override _read(): void {
    if ((this.#flags & READ_PAUSED) && this.#h >= 0 && !this.connecting) { this.#flags &= ~READ_PAUSED; this.#ch!.resume(this.#h); }
  }

  override _write(chunk: Buffer | string, encoding: BufferEncoding | 'buffer', cb: (err?: Error | null) => void): void {
    if (this.connecting) {
      let n = chunk.length;
      if (typeof chunk === 'string') {
        if (encoding === 'buffer') throw stringAsBuffer();
        n = Buffer.byteLength(chunk, encoding);
      }
      this.#holdUntilConnected(n, () => this._write(chunk, encoding, cb), cb);
      return;
    }
    if (this.#h < 0) { cb(this.#x?.error ?? netError('EPIPE', 'write')); return; }
    let ok: boolean;
    try { ok = this.#send(chunk, encoding); } catch (e) {
      this.#sendFailed(e, cb);
      return;
    }
    this.#queued(ok, cb);
  }

  /** Writable's write(); after the peer's FIN on a socket that is not half-open, EPIPE "ended by the other party" and
   * destroy(), as node:net's (not the stream's ERR_STREAM_WRITE_AFTER_END). */
  override write(chunk: unknown, encoding?: BufferEncoding | ((err?: Error | null) => void), cb?: (err?: Error | null) => void): boolean {
    if (!this.allowHalfOpen && this.writableEnded && this.readableEnded) {
      const done = typeof encoding === 'function' ? encoding : cb;
      const err = endedByPeer();
      if (typeof done === 'function') process.nextTick(done, err);
      this.destroy(err);
      return false;
    }
    return super.write(chunk, encoding as BufferEncoding, cb);
  }

  // corked writes (node:http's head and body, then its empty end): each chunk queued in order, one answer
  override _writev(chunks: { chunk: Buffer | string; encoding: BufferEncoding | 'buffer' }[], cb: (err?: Error | null) => void): void {
    if (this.connecting) {
      let n = 0;
      for (const c of chunks) {
        if (typeof c.chunk !== 'string') n += c.chunk.length;
        else if (c.encoding === 'buffer') throw stringAsBuffer();
        else n += Buffer.byteLength(c.chunk, c.encoding);
      }
      this.#holdUntilConnected(n, () => this._writev(chunks, cb), cb);
      return;
    }
    if (this.#h < 0) { cb(this.#x?.error ?? netError('EPIPE', 'write')); return; }
    let ok = true, sent = false;
    try {
      for (let i = 0; i < chunks.length; i++) {
        const c = chunks[i]!;
        if (c.chunk.length === 0) continue;
        ok = this.#send(c.chunk, c.encoding);
        sent = true;
      }
      if (!sent) ok = this.#send(EMPTY, 'buffer');
    } catch (e) {
      this.#sendFailed(e, cb);
      return;
    }
    this.#queued(ok, cb);
  }

  // Bytes of a write are queued on the connection (`ok`: write()'s answer): its callback now, or once below the
  // low-water mark (heldWrite). An unref'd socket that let go of the loop takes it again: its queued bytes keep it
  // alive until the kernel has them (#syncLoopUse).
  #queued(ok: boolean, cb: (err?: Error | null) => void): void {
    this.#touch();
    if (this.#flags & LET_GO) this.#syncLoopUse();
    if (ok) cb(); else this.#rare().heldWrite = cb;
  }

  // A write of `n` bytes made while connecting: counted while it waits (as node:net counts its pending write), made
  // again by `retry` once connected, failed through `cb` if the socket is destroyed first
  #holdUntilConnected(n: number, retry: () => void, cb: (err?: Error | null) => void): void {
    this.#written += n;
    this.#hold(() => { this.#written -= n; retry(); }, cb);
  }

  // Runs `go` once connected, from a 'connect' listener added now — as node:net's pending write and end, so that they
  // and the application's 'connect' listeners run in the order they were added (had they been queued on the handle, a
  // refused connect would have reported them written) —, or `fail` if the socket is destroyed first (_destroy)
  #hold(go: () => void, fail: (err: Error) => void): void {
    const x = this.#rare();
    const onConnect = (): void => { x.beforeHandle = null; go(); };
    this.once('connect', onConnect);
    x.beforeHandle = (err) => { this.off('connect', onConnect); if (err !== undefined) fail(err); };
  }

  // #send threw `e`. The channel refuses a connection it is closing (after an error, or a disconnect) with a
  // MegapipeError: the write fails as node:net's to a closed connection, through `cb`. Anything else is not an I/O
  // failure — a chunk node:net refuses (a string with encoding 'buffer') — and is thrown from the call that handed the
  // chunk over, as node:net's handle throws it.
  #sendFailed(e: unknown, cb: (err?: Error | null) => void): void {
    if (!(e instanceof MegapipeError)) throw e;
    cb(this.#x?.error ?? netError('EPIPE', 'write'));
  }

  // Queues one chunk on the connection: write()'s answer. A string in Latin-1 (or ASCII: UTF-8 whose every character
  // is one byte) goes into the send arena as it is; another is encoded first (node:net's handle refuses a string with
  // encoding 'buffer': so does this, with its TypeError).
  #send(chunk: Buffer | string, encoding: BufferEncoding | 'buffer'): boolean {
    if (typeof chunk === 'string') {
      const n = chunk.length;
      if (encoding === 'latin1' || encoding === 'binary' || encoding === 'ascii'
        || ((encoding === 'utf8' || encoding === 'utf-8') && Buffer.byteLength(chunk, 'utf8') === n)) {
        this.#written += n;
        return this.#ch!.writeAscii(this.#h, chunk);
      }
      if (encoding === 'buffer') throw stringAsBuffer();
      chunk = Buffer.from(chunk, encoding);
    }
    this.#written += chunk.length;
    return this.#ch!.write(this.#h, chunk);
  }

  override _final(cb: (err?: Error | null) => void): void {
    if (this.connecting) { this.#hold(() => this._final(cb), () => {}); return; }
    if (this.#h < 0) { cb(); return; }
    try { this.#ch!.end(this.#h); } catch { /* closing already */ }
    // 'finish' once every byte reached the kernel (as node:net's shutdown)
    if (this.#ch!.pendingBytes(this.#h) === 0) cb(); else this.#rare().finalCb = cb;
  }

  override _destroy(err: Error | null, cb: (err: Error | null) => void): void {
    this.connecting = false;
    if (this.#x !== null) this.#x.attempt++;   // a connect() still resolving or starting does nothing now
    // a write waiting for the handle fails once closed, as node:net's (which makes the Writable's later callbacks fail)
    const pending = this.#x?.beforeHandle ?? null;
    if (this.#x !== null) this.#x.beforeHandle = null;
    if (pending !== null) this.once('close', () => pending(closedBeforeConnection()));
    const ch = this.#ch, h = this.#h;
    if (ch === null || h < 0 || !ch.isOpen(h)) { this.#closed(cb, err); return; }
    const x = this.#rare();
    if (ch.pendingBytes(h) > 0 && !(this.#flags & RESET) && (err === null || err !== x.error)) { this.#linger(ch, h, cb, err); return; }
    x.destroyCb = cb; x.destroyErr = err;
    // an error or a reset (one the kernel could not take now still drops the queue) closes at once; otherwise FIN
    try { ch.disconnect(h, err !== null || (this.#flags & RESET) !== 0); } catch { /* closing already: its disconnect event comes */ }
  }

  // Destroyed with bytes queued (not by a reset or a connection error): node's kernel still sends every byte a write
  // callback reported written; here callbacks come once bytes are queued, so the queue goes out before the close
  // (linger.ts) and the socket closes now, as node's. A held write's bytes are in that queue: its callback succeeds
  // like the others' (the Writable then fails the writes it still buffers with ERR_STREAM_DESTROYED, as node's); a
  // pending end() fails, as in #gone. (With bytes queued, an unref'd socket has not let the loop go — see
  // #syncLoopUse —: the lingering close keeps it alive.)
  #linger(ch: Channel, h: number, cb: (err: Error | null) => void, err: Error | null): void {
    const x = this.#x!;
    const held = x.heldWrite, final = x.finalCb;
    x.heldWrite = x.finalCb = null;
    const letGo = (this.#flags & LET_GO) !== 0; this.#flags &= ~LET_GO;   // the channel was told to let it go
    this.#h = -1;
    lingerClose(ch, h, letGo);
    if (held !== null) held(null);
    else if (final !== null) final(err ?? netError('EPIPE', 'write'));
    this.#closed(cb, err);
  }

  // ---- node:net.Socket's API ---------------------------------------------------------------------------------
  /** The peer's address, port and family (read from the kernel at first use, then kept). */
  get remoteAddress(): string | undefined { return this.#end(true)?.address; }
  get remotePort(): number | undefined { return this.#end(true)?.port; }
  get remoteFamily(): string | undefined { return this.#end(true)?.family; }
  get localAddress(): string | undefined { return this.#end(false)?.address; }
  get localPort(): number | undefined { return this.#end(false)?.port; }
  get localFamily(): string | undefined { return this.#end(false)?.family; }
  /** This end's `{ address, family, port }`, as node:net's (an empty object once closed). */
  address(): net.AddressInfo | Record<string, never> {
    const a = this.#end(false);
    return a === undefined ? {} : { address: a.address, family: a.family, port: a.port };
  }

  #end(peer: boolean): SocketAddress | undefined {
    const known = peer ? this.#x?.remote : this.#x?.local;
    if (known !== undefined || this.#h < 0 || this.connecting) return known;
    let a: SocketAddress | undefined;
    try { a = this.#ch!.socketAddress(this.#h, peer ? 'remote' : 'local'); } catch { a = undefined; }
    if (a !== undefined) { if (peer) this.#rare().remote = a; else this.#rare().local = a; }
    return a;
  }

  /** Bytes written: handed to the channel, and waiting in the Writable's buffer (as node:net counts them). */
  get bytesWritten(): number {
    let n = this.#written;
    // (node's Writable has writableBuffer, its buffered writes; node's types do not)
    for (const { chunk, encoding } of (this as unknown as { writableBuffer: { chunk: Buffer | string; encoding: BufferEncoding }[] }).writableBuffer) {
      n += typeof chunk === 'string' ? Buffer.byteLength(chunk, encoding) : chunk.length;
    }
    return n;
  }
  /** Bytes queued by write() and not yet handed to the channel (node:net's bufferSize). */
  get bufferSize(): number { return this.writableLength; }
  get pending(): boolean { return this.#h < 0 || this.connecting; }
  get readyState(): 'opening' | 'open' | 'readOnly' | 'writeOnly' | 'closed' {
    if (this.connecting) return 'opening';
    if (this.readable && this.writable) return 'open';
    if (this.readable && !this.writable) return 'readOnly';
    if (!this.readable && this.writable) return 'writeOnly';
    return 'closed';
  }
  /** The idle timeout set by setTimeout, as given (0: turned off; undefined: never set), as node:net's. */
  get timeout(): number | undefined {
    if (!(this.#flags & TIMEOUT_SET)) return undefined;
    return this.#x === null ? 0 : this.#x.timeout as number;
  }
  /** Whether this socket's connection is an lwsocket (an io_uring direct descriptor, not in the process fd table). */
  get lwsocket(): boolean { return this.#h >= 0 && this.#ch!.isLwsocket(this.#h); }

  /**
   * TCP_NODELAY, as node:net's (default true: megapipe's sockets start with it on). Before the connection is open, it
   * is set once it is. Where the kernel cannot set it on an lwsocket (before Linux 6.7) it is ignored, as node
   * ignores an option its handle cannot take.
   */
  setNoDelay(noDelay = true): this {
    const on = Boolean(noDelay);
    if (on === ((this.#flags & NO_DELAY) !== 0)) return this;
    this.#flags ^= NO_DELAY;
    this.#sockOpt('noDelay', on);
    return this;
  }

  /**
   * SO_KEEPALIVE and, enabled with `initialDelay` ≥ 1000 ms, TCP_KEEPIDLE (whole seconds, as node's), as node:net's.
   * Before the connection is open, set once it is.
   */
  setKeepAlive(enable = false, initialDelay = 0): this {
    const on = Boolean(enable);
    const secs = Math.min(32767, Math.floor((Number(initialDelay) || 0) / 1000));
    if (on && secs >= 1 && secs !== (this.#x?.keepAliveSecs ?? 0)) { this.#rare().keepAliveSecs = secs; this.#sockOpt('keepAliveDelay', secs); }
    if (on !== ((this.#flags & KEEP_ALIVE) !== 0)) { this.#flags ^= KEEP_ALIVE; this.#sockOpt('keepAlive', on); }
    return this;
  }

  // Sets an option on the open connection (a socket still connecting gets it in #connected). As node's, a failure to
  // set it is not thrown (EAGAIN: the kernel refused submissions for now)
  #sockOpt(option: SocketOption, value: boolean | number): void {
    if (this.#h < 0 || this.connecting || this.destroyed) return;
    try { this.#ch!.setSocketOption(this.#h, option, value); } catch (e) {
      const code = (e as { code?: string }).code;
      if (code !== MpCode.UNSUPPORTED && code !== MpCode.BAD_HANDLE && code !== 'EAGAIN') throw e;
    }
  }

  /**
   * Emits 'timeout' after `msecs` without activity (reads or writes); 0 turns it off. `callback` listens once (with 0,
   * stops listening). As node:net's: a destroyed socket ignores the call; a fraction of a millisecond is kept (the
   * timer waits at least 1 ms); above 2^31 - 1 ms, a TimeoutOverflowWarning and 2^31 - 1; a duration that is not a
   * number throws a TypeError, a negative or non-finite one a RangeError, a callback that is not a function a
   * TypeError — after the timeout property took the value (and the timer was set, for the callback).
   */
  setTimeout(msecs: number, callback?: () => void): this {
    if (this.destroyed) return this;
    this.#flags |= TIMEOUT_SET;
    // off with no timeout ever on (ws turns it off on every connection it takes): nothing to keep
    if (msecs === 0 && this.#x === null) {
      if (callback !== undefined) this.removeListener('timeout', functionArg('callback', callback));
      return this;
    }
    const x = this.#rare();
    x.timeout = msecs;
    const ms = timerDuration(msecs);
    x.timeoutMs = ms;
    // Off: a pending timer stays and does nothing when it fires. On: a pending timer due by the new deadline stays
    // (it re-arms itself for the rest of the idle time); one due later is replaced. (node:http turns the timeout off
    // at each request and on again after its response: no timer is made or cleared per request.)
    if (ms > 0) {
      const now = performance.now();
      x.lastActive = now;
      if (x.timer !== null && x.timerDue > now + ms) this.#clearTimer();
      if (x.timer === null) this.#arm(ms, now);
    }
    if (callback !== undefined) {
      if (ms === 0) this.removeListener('timeout', functionArg('callback', callback));
      else this.once('timeout', functionArg('callback', callback));
    }
    return this;
  }

  #touch(): void {
    const x = this.#x;
    if (x === null || x.timeoutMs === 0) return;
    x.lastActive = performance.now();
    if (x.timer === null) this.#arm(x.timeoutMs, x.lastActive);
  }

  // One timer per socket, re-armed for the rest of the idle time when activity moved it (not on every byte).
  #arm(ms: number, now: number): void {
    const x = this.#x!;
    x.timerDue = now + ms;
    x.timer = setTimeout(() => {
      x.timer = null;
      if (x.timeoutMs === 0 || this.destroyed) return;
      const idle = performance.now() - x.lastActive;
      if (idle + 1 >= x.timeoutMs) this.emit('timeout');
      else this.#arm(x.timeoutMs - idle, x.lastActive + idle);
    }, ms);
    x.timer.unref();
  }

  #clearTimer(): void {
    const x = this.#x;
    if (x !== null && x.timer !== null) { clearTimeout(x.timer); x.timer = null; }
  }

  /** Ends the writable side once queued bytes are written, then destroys the socket. */
  destroySoon(): void {
    if (this.writable) this.end();
    if (this.writableFinished) this.destroy();
    else this.once('finish', () => this.destroy());
  }

  /**
   * Closes now with a TCP reset (RST), as node:net's: queued bytes are discarded, the peer's reads fail with
   * ECONNRESET. (An lwsocket before Linux 6.7 cannot take SO_LINGER: there the close only discards queued bytes.)
   */
  resetAndDestroy(): this {
    if (this.#h >= 0 && this.#ch!.isOpen(this.#h)) {
      this.#flags |= RESET;
      try { this.#ch!.reset(this.#h); } catch { /* closing already */ }
    }
    return this.destroy();
  }

  /**
   * Lets the event loop exit while this socket is open (ref() undoes it). Called before the connection is established
   * (a new Socket, a host name being resolved, a connect in flight), it takes effect once it is: as node's, whose
   * connect request keeps the loop alive until then.
   */
  unref(): this {
    this.#flags |= UNREFD;
    this.#syncLoopUse();
    return this;
  }

  ref(): this {
    this.#flags &= ~UNREFD;
    this.#syncLoopUse();
    return this;
  }

  // Tells the channel whether this socket's connection keeps the event loop alive: not once it is established,
  // unref'd and without bytes the kernel has yet to take (LET_GO marks that the channel was told so; the handle's own
  // count goes when it is freed). Contract, as node:net's write request: an unref'd socket keeps the loop alive while
  // pendingBytes > 0 (queued, or in a send in flight); _write/_writev re-ref it, the channel's 'write' events let go.
  #syncLoopUse(): void {
    const letGo = (this.#flags & UNREFD) !== 0 && this.#h >= 0 && !this.connecting && this.#ch!.pendingBytes(this.#h) === 0;
    if (letGo === ((this.#flags & LET_GO) !== 0)) return;
    this.#flags ^= LET_GO;
    loopUse(this.#ch!, letGo ? -1 : 1);
  }

  /**
   * Opens a connection through this thread's channel: `connect(port[, host][, cb])` or `connect(options[, cb])`.
   * 'connect' (and cb) follow, or 'error' (ECONNREFUSED…). A host name is resolved with dns.lookup first.
   */
  connect(...args: unknown[]): this {
    const { options, cb } = connectArgs([...args]);
    if (this.destroyed && (this.#h >= 0 || this.#x?.destroyCb != null)) {
      // destroyed, its connection still closing (node's handle closes at once): the new one once it has, after 'close'
      this.once('close', () => { this.connect(...args); });
      return this;
    }
    if (this.#h >= 0 || this.connecting) throw Object.assign(new Error('Socket is already connected or connecting'), { code: 'ERR_SOCKET_CONNECTION_IN_PROGRESS' });
    if (this.destroyed) this.#renew();
    if (cb !== undefined) this.once('connect', cb);
    this.connecting = true;
    const host = options.host ?? 'localhost';
    // this attempt, until destroy() or another connect(): a lookup or a deferred start of an older one does nothing
    const x = this.#rare(), attempt = ++x.attempt;
    const go = (address: string): void => {
      if (this.destroyed || attempt !== x.attempt) return;
      x.connectTo = { address, port: options.port };
      const ch = threadChannel();
      this.#ch = ch;
      try { this.#h = ch.connect(address, options.port, this, { localAddress: options.localAddress, localPort: options.localPort }); } catch (e) { this.destroy(e as Error); return; }
    };
    // as node's, on the next tick even for an address literal: a destroy() (or an aborted signal) before then wins
    if (isIP(host) !== 0) process.nextTick(go, host);
    else {
      // as node's: options.lookup (dns.lookup's signature) or dns.lookup, with options.family and options.hints; the
      // 'lookup' event (err, address, family, host) comes before connecting
      const resolve = typeof options.lookup === 'function' ? options.lookup : lookup;
      resolve(host, { family: options.family ?? 0, hints: options.hints ?? 0 }, (err, address, family) => {
        if (attempt !== x.attempt) return;   // destroyed (or connecting again) meanwhile
        this.emit('lookup', err, address, family, host);
        if (!this.connecting) return;
        if (err) { this.destroy(err); return; }
        go(address);
      });
    }
    return this;
  }

  // connect() on a socket that was destroyed and has closed: a new connection on the same object, as node's
  // (_undestroy: the streams start again; the counters and what was known of the old connection are dropped)
  #renew(): void {
    (this as unknown as { _undestroy(): void })._undestroy();
    this.#ch = null; this.#h = -1; this.#written = 0; this.bytesRead = 0;
    this.#flags = (this.#flags & (NO_DELAY | KEEP_ALIVE | TIMEOUT_SET));
    const x = this.#x;
    if (x !== null) {
      x.heldWrite = x.finalCb = x.beforeHandle = null; x.error = x.destroyErr = null;
      x.remote = x.local = undefined; x.connectTo = null;
    }
  }
}
