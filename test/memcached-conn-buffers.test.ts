// A connection's buffers go back to their small size after use, as memcached's do (it frees a read buffer grown for
// a huge multi-get once the request is done, and reports what connection buffers hold in `stats`: read_buf_count,
// read_buf_bytes). Regression: one 2 MiB multi-get line grew a connection's line buffer to 4 MiB for the rest of
// its life (1,024 idle connections could pin ~4 GiB), and a large reply kept its 128 KiB output buffer.
//
// Two independent measures: the server's own `stats` (over sockets, on each transport), and — not trusting the
// server's bookkeeping — the process's ArrayBuffer bytes after a full GC with many in-process sessions.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import v8 from 'node:v8';
import vm from 'node:vm';
import type { ServerHandle } from '../apps/memcached/server.js';
import { RawClient, show } from './memcached-testkit.js';
import type { Session } from '../src/index.js';
import { FakeConn, feed, newApp } from './memcached-fakeconn.js';
import { TRANSPORTS, startOn, transportLabel, transportSkip } from './memcached-transports.js';

const MiB = 1024 * 1024;

/** `stats` on `c`, as numbers (a missing stat fails the test naming it). */
async function stats(c: RawClient): Promise<(name: string) => number> {
  const text = (await c.call('stats\r\n', 'END\r\n')).toString();
  return (name: string) => {
    const m = new RegExp(`^STAT ${name} (\\d+)\\r$`, 'm').exec(text);
    assert.ok(m, `stats has no ${name}: ${show(text)}`);
    return Number(m[1]);
  };
}

/**
 * `stats` on `c` once the server counts exactly `connections` open connections. A test's first `stats` can reach the
 * server before it has seen the previous test's clients close (their close is asynchronous): their buffers would be
 * counted as this test's idle baseline (a flake seen in CI: 3 connections' bytes taken for one).
 */
async function statsWith(c: RawClient, connections: number): Promise<(name: string) => number> {
  let s = await stats(c);
  for (let i = 0; i < 400 && s('curr_connections') !== connections; i++) {
    await new Promise((r) => setTimeout(r, 25));
    s = await stats(c);
  }
  assert.equal(s('curr_connections'), connections, 'connections the server counts');
  return s;
}

/** A multi-get line of about `bytes` bytes (keys that miss), ending with `last`. */
function hugeGet(bytes: number, last = 'hit'): string {
  const key = ' nokey-0123456789';
  return 'get' + key.repeat(Math.ceil(bytes / key.length)) + ' ' + last + '\r\n';
}

/** Sends `line` in 64 KiB writes (so the server receives it in many reads and must keep a partial line). */
function sendInPieces(c: RawClient, line: string): void {
  for (let i = 0; i < line.length; i += 65536) c.send(line.slice(i, i + 65536));
}

