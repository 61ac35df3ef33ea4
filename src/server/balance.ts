// Load balancing between partitions, which MegaPipe lacked (Affinity-Accept had it): an idle channel takes
// connections from a backed-up partition. Every `intervalMs` it reads the accept-queue length of the members it
// watches (TCP_INFO on the listening socket: one getsockopt each) and, when one holds at least `threshold`
// connections, accepts up to `batchMax` of them itself with a non-blocking accept4 and registers them in its own
// channel as regular-fd handles. It also rescues a shared queue whose io_uring accept wake-up went to a busy
// worker (io_uring's accept waits are exclusive: the woken ring holds the connection until its thread runs). It can
// take only what the busy worker's ring has not accepted: a DEFER_TASKRUN ring accepts only when its own thread enters
// it, but a ring without it (native/ring.c, defer_wake) accepts at its thread's next kernel entry — a system call, a
// timer tick — even while that thread is busy.
import { acceptNow, acceptQueueLength, closeFd, socketsAvailable } from '../sockets.js';
import type { Channel } from '../channel.js';

export interface BalanceOptions {
  /** How often to look at the other partitions' queues (default 2 ms). */
  intervalMs?: number;
  /** Queue length that counts as backed up (default 1: any connection left waiting a whole interval). */
  threshold?: number;
  /** Connections taken per look, per member (default 32). */
  batchMax?: number;
}

export interface Balancer {
  /** Connections this channel took from other partitions. */
  readonly stolen: number;
  stop(): void;
}

/**
 * Watches `fds` (listening sockets of other partitions, or a shared queue) and hands each connection it takes to
 * `onConnection(handle)` after registering it in `channel`. Needs the addon (io_uring backend or native listeners).
 */
export function startBalancer(channel: Channel, fds: readonly number[], onConnection: (h: number) => void, options: BalanceOptions = {}): Balancer {
  const intervalMs = options.intervalMs ?? 2, threshold = options.threshold ?? 1, batchMax = options.batchMax ?? 32;
  let stolen = 0;
  if (!socketsAvailable || fds.length === 0) return { get stolen() { return 0; }, stop() {} };
  const timer = setInterval(() => {
    for (const fd of fds) {
      const q = acceptQueueLength(fd);
      if (q < threshold) continue;
      for (let i = 0; i < Math.min(q, batchMax); i++) {
        const cfd = acceptNow(fd);
        if (cfd < 0) break;   // EAGAIN: its owner took the rest
        let h: number;
        try { h = channel.register(cfd); } catch { closeFd(cfd); return; }   // at maxHandles: leave the rest queued
        stolen++;
        onConnection(h);
      }
    }
  }, intervalMs);
  timer.unref();
  return { get stolen() { return stolen; }, stop() { clearInterval(timer); } };
}
