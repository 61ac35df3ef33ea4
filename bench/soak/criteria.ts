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
//   its base (`idleAgainst`). For the V8 heap, collected before every sample, the base is the post-warm-up value:
//   what the load held is collected once the connections close, what leaked is not. For RSS it is the load's peak
//   (the highest sample after warm-up): a process's allocator keeps the pages it freed (in megapipe-http's idle
//   process glibc's arenas held 115–122 MiB free and 9 MiB in use — RELIABILITY.md, "Soak"), so RSS after the load
//   stays wherever the load's last seconds left it, anywhere up to its peak; judged against the post-warm-up median
//   it failed on memory the server had released. Against the peak it still fails memory that rises after the load;
//   memory retained by the server is what the second load shows:
// - a second load (when given: its samples, then its idle values): memory the allocator kept is reused by it, so it
//   stays within the same allowance of the same base; memory the server retained is not reused, and what the second
//   load needs comes on top of it;
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
  /** What the idle value and the second load are judged against: the load's peak (default; RSS) or its post-warm-up
   * value (a series collected before each sample: the V8 heap). */
  idleAgainst?: 'peak' | 'post-warm-up';
}

export interface TrendResult {
  /** Values in bytes; slope in MiB per minute. */
  start: number;
  postWarmup: number;
  end: number;
  slopeMiBPerMin: number;
  endGrowthPct: number;
  /** The highest value after warm-up. */
  peak: number;
  /** After the load, every connection closed (NaN: not given). */
  idle: number;
  /** The highest value of the second load and its idle (NaN: none). */
  reloadMax: number;
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
 * after it are not part of the trend); `work`: connections accepted by each sample; `idle`: the value after the load
 * (the highest of the idle samples); `reload`: the values of a second load after that idle, and of its idle.
 */
export function memoryTrend(t: readonly number[], v: readonly number[], durationMs: number, lim: MemoryLimits, work?: readonly number[], idle = NaN, reload: readonly number[] = []): TrendResult {
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
  const peak = after.reduce((m, i) => Math.max(m, v[i]!), -Infinity);
  const reloadMax = reload.length ? Math.max(...reload) : NaN;
  const fails: string[] = [];
  const mib = (b: number) => (b / MIB).toFixed(1);
  if (after.length < 6) fails.push(`too few samples after warm-up (${after.length})`);
  if (slopeMiBPerMin > lim.slopeMaxMiBPerMin) fails.push(`slope ${slopeMiBPerMin.toFixed(2)} MiB/min after warm-up > ${lim.slopeMaxMiBPerMin}`);
  const allowed = Math.max(postWarmup * lim.endGrowthMaxPct / 100, lim.endGrowthMinMiB * MIB);
  if (end - postWarmup > allowed) fails.push(`end ${mib(end)} MiB is ${mib(end - postWarmup)} MiB (${endGrowthPct.toFixed(1)}%) above post-warm-up ${mib(postWarmup)} MiB (allowed ${mib(allowed)} MiB)`);
  const [base, baseName] = lim.idleAgainst === 'post-warm-up' ? [postWarmup, 'post-warm-up'] : [peak, "the load's peak"];
  if (idle - base > allowed) fails.push(`idle after the load ${mib(idle)} MiB is ${mib(idle - base)} MiB above ${baseName} ${mib(base)} MiB (allowed ${mib(allowed)} MiB)`);
  if (reloadMax - base > allowed) fails.push(`a second load took it to ${mib(reloadMax)} MiB, ${mib(reloadMax - base)} MiB above the first load's ${baseName === 'post-warm-up' ? 'post-warm-up value' : 'peak'} ${mib(base)} MiB (allowed ${mib(allowed)} MiB): not reused`);
  if (lim.perConnMaxBytes !== undefined && work && perConnBytes > lim.perConnMaxBytes) fails.push(`${perConnBytes.toFixed(0)} bytes per accepted connection after warm-up > ${lim.perConnMaxBytes}`);
  return { start, postWarmup, end, slopeMiBPerMin, endGrowthPct, peak, idle, reloadMax, perConnBytes, samples: idx.length, ok: fails.length === 0, why: fails.join('; ') };
}