for (const transport of TRANSPORTS) describe(`memcached connection buffers (${transportLabel(transport)})`, { skip: transportSkip(transport) }, () => {
  let srv: ServerHandle;
  before(async () => { srv = await startOn(transport, { port: 0, memoryMb: 8 }); });
  after(async () => { await srv?.close(); });

  it('shrinks a connection\'s buffers back after a huge multi-get and a large reply', async () => {
    const c = await RawClient.connect(srv.port);
    try {
      const s0 = await statsWith(c, 1);
      const idle = s0('read_buf_bytes'), idleCount = s0('read_buf_count');
      assert.ok(idle > 0 && idle <= 64 * 1024, `one idle connection holds ${idle} bytes`);
      assert.ok(idleCount > 0, 'buffers counted');
      assert.equal(await c.call('set hit 0 0 1\r\nh\r\n'), 'STORED\r\n');
      sendInPieces(c, hugeGet(2 * MiB - 4096));
      assert.equal((await c.read('END\r\n', 20_000)).toString(), 'VALUE hit 0 1\r\nh\r\nEND\r\n');
      // a reply of 100 × 10 KB values gathered in the output buffer (values ≤ 16 KiB are copied into it)
      const v = 'v'.repeat(10_000);
      assert.equal(await c.call(`set v 0 0 ${v.length}\r\n${v}\r\n`), 'STORED\r\n');
      c.send('get' + ' v'.repeat(100) + '\r\n');
      assert.equal((await c.read('END\r\n', 20_000)).length, 100 * `VALUE v 0 10000\r\n${v}\r\n`.length + 5);
      const s1 = await stats(c);
      assert.equal(s1('read_buf_bytes'), idle, 'the connection holds what it held when idle');
      assert.equal(s1('read_buf_count'), idleCount);
    } finally {
      c.close();
    }
  });

  it('counts a pending huge line while it is held, and frees it once answered', async () => {
    const a = await RawClient.connect(srv.port), b = await RawClient.connect(srv.port);
    try {
      const idle = (await statsWith(b, 2))('read_buf_bytes'); // two idle connections
      const line = hugeGet(MiB, 'nosuch');
      sendInPieces(a, line.slice(0, -2)); // no newline yet: the server must keep it
      let held = 0;
      for (let i = 0; i < 400 && held < MiB; i++) {
        held = (await stats(b))('read_buf_bytes');
        if (held < MiB) await new Promise((r) => setTimeout(r, 25));
      }
      assert.ok(held >= idle + line.length - 2 - 65536, `read_buf_bytes ${held} while a ${line.length - 2}-byte line is pending (idle: ${idle})`);
      a.send('\r\n');
      assert.equal((await a.read('END\r\n', 20_000)).toString(), 'END\r\n');
      assert.equal((await stats(b))('read_buf_bytes'), idle);
    } finally {
      a.close(); b.close();
    }
  });

  it('many connections that each sent one huge line hold only their small buffers', async () => {
    const N = 16;
    const probe = await RawClient.connect(srv.port);
    const conns: RawClient[] = [];
    try {
      const perConn = (await statsWith(probe, 1))('read_buf_bytes'); // one idle connection: the probe
      for (let i = 0; i < N; i++) conns.push(await RawClient.connect(srv.port));
      for (const c of conns) {
        sendInPieces(c, hugeGet(MiB, 'nosuch'));
        assert.equal((await c.read('END\r\n', 20_000)).toString(), 'END\r\n');
      }
      const s = await stats(probe);
      assert.equal(s('curr_connections'), N + 1);
      assert.equal(s('read_buf_bytes'), (N + 1) * perConn, `${N + 1} idle connections (${perConn} bytes each when new)`);
    } finally {
      probe.close();
      for (const c of conns) c.close();
    }
  });
});

describe('memcached connection buffers, measured in the heap (in-process sessions)', () => {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as () => void;
  const settle = async () => { gc(); await new Promise<void>((r) => setImmediate(r)); gc(); };

  it('sessions that each answered a huge multi-get do not keep memory proportional to it', async () => {
    const app = newApp(4);
    const N = 24;
    const sessions: Session[] = [], conns: FakeConn[] = [];
    const line = Buffer.from(hugeGet(2 * MiB - 4096, 'nosuch'), 'latin1');
    await settle();
    const base = process.memoryUsage().arrayBuffers;
    for (let i = 0; i < N; i++) {
      const conn = new FakeConn();
      const s = app.factory()(conn);
      feed(s, line, 65536);
      assert.equal(conn.text(), 'END\r\n');
      conn.out = [];
      sessions.push(s); conns.push(conn);
    }
    await settle();
    const grown = process.memoryUsage().arrayBuffers - base;
    assert.ok(grown < N * 256 * 1024, `${N} sessions hold ${(grown / MiB).toFixed(1)} MiB after one huge line each`);
    assert.equal(sessions.length, N); // keep them alive until measured
  });

  it('bounds what a pending line may hold by the multi-get cap', async () => {
    const cap = 1536 * 1024; // -> settings.maxGetLine; doubling from 1 MiB would overshoot it
    const app = newApp(4, undefined, { maxGetLine: cap });
    const N = 8;
    const sessions: Session[] = [];
    const partial = Buffer.from(hugeGet(cap).slice(0, 1280 * 1024), 'latin1'); // no newline
    await settle();
    const base = process.memoryUsage().arrayBuffers;
    for (let i = 0; i < N; i++) {
      const conn = new FakeConn();
      const s = app.factory()(conn);
      feed(s, partial, 65536);
      assert.equal(conn.ended, false, 'a line under the cap is kept');
      sessions.push(s);
    }
    await settle();
    const grown = process.memoryUsage().arrayBuffers - base;
    assert.ok(grown <= N * (cap + 64 * 1024), `${N} pending lines of ${partial.length} bytes hold ${(grown / MiB).toFixed(2)} MiB (cap ${cap} each)`);
    // one more byte than the cap closes the connection instead of growing its buffer
    const conn = new FakeConn();
    const s = app.factory()(conn);
    feed(s, Buffer.from(hugeGet(cap).slice(0, cap + 1), 'latin1'), 65536);
    assert.equal(conn.ended, true, 'a line over the cap closes the connection');
    assert.equal(sessions.length, N);
  });
});
