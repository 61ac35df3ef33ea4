// A server's clock: the time one synchronous run of its code (the events of one turn of the loop, a timer tick)
// handles things at, read once per run instead of once per use — a request used to read Date.now() four to six times
// (its input, the file cache's check, the Date header, the deadlines), ~75 ns each where the clock source is a
// paravirtual TSC. nginx does the same (ngx_time_update once per event-loop iteration).
//
// Contract: timeNow() is Date.now() as of its first call since the last microtask checkpoint; it goes on returning that
// value until the checkpoint that ends the run (the end of an event callback, a timer tick, an `await`). Within a run
// the clock does not move, so it is stale by up to the length of the run: right for stamping when the run's events
// arrived (their bytes were there when it began), for a Date header and for a cache's age check. A deadline that starts
// after application code ran in the same run (a keep-alive clock started when a response finished, a linger, a send
// deadline) must read Date.now() itself: a handler that blocked for a second would otherwise start it a second early.
// A channel's completion batch is a run of its own (turnBegin/turnEnd around it): the clock is read at most once per
// batch and expires when the batch ends, without a microtask per batch (queueing it, and the microtask queue it made
// every batch's callback run, took 0.5 µs per operation in megapipe-memcached's profile at 4 connections, depth 1:
// BENCHMARKS.md, "Low concurrency again").

let at = 0;
let fresh = false;
/** Batches open (turnBegin without its turnEnd yet): while one is, its end expires the clock instead of a microtask. */
let turns = 0;
const expire = (): void => { fresh = false; };

/** Milliseconds since the epoch, read once per synchronous run (see above). */
export function timeNow(): number {
  if (!fresh) {
    at = Date.now();
    fresh = true;
    if (turns === 0) queueMicrotask(expire);
  }
  return at;
}

/** @internal A completion batch starts: the clock is read afresh within it. Pair with turnEnd (in a finally). */
export function turnBegin(): void { fresh = false; turns++; }
/** @internal The batch ended: the next run reads the clock afresh. */
export function turnEnd(): void { turns--; fresh = false; }
