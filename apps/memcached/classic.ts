// memcached's classic text commands, answered as memcached 1.6 answers them: get/gets/gat/gats (and bget),
// set/add/replace/append/prepend/cas, incr/decr, touch, delete, flush_all, verbosity, version, cache_memlimit,
// quit, stats (stats.ts), and the words memcached knows but this server does not serve. A command set of the
// session: `execute()` runs the line in `session.tokens`; replies go to the session's output.

import { VERSION } from './version.js';
import type { CommandSet, McSession, SuspendedCommand } from './session.js';
import { stats } from './stats.js';
import { ALLOC_TOO_LARGE, DeltaResult, KEY_MAX_LENGTH, S, StoreCmd, StoreResult, hashKey, type Store, type U64 } from './store.js';
import type { Tokens } from './tokenizer.js';

const INT_MAX = 0x7fffffff;
const SP = 32;

/** The rest of a multi-get stopped by a full output queue (a copy of its keys). */
interface PendingGet { keys: Uint8Array; returnCas: boolean; touch: boolean; exptime: number }

export class ClassicCommands implements CommandSet, SuspendedCommand {
  private readonly s: McSession;
  private readonly st: Store;
  private readonly t: Tokens;
  /** The storage command whose value is being received. */
  private storeCmd = StoreCmd.SET;
  private pendingGet: PendingGet | null = null;
  /** incr/decr's result (addDelta's out-parameter). */
  private readonly delta = { ref: -1, value: '' };

  constructor(session: McSession) {
    this.s = session;
    this.st = session.store;
    this.t = session.tokens;
  }

  execute(): void {
    const s = this.s, t = this.t, nt = t.count, b = t.buf;
    const c0 = b[t.start[0]];
    if (c0 === 103 /* g */) {
      if (nt < 3) { s.outString('ERROR'); return; }
      if (t.is(0, 'get')) this.get(false, false);
      else if (t.is(0, 'gets')) this.get(true, false);
      else if (t.is(0, 'gat')) this.get(false, true);
      else if (t.is(0, 'gats')) this.get(true, true);
      else s.outString('ERROR');
      return;
    }
    if (t.is(0, 'set')) { if (this.wantOr(6, 7)) this.update(StoreCmd.SET, false); return; }
    if (t.is(0, 'add')) { if (this.wantOr(6, 7)) this.update(StoreCmd.ADD, false); return; }
    if (t.is(0, 'replace')) { if (this.wantOr(6, 7)) this.update(StoreCmd.REPLACE, false); return; }
    if (t.is(0, 'append')) { if (this.wantOr(6, 7)) this.update(StoreCmd.APPEND, false); return; }
    if (t.is(0, 'prepend')) { if (this.wantOr(6, 7)) this.update(StoreCmd.PREPEND, false); return; }
    if (t.is(0, 'cas')) { if (this.wantOr(7, 8)) this.update(StoreCmd.CAS, true); return; }
    if (t.is(0, 'incr')) { if (this.wantOr(4, 5)) this.arithmetic(true); return; }
    if (t.is(0, 'decr')) { if (this.wantOr(4, 5)) this.arithmetic(false); return; }
    if (t.is(0, 'delete')) { if (nt >= 3 && nt <= 5) this.del(); else s.outString('ERROR'); return; }
    if (t.is(0, 'touch')) { if (this.wantOr(4, 5)) this.touch(); return; }
    if (t.is(0, 'stats')) { stats(s); return; }
    if (t.is(0, 'flush_all')) { if (nt >= 2 && nt <= 4) this.flushAll(); else s.outString('ERROR'); return; }
    if (t.is(0, 'version')) { s.outString('VERSION ' + VERSION); return; }
    if (t.is(0, 'quit')) { s.closeConn(); return; }
    if (t.is(0, 'verbosity')) { if (this.wantOr(3, 4)) this.verbosity(); return; }
    if (t.is(0, 'bget')) { if (nt < 3) s.outString('ERROR'); else this.get(false, false); return; }
    if (t.is(0, 'shutdown')) { this.shutdown(); return; }
    if (t.is(0, 'cache_memlimit')) { if (this.wantOr(3, 4)) this.memlimit(); return; }
    // memcached dispatches on the first letter: an unknown word in its s a c i d t groups (as in g, and two-letter
    // m words, above) is an ERROR, never taken for an HTTP request line
    if (c0 === 115 || c0 === 97 || c0 === 99 || c0 === 105 || c0 === 100 || c0 === 116) { s.outString('ERROR'); return; }
    // commands memcached has and this server does not (see the README)
    // (lru, extstore and watch honour a trailing noreply before finding their arguments wrong)
    if (t.is(0, 'lru_crawler')) { s.outString('ERROR'); return; }
    if (t.is(0, 'lru') || t.is(0, 'extstore') || t.is(0, 'watch')) {
      if (nt >= 3) this.setNoreplyMaybe();
      s.outString('ERROR');
      return;
    }
    if (t.is(0, 'refresh_certs')) { s.outString('Error TLS not enabled'); return; }
    // anything else: memcached closes on what looks like an HTTP request line, else ERROR
    const last = nt - 2;
    const ls = t.start[last];
    if (t.end[last] - ls >= 5 && b[ls] === 72 && b[ls + 1] === 84 && b[ls + 2] === 84 && b[ls + 3] === 80 && b[ls + 4] === 47) {
      s.abort();
      return;
    }
    s.outString('ERROR');
  }

