// memcached's meta commands — mg ms md ma mn me — with their flags (b c f h k l O q s t T u v N R I M J D C F and the
// win / stale / token-sent replies W X Z), answered as memcached 1.6.18 answers them; and what today's memcached
// (1.6.4x, doc/protocol.txt) added since: E(token) (the CAS a changed item gets, on mg ms md ma), ms's s (the stored
// size) and N(token) in append mode (vivify on miss), md's x (drop the value, keep the item). A command set of the
// session: `execute()` runs the line in `session.tokens`; replies go to the session's output.

import { base64Decode, base64Encode } from './base64.js';
import { Out } from './out.js';
import type { CommandSet, McSession } from './session.js';
import {
  ALLOC_TOO_LARGE, DeltaResult, IF_FETCHED, IF_KEY_BINARY, IF_STALE, IF_TOKEN_SENT, KEY_MAX_LENGTH, S, StoreCmd,
  StoreResult, hashKey, type Store, type U64,
} from './store.js';
import { strtol32, strtoul32, strtoull, type Tokens } from './tokenizer.js';

const INT_MAX = 0x7fffffff;
const MFLAG_MAX_OPT_LENGTH = 20;
const MFLAG_MAX_OPAQUE_LENGTH = 32;
const enum Ch { SP = 32, CR = 13, LF = 10 }

/** Parsed meta flags (memcached's struct _meta_flags). */
class MetaFlags {
  noUpdate = false; locked = false; vivify = false; la = false; value = false; setStale = false;
  noReply = false; hasCas = false; newTtl = false; keyBinary = false; hasError = false; removeVal = false;
  /** E(token): the new CAS (0: none). */
  casIn: U64 = 0;
  mode = 0; exptime = 0; autovivExptime = 0; recacheTime = 0; clientFlags = 0;
  reqCas: U64 = 0; delta: U64 = 1; initial: U64 = 0;
  readonly seen = new Uint8Array(128);
  reset(): void {
    this.noUpdate = this.locked = this.vivify = this.la = this.value = this.setStale = false;
    this.noReply = this.hasCas = this.newTtl = this.keyBinary = this.hasError = this.removeVal = false;
    this.casIn = 0;
    this.mode = 0; this.exptime = 0; this.autovivExptime = 0; this.recacheTime = 0; this.clientFlags = 0;
    this.reqCas = 0; this.delta = 1; this.initial = 0;
    this.seen.fill(0);
  }
}

export class MetaCommands implements CommandSet {
  private readonly s: McSession;
  private readonly st: Store;
  private readonly t: Tokens;
  private readonly flags = new MetaFlags();
  /** The error line a failed flag parse answers with. */
  private errstr = '';
  // ms: what to reply once its value is in — the O/k/c flags to echo, the key, the store command
  private readonly stash = new Out(256);
  private readonly msKey = new Uint8Array(KEY_MAX_LENGTH + 4);
  private msKeyLen = 0;
  private msKeyBinary = false;
  private msComm = StoreCmd.SET;
  private msSetStale = false;
  private msCasIn: U64 = 0;
  /** ma's result (addDelta's out-parameter). */
  private readonly delta = { ref: -1, value: '' };

  constructor(session: McSession) {
    this.s = session;
    this.st = session.store;
    this.t = session.tokens;
  }

  /** Bytes of the buffer ms keeps between its line and its value (counted in read_buf_bytes). */
  get stashBytes(): number { return this.stash.buf.length; }

  execute(): void {
    const s = this.s, t = this.t;
    this.st.stat(S.cmd_meta);
    switch (t.buf[t.start[0] + 1]) {
      case 103: this.metaGet(); return; // mg
      case 115: this.metaSet(); return; // ms
      case 100: this.metaDelete(); return; // md
      case 110: s.outString('MN'); s.flush(); return; // mn (forces a write, as memcached)
      case 97: this.metaArithmetic(); return; // ma
      case 101: this.metaDebug(); return; // me
      default: s.outString('ERROR'); return;
    }
  }

