// An in-memory Conn for the memcached session tests (no sockets): records output, can refuse writes above a
// high-water mark; plus a fresh app over its own store, and a feeder that hands the session short-lived views.
import type { Conn, Session } from '../src/index.js';
import { McApp, type McSettings } from '../apps/memcached/app.js';
import { createStoreShared } from '../apps/memcached/store.js';
import { preadAll } from '../src/portable/file-queue.js';

/** An in-memory connection: records output, can refuse writes above a high-water mark. */
export class FakeConn implements Conn {
  readonly id = 1;
  readonly worker = 0;
  readonly remoteAddress = '127.0.0.1';
  readonly remotePort = 40000;
  readonly remoteFamily = 'IPv4' as const;
  readonly localAddress = '127.0.0.1';
  readonly localPort = 11211;
  out: Buffer[] = [];
  queued = 0;
  paused = false;
  ended = false;
  destroyed = false;
  constructor(public hwm = Infinity) {}
  get pendingBytes(): number { return this.queued; }
  write(data: Uint8Array | string, offset = 0, length?: number): boolean {
    if (typeof data === 'string') data = Buffer.from(data, 'utf8');
    length ??= data.byteLength - offset;
    if (this.ended) return false;
    this.out.push(Buffer.from(data.subarray(offset, offset + length)));
    this.queued += length;
    return this.queued <= this.hwm;
  }
  writeAscii(text: string): boolean { return this.write(Buffer.from(text, 'latin1')); }
  writeNoCopy(data: Uint8Array, offset?: number, length?: number): boolean { return this.write(data, offset, length); }
  /** Reads the file (node:fs) and records its bytes like a write. */
  async sendFile(fd: number, position: number, length: number): Promise<void> {
    const b = await preadAll(fd, position, length);
    if (b.length !== length) throw new Error('short file');
    this.write(b);
  }
  readFile(fd: number, position: number, length: number): Promise<Buffer> { return preadAll(fd, position, length); }
  pause(): void { this.paused = true; }
  resume(): void { this.paused = false; }
  halfClose(): void { this.ended = true; }   // memcached never half-closes: like end() for this double
  end(): void { this.ended = true; }
  destroy(): void { this.destroyed = true; this.ended = true; }
  text(): string { return Buffer.concat(this.out).toString('latin1'); }
  /** The peer read everything. */
  consume(): void { this.queued = 0; }
}

/** A one-worker app over a fresh store of `memoryMb`; `settings` override the defaults. */
export function newApp(memoryMb = 16, itemSizeMax?: number, settings: Partial<McSettings> = {}): McApp {
  const store = createStoreShared({ maxBytes: memoryMb * 1024 * 1024, itemSizeMax });
  return new McApp({ store, settings: { host: '127.0.0.1', port: 0, maxConns: 1024, threads: 1, verbosity: 0, ...settings } }, 0, 1);
}

/** Feeds `data` in `step`-byte pieces, each a view into a scratch buffer scribbled over after the call. */
export function feed(s: Session, data: string | Buffer, step = Infinity): void {
  const b = typeof data === 'string' ? Buffer.from(data, 'latin1') : data;
  for (let i = 0; i < b.length; i += step) {
    const n = Math.min(step, b.length - i);
    // hand the session a view into a larger scratch buffer, then scribble on it: the session must have copied
    const scratch = Buffer.alloc(n + 16, 0x5a);
    b.copy(scratch, 8, i, i + n);
    s.data(scratch, 8, n);
    scratch.fill(0x21);
  }
}
