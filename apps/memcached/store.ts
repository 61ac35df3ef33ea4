// The shared item store of the memcached app: one keyspace for every worker thread.
//
// Everything lives in SharedArrayBuffers created once by the main thread (`createStoreShared`) and handed to the
// workers in `workerData`; each thread wraps them in its own `Store` (typed-array views, scratch state, its row of
// statistics). There are no per-item JS objects:
//
//   arena  — `-m` bytes cut into pages (1 MiB, or the item size limit when larger). Pages are given to slab
//            classes on demand (chunk sizes 96·1.25^n, as memcached), each page cut into equal chunks; an item is
//            a 48-byte header + key + value + "\r\n" in one chunk, addressed by `ref` = byte offset / 8.
//   hash   — Int32 bucket heads; items chain through their header. The table grows like memcached's, but per lock
//            stripe: stripe s owns buckets s, s + 4096, s + 2·4096, … (4096 << level_s of them in all) and doubles
//            its own share, under its own lock, when it holds more items than buckets (split in place: each chain
//            divides into bucket b and b + (4096 << level)). A key's stripe (hv & 4095) never changes, so growing
//            needs no global lock and no pause of other stripes. The SharedArrayBuffer is reserved at the cap
//            (sized from `-m`: one bucket per 64 bytes of memory, at most 2^26) but only touched as stripes grow:
//            100k items use 2^17 buckets (512 KiB), like memcached's hashpower 17. Past the cap, chains get longer
//            (lookups slower), nothing fails: memory, not the table, bounds the items (eviction at `-m`).
//   stripes — per stripe: bucket mask and item count (guarded by the stripe's lock).
//   ctl    — locks (futex-style mutexes on Int32 words via Atomics), per-class LRU/free-list heads and counters,
//            the CAS counter, flush_all state, the page → class table.
//   stats  — a Float64 row of counters per worker, written only by its own thread, summed when read.
//
// Locking (memcached's scheme): an item lock per hash stripe (4096 stripes, by bucket) guards the hash chains and
// the items in them; a lock per slab class guards that class's LRU list, free list and pages. Order: stripe, then
// class. A thread holding a class lock only ever *tries* stripe or other class locks (eviction, page moves), so no
// cycle can form. Readers copy the value out while holding the stripe lock (into the connection's output), so
// there are no reference counts: a chunk is reused only after it is unlinked under its stripe lock.
//
// LRU: per class, doubly linked, newest at head. A fetch sets ACTIVE (an atomic OR on the header word — no class
// lock on the read path); the evictor gives ACTIVE items at the tail a second chance (moves them to head, clears
// the bit) — memcached's segmented-LRU idea reduced to CLOCK. Expired items met at the tail are reclaimed first.
// A class that has no page at all and cannot get one takes a page from another class (most pages first, a page none of
// whose chunks is owned by a connection), evicting what is in it (memcached's slab rebalancer, done inline). A class
// that has pages never takes one: it evicts its own items, and when all its chunks are owned by values still
// arriving, the allocation fails (memcached's out of memory) rather than evict another class's page.

import { timeNow } from '../../src/index.js';

export const KEY_MAX_LENGTH = 250;
/** memcached's REALTIME_MAXDELTA: TTLs above this many seconds are absolute unix times. */
export const REALTIME_MAXDELTA = 60 * 60 * 24 * 30;
const ITEM_UPDATE_INTERVAL = 60;

// ---- item header (12 Int32 words = 48 bytes) ----
const H_HNEXT = 0; // next ref in hash chain
const H_PREV = 1; // LRU / free list
const H_NEXT = 2;
const H_EXP = 3; // rel time of expiry, 0 = never
const H_TIME = 4; // rel time of last access
const H_FLAGS = 5; // client flags (u32)
const H_NBYTES = 6; // value length + 2 ("\r\n" is stored)
const H_META = 7; // nkey | clsid << 8 | iflags << 16
const H_CASLO = 8;
const H_CASHI = 9;
const H_HASH = 10;
export const HEADER_BYTES = 48;

// item flags (in H_META, shifted by 16)
export const IF_LINKED = 1;
export const IF_FETCHED = 2;
export const IF_ACTIVE = 4;
export const IF_STALE = 8;
export const IF_TOKEN_SENT = 16;
export const IF_KEY_BINARY = 32;
export const IF_ALLOCATED = 64; // owned by a connection, not linked yet
export const IF_FREE = 128; // on a free list

// ---- ctl layout (Int32 words) ----
const C_NEXT_PAGE = 0;
const C_CAS_LO = 1;
const C_CAS_HI = 2;
const C_OLDEST_LIVE = 3;
const C_OLDEST_CAS_LO = 4;
const C_OLDEST_CAS_HI = 5;
const C_TIME_OFFSET = 6; // seconds added to the wall clock (tests move time with it)
const C_VERBOSITY = 7;
const C_NCLASSES = 8;
// the item size histogram (stats sizes): 0 off, 1 on, 2 being turned on; the CAS it counts from; set up once at start
const C_SIZES = 9;
const C_SIZES_CAS_LO = 10;
const C_SIZES_CAS_HI = 11;
const C_SIZES_INIT = 12;
const C_CLS_BASE = 16;
const CLS_STRIDE = 16;
const K_LOCK = 0, K_HEAD = 1, K_TAIL = 2, K_FREE = 3, K_NITEMS = 4, K_NPAGES = 5, K_SIZE = 6, K_PERPAGE = 7, K_NFREE = 8;
const MAX_CLASSES = 63;
const NSTRIPES = 4096;
const C_STRIPE_BASE = C_CLS_BASE + (MAX_CLASSES + 1) * CLS_STRIDE;
const C_PAGE_BASE = C_STRIPE_BASE + NSTRIPES;

// ---- statistics (Float64 per worker row) ----
export const S = {
  cmd_get: 0, cmd_set: 1, cmd_flush: 2, cmd_touch: 3, cmd_meta: 4, get_hits: 5, get_misses: 6, get_expired: 7,
  get_flushed: 8, delete_misses: 9, delete_hits: 10, incr_misses: 11, incr_hits: 12, decr_misses: 13,
  decr_hits: 14, cas_misses: 15, cas_hits: 16, cas_badval: 17, touch_hits: 18, touch_misses: 19,
  store_too_large: 20, store_no_memory: 21, auth_cmds: 22, auth_errors: 23, bytes_read: 24, bytes_written: 25,
  curr_connections: 26, total_connections: 27, rejected_connections: 28, conn_yields: 29, curr_items: 30,
  total_items: 31, bytes: 32, evictions: 33, reclaimed: 34, expired_unfetched: 35, evicted_unfetched: 36,
  evicted_active: 37, slabs_moved: 38, read_buf_count: 39, read_buf_bytes: 40, read_buf_oom: 41, idle_kicks: 42,
} as const;
export type StatName = keyof typeof S;
const NSTAT = 48;
/** Counters that `stats reset` leaves alone (gauges). */
const GAUGES = new Set<number>([S.curr_connections, S.curr_items, S.bytes, S.read_buf_count, S.read_buf_bytes]);

