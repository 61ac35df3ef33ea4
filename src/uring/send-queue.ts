// The send queue: what each connection has written and the kernel has not yet taken. Written bytes are copied into
// chunks of the send arena (memory the kernel reads from), chained per connection; at most one send per connection is
// in the kernel, and what is written meanwhile coalesces behind it (a partial send is completed before the next).
// writeNoCopy's bytes stay in the caller's buffer: a marker chunk keeps their place in the chain (the native side
// records the buffer in a reference slot, one per chunk). A file region (files.ts) is read into the chain's chunks, or
// spliced behind a marker chunk. When a connection is at its chunk budget (the high-water mark) or the arena is out of
// chunks, bytes wait in the connection's overflow list, in order.
import { native } from '../native.js';
import { MegapipeError, MpCode, errnoError } from '../errors.js';
import { Kind, St } from '../handle-table.js';
import { Op, Tag, RowFlag } from './abi.js';
import { copyInto, copyOf } from './copy.js';
import type { FilePiece } from './files.js';
import type { UringChannel } from './channel.js';

const ECANCELED = -125;
/** What a marker chunk stands for (cMark): a spliced file region, or a no-copy write's bytes. */
export const MARK_SPLICE = 1, MARK_REF = 2;
/** A no-copy write's bytes must end within this offset of their buffer (a row's offset and length are 32-bit). */
const REF_END = 0x7fffffff;

/** Bytes written while the send chunks were full (copies, or a no-copy write's buffer), and file pieces, in order. */
interface Overflow { bufs: (Uint8Array | FilePiece)[]; off: number }

export class SendQueue {
  private readonly state: Uint32Array;
  private readonly kind: Uint8Array;
  /** @internal The send arena and its chunk size; chunks a connection may hold (its share of the high-water mark). */
  readonly arena: Buffer;
  readonly chunk: number;
  readonly maxChunksPerConn: number;
  private readonly hwm: number;
  private readonly lwm: number;
  private readonly noCopyMin: number;
  private readonly pauseReadsAboveHwm: boolean;
  // ---- per handle
  /** @internal Head and tail chunk of the chain (-1: none); bytes of the head chunk already sent. */
  readonly headChunk: Int32Array;
  readonly tailChunk: Int32Array;
  readonly headSent: Int32Array;
  /** @internal Bytes of the send in flight (0: none; a splice round counts too) and the chunk it reads from. */
  readonly inFlight: Int32Array;
  readonly flightChunk: Int32Array;
  /** @internal Bytes written and not yet acknowledged by the kernel (pendingBytes). */
  readonly pend: Float64Array;
  /** @internal Chunks in the chain (bounded by maxChunksPerConn). */
  readonly chainChunks: Uint16Array;
  private readonly overflow: (Overflow | undefined)[];
  // ---- per chunk
  /** @internal Next chunk of the chain; end of the bytes in it. */
  readonly nextChunk: Int32Array;
  readonly chunkEnd: Int32Array;
  /** @internal The free list (a stack): freeChunks[0, freeCount). */
  readonly freeChunks: Int32Array;
  freeCount: number;
  /** @internal A file read in flight into the chunk: [fillAt, fillEnd) of it, from file position fillPos, for piece
   * fillPiece (files.ts). */
  readonly filling: Uint8Array;
  readonly fillAt: Int32Array;
  readonly fillEnd: Int32Array;
  readonly fillPos: Float64Array;
  readonly fillPiece: (FilePiece | undefined)[];
  // a chunk dropped from its connection's queue (abort, failure) while the kernel still uses it — a file read writing
  // into it, a send reading from it — goes back to the free list only when the last of those completes (the count of
  // them): reused earlier, another connection's bytes could be sent, or a late read could overwrite them
  private readonly cOrphan: Uint8Array;
  // a chunk that stands for other bytes in its connection's queue (no bytes of its own; chunkEnd = chunk: full, so that
  // later writes go into a new chunk behind it): MARK_SPLICE, a spliced sendFile (fillPiece); MARK_REF, bytes sent from
  // the caller's buffer cRef[c][cRefOff, +cRefLen) (recorded in native reference slot c, kept alive here until no send
  // reads it)
  readonly cMark: Uint8Array;
  private readonly cRef: (Uint8Array | undefined)[];
  private readonly cRefOff: Uint32Array;
  private readonly cRefLen: Int32Array;
  // connections waiting for a free chunk (their overflow)
  private readonly chunkWaiters: number[] = [];

