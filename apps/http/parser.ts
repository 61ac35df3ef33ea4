// Incremental HTTP/1.1 request parser (RFC 9112), fed with `data()` chunks split anywhere.
//
// Allocation-light: the header block is scanned byte by byte as it arrives (CRLF discipline, limits), copied
// once when complete into a slab shared by the thread's parsers (or accumulated in a per-connection buffer while it
// is split across chunks), then parsed into offsets, kept in the slab too (slabCopy, keepFields). Only the method, the
// request-target and the framing fields (Content-Length, Transfer-Encoding, Host, Connection, Expect) are examined;
// every other name and value is decoded only when the application asks (see headers.ts). Body bytes are passed on
// as views of the input.
//
// Strict: any framing fault stops the parser for good (state DEAD) after reporting the status to answer with; the
// connection must then be closed after that response so that nothing behind the fault can be smuggled.

import { Fields } from './headers.js';

const CR = 13;
const LF = 10;
const SP = 32;
const HT = 9;
const COLON = 58;
const COMMA = 44;

/** tchar (RFC 9110 §5.6.2) */
const TCHAR = new Uint8Array(256);
for (let c = 0; c < 128; c++) {
  const ch = String.fromCharCode(c);
  if (/[A-Za-z0-9]/.test(ch) || "!#$%&'*+-.^_`|~".includes(ch)) TCHAR[c] = 1;
}
/** bytes allowed in a Host value: reg-name / IP-literal / IPv4 and an optional port */
const HOSTCHAR = new Uint8Array(256);
for (let c = 0; c < 128; c++) {
  const ch = String.fromCharCode(c);
  if (/[A-Za-z0-9]/.test(ch) || "-._~!$&'()*+,;=:[]%".includes(ch)) HOSTCHAR[c] = 1;
}

function lit(s: string): Uint8Array {
  return Uint8Array.from(s, (c) => c.charCodeAt(0));
}
const L_HOST = lit('host');
const L_EXPECT = lit('expect');
const L_CONNECTION = lit('connection');
const L_CONTENT_LENGTH = lit('content-length');
const L_TRANSFER_ENCODING = lit('transfer-encoding');
const L_CHUNKED = lit('chunked');
const L_CLOSE = lit('close');
const L_KEEP_ALIVE = lit('keep-alive');
const L_100_CONTINUE = lit('100-continue');

/** ASCII case-insensitive comparison of b[s, s+l.length) with the lower-case literal l. */
function eqLower(b: Uint8Array, s: number, l: Uint8Array): boolean {
  for (let j = 0; j < l.length; j++) {
    let c = b[s + j];
    if (c >= 0x41 && c <= 0x5a) c += 32;
    if (c !== l[j]) return false;
  }
  return true;
}

const METHODS: ReadonlyArray<string> = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH'];
const METHOD_BYTES = METHODS.map(lit);

/** The implemented method named by b[s, e), as an interned string, or null. Methods are case-sensitive. */
function knownMethod(b: Uint8Array, s: number, e: number, extra: ReadonlySet<string> | undefined): string | null {
  const n = e - s;
  outer: for (let m = 0; m < METHOD_BYTES.length; m++) {
    const l = METHOD_BYTES[m];
    if (l.length !== n) continue;
    for (let j = 0; j < n; j++) if (b[s + j] !== l[j]) continue outer;
    return METHODS[m];
  }
  if (extra && extra.size > 0) {
    const name = Buffer.from(b.buffer, b.byteOffset + s, n).toString('latin1');
    if (extra.has(name)) return name;
  }
  return null;
}

export interface ParserLimits {
  /** Request line + header fields, bytes (431 beyond; 414 when the request line alone is too long). */
  maxHeaderSize: number;
  /** Request-target length, bytes (414 beyond). */
  maxUriLength: number;
  /** Number of header field lines (431 beyond). */
  maxHeaders: number;
  /** Request body, bytes (413 beyond), for Content-Length and chunked alike. */
  maxBodySize: number;
  /** Trailer section of a chunked body, bytes (431 beyond). */
  maxTrailerSize: number;
  /** Methods accepted besides GET HEAD POST PUT DELETE OPTIONS PATCH (others: 501). */
  extraMethods?: ReadonlySet<string>;
}