export interface StoreConfig {
  /** Memory for items, bytes (`-m` MB · 2^20). */
  maxBytes: number;
  /** Largest item (`-I`), bytes; default 1 MiB. */
  itemSizeMax?: number;
  /** Slab growth factor (`-f`), default 1.25. */
  factor?: number;
  /** Minimum space for key+value+flags in the smallest chunk (`-n`), default 48. */
  chunkSize?: number;
  /** Rows of statistics to allocate: one per worker thread (default 64). */
  maxWorkers?: number;
}

/** The shared state: structured-cloneable (SharedArrayBuffers are shared, not copied, by postMessage/workerData). */
export interface StoreShared {
  maxBytes: number;
  itemSizeMax: number;
  pageSize: number;
  totalPages: number;
  factor: number;
  chunkSize: number;
  nbuckets: number;
  maxWorkers: number;
  /** memcached's process_started: unix seconds at start minus 62 (rel time 0). */
  processStarted: number;
  ctl: SharedArrayBuffer;
  hash: SharedArrayBuffer;
  arena: SharedArrayBuffer;
  stats: SharedArrayBuffer;
  /** Per lock stripe: [mask, count] (Int32 pairs): the stripe's bucket mask and how many items it holds. */
  stripes: SharedArrayBuffer;
}

const MB = 1024 * 1024;

export function createStoreShared(cfg: StoreConfig): StoreShared {
  const itemSizeMax = cfg.itemSizeMax ?? MB;
  const factor = cfg.factor ?? 1.25;
  const chunkSize = cfg.chunkSize ?? 48;
  const maxWorkers = cfg.maxWorkers ?? 64;
  if (!(itemSizeMax >= 1024)) throw new RangeError('item size limit must be at least 1024 bytes');
  const pageSize = Math.max(MB, align8(itemSizeMax));
  const totalPages = Math.max(1, Math.floor(cfg.maxBytes / pageSize));
  if (totalPages * pageSize > 0x3fff_fff8 * 8) throw new RangeError('memory limit too large');
  let nbuckets = NSTRIPES;
  const want = Math.min(1 << 26, Math.ceil((totalPages * pageSize) / 64));
  while (nbuckets < want) nbuckets *= 2;
  const ctl = new SharedArrayBuffer((C_PAGE_BASE + totalPages) * 4);
  const hash = new SharedArrayBuffer(nbuckets * 4); // reserved at the cap; pages are touched as stripes grow
  const stripes = new SharedArrayBuffer(NSTRIPES * 2 * 4);
  const arena = new SharedArrayBuffer(totalPages * pageSize);
  const stats = new SharedArrayBuffer(maxWorkers * NSTAT * 8);
  const c = new Int32Array(ctl);
  new Int32Array(hash).fill(-1, 0, NSTRIPES); // level 0: one bucket per stripe
  const sp = new Int32Array(stripes);
  for (let i = 0; i < NSTRIPES; i++) sp[2 * i] = NSTRIPES - 1;
  c.fill(-1, C_PAGE_BASE, C_PAGE_BASE + totalPages);
  // slab classes: memcached's sizes (header 48 + chunk 48, ×factor, 8-aligned) up to half a page, then one class
  // holding the largest item.
  let size = HEADER_BYTES + chunkSize;
  let n = 0;
  const maxChunk = align8(itemSizeMax);
  while (n < MAX_CLASSES - 1 && size <= pageSize / 2 && size < maxChunk) {
    setClass(c, ++n, size, Math.floor(pageSize / size));
    let next = align8(Math.floor(size * factor));
    if (next <= size) next = size + 8;
    size = next;
  }
  setClass(c, ++n, maxChunk, Math.floor(pageSize / maxChunk));
  c[C_NCLASSES] = n;
  return {
    maxBytes: totalPages * pageSize, itemSizeMax, pageSize, totalPages, factor, chunkSize, nbuckets, maxWorkers,
    processStarted: Math.floor(Date.now() / 1000) - ITEM_UPDATE_INTERVAL - 2, ctl, hash, arena, stats, stripes,
  };
}

function setClass(c: Int32Array, id: number, size: number, perPage: number): void {
  const b = C_CLS_BASE + id * CLS_STRIDE;
  c[b + K_LOCK] = 0; c[b + K_HEAD] = -1; c[b + K_TAIL] = -1; c[b + K_FREE] = -1;
  c[b + K_NITEMS] = 0; c[b + K_NPAGES] = 0; c[b + K_SIZE] = size; c[b + K_PERPAGE] = perPage; c[b + K_NFREE] = 0;
}

function align8(n: number): number { return (n + 7) & ~7; }

/** Result of `alloc` when no item could be made. */
export const ALLOC_TOO_LARGE = -2;
export const ALLOC_NO_MEMORY = -3;

/** APPEND_VIV / PREPEND_VIV: append / prepend, and on a miss store the value as the item (meta's ms MA/MP with N). */
export const enum StoreCmd { SET = 1, ADD, REPLACE, APPEND, PREPEND, CAS, APPEND_VIV, PREPEND_VIV }
export const enum StoreResult { STORED = 1, EXISTS, NOT_FOUND, NOT_STORED }
export const enum DeltaResult { OK = 1, NON_NUMERIC, EOM, NOT_FOUND, CAS_MISMATCH }

/** murmur3 (x86, 32-bit) over key bytes. */
export function hashKey(b: Uint8Array, off: number, len: number): number {
  let h = 0x9747b28c | 0;
  const end4 = off + (len & ~3);
  let i = off;
  for (; i < end4; i += 4) {
    let k = b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24);
    k = Math.imul(k, 0xcc9e2d51); k = (k << 15) | (k >>> 17); k = Math.imul(k, 0x1b873593);
    h ^= k; h = (h << 13) | (h >>> 19); h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  const rem = len & 3;
  if (rem !== 0) {
    let k = 0;
    if (rem === 3) k ^= b[i + 2] << 16;
    if (rem >= 2) k ^= b[i + 1] << 8;
    k ^= b[i];
    k = Math.imul(k, 0xcc9e2d51); k = (k << 15) | (k >>> 17); k = Math.imul(k, 0x1b873593); h ^= k;
  }
  h ^= len;
  h ^= h >>> 16; h = Math.imul(h, 0x85ebca6b); h ^= h >>> 13; h = Math.imul(h, 0xc2b2ae35); h ^= h >>> 16;
  return h >>> 0;
}

/** A 64-bit unsigned value: a number when ≤ 2^53 − 1, else a bigint (rare: huge CAS or counters). */
export type U64 = number | bigint;
const TWO64 = 1n << 64n;

export function u64Eq(a: U64, b: U64): boolean {
  return typeof a === typeof b ? a === b : BigInt(a) === BigInt(b);
}

