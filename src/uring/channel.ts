// The io_uring backend of a channel: one ring per event-loop thread (native/: ring.c, loop.c), with the policy here.
// This module holds the API, the routing of each completion to its module, the life of a handle (the close state
// machine), client connects and the conversion to an fd. The concepts have modules of their own: batch.ts (staging and
// the flush rules), send-queue.ts (what a connection has written), files.ts (sendFile/readFile), receive.ts (receive
// requests and the stash), accept.ts (accepting and the lwsocket table). Per handle, state is kept in typed arrays
// indexed by the handle (handle-table.ts, and each module's own). user_data of every request = (handle, tag << 24 |
// generation): a completion finds its handle without a lookup, and a stale one is recognized.
import { native, kernelProbe, type NativeChannel } from '../native.js';
import { ChannelCore, type BackendOptions } from '../channel-core.js';
import { Kind, St } from '../handle-table.js';
import { MegapipeError, MpCode, argError, errnoError, fromAddon, rangeError, systemError } from '../errors.js';
import { SOCKADDR_SLOT_BYTES, type Limits } from '../limits.js';
import type { Listener } from '../listener.js';
import type { Channel, ChannelStats, Features, RegisterOptions, SocketAddress, SocketOption } from '../channel.js';
import { Op, Tag, RowFlag, Stat, Ud, Kernel, SockOpt } from './abi.js';
import { Batch, type BatchHost } from './batch.js';
import { SendQueue } from './send-queue.js';
import { Files } from './files.js';
import { Receiver, recvMode } from './receive.js';
import { Acceptor } from './accept.js';

const EBADF = -9, EAGAIN = -11, EBUSY = -16, EOPNOTSUPP = -95;
const SOCKOPT: Record<SocketOption, SockOpt> = { noDelay: SockOpt.Nodelay, keepAlive: SockOpt.Keepalive, keepAliveDelay: SockOpt.Keepidle };
/** Times a close that failed (its submission refused) is issued again before the handle goes anyway. */
const CLOSE_TRIES = 3;
/** Buffers that no-copy sends of a closed channel may still read: kept alive for good (see close). */
const pinnedForever: Uint8Array[] = [];

export class UringChannel extends ChannelCore implements Channel, BatchHost {
  readonly backend = 'uring' as const;
  readonly features: Features;
  /** @internal The native channel (the addon's handle for it). */
  readonly nativeHandle: object;
  /** @internal The modules of the channel. */
  readonly batch: Batch;
  readonly sendQueue: SendQueue;
  readonly files: Files;
  readonly receiver: Receiver;
  readonly acceptor: Acceptor;
  /** @internal Per handle: the descriptor (or direct-descriptor slot) and the requests in the kernel. */
  readonly fd: Int32Array;
  private readonly inflight: Uint16Array;
  private readonly closeTries: Uint8Array;
  private readonly addrSlot: Int32Array;
  private readonly nstats: Float64Array;
  private readonly installs = new Map<number, { resolve: (fd: number) => void; reject: (e: Error) => void }>();
  // connect address slots (a stack of free ones)
  private readonly aFree: Int32Array;
  private aTop: number;

