// Helpers for the memcached app's tests: raw-socket exchanges, a reference memcached process, free ports.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as net from 'node:net';
import { tcpQueues } from './helpers.js';

export type Chunk = string | Uint8Array;

export interface ExchangeResult {
  /** Everything the server sent. */
  out: Buffer;
  /** The server closed the connection. */
  closed: boolean;
}

export interface ExchangeOptions {
  host?: string;
  /** Chunks arrive as separate reads: before the next chunk, wait (bounded) until the server has read every byte sent
   * so far (see `takenByPeer`), then pause this long (ms). Default 0 (written back to back). */
  gapMs?: number;
  /** Stop once the output satisfies this (e.g. ends with a sentinel reply). */
  until?: (out: Buffer) => boolean;
  /** Give up waiting after this long (ms) since the last byte was received. Default 2000. */
  idleMs?: number;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Resolves once the server has read every byte `s` has written: none left in `s`'s own buffer (handed to the kernel:
 * on loopback, in the server's receive queue by then) nor in the server's kernel receive queue (a connection that is
 * gone counts as read). Not `s`'s send queue: it also counts bytes the server has read but not yet acknowledged (a
 * delayed ACK, up to 200 ms). A pause alone does not make the next chunk a separate read: a server thread that is not
 * scheduled for the pause (a loaded machine) reads both chunks at once. Bounded (10 s): a server that stops reading
 * (it closed, or it holds input back) is let be.
 */
async function takenByPeer(s: net.Socket): Promise<void> {
  for (const end = Date.now() + 10_000; Date.now() < end && !s.destroyed;) {
    if (s.writableLength === 0 && s.localPort !== undefined && s.remotePort !== undefined) {
      const peer = tcpQueues(s.remotePort, s.localPort);
      if (peer === undefined || peer.rx === 0) return;
    }
    await sleep(2);
  }
}

/** Send chunks on a new connection, collect the reply until `until`, close by the server, or idle timeout. */
export function exchange(port: number, chunks: Chunk[], opts: ExchangeOptions = {}): Promise<ExchangeResult> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, opts.host ?? '127.0.0.1');
    s.setNoDelay(true);
    const parts: Buffer[] = [];
    let size = 0;
    let done = false;
    let timer: NodeJS.Timeout | undefined;
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      if (timer) clearTimeout(timer);
      s.destroy();
      resolve({ out: Buffer.concat(parts, size), closed });
    };
    const arm = () => {
      if (timer) clearTimeout(timer);
      timer = setTimeout(() => finish(false), opts.idleMs ?? 2000);
    };
    s.on('data', (d: Buffer) => {
      parts.push(d);
      size += d.length;
      arm();
      if (opts.until && opts.until(Buffer.concat(parts, size))) finish(false);
    });
    s.on('close', () => finish(true));
    s.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ECONNRESET' || e.code === 'EPIPE') finish(true);
      else if (!done) { done = true; reject(e); }
    });
    s.on('connect', async () => {
      arm();
      for (let i = 0; i < chunks.length && !done; i++) {
        const c = chunks[i];
        s.write(typeof c === 'string' ? Buffer.from(c, 'latin1') : c);
        if (opts.gapMs && i < chunks.length - 1) { await takenByPeer(s); await sleep(opts.gapMs); }
      }
    });
  });
}