  /** The line has `a` or `c` tokens (memcached's ntokens, terminal token included); else ERROR. */
  private wantOr(a: number, c: number): boolean {
    if (this.t.count !== a && this.t.count !== c) { this.s.outString('ERROR'); return false; }
    return true;
  }
  /** memcached's set_noreply_maybe. */
  private setNoreplyMaybe(): boolean {
    const t = this.t, i = t.count - 2;
    if (i >= 0 && t.start[i] >= 0 && t.is(i, 'noreply')) this.s.noreply = true;
    return this.s.noreply;
  }

  // ------------------------------------------------------------------ get / gets / gat / gats
  private get(returnCas: boolean, touch: boolean): void {
    const s = this.s, t = this.t;
    let exptime = 0;
    let k = 1;
    if (touch) {
      const ttl = t.int32(1);
      if (ttl === null) { s.outString('CLIENT_ERROR invalid exptime argument'); return; }
      exptime = this.st.realtime(ttl);
      k = 2;
    }
    const b = t.buf;
    const start = t.start[k] >= 0 ? t.start[k] : t.lineEnd;
    const end = t.lineEnd;
    // any key over 250 bytes: the whole command answers CLIENT_ERROR, and memcached drops every reply it has not
    // written yet and releases its item references (conn_release_items)
    let ks = -1;
    for (let i = start; i <= end; i++) {
      if (i === end || b[i] === SP) {
        if (ks !== -1 && i - ks > KEY_MAX_LENGTH) {
          s.dropUnsent();
          s.outString('CLIENT_ERROR bad command line format');
          return;
        }
        ks = -1;
      } else if (ks === -1) ks = i;
    }
    this.getKeys(b, start, end, returnCas, touch, exptime);
  }