export const DEFAULT_LIMITS: ParserLimits = {
  maxHeaderSize: 16 * 1024,
  maxUriLength: 8 * 1024,
  maxHeaders: 100,
  maxBodySize: 1024 * 1024,
  maxTrailerSize: 4 * 1024,
};

/** A parsed request head. */
export interface RequestHead {
  method: string;
  /** request-target exactly as received (ASCII) */
  target: string;
  /** 0 for HTTP/1.0, 1 for HTTP/1.1 (and for 1.x, x > 1) */
  minor: number;
  fields: Fields;
  /** -1 when absent */
  contentLength: number;
  chunked: boolean;
  /** the request asks for (1.1 default, 1.0 with keep-alive) a persistent connection */
  keepAlive: boolean;
  expectContinue: boolean;
  /** the request has a body to read (Content-Length > 0 or chunked) */
  hasBody: boolean;
}

export interface ParserEvents {
  onHead(head: RequestHead): void;
  /** Body bytes: a view valid only during the call. */
  onBody(buf: Uint8Array, offset: number, length: number): void;
  /** The message is complete; trailers when a chunked body had any. */
  onComplete(trailers: Fields | null): void;
  /** A fault: answer with `status` and close. The parser is dead afterwards. */
  onError(status: number, reason: string): void;
}

const S_HEAD = 0;
const S_FIXED = 1;
const S_CHUNK_SIZE = 2;
const S_CHUNK_EXT = 3;
const S_CHUNK_SIZE_LF = 4;
const S_CHUNK_DATA = 5;
const S_CHUNK_DATA_CR = 6;
const S_CHUNK_DATA_LF = 7;
const S_TRAILER = 8;
const S_DEAD = 9;

// Chunk extensions (RFC 9112 §7.1.1), after the chunk size up to the line's CR:
//   chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
//   chunk-ext-name = token, chunk-ext-val = token / quoted-string
// Each state names what may come next; whitespace is allowed only next to ";" and "=" (none before the CR).
/** whitespace seen (after the size or a value): only more of it or ";" */
const X_SEMI = 0;
/** after ";": whitespace, then a name */
const X_NAME_START = 1;
/** in a name: more of it, whitespace, "=", ";" or the end */
const X_NAME = 2;
/** whitespace after a name: more of it, "=" or ";" */
const X_NAME_WS = 3;
/** after "=": whitespace, then a token or a quoted string */
const X_VALUE_START = 4;
/** in a token value: more of it, whitespace, ";" or the end */
const X_TOKEN = 5;
/** inside a quoted string */
const X_QUOTED = 6;
/** after a backslash inside a quoted string */
const X_QUOTED_PAIR = 7;
/** after a quoted string's closing quote: whitespace, ";" or the end */
const X_AFTER_VALUE = 8;
/** results of nextExtState besides the states: the CR ending the line, and a fault */
const X_END = 9;
const X_BAD = 10;

const SEMI = 0x3b;
const EQUALS = 0x3d;
const DQUOTE = 0x22;
const BACKSLASH = 0x5c;

/** The chunk-extension state after byte c in state x (X_END at the line's CR, X_BAD on a fault). */
function nextExtState(x: number, c: number): number {
  const ws = c === SP || c === HT;
  switch (x) {
    case X_SEMI:
      return ws ? X_SEMI : c === SEMI ? X_NAME_START : X_BAD;
    case X_NAME_START:
      return ws ? X_NAME_START : TCHAR[c] === 1 ? X_NAME : X_BAD;
    case X_NAME:
      return TCHAR[c] === 1 ? X_NAME : ws ? X_NAME_WS : c === EQUALS ? X_VALUE_START : c === SEMI ? X_NAME_START :
        c === CR ? X_END : X_BAD;
    case X_NAME_WS:
      return ws ? X_NAME_WS : c === EQUALS ? X_VALUE_START : c === SEMI ? X_NAME_START : X_BAD;
    case X_VALUE_START:
      return ws ? X_VALUE_START : TCHAR[c] === 1 ? X_TOKEN : c === DQUOTE ? X_QUOTED : X_BAD;
    case X_TOKEN:
      return TCHAR[c] === 1 ? X_TOKEN : ws ? X_SEMI : c === SEMI ? X_NAME_START : c === CR ? X_END : X_BAD;
    case X_QUOTED:
      // qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text
      return c === DQUOTE ? X_AFTER_VALUE : c === BACKSLASH ? X_QUOTED_PAIR :
        ws || (c >= 0x21 && c !== 0x7f) ? X_QUOTED : X_BAD;
    case X_QUOTED_PAIR:
      // quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text )
      return ws || (c >= 0x21 && c !== 0x7f) ? X_QUOTED : X_BAD;
    case X_AFTER_VALUE:
      return ws ? X_SEMI : c === SEMI ? X_NAME_START : c === CR ? X_END : X_BAD;
    default:
      return X_BAD;
  }
}

