// A small dependency-free SVG line chart in the paper's style: boxed axes, light grid, one line per server
// with a distinct marker (readable in grey print), min–max whiskers, legend, axis labels.

export interface ChartPoint {
  x: number;
  y: number;
  /** Spread of the repetitions, drawn as a whisker when given. */
  yMin?: number;
  yMax?: number;
}

export interface ChartSeries {
  name: string;
  points: ChartPoint[];
}

export interface ChartOptions {
  title?: string;
  xLabel: string;
  yLabel: string;
  xScale: 'log2' | 'linear';
  /** Tick positions and labels on x; default: every distinct x of the data. */
  xTicks?: { value: number; label: string }[];
  /** Lower end of y (default 0, as the paper draws throughput). */
  yMin?: number;
  width?: number;
  height?: number;
  series: ChartSeries[];
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#7f7f7f', '#bcbd22'];
const DASHES = ['', '6 3', '2 3', '8 3 2 3', '', '6 3', '2 3', '8 3 2 3', '', '6 3'];

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const r2 = (v: number) => Math.round(v * 100) / 100;

/** A "nice" step (1, 2 or 5 × 10^k) giving about `count` intervals over `range`. */
function niceStep(range: number, count: number): number {
  const raw = range / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const f = raw / mag;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
}

function tickLabel(v: number): string {
  const a = Math.abs(v);
  if (a >= 1e6 && v % 1e5 === 0) return `${v / 1e6}M`;
  if (a >= 1e4 && v % 1e3 === 0) return `${v / 1e3}k`;
  return String(Number(v.toPrecision(6)));
}

function marker(kind: number, x: number, y: number, color: string): string {
  const s = 4;
  switch (kind % 6) {
    case 0: return `<circle cx="${r2(x)}" cy="${r2(y)}" r="${s}" fill="${color}"/>`;
    case 1: return `<rect x="${r2(x - s)}" y="${r2(y - s)}" width="${2 * s}" height="${2 * s}" fill="${color}"/>`;
    case 2: return `<path d="M${r2(x)},${r2(y - s - 1)}L${r2(x + s + 1)},${r2(y + s)}L${r2(x - s - 1)},${r2(y + s)}Z" fill="${color}"/>`;
    case 3: return `<path d="M${r2(x)},${r2(y - s - 1)}L${r2(x + s + 1)},${r2(y)}L${r2(x)},${r2(y + s + 1)}L${r2(x - s - 1)},${r2(y)}Z" fill="${color}"/>`;
    case 4: return `<circle cx="${r2(x)}" cy="${r2(y)}" r="${s}" fill="#fff" stroke="${color}" stroke-width="2"/>`;
    default: return `<rect x="${r2(x - s)}" y="${r2(y - s)}" width="${2 * s}" height="${2 * s}" fill="#fff" stroke="${color}" stroke-width="2"/>`;
  }
}

/** Renders the chart as a standalone SVG document. */
export function lineChart(o: ChartOptions): string {
  // The legend sits right of the plot, outside it, so it never hides a line.
  const legendW = Math.max(...o.series.map((s) => s.name.length), 4) * 7 + 44;
  const W = (o.width ?? 640) + legendW + 12, H = o.height ?? 400;
  const left = 72, right = legendW + 24, top = o.title ? 36 : 16, bottom = 52;
  const pw = W - left - right, ph = H - top - bottom;
  const pts = o.series.flatMap((s) => s.points).filter((p) => Number.isFinite(p.y));
  const xs = [...new Set([...pts.map((p) => p.x), ...(o.xTicks ?? []).map((t) => t.value)])].sort((a, b) => a - b);
  const tx = (v: number) => (o.xScale === 'log2' ? Math.log2(v) : v);
  let x0 = xs.length ? tx(xs[0]!) : 0, x1 = xs.length ? tx(xs[xs.length - 1]!) : 1;
  if (x1 === x0) { x0 -= 1; x1 += 1; }
  const xpad = (x1 - x0) * 0.04;
  x0 -= xpad; x1 += xpad;
  const yLo = o.yMin ?? 0;
  const yHiData = Math.max(yLo + 1e-9, ...pts.map((p) => Math.max(p.y, p.yMax ?? p.y)));
  const step = niceStep(yHiData - yLo, 5);
  const yHi = Math.ceil(yHiData / step) * step;
  const X = (v: number) => left + ((tx(v) - x0) / (x1 - x0)) * pw;
  const Y = (v: number) => top + ph - ((v - yLo) / (yHi - yLo)) * ph;

  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="#fff"/>`);
  if (o.title) out.push(`<text x="${W / 2}" y="20" text-anchor="middle" font-size="14" font-weight="bold">${esc(o.title)}</text>`);
  // grid and y ticks
  for (let v = yLo; v <= yHi + step / 2; v += step) {
    const y = r2(Y(v));
    out.push(`<line x1="${left}" y1="${y}" x2="${left + pw}" y2="${y}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${left - 6}" y="${y + 4}" text-anchor="end">${esc(tickLabel(Number(v.toPrecision(12))))}</text>`);
  }
  // x ticks
  const xTicks = o.xTicks ?? xs.map((v) => ({ value: v, label: tickLabel(v) }));
  for (const t of xTicks) {
    const x = r2(X(t.value));
    out.push(`<line x1="${x}" y1="${top}" x2="${x}" y2="${top + ph}" stroke="#f0f0f0"/>`);
    out.push(`<line x1="${x}" y1="${top + ph}" x2="${x}" y2="${top + ph + 5}" stroke="#000"/>`);
    out.push(`<text x="${x}" y="${top + ph + 18}" text-anchor="middle">${esc(t.label)}</text>`);
  }
  out.push(`<rect x="${left}" y="${top}" width="${pw}" height="${ph}" fill="none" stroke="#000"/>`);
  out.push(`<text x="${left + pw / 2}" y="${H - 10}" text-anchor="middle">${esc(o.xLabel)}</text>`);
  out.push(`<text transform="translate(16,${top + ph / 2}) rotate(-90)" text-anchor="middle">${esc(o.yLabel)}</text>`);
  // series
  o.series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length]!;
    const p = s.points.filter((q) => Number.isFinite(q.y)).sort((a, b) => a.x - b.x);
    if (p.length === 0) return;
    const d = p.map((q, k) => `${k === 0 ? 'M' : 'L'}${r2(X(q.x))},${r2(Y(q.y))}`).join('');
    const dash = DASHES[i % DASHES.length] ? ` stroke-dasharray="${DASHES[i % DASHES.length]}"` : '';
    out.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="2"${dash}/>`);
    for (const q of p) {
      if (q.yMin !== undefined && q.yMax !== undefined && Number.isFinite(q.yMin) && Number.isFinite(q.yMax) && q.yMax > q.yMin) {
        const x = r2(X(q.x));
        out.push(`<path d="M${x},${r2(Y(q.yMin))}V${r2(Y(q.yMax))}M${x - 3},${r2(Y(q.yMin))}h6M${x - 3},${r2(Y(q.yMax))}h6" stroke="${color}" stroke-width="1"/>`);
      }
      out.push(marker(i, X(q.x), Y(q.y), color));
    }
  });
  // legend
  const lh = 18, lx = left + pw + 12;
  out.push(`<rect x="${lx}" y="${top}" width="${legendW}" height="${o.series.length * lh + 8}" fill="#fff" stroke="#ccc"/>`);
  o.series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length]!;
    const y = top + 4 + i * lh + lh / 2;
    const dash = DASHES[i % DASHES.length] ? ` stroke-dasharray="${DASHES[i % DASHES.length]}"` : '';
    out.push(`<line x1="${lx + 6}" y1="${y}" x2="${lx + 32}" y2="${y}" stroke="${color}" stroke-width="2"${dash}/>`);
    out.push(marker(i, lx + 19, y, color));
    out.push(`<text x="${lx + 38}" y="${y + 4}">${esc(s.name)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}