/** A persistent raw connection with "read until" helpers. */
export class RawClient {
  private buf = Buffer.alloc(0);
  private waiters: Array<() => void> = [];
  closed = false;
  private constructor(readonly socket: net.Socket) {
    socket.setNoDelay(true);
    socket.on('data', (d: Buffer) => { this.buf = Buffer.concat([this.buf, d]); this.wake(); });
    socket.on('close', () => { this.closed = true; this.wake(); });
    socket.on('error', () => {});
  }
  static connect(port: number, host = '127.0.0.1'): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect(port, host);
      s.once('connect', () => resolve(new RawClient(s)));
      s.once('error', reject);
    });
  }
  private wake(): void { const w = this.waiters; this.waiters = []; for (const f of w) f(); }
  send(data: Chunk): void { this.socket.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data); }
  /** Wait for `n` bytes (or `pattern` to appear); returns and consumes through it. */
  async read(until: number | string, timeoutMs = 5000): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      let end = -1;
      if (typeof until === 'number') { if (this.buf.length >= until) end = until; }
      else { const i = this.buf.indexOf(until, 0, 'latin1'); if (i !== -1) end = i + until.length; }
      if (end !== -1) { const r = this.buf.subarray(0, end); this.buf = this.buf.subarray(end); return Buffer.from(r); }
      if (this.closed) throw new Error(`connection closed while waiting for ${JSON.stringify(until)}; have ${JSON.stringify(this.buf.toString('latin1'))}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timeout waiting for ${JSON.stringify(until)}; have ${JSON.stringify(this.buf.toString('latin1').slice(0, 300))}`);
      await new Promise<void>((r) => { const t = setTimeout(r, left); this.waiters.push(() => { clearTimeout(t); r(); }); });
    }
  }
  /** Send a command and read one reply line (through "\r\n"). */
  async call(cmd: Chunk, until = '\r\n'): Promise<string> { this.send(cmd); return (await this.read(until)).toString('latin1'); }
  pending(): Buffer { return this.buf; }
  async waitClosed(timeoutMs = 5000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed && Date.now() < deadline) await new Promise<void>((r) => { const t = setTimeout(r, 50); this.waiters.push(() => { clearTimeout(t); r(); }); });
    return this.closed;
  }
  close(): void { this.socket.destroy(); }
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const p = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(p));
    });
  });
}

export const MEMCACHED_BIN = '/usr/bin/memcached';
export const MEMCCAPABLE_BIN = '/usr/bin/memccapable';

export interface RefServer { port: number; proc: ChildProcess; close(): Promise<void> }

/** Start Debian's memcached on a free loopback port (null when the binary is missing). */
export async function startReferenceMemcached(args: string[] = []): Promise<RefServer | null> {
  if (!existsSync(MEMCACHED_BIN)) return null;
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const argv = ['-U', '0', '-l', '127.0.0.1', '-p', String(port), '-t', '1', ...args];
    if (process.getuid?.() === 0) argv.push('-u', 'root');
    const proc = spawn(MEMCACHED_BIN, argv, { stdio: ['ignore', 'ignore', 'pipe'] });
    let exited = false;
    // a test process that ends without close() (a failed hook, a crash) must not leave the server running
    const reap = () => { if (!exited) proc.kill('SIGKILL'); };
    process.once('exit', reap);
    proc.once('exit', () => { exited = true; process.removeListener('exit', reap); });
    for (let i = 0; i < 100 && !exited; i++) {
      const ok = await new Promise<boolean>((r) => {
        const s = net.connect(port, '127.0.0.1');
        s.once('connect', () => { s.destroy(); r(true); });
        s.once('error', () => r(false));
      });
      if (ok) {
        return {
          port, proc,
          close: () => new Promise<void>((r) => { if (exited) return r(); proc.once('exit', () => r()); proc.kill('SIGTERM'); }),
        };
      }
      await sleep(20);
    }
    if (!exited) proc.kill('SIGKILL');
  }
  throw new Error('could not start reference memcached');
}

/** Printable form of protocol bytes for assertion messages. */
export function show(b: Buffer | string): string {
  const s = typeof b === 'string' ? b : b.toString('latin1');
  return JSON.stringify(s.length > 600 ? s.slice(0, 300) + ' … ' + s.slice(-200) : s);
}

// ---- the binary protocol

/** One binary request; lengths default to what the parts add up to (override them to build broken packets). */
export interface BinRequest {
  opcode: number;
  key?: string | Uint8Array;
  extras?: Uint8Array;
  value?: string | Uint8Array;
  opaque?: number;
  cas?: bigint;
  magic?: number;
  keylen?: number;
  extlen?: number;
  bodylen?: number;
}

