// memcached's binary protocol (deprecated upstream since 1.6, still what memjs and many other clients speak),
// answered as memcached 1.6.18 answers it: get/getq/getk/getkq, set/add/replace, delete, incr/decr, append/prepend,
// touch, gat/gatq/gatk/gatkq (each with its quiet form where memcached has one), flush, noop, version, stat (with
// groups), quit. A command set of the session: the session frames one packet's header, extras and key into
// `session.packet` and calls `execute()`; a value follows by `receiveValue` (into the item) or is swallowed.
//
// What memcached does, kept here because clients and the differential test see it:
// - quiet commands answer only errors (and getq/getkq hits); their replies are held back until a write point —
//   noop, any error written without swallowing its body, a get miss, quit, every 20 commands, the end of a read, a
//   value that ends in a later read than its header (the session's write points);
// - an unknown opcode is answered "Unknown command" and then `bodylen` more bytes are swallowed, although extras and
//   key were already read (verbosity, 0x1b, is unknown to memcached's binary dispatch too); memcached holds that
//   count in an int, so a body length of 2^31 or more swallows nothing (the next packet follows the header), and the
//   same for SASL auth/step (`bodylen - keylen`);
// - lengths that do not add up (key + extras > body) answer "Unknown command" and close; a key over 250 bytes or
//   extras/key/body lengths wrong for the opcode answer "Invalid arguments" and close;
// - SASL is not offered (memcached without -S): the SASL opcodes answer "Unknown command".

import { VERSION } from './version.js';
import type { CommandSet, McSession } from './session.js';
import { generalStats, itemsStats, settingsStats, sizesStats, slabsStats, type Emit } from './stats.js';
import { ALLOC_TOO_LARGE, DeltaResult, KEY_MAX_LENGTH, S, StoreCmd, StoreResult, hashKey, u64Eq, type Store, type U64 } from './store.js';

/** The binary request magic: a connection whose first byte it is speaks binary (memcached's -B auto). */
export const BIN_MAGIC_REQ = 0x80;
const BIN_MAGIC_RES = 0x81;
const HEADER = 24;
/** memcached reads a packet's header, extras and key into its 16 KiB read buffer; a packet needing more closes. */
export const BIN_PACKET_MAX = 16384;

/** Bytes the packet at b[off] needs before it can run: header + extras + key (the value is read separately). */
export function binPacketLength(b: Uint8Array, off: number): number {
  return HEADER + b[off + 4] + ((b[off + 2] << 8) | b[off + 3]);
}

const enum Op {
  GET = 0x00, SET = 0x01, ADD = 0x02, REPLACE = 0x03, DELETE = 0x04, INCR = 0x05, DECR = 0x06, QUIT = 0x07,
  FLUSH = 0x08, GETQ = 0x09, NOOP = 0x0a, VERSION = 0x0b, GETK = 0x0c, GETKQ = 0x0d, APPEND = 0x0e, PREPEND = 0x0f,
  STAT = 0x10, SETQ = 0x11, ADDQ = 0x12, REPLACEQ = 0x13, DELETEQ = 0x14, INCRQ = 0x15, DECRQ = 0x16, QUITQ = 0x17,
  FLUSHQ = 0x18, APPENDQ = 0x19, PREPENDQ = 0x1a, TOUCH = 0x1c, GAT = 0x1d, GATQ = 0x1e,
  SASL_LIST_MECHS = 0x20, SASL_AUTH = 0x21, SASL_STEP = 0x22, GATK = 0x23, GATKQ = 0x24,
}

/** Response status codes. */
export const enum BinStatus {
  OK = 0x00, KEY_ENOENT = 0x01, KEY_EEXISTS = 0x02, E2BIG = 0x03, EINVAL = 0x04, NOT_STORED = 0x05,
  DELTA_BADVAL = 0x06, AUTH_ERROR = 0x20, UNKNOWN_COMMAND = 0x81, ENOMEM = 0x82,
}