/** Thread-local handle on the shared store. */
export class Store {
  readonly shared: StoreShared;
  readonly ctl: Int32Array;
  readonly buckets: Int32Array;
  readonly mem: Uint8Array;
  readonly h: Int32Array;
  readonly stats: Float64Array;
  readonly row: number;
  readonly nclasses: number;
  readonly pageSize: number;
  readonly itemSizeMax: number;
  readonly maxBytes: number;
  /** Scratch of movePageLocked: the donor classes tried. */
  private readonly donorTried = new Uint8Array(MAX_CLASSES + 1);
  /** Largest bucket mask a stripe may grow to (the reserved table size − 1). */
  private readonly bucketMask: number;
  /** [mask, count] per stripe: see `stripes` in StoreShared. */
  private readonly sp: Int32Array;
  /** memcached's current_time (seconds since processStarted); refreshed by `tick()`. */
  now = 0;
  /** Clock source (ms); the shared C_TIME_OFFSET is added. Read once per synchronous run (timeNow), not per tick. */
  clock: () => number = timeNow;
  /** CAS of the item last stored / changed by this thread (memcached's c->cas). */
  lastCas: U64 = 0;
  /** Value length (CRLF included) of the item the last storeItem stored. */
  lastNbytes = 0;
  /** meta's E(token): the CAS the next link or in-place update gives its item instead of the next counter value (0: none). */
  casIn: U64 = 0;

  constructor(shared: StoreShared, worker = 0) {
    this.shared = shared;
    this.ctl = new Int32Array(shared.ctl);
    this.buckets = new Int32Array(shared.hash);
    this.mem = new Uint8Array(shared.arena);
    this.h = new Int32Array(shared.arena);
    this.stats = new Float64Array(shared.stats);
    this.row = (worker % shared.maxWorkers) * NSTAT;
    this.nclasses = this.ctl[C_NCLASSES];
    this.pageSize = shared.pageSize;
    this.itemSizeMax = shared.itemSizeMax;
    this.maxBytes = shared.maxBytes;
    this.bucketMask = shared.nbuckets - 1;
    this.sp = new Int32Array(shared.stripes);
    this.tick();
  }

  // ---------------------------------------------------------------- time
  /** Refresh `now` from the clock (call once per batch of commands). */
  tick(): number {
    const unix = Math.floor(this.clock() / 1000) + Atomics.load(this.ctl, C_TIME_OFFSET);
    this.now = unix - this.shared.processStarted;
    return this.now;
  }
  /** Move every thread's clock forward (tests: expiry without sleeping). */
  advanceClock(seconds: number): void { Atomics.add(this.ctl, C_TIME_OFFSET, seconds); this.tick(); }
  /** Unix time as the store sees it. */
  unixNow(): number { return this.now + this.shared.processStarted; }
  /** memcached's realtime(EXPTIME_TO_POSITIVE_TIME(t)) for a (32-bit signed) exptime. */
  realtime(t: number): number {
    if (t < 0) t = REALTIME_MAXDELTA + 1;
    if (t === 0) return 0;
    if (t > REALTIME_MAXDELTA) {
      if (t <= this.shared.processStarted) return 1;
      return (t - this.shared.processStarted) >>> 0;
    }
    return (t + this.now) >>> 0;
  }

  get verbosity(): number { return Atomics.load(this.ctl, C_VERBOSITY); }
  set verbosity(v: number) { Atomics.store(this.ctl, C_VERBOSITY, v); }

  // ---------------------------------------------------------------- stats
  stat(i: number, n = 1): void { this.stats[this.row + i] += n; }
  /** Sum of a counter over all workers. */
  statTotal(i: number): number {
    let t = 0;
    for (let r = i; r < this.stats.length; r += NSTAT) t += this.stats[r];
    return t;
  }
  resetStats(): void {
    for (let r = 0; r < this.stats.length; r += NSTAT) {
      for (let i = 0; i < NSTAT; i++) if (!GAUGES.has(i)) this.stats[r + i] = 0;
    }
  }

  // ---------------------------------------------------------------- locks
  private lock(i: number): void {
    const c = this.ctl;
    if (Atomics.compareExchange(c, i, 0, 1) === 0) return;
    for (let spin = 0; spin < 64; spin++) {
      if (Atomics.load(c, i) === 0 && Atomics.compareExchange(c, i, 0, 1) === 0) return;
    }
    while (Atomics.exchange(c, i, 2) !== 0) Atomics.wait(c, i, 2);
  }
  private tryLock(i: number): boolean { return Atomics.compareExchange(this.ctl, i, 0, 1) === 0; }
  private unlock(i: number): void {
    if (Atomics.sub(this.ctl, i, 1) !== 1) { Atomics.store(this.ctl, i, 0); Atomics.notify(this.ctl, i, 1); }
  }
  private stripeOf(hv: number): number { return C_STRIPE_BASE + (hv & (NSTRIPES - 1)); }
  /** The bucket of `hv` (its stripe's lock held: the stripe's mask only changes under it). */
  private bucketOf(hv: number): number { return hv & this.sp[(hv & (NSTRIPES - 1)) << 1]; }
  /** Buckets in use over all stripes (memcached's hashsize), read without locks. */
  hashBuckets(): number {
    let n = 0;
    for (let i = 0; i < NSTRIPES; i++) n += (Atomics.load(this.sp, i << 1) + 1) / NSTRIPES;
    return n;
  }
  /**
   * memcached's `stats sizes` histogram (-o track_sizes): the linked items by memcached's item size (its 48-byte header
   * + key + 1 + value + 8 for the CAS [+ 4 for nonzero flags], as item_size_ok counts) rounded up to 32 bytes, as
   * bucket (size / 32) → count. Walks every chain, one stripe locked at a time (memcached keeps it updated on link and
   * unlink instead; the counts are the same, the cost is paid by `stats sizes`, not by every store).
   */
  sizeHistogram(): Map<number, number> {
    const hist = new Map<number, number>(), h = this.h;
    const min = Atomics.load(this.ctl, C_SIZES_CAS_HI) * 0x1_0000_0000 + (Atomics.load(this.ctl, C_SIZES_CAS_LO) >>> 0);
    for (let s = 0; s < NSTRIPES; s++) {
      this.lockKey(s);
      try {
        const mask = this.sp[s << 1];
        for (let bi = s; bi <= mask; bi += NSTRIPES) {
          for (let ref = this.buckets[bi]; ref !== -1; ref = h[(ref << 1) + H_HNEXT]) {
            if (Number(this.cas(ref)) < min) continue; // linked before the histogram was turned on
            const ntotal = 48 + this.nkey(ref) + 1 + this.nbytes(ref) + 8 + (this.clientFlags(ref) !== 0 ? 4 : 0);
            const bucket = Math.ceil(ntotal / 32);
            hist.set(bucket, (hist.get(bucket) ?? 0) + 1);
          }
        }
      } finally { this.unlockKey(s); }
    }
    return hist;
  }
  /**
   * memcached's item_stats_sizes_enable (`stats sizes_enable`, and `-o track_sizes` at start): the histogram counts
   * the items whose CAS is at least a CAS id taken now (so turning it on uses up one, as memcached's get_cas_id());
   * already on: nothing changes. Store-wide (every worker).
   */
  sizesEnable(): void {
    // another thread turning it on (2): its answer is ours, once it is on (memcached's stats_sizes_lock)
    if (Atomics.compareExchange(this.ctl, C_SIZES, 0, 2) !== 0) { this.sizesSettled(); return; }
    const cas = this.nextCas();
    const n = typeof cas === 'bigint' ? cas : BigInt(cas);
    Atomics.store(this.ctl, C_SIZES_CAS_LO, Number(n & 0xffffffffn) | 0);
    Atomics.store(this.ctl, C_SIZES_CAS_HI, Number(n >> 32n) | 0);
    Atomics.store(this.ctl, C_SIZES, 1);
    Atomics.notify(this.ctl, C_SIZES);
  }
  /** `stats sizes_disable`: the histogram off (turned on again, it counts from then on). */
  sizesDisable(): void { this.sizesSettled(); Atomics.compareExchange(this.ctl, C_SIZES, 1, 0); }
  /** Waits while another thread is turning the histogram on (a few atomic operations; the wait is bounded). */
  private sizesSettled(): void {
    for (let i = 0; i < 1000 && Atomics.load(this.ctl, C_SIZES) === 2; i++) Atomics.wait(this.ctl, C_SIZES, 2, 1);
  }
  /** The histogram is on (`stats settings`' track_sizes, and whether `stats sizes` reports it). */
  sizesEnabled(): boolean { return Atomics.load(this.ctl, C_SIZES) === 1; }
  /** `-o track_sizes`: turns the histogram on once per store, when the first worker starts (not again after a disable). */
  sizesAtStart(): void { if (Atomics.compareExchange(this.ctl, C_SIZES_INIT, 0, 1) === 0) this.sizesEnable(); }
  lockKey(hv: number): void { this.lock(this.stripeOf(hv)); }
  unlockKey(hv: number): void { this.unlock(this.stripeOf(hv)); }
  private cls(id: number): number { return C_CLS_BASE + id * CLS_STRIDE; }