  constructor(limits: Limits, options: BackendOptions = {}) {
    super(limits, options);
    if (!native) throw new MegapipeError(MpCode.BACKEND_UNAVAILABLE, 'the native addon is not available');
    // one reference slot per send chunk (a no-copy write's marker chunk names its slot); chunks count from the limit
    // itself, not from the arena the addon page-rounded (its tail beyond the last whole chunk is never used)
    const chunks = limits.sendArenaBytes / limits.sendChunkBytes;
    let nat: NativeChannel;
    try {
      nat = native.channelCreate({
        sqEntries: limits.sqEntries, cqEntries: limits.cqEntries, files: limits.files,
        recvBuffers: limits.recvBuffers, recvBufferSize: limits.recvBufferSize, sendArenaBytes: limits.sendArenaBytes,
        requestRows: limits.requestRows, eventRows: limits.eventRows, addressBytes: limits.maxPendingConnects * SOCKADDR_SLOT_BYTES,
        refSlots: chunks,
      }, (n: number) => this.batch.onBatch(n), this);   // (called from the event loop: the channel is whole by then)
    } catch (e) { throw fromAddon(e); }
    const L = nat.layout;
    this.nativeHandle = nat.channel;
    this.nstats = new Float64Array(nat.ctl, L.stats, Stat.F64);
    const n = limits.maxHandles;
    this.fd = new Int32Array(n);
    this.inflight = new Uint16Array(n);
    this.closeTries = new Uint8Array(n);
    this.addrSlot = new Int32Array(n).fill(-1);
    this.aFree = new Int32Array(limits.maxPendingConnects);
    for (let i = 0; i < limits.maxPendingConnects; i++) this.aFree[i] = i;
    this.aTop = limits.maxPendingConnects;
    this.batch = new Batch(nat.channel, nat, options.batch ?? limits.batch, this);
    this.receiver = new Receiver(this, nat.recv, L.recvBufferSize, L.recvBuffers, recvMode(L.deferTaskrun, kernelProbe()?.recvCap === true, process.env['MEGAPIPE_RECV']));
    this.sendQueue = new SendQueue(this, nat.send, chunks, { pauseReadsAboveHighWater: options.pauseReadsAboveHighWater ?? true });
    const ops = kernelProbe()?.ops ?? [];
    this.files = new Files(this, ops);
    this.acceptor = new Acceptor(this, L.files);
    this.features = Object.freeze({
      lwsocket: L.files > 0, batching: true, fixedFdInstall: ops.includes(Kernel.OpFixedFdInstall), splice: this.files.spliceOk,
      deferTaskrun: L.deferTaskrun, singleIssuer: L.singleIssuer, registeredRing: L.registeredRing, bundles: kernelProbe()?.bundles ?? false,
      receive: this.receiver.mode,
      sqEntries: L.sqEntries, cqEntries: L.cqEntries, setupFlags: L.setupFlags,
    });
  }

  protected setRef(on: boolean): void { if (!this.closed) native!.channelRef(this.nativeHandle, on); }

  get batchThreshold(): number { return this.batch.batchThreshold; }
  set batchThreshold(n: number) { this.batch.batchThreshold = n; }

  // ---- requests ---------------------------------------------------------------------------------------------------
  /** @internal Stages request `op` of handle `h` (its completion comes back with `tag`). */
  stage(op: number, h: number, fd: number, flags: number, a: number, b: number, c: number, tag: number): void {
    this.inflight[h]!++;
    this.batch.stageRow(op, fd, flags, h, (tag << Ud.TagShift) | this.gen[h]!, a, b, c);
  }

  /** @internal Cancels the request of `h` with `tag` (by user_data: the descriptor may be closed and reused). */
  cancel(h: number, tag: number): void {
    this.stage(Op.CancelUd, h, -1, 0, h, (tag << Ud.TagShift) | this.gen[h]!, 0, Tag.CancelUd);
  }

  /** @internal A file read into send chunk `c` (files.ts): its completion names the chunk. */
  stageRead(fd: number, flags: number, c: number, a: number, n: number, pos: number): void {
    this.batch.stageRow(Op.Read, fd, flags, Ud.Read | c, Tag.Read << Ud.TagShift, a, n, pos);
  }

  /** @internal Closes an accepted connection no handle takes (the listener is closing, or out of handles). */
  closeOrphan(res: number, direct: boolean): void {
    this.batch.stageRow(Op.Close, res, direct ? RowFlag.Fixed : 0, Ud.Orphan, 0, 0, 0, 0);
  }

  /** @internal A new connection's handle (of `kind`, on descriptor or slot `fd`), or -1 when maxHandles are open. */
  adopt(kind: Kind, fd: number): number {
    const h = this.allocHandle(kind, undefined);
    if (h >= 0) this.fd[h] = fd;
    return h;
  }

  /** @internal The row flag of `h`'s descriptor (a direct-descriptor slot or a regular fd). */
  fixed(h: number): number { return this.kind[h] === Kind.Direct ? RowFlag.Fixed : 0; }