const MAX_LEADING_EMPTY_LINES = 4;
const MAX_CHUNK_EXT = 1024;
/** The largest chunk size accepted (13 hex digits; exact in a double): larger is 413, as a body over the limit. */
const MAX_CHUNK_SIZE = 0xf_ffff_ffff_ffff;
/** Hex digits of a chunk size, leading zeros included, beyond which the size line is refused (400): as MAX_CHUNK_EXT. */
const MAX_CHUNK_SIZE_DIGITS = 1024;

// Field offsets of the block being parsed (name start, name end, value start, value end per field): scratch shared
// by every parser of this thread, since a block is parsed whole within one call and what its Fields keep is copied
// out of it (a table per connection cost an off-heap allocation per connection: 1.6 KiB with the default 100 fields).
let fieldTable = new Int32Array(4 * DEFAULT_LIMITS.maxHeaders);

// A request head's bytes, and then its field offsets (4-byte aligned, through an Int32Array view of the same memory),
// go into a slab shared by every parser of this thread: appended, never rewritten or reused — a slab that cannot take
// the next head or table is dropped (the GC frees it once no request's Fields point into it) and a fresh one started.
// This spares each request a Buffer for its head, a view of its input and an Int32Array of offsets. The slab is as
// large as Node's Buffer pool, which the heads were copied into before, so a long-lived request keeps as much memory
// alive as it did then (two slabs when its offsets start a new one); heads, and offset tables, of a quarter of it or
// more get allocations of their own as before.
const HEAD_SLAB_BYTES = 8 * 1024;
const HEAD_OWN_MIN = HEAD_SLAB_BYTES / 4;
let headSlab = Buffer.allocUnsafeSlow(HEAD_SLAB_BYTES);
let headInts = new Int32Array(headSlab.buffer, headSlab.byteOffset, HEAD_SLAB_BYTES >> 2);
let headUsed = 0;

function newSlab(): void {
  headSlab = Buffer.allocUnsafeSlow(HEAD_SLAB_BYTES);
  headInts = new Int32Array(headSlab.buffer, headSlab.byteOffset, HEAD_SLAB_BYTES >> 2);
  headUsed = 0;
}

/** The Fields of an accepted head h: its `count` fields' offsets, parsed into fieldTable, copied into the slab. */
function keepFields(h: Buffer, count: number): Fields {
  const n = 4 * count;
  if (4 * n >= HEAD_OWN_MIN) return new Fields(h, fieldTable.slice(0, n), 0, count);
  let at = (headUsed + 3) & ~3;
  if (at + 4 * n > HEAD_SLAB_BYTES) {
    newSlab();
    at = 0;
  }
  const ints = headInts;
  const base = at >> 2;
  for (let k = 0; k < n; k++) ints[base + k] = fieldTable[k];
  headUsed = at + 4 * n;
  return new Fields(h, ints, base, count);
}

/**
 * Copies the head b[s, e) into the byte slab (a new slab when the current one cannot take it) and returns its offset
 * there; -1 for a head of HEAD_OWN_MIN bytes or more, which the caller copies into a buffer of its own.
 */
function slabCopy(b: Uint8Array, s: number, e: number): number {
  const n = e - s;
  if (n >= HEAD_OWN_MIN) return -1;
  if (headUsed + n > HEAD_SLAB_BYTES) newSlab();
  const at = headUsed;
  const slab = headSlab;
  if (n <= 128) for (let j = 0; j < n; j++) slab[at + j] = b[s + j];
  else slab.set(b.subarray(s, e), at);
  headUsed = at + n;
  return at;
}

