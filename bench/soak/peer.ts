// A client connection with the operations the scenarios need: read exactly n bytes, read what is there, wait for
// EOF, write with backpressure, stop reading (zero window), reset. Every wait is bounded by a no-progress watchdog
// (NO_PROGRESS_MS without a byte moving either way while the client waits on the server): a hang is reported as a
// failure, a slow machine is not (there is no speed threshold).
import * as net from 'node:net';

/** A fault of the server seen by a client: counted as a failure, with this message as its sample. */
export class Failure extends Error {}

export const NO_PROGRESS_MS = 60_000;
const TICK_MS = 1000;

export class Peer {
  readonly sock: net.Socket;
  private chunks: Buffer[] = [];
  private buffered = 0;
  private wake: (() => void) | null = null;
  eof = false;
  closed = false;
  error: (Error & { code?: string }) | null = null;
  /** The client reset or destroyed the connection on purpose: errors after it are expected. */
  abandoned = false;
  lastProgress = Date.now();
  bytesIn = 0;
  bytesOut = 0;

  private constructor(sock: net.Socket) {
    this.sock = sock;
    sock.on('data', (b: Buffer) => { this.chunks.push(b); this.buffered += b.length; this.bytesIn += b.length; this.progress(); });
    sock.on('end', () => { this.eof = true; this.signal(); });
    sock.on('error', (e: Error) => { this.error ??= e; this.signal(); });
    sock.on('close', () => { this.closed = true; this.signal(); });
    sock.on('drain', () => this.progress());
  }

  /** Connects; a refused or failed connect is a failure of the server. */
  static connect(host: string, port: number): Promise<Peer> {
    return new Promise((resolve, reject) => {
      const sock = net.connect({ host, port, noDelay: true });
      const t = setTimeout(() => { sock.destroy(); reject(new Failure(`connect to ${host}:${port}: no answer in ${NO_PROGRESS_MS} ms`)); }, NO_PROGRESS_MS);
      sock.once('error', (e: Error & { code?: string }) => { clearTimeout(t); reject(new Failure(`connect to ${host}:${port}: ${e.code ?? e.message}`)); });
      sock.once('connect', () => { clearTimeout(t); sock.removeAllListeners('error'); resolve(new Peer(sock)); });
    });
  }

  private progress(): void { this.lastProgress = Date.now(); this.signal(); }
  private signal(): void { const w = this.wake; this.wake = null; w?.(); }

  /** Waits for anything to happen (or a tick); throws when nothing moved for NO_PROGRESS_MS, or on an error. */
  private async turn(what: string): Promise<void> {
    this.check(what);
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => { if (this.wake === w) this.wake = null; resolve(); }, TICK_MS);
      const w = () => { clearTimeout(t); resolve(); };
      this.wake = w;
    });
    this.check(what);
  }

  private check(what: string): void {
    if (this.error && !this.abandoned) throw new Failure(`${what}: unexpected ${this.error.code ?? this.error.message} (after ${this.bytesIn} bytes received, ${this.bytesOut} sent)`);
    if (Date.now() - this.lastProgress > NO_PROGRESS_MS) throw new Failure(`${what}: no progress for ${NO_PROGRESS_MS / 1000} s (${this.buffered} bytes buffered, ${this.bytesIn} received, ${this.bytesOut} sent, ${this.sock.writableLength} unsent)`);
  }

  get available(): number { return this.buffered; }

  private take(n: number): Buffer {
    if (n === 0) return Buffer.alloc(0);
    const first = this.chunks[0]!;
    if (first.length === n) { this.chunks.shift(); this.buffered -= n; return first; }
    if (first.length > n) { this.chunks[0] = first.subarray(n); this.buffered -= n; return first.subarray(0, n); }
    const out = Buffer.allocUnsafe(n);
    let off = 0;
    while (off < n) {
      const c = this.chunks[0]!;
      const k = Math.min(c.length, n - off);
      c.copy(out, off, 0, k);
      off += k;
      if (k === c.length) this.chunks.shift(); else this.chunks[0] = c.subarray(k);
    }
    this.buffered -= n;
    return out;
  }

  /** Puts bytes back in front of what is buffered. */
  unshift(b: Buffer): void { this.chunks.unshift(b); this.buffered += b.length; }

  /** Exactly n bytes; an EOF first is a failure. */
  async read(n: number, what: string): Promise<Buffer> {
    while (this.buffered < n) {
      if (this.eof || this.closed) throw new Failure(`${what}: EOF after ${this.buffered} of ${n} bytes`);
      await this.turn(what);
    }
    return this.take(n);
  }

  /** Between 1 and max bytes (what is buffered), or null at EOF. */
  async readSome(max: number, what: string): Promise<Buffer | null> {
    while (this.buffered === 0) {
      if (this.eof || this.closed) return null;
      await this.turn(what);
    }
    return this.take(Math.min(max, this.buffered));
  }

  /** A line ending in CRLF (returned without it); longer than `max` is a failure. */
  async readLine(what: string, max = 8192): Promise<string> {
    for (;;) {
      // join only the leading chunks a line of `max` bytes can span
      let k = 0, len = 0;
      while (k < this.chunks.length && len <= max + 1) len += this.chunks[k++]!.length;
      if (k > 1) this.chunks.splice(0, k, Buffer.concat(this.chunks.slice(0, k)));
      const all = this.chunks[0] ?? Buffer.alloc(0);
      const i = all.indexOf('\r\n');
      if (i >= 0) { const line = all.toString('latin1', 0, i); this.take(i + 2); return line; }
      if (i < 0 && all.length > max) throw new Failure(`${what}: no CRLF in ${all.length} bytes`);
      if (this.eof || this.closed) throw new Failure(`${what}: EOF in a line (${JSON.stringify(all.toString('latin1', 0, 80))})`);
      await this.turn(what);
    }
  }

  /** Waits for the peer's EOF; any byte before it is a failure. */
  async expectEof(what: string): Promise<void> {
    for (;;) {
      if (this.buffered > 0) throw new Failure(`${what}: ${this.buffered} unexpected bytes before EOF (${JSON.stringify(this.take(Math.min(this.buffered, 60)).toString('latin1'))})`);
      if (this.eof || this.closed) return;
      await this.turn(what);
    }
  }

  /** Queues bytes (node buffers them); resolves when they are taken or the socket's buffer is below its high-water
   * mark. With `wait` false, only queues. */
  async write(data: Buffer, what: string, wait = true): Promise<void> {
    this.bytesOut += data.length;
    const ok = this.sock.write(data);
    if (ok || !wait) return;
    while (this.sock.writableNeedDrain) {
      if (this.closed || this.eof) throw new Failure(`${what}: connection closed with ${this.sock.writableLength} bytes unsent`);
      await this.turn(what);
    }
  }

  /** Stops reading: the receive buffer fills and the window goes to zero. */
  pause(): void { this.sock.pause(); }
  resume(): void { this.lastProgress = Date.now(); this.sock.resume(); }
  /** Half-close: FIN after what is queued; reading goes on. */
  end(): void { this.sock.end(); }
  /** RST now (SO_LINGER 0): whatever is queued either way is dropped. */
  reset(): void { this.abandoned = true; this.sock.resetAndDestroy(); }
  /** Close now without a reset (FIN; the kernel resets instead if received bytes are unread). */
  destroy(): void { this.abandoned = true; this.sock.destroy(); }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
