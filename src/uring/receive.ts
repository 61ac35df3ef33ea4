// Receiving: one receive request per reading connection, with provided buffers (the kernel picks a buffer of the ring
// for each completion; the bytes are handed to JavaScript as a view into the receive pool, zero-copy). The first
// receive of a connection is single-shot (a short-lived connection has nothing armed to cancel when it closes); later
// ones follow the ring's receive mode (RecvMode):
// - 'multishot' on a DEFER_TASKRUN ring: one request, a completion per arrival, until cancelled. Completions are
//   posted only when this thread enters the ring, so a busy thread receives nothing more.
// - 'single' on a ring without it (native/ring.c, defer_wake), the default there: such a ring posts completions at
//   any kernel entry of the thread — a system call JavaScript makes, a timer tick — so a multishot receive would keep
//   taking buffers while JavaScript runs (the whole pool into one connection before its handler can pause it). Every
//   receive is single-shot, re-armed as its completion is handled: a busy thread takes at most one buffer per
//   connection, at the cost of one request per completion.
// - 'capped', on such a ring only when asked for (MEGAPIPE_RECV=capped) and where the kernel lets a multishot receive
//   end by itself after a total of bytes (Linux 6.17, probe().recvCap): multishot, ending after ARMING_BUFFERS
//   buffers' worth of bytes (plus the rest of one buffer) and armed again as its last completion is handled, if the
//   connection still reads. That bounds the bytes a connection takes between two chances to pause it, not the
//   buffers: each completion takes a whole buffer, so a peer sending small segments still takes one buffer per
//   segment while JavaScript is busy (hundreds measured in 250 ms: test channel-recv-mode) — which is why it is not
//   the default. Against single-shot it saved 0–8% CPU per transaction (BENCHMARKS.md "Capped multishot receives").
// MEGAPIPE_RECV=single forces single-shot receives on any ring (the tests run that path on any kernel).
// Pausing cancels the request; bytes that completed before the cancel landed are held back as copies (the stash) and
// delivered, in order, when the connection reads again.
import { St } from '../handle-table.js';
import { Op, Tag, Kernel } from './abi.js';
import { copyOf } from './copy.js';
import type { UringChannel } from './channel.js';

const ENOBUFS = -105, ECANCELED = -125;
/** How receives after a connection's first are made (see the top of this file). */
export type RecvMode = 'multishot' | 'capped' | 'single';
/** A capped multishot receive's total, in receive buffers' worth of bytes: at the 16 KiB default, 256 KiB per arming. */
const ARMING_BUFFERS = 16;

/** The receive mode of a ring: `deferTaskrun` its set-up, `cap` whether the kernel caps multishot receives, `env`
 * MEGAPIPE_RECV ('single' forces single-shot; 'capped' asks for capped receives where the ring and kernel allow). */
export function recvMode(deferTaskrun: boolean, cap: boolean, env: string | undefined): RecvMode {
  if (env === 'single') return 'single';
  if (deferTaskrun) return 'multishot';
  return env === 'capped' && cap ? 'capped' : 'single';
}

/** Marks a held-back EOF in a handle's stash. */
const EOF_MARK = new Uint8Array(0);

export class Receiver {
  private readonly state: Uint32Array;
  private readonly gen: Uint32Array;
  private readonly pool: Buffer;
  private readonly bufSize: number;
  /** The first token of stashed bytes handed to holdBuffer (copies: holding them costs nothing; see deliverStash). */
  private readonly copyTokens: number;
  private copyToken = 0;
  // bytes (and EOF) that completed after the handle paused, held back until it resumes: a multishot receive is
  // cancelled asynchronously, so completions posted before the cancel lands still arrive (copies: the receive buffers
  // go back to the ring at once)
  private readonly stash: (Uint8Array[] | undefined)[];
  // stashes due for delivery inside a batch (syncRecv): [handle, generation] pairs, delivered between completions
  private readonly stashDue: number[] = [];

  /** How later receives are made, and a capped one's total in bytes (0: none). */
  readonly mode: RecvMode;
  private readonly armingBytes: number;

  constructor(private readonly ch: UringChannel, recv: ArrayBuffer, bufSize: number, buffers: number, mode: RecvMode) {
    this.mode = mode;
    this.armingBytes = mode === 'capped' ? ARMING_BUFFERS * bufSize : 0;
    this.state = ch.table.state;
    this.gen = ch.table.gen;
    this.pool = Buffer.from(recv);
    this.bufSize = bufSize;
    this.copyTokens = buffers;
    this.stash = new Array(ch.table.size).fill(undefined);
  }

  /** Whether a held token names a copy (nothing to return to the ring). */
  isCopyToken(token: number): boolean { return token >= this.copyTokens; }