  constructor(private readonly ch: UringChannel, send: ArrayBuffer, chunks: number, options: { pauseReadsAboveHighWater: boolean }) {
    const n = ch.table.size, limits = ch.limits;
    this.state = ch.table.state;
    this.kind = ch.table.kind;
    this.arena = Buffer.from(send);
    this.chunk = limits.sendChunkBytes;
    this.hwm = limits.highWaterMark;
    this.lwm = limits.lowWaterMark;
    this.noCopyMin = limits.noCopyMinBytes;
    this.pauseReadsAboveHwm = options.pauseReadsAboveHighWater;
    this.maxChunksPerConn = Math.min(0xffff, Math.ceil(limits.highWaterMark / this.chunk) + 1);
    this.headChunk = new Int32Array(n).fill(-1);
    this.tailChunk = new Int32Array(n).fill(-1);
    this.headSent = new Int32Array(n);
    this.inFlight = new Int32Array(n);
    this.flightChunk = new Int32Array(n).fill(-1);
    this.pend = new Float64Array(n);
    this.chainChunks = new Uint16Array(n);
    this.overflow = new Array(n).fill(undefined);
    this.nextChunk = new Int32Array(chunks);
    this.chunkEnd = new Int32Array(chunks);
    this.freeChunks = new Int32Array(chunks);
    this.filling = new Uint8Array(chunks);
    this.fillAt = new Int32Array(chunks);
    this.fillEnd = new Int32Array(chunks);
    this.fillPos = new Float64Array(chunks);
    this.cOrphan = new Uint8Array(chunks);
    this.fillPiece = new Array(chunks).fill(undefined);
    this.cMark = new Uint8Array(chunks);
    this.cRef = new Array(chunks).fill(undefined);
    this.cRefOff = new Uint32Array(chunks);
    this.cRefLen = new Int32Array(chunks);
    for (let i = 0; i < chunks; i++) this.freeChunks[i] = chunks - 1 - i;
    this.freeCount = chunks;
  }

  /** Nothing of `h` is queued or in flight. */
  idle(h: number): boolean { return this.inFlight[h] === 0 && this.headChunk[h]! < 0 && this.overflow[h] === undefined; }

  /** Bytes of `h` in its overflow list (none: the chain holds everything). */
  hasOverflow(h: number): boolean { return this.overflow[h] !== undefined; }

  // ---- writing --------------------------------------------------------------------------------------------------
  /** write / writeNoCopy: `data[off, off+len)` queued on `h` (arguments checked). write()'s answer. */
  queueBytes(h: number, data: Uint8Array, off: number, len: number, copy: boolean): boolean {
    this.ch.counters.requests++;
    if (this.state[h]! & St.Errored) return false;
    if (len === 0) return this.pend[h]! <= this.hwm;
    this.pend[h]! += len;
    const of = this.overflow[h];
    if (copy || len < this.noCopyMin || off + len > REF_END) {
      if (of !== undefined) of.bufs.push(copyOf(data, off, len));
      else this.append(h, data, off, len);
    } else if (of !== undefined) of.bufs.push(data.subarray(off, off + len));
    else if (!this.appendRef(h, data, off, len)) this.overflowWith(h, data.subarray(off, off + len));
    return this.queued(h);
  }

  /** writeAscii: a Latin-1 string queued on `h` without an intermediate Buffer when it fits a chunk. */
  queueAscii(h: number, text: string): boolean {
    const n = text.length;
    // fast path: no overflow, and the text fits in the tail chunk or in a new one
    if (n > 0 && this.overflow[h] === undefined && !(this.state[h]! & St.Errored)) {
      let t = this.tailChunk[h]!;
      if (t < 0 || this.chunk - this.chunkEnd[t]! < n) {
        if (n > this.chunk || this.chainChunks[h]! >= this.maxChunksPerConn || this.freeCount === 0) return this.queueBytes(h, Buffer.from(text, 'latin1'), 0, n, true);
        t = this.linkChunk(h);
      }
      this.arena.write(text, t * this.chunk + this.chunkEnd[t]!, n, 'latin1');
      this.chunkEnd[t]! += n;
      this.pend[h]! += n;
      this.ch.counters.requests++;
      return this.queued(h);
    }
    return this.queueBytes(h, Buffer.from(text, 'latin1'), 0, n, true);
  }