  // ---- completions --------------------------------------------------------------------------------------------------
  /** @internal (BatchHost) One completion (a copied CQE, or that of a request that never reached the kernel), routed
   * by its user_data. */
  complete(h: number, hi: number, res: number, flags: number): void {
    if (h < 0 || h >= this.kind.length || this.kind[h] === Kind.Free || this.gen[h] !== (hi & Ud.GenMask)) {
      if (h >= 0 && h !== Ud.Orphan && (h & Ud.Read) !== 0) { this.files.onFileRead(h & ~Ud.Read, res); return; }
      // orphan or stale: a buffer it took goes back; a new fd it made is closed (nobody takes it)
      if (flags & Kernel.CqeFBuffer) this.batch.recycle(flags >>> Kernel.CqeBufferShift);
      if (((hi >>> Ud.TagShift) & Tag.FdResult) !== 0 && res >= 0) native!.closeFd(res);
      return;
    }
    const more = (flags & Kernel.CqeFMore) !== 0;
    if (!more) this.inflight[h]!--;
    const tag = hi >>> Ud.TagShift;
    switch (tag) {
      case Tag.Recv: return this.receiver.onRecv(h, res, flags, more);
      case Tag.Send: return this.sendQueue.onSend(h, res);
      case Tag.Accept: case Tag.AcceptFd: case Tag.AcceptOne: case Tag.AcceptOneFd: case Tag.AcceptKeep:
        return this.acceptor.onAccept(h, tag, res, more);
      case Tag.Connect: return this.onConnect(h, res);
      case Tag.FdInstall: return this.onInstalled(h, res);
      case Tag.SpliceIn: case Tag.SplicePoll: case Tag.SpliceOut: case Tag.SpliceWait: return this.files.onSplice(h, tag, res);
      case Tag.Close:
        // a close the kernel never ran (its submission was refused: the error is not EBADF, which means the socket is
        // gone already) is issued again, a bounded number of times: the socket must not outlive its handle. After
        // that, a regular fd is closed here (close(2)); a direct descriptor's slot stays taken (counted as lost, so
        // that the accept policy does not count on it) until the ring's teardown releases the table
        if (res < 0 && res !== EBADF && (this.state[h]! & St.CloseIssued) && !(this.state[h]! & St.CloseLinked)) {
          if (this.closeTries[h]! < CLOSE_TRIES) { this.closeTries[h]!++; this.state[h]! &= ~St.CloseIssued; }
          else if (this.kind[h] === Kind.Fd && !(this.state[h]! & St.KeepFd)) native!.closeFd(this.fd[h]!);
          else if (this.kind[h] === Kind.Direct) this.acceptor.slotLost();
        }
        return this.maybeRelease(h);
      default: return this.maybeRelease(h);   // cancel, nop, shutdown
    }
  }

  /** @internal (BatchHost) Between two completions: stashed bytes due for delivery go out. */
  afterCompletion(): void { this.receiver.deliverDue(); }

  /** @internal The receive request of `h` ended (its final completion). */
  receiveEnded(h: number): void {
    if (this.state[h]! & St.Closing) this.maybeRelease(h);
    else { this.receiver.sync(h); if (this.state[h]! & St.Installing) this.startInstall(h); }
  }

  private onConnect(h: number, res: number): void {
    const slot = this.addrSlot[h]!;
    if (slot >= 0) { this.aFree[this.aTop++] = slot; this.addrSlot[h] = -1; }
    this.state[h]! &= ~St.Connecting;
    const sq = this.sendQueue;
    if (this.state[h]! & St.Closing) {
      // a graceful disconnect() made while connecting: the queued bytes go first (then the close, sendsDrained);
      // connected or not, anything else closes now
      if (res === 0 && (this.state[h]! & St.CloseAfterDrain)) { sq.kick(h); return; }   // (an overflow waits for chunks)
      if (this.state[h]! & St.CloseAfterDrain) { this.state[h]! &= ~St.CloseAfterDrain; sq.dropQueue(h); this.finishClose(h); return; }
      return this.maybeRelease(h);
    }
    if (res === 0) {
      this.emit('connect', h, 0);
      if (this.state[h]! & St.Closing) return;
      this.receiver.sync(h);
      // what was written before (or in the connect handler) goes out now; a pending end() waits for it
      sq.kick(h);
      this.shutdownIfDrained(h);
    } else {
      this.state[h]! |= St.Errored;
      this.emit('error', h, res);
    }
  }

