// The channel: MegaPipe's per-thread pipe of I/O requests down and completion events up. One interface, two
// backends (io_uring through the addon; node:net), chosen in one place: createChannel.
import type { EventHandler, MpEvent } from './event.js';
import type { ChannelStats } from './channel-core.js';
import type { Listener } from './listener.js';
import { resolveLimits, type Limits } from './limits.js';
import { reportFallback, requestedBackend, selectBackend, type BackendName } from './backend.js';
import { UringChannel } from './uring/channel.js';
import { PortableChannel } from './portable/channel.js';
import { native } from './native.js';
import { MpCode, argError, errnoError, rangeError } from './errors.js';

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

/** The paper's API (mp_*) on one event-loop thread. Handles are small integers local to the channel. */
export interface Channel {
  readonly backend: 'uring' | 'portable';
  readonly limits: Limits;
  readonly features: Readonly<Record<string, boolean | number>>;
  /** The CPU this channel's thread was pinned to, or -1. */
  readonly cpu: number;
  batchThreshold: number;
  register(target: Listener | number, cookie?: unknown, options?: RegisterOptions): number;
  unregister(handle: number): void;
  accept(handle: number, options?: AcceptOptions): void;
  read(handle: number): void;
  pause(handle: number): void;
  resume(handle: number): void;
  write(handle: number, data: Uint8Array, offset?: number, length?: number): boolean;
  writev(handle: number, chunks: readonly Uint8Array[]): boolean;
  writeAscii(handle: number, text: string): boolean;
  /**
   * `write` without the copy: the bytes are sent from `data` itself, which the channel keeps a reference to until
   * they are sent. The caller must neither change them nor transfer (detach) their ArrayBuffer until then (like
   * `socket.write` in node:net) — for immutable bytes such as a cached response. Writes shorter than limits.noCopyMinBytes are copied like `write`. Same order,
   * high-water mark and return value as `write`.
   */
  writeNoCopy(handle: number, data: Uint8Array, offset?: number, length?: number): boolean;
  pendingBytes(handle: number): number;
  /**
   * Queue `length` bytes of the regular file `fd` from `position` for sending on `handle`, in order with writes.
   * On io_uring, no thread pool and no copy in JavaScript: a region of at least limits.spliceMinBytes is spliced
   * (page cache → pipe → socket, no copy at all; one pipe of the channel's pool per connection at a time), a shorter
   * one — or any when no pipe is free — is read by the ring into send memory, then sent. Resolves once every byte has
   * been read (spliced: sent) — then the caller may close `fd`; it must stay open until the promise settles. The bytes count in pendingBytes at once. If the file is shorter than asked (MP_ERR_SHORT_FILE) or a
   * read fails, the promise rejects and the connection gets an `error` event: what follows in its stream would be
   * misframed. Rejects with MP_ERR_CLOSED if the connection closes first.
   */
  sendFile(handle: number, fd: number, position: number, length: number): Promise<void>;
  /**
   * Read up to `length` bytes (at most 1 GiB) of the regular file `fd` from `position` into a new Buffer, through the
   * ring on io_uring (node:fs on the portable backend). Shorter when the file ends first.
   */
  readFile(fd: number, position: number, length: number): Promise<Buffer>;
  /** Inside a read event's handler: keeps its buffer valid past the handler (zero-copy) until releaseBuffer(token). */
  holdBuffer(): number;
  /** Returns a buffer kept with holdBuffer(). */
  releaseBuffer(token: number): void;
  /** Buffers held now. */
  readonly heldBuffers: number;
  /** Half-close: queued bytes are sent, then the write side shuts down (the peer reads EOF); reads go on. */
  end(handle: number): void;
  disconnect(handle: number, abort?: boolean): void;
  connect(host: string, port: number, cookie?: unknown, options?: ConnectOptions): number;
  toFd(handle: number): Promise<number>;
  /** The CPU that received the connection's packets (SO_INCOMING_CPU; an lwsocket needs Linux 6.7), or -1. */
  incomingCpu(handle: number): number;
  setCookie(handle: number, cookie: unknown): void;
  cookie(handle: number): unknown;
  isOpen(handle: number): boolean;
  isLwsocket(handle: number): boolean;
  readonly handles: number;
  onEvent(handler: EventHandler | null): this;
  dispatch(timeoutMs?: number): Promise<MpEvent | null>;
  [Symbol.asyncIterator](): AsyncGenerator<MpEvent>;
  flush(): void;
  stats(): ChannelStats;
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

/**
 * mp_create: a new channel on the calling thread (main thread or worker thread). Create it on the thread that uses
 * it: the io_uring is single-issuer. Several channels per thread are allowed. Close it with `close()`; a channel
 * with no open handles does not keep the process alive.
 */
export function createChannel(options: ChannelOptions = {}): Channel {
  if (typeof options !== 'object' || options === null) throw argError('options', 'an object', options);
  if (options.limits !== undefined && (typeof options.limits !== 'object' || options.limits === null)) throw argError('limits', 'an object', options.limits);
  const limitsIn = { ...options.limits };
  if (options.batch !== undefined) limitsIn.batch = options.batch;
  const probe = native?.probe();
  const limits = resolveLimits(limitsIn, probe?.nofileHard ?? Infinity, probe?.nofileSoft ?? Infinity);
  let cpu = -1;
  if (options.cpu !== undefined) {
    if (!Number.isInteger(options.cpu) || options.cpu < 0) throw rangeError('cpu', 'a CPU number', options.cpu);
    if (native) { const r = native.pinThread(options.cpu); if (r < 0) throw errnoError(r, `pin to CPU ${options.cpu}`); }
    cpu = options.cpu;
  }
  const backend = selectBackend(options.backend);
  const opts = { batch: limits.batch, pauseReadsAboveHighWater: options.pauseReadsAboveHighWater };
  let ch: UringChannel | PortableChannel;
  if (backend === 'uring') {
    try {
      ch = new UringChannel(limits, opts);
    } catch (e) {
      // the kernel refused this ring although the probe's worked (memory, RLIMIT_MEMLOCK, a seccomp policy on one
      // registration, no fd left): 'auto' falls back as it does when the probe fails; 'uring' reports it
      if (requestedBackend(options.backend) !== 'auto' || (e as { code?: unknown }).code !== MpCode.SYSCALL) throw e;
      reportFallback(`creating an io_uring channel failed: ${(e as Error).message}`);
      ch = new PortableChannel(limits, opts);
    }
  } else ch = new PortableChannel(limits, opts);
  (ch as { cpu: number }).cpu = cpu;
  return ch as Channel;
}