  /** memcached's _meta_flag_preparse over tokens [start, count-1). Returns false on error (errstr set). */
  private preparse(start: number): boolean {
    const f = this.flags, t = this.t, b = t.buf, st = this.st;
    f.reset();
    this.errstr = 'CLIENT_ERROR bad command line format';
    for (let i = start; i < t.count - 1; i++) {
      const fs = t.start[i], fe = t.end[i];
      const o = b[fs];
      if (o >= 127 || f.seen[o] !== 0) { this.errstr = 'CLIENT_ERROR duplicate flag'; return false; }
      f.seen[o] = 1;
      switch (o) {
        case 98: { // b
          const n = base64Decode(t.key, t.keyStart, t.keyStart + t.keyLength, t.keyScratch);
          if (n === 0) { this.errstr = 'CLIENT_ERROR error decoding key'; f.hasError = true; }
          t.setDecodedKey(n);
          f.keyBinary = true;
          break;
        }
        case 78: { // N
          f.locked = true; f.vivify = true;
          const ttl = strtol32(b, fs + 1, fe);
          if (ttl === null) { this.errstr = 'CLIENT_ERROR bad token in command line format'; f.hasError = true; }
          else f.autovivExptime = st.realtime(ttl);
          break;
        }
        case 84: { // T
          f.locked = true;
          const ttl = strtol32(b, fs + 1, fe);
          if (ttl === null) { this.errstr = 'CLIENT_ERROR bad token in command line format'; f.hasError = true; }
          else { f.exptime = st.realtime(ttl); f.newTtl = true; }
          break;
        }
        case 82: { // R
          f.locked = true;
          const ttl = strtol32(b, fs + 1, fe);
          if (ttl === null) { this.errstr = 'CLIENT_ERROR bad token in command line format'; f.hasError = true; }
          else f.recacheTime = st.realtime(ttl);
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
          const v = strtoul32(b, fs + 1, fe);
          if (v === null) f.hasError = true; else f.clientFlags = v;
          break;
        }
        case 67: { // C
          const v = strtoull(b, fs + 1, fe);
          if (v === null) { this.errstr = 'CLIENT_ERROR bad token in command line format'; f.hasError = true; }
          else { f.reqCas = v; f.hasCas = true; }
          break;
        }
        case 77: // M
          if (fe - fs !== 2) { this.errstr = 'CLIENT_ERROR incorrect length for M token'; f.hasError = true; }
          else f.mode = b[fs + 1];
          break;
        case 74: { // J
          const v = strtoull(b, fs + 1, fe);
          if (v === null) { this.errstr = 'CLIENT_ERROR invalid numeric initial value'; f.hasError = true; }
          else f.initial = v;
          break;
        }
        case 68: { // D
          const v = strtoull(b, fs + 1, fe);
          if (v === null) { this.errstr = 'CLIENT_ERROR invalid numeric delta value'; f.hasError = true; }
          else f.delta = v;
          break;
        }
        case 73: f.setStale = true; break; // I
        case 69: { // E (1.6.4x)
          const v = strtoull(b, fs + 1, fe);
          if (v === null) { this.errstr = 'CLIENT_ERROR bad token in command line format'; f.hasError = true; }
          else f.casIn = v;
          break;
        }
        case 120: f.removeVal = true; break; // x (1.6.4x)
        default:
          this.errstr = 'CLIENT_ERROR invalid flag';
          return false;
      }
    }
    return !f.hasError;
  }

  /** Echoes flag token i, an opaque (O), into the reply; false (reply rewound to `mark`, error sent) if too long. */
  private echoOpaque(i: number, mark: number): boolean {
    const t = this.t, out = this.s.out, n = t.length(i);
    if (n > MFLAG_MAX_OPAQUE_LENGTH) { out.pos = mark; this.s.outErr('CLIENT_ERROR opaque token too long'); return false; }
    out.byte(Ch.SP); out.bytes(t.buf, t.start[i], n);
    return true;
  }

  /** Echoes the request's O and k flags (tokens 2 … count-2) into a reply that carries no item; false as echoOpaque. */
  private echoOpaqueAndKey(mark: number, keyBinary: boolean): boolean {
    const t = this.t;
    for (let i = 2; i < t.count - 1; i++) {
      const c = t.buf[t.start[i]];
      if (c === 79) { if (!this.echoOpaque(i, mark)) return false; }
      else if (c === 107) this.echoKey(t.key, t.keyStart, t.keyLength, keyBinary);
    }
    return true;
  }

  /** " k<key>" (base64 + " b" for binary keys). */
  private echoKey(kb: Uint8Array, ko: number, kl: number, binary: boolean): void {
    const out = this.s.out;
    out.str(' k');
    if (!binary) out.bytes(kb, ko, kl);
    else { base64Encode(kb, ko, ko + kl, out); out.str(' b'); }
  }

