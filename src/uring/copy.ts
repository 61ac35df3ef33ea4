// Byte copies without allocating views: the receive stash and the send queue copy small runs often.

/** A copy of src[off, off + len) in a Buffer of its own. */
export function copyOf(src: Uint8Array, off: number, len: number): Uint8Array {
  const b = Buffer.allocUnsafe(len);
  copyInto(b, 0, src, off, len);
  return b;
}

// Up to this many bytes a JavaScript loop is as fast as a native copy or faster; above it the loop loses ~1.5 ns a
// byte. Node 20's Buffer.copy and TypedArray.set cost ~47–61 ns whatever the length (the view they allocate included);
// the loop ~14 ns at 8 B, ~58 ns at 32 B, ~107 ns at 64 B, ~390 ns at 256 B (`node bench/scripts/copy-bench.mjs`, Xeon
// VM, Node 20.20). It was 256, which cost up to 330 ns per copy of a 33–256 B write.
const LOOP_MAX = 32;

/** dst[at, at + len) = src[off, off + len) (no overlap): a loop for short runs, a native copy for the rest. */
export function copyInto(dst: Buffer, at: number, src: Uint8Array, off: number, len: number): void {
  if (len <= LOOP_MAX) { for (let i = 0; i < len; i++) dst[at + i] = src[off + i]!; return; }
  if (Buffer.isBuffer(src)) { src.copy(dst, at, off, off + len); return; }
  dst.set(src.subarray(off, off + len), at);
}