function statusText(st: BinStatus): string {
  switch (st) {
    case BinStatus.ENOMEM: return 'Out of memory';
    case BinStatus.UNKNOWN_COMMAND: return 'Unknown command';
    case BinStatus.KEY_ENOENT: return 'Not found';
    case BinStatus.EINVAL: return 'Invalid arguments';
    case BinStatus.KEY_EEXISTS: return 'Data exists for key.';
    case BinStatus.E2BIG: return 'Too large.';
    case BinStatus.DELTA_BADVAL: return 'Non-numeric server-side value for incr or decr';
    case BinStatus.NOT_STORED: return 'Not stored.';
    case BinStatus.AUTH_ERROR: return 'Auth failure.';
    default: return 'UNHANDLED ERROR';
  }
}

/** Big-endian unsigned 32-bit read. */
function u32(b: Uint8Array, p: number): number {
  return ((b[p] << 24) >>> 0) + ((b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]);
}
/** Big-endian unsigned 64-bit read, as the store's U64 (a number up to 2^53 − 1, else a bigint). */
function u64(b: Uint8Array, p: number): U64 {
  const hi = u32(b, p), lo = u32(b, p + 4);
  if (hi < 0x200000) return hi * 0x1_0000_0000 + lo;
  return (BigInt(hi) << 32n) | BigInt(lo);
}

export class BinaryCommands implements CommandSet {
  private readonly s: McSession;
  private readonly st: Store;
  // the request being answered (memcached's c->binary_header, c->opaque, c->cas, c->noreply)
  private opcode = 0;
  private opaque = 0;
  /** The CAS the next reply header carries (memcached's c->cas: 0 unless the command set it). */
  private cas: U64 = 0;
  /** A quiet command: success replies are left out (errors are not). */
  private quiet = false;
  /** A set/add/replace/append/prepend whose value is being received. */
  private storeCmd = StoreCmd.SET;
  /** incr/decr's result (addDelta's out-parameter). */
  private readonly delta = { ref: -1, value: '' };

  constructor(session: McSession) {
    this.s = session;
    this.st = session.store;
  }

