// memcached's text protocol (classic and meta commands, as memcached 1.6 answers them) as a connection `Session`
// over the shared `Store`. Parsing is incremental over `data()` chunks: complete lines are tokenized in place (in
// the chunk when the whole line is there, else in a per-connection line buffer), values are copied straight into
// the item's chunk in shared memory, and replies are gathered in one output buffer written once per chunk (or
// sooner when large). When `conn.write` reports the queue above its high-water mark, parsing stops
// (`conn.pause()`) until `drain`.
//
// Connection memory, as memcached bounds it: every buffer a connection keeps has a cap (the line at the multi-get
// cap, the unparsed input while paused at MAX_BACKLOG, the output at about OUT_FLUSH + DIRECT_VALUE), and between
// reads a buffer grown for one large request is given back (memcached's conn_shrink / rbuf_release). `stats`
// reports what connection buffers hold (read_buf_count, read_buf_bytes).

import type { Conn, Session, SessionFactory } from '../../src/index.js';
import {
  ALLOC_TOO_LARGE, DeltaResult, IF_FETCHED, IF_KEY_BINARY, IF_STALE, IF_TOKEN_SENT, KEY_MAX_LENGTH, S, Store,
  StoreCmd, StoreResult, hashKey, type StoreShared, type U64,
} from './store.js';
import { Out, base64Decode, base64Encode, eqAscii, strtol32, strtoul32, strtoull } from './text.js';

export const VERSION = '1.6.18';

/** Server settings every worker sees (plain data: travels in workerData). */
export interface McSettings {
  host: string;
  port: number;
  maxConns: number;
  threads: number;
  verbosity: number;
  /** Largest multi-get line accepted (bytes); longer ones close the connection. */
  maxGetLine?: number;
  /** memcached's `-o idle_timeout`: close a connection waiting for a command more than this many seconds (0: off). */
  idleTimeout?: number;
  /** Process start (ms), for uptime. */
  startedAt?: number;
}

export interface McWorkerData {
  store: StoreShared;
  settings: McSettings;
}

/** Per-thread state shared by that thread's sessions. */
export class McApp {
  readonly store: Store;
  readonly worker: number;
  readonly workers: number;
  readonly settings: McSettings;
  private nextId = 0;
  // idle_timeout: this thread's open sessions, swept once a second while there are any (memcached's idle thread)
  private readonly live = new Set<McSession>();
  private sweeper: NodeJS.Timeout | null = null;
  constructor(data: McWorkerData, worker: number, workers: number) {
    this.store = new Store(data.store, worker);
    this.worker = worker;
    this.workers = workers;
    this.settings = data.settings;
  }
  factory(): SessionFactory {
    return (conn) => new McSession(conn, this, ++this.nextId);
  }
  /** A session opened (idle_timeout on): sweep while any is open. */
  watch(s: McSession): void {
    this.live.add(s);
    if (!this.sweeper) this.sweeper = setInterval(() => this.sweep(), IDLE_SWEEP_MS).unref();
  }
  /** A watched session closed. */
  unwatch(s: McSession): void {
    this.live.delete(s);
    if (this.live.size === 0 && this.sweeper) { clearInterval(this.sweeper); this.sweeper = null; }
  }
  private sweep(): void {
    const now = this.store.tick(), limit = this.settings.idleTimeout ?? 0;
    for (const s of this.live) s.kickIfIdle(now, limit);
  }
}

const MAX_TOKENS = 24;
const LINE_LIMIT = 2048; // memcached closes a connection holding more than this without a newline (unless get/gets)
const DEFAULT_MAX_GET_LINE = 2 * 1024 * 1024;
const LINE_INITIAL = 1024; // a connection's partial-line buffer
const LINE_KEEP = 4096; // a line buffer grown past this is given back once its line is consumed
const OUT_INITIAL = 16 * 1024; // a connection's output buffer; grown by one read's large replies, given back after
const OUT_FLUSH = 64 * 1024; // write out once this much output is gathered
const DIRECT_VALUE = 16 * 1024; // values above this go from shared memory straight to conn.write
const MAX_BACKLOG = 8 * 1024 * 1024; // input kept while paused; more means the transport ignored pause()
const INT_MAX = 0x7fffffff;
const MFLAG_MAX_OPT_LENGTH = 20;
const MFLAG_MAX_OPAQUE_LENGTH = 32;
const IDLE_SWEEP_MS = 1000; // idle_timeout's resolution is memcached's clock: seconds

const enum Mode { LINE, DATA, SWALLOW, CLOSED }

const enum Ch { SP = 32, CR = 13, LF = 10 }

/** Parsed meta flags (memcached's struct _meta_flags). */
class MetaFlags {
  noUpdate = false; locked = false; vivify = false; la = false; value = false; setStale = false;
  noReply = false; hasCas = false; newTtl = false; keyBinary = false; hasError = false;
  mode = 0; exptime = 0; autovivExptime = 0; recacheTime = 0; clientFlags = 0;
  reqCas: U64 = 0; delta: U64 = 1; initial: U64 = 0;
  readonly seen = new Uint8Array(128);
  reset(): void {
    this.noUpdate = this.locked = this.vivify = this.la = this.value = this.setStale = false;
    this.noReply = this.hasCas = this.newTtl = this.keyBinary = this.hasError = false;
    this.mode = 0; this.exptime = 0; this.autovivExptime = 0; this.recacheTime = 0; this.clientFlags = 0;
    this.reqCas = 0; this.delta = 1; this.initial = 0;
    this.seen.fill(0);
  }
}

export class McSession implements Session {
  private readonly conn: Conn;
  private readonly app: McApp;
  private readonly store: Store;
  private readonly id: number;
  private readonly out = new Out(OUT_INITIAL);
  private mode = Mode.LINE;
  // partial line
  private line = new Uint8Array(LINE_INITIAL);
  private lineLen = 0;
  // tokens of the current line
  private tb: Uint8Array = this.line;
  private readonly ts = new Int32Array(MAX_TOKENS);
  private readonly te = new Int32Array(MAX_TOKENS);
  private ntokens = 0;
  private lineEnd = 0;
  private noreply = false;
  // value being read into an item
  private item = -1;
  private itemGot = 0;
  private itemNeed = 0;
  private itemComm = StoreCmd.SET;
  private itemNoreply = false;
  private itemMeta = false;
  private itemSetStale = false;
  private readonly stash = new Out(256); // ms: O/k/c flags to echo after the value is in
  private readonly msKey = new Uint8Array(KEY_MAX_LENGTH + 4);
  private msKeyLen = 0;
  private msKeyBinary = false;
  private swallowLeft = 0;
  // key (meta 'b' keys are decoded here)
  private readonly keyBuf = new Uint8Array(KEY_MAX_LENGTH + 4);
  private kb: Uint8Array = this.keyBuf;
  private ko = 0;
  private kl = 0;
  private readonly mf = new MetaFlags();
  private errstr = '';
  private readonly delta = { ref: -1, value: '' };
  // flow control
  private blocked = false;
  private backlog: Uint8Array | null = null;
  private backlogOff = 0;
  private backlogLen = 0;
  private pendingGet: { b: Uint8Array; pos: number; end: number; cas: boolean; touch: boolean; exptime: number } | null = null;
  private closeAfterWrite = false;
  // Items referenced by replies not yet written out. memcached holds a reference on every item a pending mg reply
  // points to until it writes (at the end of a read, after mn, after a get), and then incr/decr cannot update that
  // item in place (it makes a new one: no space padding, fresh flags). Emulated so pipelined replies match
  // memcached's byte for byte.
  // Each entry: the item's ref and CAS (a chunk reused by another item is not the held item).
  private readonly held = new Int32Array(64);
  private readonly heldCas = new Float64Array(64);
  private nheld = 0;
  /** memcached's reqs_per_event: it also writes out every 20 commands of one read. */
  private nreqs = 20;
  /** Bytes of `out` memcached would already have written (after a get, an mn, every 20 commands); the rest it drops when it closes on bad input. */
  private sentMark = 0;
  private readonly isHeld = (ref: number): boolean => {
    for (let i = 0; i < this.nheld; i++) {
      if (this.held[i] === ref && this.heldCas[i] === Number(this.store.cas(ref))) return true;
    }
    return false;
  };
  private firstByte = true;
  private rejected = false;
  /** memcached's last_cmd_time: the store clock (s) when the last command line arrived (or the connection opened). */
  private lastCmd = 0;
  // what this connection's buffers hold, as last added to the read_buf_* stats; `gone` once close() took it back
  private bufBytes = 0;
  private bufCount = 0;
  private gone = false;

