// The io_uring backend of a channel. Policy lives here; native/megapipe.c only moves rows and completions.
//
// Per handle, state is kept in typed arrays indexed by the handle (no object per connection):
//   send queue = a chain of chunks of the send arena (memory the kernel reads), at most one send in flight,
//   everything written meanwhile coalesced behind it; receive = one multishot recv with provided buffers.
//   sendFile = IORING_OP_READ of the file into the connection's next chunks, which are sent once filled; or, for a
//   long file region, IORING_OP_SPLICE file -> pipe -> socket (page-cache pages, no copy; see spliceNext).
// user_data of every request = (handle, op << 24 | generation): a completion finds its handle without a lookup.
import { readFileSync } from 'node:fs';
import { native, type NativeChannel } from '../native.js';
import { ChannelCore, Kind, St, type ChannelStats } from '../channel-core.js';
import { MegapipeError, MpCode, argError, errnoError, rangeError } from '../errors.js';
import { SOCKADDR_SLOT_BYTES, type Limits } from '../limits.js';
import type { Listener } from '../listener.js';
import type { AcceptOptions, Channel, ConnectOptions, RegisterOptions } from '../channel.js';
import { Op, RowFlag, CqeFlag, ROW_I32, EV_I32, Stat, UdFlag } from './abi.js';

const ENOBUFS = -105, ECANCELED = -125, ENFILE = -23, EMFILE = -24, ENOMEM = -12, EBUSY = -16, EBADF = -9;
const ENOTSOCK = -88, EINVAL = -22, EOPNOTSUPP = -95, EFAULT = -14;
/** Times a close that failed (its submission refused) is issued again before the handle goes anyway. */
const CLOSE_TRIES = 3;
const ORPHAN = 0x7fffffff;   // user_data handle of requests that belong to no handle (refused accepts)
/** Retry delays of an accept stopped for want of a descriptor or memory (see scheduleRearm). */
const ACCEPT_RETRY_MIN_MS = 10, ACCEPT_RETRY_MAX_MS = 1000;
/** The longest wait between retries of a flush the kernel refused for a transient reason (see submitFailed). */
const SUBMIT_RETRY_MAX_MS = 64;
/** Buffers that no-copy sends of a closed channel may still read: kept alive for good (see close). */
const pinnedForever: Uint8Array[] = [];
// user_data tag (no row opcode of its own: the row is Op.Accept): one direct accept with a slot reserved, armed for a
// listener that keeps accepting while the direct-descriptor table is nearly full (see armAccept)
const ACCEPT_KEEP = 13;

/**
 * A file region being sent (sendFile: `h` is the connection) or read (readFile: `h` is -1, `out` the result), read by
 * IORING_OP_READ into send-arena chunks, at most one read per chunk. Settles when no read of it is in flight: the
 * caller may close the fd then (a read staged but not yet submitted must still find it open).
 */
interface FilePiece {
  fd: number;
  /** next file position to read, and bytes not yet given a read */
  pos: number;
  left: number;
  reading: number;
  h: number;
  failed: Error | null;
  out: Buffer | null;
  outBase: number;
  /** readFile: end of the bytes read before the first short read (the file ended) */
  eof: number;
  /** spliced sendFile: its pipe (null: read into the arena), bytes in it, splice-chain operations in flight */
  pipe: Pipe | null;
  inPipe: number;
  ops: number;
  /** bytes the current round has sent; whether it moved any byte; rounds in a row that moved none */
  wrote: number;
  moved: boolean;
  idle: number;
  /** 0: rounds wait for room with a poll; else the timed wait before the next round's splice, ms (see spliceNext) */
  waitMs: number;
  /** dropped from its connection's queue (abort, failure) while operations were in flight */
  dropped: boolean;
  /** the errno and code the connection fails with when this piece fails (a send error, or the file's) */
  errRes: number;
  errCode: string | undefined;
  resolve: (v: Buffer | undefined) => void;
  reject: (e: Error) => void;
}
/** A nonblocking pipe of the splice pool (native pipeOpen). */
interface Pipe { r: number; w: number; cap: number }
/** Bytes written while the send chunks were full (copies), and file pieces queued behind them, in order. */
interface Overflow { bufs: (Uint8Array | FilePiece)[]; off: number }
/** user_data lo of a file read: READ_TAG | chunk (above every handle, below ORPHAN). */
const READ_TAG = 0x40000000;
const EIO = -5, EAGAIN = -11;
const POLLOUT = 4;
/** Splice rounds in a row that may move no byte before the connection is failed (EIO): no endless retry. */
const SPLICE_IDLE_ROUNDS = 64;
/** The longest timed wait between splice rounds once a poll cannot wait (the peer half-closed; see spliceNext). */
const SPLICE_WAIT_MAX_MS = 64;
const KERNEL_OP_POLL_ADD = 6, KERNEL_OP_SPLICE = 30;
const SHUT_WR = 1;   // shutdown(2) how
/** cMark values: what a marker chunk stands for. */
const MARK_SPLICE = 1, MARK_REF = 2;
/** A no-copy write's bytes must end within this offset of their buffer (a row's offset and length are 32-bit). */
const REF_END = 0x7fffffff;
/** Marks a held-back EOF in a handle's stash (see onRecv). */
const EOF_MARK = new Uint8Array(0);

export class UringChannel extends ChannelCore implements Channel {
  readonly backend = 'uring' as const;
  readonly features: Readonly<Record<string, boolean | number>>;
  private readonly nat: NativeChannel;
  private readonly ch: object;
  private readonly hdr: Int32Array;
  private readonly req: Int32Array;
  private readonly evs: Int32Array;
  private readonly nstats: Float64Array;
  private readonly recycleList: Int32Array;
  private readonly recvPool: Buffer;
  private readonly arena: Buffer;
  private readonly rowsMax: number;
  private readonly bufSize: number;
  private nreq = 0;
  private nrec = 0;
  // the rows and recycled buffers of the last batch were handed to C in hdr, to submit when onBatch returns (see reclaim)
  private handedOff = false;
  // submission failures (see submitFailed): the retry timer and its next delay; completions of requests that never
  // reached the kernel, delivered from a task of their own ([user_data lo, hi, result] triples)
  private retryTimer: NodeJS.Timeout | undefined = undefined;
  private retryDelayMs = 0;
  private readonly unsubmitted: number[] = [];
  private unsubmittedTask = false;
  private inBatch = false;
  private flushQueued = false;
  private batch: number;
  private readonly pauseReadsAboveHwm: boolean;
  private readonly fdInstall: boolean;
  // per handle
  private readonly fd: Int32Array;
  private readonly inflight: Uint16Array;
  private readonly sHead: Int32Array;
  private readonly sTail: Int32Array;
  private readonly sOff: Int32Array;
  private readonly sFly: Int32Array;
  private readonly sFlyC: Int32Array;   // the chunk the send in flight reads from
  private readonly pend: Float64Array;
  private readonly held: Uint16Array;
  private readonly closeTries: Uint8Array;
  private readonly addrSlot: Int32Array;
  private readonly overflow: (Overflow | undefined)[];
  // bytes (and EOF) that completed after the handle paused, held back until it resumes: a multishot receive is
  // cancelled asynchronously, so completions posted before the cancel lands still arrive (copies: the receive
  // buffers go back to the ring at once)
  private readonly stash: (Uint8Array[] | undefined)[];
  private readonly stashDue: number[] = [];
  private readonly installs = new Map<number, { resolve: (fd: number) => void; reject: (e: Error) => void }>();
  // send-arena chunks
  private readonly chunk: number;
  private readonly cNext: Int32Array;
  private readonly cEnd: Int32Array;
  private readonly cFree: Int32Array;
  private cTop: number;
  // a file read in flight into a chunk: [cFillAt, cFillEnd) of it, for piece cPiece
  private readonly cFill: Uint8Array;
  private readonly cFillAt: Int32Array;
  private readonly cFillEnd: Int32Array;
  // a chunk dropped from its connection's queue (abort, failure) while the kernel still uses it — a file read writing
  // into it, a send reading from it — goes back to the free list only when the last of those completes (the count
  // of them): reused earlier, another connection's bytes could be sent, or a late read could overwrite them
  private readonly cOrphan: Uint8Array;
  private readonly cPiece: (FilePiece | undefined)[];
  // a chunk that stands for other bytes in its connection's queue (no bytes of its own; cEnd = chunk: full, so that
  // later writes go into a new chunk behind it): MARK_SPLICE, a spliced sendFile (cPiece); MARK_REF, bytes sent from
  // the caller's buffer cRef[c][cRefOff, +cRefLen) (writeNoCopy; recorded in native reference slot c, and kept alive
  // here until no send reads it)
  private readonly cMark: Uint8Array;
  private readonly cRef: (Uint8Array | undefined)[];
  private readonly cRefOff: Uint32Array;
  private readonly cRefLen: Int32Array;
  // spliced sendFile: pipe pool (at most limits.splicePipes, opened on demand), the piece whose splice chain is in
  // flight per handle, and whether a handle holds a pipe (one at most: a stalled peer holds one, not the pool)
  private readonly spliceOk: boolean;
  private readonly pipesFree: Pipe[] = [];
  private pipesOpen = 0;
  private readonly spl: (FilePiece | undefined)[];
  private readonly splHeld: Uint8Array;
  private chainRows = 0;
  private readonly pieces = new Set<FilePiece>();
  private readonly readWaiters: FilePiece[] = [];
  private readonly maxChunksPerConn: number;
  private readonly chunkWaiters: number[] = [];
  // connect address slots
  private readonly aFree: Int32Array;
  private aTop: number;
  // listeners waiting for a free handle or fd to re-arm their accept
  private readonly rearmWaiters = new Set<number>();
  private rearmTimer: NodeJS.Timeout | undefined = undefined;
  // listeners whose accept failed for want of a descriptor or memory, until one succeeds again (said once)
  private readonly acceptStalled = new Set<number>();
  private rearmDelayMs = 0;
  // listeners that fell back to regular fds because the direct table was full
  private readonly fallbackListeners = new Set<number>();
  private directOpen = 0;
  // direct-descriptor slots: single direct accepts in flight each hold one (reserved); a multishot direct accept runs
  // only while more than `burstSlots` are free (see armAccept)
  private directReserved = 0;
  // direct slots whose close the kernel refused for good (see complete, Op.Close): taken until the ring is torn down
  private slotsLost = 0;
  private readonly tableSlots: number;
  private readonly burstSlots: number;
  private deferredError: unknown = undefined;
  private readonly onBatchBound: (n: number) => void;
  private readonly flushTask: () => void;
  private readonly retryTask: () => void;
  private readonly unsubmittedBound: () => void;