  /** A file piece (files.ts) of `length` bytes queued on `h`: in the chain if it has room, else in the overflow. */
  queuePiece(h: number, p: FilePiece, length: number): void {
    this.pend[h]! += length;
    const of = this.overflow[h];
    if (of !== undefined) of.bufs.push(p);
    else if (!this.ch.files.appendPiece(h, p)) this.overflowWith(h, p);
    if (this.pend[h]! > this.hwm) this.aboveHwm(h);
    this.kick(h);
  }

  // After bytes were queued on `h`: start a send if none is in flight; false when above the high-water mark.
  private queued(h: number): boolean {
    this.kick(h);
    return this.pend[h]! <= this.hwm || this.aboveHwm(h);
  }

  /** Starts a send of `h` if none is in flight (and it is not still connecting). */
  kick(h: number): void {
    if (this.inFlight[h] === 0 && !(this.state[h]! & St.Connecting)) this.sendNext(h);
  }

  // Starts an overflow list for `h` with `item` (the chain is at its budget or the arena is out of chunks).
  private overflowWith(h: number, item: Uint8Array | FilePiece): void {
    this.overflow[h] = { bufs: [item], off: 0 };
    if (this.freeCount === 0) this.chunkWaiters.push(h);
  }

  // Queued bytes passed the high-water mark: a 'write' event follows below the low-water mark; reading pauses (by
  // default) until then.
  private aboveHwm(h: number): false {
    if (!(this.state[h]! & St.AboveHwm)) {
      this.state[h]! |= St.AboveHwm;
      if (this.pauseReadsAboveHwm) { this.state[h]! |= St.PausedHwm; this.ch.receiver.sync(h); }
    }
    return false;
  }

  // Queues `b[off, off+len)` to be sent from `b` itself: a chunk of its own marks the place (see cMark). False when the
  // connection's chunk budget or the arena has no chunk for it.
  private appendRef(h: number, b: Uint8Array, off: number, len: number): boolean {
    if (this.chainChunks[h]! >= this.maxChunksPerConn || this.freeCount === 0) return false;
    const r = native!.channelRefSet(this.ch.nativeHandle, this.freeChunks[this.freeCount - 1]!, b);
    if (r !== 0) throw errnoError(r, 'writeNoCopy');   // (reference slots = chunks: not reached)
    const c = this.linkChunk(h);
    this.chunkEnd[c] = this.chunk; this.cMark[c] = MARK_REF;
    this.cRef[c] = b; this.cRefOff[c] = off; this.cRefLen[c] = len;
    this.ch.counters.writesNoCopy++;
    return true;
  }

  /** @internal Takes a free chunk (the caller checked that one is free and that `h` may hold another) and links it,
   * empty, at the tail of `h`'s chain. */
  linkChunk(h: number): number {
    const t = this.tailChunk[h]!, c = this.freeChunks[--this.freeCount]!;
    this.nextChunk[c] = -1; this.chunkEnd[c] = 0;
    if (t >= 0) this.nextChunk[t] = c; else { this.headChunk[h] = c; this.headSent[h] = 0; }
    this.tailChunk[h] = c;
    this.chainChunks[h]!++;
    return c;
  }

  /** @internal `h` may link another chunk now. */
  roomFor(h: number): boolean { return this.chainChunks[h]! < this.maxChunksPerConn && this.freeCount > 0; }

  private append(h: number, src: Uint8Array, off: number, len: number): void {
    const C = this.chunk;
    while (len > 0) {
      const t = this.tailChunk[h]!;
      if (t >= 0 && this.chunkEnd[t]! < C) {
        const n = Math.min(len, C - this.chunkEnd[t]!);
        copyInto(this.arena, t * C + this.chunkEnd[t]!, src, off, n);
        this.chunkEnd[t]! += n; off += n; len -= n;
        continue;
      }
      if (!this.roomFor(h)) break;
      this.linkChunk(h);
    }
    if (len > 0) this.overflowWith(h, copyOf(src, off, len));
  }