  // ---- handles ----------------------------------------------------------------------------------------------------
  register(target: Listener | number, cookie?: unknown, options: RegisterOptions = {}): number {
    if (this.closed) throw new MegapipeError(MpCode.CLOSED, 'register: the channel is closed');
    ChannelCore.registerOptionsArg(options);
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
    if (fd < 0) { this.freeHandle(h); throw systemError(fd, 'dup'); }
    this.fd[h] = fd;
    return h;
  }

  protected acceptOn(h: number, count: number, lwsocket: boolean): void { this.acceptor.accept(h, count, lwsocket); }

  acceptQueued(h: number): number[] {
    const out: number[] = [];
    if (!this.isOpen(h) || this.kind[h] !== Kind.Listener) return out;
    for (let i = 0; i < this.limits.maxHandles; i++) {
      const fd = native!.acceptNow(this.fd[h]!);
      if (fd < 0) break;
      const nh = this.allocHandle(Kind.Fd, undefined);
      if (nh < 0) { native!.closeFd(fd); break; }
      this.fd[nh] = fd;
      this.counters.accepted++;
      out.push(nh);
    }
    return out;
  }

  protected syncReading(h: number): void { this.receiver.sync(h); }

  protected returnHeld(token: number): void { if (!this.receiver.isCopyToken(token)) this.batch.recycle(token); }

  // ---- writing ------------------------------------------------------------------------------------------------------
  pendingBytes(h: number): number { return this.isOpen(h) ? this.sendQueue.pend[h]! : 0; }

  protected queueBytes(h: number, data: Uint8Array, off: number, len: number, copy: boolean): boolean {
    return this.sendQueue.queueBytes(h, data, off, len, copy);
  }

  protected queueAscii(h: number, text: string): boolean { return this.sendQueue.queueAscii(h, text); }

  protected queueFile(h: number, fd: number, position: number, length: number): Promise<void> { return this.files.send(h, fd, position, length); }

  protected readFileBytes(fd: number, position: number, length: number): Promise<Buffer> { return this.files.read(fd, position, length); }

  watchProgress(h: number): () => boolean {
    let last = this.pendingBytes(h);
    return () => { const now = this.pendingBytes(h); const moved = now < last; last = now; return moved; };
  }

  // end(): once every queued byte is sent, the write side shuts down (the peer reads EOF)
  protected endWrites(h: number): void {
    const st = this.state[h]!;
    if (this.sendQueue.idle(h) && this.sendQueue.pend[h] === 0 && !(st & St.Connecting)) this.shutdownWrite(h);
    else this.state[h]! |= St.ShutdownPending;
  }

  // A pending end() of `h` runs once nothing is queued or in flight.
  private shutdownIfDrained(h: number): void {
    if ((this.state[h]! & St.ShutdownPending) && this.sendQueue.idle(h)) this.shutdownWrite(h);
  }

  private shutdownWrite(h: number): void {
    this.state[h]! &= ~St.ShutdownPending;
    if (this.state[h]! & (St.Errored | St.Closing)) return;
    this.stage(Op.Shutdown, h, this.fd[h]!, this.fixed(h), 0, 0, Kernel.ShutWr, Tag.Shutdown);
  }

  /** @internal Everything `h` had queued is sent: a graceful close, an end() or a toFd waiting for that goes on. True
   * when the handle is closing now (nothing more to do for the send). */
  sendsDrained(h: number): boolean {
    const st = this.state[h]!;
    if (st & St.CloseAfterDrain) { this.state[h]! &= ~St.CloseAfterDrain; this.finishClose(h); return true; }
    this.shutdownIfDrained(h);
    if (st & St.Installing) this.startInstall(h);
    return false;
  }

