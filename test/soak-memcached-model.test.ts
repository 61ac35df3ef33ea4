// The soak's memcached model (bench/soak/memcached.ts) against a real server, on the case that once made a 1-minute
// soak report corrupt data that was not: a connection reset with a `set` wholly sent but unanswered, whose server
// side applies the `set` only after the lane's next connection has written the same key. (On 2 workers the reset
// connection's bytes may still be queued on the other worker.) The model must not take that for the server's fault:
// it retires the key (checks it once, uses a fresh name), so a late `set` cannot touch what the lane reads next.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect as tcpConnect } from 'node:net';
import { once } from 'node:events';
import { McModel, modelForTest } from '../bench/soak/memcached.js';
import { Rng, newCounters } from '../bench/soak/proto.js';
import type { Lane } from '../bench/soak/lane.js';
import type { ServerHandle } from '../apps/memcached/server.js';
import { startOn } from './memcached-transports.js';

const { setOp, settle, connect, checkReply, getOp } = modelForTest;

/** Sends `bytes` on a connection of its own and returns every reply byte: the server applying it "late". */
async function applyLate(port: number, bytes: Buffer): Promise<string> {
  const s = tcpConnect(port, '127.0.0.1');
  await once(s, 'connect');
  s.end(bytes);
  let out = '';
  for await (const d of s) out += (d as Buffer).toString('latin1');
  return out;
}

describe('soak memcached model: a reset connection\'s commands applied late', () => {
  let srv: ServerHandle;
  before(async () => { srv = await startOn('net', { port: 0, memoryMb: 16 }); });
  after(async () => { await srv?.close(); });

  function lane(): Lane {
    return { name: 'model', rng: new Rng(7), c: newCounters(), host: '127.0.0.1', port: srv.port, stallMaxS: 1, stopping: () => false, peers: new Set() };
  }

  for (const k of [5, 1]) it(`a set of ${k < 4 ? 'a numeric' : 'a binary'} key wholly sent before the reset, applied after the next connection wrote the key`, { timeout: 20_000 }, async () => {
    const l = lane(), m = new McModel(`model-${k}`);
    const v = (s: string) => Buffer.from(k < 4 ? String(s.length * 1000 + k) : s);
    // connection A: `set k v1` wholly sent, reset before its reply
    const flags = (f: number) => (k < 4 ? 0 : f); // numbers are stored with flags 0 (incr/decr)
    const lost = setOp(m, k, v('v1-late'), flags(11));
    settle(m, [lost], 0, 1);
    // connection B: checks what the reset left, then writes k and confirms it
    const b = await connect(l, m);
    const mine = setOp(m, k, v('v2-confirmed!'), flags(22));
    await b.write(mine.bytes, 'set');
    await checkReply(l, b, m, mine);
    // the server gets to A's bytes only now
    assert.equal(await applyLate(srv.port, lost.bytes), 'STORED\r\n');
    // B reads k back: the model expects v2, and the server must still have it under the name B uses
    const get = getOp(m, k);
    await b.write(get.bytes, 'get');
    await checkReply(l, b, m, get);
    b.end();
    await b.expectEof('close');
    assert.ok(l.c.bytesVerified >= v('v2-confirmed!').length, 'the value was read and verified');
  });

  it('the retired key is still checked: a value no command sent could have produced is a failure', { timeout: 20_000 }, async () => {
    const l = lane(), m = new McModel('model-retired');
    const lost = setOp(m, 6, Buffer.from('sent-before-reset'), 3);
    settle(m, [lost], 0, 1);
    const old = m.retired[0]!.key;
    assert.equal(await applyLate(srv.port, Buffer.from(`set ${old} 3 0 9\r\ncorrupted\r\n`)), 'STORED\r\n');
    await assert.rejects(connect(l, m), /none of the 2 possible after a reset|corrupt|length/);
  });

  it('keys touched only by commands not wholly sent keep their name and their state before them', () => {
    const m = new McModel('model-unsent');
    const first = setOp(m, 7, Buffer.from('confirmed'), 1);
    const cut = setOp(m, 7, Buffer.from('never-whole'), 2);
    const name = m.key(7);
    settle(m, [first, cut], 1, 1);
    assert.equal(m.key(7), name);
    assert.deepEqual(m.retired, []);
    assert.deepEqual(m.cur(7), { bin: Buffer.from('confirmed'), flags: 1 });
  });
});