  // ---------------------------------------------------------------- item fields
  nkey(ref: number): number { return this.h[(ref << 1) + H_META] & 0xff; }
  clsid(ref: number): number { return (this.h[(ref << 1) + H_META] >>> 8) & 0xff; }
  iflags(ref: number): number { return this.h[(ref << 1) + H_META] >>> 16; }
  setIflag(ref: number, f: number): void { Atomics.or(this.h, (ref << 1) + H_META, f << 16); }
  clearIflag(ref: number, f: number): void { Atomics.and(this.h, (ref << 1) + H_META, ~(f << 16)); }
  /** Value length including the trailing "\r\n" (memcached's it->nbytes). */
  nbytes(ref: number): number { return this.h[(ref << 1) + H_NBYTES]; }
  clientFlags(ref: number): number { return this.h[(ref << 1) + H_FLAGS] >>> 0; }
  exptime(ref: number): number { return this.h[(ref << 1) + H_EXP] >>> 0; }
  setExptime(ref: number, e: number): void { this.h[(ref << 1) + H_EXP] = e | 0; }
  atime(ref: number): number { return this.h[(ref << 1) + H_TIME] >>> 0; }
  keyOffset(ref: number): number { return (ref << 3) + HEADER_BYTES; }
  dataOffset(ref: number): number { return (ref << 3) + HEADER_BYTES + this.nkey(ref); }
  /** Size of the item as stored (header + key + value), what `bytes` counts. */
  ntotal(ref: number): number { return HEADER_BYTES + this.nkey(ref) + this.nbytes(ref); }
  cas(ref: number): U64 {
    const b = ref << 1;
    const hi = this.h[b + H_CASHI] >>> 0, lo = this.h[b + H_CASLO] >>> 0;
    if (hi < 0x200000) return hi * 0x1_0000_0000 + lo;
    return (BigInt(hi) << 32n) | BigInt(lo);
  }
  setCas(ref: number, v: U64): void {
    const b = ref << 1;
    if (typeof v === 'number') { this.h[b + H_CASLO] = v >>> 0; this.h[b + H_CASHI] = Math.floor(v / 0x1_0000_0000) | 0; }
    else { this.h[b + H_CASLO] = Number(v & 0xffffffffn) | 0; this.h[b + H_CASHI] = Number((v >> 32n) & 0xffffffffn) | 0; }
  }
  private casIsZero(ref: number): boolean { const b = ref << 1; return (this.h[b + H_CASLO] | this.h[b + H_CASHI]) === 0; }

  /** memcached's get_cas_id(): a store-wide 64-bit counter. */
  nextCas(): U64 {
    const lo = (Atomics.add(this.ctl, C_CAS_LO, 1) + 1) >>> 0;
    let hi: number;
    if (lo === 0) hi = (Atomics.add(this.ctl, C_CAS_HI, 1) + 1) >>> 0;
    else hi = Atomics.load(this.ctl, C_CAS_HI) >>> 0;
    if (hi < 0x200000) return hi * 0x1_0000_0000 + lo;
    return (BigInt(hi) << 32n) | BigInt(lo);
  }

  // ---------------------------------------------------------------- lookup
  private keyEq(ref: number, k: Uint8Array, off: number, len: number): boolean {
    if (this.nkey(ref) !== len) return false;
    const m = this.mem;
    let p = (ref << 3) + HEADER_BYTES;
    for (let i = 0; i < len; i++) if (m[p++] !== k[off + i]) return false;
    return true;
  }

  /** Chain walk without expiry checks. Caller holds the key's stripe lock. */
  private findRaw(hv: number, k: Uint8Array, off: number, len: number): number {
    const h = this.h;
    let ref = this.buckets[this.bucketOf(hv)];
    while (ref !== -1) {
      if (h[(ref << 1) + H_HASH] === (hv | 0) && this.keyEq(ref, k, off, len)) return ref;
      ref = h[(ref << 1) + H_HNEXT];
    }
    return -1;
  }

  /** True when the item is past its TTL or was invalidated by flush_all. */
  isDead(ref: number): boolean {
    const b = ref << 1;
    const exp = this.h[b + H_EXP] >>> 0;
    if (exp !== 0 && exp <= this.now) return true;
    return this.isFlushed(ref);
  }
  private isFlushed(ref: number): boolean {
    const oldestLive = Atomics.load(this.ctl, C_OLDEST_LIVE) >>> 0;
    if (oldestLive === 0 || oldestLive > this.now) return false;
    if ((this.h[(ref << 1) + H_TIME] >>> 0) <= oldestLive) return true;
    const oclo = Atomics.load(this.ctl, C_OLDEST_CAS_LO) >>> 0, ochi = Atomics.load(this.ctl, C_OLDEST_CAS_HI) >>> 0;
    if ((oclo | ochi) === 0 || this.casIsZero(ref)) return false;
    const b = ref << 1;
    const hi = this.h[b + H_CASHI] >>> 0, lo = this.h[b + H_CASLO] >>> 0;
    return hi < ochi || (hi === ochi && lo < oclo);
  }