  constructor(limits: Limits, options: { batch?: number; pauseReadsAboveHighWater?: boolean } = {}) {
    super(limits);
    if (!native) throw new MegapipeError(MpCode.BACKEND_UNAVAILABLE, 'the native addon is not available');
    this.onBatchBound = (n: number) => this.onBatch(n);
    this.flushTask = () => { this.flushQueued = false; if (this.handedOff) this.reclaim(); if (this.nreq > 0 || this.nrec > 0) this.submitNow(); };
    this.retryTask = () => { this.retryTimer = undefined; if (this.closed) return; if (this.handedOff) this.reclaim(); this.submitNow(); };
    this.unsubmittedBound = () => this.deliverUnsubmitted();
    // one reference slot per send chunk (a no-copy write's marker chunk names its slot); chunks count from the limit
    // itself, not from the arena the addon page-rounded (its tail beyond the last whole chunk is never used)
    const chunks = limits.sendArenaBytes / limits.sendChunkBytes;
    this.nat = native.channelCreate({
      sqEntries: limits.sqEntries, cqEntries: limits.cqEntries, files: limits.files,
      recvBuffers: limits.recvBuffers, recvBufferSize: limits.recvBufferSize, sendArenaBytes: limits.sendArenaBytes,
      requestRows: limits.requestRows, eventRows: limits.eventRows, addressBytes: limits.maxPendingConnects * SOCKADDR_SLOT_BYTES,
      refSlots: chunks,
    }, this.onBatchBound, this);
    const L = this.nat.layout;
    this.ch = this.nat.channel;
    this.hdr = new Int32Array(this.nat.ctl, L.hdr, 8);
    this.req = new Int32Array(this.nat.ctl, L.req, L.requestRows * ROW_I32);
    this.evs = new Int32Array(this.nat.ctl, L.ev, L.eventRows * EV_I32);
    this.nstats = new Float64Array(this.nat.ctl, L.stats, 16);
    this.recycleList = new Int32Array(this.nat.ctl, L.recycle, L.recvBuffers);
    this.recvPool = Buffer.from(this.nat.recv);
    this.arena = Buffer.from(this.nat.send);
    this.rowsMax = L.requestRows;
    this.bufSize = L.recvBufferSize;
    this.batch = options.batch ?? limits.batch;
    this.pauseReadsAboveHwm = options.pauseReadsAboveHighWater ?? true;
    this.tableSlots = L.files;
    this.burstSlots = Math.min(L.files, acceptQueueMax() + 64);
    const probe = native.probe();
    const ops = probe.ops ?? [];
    this.fdInstall = ops.includes(Op.KernelFixedFdInstall);
    this.spliceOk = limits.splicePipes > 0 && ops.includes(KERNEL_OP_SPLICE) && ops.includes(KERNEL_OP_POLL_ADD);
    this.features = Object.freeze({
      deferTaskrun: L.deferTaskrun, singleIssuer: L.singleIssuer, registeredRing: L.registeredRing,
      bundles: probe.bundles ?? false, fixedFdInstall: this.fdInstall, sqEntries: L.sqEntries, cqEntries: L.cqEntries,
      splice: this.spliceOk, setupFlags: L.setupFlags,
    });
    const n = limits.maxHandles;
    this.fd = new Int32Array(n);
    this.inflight = new Uint16Array(n);
    this.sHead = new Int32Array(n).fill(-1);
    this.sTail = new Int32Array(n).fill(-1);
    this.sOff = new Int32Array(n);
    this.sFly = new Int32Array(n);
    this.sFlyC = new Int32Array(n).fill(-1);
    this.pend = new Float64Array(n);
    this.held = new Uint16Array(n);
    this.closeTries = new Uint8Array(n);
    this.addrSlot = new Int32Array(n).fill(-1);
    this.overflow = new Array(n).fill(undefined);
    this.stash = new Array(n).fill(undefined);
    this.chunk = limits.sendChunkBytes;
    this.cNext = new Int32Array(chunks);
    this.cEnd = new Int32Array(chunks);
    this.cFree = new Int32Array(chunks);
    this.cFill = new Uint8Array(chunks);
    this.cFillAt = new Int32Array(chunks);
    this.cFillEnd = new Int32Array(chunks);
    this.cOrphan = new Uint8Array(chunks);
    this.cPiece = new Array(chunks).fill(undefined);
    this.cMark = new Uint8Array(chunks);
    this.cRef = new Array(chunks).fill(undefined);
    this.cRefOff = new Uint32Array(chunks);
    this.cRefLen = new Int32Array(chunks);
    this.spl = new Array(n).fill(undefined);
    this.splHeld = new Uint8Array(n);
    for (let i = 0; i < chunks; i++) this.cFree[i] = chunks - 1 - i;
    this.cTop = chunks;
    this.maxChunksPerConn = Math.min(0xffff, Math.ceil(limits.highWaterMark / this.chunk) + 1);
    this.aFree = new Int32Array(limits.maxPendingConnects);
    for (let i = 0; i < limits.maxPendingConnects; i++) this.aFree[i] = i;
    this.aTop = limits.maxPendingConnects;
  }

  protected setRef(on: boolean): void { if (!this.closed) native!.channelRef(this.ch, on); }

  /** The batch threshold (staged requests that trigger a flush); 1 disables batching. */
  get batchThreshold(): number { return this.batch; }
  set batchThreshold(n: number) {
    if (!Number.isInteger(n) || n < 1 || n > this.rowsMax) throw rangeError('batchThreshold', `an integer in 1..${this.rowsMax}`, n);
    this.batch = n;
  }

  // ---- staging and flushing -------------------------------------------------------------------------------
  private stage(op: number, h: number, fd: number, flags: number, a: number, b: number, c: number, udOp: number): void {
    if (h !== ORPHAN) this.inflight[h]!++;
    this.stageRow(op, fd, flags, h, h === ORPHAN ? 0 : (udOp << 24) | this.gen[h]!, a, b, c);
  }

  private stageRow(op: number, fd: number, flags: number, udLo: number, udHi: number, a: number, b: number, c: number): void {
    if (this.handedOff) this.reclaim();
    if (this.nreq === this.rowsMax) {
      this.submitNow();
      // the kernel refuses submissions and every row is taken: this request fails (asynchronously) rather than wait
      if (this.nreq === this.rowsMax) { this.failUnsubmitted(udLo, udHi, EBUSY); return; }
    }
    const i = this.nreq * ROW_I32, r = this.req;
    r[i] = op; r[i + 1] = fd; r[i + 2] = flags; r[i + 3] = udLo; r[i + 4] = udHi;
    r[i + 5] = a; r[i + 6] = b; r[i + 7] = c;
    this.nreq++;
    if (this.nreq >= this.batch && this.chainRows === 0) this.submitNow();                        // flush rule (i): threshold
    else if (!this.inBatch && !this.flushQueued) { this.flushQueued = true; queueMicrotask(this.flushTask); }  // (iv): outside a batch
  }

  protected returnHeld(bid: number): void {
    if (this.handedOff) this.reclaim();
    this.recycleList[this.nrec++] = bid;
    if (!this.inBatch && !this.flushQueued) { this.flushQueued = true; queueMicrotask(this.flushTask); }
  }

  private submitNow(): void {
    if (this.handedOff) this.reclaim();
    if (this.closed) { this.nreq = 0; this.nrec = 0; return; }
    this.hdr[0] = this.nreq; this.hdr[1] = this.nrec; this.hdr[2] = 0;
    this.nreq = 0; this.nrec = 0;
    native!.channelSubmit(this.ch);
    this.takeBack();
  }

  /** mp_flush: submits staged requests now (rule iii). Needed only to bound latency inside long synchronous work. */
  flush(): void {
    if (this.closed) return;
    if (this.handedOff) this.reclaim();
    if (this.nreq > 0 || this.nrec > 0) this.submitNow();
  }

  // Staging again after a batch handed its rows to C. The batch's handlers may have queued microtasks or nextTicks,
  // which run when the batch's callback scope closes — before C submits the handed-off rows: such staging must append
  // to them, not overwrite them (nor the recycle list). Whether C has flushed them or not, takeBack finds in hdr what
  // is still staged.
  private reclaim(): void {
    this.handedOff = false;
    this.takeBack();
    // taken back from C: C will not submit them now, so something must (a caller that returns without staging)
    if ((this.nreq > 0 || this.nrec > 0) && !this.inBatch && !this.flushQueued) { this.flushQueued = true; queueMicrotask(this.flushTask); }
  }

  // After C flushed (or before it did): hdr[0] rows are still staged, at the front of the request area (all of them if
  // C has not flushed; those the kernel refused if it has), hdr[1] buffers still to recycle, hdr[2] why rows were kept.
  private takeBack(): void {
    const hdr = this.hdr;
    this.nreq = hdr[0]!; this.nrec = hdr[1]!;
    const err = hdr[2]!;
    hdr[0] = 0; hdr[1] = 0; hdr[2] = 0;
    if (err !== 0) this.submitFailed(err);
    else if (this.retryTimer === undefined) this.retryDelayMs = 0;
  }

  // The kernel refused a flush (io_uring_enter failed, or the SQ stayed full): the rows stay staged. A transient refusal
  // (EAGAIN, EBUSY, ENOMEM: memory or completion-queue pressure; the SQEs stay in the SQ) is retried after a delay that
  // doubles from 0 up to SUBMIT_RETRY_MAX_MS. Any other means the ring will not take these requests: the native side
  // completes those in the SQ with the error, and each row still staged completes with it too (its connection gets an
  // `error` event), from a task of its own; requests made later are submitted afresh.
  private submitFailed(err: number): void {
    if (err === -11 || err === EBUSY || err === ENOMEM) {
      if (this.retryTimer === undefined && !this.closed) {
        this.retryTimer = setTimeout(this.retryTask, this.retryDelayMs);
        this.retryDelayMs = Math.min(Math.max(1, this.retryDelayMs * 2), SUBMIT_RETRY_MAX_MS);
      }
      return;
    }
    const r = this.req;
    for (let i = 0; i < this.nreq; i++) this.failUnsubmitted(r[i * ROW_I32 + 3]!, r[i * ROW_I32 + 4]!, err);
    this.nreq = 0;
  }

  // A request that will never reach the kernel completes with `res`, as if the kernel had failed it: every state
  // machine takes its error path (never from within the caller's own call: delivered from a macrotask).
  private failUnsubmitted(udLo: number, udHi: number, res: number): void {
    this.unsubmitted.push(udLo, udHi, res);
    if (!this.unsubmittedTask) { this.unsubmittedTask = true; setImmediate(this.unsubmittedBound); }
  }

  private deliverUnsubmitted(): void {
    this.unsubmittedTask = false;
    if (this.closed) { this.unsubmitted.length = 0; return; }
    if (this.handedOff) this.reclaim();
    const u = this.unsubmitted.splice(0);
    this.inBatch = true;
    try {
      for (let i = 0; i < u.length && !this.closed; i += 3) {
        this.completeRow(u[i]!, u[i + 1]!, u[i + 2]!, 0);
        if (this.stashDue.length > 0) this.deliverStashDue();
      }
    } finally { this.inBatch = false; }
    if (this.nreq > 0 || this.nrec > 0) this.submitNow();
    this.surfaceDeferred();
  }

  private deferThrow(e: unknown): void {
    if (this.deferredError === undefined) this.deferredError = e;
  }

  private fixed(h: number): number { return this.kind[h] === Kind.Direct ? RowFlag.Fixed : 0; }

  // ---- the completion batch (called from C once per drained batch; flush rule ii follows its return) -------
  // n = 0: no events; C's flush of the handed-off rows failed (takeBack sees why and applies the retry policy).
  private onBatch(n: number): void {
    if (this.handedOff) this.reclaim();   // C consumed the previous batch's rows before draining this one
    this.inBatch = true;
    const evs = this.evs;
    try {
      let i = 0;
      for (; i < n && !this.closed; i++) {
        const j = i * EV_I32;
        this.completeRow(evs[j]!, evs[j + 1]!, evs[j + 2]!, evs[j + 3]!);
        if (this.stashDue.length > 0) this.deliverStashDue();
      }
      // close() ran in a handler: the rest of the batch is not delivered, but a new fd in it must still be closed
      for (; i < n; i++) {
        const j = i * EV_I32;
        if (((evs[j + 1]! >>> 24) & UdFlag.FdResult) !== 0 && evs[j + 2]! >= 0) native!.closeFd(evs[j + 2]!);
      }
    } finally {
      this.inBatch = false;
      // handed to C, which submits them when this returns (flush rule ii); the counts stay until C has (reclaim)
      if (!this.closed) {
        this.hdr[0] = this.nreq; this.hdr[1] = this.nrec;
        this.handedOff = true;
      }
    }
    this.surfaceDeferred();
  }