export class RequestParser {
  private state = S_HEAD;
  // header / trailer block scanner
  private acc: Buffer | null = null;
  private accLen = 0;
  private sawCR = false;
  private lineBytes = 0;
  private lines = 0;
  private leadingEmpty = 0;
  // body
  private remaining = 0;
  private bodyBytes = 0;
  private chunkSize = 0;
  private chunkDigits = 0;
  private extBytes = 0;
  private extState = X_SEMI;
  private pauseRequested = false;

  constructor(private readonly limits: ParserLimits, private readonly ev: ParserEvents) {}

  /** No bytes of an unfinished request are held (between messages). */
  get idle(): boolean {
    return this.state === S_HEAD && this.accLen === 0 && !this.sawCR && this.lineBytes === 0 && this.lines === 0;
  }
  /** Reading a head that has started arriving. */
  get inHead(): boolean {
    return this.state === S_HEAD && !this.idle;
  }
  /** Reading a request body (or its trailers). */
  get inBody(): boolean {
    return this.state !== S_HEAD && this.state !== S_DEAD;
  }
  get dead(): boolean {
    return this.state === S_DEAD;
  }

  /** Stop at the next message boundary: `execute` then returns how much it consumed. */
  pause(): void {
    this.pauseRequested = true;
  }
  resume(): void {
    this.pauseRequested = false;
  }
  get paused(): boolean {
    return this.pauseRequested;
  }

  /** Stop for good (the connection is closing). */
  kill(): void {
    this.state = S_DEAD;
    this.acc = null;
    this.accLen = 0;
  }

  /**
   * Parse `buf[off, off+len)`. Returns the number of bytes consumed: all of them, unless the parser was paused
   * and reached a message boundary (the caller keeps the rest and feeds it again after `resume`). After an error
   * everything is reported consumed.
   */
  execute(buf: Uint8Array, off: number, len: number): number {
    const end = off + len;
    let p = off;
    while (p < end) {
      switch (this.state) {
        case S_HEAD:
        case S_TRAILER: {
          if (this.pauseRequested && this.state === S_HEAD && this.idle) return p - off;
          const r = this.scanBlock(buf, p, end);
          if (r < 0) return len;
          p = r;
          break;
        }
        case S_FIXED: {
          const n = Math.min(this.remaining, end - p);
          this.remaining -= n;
          this.ev.onBody(buf, p, n);
          p += n;
          if (this.remaining === 0 && this.state === S_FIXED) this.complete(null);
          break;
        }
        case S_CHUNK_SIZE: {
          const c = buf[p++];
          let d = -1;
          if (c >= 0x30 && c <= 0x39) d = c - 0x30;
          else if (c >= 0x61 && c <= 0x66) d = c - 0x57;
          else if (c >= 0x41 && c <= 0x46) d = c - 0x37;
          if (d >= 0) {
            // chunk-size = 1*HEXDIG: the value is bounded, not the digits (leading zeros are fine), but the line is
            if (++this.chunkDigits > MAX_CHUNK_SIZE_DIGITS) return this.fail(400, 'chunk size line too long'), len;
            this.chunkSize = this.chunkSize * 16 + d;
            if (this.chunkSize > MAX_CHUNK_SIZE) return this.fail(413, 'chunk size too large'), len;
          } else if (this.chunkDigits === 0) {
            return this.fail(400, 'invalid chunk size'), len;
          } else if (c === CR) {
            this.state = S_CHUNK_SIZE_LF;
          } else if (c === SEMI || c === SP || c === HT) {
            this.state = S_CHUNK_EXT;
            this.extState = c === SEMI ? X_NAME_START : X_SEMI;
            this.extBytes = 0;
          } else {
            return this.fail(400, 'invalid chunk size'), len;
          }
          break;
        }
        case S_CHUNK_EXT: {
          const c = buf[p++];
          const x = nextExtState(this.extState, c);
          if (x === X_END) this.state = S_CHUNK_SIZE_LF;
          else if (x === X_BAD) return this.fail(400, 'invalid chunk extension'), len;
          else if (++this.extBytes > MAX_CHUNK_EXT) return this.fail(400, 'chunk extension too long'), len;
          else this.extState = x;
          break;
        }
        case S_CHUNK_SIZE_LF: {
          if (buf[p++] !== LF) return this.fail(400, 'bare CR in chunk size line'), len;
          if (this.chunkSize === 0) {
            this.state = S_TRAILER;
          } else {
            if (this.bodyBytes + this.chunkSize > this.limits.maxBodySize) return this.fail(413, 'body too large'), len;
            this.bodyBytes += this.chunkSize;
            this.remaining = this.chunkSize;
            this.state = S_CHUNK_DATA;
          }
          break;
        }
        case S_CHUNK_DATA: {
          const n = Math.min(this.remaining, end - p);
          this.remaining -= n;
          this.ev.onBody(buf, p, n);
          p += n;
          if (this.remaining === 0 && this.state === S_CHUNK_DATA) this.state = S_CHUNK_DATA_CR;
          break;
        }
        case S_CHUNK_DATA_CR:
          if (buf[p++] !== CR) return this.fail(400, 'chunk data not followed by CRLF'), len;
          this.state = S_CHUNK_DATA_LF;
          break;
        case S_CHUNK_DATA_LF:
          if (buf[p++] !== LF) return this.fail(400, 'chunk data not followed by CRLF'), len;
          this.state = S_CHUNK_SIZE;
          this.chunkSize = 0;
          this.chunkDigits = 0;
          break;
        default:
          return len;
      }
    }
    return len;
  }