  /**
   * memcached's do_item_get: the live item for the key, or -1. Expired / flushed items are unlinked on the way
   * (counted as get_expired / get_flushed). Caller holds the stripe lock.
   */
  find(hv: number, k: Uint8Array, off: number, len: number): number {
    const ref = this.findRaw(hv, k, off, len);
    if (ref === -1) return -1;
    const exp = this.h[(ref << 1) + H_EXP] >>> 0;
    if (exp !== 0 && exp <= this.now) {
      this.stat(S.get_expired);
      if ((this.iflags(ref) & IF_FETCHED) === 0) this.stat(S.expired_unfetched);
      this.unlink(ref, hv);
      return -1;
    }
    if (this.isFlushed(ref)) {
      this.stat(S.get_flushed);
      this.unlink(ref, hv);
      return -1;
    }
    return ref;
  }

  /** memcached's do_item_bump (segmented LRU): first hit marks FETCHED, the next marks ACTIVE and refreshes time. */
  bump(ref: number): void {
    const f = this.iflags(ref);
    if ((f & IF_ACTIVE) !== 0) return;
    if ((f & IF_FETCHED) === 0) this.setIflag(ref, IF_FETCHED);
    else { this.setIflag(ref, IF_ACTIVE); this.h[(ref << 1) + H_TIME] = this.now; }
  }
  /** memcached's do_item_update (used by add on an existing item, touch): refresh time if older than 60 s. */
  update(ref: number): void {
    const b = (ref << 1) + H_TIME;
    if ((this.h[b] >>> 0) < this.now - ITEM_UPDATE_INTERVAL) this.h[b] = this.now;
  }

  // ---------------------------------------------------------------- allocation
  /** memcached's item_size_ok: the size memcached would need (its 48-byte header + key + NUL + flags + CAS). */
  sizeOk(nkey: number, flags: number, nbytes: number): boolean {
    const ntotal = 48 + nkey + 1 + nbytes + (flags !== 0 ? 4 : 0) + 8;
    return nbytes >= 2 && ntotal <= this.itemSizeMax;
  }
  private classFor(size: number): number {
    const c = this.ctl;
    for (let id = 1; id <= this.nclasses; id++) if (c[C_CLS_BASE + id * CLS_STRIDE + K_SIZE] >= size) return id;
    return 0;
  }

  /**
   * memcached's item_alloc: an unlinked item (owned by the caller until `link` or `free`) with key, flags, exptime
   * and room for `nbytes` value bytes (including "\r\n"). Returns a ref, ALLOC_TOO_LARGE or ALLOC_NO_MEMORY.
   * May evict. Safe to call while holding a stripe lock.
   */
  alloc(k: Uint8Array, koff: number, nkey: number, flags: number, exptime: number, nbytes: number): number {
    if (!this.sizeOk(nkey, flags, nbytes)) return ALLOC_TOO_LARGE;
    const id = this.classFor(HEADER_BYTES + nkey + nbytes);
    if (id === 0) return ALLOC_TOO_LARGE;
    const ref = this.allocChunk(id);
    if (ref < 0) return ALLOC_NO_MEMORY;
    const h = this.h, b = ref << 1;
    h[b + H_HNEXT] = -1; h[b + H_PREV] = -1; h[b + H_NEXT] = -1;
    h[b + H_EXP] = exptime | 0; h[b + H_TIME] = this.now; h[b + H_FLAGS] = flags | 0; h[b + H_NBYTES] = nbytes;
    h[b + H_META] = nkey | (id << 8) | (IF_ALLOCATED << 16);
    h[b + H_CASLO] = 0; h[b + H_CASHI] = 0;
    h[b + H_HASH] = hashKey(k, koff, nkey) | 0;
    this.mem.set(k.subarray(koff, koff + nkey), (ref << 3) + HEADER_BYTES);
    return ref;
  }

  /** Copy value bytes into an allocated item at value offset `pos`. */
  writeData(ref: number, pos: number, src: Uint8Array, off: number, len: number): void {
    this.mem.set(len === src.length && off === 0 ? src : src.subarray(off, off + len), this.dataOffset(ref) + pos);
  }

  /** Give back an allocated (never linked) item. */
  free(ref: number): void {
    const id = this.clsid(ref);
    const k = this.cls(id);
    this.lock(k + K_LOCK);
    this.freeChunkLocked(ref, id);
    this.unlock(k + K_LOCK);
  }

  private freeChunkLocked(ref: number, id: number): void {
    const c = this.ctl, h = this.h, k = this.cls(id), b = ref << 1;
    h[b + H_META] = (h[b + H_META] & 0xffff) | (IF_FREE << 16);
    const head = c[k + K_FREE];
    h[b + H_PREV] = -1; h[b + H_NEXT] = head;
    if (head !== -1) h[(head << 1) + H_PREV] = ref;
    c[k + K_FREE] = ref;
    c[k + K_NFREE]++;
  }
  private unfreeChunkLocked(ref: number, id: number): void {
    const c = this.ctl, h = this.h, k = this.cls(id), b = ref << 1;
    const prev = h[b + H_PREV], next = h[b + H_NEXT];
    if (prev === -1) c[k + K_FREE] = next; else h[(prev << 1) + H_NEXT] = next;
    if (next !== -1) h[(next << 1) + H_PREV] = prev;
    c[k + K_NFREE]--;
  }

  private carvePageLocked(page: number, id: number): void {
    const c = this.ctl, k = this.cls(id);
    const size = c[k + K_SIZE], per = c[k + K_PERPAGE];
    Atomics.store(c, C_PAGE_BASE + page, id);
    const base = page * this.pageSize;
    for (let i = per - 1; i >= 0; i--) {
      const ref = (base + i * size) >>> 3;
      this.h[(ref << 1) + H_META] = id << 8;
      this.freeChunkLocked(ref, id);
    }
    c[k + K_NPAGES]++;
  }

  private allocChunk(id: number): number {
    const c = this.ctl, k = this.cls(id);
    this.lock(k + K_LOCK);
    try {
      let ref = c[k + K_FREE];
      if (ref === -1) {
        // a new page from the global pool
        if (Atomics.load(c, C_NEXT_PAGE) < this.shared.totalPages) {
          const page = Atomics.add(c, C_NEXT_PAGE, 1);
          if (page < this.shared.totalPages) this.carvePageLocked(page, id);
        }
        ref = c[k + K_FREE];
      }
      if (ref === -1) ref = this.evictLocked(id);
      if (ref === -1 && this.movePageLocked(id)) ref = c[k + K_FREE];
      if (ref === -1) return -1;
      if (c[k + K_FREE] === ref) this.unfreeChunkLocked(ref, id);
      // owned by the caller from here (a page move sees it busy even before alloc fills in the rest)
      this.h[(ref << 1) + H_META] = (id << 8) | (IF_ALLOCATED << 16);
      return ref;
    } finally {
      this.unlock(k + K_LOCK);
    }
  }

