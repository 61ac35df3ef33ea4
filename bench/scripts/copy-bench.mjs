// The copy behind every small write (src/uring/copy.ts): a JavaScript byte loop against Node's native copy
// (Buffer.copy / TypedArray.set), per length and source type, each in a process of its own (no shared JIT state).
//   node bench/scripts/copy-bench.mjs            → one line per case: ns per copy (3 million copies, after 300,000)
// Also copyInto itself ("current"), to check its threshold (LOOP_MAX) sits where the two curves cross.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const [mode, lenS, kind] = process.argv.slice(2);
if (mode === undefined) {
  const self = fileURLToPath(import.meta.url);
  for (const k of ['buffer', 'uint8array']) for (const len of [8, 16, 32, 40, 48, 64, 128, 256]) {
    const row = ['loop', 'native', 'current'].map((m) => spawnSync(process.execPath, [self, m, String(len), k], { encoding: 'utf8' }).stdout.trim());
    console.log(`${k.padEnd(10)} ${String(len).padStart(4)} B   loop ${row[0]}   native ${row[1]}   copyInto ${row[2]}  (ns per copy)`);
  }
} else {
  const { copyInto } = await import('../../dist/src/uring/copy.js');
  const len = Number(lenS);
  const dst = Buffer.alloc(1 << 20);
  const src = kind === 'uint8array' ? new Uint8Array(16384) : Buffer.alloc(16384);
  const loop = (d, at, s, off, n) => { for (let i = 0; i < n; i++) d[at + i] = s[off + i]; };
  const native = (d, at, s, off, n) => { if (Buffer.isBuffer(s)) s.copy(d, at, off, off + n); else d.set(s.subarray(off, off + n), at); };
  const f = { loop, native, current: copyInto }[mode];
  for (let w = 0; w < 3e5; w++) f(dst, (w * 512) & 0x7ffff, src, w & 1023, len);
  const N = 3e6, t = process.hrtime.bigint();
  for (let w = 0; w < N; w++) f(dst, (w * 512) & 0x7ffff, src, w & 1023, len);
  process.stdout.write((Number(process.hrtime.bigint() - t) / N).toFixed(1));
}