  private getKeys(b: Uint8Array, pos: number, end: number, returnCas: boolean, touch: boolean, exptime: number): void {
    const s = this.s, st = this.st, out = s.out;
    while (pos < end) {
      while (pos < end && b[pos] === SP) pos++;
      if (pos >= end) break;
      let ke = pos;
      while (ke < end && b[ke] !== SP) ke++;
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
        out.byte(SP); out.num(st.clientFlags(ref)); out.byte(SP); out.num(nb - 2);
        if (returnCas) { out.byte(SP); out.num(st.cas(ref)); }
        out.crlf();
        s.outValue(ref);
      } else if (touch) { st.stat(S.cmd_touch); st.stat(S.touch_misses); }
      else { st.stat(S.cmd_get); st.stat(S.get_misses); }
      st.unlockKey(hv);
      pos = ke;
      s.flushIfBig();
      if (s.isBlocked && pos < end) {
        // queue is full: finish this get after `drain`
        const keys = new Uint8Array(end - pos); // a copy (Buffer#slice would be a view)
        keys.set(b.subarray(pos, end));
        this.pendingGet = { keys, returnCas, touch, exptime };
        s.suspend(this);
        return;
      }
    }
    out.str('END\r\n');
    s.writePoint(); // memcached writes out (and releases every item reference) right after a get
  }

  resume(): void {
    const g = this.pendingGet!;
    this.pendingGet = null;
    this.getKeys(g.keys, 0, g.keys.length, g.returnCas, g.touch, g.exptime);
  }

  get heldBytes(): number { return this.pendingGet === null ? 0 : this.pendingGet.keys.length; }

  // ------------------------------------------------------------------ set / add / replace / append / prepend / cas
  private update(comm: StoreCmd, handleCas: boolean): void {
    const s = this.s, t = this.t;
    this.setNoreplyMaybe();
    if (t.length(1) > KEY_MAX_LENGTH) { s.outString('CLIENT_ERROR bad command line format'); return; }
    const flags = t.uint32(2), exptimeInt = t.int32(3);
    let vlen = t.int32(4);
    if (flags === null || exptimeInt === null || vlen === null) { s.outString('CLIENT_ERROR bad command line format'); return; }
    const exptime = this.st.realtime(exptimeInt);
    let reqCas: U64 = 0;
    if (handleCas) {
      const c = t.uint64(5);
      if (c === null) { s.outString('CLIENT_ERROR bad command line format'); return; }
      reqCas = c;
    }
    if (vlen < 0 || vlen > INT_MAX - 2) { s.outString('CLIENT_ERROR bad command line format'); return; }
    vlen += 2;
    t.setKey(1);
    const st = this.st;
    const ref = st.alloc(t.key, t.keyStart, t.keyLength, flags, exptime, vlen);
    if (ref < 0) {
      if (ref === ALLOC_TOO_LARGE) { s.outString('SERVER_ERROR object too large for cache'); st.stat(S.store_too_large); }
      else { s.outString('SERVER_ERROR out of memory storing object'); st.stat(S.store_no_memory); }
      s.swallow(vlen);
      // avoid stale data persisting in cache because we failed alloc (memcached does this for set)
      if (comm === StoreCmd.SET) st.remove(t.key, t.keyStart, t.keyLength);
      return;
    }
    st.setCas(ref, reqCas);
    this.storeCmd = comm;
    s.receiveValue(ref, vlen, this);
  }

  /** memcached's complete_nread_ascii. */
  valueReceived(ref: number): void {
    const s = this.s, st = this.st;
    st.stat(S.cmd_set);
    if (!s.valueEndsWithCrlf(ref)) {
      st.free(ref);
      s.outString('CLIENT_ERROR bad data chunk');
      return;
    }
    st.lastCas = 0;
    switch (st.storeItem(ref, this.storeCmd, false)) {
      case StoreResult.STORED: s.outString('STORED'); break;
      case StoreResult.EXISTS: s.outString('EXISTS'); break;
      case StoreResult.NOT_FOUND: s.outString('NOT_FOUND'); break;
      default: s.outString('NOT_STORED');
    }
  }

  // ------------------------------------------------------------------ touch / incr / decr / delete
  private touch(): void {
    const s = this.s, t = this.t, st = this.st;
    this.setNoreplyMaybe();
    if (t.length(1) > KEY_MAX_LENGTH) { s.outString('CLIENT_ERROR bad command line format'); return; }
    const ttl = t.int32(2);
    if (ttl === null) { s.outString('CLIENT_ERROR invalid exptime argument'); return; }
    const exptime = st.realtime(ttl);
    t.setKey(1);
    const hv = hashKey(t.key, t.keyStart, t.keyLength);
    st.lockKey(hv);
    const ref = st.find(hv, t.key, t.keyStart, t.keyLength);
    if (ref !== -1) { st.bump(ref); st.setExptime(ref, exptime); }
    st.unlockKey(hv);
    st.stat(S.cmd_touch);
    if (ref !== -1) { st.stat(S.touch_hits); s.outString('TOUCHED'); }
    else { st.stat(S.touch_misses); s.outString('NOT_FOUND'); }
  }

  private arithmetic(incr: boolean): void {
    const s = this.s, t = this.t, st = this.st;
    this.setNoreplyMaybe();
    if (t.length(1) > KEY_MAX_LENGTH) { s.outString('CLIENT_ERROR bad command line format'); return; }
    const delta = t.uint64(2);
    if (delta === null) { s.outString('CLIENT_ERROR invalid numeric delta argument'); return; }
    t.setKey(1);
    const hv = hashKey(t.key, t.keyStart, t.keyLength);
    st.lockKey(hv);
    let r: DeltaResult;
    try { r = st.addDelta(hv, t.key, t.keyStart, t.keyLength, incr, delta, 0, this.delta, s.isHeld); }
    finally { st.unlockKey(hv); }
    switch (r) {
      case DeltaResult.OK: s.outString(this.delta.value); break;
      case DeltaResult.NON_NUMERIC: s.outString('CLIENT_ERROR cannot increment or decrement non-numeric value'); break;
      case DeltaResult.EOM: s.outString('SERVER_ERROR out of memory'); break;
      case DeltaResult.NOT_FOUND:
        st.stat(incr ? S.incr_misses : S.decr_misses);
        s.outString('NOT_FOUND');
        break;
      default: break;
    }
  }

  private del(): void {
    const s = this.s, t = this.t, st = this.st, nt = t.count;
    if (nt > 3) {
      const holdIsZero = t.is(2, '0');
      const setsNoreply = this.setNoreplyMaybe();
      const valid = (nt === 4 && (holdIsZero || setsNoreply)) || (nt === 5 && holdIsZero && setsNoreply);
      if (!valid) { s.outString('CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]'); return; }
    }
    if (t.length(1) > KEY_MAX_LENGTH) { s.outString('CLIENT_ERROR bad command line format'); return; }
    t.setKey(1);
    const hv = hashKey(t.key, t.keyStart, t.keyLength);
    st.lockKey(hv);
    const ref = st.find(hv, t.key, t.keyStart, t.keyLength);
    if (ref !== -1) st.unlink(ref, hv);
    st.unlockKey(hv);
    if (ref !== -1) { st.stat(S.delete_hits); s.outString('DELETED'); }
    else { st.stat(S.delete_misses); s.outString('NOT_FOUND'); }
  }

  // ------------------------------------------------------------------ admin
  private flushAll(): void {
    const s = this.s, st = this.st;
    this.setNoreplyMaybe();
    st.stat(S.cmd_flush);
    if (s.app.settings.flushEnabled === false) { s.outString('CLIENT_ERROR flush_all not allowed'); return; }
    let exptime = 0;
    if (this.t.count !== (s.noreply ? 3 : 2)) {
      const ttl = this.t.int32(1);
      if (ttl === null) { s.outString('CLIENT_ERROR invalid exptime argument'); return; }
      exptime = ttl;
    }
    st.flushAll(exptime);
    s.outString('OK');
  }

  /** memcached's process_shutdown_command: with -A, `shutdown [graceful]` closes this connection and stops the server. */
  private shutdown(): void {
    const s = this.s, t = this.t;
    if (!s.app.settings.shutdownEnabled) { s.outString('ERROR: shutdown not enabled'); return; }
    if (t.count === 2 || (t.count === 3 && t.is(1, 'graceful'))) {
      s.abort();
      process.kill(process.pid, 'SIGINT'); // the CLI stops gracefully on SIGINT (memcached: SIGINT / SIGUSR1)
      return;
    }
    s.outString('CLIENT_ERROR invalid shutdown mode');
  }

  private verbosity(): void {
    this.setNoreplyMaybe();
    const v = this.t.uint32(1);
    if (v === null) { this.s.outString('CLIENT_ERROR bad command line format'); return; }
    this.st.verbosity = Math.min(v, 2);
    this.s.outString('OK');
  }

  private memlimit(): void {
    const s = this.s;
    this.setNoreplyMaybe();
    const v = this.t.uint32(1);
    if (v === null) { s.outString('ERROR'); return; }
    if (v < 8) s.outString('MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m');
    else if (v > 1000000000) s.outString('MEMLIMIT_ADJUST_FAILED input value is megabytes not bytes');
    else if (v * 1024 * 1024 === this.st.maxBytes) s.outString('OK');
    else s.outString('MEMLIMIT_ADJUST_FAILED out of bounds or unable to adjust'); // the arena is sized at start
  }
}