  constructor(conn: Conn, app: McApp, id: number) {
    this.conn = conn;
    this.app = app;
    this.store = app.store;
    this.id = id;
    const st = this.store;
    const limit = app.settings.maxConns;
    if (limit > 0 && st.statTotal(S.curr_connections) >= limit) {
      // memcached: "ERROR Too many open connections" and close
      this.rejected = true;
      st.stat(S.rejected_connections);
      conn.writeAscii('ERROR Too many open connections\r\n');
      conn.end();
      this.mode = Mode.CLOSED;
      return;
    }
    st.stat(S.curr_connections);
    st.stat(S.total_connections);
    this.lastCmd = st.tick();
    if ((app.settings.idleTimeout ?? 0) > 0) app.watch(this);
    this.accountBuffers();
    if (this.app.settings.verbosity > 1) console.error(`<${this.id} new auto-negotiating client connection`);
  }

  // ------------------------------------------------------------------ Session
  private closed(): boolean { return this.mode === Mode.CLOSED; }

  data(buf: Uint8Array, offset: number, length: number): void {
    if (this.closed()) return;
    this.store.stat(S.bytes_read, length);
    if (this.blocked || this.backlogLen > 0) { this.toBacklog(buf, offset, length); this.accountBuffers(); return; }
    this.store.tick();
    this.nreqs = 20;
    const used = this.process(buf, offset, offset + length);
    if (used < offset + length && !this.closed()) this.toBacklog(buf, used, offset + length - used);
    this.flush();
    this.shrink();
  }

  end(): void {
    // peer finished sending: answer what we have, then close (memcached closes on EOF)
    if (this.closed()) return;
    if (this.blocked || this.backlogLen > 0) { this.closeAfterWrite = true; return; }
    this.flush();
    this.mode = Mode.CLOSED;
    this.conn.end();
  }

  drain(): void {
    if (!this.blocked || this.mode === Mode.CLOSED) return;
    this.blocked = false;
    this.store.tick();
    if (this.pendingGet) {
      const g = this.pendingGet;
      this.pendingGet = null;
      this.getKeys(g.b, g.pos, g.end, g.cas, g.touch, g.exptime);
      if (!this.blocked) this.flushIfBig();
    }
    while (!this.blocked && this.backlogLen > 0 && !this.closed()) {
      const b = this.backlog!, start = this.backlogOff, end = start + this.backlogLen;
      const used = this.process(b, start, end);
      this.backlogOff = used;
      this.backlogLen = end - used;
    }
    this.flush();
    this.shrink();
    if (!this.blocked && !this.closed()) {
      if (this.closeAfterWrite) { this.mode = Mode.CLOSED; this.conn.end(); return; }
      this.conn.resume();
    }
  }

  close(): void {
    if (this.item !== -1) { this.store.free(this.item); this.item = -1; }
    this.mode = Mode.CLOSED;
    this.gone = true;
    this.app.unwatch(this);
    this.store.stat(S.read_buf_bytes, -this.bufBytes);
    this.store.stat(S.read_buf_count, -this.bufCount);
    this.bufBytes = this.bufCount = 0;
    if (!this.rejected) this.store.stat(S.curr_connections, -1);
    if (this.app.settings.verbosity > 1) console.error(`<${this.id} connection closed.`);
  }

  /**
   * idle_timeout (memcached's conn_close_idle): closed when its last command is more than `limit` seconds before
   * `now` and it is waiting for a command — not inside a value, not held back by a full output queue.
   */
  kickIfIdle(now: number, limit: number): void {
    if (limit <= 0 || this.mode !== Mode.LINE || this.blocked || now - this.lastCmd <= limit) return;
    this.store.stat(S.idle_kicks);
    if (this.app.settings.verbosity > 1) console.error(`Closing idle fd ${this.id}`);
    this.closeConn();
  }

  // ------------------------------------------------------------------ output
  private hold(ref: number): void {
    if (this.nheld < this.held.length) { this.held[this.nheld] = ref; this.heldCas[this.nheld++] = Number(this.store.cas(ref)); }
  }
  /** A command finished (memcached's conn_new_cmd). */
  private commandDone(): void {
    if (--this.nreqs < 0) { this.writePoint(); this.nreqs = 19; }
  }
  /** Where memcached writes out what it gathered and releases every item reference (the bytes stay in `out`). */
  private writePoint(): void {
    this.nheld = 0;
    this.sentMark = this.out.pos;
  }
  private flush(): void {
    this.nheld = 0;
    const o = this.out;
    if (o.pos > 0 && this.mode !== Mode.CLOSED) {
      this.store.stat(S.bytes_written, o.pos);
      if (!this.conn.write(o.buf, 0, o.pos)) this.block();
    }
    o.pos = 0;
    this.sentMark = 0;
  }
  /**
   * Between reads (memcached's conn_shrink / rbuf_release): give back the buffers one large request grew (a long
   * multi-get line, a large gathered reply, input kept while paused), drop the views of the transport's receive
   * buffer that tokens and keys point into, and report what the connection holds.
   */
  private shrink(): void {
    this.tb = this.kb = this.keyBuf;
    if (this.line.length > LINE_KEEP && this.lineLen <= LINE_INITIAL) {
      const nb = new Uint8Array(LINE_INITIAL);
      nb.set(this.line.subarray(0, this.lineLen));
      this.line = nb;
    }
    if (this.out.pos === 0 && this.out.buf.length > OUT_INITIAL) this.out.buf = new Uint8Array(OUT_INITIAL);
    if (this.backlogLen === 0) { this.backlog = null; this.backlogOff = 0; }
    this.accountBuffers();
  }
  /** Adds the change in what this connection's buffers hold to the read_buf_* stats (gauges of this worker's row). */
  private accountBuffers(): void {
    if (this.gone || this.rejected) return;
    let bytes = this.line.length + this.out.buf.length + this.stash.buf.length, count = 3;
    if (this.backlog) { bytes += this.backlog.length; count++; }
    if (this.pendingGet) { bytes += this.pendingGet.b.length; count++; }
    if (bytes !== this.bufBytes) { this.store.stat(S.read_buf_bytes, bytes - this.bufBytes); this.bufBytes = bytes; }
    if (count !== this.bufCount) { this.store.stat(S.read_buf_count, count - this.bufCount); this.bufCount = count; }
  }
  private flushIfBig(): void { if (this.out.pos >= OUT_FLUSH) this.flush(); }
  private block(): void {
    if (!this.blocked) { this.blocked = true; this.store.stat(S.conn_yields); this.conn.pause(); }
  }
  private toBacklog(buf: Uint8Array, off: number, len: number): void {
    if (len <= 0) return;
    if (this.backlogLen + len > MAX_BACKLOG) { this.store.stat(S.read_buf_oom); this.abort(); return; } // peer ignores flow control
    let b = this.backlog;
    if (!b || this.backlogOff + this.backlogLen + len > b.length) {
      const nb = new Uint8Array(Math.min(MAX_BACKLOG, Math.max(4096, (this.backlogLen + len) * 2)));
      if (b) nb.set(b.subarray(this.backlogOff, this.backlogOff + this.backlogLen));
      this.backlog = b = nb;
      this.backlogOff = 0;
    }
    b.set(buf.subarray(off, off + len), this.backlogOff + this.backlogLen);
    this.backlogLen += len;
  }
  /** memcached's out_string: nothing under noreply. */
  private outString(s: string): void {
    if (this.noreply) return;
    this.out.str(s); this.out.crlf();
  }
  /** memcached's out_errstring: errors are sent even under noreply. */
  private outErr(s: string): void { this.noreply = false; this.outString(s); }
  /** memcached's conn_closing on bad input: the replies it has not written yet are dropped, then the connection closed. */
  private abort(): void {
    this.out.pos = this.sentMark;
    this.closeConn();
  }
  /** Write out everything gathered, then close (quit, idle kick). */
  private closeConn(): void {
    this.flush();
    this.mode = Mode.CLOSED;
    if (this.item !== -1) { this.store.free(this.item); this.item = -1; }
    this.conn.end();
  }

