// The memcached app's protocol over raw sockets and over an in-memory Conn: every command and error path, chunk
// splitting, pipelining, flow control, bad input, expiry (shared injectable clock), eviction and memory bounds.
// The socket suites run on each transport (io_uring channels under serve(), then node:net).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ServerHandle } from '../apps/memcached/server.js';
import { Store } from '../apps/memcached/store.js';
import { RawClient, exchange, show } from './memcached-testkit.js';
import { FakeConn, feed, newApp } from './memcached-fakeconn.js';
import { TRANSPORTS, startOn, transportLabel, transportSkip } from './memcached-transports.js';

const SCRIPT = [
  'set a 0 0 5\r\nhello\r\n', 'get a\r\n', 'gets a\r\n', 'add a 0 0 1\r\nx\r\n', 'add b 7 0 3\r\nbee\r\n',
  'replace b 8 0 4\r\nbeee\r\n', 'append b 0 0 1\r\n!\r\n', 'prepend b 0 0 1\r\n<\r\n', 'get a b c\r\n',
  'set n 0 0 1\r\n9\r\n', 'incr n 1\r\n', 'decr n 3\r\n', 'get n\r\n', 'touch n 100\r\n', 'gat 0 n\r\n',
  'delete n\r\n', 'delete n\r\n', 'set x 0 0 3\r\nabcd\r\n', 'bogus\r\n', 'ms m 3 c T0 F5\r\nmmm\r\n', 'mg m v f s\r\n',
  'ma ctr N0 J5 v\r\n', 'ma ctr v\r\n', 'md ctr q\r\n', 'mg ctr v q\r\n', 'mn\r\n', 'version\r\n',
].join('');

describe('memcached protocol (in-memory connection)', () => {
  it('gives the same replies however the input is split', () => {
    const whole = new FakeConn();
    const app = newApp();
    const s1 = app.factory()(whole);
    feed(s1, SCRIPT);
    const expected = whole.text();
    assert.match(expected, /^STORED\r\nVALUE a 0 5\r\nhello\r\nEND\r\nVALUE a 0 5 1\r\nhello\r\nEND\r\nNOT_STORED\r\nSTORED\r\n/);
    assert.ok(expected.endsWith('MN\r\nVERSION 1.6.18\r\n'), show(expected));
    for (const step of [1, 2, 3, 5, 7, 13, 64]) {
      const conn = new FakeConn();
      const app2 = newApp();
      feed(app2.factory()(conn), SCRIPT, step);
      assert.equal(conn.text(), expected, `split every ${step} bytes`);
    }
  });

  it('stops parsing when the output queue is full and resumes on drain', () => {
    const app = newApp();
    const conn = new FakeConn(10_000);
    const s = app.factory()(conn);
    const value = 'v'.repeat(4000);
    feed(s, `set big 0 0 ${value.length}\r\n${value}\r\n`);
    assert.equal(conn.text(), 'STORED\r\n');
    conn.out = []; conn.consume();
    // 100 pipelined gets of 4 KB: the session must stop after the queue passes 10 KB
    const cmds = 'get big\r\n'.repeat(100) + 'mn\r\n';
    feed(s, cmds);
    assert.equal(conn.paused, true, 'paused once write() returned false');
    const firstBurst = conn.text().length;
    assert.ok(firstBurst < 100 * 4000, `did not answer everything at once (${firstBurst} bytes)`);
    // more input while paused is kept, not parsed
    feed(s, 'version\r\n');
    let rounds = 0;
    while (conn.paused && rounds++ < 1000) { conn.consume(); s.drain!(); }
    const all = conn.text();
    const one = `VALUE big 0 4000\r\n${value}\r\nEND\r\n`;
    assert.equal(all, one.repeat(100) + 'MN\r\nVERSION 1.6.18\r\n');
    assert.equal(conn.paused, false);
  });

  it('pauses inside a large multi-get and finishes it after drain', () => {
    const app = newApp();
    const conn = new FakeConn(50_000);
    const s = app.factory()(conn);
    const value = 'q'.repeat(20_000);
    feed(s, `set k 0 0 ${value.length}\r\n${value}\r\n`);
    conn.out = []; conn.consume();
    feed(s, 'get' + ' k'.repeat(50) + '\r\nversion\r\n');
    assert.equal(conn.paused, true);
    let rounds = 0;
    while (conn.paused && rounds++ < 1000) { conn.consume(); s.drain!(); }
    assert.equal(conn.text(), `VALUE k 0 20000\r\n${value}\r\n`.repeat(50) + 'END\r\nVERSION 1.6.18\r\n');
  });

  it('frees a half-received value when the connection goes away', () => {
    const app = newApp(2);
    const st = app.store;
    const conn = new FakeConn();
    const s = app.factory()(conn);
    feed(s, 'set half 0 0 100000\r\n' + 'x'.repeat(50_000));
    s.close!();
    assert.deepEqual(st.check(), []);
    // memory is reusable: fill the cache completely afterwards
    const c2 = new FakeConn();
    const s2 = app.factory()(c2);
    for (let i = 0; i < 40; i++) feed(s2, `set f${i} 0 0 100000\r\n${'y'.repeat(100000)}\r\n`);
    assert.equal(c2.text(), 'STORED\r\n'.repeat(40));
    assert.deepEqual(st.check(), []);
  });
});