  /** Free one chunk of class `id` by evicting from its LRU tail (class lock held). Returns the chunk or -1. */
  private evictLocked(id: number): number {
    const c = this.ctl, h = this.h, k = this.cls(id);
    let tries = 0, moved = 0;
    let ref = c[k + K_TAIL];
    while (ref !== -1 && tries < 5) {
      const prev = h[(ref << 1) + H_PREV];
      const f = this.iflags(ref);
      const dead = this.isDead(ref);
      if (!dead && (f & IF_ACTIVE) !== 0 && moved < 64) {
        // second chance: clear ACTIVE, move to head
        moved++;
        this.clearIflag(ref, IF_ACTIVE);
        if (c[k + K_HEAD] !== ref) { this.lruRemoveLocked(ref, k); this.lruInsertLocked(ref, k); }
        ref = prev !== -1 ? prev : c[k + K_TAIL];
        continue;
      }
      tries++;
      const hv = h[(ref << 1) + H_HASH] >>> 0;
      const stripe = this.stripeOf(hv);
      if (this.tryLock(stripe)) {
        if (dead) this.stat(S.reclaimed);
        else {
          this.stat(S.evictions);
          if ((f & IF_FETCHED) === 0) this.stat(S.evicted_unfetched);
          if ((f & IF_ACTIVE) !== 0) this.stat(S.evicted_active);
        }
        this.unlinkLocked(ref, hv, id, false);
        this.unlock(stripe);
        return ref;
      }
      ref = prev;
    }
    return -1;
  }

  /**
   * A page for class `id` (its lock held, its free list empty) from another class, evicting what the page holds
   * (memcached's slab rebalancer, done inline). Only a class that has no page at all takes one: a class with pages
   * evicts its own items, and when every chunk it has is owned by a connection (values still arriving) the
   * allocation fails, as memcached's does — it does not take another class's page. Donors are tried from the most
   * pages down (each class once); a page moves only when none of its chunks is owned by a connection.
   */
  private movePageLocked(id: number): boolean {
    const c = this.ctl;
    if (c[this.cls(id) + K_NPAGES] > 0) return false;
    const tried = this.donorTried.fill(0);
    for (let round = 0; round < this.nclasses; round++) {
      let victim = 0, most = 0;
      for (let v = 1; v <= this.nclasses; v++) {
        const np = c[this.cls(v) + K_NPAGES];
        if (v !== id && np > most && tried[v] === 0) { most = np; victim = v; }
      }
      if (victim === 0) return false;
      tried[victim] = 1;
      if (this.movePageFromLocked(victim, id)) return true;
    }
    return false;
  }

  /** Moves one page of class `victim` to class `id` (id's lock held); false when victim is locked or has no movable page. */
  private movePageFromLocked(victim: number, id: number): boolean {
    const c = this.ctl, vk = this.cls(victim);
    if (!this.tryLock(vk + K_LOCK)) return false;
    try {
      const size = c[vk + K_SIZE], per = c[vk + K_PERPAGE];
      for (let p = 0; p < this.shared.totalPages; p++) {
        if (c[C_PAGE_BASE + p] !== victim) continue;
        const base = p * this.pageSize;
        // a chunk neither free nor linked is owned by a connection (a value arriving): the page stays
        let busy = false;
        for (let i = 0; i < per && !busy; i++) busy = (this.iflags((base + i * size) >>> 3) & (IF_FREE | IF_LINKED)) === 0;
        if (busy) continue;
        for (let i = 0; i < per && !busy; i++) {
          const ref = (base + i * size) >>> 3;
          if ((this.iflags(ref) & IF_LINKED) === 0) continue;
          const hv = this.h[(ref << 1) + H_HASH] >>> 0;
          const stripe = this.stripeOf(hv);
          if (!this.tryLock(stripe)) { busy = true; break; } // (the items evicted so far stay evicted)
          this.stat(this.isDead(ref) ? S.reclaimed : S.evictions);
          this.unlinkLocked(ref, hv, victim, true);
          this.unlock(stripe);
        }
        if (busy) continue;
        for (let i = 0; i < per; i++) this.unfreeChunkLocked((base + i * size) >>> 3, victim);
        c[vk + K_NPAGES]--;
        this.carvePageLocked(p, id);
        this.stat(S.slabs_moved);
        return true;
      }
      return false;
    } finally {
      this.unlock(vk + K_LOCK);
    }
  }

  // ---------------------------------------------------------------- LRU (class lock held)
  private lruInsertLocked(ref: number, k: number): void {
    const c = this.ctl, h = this.h, b = ref << 1;
    const head = c[k + K_HEAD];
    h[b + H_PREV] = -1; h[b + H_NEXT] = head;
    if (head !== -1) h[(head << 1) + H_PREV] = ref; else c[k + K_TAIL] = ref;
    c[k + K_HEAD] = ref;
  }
  private lruRemoveLocked(ref: number, k: number): void {
    const c = this.ctl, h = this.h, b = ref << 1;
    const prev = h[b + H_PREV], next = h[b + H_NEXT];
    if (prev === -1) c[k + K_HEAD] = next; else h[(prev << 1) + H_NEXT] = next;
    if (next === -1) c[k + K_TAIL] = prev; else h[(next << 1) + H_PREV] = prev;
    h[b + H_PREV] = -1; h[b + H_NEXT] = -1;
  }

  // ---------------------------------------------------------------- link / unlink
  /** memcached's do_item_link: new CAS, into the hash chain and LRU head. Stripe lock held. */
  link(ref: number, hv: number): void {
    const h = this.h, b = ref << 1;
    const cas = this.casIn !== 0 ? this.casIn : this.nextCas();
    this.setCas(ref, cas);
    h[b + H_TIME] = this.now;
    const bi = this.bucketOf(hv);
    h[b + H_HNEXT] = this.buckets[bi];
    this.buckets[bi] = ref;
    const si = (hv & (NSTRIPES - 1)) << 1;
    const count = ++this.sp[si + 1];
    if (count * NSTRIPES > this.sp[si] + 1 && this.sp[si] < this.bucketMask) this.growStripe(si >> 1);
    const id = this.clsid(ref), k = this.cls(id);
    this.lock(k + K_LOCK);
    h[b + H_META] = (h[b + H_META] & 0xffff) | ((((h[b + H_META] >>> 16) & ~(IF_ALLOCATED | IF_FREE)) | IF_LINKED) << 16);
    this.lruInsertLocked(ref, k);
    this.ctl[k + K_NITEMS]++;
    this.unlock(k + K_LOCK);
    this.stat(S.curr_items); this.stat(S.total_items); this.stat(S.bytes, this.ntotal(ref));
  }

  /** memcached's do_item_unlink: out of hash and LRU, chunk freed. Stripe lock held. */
  unlink(ref: number, hv: number): void {
    const id = this.clsid(ref), k = this.cls(id);
    this.lock(k + K_LOCK);
    this.unlinkLocked(ref, hv, id, true);
    this.unlock(k + K_LOCK);
  }

  /** Stripe and class locks held. `toFree`: put the chunk on the free list (else the caller reuses it). */
  private unlinkLocked(ref: number, hv: number, id: number, toFree: boolean): void {
    const h = this.h;
    const bi = this.bucketOf(hv);
    let cur = this.buckets[bi], prev = -1;
    while (cur !== -1 && cur !== ref) { prev = cur; cur = h[(cur << 1) + H_HNEXT]; }
    if (cur === ref) {
      const next = h[(ref << 1) + H_HNEXT];
      if (prev === -1) this.buckets[bi] = next; else h[(prev << 1) + H_HNEXT] = next;
      this.sp[((hv & (NSTRIPES - 1)) << 1) + 1]--;
    }
    const k = this.cls(id);
    this.lruRemoveLocked(ref, k);
    this.ctl[k + K_NITEMS]--;
    this.stat(S.curr_items, -1); this.stat(S.bytes, -this.ntotal(ref));
    if (toFree) this.freeChunkLocked(ref, id);
    else h[(ref << 1) + H_META] = id << 8;
  }