  // One completion (a copied CQE, or one of a request that never reached the kernel), routed by its user_data.
  private completeRow(h: number, hi: number, res: number, flags: number): void {
    if (h < 0 || h >= this.kind.length || this.kind[h] === Kind.Free || this.gen[h] !== (hi & 0xffffff)) {
      if (h >= 0 && h !== ORPHAN && (h & READ_TAG) !== 0) {
        try { this.onFileRead(h & ~READ_TAG, res); } catch (e) { this.deferThrow(e); }
        return;
      }
      if (flags & CqeFlag.Buffer) this.recycleList[this.nrec++] = flags >>> 16;   // orphan/stale: just return its buffer
      if (((hi >>> 24) & UdFlag.FdResult) !== 0 && res >= 0) native!.closeFd(res);   // a new fd nobody takes
      return;
    }
    try {
      this.complete(h, hi >>> 24, res, flags);
    } catch (e) {
      this.deferThrow(e);
    }
  }

  // An exception an application handler threw during a batch: surfaced as uncaught once the batch is done.
  private surfaceDeferred(): void {
    if (this.deferredError === undefined) return;
    const e = this.deferredError;
    this.deferredError = undefined;
    process.nextTick(() => { throw e; });
  }

  private complete(h: number, op: number, res: number, flags: number): void {
    const more = (flags & CqeFlag.More) !== 0;
    if (!more) this.inflight[h]!--;
    switch (op) {
      case Op.Recv: return this.onRecv(h, res, flags, more);
      case Op.Send: return this.onSend(h, res);
      case Op.Accept: case Op.AcceptFd: case Op.AcceptOne: case Op.AcceptOneFd: case ACCEPT_KEEP:
        if (op === Op.AcceptOne || op === ACCEPT_KEEP) this.directReserved--;   // its slot is now taken or free again
        return this.onAccept(h, res, more, op === Op.Accept || op === Op.AcceptOne || op === ACCEPT_KEEP, op === Op.Accept || op === Op.AcceptFd || op === ACCEPT_KEEP);
      case Op.Connect: return this.onConnect(h, res);
      case Op.FdInstallTag: return this.onInstalled(h, res);
      case Op.SpliceIn: case Op.SplicePoll: case Op.SpliceOut: case Op.SpliceWait: return this.onSplice(h, op, res);
      case Op.Close:
        // a close the kernel never ran (its submission was refused: the error is not EBADF, which means the socket is
        // gone already) is issued again, a bounded number of times: the socket must not outlive its handle. After
        // that, a regular fd is closed here (close(2)); a direct descriptor's slot stays taken (counted as lost, so
        // that the accept policy does not count on it) until the ring's teardown releases the table
        if (res < 0 && res !== EBADF && (this.state[h]! & St.CloseIssued) && !(this.state[h]! & St.CloseLinked)) {
          if (this.closeTries[h]! < CLOSE_TRIES) { this.closeTries[h]!++; this.state[h]! &= ~St.CloseIssued; }
          else if (this.kind[h] === Kind.Fd && !(this.state[h]! & St.KeepFd)) native!.closeFd(this.fd[h]!);
          else if (this.kind[h] === Kind.Direct) this.slotsLost++;
        }
        return this.maybeRelease(h);
      default: return this.maybeRelease(h);   // cancel, nop
    }
  }

  private onRecv(h: number, res: number, flags: number, more: boolean): void {
    if (!more) this.state[h]! &= ~(St.RecvArmed | St.RecvCancel);
    if (res > 0) {
      const bid = flags >>> 16;
      this.counters.bytesRead += res;
      const st = this.state[h]!;
      if (!(st & St.Closing) || (st & St.CloseAfterDrain)) {
        if ((st & (St.Paused)) || this.stash[h] !== undefined) {
          // paused (or older bytes still held): no read event until resume, in order
          (this.stash[h] ??= []).push(copyOf(this.recvPool, bid * this.bufSize, res));
          this.recycleList[this.nrec++] = bid;
        } else {
          // recycled unless the handler kept it (holdBuffer: then releaseBuffer returns it, once — also when it did so
          // within the same handler)
          try { this.emitRead(h, res, this.recvPool, bid * this.bufSize, bid); }
          finally { if (!this.readHeld) this.recycleList[this.nrec++] = bid; }
        }
      } else this.recycleList[this.nrec++] = bid;
    } else {
      // no bytes: a buffer is never attached to such a completion by today's kernels, but one would go back at once
      if (flags & CqeFlag.Buffer) this.recycleList[this.nrec++] = flags >>> 16;
    }
    if (res > 0) { /* handled above */ } else if (res === 0) {
      this.state[h]! |= St.Eof;
      if (!(this.state[h]! & St.Closing)) {
        if ((this.state[h]! & (St.Paused)) || this.stash[h] !== undefined) (this.stash[h] ??= []).push(EOF_MARK);
        else this.emit('read', h, 0);
      }
    } else if (res === ENOBUFS) {
      this.counters.enobufs++;          // the data is still in the socket: re-armed below once buffers return
    } else if (res !== ECANCELED) {
      this.state[h]! |= St.Errored;
      if (!(this.state[h]! & St.Closing)) this.emit('error', h, res);
    }
    if (!more) {
      if (this.state[h]! & St.Closing) this.maybeRelease(h);
      else { this.syncRecv(h); if (this.state[h]! & St.Installing) this.startInstall(h); }
    }
  }

  // `multi`: the listener's keep-accepting request (a multishot accept, or an ACCEPT_KEEP single), re-armed when it ends
  private onAccept(h: number, res: number, more: boolean, direct: boolean, multi: boolean): void {
    const st = this.state[h]!;
    if (!more && multi) this.state[h]! &= ~(St.AcceptMulti | St.AcceptCancel);
    if (res >= 0) {
      if (st & St.Closing) {   // raced with unregister: refuse cleanly
        this.stage(Op.Close, ORPHAN, res, direct ? RowFlag.Fixed : 0, 0, 0, 0, Op.Close);
      } else {
        const nh = this.allocHandle(direct ? Kind.Direct : Kind.Fd, undefined);
        if (nh < 0) {
          this.stage(Op.Close, ORPHAN, res, direct ? RowFlag.Fixed : 0, 0, 0, 0, Op.Close);
          this.emitCode('listener-error', h, EMFILE, MpCode.LIMIT);
        } else {
          this.fd[nh] = res;
          this.rearmDelayMs = 0;
          if (this.acceptStalled.size > 0) this.acceptStalled.delete(h);
          if (direct) this.directOpen++;
          else if (this.fallbackListeners.has(h)) this.counters.tableFullFallbacks++;
          this.counters.accepted++;
          if (direct && more && !(st & St.AcceptCancel) && this.slotsFree() <= this.burstSlots) {
            // the table is nearly full: end the multishot accept before a burst overruns the table (it re-arms as
            // reserved single accepts when its final completion comes)
            this.state[h]! |= St.AcceptCancel;
            this.stage(Op.CancelUd, h, -1, 0, h, (Op.Accept << 24) | this.gen[h]!, 0, Op.CancelUd);
          }
          this.emit('accept', nh, h, undefined, 0, h);
        }
      }
    } else if (res === ENFILE && direct) {
      // the table filled up under an accept (slots taken outside this channel's count): the kernel has closed that
      // connection; accept regular fds until slots free up, and say so once
      this.enterFallback(h);
    } else if (res === EMFILE || res === ENFILE || res === ENOMEM || res === ENOBUFS) {
      if (!(st & St.Closing)) {
        this.rearmWaiters.add(h);
        this.scheduleRearm();
        // said once per episode (until an accept succeeds again), not at each retry
        if (!this.acceptStalled.has(h)) { this.acceptStalled.add(h); this.emit('listener-error', h, res); }
      }
      if (!more) this.maybeRelease(h);
      return;
    } else if (res !== ECANCELED) {
      // the listening socket itself is unusable (closed by its owner, no longer listening): accepting stops (no
      // re-arm: it would fail again at once); any other failure is one connection's (ECONNABORTED…), accepting goes on
      if (res === EBADF || res === ENOTSOCK || res === EINVAL || res === EOPNOTSUPP || res === EFAULT) this.state[h]! &= ~St.Reading;
      if (!(st & St.Closing)) this.emit('listener-error', h, res);
    }
    if (!more) {
      if (this.state[h]! & St.Closing) this.maybeRelease(h);
      else if (multi && (this.state[h]! & St.Reading)) this.armAccept(h);   // multishot ended (table full, error, mode switch): re-arm
    }
  }

  private onConnect(h: number, res: number): void {
    const slot = this.addrSlot[h]!;
    if (slot >= 0) { this.aFree[this.aTop++] = slot; this.addrSlot[h] = -1; }
    this.state[h]! &= ~St.Connecting;
    if (this.state[h]! & St.Closing) {
      // a graceful disconnect() made while connecting: the queued bytes go first (then the close, afterSend);
      // connected or not, anything else closes now
      if (res === 0 && (this.state[h]! & St.CloseAfterDrain)) { if (this.sHead[h]! >= 0) this.sendNext(h); return; }   // (an overflow waits for chunks)
      if (this.state[h]! & St.CloseAfterDrain) { this.state[h]! &= ~St.CloseAfterDrain; this.dropQueue(h); this.finishClose(h); return; }
      return this.maybeRelease(h);
    }
    if (res === 0) {
      this.emit('connect', h, 0);
      if (this.state[h]! & St.Closing) return;
      this.syncRecv(h);
      // what was written before (or in the connect handler) goes out now; a pending end() waits for it
      if (this.sFly[h] === 0 && this.sHead[h]! >= 0) this.sendNext(h);
      this.shutdownIfDrained(h);
    } else {
      this.state[h]! |= St.Errored;
      this.emit('error', h, res);
    }
  }

  // ---- handles ----------------------------------------------------------------------------------------------
  /**
   * mp_register: makes a handle for a listener member (chosen by `cpuMask` among the listener's partitions) or
   * for a connected socket fd (the channel owns it from now on; `unregister` gives it back). Returns the handle.
   */
  register(target: Listener | number, cookie?: unknown, options: RegisterOptions = {}): number {
    if (this.closed) throw new MegapipeError(MpCode.CLOSED, 'register: the channel is closed');
    if (typeof target === 'number') {
      if (!Number.isInteger(target) || target < 0) throw argError('target', 'a Listener or a socket fd (non-negative integer)', target);
      const h = this.allocHandle(Kind.Fd, cookie);
      if (h < 0) throw new MegapipeError(MpCode.LIMIT, `register: maxHandles (${this.limits.maxHandles}) handles are open`);
      this.fd[h] = target;
      return h;
    }
    const l = ChannelCore.listenerArg(target);
    if (l.closed) throw new MegapipeError(MpCode.CLOSED, 'register: the listener is closed');
    if (l.fds.length === 0) throw argError('target', 'a native Listener (from listen())', 'a portable listener');
    const member = options.member ?? l.memberFor(options.cpuMask);
    if (!Number.isInteger(member) || member < 0 || member >= l.fds.length) throw rangeError('member', `an integer in 0..${l.fds.length - 1}`, member);
    const h = this.allocHandle(Kind.Listener, cookie);
    if (h < 0) throw new MegapipeError(MpCode.LIMIT, `register: maxHandles (${this.limits.maxHandles}) handles are open`);
    // the channel's own descriptor for the member (closed when the handle goes): accepts are armed on a number that
    // stays this listening socket's, whatever the Listener's owner does with its own (closing it, its number reused)
    const fd = native!.dupFd(l.fds[member]!);
    if (fd < 0) { this.freeHandle(h); throw errnoError(fd, 'register: dup'); }
    this.fd[h] = fd;
    return h;
  }