  // ------------------------------------------------------------------ parsing
  /** Consume bytes [off, end); returns where it stopped (end, or earlier when blocked / closed). */
  private process(b: Uint8Array, off: number, end: number): number {
    if (this.firstByte && off < end) {
      this.firstByte = false;
      if (b[off] === 0x80) { this.abort(); return end; } // binary protocol: not supported
    }
    while (off < end && !this.blocked) {
      switch (this.mode) {
        case Mode.CLOSED:
          return end;
        case Mode.SWALLOW: {
          const n = Math.min(this.swallowLeft, end - off);
          off += n;
          this.swallowLeft -= n;
          if (this.swallowLeft === 0) { this.mode = Mode.LINE; this.commandDone(); }
          break;
        }
        case Mode.DATA: {
          const n = Math.min(this.itemNeed - this.itemGot, end - off);
          this.store.writeData(this.item, this.itemGot, b, off, n);
          this.itemGot += n;
          off += n;
          if (this.itemGot === this.itemNeed) { this.mode = Mode.LINE; this.completeStore(); this.commandDone(); this.flushIfBig(); }
          break;
        }
        case Mode.LINE: {
          let nl = off;
          while (nl < end && b[nl] !== Ch.LF) nl++;
          if (nl === end) {
            this.appendLine(b, off, end, true);
            return end;
          }
          if (this.lineLen > 0) {
            this.appendLine(b, off, nl, false);
            off = nl + 1;
            const len = this.lineLen;
            this.lineLen = 0;
            this.command(this.line, 0, len);
          } else {
            const s = off;
            off = nl + 1;
            this.command(b, s, nl);
          }
          if (this.mode === Mode.LINE) this.commandDone();
          this.flushIfBig();
          break;
        }
      }
    }
    return off;
  }

  /** Keep a partial line; enforce memcached's 2048-byte rule (multi-gets may be longer, up to a cap). */
  private appendLine(b: Uint8Array, s: number, e: number, check: boolean): void {
    const n = e - s;
    const need = this.lineLen + n;
    const maxGet = this.app.settings.maxGetLine ?? DEFAULT_MAX_GET_LINE;
    if (check && need > LINE_LIMIT) {
      const isGet = this.lineLen > 0 ? this.looksLikeGet(this.line, 0, this.lineLen) : this.looksLikeGet(b, s, e);
      if (!isGet) { this.abort(); return; }
      if (need > maxGet) { this.store.stat(S.read_buf_oom); this.abort(); return; }
    }
    if (need > this.line.length) {
      let size = this.line.length * 2;
      while (size < need) size *= 2;
      size = Math.max(need, Math.min(size, maxGet)); // the line's own tail may pass the cap, by one read at most
      const nb = new Uint8Array(size);
      nb.set(this.line.subarray(0, this.lineLen));
      this.line = nb;
    }
    this.line.set(b.subarray(s, e), this.lineLen);
    this.lineLen = need;
  }

  private looksLikeGet(b: Uint8Array, s: number, e: number): boolean {
    let p = s;
    while (p < e && b[p] === Ch.SP) p++;
    if (p - s > 100) return false;
    return (e - p >= 4 && b[p] === 103 && b[p + 1] === 101 && b[p + 2] === 116 && b[p + 3] === Ch.SP) ||
      (e - p >= 5 && b[p] === 103 && b[p + 1] === 101 && b[p + 2] === 116 && b[p + 3] === 115 && b[p + 4] === Ch.SP);
  }

  /** memcached's tokenize_command over [s, e) (split on spaces, at most 23 tokens + the rest). */
  private tokenize(b: Uint8Array, s: number, e: number): void {
    this.tb = b;
    let n = 0;
    let st = s;
    let i = s;
    let rest = -1;
    for (; i < e; i++) {
      if (b[i] === Ch.SP) {
        if (st !== i) {
          this.ts[n] = st; this.te[n] = i; n++;
          if (n === MAX_TOKENS - 1) { i++; st = i; rest = i < e ? i : -1; break; }
        }
        st = i + 1;
      }
    }
    if (rest === -1 && st < e && n < MAX_TOKENS - 1) { this.ts[n] = st; this.te[n] = e; n++; }
    // terminal token: value = rest of the line (or none), length 0
    this.ts[n] = rest; this.te[n] = rest;
    this.ntokens = n + 1;
    this.lineEnd = e;
  }

  private tok(i: number, lit: string): boolean { return eqAscii(this.tb, this.ts[i], this.te[i], lit); }
  private tlen(i: number): number { return this.te[i] - this.ts[i]; }

  private command(b: Uint8Array, s: number, nl: number): void {
    let e = nl;
    if (e - s > 1 && b[e - 1] === Ch.CR) e--;
    for (let z = s; z < e; z++) if (b[z] === 0) { e = z; break; } // C string: the line ends at a NUL
    this.noreply = false;
    this.lastCmd = this.store.now;
    this.tokenize(b, s, e);
    if (this.app.settings.verbosity > 1) console.error(`<${this.id} ${Buffer.from(b.subarray(s, e)).toString('latin1')}`);
    const nt = this.ntokens;
    if (nt < 2 || this.tlen(0) < 2) { this.outString('ERROR'); return; }
    const c0 = b[this.ts[0]];
    const clen = this.tlen(0);
    if (c0 === 109 /* m */ && clen === 2) {
      this.store.stat(S.cmd_meta);
      switch (b[this.ts[0] + 1]) {
        case 103: this.metaGet(); return; // mg
        case 115: this.metaSet(); return; // ms
        case 100: this.metaDelete(); return; // md
        case 110: this.outString('MN'); this.flush(); return; // mn (forces a write, as memcached)
        case 97: this.metaArithmetic(); return; // ma
        case 101: this.metaDebug(); return; // me
        default: this.outString('ERROR'); return;
      }
    }
    if (c0 === 103 /* g */) {
      if (nt < 3) { this.outString('ERROR'); return; }
      if (this.tok(0, 'get')) this.get(false, false);
      else if (this.tok(0, 'gets')) this.get(true, false);
      else if (this.tok(0, 'gat')) this.get(false, true);
      else if (this.tok(0, 'gats')) this.get(true, true);
      else this.outString('ERROR');
      return;
    }
    if (this.tok(0, 'set')) { if (this.wantOr(6, 7)) this.update(StoreCmd.SET, false); return; }
    if (this.tok(0, 'add')) { if (this.wantOr(6, 7)) this.update(StoreCmd.ADD, false); return; }
    if (this.tok(0, 'replace')) { if (this.wantOr(6, 7)) this.update(StoreCmd.REPLACE, false); return; }
    if (this.tok(0, 'append')) { if (this.wantOr(6, 7)) this.update(StoreCmd.APPEND, false); return; }
    if (this.tok(0, 'prepend')) { if (this.wantOr(6, 7)) this.update(StoreCmd.PREPEND, false); return; }
    if (this.tok(0, 'cas')) { if (this.wantOr(7, 8)) this.update(StoreCmd.CAS, true); return; }
    if (this.tok(0, 'incr')) { if (this.wantOr(4, 5)) this.arithmetic(true); return; }
    if (this.tok(0, 'decr')) { if (this.wantOr(4, 5)) this.arithmetic(false); return; }
    if (this.tok(0, 'delete')) { if (nt >= 3 && nt <= 5) this.del(); else this.outString('ERROR'); return; }
    if (this.tok(0, 'touch')) { if (this.wantOr(4, 5)) this.touch(); return; }
    if (this.tok(0, 'stats')) { this.stats(); return; }
    if (this.tok(0, 'flush_all')) { if (nt >= 2 && nt <= 4) this.flushAll(); else this.outString('ERROR'); return; }
    if (this.tok(0, 'version')) { this.outString('VERSION ' + VERSION); return; }
    if (this.tok(0, 'quit')) { this.closeConn(); return; }
    if (this.tok(0, 'verbosity')) { if (this.wantOr(3, 4)) this.verbosity(); return; }
    if (this.tok(0, 'bget')) { if (nt < 3) this.outString('ERROR'); else this.get(false, false); return; }
    if (this.tok(0, 'shutdown')) { this.outString('ERROR: shutdown not enabled'); return; }
    if (this.tok(0, 'cache_memlimit')) { if (this.wantOr(3, 4)) this.memlimit(); return; }
    // memcached dispatches on the first letter: an unknown word in its s a c i d t groups (as in g, and two-letter
    // m words, above) is an ERROR, never taken for an HTTP request line
    if (c0 === 115 || c0 === 97 || c0 === 99 || c0 === 105 || c0 === 100 || c0 === 116) { this.outString('ERROR'); return; }
    // commands memcached has and this server does not (see the README)
    // (lru, extstore and watch honour a trailing noreply before finding their arguments wrong)
    if (this.tok(0, 'lru_crawler')) { this.outString('ERROR'); return; }
    if (this.tok(0, 'lru') || this.tok(0, 'extstore') || this.tok(0, 'watch')) {
      if (nt >= 3) this.setNoreplyMaybe();
      this.outString('ERROR');
      return;
    }
    if (this.tok(0, 'refresh_certs')) { this.outString('Error TLS not enabled'); return; }
    // anything else: memcached closes on what looks like an HTTP request line, else ERROR
    const last = nt - 2;
    const ls = this.ts[last];
    if (this.te[last] - ls >= 5 && b[ls] === 72 && b[ls + 1] === 84 && b[ls + 2] === 84 && b[ls + 3] === 80 && b[ls + 4] === 47) {
      this.abort();
      return;
    }
    this.outString('ERROR');
  }