  private fail(status: number, reason: string): number {
    this.kill();
    this.ev.onError(status, reason);
    return -1;
  }

  private complete(trailers: Fields | null): void {
    this.state = S_HEAD;
    this.ev.onComplete(trailers);
  }

  private append(buf: Uint8Array, s: number, e: number): void {
    const n = e - s;
    if (n === 0) return;
    const need = this.accLen + n;
    if (this.acc === null || this.acc.length < need) {
      let cap = this.acc === null ? 1024 : this.acc.length * 2;
      while (cap < need) cap *= 2;
      const grown = Buffer.allocUnsafe(cap);
      if (this.acc !== null) this.acc.copy(grown, 0, 0, this.accLen);
      this.acc = grown;
    }
    this.acc.set(buf.subarray(s, e), this.accLen);
    this.accLen = need;
  }

  /**
   * Scan a header (S_HEAD) or trailer (S_TRAILER) block. Returns the offset after the block when one was
   * completed and processed, -1 when the input ran out (bytes kept) or on error.
   */
  private scanBlock(buf: Uint8Array, p: number, end: number): number {
    const trailer = this.state === S_TRAILER;
    const maxBlock = trailer ? this.limits.maxTrailerSize : this.limits.maxHeaderSize;
    const maxLine0 = trailer ? maxBlock : this.limits.maxUriLength + 64;
    if (!trailer && this.accLen === 0 && this.lines === 0 && this.lineBytes === 0 && !this.sawCR) {
      // Fast path, the common case: a whole head in this input, nothing held from before. cleanHeadEnd takes it only
      // when the state machine below would reach the same block with no fault on the way — every CR followed by LF,
      // every LF after a CR, within maxBlock, the request line within its limit — so both give the same verdict on the
      // same bytes however they are split. Anything else (a head not complete here, empty lines first, a stray CR or
      // LF, a limit exceeded) takes the state machine, which gives each its exact status.
      const c0 = buf[p];
      if (c0 !== CR && c0 !== LF) {
        const e = cleanHeadEnd(buf, p, Math.min(end, p + maxBlock), maxLine0);
        if (e > 0) {
          this.leadingEmpty = 0;
          const at = slabCopy(buf, p, e);
          if (at >= 0) this.finishHead(headSlab, at, at + e - p);
          else this.finishHead(copyBlock(buf, p, e), 0, e - p);
          return this.state === S_DEAD ? -1 : e;
        }
      }
    }
    let start = p;
    let sawCR = this.sawCR;
    let lineBytes = this.lineBytes;
    let lines = this.lines;
    for (let i = p; i < end; i++) {
      const c = buf[i];
      if (sawCR) {
        if (c !== LF) return this.fail(400, 'bare CR');
        sawCR = false;
        if (lineBytes !== 0) {
          lines++;
          lineBytes = 0;
          continue;
        }
        if (lines === 0 && !trailer) {
          // empty line(s) before a request line are ignored (RFC 9112 §2.2)
          if (++this.leadingEmpty > MAX_LEADING_EMPTY_LINES) return this.fail(400, 'empty lines before request');
          start = i + 1;
          this.accLen = 0;
          continue;
        }
        // end of the block
        const blockEnd = i + 1;
        this.sawCR = false;
        this.lineBytes = 0;
        this.lines = 0;
        this.leadingEmpty = 0;
        let block: Buffer;
        let n: number;
        if (this.accLen === 0) {
          n = blockEnd - start;
          const at = trailer ? -1 : slabCopy(buf, start, blockEnd);
          if (at >= 0) {
            this.finishHead(headSlab, at, at + n);
            return this.state === S_DEAD ? -1 : blockEnd;
          }
          block = copyBlock(buf, start, blockEnd);
        } else {
          this.append(buf, start, blockEnd);
          block = this.acc!;
          n = this.accLen;
          this.acc = null;
          this.accLen = 0;
        }
        if (trailer) this.finishTrailers(block, n);
        else this.finishHead(block, 0, n);
        return this.state === S_DEAD ? -1 : blockEnd;
      }
      if (c === CR) {
        sawCR = true;
        continue;
      }
      if (c === LF) return this.fail(400, 'bare LF');
      lineBytes++;
      const size = this.accLen + (i - start) + 1;
      if (lines === 0 && !trailer) {
        if (lineBytes > maxLine0) return this.fail(414, 'request line too long');
        if (size > maxBlock) return this.fail(431, 'request header too large');
      } else if (size > maxBlock) {
        return this.fail(431, trailer ? 'trailer section too large' : 'request header too large');
      }
    }
    this.sawCR = sawCR;
    this.lineBytes = lineBytes;
    this.lines = lines;
    this.append(buf, start, end);
    return -1;
  }

