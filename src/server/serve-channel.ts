// `Session` servers over a channel: maps a listener's events to one Conn + Session per connection.
import type { Channel, SocketAddress } from '../channel.js';
import type { MpEvent } from '../event.js';
import type { Listener } from '../listener.js';
import type { Conn, Session, SessionFactory } from './session.js';
import { MegapipeError, MpCode, argError, rangeError } from '../errors.js';
import { checkOptions, optionKeys } from '../options.js';
import { startBalancer, type BalanceOptions, type Balancer } from './balance.js';
import { EndWatch, type Draining } from './end-watch.js';

export interface ServeChannelOptions {
  /** Worker index reported by Conn.worker (default 0). */
  worker?: number;
  /** Accept connections as lwsockets (default true; the portable backend ignores it). */
  lwsocket?: boolean;
  /** For a partitioned listener: this channel's CPUs (selects the member). */
  cpuMask?: readonly number[];
  /** Member index, instead of cpuMask. */
  member?: number;
  /** Connections served at once by this channel; more are closed on accept (default: the channel's maxHandles). */
  maxConnections?: number;
  /**
   * After `conn.end()` with bytes still queued, a connection whose peer takes none of them for this long is destroyed
   * (its session's close gets an `ETIMEDOUT` error), like nginx's send_timeout: a peer that stops reading cannot hold
   * a connection open forever, a slow one that keeps reading is not cut off (default 30,000 ms; 0: wait forever).
   */
  endTimeoutMs?: number;
  /** Load balancing: listening sockets of other partitions (or a shared queue) this channel takes connections from when they back up. */
  stealFrom?: readonly number[];
  balance?: BalanceOptions;
}

export interface ChannelServer {
  readonly channel: Channel;
  /** Connections open now. */
  readonly connections: number;
  /** Connections accepted since start (including those taken from other partitions). */
  readonly accepted: number;
  /** Connections taken from other partitions by the load balancer. */
  readonly stolen?: number;
  /**
   * Graceful stop: stop accepting; connections with nothing queued are ended at once, the others when their queued
   * bytes are sent; after `deadlineMs` (default 5 s) the rest are destroyed. Resolves when all are closed.
   */
  close(deadlineMs?: number): Promise<void>;
}

const SERVE_CHANNEL_OPTIONS = optionKeys<ServeChannelOptions>({ worker: true, lwsocket: true, cpuMask: true, member: true, maxConnections: true, endTimeoutMs: true, stealFrom: true, balance: true });

