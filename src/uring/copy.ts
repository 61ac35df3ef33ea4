// Byte copies without allocating views: the receive stash and the send queue copy small runs often.

/** A copy of src[off, off + len) in a Buffer of its own. */
export function copyOf(src: Uint8Array, off: number, len: number): Uint8Array {
  const b = Buffer.allocUnsafe(len);
  copyInto(b, 0, src, off, len);
  return b;
}

/** memmove without allocating a view: Buffer.copy for Buffers; a loop for small plain Uint8Arrays. */
export function copyInto(dst: Buffer, at: number, src: Uint8Array, off: number, len: number): void {
  if (len <= 256) { for (let i = 0; i < len; i++) dst[at + i] = src[off + i]!; return; }
  if (Buffer.isBuffer(src)) { src.copy(dst, at, off, off + len); return; }
  dst.set(src.subarray(off, off + len), at);
}
