// Accepting, and the lwsocket table. A listener's keep-accepting request is a multishot IORING_OP_ACCEPT into the
// ring's direct-descriptor table (each connection an lwsocket: a slot, never a process fd). The kernel takes a slot
// only after it has dequeued the connection, and on a full table (-ENFILE) it closes that connection: so a multishot
// direct accept, which takes as many slots as connections are queued, runs only while more than `burstSlots` (the most
// an accept queue holds) are free; below that, one single accept at a time with its slot reserved; with no slot free,
// regular fds (a listener-error event, MP_ERR_TABLE_FULL, once) until a slot frees up. An accept stopped for want of a
// descriptor or memory (EMFILE, ENFILE, ENOMEM, ENOBUFS) is said once and retried when a handle closes and on a timer.
import { readFileSync } from 'node:fs';
import { MpCode } from '../errors.js';
import { Kind, St } from '../handle-table.js';
import { Op, Tag } from './abi.js';
import type { UringChannel } from './channel.js';

const ENOBUFS = -105, ECANCELED = -125, ENFILE = -23, EMFILE = -24, ENOMEM = -12;
const EBADF = -9, ENOTSOCK = -88, EINVAL = -22, EOPNOTSUPP = -95, EFAULT = -14;
/** Retry delays of an accept stopped for want of a descriptor or memory (see scheduleRearm). */
const ACCEPT_RETRY_MIN_MS = 10, ACCEPT_RETRY_MAX_MS = 1000;

export class Acceptor {
  private readonly state: Uint32Array;
  private readonly tableSlots: number;
  private readonly burstSlots: number;
  /** lwsockets open now. */
  private directOpen = 0;
  /** Slots reserved by single direct accepts in flight. */
  private directReserved = 0;
  /** Slots whose close the kernel refused for good: taken until the ring is torn down. */
  private slotsLost = 0;
  // listeners that fell back to regular fds because the table was full
  private readonly fallbackListeners = new Set<number>();
  // listeners waiting for a free handle or fd to re-arm their accept; the retry timer; those whose accept failed for
  // want of a descriptor or memory, until one succeeds again (said once)
  private readonly rearmWaiters = new Set<number>();
  private rearmTimer: NodeJS.Timeout | undefined = undefined;
  private rearmDelayMs = 0;
  private readonly stalled = new Set<number>();

  constructor(private readonly ch: UringChannel, tableSlots: number) {
    this.state = ch.table.state;
    this.tableSlots = tableSlots;
    this.burstSlots = Math.min(tableSlots, acceptQueueMax() + 64);
  }

  /** accept() on listener `h` (checked): keep accepting (count Infinity), or exactly `count`. */
  accept(h: number, count: number, lwsocket: boolean): void {
    const ch = this.ch;
    if (!lwsocket) this.state[h]! |= St.AcceptFdMode; else this.state[h]! &= ~St.AcceptFdMode;
    if (count === Infinity) {
      this.state[h]! |= St.Accepting;
      if (!(this.state[h]! & St.AcceptMulti)) this.arm(h, true);
      return;
    }
    // each direct accept reserves its slot; those beyond the free slots accept regular fds
    for (let i = 0; i < count; i++) {
      const direct = !(this.state[h]! & St.AcceptFdMode) && this.slotsFree() > 0;
      if (direct) this.directReserved++;
      else if (!(this.state[h]! & St.AcceptFdMode)) ch.counters.tableFullFallbacks++;
      ch.stage(Op.Accept, h, ch.fd[h]!, 0, 0, 0, direct ? 1 : 0, direct ? Tag.AcceptOne : Tag.AcceptOneFd);
    }
  }

  // Arms the keep-accepting request of listener `h` (AcceptMulti): see the policy above.
  private arm(h: number, deferError = false): void {
    const ch = this.ch;
    this.state[h]! |= St.AcceptMulti;
    if (!(this.state[h]! & St.AcceptFdMode)) {
      const free = this.slotsFree();
      if (free > this.burstSlots) { ch.stage(Op.Accept, h, ch.fd[h]!, 0, 1, 0, 1, Tag.Accept); return; }
      if (free > 0) { this.directReserved++; ch.stage(Op.Accept, h, ch.fd[h]!, 0, 0, 0, 1, Tag.AcceptKeep); return; }
      this.enterFallback(h, deferError);
    }
    ch.stage(Op.Accept, h, ch.fd[h]!, 0, 1, 0, 0, Tag.AcceptFd);
  }

  private slotsFree(): number { return this.tableSlots - this.directOpen - this.directReserved - this.slotsLost; }

  // Listener `h` accepts regular fds until a direct slot frees up; says so once (MP_ERR_TABLE_FULL).
  private enterFallback(h: number, deferError = false): void {
    const ch = this.ch;
    const st = this.state[h]!;
    if (st & St.AcceptFdMode) return;
    this.state[h] = st | St.AcceptFdMode;
    this.fallbackListeners.add(h);
    if (st & St.Closing) return;
    if (!deferError) { ch.emitCode('listener-error', h, ENFILE, MpCode.TABLE_FULL); return; }
    const g = ch.table.gen[h]!;   // from within accept(): not re-entrantly
    queueMicrotask(() => { if (ch.table.gen[h] === g && ch.isOpen(h) && !(this.state[h]! & St.Closing)) ch.emitCode('listener-error', h, ENFILE, MpCode.TABLE_FULL); });
  }