  private wantOr(a: number, c: number): boolean {
    if (this.ntokens !== a && this.ntokens !== c) { this.outString('ERROR'); return false; }
    return true;
  }
  /** memcached's set_noreply_maybe. */
  private setNoreplyMaybe(): boolean {
    const i = this.ntokens - 2;
    if (i >= 0 && this.ts[i] >= 0 && this.tok(i, 'noreply')) this.noreply = true;
    return this.noreply;
  }
  private num32(i: number): number | null { return strtol32(this.tb, this.ts[i], this.te[i]); }
  private u32(i: number): number | null { return strtoul32(this.tb, this.ts[i], this.te[i]); }
  private u64(i: number): U64 | null { return strtoull(this.tb, this.ts[i], this.te[i]); }
  private setKey(i: number): void { this.kb = this.tb; this.ko = this.ts[i]; this.kl = this.te[i] - this.ts[i]; }

  // ------------------------------------------------------------------ get / gets / gat / gats
  private get(returnCas: boolean, touch: boolean): void {
    let exptime = 0;
    let k = 1;
    if (touch) {
      const t = this.num32(1);
      if (t === null) { this.outString('CLIENT_ERROR invalid exptime argument'); return; }
      exptime = this.store.realtime(t);
      k = 2;
    }
    const b = this.tb;
    const start = this.ts[k] >= 0 ? this.ts[k] : this.lineEnd;
    const end = this.lineEnd;
    // any key over 250 bytes: the whole command answers CLIENT_ERROR, and memcached drops every reply it has not
    // written yet and releases its item references (conn_release_items)
    let ks = -1;
    for (let i = start; i <= end; i++) {
      if (i === end || b[i] === Ch.SP) {
        if (ks !== -1 && i - ks > KEY_MAX_LENGTH) {
          this.out.pos = this.sentMark;
          this.nheld = 0;
          this.outString('CLIENT_ERROR bad command line format');
          return;
        }
        ks = -1;
      } else if (ks === -1) ks = i;
    }
    this.getKeys(b, start, end, returnCas, touch, exptime);
  }

  private getKeys(b: Uint8Array, pos: number, end: number, returnCas: boolean, touch: boolean, exptime: number): void {
    const st = this.store, out = this.out;
    while (pos < end) {
      while (pos < end && b[pos] === Ch.SP) pos++;
      if (pos >= end) break;
      let ke = pos;
      while (ke < end && b[ke] !== Ch.SP) ke++;
      const nkey = ke - pos;
      const hv = hashKey(b, pos, nkey);
      st.lockKey(hv);
      const ref = st.find(hv, b, pos, nkey);
      if (ref !== -1) {
        if (touch) { st.setExptime(ref, exptime); st.stat(S.cmd_touch); st.stat(S.touch_hits); }
        else { st.stat(S.cmd_get); st.stat(S.get_hits); }
        st.bump(ref);
        const nb = st.nbytes(ref);
        out.str('VALUE ');
        out.bytes(st.mem, st.keyOffset(ref), nkey);
        out.byte(Ch.SP); out.num(st.clientFlags(ref)); out.byte(Ch.SP); out.num(nb - 2);
        if (returnCas) { out.byte(Ch.SP); out.num(st.cas(ref)); }
        out.crlf();
        if (nb > DIRECT_VALUE) {
          // straight from shared memory into the connection (conn.write copies before returning)
          this.flush();
          st.stat(S.bytes_written, nb);
          if (!this.conn.write(st.mem, st.dataOffset(ref), nb)) this.block();
        } else out.bytes(st.mem, st.dataOffset(ref), nb);
      } else if (touch) { st.stat(S.cmd_touch); st.stat(S.touch_misses); }
      else { st.stat(S.cmd_get); st.stat(S.get_misses); }
      st.unlockKey(hv);
      pos = ke;
      if (out.pos >= OUT_FLUSH) this.flush();
      if (this.blocked && pos < end) {
        // queue is full: finish this get after `drain`
        const rest = new Uint8Array(end - pos); // a copy (Buffer#slice would be a view)
        rest.set(b.subarray(pos, end));
        this.pendingGet = { b: rest, pos: 0, end: rest.length, cas: returnCas, touch, exptime };
        return;
      }
    }
    out.str('END\r\n');
    this.writePoint(); // memcached writes out (and releases every item reference) right after a get
  }

  // ------------------------------------------------------------------ set / add / replace / append / prepend / cas
  private update(comm: StoreCmd, handleCas: boolean): void {
    this.setNoreplyMaybe();
    if (this.tlen(1) > KEY_MAX_LENGTH) { this.outString('CLIENT_ERROR bad command line format'); return; }
    const flags = this.u32(2), exptimeInt = this.num32(3);
    let vlen = this.num32(4);
    if (flags === null || exptimeInt === null || vlen === null) { this.outString('CLIENT_ERROR bad command line format'); return; }
    const exptime = this.store.realtime(exptimeInt);
    let reqCas: U64 = 0;
    if (handleCas) {
      const c = this.u64(5);
      if (c === null) { this.outString('CLIENT_ERROR bad command line format'); return; }
      reqCas = c;
    }
    if (vlen < 0 || vlen > INT_MAX - 2) { this.outString('CLIENT_ERROR bad command line format'); return; }
    vlen += 2;
    this.setKey(1);
    const st = this.store;
    const ref = st.alloc(this.kb, this.ko, this.kl, flags, exptime, vlen);
    if (ref < 0) {
      if (ref === ALLOC_TOO_LARGE) { this.outString('SERVER_ERROR object too large for cache'); st.stat(S.store_too_large); }
      else { this.outString('SERVER_ERROR out of memory storing object'); st.stat(S.store_no_memory); }
      this.swallow(vlen);
      // avoid stale data persisting in cache because we failed alloc (memcached does this for set)
      if (comm === StoreCmd.SET) st.remove(this.kb, this.ko, this.kl);
      return;
    }
    st.setCas(ref, reqCas);
    this.startData(ref, vlen, comm, false, false);
  }

  private swallow(n: number): void { this.swallowLeft = n; this.mode = Mode.SWALLOW; }

  private startData(ref: number, nbytes: number, comm: StoreCmd, meta: boolean, setStale: boolean): void {
    this.item = ref;
    this.itemGot = 0;
    this.itemNeed = nbytes;
    this.itemComm = comm;
    this.itemNoreply = this.noreply;
    this.itemMeta = meta;
    this.itemSetStale = setStale;
    this.mode = Mode.DATA;
  }