  /** Runs the packet at `session.packet[packetOff]`: its header, extras and key are there (memcached's dispatch_bin_command). */
  execute(): void {
    const s = this.s, b = s.packet, p = s.packetOff;
    let cmd = b[p + 1];
    const keylen = (b[p + 2] << 8) | b[p + 3], extlen = b[p + 4], bodylen = u32(b, p + 8);
    this.opcode = cmd;
    this.opaque = u32(b, p + 12);
    this.cas = 0;
    const reqCas = u64(b, p + 16);
    const ext = p + HEADER, key = ext + extlen;
    if (s.app.settings.verbosity > 1) console.error(`<${this.opcode.toString(16)} binary command, key length ${keylen}`);
    if (keylen > bodylen || keylen + extlen > bodylen) {
      this.error(BinStatus.UNKNOWN_COMMAND, 0);
      s.closeConn();
      return;
    }
    if (keylen > KEY_MAX_LENGTH) { this.protocolError(); return; }
    this.quiet = true;
    switch (cmd) {
      case Op.SETQ: cmd = Op.SET; break;
      case Op.ADDQ: cmd = Op.ADD; break;
      case Op.REPLACEQ: cmd = Op.REPLACE; break;
      case Op.DELETEQ: cmd = Op.DELETE; break;
      case Op.INCRQ: cmd = Op.INCR; break;
      case Op.DECRQ: cmd = Op.DECR; break;
      case Op.QUITQ: cmd = Op.QUIT; break;
      case Op.FLUSHQ: cmd = Op.FLUSH; break;
      case Op.APPENDQ: cmd = Op.APPEND; break;
      case Op.PREPENDQ: cmd = Op.PREPEND; break;
      case Op.GETQ: cmd = Op.GET; break;
      case Op.GETKQ: cmd = Op.GETK; break;
      case Op.GATQ: cmd = Op.GAT; break;
      case Op.GATKQ: cmd = Op.GATK; break;
      default: this.quiet = false;
    }
    let ok = true;
    switch (cmd) {
      case Op.VERSION:
        if ((ok = extlen === 0 && keylen === 0 && bodylen === 0)) this.respond(0, 0, VERSION);
        break;
      case Op.FLUSH:
        if ((ok = keylen === 0 && bodylen === extlen && (extlen === 0 || extlen === 4))) this.flush(extlen === 4 ? u32(b, ext) : 0);
        break;
      case Op.NOOP:
        if ((ok = extlen === 0 && keylen === 0 && bodylen === 0)) { this.respond(0, 0, null); s.writePoint(); }
        break;
      case Op.SET: case Op.ADD: case Op.REPLACE:
        if ((ok = extlen === 8 && keylen !== 0 && bodylen >= keylen + 8)) {
          this.update(cmd, b, key, keylen, u32(b, ext), u32(b, ext + 4), (bodylen - keylen - extlen) | 0, reqCas);
        }
        break;
      case Op.GET: case Op.GETK:
        if ((ok = extlen === 0 && bodylen === keylen && keylen > 0)) this.getOrTouch(cmd, b, key, keylen, 0);
        break;
      case Op.DELETE:
        if ((ok = keylen > 0 && extlen === 0 && bodylen === keylen)) this.del(b, key, keylen, reqCas);
        break;
      case Op.INCR: case Op.DECR:
        if ((ok = keylen > 0 && extlen === 20 && bodylen === keylen + extlen)) {
          this.arithmetic(cmd === Op.INCR, b, key, keylen, u64(b, ext), u64(b, ext + 8), u32(b, ext + 16), reqCas);
        }
        break;
      case Op.APPEND: case Op.PREPEND:
        if ((ok = keylen > 0 && extlen === 0)) this.update(cmd, b, key, keylen, 0, 0, (bodylen - keylen) | 0, reqCas);
        break;
      case Op.STAT:
        if ((ok = extlen === 0)) this.stat(b, key, keylen);
        break;
      case Op.QUIT:
        if ((ok = keylen === 0 && extlen === 0 && bodylen === 0)) { this.respond(0, 0, null); s.closeConn(); }
        break;
      case Op.SASL_LIST_MECHS:
        if ((ok = extlen === 0 && keylen === 0 && bodylen === 0)) this.error(BinStatus.UNKNOWN_COMMAND, 0);
        break;
      case Op.SASL_AUTH: case Op.SASL_STEP:
        if ((ok = extlen === 0 && keylen !== 0)) this.error(BinStatus.UNKNOWN_COMMAND, (bodylen - keylen) | 0);
        break;
      case Op.TOUCH: case Op.GAT: case Op.GATK:
        if ((ok = extlen === 4 && keylen !== 0)) this.getOrTouch(cmd, b, key, keylen, u32(b, ext));
        break;
      default:
        // memcached swallows the whole body here, although extras and key were read already; as its int (a body
        // length of 2^31 or more is negative: nothing is swallowed)
        this.error(BinStatus.UNKNOWN_COMMAND, bodylen | 0);
    }
    if (!ok) this.protocolError();
  }