  // Moves overflow bytes into send chunks as capacity allows.
  private refill(h: number): void {
    const of = this.overflow[h];
    if (of === undefined) return;
    this.overflow[h] = undefined;
    while (of.bufs.length > 0) {
      const b = of.bufs[0]!;
      // a file piece, or bytes to send without a copy (held here are the caller's immutable buffer — writeNoCopy — or
      // a private copy: long ones need no further copy) take a chunk of their own, whole, or wait for one
      const bytes = b instanceof Uint8Array;
      if (!bytes || (b.byteLength - of.off >= this.noCopyMin && b.byteLength <= REF_END)) {
        if (!(bytes ? this.appendRef(h, b, of.off, b.byteLength - of.off) : this.ch.files.appendPiece(h, b))) {
          this.overflow[h] = of;
          if (this.freeCount === 0) this.chunkWaiters.push(h);
          return;
        }
        of.bufs.shift(); of.off = 0;
        continue;
      }
      const before = this.overflow[h] as Overflow | undefined;
      this.append(h, b, of.off, b.byteLength - of.off);
      const after = this.overflow[h] as Overflow | undefined;
      if (after === before) { of.bufs.shift(); of.off = 0; continue; }
      // append ran out of capacity and started a new overflow with the rest of `b`: merge the remainder back
      of.off = b.byteLength - (after!.bufs[0] as Uint8Array).byteLength;
      this.overflow[h] = of;
      return;
    }
  }

  // ---- sending --------------------------------------------------------------------------------------------------
  /** @internal Stages the next send of `h` from the head of its chain (none in flight: the caller checked). */
  sendNext(h: number): void {
    const ch = this.ch;
    for (;;) {
      const c = this.headChunk[h]!;
      if (c < 0) return;
      const mark = this.cMark[c]!;
      if (mark === MARK_SPLICE) { if (ch.files.spliceNext(h, c)) return; continue; }
      // a chunk's own bytes in the arena, or a no-copy write's in its reference slot (slot c, from cRefOff)
      const ref = mark === MARK_REF;
      const filling = this.filling[c] !== 0;
      const start = this.headSent[h]!, end = ref ? this.cRefLen[c]! : filling ? this.fillAt[c]! : this.chunkEnd[c]!;
      if (end > start) {
        this.inFlight[h] = end - start;
        this.flightChunk[h] = c;
        // the bytes right before a spliced file or a no-copy write (a response head): MSG_MORE, so they go out in full
        // segments with it
        const nx = this.nextChunk[c]!;
        const more = nx >= 0 && this.cMark[nx] !== 0 && !filling && (ref || end === this.chunkEnd[c]) ? RowFlag.More : 0;
        if (ref) ch.stage(Op.Send, h, ch.fd[h]!, ch.fixed(h) | RowFlag.Ref | more, c, end - start, this.cRefOff[c]! + start, Tag.Send);
        else ch.stage(Op.Send, h, ch.fd[h]!, ch.fixed(h) | more, c * this.chunk + start, end - start, 0, Tag.Send);
        return;
      }
      if (filling) return;   // the rest waits for its file read (files.onFileRead sends it)
      if (!ref && end < this.chunk && this.nextChunk[c]! < 0) return;   // tail chunk, all sent: keep it for appends
      this.popChunk(h);
    }
  }

  /** @internal Unlinks the head chunk of `h` (sent, or dropped). */
  popChunk(h: number): void {
    const c = this.headChunk[h]!;
    const next = this.nextChunk[c]!;
    this.headChunk[h] = next; this.headSent[h] = 0;
    if (next < 0) this.tailChunk[h] = -1;
    this.chainChunks[h]!--;
    if (this.cMark[c] === MARK_SPLICE) {
      // the kernel never touches a splice marker's memory: free at once; the piece ends when its operations have
      const p = this.fillPiece[c]!;
      this.fillPiece[c] = undefined;
      this.freeChunk(c);
      this.ch.files.markerPopped(h, p);
      return;
    }
    // dropped (dropQueue) while the kernel still uses it: freed when the last of those operations completes
    const users = this.filling[c]! + (this.inFlight[h] !== 0 && this.flightChunk[h] === c ? 1 : 0);
    if (users !== 0) {
      this.cOrphan[c] = users;
      if (this.filling[c] !== 0) this.fillPiece[c]!.failed ??= new MegapipeError(MpCode.CLOSED, `sendFile: connection ${h} closed`);
      return;
    }
    this.freeChunk(c);
  }

  /** @internal Whether chunk `c` was dropped while in use; if so, one of its users is done (the last frees it). */
  releaseIfOrphan(c: number): boolean {
    if (this.cOrphan[c] === 0) return false;
    if (--this.cOrphan[c]! === 0) { this.freeChunk(c); this.pumpWaiters(); }
    return true;
  }

