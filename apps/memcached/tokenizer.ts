// The text protocol's tokenizer: a command line split into tokens in place (memcached's tokenize_command), the
// command's key, and memcached's number parsing (safe_strtol & co., with their truncations). No strings are made
// on the request path except for rare big numbers.
//
// Tokens are offsets into the buffer the line was read from (the receive buffer or the session's line buffer):
// valid until the session's next read, when `release()` drops the view.

import { KEY_MAX_LENGTH, type U64 } from './store.js';

/** At most 23 tokens and the rest of the line (memcached's MAX_TOKENS). */
const MAX_TOKENS = 24;

/** One command line's tokens and key, reused for every line of a connection. */
export class Tokens {
  /** The buffer the tokens index into. */
  buf: Uint8Array;
  /** Token i is buf[start[i], end[i]); the last token is the terminal one: the rest of the line (start -1: none). */
  readonly start = new Int32Array(MAX_TOKENS);
  readonly end = new Int32Array(MAX_TOKENS);
  /** Tokens on the line, the terminal token included (memcached's ntokens). */
  count = 0;
  /** End of the line's content in `buf` (CR, LF and anything after a NUL excluded). */
  lineEnd = 0;
  /** The command's key: key[keyStart, keyStart + keyLength), a token or a decoded key in `keyScratch`. */
  key: Uint8Array;
  keyStart = 0;
  keyLength = 0;
  /** Room for a key decoded from base64 (meta's b flag). */
  readonly keyScratch = new Uint8Array(KEY_MAX_LENGTH + 4);

  constructor() {
    this.buf = this.key = this.keyScratch;
  }

  /** memcached's tokenize_command over buf[s, e): split on spaces, at most 23 tokens + the rest. */
  tokenize(b: Uint8Array, s: number, e: number): void {
    this.buf = b;
    let n = 0;
    let st = s;
    let i = s;
    let rest = -1;
    for (; i < e; i++) {
      if (b[i] === 32) {
        if (st !== i) {
          this.start[n] = st; this.end[n] = i; n++;
          if (n === MAX_TOKENS - 1) { i++; st = i; rest = i < e ? i : -1; break; }
        }
        st = i + 1;
      }
    }
    if (rest === -1 && st < e && n < MAX_TOKENS - 1) { this.start[n] = st; this.end[n] = e; n++; }
    // terminal token: value = rest of the line (or none), length 0
    this.start[n] = rest; this.end[n] = rest;
    this.count = n + 1;
    this.lineEnd = e;
  }

  /** Drops the views of the line's buffer (between reads, so a receive buffer is not kept alive). */
  release(): void { this.buf = this.key = this.keyScratch; }

  /** Token i equals the ASCII literal. */
  is(i: number, lit: string): boolean { return eqAscii(this.buf, this.start[i], this.end[i], lit); }
  length(i: number): number { return this.end[i] - this.start[i]; }
  /** Token i as memcached's safe_strtol (a C long truncated to int32); null when invalid. */
  int32(i: number): number | null { return strtol32(this.buf, this.start[i], this.end[i]); }
  /** Token i as memcached's safe_strtoul (truncated to uint32); null when invalid. */
  uint32(i: number): number | null { return strtoul32(this.buf, this.start[i], this.end[i]); }
  /** Token i as memcached's safe_strtoull; null when invalid. */
  uint64(i: number): U64 | null { return strtoull(this.buf, this.start[i], this.end[i]); }
  /** Token i is the command's key. */
  setKey(i: number): void { this.key = this.buf; this.keyStart = this.start[i]; this.keyLength = this.end[i] - this.start[i]; }
  /** The command's key is the first `length` bytes of keyScratch. */
  setDecodedKey(length: number): void { this.key = this.keyScratch; this.keyStart = 0; this.keyLength = length; }
}

/** Compare bytes b[s, e) with an ASCII literal. */
export function eqAscii(b: Uint8Array, s: number, e: number, lit: string): boolean {
  if (e - s !== lit.length) return false;
  for (let i = 0; i < lit.length; i++) if (b[s + i] !== lit.charCodeAt(i)) return false;
  return true;
}

function isSpace(c: number): boolean { return c === 32 || (c >= 9 && c <= 13); }

// Result registers of the number parsers (no allocation per call).
let pOk = false;
let pNeg = false;
let pMag = 0; // magnitude when it fits in 2^53
let pBig: bigint | null = null; // magnitude otherwise
let pRange = false; // beyond the type's range (ERANGE)

/**
 * Parse like C's strtol/strtoul family on a token [s, e): leading white space, sign, digits; the character after the
 * digits must be white space or the end of the token (memcached's safe_strto* rule). `limit` is the magnitude bound
 * of the C type (2^63 for long, 2^64 − 1 for unsigned long).
 */
function scan(b: Uint8Array, s: number, e: number, limit: bigint): void {
  pOk = false; pNeg = false; pMag = 0; pBig = null; pRange = false;
  let i = s;
  while (i < e && isSpace(b[i])) i++;
  if (i < e && (b[i] === 43 || b[i] === 45)) { pNeg = b[i] === 45; i++; }
  const ds = i;
  let n = 0;
  while (i < e && b[i] >= 48 && b[i] <= 57 && n < 1e14) { n = n * 10 + (b[i] - 48); i++; }
  if (i < e && b[i] >= 48 && b[i] <= 57) {
    let big = BigInt(n);
    while (i < e && b[i] >= 48 && b[i] <= 57) { if (big <= limit) big = big * 10n + BigInt(b[i] - 48); i++; }
    pBig = big;
    if (big > limit) pRange = true;
  } else pMag = n;
  if (i === ds) return; // no digits (str == endptr)
  if (i < e && !isSpace(b[i])) return;
  pOk = true;
}

/** memcached's safe_strtol: a C long (64-bit) truncated to int32. Returns null when invalid. */
export function strtol32(b: Uint8Array, s: number, e: number): number | null {
  scan(b, s, e, 1n << 63n);
  if (!pOk) return null;
  if (pBig !== null) {
    if (pNeg ? pBig > 1n << 63n : pBig > (1n << 63n) - 1n) return null; // ERANGE
    return Number(BigInt.asIntN(32, pNeg ? -pBig : pBig));
  }
  return (pNeg ? -pMag : pMag) | 0;
}

/** memcached's safe_strtoul: a C unsigned long (64-bit) truncated to uint32. */
export function strtoul32(b: Uint8Array, s: number, e: number): number | null {
  const v = strtoull(b, s, e);
  if (v === null) return null;
  return typeof v === 'number' ? v % 0x1_0000_0000 : Number(v & 0xffffffffn);
}

/** memcached's safe_strtoull: an unsigned 64-bit value. */
export function strtoull(b: Uint8Array, s: number, e: number): U64 | null {
  scan(b, s, e, (1n << 64n) - 1n);
  if (!pOk || pRange) return null;
  if (!pNeg) return pBig !== null ? norm(pBig) : pMag;
  // strtoull negates modulo 2^64; memcached rejects values that then look negative as signed 64-bit
  const mag = pBig !== null ? pBig : BigInt(pMag);
  const r = ((1n << 64n) - mag) % (1n << 64n);
  if (r >= 1n << 63n) return null;
  return norm(r);
}

function norm(b: bigint): U64 { return b <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(b) : b; }
