// memcached's `-o idle_timeout=N`: a connection whose last command is more than N seconds old, and which is waiting
// for a command (not in the middle of a value), is closed and counted in `stats` as idle_kicks; 0 (the default) is
// off. Activity is a command line, not bytes: a partial line does not keep a connection alive.
//
// The server's clock is memcached's relative clock in shared memory, moved forward by the test (Store.advanceClock)
// instead of sleeping; the only real-time waits are bounded waits for a close to happen.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ServerHandle } from '../apps/memcached/server.js';
import { Store } from '../apps/memcached/store.js';
import { RawClient } from './memcached-testkit.js';
import { TRANSPORTS, startOn, transportLabel, transportSkip } from './memcached-transports.js';

function stat(text: string, name: string): number {
  const m = new RegExp(`^STAT ${name} (\\d+)\\r$`, 'm').exec(text);
  assert.ok(m, `no STAT ${name} in ${JSON.stringify(text.slice(0, 200))}…`);
  return Number(m[1]);
}

/**
 * The `stats` text, through `c`, once the server counts exactly `connections` open connections. Connections open and
 * close on the server's worker threads asynchronously: a client's connect() resolves before the server has accepted
 * (and stamped) the connection, and a client sees the server's EOF before the server has processed its close.
 */
async function statsWith(c: RawClient, connections: number): Promise<string> {
  let text = await c.call('stats\r\n', 'END\r\n');
  for (let i = 0; i < 400 && stat(text, 'curr_connections') !== connections; i++) {
    await new Promise((r) => setTimeout(r, 25));
    text = await c.call('stats\r\n', 'END\r\n');
  }
  return text;
}

for (const transport of TRANSPORTS) describe(`memcached idle_timeout (${transportLabel(transport)})`, { skip: transportSkip(transport) }, () => {
  let srv: ServerHandle;
  let clock: Store;
  before(async () => {
    srv = await startOn(transport, { port: 0, memoryMb: 4, idleTimeout: 100 });
    clock = new Store(srv.store, 63);
  });
  after(async () => { await srv?.close(); });

  it('closes connections idle past the timeout, keeps active ones and those inside a value, counts idle_kicks', async () => {
    const idle = await RawClient.connect(srv.port);
    const active = await RawClient.connect(srv.port);
    const inValue = await RawClient.connect(srv.port);
    const partial = await RawClient.connect(srv.port);
    try {
      assert.match(await idle.call('stats settings\r\n', 'END\r\n'), /^STAT idle_timeout 100\r$/m);
      // every connection's last command time is its accept's: all four must be accepted before the clock moves
      assert.equal(stat(await statsWith(active, 4), 'curr_connections'), 4, 'the four connections on the server');
      // `inValue` starts a value whose rest comes later; wait until the server has read it (bytes_read, seen through
      // `active`, less the 7 bytes of each "stats\r\n"), so its command is older than both clock moves below
      const bytesRead = async () => stat(await active.call('stats\r\n', 'END\r\n'), 'bytes_read');
      const setLine = 'set v 0 0 10\r\nabc';
      const before = await bytesRead();
      inValue.send(setLine);
      let polls = 1;
      while ((await bytesRead()) - before - 7 * polls < setLine.length) {
        assert.ok(polls++ < 500, 'the server read the start of the value');
        await new Promise((r) => setTimeout(r, 10));
      }
      clock.advanceClock(60);
      // 60 s on: nobody is past 100 s. `active` sends a command; `partial` sends bytes but no complete command
      assert.equal(await active.call('version\r\n'), 'VERSION 1.6.18\r\n');
      partial.send('get som');
      clock.advanceClock(60);
      // 120 s since `idle`'s and `partial`'s last command (their connect), 60 s since `active`'s
      assert.equal(await idle.waitClosed(15_000), true, 'the idle connection is closed');
      assert.equal(await partial.waitClosed(15_000), true, 'a partial line is not activity');
      assert.equal(idle.pending().length, 0, 'closed without a reply');
      assert.equal(active.closed, false);
      assert.equal(await active.call('version\r\n'), 'VERSION 1.6.18\r\n');
      assert.equal(inValue.closed, false, 'a connection in the middle of a value is not idle');
      inValue.send('defghij\r\n');
      assert.equal((await inValue.read('\r\n')).toString(), 'STORED\r\n');
      assert.equal(stat(await active.call('stats\r\n', 'END\r\n'), 'idle_kicks'), 2);
      assert.equal(stat(await statsWith(active, 2), 'curr_connections'), 2, 'the two kicked connections closed on the server');
    } finally {
      idle.close(); active.close(); inValue.close(); partial.close();
    }
  });
});

for (const transport of TRANSPORTS) describe(`memcached idle_timeout off by default (${transportLabel(transport)})`, { skip: transportSkip(transport) }, () => {
  let srv: ServerHandle;
  before(async () => { srv = await startOn(transport, { port: 0, memoryMb: 4 }); });
  after(async () => { await srv?.close(); });

  it('keeps an idle connection however old its last command', async () => {
    const c = await RawClient.connect(srv.port);
    try {
      assert.match(await c.call('stats settings\r\n', 'END\r\n'), /^STAT idle_timeout 0\r$/m);
      new Store(srv.store, 63).advanceClock(10 * 365 * 86400);
      // a kick would come within a sweep (1 s); wait for two, then the connection must still answer
      assert.equal(await c.waitClosed(2500), false);
      assert.equal(await c.call('version\r\n'), 'VERSION 1.6.18\r\n');
      assert.equal(stat(await c.call('stats\r\n', 'END\r\n'), 'idle_kicks'), 0);
    } finally {
      c.close();
    }
  });
});
