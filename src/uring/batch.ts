// Batching: MegaPipe's flush rules across both boundaries. Requests are staged as rows in the control region and handed
// to the native core, which turns them into SQEs and enters the kernel once per flush; completions come back as event
// rows, one JavaScript call per drained batch. A flush happens (i) when `threshold` rows are staged, (ii) when a
// completion batch has been handled (the native side flushes as the call returns: the rows are handed off), (iii)
// on ch.flush(), and (iv) at the end of the microtask for requests made outside a batch. Requests the kernel refuses
// are kept and retried (transient refusals), or complete with the error (lasting ones): never dropped.
import { native, type NativeChannel } from '../native.js';
import { rangeError } from '../errors.js';
import { turnBegin, turnEnd } from '../clock.js';
import { Hdr, Row, Ev, Tag, Ud } from './abi.js';

const EAGAIN = -11, EBUSY = -16, ENOMEM = -12;
/** The longest wait between retries of a flush the kernel refused for a transient reason (see submitFailed). */
const SUBMIT_RETRY_MAX_MS = 64;

/** What the batch calls back into its channel. */
export interface BatchHost {
  /** One completion (a copied CQE, or that of a request that never reached the kernel). */
  complete(udLo: number, udHi: number, res: number, flags: number): void;
  /** Between two completions of a batch: deliveries the last one deferred (see Receiver.syncRecv). */
  afterCompletion(): void;
  readonly isClosed: boolean;
}

export class Batch {
  readonly rowsMax: number;
  /** Inside the handling of a completion batch (flush rule ii applies: no microtask flush). */
  inBatch = false;
  private threshold: number;
  private readonly hdr: Int32Array;
  /** @internal The request rows (linkClose looks at the last one). */
  readonly req: Int32Array;
  private readonly evs: Int32Array;
  private readonly recycleList: Int32Array;
  private rowsStaged = 0;
  private recyclesStaged = 0;
  // the rows and recycled buffers of the last batch were handed to C in hdr, to submit when onBatch returns (reclaim)
  private handedOff = false;
  private flushQueued = false;
  // rows of a link chain being staged: no threshold flush in the middle of one (see beginChain)
  private chainRows = 0;
  // submission failures (submitFailed): the retry timer and its next delay; completions of requests that never reached
  // the kernel, delivered from a task of their own ([user_data lo, hi, result] triples)
  private retryTimer: NodeJS.Timeout | undefined = undefined;
  private retryDelayMs = 0;
  private readonly unsubmitted: number[] = [];
  private unsubmittedTask = false;
  private deferredError: unknown = undefined;
  private readonly flushTask: () => void;
  private readonly retryTask: () => void;
  private readonly unsubmittedBound: () => void;

  constructor(private readonly ch: object, nat: NativeChannel, threshold: number, private readonly host: BatchHost) {
    const L = nat.layout;
    this.hdr = new Int32Array(nat.ctl, L.hdr, Hdr.I32);
    this.req = new Int32Array(nat.ctl, L.req, L.requestRows * Row.I32);
    this.evs = new Int32Array(nat.ctl, L.ev, L.eventRows * Ev.I32);
    this.recycleList = new Int32Array(nat.ctl, L.recycle, L.recvBuffers);
    this.rowsMax = L.requestRows;
    this.threshold = threshold;
    this.flushTask = () => { this.flushQueued = false; if (this.handedOff) this.reclaim(); if (this.rowsStaged > 0 || this.recyclesStaged > 0) this.submitNow(); };
    this.retryTask = () => { this.retryTimer = undefined; if (this.host.isClosed) return; if (this.handedOff) this.reclaim(); this.submitNow(); };
    this.unsubmittedBound = () => this.deliverUnsubmitted();
  }

  get batchThreshold(): number { return this.threshold; }
  set batchThreshold(n: number) {
    if (!Number.isInteger(n) || n < 1 || n > this.rowsMax) throw rangeError('batchThreshold', `an integer in 1..${this.rowsMax}`, n);
    this.threshold = n;
  }

  /** Stages one request row (user_data = udHi:udLo). Never throws: a row that cannot be staged completes with EBUSY. */
  stageRow(op: number, fd: number, flags: number, udLo: number, udHi: number, a: number, b: number, c: number): void {
    if (this.handedOff) this.reclaim();
    if (this.rowsStaged === this.rowsMax) {
      this.submitNow();
      // the kernel refuses submissions and every row is taken: this request fails (asynchronously) rather than wait
      if (this.rowsStaged === this.rowsMax) { this.failUnsubmitted(udLo, udHi, EBUSY); return; }
    }
    const i = this.rowsStaged * Row.I32, r = this.req;
    r[i] = op; r[i + Row.Fd] = fd; r[i + Row.Flags] = flags; r[i + Row.UdLo] = udLo; r[i + Row.UdHi] = udHi;
    r[i + Row.A] = a; r[i + Row.B] = b; r[i + Row.C] = c;
    this.rowsStaged++;
    if (this.rowsStaged >= this.threshold && this.chainRows === 0) this.submitNow();                   // rule (i): threshold
    else if (!this.inBatch && !this.flushQueued) { this.flushQueued = true; queueMicrotask(this.flushTask); }  // (iv)
  }

