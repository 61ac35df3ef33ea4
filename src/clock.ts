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

let at = 0;
let fresh = false;
const expire = (): void => { fresh = false; };

/** Milliseconds since the epoch, read once per synchronous run (see above). */
export function timeNow(): number {
  if (!fresh) {
    at = Date.now();
    fresh = true;
    queueMicrotask(expire);
  }
  return at;
}