  // ------------------------------------------------------------------ mg
  private metaGet(): void {
    const s = this.s, t = this.t, nt = t.count;
    if (nt < 3) { s.outString('ERROR'); return; }
    if (t.length(1) > KEY_MAX_LENGTH) { s.outErr('CLIENT_ERROR bad command line format'); return; }
    if (nt > MFLAG_MAX_OPT_LENGTH) { s.outErr('CLIENT_ERROR options flags are too long'); return; }
    t.setKey(1);
    if (!this.preparse(2)) { s.outErr(this.errstr); return; }
    const f = this.flags, st = this.st, out = s.out, b = t.buf;
    s.noreply = f.noReply;
    const hv = hashKey(t.key, t.keyStart, t.keyLength);
    const mark = out.pos;
    st.lockKey(hv);
    try {
      let ref = st.find(hv, t.key, t.keyStart, t.keyLength);
      let created = false;
      if (ref === -1 && f.vivify) {
        const r = st.alloc(t.key, t.keyStart, t.keyLength, 0, 0, 2);
        if (r >= 0) {
          st.mem[st.dataOffset(r)] = Ch.CR; st.mem[st.dataOffset(r) + 1] = Ch.LF;
          st.casIn = f.casIn;
          st.linkNew(r, hv);
          st.casIn = 0;
          ref = r; created = true;
        }
      }
      let ttlSet = false;
      if (ref !== -1) {
        const nb = st.nbytes(ref);
        if (f.value) { out.str('VA '); out.num(nb - 2); } else out.str('HD');
        let won = false;
        for (let i = 2; i < nt - 1; i++) {
          switch (b[t.start[i]]) {
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
            case 107: this.echoKey(st.mem, st.keyOffset(ref), st.nkey(ref), (st.iflags(ref) & IF_KEY_BINARY) !== 0); break; // k
          }
        }
        const fl = st.iflags(ref);
        if (fl & IF_TOKEN_SENT) out.str(' Z');
        if (fl & IF_STALE) { out.str(' X'); if ((fl & IF_TOKEN_SENT) === 0) won = true; }
        if (won) { out.str(' W'); st.setIflag(ref, IF_TOKEN_SENT); }
        out.crlf();
        if (f.value) s.outValue(ref);
        if (!f.noUpdate) st.bump(ref);
        s.hold(ref);
        if (ttlSet) { st.stat(S.cmd_touch); st.stat(S.touch_hits); } else { st.stat(S.cmd_get); st.stat(S.get_hits); }
      } else {
        if (f.newTtl) { st.stat(S.cmd_touch); st.stat(S.touch_misses); } else { st.stat(S.cmd_get); st.stat(S.get_misses); }
        out.str('EN');
        if (!this.echoOpaqueAndKey(mark, f.keyBinary)) return;
        out.crlf();
        if (s.noreply) out.pos = mark;
      }
    } finally {
      st.unlockKey(hv);
    }
  }