  /**
   * Doubles stripe `s`'s buckets (its lock held): each old bucket b splits into b (hash bit clear) and
   * b + old size (bit set). O(items in the stripe), amortised O(1) per link; other stripes are not involved.
   */
  private growStripe(s: number): void {
    const h = this.h, bk = this.buckets;
    const oldMask = this.sp[s << 1];
    const oldSize = oldMask + 1, newMask = oldMask * 2 + 1;
    for (let bi = s; bi < oldSize; bi += NSTRIPES) {
      let lo = -1, hi = -1;
      for (let r = bk[bi]; r !== -1;) {
        const next = h[(r << 1) + H_HNEXT];
        if ((h[(r << 1) + H_HASH] & newMask) === bi) { h[(r << 1) + H_HNEXT] = lo; lo = r; }
        else { h[(r << 1) + H_HNEXT] = hi; hi = r; }
        r = next;
      }
      bk[bi] = lo;
      bk[bi + oldSize] = hi;
    }
    Atomics.store(this.sp, s << 1, newMask);
  }

  /** Swap `old` for `neu` (stripe lock held). */
  replace(old: number, neu: number, hv: number): void {
    this.unlink(old, hv);
    this.link(neu, hv);
  }

  // ---------------------------------------------------------------- store commands
  /**
   * memcached's do_store_item for a filled item from `alloc` (its CAS field holds the requested CAS, 0 = none).
   * Takes the stripe lock. The item is consumed (linked or freed). `setStale`: ms … I with a lower CAS.
   */
  storeItem(ref: number, comm: StoreCmd, setStale: boolean): StoreResult {
    const hv = this.h[(ref << 1) + H_HASH] >>> 0;
    const koff = this.keyOffset(ref), nkey = this.nkey(ref);
    this.lockKey(hv);
    let result = StoreResult.NOT_STORED;
    let stored = -1;
    try {
      const old = this.find(hv, this.mem, koff, nkey);
      const itCas = this.cas(ref);
      if (old !== -1) {
        const oldCas = this.cas(old);
        const casNone = itCas === 0;
        const casMatch = !casNone && u64Eq(itCas, oldCas);
        const casStale = !casNone && !casMatch && setStale && (itCas as bigint) < (oldCas as bigint);
        let doStore = false;
        switch (comm) {
          case StoreCmd.ADD:
            this.update(old);
            break;
          case StoreCmd.CAS:
            if (casMatch) { this.stat(S.cas_hits); doStore = true; }
            else if (casStale) {
              this.setExptime(ref, this.exptime(old));
              this.setIflag(ref, IF_STALE | (this.iflags(old) & IF_TOKEN_SENT));
              this.stat(S.cas_hits); doStore = true;
            } else { this.stat(S.cas_badval); result = StoreResult.EXISTS; }
            break;
          case StoreCmd.APPEND_VIV:
          case StoreCmd.PREPEND_VIV:
          case StoreCmd.APPEND:
          case StoreCmd.PREPEND: {
            if (!casNone && !casMatch) { result = StoreResult.EXISTS; break; }
            const oldN = this.nbytes(old), addN = this.nbytes(ref);
            const neu = this.alloc(this.mem, koff, nkey, this.clientFlags(old), this.exptime(old), oldN + addN - 2);
            if (neu < 0) { result = StoreResult.NOT_STORED; break; }
            const d = this.dataOffset(neu), od = this.dataOffset(old), ad = this.dataOffset(ref);
            if (comm === StoreCmd.APPEND || comm === StoreCmd.APPEND_VIV) {
              this.mem.copyWithin(d, od, od + oldN - 2);
              this.mem.copyWithin(d + oldN - 2, ad, ad + addN);
            } else {
              this.mem.copyWithin(d, ad, ad + addN - 2);
              this.mem.copyWithin(d + addN - 2, od, od + oldN);
            }
            if (this.iflags(ref) & IF_KEY_BINARY) this.setIflag(neu, IF_KEY_BINARY);
            this.free(ref);
            ref = neu;
            doStore = true;
            break;
          }
          default: // SET, REPLACE
            doStore = true;
        }
        if (doStore) { this.replace(old, ref, hv); stored = ref; result = StoreResult.STORED; }
      } else {
        switch (comm) {
          case StoreCmd.ADD:
          case StoreCmd.SET:
          case StoreCmd.APPEND_VIV:
          case StoreCmd.PREPEND_VIV:
            this.link(ref, hv); stored = ref; result = StoreResult.STORED;
            break;
          case StoreCmd.CAS:
            result = StoreResult.NOT_FOUND; this.stat(S.cas_misses);
            break;
          default:
            break;
        }
      }
      if (stored !== -1) { this.lastCas = this.cas(stored); this.lastNbytes = this.nbytes(stored); }
    } finally {
      if (stored === -1) this.free(ref);
      this.unlockKey(hv);
    }
    return result;
  }

  /** Remove the key if present (used after a failed allocation for a set). */
  remove(k: Uint8Array, off: number, len: number): boolean {
    const hv = hashKey(k, off, len);
    this.lockKey(hv);
    const ref = this.find(hv, k, off, len);
    if (ref !== -1) this.unlink(ref, hv);
    this.unlockKey(hv);
    return ref !== -1;
  }

  /** memcached's do_add_delta (stripe lock held by caller). `out` receives the new value's digits. */
  addDelta(hv: number, k: Uint8Array, off: number, len: number, incr: boolean, delta: U64, reqCas: U64,
    res: { ref: number; value: string }, held: ((ref: number) => boolean) | null = null): DeltaResult {
    res.ref = -1;
    const ref = this.find(hv, k, off, len);
    if (ref === -1) return DeltaResult.NOT_FOUND;
    const nb = this.nbytes(ref);
    if (nb <= 2) return DeltaResult.NON_NUMERIC;
    if (reqCas !== 0 && !u64Eq(reqCas, this.cas(ref))) return DeltaResult.CAS_MISMATCH;
    const d = this.dataOffset(ref);
    const cur = parseU64Value(this.mem, d, d + nb);
    if (cur < 0) return DeltaResult.NON_NUMERIC;
    let v: U64;
    if (incr) {
      if (typeof cur === 'number' && typeof delta === 'number' && cur + delta <= Number.MAX_SAFE_INTEGER) v = cur + delta;
      else v = normU64((BigInt(cur) + BigInt(delta)) % TWO64);
      this.stat(S.incr_hits);
    } else {
      if (typeof cur === 'number' && typeof delta === 'number') v = delta > cur ? 0 : cur - delta;
      else { const c = BigInt(cur), dd = BigInt(delta); v = normU64(dd > c ? 0n : c - dd); }
      this.stat(S.decr_hits);
    }
    const s = String(v);
    res.value = s;
    if (s.length + 2 <= nb && !(held !== null && held(ref))) {
      // in place, padded with spaces (memcached does exactly this, when no reply in flight references the item)
      this.setCas(ref, this.casIn !== 0 ? this.casIn : this.nextCas());
      const m = this.mem;
      for (let i = 0; i < s.length; i++) m[d + i] = s.charCodeAt(i);
      m.fill(0x20, d + s.length, d + nb - 2);
      this.update(ref);
      res.ref = ref;
      return DeltaResult.OK;
    }
    const neu = this.alloc(k, off, len, this.clientFlags(ref), this.exptime(ref), s.length + 2);
    if (neu < 0) return DeltaResult.EOM;
    const nd = this.dataOffset(neu);
    for (let i = 0; i < s.length; i++) this.mem[nd + i] = s.charCodeAt(i);
    this.mem[nd + s.length] = 13; this.mem[nd + s.length + 1] = 10;
    if (this.iflags(ref) & IF_KEY_BINARY) this.setIflag(neu, IF_KEY_BINARY);
    this.replace(ref, neu, hv);
    res.ref = neu;
    return DeltaResult.OK;
  }