for (const transport of TRANSPORTS) describe(`memcached protocol, sockets (${transportLabel(transport)})`, { skip: transportSkip(transport) }, () => {
  let srv: ServerHandle;
  let store: Store;
  before(async () => {
    srv = await startOn(transport, { port: 0, memoryMb: 8 });
    store = new Store(srv.store, 63);
  });
  after(async () => { await srv?.close(); });

  async function call(cmds: string): Promise<string> {
    const r = await exchange(srv.port, [cmds, 'mn\r\n'], { until: (b) => b.subarray(-4).toString() === 'MN\r\n' });
    const s = r.out.toString('latin1');
    assert.ok(s.endsWith('MN\r\n'), show(s));
    return s.slice(0, -4);
  }

  it('stores and fetches binary-safe values', async () => {
    const value = Buffer.alloc(256);
    for (let i = 0; i < 256; i++) value[i] = i;
    const c = await RawClient.connect(srv.port);
    c.send(Buffer.concat([Buffer.from('set bin 42 0 256\r\n'), value, Buffer.from('\r\nget bin\r\n')]));
    assert.equal((await c.read('STORED\r\n')).toString(), 'STORED\r\n');
    const head = await c.read('\r\n');
    assert.equal(head.toString(), 'VALUE bin 42 256\r\n');
    const body = await c.read(256 + 2);
    assert.deepEqual(body.subarray(0, 256), value);
    assert.equal(body.subarray(256).toString(), '\r\n');
    assert.equal((await c.read('END\r\n')).toString(), 'END\r\n');
    c.close();
  });

  it('answers every classic command', async () => {
    assert.equal(await call('set c1 1 0 2\r\nab\r\nget c1\r\n'), 'STORED\r\nVALUE c1 1 2\r\nab\r\nEND\r\n');
    assert.equal(await call('add c1 0 0 1\r\nx\r\nadd c2 0 0 1\r\ny\r\n'), 'NOT_STORED\r\nSTORED\r\n');
    assert.equal(await call('replace c3 0 0 1\r\nx\r\nreplace c2 0 0 1\r\nz\r\nget c2\r\n'), 'NOT_STORED\r\nSTORED\r\nVALUE c2 0 1\r\nz\r\nEND\r\n');
    assert.equal(await call('append c2 0 0 2\r\n>>\r\nprepend c2 0 0 2\r\n<<\r\nget c2\r\n'), 'STORED\r\nSTORED\r\nVALUE c2 0 5\r\n<<z>>\r\nEND\r\n');
    const gets = await call('gets c2\r\n');
    const cas = /^VALUE c2 0 5 (\d+)\r\n/.exec(gets)![1];
    assert.equal(await call(`cas c2 0 0 1 ${BigInt(cas) + 1n}\r\nq\r\ncas c2 0 0 1 ${cas}\r\nw\r\ncas nope 0 0 1 1\r\nx\r\n`), 'EXISTS\r\nSTORED\r\nNOT_FOUND\r\n');
    assert.equal(await call('set num 0 0 2\r\n99\r\nincr num 1\r\ndecr num 200\r\nincr nope 1\r\n'), 'STORED\r\n100\r\n0\r\nNOT_FOUND\r\n');
    assert.equal(await call('set w 0 0 20\r\n18446744073709551614\r\nincr w 3\r\n'), 'STORED\r\n1\r\n');
    assert.equal(await call('incr c2 1\r\n'), 'CLIENT_ERROR cannot increment or decrement non-numeric value\r\n');
    assert.equal(await call('touch c2 0\r\ntouch nope 0\r\ndelete c2\r\ndelete c2\r\n'), 'TOUCHED\r\nNOT_FOUND\r\nDELETED\r\nNOT_FOUND\r\n');
    assert.equal(await call('verbosity 1\r\nversion\r\n'), 'OK\r\nVERSION 1.6.18\r\n');
    assert.equal(await call('set q 0 0 1 noreply\r\nq\r\nget q\r\n'), 'VALUE q 0 1\r\nq\r\nEND\r\n');
  });

  it('reports stats and settings', async () => {
    const s = await call('stats\r\n');
    for (const k of ['pid', 'uptime', 'time', 'version', 'curr_connections', 'total_connections', 'cmd_get', 'cmd_set',
      'get_hits', 'get_misses', 'get_expired', 'delete_hits', 'delete_misses', 'incr_hits', 'incr_misses', 'decr_hits',
      'decr_misses', 'cas_hits', 'cas_misses', 'cas_badval', 'touch_hits', 'touch_misses', 'curr_items', 'total_items',
      'bytes', 'evictions', 'limit_maxbytes', 'threads']) {
      assert.match(s, new RegExp(`^STAT ${k} \\S+\\r$`, 'm'), `stat ${k}`);
    }
    assert.match(s, /^STAT limit_maxbytes 8388608\r$/m);
    assert.match(s, /^STAT curr_connections [1-9]\d*\r$/m);
    assert.ok(s.endsWith('END\r\n'));
    const st = await call('stats settings\r\n');
    assert.match(st, /^STAT maxbytes 8388608\r$/m);
    assert.match(st, /^STAT item_size_max 1048576\r$/m);
    assert.match(st, /^STAT maxconns 1024\r$/m);
    assert.equal(await call('stats reset\r\n'), 'RESET\r\n');
    assert.match(await call('stats slabs\r\n'), /STAT active_slabs \d+\r\n(.|\r\n)*END\r\n$/);
    assert.match(await call('stats items\r\n'), /END\r\n$/);
  });

  it('expires items by TTL and absolute time (shared clock, no sleeping)', async () => {
    const now = store.tick() + srv.store.processStarted;
    assert.equal(await call(`set t1 0 10 1\r\na\r\nset t2 0 ${now + 100} 1\r\nb\r\nset t3 0 0 1\r\nc\r\nset t4 0 ${now - 5} 1\r\nd\r\nget t1 t2 t3 t4\r\n`),
      'STORED\r\nSTORED\r\nSTORED\r\nSTORED\r\nVALUE t1 0 1\r\na\r\nVALUE t2 0 1\r\nb\r\nVALUE t3 0 1\r\nc\r\nEND\r\n');
    assert.match(await call('mg t1 t\r\n'), /^HD t(10|9)\r\n$/);
    store.advanceClock(11);
    assert.equal(await call('get t1 t2 t3\r\n'), 'VALUE t2 0 1\r\nb\r\nVALUE t3 0 1\r\nc\r\nEND\r\n');
    store.advanceClock(100);
    assert.equal(await call('get t1 t2 t3\r\n'), 'VALUE t3 0 1\r\nc\r\nEND\r\n');
    // touch / gat extend
    assert.equal(await call('set t5 0 5 1\r\ne\r\ntouch t5 50\r\n'), 'STORED\r\nTOUCHED\r\n');
    store.advanceClock(10);
    assert.equal(await call('gat 5 t5\r\n'), 'VALUE t5 0 1\r\ne\r\nEND\r\n');
    store.advanceClock(6);
    assert.equal(await call('get t5\r\n'), 'END\r\n');
    // flush_all with a delay
    assert.equal(await call('set t6 0 0 1\r\nf\r\nflush_all 5\r\nget t6\r\n'), 'STORED\r\nOK\r\nVALUE t6 0 1\r\nf\r\nEND\r\n');
    store.advanceClock(6);
    assert.equal(await call('get t6\r\n'), 'END\r\n');
    assert.match(await call('stats\r\n'), /STAT get_expired [1-9]/);
  });

  it('closes a connection sending a line over 2048 bytes without newline', async () => {
    const r = await exchange(srv.port, ['set ' + 'x'.repeat(3000)], { idleMs: 3000 });
    assert.equal(r.closed, true);
    assert.equal(r.out.length, 0);
  });

  it('accepts long multi-get lines in pieces but caps them', async () => {
    assert.equal(await call('set lg 0 0 1\r\nz\r\n'), 'STORED\r\n');
    const r = await exchange(srv.port, ['get ' + 'lg '.repeat(1500), 'lg\r\n', 'mn\r\n'], { gapMs: 30, until: (b) => b.subarray(-4).toString() === 'MN\r\n' });
    assert.equal(r.out.toString(), 'VALUE lg 0 1\r\nz\r\n'.repeat(1501) + 'END\r\nMN\r\n');
    // beyond the cap (2 MiB) the connection is closed rather than its buffer grown (memory stays bounded)
    const oom = async () => Number(/^STAT read_buf_oom (\d+)\r$/m.exec(await call('stats\r\n'))![1]);
    const oom0 = await oom();
    const big = 'get ' + 'k '.repeat(1024 * 1024 + 10);
    const r2 = await exchange(srv.port, [big], { idleMs: 3000 });
    assert.equal(r2.closed, true);
    assert.equal(await oom(), oom0 + 1, 'closed at the line buffer\'s cap (read_buf_oom)');
  });

  it('closes on an HTTP request, survives junk and half commands', async () => {
    const http = await exchange(srv.port, ['GET / HTTP/1.1\r\nHost: localhost\r\n\r\n'], { idleMs: 3000 });
    assert.equal(http.closed, true);
    const junk = Buffer.alloc(4096);
    for (let i = 0; i < junk.length; i++) junk[i] = (i * 7919 + 13) & 0xff;
    for (let i = 0; i < junk.length; i++) if (junk[i] === 10) junk[i] = 11; // no newline: a 4 KB "line"
    const j = await exchange(srv.port, [junk], { idleMs: 3000 });
    assert.equal(j.closed, true);
    // the binary magic first switches the connection to the binary protocol (memcached-binary.test.ts): a bad
    // magic byte in the next header closes it
    const bin = await exchange(srv.port, [Buffer.from([0x80, 0x0a, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x81]), Buffer.alloc(23)], { idleMs: 3000 });
    assert.equal(bin.out.length, 24, 'the noop is answered');
    assert.equal(bin.closed, true, 'a bad magic byte closes');
    // half a command, then silence: the connection waits, others are served
    const half = await RawClient.connect(srv.port);
    half.send('set hc 0 0 10\r\nabc');
    assert.equal(await call('get hc\r\nversion\r\n'), 'END\r\nVERSION 1.6.18\r\n');
    half.send('defghij\r\nget hc\r\n');
    assert.equal((await half.read('END\r\n')).toString(), 'STORED\r\nVALUE hc 0 10\r\nabcdefghij\r\nEND\r\n');
    half.close();
    assert.deepEqual(store.check(), []);
  });

  it('quit closes after answering earlier commands', async () => {
    const r = await exchange(srv.port, ['version\r\nquit\r\nversion\r\n'], { idleMs: 3000 });
    assert.equal(r.out.toString(), 'VERSION 1.6.18\r\n');
    assert.equal(r.closed, true);
  });

  it('meta commands: opaque, quiet mode, base64 keys, vivify and stale-while-revalidate', async () => {
    assert.equal(await call('ms mk 3 T0 F9 c O1\r\nabc\r\n').then((s) => s.replace(/c\d+/, 'cN')), 'HD cN O1\r\n');
    assert.equal(await call('mg mk v f s k O2\r\n'), 'VA 3 f9 s3 kmk O2\r\nabc\r\n');
    assert.equal(await call('mg miss v q\r\nmg miss v q O3\r\nmg miss v O4\r\n'), 'EN O4\r\n');
    assert.equal(await call('ms AAEC/w== 1 b\r\nx\r\nmg AAEC/w== b k v\r\n'), 'HD\r\nVA 1 kAAEC/w== b\r\nx\r\n');
    assert.equal(await call('mg vv N30 v\r\nmg vv N30 v\r\n'), 'VA 0 W\r\n\r\nVA 0 Z\r\n\r\n');
    assert.equal(await call('ms vv 2\r\nok\r\nmd vv I\r\nmg vv v\r\nmg vv v\r\n'), 'HD\r\nHD\r\nVA 2 X W\r\nok\r\nVA 2 Z X\r\nok\r\n');
    assert.equal(await call('ma mctr N0 J41 v\r\nma mctr v\r\nma mctr MD D50 v\r\n'), 'VA 2\r\n41\r\nVA 2\r\n42\r\nVA 1\r\n0\r\n');
    assert.equal(await call('md mctr q\r\nmg mctr\r\n'), 'EN\r\n');
  });

  it('rejects items over -I and keeps the key limit at 250 bytes', async () => {
    const c = await RawClient.connect(srv.port);
    c.send(`set huge 0 0 ${2 * 1024 * 1024}\r\n`);
    assert.equal((await c.read('\r\n')).toString(), 'SERVER_ERROR object too large for cache\r\n');
    // the data block is swallowed, not parsed as commands
    c.send(Buffer.alloc(2 * 1024 * 1024, 'get x\r\n'));
    c.send('\r\nversion\r\n');
    assert.equal((await c.read('\r\n', 10000)).toString(), 'VERSION 1.6.18\r\n');
    c.close();
    assert.equal(await call(`set ${'k'.repeat(250)} 0 0 1\r\na\r\n`), 'STORED\r\n');
    assert.equal(await call(`set ${'k'.repeat(251)} 0 0 1\r\na\r\n`), 'CLIENT_ERROR bad command line format\r\nERROR\r\n');
  });
});