  /**
   * A link chain of `rows` rows follows (SpliceIn → Poll → SpliceOut): they go in one flush (the native side also
   * never splits a chain across enters). endChain() after the last.
   */
  beginChain(rows: number): void {
    if (this.handedOff) this.reclaim();
    if (this.rowsMax - this.rowsStaged < rows) this.submitNow();
    this.chainRows++;
  }

  endChain(): void {
    this.chainRows--;
    if (this.rowsStaged >= this.threshold) this.submitNow();
  }

  /**
   * The last row staged, if it is not yet submitted and its user_data is `udLo`/`udHi` with op `op`: gets `flag` added
   * (a close hard-linked behind a send: linkClose). False when there is no such row, or no room for one more.
   */
  flagLastRow(op: number, udLo: number, udHi: number, flag: number): boolean {
    if (this.handedOff) this.reclaim();
    const n = this.rowsStaged;
    if (n === 0 || n === this.rowsMax) return false;
    const i = (n - 1) * Row.I32, r = this.req;
    if (r[i] !== op || r[i + Row.UdLo] !== udLo || r[i + Row.UdHi] !== udHi) return false;
    r[i + Row.Flags]! |= flag;
    return true;
  }

  /** A receive buffer goes back to the ring with the next flush (a microtask's, outside a batch). */
  recycle(bid: number): void {
    if (this.handedOff) this.reclaim();
    this.recycleList[this.recyclesStaged++] = bid;
    if (!this.inBatch && !this.flushQueued) { this.flushQueued = true; queueMicrotask(this.flushTask); }
  }

  /** mp_flush: submits the staged rows now (rule iii). */
  flush(): void {
    if (this.handedOff) this.reclaim();
    if (this.rowsStaged > 0 || this.recyclesStaged > 0) this.submitNow();
  }

  private submitNow(): void {
    if (this.handedOff) this.reclaim();
    if (this.host.isClosed) { this.rowsStaged = 0; this.recyclesStaged = 0; return; }
    this.hdr[Hdr.Rows] = this.rowsStaged; this.hdr[Hdr.Recycle] = this.recyclesStaged; this.hdr[Hdr.Err] = 0;
    this.rowsStaged = 0; this.recyclesStaged = 0;
    native!.channelSubmit(this.ch);
    this.takeBack();
  }

  // Staging again after a batch handed its rows to C. The batch's handlers may have queued microtasks or nextTicks,
  // which run when the batch's callback scope closes — before C submits the handed-off rows: such staging must append
  // to them, not overwrite them (nor the recycle list). Whether C has flushed them or not, takeBack finds in hdr what
  // is still staged; taken back, C will not submit them now, so a flush is scheduled.
  private reclaim(): void {
    this.handedOff = false;
    this.takeBack();
    if ((this.rowsStaged > 0 || this.recyclesStaged > 0) && !this.inBatch && !this.flushQueued) { this.flushQueued = true; queueMicrotask(this.flushTask); }
  }

  // After C flushed (or before it did): hdr[Rows] rows are still staged, at the front of the request area (all of them
  // if C has not flushed; those the kernel refused if it has), hdr[Recycle] buffers still to recycle, hdr[Err] why rows
  // were kept.
  private takeBack(): void {
    const hdr = this.hdr;
    this.rowsStaged = hdr[Hdr.Rows]!; this.recyclesStaged = hdr[Hdr.Recycle]!;
    const err = hdr[Hdr.Err]!;
    hdr[Hdr.Rows] = 0; hdr[Hdr.Recycle] = 0; hdr[Hdr.Err] = 0;
    if (err !== 0) this.submitFailed(err);
    else if (this.retryTimer === undefined) this.retryDelayMs = 0;
  }