  /** memcached's complete_nread_ascii. */
  private completeStore(): void {
    const st = this.store;
    const ref = this.item;
    this.item = -1;
    this.noreply = this.itemNoreply;
    st.stat(S.cmd_set);
    const d = st.dataOffset(ref), nb = st.nbytes(ref);
    if (st.mem[d + nb - 2] !== Ch.CR || st.mem[d + nb - 1] !== Ch.LF) {
      st.free(ref);
      if (this.itemMeta) this.noreply = false;
      this.outString('CLIENT_ERROR bad data chunk');
      return;
    }
    st.lastCas = 0;
    const res = st.storeItem(ref, this.itemComm, this.itemSetStale);
    if (this.itemMeta) { this.finishMetaSet(res); return; }
    switch (res) {
      case StoreResult.STORED: this.outString('STORED'); break;
      case StoreResult.EXISTS: this.outString('EXISTS'); break;
      case StoreResult.NOT_FOUND: this.outString('NOT_FOUND'); break;
      default: this.outString('NOT_STORED');
    }
  }

  // ------------------------------------------------------------------ touch / incr / decr / delete
  private touch(): void {
    this.setNoreplyMaybe();
    if (this.tlen(1) > KEY_MAX_LENGTH) { this.outString('CLIENT_ERROR bad command line format'); return; }
    const t = this.num32(2);
    if (t === null) { this.outString('CLIENT_ERROR invalid exptime argument'); return; }
    const st = this.store;
    const exptime = st.realtime(t);
    this.setKey(1);
    const hv = hashKey(this.kb, this.ko, this.kl);
    st.lockKey(hv);
    const ref = st.find(hv, this.kb, this.ko, this.kl);
    if (ref !== -1) { st.bump(ref); st.setExptime(ref, exptime); }
    st.unlockKey(hv);
    st.stat(S.cmd_touch);
    if (ref !== -1) { st.stat(S.touch_hits); this.outString('TOUCHED'); }
    else { st.stat(S.touch_misses); this.outString('NOT_FOUND'); }
  }

  private arithmetic(incr: boolean): void {
    this.setNoreplyMaybe();
    if (this.tlen(1) > KEY_MAX_LENGTH) { this.outString('CLIENT_ERROR bad command line format'); return; }
    const delta = this.u64(2);
    if (delta === null) { this.outString('CLIENT_ERROR invalid numeric delta argument'); return; }
    this.setKey(1);
    const st = this.store;
    const hv = hashKey(this.kb, this.ko, this.kl);
    st.lockKey(hv);
    let r: DeltaResult;
    try { r = st.addDelta(hv, this.kb, this.ko, this.kl, incr, delta, 0, this.delta, this.isHeld); }
    finally { st.unlockKey(hv); }
    switch (r) {
      case DeltaResult.OK: this.outString(this.delta.value); break;
      case DeltaResult.NON_NUMERIC: this.outString('CLIENT_ERROR cannot increment or decrement non-numeric value'); break;
      case DeltaResult.EOM: this.outString('SERVER_ERROR out of memory'); break;
      case DeltaResult.NOT_FOUND:
        st.stat(incr ? S.incr_misses : S.decr_misses);
        this.outString('NOT_FOUND');
        break;
      default: break;
    }
  }

  private del(): void {
    const nt = this.ntokens;
    if (nt > 3) {
      const holdIsZero = this.tok(2, '0');
      const setsNoreply = this.setNoreplyMaybe();
      const valid = (nt === 4 && (holdIsZero || setsNoreply)) || (nt === 5 && holdIsZero && setsNoreply);
      if (!valid) { this.outString('CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]'); return; }
    }
    if (this.tlen(1) > KEY_MAX_LENGTH) { this.outString('CLIENT_ERROR bad command line format'); return; }
    this.setKey(1);
    const st = this.store;
    const hv = hashKey(this.kb, this.ko, this.kl);
    st.lockKey(hv);
    const ref = st.find(hv, this.kb, this.ko, this.kl);
    if (ref !== -1) st.unlink(ref, hv);
    st.unlockKey(hv);
    if (ref !== -1) { st.stat(S.delete_hits); this.outString('DELETED'); }
    else { st.stat(S.delete_misses); this.outString('NOT_FOUND'); }
  }

  // ------------------------------------------------------------------ admin
  private flushAll(): void {
    this.setNoreplyMaybe();
    const st = this.store;
    st.stat(S.cmd_flush);
    let exptime = 0;
    if (this.ntokens !== (this.noreply ? 3 : 2)) {
      const t = this.num32(1);
      if (t === null) { this.outString('CLIENT_ERROR invalid exptime argument'); return; }
      exptime = t;
    }
    st.flushAll(exptime);
    this.outString('OK');
  }

  private verbosity(): void {
    this.setNoreplyMaybe();
    const v = this.u32(1);
    if (v === null) { this.outString('CLIENT_ERROR bad command line format'); return; }
    this.store.verbosity = Math.min(v, 2);
    this.outString('OK');
  }

  private memlimit(): void {
    this.setNoreplyMaybe();
    const v = this.u32(1);
    if (v === null) { this.outString('ERROR'); return; }
    if (v < 8) this.outString('MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m');
    else if (v > 1000000000) this.outString('MEMLIMIT_ADJUST_FAILED input value is megabytes not bytes');
    else if (v * 1024 * 1024 === this.store.maxBytes) this.outString('OK');
    else this.outString('MEMLIMIT_ADJUST_FAILED out of bounds or unable to adjust'); // the arena is sized at start
  }

  private stats(): void {
    const nt = this.ntokens;
    const out = this.out;
    const st = this.store;
    if (nt === 2) { this.generalStats(); out.str('END\r\n'); return; }
    if (this.tok(1, 'reset')) { st.resetStats(); this.outString('RESET'); return; }
    if (this.tok(1, 'detail')) {
      if (nt < 4) { this.outString('CLIENT_ERROR usage: stats detail on|off|dump'); return; }
      if (this.tok(2, 'on') || this.tok(2, 'off')) this.outString('OK');
      else if (this.tok(2, 'dump')) this.outString('END');
      else this.outString('CLIENT_ERROR usage: stats detail on|off|dump');
      return;
    }
    if (this.tok(1, 'settings')) { this.settingsStats(); out.str('END\r\n'); return; }
    if (this.tok(1, 'cachedump')) {
      if (nt < 5) { this.outString('CLIENT_ERROR bad command line'); return; }
      const id = this.u32(2), limit = this.u32(3);
      if (id === null || limit === null) { this.outString('CLIENT_ERROR bad command line format'); return; }
      if (id >= 64) { this.outString('CLIENT_ERROR Illegal slab id'); return; }
      out.str('END\r\n');
      return;
    }
    if (this.tok(1, 'slabs')) {
      let active = 0;
      for (let id = 1; id <= st.nclasses; id++) {
        const c = st.classInfo(id);
        if (c.pages === 0) continue;
        active++;
        this.stat(`${id}:chunk_size`, c.size); this.stat(`${id}:chunks_per_page`, c.perPage);
        this.stat(`${id}:total_pages`, c.pages); this.stat(`${id}:total_chunks`, c.pages * c.perPage);
        this.stat(`${id}:used_chunks`, c.items); this.stat(`${id}:free_chunks`, c.free);
      }
      this.stat('active_slabs', active);
      this.stat('total_malloced', st.pagesUsed() * st.pageSize);
      out.str('END\r\n');
      return;
    }
    if (this.tok(1, 'items')) {
      for (let id = 1; id <= st.nclasses; id++) {
        const c = st.classInfo(id);
        if (c.items === 0) continue;
        this.stat(`items:${id}:number`, c.items);
      }
      out.str('END\r\n');
      return;
    }
    if (this.tok(1, 'sizes')) { this.stat('sizes_status', 'disabled'); out.str('END\r\n'); return; }
    if (this.tok(1, 'conns')) { out.str('END\r\n'); return; }
    this.outString('ERROR');
  }

  private stat(name: string, v: string | number): void { this.out.str('STAT ' + name + ' ' + v + '\r\n'); }

