// Base64 as memcached's meta commands use it for binary keys (the b flag): decoded into a key buffer, encoded into
// a reply.

import type { Out } from './out.js';

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
/** memcached's decode table: each alphabet byte's value, '=' as 0, every other byte 0x80 (skipped). */
const DTABLE = new Uint8Array(256).fill(0x80);
for (let i = 0; i < 64; i++) DTABLE[B64.charCodeAt(i)] = i;
DTABLE[61] = 0; // '='
const SKIP = 0x80;

/**
 * Decode base64 [s, e) into dst at 0 as memcached 1.6.18's base64_decode does; returns the decoded length, 0 when it
 * fails. memcached's decoder is lenient: bytes outside the alphabet (and '=') are skipped; the bytes it keeps must
 * number a non-zero multiple of 4; they are decoded in blocks of 4 ('=' counts as 0), and the first block holding a
 * '=' ends the decoding, wherever its '=' were (anything after it is ignored): one '=' drops the block's last byte,
 * two its last two, three or four fail. `dst` needs room for 3/4 of the input length.
 */
export function base64Decode(b: Uint8Array, s: number, e: number, dst: Uint8Array): number {
  let count = 0;
  for (let i = s; i < e; i++) if (DTABLE[b[i]] !== SKIP) count++;
  if (count === 0 || count % 4 !== 0) return 0;
  let o = 0, n = 0, pad = 0, b0 = 0, b1 = 0, b2 = 0;
  for (let i = s; i < e; i++) {
    const v = DTABLE[b[i]];
    if (v === SKIP) continue;
    if (b[i] === 61) pad++;
    if (n === 0) b0 = v;
    else if (n === 1) b1 = v;
    else if (n === 2) b2 = v;
    if (++n < 4) continue;
    dst[o++] = ((b0 << 2) | (b1 >> 4)) & 0xff;
    dst[o++] = ((b1 << 4) | (b2 >> 2)) & 0xff;
    dst[o++] = ((b2 << 6) | v) & 0xff;
    n = 0;
    if (pad === 0) continue;
    if (pad === 1) o -= 1;
    else if (pad === 2) o -= 2;
    else return 0; // invalid padding
    break;
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