class ChannelConn implements Conn, Draining {
  session!: Session;
  blocked = false;
  ending = false;
  /** halfClose() ran: the write side ends after what is queued (writes are refused), reading goes on */
  writeEnded = false;
  /** the peer's EOF arrived: once the write side has ended too, the connection closes (as node:net's does) */
  peerEnded = false;
  error: (Error & { code?: string }) | undefined = undefined;
  // the end() drain watch (EndWatch): when the peer last took bytes, and the channel's watch of its progress
  watchAt = 0;
  private watch: (() => boolean) | undefined = undefined;
  /** The handle no longer names this connection (its disconnect event came): its addresses are not read any more. */
  gone = false;
  // the two ends' addresses, read at first use (undefined: not yet; null: the kernel could not say)
  private remote: SocketAddress | null | undefined = undefined;
  private local: SocketAddress | null | undefined = undefined;
  constructor(readonly ch: Channel, readonly id: number, readonly worker: number, private readonly endWatch: EndWatch) {}
  get pendingBytes(): number { return this.ch.pendingBytes(this.id); }
  private end_(peer: boolean): SocketAddress | null {
    let a = peer ? this.remote : this.local;
    if (a === undefined) {
      try { a = this.gone ? null : this.ch.socketAddress(this.id, peer ? 'remote' : 'local') ?? null; } catch (e) {
        if ((e as { code?: unknown }).code === 'EAGAIN') return null;   // the completion queue full: not kept, asked again
        a = null;
      }
      if (peer) this.remote = a; else this.local = a;
    }
    return a;
  }
  get remoteAddress(): string | undefined { return this.end_(true)?.address; }
  get remotePort(): number | undefined { return this.end_(true)?.port; }
  get remoteFamily(): 'IPv4' | 'IPv6' | undefined { return this.end_(true)?.family; }
  get localAddress(): string | undefined { return this.end_(false)?.address; }
  get localPort(): number | undefined { return this.end_(false)?.port; }
  write(data: Uint8Array | string, offset?: number, length?: number): boolean {
    if (typeof data === 'string') { data = Buffer.from(data, 'utf8'); offset = length = undefined; }
    return !this.ending && !this.writeEnded && this.admitted(this.ch.write(this.id, data, offset, length));
  }
  writeNoCopy(data: Uint8Array, offset?: number, length?: number): boolean {
    return !this.ending && !this.writeEnded && this.admitted(this.ch.writeNoCopy(this.id, data, offset, length));
  }
  writeAscii(text: string): boolean {
    return !this.ending && !this.writeEnded && this.admitted(this.ch.writeAscii(this.id, text));
  }
  // A write's result: false (above the high-water mark) makes the connection wait for the channel's 'write' event.
  private admitted(ok: boolean): boolean {
    if (!ok) this.blocked = true;
    return ok;
  }
  sendFile(fd: number, position: number, length: number): Promise<void> {
    if (this.ending || this.writeEnded) return Promise.reject(new MegapipeError(MpCode.CLOSED, `sendFile: connection ${this.id} is closing`));
    const p = this.ch.sendFile(this.id, fd, position, length);
    if (this.ch.pendingBytes(this.id) > this.ch.limits.highWaterMark) this.blocked = true;
    return p;
  }
  readFile(fd: number, position: number, length: number): Promise<Buffer> { return this.ch.readFile(fd, position, length); }
  // Tells, at each call, whether the peer took bytes since the previous one (the channel's watch of its progress).
  moved(): boolean { return this.watch !== undefined && this.watch(); }
  stalled(): void {
    this.error ??= new MegapipeError('ETIMEDOUT', `connection ${this.id}: the peer took none of the last ${this.ch.pendingBytes(this.id)} bytes in ${this.endWatch.timeoutMs} ms`);
    try { this.ch.disconnect(this.id, true); } catch { /* gone meanwhile */ }
  }
  pause(): void { if (!this.ending) this.ch.pause(this.id); }
  resume(): void { if (!this.ending) this.ch.resume(this.id); }
  halfClose(): void {
    if (this.ending || this.writeEnded) return;
    this.writeEnded = true;
    // ended both ways: close once the queued bytes are sent (their FIN is the close's)
    if (this.peerEnded) { this.end(); return; }
    try { this.ch.end(this.id); } catch { /* closing already: its disconnect event follows */ }
  }
  end(): void {
    if (this.ending) return;
    this.ending = true;
    this.ch.disconnect(this.id);
    if (this.endWatch.timeoutMs === 0 || !this.ch.isOpen(this.id)) return;
    if (this.ch.pendingBytes(this.id) > 0) {
      // until the disconnect event (the handle number is reused after it)
      this.watch = this.ch.watchProgress(this.id);
      this.endWatch.add(this);
    }
  }
  destroy(): void {
    const wasEnding = this.ending;
    this.ending = true;
    // also aborts an end() that is still sending its queued bytes
    if (!wasEnding || this.ch.isOpen(this.id)) { try { this.ch.disconnect(this.id, true); } catch { /* already closing */ } }
  }
}