  // ------------------------------------------------------------------ ms
  private metaSet(): void {
    const s = this.s, t = this.t, nt = t.count;
    if (nt < 3) { s.outString('ERROR'); return; }
    if (t.length(1) > KEY_MAX_LENGTH) { s.outErr('CLIENT_ERROR bad command line format'); return; }
    if (nt === 3) { s.outErr('CLIENT_ERROR bad command line format'); return; }
    if (nt > MFLAG_MAX_OPT_LENGTH) { s.outErr('CLIENT_ERROR options flags too long'); return; }
    let vlen = t.int32(2);
    if (vlen === null || vlen < 0 || vlen > INT_MAX - 2) { s.outErr('CLIENT_ERROR bad command line format'); return; }
    vlen += 2;
    t.setKey(1);
    const f = this.flags, b = t.buf, st = this.st;
    if (!this.preparse(3)) { this.metaSetError(vlen); return; }
    s.noreply = f.noReply;
    const stash = this.stash;
    stash.reset();
    let hasError = false;
    for (let i = 2; i < nt - 1; i++) {
      const ts = t.start[i];
      switch (b[ts]) {
        case 79:
          if (t.length(i) > MFLAG_MAX_OPAQUE_LENGTH) { this.errstr = 'CLIENT_ERROR opaque token too long'; hasError = true; break; }
          stash.byte(Ch.SP); stash.bytes(b, ts, t.length(i));
          break;
        case 107: stash.str(' k'); break;
        case 99: stash.str(' c'); break;
        case 115: stash.str(' s'); break;
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
    // N(token) in append mode: a miss stores the value as a new item with N's TTL
    let exptime = f.exptime;
    if (f.vivify && (comm === StoreCmd.APPEND || comm === StoreCmd.PREPEND)) {
      comm = comm === StoreCmd.APPEND ? StoreCmd.APPEND_VIV : StoreCmd.PREPEND_VIV;
      exptime = f.autovivExptime;
    }
    if (hasError) { this.metaSetError(vlen); return; }
    const ref = st.alloc(t.key, t.keyStart, t.keyLength, f.clientFlags, exptime, vlen);
    if (ref < 0) {
      if (ref === ALLOC_TOO_LARGE) { this.errstr = 'SERVER_ERROR object too large for cache'; st.stat(S.store_too_large); }
      else { this.errstr = 'SERVER_ERROR out of memory storing object'; st.stat(S.store_no_memory); }
      st.remove(t.key, t.keyStart, t.keyLength);
      this.metaSetError(vlen);
      return;
    }
    st.setCas(ref, f.reqCas);
    if (f.keyBinary) st.setIflag(ref, IF_KEY_BINARY);
    this.msKey.set(t.key.subarray(t.keyStart, t.keyStart + t.keyLength));
    this.msKeyLen = t.keyLength;
    this.msKeyBinary = f.keyBinary;
    this.msComm = comm;
    this.msSetStale = f.setStale && comm === StoreCmd.CAS;
    this.msCasIn = f.casIn;
    s.receiveValue(ref, vlen, this);
  }

  private metaSetError(vlen: number): void {
    this.s.swallow(vlen);
    this.s.outErr(this.errstr);
  }

  /** ms's value is in: store it (memcached's complete_nread_ascii), then reply (_finalize_mset). */
  valueReceived(ref: number): void {
    const s = this.s, st = this.st;
    st.stat(S.cmd_set);
    if (!s.valueEndsWithCrlf(ref)) {
      st.free(ref);
      s.outErr('CLIENT_ERROR bad data chunk');
      return;
    }
    st.lastCas = 0;
    const reqSize = st.nbytes(ref) - 2;
    st.casIn = this.msCasIn;
    let res: StoreResult;
    try { res = st.storeItem(ref, this.msComm, this.msSetStale); } finally { st.casIn = 0; }
    const out = s.out;
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
        this.echoKey(this.msKey, 0, this.msKeyLen, this.msKeyBinary);
      } else if (c === 99) {
        out.str(' c'); out.num(st.lastCas);
      } else if (c === 115) { // the stored item's size (after an append: the whole), else the value's
        out.str(' s'); out.num(res === StoreResult.STORED ? st.lastNbytes - 2 : reqSize);
      }
    }
    out.crlf();
    if (res === StoreResult.STORED && s.noreply) out.pos = mark;
  }

  // ------------------------------------------------------------------ md
  private metaDelete(): void {
    const s = this.s, t = this.t, nt = t.count;
    if (nt < 3) { s.outString('ERROR'); return; }
    if (t.length(1) > KEY_MAX_LENGTH) { s.outString('CLIENT_ERROR bad command line format'); return; }
    if (nt > MFLAG_MAX_OPT_LENGTH) { s.outString('CLIENT_ERROR options flags too long'); return; }
    t.setKey(1);
    if (!this.preparse(2)) { s.outErr('CLIENT_ERROR invalid or duplicate flag'); return; }
    const f = this.flags, st = this.st, out = s.out;
    s.noreply = f.noReply;
    const mark = out.pos;
    out.str('XX');
    if (!this.echoOpaqueAndKey(mark, f.keyBinary)) return;
    out.crlf();
    const hv = hashKey(t.key, t.keyStart, t.keyLength);
    let skip = false;
    let code = 'NF';
    st.lockKey(hv);
    const ref = st.find(hv, t.key, t.keyStart, t.keyLength);
    if (ref !== -1) {
      if (f.hasCas && !sameCas(st.cas(ref), f.reqCas)) { st.stat(S.delete_misses); code = 'EX'; }
      else if (f.setStale) {
        if (f.newTtl) st.setExptime(ref, f.exptime);
        st.setIflag(ref, IF_STALE);
        st.clearIflag(ref, IF_TOKEN_SENT);
        const wasHeld = s.isHeld(ref);
        st.setCas(ref, f.casIn !== 0 ? f.casIn : st.nextCas());
        if (wasHeld) s.hold(ref);
        skip = s.noreply; code = 'HD';
      } else if (f.removeVal) {
        // x: the item stays (key, flags, TTL) with an empty value and a new CAS
        const neu = st.alloc(st.mem, st.keyOffset(ref), st.nkey(ref), st.clientFlags(ref), st.exptime(ref), 2);
        if (neu < 0) code = 'SE';
        else {
          st.mem[st.dataOffset(neu)] = Ch.CR; st.mem[st.dataOffset(neu) + 1] = Ch.LF;
          if (st.iflags(ref) & IF_KEY_BINARY) st.setIflag(neu, IF_KEY_BINARY);
          st.casIn = f.casIn;
          st.replace(ref, neu, hv);
          st.casIn = 0;
          skip = s.noreply; code = 'HD';
        }
      } else {
        st.stat(S.delete_hits);
        st.unlink(ref, hv);
        skip = s.noreply; code = 'HD';
      }
    } else st.stat(S.delete_misses);
    st.unlockKey(hv);
    if (code === 'SE') { out.pos = mark; s.outErr('SERVER_ERROR out of memory'); return; }
    out.buf[mark] = code.charCodeAt(0); out.buf[mark + 1] = code.charCodeAt(1);
    if (skip) out.pos = mark;
  }

