// A handle's generation (carried in every request's user_data) changes each time the handle number is handed out again:
// that is what tells a completion for the closed connection from one for the connection now using the number
// (ARCHITECTURE.md, "Decode"). The table hands the lowest free number out again at once, so reuse is the common case.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { HandleTable, Kind } from '../src/handle-table.js';

describe('handle table generations', () => {
  it('a reused handle number gets a new generation, within the 24 bits user_data carries', () => {
    const t = new HandleTable(4);
    const h = t.alloc(Kind.Direct, 'a');
    const g1 = t.gen[h]!;
    t.free(h);
    const h2 = t.alloc(Kind.Direct, 'b');
    assert.equal(h2, h, 'the number is reused');
    assert.notEqual(t.gen[h2], g1, 'with another generation');
    // many reuses: never the previous one, always within 24 bits
    let prev = t.gen[h2]!;
    for (let i = 0; i < 1000; i++) {
      t.free(h2);
      assert.equal(t.alloc(Kind.Fd, i), h2);
      assert.notEqual(t.gen[h2], prev);
      assert.ok(t.gen[h2]! <= 0xffffff);
      prev = t.gen[h2]!;
    }
  });

  it('isOpen: only numbers of open handles, never one past the table', () => {
    const t = new HandleTable(2);
    t.alloc(Kind.Direct, 0); t.alloc(Kind.Direct, 1);
    assert.equal(t.isOpen(0), true);
    assert.equal(t.isOpen(1), true);
    assert.equal(t.isOpen(2), false);
    assert.equal(t.isOpen(-1), false);
    assert.equal(t.isOpen(0.5), false);
  });
});
