// The clock of one synchronous run (src/clock.ts): read once per synchronous run, fresh after every microtask checkpoint.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { timeNow } from '../src/clock.js';

const spin = (ms: number): void => { const end = Date.now() + ms; while (Date.now() < end) { /* busy */ } };

test('within one synchronous run the clock does not move', () => {
  const a = timeNow();
  spin(15);
  assert.equal(timeNow(), a);
});

test('after a microtask checkpoint (an await) it is read again', async () => {
  const a = timeNow();
  spin(15);
  await null;
  const b = timeNow();
  assert.ok(b >= a + 15, `${b} should be at least ${a} + 15`);
  const before = Date.now();
  await new Promise((r) => setTimeout(r, 5));
  const c = timeNow();
  assert.ok(c >= before, `a new run (a timer) reads the clock: ${c} >= ${before}`);
  assert.ok(c <= Date.now());
});

test('a run that starts with the clock expired reads Date.now(), not a value from an earlier run', async () => {
  for (let i = 0; i < 20; i++) {
    await new Promise((r) => setImmediate(r));
    const d = Date.now();
    const t = timeNow();
    assert.ok(t >= d && t <= Date.now(), `${t} within [${d}, now]`);
  }
});