  /** @internal The send stream of `h` broke (its queue is dropped): a graceful close waiting for it closes now. */
  sendsFailed(h: number): void {
    if (this.state[h]! & St.CloseAfterDrain) { this.state[h]! &= ~St.CloseAfterDrain; this.finishClose(h); return; }
    if (this.state[h]! & St.Closing) this.maybeRelease(h);
  }

  // ---- closing ------------------------------------------------------------------------------------------------------
  disconnect(h: number, abort = false): void {
    ChannelCore.abortArg(abort);
    const sq = this.sendQueue;
    if (abort && this.isOpen(h) && (this.state[h]! & St.CloseAfterDrain)) {
      // a graceful close still draining: give up on the queued bytes
      this.state[h]! &= ~St.CloseAfterDrain;
      sq.dropQueue(h);
      this.finishClose(h);
      return;
    }
    if (abort && this.isOpen(h) && (this.state[h]! & St.CloseLinked) && sq.inFlight[h]! > 0) {
      // a graceful close linked behind the send in flight: cancel that send; the linked close runs when it ends
      this.cancel(h, Tag.Send);
      return;
    }
    this.checkConn(h, 'disconnect');
    this.counters.requests++;
    this.beginClose(h, abort);
  }

  unregister(h: number): void {
    this.check(h, 'unregister');
    this.counters.requests++;
    if (this.kind[h] !== Kind.Direct) this.state[h]! |= St.KeepFd;
    this.beginClose(h, true);
  }

  private beginClose(h: number, abort: boolean): void {
    this.state[h]! |= St.Closing;
    this.acceptor.forget(h);
    if (!abort && this.sendQueue.pend[h]! > 0 && !(this.state[h]! & St.Errored)) {
      if (!this.linkClose(h)) this.state[h]! |= St.CloseAfterDrain;
      this.receiver.sync(h);   // stop receiving; sending goes on
      return;
    }
    if (this.kind[h] !== Kind.Listener) this.sendQueue.dropQueue(h);
    this.finishClose(h);
  }

  // A graceful close whose queued bytes all go in the one send staged last and not yet submitted (a response written
  // and the connection closed in one go): the close is staged right behind that send, hard-linked to it, so it runs
  // in the same submission once the send is done, whatever its result: no round trip through JavaScript between the
  // send's completion and the close. From here on nothing may be issued on the descriptor (it may be closed and
  // reused): the send is cancelled by user_data on an abort, and a short send is not continued (SendQueue.onSend).
  // The native side never splits a link chain across submissions.
  private linkClose(h: number): boolean {
    const st = this.state[h]!;
    const k = this.kind[h];
    const sq = this.sendQueue;
    if ((k !== Kind.Direct && k !== Kind.Fd) || (st & (St.KeepFd | St.Installing | St.Connecting)) || sq.hasOverflow(h) || sq.pend[h] !== sq.inFlight[h]) return false;
    if (!this.batch.flagLastRow(Op.Send, h, (Tag.Send << Ud.TagShift) | this.gen[h]!, RowFlag.Hardlink)) return false;
    this.state[h] = st | St.CloseIssued | St.CloseLinked;
    this.files.forgetSocket(h);   // (no sendfile is left: only the last send) the socket closes with the slot
    this.stage(Op.Close, h, this.fd[h]!, this.fixed(h), 0, 0, 0, Tag.Close);
    return true;
  }

