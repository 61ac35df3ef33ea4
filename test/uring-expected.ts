// Whether this machine must run the io_uring backend. On Linux ≥ 6.0 with io_uring enabled (kernel.io_uring_disabled
// is 0, or 1 for root) and no seccomp filter on this process, it must: a missing or broken addon is then a failure of
// the run, not a reason to skip the io_uring suites. MEGAPIPE_EXPECT_URING=0 declares a run meant without it (the
// portable-only suite, a build without the addon); MEGAPIPE_EXPECT_URING=1 demands it anywhere.
import { readFileSync } from 'node:fs';
import { release } from 'node:os';

function read(file: string): string | null {
  try { return readFileSync(file, 'latin1'); } catch { return null; }
}

/** Why io_uring is expected here (a string), or false with the reason it is not. */
export function uringExpectation(): { expected: boolean; why: string } {
  const env = process.env.MEGAPIPE_EXPECT_URING;
  if (env === '0') return { expected: false, why: 'MEGAPIPE_EXPECT_URING=0' };
  if (env === '1') return { expected: true, why: 'MEGAPIPE_EXPECT_URING=1' };
  if (process.platform !== 'linux') return { expected: false, why: `platform ${process.platform}` };
  const [major, minor] = release().split('.').map((x) => Number.parseInt(x, 10)) as [number, number];
  if (!(major > 6 || (major === 6 && minor >= 0))) return { expected: false, why: `Linux ${release()} (< 6.0)` };
  const disabled = read('/proc/sys/kernel/io_uring_disabled');
  if (disabled !== null && (disabled.trim() === '2' || (disabled.trim() === '1' && process.getuid?.() !== 0))) return { expected: false, why: `kernel.io_uring_disabled = ${disabled.trim()}` };
  const seccomp = /^Seccomp:\s*(\d)/m.exec(read('/proc/self/status') ?? '');
  if (seccomp && seccomp[1] !== '0') return { expected: false, why: 'a seccomp filter may refuse io_uring' };
  return { expected: true, why: `Linux ${release()} with io_uring enabled` };
}
