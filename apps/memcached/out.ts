// A connection's output: a growable buffer of protocol bytes that replies are gathered in before one `conn.write`.
// Owned by its session; `buf[0, pos)` is what is gathered, valid until the next append (which may reallocate).

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
  crlf(): void { this.ensure(2); this.buf[this.pos++] = 13; this.buf[this.pos++] = 10; }
  byte(c: number): void { this.ensure(1); this.buf[this.pos++] = c; }
  bytes(src: Uint8Array, off: number, len: number): void {
    this.ensure(len);
    // a loop up to 32 B, a native copy above (where the loop starts losing: bench/scripts/copy-bench.mjs)
    if (len <= 32) { const b = this.buf; let p = this.pos; for (let i = 0; i < len; i++) b[p++] = src[off + i]; this.pos = p; }
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