  /**
   * Parse field lines of the block h from i up to its final CRLF, which ends at `n`, into fieldTable (grown to hold
   * maxHeaders fields); returns the count, -1 after a failure. The scanners deliver only blocks whose CRs are all
   * followed by LF; a CR starting a line anywhere but at the block's end is still refused here (a block cut short there
   * would hide the fields after it).
   */
  private parseFields(h: Buffer, i: number, n: number): number {
    const max = this.limits.maxHeaders;
    if (fieldTable.length < 4 * max) fieldTable = new Int32Array(4 * max);
    const t = fieldTable;
    let count = 0;
    for (;;) {
      let c = h[i];
      if (c === CR) return i === n - 2 && h[i + 1] === LF ? count : this.fail(400, 'bare CR');
      if (c === SP || c === HT) return this.fail(400, 'obsolete line folding or whitespace before field name');
      const ns = i;
      while (TCHAR[h[i]] === 1) i++;
      if (i === ns || h[i] !== COLON) return this.fail(400, 'invalid field name');
      const ne = i++;
      while (h[i] === SP || h[i] === HT) i++;
      const vs = i;
      let ve = i;
      for (;;) {
        c = h[i];
        if (c === CR) break;
        if ((c < SP && c !== HT) || c === 0x7f) return this.fail(400, 'invalid character in field value');
        i++;
        if (c !== SP && c !== HT) ve = i;
      }
      if (h[i + 1] !== LF) return this.fail(400, 'bare CR');
      i += 2;
      if (count === max) return this.fail(431, 'too many header fields');
      const k = 4 * count++;
      t[k] = ns;
      t[k + 1] = ne;
      t[k + 2] = vs;
      t[k + 3] = ve;
    }
  }

  private finishTrailers(h: Buffer, n: number): void {
    let trailers: Fields | null = null;
    if (n > 2) {
      const count = this.parseFields(h, 0, n);
      if (count < 0) return;
      trailers = new Fields(h, fieldTable.slice(0, 4 * count), 0, count);
    }
    this.complete(trailers);
  }