  private finishClose(h: number): void {
    this.installs.get(h)?.reject(new MegapipeError(MpCode.CLOSED, `toFd: handle ${h} was closed`));
    this.installs.delete(h);
    if (this.inflight[h]! > 0) {
      // the close follows when the last completion is in (maybeRelease)
      const st = this.state[h]!;
      if (this.kind[h] !== Kind.Listener && this.sendQueue.inFlight[h] === 0 && !(st & St.Connecting)) {
        // a connection with no send or connect in flight: the one request that can stay pending is its receive. Cancel
        // it by user_data (a hash lookup; a cancel by fd walks every pending poll of the ring, twice), or not at all
        // when its cancel is on the way already (the usual graceful close: the receive was cancelled when the close
        // began). What else can be in flight (cancels, a shutdown, an fd install, a nop) completes by itself.
        if ((st & (St.RecvArmed | St.RecvCancel)) === St.RecvArmed) {
          this.state[h] = st | St.RecvCancel;
          this.cancel(h, Tag.Recv);
        }
        return;
      }
      // cancel everything pending on the socket
      this.stage(Op.CancelFd, h, this.fd[h]!, this.kind[h] === Kind.Direct ? RowFlag.Fixed : 0, 0, 0, 0, Tag.CancelFd);
      return;
    }
    this.maybeRelease(h);
  }

  /** @internal After a final completion of a closing handle: closes the socket once nothing is pending, then frees. */
  maybeRelease(h: number): void {
    const st = this.state[h]!;
    if (!(st & St.Closing) || this.inflight[h]! > 0) return;
    if (st & St.CloseAfterDrain) return;
    if (!(st & St.CloseIssued)) {
      this.state[h] = st | St.CloseIssued;
      this.files.forgetSocket(h);   // an fd installed for its sendfiles: the socket closes with the slot
      if (this.kind[h] === Kind.Direct) this.stage(Op.Close, h, this.fd[h]!, RowFlag.Fixed, 0, 0, 0, Tag.Close);
      else if (this.kind[h] === Kind.Fd && !(st & St.KeepFd)) this.stage(Op.Close, h, this.fd[h]!, 0, 0, 0, 0, Tag.Close);
      else this.stage(Op.Nop, h, 0, 0, 0, 0, 0, Tag.Nop);   // a completion to deliver the final event from
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
    this.sendQueue.dropQueue(h);
    this.files.forgetSocket(h);
    this.receiver.forget(h);
    const slot = this.addrSlot[h]!;
    if (slot >= 0) { this.aFree[this.aTop++] = slot; this.addrSlot[h] = -1; }
    this.inflight[h] = 0;
    this.closeTries[h] = 0;
    this.freeHandle(h);
    this.acceptor.released(wasDirect);
  }

  // ---- clients and conversion -----------------------------------------------------------------------------------------
  protected openConnection(host: string, port: number, cookie: unknown, localAddress: string | undefined, localPort: number): number {
    if (this.aTop === 0) throw new MegapipeError(MpCode.LIMIT, `connect: maxPendingConnects (${this.limits.maxPendingConnects}) connects are in flight`);
    let fd: number;
    try { fd = native!.clientSocket(host, localAddress, localPort); } catch (e) { throw fromAddon(e, localAddress, localPort || undefined); }
    const h = this.allocHandle(Kind.Fd, cookie);
    if (h < 0) { native!.closeFd(fd); throw new MegapipeError(MpCode.LIMIT, `connect: maxHandles (${this.limits.maxHandles}) handles are open`); }
    const slot = this.aFree[--this.aTop]!;
    this.fd[h] = fd;
    this.addrSlot[h] = slot;
    const len = native!.encodeSockaddr(this.nativeHandle, slot * SOCKADDR_SLOT_BYTES, host, port);
    this.state[h]! |= St.Connecting;
    this.stage(Op.Connect, h, fd, 0, slot * SOCKADDR_SLOT_BYTES, len, 0, Tag.Connect);
    return h;
  }

  toFd(h: number): Promise<number> {
    try { this.checkConn(h, 'toFd'); } catch (e) { return Promise.reject(e); }
    if (this.kind[h] === Kind.Direct && !this.features.fixedFdInstall) return Promise.reject(new MegapipeError(MpCode.UNSUPPORTED, 'toFd: this kernel lacks IORING_OP_FIXED_FD_INSTALL (Linux 6.8)'));
    if (this.installs.has(h)) return Promise.reject(new MegapipeError(MpCode.STATE, `toFd: a conversion of ${h} is in progress`));
    return new Promise((resolve, reject) => {
      this.installs.set(h, { resolve, reject });
      this.state[h]! |= St.Installing;
      this.receiver.sync(h);
      if (this.sendQueue.inFlight[h] === 0 && this.sendQueue.headChunk[h]! < 0) this.startInstall(h);
    });
  }

  private startInstall(h: number): void {
    if (!(this.state[h]! & St.Installing) || (this.state[h]! & St.RecvArmed)) return;   // wait for the receive to end
    if (this.receiver.hasStash(h)) {   // bytes received while paused are delivered first (the handler may close or write)
      this.receiver.deliverStash(h, true);
      if (this.state[h]! & St.Closing) return;
    }
    if (!this.sendQueue.idle(h)) return;   // and queued writes are sent first (sendsDrained calls again)
    if (this.kind[h] === Kind.Fd) {
      this.state[h]! |= St.KeepFd;
      const p = this.installs.get(h);
      this.installs.delete(h);
      this.state[h]! &= ~St.Installing;
      this.beginClose(h, true);
      p?.resolve(this.fd[h]!);
      return;
    }
    this.stage(Op.FdInstall, h, this.fd[h]!, RowFlag.Fixed, 0, 0, 0, Tag.FdInstall);
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
      if (this.state[h]! & St.Closing) this.maybeRelease(h); else this.receiver.sync(h);
    }
  }