/** Serves `factory`'s sessions on `listener` through `channel` (which it takes over: it sets the event handler). */
export function serveChannel(channel: Channel, listener: Listener, factory: SessionFactory, options: ServeChannelOptions = {}): ChannelServer {
  checkOptions(options, SERVE_CHANNEL_OPTIONS);
  if (typeof factory !== 'function') throw argError('factory', 'a function (conn) => Session', factory);
  const worker = options.worker ?? 0;
  const conns: (ChannelConn | undefined)[] = [];
  const maxConnections = options.maxConnections ?? channel.limits.maxHandles;
  const endTimeoutMs = options.endTimeoutMs ?? 30_000;
  if (!Number.isInteger(endTimeoutMs) || endTimeoutMs < 0) throw rangeError('endTimeoutMs', 'a non-negative integer (ms)', endTimeoutMs);
  let open = 0, accepted = 0, closing = false;
  let onIdle: (() => void) | null = null;
  const endWatch = new EndWatch(endTimeoutMs);
  const lh = channel.register(listener, null, { cpuMask: options.cpuMask, member: options.member });

  const onConnection = (h: number): void => {
    if (closing || open >= maxConnections) { channel.disconnect(h, true); return; }
    const c = new ChannelConn(channel, h, worker, endWatch);
    conns[h] = c;
    open++; accepted++;
    c.session = factory(c);
    if (channel.isOpen(h) && !c.ending) channel.read(h);
  };

  const handler = (ev: MpEvent): void => {
    const h = ev.handle;
    switch (ev.type) {
      case 'read': {
        const c = conns[h];
        if (c === undefined) return;
        if (ev.result > 0) { c.session.data(ev.buffer, ev.offset, ev.result); return; }
        c.peerEnded = true;
        if (c.session.end) c.session.end(); else c.end();
        if (c.writeEnded && !c.ending) c.end();   // half-closed before the peer's EOF: ended both ways now
        return;
      }
      case 'write': {
        const c = conns[h];
        // not once end() ran: the connection closes when its bytes are sent, nothing waits for it (after halfClose() it
        // still comes: input goes on, and a session that paused it for its output resumes it here)
        if (c !== undefined && c.blocked && !c.ending && channel.pendingBytes(h) <= channel.limits.lowWaterMark) {
          c.blocked = false;
          c.session.drain?.();
        }
        return;
      }
      case 'accept': onConnection(h); return;
      case 'listener-error': return;   // accepting (table full, EMFILE, maxHandles): the channel's fallbacks handle it
      case 'error': {
        const c = conns[h];
        if (c === undefined) return;
        c.error ??= new MegapipeError(ev.code, `connection ${h}: ${ev.code}`, ev.result);
        if (!c.ending) { c.ending = true; channel.disconnect(h, true); }
        return;
      }
      case 'disconnect': {
        const c = conns[h];
        if (c === undefined) return;
        conns[h] = undefined;
        open--;
        c.ending = true;
        c.gone = true;
        endWatch.remove(c);
        c.session.close?.(c.error);
        if (open === 0 && onIdle) onIdle();
        return;
      }
      default:
    }
  };
  channel.onEvent(handler);
  channel.accept(lh, { lwsocket: options.lwsocket ?? true });
  const balancer: Balancer | null = options.stealFrom && options.stealFrom.length > 0 ? startBalancer(channel, options.stealFrom, onConnection, options.balance) : null;

  return {
    channel,
    get connections() { return open; },
    get accepted() { return accepted; },
    get stolen() { return balancer?.stolen ?? 0; },
    close(deadlineMs = 5000): Promise<void> {
      if (!closing) {
        balancer?.stop();
        if (channel.isOpen(lh)) channel.unregister(lh);
        // drain: connections already queued on this member are served, not dropped when the listener closes
        for (const h of channel.acceptQueued(lh)) onConnection(h);
        closing = true;
        for (const c of conns) {
          if (c === undefined || c.ending) continue;
          if (c.session.shutdown) c.session.shutdown(); else c.end();
        }
      }
      if (open === 0) { endWatch.stop(); return Promise.resolve(); }
      return new Promise((resolve) => {
        const timer = setTimeout(() => {
          // through the Conn, so that it is ending: a session's call before the disconnect event does nothing (the
          // channel throws MP_ERR_CLOSED for a handle that is closing)
          for (let h = 0; h < conns.length; h++) conns[h]?.destroy();
        }, deadlineMs);
        onIdle = () => { clearTimeout(timer); endWatch.stop(); resolve(); };
      });
    },
  };
}
