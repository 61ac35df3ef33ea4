// Files through the ring, in order with a connection's writes, with no thread pool and no copy in JavaScript.
// sendFile of a region shorter than limits.spliceMinBytes (or when no pipe is free): IORING_OP_READ of the file into
// the connection's next send chunks, which are sent once filled. A longer region is spliced — file → pipe → socket,
// page-cache pages, no copy at all — in rounds, each one linked chain: SpliceIn (file → pipe, up to the pipe's
// capacity) → Poll (the socket writable) → SpliceOut (pipe → socket, what fits); while the pipe still holds bytes,
// Poll → SpliceOut. The kernel runs splices in io-wq workers; both ends are nonblocking (the pipe, the socket), so a
// worker never waits for a peer: the poll does, in the ring. A marker chunk keeps the piece's place in the send chain;
// one pipe of the pool per connection at most (a stalled peer holds one, not the pool). A region of at least
// limits.sendfileMinBytes that is all in the page cache (cachestat) goes instead with sendfile(2) from this thread,
// in rounds: Poll (the socket writable) → sendfile of what the socket takes (a regular fd of the socket: an lwsocket's
// is installed for the piece) — the same zero-copy pages as a splice, without the two io-wq punts per pipe-full. The
// residency check keeps the thread from waiting for the disk. readFile reads through free chunks into a Buffer.
import { native } from '../native.js';
import { MegapipeError, MpCode, errnoError, shortFileError } from '../errors.js';
import { Kind, St } from '../handle-table.js';
import { bounds } from '../limits.js';
import { Op, Tag, RowFlag, Kernel } from './abi.js';
import { MARK_SPLICE, type SendQueue } from './send-queue.js';
import type { UringChannel } from './channel.js';

const EIO = -5, EBADF = -9, EAGAIN = -11, EINVAL = -22, ECANCELED = -125;

// What this thread has learnt of cachestat(2), the residency probe: nothing until a call fails. Then whether the kernel
// answers at all: a failure may be the file's (EPERM for a file the process may neither write nor own, Linux 6.14+;
// EOPNOTSUPP on hugetlbfs; EBADF) — that sendFile goes without sendfile, the next one asks again (a file's identity
// would cost a system call to check: as much as the probe) — or the kernel's (ENOSYS before 6.5) or a sandbox's (a
// seccomp filter, whatever errno it answers), the same for every call and every channel of the thread: cachestat is
// then never called again. Told apart by one call with an fd that is not open, which a kernel with cachestat fails
// with EBADF before any other check. A file refused is never sent with sendfile: there is no second probe. Linux hides
// the page-cache residency of a file the process may neither write nor own (a cache side channel), and mincore(2), the
// obvious fallback, hides it by reporting every page of such a file resident, evicted or not (a rule older than
// cachestat's; seen on 6.18: bench/scripts/residency-probes.c): sendfile on that answer could wait for the disk. A
// server that wants sendfile for such files owns them, or has CAP_FOWNER (then cachestat answers).
let cachestatAnswers = false, cachestatRefused = false;

/**
 * A file region being sent (sendFile: `h` is the connection) or read (readFile: `h` is -1, `out` the result), read by
 * IORING_OP_READ into send-arena chunks, at most one read per chunk, or spliced. Settles when no operation of it is in
 * flight: the caller may close the fd then (a read staged but not yet submitted must still find it open).
 */
export interface FilePiece {
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
  /** sent with sendfile: a regular fd of the connection's socket (-1: not) */
  sock: number;
  /** the errno and code the connection fails with when this piece fails (a send error, or the file's) */
  errRes: number;
  errCode: string | undefined;
  resolve: (v: Buffer | undefined) => void;
  reject: (e: Error) => void;
}

/** A nonblocking pipe of the splice pool (native pipeOpen). */
interface Pipe { r: number; w: number; cap: number }

