// megapipe-memcached's per-thread app: the settings every worker sees, this thread's view of the shared store, and
// the session factory for this thread's connections. Also the idle_timeout sweep over this thread's sessions.

import type { SessionFactory } from '../../src/index.js';
import { McSession } from './session.js';
import { Store, type StoreShared } from './store.js';

export { VERSION } from './version.js';

/** idle_timeout's resolution is memcached's clock: seconds. */
const IDLE_SWEEP_MS = 1000;

/** memcached's -B values. */
export type McProtocol = 'auto' | 'ascii' | 'binary';

/** Server settings every worker sees (plain data: travels in workerData). */
export interface McSettings {
  host: string;
  port: number;
  maxConns: number;
  threads: number;
  verbosity: number;
  /** Largest multi-get line accepted (bytes); longer ones close the connection. */
  maxGetLine?: number;
  /** memcached's `-o idle_timeout`: close a connection waiting for a command more than this many seconds (0: off). */
  idleTimeout?: number;
  /** memcached's -B: which protocol a connection speaks; 'auto' (default) decides by its first byte. */
  protocol?: McProtocol;
  /** memcached's `-o track_sizes`: the item size histogram (`stats sizes`) on from the start (`stats sizes_enable` and
   * `sizes_disable` turn it on and off at run time). Default false. */
  trackSizes?: boolean;
  /** memcached's -F off: false makes flush_all (and binary flush) answer an error. Default true. */
  flushEnabled?: boolean;
  /** memcached's -A: `shutdown` stops the server (SIGINT to this process). Default false. */
  shutdownEnabled?: boolean;
  /** Process start (ms), for uptime. */
  startedAt?: number;
}

/** What every worker receives in workerData: the store's shared memory and the settings. */
export interface McWorkerData {
  store: StoreShared;
  settings: McSettings;
}

/** Per-thread state shared by that thread's sessions. */
export class McApp {
  readonly store: Store;
  readonly worker: number;
  readonly workers: number;
  readonly settings: McSettings;
  private lastSessionId = 0;
  // idle_timeout: this thread's open sessions, swept once a second while there are any (memcached's idle thread)
  private readonly watched = new Set<McSession>();
  private sweeper: NodeJS.Timeout | null = null;
  constructor(data: McWorkerData, worker: number, workers: number) {
    this.store = new Store(data.store, worker);
    this.worker = worker;
    this.workers = workers;
    this.settings = data.settings;
    if (this.settings.trackSizes) this.store.sizesAtStart();
  }
  /** The factory of this thread's connection sessions. */
  factory(): SessionFactory {
    return (conn) => new McSession(conn, this, ++this.lastSessionId);
  }
  /** A session opened (idle_timeout on): sweep while any is open. */
  watch(s: McSession): void {
    this.watched.add(s);
    if (!this.sweeper) this.sweeper = setInterval(() => this.sweep(), IDLE_SWEEP_MS).unref();
  }
  /** A watched session closed. */
  unwatch(s: McSession): void {
    this.watched.delete(s);
    if (this.watched.size === 0 && this.sweeper) { clearInterval(this.sweeper); this.sweeper = null; }
  }
  private sweep(): void {
    const now = this.store.tick(), limit = this.settings.idleTimeout ?? 0;
    for (const s of this.watched) s.kickIfIdle(now, limit);
  }
}