  /** The head h[start, n) is complete: check it, parse its fields, report it (onHead). h is never written again. */
  private finishHead(h: Buffer, start: number, n: number): void {
    const limits = this.limits;
    // request-line = method SP request-target SP HTTP-version CRLF
    let i = start;
    while (TCHAR[h[i]] === 1) i++;
    if (i === start || h[i] !== SP) return void this.fail(400, 'malformed request line');
    const methodEnd = i;
    const ts = ++i;
    while (h[i] > SP && h[i] < 0x7f) i++;
    if (i === ts || h[i] !== SP) return void this.fail(400, 'malformed request target');
    const te = i++;
    if (
      n - i < 10 || h[i] !== 0x48 || h[i + 1] !== 0x54 || h[i + 2] !== 0x54 || h[i + 3] !== 0x50 ||
      h[i + 4] !== 0x2f || h[i + 5] < 0x30 || h[i + 5] > 0x39 || h[i + 6] !== 0x2e ||
      h[i + 7] < 0x30 || h[i + 7] > 0x39 || h[i + 8] !== CR || h[i + 9] !== LF
    ) {
      return void this.fail(400, 'malformed HTTP version');
    }
    const major = h[i + 5] - 0x30;
    let minor = h[i + 7] - 0x30;
    i += 10;
    if (major !== 1) return void this.fail(505, 'HTTP version not supported');
    if (minor > 1) minor = 1;
    if (te - ts > limits.maxUriLength) return void this.fail(414, 'request target too long');

    const count = this.parseFields(h, i, n);
    if (count < 0) return;

    // framing and connection fields
    let hosts = 0;
    let badHost = false;
    let clCount = 0;
    let cl = -1;
    let clBad = false;
    let teSeen = false;
    let teElements = 0;
    let sawChunked = false;
    let chunkedNotLast = false;
    let unknownCoding = false;
    let close = false;
    let keepAlive = false;
    let expectContinue = false;
    let badExpect = false;
    const t = fieldTable;
    for (let f = 0; f < count; f++) {
      const k = 4 * f;
      const ns = t[k];
      const nl = t[k + 1] - ns;
      const vs = t[k + 2];
      const ve = t[k + 3];
      switch (nl) {
        case 4:
          if (eqLower(h, ns, L_HOST)) {
            hosts++;
            for (let j = vs; j < ve; j++) if (HOSTCHAR[h[j]] !== 1) { badHost = true; break; }
          }
          break;
        case 6:
          if (eqLower(h, ns, L_EXPECT)) {
            if (ve - vs === L_100_CONTINUE.length && eqLower(h, vs, L_100_CONTINUE)) expectContinue = true;
            else badExpect = true;
          }
          break;
        case 10:
          if (eqLower(h, ns, L_CONNECTION)) {
            let j = vs;
            while (j < ve) {
              while (j < ve && (h[j] === SP || h[j] === HT || h[j] === COMMA)) j++;
              const es = j;
              while (j < ve && h[j] !== COMMA) j++;
              let ee = j;
              while (ee > es && (h[ee - 1] === SP || h[ee - 1] === HT)) ee--;
              if (ee - es === 5 && eqLower(h, es, L_CLOSE)) close = true;
              else if (ee - es === 10 && eqLower(h, es, L_KEEP_ALIVE)) keepAlive = true;
            }
          }
          break;
        case 14:
          if (eqLower(h, ns, L_CONTENT_LENGTH)) {
            clCount++;
            if (ve === vs) clBad = true;
            let v = 0;
            for (let j = vs; j < ve; j++) {
              const c = h[j];
              if (c < 0x30 || c > 0x39) { clBad = true; break; }
              v = v * 10 + (c - 0x30);
            }
            cl = v > Number.MAX_SAFE_INTEGER ? Number.MAX_SAFE_INTEGER : v;
          }
          break;
        case 17:
          if (eqLower(h, ns, L_TRANSFER_ENCODING)) {
            teSeen = true;
            let j = vs;
            while (j < ve) {
              while (j < ve && (h[j] === SP || h[j] === HT || h[j] === COMMA)) j++;
              if (j >= ve) break;
              const es = j;
              while (j < ve && h[j] !== COMMA) j++;
              let ee = j;
              while (ee > es && (h[ee - 1] === SP || h[ee - 1] === HT)) ee--;
              teElements++;
              if (sawChunked) chunkedNotLast = true;
              if (ee - es === 7 && eqLower(h, es, L_CHUNKED)) sawChunked = true;
              else unknownCoding = true;
            }
          }
          break;
      }
    }
    if (hosts > 1) return void this.fail(400, 'several Host fields');
    if (hosts === 0 && minor === 1) return void this.fail(400, 'missing Host');
    if (badHost) return void this.fail(400, 'invalid Host');
    if (clCount > 1) return void this.fail(400, 'several Content-Length fields');
    if (clBad) return void this.fail(400, 'invalid Content-Length');
    if (teSeen) {
      if (clCount > 0) return void this.fail(400, 'Content-Length with Transfer-Encoding');
      if (minor === 0) return void this.fail(400, 'Transfer-Encoding in an HTTP/1.0 request');
      if (teElements === 0 || chunkedNotLast || !sawChunked) return void this.fail(400, 'chunked is not the final transfer coding');
      if (unknownCoding) return void this.fail(501, 'transfer coding not implemented');
    }
    const method = knownMethod(h, start, methodEnd, limits.extraMethods);
    if (method === null) return void this.fail(501, 'method not implemented');
    // request-target forms (RFC 9112 §3.2)
    const t0 = h[ts];
    if (t0 !== 0x2f /* / */) {
      const asterisk = t0 === 0x2a && te - ts === 1;
      if (asterisk ? method !== 'OPTIONS' : !isAbsoluteHttpUri(h, ts, te)) {
        return void this.fail(400, 'invalid request target');
      }
    }
    if (badExpect) return void this.fail(417, 'unsupported expectation');
    if (cl > limits.maxBodySize) return void this.fail(413, 'body too large');

    const fields = keepFields(h, count);
    const chunked = teSeen;
    const head: RequestHead = {
      method,
      target: h.toString('latin1', ts, te),
      minor,
      fields,
      contentLength: cl,
      chunked,
      keepAlive: minor === 1 ? !close : keepAlive && !close,
      expectContinue: expectContinue && minor === 1,
      hasBody: chunked || cl > 0,
    };
    this.bodyBytes = 0;
    if (chunked) {
      this.state = S_CHUNK_SIZE;
      this.chunkSize = 0;
      this.chunkDigits = 0;
    } else if (cl > 0) {
      this.state = S_FIXED;
      this.remaining = cl;
      this.bodyBytes = cl;
    }
    this.ev.onHead(head);
    if (!head.hasBody && this.state === S_HEAD) this.ev.onComplete(null);
  }
}