  /** An accept completion of listener `h` (`tag`: which accept request). */
  onAccept(h: number, tag: number, res: number, more: boolean): void {
    const ch = this.ch;
    if (tag === Tag.AcceptOne || tag === Tag.AcceptKeep) this.directReserved--;   // its slot is now taken or free again
    const direct = tag === Tag.Accept || tag === Tag.AcceptOne || tag === Tag.AcceptKeep;
    // the listener's keep-accepting request (a multishot accept, or an AcceptKeep single), re-armed when it ends
    const multi = tag === Tag.Accept || tag === Tag.AcceptFd || tag === Tag.AcceptKeep;
    const st = this.state[h]!;
    if (!more && multi) this.state[h]! &= ~(St.AcceptMulti | St.AcceptCancel);
    if (res >= 0) {
      if (st & St.Closing) {   // raced with unregister: refuse cleanly
        ch.closeOrphan(res, direct);
      } else {
        const nh = ch.adopt(direct ? Kind.Direct : Kind.Fd, res);
        if (nh < 0) {
          ch.closeOrphan(res, direct);
          ch.emitCode('listener-error', h, EMFILE, MpCode.LIMIT);
        } else {
          this.rearmDelayMs = 0;
          if (this.stalled.size > 0) this.stalled.delete(h);
          if (direct) this.directOpen++;
          else if (this.fallbackListeners.has(h)) ch.counters.tableFullFallbacks++;
          ch.counters.accepted++;
          if (direct && more && !(st & St.AcceptCancel) && this.slotsFree() <= this.burstSlots) {
            // the table is nearly full: end the multishot accept before a burst overruns the table (it re-arms as
            // reserved single accepts when its final completion comes)
            this.state[h]! |= St.AcceptCancel;
            ch.cancel(h, Tag.Accept);
          }
          ch.emit('accept', nh, h, undefined, 0, h);
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
        if (!this.stalled.has(h)) { this.stalled.add(h); ch.emit('listener-error', h, res); }
      }
      if (!more) ch.maybeRelease(h);
      return;
    } else if (res !== ECANCELED) {
      // the listening socket itself is unusable (closed, no longer listening): accepting stops (no re-arm: it would fail
      // again at once); any other failure is one connection's (ECONNABORTED…), accepting goes on
      if (res === EBADF || res === ENOTSOCK || res === EINVAL || res === EOPNOTSUPP || res === EFAULT) this.state[h]! &= ~St.Accepting;
      if (!(st & St.Closing)) ch.emit('listener-error', h, res);
    }
    if (!more) {
      if (this.state[h]! & St.Closing) ch.maybeRelease(h);
      else if (multi && (this.state[h]! & St.Accepting)) this.arm(h);   // ended (table full, error, mode switch): re-arm
    }
  }

  // Listeners whose accept stopped for want of a descriptor or memory try again when one of this channel's handles
  // closes (released) — and after a delay, since what frees up may be someone else's (like nginx's accept retry): from
  // ACCEPT_RETRY_MIN_MS, doubling up to ACCEPT_RETRY_MAX_MS, back to the start after a successful accept.
  private scheduleRearm(): void {
    if (this.rearmTimer !== undefined || this.ch.isClosed) return;
    this.rearmDelayMs = Math.min(Math.max(ACCEPT_RETRY_MIN_MS, this.rearmDelayMs * 2), ACCEPT_RETRY_MAX_MS);
    this.rearmTimer = setTimeout(() => { this.rearmTimer = undefined; this.rearmAll(); }, this.rearmDelayMs);
  }

  private rearmAll(): void {
    for (const l of this.rearmWaiters) if (this.ch.isOpen(l) && !(this.state[l]! & (St.Closing | St.AcceptMulti)) && (this.state[l]! & St.Accepting)) this.arm(l);
    this.rearmWaiters.clear();
  }

  /** Listener `h` is closing: it waits for nothing any more. */
  forget(h: number): void {
    this.rearmWaiters.delete(h);
    this.stalled.delete(h);
  }

  /** A close of an lwsocket's slot was refused for good: the slot stays taken until the ring's teardown. */
  slotLost(): void { this.slotsLost++; }

  /** A handle went (`wasDirect`: an lwsocket, its slot is free again): listeners waiting for one try again. */
  released(wasDirect: boolean): void {
    const ch = this.ch;
    if (wasDirect) {
      this.directOpen--;
      // a direct slot is free again: listeners that fell back to fds go back to lwsockets (cancel, re-arm direct)
      for (const l of this.fallbackListeners) {
        this.fallbackListeners.delete(l);
        if (!ch.isOpen(l) || (this.state[l]! & St.Closing)) continue;
        this.state[l]! &= ~St.AcceptFdMode;
        if (this.state[l]! & St.AcceptMulti) ch.cancel(l, Tag.AcceptFd);
      }
    }
    if (this.rearmWaiters.size > 0) this.rearmAll();
  }

  close(): void {
    if (this.rearmTimer !== undefined) { clearTimeout(this.rearmTimer); this.rearmTimer = undefined; }
  }
}

/** The most connections one accept queue holds (net.core.somaxconn caps every listen backlog); 4096 if unreadable. */
function acceptQueueMax(): number {
  try { const n = Number.parseInt(readFileSync('/proc/sys/net/core/somaxconn', 'latin1'), 10); return n > 0 ? n : 4096; } catch { return 4096; }
}

