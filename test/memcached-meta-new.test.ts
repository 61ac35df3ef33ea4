// The meta protocol as today's memcached (1.6.4x, doc/protocol.txt) has it, where it goes beyond 1.6.18 (which the
// differential test compares byte for byte and which has none of this): E(token) — the CAS a changed item gets — on
// mg (vivify), ms, md (I and x) and ma; ms's s (the stored size, after an append the whole) and N(token) in append
// mode (a miss stores the value with N's TTL); md's x (the value dropped, key, flags and TTL kept). There is no
// reference server for these: the expected replies are written from protocol.txt.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ServerHandle } from '../apps/memcached/server.js';
import { RawClient } from './memcached-testkit.js';
import { TRANSPORTS, startOn, transportLabel, transportSkip } from './memcached-transports.js';

for (const transport of TRANSPORTS) describe(`meta protocol since 1.6.18 (${transportLabel(transport)})`, { skip: transportSkip(transport) }, () => {
  let srv: ServerHandle;
  let c: RawClient;
  before(async () => { srv = await startOn(transport, { port: 0, memoryMb: 16, threads: 1 }); c = await RawClient.connect(srv.port); });
  after(async () => { c?.close(); await srv?.close(); });
  const call = (cmd: string) => c.call(cmd + 'mn\r\n', 'MN\r\n');

  it('E(token): the CAS of a stored, vivified, invalidated, emptied or incremented item', async () => {
    assert.equal(await call('ms e1 2 E12345 c\r\nhi\r\n'), 'HD c12345\r\nMN\r\n');
    assert.equal(await call('mg e1 c v\r\n'), 'VA 2 c12345\r\nhi\r\nMN\r\n');
    assert.equal(await call('ms e1 2 C12345 E777 c\r\nho\r\n'), 'HD c777\r\nMN\r\n', 'compare and set a new CAS');
    assert.equal(await call('ms e1 2 C12345 E778\r\nhu\r\n'), 'EX\r\nMN\r\n');
    assert.equal(await call('mg viv N30 E99 c v\r\n'), 'VA 0 c99 W\r\n\r\nMN\r\n');
    assert.equal(await call('md e1 I E4242\r\nmg e1 c\r\n'), 'HD\r\nHD c4242 X W\r\nMN\r\n');
    assert.equal(await call('set n 0 0 2\r\n10\r\nma n E5555 c v\r\n'), 'STORED\r\nVA 2 c5555\r\n11\r\nMN\r\n');
    assert.equal(await call('ma n2 N0 J7 E6 c v\r\n'), 'VA 1 c6\r\n7\r\nMN\r\n');
    assert.equal(await call('mg e1 Ex\r\nmg e1 E\r\n'), 'CLIENT_ERROR bad token in command line format\r\nCLIENT_ERROR bad token in command line format\r\nMN\r\n');
  });

  it('ms s: the size of the stored item (the whole after an append), else of the value', async () => {
    assert.equal(await call('ms s1 5 s\r\nhello\r\n'), 'HD s5\r\nMN\r\n');
    assert.equal(await call('ms s1 6 MA s c\r\n world\r\n').then((r) => r.replace(/c\d+/, 'c?')), 'HD s11 c?\r\nMN\r\n');
    assert.equal(await call('ms nosuch 3 MR s\r\nabc\r\n'), 'NS s3\r\nMN\r\n');
  });

  it('ms N(token) in append mode vivifies on a miss with N\'s TTL; without N a miss is NS', async () => {
    assert.equal(await call('ms av 3 MA\r\nabc\r\n'), 'NS\r\nMN\r\n');
    assert.equal(await call('ms av 3 MA N100 s\r\nabc\r\n'), 'HD s3\r\nMN\r\n');
    assert.equal(await call('mg av v t\r\n'), 'VA 3 t100\r\nabc\r\nMN\r\n');
    assert.equal(await call('ms av 3 MP N5\r\nxyz\r\nmg av v t\r\n'), 'HD\r\nVA 6 t100\r\nxyzabc\r\nMN\r\n', 'a hit keeps the item\'s TTL');
  });

  it('md x: the value goes, the item (flags, TTL) stays with a new CAS; q hides HD; a miss is NF', async () => {
    assert.equal(await call('set xk 7 100 5\r\nhello\r\nmd xk x\r\n'), 'STORED\r\nHD\r\nMN\r\n');
    assert.equal(await call('mg xk v f t\r\n'), 'VA 0 f7 t100\r\n\r\nMN\r\n');
    assert.equal(await call('md xk x E31337 q\r\nmg xk c s\r\n'), 'HD c31337 s0\r\nMN\r\n');
    assert.equal(await call('md nosuch x\r\n'), 'NF\r\nMN\r\n');
    assert.equal(await call('md xk x C1\r\n'), 'EX\r\nMN\r\n');
  });
});
