// The soak's memory criterion, as a pure function of the samples (test/soak.test.ts also runs it on synthetic series).
//
// "Flat after warm-up": the run's first `warmupFrac` is warm-up (pools, caches, slab pages, JIT fill up to their
// working size). Everything after it is the trend window, and each series (RSS; the V8 heap of all threads after a
// full GC) must pass:
// - slope: the least-squares slope over the trend window is at most `slopeMaxMiBPerMin`. A leak is a steady climb;
//   under load RSS also makes excursions of tens of MiB lasting minutes (transient buffers in per-thread malloc
//   arenas: megapipe-http's RSS wanders ±30 MiB), which bias a short fit — hence the whole window, not its last half;
// - end growth: the end value is within `endGrowthMaxPct` % (or `endGrowthMinMiB` MiB, whichever is larger) of the
//   post-warm-up value — each the median of a window of 10% of the run (at least 3 samples), so one noisy sample
//   decides nothing — catches growth the slope smooths over (steps);
// - idle (when given): once the load is over and every connection closed, the value is within the same allowance of
//   the post-warm-up value. Memory held for work in flight is let go when the connections close; leaked memory is
//   not — the check a noisy series under load cannot blur;
// - per connection (when `perConnMaxBytes` is set): the least-squares slope over the trend window against the
//   connections the server accepted, in bytes per connection. It does not depend on how fast the machine is (a slow
//   run leaks fewer MiB per minute, the same bytes per connection), which is what lets a 60-second run on a loaded
//   machine still catch a leak.

export interface MemoryLimits {
  warmupFrac: number;
  slopeMaxMiBPerMin: number;
  endGrowthMaxPct: number;
  /** An absolute allowance: on a small heap a few MiB of noise is a large percentage. */
  endGrowthMinMiB: number;
  /** Growth allowed per accepted connection over the trend window, bytes (undefined: reported, not judged). */
  perConnMaxBytes?: number;
}

export interface TrendResult {
  /** Values in bytes; slope in MiB per minute. */
  start: number;
  postWarmup: number;
  end: number;
  slopeMiBPerMin: number;
  endGrowthPct: number;
  /** After the load, every connection closed (NaN: not given). */
  idle: number;
  /** Bytes per accepted connection over the trend window (NaN without `work`). */
  perConnBytes: number;
  samples: number;
  ok: boolean;
  why: string;
}

const MIB = 1024 * 1024;

/** Least-squares slope of ys over xs (0 when fewer than 2 distinct x). */
export function slope(xs: readonly number[], ys: readonly number[]): number {
  const n = xs.length;
  if (n < 2) return 0;
  let mx = 0, my = 0;
  for (let i = 0; i < n; i++) { mx += xs[i]!; my += ys[i]!; }
  mx /= n; my /= n;
  let sxy = 0, sxx = 0;
  for (let i = 0; i < n; i++) { const dx = xs[i]! - mx; sxy += dx * (ys[i]! - my); sxx += dx * dx; }
  return sxx === 0 ? 0 : sxy / sxx;
}

function median(v: readonly number[]): number {
  const s = [...v].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

/**
 * Judges one series: `t` in ms from the start of the load, `v` in bytes, `durationMs` the load's length (samples
 * after it are not part of the trend); `work`: connections accepted by each sample; `idle`: the value after the load.
 */
export function memoryTrend(t: readonly number[], v: readonly number[], durationMs: number, lim: MemoryLimits, work?: readonly number[], idle = NaN): TrendResult {
  const idx = t.map((_, i) => i).filter((i) => t[i]! <= durationMs);
  const warm = lim.warmupFrac * durationMs;
  const after = idx.filter((i) => t[i]! >= warm);
  const start = idx.length ? v[idx[0]!]! : NaN;
  const window = Math.max(3, Math.round(after.length * 0.1 / (1 - lim.warmupFrac)));
  const postWarmup = median(after.slice(0, window).map((i) => v[i]!));
  const end = median(after.slice(-window).map((i) => v[i]!));
  const slopeMiBPerMin = slope(after.map((i) => t[i]! / 60_000), after.map((i) => v[i]! / MIB));
  const endGrowthPct = ((end - postWarmup) / postWarmup) * 100;
  const perConnBytes = work ? slope(after.map((i) => work[i]!), after.map((i) => v[i]!)) : NaN;
  const fails: string[] = [];
  const mib = (b: number) => (b / MIB).toFixed(1);
  if (after.length < 6) fails.push(`too few samples after warm-up (${after.length})`);
  if (slopeMiBPerMin > lim.slopeMaxMiBPerMin) fails.push(`slope ${slopeMiBPerMin.toFixed(2)} MiB/min after warm-up > ${lim.slopeMaxMiBPerMin}`);
  const allowed = Math.max(postWarmup * lim.endGrowthMaxPct / 100, lim.endGrowthMinMiB * MIB);
  if (end - postWarmup > allowed) fails.push(`end ${mib(end)} MiB is ${mib(end - postWarmup)} MiB (${endGrowthPct.toFixed(1)}%) above post-warm-up ${mib(postWarmup)} MiB (allowed ${mib(allowed)} MiB)`);
  if (idle - postWarmup > allowed) fails.push(`idle after the load ${mib(idle)} MiB is ${mib(idle - postWarmup)} MiB above post-warm-up ${mib(postWarmup)} MiB (allowed ${mib(allowed)} MiB)`);
  if (lim.perConnMaxBytes !== undefined && work && perConnBytes > lim.perConnMaxBytes) fails.push(`${perConnBytes.toFixed(0)} bytes per accepted connection after warm-up > ${lim.perConnMaxBytes}`);
  return { start, postWarmup, end, slopeMiBPerMin, endGrowthPct, idle, perConnBytes, samples: idx.length, ok: fails.length === 0, why: fails.join('; ') };
}