  private generalStats(): void {
    const st = this.store;
    const s = this.app.settings;
    const cpu = process.cpuUsage();
    const t = (i: number) => st.statTotal(i);
    this.stat('pid', process.pid);
    this.stat('uptime', Math.max(0, st.now - 62));
    this.stat('time', st.unixNow());
    this.stat('version', VERSION);
    this.stat('libevent', 'megapipe');
    this.stat('pointer_size', 64);
    this.stat('rusage_user', (cpu.user / 1e6).toFixed(6));
    this.stat('rusage_system', (cpu.system / 1e6).toFixed(6));
    this.stat('max_connections', s.maxConns);
    this.stat('curr_connections', t(S.curr_connections));
    this.stat('total_connections', t(S.total_connections));
    this.stat('rejected_connections', t(S.rejected_connections));
    this.stat('connection_structures', t(S.curr_connections));
    // what connection buffers hold (line, output, input kept while paused, a paused multi-get's keys); none cached
    this.stat('read_buf_count', t(S.read_buf_count));
    this.stat('read_buf_bytes', t(S.read_buf_bytes));
    this.stat('read_buf_bytes_free', 0);
    this.stat('read_buf_oom', t(S.read_buf_oom));
    for (const name of ['cmd_get', 'cmd_set', 'cmd_flush', 'cmd_touch', 'cmd_meta', 'get_hits', 'get_misses',
      'get_expired', 'get_flushed', 'delete_misses', 'delete_hits', 'incr_misses', 'incr_hits', 'decr_misses',
      'decr_hits', 'cas_misses', 'cas_hits', 'cas_badval', 'touch_hits', 'touch_misses', 'store_too_large',
      'store_no_memory', 'auth_cmds', 'auth_errors', 'idle_kicks', 'bytes_read', 'bytes_written'] as const) {
      this.stat(name, t(S[name]));
    }
    this.stat('limit_maxbytes', st.maxBytes);
    this.stat('accepting_conns', 1);
    this.stat('listen_disabled_num', 0);
    this.stat('threads', this.app.workers);
    this.stat('conn_yields', t(S.conn_yields));
    const buckets = st.hashBuckets();
    this.stat('hash_power_level', Math.floor(Math.log2(buckets)));
    this.stat('hash_bytes', buckets * 4);
    this.stat('hash_is_expanding', 0);
    this.stat('slabs_moved', t(S.slabs_moved));
    this.stat('bytes', t(S.bytes));
    this.stat('curr_items', t(S.curr_items));
    this.stat('total_items', t(S.total_items));
    for (const name of ['expired_unfetched', 'evicted_unfetched', 'evicted_active', 'evictions', 'reclaimed'] as const) {
      this.stat(name, t(S[name]));
    }
  }

  private settingsStats(): void {
    const st = this.store, s = this.app.settings, sh = st.shared;
    this.stat('maxbytes', st.maxBytes);
    this.stat('maxconns', s.maxConns);
    this.stat('tcpport', s.port);
    this.stat('udpport', 0);
    this.stat('inter', s.host);
    this.stat('verbosity', st.verbosity);
    this.stat('oldest', 0);
    this.stat('evictions', 'on');
    this.stat('domain_socket', 'NULL');
    this.stat('growth_factor', sh.factor.toFixed(2));
    this.stat('chunk_size', sh.chunkSize);
    this.stat('num_threads', s.threads);
    this.stat('cas_enabled', 'yes');
    this.stat('binding_protocol', 'ascii');
    this.stat('item_size_max', st.itemSizeMax);
    this.stat('slab_page_size', st.pageSize);
    this.stat('hashpower_init', 12); // 4096 buckets (one per lock stripe), then each stripe grows
    this.stat('slab_reassign', 'yes');
    this.stat('flush_enabled', 'yes');
    this.stat('hash_algorithm', 'murmur3');
    this.stat('lru_segmented', 'no');
    this.stat('idle_timeout', s.idleTimeout ?? 0);
    this.stat('backend', 'megapipe');
  }

  // ------------------------------------------------------------------ meta commands
  /** memcached's _meta_flag_preparse over tokens [start, ntokens-1). Returns false on error (errstr set). */
  private metaPreparse(start: number): boolean {
    const f = this.mf, b = this.tb, st = this.store;
    f.reset();
    this.errstr = 'CLIENT_ERROR bad command line format';
    for (let i = start; i < this.ntokens - 1; i++) {
      const s = this.ts[i], e = this.te[i];
      const o = b[s];
      if (o >= 127 || f.seen[o] !== 0) { this.errstr = 'CLIENT_ERROR duplicate flag'; return false; }
      f.seen[o] = 1;
      switch (o) {
        case 98: { // b
          const n = base64Decode(this.kb, this.ko, this.ko + this.kl, this.keyBuf);
          if (n === 0) { this.errstr = 'CLIENT_ERROR error decoding key'; f.hasError = true; }
          this.kb = this.keyBuf; this.ko = 0; this.kl = n;
          f.keyBinary = true;
          break;
        }
        case 78: { // N
          f.locked = true; f.vivify = true;
          const t = strtol32(b, s + 1, e);
          if (t === null) { this.errstr = 'CLIENT_ERROR bad token in command line format'; f.hasError = true; }
          else f.autovivExptime = st.realtime(t);
          break;
        }
        case 84: { // T
          f.locked = true;
          const t = strtol32(b, s + 1, e);
          if (t === null) { this.errstr = 'CLIENT_ERROR bad token in command line format'; f.hasError = true; }
          else { f.exptime = st.realtime(t); f.newTtl = true; }
          break;
        }
        case 82: { // R
          f.locked = true;
          const t = strtol32(b, s + 1, e);
          if (t === null) { this.errstr = 'CLIENT_ERROR bad token in command line format'; f.hasError = true; }
          else f.recacheTime = st.realtime(t);
          break;
        }
        case 108: f.la = true; f.locked = true; break; // l
        case 79: case 80: case 76: break; // O P L
        case 107: case 115: case 116: case 99: case 102: break; // k s t c f
        case 118: f.value = true; break; // v
        case 104: f.locked = true; break; // h
        case 117: f.noUpdate = true; break; // u
        case 113: f.noReply = true; break; // q
        case 70: { // F
          const v = strtoul32(b, s + 1, e);
          if (v === null) f.hasError = true; else f.clientFlags = v;
          break;
        }
        case 67: { // C
          const v = strtoull(b, s + 1, e);
          if (v === null) { this.errstr = 'CLIENT_ERROR bad token in command line format'; f.hasError = true; }
          else { f.reqCas = v; f.hasCas = true; }
          break;
        }
        case 77: // M
          if (e - s !== 2) { this.errstr = 'CLIENT_ERROR incorrect length for M token'; f.hasError = true; }
          else f.mode = b[s + 1];
          break;
        case 74: { // J
          const v = strtoull(b, s + 1, e);
          if (v === null) { this.errstr = 'CLIENT_ERROR invalid numeric initial value'; f.hasError = true; }
          else f.initial = v;
          break;
        }
        case 68: { // D
          const v = strtoull(b, s + 1, e);
          if (v === null) { this.errstr = 'CLIENT_ERROR invalid numeric delta value'; f.hasError = true; }
          else f.delta = v;
          break;
        }
        case 73: f.setStale = true; break; // I
        default:
          this.errstr = 'CLIENT_ERROR invalid flag';
          return false;
      }
    }
    return !f.hasError;
  }

  /** " k<key>" (base64 + " b" for binary keys). */
  // Echoes flag token i, an opaque (O), into the reply; false (reply rewound to `mark`, error sent) if too long.
  private echoOpaque(i: number, mark: number): boolean {
    const n = this.tlen(i);
    if (n > MFLAG_MAX_OPAQUE_LENGTH) { this.out.pos = mark; this.outErr('CLIENT_ERROR opaque token too long'); return false; }
    this.out.byte(Ch.SP); this.out.bytes(this.tb, this.ts[i]!, n);
    return true;
  }

  // Echoes the request's O and k flags (tokens 2 … nt-2) into a reply that carries no item; false as echoOpaque.
  private echoOpaqueAndKey(nt: number, mark: number, keyBinary: boolean): boolean {
    for (let i = 2; i < nt - 1; i++) {
      const c = this.tb[this.ts[i]!];
      if (c === 79) { if (!this.echoOpaque(i, mark)) return false; }
      else if (c === 107) this.metaKey(this.kb, this.ko, this.kl, keyBinary);
    }
    return true;
  }