/** Binary opcodes (as memcached's binary protocol header defines them). */
export const BinOp = {
  GET: 0x00, SET: 0x01, ADD: 0x02, REPLACE: 0x03, DELETE: 0x04, INCR: 0x05, DECR: 0x06, QUIT: 0x07, FLUSH: 0x08,
  GETQ: 0x09, NOOP: 0x0a, VERSION: 0x0b, GETK: 0x0c, GETKQ: 0x0d, APPEND: 0x0e, PREPEND: 0x0f, STAT: 0x10,
  SETQ: 0x11, ADDQ: 0x12, REPLACEQ: 0x13, DELETEQ: 0x14, INCRQ: 0x15, DECRQ: 0x16, QUITQ: 0x17, FLUSHQ: 0x18,
  APPENDQ: 0x19, PREPENDQ: 0x1a, VERBOSITY: 0x1b, TOUCH: 0x1c, GAT: 0x1d, GATQ: 0x1e, SASL_LIST_MECHS: 0x20,
  SASL_AUTH: 0x21, SASL_STEP: 0x22, GATK: 0x23, GATKQ: 0x24,
} as const;

const bytesOf = (v: string | Uint8Array | undefined): Buffer => (v === undefined ? Buffer.alloc(0) : typeof v === 'string' ? Buffer.from(v, 'latin1') : Buffer.from(v));

/** The bytes of a binary request. */
export function binRequest(r: BinRequest): Buffer {
  const key = bytesOf(r.key), ext = bytesOf(r.extras), val = bytesOf(r.value);
  const h = Buffer.alloc(24);
  h[0] = r.magic ?? 0x80;
  h[1] = r.opcode;
  h.writeUInt16BE(r.keylen ?? key.length, 2);
  h[4] = r.extlen ?? ext.length;
  h.writeUInt32BE(r.bodylen ?? key.length + ext.length + val.length, 8);
  h.writeUInt32BE((r.opaque ?? 0) >>> 0, 12);
  h.writeBigUInt64BE(r.cas ?? 0n, 16);
  return Buffer.concat([h, ext, key, val]);
}

/** Extras of set/add/replace: flags, exptime. */
export function setExtras(flags: number, exptime: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt32BE(flags >>> 0, 0); b.writeUInt32BE(exptime >>> 0, 4);
  return b;
}
/** Extras of incr/decr: delta, initial, expiration (0xffffffff: no vivify). */
export function incrExtras(delta: bigint, initial: bigint, exptime: number): Buffer {
  const b = Buffer.alloc(20);
  b.writeBigUInt64BE(delta, 0); b.writeBigUInt64BE(initial, 8); b.writeUInt32BE(exptime >>> 0, 16);
  return b;
}
/** Extras of touch/gat/flush: one 32-bit time. */
export function timeExtras(t: number): Buffer { const b = Buffer.alloc(4); b.writeUInt32BE(t >>> 0, 0); return b; }

/** One binary response as parsed (for assertions and readable differences). */
export interface BinResponse { opcode: number; status: number; opaque: number; cas: bigint; extras: Buffer; key: Buffer; value: Buffer }

/** Splits binary responses; a trailing partial packet is returned as `rest`. */
export function parseBinResponses(b: Buffer): { packets: BinResponse[]; rest: Buffer } {
  const packets: BinResponse[] = [];
  let p = 0;
  while (b.length - p >= 24) {
    const keylen = b.readUInt16BE(p + 2), extlen = b[p + 4], bodylen = b.readUInt32BE(p + 8);
    if (b.length - p < 24 + bodylen) break;
    const body = b.subarray(p + 24, p + 24 + bodylen);
    packets.push({
      opcode: b[p + 1], status: b.readUInt16BE(p + 6), opaque: b.readUInt32BE(p + 12), cas: b.readBigUInt64BE(p + 16),
      extras: body.subarray(0, extlen), key: body.subarray(extlen, extlen + keylen), value: body.subarray(extlen + keylen),
    });
    p += 24 + bodylen;
  }
  return { packets, rest: b.subarray(p) };
}

/** A readable line per response packet. */
export function showBin(b: Buffer): string {
  const { packets, rest } = parseBinResponses(b);
  const lines = packets.map((r) => `op=${r.opcode.toString(16)} st=${r.status.toString(16)} opq=${r.opaque.toString(16)} cas=${r.cas} ext=${r.extras.toString('hex')} key=${JSON.stringify(r.key.toString('latin1'))} val=${JSON.stringify(r.value.toString('latin1').slice(0, 60))}`);
  if (rest.length) lines.push(`(partial: ${rest.toString('hex')})`);
  return lines.join('\n');
}
