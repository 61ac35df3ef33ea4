// Every limit of a channel, in one place, with their relationships checked when a channel is created.
import { argError, rangeError } from './errors.js';
import { Bound } from './uring/abi.js';

export interface Limits {
  /** Submission-queue entries of the ring (io_uring rounds up to a power of two). */
  sqEntries: number;
  /** Completion-queue entries. Must hold at least two submissions' worth (multishot posts many CQEs per SQE). */
  cqEntries: number;
  /** Request rows staged in user space between flushes (the largest possible batch). */
  requestRows: number;
  /** Completions copied out of the ring per JavaScript call (the largest event batch). */
  eventRows: number;
  /** Slots of the direct-descriptor (lwsocket) table. Bounded by RLIMIT_NOFILE. */
  files: number;
  /** Handles a channel can hold at once: lwsockets, fd sockets and listeners together. */
  maxHandles: number;
  /** Receive buffers in the provided-buffer ring (a power of two, at most 32768). */
  recvBuffers: number;
  /** Bytes per receive buffer: the most one read event carries. */
  recvBufferSize: number;
  /** Receive buffers the application may hold at once past their read event (holdBuffer); at most recvBuffers / 2. */
  heldBuffersMax: number;
  /** Bytes of send memory the kernel reads from (queued and in-flight writes of all connections). */
  sendArenaBytes: number;
  /** Unit of send memory; one connection's queued bytes form a chain of chunks. */
  sendChunkBytes: number;
  /** Queued bytes of one connection above which `write` returns false and receiving pauses. */
  highWaterMark: number;
  /** Queued bytes below which a paused connection resumes and `drain`/`write` events say so. */
  lowWaterMark: number;
  /** Client connects in flight at once (each holds a socket-address slot). */
  maxPendingConnects: number;
  /** Events held for `dispatch()`/async iteration before the oldest connections stop being read. */
  dispatchQueueMax: number;
  /** Batch threshold: staged requests that trigger a flush at once (1 = no batching). */
  batch: number;
  /**
   * io_uring: pipes for spliced sendFile (the file's page-cache pages go to the socket through a pipe, no copy); at
   * most one per connection, each two fds. 0 = every sendFile reads into the send arena.
   */
  splicePipes: number;
  /** Capacity asked for each splice pipe (the most one splice moves; capped by /proc/sys/fs/pipe-max-size). */
  splicePipeBytes: number;
  /** Shortest sendFile that is spliced; shorter ones are read into the send arena (cheaper below this size). */
  spliceMinBytes: number;
  /**
   * io_uring: shortest sendFile sent with sendfile(2) from the channel's thread when its whole region is in the page
   * cache (checked with cachestat, Linux 6.5) — the pages go to the socket without a copy and without the io-wq
   * worker a splice needs; a region not all resident is spliced or read as above (a sendfile must not wait for the
   * disk), and so is one whose residency cannot be known (cachestat refused: for that file, or by the kernel or a
   * sandbox, then for the thread's life). On Linux 6.14+ cachestat refuses a file the process may neither write nor
   * own (a server as www-data sending root's files): those always go by splice or read unless the process owns them or
   * has CAP_FOWNER. 0 = never.
   */
  sendfileMinBytes: number;
  /** Shortest `writeNoCopy` sent from the caller's buffer itself; shorter ones are copied into the send arena like
   * `write` (a copy this small costs less than a send of its own, and coalesces with neighbouring writes). */
  noCopyMinBytes: number;
}

export const defaultLimits: Readonly<Limits> = Object.freeze({
  sqEntries: 1024,
  cqEntries: 8192,
  requestRows: 1024,
  eventRows: 1024,
  files: 16384,
  maxHandles: 16384 + 1024,
  recvBuffers: 2048,
  recvBufferSize: 16384,
  heldBuffersMax: 512,
  sendArenaBytes: 32 * 1024 * 1024,
  sendChunkBytes: 16 * 1024,
  highWaterMark: 64 * 1024,
  lowWaterMark: 16 * 1024,
  maxPendingConnects: 1024,
  dispatchQueueMax: 65536,
  batch: 64,
  splicePipes: 16,
  splicePipeBytes: 1024 * 1024,
  spliceMinBytes: 128 * 1024,
  sendfileMinBytes: 128 * 1024,
  noCopyMinBytes: 8 * 1024,
});

/**
 * The fixed bounds: not configurable, each stated once, here (the native core's in native/abi.h, mirrored and checked
 * by test/abi.test.ts). How they relate to each other and to the limits is asserted below, when this module loads.
 */