  // A chunk no operation uses goes back to the free list, unmarked (a no-copy write's buffer is let go: nothing reads
  // it now).
  private freeChunk(c: number): void {
    if (this.cMark[c] !== 0) { this.cMark[c] = 0; this.cRef[c] = undefined; }
    this.freeChunks[this.freeCount++] = c;
  }

  /** @internal A chunk detached from any connection (readFile) goes back to the free list. */
  releaseChunk(c: number): void { this.freeChunks[this.freeCount++] = c; this.pumpWaiters(); }

  /** A send of `h` completed with `res` (bytes, or -errno). */
  onSend(h: number, res: number): void {
    const ch = this.ch;
    const sent = this.inFlight[h]!, fc = this.flightChunk[h]!;
    this.inFlight[h] = 0;
    this.flightChunk[h] = -1;
    if (fc >= 0 && this.releaseIfOrphan(fc)) {
      // the queue was dropped (abort, failure) while this send read from it: nothing more to account
      if (this.state[h]! & St.Closing) ch.maybeRelease(h);
      return;
    }
    if (res < 0) return this.failSends(h, res, undefined);
    ch.counters.bytesWritten += res;
    if (res !== sent && (this.state[h]! & St.CloseLinked)) {   // cut short (an error after some progress): the close has run
      this.dropQueue(h);
      ch.maybeRelease(h);
      return;
    }
    this.pend[h]! -= res;
    this.headSent[h]! += res;
    const c = this.headChunk[h]!;
    if (res === sent && this.headSent[h] === (this.cMark[c] === MARK_REF ? this.cRefLen[c] : this.chunkEnd[c]) && (this.nextChunk[c]! >= 0 || this.tailChunk[h] === c)) this.popChunk(h);
    this.afterSend(h, res);
  }

  /** @internal After `res` bytes of `h` went out (a send, or a splice round): queue more, wake waiters, events. */
  afterSend(h: number, res: number): void {
    const ch = this.ch;
    if (this.overflow[h] !== undefined) this.refill(h);
    this.sendNext(h);
    this.pumpWaiters();
    const st = this.state[h]!;
    if (this.idle(h) && ch.sendsDrained(h)) return;
    if ((st & St.AboveHwm) && this.pend[h]! <= this.lwm) {
      this.state[h]! &= ~(St.AboveHwm | St.PausedHwm);
      ch.receiver.sync(h);
    }
    if (!(this.state[h]! & St.Closing)) { if (res > 0) ch.emit('write', h, res); }
    else ch.maybeRelease(h);
  }

  /** @internal The send stream of `h` is broken (a send failed, or a file read for it did): nothing queued can be
   * sent in order. */
  failSends(h: number, res: number, code: string | undefined): void {
    const ch = this.ch;
    if (res !== ECANCELED) this.state[h]! |= St.Errored;
    this.dropQueue(h);
    if (!(this.state[h]! & St.Closing) && res !== ECANCELED) {
      if (code === undefined) ch.emit('error', h, res); else ch.emitCode('error', h, res, code);
    }
    ch.sendsFailed(h);
  }

  /** @internal Gives free chunks to connections (and readFile pieces) waiting for one. */
  pumpWaiters(): void {
    while (this.chunkWaiters.length > 0 && this.freeCount > 0) {
      const w = this.chunkWaiters.shift()!;
      if (this.kind[w] === Kind.Free || this.overflow[w] === undefined) continue;
      this.refill(w);
      this.kick(w);
    }
    this.ch.files.pumpReadWaiters();
  }

  /** @internal Drops everything queued on `h` (abort, failure, close): chunks still in use free themselves later. */
  dropQueue(h: number): void {
    while (this.headChunk[h]! >= 0) this.popChunk(h);
    const of = this.overflow[h];
    this.overflow[h] = undefined;
    if (of !== undefined) for (const b of of.bufs) if (!(b instanceof Uint8Array)) this.ch.files.dropPiece(h, b);
    this.pend[h] = 0;
    this.pumpWaiters();
  }

  /** The channel closes: the buffers of no-copy writes that a send may still read (when the teardown timed out). */
  referenced(): Uint8Array[] {
    const out: Uint8Array[] = [];
    for (const b of this.cRef) if (b !== undefined) out.push(b);
    this.cRef.fill(undefined);
    return out;
  }
}