  /**
   * mp_accept: accept connections on listener `h`. `count` Infinity (default) keeps accepting (multishot) until
   * `unregister`; a finite count accepts exactly that many. `lwsocket` (default true) makes each connection a
   * direct descriptor; false, a regular fd. Each connection arrives as an `accept` event with its new handle.
   */
  accept(h: number, options: AcceptOptions = {}): void {
    this.check(h, 'accept');
    if (this.kind[h] !== Kind.Listener) throw new MegapipeError(MpCode.BAD_HANDLE, `accept: handle ${h} is not a listener`);
    const count = options.count ?? Infinity;
    if (count !== Infinity && (!Number.isInteger(count) || count < 1 || count > 4096)) throw rangeError('count', 'Infinity or an integer in 1..4096', count);
    const lw = options.lwsocket ?? true;
    if (typeof lw !== 'boolean') throw argError('lwsocket', 'a boolean', lw);
    this.counters.requests++;
    if (!lw) this.state[h]! |= St.AcceptFdMode; else this.state[h]! &= ~St.AcceptFdMode;
    if (count === Infinity) {
      this.state[h]! |= St.Reading;   // "keep accepting"
      if (!(this.state[h]! & St.AcceptMulti)) this.armAccept(h, true);
    } else {
      // each direct accept reserves its slot (see armAccept); those beyond the free slots accept regular fds
      for (let i = 0; i < count; i++) {
        const direct = !(this.state[h]! & St.AcceptFdMode) && this.slotsFree() > 0;
        if (direct) this.directReserved++;
        else if (!(this.state[h]! & St.AcceptFdMode)) this.counters.tableFullFallbacks++;
        this.stage(Op.Accept, h, this.fd[h]!, 0, 0, 0, direct ? 1 : 0, direct ? Op.AcceptOne : Op.AcceptOneFd);
      }
    }
  }

  // Arms the keep-accepting request of listener `h` (AcceptMulti). A direct accept takes a slot of the table after
  // the kernel has dequeued the connection, and on a full table (-ENFILE) the kernel closes that connection: so a
  // multishot direct accept, which takes as many slots as connections are queued, runs only while more than
  // `burstSlots` (the most an accept queue holds) are free; below that, one single accept at a time with its slot
  // reserved; with no slot free, regular fds (MP_ERR_TABLE_FULL, once) until a slot frees up (freeConn).
  private armAccept(h: number, deferError = false): void {
    this.state[h]! |= St.AcceptMulti;
    if (!(this.state[h]! & St.AcceptFdMode)) {
      const free = this.slotsFree();
      if (free > this.burstSlots) { this.stage(Op.Accept, h, this.fd[h]!, 0, 1, 0, 1, Op.Accept); return; }
      if (free > 0) { this.directReserved++; this.stage(Op.Accept, h, this.fd[h]!, 0, 0, 0, 1, ACCEPT_KEEP); return; }
      this.enterFallback(h, deferError);
    }
    this.stage(Op.Accept, h, this.fd[h]!, 0, 1, 0, 0, Op.AcceptFd);
  }

  // Listeners whose accept stopped for want of a descriptor or memory (EMFILE, ENFILE, ENOMEM, ENOBUFS) try again when
  // one of this channel's handles closes (freeConn) — and after a delay, since what frees up may be someone else's
  // (like nginx's accept retry): from ACCEPT_RETRY_MIN_MS, doubling up to ACCEPT_RETRY_MAX_MS, back to the start after
  // a successful accept.
  private scheduleRearm(): void {
    if (this.rearmTimer !== undefined || this.closed) return;
    this.rearmDelayMs = Math.min(Math.max(ACCEPT_RETRY_MIN_MS, this.rearmDelayMs * 2), ACCEPT_RETRY_MAX_MS);
    this.rearmTimer = setTimeout(() => { this.rearmTimer = undefined; this.rearmAll(); }, this.rearmDelayMs);
  }

  private rearmAll(): void {
    for (const l of this.rearmWaiters) if (this.isOpen(l) && !(this.state[l]! & (St.Closing | St.AcceptMulti)) && (this.state[l]! & St.Reading)) this.armAccept(l);
    this.rearmWaiters.clear();
  }

  private slotsFree(): number { return this.tableSlots - this.directOpen - this.directReserved - this.slotsLost; }

  // Listener `h` accepts regular fds until a direct slot frees up; says so once (an error event, MP_ERR_TABLE_FULL).
  private enterFallback(h: number, deferError = false): void {
    const st = this.state[h]!;
    if (st & St.AcceptFdMode) return;
    this.state[h] = st | St.AcceptFdMode;
    this.fallbackListeners.add(h);
    if (st & St.Closing) return;
    if (!deferError) { this.emitCode('listener-error', h, ENFILE, MpCode.TABLE_FULL); return; }
    const g = this.gen[h]!;   // from within accept(): not re-entrantly
    queueMicrotask(() => { if (this.gen[h] === g && this.isOpen(h) && !(this.state[h]! & St.Closing)) this.emitCode('listener-error', h, ENFILE, MpCode.TABLE_FULL); });
  }

  /** mp_read: keep receiving on connection `h`; data arrives as `read` events until EOF, an error or `disconnect`. */
  read(h: number): void {
    this.checkConn(h, 'read');
    this.counters.requests++;
    this.state[h]! |= St.Reading;
    this.syncRecv(h);
  }

  protected syncReading(h: number): void { this.syncRecv(h); }

  // Brings the kernel's receive request in line with what the handle wants.
  private syncRecv(h: number): void {
    if (this.stash[h] !== undefined && (this.state[h]! & St.Reading) && !(this.state[h]! & (St.Paused | St.Closing))) {
      // resumed with bytes held back: deliver them first — never from within the caller's resume()/read() (it may be
      // a handler: the event it is handling must stay as it is): inside a batch, right after the completion being
      // handled (deliverStashDue); else as a microtask. Newer bytes join the stash meanwhile, in order.
      if (this.inBatch) this.stashDue.push(h, this.gen[h]!);
      else { const g = this.gen[h]!; queueMicrotask(() => { if (this.gen[h] === g && this.isOpen(h)) { this.deliverStash(h); this.syncRecv(h); } }); }
    }
    const st = this.state[h]!;
    const want = (st & St.Reading) !== 0 && (st & (St.Paused | St.Eof | St.Closing | St.Errored | St.Installing | St.Connecting)) === 0;
    if (want) {
      if (!(st & St.RecvArmed)) {
        // the first receive of a connection is single-shot: a short-lived connection (one request, then close) has
        // nothing left armed to cancel when it closes; a connection that reads on gets a multishot one next
        this.state[h] = st | St.RecvArmed | St.RecvSeen;
        this.stage(Op.Recv, h, this.fd[h]!, this.fixed(h), 0, 0, (st & St.RecvSeen) !== 0 ? 0 : 1, Op.Recv);
      }
    } else if ((st & (St.RecvArmed | St.RecvCancel)) === St.RecvArmed) {
      this.state[h] = st | St.RecvCancel;
      this.stage(Op.CancelUd, h, -1, 0, h, (Op.Recv << 24) | this.gen[h]!, 0, Op.CancelUd);
    }
  }

  // Stashes due for delivery inside a batch (see syncRecv), [handle, generation] pairs: delivered between completions.
  private deliverStashDue(): void {
    const due = this.stashDue;
    for (let i = 0; i < due.length; i += 2) {
      const h = due[i]!;
      if (this.gen[h] !== due[i + 1] || !this.isOpen(h) || this.closed) continue;
      this.deliverStash(h);
      this.syncRecv(h);
    }
    due.length = 0;
  }

  // Emits the read events held back while `h` was paused, oldest first, until it pauses again or closes (`all`:
  // regardless of pausing, before the connection leaves the channel through toFd).
  private deliverStash(h: number, all = false): void {
    const q = this.stash[h];
    while (q !== undefined && this.stash[h] === q && q.length > 0 && (all || !(this.state[h]! & (St.Paused | St.Closing)))) {
      const b = q.shift()!;
      if (q.length === 0) this.stash[h] = undefined;
      if (b === EOF_MARK) this.emit('read', h, 0);
      else this.emit('read', h, b.byteLength, b, 0);
    }
  }

  /** Bytes written to `h` and not yet acknowledged by the kernel. */
  pendingBytes(h: number): number { return this.isOpen(h) ? this.pend[h]! : 0; }

  /**
   * mp_write: queue bytes for sending on `h`, in order. The bytes are copied before `write` returns (the caller
   * may reuse `data` at once). At most one send per connection is in the kernel; what is written meanwhile is
   * coalesced behind it and partial sends are completed. Returns false when the queued bytes exceed the high-water
   * mark (and, by default, receiving pauses until they fall below the low-water mark).
   */
  write(h: number, data: Uint8Array, offset?: number, length?: number): boolean {
    if (!this.writable(h)) this.checkWritable(h, 'write');
    return this.queueCopy(h, data, offset ?? 0, UringChannel.bytesLength(data, offset, length));
  }

  // Checks a write's bytes arguments without allocating (the hot path) and returns the length; throws naming the bad one.
  private static bytesLength(data: Uint8Array, offset: number | undefined, length: number | undefined): number {
    if (!(data instanceof Uint8Array)) ChannelCore.bytesArgs(data, offset, length);
    const off = offset ?? 0;
    const len = length ?? data.byteLength - off;
    if (!(off >= 0 && len >= 0 && off + len <= data.byteLength) || !Number.isInteger(off) || !Number.isInteger(len)) ChannelCore.bytesArgs(data, offset, length);
    return len;
  }

  // A connection `h` can be written to (else checkWritable says why). Inline checks: write is the hot path.
  private writable(h: number): boolean {
    return !this.closed && (h >>> 0) === h && h < this.kind.length && this.kind[h] !== Kind.Free && this.kind[h] !== Kind.Listener && !(this.state[h]! & (St.Closing | St.WriteEnded));
  }

  // write's work once its arguments are checked: the bytes copied into the send chain (or the overflow list).
  private queueCopy(h: number, data: Uint8Array, off: number, len: number): boolean {
    this.counters.requests++;
    if (this.state[h]! & St.Errored) return false;
    if (len === 0) return this.pend[h]! <= this.limits.highWaterMark;
    this.pend[h]! += len;
    const of = this.overflow[h];
    if (of !== undefined) of.bufs.push(copyOf(data, off, len));
    else this.append(h, data, off, len);
    return this.queued(h);
  }

  // After bytes were queued on `h`: start a send if none is in flight; false when above the high-water mark.
  private queued(h: number): boolean {
    if (this.sFly[h] === 0 && !(this.state[h]! & St.Connecting)) this.sendNext(h);
    return this.pend[h]! <= this.limits.highWaterMark || this.aboveHwm(h);
  }