  private metaKey(kb: Uint8Array, ko: number, kl: number, binary: boolean): void {
    const out = this.out;
    out.str(' k');
    if (!binary) out.bytes(kb, ko, kl);
    else { base64Encode(kb, ko, ko + kl, out); out.str(' b'); }
  }

  private metaGet(): void {
    const nt = this.ntokens;
    if (nt < 3) { this.outString('ERROR'); return; }
    if (this.tlen(1) > KEY_MAX_LENGTH) { this.outErr('CLIENT_ERROR bad command line format'); return; }
    if (nt > MFLAG_MAX_OPT_LENGTH) { this.outErr('CLIENT_ERROR options flags are too long'); return; }
    this.setKey(1);
    if (!this.metaPreparse(2)) { this.outErr(this.errstr); return; }
    const f = this.mf, st = this.store, out = this.out, b = this.tb;
    this.noreply = f.noReply;
    const hv = hashKey(this.kb, this.ko, this.kl);
    const mark = out.pos;
    st.lockKey(hv);
    try {
      let ref = st.find(hv, this.kb, this.ko, this.kl);
      let created = false;
      if (ref === -1 && f.vivify) {
        const r = st.alloc(this.kb, this.ko, this.kl, 0, 0, 2);
        if (r >= 0) {
          st.mem[st.dataOffset(r)] = Ch.CR; st.mem[st.dataOffset(r) + 1] = Ch.LF;
          st.linkNew(r, hv);
          ref = r; created = true;
        }
      }
      let ttlSet = false;
      if (ref !== -1) {
        const nb = st.nbytes(ref);
        if (f.value) { out.str('VA '); out.num(nb - 2); } else out.str('HD');
        let won = false;
        for (let i = 2; i < nt - 1; i++) {
          const s = this.ts[i];
          switch (b[s]) {
            case 84: ttlSet = true; st.setExptime(ref, f.exptime); break; // T
            case 78: if (created) { st.setExptime(ref, f.autovivExptime); won = true; } break; // N
            case 82: // R
              if ((st.iflags(ref) & IF_TOKEN_SENT) === 0 && !created && st.exptime(ref) !== 0 && st.exptime(ref) < f.recacheTime) won = true;
              break;
            case 115: out.str(' s'); out.num(nb - 2); break; // s
            case 116: { // t
              out.str(' t');
              const e = st.exptime(ref);
              if (e === 0) out.str('-1'); else out.num((e - st.now) >>> 0);
              break;
            }
            case 99: out.str(' c'); out.num(st.cas(ref)); break; // c
            case 102: out.str(' f'); out.num(st.clientFlags(ref)); break; // f
            case 108: out.str(' l'); out.num((st.now - st.atime(ref)) >>> 0); break; // l
            case 104: out.str(' h'); out.byte((st.iflags(ref) & IF_FETCHED) !== 0 ? 49 : 48); break; // h
            case 79: // O
              if (!this.echoOpaque(i, mark)) return;
              break;
            case 107: this.metaKey(st.mem, st.keyOffset(ref), st.nkey(ref), (st.iflags(ref) & IF_KEY_BINARY) !== 0); break; // k
          }
        }
        const fl = st.iflags(ref);
        if (fl & IF_TOKEN_SENT) out.str(' Z');
        if (fl & IF_STALE) { out.str(' X'); if ((fl & IF_TOKEN_SENT) === 0) won = true; }
        if (won) { out.str(' W'); st.setIflag(ref, IF_TOKEN_SENT); }
        out.crlf();
        if (f.value) {
          if (nb > DIRECT_VALUE) {
            this.flush();
            st.stat(S.bytes_written, nb);
            if (!this.conn.write(st.mem, st.dataOffset(ref), nb)) this.block();
          } else out.bytes(st.mem, st.dataOffset(ref), nb);
        }
        if (!f.noUpdate) st.bump(ref);
        this.hold(ref);
        if (ttlSet) { st.stat(S.cmd_touch); st.stat(S.touch_hits); } else { st.stat(S.cmd_get); st.stat(S.get_hits); }
      } else {
        if (f.newTtl) { st.stat(S.cmd_touch); st.stat(S.touch_misses); } else { st.stat(S.cmd_get); st.stat(S.get_misses); }
        out.str('EN');
        if (!this.echoOpaqueAndKey(nt, mark, f.keyBinary)) return;
        out.crlf();
        if (this.noreply) out.pos = mark;
      }
    } finally {
      st.unlockKey(hv);
    }
  }

  private metaSet(): void {
    const nt = this.ntokens;
    if (nt < 3) { this.outString('ERROR'); return; }
    if (this.tlen(1) > KEY_MAX_LENGTH) { this.outErr('CLIENT_ERROR bad command line format'); return; }
    if (nt === 3) { this.outErr('CLIENT_ERROR bad command line format'); return; }
    if (nt > MFLAG_MAX_OPT_LENGTH) { this.outErr('CLIENT_ERROR options flags too long'); return; }
    let vlen = this.num32(2);
    if (vlen === null || vlen < 0 || vlen > INT_MAX - 2) { this.outErr('CLIENT_ERROR bad command line format'); return; }
    vlen += 2;
    this.setKey(1);
    const f = this.mf, b = this.tb, st = this.store;
    if (!this.metaPreparse(3)) { this.metaSetError(vlen); return; }
    this.noreply = f.noReply;
    const stash = this.stash;
    stash.reset();
    let hasError = false;
    for (let i = 2; i < nt - 1; i++) {
      const s = this.ts[i];
      switch (b[s]) {
        case 79:
          if (this.tlen(i) > MFLAG_MAX_OPAQUE_LENGTH) { this.errstr = 'CLIENT_ERROR opaque token too long'; hasError = true; break; }
          stash.byte(Ch.SP); stash.bytes(b, s, this.tlen(i));
          break;
        case 107: stash.str(' k'); break;
        case 99: stash.str(' c'); break;
      }
    }
    let comm: StoreCmd;
    switch (f.mode) {
      case 0: case 83: comm = StoreCmd.SET; break; // S
      case 69: comm = StoreCmd.ADD; break; // E
      case 65: comm = StoreCmd.APPEND; break; // A
      case 80: comm = StoreCmd.PREPEND; break; // P
      case 82: comm = StoreCmd.REPLACE; break; // R
      default: this.errstr = 'CLIENT_ERROR invalid mode for ms M token'; this.metaSetError(vlen); return;
    }
    if (f.hasCas && (comm === StoreCmd.SET || comm === StoreCmd.REPLACE)) comm = StoreCmd.CAS;
    if (hasError) { this.metaSetError(vlen); return; }
    const ref = st.alloc(this.kb, this.ko, this.kl, f.clientFlags, f.exptime, vlen);
    if (ref < 0) {
      if (ref === ALLOC_TOO_LARGE) { this.errstr = 'SERVER_ERROR object too large for cache'; st.stat(S.store_too_large); }
      else { this.errstr = 'SERVER_ERROR out of memory storing object'; st.stat(S.store_no_memory); }
      st.remove(this.kb, this.ko, this.kl);
      this.metaSetError(vlen);
      return;
    }
    st.setCas(ref, f.reqCas);
    if (f.keyBinary) st.setIflag(ref, IF_KEY_BINARY);
    this.msKey.set(this.kb.subarray(this.ko, this.ko + this.kl));
    this.msKeyLen = this.kl;
    this.msKeyBinary = f.keyBinary;
    this.startData(ref, vlen, comm, true, f.setStale && comm === StoreCmd.CAS);
  }

  private metaSetError(vlen: number): void {
    this.swallow(vlen);
    this.outErr(this.errstr);
  }

