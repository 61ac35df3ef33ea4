// Summaries over repetitions: the median is the figure, min..max is the spread shown beside it.

export interface Summary {
  median: number;
  min: number;
  max: number;
  n: number;
}

/** Median and range of the finite values; NaN fields when there are none. */
export function summarize(values: readonly number[]): Summary {
  const v = values.filter(Number.isFinite).sort((a, b) => a - b);
  const n = v.length;
  if (n === 0) return { median: NaN, min: NaN, max: NaN, n: 0 };
  const median = n % 2 === 1 ? v[(n - 1) / 2]! : (v[n / 2 - 1]! + v[n / 2]!) / 2;
  return { median, min: v[0]!, max: v[n - 1]!, n };
}

/** Spread of a summary as a fraction of its median (0.05 = ±5% overall range). */
export function relativeSpread(s: Summary): number {
  return s.median !== 0 && Number.isFinite(s.median) ? (s.max - s.min) / Math.abs(s.median) : NaN;
}

/** Formats a number with about `digits` significant digits, thousands separated for large ones. */
export function fmt(v: number | undefined, digits = 3): string {
  if (v === undefined || !Number.isFinite(v)) return '–';
  const a = Math.abs(v);
  if (a >= 10 ** digits) return Math.round(v).toLocaleString('en-US');
  if (a === 0) return '0';
  const decimals = Math.max(0, digits - 1 - Math.floor(Math.log10(a)));
  return v.toFixed(Math.min(decimals, 6));
}

/** "median (min–max)" with a shared format. */
export function fmtSummary(s: Summary, digits = 3): string {
  if (s.n <= 1) return fmt(s.median, digits);
  return `${fmt(s.median, digits)} (${fmt(s.min, digits)}–${fmt(s.max, digits)})`;
}
