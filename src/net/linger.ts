// megapipe/net's close of a destroyed Socket whose bytes are still queued. node:net's destroy() closes the descriptor
// and the kernel still sends what it holds: every byte a write's callback reported written (node calls it once the
// kernel has them). megapipe/net calls a write's callback once its bytes are queued in the channel below the
// high-water mark, so at destroy() some of them may still be queued there: they go out before the close (a graceful
// disconnect), while the Socket closes at once, as node's does. From then on the connection's events come here; a
// peer that takes none of the bytes for bounds.destroyDrainStallMs has them dropped (an abortive disconnect), as the
// kernel gives up on an orphaned socket whose peer never reads.
import type { Channel } from '../channel.js';
import type { MpEvent } from '../event.js';
import { bounds } from '../limits.js';
import { EndWatch, type Draining } from '../server/end-watch.js';
import { kMpEvent, loopUse, type Endpoint } from './link.js';

// this thread's watch: one interval for every lingering connection (made at first need)
let watch: EndWatch | undefined;

/** A destroyed Socket's connection, until its disconnect event (the handle number is reused after it). */
class Linger implements Endpoint, Draining {
  watchAt = 0;
  gone = false;
  readonly #moved: () => boolean;

  constructor(private readonly ch: Channel, private readonly h: number, private readonly unrefd: boolean) {
    this.#moved = ch.watchProgress(h);
  }

  moved(): boolean { return !this.gone && this.#moved(); }

  stalled(): void {
    if (this.gone) return;
    try { this.ch.disconnect(this.h, true); } catch { /* the channel is closed: its disconnect event came or comes */ }
  }

  /** @internal */
  [kMpEvent](ev: MpEvent): void {
    if (ev.type !== 'disconnect' || this.gone) return;
    this.gone = true;
    watch?.remove(this);
    // the Socket had let the event loop go: the handle's own reason to keep it is given back as the handle is freed
    if (this.unrefd) loopUse(this.ch, 1);
  }
}

/**
 * Closes connection `h` of `ch` once its queued bytes are sent (or their peer stalls for bounds.destroyDrainStallMs);
 * the connection's events are this module's from now on. `unrefd`: its Socket had let the event loop go (one with
 * bytes queued has not — socket.ts #syncLoopUse —, so a lingering close keeps the loop alive until it is done).
 */
export function lingerClose(ch: Channel, h: number, unrefd: boolean): void {
  const l = new Linger(ch, h, unrefd);
  ch.setCookie(h, l);
  try { ch.disconnect(h, false); } catch { /* closing already: its disconnect event comes */ }
  if (!l.gone) (watch ??= new EndWatch(bounds.destroyDrainStallMs)).add(l);
}