  // ------------------------------------------------------------------ ma
  private metaArithmetic(): void {
    const s = this.s, t = this.t, nt = t.count;
    if (nt < 3) { s.outString('ERROR'); return; }
    if (t.length(1) > KEY_MAX_LENGTH) { s.outString('CLIENT_ERROR bad command line format'); return; }
    if (nt > MFLAG_MAX_OPT_LENGTH) { s.outString('CLIENT_ERROR options flags too long'); return; }
    t.setKey(1);
    if (!this.preparse(2)) { s.outErr('CLIENT_ERROR invalid or duplicate flag'); return; }
    const f = this.flags, b = t.buf, st = this.st, out = s.out;
    s.noreply = f.noReply;
    let incr = true;
    switch (f.mode) {
      case 0: case 73: case 43: incr = true; break; // I +
      case 68: case 45: incr = false; break; // D -
      default: s.outErr('CLIENT_ERROR invalid mode for ma M token'); return;
    }
    const hv = hashKey(t.key, t.keyStart, t.keyLength);
    const mark = out.pos;
    st.lockKey(hv);
    try {
      let created = false;
      let ref = -1;
      let value = '';
      let skip = false;
      st.casIn = f.casIn;
      const r = st.addDelta(hv, t.key, t.keyStart, t.keyLength, incr, f.delta, f.reqCas, this.delta, s.isHeld);
      switch (r) {
        case DeltaResult.OK: skip = s.noreply; ref = this.delta.ref; value = this.delta.value; break;
        case DeltaResult.NON_NUMERIC: s.outErr('CLIENT_ERROR cannot increment or decrement non-numeric value'); return;
        case DeltaResult.EOM: s.outErr('SERVER_ERROR out of memory'); return;
        case DeltaResult.NOT_FOUND:
          if (f.vivify) {
            value = String(f.initial);
            const it = st.alloc(t.key, t.keyStart, t.keyLength, 0, 0, value.length + 2);
            if (it < 0) { s.outErr('SERVER_ERROR Out of memory allocating new item'); return; }
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
          switch (b[t.start[i]]) {
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
            case 107: this.echoKey(t.key, t.keyStart, t.keyLength, f.keyBinary); break;
          }
        }
        if (f.value) { out.crlf(); out.str(value); }
      } else {
        if (!this.echoOpaqueAndKey(mark, f.keyBinary)) return;
      }
      out.crlf();
      if (skip) out.pos = mark;
    } finally {
      st.casIn = 0;
      st.unlockKey(hv);
    }
  }

  // ------------------------------------------------------------------ me
  private metaDebug(): void {
    const s = this.s, t = this.t, nt = t.count;
    if (nt < 3 || t.length(1) > KEY_MAX_LENGTH) { s.outString('CLIENT_ERROR bad command line format'); return; }
    t.setKey(1);
    if (nt >= 4 && t.length(2) === 1 && t.buf[t.start[2]] === 98) {
      const n = base64Decode(t.key, t.keyStart, t.keyStart + t.keyLength, t.keyScratch);
      if (n === 0) { s.outString('CLIENT_ERROR bad command line format'); return; }
      t.setDecodedKey(n);
    }
    const st = this.st, out = s.out;
    const hv = hashKey(t.key, t.keyStart, t.keyLength);
    st.lockKey(hv);
    const ref = st.find(hv, t.key, t.keyStart, t.keyLength);
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
    } else s.outString('EN');
    st.unlockKey(hv);
  }
}

function sameCas(a: U64, b: U64): boolean { return typeof a === typeof b ? a === b : BigInt(a) === BigInt(b); }
