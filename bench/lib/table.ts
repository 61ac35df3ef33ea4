// Tables for the terminal (aligned columns) and for Markdown. Cells are strings; numbers align right.

export type Align = 'left' | 'right';

export interface Table {
  headers: string[];
  rows: string[][];
  /** Per column; default: right for cells that look numeric, left otherwise. */
  align?: Align[];
}

const numeric = /^[-+]?[\d,.]+(\s*\(.*\))?[%×]?\*?$|^–$/;

function alignments(t: Table): Align[] {
  return t.headers.map((_, c) => t.align?.[c] ?? (t.rows.every((r) => numeric.test(r[c] ?? '')) ? 'right' : 'left'));
}

const width = (s: string) => [...s].length;
const pad = (s: string, w: number, a: Align) => (a === 'right' ? ' '.repeat(w - width(s)) + s : s + ' '.repeat(w - width(s)));

/** Aligned plain-text table with a rule under the header. */
export function formatTable(t: Table): string {
  const al = alignments(t);
  const widths = t.headers.map((h, c) => Math.max(width(h), ...t.rows.map((r) => width(r[c] ?? ''))));
  const line = (cells: string[]) => cells.map((s, c) => pad(s, widths[c]!, al[c]!)).join('  ').trimEnd();
  return [line(t.headers), widths.map((w) => '-'.repeat(w)).join('  '), ...t.rows.map((r) => line(r))].join('\n') + '\n';
}

/** GitHub-flavoured Markdown table. */
export function markdownTable(t: Table): string {
  const al = alignments(t);
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  const line = (cells: string[]) => `| ${cells.map(esc).join(' | ')} |`;
  return [line(t.headers), `|${al.map((a) => (a === 'right' ? '---:' : ':---')).join('|')}|`, ...t.rows.map((r) => line(r))].join('\n') + '\n';
}