  // Starts an overflow list for `h` with `item` (the send chain is at its budget or the arena is out of chunks).
  private overflowWith(h: number, item: Uint8Array | FilePiece): void {
    this.overflow[h] = { bufs: [item], off: 0 };
    if (this.cTop === 0) this.chunkWaiters.push(h);
  }

  private aboveHwm(h: number): false {
    if (!(this.state[h]! & St.AboveHwm)) {
      this.state[h]! |= St.AboveHwm;
      if (this.pauseReadsAboveHwm) { this.state[h]! |= St.PausedHwm; this.syncRecv(h); }
    }
    return false;
  }

  /** mp_writev: `write` of several buffers, one after another (they coalesce into one send when they fit). */
  writev(h: number, chunks: readonly Uint8Array[]): boolean {
    ChannelCore.chunksArg(chunks);
    this.checkWritable(h, 'writev');
    let ok = true;
    for (const c of chunks) ok = this.write(h, c);
    return ok;
  }

  /** Writes a Latin-1 string (protocol text) without an intermediate Buffer. Same contract as `write`. */
  writeAscii(h: number, text: string): boolean {
    if (typeof text !== 'string') throw argError('text', 'a string', text);
    const n = text.length;
    // fast path: an open connection with no overflow, and the text fits in its tail chunk or in a new one
    if (n > 0 && this.writable(h) && this.overflow[h] === undefined && !(this.state[h]! & St.Errored)) {
      let t = this.sTail[h]!;
      if (t < 0 || this.chunk - this.cEnd[t]! < n) {
        if (n > this.chunk || this.held[h]! >= this.maxChunksPerConn || this.cTop === 0) return this.write(h, Buffer.from(text, 'latin1'));
        t = this.linkChunk(h);
      }
      this.arena.write(text, t * this.chunk + this.cEnd[t]!, n, 'latin1');
      this.cEnd[t]! += n;
      this.pend[h]! += n;
      this.counters.requests++;
      return this.queued(h);
    }
    return this.write(h, Buffer.from(text, 'latin1'));
  }

  /**
   * See Channel.writeNoCopy: bytes sent from `data` itself (a chunk of the send chain marks their place), kept alive
   * by the channel until no send reads them. Shorter than limits.noCopyMinBytes: copied, like `write`.
   */
  writeNoCopy(h: number, data: Uint8Array, offset?: number, length?: number): boolean {
    if (!this.writable(h)) this.checkWritable(h, 'writeNoCopy');
    const off = offset ?? 0, len = UringChannel.bytesLength(data, offset, length);
    if (len === 0 || len < this.limits.noCopyMinBytes || off + len > REF_END) return this.queueCopy(h, data, off, len);
    this.counters.requests++;
    if (this.state[h]! & St.Errored) return false;
    this.pend[h]! += len;
    const of = this.overflow[h];
    if (of !== undefined) of.bufs.push(data.subarray(off, off + len));
    else if (!this.appendRef(h, data, off, len)) this.overflowWith(h, data.subarray(off, off + len));
    return this.queued(h);
  }

  // Queues `b[off, off+len)` to be sent from `b` itself: a chunk of its own marks the place (see cMark). False when
  // the connection's chunk budget or the arena has no chunk for it.
  private appendRef(h: number, b: Uint8Array, off: number, len: number): boolean {
    if (this.held[h]! >= this.maxChunksPerConn || this.cTop === 0) return false;
    const r = native!.channelRefSet(this.ch, this.cFree[this.cTop - 1]!, b);
    if (r !== 0) throw errnoError(r, 'writeNoCopy');
    const c = this.linkChunk(h);
    this.cEnd[c] = this.chunk; this.cMark[c] = MARK_REF;
    this.cRef[c] = b; this.cRefOff[c] = off; this.cRefLen[c] = len;
    this.counters.writesNoCopy++;
    return true;
  }

  // Takes a free chunk (the caller checked that one is free and that `h` may hold another) and links it, empty, at
  // the tail of `h`'s send chain.
  private linkChunk(h: number): number {
    const t = this.sTail[h]!, c = this.cFree[--this.cTop]!;
    this.cNext[c] = -1; this.cEnd[c] = 0;
    if (t >= 0) this.cNext[t] = c; else { this.sHead[h] = c; this.sOff[h] = 0; }
    this.sTail[h] = c;
    this.held[h]!++;
    return c;
  }

  private append(h: number, src: Uint8Array, off: number, len: number): void {
    const C = this.chunk;
    while (len > 0) {
      const t = this.sTail[h]!;
      if (t >= 0 && this.cEnd[t]! < C) {
        const n = Math.min(len, C - this.cEnd[t]!);
        copyInto(this.arena, t * C + this.cEnd[t]!, src, off, n);
        this.cEnd[t]! += n; off += n; len -= n;
        continue;
      }
      if (this.held[h]! >= this.maxChunksPerConn || this.cTop === 0) break;
      this.linkChunk(h);
    }
    if (len > 0) this.overflowWith(h, copyOf(src, off, len));
  }

  /** See Channel.sendFile. */
  sendFile(h: number, fd: number, position: number, length: number): Promise<void> {
    const early = this.sendFileStart(h, fd, position, length, false);
    if (early !== null) return early;
    return new Promise<void>((resolve, reject) => {
      const p = newPiece(fd, position, length, h, null, () => resolve(), reject);
      this.pieces.add(p);
      this.pend[h]! += length;
      if (length >= this.limits.spliceMinBytes && this.spliceOk && this.splHeld[h] === 0) {
        p.pipe = this.takePipe();
        if (p.pipe !== null) { this.splHeld[h] = 1; this.counters.filesSpliced++; } else this.counters.spliceNoPipe++;
      }
      const of = this.overflow[h];
      if (of !== undefined) of.bufs.push(p);
      else if (!this.appendPiece(h, p)) this.overflowWith(h, p);
      if (this.pend[h]! > this.limits.highWaterMark) this.aboveHwm(h);
      if (this.sFly[h] === 0 && !(this.state[h]! & St.Connecting)) this.sendNext(h);
    });
  }

  /** See Channel.readFile. */
  readFile(fd: number, position: number, length: number): Promise<Buffer> {
    const early = this.readFileStart(fd, position, length);
    if (early !== null) return early;
    const out = Buffer.allocUnsafe(length);
    if (length === 0) return Promise.resolve(out);
    return new Promise<Buffer>((resolve, reject) => {
      // a read holds the event loop until it settles (settle), as an open handle does
      this.loopUse(1);
      const p = newPiece(fd, position, length, -1, out, (b) => resolve(b!), reject);
      this.pieces.add(p);
      this.pumpRead(p);
      if (p.left > 0 && p.reading === 0) this.readWaiters.push(p);   // no chunk free: wait for one
    });
  }

  private appendPiece(h: number, p: FilePiece): boolean {
    return p.pipe !== null ? this.appendSplice(h, p) : this.appendFile(h, p);
  }

  // Queues a spliced piece: a chunk of its own in the send chain marks its place (full, so that later writes go into
  // a new chunk behind it). False when the connection's chunk budget or the arena has no chunk for it.
  private appendSplice(h: number, p: FilePiece): boolean {
    if (this.held[h]! >= this.maxChunksPerConn || this.cTop === 0) return false;
    const c = this.linkChunk(h);
    this.cEnd[c] = this.chunk; this.cMark[c] = MARK_SPLICE; this.cPiece[c] = p;
    return true;
  }

  // Gives reads to piece `p` of connection `h` into its send chain (the free end of the tail chunk, then new chunks)
  // as far as the connection's chunk budget and the arena allow. True when every byte of it has a read.
  private appendFile(h: number, p: FilePiece): boolean {
    const C = this.chunk;
    while (p.left > 0) {
      let c = this.sTail[h]!, at = 0;
      if (c >= 0 && this.cEnd[c]! < C && this.cFill[c] === 0) at = this.cEnd[c]!;
      else {
        if (this.held[h]! >= this.maxChunksPerConn || this.cTop === 0) return false;
        c = this.linkChunk(h);
      }
      const n = Math.min(p.left, C - at);
      this.cFill[c] = 1; this.cFillAt[c] = at; this.cFillEnd[c] = this.cEnd[c] = at + n; this.cPiece[c] = p;
      this.stageRead(c, at, n, p);
    }
    return true;
  }

  // readFile: reads into free chunks (detached from any connection), at most maxChunksPerConn at once.
  private pumpRead(p: FilePiece): void {
    while (p.left > 0 && p.failed === null && p.reading < this.maxChunksPerConn && this.cTop > 0) {
      const c = this.cFree[--this.cTop]!;
      const n = Math.min(p.left, this.chunk);
      this.cFill[c] = 1; this.cFillAt[c] = 0; this.cFillEnd[c] = n; this.cPiece[c] = p;
      this.cNext[c] = p.pos - p.outBase;   // where the bytes go in p.out
      this.stageRead(c, 0, n, p);
    }
  }

  private stageRead(c: number, at: number, n: number, p: FilePiece): void {
    const pos = p.pos;
    p.pos += n; p.left -= n; p.reading++;
    this.stageRow(Op.Read, p.fd, posFlags(pos), READ_TAG | c, Op.Read << 24, c * this.chunk + at, n, posLow(pos));
  }

  private onFileRead(c: number, res: number): void {
    const p = this.cPiece[c];
    if (p === undefined || this.cFill[c] === 0) return;
    const at = this.cFillAt[c]!, n = this.cFillEnd[c]! - at;
    this.cFill[c] = 0;
    this.cPiece[c] = undefined;
    p.reading--;
    if (this.cOrphan[c] !== 0) {   // its connection dropped it meanwhile
      this.releaseOrphan(c);
      this.settle(p);
      return;
    }
    if (p.h < 0) {
      // readFile: copy out, free the chunk, read on
      if (p.failed === null) {
        const to = this.cNext[c]!;
        if (res < 0) p.failed = errnoError(res, 'readFile');
        else {
          if (res > 0) this.arena.copy(p.out!, to, c * this.chunk, c * this.chunk + res);
          if (res < n) { p.eof = Math.min(p.eof, to + res); p.left = 0; }   // the file ended: read no further
        }
      }
      this.cFree[this.cTop++] = c;
      if (p.failed === null) this.pumpRead(p);
      this.settle(p);
      this.pumpChunkWaiters();
      return;
    }
    const h = p.h;
    if (res !== n) {
      // a read error, or the file is shorter than promised: the connection's stream cannot continue in order
      p.failed ??= res < 0 ? errnoError(res, 'sendFile') : new MegapipeError(MpCode.SHORT_FILE, `sendFile: the file ended ${n - Math.max(res, 0)} bytes early`);
      this.cEnd[c] = at;   // still in the chain: failSends' dropQueue frees it with the rest
      this.settle(p);
      this.failSends(h, res < 0 ? res : EIO, res < 0 ? undefined : MpCode.SHORT_FILE);
      return;
    }
    this.settle(p);
    if (this.sFly[h] === 0 && !(this.state[h]! & St.Connecting)) this.sendNext(h);
  }