  /** Brings the kernel's receive request for `h` in line with what the handle wants (its state bits). */
  sync(h: number): void {
    const ch = this.ch;
    if (this.stash[h] !== undefined && (this.state[h]! & St.Reading) && !(this.state[h]! & (St.Paused | St.Closing))) {
      // resumed with bytes held back: deliver them first — never from within the caller's resume()/read() (it may be
      // a handler: the event it is handling must stay as it is): inside a batch, right after the completion being
      // handled (deliverDue); else as a microtask. Newer bytes join the stash meanwhile, in order.
      if (ch.batch.inBatch) this.stashDue.push(h, this.gen[h]!);
      else { const g = this.gen[h]!; queueMicrotask(() => { if (this.gen[h] === g && ch.isOpen(h)) { this.deliverStash(h); this.sync(h); } }); }
    }
    const st = this.state[h]!;
    const want = (st & St.Reading) !== 0 && (st & (St.Paused | St.Eof | St.Closing | St.Errored | St.Installing | St.Connecting)) === 0;
    if (want) {
      if (!(st & St.RecvArmed)) {
        this.state[h] = st | St.RecvArmed | St.RecvSeen;
        const multi = (st & St.RecvSeen) !== 0 && this.mode !== 'single';
        ch.stage(Op.Recv, h, ch.fd[h]!, ch.fixed(h), 0, multi ? this.armingBytes : 0, multi ? 0 : 1, Tag.Recv);
      }
    } else if ((st & (St.RecvArmed | St.RecvCancel)) === St.RecvArmed) {
      this.state[h] = st | St.RecvCancel;
      ch.cancel(h, Tag.Recv);
    }
  }

  /** A receive completion of `h`. */
  onRecv(h: number, res: number, flags: number, more: boolean): void {
    const ch = this.ch;
    if (!more) this.state[h]! &= ~(St.RecvArmed | St.RecvCancel);
    if (res > 0) {
      const bid = flags >>> Kernel.CqeBufferShift;
      ch.counters.bytesRead += res;
      const st = this.state[h]!;
      if (!(st & St.Closing) || (st & St.CloseAfterDrain)) {
        if ((st & St.Paused) || this.stash[h] !== undefined) {
          // paused (or older bytes still held): no read event until resume, in order
          (this.stash[h] ??= []).push(copyOf(this.pool, bid * this.bufSize, res));
          ch.batch.recycle(bid);
        } else {
          // recycled unless the handler kept it (holdBuffer: then releaseBuffer returns it, once — also when it did so
          // within the same handler)
          try { ch.emitRead(h, res, this.pool, bid * this.bufSize, bid); }
          finally { if (!ch.readHeld) ch.batch.recycle(bid); }
        }
      } else ch.batch.recycle(bid);
    } else {
      // no bytes: a buffer is never attached to such a completion by today's kernels, but one would go back at once
      if (flags & Kernel.CqeFBuffer) ch.batch.recycle(flags >>> Kernel.CqeBufferShift);
      if (res === 0) {
        this.state[h]! |= St.Eof;
        if (!(this.state[h]! & St.Closing)) {
          if ((this.state[h]! & St.Paused) || this.stash[h] !== undefined) (this.stash[h] ??= []).push(EOF_MARK);
          else ch.emit('read', h, 0);
        }
      } else if (res === ENOBUFS) {
        ch.counters.enobufs++;          // the data is still in the socket: re-armed below once buffers return
      } else if (res !== ECANCELED) {
        this.state[h]! |= St.Errored;
        if (!(this.state[h]! & St.Closing)) ch.emit('error', h, res);
      }
    }
    if (!more) ch.receiveEnded(h);
  }

  /** Delivers the stashes due (see sync) between two completions of a batch. */
  deliverDue(): void {
    const due = this.stashDue;
    if (due.length === 0) return;
    for (let i = 0; i < due.length; i += 2) {
      const h = due[i]!;
      if (this.gen[h] !== due[i + 1] || !this.ch.isOpen(h) || this.ch.isClosed) continue;
      this.deliverStash(h);
      this.sync(h);
    }
    due.length = 0;
  }

  /** Bytes held back for `h` (toFd delivers them before the connection leaves the channel). */
  hasStash(h: number): boolean { return this.stash[h] !== undefined; }

  /**
   * Emits the read events held back while `h` was paused, oldest first, until it pauses again or closes (`all`:
   * regardless of pausing, before the connection leaves the channel through toFd). The bytes are private copies: a
   * handler may hold them (holdBuffer) like a ring buffer's, at no cost.
   */
  deliverStash(h: number, all = false): void {
    const q = this.stash[h];
    while (q !== undefined && this.stash[h] === q && q.length > 0 && (all || !(this.state[h]! & (St.Paused | St.Closing)))) {
      const b = q.shift()!;
      if (q.length === 0) this.stash[h] = undefined;
      if (b === EOF_MARK) this.ch.emit('read', h, 0);
      else {
        this.copyToken = (this.copyToken + 1) & 0x3fffffff;
        this.ch.emitRead(h, b.byteLength, b, 0, this.copyTokens + this.copyToken);
      }
    }
  }

  /** The handle is free: nothing held back for it any more. */
  forget(h: number): void { this.stash[h] = undefined; }
}
