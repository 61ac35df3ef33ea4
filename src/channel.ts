// The channel contract: MegaPipe's per-thread pipe of I/O requests down and completion events up (the paper's mp_*
// API). One interface, two backends (io_uring through the addon, src/uring/; node:net, src/portable/), both built on
// ChannelCore (src/channel-core.ts) and chosen in one place, createChannel (src/backend.ts). Types only: every member's
// contract is here.
import type { EventHandler, MpEvent } from './event.js';
import type { Limits } from './limits.js';
import type { Listener } from './listener.js';

/** Which backend a channel runs on: io_uring, node:net, or io_uring where it works (the default). */
export type BackendName = 'auto' | 'uring' | 'portable';

export interface RegisterOptions {
  /** For a partitioned listener: the CPUs whose connections this channel accepts (selects the member). */
  cpuMask?: readonly number[];
  /** Or the member index directly. */
  member?: number;
}

export interface AcceptOptions {
  /** Connections to accept: Infinity (default) keeps accepting; n accepts exactly n. */
  count?: number;
  /** true (default): each connection is an lwsocket (io_uring direct descriptor); false: a regular fd. */
  lwsocket?: boolean;
}

export interface ConnectOptions {
  /** Source address to bind (e.g. one of 127.0.0.0/8, to spread many short connections over source ports). */
  localAddress?: string;
  /** Source port to bind (0 or absent: the kernel's choice at connect), with SO_REUSEADDR as node:net binds it. */
  localPort?: number;
}

export interface ChannelOptions {
  /** 'auto' (default; or MEGAPIPE_BACKEND=uring|portable), 'uring' (fail if unavailable), 'portable'. */
  backend?: BackendName;
  /** Overrides of the limits (see limits.ts). */
  limits?: Partial<Limits>;
  /** Batch threshold (staged requests that trigger a flush); 1 = no batching. Same as limits.batch. */
  batch?: number;
  /** Pin the calling thread to this CPU (the channel's thread: main thread or a worker). */
  cpu?: number;
  /** Pause receiving on a connection whose queued writes exceed the high-water mark (default true). */
  pauseReadsAboveHighWater?: boolean;
}

/** The TCP options `setSocketOption` sets and `socketOption` reads. */
export type SocketOption = 'noDelay' | 'keepAlive' | 'keepAliveDelay';

/** One end of a connection, as node:net's `socket.address()` gives it. */
export interface SocketAddress {
  readonly address: string;
  readonly port: number;
  readonly family: 'IPv4' | 'IPv6';
}

/** What a channel's backend offers (the same keys on both backends). */
export interface Features {
  /** Connections can be lwsockets: io_uring direct descriptors, never in the process fd table. */
  readonly lwsocket: boolean;
  /** Requests are batched into one system call per flush. */
  readonly batching: boolean;
  /** toFd converts an lwsocket to a regular fd (IORING_OP_FIXED_FD_INSTALL, Linux 6.8). */
  readonly fixedFdInstall: boolean;
  /** sendFile splices long file regions (page cache → pipe → socket, no copy). */
  readonly splice: boolean;
  /** The ring's set-up: IORING_SETUP_DEFER_TASKRUN, SINGLE_ISSUER, a registered ring fd, recv/send bundles. */
  readonly deferTaskrun: boolean;
  readonly singleIssuer: boolean;
  readonly registeredRing: boolean;
  readonly bundles: boolean;
  /** How a connection's receives after its first are made: 'multishot' (one request until cancelled: DEFER_TASKRUN
   * rings), 'single' (one request per completion: rings without DEFER_TASKRUN), 'capped' (multishot ending by itself
   * after 256 KiB and armed again: such rings on Linux 6.17+, only with MEGAPIPE_RECV=capped), 'stream' (portable). */
  readonly receive: 'multishot' | 'capped' | 'single' | 'stream';
  /** Submission and completion queue entries, and the set-up flags the kernel accepted (0 on the portable backend). */
  readonly sqEntries: number;
  readonly cqEntries: number;
  readonly setupFlags: number;
}