  // Resolves or rejects a piece once none of its reads is in flight.
  private settle(p: FilePiece): void {
    if (p.reading > 0 || !this.pieces.has(p)) return;
    if (p.failed === null && p.left > 0) return;
    this.pieces.delete(p);
    if (p.h < 0) this.loopUse(-1);
    if (p.failed !== null) { p.reject(p.failed); return; }
    p.resolve(p.out === null ? undefined : p.eof < p.out.length ? p.out.subarray(0, p.eof) : p.out);
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
      if (!bytes || (b.byteLength - of.off >= this.limits.noCopyMinBytes && b.byteLength <= REF_END)) {
        if (!(bytes ? this.appendRef(h, b, of.off, b.byteLength - of.off) : this.appendPiece(h, b))) {
          this.overflow[h] = of;
          if (this.cTop === 0) this.chunkWaiters.push(h);
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

  private sendNext(h: number): void {
    for (;;) {
      const c = this.sHead[h]!;
      if (c < 0) return;
      const mark = this.cMark[c]!;
      if (mark === MARK_SPLICE) { if (this.spliceNext(h, c)) return; continue; }
      // a chunk's own bytes in the arena, or a no-copy write's in its reference slot (slot c, from cRefOff)
      const ref = mark === MARK_REF;
      const filling = this.cFill[c] !== 0;
      const start = this.sOff[h]!, end = ref ? this.cRefLen[c]! : filling ? this.cFillAt[c]! : this.cEnd[c]!;
      if (end > start) {
        this.sFly[h] = end - start;
        this.sFlyC[h] = c;
        // the bytes right before a spliced file or a no-copy write (a response head): MSG_MORE, so they go out in full
        // segments with it
        const nx = this.cNext[c]!;
        const more = nx >= 0 && this.cMark[nx] !== 0 && !filling && (ref || end === this.cEnd[c]) ? RowFlag.More : 0;
        if (ref) this.stage(Op.Send, h, this.fd[h]!, this.fixed(h) | RowFlag.Ref | more, c, end - start, this.cRefOff[c]! + start, Op.Send);
        else this.stage(Op.Send, h, this.fd[h]!, this.fixed(h) | more, c * this.chunk + start, end - start, 0, Op.Send);
        return;
      }
      if (filling) return;   // the rest waits for its file read (onFileRead sends it)
      if (!ref && end < this.chunk && this.cNext[c]! < 0) return;   // tail chunk, all sent: keep it for appends
      this.popChunk(h);
    }
  }

  private popChunk(h: number): void {
    const c = this.sHead[h]!;
    const next = this.cNext[c]!;
    this.sHead[h] = next; this.sOff[h] = 0;
    if (next < 0) this.sTail[h] = -1;
    this.held[h]!--;
    if (this.cMark[c] === MARK_SPLICE) {
      // the kernel never touches a splice marker's memory: free at once; the piece ends when its operations have
      const p = this.cPiece[c]!;
      this.cPiece[c] = undefined;
      this.freeChunk(c);
      if (p.left > 0 || p.inPipe > 0 || p.ops > 0) {
        p.failed ??= new MegapipeError(MpCode.CLOSED, `sendFile: connection ${h} closed`);
        p.dropped = true;
        if (p.ops > 0) { this.cancelSplicePoll(h); return; }
      }
      this.endSplice(p);
      return;
    }
    // dropped (dropQueue) while the kernel still uses it: freed when the last of those operations completes
    const users = this.cFill[c]! + (this.sFly[h] !== 0 && this.sFlyC[h] === c ? 1 : 0);
    if (users !== 0) {
      this.cOrphan[c] = users;
      if (this.cFill[c] !== 0) this.cPiece[c]!.failed ??= new MegapipeError(MpCode.CLOSED, `sendFile: connection ${h} closed`);
      return;
    }
    this.freeChunk(c);
  }

  // One kernel operation on a dropped chunk completed; the last one frees it.
  private releaseOrphan(c: number): void {
    if (--this.cOrphan[c]! !== 0) return;
    this.freeChunk(c);
    this.pumpChunkWaiters();
  }

  // A chunk no operation uses goes back to the free list, unmarked (a no-copy write's buffer is let go: nothing reads
  // it now).
  private freeChunk(c: number): void {
    if (this.cMark[c] !== 0) { this.cMark[c] = 0; this.cRef[c] = undefined; }
    this.cFree[this.cTop++] = c;
  }

  // ---- spliced sendFile ---------------------------------------------------------------------------------------
  // At the head of its connection's queue, a spliced piece runs in rounds, each one linked chain: SpliceIn (file ->
  // pipe, up to the pipe's capacity) -> Poll (the socket writable) -> SpliceOut (pipe -> socket, what fits), or, while
  // the pipe still holds bytes, Poll -> SpliceOut. The kernel runs splices in io-wq workers; both ends are nonblocking
  // (the pipe, the socket), so a worker never waits for a peer: the poll does, in the ring. A round ends when its last
  // completion is in (in any order); the next starts from what the pipe holds. sFly marks the round in flight, so no
  // other send starts meanwhile, and writes made after the sendFile wait behind its marker chunk.

  /** Starts the next round of the spliced piece at the head of `h`; false when the piece is done (marker popped). */
  private spliceNext(h: number, c: number): boolean {
    const p = this.cPiece[c]!;
    if (p.ops > 0) return true;
    if (p.inPipe === 0 && p.left === 0) { this.popChunk(h); return false; }
    const pipe = p.pipe!;
    if (this.handedOff) this.reclaim();
    if (this.rowsMax - this.nreq < 3) this.submitNow();   // one chain, one submission (a split chain still works)
    this.chainRows++;
    let n = p.inPipe;
    if (n === 0) {
      n = Math.min(p.left, pipe.cap);
      this.stage(Op.Splice, h, pipe.w, RowFlag.Link | posFlags(p.pos), p.fd, n, posLow(p.pos), Op.SpliceIn);
      p.ops++;
    }
    // SPLICE_F_MORE (MSG_MORE) while more of the file follows: full segments only, as nginx's tcp_nopush; the last
    // splice of the file pushes
    const more = p.left - (p.inPipe === 0 ? n : 0) > 0 ? RowFlag.More : 0;
    if (p.waitMs === 0) {
      this.stage(Op.Poll, h, this.fd[h]!, this.fixed(h) | RowFlag.Link, 0, 0, POLLOUT, Op.SplicePoll);
      p.ops++;
    } else if (p.inPipe > 0) {
      // the peer has half-closed: io_uring's poll always reports POLLRDHUP then, so it cannot wait for room in the send
      // buffer any more. The pipe still holds what the socket did not take: wait a little (doubling up to
      // SPLICE_WAIT_MAX_MS while nothing moves), then try again. (A fresh pipe-full goes out at once.)
      this.stage(Op.Timeout, h, -1, RowFlag.HardLink, p.waitMs, 0, 0, Op.SpliceWait);
      p.ops++;
    }
    this.stage(Op.Splice, h, this.fd[h]!, this.fixed(h) | RowFlag.NoOff | more, pipe.r, n, 0, Op.SpliceOut);
    p.ops++;
    this.chainRows--;
    this.spl[h] = p;
    this.sFly[h] = n;
    this.sFlyC[h] = c;
    if (this.nreq >= this.batch) this.submitNow();
    return true;
  }

  private onSplice(h: number, op: number, res: number): void {
    const p = this.spl[h]!;
    p.ops--;
    if (op === Op.SplicePoll) {
      // the poll came back without POLLOUT (only POLLRDHUP: the peer half-closed, and io_uring's poll reports it at
      // once every time from now on): later rounds wait on a timer instead (see spliceNext)
      if (res >= 0 && (res & POLLOUT) === 0 && p.waitMs === 0) p.waitMs = 1;
    } else if (op === Op.SpliceIn) {
      if (res > 0) { p.pos += res; p.left -= res; p.inPipe += res; p.moved = true; }   // short (not the file's end): the round ends, the next reads on
      else if (res !== EAGAIN && p.errRes === 0) {
        p.failed ??= res < 0 ? errnoError(res, 'sendFile') : new MegapipeError(MpCode.SHORT_FILE, `sendFile: the file ended ${p.left} bytes early`);
        p.errRes = res < 0 ? res : EIO; p.errCode = res < 0 ? undefined : MpCode.SHORT_FILE;
      }
    } else if (op === Op.SpliceOut) {
      if (res > 0) {
        p.inPipe -= res; p.wrote += res; p.moved = true;
        this.pend[h]! -= res;
        this.counters.bytesWritten += res;
      } else if (res < 0 && res !== EAGAIN && res !== ECANCELED && p.errRes === 0) {
        p.failed ??= errnoError(res, 'sendFile');
        p.errRes = res; p.errCode = undefined;
      }
    }
    if (p.ops > 0) {
      if (p.dropped) this.cancelSplicePoll(h);
      return;
    }
    // the round is over
    this.spl[h] = undefined;
    this.sFly[h] = 0; this.sFlyC[h] = -1;
    if (p.dropped) {
      this.endSplice(p);
      if (this.state[h]! & St.Closing) this.maybeRelease(h);
      return;
    }
    const wrote = p.wrote;
    p.wrote = 0;
    // a round that moved nothing (EAGAIN after the poll; not expected) is retried, a bounded number of times in a row;
    // on timed waits (after a half-close) it only waits longer: the application's deadlines bound a stalled peer
    if (p.waitMs > 0) p.waitMs = p.moved ? 1 : Math.min(p.waitMs * 2, SPLICE_WAIT_MAX_MS);
    p.idle = p.moved || p.waitMs > 0 ? 0 : p.idle + 1;
    p.moved = false;
    if (p.errRes === 0 && p.idle > SPLICE_IDLE_ROUNDS) {
      p.failed ??= errnoError(EIO, 'sendFile');
      p.errRes = EIO;
    }
    if (p.errRes !== 0) return this.failSends(h, p.errRes, p.errCode);
    this.afterSend(h, wrote);
  }

  // A poll of a dropped piece would wait for a peer that may never read again: cancel it (by user_data; if it is not
  // armed yet, the next completion of the chain tries again).
  private cancelSplicePoll(h: number): void {
    this.stage(Op.CancelUd, h, -1, 0, h, (Op.SplicePoll << 24) | this.gen[h]!, 0, Op.CancelUd);
  }

  // A spliced piece is done, failed or dropped, with nothing in flight: its pipe goes back to the pool (closed instead
  // if bytes are left in it), and its promise settles.
  private endSplice(p: FilePiece): void {
    const pipe = p.pipe;
    if (pipe !== null) {
      p.pipe = null;
      if (p.h >= 0) this.splHeld[p.h] = 0;
      if (p.inPipe === 0 && !this.closed) this.pipesFree.push(pipe);
      else { closePipe(pipe); this.pipesOpen--; }
    }
    if (p.failed === null) p.left = 0;
    this.settle(p);
  }

  private takePipe(): Pipe | null {
    const free = this.pipesFree.pop();
    if (free !== undefined) return free;
    if (this.pipesOpen >= this.limits.splicePipes) return null;
    const r = native!.pipeOpen(this.limits.splicePipeBytes);
    if (typeof r === 'number') return null;   // out of fds or memory: this sendFile reads into the arena instead
    this.pipesOpen++;
    return { r: r[0], w: r[1], cap: r[2] };
  }

  private onSend(h: number, res: number): void {
    const sent = this.sFly[h]!, fc = this.sFlyC[h]!;
    this.sFly[h] = 0;
    this.sFlyC[h] = -1;
    if (fc >= 0 && this.cOrphan[fc] !== 0) {
      // the queue was dropped (abort, failure) while this send read from it: nothing more to account
      this.releaseOrphan(fc);
      if (this.state[h]! & St.Closing) this.maybeRelease(h);
      return;
    }
    if (res < 0) return this.failSends(h, res, undefined);
    this.counters.bytesWritten += res;
    if (res !== sent && (this.state[h]! & St.CloseLinked)) {   // cut short (an error after some progress): the close has run
      this.dropQueue(h);
      this.maybeRelease(h);
      return;
    }
    this.pend[h]! -= res;
    this.sOff[h]! += res;
    const c = this.sHead[h]!;
    if (res === sent && this.sOff[h] === (this.cMark[c] === MARK_REF ? this.cRefLen[c] : this.cEnd[c]) && (this.cNext[c]! >= 0 || this.sTail[h] === c)) this.popChunk(h);
    this.afterSend(h, res);
  }

  // After `res` bytes of `h` went out (a send, or a splice round): queue more, wake waiters, finish a drain, events.
  private afterSend(h: number, res: number): void {
    if (this.overflow[h] !== undefined) this.refill(h);
    this.sendNext(h);
    this.pumpChunkWaiters();
    const st = this.state[h]!;
    if (this.sFly[h] === 0 && this.sHead[h]! < 0 && this.overflow[h] === undefined) {
      if (st & St.CloseAfterDrain) { this.state[h]! &= ~St.CloseAfterDrain; this.finishClose(h); return; }
      this.shutdownIfDrained(h);
      if (st & St.Installing) { this.startInstall(h); }
    }
    if ((st & St.AboveHwm) && this.pend[h]! <= this.limits.lowWaterMark) {
      this.state[h]! &= ~(St.AboveHwm | St.PausedHwm);
      this.syncRecv(h);
    }
    if (!(this.state[h]! & St.Closing)) { if (res > 0) this.emit('write', h, res); }
    else this.maybeRelease(h);
  }

  // The send stream of `h` is broken (a send failed, or a file read for it did): nothing queued can be sent in order.
  private failSends(h: number, res: number, code: string | undefined): void {
    if (res !== ECANCELED) this.state[h]! |= St.Errored;
    this.dropQueue(h);
    if (!(this.state[h]! & St.Closing) && res !== ECANCELED) {
      if (code === undefined) this.emit('error', h, res); else this.emitCode('error', h, res, code);
    }
    // a graceful close waiting for its queue to drain: the queue is gone now, so close (cancel what is pending)
    if (this.state[h]! & St.CloseAfterDrain) { this.state[h]! &= ~St.CloseAfterDrain; this.finishClose(h); return; }
    if (this.state[h]! & St.Closing) this.maybeRelease(h);
  }

  private pumpChunkWaiters(): void {
    while (this.chunkWaiters.length > 0 && this.cTop > 0) {
      const w = this.chunkWaiters.shift()!;
      if (this.kind[w] === Kind.Free || this.overflow[w] === undefined) continue;
      this.refill(w);
      if (this.sFly[w] === 0 && !(this.state[w]! & St.Connecting)) this.sendNext(w);
    }
    while (this.readWaiters.length > 0 && this.cTop > 0) {
      const p = this.readWaiters.shift()!;
      this.pumpRead(p);   // once it has a read in flight, its completions keep it going
      if (p.left > 0 && p.reading === 0 && p.failed === null) { this.readWaiters.unshift(p); break; }
    }
  }

  private dropQueue(h: number): void {
    while (this.sHead[h]! >= 0) this.popChunk(h);
    const of = this.overflow[h];
    this.overflow[h] = undefined;
    if (of !== undefined) {
      for (const b of of.bufs) {
        if (b instanceof Uint8Array) continue;
        b.failed ??= new MegapipeError(MpCode.CLOSED, `sendFile: connection ${h} closed`);
        if (b.pipe !== null) this.endSplice(b); else this.settle(b);
      }
    }
    this.pend[h] = 0;
    this.pumpChunkWaiters();
  }

  /**
   * Half-close: no more writes on `h` (they throw MP_ERR_CLOSED); once every queued byte is sent, the write side
   * shuts down (the peer reads EOF). Reading goes on until the peer closes or `disconnect`. Idempotent.
   */
  end(h: number): void {
    this.checkConn(h, 'end');
    const st = this.state[h]!;
    if (st & St.WriteEnded) return;
    this.counters.requests++;
    this.state[h] = st | St.WriteEnded;
    if (this.pend[h]! === 0 && this.sFly[h] === 0 && this.overflow[h] === undefined && !(st & St.Connecting)) this.shutdownWrite(h);
    else this.state[h]! |= St.ShutdownPending;
  }

  // A pending end() of `h` runs once nothing is queued or in flight.
  private shutdownIfDrained(h: number): void {
    if ((this.state[h]! & St.ShutdownPending) && this.sFly[h] === 0 && this.sHead[h]! < 0 && this.overflow[h] === undefined) this.shutdownWrite(h);
  }

  private shutdownWrite(h: number): void {
    this.state[h]! &= ~St.ShutdownPending;
    if (this.state[h]! & (St.Errored | St.Closing)) return;
    this.stage(Op.Shutdown, h, this.fd[h]!, this.fixed(h), 0, 0, SHUT_WR, Op.Shutdown);
  }

  // ---- closing --------------------------------------------------------------------------------------------
  /**
   * mp_disconnect: close connection `h`. Queued bytes are sent first (unless `abort`), receiving stops at once.
   * A `disconnect` event follows when every request on the handle has completed; the handle is then free.
   */
  disconnect(h: number, abort = false): void {
    ChannelCore.abortArg(abort);
    if (abort && this.isOpen(h) && (this.state[h]! & St.CloseAfterDrain)) {
      // a graceful close still draining: give up on the queued bytes
      this.state[h]! &= ~St.CloseAfterDrain;
      this.dropQueue(h);
      this.finishClose(h);
      return;
    }
    if (abort && this.isOpen(h) && (this.state[h]! & St.CloseLinked) && this.sFly[h]! > 0) {
      // a graceful close linked behind the send in flight: cancel that send (by user_data: the descriptor may be
      // closed and reused already); the linked close runs when it ends
      this.stage(Op.CancelUd, h, -1, 0, h, (Op.Send << 24) | this.gen[h]!, 0, Op.CancelUd);
      return;
    }
    this.checkConn(h, 'disconnect');
    this.counters.requests++;
    this.beginClose(h, abort);
  }

  /**
   * mp_unregister: remove `h` from the channel and cancel its pending operations. A listener keeps its socket (the
   * Listener owns it); a registered fd is left open for its owner; an lwsocket, which exists only in the channel,
   * is closed. A `disconnect` event follows once nothing is pending.
   */
  unregister(h: number): void {
    this.check(h, 'unregister');
    this.counters.requests++;
    if (this.kind[h] !== Kind.Direct) this.state[h]! |= St.KeepFd;
    this.beginClose(h, true);
  }

  private beginClose(h: number, abort: boolean): void {
    this.state[h]! |= St.Closing;
    this.rearmWaiters.delete(h);
    this.acceptStalled.delete(h);
    if (!abort && this.pend[h]! > 0 && !(this.state[h]! & St.Errored)) {
      if (!this.linkClose(h)) this.state[h]! |= St.CloseAfterDrain;
      this.syncRecv(h);   // stop receiving; sending goes on
      return;
    }
    if (this.kind[h] !== Kind.Listener) this.dropQueue(h);
    this.finishClose(h);
  }

  // A graceful close whose queued bytes all go in the one send staged last and not yet submitted (a response written
  // and the connection closed in one go): the close is staged right behind that send, hard-linked to it, so it runs
  // in the same submission once the send is done, whatever its result: no round trip through JavaScript between the
  // send's completion and the close. From here on nothing may be issued on the descriptor (it may be closed and
  // reused): the send is cancelled by user_data on an abort, and a short send is not continued (see onSend).
  // A link is never split across submissions: a flush always fits the submission queue (requestRows <= sqEntries).
  private linkClose(h: number): boolean {
    const st = this.state[h]!;
    const k = this.kind[h];
    if ((k !== Kind.Direct && k !== Kind.Fd) || (st & (St.KeepFd | St.Installing | St.Connecting)) || this.overflow[h] !== undefined || this.pend[h] !== this.sFly[h]) return false;
    if (this.handedOff) this.reclaim();
    const n = this.nreq;
    if (n === 0 || n === this.rowsMax) return false;
    const i = (n - 1) * ROW_I32, r = this.req;
    if (r[i] !== Op.Send || r[i + 3] !== h || r[i + 4] !== ((Op.Send << 24) | this.gen[h]!)) return false;
    r[i + 2]! |= RowFlag.HardLink;
    this.state[h] = st | St.CloseIssued | St.CloseLinked;
    this.stage(Op.Close, h, this.fd[h]!, this.fixed(h), 0, 0, 0, Op.Close);
    return true;
  }

  private finishClose(h: number): void {
    this.installs.get(h)?.reject(new MegapipeError(MpCode.CLOSED, `toFd: handle ${h} was closed`));
    this.installs.delete(h);
    if (this.inflight[h]! > 0) {
      // the close follows when the last completion is in (maybeRelease)
      const st = this.state[h]!;
      if (this.kind[h] !== Kind.Listener && this.sFly[h] === 0 && !(st & St.Connecting)) {
        // a connection with no send or connect in flight: the one request that can stay pending is its receive. Cancel it by user_data (a hash lookup; a cancel by fd walks every pending poll of the ring, twice),
        // or not at all when its cancel is on the way already (the usual graceful close: the receive was cancelled when
        // the close began). What else can be in flight (cancels, a shutdown, an fd install, a nop) completes by itself.
        if ((st & (St.RecvArmed | St.RecvCancel)) === St.RecvArmed) {
          this.state[h] = st | St.RecvCancel;
          this.stage(Op.CancelUd, h, -1, 0, h, (Op.Recv << 24) | this.gen[h]!, 0, Op.CancelUd);
        }
        return;
      }
      // cancel everything pending on the socket
      const fixed = this.kind[h] === Kind.Direct;
      this.stage(Op.CancelFd, h, this.fd[h]!, fixed ? RowFlag.Fixed : 0, 0, 0, 0, Op.CancelFd);
      return;
    }
    this.maybeRelease(h);
  }

  // Called after a final completion of a closing handle: closes the socket once nothing is pending, then frees.
  private maybeRelease(h: number): void {
    const st = this.state[h]!;
    if (!(st & St.Closing) || this.inflight[h]! > 0) return;
    if (st & St.CloseAfterDrain) return;
    if (!(st & St.CloseIssued)) {
      this.state[h] = st | St.CloseIssued;
      if (this.kind[h] === Kind.Direct) this.stage(Op.Close, h, this.fd[h]!, RowFlag.Fixed, 0, 0, 0, Op.Close);
      else if (this.kind[h] === Kind.Fd && !(st & St.KeepFd)) this.stage(Op.Close, h, this.fd[h]!, 0, 0, 0, 0, Op.Close);
      else this.stage(Op.Nop, h, 0, 0, 0, 0, 0, Op.Nop);   // a completion to deliver the final event from
      return;
    }
    const wasDirect = this.kind[h] === Kind.Direct;
    const fdKept = (st & St.KeepFd) && this.kind[h] === Kind.Fd ? this.fd[h]! : 0;
    try {
      this.emit('disconnect', h, fdKept);
    } finally {
      this.freeConn(h, wasDirect);
    }
  }

  private freeConn(h: number, wasDirect: boolean): void {
    if (this.kind[h] === Kind.Listener) native!.closeFd(this.fd[h]!);   // its dup (see register): nothing uses it now
    this.dropQueue(h);
    this.stash[h] = undefined;
    const slot = this.addrSlot[h]!;
    if (slot >= 0) { this.aFree[this.aTop++] = slot; this.addrSlot[h] = -1; }
    this.inflight[h] = 0;
    this.closeTries[h] = 0;
    this.freeHandle(h);
    if (wasDirect) {
      this.directOpen--;
      // a direct slot is free again: listeners that fell back to fds go back to lwsockets (cancel, re-arm direct)
      for (const l of this.fallbackListeners) {
        this.fallbackListeners.delete(l);
        if (!this.isOpen(l) || (this.state[l]! & St.Closing)) continue;
        this.state[l]! &= ~St.AcceptFdMode;
        if (this.state[l]! & St.AcceptMulti) this.stage(Op.CancelUd, l, -1, 0, l, (Op.AcceptFd << 24) | this.gen[l]!, 0, Op.CancelUd);
      }
    }
    // listeners that stopped for want of a handle, fd or slot: try again now that one is free
    if (this.rearmWaiters.size > 0) this.rearmAll();
  }

  // ---- clients and conversion ---------------------------------------------------------------------------------
  /**
   * Client side: opens a TCP connection to `host:port` (address literal or "localhost"). Returns the handle at once;
   * a `connect` event (or an `error` event with e.g. `ECONNREFUSED`) follows. Writes issued before the connect
   * completes are queued. Reading starts when `read(h)` has been called.
   */
  connect(host: string, port: number, cookie?: unknown, options: ConnectOptions = {}): number {
    if (this.closed) throw new MegapipeError(MpCode.CLOSED, 'connect: the channel is closed');
    [host, port] = ChannelCore.connectArgs(host, port, options);
    if (this.aTop === 0) throw new MegapipeError(MpCode.LIMIT, `connect: maxPendingConnects (${this.limits.maxPendingConnects}) connects are in flight`);
    const fd = native!.clientSocket(host, options.localAddress);
    const h = this.allocHandle(Kind.Fd, cookie);
    if (h < 0) { native!.closeFd(fd); throw new MegapipeError(MpCode.LIMIT, `connect: maxHandles (${this.limits.maxHandles}) handles are open`); }
    const slot = this.aFree[--this.aTop]!;
    this.fd[h] = fd;
    this.addrSlot[h] = slot;
    const len = native!.encodeSockaddr(this.ch, slot * SOCKADDR_SLOT_BYTES, host, port);
    this.state[h]! |= St.Connecting;
    this.counters.requests++;
    this.stage(Op.Connect, h, fd, 0, slot * SOCKADDR_SLOT_BYTES, len, 0, Op.Connect);
    return h;
  }

  /**
   * Converts connection `h` into a regular fd (IORING_OP_FIXED_FD_INSTALL, Linux 6.8) for legacy code such as
   * `new net.Socket({ fd })`. Queued writes are sent first; receiving stops (bytes already received were delivered
   * as `read` events). The handle then leaves the channel (a `disconnect` event follows) and the promise resolves
   * with the fd, which the caller owns. A regular-fd handle resolves with its own fd.
   */
  toFd(h: number): Promise<number> {
    try { this.checkConn(h, 'toFd'); } catch (e) { return Promise.reject(e); }
    if (this.kind[h] === Kind.Direct && !this.fdInstall) return Promise.reject(new MegapipeError(MpCode.UNSUPPORTED, 'toFd: this kernel lacks IORING_OP_FIXED_FD_INSTALL (Linux 6.8)'));
    if (this.installs.has(h)) return Promise.reject(new MegapipeError(MpCode.LIMIT, `toFd: a conversion of ${h} is in progress`));
    return new Promise((resolve, reject) => {
      this.installs.set(h, { resolve, reject });
      this.state[h]! |= St.Installing;
      this.syncRecv(h);
      if (this.sFly[h] === 0 && this.sHead[h]! < 0) this.startInstall(h);
    });
  }

  private startInstall(h: number): void {
    if (!(this.state[h]! & St.Installing) || (this.state[h]! & St.RecvArmed)) return;   // wait for the receive to end
    if (this.stash[h] !== undefined) {   // bytes received while paused are delivered first (the handler may close or write)
      this.deliverStash(h, true);
      if (this.state[h]! & St.Closing) return;
    }
    if (this.sFly[h] !== 0 || this.sHead[h]! >= 0 || this.overflow[h] !== undefined) return;   // and queued writes are sent first (onSend calls again)
    if (this.kind[h] === Kind.Fd) {
      this.state[h]! |= St.KeepFd;
      const p = this.installs.get(h);
      this.installs.delete(h);
      this.state[h]! &= ~St.Installing;
      this.beginClose(h, true);
      p?.resolve(this.fd[h]!);
      return;
    }
    this.stage(Op.FdInstall, h, this.fd[h]!, RowFlag.Fixed, 0, 0, 0, Op.FdInstallTag);
  }

  private onInstalled(h: number, res: number): void {
    const p = this.installs.get(h);
    this.installs.delete(h);
    this.state[h]! &= ~St.Installing;
    if (res >= 0) {
      this.beginClose(h, true);   // the slot goes; the new fd stays
      p?.resolve(res);
    } else {
      p?.reject(errnoError(res, 'toFd'));
      if (this.state[h]! & St.Closing) this.maybeRelease(h); else this.syncRecv(h);
    }
  }

  /**
   * The CPU that processed connection `h`'s packets (SO_INCOMING_CPU), to verify affinity. Regular-fd handles only:
   * a direct descriptor has no fd to ask (accept with `lwsocket: false` to inspect it); -1 otherwise.
   */
  incomingCpu(h: number): number {
    this.checkConn(h, 'incomingCpu');
    if (this.kind[h] === Kind.Listener) return -1;
    const r = this.kind[h] === Kind.Direct ? native!.channelIncomingCpu(this.ch, this.fd[h]!) : native!.incomingCpu(this.fd[h]!);
    return r < 0 ? -1 : r;
  }

  // ---- whole channel ---------------------------------------------------------------------------------------------
  /** Counters of this channel (cheap: reads shared memory). */
  stats(): ChannelStats {
    const s = this.nstats;
    return {
      backend: 'uring', requests: this.counters.requests, flushes: s[Stat.Flushes]!,
      enters: s[Stat.Enters]!, submitted: s[Stat.Sqes]!, completions: s[Stat.Cqes]!, batches: s[Stat.Batches]!,
      wakeups: s[Stat.Wakeups]!, emptyWakeups: s[Stat.EmptyWakeups]!, accepted: this.counters.accepted,
      bytesRead: this.counters.bytesRead, bytesWritten: this.counters.bytesWritten, enobufs: this.counters.enobufs,
      cqOverflows: s[Stat.OverflowFlush]!, tableFullFallbacks: this.counters.tableFullFallbacks,
      filesSpliced: this.counters.filesSpliced, spliceNoPipe: this.counters.spliceNoPipe, writesNoCopy: this.counters.writesNoCopy, handles: this.open,
      submitFailures: s[Stat.SubmitFailed]!, requestsRefused: s[Stat.RowsRefused]!, recycleRefused: s[Stat.RecycleRefused]!,
      inKernel: s[Stat.Inflight]!,
    };
  }

  /**
   * See Channel.close. The ring is torn down before this returns: every pending request is cancelled and has completed
   * (the kernel no longer reads or writes the channel's memory, nor the buffers of no-copy writes), every lwsocket is
   * closed (its peer reads EOF, or a reset if it had unread bytes), and accepts armed on listener members have ended.
   */
  close(): void {
    if (this.closed) return;
    // Regular fds this channel owns are closed here by number — but not one whose IORING_OP_CLOSE the kernel has taken
    // already (its number may belong to someone else by now): staged rows go to the kernel first, and a close that is
    // still staged afterwards (refused) has not run.
    if (this.handedOff) this.reclaim();
    if (this.nreq > 0) this.submitNow();
    const rows = this.req, closeStaged = new Set<number>();
    for (let i = 0; i < this.nreq; i++) if (rows[i * ROW_I32] === Op.Close) closeStaged.add(rows[i * ROW_I32 + 3]!);
    for (let h = 0; h < this.kind.length; h++) {
      if (this.kind[h] !== Kind.Fd || (this.state[h]! & St.KeepFd)) continue;
      if (!(this.state[h]! & St.CloseIssued) || closeStaged.has(h)) native!.closeFd(this.fd[h]!);
    }
    for (const p of this.installs.values()) p.reject(new MegapipeError(MpCode.CLOSED, 'toFd: the channel was closed'));
    this.installs.clear();
    for (const p of this.pieces) {
      if (p.pipe !== null) { closePipe(p.pipe); p.pipe = null; }
      p.reject(new MegapipeError(MpCode.CLOSED, 'sendFile/readFile: the channel was closed'));
    }
    this.pieces.clear();
    for (const pipe of this.pipesFree) closePipe(pipe);
    this.pipesFree.length = 0;
    this.pipesOpen = 0;
    this.readWaiters.length = 0;
    native!.channelRef(this.ch, false);
    this.closed = true;
    this.heldBufs.clear();
    if (this.retryTimer !== undefined) { clearTimeout(this.retryTimer); this.retryTimer = undefined; }
    if (this.rearmTimer !== undefined) { clearTimeout(this.rearmTimer); this.rearmTimer = undefined; }
    this.unsubmitted.length = 0;
    this.nreq = 0; this.nrec = 0; this.handedOff = false;
    const r = native!.channelClose(this.ch);
    // listener members' dups (see register): after the teardown, which ended the accepts armed on them
    for (let h = 0; h < this.kind.length; h++) if (this.kind[h] === Kind.Listener) native!.closeFd(this.fd[h]!);
    // the kernel still had requests after the teardown's deadline (never seen; a kernel bug or a stuck device): a
    // no-copy send may still read its buffer, so those stay alive for good (the addon keeps its own memory mapped)
    if (r < 0) for (const b of this.cRef) if (b !== undefined) pinnedForever.push(b);
    this.cRef.fill(undefined);
    this.endDispatch();
  }
}

/** The most connections one accept queue holds (net.core.somaxconn caps every listen backlog); 4096 if unreadable. */
function acceptQueueMax(): number {
  try { const n = Number.parseInt(readFileSync('/proc/sys/net/core/somaxconn', 'latin1'), 10); return n > 0 ? n : 4096; } catch { return 4096; }
}

function closePipe(pipe: Pipe): void {
  native!.closeFd(pipe.r);
  native!.closeFd(pipe.w);
}

// A file position in a row: the low 32 bits in `c`, the rest in the row flags from bit 8 up (MP_OP_READ, MP_OP_SPLICE).
function posLow(pos: number): number { return pos % 0x100000000; }
function posFlags(pos: number): number { return Math.floor(pos / 0x100000000) << 8; }

function newPiece(fd: number, pos: number, length: number, h: number, out: Buffer | null, resolve: (v: Buffer | undefined) => void, reject: (e: Error) => void): FilePiece {
  return {
    fd, pos, left: length, reading: 0, h, failed: null, out, outBase: pos, eof: length, resolve, reject,
    pipe: null, inPipe: 0, ops: 0, wrote: 0, moved: false, idle: 0, waitMs: 0, dropped: false, errRes: 0, errCode: undefined,
  };
}

function copyOf(src: Uint8Array, off: number, len: number): Uint8Array {
  const b = Buffer.allocUnsafe(len);
  copyInto(b, 0, src, off, len);
  return b;
}

// memmove without allocating a view: Buffer.copy for Buffers; a loop for small plain Uint8Arrays.
function copyInto(dst: Buffer, at: number, src: Uint8Array, off: number, len: number): void {
  if (len <= 256) { for (let i = 0; i < len; i++) dst[at + i] = src[off + i]!; return; }
  if (Buffer.isBuffer(src)) { src.copy(dst, at, off, off + len); return; }
  dst.set(src.subarray(off, off + len), at);
}