  protected endAddress(h: number, peer: boolean): SocketAddress | undefined {
    const r = this.kind[h] === Kind.Direct ? native!.channelSockName(this.nativeHandle, this.fd[h]!, peer) : native!.sockName(this.fd[h]!, peer);
    // an lwsocket's fd install that did not complete within the call (the completion queue full): not an answer
    if (r === EAGAIN) throw new MegapipeError('EAGAIN', `socketAddress: the kernel's answer did not arrive within the call (the completion queue is full); try again later`, EAGAIN, { syscall: peer ? 'getpeername' : 'getsockname' });
    return typeof r === 'number' ? undefined : { address: r.address, port: r.port, family: r.family === 6 ? 'IPv6' : 'IPv4' };
  }

  // A socket option: an lwsocket's through the ring (a socket command), a regular fd's by setsockopt/getsockopt.
  private sockOpt(h: number, which: SockOpt, value?: number): number {
    const slot = this.fd[h]!;
    if (this.kind[h] === Kind.Direct) {
      return value === undefined ? native!.channelGetSockOpt(this.nativeHandle, slot, which) : native!.channelSetSockOpt(this.nativeHandle, slot, which, value);
    }
    return value === undefined ? native!.getSockOpt(slot, which) : native!.setSockOpt(slot, which, value);
  }

  private sockOptError(h: number, r: number, what: string): MegapipeError {
    // (on a regular fd, EOPNOTSUPP is setsockopt(2)'s own answer: an option this socket does not have, a Unix socket's)
    if (r === EOPNOTSUPP && this.kind[h] === Kind.Direct) return new MegapipeError(MpCode.UNSUPPORTED, `${what}: this kernel has no socket commands for lwsockets (Linux 6.7)`);
    // (channelSetSockOpt: the command could not even be queued, the kernel refusing submissions for now: not set)
    if (r === EBUSY) return new MegapipeError('EAGAIN', `${what}: the kernel refuses submissions for now (the submission queue is full): not set; try again later`, EAGAIN, { syscall: 'setsockopt' });
    if (r === EAGAIN) return new MegapipeError('EAGAIN', `${what}: the kernel's answer did not arrive within the call (the completion queue is full); try again later`, EAGAIN, { syscall: 'getsockopt' });
    return errnoError(r, what);
  }

  protected applySocketOption(h: number, option: SocketOption, value: number): void {
    const r = this.sockOpt(h, SOCKOPT[option], value);
    // EAGAIN: the command's completion did not arrive within the call; it is set when the request runs
    if (r < 0 && r !== EAGAIN) throw this.sockOptError(h, r, `setSocketOption(${option})`);
  }

