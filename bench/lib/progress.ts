// A one-line progress bar on stderr, redrawn with \r. Silent when stderr is not a terminal or CI=true, so logs
// stay clean.

export class Progress {
  private done = 0;
  private readonly enabled: boolean;
  private readonly started = Date.now();

  /** `total` steps; `enabled` defaults to "stderr is a TTY and CI is not set". */
  constructor(private readonly total: number, enabled?: boolean) {
    this.enabled = enabled ?? (process.stderr.isTTY === true && process.env.CI !== 'true');
  }

  /** Redraws the bar showing `label` for the step now running. */
  show(label: string): void {
    if (!this.enabled) return;
    const cols = process.stderr.columns ?? 80;
    const barWidth = 20;
    const filled = Math.round((this.done / Math.max(1, this.total)) * barWidth);
    const elapsed = (Date.now() - this.started) / 1000;
    const eta = this.done > 0 ? (elapsed / this.done) * (this.total - this.done) : NaN;
    const etaText = Number.isFinite(eta) ? ` eta ${formatSeconds(eta)}` : '';
    let text = `[${'#'.repeat(filled)}${'.'.repeat(barWidth - filled)}] ${this.done}/${this.total}${etaText} ${label}`;
    if (text.length > cols - 1) text = text.slice(0, cols - 1);
    process.stderr.write(`\r${text}\x1b[K`);
  }

  /** Marks one step finished. */
  tick(): void {
    this.done++;
  }

  /** Prints a log line above the bar without garbling it. */
  log(line: string): void {
    if (this.enabled) process.stderr.write('\r\x1b[K');
    process.stderr.write(line + '\n');
  }

  /** Clears the bar. */
  finish(): void {
    if (this.enabled) process.stderr.write('\r\x1b[K');
  }
}

function formatSeconds(s: number): string {
  if (s < 60) return `${Math.round(s)}s`;
  return `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, '0')}s`;
}
