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

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const DAY = '(Mon|Tue|Wed|Thu|Fri|Sat|Sun)';
const DAY_L = '(Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)';
const MONTH = '(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)';
const TIME = '(\\d\\d):(\\d\\d):(\\d\\d)';
/** IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT` */
const IMF_FIXDATE = new RegExp(`^${DAY}, (\\d\\d) ${MONTH} (\\d{4}) ${TIME} GMT$`);
/** rfc850-date (obsolete): `Sunday, 06-Nov-94 08:49:37 GMT` */
const RFC850_DATE = new RegExp(`^${DAY_L}, (\\d\\d)-${MONTH}-(\\d\\d) ${TIME} GMT$`);
/** asctime-date (obsolete): `Sun Nov  6 08:49:37 1994` */
const ASCTIME_DATE = new RegExp(`^${DAY} ${MONTH} (\\d\\d| \\d) ${TIME} (\\d{4})$`);

/** Days from 1970-01-01 to the proleptic Gregorian date y-m-d (m 1..12): exact for every year, 0..99 included. */
function daysFromCivil(y: number, m: number, d: number): number {
  y -= m <= 2 ? 1 : 0;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

function daysInMonth(y: number, m: number): number {
  if (m === 2) return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0 ? 29 : 28;
  return m === 4 || m === 6 || m === 9 || m === 11 ? 30 : 31;
}

/** The instant of a calendar date and time (GMT), NaN when a field is out of range (Feb 30, 24:00:00, minute 60). */
function instant(y: number, mon: string, d: number, hh: number, mm: number, ss: number): number {
  const m = MONTHS.indexOf(mon) + 1;
  if (d < 1 || d > daysInMonth(y, m) || hh > 23 || mm > 59 || ss > 60) return NaN;
  return ((daysFromCivil(y, m, d) * 24 + hh) * 60 + mm) * 60000 + ss * 1000;
}

/**
 * Milliseconds since the epoch for an HTTP-date (RFC 9110 §5.6.7): IMF-fixdate, or the obsolete rfc850-date and
 * asctime-date forms a recipient must accept; NaN for anything else (`3000`, `12/31/2099`, an ISO date, a date with
 * another zone or out-of-range fields), which callers ignore as RFC 9110 §13.1.3 requires. Names are case-sensitive,
 * as in the grammar; the weekday is not checked against the date. An rfc850-date's two-digit year is the one within
 * 50 years from `nowMs` (a year that would be more than 50 years ahead is taken a century earlier).
 */
export function parseHttpDate(value: string, nowMs?: number): number {
  let m = IMF_FIXDATE.exec(value);
  if (m !== null) return instant(Number(m[4]), m[3], Number(m[2]), Number(m[5]), Number(m[6]), Number(m[7]));
  m = RFC850_DATE.exec(value);
  if (m !== null) {
    const now = new Date(nowMs ?? timeNow()).getUTCFullYear();
    let y = now - (now % 100) + Number(m[4]);
    if (y > now + 50) y -= 100;
    return instant(y, m[3], Number(m[2]), Number(m[5]), Number(m[6]), Number(m[7]));
  }
  m = ASCTIME_DATE.exec(value);
  if (m !== null) return instant(Number(m[7]), m[2], Number(m[3].trim()), Number(m[4]), Number(m[5]), Number(m[6]));
  return NaN;
}