export class Files {
  /** Whether sendFile may splice (the kernel has splice and poll, and the pool may have pipes). */
  readonly spliceOk: boolean;
  /** Whether sendFile may use sendfile(2) for resident regions (cleared when the kernel turns out to lack fd
   * installation; a kernel or sandbox refusing cachestat is the thread's verdict: cachestatRefused). */
  private sendfileOk: boolean;
  private readonly sq: SendQueue;
  private readonly state: Uint32Array;
  private readonly pieces = new Set<FilePiece>();
  private readonly readWaiters: FilePiece[] = [];
  // the pipe pool (at most limits.splicePipes, opened on demand); per handle, the piece whose splice round is in
  // flight, and whether the handle holds a pipe
  private readonly pipesFree: Pipe[] = [];
  private pipesOpen = 0;
  private readonly splicing: (FilePiece | undefined)[];
  private readonly hasPipe: Uint8Array;
  // per handle: the regular fd installed for an lwsocket's sendfile (-1: none) and the pieces that hold it (queued or
  // being sent: p.sock). When none does, it is closed at the end of the turn (closeIdleSockets; handles in sockIdle):
  // one process fd per connection that is sending a file, not per connection that ever did, and a sendFile made as
  // the last one resolves still finds it
  private readonly sockFd: Int32Array;
  private readonly sockUsers: Int32Array;
  private readonly sockIdle: number[] = [];
  private sockIdleTask = false;
  private readonly closeIdleSockets = (): void => {
    this.sockIdleTask = false;
    for (const h of this.sockIdle.splice(0)) if (this.sockUsers[h] === 0) this.forgetSocket(h);
  };

  constructor(private readonly ch: UringChannel, ops: readonly number[]) {
    this.sq = ch.sendQueue;
    this.state = ch.table.state;
    this.spliceOk = ch.limits.splicePipes > 0 && ops.includes(Kernel.OpSplice) && ops.includes(Kernel.OpPollAdd);
    this.sendfileOk = ch.limits.sendfileMinBytes > 0 && typeof native?.sendFileTo === 'function' &&
      ops.includes(Kernel.OpPollAdd);
    this.splicing = new Array(ch.table.size).fill(undefined);
    this.hasPipe = new Uint8Array(ch.table.size);
    this.sockFd = new Int32Array(ch.table.size).fill(-1);
    this.sockUsers = new Int32Array(ch.table.size);
  }

