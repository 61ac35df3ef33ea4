// A memcached connection as a library `Session`: buffering and flow control. It frames the input — command lines
// (in the receive buffer when the whole line is there, else in a line buffer) or binary packets (the protocol is
// chosen by the first byte, memcached's -B), values read straight into an item's chunk in shared memory, rejected
// values swallowed — and dispatches each command to a command set (classic, meta or binary). Replies are gathered
// in one output buffer written once per received chunk (or sooner when large). When `conn.write` reports the queue
// above its high-water mark, parsing stops (`conn.pause()`) and input is kept until `drain`.
//
// Connection memory, as memcached bounds it: every buffer a connection keeps has a cap (the line at the multi-get
// cap, the unparsed input while paused at MAX_BACKLOG, the output at about OUT_FLUSH + DIRECT_VALUE), and between
// reads a buffer grown for one large request is given back (memcached's conn_shrink / rbuf_release). `stats`
// reports what connection buffers hold (read_buf_count, read_buf_bytes).

import type { Conn, Session } from '../../src/index.js';
import type { McApp } from './app.js';
import { BIN_MAGIC_REQ, BIN_PACKET_MAX, BinaryCommands, binPacketLength } from './binary.js';
import { ClassicCommands } from './classic.js';
import { MetaCommands } from './meta.js';
import { Out } from './out.js';
import { S, type Store } from './store.js';
import { Tokens } from './tokenizer.js';

const LINE_LIMIT = 2048; // memcached closes a connection holding more than this without a newline (unless get/gets)
const DEFAULT_MAX_GET_LINE = 2 * 1024 * 1024;
const LINE_INITIAL = 1024; // a connection's partial-line buffer
const LINE_KEEP = 4096; // a line buffer grown past this is given back once its line is consumed
const OUT_INITIAL = 16 * 1024; // a connection's output buffer; grown by one read's large replies, given back after
const OUT_FLUSH = 64 * 1024; // write out once this much output is gathered
const DIRECT_VALUE = 16 * 1024; // values above this go from shared memory straight to conn.write
const MAX_BACKLOG = 8 * 1024 * 1024; // input kept while paused; more means the transport ignored pause()
/** memcached's reqs_per_event: it writes out every 20 commands of one read. */
const REQS_PER_EVENT = 20;

/** What the session is reading: a text command line, a binary packet's header (+ extras + key), a value, … */
const enum Mode { Line, Bin, Value, Swallow, Closed }

const enum Ch { SP = 32, CR = 13, LF = 10 }
const EMPTY = new Uint8Array(0);

/**
 * A family of commands the session dispatches to (the classic and meta text commands, the binary protocol's).
 * The session frames a command — for text, a complete line tokenized into `session.tokens`; for binary, a packet's
 * header, extras and key in `session.packet` — and calls `execute`;
 * replies go to the session's output (`outString`, `out`). A command followed by a value (set, ms) calls
 * `session.receiveValue` before returning; the session reads the value into the item, then calls `valueReceived`.
 */
export interface CommandSet {
  /** Runs the command the session just framed. */
  execute(): void;
  /** The value this set asked for is in item `ref`, which the set now owns (stores or frees). noreply is restored. */
  valueReceived(ref: number): void;
}

/** A command stopped by a full output queue (a multi-get): resumed on drain, before any further input is parsed. */
export interface SuspendedCommand {
  resume(): void;
  /** Bytes it holds meanwhile (counted in read_buf_bytes). */
  readonly heldBytes: number;
}

