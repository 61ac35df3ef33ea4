// Base64 as memcached's meta commands use it for binary keys (the b flag): decoded into a key buffer, encoded into
// a reply.

import type { Out } from './out.js';

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