  /** Link a fresh item while the caller holds the stripe lock (vivify paths). */
  linkNew(ref: number, hv: number): void { this.link(ref, hv); }

  /** memcached's flush_all [delay]. */
  flushAll(delay: number): void {
    const newOldest = delay > 0 ? this.realtime(delay) : this.now;
    const oldestLive = (newOldest - 1) >>> 0;
    Atomics.store(this.ctl, C_OLDEST_LIVE, oldestLive | 0);
    if (oldestLive <= this.now) {
      const cas = this.nextCas();
      const n = typeof cas === 'number' ? cas : Number(cas);
      Atomics.store(this.ctl, C_OLDEST_CAS_HI, Math.floor(n / 0x1_0000_0000) | 0);
      Atomics.store(this.ctl, C_OLDEST_CAS_LO, n >>> 0);
    }
  }

  /** Summary for `stats`: items, bytes, evictions … (summed over workers). */
  totals(): { curr_items: number; bytes: number; total_items: number; evictions: number } {
    return {
      curr_items: this.statTotal(S.curr_items), bytes: this.statTotal(S.bytes),
      total_items: this.statTotal(S.total_items), evictions: this.statTotal(S.evictions),
    };
  }

  /** Per-class info for `stats slabs` / `stats items`. */
  classInfo(id: number): { size: number; perPage: number; pages: number; items: number; free: number } {
    const k = this.cls(id), c = this.ctl;
    return { size: c[k + K_SIZE], perPage: c[k + K_PERPAGE], pages: c[k + K_NPAGES], items: c[k + K_NITEMS], free: c[k + K_NFREE] };
  }
  pagesUsed(): number { return Math.min(Atomics.load(this.ctl, C_NEXT_PAGE), this.shared.totalPages); }

  /** Consistency check for tests: walks every class (takes each class lock). Returns problems found. */
  check(): string[] {
    const errs: string[] = [];
    const c = this.ctl, h = this.h;
    let items = 0;
    for (let id = 1; id <= this.nclasses; id++) {
      const k = this.cls(id);
      this.lock(k + K_LOCK);
      let n = 0, prev = -1;
      for (let r = c[k + K_HEAD]; r !== -1; r = h[(r << 1) + H_NEXT]) {
        if (h[(r << 1) + H_PREV] !== prev) errs.push(`class ${id}: bad prev link at ${r}`);
        if ((this.iflags(r) & IF_LINKED) === 0) errs.push(`class ${id}: unlinked item in LRU`);
        if (this.clsid(r) !== id) errs.push(`class ${id}: item of class ${this.clsid(r)}`);
        prev = r;
        if (++n > 1e8) break;
      }
      if (c[k + K_TAIL] !== prev) errs.push(`class ${id}: bad tail`);
      if (n !== c[k + K_NITEMS]) errs.push(`class ${id}: ${n} items in LRU, counter ${c[k + K_NITEMS]}`);
      let nf = 0;
      for (let r = c[k + K_FREE]; r !== -1; r = h[(r << 1) + H_NEXT]) { nf++; if (nf > 1e8) break; }
      if (nf !== c[k + K_NFREE]) errs.push(`class ${id}: ${nf} free chunks, counter ${c[k + K_NFREE]}`);
      items += n;
      this.unlock(k + K_LOCK);
    }
    let hashed = 0;
    for (let s = 0; s < NSTRIPES; s++) {
      this.lock(C_STRIPE_BASE + s);
      const mask = this.sp[s << 1];
      let n = 0;
      if (((mask + 1) & mask) !== 0 || mask < NSTRIPES - 1 || mask > this.bucketMask) errs.push(`stripe ${s}: bad mask ${mask}`);
      for (let b = s; b <= mask; b += NSTRIPES) {
        for (let r = this.buckets[b]; r !== -1; r = h[(r << 1) + H_HNEXT]) {
          n++;
          if (((h[(r << 1) + H_HASH] >>> 0) & mask) !== b) errs.push(`item in wrong bucket`);
          if (n > 1e8) break;
        }
      }
      if (n !== this.sp[(s << 1) + 1]) errs.push(`stripe ${s}: ${n} items hashed, counter ${this.sp[(s << 1) + 1]}`);
      hashed += n;
      this.unlock(C_STRIPE_BASE + s);
    }
    if (hashed !== items) errs.push(`${hashed} items hashed, ${items} in LRUs`);
    return errs;
  }
}

function normU64(b: bigint): U64 { return b <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(b) : b; }

function isSpace(c: number): boolean { return c === 32 || (c >= 9 && c <= 13); }

/**
 * strtoull semantics over an item's value (memcached's safe_strtoull on ITEM_data): leading white space, an
 * optional sign, decimal digits, then white space or the end. Returns -1 when not a number (or negative, or
 * above 2^64 − 1).
 */
export function parseU64Value(b: Uint8Array, start: number, end: number): U64 | -1 {
  let i = start;
  while (i < end && isSpace(b[i])) i++;
  let neg = false;
  if (i < end && (b[i] === 43 || b[i] === 45)) { neg = b[i] === 45; i++; }
  const ds = i;
  let n = 0;
  while (i < end && b[i] >= 48 && b[i] <= 57 && n <= 9e14) { n = n * 10 + (b[i] - 48); i++; }
  let big: bigint | undefined;
  if (i < end && b[i] >= 48 && b[i] <= 57) {
    big = BigInt(n);
    while (i < end && b[i] >= 48 && b[i] <= 57) { big = big * 10n + BigInt(b[i] - 48); i++; }
    if (big >= TWO64) return -1;
  }
  if (i === ds) return -1;
  if (i < end && !isSpace(b[i])) return -1;
  if (neg) {
    // strtoull negates modulo 2^64; memcached rejects the result when it looks negative as a signed 64-bit value
    const v = big ?? BigInt(n);
    const r = (TWO64 - v) % TWO64;
    if (r >= 1n << 63n) return -1;
    return normU64(r);
  }
  return big !== undefined ? normU64(big) : n;
}
