// The `Date` header value (IMF-fixdate), formatted at most once per second per thread.

import { timeNow } from '../../src/index.js';

let cachedSecond = -1;
let cachedValue = '';

/** IMF-fixdate for now (or for `nowMs`), cached per second: formatting happens once a second at most. */
export function httpDate(nowMs: number = timeNow()): string {
  const s = Math.floor(nowMs / 1000);
  if (s !== cachedSecond) {
    cachedSecond = s;
    cachedValue = new Date(s * 1000).toUTCString();
  }
  return cachedValue;
}

/** IMF-fixdate for any instant (used for Last-Modified). */
export function formatHttpDate(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toUTCString();
}

/** Milliseconds since the epoch for an HTTP-date (IMF-fixdate, RFC 850 or asctime forms), NaN when invalid. */
export function parseHttpDate(value: string): number {
  // asctime has no zone: it is GMT by definition (RFC 9110 §5.6.7)
  const v = /^[A-Za-z]{3} [A-Za-z]{3} [ \d]\d \d\d:\d\d:\d\d \d{4}$/.test(value) ? value + ' GMT' : value;
  return Date.parse(v);
}
