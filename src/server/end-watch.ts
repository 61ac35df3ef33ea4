// The end() drain timeout of a server's connections (endTimeoutMs), with one timer per server: a connection that has
// ended but still has bytes queued is watched until it closes; if its peer takes none of them for the timeout, it is
// given up. One interval for all of them, not a timer per connection (a Connection: close server ends every one);
// the connection object itself is what is watched (no allocation per connection).

/** An ended connection with bytes still queued. */
export interface Draining {
  /** When the peer last took bytes (or the watch began), ms; kept by EndWatch. */
  watchAt: number;
  /** True when the peer took bytes since the previous call (or since the watch began, on the first call). */
  moved(): boolean;
  /** The peer took nothing for the timeout: destroy the connection. */
  stalled(): void;
}

export class EndWatch {
  private readonly watched = new Set<Draining>();
  private readonly timer: NodeJS.Timeout | undefined;

  /** `timeoutMs` 0: no watch (add does nothing). Checks every quarter timeout (10 ms..1 s): a stall is seen within
   *  timeoutMs + that period. */
  constructor(readonly timeoutMs: number) {
    if (timeoutMs > 0) {
      this.timer = setInterval(() => this.sweep(), Math.max(10, Math.min(1000, Math.floor(timeoutMs / 4))));
      this.timer.unref();
    }
  }

  /** Watches `d` from now until `remove(d)` (its close) or a stall. */
  add(d: Draining): void {
    if (this.timer === undefined) return;
    d.watchAt = Date.now();
    this.watched.add(d);
  }

  remove(d: Draining): void {
    this.watched.delete(d);
  }

  /** Stops the timer (the server has closed). */
  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.watched.clear();
  }

  private sweep(): void {
    if (this.watched.size === 0) return;
    const now = Date.now();
    for (const d of this.watched) {
      if (d.moved()) { d.watchAt = now; continue; }
      if (now - d.watchAt < this.timeoutMs) continue;
      this.watched.delete(d);
      d.stalled();
    }
  }
}