  // The kernel refused a flush (io_uring_enter failed, or the SQ stayed full): the rows stay staged. A transient refusal
  // (EAGAIN, EBUSY, ENOMEM: memory or completion-queue pressure; the SQEs stay in the SQ) is retried after a delay that
  // doubles from 0 up to SUBMIT_RETRY_MAX_MS. Any other means the ring will not take these requests: the native side
  // completes those in the SQ with the error, and each row still staged completes with it too (its connection gets an
  // `error` event), from a task of its own; requests made later are submitted afresh.
  private submitFailed(err: number): void {
    if (err === EAGAIN || err === EBUSY || err === ENOMEM) {
      if (this.retryTimer === undefined && !this.host.isClosed) {
        this.retryTimer = setTimeout(this.retryTask, this.retryDelayMs);
        this.retryDelayMs = Math.min(Math.max(1, this.retryDelayMs * 2), SUBMIT_RETRY_MAX_MS);
      }
      return;
    }
    const r = this.req;
    for (let i = 0; i < this.rowsStaged; i++) this.failUnsubmitted(r[i * Row.I32 + Row.UdLo]!, r[i * Row.I32 + Row.UdHi]!, err);
    this.rowsStaged = 0;
  }

  // A request that will never reach the kernel completes with `res`, as if the kernel had failed it: every state
  // machine takes its error path (never from within the caller's own call: delivered from a macrotask).
  private failUnsubmitted(udLo: number, udHi: number, res: number): void {
    this.unsubmitted.push(udLo, udHi, res);
    if (!this.unsubmittedTask) { this.unsubmittedTask = true; setImmediate(this.unsubmittedBound); }
  }

  private deliverUnsubmitted(): void {
    this.unsubmittedTask = false;
    if (this.host.isClosed) { this.unsubmitted.length = 0; return; }
    if (this.handedOff) this.reclaim();
    const u = this.unsubmitted.splice(0);
    this.inBatch = true;
    try {
      for (let i = 0; i < u.length && !this.host.isClosed; i += 3) this.completeOne(u[i]!, u[i + 1]!, u[i + 2]!, 0);
    } finally { this.inBatch = false; }
    if (this.rowsStaged > 0 || this.recyclesStaged > 0) this.submitNow();
    this.surfaceDeferred();
  }

  /**
   * The completion batch (called from C once per drained batch; flush rule ii follows its return). n = 0: no events —
   * C's flush of the handed-off rows failed (takeBack sees why and applies the retry policy).
   */
  onBatch(n: number): void {
    if (this.handedOff) this.reclaim();   // C consumed the previous batch's rows before draining this one
    this.inBatch = true;
    turnBegin();
    const evs = this.evs;
    try {
      let i = 0;
      for (; i < n && !this.host.isClosed; i++) {
        const j = i * Ev.I32;
        this.completeOne(evs[j + Ev.UdLo]!, evs[j + Ev.UdHi]!, evs[j + Ev.Res]!, evs[j + Ev.Flags]!);
      }
      // close() ran in a handler: the rest of the batch is not delivered, but a new fd in it must still be closed
      for (; i < n; i++) {
        const j = i * Ev.I32;
        if (((evs[j + Ev.UdHi]! >>> Ud.TagShift) & Tag.FdResult) !== 0 && evs[j + Ev.Res]! >= 0) native!.closeFd(evs[j + Ev.Res]!);
      }
    } finally {
      this.inBatch = false;
      turnEnd();
      // handed to C, which submits them when this returns (rule ii); the counts stay until C has (reclaim)
      if (!this.host.isClosed) {
        this.hdr[Hdr.Rows] = this.rowsStaged; this.hdr[Hdr.Recycle] = this.recyclesStaged;
        this.handedOff = true;
      }
    }
    this.surfaceDeferred();
  }

  private completeOne(udLo: number, udHi: number, res: number, flags: number): void {
    try { this.host.complete(udLo, udHi, res, flags); } catch (e) { if (this.deferredError === undefined) this.deferredError = e; }
    this.host.afterCompletion();
  }

  // An exception an application handler threw during a batch: surfaced as uncaught once the batch is done.
  private surfaceDeferred(): void {
    if (this.deferredError === undefined) return;
    const e = this.deferredError;
    this.deferredError = undefined;
    process.nextTick(() => { throw e; });
  }

  /** The handles whose close row is still staged (close() must close their fds itself): flushes first. */
  closesStaged(closeOp: number): Set<number> {
    if (this.handedOff) this.reclaim();
    if (this.rowsStaged > 0) this.submitNow();
    const rows = this.req, out = new Set<number>();
    for (let i = 0; i < this.rowsStaged; i++) if (rows[i * Row.I32] === closeOp) out.add(rows[i * Row.I32 + Row.UdLo]!);
    return out;
  }

  /** The channel closes: nothing staged is submitted any more, no retry or delivery runs. */
  close(): void {
    if (this.retryTimer !== undefined) { clearTimeout(this.retryTimer); this.retryTimer = undefined; }
    this.unsubmitted.length = 0;
    this.rowsStaged = 0; this.recyclesStaged = 0; this.handedOff = false;
  }
}
