// Byte-level helpers for the text protocol: an output buffer, memcached's number parsing (strtol & co. with
// its quirks), base64 for meta keys. No strings are made on the request path except for rare big numbers.

import type { U64 } from './store.js';

/** Growable output buffer of protocol bytes. */
export class Out {
  buf: Uint8Array;
  pos = 0;
  constructor(size = 16384) { this.buf = new Uint8Array(size); }
  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const b = new Uint8Array(size);
    b.set(this.buf.subarray(0, this.pos));
    this.buf = b;
  }
  /** ASCII / Latin-1 text. */
  str(s: string): void {
    const n = s.length;
    this.ensure(n);
    const b = this.buf;
    let p = this.pos;
    for (let i = 0; i < n; i++) b[p++] = s.charCodeAt(i);
    this.pos = p;
  }
  line(s: string): void { this.str(s); this.crlf(); }
  crlf(): void { this.ensure(2); this.buf[this.pos++] = 13; this.buf[this.pos++] = 10; }
  byte(c: number): void { this.ensure(1); this.buf[this.pos++] = c; }
  bytes(src: Uint8Array, off: number, len: number): void {
    this.ensure(len);
    if (len < 64) { const b = this.buf; let p = this.pos; for (let i = 0; i < len; i++) b[p++] = src[off + i]; this.pos = p; }
    else { this.buf.set(src.subarray(off, off + len), this.pos); this.pos += len; }
  }
  /** Non-negative integer (or bigint) in decimal. */
  num(n: U64): void {
    if (typeof n === 'bigint' || n >= 1e15) { this.str(String(n)); return; }
    if (n < 10) { this.byte(48 + n); return; }
    this.ensure(16);
    let digits = 1;
    for (let t = n; t >= 10; t = Math.floor(t / 10)) digits++;
    const b = this.buf;
    let p = this.pos + digits;
    this.pos = p;
    do { b[--p] = 48 + (n % 10); n = Math.floor(n / 10); } while (n > 0);
  }
  /** Signed 32-bit-ish integer. */
  int(n: number): void { if (n < 0) { this.byte(45); this.num(-n); } else this.num(n); }
  reset(): void { this.pos = 0; }
}

export function isSpace(c: number): boolean { return c === 32 || (c >= 9 && c <= 13); }

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

// ---- base64 (meta 'b' keys) ----
const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const B64DEC = new Int16Array(256).fill(-1);
for (let i = 0; i < 64; i++) B64DEC[B64.charCodeAt(i)] = i;

/** Decode base64 [s, e) into dst at 0; returns the decoded length, 0 when invalid (as memcached's base64_decode). */
export function base64Decode(b: Uint8Array, s: number, e: number, dst: Uint8Array): number {
  const len = e - s;
  if (len === 0 || len % 4 !== 0) return 0;
  let o = 0;
  for (let i = s; i < e; i += 4) {
    const c0 = B64DEC[b[i]], c1 = B64DEC[b[i + 1]];
    const last = i + 4 === e;
    const p2 = b[i + 2] === 61, p3 = b[i + 3] === 61;
    if (c0 < 0 || c1 < 0) return 0;
    if ((p2 || p3) && !last) return 0;
    if (p2 && !p3) return 0;
    const c2 = p2 ? 0 : B64DEC[b[i + 2]], c3 = p3 ? 0 : B64DEC[b[i + 3]];
    if (c2 < 0 || c3 < 0) return 0;
    const v = (c0 << 18) | (c1 << 12) | (c2 << 6) | c3;
    dst[o++] = (v >> 16) & 0xff;
    if (!p2) dst[o++] = (v >> 8) & 0xff;
    if (!p3) dst[o++] = v & 0xff;
  }
  return o;
}

/** Append base64 of src[s, e) to out. */
export function base64Encode(src: Uint8Array, s: number, e: number, out: Out): void {
  out.ensure(((e - s + 2) / 3) * 4 + 4);
  const b = out.buf;
  let p = out.pos;
  let i = s;
  for (; i + 2 < e; i += 3) {
    const v = (src[i] << 16) | (src[i + 1] << 8) | src[i + 2];
    b[p++] = B64.charCodeAt(v >> 18); b[p++] = B64.charCodeAt((v >> 12) & 63);
    b[p++] = B64.charCodeAt((v >> 6) & 63); b[p++] = B64.charCodeAt(v & 63);
  }
  if (i < e) {
    const v = (src[i] << 16) | (i + 1 < e ? src[i + 1] << 8 : 0);
    b[p++] = B64.charCodeAt(v >> 18); b[p++] = B64.charCodeAt((v >> 12) & 63);
    b[p++] = i + 1 < e ? B64.charCodeAt((v >> 6) & 63) : 61;
    b[p++] = 61;
  }
  out.pos = p;
}

/** Compare token bytes with an ASCII literal. */
export function eqAscii(b: Uint8Array, s: number, e: number, lit: string): boolean {
  if (e - s !== lit.length) return false;
  for (let i = 0; i < lit.length; i++) if (b[s + i] !== lit.charCodeAt(i)) return false;
  return true;
}