export interface ChannelStats {
  backend: 'uring' | 'portable';
  /** Operations requested by the application (accept, read, write, disconnect, connect…). */
  requests: number;
  /** Flushes of staged requests to the kernel (one io_uring_enter each, or one node:net write for the portable backend). */
  flushes: number;
  /** io_uring_enter system calls (0 for the portable backend). */
  enters: number;
  /** Submission entries the kernel accepted. */
  submitted: number;
  /** Completions received. */
  completions: number;
  /** Completion batches handed to JavaScript (one native→JS call each). */
  batches: number;
  /** eventfd wake-ups of the channel, and those that found nothing to do. */
  wakeups: number;
  emptyWakeups: number;
  /** Connections accepted. */
  accepted: number;
  bytesRead: number;
  bytesWritten: number;
  /** Receives re-armed after the buffer ring ran dry (-ENOBUFS). */
  enobufs: number;
  /** Completion-queue overflows the kernel held back and the channel flushed. */
  cqOverflows: number;
  /** Connections accepted as regular fds because the direct-descriptor table was full. */
  tableFullFallbacks: number;
  /** sendFile calls sent by splice (page-cache pages to the socket, no copy; io_uring), and those that wanted to but
   * found no pipe free (limits.splicePipes) and read into the send arena instead. */
  filesSpliced: number;
  /** sendFile calls sent with sendfile(2) (their whole region in the page cache: limits.sendfileMinBytes; io_uring). */
  filesSentfile: number;
  /** cachestat(2) calls made to learn whether a sendFile's region is in the page cache (io_uring; one per sendFile of
   * at least limits.sendfileMinBytes, one more the first time such a call fails; none once the thread has found that
   * the kernel or its sandbox refuses cachestat altogether). */
  fileResidencyProbes: number;
  spliceNoPipe: number;
  /** Writes sent from the caller's (or an overflow copy's) memory without a copy into the send arena (io_uring). */
  writesNoCopy: number;
  /** Open handles now. */
  handles: number;
  /** Flushes the kernel refused (io_uring_enter failed: memory or completion-queue pressure); their requests stayed
   * staged and were retried, or failed with the error (io_uring; 0 on the portable backend). */
  submitFailures: number;
  /** Requests the native side refused as malformed (completed with EINVAL; a bug if ever non-zero). */
  requestsRefused: number;
  /** Receive buffers returned twice or out of range, refused by the native side (a bug if ever non-zero). */
  recycleRefused: number;
  /** Requests in the kernel now (io_uring: submitted, final completion not yet drained). */
  inKernel: number;
}

/**
 * The paper's API (mp_*) on one event-loop thread. Handles are small integers local to the channel. Arguments are
 * checked first: a bad one throws a TypeError or RangeError naming it (code MP_ERR_INVALID_ARG / MP_ERR_OUT_OF_RANGE);
 * an operation on a handle that is not open throws MP_ERR_BAD_HANDLE, on one that is closing MP_ERR_CLOSED. Operating
 * errors (a peer's reset, a refused connect) arrive as `error` events with a stable code, never as exceptions.
 */
