// `Session` servers over node:net: the portable path for applications, and the baseline the benchmarks
// compare against. Same contract as `serveChannel` (see session.ts).
import * as net from 'node:net';
import type { Conn, Session, SessionFactory } from './session.js';
import { MegapipeError, MpCode, argError, fromNode, rangeError } from '../errors.js';
import { checkOptions, optionKeys } from '../options.js';

const SERVE_NET_OPTIONS = optionKeys<ServeNetOptions>({ host: true, port: true, highWaterMark: true, maxConnections: true, endTimeoutMs: true });
import { FileQueue, preadAll, progressWatch } from '../portable/file-queue.js';
import { EndWatch, type Draining } from './end-watch.js';

export interface ServeNetOptions {
  host?: string;
  port?: number;
  /** Queued bytes above which `write` returns false (default 64 KiB); the session's `drain` follows once they fall to a quarter of it. */
  highWaterMark?: number;
  /** Maximum simultaneous connections; more are closed on accept (default 10,000). */
  maxConnections?: number;
  /** As ServeChannelOptions.endTimeoutMs: an ended connection whose peer takes nothing for this long is destroyed (default 30,000 ms). */
  endTimeoutMs?: number;
}

export interface NetServerHandle {
  readonly host: string;
  readonly port: number;
  readonly connections: number;
  /** Stop accepting; wait for open connections to close, destroying them after `deadlineMs` (default 5 s). */
  close(deadlineMs?: number): Promise<void>;
}

class NetConn implements Conn, Draining {
  session!: Session;
  closed = false;
  /** halfClose() ran: the write side ends after what is queued (writes are refused), reading goes on */
  private writeEnded = false;
  /** end() ran: the connection closes once what is queued is sent */
  private ending = false;
  private files: FileQueue | undefined;
  // the end() drain watch (EndWatch)
  watchAt = 0;
  private watch: (() => boolean) | undefined = undefined;
  /** a write returned false: the session's `drain` is owed once pendingBytes falls to lowWater */
  private aboveHwm = false;
  private readonly lowWater: number;
  /** write callback (each write, file pieces included): queued bytes fell, maybe to the low-water mark */
  private readonly written = (): void => this.checkDrain();
  constructor(readonly id: number, readonly socket: net.Socket, readonly worker: number, private readonly hwm: number, private readonly endWatch: EndWatch) {
    this.lowWater = Math.floor(hwm / 4);
  }
  private get writable(): boolean { return !this.closed && !this.ending && !this.writeEnded && !this.socket.writableEnded; }
  get pendingBytes(): number { return this.socket.writableLength + (this.files?.bytes ?? 0); }
  get remoteAddress(): string | undefined { return this.socket.remoteAddress; }
  get remotePort(): number | undefined { return this.socket.remotePort; }
  get remoteFamily(): 'IPv4' | 'IPv6' | undefined { const f = this.socket.remoteFamily; return f === undefined ? undefined : f === 'IPv6' ? 'IPv6' : 'IPv4'; }
  get localAddress(): string | undefined { return this.socket.localAddress; }
  get localPort(): number | undefined { return this.socket.localPort; }
  write(data: Uint8Array | string, offset = 0, length?: number): boolean {
    if (!this.writable) return false;
    if (typeof data === 'string') return this.put(Buffer.from(data, 'utf8'));
    length ??= data.byteLength - offset;
    // copy: the caller may reuse its buffer (it is often a view of a pooled receive buffer)
    const copy = Buffer.allocUnsafe(length);
    copy.set(data.subarray(offset, offset + length));
    return this.put(copy);
  }
  writeNoCopy(data: Uint8Array, offset = 0, length = data.byteLength - offset): boolean {
    if (!this.writable) return false;
    return this.put(Buffer.from(data.buffer, data.byteOffset + offset, length));
  }
  writeAscii(text: string): boolean {
    if (!this.writable) return false;
    return this.put(Buffer.from(text, 'latin1'));
  }
  // Every write carries `written`: pendingBytes counts file bytes not yet read (FileQueue), which node:net's 'drain'
  // knows nothing of — its file pieces often complete at once, no 'drain' ever following — so the session's drain is
  // decided here, on each completed write and on 'drain', from pendingBytes (as the channels' `write` event is).
  private put(b: Buffer): boolean {
    let ok: boolean;
    if (this.files?.active) { this.files.hold(b); ok = this.pendingBytes <= this.hwm; }
    else ok = this.socket.write(b, this.written);
    if (!ok) this.aboveHwm = true;
    return ok;
  }
  /** The session's `drain`, when a write returned false and the queued bytes (file bytes included) are down to lowWater —
   * never once end() ran (the connection closes when they are sent); after halfClose() too (input goes on). */
  checkDrain(): void {
    if (!this.aboveHwm || this.closed || this.ending || this.pendingBytes > this.lowWater) return;
    this.aboveHwm = false;
    this.session.drain?.();
  }
  sendFile(fd: number, position: number, length: number): Promise<void> {
    if (!this.writable) return Promise.reject(new MegapipeError(MpCode.CLOSED, `sendFile: connection ${this.id} is closed`));
    if (length === 0) return Promise.resolve();
    this.files ??= new FileQueue(this.socket, this.hwm, (b) => this.socket.write(b, this.written), (e) => this.socket.destroy(e));
    return this.files.send(fd, position, length);
  }
  readFile(fd: number, position: number, length: number): Promise<Buffer> { return preadAll(fd, position, length); }
  pause(): void { this.socket.pause(); }
  resume(): void { this.socket.resume(); }
  halfClose(): void {
    if (!this.writable) return;
    this.writeEnded = true;
    const s = this.socket;
    if (this.files) this.files.after(() => s.end()); else s.end();
  }
  // Conn.end: what is queued goes out, then the connection closes (as serveChannel's disconnect): the socket is
  // destroyed once its write side has finished — not left half-open until the peer's FIN (the server allows half-open
  // connections so that a peer's EOF reaches the session, not to keep ended ones).
  end(): void {
    if (this.closed || this.ending) return;
    this.ending = true;
    const s = this.socket;
    // after halfClose() the write side is ending or ended already: close once it has finished
    const close = () => {
      if (s.writableFinished) s.destroy();
      else if (s.writableEnded) s.once('finish', () => s.destroy());
      else s.end(() => s.destroy());
    };
    if (this.files) this.files.after(close); else close();
    if (this.endWatch.timeoutMs > 0 && this.pendingBytes > 0) {
      this.watch = progressWatch(s, () => this.files?.bytes ?? 0);
      this.endWatch.add(this);
    }
  }
  moved(): boolean { return this.watch !== undefined && this.watch(); }
  stalled(): void {
    this.socket.destroy(new MegapipeError('ETIMEDOUT', `connection ${this.id}: the peer took none of the last ${this.pendingBytes} bytes in ${this.endWatch.timeoutMs} ms`));
  }
  destroy(): void { if (!this.closed) this.socket.destroy(); }
}