/** A copy of b[s, e): a head or trailer block outlives the receive buffer it arrived in. */
function copyBlock(b: Uint8Array, s: number, e: number): Buffer {
  const block = Buffer.allocUnsafe(e - s);
  block.set(b.subarray(s, e));
  return block;
}

/**
 * The offset just past the first empty line (CR LF CR LF) in b[p, lim) when every CR before it is followed by LF,
 * every LF follows a CR and the first line has at most maxLine bytes; -1 otherwise (the block does not end within lim,
 * or breaks a rule: the state machine then finds the fault). b[p] must not be CR or LF. One pass over the block: it
 * must see every byte anyway, since any may be a stray LF.
 */
function cleanHeadEnd(b: Uint8Array, p: number, lim: number, maxLine: number): number {
  let lineStart = p;
  for (let i = p; i < lim; i++) {
    const c = b[i];
    if (c === CR) {
      if (i + 1 >= lim || b[i + 1] !== LF) return -1;
      if (i === lineStart) return i + 2;
      if (lineStart === p && i - p > maxLine) return -1;
      lineStart = ++i + 1;
    } else if (c === LF) {
      return -1;
    }
  }
  return -1;
}

/** absolute-form "http://authority/..." or "https://..." (scheme case-insensitive) */
const L_HTTP = lit('http://');
const L_HTTPS = lit('https://');
function isAbsoluteHttpUri(h: Uint8Array, s: number, e: number): boolean {
  const pre = e - s > 8 && eqLower(h, s, L_HTTPS) ? 8 : e - s > 7 && eqLower(h, s, L_HTTP) ? 7 : 0;
  if (pre === 0) return false;
  const a = s + pre;
  return a < e && h[a] !== 0x2f; // a non-empty authority
}