export interface Channel {
  readonly backend: 'uring' | 'portable';
  readonly limits: Limits;
  readonly features: Features;
  /** The CPU this channel's thread was pinned to, or -1. */
  readonly cpu: number;
  /** The batch threshold (staged requests that trigger a flush, 1..limits.requestRows); 1 disables batching. */
  batchThreshold: number;
  /**
   * mp_register: makes a handle for a listener member (chosen by `cpuMask` among the listener's partitions, or
   * `member`) or for a connected socket fd (the channel owns it from now on; `unregister` gives it back). The
   * channel keeps its own descriptor of a listener member until the handle goes: the Listener's owner may close its
   * own meanwhile. Returns the handle; `cookie` comes back in every event of it.
   */
  register(target: Listener | number, cookie?: unknown, options?: RegisterOptions): number;
  /**
   * mp_unregister: removes `handle` and cancels its pending operations. A listener member stops accepting (its socket
   * stays the Listener's); a registered fd is left open for its owner (the disconnect event's result); an lwsocket,
   * which exists only in the channel, is closed. A `disconnect` event follows once nothing is pending.
   */
  unregister(handle: number): void;
  /**
   * mp_accept: accepts connections on listener `handle`. `count` Infinity (default) keeps accepting (multishot) until
   * `unregister`; a finite count accepts exactly that many. `lwsocket` (default true) makes each connection a direct
   * descriptor, false a regular fd. Each connection arrives as an `accept` event naming its new handle; accepting
   * that fails or changes mode is a `listener-error` event (see MpEvent).
   */
  accept(handle: number, options?: AcceptOptions): void;
  /** mp_read: keeps receiving on connection `handle`: `read` events until EOF (result 0), an error or `disconnect`. */
  read(handle: number): void;
  /** Stops `read` events for `handle` until `resume` (the kernel's receive buffer then fills: TCP flow control). */
  pause(handle: number): void;
  /** Undoes `pause`: reads (and bytes held back meanwhile, in order) are delivered again. */
  resume(handle: number): void;
  /**
   * mp_write: queues `data[offset, offset + length)` for sending on `handle`, in order. The bytes are copied before
   * `write` returns (the caller may reuse `data` at once). Returns false when the bytes queued and not yet
   * acknowledged by the kernel (pendingBytes, this write included) exceed limits.highWaterMark — and, by default,
   * receiving on the connection pauses until they fall to limits.lowWaterMark, when a `write` event says so. The same
   * call gives the same answer on both backends.
   */
  write(handle: number, data: Uint8Array, offset?: number, length?: number): boolean;
  /** mp_writev: `write` of several buffers, one after another (coalesced into one send when they fit). */
  writev(handle: number, chunks: readonly Uint8Array[]): boolean;
  /** `write` of a Latin-1 string (protocol text) without an intermediate Buffer. */
  writeAscii(handle: number, text: string): boolean;
  /**
   * `write` without the copy: the bytes are sent from `data` itself, which the channel keeps a reference to until they
   * are sent. The caller must neither change them nor transfer (detach) their ArrayBuffer until then (like
   * `socket.write` in node:net) — for immutable bytes such as a cached response. Writes shorter than
   * limits.noCopyMinBytes are copied like `write`. Same order, high-water mark and return value as `write`.
   */
  writeNoCopy(handle: number, data: Uint8Array, offset?: number, length?: number): boolean;
  /** Bytes written to `handle` and not yet acknowledged by the kernel (0 for a handle that is not open). */
  pendingBytes(handle: number): number;
  /**
   * Queues `length` bytes of the regular file `fd` from `position` for sending on `handle`, in order with writes. The
   * bytes count in pendingBytes at once. Resolves once every byte has been read (spliced: sent) — `fd` must stay open
   * until then. A file shorter than asked (MP_ERR_SHORT_FILE) or a failed read rejects and fails the connection with
   * an `error` event (what follows would be misframed); rejects with MP_ERR_CLOSED if the connection closes first.
   *
   * The file must not shrink until the promise settles (replace a file by renaming a new one over it: the open `fd`
   * keeps the old one). If it does, the first read, splice or sendfile past the new end fails the send with
   * MP_ERR_SHORT_FILE — the peer sees the connection end short of the length promised. Bytes already handed to the
   * kernel stay sent, and on io_uring a spliced or sendfile(2) region goes by reference to the page cache: bytes of it
   * past the new end that are already in flight (a pipe, the socket buffers — on loopback even the peer's receive
   * queue) turn into zeros up to the end of the page, or large folio, that holds the new end, and keep their old
   * values beyond; nothing reports them, and a region handed over whole before the truncation resolves. Regions read
   * into the send arena, and the portable backend, send the bytes as they were read.
   */
  sendFile(handle: number, fd: number, position: number, length: number): Promise<void>;
  /** Reads up to `length` bytes (at most 1 GiB) of the regular file `fd` from `position` into a new Buffer (shorter
   * at the file's end); through the ring on io_uring (no thread pool), node:fs on the portable backend. */
  readFile(fd: number, position: number, length: number): Promise<Buffer>;
  /**
   * Inside an `onEvent` handler, during a read event that carries bytes: keeps the event's bytes valid after the
   * handler returns (zero-copy) until `releaseBuffer(token)`. At most limits.heldBuffersMax at once (MP_ERR_LIMIT);
   * elsewhere MP_ERR_STATE. Closing the channel releases every held buffer (the memory stays valid while views of it
   * are reachable).
   */
  holdBuffer(): number;
  /** Returns a buffer kept with holdBuffer() (a token not held: RangeError; after close(): no-op). */
  releaseBuffer(token: number): void;
  /** Buffers held now. */
  readonly heldBuffers: number;
  /** Half-close: queued bytes are sent, then the write side shuts down (the peer reads EOF); reads go on. Idempotent;
   * writes afterwards throw MP_ERR_CLOSED. */
  end(handle: number): void;
  /**
   * mp_disconnect: closes connection `handle`. Queued bytes are sent first (unless `abort`), receiving stops at once. A
   * `disconnect` event follows when every request on the handle has completed; the handle is free after it.
   */
  disconnect(handle: number, abort?: boolean): void;
  /**
   * Client side: opens a TCP connection to `host:port` (an address literal or "localhost"), returning its handle at
   * once; a `connect` event (or an `error` event, e.g. ECONNREFUSED) follows. Writes made before the connect completes
   * are queued; reading starts once `read(handle)` is called.
   */
  connect(host: string, port: number, cookie?: unknown, options?: ConnectOptions): number;
  /**
   * Converts connection `handle` into a regular fd for legacy code (`new net.Socket({fd})`): queued writes are sent
   * first, receiving stops (bytes received were delivered), the handle leaves the channel (a `disconnect` event
   * follows) and the promise resolves with the fd, which the caller then owns. An lwsocket needs Linux 6.8
   * (MP_ERR_UNSUPPORTED before); the portable backend has nothing to convert (MP_ERR_UNSUPPORTED).
   */
  toFd(handle: number): Promise<number>;
  /** The CPU that received the connection's packets (SO_INCOMING_CPU; an lwsocket needs Linux 6.7), or -1. */
  incomingCpu(handle: number): number;
  /**
   * The `'remote'` (peer) or `'local'` address of connection `handle`, read from the kernel at this call (not on the
   * accept path: nothing is spent on connections that never ask); undefined once the peer is gone (ENOTCONN) or when
   * the kernel cannot say (an lwsocket needs Linux 6.8, whose fd install this uses). Throws for a handle that is not
   * an open connection, as other calls do; and, for an lwsocket, throws a MegapipeError with code `EAGAIN` when the
   * kernel's answer did not arrive within the call (the completion queue is full, in a burst of completions): nothing
   * is wrong with the connection, and a later call (from a later batch) reads the address.
   */
  socketAddress(handle: number, side: 'local' | 'remote'): SocketAddress | undefined;
  /**
   * Sets a TCP option of connection `handle`: `noDelay` (TCP_NODELAY; megapipe's sockets start with it on, set on the
   * listener), `keepAlive` (SO_KEEPALIVE), `keepAliveDelay` (TCP_KEEPIDLE: idle seconds before the first probe,
   * 1..32767). On an lwsocket it goes through the ring (a socket command: Linux 6.7, MP_ERR_UNSUPPORTED before); when
   * the command's completion does not arrive within the call (a full completion queue) it is set when the request
   * runs, which is before any request staged after this call; when the command cannot be queued at all (the kernel
   * refusing submissions for now, the submission queue full) it throws a MegapipeError `EAGAIN` and the option is not
   * set. A bad value is a TypeError/RangeError.
   */
  setSocketOption(handle: number, option: SocketOption, value: boolean | number): void;
  /**
   * Reads a TCP option of connection `handle` back from the kernel (as setSocketOption names them): 0/1, or seconds.
   * Throws MP_ERR_UNSUPPORTED where it cannot be read (the portable backend; an lwsocket before Linux 6.8, whose fd
   * install this uses, as socketAddress), and, for
   * an lwsocket, a MegapipeError `EAGAIN` when the kernel's answer did not arrive within the call (see socketAddress).
   */
  socketOption(handle: number, option: SocketOption): number;
  /**
   * Closes connection `handle` with a TCP reset (RST, as node's `socket.resetAndDestroy()`): queued bytes are
   * discarded, the peer's reads fail with ECONNRESET. As `disconnect(handle, true)` otherwise. On an lwsocket, when
   * the kernel refuses submissions for now (see setSocketOption) it throws a MegapipeError `EAGAIN` and leaves the
   * connection open (a close then would be a clean end, not a reset).
   */
  reset(handle: number): void;
  /** Sets the cookie every later event of `handle` carries. */
  setCookie(handle: number, cookie: unknown): void;
  /** The cookie of `handle` (an accepted connection's: undefined until setCookie). */
  cookie(handle: number): unknown;
  /** `handle` names an open (possibly closing) handle. */
  isOpen(handle: number): boolean;
  /** `handle` is an lwsocket (a direct descriptor). */
  isLwsocket(handle: number): boolean;
  /** Open handles. */
  readonly handles: number;
  /**
   * Adds a function called for every event. Handlers add up, like listeners of an EventEmitter: each is called, in the
   * order added, with the same event (adding a logger beside serveChannel's handler keeps serveChannel working); adding
   * one already added does nothing; a handler that throws stops the others for that event, and the exception
   * propagates. `offEvent` removes one; `onEvent(null)` removes them all and switches to dispatch/iteration. Events
   * queued for dispatch meanwhile are delivered to the handlers first, in order. The event object is reused: keep
   * nothing from it after the call returns (see MpEvent); holdBuffer() keeps a read's bytes for the first handler that
   * calls it (MP_ERR_STATE for the others).
   */
  onEvent(handler: EventHandler | null): this;
  /** Removes a handler onEvent added (one not added: nothing happens); without handlers, events wait for dispatch. */
  offEvent(handler: EventHandler): this;
  /** mp_dispatch: the next event, waiting up to `timeoutMs` (default: forever); null on timeout or once the channel
   * is closed. Only while no handler is set. Events returned own their data. */
  dispatch(timeoutMs?: number): Promise<MpEvent | null>;
  /** The events, as an async iterator (ends when the channel closes). Events own their data. */
  [Symbol.asyncIterator](): AsyncGenerator<MpEvent>;
  /** mp_flush: submits the staged requests now (batching's rule iii), to bound latency inside long synchronous work. */
  flush(): void;
  /** Counters of this channel (cheap: reads shared memory). */
  stats(): ChannelStats;
  /**
   * @internal The connections waiting in listener `handle`'s queue now, taken without waiting (the listener may be
   * closing: unregister stops its accepts and leaves its queue): each becomes a regular-fd connection, no accept event;
   * their handles, oldest first (serveChannel's drain on close).
   */
  acceptQueued(handle: number): number[];
  /** @internal A function telling, at each call, whether the peer of `handle` took bytes since the previous call
   * (serveChannel's end timeout). */
  watchProgress(handle: number): () => boolean;
  /**
   * Closes the channel at once, with every handle: no event follows (not even for a batch being delivered), pending
   * `dispatch()` calls resolve with null, sendFile/readFile/toFd promises reject with MP_ERR_CLOSED. Before it returns
   * (io_uring), every request in the kernel has been cancelled and has completed — the kernel no longer reads or
   * writes the channel's memory or the buffers of no-copy writes —, every lwsocket and accepted fd is closed (its peer
   * reads EOF, or a reset if it had unread bytes), and the accepts this channel armed on listener members have ended
   * (the Listener itself stays open until its owner closes it). Held receive buffers stay valid while views of them
   * are reachable. Idempotent.
   */
  close(): void;
}