  // ------------------------------------------------------------------ replies
  /** A reply header for the current request. */
  private header(status: number, extlen: number, keylen: number, bodylen: number, cas: U64): void {
    const o = this.s.out;
    o.ensure(HEADER);
    const b = o.buf, p = o.pos;
    b[p] = BIN_MAGIC_RES; b[p + 1] = this.opcode; b[p + 2] = keylen >>> 8; b[p + 3] = keylen & 0xff;
    b[p + 4] = extlen; b[p + 5] = 0; b[p + 6] = status >>> 8; b[p + 7] = status & 0xff;
    put32(b, p + 8, bodylen);
    put32(b, p + 12, this.opaque);
    if (typeof cas === 'number') { put32(b, p + 16, Math.floor(cas / 0x1_0000_0000)); put32(b, p + 20, cas >>> 0); }
    else { put32(b, p + 16, Number((cas >> 32n) & 0xffffffffn)); put32(b, p + 20, Number(cas & 0xffffffffn)); }
    o.pos = p + HEADER;
  }
  /** memcached's write_bin_response: a success reply (none for a quiet command), `body` as its text. */
  private respond(extlen: number, keylen: number, body: string | null): void {
    if (this.quiet) return;
    this.header(BinStatus.OK, extlen, keylen, body === null ? 0 : body.length, this.cas);
    if (body !== null) this.s.out.str(body);
  }
  /**
   * memcached's write_bin_error: an error reply (quiet commands too); then `swallow` bytes of input are skipped,
   * or, when there are none to skip (`swallow` ≤ 0: memcached's parameter is an int, so callers pass a body length
   * converted with `| 0`), what is gathered is written out (a write point).
   */
  private error(status: BinStatus, swallow: number, text = statusText(status)): void {
    this.header(status, 0, 0, text.length, this.cas);
    this.s.out.str(text);
    if (swallow > 0) this.s.swallow(swallow);
    else this.s.writePoint();
  }
  /** memcached's handle_binary_protocol_error: "Invalid arguments", then close. */
  private protocolError(): void {
    if (this.s.app.settings.verbosity > 0) console.error(`Protocol error (opcode ${this.opcode.toString(16).padStart(2, '0')}), close connection`);
    this.error(BinStatus.EINVAL, 0);
    this.s.closeConn();
  }

  // ------------------------------------------------------------------ get / getk / touch / gat / gatk
  private getOrTouch(cmd: number, b: Uint8Array, key: number, nkey: number, exptime: number): void {
    const s = this.s, st = this.st, out = s.out;
    const touch = cmd === Op.TOUCH || cmd === Op.GAT || cmd === Op.GATK;
    const returnKey = cmd === Op.GETK || cmd === Op.GATK;
    const returnValue = cmd !== Op.TOUCH;
    const hv = hashKey(b, key, nkey);
    st.lockKey(hv);
    let hit = false;
    try {
      const ref = st.find(hv, b, key, nkey);
      if (ref !== -1) {
        hit = true;
        if (touch) { st.bump(ref); st.setExptime(ref, st.realtime(exptime)); st.stat(S.cmd_touch); st.stat(S.touch_hits); }
        else { st.bump(ref); st.stat(S.cmd_get); st.stat(S.get_hits); }
        const vlen = returnValue ? st.nbytes(ref) - 2 : 0, klen = returnKey ? nkey : 0;
        this.header(BinStatus.OK, 4, klen, 4 + klen + vlen, st.cas(ref));
        out.ensure(4);
        put32(out.buf, out.pos, st.clientFlags(ref));
        out.pos += 4;
        if (returnKey) out.bytes(st.mem, st.keyOffset(ref), nkey);
        if (returnValue) s.outValue(ref, false);
        s.hold(ref); // the reply references the item until written (see McSession.isHeld)
      }
    } finally { st.unlockKey(hv); }
    if (hit) return;
    if (touch) { st.stat(S.cmd_touch); st.stat(S.touch_misses); }
    else { st.stat(S.cmd_get); st.stat(S.get_misses); }
    if (this.quiet) return;
    if (returnKey) {
      this.header(BinStatus.KEY_ENOENT, 0, nkey, nkey, 0);
      out.bytes(b, key, nkey);
    } else this.error(BinStatus.KEY_ENOENT, 0);
  }