/** Serve `factory`'s sessions on node:net. Resolves once listening. */
export function serveNet(factory: SessionFactory, options: ServeNetOptions = {}): Promise<NetServerHandle> {
  try {
    checkOptions(options, SERVE_NET_OPTIONS);
    if (typeof factory !== 'function') throw argError('factory', 'a function (conn) => Session', factory);
    if (options.port !== undefined && (!Number.isInteger(options.port) || options.port < 0 || options.port > 65535)) throw rangeError('port', 'an integer in 0..65535', options.port);
    if (options.highWaterMark !== undefined && (!Number.isInteger(options.highWaterMark) || options.highWaterMark < 1)) throw rangeError('highWaterMark', 'a positive integer (bytes)', options.highWaterMark);
    if (options.maxConnections !== undefined && (!Number.isInteger(options.maxConnections) || options.maxConnections < 1)) throw rangeError('maxConnections', 'a positive integer', options.maxConnections);
  } catch (e) { return Promise.reject(e); }
  const host = options.host ?? '127.0.0.1';
  const hwm = options.highWaterMark ?? 64 * 1024;
  const maxConnections = options.maxConnections ?? 10_000;
  const endTimeoutMs = options.endTimeoutMs ?? 30_000;
  if (!Number.isInteger(endTimeoutMs) || endTimeoutMs < 0) return Promise.reject(rangeError('endTimeoutMs', 'a non-negative integer (ms)', endTimeoutMs));
  const conns = new Set<NetConn>();
  const endWatch = new EndWatch(endTimeoutMs);
  let nextId = 1;
  const server = net.createServer({ noDelay: true, allowHalfOpen: true, highWaterMark: hwm } as net.ServerOpts, (socket) => {
    if (conns.size >= maxConnections) { socket.destroy(); return; }
    const conn = new NetConn(nextId++, socket, 0, hwm, endWatch);
    conns.add(conn);
    conn.session = factory(conn);
    let error: (Error & { code?: string }) | undefined;
    socket.on('data', (b: Buffer) => conn.session.data(b, 0, b.byteLength));
    socket.on('end', () => { if (conn.session.end) conn.session.end(); else conn.end(); });
    socket.on('drain', () => conn.checkDrain());
    socket.on('error', (e) => { error = e; });
    socket.on('close', () => {
      conn.closed = true;
      conns.delete(conn);
      endWatch.remove(conn);
      conn.session.close?.(error);
    });
  });
  return new Promise((resolve, reject) => {
    const failed = (e: NodeJS.ErrnoException): void => reject(fromNode(e, host, options.port ?? 0));
    server.once('error', failed);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', failed);
      const addr = server.address() as net.AddressInfo;
      resolve({
        host,
        port: addr.port,
        get connections() { return conns.size; },
        close(deadlineMs = 5000) {
          return new Promise<void>((res) => {
            const t = setTimeout(() => { for (const c of conns) c.socket.destroy(); }, deadlineMs);
            t.unref();
            server.close(() => { clearTimeout(t); endWatch.stop(); res(); });
            for (const c of conns) { if (c.session.shutdown) c.session.shutdown(); else c.end(); }
          });
        },
      });
    });
  });
}