  /** sendFile on connection `h` (arguments checked, length > 0). */
  send(h: number, fd: number, position: number, length: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const p = newPiece(fd, position, length, h, null, () => resolve(), reject);
      this.pieces.add(p);
      if (this.sendfileOk && length >= this.ch.limits.sendfileMinBytes && this.takeSocket(h, p)) this.ch.counters.filesSentfile++;
      else if (length >= this.ch.limits.spliceMinBytes && this.spliceOk && this.hasPipe[h] === 0) {
        p.pipe = this.takePipe();
        if (p.pipe !== null) { this.hasPipe[h] = 1; this.ch.counters.filesSpliced++; } else this.ch.counters.spliceNoPipe++;
      }
      this.sq.queuePiece(h, p, length);
    });
  }

  // Whether the region of piece `p` is all in the page cache (false when that cannot be known: see cachestatRefused).
  private resident(p: FilePiece): boolean {
    if (cachestatRefused) return false;
    const counters = this.ch.counters;
    const r = native!.fileCached(p.fd, p.pos, p.left);
    counters.fileResidencyProbes++;
    if (r >= 0) return r === 1;
    if (!cachestatAnswers) {
      counters.fileResidencyProbes++;
      if (native!.fileCached(-1, 0, 1) === EBADF) cachestatAnswers = true; else cachestatRefused = true;
    }
    return false;
  }

  // Piece `p` of `h` goes with sendfile when its region is all in the page cache and the socket has a nonblocking fd
  // (an lwsocket's installed, shared by its pieces until none is left: releaseSocket): then p.sock is set.
  private takeSocket(h: number, p: FilePiece): boolean {
    if (!this.resident(p)) return false;
    const ch = this.ch;
    let fd = ch.fd[h]!;
    if (ch.table.kind[h] === Kind.Direct) {
      fd = this.sockFd[h]!;
      if (fd < 0) {
        fd = native!.channelInstallFd(ch.nativeHandle, ch.fd[h]!);
        if (fd < 0) {
          if (fd === EINVAL) this.sendfileOk = false;   // before Linux 6.8: no fd for an lwsocket
          return false;
        }
        this.sockFd[h] = fd;
      }
      this.sockUsers[h]!++;
    } else if (native!.fdNonblocking(fd) !== 1) return false;   // a registered blocking socket: sendfile could wait for the peer
    p.sock = fd;
    return true;
  }

  /** readFile (arguments checked, length > 0): the ring reads through free send chunks into a new Buffer. */
  read(fd: number, position: number, length: number): Promise<Buffer> {
    const out = Buffer.allocUnsafe(length);
    return new Promise<Buffer>((resolve, reject) => {
      // a read holds the event loop until it settles (settle), as an open handle does
      this.ch.loopUse(1);
      const p = newPiece(fd, position, length, -1, out, (b) => resolve(b!), reject);
      this.pieces.add(p);
      this.pumpRead(p);
      if (p.left > 0 && p.reading === 0) this.readWaiters.push(p);   // no chunk free: wait for one
    });
  }

  /** @internal Gives piece `p` its place in `h`'s send chain; false when the chain has no room for it now. */
  appendPiece(h: number, p: FilePiece): boolean {
    return p.pipe !== null || p.sock >= 0 ? this.appendSplice(h, p) : this.appendFile(h, p);
  }

  // A spliced piece (or one sent with sendfile): a chunk of its own marks its place (full, so that later writes go into a new chunk behind it).
  private appendSplice(h: number, p: FilePiece): boolean {
    const sq = this.sq;
    if (!sq.roomFor(h)) return false;
    const c = sq.linkChunk(h);
    sq.chunkEnd[c] = sq.chunk; sq.cMark[c] = MARK_SPLICE; sq.fillPiece[c] = p;
    return true;
  }

  // Gives reads to piece `p` of connection `h` into its chain (the free end of the tail chunk, then new chunks) as far
  // as the connection's chunk budget and the arena allow. True when every byte of it has a read.
  private appendFile(h: number, p: FilePiece): boolean {
    const sq = this.sq, C = sq.chunk;
    while (p.left > 0) {
      let c = sq.tailChunk[h]!, at = 0;
      if (c >= 0 && sq.chunkEnd[c]! < C && sq.filling[c] === 0) at = sq.chunkEnd[c]!;
      else {
        if (!sq.roomFor(h)) return false;
        c = sq.linkChunk(h);
      }
      const n = Math.min(p.left, C - at);
      sq.filling[c] = 1; sq.fillAt[c] = at; sq.fillEnd[c] = sq.chunkEnd[c] = at + n; sq.fillPiece[c] = p;
      this.stageRead(c, at, n, p);
    }
    return true;
  }

  // readFile: reads into free chunks (detached from any connection), at most maxChunksPerConn at once.
  private pumpRead(p: FilePiece): void {
    const sq = this.sq;
    while (p.left > 0 && p.failed === null && p.reading < sq.maxChunksPerConn && sq.freeCount > 0) {
      const c = sq.freeChunks[--sq.freeCount]!;
      const n = Math.min(p.left, sq.chunk);
      sq.filling[c] = 1; sq.fillAt[c] = 0; sq.fillEnd[c] = n; sq.fillPiece[c] = p;
      sq.nextChunk[c] = p.pos - p.outBase;   // where the bytes go in p.out
      this.stageRead(c, 0, n, p);
    }
  }

  /** @internal readFile pieces waiting for a free chunk get one. */
  pumpReadWaiters(): void {
    while (this.readWaiters.length > 0 && this.sq.freeCount > 0) {
      const p = this.readWaiters.shift()!;
      this.pumpRead(p);   // once it has a read in flight, its completions keep it going
      if (p.left > 0 && p.reading === 0 && p.failed === null) { this.readWaiters.unshift(p); break; }
    }
  }

  private stageRead(c: number, at: number, n: number, p: FilePiece): void {
    const pos = p.pos;
    p.pos += n; p.left -= n; p.reading++;
    this.sq.fillPos[c] = pos;
    this.ch.stageRead(p.fd, posFlags(pos), c, c * this.sq.chunk + at, n, posLow(pos));
  }

  /** A file read into chunk `c` completed with `res`. */
  onFileRead(c: number, res: number): void {
    const sq = this.sq;
    const p = sq.fillPiece[c];
    if (p === undefined || sq.filling[c] === 0) return;
    const at = sq.fillAt[c]!, n = sq.fillEnd[c]! - at;
    sq.filling[c] = 0;
    sq.fillPiece[c] = undefined;
    p.reading--;
    if (sq.releaseIfOrphan(c)) {   // its connection dropped it meanwhile
      this.settle(p);
      return;
    }
    if (p.h < 0) {
      // readFile: copy out, free the chunk, read on
      if (p.failed === null) {
        const to = sq.nextChunk[c]!;
        if (res < 0) p.failed = errnoError(res, 'readFile');
        else {
          if (res > 0) sq.arena.copy(p.out!, to, c * sq.chunk, c * sq.chunk + res);
          if (res < n) { p.eof = Math.min(p.eof, to + res); p.left = 0; }   // the file ended: read no further
        }
      }
      sq.freeChunks[sq.freeCount++] = c;
      if (p.failed === null) this.pumpRead(p);
      this.settle(p);
      sq.pumpWaiters();
      return;
    }
    const h = p.h;
    if (res !== n) {
      // a read error, or the file is shorter than promised: the connection's stream cannot continue in order
      p.failed ??= res < 0 ? errnoError(res, 'sendFile') : shortFileError(sq.fillPos[c]! + res, p.pos + p.left);
      sq.chunkEnd[c] = at;   // still in the chain: failSends' dropQueue frees it with the rest
      this.settle(p);
      sq.failSends(h, res < 0 ? res : EIO, res < 0 ? undefined : MpCode.SHORT_FILE);
      return;
    }
    this.settle(p);
    sq.kick(h);
  }

  // Resolves or rejects a piece once none of its operations is in flight.
  private settle(p: FilePiece): void {
    if (p.reading > 0 || !this.pieces.has(p)) return;
    if (p.failed === null && p.left > 0) return;
    this.pieces.delete(p);
    if (p.h < 0) this.ch.loopUse(-1);
    if (p.failed !== null) { p.reject(p.failed); return; }
    p.resolve(p.out === null ? undefined : p.eof < p.out.length ? p.out.subarray(0, p.eof) : p.out);
  }

  /** @internal A piece in `h`'s overflow list is dropped with the queue. */
  dropPiece(h: number, p: FilePiece): void {
    p.failed ??= new MegapipeError(MpCode.CLOSED, `sendFile: connection ${h} closed`);
    if (p.pipe !== null || p.sock >= 0) this.endSplice(p); else this.settle(p);
  }

  /** @internal The marker chunk of spliced piece `p` left `h`'s chain (its bytes are sent, or the queue was dropped). */
  markerPopped(h: number, p: FilePiece): void {
    if (p.left > 0 || p.inPipe > 0 || p.ops > 0) {
      p.failed ??= new MegapipeError(MpCode.CLOSED, `sendFile: connection ${h} closed`);
      p.dropped = true;
      if (p.ops > 0) { this.cancelSplicePoll(h); return; }
    }
    this.endSplice(p);
  }

  // ---- splice rounds ------------------------------------------------------------------------------------------
  /** @internal Starts the next round of the spliced piece at the head of `h` (chunk `c`); false when the piece is
   * done (its marker popped: the chain goes on). */
  spliceNext(h: number, c: number): boolean {
    const ch = this.ch, sq = this.sq;
    const p = sq.fillPiece[c]!;
    if (p.ops > 0) return true;
    if (p.inPipe === 0 && p.left === 0) { sq.popChunk(h); return false; }
    if (p.sock >= 0) {
      // sendfile round: wait until the socket is writable (a timed wait once the peer half-closed, as below), then
      // onSendfileRound sends what it takes
      if (p.waitMs === 0) ch.stage(Op.Poll, h, ch.fd[h]!, ch.fixed(h), 0, 0, Kernel.PollOut, Tag.SplicePoll);
      else ch.stage(Op.Timeout, h, -1, 0, p.waitMs, 0, 0, Tag.SpliceWait);
      p.ops++;
      this.splicing[h] = p;
      sq.inFlight[h] = p.left;
      sq.flightChunk[h] = c;
      return true;
    }
    const pipe = p.pipe!;
    ch.batch.beginChain(3);
    let n = p.inPipe;
    if (n === 0) {
      n = Math.min(p.left, pipe.cap);
      ch.stage(Op.Splice, h, pipe.w, RowFlag.Link | posFlags(p.pos), p.fd, n, posLow(p.pos), Tag.SpliceIn);
      p.ops++;
    }
    // SPLICE_F_MORE (MSG_MORE) while more of the file follows: full segments only, as nginx's tcp_nopush; the last
    // splice of the file pushes
    const more = p.left - (p.inPipe === 0 ? n : 0) > 0 ? RowFlag.More : 0;
    if (p.waitMs === 0) {
      ch.stage(Op.Poll, h, ch.fd[h]!, ch.fixed(h) | RowFlag.Link, 0, 0, Kernel.PollOut, Tag.SplicePoll);
      p.ops++;
    } else if (p.inPipe > 0) {
      // the peer has half-closed: io_uring's poll always reports POLLRDHUP then, so it cannot wait for room in the send
      // buffer any more. The pipe still holds what the socket did not take: wait a little (doubling up to
      // bounds.spliceWaitMaxMs while nothing moves), then try again. (A fresh pipe-full goes out at once.)
      ch.stage(Op.Timeout, h, -1, RowFlag.Hardlink, p.waitMs, 0, 0, Tag.SpliceWait);
      p.ops++;
    }
    ch.stage(Op.Splice, h, ch.fd[h]!, ch.fixed(h) | RowFlag.NoOff | more, pipe.r, n, 0, Tag.SpliceOut);
    p.ops++;
    this.splicing[h] = p;
    sq.inFlight[h] = n;
    sq.flightChunk[h] = c;
    ch.batch.endChain();
    return true;
  }

  /** A completion of the splice round of `h` (`tag`: which of its operations). */
  onSplice(h: number, tag: number, res: number): void {
    const ch = this.ch, sq = this.sq;
    const p = this.splicing[h]!;
    p.ops--;
    if (p.sock >= 0) return this.onSendfileRound(h, p, tag, res);
    if (tag === Tag.SplicePoll) {
      // the poll came back without POLLOUT (only POLLRDHUP: the peer half-closed, and io_uring's poll reports it at
      // once every time from now on): later rounds wait on a timer instead (see spliceNext)
      if (res >= 0 && (res & Kernel.PollOut) === 0 && p.waitMs === 0) p.waitMs = 1;
    } else if (tag === Tag.SpliceIn) {
      if (res > 0) { p.pos += res; p.left -= res; p.inPipe += res; p.moved = true; }   // short (not the file's end): the round ends, the next reads on
      else if (res !== EAGAIN && p.errRes === 0) {
        p.failed ??= res < 0 ? errnoError(res, 'sendFile') : shortFileError(p.pos, p.pos + p.left);
        p.errRes = res < 0 ? res : EIO; p.errCode = res < 0 ? undefined : MpCode.SHORT_FILE;
      }
    } else if (tag === Tag.SpliceOut) {
      if (res > 0) {
        p.inPipe -= res; p.wrote += res; p.moved = true;
        sq.pend[h]! -= res;
        ch.counters.bytesWritten += res;
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
    if (this.endRound(h, p)) return;
    const wrote = p.wrote, moved = p.moved;
    p.wrote = 0; p.moved = false;
    this.settleRound(h, p, wrote, moved);
  }

  // The round of `h` has no operation left: the connection's send slot is free again; a dropped piece ends here
  // (true), and a closing connection is released once nothing of it is in flight.
  private endRound(h: number, p: FilePiece): boolean {
    this.splicing[h] = undefined;
    this.sq.inFlight[h] = 0; this.sq.flightChunk[h] = -1;
    if (!p.dropped) return false;
    this.endSplice(p);
    if (this.state[h]! & St.Closing) this.ch.maybeRelease(h);
    return true;
  }

  // Accounts a finished round that sent `wrote` bytes (`moved`: it moved any) and starts the next or fails the piece.
  // A round that moved nothing (EAGAIN after the poll; not expected) is retried, a bounded number of times in a row; on
  // timed waits (after a half-close) it only waits longer: the application's deadlines bound a stalled peer.
  private settleRound(h: number, p: FilePiece, wrote: number, moved: boolean): void {
    if (p.waitMs > 0) p.waitMs = moved ? 1 : Math.min(p.waitMs * 2, bounds.spliceWaitMaxMs);
    p.idle = moved || p.waitMs > 0 ? 0 : p.idle + 1;
    if (p.errRes === 0 && p.idle > bounds.spliceIdleRounds) {
      p.failed ??= errnoError(EIO, 'sendFile');
      p.errRes = EIO;
    }
    if (p.errRes !== 0) return this.sq.failSends(h, p.errRes, p.errCode);
    this.sq.afterSend(h, wrote);
  }

  // The wait of a sendfile round of `h` is over (its poll, or its timed wait after a half-close): send what the socket
  // takes now, then account the round like a splice round.
  private onSendfileRound(h: number, p: FilePiece, tag: number, res: number): void {
    if (this.endRound(h, p)) return;
    // only POLLRDHUP (the peer half-closed: io_uring's poll reports it at once from now on): timed waits from now on
    if (tag === Tag.SplicePoll && res >= 0 && (res & Kernel.PollOut) === 0 && p.waitMs === 0) p.waitMs = 1;
    let wrote = 0;
    while (p.left > 0) {
      const want = p.left;
      const n = native!.sendFileTo(p.sock, p.fd, p.pos, want);
      if (n > 0) {
        p.pos += n; p.left -= n; wrote += n;
        if (n < want) break;   // the send buffer is full: the next round waits for room
        continue;
      }
      if (n === 0) {
        p.failed ??= shortFileError(p.pos, p.pos + p.left);
        p.errRes = EIO; p.errCode = MpCode.SHORT_FILE;
      } else if (n !== EAGAIN) {
        p.failed ??= errnoError(n, 'sendFile');
        p.errRes = n; p.errCode = undefined;
      }
      break;
    }
    if (wrote > 0) {
      this.sq.pend[h]! -= wrote;
      this.ch.counters.bytesWritten += wrote;
    }
    this.settleRound(h, p, wrote, wrote > 0);
  }

  // A poll of a dropped piece would wait for a peer that may never read again: cancel it (by user_data; if it is not
  // armed yet, the next completion of the round tries again).
  private cancelSplicePoll(h: number): void {
    this.ch.cancel(h, Tag.SplicePoll);
  }

  // A spliced piece is done, failed or dropped, with nothing in flight: its pipe goes back to the pool (closed instead
  // if bytes are left in it), and its promise settles.
  private endSplice(p: FilePiece): void {
    this.releaseSocket(p);
    const pipe = p.pipe;
    if (pipe !== null) {
      p.pipe = null;
      if (p.h >= 0) this.hasPipe[p.h] = 0;
      if (p.inPipe === 0 && !this.ch.isClosed) this.pipesFree.push(pipe);
      else { closePipe(pipe); this.pipesOpen--; }
    }
    if (p.failed === null) p.left = 0;
    this.settle(p);
  }

  // A sendfile piece is done with the socket's fd (nothing of it in flight: a round's sendfile runs on this thread, its
  // poll waits on the connection's own descriptor). The last piece of an lwsocket to hold its installed fd leaves it
  // to closeIdleSockets.
  private releaseSocket(p: FilePiece): void {
    const h = p.h;
    // (a piece always ends before its connection is released: the fd it holds is still its connection's)
    if (p.sock >= 0 && p.sock === this.sockFd[h] && --this.sockUsers[h]! === 0) {
      this.sockIdle.push(h);
      if (!this.sockIdleTask) { this.sockIdleTask = true; setImmediate(this.closeIdleSockets); }
    }
    p.sock = -1;
  }

  /** @internal Connection `h` closes (nothing of it in flight), or no piece holds its installed fd: that fd is closed. */
  forgetSocket(h: number): void {
    const fd = this.sockFd[h]!;
    this.sockUsers[h] = 0;
    if (fd >= 0) { this.sockFd[h] = -1; native!.closeFd(fd); }
  }

  private takePipe(): Pipe | null {
    const free = this.pipesFree.pop();
    if (free !== undefined) return free;
    if (this.pipesOpen >= this.ch.limits.splicePipes) return null;
    const r = native!.pipeOpen(this.ch.limits.splicePipeBytes);
    if (typeof r === 'number') return null;   // out of fds or memory: this sendFile reads into the arena instead
    this.pipesOpen++;
    return { r: r[0], w: r[1], cap: r[2] };
  }

  /** The channel closes: every piece rejects (MP_ERR_CLOSED), every pipe closes. */
  close(): void {
    for (const p of this.pieces) {
      if (p.pipe !== null) { closePipe(p.pipe); p.pipe = null; }
      this.releaseSocket(p);
      p.reject(new MegapipeError(MpCode.CLOSED, 'sendFile/readFile: the channel was closed'));
    }
    this.pieces.clear();
    for (let h = 0; h < this.sockFd.length; h++) this.forgetSocket(h);
    for (const pipe of this.pipesFree) closePipe(pipe);
    this.pipesFree.length = 0;
    this.pipesOpen = 0;
    this.readWaiters.length = 0;
  }
}

function closePipe(pipe: Pipe): void {
  native!.closeFd(pipe.r);
  native!.closeFd(pipe.w);
}

// A file position in a row: the low 32 bits in `c`, the rest in the row flags from bit RowFlag.PosShift up.
function posLow(pos: number): number { return pos % 0x100000000; }
function posFlags(pos: number): number { return Math.floor(pos / 0x100000000) << RowFlag.PosShift; }

function newPiece(fd: number, pos: number, length: number, h: number, out: Buffer | null, resolve: (v: Buffer | undefined) => void, reject: (e: Error) => void): FilePiece {
  return {
    fd, pos, left: length, reading: 0, h, failed: null, out, outBase: pos, eof: length, resolve, reject,
    pipe: null, inPipe: 0, ops: 0, wrote: 0, moved: false, idle: 0, waitMs: 0, dropped: false, sock: -1,
    errRes: 0, errCode: undefined,
  };
}