for (const transport of TRANSPORTS) describe(`memcached storage limits (${transportLabel(transport)})`, { skip: transportSkip(transport) }, () => {
  it('evicts least recently used items under a small -m, keeps hot ones, stays in bounds', async () => {
    const srv = await startOn(transport, { port: 0, memoryMb: 2 });
    try {
      const store = new Store(srv.store, 62);
      const c = await RawClient.connect(srv.port);
      const val = (i: number) => `${i}:`.padEnd(1000, String.fromCharCode(97 + (i % 26)));
      c.send('set hot 0 0 3\r\nhot\r\n');
      assert.equal((await c.read('\r\n')).toString(), 'STORED\r\n');
      const N = 6000; // ~6 MB of values into 2 MB
      for (let i = 0; i < N; i += 100) {
        let batch = '';
        for (let j = i; j < i + 100; j++) batch += `set key${j} 0 0 1000\r\n${val(j)}\r\n`;
        batch += 'get hot\r\n';
        c.send(batch);
        const want = 'STORED\r\n'.repeat(100) + 'VALUE hot 0 3\r\nhot\r\nEND\r\n';
        assert.equal((await c.read(want.length)).toString(), want, `batch ${i}`);
      }
      // the newest are there with exact bytes, the oldest are gone
      c.send(`get key${N - 1} key${N - 2} key0 key1\r\n`);
      const got = (await c.read('END\r\n')).toString();
      assert.equal(got, `VALUE key${N - 1} 0 1000\r\n${val(N - 1)}\r\nVALUE key${N - 2} 0 1000\r\n${val(N - 2)}\r\nEND\r\n`);
      c.send('stats\r\n');
      const stats = (await c.read('END\r\n')).toString();
      const stat = (k: string) => Number(new RegExp(`STAT ${k} (\\d+)`).exec(stats)![1]);
      assert.ok(stat('evictions') > 0, 'evictions counted');
      assert.ok(stat('bytes') <= stat('limit_maxbytes'), `bytes ${stat('bytes')} within limit ${stat('limit_maxbytes')}`);
      assert.equal(stat('limit_maxbytes'), 2 * 1024 * 1024);
      // every surviving item is intact
      let live = 0;
      for (let i = 0; i < N; i += 200) {
        let q = 'get';
        for (let j = i; j < i + 200; j++) q += ` key${j}`;
        c.send(q + '\r\n');
        const r = (await c.read('END\r\n')).toString();
        for (const m of r.matchAll(/VALUE key(\d+) 0 1000\r\n([^\r]*)\r\n/g)) { assert.equal(m[2], val(Number(m[1]))); live++; }
      }
      assert.equal(live, stat('curr_items') - 1);
      // a class without pages gets one from another class: a 300 KB item still fits
      const big = 'B'.repeat(300_000);
      c.send(`set big 0 0 ${big.length}\r\n${big}\r\nget big\r\n`);
      assert.equal((await c.read('END\r\n')).toString(), `STORED\r\nVALUE big 0 300000\r\n${big}\r\nEND\r\n`);
      assert.deepEqual(store.check(), []);
      c.close();
    } finally {
      await srv.close();
    }
  });

  it('keeps a CAS loop consistent between two connections', async () => {
    const srv = await startOn(transport, { port: 0, memoryMb: 4 });
    try {
      const a = await RawClient.connect(srv.port), b = await RawClient.connect(srv.port);
      a.send('set ctr 0 0 1\r\n0\r\n');
      assert.equal((await a.read('\r\n')).toString(), 'STORED\r\n');
      // a conflict, forced: both read the same CAS, the first write wins, the second is refused and changes nothing
      const [ga, gb] = [await a.call('gets ctr\r\n', 'END\r\n'), await b.call('gets ctr\r\n', 'END\r\n')];
      assert.equal(ga, gb);
      const cas0 = /^VALUE ctr 0 1 (\d+)\r\n0\r\nEND\r\n$/.exec(ga)![1];
      assert.equal(await a.call(`cas ctr 0 0 1 ${cas0}\r\n1\r\n`), 'STORED\r\n');
      assert.equal(await b.call(`cas ctr 0 0 1 ${cas0}\r\n9\r\n`), 'EXISTS\r\n');
      assert.match(await b.call('gets ctr\r\n', 'END\r\n'), /^VALUE ctr 0 1 \d+\r\n1\r\nEND\r\n$/);
      const PER = 200;
      const worker = async (c: RawClient) => {
        for (let done = 0; done < PER;) {
          c.send('gets ctr\r\n');
          const r = (await c.read('END\r\n')).toString();
          const m = /^VALUE ctr 0 \d+ (\d+)\r\n(\d+)\r\nEND\r\n$/.exec(r);
          assert.ok(m, show(r));
          const next = String(Number(m[2]) + 1);
          c.send(`cas ctr 0 0 ${next.length} ${m[1]}\r\n${next}\r\n`);
          const res = (await c.read('\r\n')).toString();
          if (res === 'STORED\r\n') done++;
          else assert.equal(res, 'EXISTS\r\n');
        }
      };
      await Promise.all([worker(a), worker(b)]);
      // every increment landed exactly once: no lost update, none applied twice
      a.send('get ctr\r\n');
      const total = 2 * PER + 1;
      assert.equal((await a.read('END\r\n')).toString(), `VALUE ctr 0 ${String(total).length}\r\n${total}\r\nEND\r\n`);
      a.close(); b.close();
    } finally {
      await srv.close();
    }
  });

  it('refuses connections above -c like memcached', async () => {
    const srv = await startOn(transport, { port: 0, memoryMb: 2, maxConns: 2 });
    try {
      const a = await RawClient.connect(srv.port), b = await RawClient.connect(srv.port);
      assert.equal(await a.call('version\r\n'), 'VERSION 1.6.18\r\n');
      assert.equal(await b.call('version\r\n'), 'VERSION 1.6.18\r\n');
      const r = await exchange(srv.port, [], { idleMs: 3000 });
      assert.equal(r.out.toString(), 'ERROR Too many open connections\r\n');
      assert.equal(r.closed, true);
      a.close(); b.close();
    } finally {
      await srv.close();
    }
  });
});
