// A chunk size over the parser's bound (13 hex digits) is refused with 413 as soon as it passes the bound — not left to
// the body-size check at the line's end, where a size line that never ends, or runs past the 1024-digit line bound,
// would be answered otherwise (waiting, or 400).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { feedAll } from './http-parser-harness.js';

const HEAD = 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n';

test('parser: a chunk size past 13 hex digits is 413 at once, whatever follows', () => {
  const big = { maxBodySize: Number.MAX_SAFE_INTEGER };
  // the line has not ended: refused already
  for (const lim of [undefined, big]) {
    const open = feedAll(Buffer.from(HEAD + '1' + '0'.repeat(20), 'latin1'), [], lim);
    assert.equal(open.error?.[0], 413, `an unfinished size line of 21 digits: ${open.error?.[1]}`);
    // past the line-length bound: still the size's verdict, 413, not the line's 400
    const long = feedAll(Buffer.from(HEAD + '1' + '0'.repeat(1100) + '\r\n', 'latin1'), [], lim);
    assert.equal(long.error?.[0], 413, `a 1101-digit size: ${long.error?.[1]}`);
  }
  // leading zeros are not a size: 1100 of them and a small size is the line bound's 400
  assert.equal(feedAll(Buffer.from(HEAD + '0'.repeat(1100) + '5\r\n', 'latin1'), []).error?.[0], 400);
});

test('parser: maxHeaders is the most fields a head may have: one more is 431', () => {
  const lim = { maxHeaders: 10 };
  const fields = (n: number) => Array.from({ length: n }, (_, i) => `X-${i}: ${i}\r\n`).join('');
  // Host + 9 = 10 fields: accepted; Host + 10 = 11: refused
  assert.equal(feedAll(Buffer.from(`GET / HTTP/1.1\r\nHost: a\r\n${fields(9)}\r\n`), [], lim).error, null);
  assert.equal(feedAll(Buffer.from(`GET / HTTP/1.1\r\nHost: a\r\n${fields(10)}\r\n`), [], lim).error?.[0], 431);
  assert.equal(feedAll(Buffer.from(`GET / HTTP/1.1\r\nHost: a\r\n${fields(10)}\r\n`), [40, 41, 90], lim).error?.[0], 431);
});