export const bounds = Object.freeze({
  /** Event batches (each of at most `eventRows` completions) the native loop delivers per wake-up before the rest of
   * Node's event loop runs; completions left over wake the channel again (nothing waits for the next kernel event). */
  drainRounds: Bound.DrainRounds,
  /** Listening sockets in one partitioned listener (`members`, or one per partition). */
  listenerMembers: Bound.ListenMembers,
  /** The highest CPU number a partition may name. */
  cpuMax: 1023,
  /** A listener's accept backlog: the default and the most (the kernel caps it at net.core.somaxconn). */
  backlogDefault: 4096,
  backlogMax: 65535,
  /** The largest finite `accept(h, { count })`. */
  acceptCount: 4096,
  /** The most bytes one `readFile` returns (one Buffer). */
  readFileBytes: 1 << 30,
  /** Splice rounds in a row that may move no byte (while the socket polls writable) before a spliced sendFile fails
   * with EIO: no endless retry. */
  spliceIdleRounds: 64,
  /** The longest timed wait between splice rounds once a poll cannot wait (a half-closed peer; 1 ms, doubling). */
  spliceWaitMaxMs: 64,
  /** megapipe/net: how long the bytes still queued when a Socket is destroyed — bytes its writes' callbacks reported
   * written, which go out before the close, as node:net's kernel sends what it holds — may wait for a peer that takes
   * none of them before they are dropped (as serve()'s endTimeoutMs default; the kernel, too, gives up on an orphaned
   * socket whose peer never reads). */
  destroyDrainStallMs: 30_000,
});

// relations of the fixed bounds (a wrong edit fails when the module loads, in every test)
function assertBounds(): void {
  const b = bounds;
  const fail = (what: string): never => { throw new Error(`megapipe: fixed bounds: ${what}`); };
  // a listener has at most one member per CPU a partition can name
  if (b.listenerMembers < 1 || b.listenerMembers > b.cpuMax + 1) fail('listenerMembers in 1..cpuMax + 1');
  // a finite accept takes at most what one accept queue can hold
  if (b.acceptCount < 1 || b.acceptCount > b.backlogMax) fail('acceptCount in 1..backlogMax');
  if (b.backlogDefault < 1 || b.backlogDefault > b.backlogMax) fail('backlogDefault in 1..backlogMax');
  // readFile's result is one Buffer
  if (b.readFileBytes > 2 ** 31 - 1) fail('readFileBytes fits one Buffer');
  // the native loop delivers at least one batch per wake-up; a drained CQ (cqEntries ≤ 2^20) is at most a few wake-ups
  if (b.drainRounds < 1) fail('drainRounds ≥ 1');
  if (b.spliceIdleRounds < 1 || b.spliceWaitMaxMs < 1) fail('spliceIdleRounds and spliceWaitMaxMs ≥ 1');
  if (b.destroyDrainStallMs < 1) fail('destroyDrainStallMs ≥ 1');
}
assertBounds();

const SOCKADDR_SLOT_BYTES = 32;
/** The most send chunks an arena may hold (sendArenaBytes / sendChunkBytes). */
const SEND_CHUNKS_MAX = 1 << 20;
export { SOCKADDR_SLOT_BYTES };

/** Each limit's own range (before any relation between limits, and before any arithmetic on it). */
const RANGES: Readonly<Record<keyof Limits, readonly [number, number]>> = {
  sqEntries: [2, 32768],
  cqEntries: [4, 1 << 20],
  requestRows: [1, 65535],
  eventRows: [1, 65535],
  files: [1, 1 << 20],
  maxHandles: [2, 1 << 24],
  recvBuffers: [1, 32768],
  recvBufferSize: [64, 1 << 24],
  heldBuffersMax: [0, 16384],
  sendArenaBytes: [64, 2 ** 31 - 1],
  sendChunkBytes: [64, 1 << 24],
  highWaterMark: [1, 2 ** 31 - 1],
  lowWaterMark: [0, 2 ** 31 - 2],
  maxPendingConnects: [1, 65536],
  dispatchQueueMax: [1, 1 << 24],
  batch: [1, 65535],
  splicePipes: [0, 4096],
  splicePipeBytes: [4096, 1 << 30],
  spliceMinBytes: [0, 2 ** 31 - 1],
  sendfileMinBytes: [0, 2 ** 31 - 1],
  noCopyMinBytes: [0, 2 ** 31 - 1],
};

/**
 * Merges `overrides` over the defaults and checks each limit and how they relate (`nofile`, `nofileSoft`: the process's
 * RLIMIT_NOFILE, hard and soft, which bound the lwsocket table). Throws on the first fault: a
 * TypeError for an unknown key or a value that is not an integer, a RangeError naming the limit and its range. Every
 * override is checked against its own range before any limit is derived from it.
 */