export class McSession implements Session {
  private readonly conn: Conn;
  readonly app: McApp;
  readonly store: Store;
  private readonly id: number;
  /** Replies gathered since the last write. Command sets append to it; the session writes it out. */
  readonly out = new Out(OUT_INITIAL);
  /** The current command line's tokens and key. */
  readonly tokens = new Tokens();
  /** The current command asked for no reply (memcached's noreply): `outString` writes nothing. */
  noreply = false;
  private readonly classic: ClassicCommands;
  private readonly meta: MetaCommands;
  private binary: BinaryCommands | null = null;
  /** The current binary packet (header, extras, key) is packet[packetOff, …): valid during `execute` only. */
  packet: Uint8Array = EMPTY;
  packetOff = 0;
  private mode = Mode.Line;
  /** The mode a command starts in: Line (text) or Bin, decided by the first byte (memcached's -B). */
  private cmdMode = Mode.Line;
  // a partial command line
  private line = new Uint8Array(LINE_INITIAL);
  private lineLen = 0;
  // a value being read into an item, for the command set that asked for it
  private valueItem = -1;
  private valueGot = 0;
  private valueNeed = 0;
  private valueNoreply = false;
  private valueOwner: CommandSet | null = null;
  private swallowLeft = 0;
  /** Counts data() calls (reads); `valueRead`: the read in which the current value or swallow began. */
  private readSeq = 0;
  private valueRead = 0;
  // flow control
  private blocked = false;
  private backlog: Uint8Array | null = null;
  private backlogOff = 0;
  private backlogLen = 0;
  private suspended: SuspendedCommand | null = null;
  private closeAfterWrite = false;
  // Items referenced by replies not yet written out. memcached holds a reference on every item a pending mg reply
  // points to until it writes (at the end of a read, after mn, after a get), and then incr/decr cannot update that
  // item in place (it makes a new one: no space padding, fresh flags). Emulated so pipelined replies match
  // memcached's byte for byte.
  // Each entry: the item's ref and CAS (a chunk reused by another item is not the held item).
  private readonly heldRefs = new Int32Array(64);
  private readonly heldCas = new Float64Array(64);
  private heldCount = 0;
  /** Commands left before memcached would write out (reqs_per_event). */
  private reqsLeft = REQS_PER_EVENT;
  /** Bytes of `out` memcached would already have written (after a get, an mn, every 20 commands); the rest it drops when it closes on bad input. */
  private sentMark = 0;
  /** An item is referenced by a reply not yet written out (see heldRefs); passed to the store's addDelta. */
  readonly isHeld = (ref: number): boolean => {
    for (let i = 0; i < this.heldCount; i++) {
      if (this.heldRefs[i] === ref && this.heldCas[i] === Number(this.store.cas(ref))) return true;
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
    this.classic = new ClassicCommands(this);
    this.meta = new MetaCommands(this);
    const st = this.store;
    const limit = app.settings.maxConns;
    if (limit > 0 && st.statTotal(S.curr_connections) >= limit) {
      // memcached: "ERROR Too many open connections" and close
      this.rejected = true;
      st.stat(S.rejected_connections);
      conn.writeAscii('ERROR Too many open connections\r\n');
      conn.end();
      this.mode = Mode.Closed;
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
  private closed(): boolean { return this.mode === Mode.Closed; }

  data(buf: Uint8Array, offset: number, length: number): void {
    if (this.closed()) return;
    this.store.stat(S.bytes_read, length);
    if (this.blocked || this.backlogLen > 0) { this.toBacklog(buf, offset, length); this.accountBuffers(); return; }
    this.store.tick();
    this.reqsLeft = REQS_PER_EVENT;
    this.readSeq++;
    const used = this.process(buf, offset, offset + length);
    if (used < offset + length && !this.closed()) this.toBacklog(buf, used, offset + length - used);
    // memcached writes at the end of a read, except while it waits for the rest of a value (conn_nread, conn_swallow):
    // then the items its pending replies reference stay referenced (see isHeld) until the next write
    this.flush(this.mode === Mode.Value || this.mode === Mode.Swallow);
    this.shrink();
  }

  end(): void {
    // peer finished sending: answer what we have, then close (memcached closes on EOF)
    if (this.closed()) return;
    if (this.blocked || this.backlogLen > 0) { this.closeAfterWrite = true; return; }
    this.flush();
    this.mode = Mode.Closed;
    this.conn.end();
  }

  drain(): void {
    if (!this.blocked || this.mode === Mode.Closed) return;
    this.blocked = false;
    this.store.tick();
    const suspended = this.suspended;
    if (suspended) {
      this.suspended = null;
      suspended.resume();
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
      if (this.closeAfterWrite) { this.mode = Mode.Closed; this.conn.end(); return; }
      this.conn.resume();
    }
  }

  close(): void {
    if (this.valueItem !== -1) { this.store.free(this.valueItem); this.valueItem = -1; }
    this.mode = Mode.Closed;
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
    if (limit <= 0 || this.mode !== this.cmdMode || this.blocked || now - this.lastCmd <= limit) return;
    this.store.stat(S.idle_kicks);
    if (this.app.settings.verbosity > 1) console.error(`Closing idle fd ${this.id}`);
    this.closeConn();
  }

  // ------------------------------------------------------------------ for the command sets
  /** memcached's out_string: a reply line, nothing under noreply. */
  outString(s: string): void {
    if (this.noreply) return;
    this.out.str(s); this.out.crlf();
  }
  /** memcached's out_errstring: errors are sent even under noreply. */
  outErr(s: string): void { this.noreply = false; this.outString(s); }
  /**
   * An item's value (its data, with its CRLF unless `withCrlf` is false) as the next reply bytes: copied into `out`,
   * or when large written straight from shared memory (conn.write copies before returning). Call with the item's
   * key locked.
   */
  outValue(ref: number, withCrlf = true): void {
    const st = this.store, nb = st.nbytes(ref) - (withCrlf ? 0 : 2);
    if (nb > DIRECT_VALUE) {
      this.flush();
      st.stat(S.bytes_written, nb);
      if (!this.conn.write(st.mem, st.dataOffset(ref), nb)) this.block();
    } else this.out.bytes(st.mem, st.dataOffset(ref), nb);
  }
  /** Output is above the transport's high-water mark: stop producing (a multi-get suspends itself). */
  get isBlocked(): boolean { return this.blocked; }
  /** A reply not yet written out references item `ref` (see isHeld). */
  hold(ref: number): void {
    if (this.heldCount < this.heldRefs.length) { this.heldRefs[this.heldCount] = ref; this.heldCas[this.heldCount++] = Number(this.store.cas(ref)); }
  }
  /** Where memcached writes out what it gathered and releases every item reference (the bytes stay in `out`). */
  writePoint(): void {
    this.heldCount = 0;
    this.sentMark = this.out.pos;
  }
  /** memcached's conn_release_items after a bad get: the replies it has not written yet are dropped. */
  dropUnsent(): void {
    this.out.pos = this.sentMark;
    this.heldCount = 0;
  }
  /** Write out everything gathered (`keepHeld`: the items its replies reference stay referenced, see isHeld). */
  flush(keepHeld = false): void {
    if (!keepHeld) this.heldCount = 0;
    const o = this.out;
    if (o.pos > 0 && this.mode !== Mode.Closed) {
      this.store.stat(S.bytes_written, o.pos);
      if (!this.conn.write(o.buf, 0, o.pos)) this.block();
    }
    o.pos = 0;
    this.sentMark = 0;
  }
  /** Write out when much is gathered. */
  flushIfBig(): void { if (this.out.pos >= OUT_FLUSH) this.flush(); }
  /** Resume `cmd` on drain, before parsing more input (call when isBlocked). */
  suspend(cmd: SuspendedCommand): void { this.suspended = cmd; }
  /** Read the next `nbytes` of input into item `ref`, then call `owner.valueReceived(ref)`. */
  receiveValue(ref: number, nbytes: number, owner: CommandSet): void {
    this.valueItem = ref;
    this.valueGot = 0;
    this.valueNeed = nbytes;
    this.valueNoreply = this.noreply;
    this.valueOwner = owner;
    this.mode = Mode.Value;
    this.valueRead = this.readSeq;
  }
  /** Skip the next `n` bytes of input (a value that was rejected). */
  swallow(n: number): void { this.swallowLeft = n; this.mode = Mode.Swallow; this.valueRead = this.readSeq; }
  /** The value just received ends in CRLF (else memcached answers `CLIENT_ERROR bad data chunk`). */
  valueEndsWithCrlf(ref: number): boolean {
    const st = this.store, d = st.dataOffset(ref), nb = st.nbytes(ref);
    return st.mem[d + nb - 2] === Ch.CR && st.mem[d + nb - 1] === Ch.LF;
  }
  /** memcached's conn_closing on bad input: the replies it has not written yet are dropped, then the connection closed. */
  abort(): void {
    this.out.pos = this.sentMark;
    this.closeConn();
  }
  /** Write out everything gathered, then close (quit, idle kick). */
  closeConn(): void {
    this.flush();
    this.mode = Mode.Closed;
    if (this.valueItem !== -1) { this.store.free(this.valueItem); this.valueItem = -1; }
    this.conn.end();
  }

  // ------------------------------------------------------------------ output and flow control
  /** A command finished (memcached's conn_new_cmd). */
  private commandDone(): void {
    if (--this.reqsLeft < 0) { this.writePoint(); this.reqsLeft = REQS_PER_EVENT - 1; }
  }
  /**
   * A value (or a swallowed one) just ended. When it began in an earlier read, memcached read its rest straight from
   * the socket, only the bytes it still needed: its read buffer is then empty, so it writes out what it gathered (the
   * store's reply included) before it reads, as a new event, what follows. Here that is a write point, and the
   * commands after it count as a new read's (reqs_per_event). Replies before it are no longer dropped by bad input
   * later in this chunk.
   */
  private valueDoneInLaterRead(): void {
    if (this.valueRead === this.readSeq) return;
    this.writePoint();
    this.reqsLeft = REQS_PER_EVENT;
  }
  /**
   * Between reads (memcached's conn_shrink / rbuf_release): give back the buffers one large request grew (a long
   * multi-get line, a large gathered reply, input kept while paused), drop the views of the transport's receive
   * buffer that tokens and keys point into, and report what the connection holds.
   */
  private shrink(): void {
    this.tokens.release();
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
    let bytes = this.line.length + this.out.buf.length + this.meta.stashBytes, count = 3;
    if (this.backlog) { bytes += this.backlog.length; count++; }
    if (this.suspended) { bytes += this.suspended.heldBytes; count++; }
    if (bytes !== this.bufBytes) { this.store.stat(S.read_buf_bytes, bytes - this.bufBytes); this.bufBytes = bytes; }
    if (count !== this.bufCount) { this.store.stat(S.read_buf_count, count - this.bufCount); this.bufCount = count; }
  }
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

  // ------------------------------------------------------------------ framing
  /** Consume bytes [off, end); returns where it stopped (end, or earlier when blocked / closed). */
  private process(b: Uint8Array, off: number, end: number): number {
    if (this.firstByte && off < end) {
      // memcached's -B: auto-negotiated by the first byte (the binary request magic), or one protocol for all
      this.firstByte = false;
      const p = this.app.settings.protocol ?? 'auto';
      if (p === 'binary' || (p === 'auto' && b[off] === BIN_MAGIC_REQ)) {
        this.mode = this.cmdMode = Mode.Bin;
        this.binary = new BinaryCommands(this);
      }
    }
    while (off < end && !this.blocked) {
      switch (this.mode) {
        case Mode.Closed:
          return end;
        case Mode.Swallow: {
          const n = Math.min(this.swallowLeft, end - off);
          off += n;
          this.swallowLeft -= n;
          if (this.swallowLeft === 0) { this.mode = this.cmdMode; this.commandDone(); this.valueDoneInLaterRead(); }
          break;
        }
        case Mode.Value: {
          const n = Math.min(this.valueNeed - this.valueGot, end - off);
          this.store.writeData(this.valueItem, this.valueGot, b, off, n);
          this.valueGot += n;
          off += n;
          if (this.valueGot === this.valueNeed) {
            this.mode = this.cmdMode;
            const ref = this.valueItem, owner = this.valueOwner!;
            this.valueItem = -1;
            this.valueOwner = null;
            this.noreply = this.valueNoreply;
            owner.valueReceived(ref);
            this.commandDone();
            this.valueDoneInLaterRead();
            this.flushIfBig();
          }
          break;
        }
        case Mode.Bin:
          off = this.frameBinary(b, off, end);
          if (this.mode === Mode.Bin && this.lineLen === 0) this.commandDone();
          this.flushIfBig();
          break;
        case Mode.Line: {
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
          if (this.mode === Mode.Line) this.commandDone();
          this.flushIfBig();
          break;
        }
      }
    }
    return off;
  }

  /**
   * One binary packet's header, extras and key from b[off, end): run when complete (straight from `b` when it holds
   * them all, else gathered in the line buffer). Returns where it stopped. memcached reads a packet's header, extras
   * and key into its 16 KiB read buffer: a packet whose header, extras and key need more closes the connection
   * (after what was answered before it is written), as does a bad magic byte (dropping what was not written yet).
   */
  private frameBinary(b: Uint8Array, off: number, end: number): number {
    if (this.lineLen === 0 && end - off >= 24) {
      const need = this.binaryNeed(b, off);
      if (need < 0) return end;
      if (end - off >= need) {
        this.runBinary(b, off);
        return off + need;
      }
    }
    // gather: the header first, then what it says follows
    let have = this.lineLen;
    let need = have >= 24 ? binPacketLength(this.line, 0) : 24;
    while (off < end) {
      const n = Math.min(need - have, end - off);
      if (have + n > this.line.length) {
        const nb = new Uint8Array(Math.min(BIN_PACKET_MAX, Math.max(have + n, this.line.length * 2)));
        nb.set(this.line.subarray(0, have));
        this.line = nb;
      }
      this.line.set(b.subarray(off, off + n), have);
      have += n;
      off += n;
      this.lineLen = have;
      if (have === 24 && need === 24) {
        need = this.binaryNeed(this.line, 0);
        if (need < 0) return end;
        if (need > 24) continue;
      }
      if (have === need) {
        this.lineLen = 0;
        this.runBinary(this.line, 0);
        break;
      }
    }
    return off;
  }
  /** The packet at b[off] (24 header bytes there) needs this many bytes before it runs; -1: the connection closed. */
  private binaryNeed(b: Uint8Array, off: number): number {
    if (b[off] !== BIN_MAGIC_REQ) {
      if (this.app.settings.verbosity > 0) console.error(`Invalid magic:  ${b[off].toString(16)}`);
      this.abort();
      return -1;
    }
    const need = binPacketLength(b, off);
    if (need > BIN_PACKET_MAX) { this.writePoint(); this.abort(); return -1; }
    return need;
  }
  private runBinary(b: Uint8Array, off: number): void {
    this.noreply = false;
    this.lastCmd = this.store.now;
    this.packet = b;
    this.packetOff = off;
    this.binary!.execute();
    this.packet = EMPTY;
  }

  /** Keep a partial line; enforce memcached's 2048-byte rule (multi-gets may be longer, up to a cap). */
  private appendLine(b: Uint8Array, s: number, e: number, check: boolean): void {
    const n = e - s;
    const need = this.lineLen + n;
    const maxGet = this.app.settings.maxGetLine ?? DEFAULT_MAX_GET_LINE;
    if (check && need > LINE_LIMIT) {
      const isGet = this.lineLen > 0 ? looksLikeGet(this.line, 0, this.lineLen) : looksLikeGet(b, s, e);
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

  /** A complete command line b[s, nl) (nl: its LF): tokenized, then run by its command set. */
  private command(b: Uint8Array, s: number, nl: number): void {
    let e = nl;
    if (e - s > 1 && b[e - 1] === Ch.CR) e--;
    for (let z = s; z < e; z++) if (b[z] === 0) { e = z; break; } // C string: the line ends at a NUL
    this.noreply = false;
    this.lastCmd = this.store.now;
    const t = this.tokens;
    t.tokenize(b, s, e);
    if (this.app.settings.verbosity > 1) console.error(`<${this.id} ${Buffer.from(b.subarray(s, e)).toString('latin1')}`);
    if (t.count < 2 || t.length(0) < 2) { this.outString('ERROR'); return; }
    if (b[t.start[0]] === 109 /* m */ && t.length(0) === 2) this.meta.execute();
    else this.classic.execute();
  }
}

/** The line starts with `get ` or `gets ` (after at most 100 spaces): it may pass LINE_LIMIT. */
function looksLikeGet(b: Uint8Array, s: number, e: number): boolean {
  let p = s;
  while (p < e && b[p] === Ch.SP) p++;
  if (p - s > 100) return false;
  return (e - p >= 4 && b[p] === 103 && b[p + 1] === 101 && b[p + 2] === 116 && b[p + 3] === Ch.SP) ||
    (e - p >= 5 && b[p] === 103 && b[p + 1] === 101 && b[p + 2] === 116 && b[p + 3] === 115 && b[p + 4] === Ch.SP);
}
