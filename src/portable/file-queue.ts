// In-order file sends on a node:net socket (the portable backend's sendFile, and serveNet's): file bytes are read
// through node:fs (libuv's thread pool) in 64 KiB pieces, each written when the socket is below its high-water mark;
// writes and closes issued meanwhile wait behind the file, in order. node:net has no such thing of its own.
import { read as fsRead } from 'node:fs';
import type * as net from 'node:net';
import { MegapipeError, MpCode, errnoError, shortFileError } from '../errors.js';

const PIECE = 64 * 1024;

/**
 * Watches a node:net socket's sending: each call tells whether the kernel took bytes since the previous call.
 * `writableLength` drops only when a whole write request completes (node:net coalesces queued writes into one
 * writev, which can be megabytes), libuv's write-queue size of the request in flight as the kernel takes bytes; a
 * new request starts only after the previous one completed, so one of the two drops whenever bytes move.
 */
export function progressWatch(s: net.Socket, extra: () => number = () => 0): () => boolean {
  const wqs = (): number => (s as unknown as { _handle?: { writeQueueSize?: number } })._handle?.writeQueueSize ?? 0;
  let wl = s.writableLength + extra(), q = wqs();
  return () => {
    const nwl = s.writableLength + extra(), nq = wqs();
    const moved = nwl < wl || nq < q;
    wl = nwl; q = nq;
    return moved;
  };
}

const EMPTY = Buffer.alloc(0);

/**
 * Resolves once `s` has room again: its 'drain' when node:net has promised one (a write returned false); else — the
 * caller's high-water mark is below the socket's own, and node:net emits no 'drain' below that — once everything
 * queued so far is written (an empty write's callback runs after the writes before it). Or when the socket closes.
 */
function queueDrained(s: net.Socket): Promise<void> {
  return new Promise((resolve) => {
    const done = () => { s.off('drain', done); s.off('close', done); resolve(); };
    s.once('close', done);
    if (s.writableNeedDrain) s.once('drain', done); else s.write(EMPTY, () => done());
  });
}

interface FileSend { fd: number; pos: number; left: number; resolve: () => void; reject: (e: Error) => void }

/** pread through node:fs: resolves with the count (0 at the end of the file); rejects with an errno-coded error. */
export function pread(fd: number, buf: Buffer, off: number, len: number, pos: number, what: string): Promise<number> {
  return new Promise((resolve, reject) => fsRead(fd, buf, off, len, pos, (err, n) => (err ? reject(errnoError(err.errno ?? -5, what)) : resolve(n))));
}

/** readFile over node:fs: up to `length` bytes from `position`, shorter at the end of the file. */
export async function preadAll(fd: number, position: number, length: number): Promise<Buffer> {
  const out = Buffer.allocUnsafe(length);
  let got = 0;
  while (got < length) {
    const n = await pread(fd, out, got, length - got, position + got, 'readFile');
    if (n === 0) break;
    got += n;
  }
  return got === length ? out : out.subarray(0, got);
}

export class FileQueue {
  /** file bytes not yet read plus writes waiting behind a file */
  bytes = 0;
  private readonly waiting: (Buffer | FileSend | (() => void))[] = [];
  private busy = false;

  /**
   * `write` puts bytes on the socket (with the owner's accounting); `fail` is told once when a file cannot be sent
   * (read error, file shorter than asked): the stream is broken, the owner destroys the socket.
   */
  constructor(
    private readonly socket: net.Socket,
    private readonly highWaterMark: number,
    private readonly write: (b: Buffer) => void,
    private readonly fail: (e: MegapipeError) => void,
  ) {}

  /** True while a file is being sent: writes must go through `hold`. */
  get active(): boolean { return this.busy; }

  /** Queue bytes behind the file in progress. */
  hold(b: Buffer): void {
    this.waiting.push(b);
    this.bytes += b.byteLength;
  }

  /** Run `fn` (an end or close) once everything queued before it is on the socket. */
  after(fn: () => void): void {
    if (this.busy) this.waiting.push(fn); else fn();
  }

  send(fd: number, position: number, length: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const f: FileSend = { fd, pos: position, left: length, resolve, reject };
      this.bytes += length;
      if (this.busy) { this.waiting.push(f); return; }
      this.busy = true;
      void this.pump(f);
    });
  }

  private async pump(f: FileSend): Promise<void> {
    const s = this.socket;
    try {
      while (f.left > 0) {
        if (s.destroyed) throw new MegapipeError(MpCode.CLOSED, 'sendFile: the connection closed');
        if (s.writableLength > this.highWaterMark) {
          await queueDrained(s);
          continue;
        }
        const want = Math.min(f.left, PIECE);
        const buf = Buffer.allocUnsafe(want);
        const n = await pread(f.fd, buf, 0, want, f.pos, 'sendFile');
        if (n === 0) throw shortFileError(f.pos, f.pos + f.left);
        if (s.destroyed) continue;
        f.pos += n; f.left -= n; this.bytes -= n;
        this.write(n === want ? buf : buf.subarray(0, n));
      }
    } catch (e) {
      // the stream cannot continue in order: what waited behind is dropped
      const err = e as MegapipeError;
      this.busy = false;
      this.bytes = 0;
      for (const q of this.waiting.splice(0)) if (!Buffer.isBuffer(q) && typeof q !== 'function') q.reject(new MegapipeError(MpCode.CLOSED, 'sendFile: the connection failed'));
      f.reject(err);
      if (!s.destroyed && err.code !== MpCode.CLOSED) this.fail(err);
      return;
    }
    f.resolve();
    // what waited behind the file: writes go out, an end/close runs, the next file starts
    while (this.waiting.length > 0) {
      const q = this.waiting.shift()!;
      if (Buffer.isBuffer(q)) { this.bytes -= q.byteLength; if (!s.destroyed) this.write(q); continue; }
      if (typeof q === 'function') { q(); continue; }
      void this.pump(q);
      return;
    }
    this.busy = false;
  }
}