  // ------------------------------------------------------------------ set / add / replace / append / prepend
  private update(cmd: number, b: Uint8Array, key: number, nkey: number, flags: number, exptime: number, vlen: number, reqCas: U64): void {
    const s = this.s, st = this.st;
    const append = cmd === Op.APPEND || cmd === Op.PREPEND;
    const ref = st.alloc(b, key, nkey, flags, append ? 0 : st.realtime(exptime), (vlen + 2) | 0);
    if (ref < 0) {
      // the value is swallowed; memcached leaves no write point here (its swallow state follows the error)
      const text = ref === ALLOC_TOO_LARGE ? statusText(BinStatus.E2BIG) : 'Out of memory allocating item';
      this.header(ref === ALLOC_TOO_LARGE ? BinStatus.E2BIG : BinStatus.ENOMEM, 0, 0, text.length, this.cas);
      s.out.str(text);
      st.stat(ref === ALLOC_TOO_LARGE ? S.store_too_large : S.store_no_memory);
      if (vlen > 0) s.swallow(vlen);
      // avoid stale data persisting in cache because we failed alloc (memcached does this for set)
      if (cmd === Op.SET) st.remove(b, key, nkey);
      return;
    }
    st.setCas(ref, reqCas);
    switch (cmd) {
      case Op.ADD: this.storeCmd = StoreCmd.ADD; break;
      case Op.REPLACE: this.storeCmd = StoreCmd.REPLACE; break;
      case Op.APPEND: this.storeCmd = StoreCmd.APPEND; break;
      case Op.PREPEND: this.storeCmd = StoreCmd.PREPEND; break;
      default: this.storeCmd = StoreCmd.SET;
    }
    if (!append && reqCas !== 0) this.storeCmd = StoreCmd.CAS;
    if (vlen === 0) this.valueReceived(ref);
    else s.receiveValue(ref, vlen, this);
  }

  /** memcached's complete_update_bin: the value is in item `ref` (its CRLF is added here). */
  valueReceived(ref: number): void {
    const st = this.st, comm = this.storeCmd;
    st.stat(S.cmd_set);
    const end = st.dataOffset(ref) + st.nbytes(ref);
    st.mem[end - 2] = 13; st.mem[end - 1] = 10;
    st.lastCas = 0;
    const r = st.storeItem(ref, comm, false);
    this.cas = st.lastCas;
    switch (r) {
      case StoreResult.STORED: this.respond(0, 0, null); break;
      case StoreResult.EXISTS: this.error(BinStatus.KEY_EEXISTS, 0); break;
      case StoreResult.NOT_FOUND: this.error(BinStatus.KEY_ENOENT, 0); break;
      default:
        this.error(comm === StoreCmd.ADD ? BinStatus.KEY_EEXISTS : comm === StoreCmd.REPLACE ? BinStatus.KEY_ENOENT : BinStatus.NOT_STORED, 0);
    }
  }

  // ------------------------------------------------------------------ delete / incr / decr
  private del(b: Uint8Array, key: number, nkey: number, reqCas: U64): void {
    const st = this.st, hv = hashKey(b, key, nkey);
    st.lockKey(hv);
    let r: BinStatus;
    try {
      const ref = st.find(hv, b, key, nkey);
      if (ref === -1) r = BinStatus.KEY_ENOENT;
      else if (reqCas === 0 || u64Eq(st.cas(ref), reqCas)) {
        st.stat(S.delete_hits);
        st.unlink(ref, hv);
        r = BinStatus.OK;
      } else r = BinStatus.KEY_EEXISTS;
    } finally { st.unlockKey(hv); }
    if (r === BinStatus.OK) this.respond(0, 0, null);
    else {
      if (r === BinStatus.KEY_ENOENT) st.stat(S.delete_misses);
      this.error(r, 0);
    }
  }