  protected readSocketOption(h: number, option: SocketOption): number {
    if (this.kind[h] === Kind.Direct && !this.features.fixedFdInstall) throw new MegapipeError(MpCode.UNSUPPORTED, `socketOption(${option}): reading an lwsocket's options needs Linux 6.8 (an fd installed for the call)`);
    const r = this.sockOpt(h, SOCKOPT[option]);
    if (r < 0) throw this.sockOptError(h, r, `socketOption(${option})`);
    return r;
  }

  protected resetConn(h: number): void {
    // SO_LINGER {on, 0}: the close resets the connection. Where it cannot be set (no socket commands), a plain
    // abortive close: the peer sees a reset only if it had sent bytes not yet read. Not queued at all (EBUSY: the
    // kernel refuses submissions for now): nothing is done, the caller may try again (a close now would be a clean end)
    const r = this.sockOpt(h, SockOpt.Linger0, 0);
    if (r === EBUSY) throw this.sockOptError(h, r, 'reset');
    this.disconnect(h, true);
  }

  incomingCpu(h: number): number {
    this.checkConn(h, 'incomingCpu');
    const r = this.kind[h] === Kind.Direct ? native!.channelIncomingCpu(this.nativeHandle, this.fd[h]!) : native!.incomingCpu(this.fd[h]!);
    return r < 0 ? -1 : r;
  }

  // ---- the whole channel ----------------------------------------------------------------------------------------------
  flush(): void { if (!this.closed) this.batch.flush(); }

  stats(): ChannelStats {
    const s = this.nstats, c = this.counters;
    return {
      backend: 'uring', requests: c.requests, flushes: s[Stat.Flushes]!,
      enters: s[Stat.Enters]!, submitted: s[Stat.Sqes]!, completions: s[Stat.Cqes]!, batches: s[Stat.Batches]!,
      wakeups: s[Stat.Wakeups]!, emptyWakeups: s[Stat.EmptyWakeups]!, accepted: c.accepted,
      bytesRead: c.bytesRead, bytesWritten: c.bytesWritten, enobufs: c.enobufs,
      cqOverflows: s[Stat.OverflowFlush]!, tableFullFallbacks: c.tableFullFallbacks,
      filesSpliced: c.filesSpliced, filesSentfile: c.filesSentfile, fileResidencyProbes: c.fileResidencyProbes, spliceNoPipe: c.spliceNoPipe, writesNoCopy: c.writesNoCopy, handles: this.table.open,
      submitFailures: s[Stat.SubmitFailed]!, requestsRefused: s[Stat.RowsRefused]!, recycleRefused: s[Stat.RecycleRefused]!,
      inKernel: s[Stat.Inflight]!,
    };
  }

  close(): void {
    if (this.closed) return;
    // Regular fds this channel owns are closed here by number — but not one whose IORING_OP_CLOSE the kernel has taken
    // already (its number may belong to someone else by now): staged rows go to the kernel first, and a close that is
    // still staged afterwards (refused) has not run.
    const closeStaged = this.batch.closesStaged(Op.Close);
    for (let h = 0; h < this.kind.length; h++) {
      if (this.kind[h] !== Kind.Fd || (this.state[h]! & St.KeepFd)) continue;
      if (!(this.state[h]! & St.CloseIssued) || closeStaged.has(h)) native!.closeFd(this.fd[h]!);
    }
    for (const p of this.installs.values()) p.reject(new MegapipeError(MpCode.CLOSED, 'toFd: the channel was closed'));
    this.installs.clear();
    this.files.close();
    native!.channelRef(this.nativeHandle, false);
    this.closed = true;
    this.heldBufs.clear();
    this.batch.close();
    this.acceptor.close();
    const r = native!.channelClose(this.nativeHandle);
    // listener members' dups (see register): after the teardown, which ended the accepts armed on them
    for (let h = 0; h < this.kind.length; h++) if (this.kind[h] === Kind.Listener) native!.closeFd(this.fd[h]!);
    // the kernel still had requests after the teardown's deadline (never seen; a kernel bug or a stuck device): a
    // no-copy send may still read its buffer, so those stay alive for good (the addon keeps its own memory mapped)
    const refs = this.sendQueue.referenced();
    if (r < 0) pinnedForever.push(...refs);
    this.endDispatch();
  }
}