export function resolveLimits(overrides: Partial<Limits> | undefined, nofile = Infinity, nofileSoft = nofile): Limits {
  if (overrides !== undefined && (typeof overrides !== 'object' || overrides === null)) throw argError('limits', 'an object', overrides);
  const l: Limits = { ...defaultLimits };
  // the default table fits the process's current RLIMIT_NOFILE (the kernel checks it against the soft limit); a table
  // asked for explicitly is checked against the hard limit below (above the soft one, the kernel refuses it: EMFILE)
  if (overrides?.files === undefined && l.files > nofileSoft) {
    l.files = Math.max(1, nofileSoft);
    if (overrides?.maxHandles === undefined) l.maxHandles = l.files + 1024;
  }
  if (overrides) {
    for (const [k, v] of Object.entries(overrides)) {
      if (!(k in defaultLimits)) throw argError(`limits.${k}`, `one of ${Object.keys(defaultLimits).join(', ')}`, k);
      if (v === undefined) continue;
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw argError(`limits.${k}`, 'a non-negative integer', v);
      const [lo, hi] = RANGES[k as keyof Limits];
      if (v < lo || v > hi) throw rangeError(`limits.${k}`, `in ${lo}..${hi}`, v);
      (l as unknown as Record<string, number>)[k] = v;
    }
    // derived defaults follow the overridden limit they depend on unless set explicitly
    if (overrides.files !== undefined && overrides.maxHandles === undefined) l.maxHandles = l.files + 1024;
    if (overrides.sqEntries !== undefined && overrides.requestRows === undefined) l.requestRows = Math.min(l.requestRows, l.sqEntries);
    if (overrides.sqEntries !== undefined && overrides.cqEntries === undefined) l.cqEntries = Math.max(2 * l.sqEntries, Math.min(l.cqEntries, 8 * l.sqEntries));
    // (cqEntries and requestRows may themselves be derived from sqEntries above: follow them whatever set them)
    if (overrides.eventRows === undefined) l.eventRows = Math.min(l.eventRows, l.cqEntries);
    if (overrides.highWaterMark !== undefined && overrides.lowWaterMark === undefined) l.lowWaterMark = Math.floor(l.highWaterMark / 4);
    if (overrides.batch === undefined) l.batch = Math.min(l.batch, l.requestRows);
    if (overrides.recvBuffers !== undefined && overrides.heldBuffersMax === undefined) l.heldBuffersMax = Math.floor(l.recvBuffers / 4);
  }
  const within = (k: keyof Limits, lo: number, hi: number) => {
    if (l[k] < lo || l[k] > hi) throw rangeError(`limits.${k}`, `in ${lo}..${hi}`, l[k]);
  };
  for (const k of Object.keys(RANGES) as (keyof Limits)[]) within(k, RANGES[k][0], RANGES[k][1]);
  within('files', 1, Math.min(1 << 20, nofile));
  within('sendArenaBytes', l.sendChunkBytes, 2 ** 31 - 1);
  within('lowWaterMark', 0, l.highWaterMark - 1);
  within('batch', 1, l.requestRows);
  if ((l.recvBuffers & (l.recvBuffers - 1)) !== 0) throw rangeError('limits.recvBuffers', 'a power of two', l.recvBuffers);
  // relationships
  if (l.requestRows > l.sqEntries) throw rangeError('limits.requestRows', `at most sqEntries (${l.sqEntries}): a flush must fit the submission queue`, l.requestRows);
  if (l.cqEntries < 2 * l.sqEntries) throw rangeError('limits.cqEntries', `at least 2 × sqEntries (${2 * l.sqEntries})`, l.cqEntries);
  if (l.eventRows > l.cqEntries) throw rangeError('limits.eventRows', `at most cqEntries (${l.cqEntries})`, l.eventRows);
  // held buffers are out of the ring: at least half of it stays free for receiving, so holding cannot starve it
  if (l.heldBuffersMax > Math.floor(l.recvBuffers / 2)) throw rangeError('limits.heldBuffersMax', `at most recvBuffers / 2 (${Math.floor(l.recvBuffers / 2)})`, l.heldBuffersMax);
  if (l.sendArenaBytes % l.sendChunkBytes !== 0) throw rangeError('limits.sendArenaBytes', `a multiple of sendChunkBytes (${l.sendChunkBytes})`, l.sendArenaBytes);
  // per send chunk the channel keeps a few typed-array entries and a reference slot in the addon: bounded
  if (l.sendArenaBytes / l.sendChunkBytes > SEND_CHUNKS_MAX) throw rangeError('limits.sendArenaBytes', `at most ${SEND_CHUNKS_MAX} × sendChunkBytes (${SEND_CHUNKS_MAX * l.sendChunkBytes})`, l.sendArenaBytes);
  return l;
}