  /** memcached's _finalize_mset. */
  private finishMetaSet(res: StoreResult): void {
    const out = this.out, st = this.store;
    const mark = out.pos;
    switch (res) {
      case StoreResult.STORED: out.str('HD'); break;
      case StoreResult.EXISTS: out.str('EX'); break;
      case StoreResult.NOT_FOUND: out.str('NF'); break;
      default: out.str('NS');
    }
    const sb = this.stash.buf, se = this.stash.pos;
    for (let p = 0; p < se; p++) {
      const c = sb[p];
      if (c === 79) {
        out.byte(Ch.SP);
        while (p < se && sb[p] !== Ch.SP) out.byte(sb[p++]);
      } else if (c === 107) {
        this.metaKey(this.msKey, 0, this.msKeyLen, this.msKeyBinary);
      } else if (c === 99) {
        out.str(' c'); out.num(st.lastCas);
      }
    }
    out.crlf();
    if (res === StoreResult.STORED && this.noreply) out.pos = mark;
  }

  private metaDelete(): void {
    const nt = this.ntokens;
    if (nt < 3) { this.outString('ERROR'); return; }
    if (this.tlen(1) > KEY_MAX_LENGTH) { this.outString('CLIENT_ERROR bad command line format'); return; }
    if (nt > MFLAG_MAX_OPT_LENGTH) { this.outString('CLIENT_ERROR options flags too long'); return; }
    this.setKey(1);
    if (!this.metaPreparse(2)) { this.outErr('CLIENT_ERROR invalid or duplicate flag'); return; }
    const f = this.mf, b = this.tb, st = this.store, out = this.out;
    this.noreply = f.noReply;
    const mark = out.pos;
    out.str('XX');
    if (!this.echoOpaqueAndKey(nt, mark, f.keyBinary)) return;
    out.crlf();
    const hv = hashKey(this.kb, this.ko, this.kl);
    let skip = false;
    let code = 'NF';
    st.lockKey(hv);
    const ref = st.find(hv, this.kb, this.ko, this.kl);
    if (ref !== -1) {
      if (f.hasCas && !sameCas(st.cas(ref), f.reqCas)) { st.stat(S.delete_misses); code = 'EX'; }
      else if (f.setStale) {
        if (f.newTtl) st.setExptime(ref, f.exptime);
        st.setIflag(ref, IF_STALE);
        st.clearIflag(ref, IF_TOKEN_SENT);
        const wasHeld = this.isHeld(ref);
        st.setCas(ref, st.nextCas());
        if (wasHeld) this.hold(ref);
        skip = this.noreply; code = 'HD';
      } else {
        st.stat(S.delete_hits);
        st.unlink(ref, hv);
        skip = this.noreply; code = 'HD';
      }
    } else st.stat(S.delete_misses);
    st.unlockKey(hv);
    out.buf[mark] = code.charCodeAt(0); out.buf[mark + 1] = code.charCodeAt(1);
    if (skip) out.pos = mark;
  }

  private metaArithmetic(): void {
    const nt = this.ntokens;
    if (nt < 3) { this.outString('ERROR'); return; }
    if (this.tlen(1) > KEY_MAX_LENGTH) { this.outString('CLIENT_ERROR bad command line format'); return; }
    if (nt > MFLAG_MAX_OPT_LENGTH) { this.outString('CLIENT_ERROR options flags too long'); return; }
    this.setKey(1);
    if (!this.metaPreparse(2)) { this.outErr('CLIENT_ERROR invalid or duplicate flag'); return; }
    const f = this.mf, b = this.tb, st = this.store, out = this.out;
    this.noreply = f.noReply;
    let incr = true;
    switch (f.mode) {
      case 0: case 73: case 43: incr = true; break; // I +
      case 68: case 45: incr = false; break; // D -
      default: this.outErr('CLIENT_ERROR invalid mode for ma M token'); return;
    }
    const hv = hashKey(this.kb, this.ko, this.kl);
    const mark = out.pos;
    st.lockKey(hv);
    try {
      let created = false;
      let ref = -1;
      let value = '';
      let skip = false;
      const r = st.addDelta(hv, this.kb, this.ko, this.kl, incr, f.delta, f.reqCas, this.delta, this.isHeld);
      switch (r) {
        case DeltaResult.OK: skip = this.noreply; ref = this.delta.ref; value = this.delta.value; break;
        case DeltaResult.NON_NUMERIC: this.outErr('CLIENT_ERROR cannot increment or decrement non-numeric value'); return;
        case DeltaResult.EOM: this.outErr('SERVER_ERROR out of memory'); return;
        case DeltaResult.NOT_FOUND:
          if (f.vivify) {
            value = String(f.initial);
            const it = st.alloc(this.kb, this.ko, this.kl, 0, 0, value.length + 2);
            if (it < 0) { this.outErr('SERVER_ERROR Out of memory allocating new item'); return; }
            const d = st.dataOffset(it);
            for (let i = 0; i < value.length; i++) st.mem[d + i] = value.charCodeAt(i);
            st.mem[d + value.length] = Ch.CR; st.mem[d + value.length + 1] = Ch.LF;
            st.linkNew(it, hv);
            ref = it; created = true;
          } else {
            st.stat(incr ? S.incr_misses : S.decr_misses);
            out.str('NF');
          }
          break;
        case DeltaResult.CAS_MISMATCH:
          out.str('EX');
          break;
      }
      if (ref !== -1) {
        if (f.value) { out.str('VA '); out.num(value.length); } else out.str('HD');
        for (let i = 2; i < nt - 1; i++) {
          const s = this.ts[i];
          switch (b[s]) {
            case 99: out.str(' c'); out.num(st.cas(ref)); break;
            case 116: {
              out.str(' t');
              const e = st.exptime(ref);
              if (e === 0) out.str('-1'); else out.num((e - st.now) >>> 0);
              break;
            }
            case 84: st.setExptime(ref, f.exptime); break;
            case 78: if (created) st.setExptime(ref, f.autovivExptime); break;
            case 79:
              if (!this.echoOpaque(i, mark)) return;
              break;
            case 107: this.metaKey(this.kb, this.ko, this.kl, f.keyBinary); break;
          }
        }
        if (f.value) { out.crlf(); out.str(value); }
      } else {
        if (!this.echoOpaqueAndKey(nt, mark, f.keyBinary)) return;
      }
      out.crlf();
      if (skip) out.pos = mark;
    } finally {
      st.unlockKey(hv);
    }
  }

  private metaDebug(): void {
    const nt = this.ntokens;
    if (nt < 3 || this.tlen(1) > KEY_MAX_LENGTH) { this.outString('CLIENT_ERROR bad command line format'); return; }
    this.setKey(1);
    if (nt >= 4 && this.tlen(2) === 1 && this.tb[this.ts[2]] === 98) {
      const n = base64Decode(this.kb, this.ko, this.ko + this.kl, this.keyBuf);
      if (n === 0) { this.outString('CLIENT_ERROR bad command line format'); return; }
      this.kb = this.keyBuf; this.ko = 0; this.kl = n;
    }
    const st = this.store, out = this.out;
    const hv = hashKey(this.kb, this.ko, this.kl);
    st.lockKey(hv);
    const ref = st.find(hv, this.kb, this.ko, this.kl);
    if (ref !== -1) {
      out.str('ME ');
      if (st.iflags(ref) & IF_KEY_BINARY) base64Encode(st.mem, st.keyOffset(ref), st.keyOffset(ref) + st.nkey(ref), out);
      else out.bytes(st.mem, st.keyOffset(ref), st.nkey(ref));
      const e = st.exptime(ref);
      out.str(' exp='); out.int(e === 0 ? -1 : (st.now - e) | 0);
      out.str(' la='); out.num((st.now - st.atime(ref)) >>> 0);
      out.str(' cas='); out.num(st.cas(ref));
      out.str((st.iflags(ref) & IF_FETCHED) ? ' fetch=yes' : ' fetch=no');
      out.str(' cls='); out.num(st.clsid(ref));
      out.str(' size='); out.num(st.ntotal(ref));
      out.crlf();
    } else this.outString('EN');
    st.unlockKey(hv);
  }
}

function sameCas(a: U64, b: U64): boolean { return typeof a === typeof b ? a === b : BigInt(a) === BigInt(b); }

/** A session factory over a store (for tests and the in-process server). */
export function memcachedFactory(data: McWorkerData, worker = 0, workers = 1): SessionFactory {
  return new McApp(data, worker, workers).factory();
}

