// The handle table: what a channel knows of each handle, in typed arrays indexed by the handle (no object per
// connection), and the free list. A handle is a small integer local to its channel (MegaPipe's lwsocket name); its
// generation is carried in every request's user_data, so that a completion for a handle closed and reused since is
// recognized as stale. Each backend keeps its own per-handle arrays beside these (the io_uring backend's descriptors,
// send queues, …), indexed the same way, and sizes them from `size`.

/** What a handle is. */
export const enum Kind { Free = 0, Listener = 1, Direct = 2, Fd = 3 }

/** Per-handle state bits. */
export const enum St {
  Reading = 1 << 0,          // a connection: the application asked for reads (read())
  Accepting = 1 << 0,        // a listener: keep accepting (accept() without a count) — the same bit, a handle is one or the other
  RecvArmed = 1 << 1,        // a receive request is in the kernel
  RecvCancel = 1 << 2,       // a cancel of it is in flight
  PausedUser = 1 << 3,       // pause() by the application
  PausedHwm = 1 << 4,        // queued send bytes above the high-water mark
  Eof = 1 << 5,              // the peer closed its side
  Closing = 1 << 6,          // disconnect/unregister requested: no new operations
  CloseAfterDrain = 1 << 7,  // a graceful close waits for the queued bytes to go
  CloseIssued = 1 << 8,      // the close of the socket is staged (or done)
  Errored = 1 << 9,          // an operation failed: the connection is unusable
  Connecting = 1 << 10,
  AcceptMulti = 1 << 11,     // the listener's keep-accepting request is armed
  AcceptFdMode = 1 << 12,    // the listener accepts regular fds (lwsocket: false, or the table is full)
  KeepFd = 1 << 13,          // unregister: leave the fd open for its owner
  AboveHwm = 1 << 14,        // write() returned false: a 'write' event follows below the low-water mark
  Installing = 1 << 15,      // toFd() in progress
  AcceptCancel = 1 << 16,    // a cancel of the listener's multishot accept is in flight (the table is nearly full)
  WriteEnded = 1 << 17,      // end(): no more writes; the write side shuts down once queued bytes are sent
  ShutdownPending = 1 << 18, // end() with bytes still queued (or connecting): the shutdown waits for them
  CloseLinked = 1 << 19,     // graceful close: the close is hard-linked behind the send in flight (io_uring)
  RecvSeen = 1 << 20,        // a receive was armed before: the first is single-shot, later ones per the receive mode (uring/receive.ts)
  PausedQueue = 1 << 21,     // undispatched events passed limits.dispatchQueueMax: resumed when dispatch() drains them
  /** Any reason not to deliver reads now. */
  Paused = PausedUser | PausedHwm | PausedQueue,
}

export class HandleTable {
  readonly kind: Uint8Array;
  readonly gen: Uint32Array;
  readonly state: Uint32Array;
  readonly cookies: unknown[];
  private readonly freeIds: Int32Array;
  private freeTop: number;
  /** Open handles. */
  open = 0;

  constructor(readonly size: number) {
    this.kind = new Uint8Array(size);
    this.gen = new Uint32Array(size);
    this.state = new Uint32Array(size);
    this.cookies = new Array(size).fill(undefined);
    this.freeIds = new Int32Array(size);
    for (let i = 0; i < size; i++) this.freeIds[i] = size - 1 - i;   // hand out low ids first
    this.freeTop = size;
  }

  /** A new handle of `kind` with `cookie` (state 0, the next generation), or -1 when every handle is in use. */
  alloc(kind: Kind, cookie: unknown): number {
    if (this.freeTop === 0) return -1;
    const h = this.freeIds[--this.freeTop]!;
    this.kind[h] = kind;
    this.state[h] = 0;
    this.gen[h] = (this.gen[h]! + 1) & 0xffffff;
    this.cookies[h] = cookie;
    this.open++;
    return h;
  }

  free(h: number): void {
    this.kind[h] = Kind.Free;
    this.state[h] = 0;
    this.cookies[h] = undefined;
    this.freeIds[this.freeTop++] = h;
    this.open--;
  }

  /** `h` names an open (possibly closing) handle. */
  isOpen(h: number): boolean { return (h >>> 0) === h && h < this.size && this.kind[h] !== Kind.Free; }
}