  private arithmetic(incr: boolean, b: Uint8Array, key: number, nkey: number, delta: U64, initial: U64, exptime: number, reqCas: U64): void {
    const s = this.s, st = this.st, hv = hashKey(b, key, nkey);
    st.lockKey(hv);
    let r: DeltaResult;
    try { r = st.addDelta(hv, b, key, nkey, incr, delta, reqCas, this.delta, s.isHeld); }
    finally { st.unlockKey(hv); }
    switch (r) {
      case DeltaResult.OK:
        this.cas = st.cas(this.delta.ref);
        this.respondU64(BigInt(this.delta.value));
        return;
      case DeltaResult.NON_NUMERIC: this.error(BinStatus.DELTA_BADVAL, 0); return;
      case DeltaResult.EOM: this.error(BinStatus.ENOMEM, 0, 'Out of memory incrementing value'); return;
      case DeltaResult.CAS_MISMATCH: this.error(BinStatus.KEY_EEXISTS, 0); return;
      default: break;
    }
    // not found: with an expiration other than 0xffffffff the key is created with the initial value
    if (exptime === 0xffffffff) {
      st.stat(incr ? S.incr_misses : S.decr_misses);
      this.error(BinStatus.KEY_ENOENT, 0);
      return;
    }
    const digits = String(initial);
    const ref = st.alloc(b, key, nkey, 0, st.realtime(exptime), digits.length + 2);
    if (ref < 0) { this.error(BinStatus.ENOMEM, 0, 'Out of memory allocating new item'); return; }
    const d = st.dataOffset(ref);
    for (let i = 0; i < digits.length; i++) st.mem[d + i] = digits.charCodeAt(i);
    st.mem[d + digits.length] = 13; st.mem[d + digits.length + 1] = 10;
    st.lastCas = 0;
    if (st.storeItem(ref, StoreCmd.ADD, false) === StoreResult.STORED) {
      this.cas = st.lastCas;
      this.respondU64(BigInt(initial));
    } else this.error(BinStatus.NOT_STORED, 0);
  }

  /** An incr/decr reply: the counter as 8 body bytes. */
  private respondU64(v: bigint): void {
    if (this.quiet) return;
    this.header(BinStatus.OK, 0, 0, 8, this.cas);
    const o = this.s.out;
    o.ensure(8);
    put32(o.buf, o.pos, Number((v >> 32n) & 0xffffffffn));
    put32(o.buf, o.pos + 4, Number(v & 0xffffffffn));
    o.pos += 8;
  }

  // ------------------------------------------------------------------ flush / stat
  private flush(exptime: number): void {
    const st = this.st;
    if (this.s.app.settings.flushEnabled === false) { this.error(BinStatus.AUTH_ERROR, 0); return; }
    st.flushAll(exptime);
    st.stat(S.cmd_flush);
    this.respond(0, 0, null);
  }

  /** memcached's process_bin_stat: a packet per statistic, then an empty one; a group it does not know: Not found. */
  private stat(b: Uint8Array, key: number, nkey: number): void {
    const s = this.s, out = s.out;
    const emit: Emit = (name, value) => {
      const v = String(value);
      this.header(BinStatus.OK, 0, name.length, name.length + v.length, 0);
      out.str(name); out.str(v);
    };
    const group = Buffer.from(b.buffer, b.byteOffset + key, nkey).toString('latin1');
    if (nkey === 0) generalStats(s, emit);
    else if (group.startsWith('reset')) s.store.resetStats();
    else if (group.startsWith('settings')) settingsStats(s, emit);
    else if (group.startsWith('detail')) {
      const sub = group.slice(6);
      if (sub.startsWith(' dump')) emit('detailed', 'END\r\n');
      else if (!sub.startsWith(' on') && !sub.startsWith(' off')) { this.error(BinStatus.KEY_ENOENT, 0); return; }
    } else if (group === 'items') itemsStats(s, emit);
    else if (group === 'slabs') slabsStats(s, emit);
    else if (group === 'sizes') sizesStats(s, emit);
    // (these two: one packet and no terminating one, as memcached's item_stats_sizes_enable/disable append none)
    else if (group === 'sizes_enable') { s.store.sizesEnable(); emit('sizes_status', 'enabled'); return; }
    else if (group === 'sizes_disable') { s.store.sizesDisable(); emit('sizes_status', 'disabled'); return; }
    else { this.error(BinStatus.KEY_ENOENT, 0); return; }
    this.header(BinStatus.OK, 0, 0, 0, 0); // the terminating empty packet
  }
}

function put32(b: Uint8Array, p: number, v: number): void {
  b[p] = v >>> 24; b[p + 1] = (v >>> 16) & 0xff; b[p + 2] = (v >>> 8) & 0xff; b[p + 3] = v & 0xff;
}
